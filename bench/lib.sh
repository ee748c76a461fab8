# SPDX-License-Identifier: Apache-2.0
# bench/lib.sh — what every benchmark script sets up, sourced after `cd` to the root:
# a unique id, a work dir, a cgroup and a bpffs dir of its own, and a cleanup that
# ends only the processes it started and removes what it made.
#   bench_init NAME        → $ID $WORK $CG $BPFFS, trap cleanup
#   bench_redis VAR...     → starts one redis-server per VAR, sets VAR to its port
#   bench_daemon SPEC [ARG...] → starts switchyardd on SPEC in $CG (more options after
#                            it); sets $DPID, $SYCTL
#   bench_base_daemon SPEC → a second switchyardd, from the build folder $BASE, on its
#                            own cgroup $CG_B and bpffs folder $BPFFS_B
#   bench_stats_on         → kernel.bpf_stats_enabled=1 until the cleanup
#   port                   → a free TCP port on 127.0.0.1
#   bench_spec MODE [LINE...] → $WORK/spec.yaml: migration "bench", $LPORT → $TPORT at
#                            0 %, mirror MODE, then each LINE as a field ("sample_reads: 1")
#   bench_mstat FIELD...   → those fields of bench's forward mirror stats (syctl -o json)
OUT=${OUT:-build}
pids=()

bench_init() {
	[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
	CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	ID="sy-$1-$$"
	WORK=$(mktemp -d "/tmp/$ID.XXXXXX")
	CG="$CGROOT/$ID"
	BPFFS="/sys/fs/bpf/$ID"
	mkdir "$CG"
	trap bench_cleanup EXIT
}

bench_cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	"$OUT/switchyardd" --uninstall --bpffs "$BPFFS" >/dev/null 2>&1
	rmdir "$CG" 2>/dev/null
	if [ -n "${BPFFS_B:-}" ]; then
		"$BASE/switchyardd" --uninstall --bpffs "$BPFFS_B" >/dev/null 2>&1
		rmdir "$CG_B" 2>/dev/null
	fi
	[ -z "${BENCH_OLD_STATS:-}" ] || sysctl -q -w kernel.bpf_stats_enabled="$BENCH_OLD_STATS"
	[ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $WORK" || rm -rf "$WORK"
}

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_redis() {
	local var p
	for var in "$@"; do
		p=$(port)
		redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
			--logfile "$WORK/r$p.log" &
		pids+=($!)
		until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
		printf -v "$var" '%s' "$p"
	done
}

bench_daemon() {
	local spec=$1
	shift
	"$OUT/switchyardd" --config "$spec" --cgroup "$CG" --bpffs "$BPFFS" --state-dir "$WORK/state" \
		--listen "unix:$WORK/sy.sock" "$@" 2>"$WORK/d.log" &
	DPID=$!
	pids+=($DPID)
	until [ -S "$WORK/sy.sock" ]; do sleep 0.05; done
	SYCTL="$OUT/syctl --server unix://$WORK/sy.sock"
}

bench_base_daemon() {
	CG_B="$CG-base"
	BPFFS_B="$BPFFS-base"
	mkdir "$CG_B"
	"$BASE/switchyardd" --config "$1" --cgroup "$CG_B" --bpffs "$BPFFS_B" --state-dir "$WORK/state-base" \
		--listen "unix:$WORK/syb.sock" 2>"$WORK/db.log" &
	pids+=($!)
	until [ -S "$WORK/syb.sock" ]; do sleep 0.05; done
}

bench_stats_on() {
	BENCH_OLD_STATS=${BENCH_OLD_STATS:-$(sysctl -n kernel.bpf_stats_enabled)}
	sysctl -q -w kernel.bpf_stats_enabled=1
}

# Runs a command inside the benchmark's cgroup.
in_cg() { sh -c "echo \$\$ > $CG/cgroup.procs; exec $*"; }

bench_spec() {
	local mode=$1 line
	shift
	cat > "$WORK/spec.yaml" <<YAML
migrations:
  - name: bench
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    ratio: 0%
    mirror: $mode
YAML
	for line in "$@"; do echo "    $line" >> "$WORK/spec.yaml"; done
}

bench_mstat() {
	$SYCTL -o json get bench | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)
f = [x for x in m.get("mirror", []) if x.get("direction") == "forward"][0]
print(" ".join(str(f.get(k, 0)) for k in sys.argv[1:]))' "$@"
}
