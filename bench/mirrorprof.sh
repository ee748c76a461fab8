#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/mirrorprof.sh — where the agent's time goes while it replays: one redis-benchmark
# SET run (50 clients, -P $P, $N requests over a keyspace of $R keys) through a migration
# mirrored forward, then the agent's CPU per mirrored write (/proc/PID/stat), the mirror's
# counters and lag. MODE=perf records the agent for 4 s (perf record -g, report in
# $WORK/perf.data with BENCH_KEEP=1); MODE=strace counts its syscalls for 4 s.
#   R=100000 (default): about 4 writes in 10 are conflicts (two connections, one key,
#   within 1 s) and 1 in 8 is copied; R=100000000: nearly none.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
MODE=${MODE:-cpu}
N=${N:-500000}
P=${P:-4}
R=${R:-100000}

bench_init mprof
bench_redis LPORT TPORT
bench_spec forward "mirror_queue: 100000"
bench_daemon "$WORK/spec.yaml"
sleep 1.5
ticks() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }

c0=$(ticks)
in_cg "redis-benchmark -p $LPORT -n $N -c 50 -P $P -t set -r $R --csv -q" > "$WORK/rb" &
RB=$!
sleep 1
case $MODE in
perf) perf record -g -o "$WORK/perf.data" -p "$DPID" -- sleep 4 2>/dev/null
	perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort dso,sym 2>/dev/null |
		grep '%' | head -25 || true ;; # head closing the pipe early is no failure
strace) timeout -s INT 4 strace -c -f -p "$DPID" -o "$WORK/strace.txt" || true
	head -9 "$WORK/strace.txt" ;;
esac
wait $RB
for _ in $(seq 1200); do
	read -r q d < <(bench_mstat queued dirty)
	[ "$q" = 0 ] && [ "$d" = 0 ] && break
	sleep 0.05
done
c1=$(ticks)
read -r mir drop conf rep p50 p99 < <(bench_mstat mirrored dropped conflicts repaired lagP50Us lagP99Us)
printf "client %s rps; mirrored %s, dropped %s, conflicts %s, copied %s; lag p50 %s us, p99 %s us;" \
	"$(awk -F'"' '/^"SET"/ { print $4 }' "$WORK/rb")" "$mir" "$drop" "$conf" "$rep" "$p50" "$p99"
printf " agent CPU %d ns per mirrored write\n" $(((c1 - c0) * 1000000000 / $(getconf CLK_TCK) / (mir > 0 ? mir : 1)))
