#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make demo: a whole cutover on this machine, start to finish, then everything cleaned up.
#
#   1. a legacy and a target redis-server on loopback, legacy holding data already;
#   2. switchyardd attached to a demo cgroup, and a workload of client cgroups (some
#      reconnecting for every request, some with long-lived connection pools), every
#      client dialling legacy as an unmodified application would;
#   3. the plan: backfill, shadow, verify, then 10% → 25% → 50% → 100% with short bakes
#      and gates, while `syctl watch` shows both sides;
#   4. a fault injected on the target at 50% (DEBUG SLEEP slices: every request there
#      waits); the p99 gate catches it and rolls back, draining the pools;
#   5. the fault removed, the plan started again and walked to completion;
#   6. a summary: keys compared, drift, acknowledged writes lost (0), then cleanup.
#
# The dashboard (docs/dashboard.md) is live on loopback the whole time: the URL is
# printed once the agent answers there (DEMO_HTTP=ADDR:PORT picks the address; from
# another machine, `ssh -L PORT:127.0.0.1:PORT HOST` and open the same URL).
#
# DEMO_SHOTS=DIR saves screenshots of the dashboard at the rollback and at the end
# (tests/browser/demo_shots.mjs: chromium and tests/browser's npm packages).
# DEMO_KEEP=1 keeps the work folder (logs of the daemon, servers and clients).
# DEMO_NONINTERACTIVE=1 (or no terminal) prints the live view as plain snapshots; the
# script exits non-zero if the demo does not end as described (CI runs it as a test).
set -euo pipefail
[ -n "${DEMO_SHOTS:-}" ] && DEMO_SHOTS=$(realpath -m "$DEMO_SHOTS")
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
SY="$OUT/switchyardd"
SYCTL="$OUT/syctl"
PY=/usr/bin/python3
CLIENT=tests/system/cutover_client.py
BAKE=${BAKE:-4s}
[ -t 1 ] && [ -z "${DEMO_NONINTERACTIVE:-}" ] && TTY=1 || TTY=0

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (BPF and cgroups)" >&2; exit 1; }
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CGROOT" ] || { echo "demo: no cgroup2 mount in /proc/mounts" >&2; exit 1; }
grep -qs ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf

ID="sy-demo-$$"
WORK=$(mktemp -d "/tmp/$ID.XXXXXX")
CG="$CGROOT/$ID"
BPFFS="/sys/fs/bpf/$ID"
SOCK="$WORK/sy.sock"
T0=$(date +%s)
pids=()
bg=()

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
LPORT=$(free_port)
TPORT=$(free_port)
HTTP=${DEMO_HTTP:-127.0.0.1:$(free_port)}

cleanup() {
	set +e
	[ -n "${shots:-}" ] && kill "$shots" 2>/dev/null
	for p in "${bg[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${bg[@]}" "${pids[@]}"; do wait "$p" 2>/dev/null; done
	"$SY" --uninstall --bpffs "$BPFFS" >/dev/null 2>&1
	for d in "$CG"/*/; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
	rmdir "$CG" 2>/dev/null
	if [ -n "${DEMO_KEEP:-}" ]; then
		echo "demo: cleaned up (processes, cgroups, pins); logs kept in $WORK"
	else
		rm -rf "$WORK"
		echo "demo: cleaned up (processes, cgroups, pins, $WORK)"
	fi
}
trap cleanup EXIT

say() { printf '\n\033[1m== [%3ss] %s\033[0m\n' "$(($(date +%s) - T0))" "$*"; }
syctl() { "$SYCTL" --server "unix://$SOCK" "$@"; }
field() { syctl -o json get demo | $PY -c "import json,sys; m=json.load(sys.stdin); print($1)"; }
phase() { field 'm["cutover"].get("phaseName", "none")'; }
wait_phase() { # PHASE TIMEOUT_S
	local end=$(($(date +%s) + $2))
	until [ "$(phase)" = "$1" ]; do
		if [ "$(date +%s)" -ge "$end" ]; then
			echo "demo: FAILED: no phase $1 within $2 s:" >&2
			syctl status demo >&2
			exit 1
		fi
		sleep 0.2
	done
}

say "legacy redis on 127.0.0.1:$LPORT, target on 127.0.0.1:$TPORT"
for port in "$LPORT" "$TPORT"; do
	mkdir -p "$WORK/redis-$port"
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis-$port" \
		--enable-debug-command local --logfile "$WORK/redis-$port/log" &
	pids+=($!)
done
for port in "$LPORT" "$TPORT"; do
	until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
done
$PY - "$LPORT" <<'EOF'
import sys, redis
r = redis.Redis(port=int(sys.argv[1]))
p = r.pipeline(transaction=False)
for i in range(2000):
    p.hset("user:%d" % i, mapping={"name": "user %d" % i, "plan": "free"})
    p.set("session:%d" % i, "s%d" % i, ex=3600)
p.execute()
EOF
echo "legacy holds $(redis-cli -p "$LPORT" dbsize) keys; target $(redis-cli -p "$TPORT" dbsize)"

mkdir "$CG"
cat >"$WORK/spec.yaml" <<YAML
migrations:
  - name: demo
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    client: connection
    sample_reads: 50
    auto_repair: true
    plan:
      steps: [10%, 25%, 50%, 100%]
      bake: [$BAKE, $BAKE, 10s, $BAKE]
      interval: 500ms
      window: 3s
      min_samples: 30
      min_p99: 5ms
      backfill: true
      shadow: 2s
      verify: true
      drain: true
      gates:
        p99_ratio: 3
        error_rate: 2%
        drift_rate: {max: 2, on_breach: pause}
YAML
say "switchyardd attached to $CG, with this plan:"
sed -n '/plan:/,$p' "$WORK/spec.yaml"
"$SY" --config "$WORK/spec.yaml" --cgroup "$CG" --bpffs "$BPFFS" --state-dir "$WORK/state" \
	--listen "unix:$SOCK" --health-interval 500ms --health-timeout 200ms --http "$HTTP" \
	2>"$WORK/switchyardd.log" &
pids+=($!)
until [ -S "$SOCK" ] && syctl health >/dev/null 2>&1; do sleep 0.05; done
until $PY -c "import sys, urllib.request as u; u.urlopen('http://$HTTP/api/v1/status', timeout=1)" 2>/dev/null; do
	sleep 0.05
done
say "dashboard: http://$HTTP/ (live until the demo ends)"
if [ -n "${DEMO_SHOTS:-}" ]; then
	mkdir -p "$DEMO_SHOTS"
	(cd tests/browser && exec node demo_shots.mjs "http://$HTTP/" "$DEMO_SHOTS") >"$WORK/shots.log" 2>&1 &
	shots=$!
fi

say "workload: 4 client cgroups reconnecting for every request (pools join at 50%)"
reads=$($PY -c 'import json; print(json.dumps(["session:%d" % i for i in range(0, 2000, 20)]))')
start_client() { # NAME MODE CONNS
	mkdir -p "$CG/$1"
	$PY "$CLIENT" "{\"addr\": \"127.0.0.1:$LPORT\", \"cgroup\": \"$CG/$1\", \"mode\": \"$2\", \"conns\": $3,
		\"name\": \"$1\", \"stop_file\": \"$WORK/stop\", \"seconds\": 600, \"keys_file\": \"$WORK/acked-$1\",
		\"reads\": $reads, \"pause\": 0.004}" >"$WORK/client-$1.out" 2>&1 &
	pids+=($!)
}
for i in 1 2 3 4; do start_client "web$i" reconnect 1; done

# the live view: both sides, the plan's step, mirror and verification, every second
if [ "$TTY" = 1 ]; then
	syctl watch demo --interval 1s &
else
	syctl watch demo --interval 2s | grep -E "^demo|plan:|^  (legacy|target|mirror) " &
fi
bg+=($!)
syctl events demo -f 2>/dev/null | grep --line-buffered -E "cutover.phase|cutover.drained|ratio_changed" \
	| sed -u 's/^/   EVENT /' &
bg+=($!)

say "cutover demo start: backfill → shadow → verify → 10% → 25% → 50%"
syctl cutover demo start >/dev/null
wait_phase cutting-over 60
until [ "$(field 'm["cutover"].get("step", 0)')" = 3 ]; do
	case "$(phase)" in paused | rolled-back)
		echo "demo: FAILED: the plan stopped before 50%:" >&2
		syctl status demo >&2
		exit 1
		;;
	esac
	sleep 0.2
done
say "at 50%: 2 more client cgroups with pools of 8 long-lived connections (about half on target)"
start_client pool1 persistent 8
start_client pool2 persistent 8
sleep 2
echo "pool connections: legacy $(redis-cli -p "$LPORT" client list | grep -c 'name=pool' || true)," \
	"target $(redis-cli -p "$TPORT" client list | grep -c 'name=pool' || true)"

say "FAULT: the target becomes slow (DEBUG SLEEP slices); the p99 gate should roll back"
(
	while :; do redis-cli -p "$TPORT" debug sleep 0.02 >/dev/null 2>&1 || exit 0; done
) &
fault=$!
bg+=($fault)
wait_phase rolled-back 20
kill "$fault" 2>/dev/null
wait "$fault" 2>/dev/null || true
sleep 1
kill "${bg[0]}" 2>/dev/null || true
syctl status demo | sed -n '/^phase:/,$p'
pools_on_target=$(redis-cli -p "$TPORT" client list | grep -c 'name=pool' || true)
pools_on_legacy=$(redis-cli -p "$LPORT" client list | grep -c 'name=pool' || true)
echo "pool connections now: legacy $pools_on_legacy, target $pools_on_target (drained and reconnected)"
[ "$pools_on_target" = 0 ] || { echo "demo: FAILED: pool connections left on target" >&2; exit 1; }

say "fault removed; the plan started again and walked to completion"
if [ "$TTY" = 1 ]; then
	syctl watch demo --interval 1s &
else
	syctl watch demo --interval 2s | grep -E "^demo|plan:|^  (legacy|target|mirror) " &
fi
bg[0]=$!
syctl cutover demo start --reason "target fixed" >/dev/null
wait_phase completed 120
sleep 2
kill "${bg[0]}" 2>/dev/null || true

say "stopping the workload; waiting for the mirror to drain"
touch "$WORK/stop"
for p in "${pids[@]:3}"; do
	wait "$p" || { echo "demo: FAILED: a client failed:" >&2; tail -n 5 "$WORK"/client-*.out >&2; exit 1; }
done
until [ "$(field 'sum(int(x.get("queued", 0)) + int(x.get("dirty", 0)) for x in m["mirror"])')" = 0 ]; do
	sleep 0.2
done
say "verification: a full audit of both sides (the agent's), and every acknowledged write checked"
audit=$(syctl -o json verify demo --rate 100000) || [ $? = 1 ] # 1: drift, in the summary
summary=$($PY - "$LPORT" "$TPORT" "$WORK" <<'EOF'
import glob, json, sys, redis
lp, tp, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
legacy, target = redis.Redis(port=lp), redis.Redis(port=tp)
keys = []
for f in glob.glob(work + "/acked-*"):
    keys += [k.strip() for k in open(f) if k.strip()]
failed = reconnects = 0
for f in glob.glob(work + "/client-*.out"):
    r = json.loads([l for l in open(f) if l.startswith("{")][-1])
    failed += r["failed"]
    reconnects += r["reconnects"]
lost = {}
for name, r in (("legacy", legacy), ("target", target)):
    lost[name] = sum(sum(1 for v in r.mget(keys[i:i + 1000]) if v is None) for i in range(0, len(keys), 1000))
print(json.dumps({"acked": len(keys), "lost_legacy": lost["legacy"], "lost_target": lost["target"],
                  "failed": failed, "reconnects": reconnects,
                  "legacy_keys": legacy.dbsize(), "target_keys": target.dbsize()}))
EOF
)
say "summary"
if $PY - "$summary" "$audit" <<'EOF'
import json, sys
s, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
diff = sum(int(a.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl"))
print("  keys compared by the audit: %s, differences: %d; dual reads: %s compared, %s drifted"
      % (a.get("scanned", 0), diff, a.get("dualChecked", 0), a.get("dualDrift", 0)))
print("  keys: legacy %d, target %d" % (s["legacy_keys"], s["target_keys"]))
print("  acknowledged writes: %d; requests failed: %d; reconnects after the drain: %d"
      % (s["acked"], s["failed"], s["reconnects"]))
print("  writes lost: %d (legacy %d, target %d)" % (s["lost_legacy"] + s["lost_target"], s["lost_legacy"],
                                                    s["lost_target"]))
sys.exit(0 if s["lost_legacy"] == 0 and s["lost_target"] == 0 and s["failed"] == 0 and diff == 0 else 1)
EOF
then
	rc=0
else
	rc=1
	echo "demo: FAILED: see the summary above" >&2
fi
if [ -n "${shots:-}" ]; then
	if wait "$shots"; then echo "screenshots of the dashboard in $DEMO_SHOTS"; else
		echo "demo: the screenshots failed (the demo itself did not):" >&2
		tail -n 5 "$WORK/shots.log" >&2
	fi
fi
say "demo done in $(($(date +%s) - T0)) s"
exit $rc
