#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""grpcio (an independent gRPC implementation) against our server.

    /usr/bin/python3 check_server.py --peer /tmp/interop/peer
        starts peer.c's server on a unix socket and on 127.0.0.1:0, runs every check on
        both, then SIGTERMs it and expects a clean drain (exit 0);
    /usr/bin/python3 check_server.py --target unix:/run/switchyard/switchyard.sock
        runs the checks that need only grpc.health.v1 against a server already running
        (switchyardd itself).

Each check is a function of (target, peer) so it can become a pytest test as is; the
ones marked PEER need peer.c's /interop.T/* methods. Exit status: the number failed."""
import argparse
import concurrent.futures
import os
import sys
import tempfile
import time

import grpc

from interop_util import Peer, health_pb, run_checks, ser, text_req

HEALTH = "/grpc.health.v1.Health/"


def channel(target, gzip=False, **opts):
    o = [("grpc.enable_retries", 0)] + list(opts.items())
    return grpc.insecure_channel(target, options=o,
                                 compression=grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression)


def check(ch, service="", timeout=5, **kw):
    h = health_pb()
    fn = ch.unary_unary(HEALTH + "Check", request_serializer=ser, response_deserializer=h.HealthCheckResponse.FromString)
    return fn(h.HealthCheckRequest(service=service), timeout=timeout, **kw)


def watch(ch, service="", timeout=None):
    h = health_pb()
    fn = ch.unary_stream(HEALTH + "Watch", request_serializer=ser,
                         response_deserializer=h.HealthCheckResponse.FromString)
    return fn(h.HealthCheckRequest(service=service), timeout=timeout)


def text_unary(ch, path):
    h = health_pb()
    return ch.unary_unary(path, request_serializer=ser, response_deserializer=h.HealthCheckRequest.FromString)


def expect_code(code, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except grpc.RpcError as e:
        assert e.code() == code, "got %s (%s), want %s" % (e.code(), e.details(), code)
        return e
    raise AssertionError("no error, want %s" % code)


# ---- health only: these run against switchyardd too -------------------------------

def check_health_serving(target, peer):
    h = health_pb()
    with channel(target) as ch:
        assert check(ch).status == h.HealthCheckResponse.SERVING
        assert check(ch, "switchyard.v1.Control").status == h.HealthCheckResponse.SERVING


def check_health_unknown_service_not_found(target, peer):
    with channel(target) as ch:
        e = expect_code(grpc.StatusCode.NOT_FOUND, check, ch, "no.such.Service")
        assert "no.such.Service" in e.details()


def check_watch_then_deadline(target, peer):
    h = health_pb()
    with channel(target) as ch:
        it = watch(ch, timeout=0.5)
        assert next(it).status == h.HealthCheckResponse.SERVING
        t0 = time.monotonic()
        e = expect_code(grpc.StatusCode.DEADLINE_EXCEEDED, lambda: list(it))
        assert time.monotonic() - t0 < 2.0, e


def check_gzip_channel(target, peer):
    h = health_pb()
    with channel(target, gzip=True) as ch:
        assert check(ch).status == h.HealthCheckResponse.SERVING
    with channel(target) as ch:  # per call
        assert check(ch, compression=grpc.Compression.Gzip).status == h.HealthCheckResponse.SERVING


def check_hundred_concurrent_calls(target, peer):
    h = health_pb()
    with channel(target) as ch:
        fn = ch.unary_unary(HEALTH + "Check", request_serializer=ser,
                            response_deserializer=h.HealthCheckResponse.FromString)
        futs = [fn.future(h.HealthCheckRequest(service=""), timeout=10) for _ in range(100)]
        assert [f.result().status for f in futs] == [h.HealthCheckResponse.SERVING] * 100


def check_many_connections(target, peer):
    h = health_pb()

    def one(_):
        with channel(target) as ch:
            return check(ch).status

    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        assert list(ex.map(one, range(40))) == [h.HealthCheckResponse.SERVING] * 40


def check_cancel_watch_mid_stream(target, peer):
    h = health_pb()
    with channel(target) as ch:
        it = watch(ch)
        assert next(it).status == h.HealthCheckResponse.SERVING
        it.cancel()
        expect_code(grpc.StatusCode.CANCELLED, next, it)
        assert check(ch).status == h.HealthCheckResponse.SERVING  # same connection still good


def check_unknown_method_unimplemented(target, peer):
    with channel(target) as ch:
        for path in ("/grpc.health.v1.Health/NoSuchMethod", "/no.such.Service/Method"):
            fn = ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            expect_code(grpc.StatusCode.UNIMPLEMENTED, fn, b"", timeout=5)


def check_undecodable_invalid_argument(target, peer):
    with channel(target) as ch:
        fn = ch.unary_unary(HEALTH + "Check", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        expect_code(grpc.StatusCode.INVALID_ARGUMENT, fn, b"\x0a\xff\xff\xff\xff\x0f", timeout=5)


def check_request_over_limit_resource_exhausted(target, peer):
    with channel(target, **{"grpc.max_send_message_length": -1}) as ch:
        expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, check, ch, "x" * (5 << 20))
        assert check(ch).status == health_pb().HealthCheckResponse.SERVING


# ---- PEER: peer.c's methods -------------------------------------------------------

def check_peer_unary_deadline(target, peer):
    with channel(target) as ch:
        t0 = time.monotonic()
        expect_code(grpc.StatusCode.DEADLINE_EXCEEDED, text_unary(ch, "/interop.T/Never"), text_req(""),
                    timeout=0.3)
        assert time.monotonic() - t0 < 1.5
    assert peer.read_events("cancel /interop.T/Never"), "the handler was not cancelled"


def check_peer_gzip_large_echo(target, peer):
    s = "switchyard " * 100000  # 1.1 MB, compressible
    with channel(target, gzip=True) as ch:
        assert text_unary(ch, "/interop.T/Echo")(text_req(s), timeout=10).service == s


def check_peer_large_reply_flow_control(target, peer):
    with channel(target) as ch:
        r = text_unary(ch, "/interop.T/Big")(text_req(str(3 << 20)), timeout=10)
        assert len(r.service) == 3 << 20


def check_peer_server_streaming(target, peer):
    h = health_pb()
    with channel(target) as ch:
        fn = ch.unary_stream("/interop.T/Stream", request_serializer=ser,
                             response_deserializer=h.HealthCheckRequest.FromString)
        assert [m.service for m in fn(text_req("20"), timeout=10)] == [str(i) for i in range(20)]


def check_peer_cancel_stream_reaches_handler(target, peer):
    h = health_pb()
    with channel(target) as ch:
        fn = ch.unary_stream("/interop.T/Stream", request_serializer=ser,
                             response_deserializer=h.HealthCheckRequest.FromString)
        it = fn(text_req("100000"))
        assert [next(it).service for _ in range(3)] == ["0", "1", "2"]
        it.cancel()
    assert peer.read_events("cancel /interop.T/Stream"), "the handler was not cancelled"


def check_peer_status_message_encoding(target, peer):
    with channel(target) as ch:
        msg = "ratio: 100% é\n\tdone"
        e = expect_code(grpc.StatusCode.FAILED_PRECONDITION, text_unary(ch, "/interop.T/Fail"),
                        text_req("9 " + msg), timeout=5)
        assert e.details() == msg, repr(e.details())


def check_peer_watch_sees_changes(target, peer):
    h = health_pb()
    with channel(target) as ch:
        it = watch(ch, timeout=5)
        assert next(it).status == h.HealthCheckResponse.SERVING
        assert text_unary(ch, "/interop.T/Flip")(text_req(""), timeout=5).service == "NOT_SERVING"
        assert next(it).status == h.HealthCheckResponse.NOT_SERVING
        assert check(ch).status == h.HealthCheckResponse.NOT_SERVING
        assert text_unary(ch, "/interop.T/Flip")(text_req(""), timeout=5).service == "SERVING"
        assert next(it).status == h.HealthCheckResponse.SERVING
        it.cancel()


HEALTH_CHECKS = [
    check_health_serving, check_health_unknown_service_not_found, check_watch_then_deadline,
    check_gzip_channel, check_hundred_concurrent_calls, check_many_connections,
    check_cancel_watch_mid_stream, check_unknown_method_unimplemented,
    check_undecodable_invalid_argument, check_request_over_limit_resource_exhausted,
]
PEER_CHECKS = [
    check_peer_unary_deadline, check_peer_gzip_large_echo, check_peer_large_reply_flow_control,
    check_peer_server_streaming, check_peer_cancel_stream_reaches_handler,
    check_peer_status_message_encoding, check_peer_watch_sees_changes,
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", help="peer binary (built from peer.c): start it and run every check")
    ap.add_argument("--target", help="an already running server: health checks only")
    a = ap.parse_args()
    if bool(a.peer) == bool(a.target):
        ap.error("give --peer or --target")
    print("grpcio", grpc.__version__)
    if a.target:
        return run_checks(HEALTH_CHECKS, a.target, None)
    d = tempfile.mkdtemp(prefix="sy-interop-")
    sock = os.path.join(d, "peer.sock")
    peer = Peer(a.peer, ["unix:" + sock, "127.0.0.1:0"])
    failed = 0
    for target in ("unix:" + sock, "127.0.0.1:%d" % peer.port):
        print("== %s" % target)
        failed += run_checks(HEALTH_CHECKS + PEER_CHECKS, target, peer)
    # Graceful stop: watchers hear NOT_SERVING, the process exits 0, the socket goes.
    h = health_pb()
    with channel("unix:" + sock) as ch:
        it = watch(ch)
        assert next(it).status == h.HealthCheckResponse.SERVING
        t0 = time.monotonic()
        peer.proc.send_signal(15)
        ok = next(it).status == h.HealthCheckResponse.NOT_SERVING
        rc = peer.proc.wait(timeout=10)
        took = time.monotonic() - t0
    drained = ok and rc == 0 and took < 5 and not os.path.exists(sock)
    print("%s sigterm_drain (NOT_SERVING heard: %s, exit %s, %.2fs, socket removed: %s)" % (
        "PASS" if drained else "FAIL", ok, rc, took, not os.path.exists(sock)))
    return failed + (0 if drained else 1)


if __name__ == "__main__":
    sys.exit(main())
