#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/export.sh — what the metrics exporters cost, in one run on this machine:
#   1. agent CPU and RSS with 10 migrations, idle clients: no exporter (baseline), then
#      OTLP every 1 s (gzip), then OTLP every 1 s plus a Prometheus scrape every 1 s;
#   2. OTLP payload per export (framed request bytes, as sent) with gzip on and off.
# The collector is a grpcio receiver (tests/system/otlp_rx.py) on this host.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DUR=${DUR:-30}
MIGS=${MIGS:-10}

bench_init ebench
bench_redis TPORT
{
	echo "migrations:"
	for i in $(seq "$MIGS"); do
		# legacy endpoints nobody listens on: the figures are read all the same
		echo "  - {name: m$i, legacy: [\"127.0.0.1:$((40000 + i))\"], target: [\"127.0.0.1:$TPORT\"], ratio: 0%}"
	done
} > "$WORK/spec.yaml"

/usr/bin/python3 - "$WORK/rxport" <<'PY' &
import sys, time
sys.path.insert(0, "tests/system")
from otlp_rx import Receiver
r = Receiver()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(r.port))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(3600)
PY
pids+=($!)
until [ -s "$WORK/rxport" ]; do sleep 0.1; done
RXPORT=$(cat "$WORK/rxport")

start_daemon() { # extra options...
	rm -rf "$WORK/state"
	"$OUT/switchyardd" --config "$WORK/spec.yaml" --cgroup "$CG" --bpffs "$BPFFS" --state-dir "$WORK/state" \
		--listen "unix:$WORK/sy.sock" "$@" 2>>"$WORK/d.log" &
	DPID=$!
	pids+=($DPID)
	until [ -S "$WORK/sy.sock" ]; do sleep 0.05; done
	sleep 2 # past start-up
}
stop_daemon() {
	kill "$DPID"
	wait "$DPID" 2>/dev/null || true
	rm -f "$WORK/sy.sock"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$DPID/status"; }
HZ=$(getconf CLK_TCK)

measure() { # label, then daemon options; prints CPU % and RSS
	local label=$1 t0 t1 scrape=
	shift
	[ "${1:-}" = "--scrape" ] && { scrape=1; shift; }
	start_daemon "$@"
	t0=$(ticks)
	for _ in $(seq "$DUR"); do
		[ -n "$scrape" ] && /usr/bin/python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read()' \
			"http://127.0.0.1:$MPORT/metrics"
		sleep 1
	done
	t1=$(ticks)
	printf "%-40s %8.2f %% %10s KiB\n" "$label" "$(echo "($t1 - $t0) * 100 / $HZ / $DUR" | bc -l)" "$(rss_kb)"
	stop_daemon
}

payload() { # gzip on|off → bytes per export, from the exporter's own counters
	local m
	MPORT=$(port)
	start_daemon --otlp-endpoint "127.0.0.1:$RXPORT" --otlp-interval 1s --otlp-gzip "$1" \
		--metrics "127.0.0.1:$MPORT"
	sleep 10
	m=$(/usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
		"http://127.0.0.1:$MPORT/metrics")
	stop_daemon
	echo "$m" | awk -v g="$1" '
		/^switchyard_exporter_bytes_total / { b = $2 }
		/^switchyard_exporter_batches_total\{outcome="exported"\}/ { n = $2 }
		END { printf "%-40s %8d bytes/export (%d exports)\n", "gzip " g, b / n, n }'
}

echo "== agent CPU and RSS, $MIGS migrations, idle, ${DUR}s each (same run, same machine)"
printf "%-40s %10s %14s\n" "exporter" "CPU" "RSS"
measure "none (baseline)"
measure "OTLP every 1s, gzip" --otlp-endpoint "127.0.0.1:$RXPORT" --otlp-interval 1s
MPORT=$(port)
measure "OTLP every 1s, gzip + /metrics every 1s" --scrape --otlp-endpoint "127.0.0.1:$RXPORT" \
	--otlp-interval 1s --metrics "127.0.0.1:$MPORT"
measure "none (baseline, again)"

echo
echo "== OTLP payload per export, $MIGS migrations (framed request as sent)"
payload on
payload off
