# SPDX-License-Identifier: Apache-2.0
"""The daemon's gRPC transport, checked with independent implementations: grpcio
(Debian's python3-grpcio) for well-formed calls, python3-h2 and raw sockets for the
malformed ones. Every bad-bytes case is followed by a good call: the daemon survives."""
import concurrent.futures
import os
import socket
import stat
import struct
import subprocess
import threading
import time

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from grpc_util import channel, pb, raw_unary, stream, unary

HEALTH = "/grpc.health.v1.Health/"


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory(None)


def target(d):
    return "unix:" + d.sock


def health_pb():
    return pb("grpc.health.v1.health")


def check(d, service="", gzip=False, timeout=5):
    h = health_pb()
    with channel(target(d), gzip=gzip) as ch:
        return unary(ch, HEALTH + "Check", h.HealthCheckRequest(service=service), h.HealthCheckResponse,
                     timeout=timeout)


def test_health_check_serving(daemon):
    h = health_pb()
    assert check(daemon).status == h.HealthCheckResponse.SERVING
    assert check(daemon, "switchyard.v1.Control").status == h.HealthCheckResponse.SERVING


def test_health_check_unknown_service_is_not_found(daemon):
    with pytest.raises(grpc.RpcError) as e:
        check(daemon, "no.such.Service")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_gzip_both_ways(daemon):
    h = health_pb()
    assert check(daemon, gzip=True).status == h.HealthCheckResponse.SERVING


def test_unknown_method_is_unimplemented(daemon):
    with channel(target(daemon)) as ch:
        with pytest.raises(grpc.RpcError) as e:
            raw_unary(ch, "/switchyard.v1.Control/NoSuchMethod", b"")
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as e:
            raw_unary(ch, "/no.Such/Service", b"")
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_undecodable_request_is_invalid_argument(daemon):
    with channel(target(daemon)) as ch:
        with pytest.raises(grpc.RpcError) as e:
            raw_unary(ch, HEALTH + "Check", b"\x0a\xff\xff\xff\xff\x0f")  # length past the end
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert check(daemon).status == health_pb().HealthCheckResponse.SERVING


def test_watch_streams_and_deadline_ends_it(daemon):
    h = health_pb()
    with channel(target(daemon)) as ch:
        it = stream(ch, HEALTH + "Watch", h.HealthCheckRequest(service=""), h.HealthCheckResponse, timeout=0.5)
        first = next(it)
        assert first.status == h.HealthCheckResponse.SERVING
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            for _ in it:
                pass
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 2.0


def test_cancel_mid_stream_then_serve_again(daemon):
    h = health_pb()
    with channel(target(daemon)) as ch:
        it = stream(ch, HEALTH + "Watch", h.HealthCheckRequest(service=""), h.HealthCheckResponse)
        assert next(it).status == h.HealthCheckResponse.SERVING
        it.cancel()
        with pytest.raises(grpc.RpcError) as e:
            next(it)
        assert e.value.code() == grpc.StatusCode.CANCELLED
    assert check(daemon).status == h.HealthCheckResponse.SERVING


def test_hundred_concurrent_calls(daemon):
    h = health_pb()
    with channel(target(daemon)) as ch:
        fn = ch.unary_unary(HEALTH + "Check", request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=h.HealthCheckResponse.FromString)
        futs = [fn.future(h.HealthCheckRequest(service=""), timeout=10) for _ in range(100)]
        assert [f.result().status for f in futs] == [h.HealthCheckResponse.SERVING] * 100


def test_many_connections(daemon):
    def one(_):
        return check(daemon).status

    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        assert list(ex.map(one, range(40))) == [health_pb().HealthCheckResponse.SERVING] * 40


def test_socket_is_0600_and_refuses_non_root(daemon_factory, uid):
    # A folder anyone may traverse: only the socket's own mode can keep "nobody" out.
    folder = "/tmp/sy-sock-" + uid
    os.mkdir(folder)
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "switchyard.sock")
    try:
        daemon_factory(None, extra=["--listen", "unix:" + path])
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == 0
        code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(%r)\n"
                "except PermissionError:\n sys.exit(42)\nsys.exit(0)\n" % path)
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "/usr/bin/python3", "-c", code])
        assert r.returncode == 42
        # And root can: the refusal above is the mode, not a missing socket.
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.close()
    finally:
        subprocess.run(["rm", "-rf", folder])


# ---- malformed bytes ---------------------------------------------------------------

def unix_conn(d):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(d.sock)
    return s


def read_until_closed(s, limit=1 << 20):
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def test_raw_garbage_gets_goaway_and_daemon_survives(daemon):
    s = unix_conn(daemon)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(512))
    data = read_until_closed(s)
    s.close()
    # Either nothing or a SETTINGS/GOAWAY, and the connection is closed by the server.
    assert b"HTTP/1.1 200" not in data
    assert check(daemon).status == health_pb().HealthCheckResponse.SERVING


def test_truncated_frame_then_close(daemon):
    s = unix_conn(daemon)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    # A SETTINGS frame header announcing 18 bytes, followed by only 3.
    s.sendall(preface + struct.pack(">I", 18)[1:] + b"\x04\x00\x00\x00\x00\x00" + b"\x00\x01\x00")
    s.close()
    assert check(daemon).status == health_pb().HealthCheckResponse.SERVING


class H2:
    """A minimal HTTP/2 client on python3-h2 for requests grpcio refuses to send."""

    def __init__(self, d, window=None):
        self.s = unix_conn(d)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.c = h2.connection.H2Connection(config=cfg)
        self.c.initiate_connection()
        if window is not None:
            self.c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()

    def flush(self):
        self.s.sendall(self.c.data_to_send())

    def request(self, path, body, content_type="application/grpc", end=True):
        sid = self.c.get_next_available_stream_id()
        self.c.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", path),
                                  (":authority", "localhost"), ("content-type", content_type),
                                  ("te", "trailers")], end_stream=False)
        self.c.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def events(self, sid, timeout=5, ack=True):
        """Collects (headers, data, trailers, reset) of stream sid until it ends."""
        out = {"headers": {}, "data": b"", "trailers": {}, "reset": None, "goaway": False, "frames": []}
        end = time.monotonic() + timeout
        done = False
        while not done and time.monotonic() < end:
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            for ev in self.c.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    out["headers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    out["data"] += ev.data
                    out["frames"].append(len(ev.data))
                    if ack:
                        self.c.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    out["trailers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    out["reset"] = ev.error_code
                    done = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    out["goaway"] = True
                    done = True
            self.flush()
        return out

    def close(self):
        self.s.close()


def grpc_status(ev):
    st = ev["trailers"].get("grpc-status") or ev["headers"].get("grpc-status")
    return int(st) if st is not None else None


def frame(msg, compressed=False, length=None):
    return struct.pack(">BI", 1 if compressed else 0, len(msg) if length is None else length) + msg


def test_wrong_content_type(daemon):
    c = H2(daemon)
    sid = c.request(HEALTH + "Check", frame(b""), content_type="application/json")
    ev = c.events(sid)
    c.close()
    assert ev["headers"].get(":status") == "415" or grpc_status(ev) is not None
    assert check(daemon).status == health_pb().HealthCheckResponse.SERVING


def test_header_claiming_two_gib_is_resource_exhausted(daemon):
    c = H2(daemon)
    sid = c.request(HEALTH + "Check", struct.pack(">BI", 0, 0x7fffffff) + b"\x00" * 16, end=False)
    ev = c.events(sid)
    c.close()
    assert grpc_status(ev) == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert check(daemon).status == health_pb().HealthCheckResponse.SERVING


def test_bad_protobuf_body_over_h2(daemon):
    c = H2(daemon)
    sid = c.request(HEALTH + "Check", frame(b"\xff\xff\xff"))
    ev = c.events(sid)
    c.close()
    assert grpc_status(ev) == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_flow_control_with_a_tiny_window(daemon):
    """The client grants 3 bytes of window: the reply must arrive in DATA frames that
    never exceed what was granted, and complete once we acknowledge them."""
    h = health_pb()
    c = H2(daemon, window=3)
    sid = c.request(HEALTH + "Check", frame(h.HealthCheckRequest(service="").SerializeToString()))
    ev = c.events(sid)
    c.close()
    assert grpc_status(ev) == 0
    assert len(ev["frames"]) >= 3 and max(ev["frames"]) <= 3
    assert len(ev["data"]) >= 5
    flag, n = struct.unpack(">BI", ev["data"][:5])
    assert flag == 0 and n == len(ev["data"]) - 5
    assert h.HealthCheckResponse.FromString(ev["data"][5:]).status == h.HealthCheckResponse.SERVING


def test_keepalive_ping_is_answered(daemon):
    c = H2(daemon)
    c.c.ping(b"12345678")
    c.flush()
    acked = False
    end = time.monotonic() + 5
    while not acked and time.monotonic() < end:
        for ev in c.c.receive_data(c.s.recv(65536)):
            if isinstance(ev, h2.events.PingAckReceived) and ev.ping_data == b"12345678":
                acked = True
        c.flush()
    c.close()
    assert acked


def test_tcp_listeners_v4_and_v6(daemon_factory):
    from sy import free_port
    p4, p6 = free_port(), free_port()
    # clear-text TCP needs --insecure-listen (TLS is test_tls.py's)
    daemon_factory(None, extra=["--listen", "127.0.0.1:%d" % p4, "--listen", "[::1]:%d" % p6, "--insecure-listen"])
    h = health_pb()
    for tgt in ("127.0.0.1:%d" % p4, "[::1]:%d" % p6):
        with channel(tgt) as ch:
            r = unary(ch, HEALTH + "Check", h.HealthCheckRequest(service=""), h.HealthCheckResponse)
            assert r.status == h.HealthCheckResponse.SERVING


def test_bad_listen_address_is_refused(daemon_factory):
    d = daemon_factory(None, extra=["--listen", "localhost:notaport"], start=False)
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=10) != 0
    assert "listen on localhost:notaport" in d.read_log()


def test_sigterm_drains_gracefully(daemon):
    """Watchers hear NOT_SERVING, the stream ends, the daemon exits 0, new calls fail."""
    h = health_pb()
    with channel(target(daemon)) as ch:
        it = stream(ch, HEALTH + "Watch", h.HealthCheckRequest(service=""), h.HealthCheckResponse)
        assert next(it).status == h.HealthCheckResponse.SERVING
        t0 = time.monotonic()
        daemon.proc.terminate()
        assert next(it).status == h.HealthCheckResponse.NOT_SERVING
        with pytest.raises((grpc.RpcError, StopIteration)):
            next(it)
    assert daemon.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    assert not os.path.exists(daemon.sock)
