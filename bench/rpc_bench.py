#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/rpc_bench.py — unary gRPC calls per second against switchyardd (Status, over
its unix socket), driven by grpcio, compared in the same run with grpcio's own server
answering the same StatusResponse (the baseline: what the client side can drive).

usage: rpc_bench.py SOCKET [SECONDS]"""
import concurrent.futures
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
import grpc  # noqa: E402
from grpc_util import channel, pb  # noqa: E402

PATH = "/switchyard.v1.Control/Status"


def drive(target, seconds, inflight=64):
    c = pb("switchyard.v1.control")
    with channel(target) as ch:
        fn = ch.unary_unary(PATH, request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=c.StatusResponse.FromString)
        fn(c.StatusRequest(), timeout=5)  # warm up the connection
        done = 0
        lock = threading.Lock()
        sem = threading.Semaphore(inflight)
        end = time.monotonic() + seconds
        t0 = time.monotonic()

        def finished(f):
            nonlocal done
            f.result()
            with lock:
                done += 1
            sem.release()

        while time.monotonic() < end:
            sem.acquire()
            fn.future(c.StatusRequest(), timeout=10).add_done_callback(finished)
        for _ in range(inflight):
            sem.acquire()
        return done / (time.monotonic() - t0)


def grpcio_baseline(seconds):
    c = pb("switchyard.v1.control")
    resp = c.StatusResponse(version="0.1.0", cgroup="/sys/fs/cgroup/x", bpffs="/sys/fs/bpf/x", migrations=1)
    h = grpc.unary_unary_rpc_method_handler(lambda req, ctx: resp, c.StatusRequest.FromString,
                                            lambda m: m.SerializeToString())
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("switchyard.v1.Control",
                                                                          {"Status": h}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        return drive("127.0.0.1:%d" % port, seconds)
    finally:
        server.stop(0)


def main():
    sock = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5
    ours, base = [], []
    for _ in range(3):  # interleaved rounds, medians
        ours.append(drive("unix:" + sock, seconds))
        base.append(grpcio_baseline(seconds))
    ours.sort()
    base.sort()
    print("%-44s %12s" % ("unary Status calls/s (grpcio client, 64 in flight)", "median of 3"))
    print("%-44s %12.0f" % ("switchyardd (nghttp2 + protobuf-c)", ours[1]))
    print("%-44s %12.0f" % ("grpcio's own Python server (baseline)", base[1]))
    print("%-44s %12.2f" % ("ratio switchyardd / baseline", ours[1] / base[1]))


if __name__ == "__main__":
    main()
