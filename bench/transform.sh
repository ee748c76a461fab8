#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/transform.sh — the cost of a Lua transform (docs/transforms.md), in one run,
# with the shipped users_json_to_hash.lua and SETs of a JSON document of 5 fields:
#   1. the stage alone (tests/tools/sy_xfbench, no servers): captured SETs through
#      forward_write (and forward_key) on one thread, per second of that thread's CPU,
#      against the same SETs replayed without a transform;
#   2. mirror capacity end to end: the agent stopped (SIGSTOP) while a batch of SETs is
#      captured, then resumed; writes/s while it replays them — without a transform,
#      through forward_write (SET → DEL + HSET in MULTI/EXEC), and through the
#      forward_key fallback (the same script without forward_write: a typed copy per
#      write, read legacy, run the script, MULTI/EXEC on target). Batches of at most
#      BATCH SETs, so that what a stopped agent leaves in the kernel's ring buffer
#      (4 MiB) never overflows it; "lost" says if it did;
#   3. backfill keys/s of N keys, without a transform (DUMP/RESTORE) and through
#      forward_key (typed copies), same servers.
# PARTS (default "stage capacity backfill") picks what runs: PARTS=backfill for the
# paired backfill alone.
# Goals (issue 21): >= 100 000 transformed writes/s with forward_write on the agent's
# one thread; backfill through forward_key >= 50 % of its untransformed rate.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-100000}
BATCH=${BATCH:-20000}
PARTS=${PARTS:-stage capacity backfill}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
SCRIPT=packaging/examples/transforms/users_json_to_hash.lua
DOC='{"name":"user","age":31,"email":"u@example.com","city":"Paris","plan":"pro"}'

part stage && echo "== the stage alone: $N captured SETs, one thread (tests/tools/sy_xfbench)" &&
"$OUT/tools/sy_xfbench" --script "$SCRIPT" --n "$N" --rounds 5 | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
print("%-34s %12s" % ("path", "writes/s"))
print("%-34s %12.0f" % ("no transform (parse + format)", r["plain"]))
print("%-34s %12.0f   goal >= 100000: %s" % ("transform, forward_write", r["write"],
      "met" if r["write"] >= 100000 else "NOT met"))
print("%-34s %12.0f" % ("transform, forward_key", r["key"]))
print("(per second of the thread'"'"'s CPU, best of 5 passes; fallback answers: %d)" % r["fallback"])'

bench_init xbench
bench_redis LPORT TPORT
cp "$SCRIPT" "$WORK/fast.lua"
# the same script without its fast path: every write goes through forward_key
sed '/^function forward_write/,/^end/d' "$SCRIPT" > "$WORK/slow.lua"
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

# CPU seconds a process has used so far (user + system)
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
rpid() { redis-cli -p "$1" info server | awk -F: '/^process_id/ { print $2 + 0 }'; }
cpu_all() { # agent, servers
	echo "$(cpu_s "$DPID") $(echo "$(cpu_s "$(rpid "$LPORT")") + $(cpu_s "$(rpid "$TPORT")")" | bc -l)"
}
# "label n wall agent-cpu redis-cpu" (seconds): one row, rates per wall second and per
# second of the agent's CPU
row() {
	printf "%-34s %10.0f %14.0f %10.2f %10.2f\n" "$1" "$(echo "$2 / $3" | bc -l)" \
		"$(echo "$2 / ($4 + 0.0001)" | bc -l)" "$4" "$5"
}
# adds what the agent and the servers used since "a0 r0" to the variables ac and rc
cpu_add() {
	local a r
	read -r a r < <(cpu_all)
	ac=$(echo "$ac + $a - $1" | bc -l)
	rc=$(echo "$rc + $r - $2" | bc -l)
}

sets() { # count keyspace
	in_cg "redis-benchmark -p $LPORT -n $1 -c 50 -P 4 -r $2 -q SET user:__rand_int__ '$DOC'" >/dev/null
}

capacity() { # label script
	fresh "$2"
	local left=$N b t0 t1 keys mir=0 rep=0 q=1 d=1 secs=0 a0 r0
	ac=0 rc=0
	while [ "$left" -gt 0 ]; do
		b=$((left < BATCH ? left : BATCH))
		kill -STOP "$DPID"
		sets "$b" "$N"
		keys=$(redis-cli -p "$LPORT" dbsize)
		read -r a0 r0 < <(cpu_all)
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
		cpu_add "$a0" "$r0"
		secs=$(echo "$secs + $t1 - $t0" | bc -l)
		left=$((left - b))
	done
	row "$1" "$N" "$secs" "$ac" "$rc"
	echo "    replayed $mir, copied $rep, ring-buffer records lost $(lost)"
}

# ring-buffer records the kernel had no room for (legacy side)
lost() {
	$SYCTL -o json get bench | /usr/bin/python3 -c '
import json, sys
print(sum(int(s.get("eventsLost", 0)) for s in json.load(sys.stdin).get("sides", [])))'
}

if part capacity; then
	echo
	echo "== mirror capacity: $N SETs captured while the agent is stopped (batches of $BATCH), then replayed"
	printf "%-34s %10s %14s %10s %10s\n" "path" "writes/s" "per agent-CPU-s" "agent CPU" "redis CPU"
	capacity "no transform (captured bytes)" ""
	capacity "transform, forward_write" "$WORK/fast.lua"
	capacity "transform, forward_key fallback" "$WORK/slow.lua"
	echo "(writes/s: all on target, including syctl polling every 10 ms; per agent-CPU-s: writes"
	echo " per second of the agent's CPU time, the capacity of its one thread; CPU in seconds;"
	echo " copied = typed copies; goal >= 100000 transformed writes/s on the agent's thread)"
fi
part backfill || exit 0

# commands a server has processed (INFO stats)
cmds() { redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed/ { print $2 + 0 }'; }
backfill() { # label script
	fresh "$2"
	redis-benchmark -p "$LPORT" -n "$N" -c 50 -P 16 -r 100000000 -q SET "user:__rand_int__" "$DOC" >/dev/null
	local keys t0 t1 a0 r0 c0
	keys=$(redis-cli -p "$LPORT" dbsize)
	c0=$(($(cmds "$LPORT") + $(cmds "$TPORT")))
	read -r a0 r0 < <(cpu_all)
	t0=$(date +%s.%N)
	# not --follow: its status polls (250 ms) would round the time; done is every key
	# on target
	$SYCTL backfill bench >/dev/null
	for _ in $(seq 60000); do
		[ "$(redis-cli -p "$TPORT" dbsize)" -ge "$keys" ] && break
		sleep 0.01
	done
	t1=$(date +%s.%N)
	ac=0 rc=0
	cpu_add "$a0" "$r0"
	row "$1" "$keys" "$(echo "$t1 - $t0" | bc -l)" "$ac" "$rc"
	printf "    %.2f commands per key on the servers (the benchmark's polling included)\n" \
		"$(echo "($(cmds "$LPORT") + $(cmds "$TPORT") - $c0) / $keys" | bc -l)"
	echo "$keys / ($t1 - $t0)" | bc -l > "$WORK/bf-$3"
	echo "$keys / ($ac + 0.0001)" | bc -l > "$WORK/bfcpu-$3"
}

echo
echo "== backfill of legacy's keys"
printf "%-34s %10s %14s %10s %10s\n" "path" "keys/s" "per agent-CPU-s" "agent CPU" "redis CPU"
backfill "no transform (DUMP/RESTORE)" "" plain
backfill "transform, forward_key" "$WORK/slow.lua" xf
met() { [ "$(echo "$1 >= 0.5" | bc -l)" = 1 ] && echo met || echo "NOT met"; }
r=$(echo "$(cat "$WORK/bf-xf") / $(cat "$WORK/bf-plain")" | bc -l)
c=$(echo "$(cat "$WORK/bfcpu-xf") / $(cat "$WORK/bfcpu-plain")" | bc -l)
printf "ratio: %.2f of the untransformed rate (keys/s)   goal >= 0.50: %s\n" "$r" "$(met "$r")"
printf "ratio: %.2f per second of the agent's CPU\n" "$c"
echo "(2 cores shared by the servers, the benchmark client and the agent)"
