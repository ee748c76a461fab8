"""observe.bpf.c: bytes, request → first-answer-byte latency and error answers, per
migration and side, measured in the kernel and read through the Control API; checked
against what the clients themselves sent, received and timed."""
import json
import os
import subprocess

import pytest

from grpc_util import channel, pb, unary
from sy import CLIENT, PYTHON, RedisServer, spec_yaml


def script(job):
    r = subprocess.run([PYTHON, CLIENT, "--script", json.dumps(job)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sides(d, name="obs"):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        m = unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name=name), c.Migration)
    return {s.side: s for s in m.sides}


@pytest.fixture
def setup(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target", extra=["--enable-debug-command", "yes"])
    a, b = os.path.join(cgroup, "a"), os.path.join(cgroup, "b")
    os.mkdir(a)
    os.mkdir(b)
    d = daemon_factory(spec_yaml([{"name": "obs", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                                   "pins": [{"cgroup": b, "side": "target"}]}]))
    yield d, legacy, target, a, b
    legacy.stop()
    target.stop()


def test_latency_per_side_matches_the_clients(setup):
    d, legacy, target, a, b = setup
    slow = script({"cgroup": b, "addr": legacy.addr, "commands": [["DEBUG", "SLEEP", "0.02"]] * 20})
    fast = script({"cgroup": a, "addr": legacy.addr, "commands": [["PING"]] * 20})
    s = sides(d)
    assert s["target"].exchanges == 20 and s["legacy"].exchanges == 20
    client_p50_us = sorted(slow["times"])[10] * 1e6
    # The kernel's p50 is the upper bound of its log2 bucket: at least the client's
    # sleep, at most twice the client's own measurement (plus a bucket for jitter).
    assert s["target"].p50_us >= 10000
    assert 20000 <= s["target"].p50_us <= 2 * client_p50_us + 2000, (s["target"].p50_us, client_p50_us)
    assert s["legacy"].p50_us < 5000
    assert s["legacy"].p99_us <= 2 * max(fast["times"]) * 1e6 + 1000


def test_bytes_are_exact_and_errors_counted_per_side(setup):
    d, legacy, target, a, b = setup
    legacy.client().set("str", "v")
    target.client().set("str", "v")
    cmds = [["SET", "k%d" % i, "x" * i] for i in range(30)] + [["NOSUCHCOMMAND"]] * 5 + [["LPUSH", "str", "v"]] * 3
    la = script({"cgroup": a, "addr": legacy.addr, "commands": cmds})
    tb = script({"cgroup": b, "addr": legacy.addr, "commands": [["GET", "k1"]] * 7})
    s = sides(d)
    assert la["kinds"].count("-") == 8
    assert s["legacy"].bytes_out == la["sent"] and s["legacy"].bytes_in == la["got"]
    assert s["target"].bytes_out == tb["sent"] and s["target"].bytes_in == tb["got"]
    assert s["legacy"].errors == 8 and s["target"].errors == 0
    assert s["legacy"].sockets == 1 and s["target"].sockets == 1


def test_pipelined_bursts_give_sane_samples(setup):
    d, legacy, target, a, b = setup
    r = script({"cgroup": a, "addr": legacy.addr, "pipeline": True, "commands": [["SET", "p", "1"]] * 500})
    s = sides(d)["legacy"]
    assert s.bytes_out == r["sent"] and s.bytes_in == r["got"]
    assert 1 <= s.exchanges <= 500
    assert s.p99_us <= 2 * r["times"][0] * 1e6 + 1000  # no sample longer than the whole burst


def test_other_ports_and_outside_processes_are_not_observed(setup, tmp_path):
    d, legacy, target, a, b = setup
    other = RedisServer(tmp_path / "other")
    try:
        script({"cgroup": a, "addr": other.addr, "commands": [["PING"]] * 5})
        script({"cgroup": None, "addr": legacy.addr, "commands": [["PING"]] * 5})
        s = sides(d)
        assert s["legacy"].bytes_out == 0 and s["legacy"].exchanges == 0 and s["legacy"].sockets == 0
        assert s["target"].bytes_out == 0
    finally:
        other.stop()
