#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/rpc.sh — starts switchyardd on a throw-away cgroup and bpffs folder, then runs
# bench/rpc_bench.py against it. Streamed-messages/s waits for Telemetry.Watch.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
ID="sy-rpcbench-$$"
WORK=$(mktemp -d "/tmp/$ID.XXXXXX")
mkdir "$CGROOT/$ID"
cleanup() {
	set +e
	[ -n "${pid:-}" ] && kill "$pid" && wait "$pid"
	"$OUT/switchyardd" --uninstall --bpffs "/sys/fs/bpf/$ID" >/dev/null 2>&1
	rmdir "$CGROOT/$ID"
	rm -rf "$WORK"
}
trap cleanup EXIT
"$OUT/switchyardd" --cgroup "$CGROOT/$ID" --bpffs "/sys/fs/bpf/$ID" --state-dir "$WORK/state" \
	--listen "unix:$WORK/sy.sock" --log-level warning &
pid=$!
until [ -S "$WORK/sy.sock" ]; do sleep 0.05; done
/usr/bin/python3 bench/rpc_bench.py "$WORK/sy.sock" "${SECONDS_PER_ROUND:-5}"
