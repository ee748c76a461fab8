#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/observe.sh — the agent's side of observation, in one run:
#   1. ring-buffer events drained per second with 0 lost: every GET of a -P 16
#      redis-benchmark sampled (sample_reads: 1), so each command is one record; the
#      rate is records drained / wall time, and / agent CPU time (what one core could
#      drain). Goal (issue 5): >= 1 M/s.
#   2. agent CPU and memory under load with MIGS (10) migrations (mirror forward, 1-in-100
#      read sampling): CPU %, VmRSS and VmHWM, in ROUNDS fresh agents, and the median
#      peak against its goal: RSS <= 32 MiB (issue 19).
# (Client throughput steered+observed vs direct is bench/steer.sh.)
# Usage: [OUT=build] [MIGS=10] [ROUNDS=5] [LOAD_N=500000] [PART=2] bench/observe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

bench_init obench
bench_redis LPORT TPORT
ROUNDS=${ROUNDS:-5} # part 2: fresh agents, median
LOAD_N=${LOAD_N:-500000}
MIGS=${MIGS:-10} # migrations in part 2: "bench" and MIGS-1 idle ones (ports nobody serves)
spec() { # mirror sample_reads [extra migrations]
	bench_spec "$1" "sample_reads: $2"
	for i in $(seq 2 "${3:-1}"); do
		cat >> "$WORK/spec.yaml" <<YAML
  - name: idle$i
    legacy: ["127.0.0.1:$((LPORT + 2 * i + 1000))"]
    target: ["127.0.0.1:$((LPORT + 2 * i + 1001))"]
    ratio: 0%
    mirror: forward
YAML
	done
}
spec off 1
bench_daemon "$WORK/spec.yaml"
sleep 1
fresh() { $SYCTL delete bench --force >/dev/null 2>&1 || true; $SYCTL apply -f "$WORK/spec.yaml" >/dev/null; sleep 0.3; }
cpu_s() { awk '{ print ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$DPID/stat"; }
get() { # python expression over m (the migration as JSON)
	$SYCTL -o json get bench | /usr/bin/python3 -c 'import json, sys; m = json.load(sys.stdin); print('"$1"')'
}

redis-cli -p "$LPORT" set key:000000000001 v >/dev/null
# PART=2: memory only, in a fresh agent (part 1's 3 M records leave the heap grown: what
# VmRSS then shows is the allocator's high-water mark, not what 10 migrations need)
if [ "${PART:-all}" != 2 ]; then
echo "== 1. ring-buffer events: every GET sampled (sample_reads: 1), redis-benchmark -c 50 -P 16"
fresh
c0=$(cpu_s); t0=$(date +%s.%N)
in_cg redis-benchmark -p "$LPORT" -n 3000000 -c 50 -P 16 -t get -q >/dev/null
t1=$(date +%s.%N); c1=$(cpu_s)
sleep 0.2
read -r sampled drained lost < <(get '"%d %d %d" % (sum(int(s.get("sampled", 0)) for s in m["sides"]), int(m.get("events", {}).get("readKeys", 0)), sum(int(s.get("eventsLost", 0)) for s in m["sides"]))')
wall=$(echo "$t1 - $t0" | bc -l); cpu=$(echo "$c1 - $c0" | bc -l)
printf "records sampled %s, drained %s, lost %s in %.2f s\n" "$sampled" "$drained" "$lost" "$wall"
printf "drained per second: %.0f (wall clock); agent CPU meanwhile %.2f s\n" "$(echo "$drained / $wall" | bc -l)" "$cpu"

fi
echo
echo "== 2. agent under load ($MIGS migrations): mirror forward, 1-in-100 read sampling, $ROUNDS fresh agents"
# Each round a fresh agent (pins and state removed): RSS is what the start and the load
# touch, not what an earlier round left in the allocator.
spec forward 100 "$MIGS"
: > "$WORK/rounds"
for r in $(seq "$ROUNDS"); do
	if [ "$r" -gt 1 ] || [ "${PART:-all}" != 2 ]; then
		kill "$DPID"
		wait "$DPID" 2>/dev/null || true
		"$OUT/switchyardd" --uninstall --bpffs "$BPFFS" >/dev/null 2>&1 || true
		rm -rf "$WORK/state" "$WORK/sy.sock"
		bench_daemon "$WORK/spec.yaml"
		sleep 1
	fi
	fresh
	c0=$(cpu_s); t0=$(date +%s.%N)
	in_cg redis-benchmark -p "$LPORT" -n "$LOAD_N" -c 4 -P 1 -t set,get -r 100000 -q >/dev/null &
	LP=$!
	peak=0
	while kill -0 "$LP" 2>/dev/null; do
		rss=$(awk '/VmRSS/ { print $2 }' "/proc/$DPID/status")
		[ "$rss" -gt "$peak" ] && peak=$rss
		sleep 0.2
	done
	wait "$LP" || true
	t1=$(date +%s.%N); c1=$(cpu_s)
	ops=$(get 'sum(int(s.get("reads", 0)) + int(s.get("writes", 0)) for s in m["sides"])')
	hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$DPID/status")
	anon=$(awk '/RssAnon/ { print $2 }' "/proc/$DPID/status")
	shm=$(awk '/RssShmem/ { print $2 }' "/proc/$DPID/status")
	file=$(awk '/RssFile/ { print $2 }' "/proc/$DPID/status")
	wall=$(echo "$t1 - $t0" | bc -l)
	printf "round %d: ops observed %s in %.1f s = %.0f ops/s; agent CPU %.1f %% of one core\n" "$r" \
		"$ops" "$wall" "$(echo "$ops / $wall" | bc -l)" "$(echo "100 * ($c1 - $c0) / $wall" | bc -l)"
	printf "round %d: RSS peak %d KiB (VmHWM %d KiB): anonymous %d KiB, file-backed %d KiB, shmem %d KiB\n" \
		"$r" "$peak" "$hwm" "$anon" "$file" "$shm"
	echo "$peak" >> "$WORK/rounds"
done
med=$(sort -g "$WORK/rounds" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
printf "%-58s %10s %12s\n" "" "median" "goal"
printf "%-58s %6.1f MiB %12s %s\n" "RSS peak, $MIGS migrations under load (median of $ROUNDS)" \
	"$(echo "$med / 1024" | bc -l)" "<= 32 MiB" "$([ "$med" -le 32768 ] && echo met || echo MISSED)"
echo "(file-backed includes the ring buffer: its data area is mapped twice, so twice SY_EV_RING_BYTES of"
echo " pages the kernel owns at most, plus the binary and its libraries)"
