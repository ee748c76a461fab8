# SPDX-License-Identifier: Apache-2.0
"""Unary Status calls/s over the unix socket, clear-text TCP and mTLS TCP (see tls.sh),
interleaved rounds, medians; then calls/s with a new connection per call."""
import os
import statistics
import sys
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
from grpc_util import pb  # noqa: E402

work, tls_port, plain_port, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
c = pb("switchyard.v1.control")


def read(name):
    with open(os.path.join(work, name), "rb") as f:
        return f.read()


creds = grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
OPTS = [("grpc.enable_retries", 0)]
DOORS = {
    "unix": lambda: grpc.insecure_channel("unix:" + os.path.join(work, "sy.sock"), options=OPTS),
    "tcp-clear": lambda: grpc.insecure_channel("127.0.0.1:%d" % plain_port, options=OPTS),
    "tcp-mtls": lambda: grpc.secure_channel("127.0.0.1:%d" % tls_port, creds, options=OPTS),
}


def call(ch):
    ch.unary_unary("/switchyard.v1.Control/Status", request_serializer=lambda m: m.SerializeToString(),
                   response_deserializer=c.StatusResponse.FromString)(c.StatusRequest(), timeout=5)


def kept(door):
    with DOORS[door]() as ch:
        call(ch)
        n, end = 0, time.monotonic() + secs
        while time.monotonic() < end:
            call(ch)
            n += 1
    return n / secs


def fresh(door):
    n, end = 0, time.monotonic() + secs
    while time.monotonic() < end:
        with DOORS[door]() as ch:
            call(ch)
        n += 1
    return n / secs


for name, fn in (("one connection", kept), ("a connection per call", fresh)):
    res = {d: [] for d in DOORS}
    for _ in range(3):
        for d in DOORS:
            res[d].append(fn(d))
    base = statistics.median(res["unix"])
    print("Status calls/s, %s (median of 3 rounds of %.0fs):" % (name, secs))
    for d in DOORS:
        m = statistics.median(res[d])
        print("  %-10s %8.0f  (%.2f of unix)" % (d, m, m / base))
