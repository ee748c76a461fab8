#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Our gRPC client against grpcio's server (an independent implementation).

    /usr/bin/python3 check_client.py --peer /tmp/interop/peer [--syctl build/syctl]

Starts a grpcio server in this process (unix socket + 127.0.0.1:0) with
grpc.health.v1.Health/Check and the same /interop.T/* methods peer.c serves, then runs
`peer call …` (rpc_client.c) for each case and checks the JSON line it prints. With
--syctl, `syctl health` is checked against the same server too (sy_rpc_call_sync).
Each check is a function of (ctx) so it can become a pytest test. Exit status: the
number failed."""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent import futures

import grpc

from interop_util import health_pb, run_checks, ser


# ---- the grpcio server ------------------------------------------------------------

def text(s):
    return health_pb().HealthCheckRequest(service=s)


def h_check(req, ctx):
    h = health_pb()
    if req.service not in ("", "switchyard.v1.Control"):
        ctx.abort(grpc.StatusCode.NOT_FOUND, "unknown service %s" % req.service)
    return h.HealthCheckResponse(status=h.HealthCheckResponse.SERVING)


def h_echo(req, ctx):
    if req.service.startswith("gz:"):
        ctx.set_compression(grpc.Compression.Gzip)  # the reply is gzip on the wire
    return req


def h_big(req, ctx):
    return text("x" * int(req.service))


def h_stream(req, ctx):
    for i in range(int(req.service)):
        yield text(str(i))


def h_slow(req, ctx):
    time.sleep(2)
    return req


def h_fail(req, ctx):
    code, msg = req.service.split(" ", 1)
    st = [c for c in grpc.StatusCode if c.value[0] == int(code)][0]
    ctx.abort(st, msg)


def start_server(d):
    h = health_pb()
    server = grpc.server(futures.ThreadPoolExecutor(16))
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(
                h_check, request_deserializer=h.HealthCheckRequest.FromString, response_serializer=ser)}),
        grpc.method_handlers_generic_handler("interop.T", {
            name: (grpc.unary_stream_rpc_method_handler if name == "Stream" else grpc.unary_unary_rpc_method_handler)(
                fn, request_deserializer=h.HealthCheckRequest.FromString, response_serializer=ser)
            for name, fn in (("Echo", h_echo), ("Big", h_big), ("Stream", h_stream), ("Slow", h_slow),
                             ("Fail", h_fail))}),
    ])
    sock = os.path.join(d, "grpcio.sock")
    server.add_insecure_port("unix:" + sock)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, sock, port


# ---- running our client -----------------------------------------------------------

class Ctx:
    def __init__(self, peer, syctl, sock, port):
        self.peer, self.syctl, self.sock, self.port = peer, syctl, sock, port

    def call(self, target, path, arg, *flags):
        t0 = time.monotonic()
        r = subprocess.run([self.peer, "call", target, path, arg] + list(flags), capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        out["elapsed"] = time.monotonic() - t0
        return out

    def targets(self):
        return ["unix:" + self.sock, "unix://" + self.sock, "127.0.0.1:%d" % self.port]


def check_health_on_every_target_form(c):
    for t in c.targets():
        r = c.call(t, "/grpc.health.v1.Health/Check", "", "--health")
        assert r["code"] == 0 and r["msgs"] == ["SERVING"], (t, r)


def check_status_and_message_not_found(c):
    r = c.call(c.targets()[0], "/grpc.health.v1.Health/Check", "nope", "--health")
    assert r["code"] == 5 and r["message"] == "unknown service nope" and r["msgs"] == [], r


def check_unary_echo(c):
    r = c.call(c.targets()[2], "/interop.T/Echo", "hello")
    assert r["code"] == 0 and r["msgs"] == ["hello"], r


def check_gzip_both_ways(c):
    r = c.call(c.targets()[0], "/interop.T/Echo", "gz:hello", "--gzip")  # request and reply gzip
    assert r["code"] == 0 and r["msgs"] == ["gz:hello"], r
    r = c.call(c.targets()[2], "/interop.T/Echo", "gz:plain request, gzip reply")
    assert r["code"] == 0 and r["msgs"] == ["gz:plain request, gzip reply"], r


def check_large_reply_flow_control(c):
    r = c.call(c.targets()[0], "/interop.T/Big", str(3 << 20))
    assert r["code"] == 0 and r["msgs"] == [{"len": 3 << 20}], r


def check_reply_over_limit_resource_exhausted(c):
    r = c.call(c.targets()[0], "/interop.T/Big", str(5 << 20))
    assert r["code"] == 8, r


def check_server_streaming(c):
    r = c.call(c.targets()[0], "/interop.T/Stream", "50")
    assert r["code"] == 0 and r["msgs"] == [str(i) for i in range(50)], r


def check_client_deadline(c):
    r = c.call(c.targets()[0], "/interop.T/Slow", "x", "--timeout", "300")
    assert r["code"] == 4 and r["elapsed"] < 1.5, r


def check_percent_encoded_message(c):
    msg = "ratio: 100% é\n\tdone"
    r = c.call(c.targets()[0], "/interop.T/Fail", "9 " + msg)
    assert r["code"] == 9 and r["message"] == msg, r


def check_unknown_method_unimplemented(c):
    r = c.call(c.targets()[0], "/interop.T/NoSuch", "x")
    assert r["code"] == 12, r


def check_connection_refused_unavailable(c):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = c.call("127.0.0.1:%d" % port, "/interop.T/Echo", "x")
    assert r["code"] == 14 and "Connection refused" in r["message"], r
    r = c.call("unix:/nonexistent/x.sock", "/interop.T/Echo", "x")
    assert r["code"] == 14 and "No such file or directory" in r["message"], r


def check_syctl_health(c):
    if not c.syctl:
        print("     (no --syctl: skipped)")
        return
    r = subprocess.run([c.syctl, "--server", "unix://" + c.sock, "health"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "SERVING", r
    r = subprocess.run([c.syctl, "--server", "unix://" + c.sock, "health", "nope"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "unknown service nope" in r.stderr, r


CHECKS = [
    check_health_on_every_target_form, check_status_and_message_not_found, check_unary_echo,
    check_gzip_both_ways, check_large_reply_flow_control, check_reply_over_limit_resource_exhausted,
    check_server_streaming, check_client_deadline, check_percent_encoded_message,
    check_unknown_method_unimplemented, check_connection_refused_unavailable, check_syctl_health,
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True, help="peer binary built from peer.c")
    ap.add_argument("--syctl", help="build/syctl, to check `syctl health` too")
    a = ap.parse_args()
    print("grpcio", grpc.__version__)
    d = tempfile.mkdtemp(prefix="sy-interop-")
    server, sock, port = start_server(d)
    try:
        return run_checks(CHECKS, Ctx(a.peer, a.syctl, sock, port))
    finally:
        server.stop(0)


if __name__ == "__main__":
    sys.exit(main())
