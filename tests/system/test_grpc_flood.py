# SPDX-License-Identifier: Apache-2.0
"""gRPC request buffering is bounded whatever the clients do. The attacker (python3-h2,
an independent HTTP/2 implementation) opens many streams on several connections, each
declaring a large request message and sending all of it but the end, as fast as the
server's flow-control windows allow. The daemon's RSS must stay under 256 MiB, a
`syctl status` must answer within 1 s meanwhile, and the memory must come back once the
attacker hangs up."""
import os
import select
import socket
import struct
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest

from sy import OUT, spec_yaml

RSS_LIMIT = 256 << 20
CONNS = 3
STREAMS = 300
ZEROS = bytes(16384)
HEADERS = [(":method", "POST"), (":scheme", "http"), (":path", "/switchyard.v1.Control/ApplyMigration"),
           (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")]


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Attacker:
    """One connection: up to STREAMS streams, each owing `declared` bytes of one
    message, of which all but the last byte are sent as the windows open."""

    def __init__(self, path, declared):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                      header_encoding="utf-8"))
        self.c.initiate_connection()
        self.flush()
        self.declared = declared
        self.left = {}  # stream id -> body bytes still to send
        self.sent = 0
        self.refused = 0
        self.open_streams()

    def flush(self):
        data = self.c.data_to_send()
        if data:
            self.s.sendall(data)

    def open_streams(self):
        # the server's SETTINGS (its stream limit) first
        self.s.settimeout(5)
        while not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.c.receive_data(self.s.recv(65536))):
            pass
        self.flush()
        for _ in range(STREAMS):
            sid = self.c.get_next_available_stream_id()
            try:
                self.c.send_headers(sid, HEADERS)
            except h2.exceptions.TooManyStreamsError:
                self.refused = STREAMS - len(self.left)
                break
            self.c.send_data(sid, b"\x00" + struct.pack(">I", self.declared))
            self.left[sid] = self.declared - 1
        self.flush()
        self.s.setblocking(False)

    def pump(self):
        """Sends what the windows allow; returns the bytes sent."""
        n = 0
        for sid, left in list(self.left.items()):
            while left:
                w = min(self.c.local_flow_control_window(sid), self.c.max_outbound_frame_size, left)
                if w <= 0:
                    break
                self.c.send_data(sid, ZEROS[:w])
                left -= w
                n += w
            self.left[sid] = left
        data = self.c.data_to_send()
        if data:
            self.s.setblocking(True)
            self.s.sendall(data)
            self.s.setblocking(False)
        self.sent += n
        return n

    def receive(self):
        try:
            data = self.s.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            self.left.clear()
            return
        for e in self.c.receive_data(data):
            if isinstance(e, (h2.events.StreamReset, h2.events.StreamEnded)):
                self.left.pop(e.stream_id, None)
        self.flush()

    def close(self):
        self.s.close()


def attack(d, declared, seconds=20):
    pid = d.proc.pid
    base = rss(pid)
    conns = [Attacker(d.sock, declared) for _ in range(CONNS)]
    peak, status, status_took, t0, last_progress = base, None, None, time.monotonic(), time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            if sum(c.pump() for c in conns):
                last_progress = time.monotonic()
            r, _, _ = select.select([c.s for c in conns], [], [], 0.02)
            for c in conns:
                if c.s in r:
                    c.receive()
            peak = max(peak, rss(pid))
            if peak > RSS_LIMIT:
                break
            if status is None and time.monotonic() - t0 > 2:
                status = subprocess.Popen([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock,
                                           "--timeout", "5s", "status"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE)
                status_t0 = time.monotonic()
            if status is not None and status_took is None and status.poll() is not None:
                status_took = time.monotonic() - status_t0
                assert status.returncode == 0, status.stderr.read()
            # stalled by the server (every window closed) and status measured: done
            if status_took is not None and time.monotonic() - last_progress > 2:
                break
        during = rss(pid)
        sent = sum(c.sent for c in conns)
        streams = sum(len(c.left) for c in conns)
    finally:
        for c in conns:
            c.close()
        if status is not None and status.poll() is None:
            status.kill()
    return base, peak, during, status_took, sent, streams


@pytest.mark.parametrize("declared,extra", [
    ((1 << 20) - 64, []),                                  # just under the default 1 MiB cap
    ((4 << 20) - 64, ["--rpc-max-message", "4MiB"]),       # the cap raised: budgets still hold
])
def test_flood_of_unfinished_requests_is_bounded(redis_pair, daemon_factory, declared, extra):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr]}]),
                       extra=extra)
    base, peak, during, took, sent, streams = attack(d, declared)
    print("rss base %d MiB, peak %d MiB; %d MiB sent on %d streams; status in %s s"
          % (base >> 20, peak >> 20, sent >> 20, streams, took))
    assert peak < RSS_LIMIT, "RSS reached %d MiB" % (peak >> 20)
    assert took is not None and took < 1.0, "syctl status took %s s during the attack" % took
    assert d.proc.poll() is None
    # the attacker hung up: its buffers go, and the heap gives them back
    end = time.monotonic() + 5
    while rss(d.proc.pid) > base + (16 << 20) and time.monotonic() < end:
        time.sleep(0.1)
    after = rss(d.proc.pid)
    assert after <= base + (16 << 20), "RSS %d MiB after close (base %d MiB, peak %d MiB)" % (
        after >> 20, base >> 20, peak >> 20)
    r = d.syctl("status")
    assert r.returncode == 0


def test_request_over_the_default_cap_is_refused(redis_pair, daemon_factory):
    """The control API's messages are kilobytes: 2 MiB is refused before it is stored."""
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr]}]))
    a = Attacker(d.sock, 2 << 20)
    try:
        a.s.setblocking(True)
        a.s.settimeout(5)
        resets, status = set(), {}
        end = time.monotonic() + 5
        while len(status) + len(resets) < len(a.left) and time.monotonic() < end:
            for e in a.c.receive_data(a.s.recv(1 << 20)):
                if isinstance(e, h2.events.TrailersReceived) or isinstance(e, h2.events.ResponseReceived):
                    hd = dict(e.headers)
                    if "grpc-status" in hd:
                        status[e.stream_id] = hd["grpc-status"]
                elif isinstance(e, h2.events.StreamReset):
                    resets.add(e.stream_id)
            a.flush()
        assert status and set(status.values()) == {"8"}, status  # RESOURCE_EXHAUSTED
    finally:
        a.close()


def pump_until_stalled(conns, seconds=15):
    t0 = last = time.monotonic()
    while time.monotonic() - t0 < seconds and time.monotonic() - last < 1.5:
        if sum(c.pump() for c in conns):
            last = time.monotonic()
        r, _, _ = select.select([c.s for c in conns], [], [], 0.02)
        for c in conns:
            if c.s in r:
                c.receive()
    return sum(c.sent for c in conns)


def test_a_stalled_connection_resumes_when_its_streams_go(redis_pair, daemon_factory):
    """Past its budget a connection gets no window; once streams holding the budget are
    reset, the bytes held back are credited and the others move again — up to the
    budget, not past it."""
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr]}]))
    a = Attacker(d.sock, (1 << 20) - 64)
    try:
        first = pump_until_stalled([a])
        assert first < 8 << 20, "a stalled connection took %d MiB" % (first >> 20)
        assert any(a.left.values()), "nothing held back"
        half = sorted(a.left)[: len(a.left) // 2]
        for sid in half:
            a.c.reset_stream(sid)
            del a.left[sid]
        a.flush()
        second = pump_until_stalled([a])
        print("stalled at %d KiB, then %d KiB after resetting %d streams" % (first >> 10, second >> 10, len(half)))
        assert second > first + (1 << 20), "%d then %d bytes: the connection did not resume" % (first, second)
        assert second - first < 8 << 20
        assert d.syctl("status").returncode == 0
    finally:
        a.close()


def test_unfinished_requests_end_after_the_request_timeout(redis_pair, daemon_factory):
    """A stream whose request never completes does not hold its buffers for as long as
    its connection lives: 10 s after its headers it ends with RESOURCE_EXHAUSTED."""
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr]}]))
    a = Attacker(d.sock, (1 << 20) - 64)
    t0 = time.monotonic()
    ended = {}
    try:
        while len(ended) < STREAMS and time.monotonic() - t0 < 15:
            a.pump()
            r, _, _ = select.select([a.s], [], [], 0.05)
            if not r:
                continue
            data = a.s.recv(1 << 20)
            if not data:
                break
            for e in a.c.receive_data(data):
                hd = dict(getattr(e, "headers", None) or [])
                if "grpc-status" in hd:
                    ended[e.stream_id] = (hd["grpc-status"], hd.get("grpc-message", ""),
                                          time.monotonic() - t0)
                    a.left.pop(e.stream_id, None)
            a.flush()
        opened = len(ended) + len(a.left)
        assert opened >= 50 and len(ended) == opened, "%d of %d streams ended" % (len(ended), opened)
        assert {v[0] for v in ended.values()} == {"8"}
        assert all("request not received within 10 s" in v[1] for v in ended.values())
        assert min(v[2] for v in ended.values()) >= 9.5
        assert d.syctl("status").returncode == 0
    finally:
        a.close()
