# SPDX-License-Identifier: Apache-2.0
"""Divergence the mirror cannot repair by itself must be flagged when it happens
(issue 18, defects 4 and 5): a target that restarts empty (a new INFO run_id seen by
the health check → needs-audit with the reason, an `endpoint.restarted` event, the
plan's server_restart gate, and with auto_repair a backfill that refills it); a script
writing a key it did not declare; a WATCH transaction whose EXEC aborted on its side."""
import os
import time

import pytest

from compare import differences
from sy import RedisServer, py_redis, spec_yaml, wait_for
from test_cutover import Clients, action, events, attrs, migration, phase, wait_phase


def audit_flags(d):
    return {x.direction: (x.needs_audit, x.audit_reason) for x in migration(d).mirror}


def drained(d):
    return all(x.queued == 0 and x.dirty == 0 for x in migration(d).mirror)


def converge(d, legacy, target, timeout=60):
    wait_for(lambda: drained(d), timeout=timeout, what="mirror drained")
    end = time.monotonic() + timeout
    while True:
        n, diffs = differences(legacy.port, target.port)
        if not diffs or time.monotonic() > end:
            return n, diffs
        time.sleep(0.5)


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    clients = Clients(tmp_path, cgroup, legacy.addr)
    a = os.path.join(cgroup, "a")
    os.mkdir(a)

    def start(**extra):
        spec = {"name": "m", "legacy": [legacy.addr], "target": [target.addr], "client": "connection"}
        spec.update(extra)
        return daemon_factory(spec_yaml([spec]))

    yield start, legacy, target, clients, a
    clients.kill()
    legacy.stop()
    target.stop()


def test_target_restarted_empty_is_flagged_paused_and_refilled(env):
    start, legacy, target, clients, _ = env
    lr = legacy.client()
    p = lr.pipeline(transaction=False)
    for i in range(3000):
        p.set("old:%d" % i, "v%d" % i)
    p.execute()
    d = start(auto_repair="true",
              plan={"steps": ["50%", "100%"], "bake": "10m", "interval": "500ms", "window": "3s",
                    "min_samples": 5, "backfill": "true"})
    action(d, "start")
    wait_phase(d, "cutting-over", timeout=60)
    assert migration(d).spec.ratio_bp == 5000
    clients.start(2, mode="reconnect", pause=0.002)
    time.sleep(2)
    assert not any(f for f, _ in audit_flags(d).values()), audit_flags(d)
    target.stop()
    target.start()  # same port, empty: a new run_id
    t0 = time.monotonic()
    wait_for(lambda: any("target restarted (run_id" in r for f, r in audit_flags(d).values() if f),
             timeout=5, interval=0.1, what="needs-audit naming the target's restart")
    assert time.monotonic() - t0 < 5
    m = wait_phase(d, "paused", timeout=5)
    assert "server_restart" in m.cutover.reason and "target restarted" in m.cutover.reason
    assert m.spec.ratio_bp == 5000  # pause holds the step
    ev = events(d, "endpoint.restarted")
    assert ev and attrs(ev[-1])["side"] == "target" and attrs(ev[-1])["endpoint"] == target.addr
    assert attrs(ev[-1])["refill"] == "backfill started", attrs(ev[-1])
    st = d.syctl("status", "m").stdout
    assert "server_restart pause" in st and "target restarted" in st, st
    time.sleep(2)
    clients.stop()
    n, diffs = converge(d, legacy, target)
    assert n >= 3000 and diffs == [], diffs[:5]


def test_server_restart_gate_off_and_invalid(env, tmp_path):
    start, legacy, target, clients, _ = env
    d = start(plan={"steps": ["50%", "100%"], "bake": "10m", "server_restart": "off"})
    action(d, "start")
    wait_phase(d, "cutting-over", timeout=30)
    assert "server_restart off" in d.syctl("status", "m").stdout
    target.stop()
    target.start()
    wait_for(lambda: events(d, "endpoint.restarted"), timeout=5, what="endpoint.restarted")
    assert any(f for f, _ in audit_flags(d).values())  # flagged whatever the gate says
    time.sleep(1)
    assert phase(d) == "cutting-over"
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec_yaml([{"name": "x", "legacy": [legacy.addr], "target": [target.addr],
                               "plan": {"steps": ["100%"], "server_restart": "sometimes"}}]))
    r = d.syctl("apply", "-f", str(bad), check=False)
    assert r.returncode != 0 and "plan.server_restart" in r.stderr, r.stderr


def test_eval_writing_an_undeclared_key_is_flagged(env):
    start, legacy, target, clients, a = env
    d = start(mirror="forward")
    py_redis(a, legacy.addr, "r.set('plain', 1)")
    wait_for(lambda: target.client().get("plain") == b"1", what="a plain write mirrored")
    assert not any(f for f, _ in audit_flags(d).values())
    py_redis(a, legacy.addr, "r.eval(\"redis.call('rpush', 'ev:list', 'x'); "
                             "return redis.call('set', KEYS[1], 'v')\", 1, 'ev:decl')")
    wait_for(lambda: audit_flags(d)["forward"][0], timeout=5, what="needs-audit after EVAL")
    assert "EVAL" in audit_flags(d)["forward"][1]
    # the declared key is copied; the undeclared one is what the flag is about
    wait_for(lambda: target.client().get("ev:decl") == b"v", what="the declared key copied")


def test_watch_aborted_transaction_is_not_left_on_the_other_side(env):
    start, legacy, target, clients, a = env
    d = start(mirror="forward")
    py_redis(a, legacy.addr, "r.set('w:watch', 0)")
    wait_for(lambda: target.client().get("w:watch") == b"0", what="w:watch mirrored")
    out = py_redis(a, legacy.addr, """
import redis as R
p = r.pipeline(transaction=True)
p.watch('w:watch')
R.Redis(host=r.connection_pool.connection_kwargs['host'],
        port=r.connection_pool.connection_kwargs['port']).set('w:watch', 1)
p.multi()
p.set('w:side', 'x')
try:
    p.execute()
    print('committed')
except R.WatchError:
    print('aborted')
""")
    assert out.strip() == "aborted"
    assert legacy.client().get("w:side") is None
    n, diffs = converge(d, legacy, target)
    assert diffs == [], diffs
    assert target.client().get("w:side") is None and target.client().get("w:watch") == b"1"
    f, why = audit_flags(d)["forward"]
    assert f and "WATCH" in why
