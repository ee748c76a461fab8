#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/sse.sh — what 200 Server-Sent Events clients cost the agent, in one run: its
# CPU (% of one core), RSS, threads, /api/v1/status time and the forward mirror lag
# p99, with no client (before and after: the baseline), 200 clients on
# /api/v1/events and 200 on /api/v1/watch (1 s). All rounds run the same churn: a
# ratio change 5 times a second, and ~500 writes/s mirrored to the target.
#   CLIENTS=200 SECONDS_PER_ROUND=10 bench/sse.sh     (BENCH_KEEP=1 keeps the work folder)
# Measured here (2 cores shared): no client 2.1 % of a core and 44 MiB RSS; 200 events
# clients +4.5 % and +12.5 MiB (a thread each: 203 threads); 200 watch clients +3.0 %
# and +14.7 MiB; /api/v1/status stays ~1-2 ms; mirror lag p99 within one log2 bucket.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CLIENTS=${CLIENTS:-200}

bench_init ssebench
bench_redis LPORT TPORT
cat >"$WORK/spec.yaml" <<YAML
migrations:
  - name: bench
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    ratio: 10%
    mirror: forward
YAML
HPORT=$(port)
bench_daemon "$WORK/spec.yaml" --http "127.0.0.1:$HPORT" --http-max-conns-per-ip $((CLIENTS + 16)) \
	--log-level ${LOG_LEVEL:-warning}
until /usr/bin/python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$HPORT/api/v1/status')" \
	2>/dev/null; do sleep 0.1; done
# the workload: ~500 SETs/s from the benchmark's cgroup, so the mirror has work
cat >"$WORK/load.py" <<PY
import time, redis
r = redis.Redis(port=$LPORT)
i = 0
while True:
    p = r.pipeline(transaction=False)
    for _ in range(10):
        p.set("k:%d" % (i % 10000), i)
        i += 1
    p.execute()
    time.sleep(0.02)
PY
in_cg /usr/bin/python3 "$WORK/load.py" 2>"$WORK/load.log" &
pids+=($!)
sleep 1
echo "== switchyardd with 0 and $CLIENTS SSE clients (2 cores shared by the clients, the servers and the agent)"
/usr/bin/python3 bench/sse_bench.py "$HPORT" "$WORK/sy.sock" "$DPID" bench "$CLIENTS" "${SECONDS_PER_ROUND:-10}"
