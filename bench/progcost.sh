#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/progcost.sh — what the observe programs cost per packet: kernel.bpf_stats_enabled
# run_time_ns / run_cnt of sy_egress and sy_ingress while redis-benchmark runs steered
# and observed (mirror off), for SET and GET, non-pipelined and -P 16. ns per packet is
# far less noisy than throughput on a loaded machine. ROUNDS rounds, interleaved; the
# median is printed.
#
# With BASE=DIR (a build folder holding another switchyardd, e.g. main's), a second
# daemon from it runs beside this one, on its own cgroup and bpffs folder, and every
# measurement is paired: this build, then the base, back to back on the same server,
# so the machine's load falls on both alike; the ratio this/base is printed.
# MIRROR=forward measures with the capture on (the legacy side's writes copied to the
# ring buffer and replayed by the agent).
# Usage: [OUT=build] [BASE=DIR] [MIRROR=off|forward] [ROUNDS=5] [N=200000] bench/progcost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-5}
N=${N:-200000}
BASE=${BASE:-}

bench_init pcost
bench_redis LPORT TPORT
bench_spec "${MIRROR:-off}"
bench_daemon "$WORK/spec.yaml"
[ -z "$BASE" ] || bench_base_daemon "$WORK/spec.yaml"
sleep 1
bench_stats_on

# "run_time_ns run_cnt" of the named program of a daemon (pinned under its bpffs)
prog() { # bpffs name
	bpftool -j prog show pinned "$1/progs/$2" 2>/dev/null |
		/usr/bin/python3 -c 'import json, sys; p = json.load(sys.stdin); print(p.get("run_time_ns", 0), p.get("run_cnt", 0))' ||
		echo 0 0
}

# one measurement: "egress:ingress" ns per packet
measure() { # cgroup bpffs test pipeline
	local e0 ec0 i0 ic0 e1 ec1 i1 ic1
	read -r e0 ec0 <<<"$(prog "$2" sy_egress)"
	read -r i0 ic0 <<<"$(prog "$2" sy_ingress)"
	sh -c "echo \$\$ > $1/cgroup.procs; exec redis-benchmark -p $LPORT -n $N -c 50 -P $4 -t $3 -q" >/dev/null
	read -r e1 ec1 <<<"$(prog "$2" sy_egress)"
	read -r i1 ic1 <<<"$(prog "$2" sy_ingress)"
	echo "$(((e1 - e0) / (ec1 - ec0 > 0 ? ec1 - ec0 : 1))):$(((i1 - i0) / (ic1 - ic0 > 0 ? ic1 - ic0 : 1)))"
}

declare -A res resb
for r in $(seq "$ROUNDS"); do
	for t in set get; do
		for P in 1 16; do
			res[$t-$P]+="$(measure "$CG" "$BPFFS" "$t" "$P") "
			[ -z "$BASE" ] || resb[$t-$P]+="$(measure "$CG_B" "$BPFFS_B" "$t" "$P") "
		done
	done
done
med() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { echo "$1" | tr ' ' '\n' | grep . | cut -d: -f"$2" | tr '\n' ' ' | med; }
if [ -z "$BASE" ]; then
	printf "%-8s %8s %8s   (ns per packet, median of %d rounds; all: egress:ingress)\n" test egress ingress "$ROUNDS"
	for k in set-1 set-16 get-1 get-16; do
		printf "%-8s %8s %8s   %s\n" "$k" "$(col "${res[$k]}" 1)" "$(col "${res[$k]}" 2)" "${res[$k]}"
	done
	exit 0
fi
printf "%-8s %8s %8s %8s %8s %8s %8s   (ns per packet, medians of %d paired rounds)\n" test egress base ratio \
	ingress base ratio "$ROUNDS"
for k in set-1 set-16 get-1 get-16; do
	e=$(col "${res[$k]}" 1); eb=$(col "${resb[$k]}" 1)
	i=$(col "${res[$k]}" 2); ib=$(col "${resb[$k]}" 2)
	printf "%-8s %8s %8s %8.2f %8s %8s %8.2f\n" "$k" "$e" "$eb" "$(awk -v a="$e" -v b="$eb" 'BEGIN{print b ? a/b : 0}')" \
		"$i" "$ib" "$(awk -v a="$i" -v b="$ib" 'BEGIN{print b ? a/b : 0}')"
done
echo "this: ${res[*]}"
echo "base: ${resb[*]}"
