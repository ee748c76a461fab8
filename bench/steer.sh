#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/steer.sh — what steering costs, measured against a direct connection in the
# same run. Both paths hit the same redis-server (the target): "steered" dials the
# legacy port from inside the attached cgroup at ratio 100 % and is rewritten by
# connect4; "direct" dials the target port from outside the cgroup.
#   1. redis-benchmark SET/GET throughput and p99, non-pipelined and -P 16, rounds
#      interleaved, medians reported; ratio steered/direct.
#   2. connect()+close() cost: outside the cgroup (no program), inside to a port that is
#      no route (one lookup), inside to the legacy port (rewrite).
# Goals (issue 3): throughput ratio >= 0.98, p99 <= 1.05x direct, <= 1 us per connect.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-100000}
CONNECTS=${CONNECTS:-20000}

bench_init bench
cc -O2 -o "$WORK/connect_bench" bench/connect_bench.c
bench_redis LPORT TPORT OPORT
cat > "$WORK/spec.yaml" <<YAML
migrations:
  - name: bench
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    ratio: 100%
    mirror: off     # steering and observation only: bench/mirror.sh measures the mirror
YAML
bench_daemon "$WORK/spec.yaml"
sleep 1.5 # first health check marks the target healthy
# Sanity: the steered path really reaches the target.
served=$(in_cg redis-cli -p "$LPORT" config get port | tail -1)
[ "$served" = "$TPORT" ] || { echo "bench: steering not active (served by $served)" >&2; exit 1; }

# One redis-benchmark run → "rps p99" of its SET line (csv: test,rps,avg,min,p50,p95,p99,max).
rb() { # where(in|out) port pipeline
	# Pipelined runs are 10x longer so that they last long enough to measure.
	local n=$REQUESTS
	[ "$3" -gt 1 ] && n=$((REQUESTS * 10))
	local cmd="redis-benchmark -p $2 -n $n -c 50 -P $3 -t set --csv -q"
	if [ "$1" = in ]; then
		in_cg "$cmd"
	else
		$cmd
	fi | awk -F'"' '/^"SET"/ { print $4, $14 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf "%-22s %12s %10s %12s %10s %8s %8s\n" "redis-benchmark SET" "direct rps" "p99 ms" "steered rps" "p99 ms" "ratio" "p99 x"
for P in 1 16; do
	: > "$WORK/d"; : > "$WORK/s"
	for r in $(seq "$ROUNDS"); do
		rb out "$TPORT" "$P" >> "$WORK/d"
		rb in "$LPORT" "$P" >> "$WORK/s"
	done
	drps=$(awk '{print $1}' "$WORK/d" | median); dp99=$(awk '{print $2}' "$WORK/d" | median)
	srps=$(awk '{print $1}' "$WORK/s" | median); sp99=$(awk '{print $2}' "$WORK/s" | median)
	printf "%-22s %12.0f %10.3f %12.0f %10.3f %8.3f %8.3f\n" "50 clients, -P $P" "$drps" "$dp99" "$srps" "$sp99" \
		"$(awk -v a="$srps" -v b="$drps" 'BEGIN{print a/b}')" "$(awk -v a="$sp99" -v b="$dp99" 'BEGIN{print a/b}')"
done

echo
# Interleaved: each of the three cases runs once per round, medians over the rounds.
: > "$WORK/c_out"; : > "$WORK/c_miss"; : > "$WORK/c_hit"
for r in $(seq "$ROUNDS"); do
	"$WORK/connect_bench" 127.0.0.1 "$TPORT" "$CONNECTS" >> "$WORK/c_out"
	"$WORK/connect_bench" 127.0.0.1 "$OPORT" "$CONNECTS" "$CG" >> "$WORK/c_miss"
	"$WORK/connect_bench" 127.0.0.1 "$LPORT" "$CONNECTS" "$CG" >> "$WORK/c_hit"
done
out=$(median < "$WORK/c_out"); miss=$(median < "$WORK/c_miss"); hit=$(median < "$WORK/c_hit")
printf "%-44s %10s %10s\n" "connect()+close(), median of $ROUNDS x 5 x $CONNECTS" "ns" "added ns"
printf "%-44s %10d %10s\n" "outside the cgroup (no program)" "$out" "-"
printf "%-44s %10d %10d\n" "inside, not a route (one map lookup)" "$miss" "$((miss - out))"
printf "%-44s %10d %10d\n" "inside, legacy endpoint (rewritten)" "$hit" "$((hit - out))"
