# SPDX-License-Identifier: Apache-2.0
"""The dashboard in a real browser: Debian's chromium, headless, driven by npm's
playwright-core (tests/browser/dashboard.mjs) against a real daemon with a manual
plan and a workload that reconnects for every request (so both sides get clients).
The page shows the migration, follows the plan as it starts and bakes, draws the
watch stream's charts (both sides, the ratio reaching the current step, the gates
against their thresholds), and a PROMOTE click with the token advances it (checked
through syctl too); the nodes panel is hidden here (no fleet: /api/v1/nodes is 404)
and renders a fleet's answer (mocked by the browser). Screenshots land in
$OUT/browser/. Missing chromium, node or playwright-core is a skip, and so a
failure in CI (SWITCHYARD_REQUIRE_BPF=1): packaging/deps.sh installs all three."""
import json
import os
import re
import shutil
import subprocess

import pytest

from sy import OUT, free_port, make_cgroup, spawn_py_redis, spec_yaml

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "..", "browser")
TOKEN = "browser-test-token"


def _browser_ready():
    if not os.path.exists("/usr/bin/chromium"):
        return "no /usr/bin/chromium (packaging/deps.sh installs Debian's chromium)"
    if not shutil.which("node"):
        return "no node on PATH"
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        if not shutil.which("npm"):
            return "no npm to install playwright-core"
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BROWSER_DIR,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return "npm ci in tests/browser failed: " + r.stderr[-500:]
    return None


# A client that reconnects for every request (client: connection), so the ratio splits
# the connections between the sides; it stops when the stop file appears.
WORKLOAD = """
import os, time
host, port = r.connection_pool.connection_kwargs["host"], r.connection_pool.connection_kwargs["port"]
end = time.time() + 150
i = 0
while time.time() < end and not os.path.exists(STOP):
    c = redis.Redis(host=host, port=port)
    c.set("k:%d" % (i % 100), i)
    c.get("k:%d" % (i % 100))
    c.close()
    i += 1
    time.sleep(0.01)
"""


def test_dashboard_follows_a_plan_and_promotes_it(redis_pair, daemon_factory, cgroup, tmp_path):
    why = _browser_ready()
    if why:
        pytest.skip(why)
    legacy, target = redis_pair
    port = free_port()
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    os.chmod(tok, 0o600)
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr],
                                   "client": "connection",
                                   "plan": {"steps": ["10%", "50%", "100%"], "bake": "1s", "advance": "manual",
                                            "interval": "200ms", "min_samples": 0,
                                            "gates": {"error_rate": "50%", "drift_rate": 1000}}}]),
                       extra=["--http", "127.0.0.1:%d" % port, "--http-token-file", str(tok)])
    stop = tmp_path / "stop"
    work_cg = os.path.join(cgroup, "work")
    make_cgroup(work_cg)
    client = spawn_py_redis(work_cg, legacy.addr, "STOP = %r\n" % str(stop) + WORKLOAD)
    shots = os.path.join(OUT, "browser")
    os.makedirs(shots, exist_ok=True)
    shot = os.path.join(shots, "dashboard.png")
    if os.path.exists(shot):
        os.unlink(shot)
    try:
        r = subprocess.run(["node", os.path.join(BROWSER_DIR, "dashboard.mjs"), "http://127.0.0.1:%d/" % port,
                            os.path.join(OUT, "syctl"), d.sock, TOKEN, shot],
                           cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120)
    finally:
        stop.write_text("")
        try:
            client.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            client.kill()
            client.communicate()
    assert r.returncode == 0 and "dashboard: ok" in r.stdout, r.stdout + r.stderr + d.read_log()[-2000:]
    assert os.path.getsize(shot) > 10000
    assert "nodes panel: ok" in r.stdout
    # what the page did went through the same service as syctl: the plan is paused at
    # step 2, and the actions are events naming the http door
    m = json.loads(d.syctl("-o", "json", "get", "m").stdout)
    assert m["cutover"]["step"] == 2 and m["cutover"]["phaseName"] == "paused"
    evs = [json.loads(x) for x in d.syctl("-o", "json", "events").stdout.splitlines() if x.strip()]
    acts = [e["attributes"]["action"] for e in evs if e["kind"] == "http.action"]
    assert acts == ["promote", "pause"]
    # connections per side, as the nodes table shows them (the workload connects for each
    # request, on both sides from 10 %)
    mine = [n for n in json.loads(d.syctl("-o", "json", "nodes").stdout)["nodes"] if n.get("self")]
    mig = mine[0]["migrations"][0]
    assert int(mig["connectionsLegacy"]) > 0 and int(mig["connectionsTarget"]) > 0, mig
    assert re.search(r"^  m +ratio 50% +requests \d+  errors \d+  connections [1-9]\d*/[1-9]\d*$",
                     d.syctl("nodes").stdout, re.M), d.syctl("nodes").stdout


def test_without_the_charting_library_the_page_works_and_says_so(redis_pair, daemon_factory, tmp_path):
    why = _browser_ready()
    if why:
        pytest.skip(why)
    legacy, target = redis_pair
    port = free_port()
    empty = tmp_path / "js"
    empty.mkdir()
    daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr], "ratio": "25%",
                               "plan": {"steps": ["25%", "100%"], "advance": "manual"}}]),
                   extra=["--http", "127.0.0.1:%d" % port, "--http-js-dir", str(empty)])
    shots = os.path.join(OUT, "browser")
    os.makedirs(shots, exist_ok=True)
    shot = os.path.join(shots, "dashboard-nocharts.png")
    r = subprocess.run(["node", os.path.join(BROWSER_DIR, "dashboard_nocharts.mjs"), "http://127.0.0.1:%d/" % port,
                        shot], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "nocharts: ok" in r.stdout, r.stdout + r.stderr
    assert os.path.getsize(shot) > 10000
