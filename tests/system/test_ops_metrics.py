# SPDX-License-Identifier: Apache-2.0
"""What the runbooks rely on, in /metrics (docs/operations.md, "Metrics"): each gate's
threshold and value, every endpoint's health, backfill and audit progress, needs-audit
and dirty keys — read from a real scrape while a plan runs, each value checked against
what the daemon says through the API; and the names pass `promtool check metrics`."""
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from grpc_util import channel, pb, stream, unary
from sy import free_port, make_cgroup, spawn_py_redis, spec_yaml, wait_for

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def scrape(url):
    body = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    out = {}
    for line in body.splitlines():
        m = LINE.match(line)
        if m and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            out.setdefault(m.group(1), []).append((labels, float(m.group(4))))
    return body, out


def value(series, name, **labels):
    got = [v for lab, v in series.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(got) == 1, "%s%s: %s" % (name, labels, series.get(name))
    return got[0]


def get_migration(d, name="m"):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        return unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name=name), c.Migration)


def test_gates_health_jobs_and_mirror_figures(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    lr = legacy.client()
    for i in range(120):
        lr.set("k:%d" % i, "v%d" % i)
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    plan = {"steps": ["100%"], "bake": "60s", "interval": "250ms", "window": "2s", "min_samples": 5,
            "min_p99": "50ms", "backfill": True, "shadow": "200ms", "verify": True, "advance": "manual",
            "gates": {"error_rate": "2%", "p99_ratio": 4, "drift_rate": {"max": 3, "on_breach": "pause"}}}
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr],
                                   "client": "connection", "plan": plan}]),
                       extra=["--metrics", "127.0.0.1:%d" % port])
    body, s = scrape(url)
    # thresholds as the plan sets them; no value before an evaluation
    assert value(s, "switchyard_gate_threshold", migration="m", gate="error_rate") == 0.02
    assert value(s, "switchyard_gate_threshold", migration="m", gate="p99_ratio") == 4
    assert value(s, "switchyard_gate_threshold", migration="m", gate="drift_rate") == 3
    assert not [1 for lab, _ in s.get("switchyard_gate_threshold", []) if lab["gate"] == "error_ratio"]
    assert "switchyard_gate_value" not in s
    # both endpoints checked and healthy; nothing running yet
    assert value(s, "switchyard_endpoint_healthy", migration="m", side="legacy", endpoint=legacy.addr) == 1
    assert value(s, "switchyard_endpoint_healthy", migration="m", side="target", endpoint=target.addr) == 1
    for job in ("backfill", "audit"):
        assert value(s, "switchyard_%s_running" % job, migration="m") == 0
    assert value(s, "switchyard_mirror_needs_audit", migration="m") == 0
    assert value(s, "switchyard_mirror_dirty", migration="m") == 0

    # the plan: backfill and audit run to their totals, then the step's gates evaluate
    d.syctl("cutover", "m", "start")
    wait_for(lambda: "cutting-over" in d.syctl("status", "m").stdout, timeout=60, what="cutting-over")
    _, s = scrape(url)
    assert value(s, "switchyard_backfill_scanned", migration="m") == 120
    assert value(s, "switchyard_backfill_keys", migration="m") == 120
    assert value(s, "switchyard_audit_scanned", migration="m") == value(s, "switchyard_audit_keys", migration="m")
    assert value(s, "switchyard_audit_keys", migration="m") >= 120
    cg = make_cgroup(os.path.join(cgroup, "client"))
    # traffic through the whole check: the gates need min_samples in their window
    client = spawn_py_redis(cg, legacy.addr, "import time\nend = time.time() + 20\nwhile time.time() < end:\n"
                            "    r.get('k:1')\n    time.sleep(0.002)\n")
    try:
        # drift_rate has a value at once; the client gates once min_samples are in the window
        wait_for(lambda: len(scrape(url)[1].get("switchyard_gate_value", [])) == 3, timeout=20,
                 what="three gate values")
        _, s = scrape(url)
        api = {g.gate: g for g in get_migration(d).cutover.gates}
        assert value(s, "switchyard_gate_value", migration="m", gate="error_rate") == 0
        assert value(s, "switchyard_gate_value", migration="m", gate="drift_rate") == 0
        assert value(s, "switchyard_gate_value", migration="m", gate="p99_ratio") >= 0
        for g in ("error_rate", "p99_ratio", "drift_rate"):
            assert api[g].threshold == value(s, "switchyard_gate_threshold", migration="m", gate=g)
        assert "error_ratio" not in api  # off: not in the plan
        assert value(s, "switchyard_cutover_state", migration="m", state="cutting-over") == 1
    finally:
        client.kill()
        client.wait()

    # the target goes away: its health series says so
    target.stop()
    wait_for(lambda: value(scrape(url)[1], "switchyard_endpoint_healthy", migration="m", side="target",
                           endpoint=target.addr) == 0, timeout=10, what="target unhealthy")


def test_names_pass_promtool(redis_pair, daemon_factory, tmp_path):
    if not shutil.which("promtool"):
        pytest.skip("promtool not installed (packaging/deps.sh: prometheus)")
    legacy, target = redis_pair
    port = free_port()
    plan = {"steps": ["100%"], "gates": {"error_rate": "1%"}}
    daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr], "plan": plan}]),
                   extra=["--metrics", "127.0.0.1:%d" % port])
    body, s = scrape("http://127.0.0.1:%d" % port)
    for name in ("switchyard_gate_threshold", "switchyard_endpoint_healthy", "switchyard_backfill_keys",
                 "switchyard_audit_scanned", "switchyard_mirror_needs_audit", "switchyard_mirror_dirty"):
        assert name in s, name
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_needs_audit_is_a_metric_and_an_event_with_the_reason(redis_pair, daemon_factory):
    """An agent killed with mirroring on may have lost writes in flight: the next start
    flags the migration needs-audit — 1 in /metrics, and one mirror.needs_audit event
    per direction saying why."""
    legacy, target = redis_pair
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr],
                                   "mirror": "both"}]), extra=["--metrics", "127.0.0.1:%d" % port])
    assert value(scrape(url)[1], "switchyard_mirror_needs_audit", migration="m") == 0
    d.kill9()
    d.start()
    assert value(scrape(url)[1], "switchyard_mirror_needs_audit", migration="m") == 1
    ev = pb("switchyard.v1.events")
    with channel("unix:" + d.sock) as ch:
        got = [e for e in stream(ch, "/switchyard.v1.Telemetry/Events", ev.EventsRequest(since_seq=0), ev.Event,
                                 timeout=10) if e.kind == "mirror.needs_audit"]
    assert sorted(dict(e.attributes)["direction"] for e in got) == ["forward", "reverse"]
    assert all("without draining its mirror" in dict(e.attributes)["reason"] and e.migration == "m" for e in got)
