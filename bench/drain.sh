#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/drain.sh — how fast a drain (rollback --drain) empties the target: CLIENTS
# idle connections dial the legacy port from inside the attached cgroup at ratio 100 %
# (so they sit on the target), then one drain of the target side runs through
# $(OUT)/tools/sy_drain (sy_drain_side, agent/kernel/drain.h). Per round:
#   drain call   wall time of sy_drain_side (load the iter/tcp program, walk, close),
#                and of that the walk over the TCP sockets (with the aborts) alone
#   empty        from the start of the drain until the target's CLIENT LIST holds
#                none of the clients (polled every ~0.5 ms): what an operator waits for
#   tool         wall time of the whole sy_drain process (exec, open pins, drain)
# Medians over ROUNDS rounds, fresh connections each round.
# Goal (drain issue): empty <= 1 s for 200 clients.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-200}

bench_init drain
bench_redis LPORT TPORT
cat > "$WORK/spec.yaml" <<YAML
migrations:
  - name: bench
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    ratio: 100%
    mirror: off     # only the connections matter here
YAML
bench_daemon "$WORK/spec.yaml"
sleep 1.5 # first health check marks the target healthy
served=$(in_cg redis-cli -p "$LPORT" config get port | tail -1)
[ "$served" = "$TPORT" ] || { echo "bench: steering not active (served by $served)" >&2; exit 1; }

# The driver owns its client processes (started in $CG, killed before it returns).
/usr/bin/python3 - "$OUT/tools/sy_drain" "$BPFFS" "$CG" "$LPORT" "$TPORT" "$CLIENTS" "$ROUNDS" <<'PY'
import json, socket, statistics, subprocess, sys, time

tool, bpffs, cg, lport, tport, n, rounds = sys.argv[1:4] + [int(a) for a in sys.argv[4:8]]

HOLD = r"""
import socket, sys, time
socks = []
for i in range(int(sys.argv[2])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    name = b"bench-%d" % i
    s.sendall(b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$%d\r\n%s\r\n" % (len(name), name))
    assert s.recv(16) == b"+OK\r\n"
    socks.append(s)
print("ready", flush=True)
sys.stdin.read()  # until the driver closes our stdin
"""

def client_names(sock):
    """CLIENT LIST of the target over one raw connection (made outside the cgroup)."""
    sock.sendall(b"*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    head, rest = buf.split(b"\r\n", 1)
    size = int(head[1:])
    while len(rest) < size + 2:
        rest += sock.recv(65536)
    return rest[:size].count(b" name=bench-")

mon = socket.create_connection(("127.0.0.1", tport))
call, walk, empty, whole, examined = [], [], [], [], []
for r in range(rounds):
    h = subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg,
                          "/usr/bin/python3", "-c", HOLD, str(lport), str(n)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert h.stdout.readline() == "ready\n", "clients failed"
        on_target = client_names(mon)
        assert on_target == n, "%d of %d clients on target" % (on_target, n)
        t0 = time.monotonic()
        p = subprocess.Popen([tool, "--bpffs", bpffs, "--endpoint", "127.0.0.1:%d" % lport,
                              "--side", "target"], stdout=subprocess.PIPE, text=True)
        while client_names(mon):
            time.sleep(0.0005)
        t1 = time.monotonic()
        out = p.communicate()[0]
        t2 = time.monotonic()
        res = json.loads(out)
        assert p.returncode == 0 and res["destroyed"] == n and res["failed"] == 0, out
        call.append(res["elapsed_us"] / 1000.0)
        walk.append(res["walk_us"] / 1000.0)
        empty.append((t1 - t0) * 1000.0)
        whole.append((t2 - t0) * 1000.0)
        examined.append(res["examined"])
    finally:
        h.stdin.close()
        h.wait()

med = statistics.median
print("drain of %d idle target clients, median of %d rounds (%d TCP sockets walked)"
      % (n, rounds, med(examined)))
print("%-44s %10s %10s %10s" % ("", "median ms", "min ms", "max ms"))
for what, v in (("sy_drain_side (load, walk, abort, close)", call),
                ("  of which the walk and the aborts", walk),
                ("start of drain → none left in CLIENT LIST", empty),
                ("whole sy_drain process", whole)):
    print("%-44s %10.2f %10.2f %10.2f" % (what, med(v), min(v), max(v)))
ok = med(empty) <= 1000.0
print("goal: empty <= 1000 ms: %s" % ("met" if ok else "MISSED"))
sys.exit(0 if ok else 1)
PY
