# SPDX-License-Identifier: Apache-2.0
"""`make demo` runs in CI as a test: the whole first impression (backfill, shadow,
verify, a plan walked with live telemetry, a fault on the target caught by the p99 gate
and rolled back with a drain, the plan walked again to completion, the summary) must
end with 0 writes lost, within 3 minutes, and clean up after itself."""
import os
import re
import subprocess
import time

from sy import OUT, ROOT


def test_make_demo_non_interactive(bpf_env):
    def demo_pins():  # the demo's own (other tests may run beside it)
        return {x for x in os.listdir("/sys/fs/bpf") if x.startswith("sy-demo-")}

    before_cg = demo_pins()
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "packaging", "demo.sh")], capture_output=True, text=True,
                       env=dict(os.environ, OUT=OUT, DEMO_NONINTERACTIVE="1"), timeout=240)
    took = time.monotonic() - t0
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert took < 180, "the demo took %.0f s" % took
    # every chapter happened, in order
    marks = ["dashboard: http://127.0.0.1:", "cutover demo start", "pending -> backfilling",
             "backfilling -> shadowing", "shadowing -> verifying",
             "verifying -> cutting-over step 1/4", "step 3/4 (50%)", "FAULT",
             "cutting-over -> rolled-back", "gate p99_ratio breached", "cutover.drained",
             "rolled-back -> backfilling", "-> completed", "summary"]
    at = 0
    for m in marks:
        i = out.find(m, at)
        assert i >= 0, "missing (or out of order): %r\n%s" % (m, out[-6000:])
        at = i
    assert re.search(r"writes lost: 0 \(legacy 0, target 0\)", out)
    assert re.search(r"differences: 0;", out)
    assert "pool connections now: legacy 16, target 0" in out
    assert re.search(r"^  (legacy|target) ", out, re.M), "no live view of both sides"
    # cleaned up: no pins, cgroups or work folders left behind
    assert demo_pins() == before_cg
    assert "cleaned up" in out
