#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/transform.sh — the cost of a Lua transform (docs/transforms.md), in one run:
#   1. mirror capacity: the agent stopped (SIGSTOP) while N SETs are captured, then
#      resumed; writes/s until all are replayed — without a transform, through
#      forward_write (SET → HSET), and through the forward_key fallback (a typed
#      copy per write: read legacy, run the script, MULTI/EXEC on target);
#   2. backfill keys/s of N keys, without a transform (DUMP/RESTORE) and through
#      forward_key (typed copies), same servers.
# Goals (issue 21): >= 100 000 transformed writes/s with forward_write; backfill
# through forward_key >= 50 % of its untransformed rate.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-100000}

bench_init xbench
bench_redis LPORT TPORT
cat > "$WORK/fast.lua" <<'LUA'
function forward_key(k)
  if k.type ~= "string" then return {{key = k.key, type = "none"}} end
  return {{key = k.key, type = "hash", value = {v = k.value, _v = "2"}, ttl_ms = k.ttl_ms}}
end
function forward_write(a)
  if a[1]:upper() == "SET" and #a == 3 then return {{"HSET", a[2], "v", a[3], "_v", "2"}} end
  return nil
end
LUA
cat > "$WORK/slow.lua" <<'LUA'
function forward_key(k)
  if k.type ~= "string" then return {{key = k.key, type = "none"}} end
  return {{key = k.key, type = "hash", value = {v = k.value, _v = "2"}, ttl_ms = k.ttl_ms}}
end
LUA
spec() { # script ("" = none)
	{
		cat <<YAML
migrations:
  - name: bench
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    ratio: 0%
    mirror: forward
    mirror_queue: 1000000
YAML
		if [ -n "$1" ]; then echo "    transform: {script: $1}"; fi
	} > "$WORK/spec.yaml"
}
spec ""
bench_daemon "$WORK/spec.yaml"
sleep 1
fresh() { # script
	spec "$1"
	$SYCTL delete bench --force >/dev/null
	$SYCTL apply -f "$WORK/spec.yaml" >/dev/null
	redis-cli -p "$LPORT" flushall >/dev/null
	redis-cli -p "$TPORT" flushall >/dev/null
	sleep 0.5
}
mstat() {
	$SYCTL -o json get bench | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)
f = [x for x in m.get("mirror", []) if x.get("direction") == "forward"][0]
print(" ".join(str(f.get(k, 0)) for k in sys.argv[1:]))' "$@"
}

capacity() { # label script
	fresh "$2"
	kill -STOP "$DPID"
	in_cg "redis-benchmark -p $LPORT -n $N -c 50 -P 4 -t set -r $N -q" >/dev/null
	local t0 t1 mir=0 rep=0 q=1 d=1 keys
	keys=$(redis-cli -p "$LPORT" dbsize)
	t0=$(date +%s.%N)
	kill -CONT "$DPID"
	# done: every key on target and nothing queued or waiting for a copy
	for _ in $(seq 3000); do
		if [ "$(redis-cli -p "$TPORT" dbsize)" -ge "$keys" ]; then
			read -r mir rep q d < <(mstat mirrored repaired queued dirty)
			[ "$q" = 0 ] && [ "$d" = 0 ] && break
		fi
		sleep 0.01
	done
	t1=$(date +%s.%N)
	printf "%-34s %10s %10s %12.0f\n" "$1" "$mir" "$rep" "$(echo "$N / ($t1 - $t0)" | bc -l)"
}

echo "== mirror capacity: $N SETs captured while the agent is stopped, then replayed"
printf "%-34s %10s %10s %12s\n" "path" "replayed" "copied" "writes/s"
capacity "no transform (captured bytes)" ""
capacity "transform, forward_write" "$WORK/fast.lua"
capacity "transform, forward_key fallback" "$WORK/slow.lua"
echo "(writes/s: all N on target, including syctl polling every 10 ms; copied = typed copies)"

backfill() { # label script
	fresh "$2"
	redis-benchmark -p "$LPORT" -n "$N" -c 50 -P 16 -t set -r 100000000 -q >/dev/null
	local keys t0 t1
	keys=$(redis-cli -p "$LPORT" dbsize)
	t0=$(date +%s.%N)
	$SYCTL backfill bench --follow >/dev/null
	for _ in $(seq 6000); do
		[ "$(redis-cli -p "$TPORT" dbsize)" -ge "$keys" ] && break
		sleep 0.01
	done
	t1=$(date +%s.%N)
	printf "%-34s %10s %12.0f\n" "$1" "$keys" "$(echo "$keys / ($t1 - $t0)" | bc -l)"
	echo "$keys / ($t1 - $t0)" | bc -l > "$WORK/bf-$3"
}

echo
echo "== backfill of legacy's keys"
printf "%-34s %10s %12s\n" "path" "keys" "keys/s"
backfill "no transform (DUMP/RESTORE)" "" plain
backfill "transform, forward_key" "$WORK/slow.lua" xf
printf "ratio: %.2f of the untransformed rate\n" "$(echo "$(cat "$WORK/bf-xf") / $(cat "$WORK/bf-plain")" | bc -l)"
echo "(2 cores shared by the servers, the benchmark client and the agent)"
