#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/dashboard.sh — what open dashboards cost the agent (issue 20's goal: <= 1 % of
# a core with 10 migrations). One run: 10 migrations (each its own legacy and target
# redis-server), each with a manual plan started and holding at its first step (gates
# evaluated every 500 ms, each evaluation an event the dashboards follow), a workload
# reconnecting to every legacy (both sides busy, mirror on); then the agent's CPU with
# no dashboard, 5 dashboards open in headless chromium, and none again.
#   DASHBOARDS=5 SECONDS_PER_ROUND=30 bench/dashboard.sh      (needs chromium, node and
#   tests/browser's `npm ci`, as the browser test does)
# COMPARE_APP_JS=FILE adds a round with FILE as the pages' /app.js (another version).
# Measured here (20 s rounds, 2 cores shared with other builds, load average ~20):
# 2.45 % of a core with no dashboard, 2.50 % with 5 open, 1.70 % after: +0.42 % for 5
# dashboards on 10 migrations; the page before coalesced re-reads (`git show
# 3214223~1:agent/web/app.js >/tmp/old.js; COMPARE_APP_JS=/tmp/old.js`) 3.70 %: +1.6 %.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=10
[ -x /usr/bin/chromium ] && [ -d tests/browser/node_modules/playwright-core ] ||
	{ echo "bench: needs /usr/bin/chromium and tests/browser/node_modules (packaging/deps.sh)" >&2; exit 1; }

bench_init dashbench
vars=()
for i in $(seq 0 $((N - 1))); do vars+=("L$i" "T$i"); done
bench_redis "${vars[@]}"
{
	echo "migrations:"
	for i in $(seq 0 $((N - 1))); do
		l="L$i" t="T$i"
		cat <<YAML
  - name: m$i
    legacy: ["127.0.0.1:${!l}"]
    target: ["127.0.0.1:${!t}"]
    client: connection
    mirror: forward
    plan:
      steps: [10%, 25%, 50%, 100%]
      bake: 1s
      advance: manual
      interval: 500ms
      min_samples: 0
      gates:
        error_rate: 5%
        drift_rate: 100
YAML
	done
} >"$WORK/spec.yaml"
HPORT=$(port)
bench_daemon "$WORK/spec.yaml" --http "127.0.0.1:$HPORT" --log-level warning
until /usr/bin/python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$HPORT/api/v1/status')" \
	2>/dev/null; do sleep 0.1; done
for i in $(seq 0 $((N - 1))); do $SYCTL cutover "m$i" start >/dev/null; done
ports=""
for i in $(seq 0 $((N - 1))); do l="L$i"; ports+="${!l},"; done
# the workload: a new connection per request to each legacy, ~20 requests/s each
cat >"$WORK/load.py" <<PY
import time, redis
ports = [$ports]
i = 0
while True:
    for p in ports:
        c = redis.Redis(port=p)
        c.set("k:%d" % (i % 1000), i)
        c.get("k:%d" % (i % 1000))
        c.close()
    i += 1
    time.sleep(0.05)
PY
in_cg /usr/bin/python3 "$WORK/load.py" 2>"$WORK/load.log" &
pids+=($!)
sleep 3
echo "== switchyardd with $N migrations: no dashboard, ${DASHBOARDS:-5} dashboards, none again" \
	"(${SECONDS_PER_ROUND:-30} s each; 2 cores shared with chromium, the servers and the workload)"
/usr/bin/python3 bench/dashboard_bench.py "http://127.0.0.1:$HPORT/" "$DPID" "$N" "${DASHBOARDS:-5}" \
	"${SECONDS_PER_ROUND:-30}"
