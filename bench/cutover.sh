#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/cutover.sh — how fast a cutover decision reaches clients:
#  1. SetRatio → the first new connection following it (goal ≤ 1 ms): a prober in the
#     cgroup connects in a loop while the ratio flips 0% ↔ 100% 40 times;
#  2. rollback --drain with 200 long-lived client connections on target → none left
#     on target (goal ≤ 1 s), then all reconnected to legacy.
# Baseline in the same run: the prober's own gap between connections (a decision
# cannot be seen sooner than the next connect).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_init cutover
bench_redis LPORT TPORT
cat >"$WORK/spec.yaml" <<YAML
migrations:
  - name: bench
    legacy: ["127.0.0.1:$LPORT"]
    target: ["127.0.0.1:$TPORT"]
    client: connection
    mirror: off
    plan: {steps: [100%], bake: 1h, min_samples: 1000000}
YAML
bench_daemon "$WORK/spec.yaml"
echo "== SetRatio → first new connection (40 flips)"
/usr/bin/python3 bench/cutover_bench.py ratio "$WORK/sy.sock" "$CG" "$LPORT" "$TPORT" 40
mkdir "$CG/holder"
echo "== rollback --drain with 200 client connections on target"
/usr/bin/python3 bench/cutover_bench.py drain "$WORK/sy.sock" "$CG/holder" "$LPORT" "$TPORT" 200
rmdir "$CG/holder" 2>/dev/null || true
