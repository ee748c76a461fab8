#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/progcost.sh — what the observe programs cost per packet: kernel.bpf_stats_enabled
# run_time_ns / run_cnt of sy_egress and sy_ingress while redis-benchmark runs steered
# and observed (mirror off), for SET and GET, non-pipelined and -P 16. ns per packet is
# far less noisy than throughput on a loaded machine. ROUNDS rounds, interleaved; the
# median is printed. Usage: [OUT=build] [ROUNDS=5] bench/progcost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-5}
N=${N:-200000}

bench_init pcost
bench_redis LPORT TPORT
cat > "$WORK/spec.yaml" <<YAML
migrations:
  - name: bench
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    ratio: 0%
    mirror: off
YAML
bench_daemon "$WORK/spec.yaml"
sleep 1
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -q -w kernel.bpf_stats_enabled=$old_stats; bench_cleanup' EXIT
sysctl -q -w kernel.bpf_stats_enabled=1

# "run_time_ns run_cnt" of the named program of this daemon (pinned under its bpffs)
prog() {
	bpftool -j prog show pinned "$BPFFS/progs/$1" 2>/dev/null |
		/usr/bin/python3 -c 'import json, sys; p = json.load(sys.stdin); print(p.get("run_time_ns", 0), p.get("run_cnt", 0))' ||
		echo 0 0
}

declare -A res
for r in $(seq "$ROUNDS"); do
	for t in set get; do
		for P in 1 16; do
			read -r e0 ec0 <<<"$(prog sy_egress)"
			read -r i0 ic0 <<<"$(prog sy_ingress)"
			in_cg redis-benchmark -p "$LPORT" -n "$N" -c 50 -P "$P" -t "$t" -q >/dev/null
			read -r e1 ec1 <<<"$(prog sy_egress)"
			read -r i1 ic1 <<<"$(prog sy_ingress)"
			res[$t-$P]+="$(( (e1 - e0) / (ec1 - ec0 > 0 ? ec1 - ec0 : 1) )):$(( (i1 - i0) / (ic1 - ic0 > 0 ? ic1 - ic0 : 1) )) "
		done
	done
done
med() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf "%-12s %16s %16s   (ns per packet, median of %d rounds; all: egress:ingress)\n" test egress ingress "$ROUNDS"
for k in set-1 set-16 get-1 get-16; do
	e=$(echo "${res[$k]}" | tr ' ' '\n' | grep . | cut -d: -f1 | tr '\n' ' ' | med)
	i=$(echo "${res[$k]}" | tr ' ' '\n' | grep . | cut -d: -f2 | tr '\n' ' ' | med)
	printf "%-12s %16s %16s   %s\n" "$k" "$e" "$i" "${res[$k]}"
done
