#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/steer.sh — what steering costs, measured against a direct connection in the
# same run. Both paths hit the same redis-server (the target): "steered" dials the
# legacy port from inside the attached cgroup at ratio 100 % and is rewritten by
# connect4 (and observed: every command parsed, mirror off); "direct" dials the target
# port from outside the cgroup.
#   1. redis-benchmark SET and GET, 50 clients, non-pipelined and -P 16: throughput
#      ratio and p99 ratio steered/direct, each beside its goal (issue 19).
#   2. connect()+close() cost: outside the cgroup (no program), inside to a port that is
#      no route (one lookup), inside to the legacy port (rewritten); added ns vs outside.
#      Wall time is at the mercy of the machine's load; beside it, the programs' own time
#      per connection (kernel.bpf_stats_enabled: connect4 + the egress and ingress runs
#      on its SYN, ACK and RST), which is not. It leaves out what the kernel does for the
#      programs outside them (freeing socket storage at close, for one).
# Every measurement runs once per round, rounds interleaved (ROUNDS, default 5), and
# the median over the rounds is printed: this machine's noise is about ±4 %.
#
# With BASE=DIR (a build folder holding another switchyardd, e.g. main's), a second
# daemon from it runs on its own cgroup and bpffs folder, and every steered
# measurement is taken with both builds in the same round, back to back.
# PART=1 or PART=2 runs one part only.
# Usage: [OUT=build] [BASE=DIR] [ROUNDS=5] [REQUESTS=100000] [CONNECTS=20000] bench/steer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-100000}
CONNECTS=${CONNECTS:-20000}
BASE=${BASE:-}
PART=${PART:-all}

bench_init steer
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
builds=(this)
declare -A cgof=([this]="$CG")
if [ -n "$BASE" ]; then
	bench_base_daemon "$WORK/spec.yaml"
	builds+=(base)
	cgof[base]="$CG_B"
fi
sleep 1.5 # first health check marks the target healthy
in_cgroup() { sh -c "echo \$\$ > $1/cgroup.procs; exec $2"; }
# Sanity: the steered path really reaches the target.
for b in "${builds[@]}"; do
	served=$(in_cgroup "${cgof[$b]}" "redis-cli -p $LPORT config get port" | tail -1)
	[ "$served" = "$TPORT" ] || { echo "bench: steering not active in $b (served by $served)" >&2; exit 1; }
done
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b ? a / b : 0 }'; }
# "ok" or "MISSED" for a value against a goal: ge|le limit
verdict() { awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN { print ((op == "ge" ? v >= g : v <= g) ? "ok" : "MISSED") }'; }

if [ "$PART" != 2 ]; then
	# One redis-benchmark run of SET and GET → lines "SET rps p99" and "GET rps p99"
	# (csv: test,rps,avg,min,p50,p95,p99,max). Pipelined runs are 10x longer so that
	# they last long enough to measure.
	rb() { # cgroup|"" port pipeline
		local n=$REQUESTS
		[ "$3" -gt 1 ] && n=$((REQUESTS * 10))
		local cmd="redis-benchmark -p $2 -n $n -c 50 -P $3 -t set,get --csv -q"
		if [ -n "$1" ]; then in_cgroup "$1" "$cmd"; else $cmd; fi |
			awk -F'"' '/^"(SET|GET)"/ { print $2, $4, $14 }'
	}
	for P in 1 16; do
		for r in $(seq "$ROUNDS"); do
			rb "" "$TPORT" "$P" >> "$WORK/tp-direct-$P"
			for b in "${builds[@]}"; do rb "${cgof[$b]}" "$LPORT" "$P" >> "$WORK/tp-$b-$P"; done
		done
	done
	col() { awk -v t="$2" -v c="$3" '$1 == t { print $c }' "$1" | median; }
	printf "%-26s %10s %8s %10s %8s %7s %6s %7s %6s %s\n" "50 clients, $ROUNDS rounds" "direct rps" "p99 ms" \
		"steer rps" "p99 ms" ratio goal "p99 x" goal ""
	for t in SET GET; do
		for P in 1 16; do
			drps=$(col "$WORK/tp-direct-$P" "$t" 2); dp99=$(col "$WORK/tp-direct-$P" "$t" 3)
			goal=0.98
			[ "$P" = 16 ] && goal=0.97
			for b in "${builds[@]}"; do
				srps=$(col "$WORK/tp-$b-$P" "$t" 2); sp99=$(col "$WORK/tp-$b-$P" "$t" 3)
				tr=$(ratio "$srps" "$drps"); pr=$(ratio "$sp99" "$dp99")
				printf "%-26s %10.0f %8.3f %10.0f %8.3f %7s %6s %7s %6s %s %s\n" "$t -P $P ($b)" "$drps" "$dp99" \
					"$srps" "$sp99" "$tr" "≥$goal" "$pr" "≤1.05" "$(verdict "$tr" ge "$goal")" \
					"$(verdict "$pr" le 1.05)"
			done
		done
	done
	echo
fi

if [ "$PART" != 1 ]; then
	declare -A fsof=([this]="$BPFFS" [base]="${BPFFS_B:-}")
	bench_stats_on
	# total run_time_ns of the programs a connection runs, of one build
	progns() {
		for p in sy_connect4 sy_egress sy_ingress sy_getpeername4; do
			bpftool -j prog show pinned "$1/progs/$p" 2>/dev/null
		done | /usr/bin/python3 -c 'import json, sys
print(sum(json.loads(l).get("run_time_ns", 0) for l in sys.stdin if l.strip()))'
	}
	# one connect bench run, appending wall ns to $3 and program ns per connection to $3.prog
	cb() { # build port out-file
		local t0 t1
		t0=$(progns "${fsof[$1]}")
		"$WORK/connect_bench" 127.0.0.1 "$2" "$CONNECTS" "${cgof[$1]}" >> "$3"
		t1=$(progns "${fsof[$1]}")
		echo $(((t1 - t0) / (5 * CONNECTS))) >> "$3.prog"
	}
	for r in $(seq "$ROUNDS"); do
		"$WORK/connect_bench" 127.0.0.1 "$TPORT" "$CONNECTS" >> "$WORK/c_out"
		for b in "${builds[@]}"; do
			cb "$b" "$OPORT" "$WORK/c_miss_$b"
			cb "$b" "$LPORT" "$WORK/c_hit_$b"
		done
	done
	out=$(median < "$WORK/c_out")
	printf "%-48s %8s %9s %6s %9s %9s\n" "connect()+close(), median of $ROUNDS x 5 x $CONNECTS" ns "added ns" goal \
		"prog ns" "vs miss"
	printf "%-48s %8d %9s\n" "outside the cgroup (no program)" "$out" -
	for b in "${builds[@]}"; do
		miss=$(median < "$WORK/c_miss_$b"); hit=$(median < "$WORK/c_hit_$b")
		pmiss=$(median < "$WORK/c_miss_$b.prog"); phit=$(median < "$WORK/c_hit_$b.prog")
		printf "%-48s %8d %9d %6s %9d\n" "inside, not a route (one map lookup) ($b)" "$miss" "$((miss - out))" "" \
			"$pmiss"
		printf "%-48s %8d %9d %6s %9d %9d %s\n" "inside, legacy endpoint (rewritten) ($b)" "$hit" "$((hit - out))" \
			"≤1000" "$phit" "$((phit - pmiss))" \
			"$([ "$hit" -ge "$out" ] && verdict "$((hit - out))" le 1000 || echo "noise: below outside")"
	done
	echo "rounds (ns): outside $(tr '\n' ' ' < "$WORK/c_out")"
	for b in "${builds[@]}"; do echo "rounds (ns): rewritten ($b) $(tr '\n' ' ' < "$WORK/c_hit_$b")"; done
fi
