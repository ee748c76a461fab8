#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/verify.sh — verification at full speed, in one run:
#   1. audit keys/s over both sides (200 000 keys of six types on each side);
#   2. backfill keys/s and MB/s (target emptied first), unbounded rate;
#   3. client throughput cost of dual reads at 1-in-100 sampling: redis-benchmark GET
#      inside the cgroup with sample_reads 0 and 100, rounds interleaved.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
KEYS=${KEYS:-200000}
ROUNDS=${ROUNDS:-3}

bench_init vbench
bench_redis LPORT TPORT
spec() { # sample_reads
	bench_spec off "sample_reads: $1"
}
spec 0
bench_daemon "$WORK/spec.yaml"
sleep 1
fill() {
	/usr/bin/python3 - "$1" "$KEYS" <<'PY'
import sys, redis
r = redis.Redis(port=int(sys.argv[1])); n = int(sys.argv[2]) // 6
p = r.pipeline(transaction=False)
for i in range(n):
    p.set("s:%d" % i, "v" * 100); p.hset("h:%d" % i, mapping={"a": i, "b": "x" * 50})
    p.rpush("l:%d" % i, 1, 2, 3); p.sadd("e:%d" % i, "a", "b", i); p.zadd("z:%d" % i, {"a": 1, "b": i})
    p.xadd("x:%d" % i, {"f": i}, id="1-1")
    if i % 2000 == 1999:
        p.execute()
p.execute()
PY
}
json() { /usr/bin/python3 -c 'import json, sys; m = json.load(sys.stdin); print('"$1"')'; }
fill "$LPORT"
fill "$TPORT"

echo "== 1. audit at full speed"
$SYCTL -o json verify bench --rate 10000000 >"$WORK/a.json"
json '"%s: %s keys in %.2f s = %.0f keys/s, drift %d" % (m["state"], m["scanned"], (int(m["finishedUnixMs"]) - int(m["startedUnixMs"])) / 1000, float(m["keysPerS"]), sum(int(m.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")))' <"$WORK/a.json"

echo
echo "== 2. backfill at full speed (target emptied)"
redis-cli -p "$TPORT" flushall >/dev/null
t0=$(date +%s.%N)
$SYCTL -o json backfill bench --follow >"$WORK/b.json"
t1=$(date +%s.%N)
json '"%s: %s keys, %.1f MB" % (m["state"], m["copied"], int(m.get("bytes", 0)) / 1e6)' <"$WORK/b.json"
printf "%.0f keys/s, %.1f MB/s (wall clock, start to done)\n" \
	"$(json 'int(m["copied"])' <"$WORK/b.json" | awk -v s="$(echo "$t1 - $t0" | bc -l)" '{ print $1 / s }')" \
	"$(json 'int(m.get("bytes", 0))' <"$WORK/b.json" | awk -v s="$(echo "$t1 - $t0" | bc -l)" '{ print $1 / s / 1e6 }')"

echo
echo "== 3. client cost of dual reads (redis-benchmark GET, 50 clients, median of $ROUNDS)"
rb() { in_cg "redis-benchmark -p $LPORT -n 200000 -c 50 -t get -r $((KEYS / 6)) --csv -q" | awk -F'"' '/^"GET"/ { print $4 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
: >"$WORK/off"; : >"$WORK/on"
for r in $(seq "$ROUNDS"); do
	spec 0; $SYCTL apply -f "$WORK/spec.yaml" >/dev/null; rb >>"$WORK/off"
	spec 100; $SYCTL apply -f "$WORK/spec.yaml" >/dev/null; rb >>"$WORK/on"
done
off=$(median <"$WORK/off"); on=$(median <"$WORK/on")
printf "sampling off %.0f rps, 1-in-100 %.0f rps, ratio %.3f\n" "$off" "$on" "$(echo "$on / $off" | bc -l)"
$SYCTL -o json verify bench --report | json '"dual reads: %s compared, %s drifted" % (m.get("dualChecked", 0), m.get("dualDrift", 0))'
