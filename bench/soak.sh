#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/soak.sh — does switchyard keep working for a long time, through everything an
# unlucky day brings? SOAK_MINUTES (default 30) of a mixed workload through a full plan
# that is rolled back (with a drain) and walked again, over and over, while the agent is
# killed with -9 every KILL_EVERY seconds (default 240) and restarted on its state, and
# the target redis-server is restarted (empty) twice. Prints, per interval: phase,
# agent RSS and fds, mirror lag p99 of that interval; at the end: client errors,
# plan rounds, acknowledged writes lost on each side (must be 0 on legacy), differing keys
# found by a final read-only audit, and RSS/fd first vs last (flat = no leak).
# Exits non-zero when legacy lost an acknowledged write (a key whose value is not its last
# acknowledged one), the final audit finds a difference (a target restarted empty must be
# noticed and refilled) or gives no verdict within SOAK_AUDIT_WAIT_S (default 600).
# SOAK_KEYS (default 50 000): the key space the workload overwrites.
#
#   OUT=build SOAK_MINUTES=30 ./bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
MINUTES=${SOAK_MINUTES:-30}
KILL_EVERY=${KILL_EVERY:-240}
# the workload overwrites this many keys round and round: a long run's final audit
# then compares ~KEYS + the 10 500 seeded keys, not every key ever written
KEYS=${SOAK_KEYS:-50000}
PY=/usr/bin/python3
grep -qs ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf

bench_init soak
bench_redis LPORT
TPORT=$(port)
$PY - "$LPORT" <<'EOF'
import sys, redis
r = redis.Redis(port=int(sys.argv[1]))
p = r.pipeline(transaction=False)
for i in range(5000):
    p.hset("user:%d" % i, mapping={"name": "user %d" % i, "plan": "free"})
    p.set("session:%d" % i, "s%d" % i, ex=7200)
    p.rpush("cart:%d" % (i % 500), "item%d" % i)
p.execute()
EOF

cat >"$WORK/spec.yaml" <<YAML
migrations:
  - name: soak
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    client: connection
    sample_reads: 50
    auto_repair: true
    plan:
      steps: [10%, 25%, 50%, 100%]
      bake: 20s
      interval: 1s
      window: 10s
      min_samples: 30
      min_p99: 5ms
      backfill: true
      shadow: 5s
      verify: true
      drain: true
      gates:
        p99_ratio: 5
        error_rate: 2%
        drift_rate: {max: 5, on_breach: pause}
YAML

echo "soak: $MINUTES min over $KEYS keys, agent killed every ${KILL_EVERY}s, target restarted twice; work dir $WORK"
set +e
$PY bench/soak.py "{\"work\": \"$WORK\", \"cg\": \"$CG\", \"bpffs\": \"$BPFFS\", \"out\": \"$OUT\",
	\"legacy\": $LPORT, \"target\": $TPORT, \"minutes\": $MINUTES, \"kill_every\": $KILL_EVERY,
	\"keys\": $KEYS}"
rc=$?
set -e
for d in "$CG"/*/; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
exit $rc
