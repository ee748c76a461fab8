# SPDX-License-Identifier: Apache-2.0
"""Connect-time steering against the real kernel and real redis-servers.

Where a connection went is read from the servers themselves: the key it wrote, and the
port the server that answered reports (CONFIG GET port), not from our own counters."""
import json
import math
import os
import re
import signal
import subprocess
import time

import pytest

from sy import (CLIENT, OUT, PYTHON, RedisServer, free_port, run_clients, spec_yaml, wait_for)


def mig(legacy, target, ratio="0%", **kw):
    # where a client's key lands is how these tests see steering: no shadow writes
    d = {"name": kw.pop("name", "users"), "legacy": [legacy.addr], "target": [target.addr], "ratio": ratio,
         "mirror": "off"}
    d.update(kw)
    return d


def child_cgroups(parent, n, prefix="c"):
    paths = []
    for i in range(n):
        p = os.path.join(parent, "%s%03d" % (prefix, i))
        os.mkdir(p)
        paths.append(p)
    return paths


def sides(results, legacy, target):
    """client cgroup → "legacy" | "target", checked on the servers."""
    lc, tc = legacy.client(), target.client()
    out = {}
    for r in results:
        for c in r["conns"]:
            on_l, on_t = lc.exists(c["key"]), tc.exists(c["key"])
            assert on_l + on_t == 1, "key %s on %d servers" % (c["key"], on_l + on_t)
            side = "target" if on_t else "legacy"
            assert c["served_port"] == (target.port if on_t else legacy.port)
            one = r["job"].get("conns", 1) == 1 and r["job"].get("cgroup")
            out[r["job"]["cgroup"] if one else c["key"]] = side
    return out


def binomial_bound(n, p, z=3.29):
    """99.9 % two-sided normal approximation of a binomial count."""
    sd = math.sqrt(n * p * (1 - p))
    return n * p - z * sd, n * p + z * sd


def test_ratio_zero_then_full(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([mig(legacy, target, "0%")]))
    cgs = child_cgroups(cgroup, 20)
    res = run_clients([{"cgroup": c, "addr": legacy.addr, "key": "a:%d" % i} for i, c in enumerate(cgs)])
    assert set(sides(res, legacy, target).values()) == {"legacy"}

    d.reload(spec_yaml([mig(legacy, target, "10000bp")]))
    res = run_clients([{"cgroup": c, "addr": legacy.addr, "key": "b:%d" % i} for i, c in enumerate(cgs)])
    assert set(sides(res, legacy, target).values()) == {"target"}
    # The application still sees the address it dialled.
    for r in res:
        assert r["conns"][0]["peer"] == ["127.0.0.1", legacy.port]


def test_split_is_binomial_stable_and_monotonic(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    n = 240
    d = daemon_factory(spec_yaml([mig(legacy, target, "30%")]))
    cgs = child_cgroups(cgroup, n)

    def assign(tag):
        res = run_clients([{"cgroup": c, "addr": legacy.addr, "key": "%s:%d" % (tag, i)}
                           for i, c in enumerate(cgs)])
        return sides(res, legacy, target)

    first = assign("r1")
    on_target = sum(1 for s in first.values() if s == "target")
    lo, hi = binomial_bound(n, 0.30)
    assert lo <= on_target <= hi, "%d of %d on target at 30%%" % (on_target, n)

    again = assign("r2")
    assert again == first, "same clients at the same ratio must keep their side"

    d.reload(spec_yaml([mig(legacy, target, "6000bp")]))
    raised = assign("r3")
    moved_back = [c for c in cgs if first[c] == "target" and raised[c] == "legacy"]
    assert moved_back == []
    on_target = sum(1 for s in raised.values() if s == "target")
    lo, hi = binomial_bound(n, 0.60)
    assert lo <= on_target <= hi, "%d of %d on target at 60%%" % (on_target, n)


def test_connection_mode_splits_one_process(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    daemon_factory(spec_yaml([mig(legacy, target, "50%", client="connection")]))
    n = 200
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "conn", "conns": n}])
    s = sides(res, legacy, target)
    on_target = sum(1 for v in s.values() if v == "target")
    lo, hi = binomial_bound(n, 0.5)
    assert lo <= on_target <= hi, "%d of %d connections on target" % (on_target, n)


def test_pins_override_hash_both_ways(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    a, b, c = child_cgroups(cgroup, 3)
    d = daemon_factory(spec_yaml([mig(legacy, target, "0%", pins=[{"cgroup": a, "side": "target"}])]))
    res = run_clients([{"cgroup": a, "addr": legacy.addr, "key": "pa"},
                       {"cgroup": c, "addr": legacy.addr, "key": "pc"}])
    assert sides(res, legacy, target) == {a: "target", c: "legacy"}

    d.reload(spec_yaml([mig(legacy, target, "100%", pins=[{"cgroup": b, "side": "legacy"}])]))
    res = run_clients([{"cgroup": a, "addr": legacy.addr, "key": "pa2"},
                       {"cgroup": b, "addr": legacy.addr, "key": "pb2"},
                       {"cgroup": c, "addr": legacy.addr, "key": "pc2"}])
    assert sides(res, legacy, target) == {a: "target", b: "legacy", c: "target"}


def test_ipv6_and_getpeername(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    spec = {"name": "v6", "legacy": [legacy.addr6], "target": [target.addr6], "ratio": "100%", "mirror": "off"}
    daemon_factory(spec_yaml([spec]))
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr6, "key": "six"}])
    assert sides(res, legacy, target) == {cgroup: "target"}
    assert res[0]["conns"][0]["peer"][:2] == ["::1", legacy.port]
    assert res[0]["conns"][0]["peer_after"][:2] == ["::1", legacy.port]


def test_getpeername_v4_before_and_after_the_first_request(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    daemon_factory(spec_yaml([mig(legacy, target, "100%")]))
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "gp4", "conns": 3}])
    for c in res[0]["conns"]:
        assert c["served_port"] == target.port
        assert c["peer"] == ["127.0.0.1", legacy.port]
        assert c["peer_after"] == ["127.0.0.1", legacy.port]


def test_other_ports_and_outside_processes_untouched(redis_pair, daemon_factory, cgroup, tmp_path):
    legacy, target = redis_pair
    other = RedisServer(tmp_path / "other")
    try:
        daemon_factory(spec_yaml([mig(legacy, target, "100%")]))
        res = run_clients([{"cgroup": cgroup, "addr": other.addr, "key": "o1"},
                           {"cgroup": None, "addr": legacy.addr, "key": "outside"}])
        assert res[0]["conns"][0]["served_port"] == other.port
        assert other.client().exists("o1") == 1
        assert res[1]["conns"][0]["served_port"] == legacy.port
        assert legacy.client().exists("outside") == 1 and target.client().exists("outside") == 0
    finally:
        other.stop()


def test_unhealthy_target_falls_back_to_legacy(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    daemon_factory(spec_yaml([mig(legacy, target, "100%")]), health_interval="300ms",
                   health_timeout="100ms")

    def served():
        try:
            return run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "h"}])[0]["conns"][0]["served_port"]
        except AssertionError:
            return None  # refused: the target is down and the flag not flipped yet

    assert served() == target.port
    target.stop()
    t0 = time.monotonic()
    wait_for(lambda: served() == legacy.port, timeout=5, what="fallback to legacy")
    # One interval plus the check itself: the flag flips on the first failed check.
    assert time.monotonic() - t0 < 0.3 + 0.1 + 0.5
    target.start()
    wait_for(lambda: served() == target.port, timeout=5, what="steering to resume")


def bpftool_cgroup_progs(cgroup):
    out = subprocess.run(["bpftool", "-j", "cgroup", "show", cgroup], capture_output=True, text=True,
                         check=True).stdout
    return sorted(p["attach_type"] for p in json.loads(out.strip() or "[]"))


EXPECTED_ATTACH = sorted(["cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_inet4_getpeername",
                          "cgroup_inet6_getpeername", "cgroup_inet_egress", "cgroup_inet_ingress"])


def test_kill9_is_fail_static_and_restart_adopts(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([mig(legacy, target, "100%")]))
    assert bpftool_cgroup_progs(cgroup) == EXPECTED_ATTACH
    job = {"cgroup": cgroup, "addr": legacy.addr, "seconds": 12, "pause": 0.002}
    loop = subprocess.Popen([PYTHON, CLIENT, "--loop", json.dumps(job)], stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    d.kill9()
    time.sleep(3)
    # Daemon dead: new connections are still steered by the pinned programs.
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "while-dead"}])
    assert res[0]["conns"][0]["served_port"] == target.port
    d.start()
    assert "adopting pinned programs" in d.read_log()
    out, _ = loop.communicate(timeout=30)
    summary = json.loads(out)
    assert summary["errors"] == 0, summary
    assert summary["ok"] > 100
    assert set(summary["ports"]) == {str(target.port)}
    # Exactly one attachment of each program: the restart adopted, it did not attach again.
    assert bpftool_cgroup_progs(cgroup) == EXPECTED_ATTACH


def test_restart_resumes_state_without_config(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([mig(legacy, target, "100%")]))
    before = d.state_bytes()
    d.stop()
    os.unlink(d.config)
    d.start()
    assert d.state_bytes() == before
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "resumed"}])
    assert res[0]["conns"][0]["served_port"] == target.port


def test_uninstall_detaches_everything(redis_pair, daemon_factory, cgroup, bpffs):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([mig(legacy, target, "100%")]))
    d.stop()
    assert bpftool_cgroup_progs(cgroup) == EXPECTED_ATTACH  # still steering after a clean stop
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", bpffs],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert bpftool_cgroup_progs(cgroup) == []
    assert not os.path.exists(bpffs)
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "after"}])
    assert res[0]["conns"][0]["served_port"] == legacy.port


def test_agent_own_sockets_are_not_steered(redis_pair, daemon_factory, cgroup):
    """The daemon lives inside the cgroup it steers (as on a host where it attaches to
    the root). Its health checks of the legacy endpoint must reach legacy."""
    legacy, target = redis_pair
    agent_cg = os.path.join(cgroup, "agent")
    os.mkdir(agent_cg)
    daemon_factory(spec_yaml([mig(legacy, target, "100%")]), in_cgroup=agent_cg,
                   health_interval="100ms", health_timeout="50ms")

    def conns(server):
        info = server.client().info("stats")
        return info["total_connections_received"]

    l0, t0 = conns(legacy), conns(target)
    time.sleep(1.0)
    l1, t1 = conns(legacy), conns(target)
    # About 10 checks each in that second; the test's own INFO calls add one each.
    assert l1 - l0 >= 5, "legacy health checks were steered away (%d)" % (l1 - l0)
    assert t1 - t0 >= 5
    assert abs((l1 - l0) - (t1 - t0)) <= 3
