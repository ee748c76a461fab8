# SPDX-License-Identifier: Apache-2.0
"""Fleet mode (docs/fleet.md), what only a fleet can show: a gate that only the sum of
the nodes' samples satisfies, and a plan's audit that runs once however many nodes.
The etcd member and the nodes are test_fleet.py's fixtures.
"""
import os
import subprocess
import threading

import pytest
import redis

from sy import RedisServer, _py_redis_argv, spec_yaml, wait_for
from test_fleet import etcd, fill, first_step_everywhere, fleet_events, mig, nodes, status  # noqa: F401
from test_fleet import pytestmark  # noqa: F401 (skipped without etcd, as test_fleet.py)

MIN_SAMPLES = 50
REQUESTS = 60  # per node, each on a new connection (so each connect is steered)


@pytest.fixture
def slow_pair(tmp_path):
    """A legacy and a target redis-server; the target accepts DEBUG SLEEP (test_cutover.py)."""
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target", extra=("--enable-debug-command", "local"))
    yield legacy, target
    legacy.stop()
    target.stop()


def target_slowed(target, stop, sleep_s="0.03"):
    """The target's event loop busy in DEBUG SLEEP slices, from outside every node's
    cgroup (never observed): each client request there waits behind them."""
    r = redis.Redis(host="127.0.0.1", port=target.port, socket_timeout=10)
    while not stop.is_set():
        r.execute_command("DEBUG", "SLEEP", sleep_s)
        threading.Event().wait(0.002)


def few_requests(node, addr):
    """REQUESTS SETs from the node's cgroup, a new connection for each, ~15/s: fewer
    target samples than MIN_SAMPLES on any one node, whatever the split."""
    code = ("import time\n"
            "for i in range(%d):\n"
            "    c = redis.Redis(host=%r, port=%s, socket_timeout=5)\n"
            "    c.set('fg:%s:%%d' %% i, 'v')\n"
            "    c.close()\n"
            "    time.sleep(0.06)\n") % (REQUESTS, addr.rsplit(":", 1)[0], addr.rsplit(":", 1)[1], node.name)
    return subprocess.Popen(_py_redis_argv(node.cgroup, addr, code), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def test_a_p99_gate_only_the_fleets_sum_satisfies_rolls_the_fleet_back(slow_pair, etcd, nodes):
    """min_samples above what any one node can ever send the target, below the sum of
    three: the leader evaluates on the fleet's sums, sees the slow target and rolls every
    node back to 0%."""
    legacy, target = slow_pair
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    b, c = nodes("b"), nodes("c")
    f = os.path.join(a.d.tmp, "plan.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                             "client": "connection",
                             "plan": {"steps": ["50%", "100%"], "bake": "120s", "interval": "500ms",
                                      "window": "10s", "min_samples": MIN_SAMPLES, "min_p99": "5ms",
                                      "gates": {"p99_ratio": 3}}}]))
    a.syctl("apply", "-f", f)
    first_step_everywhere(a, (a, b, c), 5000)

    stop = threading.Event()
    slow = threading.Thread(target=target_slowed, args=(target, stop), daemon=True)
    slow.start()
    procs = [few_requests(n, legacy.addr) for n in (a, b, c)]
    try:
        wait_for(lambda: mig(a).cutover.phase_name == "rolled-back", timeout=45, interval=0.2,
                 what="the fleet rolled back")
    finally:
        stop.set()
        for p in procs:
            p.wait(timeout=60)
        slow.join(timeout=15)
    for p in procs:
        assert p.returncode == 0, p.stderr.read()

    # no node alone ever had MIN_SAMPLES target requests: only the sum could satisfy the gate
    per_node = {n.name: {s.side: s for s in mig(n).sides}["target"].exchanges for n in (a, b, c)}
    assert all(0 < v < MIN_SAMPLES for v in per_node.values()), per_node
    assert sum(per_node.values()) >= MIN_SAMPLES, per_node

    m = mig(a)
    assert "p99_ratio" in m.cutover.reason and "across 3 nodes" in m.cutover.reason, m.cutover.reason
    ev = [dict(x.attributes) for x in fleet_events(a, "cutover.evaluated")]
    br = [x for x in ev if x.get("verdict") == "breach"]
    assert br, ev
    assert br[-1]["nodes"] == "3" and int(br[-1]["samples"]) >= MIN_SAMPLES
    assert float(br[-1]["p99_ratio"]) > 3 and br[-1]["p99_ratio.verdict"] == "breach"
    # below MIN_SAMPLES in the fleet's window the gate waits; it decides only on the sum
    # (before legacy's sum gives a baseline, p99_ratio reads 0 and passes: the bake holds)
    assert all(x["p99_ratio.verdict"] == "waiting" for x in ev if int(x["samples"]) < MIN_SAMPLES), ev
    assert all(int(x["samples"]) >= MIN_SAMPLES for x in ev if x["p99_ratio.verdict"] != "waiting"), ev
    assert all(x["nodes"] == "3" for x in ev if x["p99_ratio.verdict"] != "waiting"), ev
    for n in (b, c):
        assert not fleet_events(n, "cutover.evaluated"), "follower %s evaluated the gates" % n.name
    # one rollback, applied by every node
    rb = [x for x in fleet_events(a, "cutover.phase") if dict(x.attributes).get("to") == "rolled-back"]
    assert len(rb) == 1, rb
    for n in (a, b, c):
        wait_for(lambda n=n: n.ratio() == 0, what="node %s at 0%%" % n.name)
        assert mig(n).cutover.phase_name == "rolled-back"


AUDIT_KEYS = 20000


def scans(server):
    return int(server.client().info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def audited_plan(node, legacy, target, name):
    f = os.path.join(node.d.tmp, name + ".yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([{"name": name, "legacy": [legacy.addr], "target": [target.addr],
                             "plan": {"steps": ["100%"], "bake": "1s", "interval": "200ms", "verify": True}}]))
    node.syctl("apply", "-f", f)


def audit_scans(start_on, everyone, legacy, target, name):
    """Legacy's SCAN calls for a plan whose audit runs before its one step, started
    through start_on; waits for every node to see it completed."""
    for n in everyone:
        wait_for(lambda n=n: n.syctl("get", name, check=False).returncode == 0, what="%s on %s" % (name, n.name))
    before = scans(legacy)
    start_on.syctl("cutover", name, "start")
    for n in everyone:
        wait_for(lambda n=n: n.get(name)["cutover"].get("phaseName") == "completed", timeout=90,
                 what="%s completed on %s" % (name, n.name))
    return scans(legacy) - before


def test_one_audit_on_three_nodes_scans_legacy_as_often_as_on_one(slow_pair, etcd, nodes):
    legacy, target = slow_pair
    for side in (legacy, target):
        fill(side, "au", AUDIT_KEYS)
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    audited_plan(a, legacy, target, "one")
    one = audit_scans(a, [a], legacy, target, "one")

    b, c = nodes("b"), nodes("c")
    for n in (b, c):
        wait_for(lambda n=n: status(n).get("leader") == "a", what="node %s following a" % n.name)
    a.syctl("delete", "one", "--force")  # a legacy endpoint is in one migration at a time
    audited_plan(a, legacy, target, "three")
    three = audit_scans(b, [a, b, c], legacy, target, "three")  # started through a follower

    # 20 000 keys need many SCAN pages: a second or third audit would show as 2x or 3x
    assert one >= 10, one
    assert three <= 1.5 * one, (one, three)
