#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/cutover.sh's driver (Debian's python3-grpcio and python3-redis).

    cutover_bench.py ratio SOCK CGROUP LEGACY_PORT TARGET_PORT ROUNDS
        A prober in CGROUP connects to legacy in a loop and asks each server its port
        (INFO server): every connection's start time and the side it reached. The driver
        flips the ratio 0% <-> 100% with SetRatio, ROUNDS times. Per flip: the SetRatio
        call's time, the time from the call's return to the first connection on the
        new side, and any connection started after the return that reached the old
        side (must be none).

    cutover_bench.py drain SOCK CGROUP LEGACY_PORT TARGET_PORT CLIENTS
        CLIENTS long-lived connections opened on target (the plan at 100%), then
        Cutover(ROLLBACK, drain): the time until target's CLIENT LIST has none left,
        and until every one has reconnected to legacy.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
from grpc_util import channel, pb, unary  # noqa: E402

PROBER = r"""
import os, socket, sys, time
cg, port, out, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
open(os.path.join(cg, "cgroup.procs"), "w").write(str(os.getpid()))
rec = []
while not os.path.exists(stop):
    t0 = time.monotonic_ns()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"INFO server\r\n")
    buf = b""
    while b"tcp_port:" not in buf or not buf.endswith(b"\r\n\r\n"):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    p = int(buf.split(b"tcp_port:")[1].split(b"\r\n")[0])
    rec.append((t0, p))
with open(out, "w") as f:
    for t0, p in rec:
        f.write("%d %d\n" % (t0, p))
"""

HOLDER = r"""
import os, socket, sys, time
cg, port, n, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
open(os.path.join(cg, "cgroup.procs"), "w").write(str(os.getpid()))
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"CLIENT SETNAME bench-%d\r\n" % i)
    s.recv(100)
    socks.append(s)
open(ready, "w").close()
# a client with reconnect: when its connection is aborted, it dials again
alive = list(range(n))
while True:
    for i in list(alive):
        try:
            socks[i].sendall(b"PING\r\n")
            if not socks[i].recv(100):
                raise ConnectionError
        except OSError:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"CLIENT SETNAME bench-%d\r\n" % i)
            s.recv(100)
            socks[i] = s
    time.sleep(0.05)
"""


def ctl(sock):
    return channel("unix:" + sock), pb("switchyard.v1.control"), pb("switchyard.v1.cutover")


def ratio(sock, cg, lport, tport, rounds):
    work = os.path.dirname(sock)
    out, stop = os.path.join(work, "probe.txt"), os.path.join(work, "probe.stop")
    p = subprocess.Popen([sys.executable, "-c", PROBER, cg, str(lport), out, stop])
    ch, c, _ = ctl(sock)
    flips = []
    time.sleep(0.5)
    for i in range(rounds):
        bp = 10000 if i % 2 == 0 else 0
        t0 = time.monotonic_ns()
        unary(ch, "/switchyard.v1.Control/SetRatio", c.SetRatioRequest(name="bench", ratio_bp=bp), c.Migration)
        t1 = time.monotonic_ns()
        flips.append((t0, t1, tport if bp else lport))
        time.sleep(0.2)
    open(stop, "w").close()
    p.wait()
    rec = [tuple(map(int, line.split())) for line in open(out)]
    calls, first, wrong, gaps = [], [], 0, []
    for k, (t0, t1, side) in enumerate(flips):
        end = flips[k + 1][0] if k + 1 < len(flips) else float("inf")
        after = [(t, pt) for t, pt in rec if t1 <= t < end]
        calls.append((t1 - t0) / 1e6)
        wrong += sum(1 for t, pt in after if pt != side)
        on_new = [t for t, pt in after if pt == side]
        if on_new:
            first.append((on_new[0] - t1) / 1e6)
            first_from_call = (on_new[0] - t0) / 1e6
            gaps.append(first_from_call)
    conns = len(rec)
    span = (rec[-1][0] - rec[0][0]) / 1e9 if len(rec) > 1 else 1
    print("connections probed: %d (%.0f/s, one every %.3f ms)" % (conns, conns / span, 1000 * span / max(1, conns)))
    print("SetRatio call (persisted + kernel maps written), ms: median %.3f  p90 %.3f  max %.3f"
          % (statistics.median(calls), sorted(calls)[int(0.9 * len(calls))], max(calls)))
    print("SetRatio call start -> first connection on the new side, ms: median %.3f  max %.3f  (goal <= 1 ms)"
          % (statistics.median(gaps), max(gaps)))
    print("SetRatio return -> first connection on the new side, ms: median %.3f  max %.3f  (the probe's own gap)"
          % (statistics.median(first), max(first)))
    print("connections started after SetRatio returned that reached the old side: %d (must be 0)" % wrong)
    return 0 if wrong == 0 else 1


def drain(sock, cg, lport, tport, n):
    work = os.path.dirname(sock)
    ready = os.path.join(work, "hold.ready")
    ch, c, cu = ctl(sock)
    unary(ch, "/switchyard.v1.Control/Cutover",
          cu.CutoverRequest(name="bench", action=cu.CutoverAction.Value("ACTION_START")), c.Migration)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, cg, str(lport), str(n), ready])
    import redis
    lr, tr = redis.Redis(port=lport), redis.Redis(port=tport)

    def named(r):
        return sum(1 for x in r.client_list() if x.get("name", "").startswith("bench-"))

    while not os.path.exists(ready):
        time.sleep(0.01)
    on_t0 = named(tr)
    t0 = time.monotonic()
    m = unary(ch, "/switchyard.v1.Control/Cutover",
              cu.CutoverRequest(name="bench", action=cu.CutoverAction.Value("ACTION_ROLLBACK"), drain=True),
              c.Migration, timeout=10)
    t_rpc = time.monotonic() - t0
    while named(tr):
        time.sleep(0.001)
    t_gone = time.monotonic() - t0
    while named(lr) < n:
        time.sleep(0.005)
    t_back = time.monotonic() - t0
    p.kill()
    p.wait()
    print("clients on target before: %d of %d; drained by the agent: %d" % (on_t0, n, m.cutover.drained))
    print("rollback --drain call: %.1f ms; target has no client connection after %.1f ms (goal <= 1000 ms); "
          "all %d back on legacy after %.1f ms" % (1000 * t_rpc, 1000 * t_gone, n, 1000 * t_back))
    return 0 if on_t0 == n and t_gone <= 1.0 else 1


if __name__ == "__main__":
    mode, sock, cg, lport, tport, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), \
        int(sys.argv[6])
    sys.exit((ratio if mode == "ratio" else drain)(sock, cg, lport, tport, k))
