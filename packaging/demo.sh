#!/bin/bash
# make demo: a local cutover on this machine, start to finish, then everything cleaned up.
# Starts a legacy and a target redis-server on loopback, switchyardd attached to a demo
# cgroup, and a workload of client cgroups that reconnect continuously; walks the
# cutover ratio up in steps and prints, per step, where connections really went (from
# the servers) and what the kernel decided (from the steering counters).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
SY="$OUT/switchyardd"
SYCTL="$OUT/syctl"
STEP_SECONDS=${STEP_SECONDS:-3}
CLIENTS=${CLIENTS:-20}

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (BPF and cgroups)" >&2; exit 1; }
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CGROOT" ] || { echo "demo: no cgroup2 mount in /proc/mounts" >&2; exit 1; }

ID="sy-demo-$$"
WORK=$(mktemp -d "/tmp/$ID.XXXXXX")
CG="$CGROOT/$ID"
BPFFS="/sys/fs/bpf/$ID"
SOCK="$WORK/sy.sock"
pids=()

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
LPORT=$(free_port)
TPORT=$(free_port)

cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	"$SY" --uninstall --bpffs "$BPFFS" >/dev/null 2>&1
	for d in "$CG"/*/; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
	rmdir "$CG" 2>/dev/null
	rm -rf "$WORK"
	echo "demo: cleaned up (processes, cgroups, pins, $WORK)"
}
trap cleanup EXIT

echo "== starting legacy redis on 127.0.0.1:$LPORT and target on 127.0.0.1:$TPORT"
for port in "$LPORT" "$TPORT"; do
	mkdir -p "$WORK/redis-$port"
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis-$port" \
		--logfile "$WORK/redis-$port/log" &
	pids+=($!)
done
for port in "$LPORT" "$TPORT"; do
	until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
done

mkdir "$CG"
cat > "$WORK/spec.yaml" <<YAML
migrations:
  - name: demo
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    client: cgroup
    ratio: 0%
YAML
echo "== switchyardd attached to $CG"
"$SY" --config "$WORK/spec.yaml" --cgroup "$CG" --bpffs "$BPFFS" --state-dir "$WORK/state" \
	--listen "unix:$SOCK" --health-interval 500ms --health-timeout 200ms 2>"$WORK/switchyardd.log" &
pids+=($!)
until [ -S "$SOCK" ]; do sleep 0.05; done
"$SYCTL" --server "unix://$SOCK" status

echo "== workload: $CLIENTS client cgroups, each reconnecting for every command"
for i in $(seq 1 "$CLIENTS"); do
	mkdir "$CG/client-$i"
	(
		echo $BASHPID > "$CG/client-$i/cgroup.procs"
		n=0
		while :; do
			n=$((n + 1))
			redis-cli -p "$LPORT" set "client-$i:$n" "$n" >/dev/null 2>&1 || echo "client-$i: error" >&2
			sleep 0.05
		done
	) &
	pids+=($!)
done

conns() { redis-cli -p "$1" info stats | awk -F: '/^total_connections_received/ { print $2+0 }'; }

decisions() {
	"$SYCTL" --server "unix://$SOCK" get demo -o json | /usr/bin/python3 -c \
		'import json,sys; c=json.load(sys.stdin)["counters"]; print(int(c["legacy"])+int(c["pinnedLegacy"]), int(c["target"])+int(c["pinnedTarget"]))'
}
echo "(server-side connection counts include the agent's own health checks, 2 per second per server;"
echo " the kernel's decisions count client connects only)"
printf "\n%-8s %12s %12s %10s   %s\n" "ratio" "legacy conns" "target conns" "on target" "kernel decisions this step (legacy/target)"
read -r k_l k_t < <(decisions)
for ratio in 0% 10% 25% 50% 75% 100%; do
	"$SYCTL" --server "unix://$SOCK" cutover demo "$ratio" >/dev/null
	l0=$(conns "$LPORT"); t0=$(conns "$TPORT")
	sleep "$STEP_SECONDS"
	l1=$(conns "$LPORT"); t1=$(conns "$TPORT")
	dl=$((l1 - l0)); dt=$((t1 - t0))
	share=$(awk -v l="$dl" -v t="$dt" 'BEGIN { if (l + t) printf "%.0f%%", 100 * t / (l + t); else print "-" }')
	read -r n_l n_t < <(decisions)
	dec="$((n_l - k_l))/$((n_t - k_t))"
	k_l=$n_l; k_t=$n_t
	printf "%-8s %12d %12d %10s   %s\n" "$ratio" "$dl" "$dt" "$share" "$dec"
done

echo
echo "== killing switchyardd (kill -9): steering goes on from the pinned programs"
kill -9 "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
l0=$(conns "$LPORT"); t0=$(conns "$TPORT")
sleep "$STEP_SECONDS"
l1=$(conns "$LPORT"); t1=$(conns "$TPORT")
echo "   with the daemon dead: legacy $((l1 - l0)) connections, target $((t1 - t0)) connections"
echo "   keys: legacy $(redis-cli -p "$LPORT" dbsize), target $(redis-cli -p "$TPORT" dbsize)"
echo "== demo done"
