# SPDX-License-Identifier: Apache-2.0
"""The cutover controller (agent/cutover/cutover.c) with real parts: redis-server pairs, client
processes in test cgroups steered by the kernel, the daemon's gates reading the kernel's
counters, and the plan's phases checked through the Control API (Debian's grpcio) and
syctl. Faults are real: a target made slow with DEBUG SLEEP, a target refusing writes
(maxmemory + noeviction), drift written straight onto the target."""
import json
import math
import os
import subprocess
import threading
import time

import grpc
import pytest
import redis

from compare import differences
from grpc_util import channel, pb, unary, stream
from sy import PYTHON, RedisServer, spec_yaml, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "cutover_client.py")


# ---- helpers ---------------------------------------------------------------------


def migration(d, name="m"):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        return unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name=name), c.Migration)


def action(d, act, name="m", drain=False, reason=""):
    c = pb("switchyard.v1.control")
    cu = pb("switchyard.v1.cutover")
    with channel("unix:" + d.sock) as ch:
        return unary(ch, "/switchyard.v1.Control/Cutover",
                     cu.CutoverRequest(name=name, action=cu.CutoverAction.Value("ACTION_" + act.upper()),
                                      drain=drain, reason=reason), c.Migration)


def phase(d, name="m"):
    return migration(d, name).cutover.phase_name


def wait_phase(d, want, timeout=30, name="m"):
    try:
        wait_for(lambda: phase(d, name) == want, timeout=timeout, interval=0.05, what="phase " + want)
    except AssertionError as e:
        raise AssertionError("%s; now:\n%s" % (e, d.syctl("status", name, check=False).stdout))
    return migration(d, name)


def events(d, kind=None, name="m"):
    e = pb("switchyard.v1.events")
    with channel("unix:" + d.sock) as ch:
        out = list(stream(ch, "/switchyard.v1.Telemetry/Events", e.EventsRequest(migration=name, follow=False),
                          e.Event, timeout=10))
    return [x for x in out if kind is None or x.kind == kind]


def attrs(ev):
    return dict(ev.attributes)


class Clients:
    """cutover_client.py processes, each in its own cgroup under the test's."""

    def __init__(self, tmp, cgroup, addr):
        self.tmp, self.cgroup, self.addr = str(tmp), cgroup, addr
        self.procs = []
        self.stop_file = os.path.join(self.tmp, "stop-clients")
        self.keys_file = os.path.join(self.tmp, "acked-keys")

    def start(self, n, mode="reconnect", conns=1, reads=None, pause=0.002, seconds=300):
        ready = []
        for i in range(n):
            cg = os.path.join(self.cgroup, "c%d" % len(self.procs))
            os.makedirs(cg, exist_ok=True)
            r = os.path.join(self.tmp, "ready-%d" % len(self.procs))
            ready.append(r)
            job = {"addr": self.addr, "cgroup": cg, "mode": mode, "conns": conns, "name": "wl%d" % len(self.procs),
                   "stop_file": self.stop_file, "seconds": seconds, "keys_file": self.keys_file + str(len(self.procs)),
                   "reads": reads or [], "pause": pause, "ready_file": r}
            self.procs.append(subprocess.Popen([PYTHON, CLIENT, json.dumps(job)], stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True))
        wait_for(lambda: all(os.path.exists(r) for r in ready), timeout=30, what="clients connected")

    def stop(self):
        open(self.stop_file, "w").close()
        out = []
        for p in self.procs:
            o, e = p.communicate(timeout=60)
            assert p.returncode == 0, e
            out.append(json.loads(o.strip().splitlines()[-1]))
        self.procs = []
        return out

    def acked_keys(self):
        keys = []
        for f in os.listdir(self.tmp):
            if f.startswith(os.path.basename(self.keys_file)):
                with open(os.path.join(self.tmp, f)) as fh:
                    keys += [line.strip() for line in fh if line.strip()]
        return keys

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    # DEBUG SLEEP makes a slow target (redis 7 refuses DEBUG unless enabled)
    target = RedisServer(tmp_path / "target", extra=("--enable-debug-command", "local"))
    clients = Clients(tmp_path, cgroup, legacy.addr)

    def start(plan, **extra):
        spec = {"name": "m", "legacy": [legacy.addr], "target": [target.addr], "client": "connection",
                "plan": plan}
        spec.update(extra)
        return daemon_factory(spec_yaml([spec]))

    yield start, legacy, target, clients
    clients.kill()
    legacy.stop()
    target.stop()


def mirror_drained(d):
    m = migration(d)
    return all(x.queued == 0 and x.dirty == 0 for x in m.mirror)


def converge(d, legacy, target, timeout=30):
    wait_for(lambda: mirror_drained(d), timeout=timeout, what="mirror drained")
    end = time.monotonic() + timeout
    while True:
        n, diffs = differences(legacy.port, target.port)
        if not diffs or time.monotonic() > end:
            return n, diffs
        time.sleep(0.3)


def target_slowed(target, stop, sleep_s="0.02"):
    """Keeps the target's event loop busy in DEBUG SLEEP slices from outside the test
    cgroup (never observed): every client request there waits behind them."""
    r = redis.Redis(host="127.0.0.1", port=target.port, socket_timeout=10)
    while not stop.is_set():
        r.execute_command("DEBUG", "SLEEP", sleep_s)
        time.sleep(0.002)


def client_conns(server, prefix="wl"):
    """Client connections named by cutover_client.py, from the server's CLIENT LIST."""
    return [c for c in server.client().client_list() if c.get("name", "").startswith(prefix)]


# ---- tests -----------------------------------------------------------------------


def test_happy_path_walks_every_step_and_target_converges(env):
    """Backfill, shadow, verify, then auto-advance through [1%, 5%, 25%, 50%, 100%] with
    2 s bakes. In every step the share of new connections the kernel sent to target
    matches the step (binomial bound on the steering decisions made during the step);
    at the end a full compare of the two servers finds 0 differences."""
    start, legacy, target, clients = env
    lr = legacy.client()
    for i in range(300):
        lr.set("pre:%d" % i, "v%d" % i)
    d = start({"steps": ["1%", "5%", "25%", "50%", "100%"], "bake": "2s", "interval": "250ms",
               "window": "2s", "min_samples": 5, "min_p99": "20ms", "backfill": True, "shadow": "500ms",
               "verify": True, "gates": {"p99_ratio": 4, "error_rate": "5%", "drift_rate": {"max": 5}}})
    assert phase(d) == "pending"
    clients.start(3, mode="reconnect", pause=0.001)
    m = action(d, "start")
    assert m.cutover.phase_name in ("backfilling", "shadowing")
    seen = {}  # step -> (first counters, last counters)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        m = migration(d)
        c = m.cutover
        if c.phase_name == "completed":
            break
        assert c.phase_name not in ("paused", "rolled-back"), c.reason
        if c.phase_name == "cutting-over":
            cnt = (m.counters.legacy, m.counters.target, m.spec.ratio_bp)
            first = seen.get(c.step, (cnt, cnt))[0]
            seen[c.step] = (first, cnt)
        time.sleep(0.05)
    assert phase(d) == "completed", "plan did not complete: %s" % migration(d).cutover
    assert sorted(seen) == [1, 2, 3, 4, 5]
    for step, ((l0, t0, bp), (l1, t1, bp1)) in sorted(seen.items()):
        assert bp == bp1
        n, k, p = (l1 - l0) + (t1 - t0), t1 - t0, bp / 10000
        assert n >= 50, "step %d: only %d connections steered" % (step, n)
        bound = 4.5 * math.sqrt(n * p * (1 - p)) + 2
        assert abs(k - n * p) <= bound, "step %d (%.0f%%): %d of %d on target" % (step, 100 * p, k, n)
    results = clients.stop()
    assert sum(r["failed"] for r in results) == 0
    assert sum(r["acked"] for r in results) > 500
    n, diffs = converge(d, legacy, target)
    assert diffs == [] and n >= 300 + sum(r["acked"] for r in results)
    tos = [attrs(e)["to"] for e in events(d, "cutover.phase")]
    assert tos[:4] == ["backfilling", "shadowing", "verifying", "cutting-over"] and tos[-1] == "completed"
    ev = events(d, "cutover.evaluated")
    assert ev and all("p99_ratio" in attrs(e) and attrs(e)["p99_ratio.max"] == "4" for e in ev)
    # completed keeps reverse mirroring until the operator finishes
    assert migration(d).cutover.phase_name == "completed"
    m = action(d, "finish")
    assert m.cutover.phase_name == "finished" and m.spec.ratio_bp == 10000


def test_latency_gate_rolls_back_with_value_and_threshold(env):
    """The target slowed mid-step (DEBUG SLEEP slices) → the p99-ratio gate breaches and
    the plan rolls back within one evaluation of the slowdown being measurable; the event
    carries the measured value and the threshold."""
    start, legacy, target, clients = env
    d = start({"steps": ["50%", "100%"], "bake": "60s", "interval": "500ms", "window": "2s",
               "min_samples": 20, "min_p99": "5ms", "gates": {"p99_ratio": 3}})
    action(d, "start")
    m = wait_phase(d, "cutting-over")
    assert m.spec.ratio_bp == 5000
    clients.start(2, mode="persistent", conns=8, pause=0.001)  # connected now: half on target
    wait_for(lambda: migration(d).cutover.gates[0].verdict == "pass", timeout=20, what="the gate passing")
    assert phase(d) == "cutting-over", migration(d).cutover.reason
    stop = threading.Event()
    t = threading.Thread(target=target_slowed, args=(target, stop), daemon=True)
    t0 = time.monotonic()
    t.start()
    try:
        m = wait_phase(d, "rolled-back", timeout=15)
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
    assert m.spec.ratio_bp == 0
    assert "p99_ratio" in m.cutover.reason
    # window (2 s) + one interval, with room for a loaded machine
    assert took < 2 + 0.5 + 3, "rollback %.1fs after the slowdown" % took
    ph = [attrs(e) for e in events(d, "cutover.phase") if attrs(e)["to"] == "rolled-back"]
    assert ph and "p99_ratio breached" in ph[-1]["reason"]
    br = [attrs(e) for e in events(d, "cutover.evaluated") if attrs(e)["verdict"] == "breach"]
    assert br and float(br[-1]["p99_ratio"]) > 3 and br[-1]["p99_ratio.max"] == "3"
    assert br[-1]["p99_ratio.verdict"] == "breach"
    # reverse mirroring stays on after the rollback
    assert any(x.direction == "reverse" for x in m.mirror)
    log = d.read_log()
    assert "cutover.phase" in log and "rolled-back" in log
    clients.stop()


def test_error_gate_rolls_back_when_target_refuses_writes(env):
    start, legacy, target, clients = env
    d = start({"steps": ["50%", "100%"], "bake": "60s", "interval": "500ms", "window": "2s",
               "min_samples": 20, "gates": {"error_rate": "2%", "error_ratio": 5}})
    action(d, "start")
    wait_phase(d, "cutting-over")
    clients.start(2, mode="persistent", conns=8, pause=0.001)
    wait_for(lambda: all(g.verdict == "pass" for g in migration(d).cutover.gates), timeout=20,
             what="the gates passing")
    tr = target.client()
    tr.config_set("maxmemory-policy", "noeviction")
    tr.config_set("maxmemory", "1")
    try:
        m = wait_phase(d, "rolled-back", timeout=15)
    finally:
        tr.config_set("maxmemory", "0")
    assert m.spec.ratio_bp == 0
    assert "error_rate" in m.cutover.reason or "error_ratio" in m.cutover.reason
    g = {x.gate: x for x in m.cutover.gates}
    assert g["error_rate"].value > 0.02 or g["error_ratio"].value > 5
    clients.stop()


def test_drift_gate_pauses_when_the_plan_says_pause(env):
    """Drift planted straight on the target (outside the client cgroups: not mirrored)
    is found by dual reads; the drift gate's action is pause: the ratio stays."""
    start, legacy, target, clients = env
    lr, tr = legacy.client(), target.client()
    reads = ["r:%d" % i for i in range(20)]
    for k in reads:
        lr.set(k, "good")
        tr.set(k, "good")
    d = start({"steps": ["50%", "100%"], "bake": "60s", "interval": "500ms", "window": "3s",
               "min_samples": 5, "gates": {"drift_rate": {"max": 0, "on_breach": "pause"},
                                           "p99_ratio": {"max": 1000, "on_breach": "rollback"}}},
              sample_reads=1)
    action(d, "start")
    wait_phase(d, "cutting-over")
    clients.start(2, mode="persistent", conns=4, reads=reads, pause=0.005)
    wait_for(lambda: all(g.verdict == "pass" for g in migration(d).cutover.gates), timeout=20,
             what="the gates passing")
    assert phase(d) == "cutting-over", migration(d).cutover.reason
    for k in reads:
        tr.set(k, "planted")
    m = wait_phase(d, "paused", timeout=20)
    assert "drift_rate" in m.cutover.reason and m.cutover.paused_from == "cutting-over"
    assert m.spec.ratio_bp == 5000  # a pause holds the step
    clients.stop()


def test_rollback_from_50_with_drain_loses_no_acknowledged_write(env):
    """At 50 % with long-lived connections, `rollback --drain`: every client connection
    ends up on legacy (CLIENT LIST on both servers), clients that retry see no failed
    request (only the reconnect), and every acknowledged write is on legacy."""
    start, legacy, target, clients = env
    d = start({"steps": ["50%", "100%"], "bake": "10m", "interval": "500ms", "min_samples": 1000000})
    action(d, "start")
    wait_phase(d, "cutting-over")
    clients.start(4, mode="persistent", conns=10, pause=0.002)
    on_t, on_l = client_conns(target), client_conns(legacy)
    assert len(on_t) + len(on_l) == 40 and 5 <= len(on_t) <= 35, (len(on_t), len(on_l))
    time.sleep(1)  # writes on both sides
    r = d.syctl("cutover", "m", "rollback", "--drain", "--reason", "test")
    assert "rolled-back" in r.stdout and "drained:" in r.stdout
    wait_for(lambda: not client_conns(target), timeout=5, what="no client connection on target")
    wait_for(lambda: len(client_conns(legacy)) == 40, timeout=10, what="every client back on legacy")
    time.sleep(1)
    results = clients.stop()
    m = migration(d)
    assert m.cutover.phase_name == "rolled-back" and m.spec.ratio_bp == 0 and m.cutover.drained >= len(on_t)
    assert sum(x["failed"] for x in results) == 0
    assert sum(x["reconnects"] for x in results) >= len(on_t)
    wait_for(lambda: mirror_drained(d), timeout=30, what="mirror drained")
    keys = clients.acked_keys()
    assert len(keys) > 1000
    lr = legacy.client()
    missing = []
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        missing += [k for k, v in zip(chunk, lr.mget(chunk)) if v is None]
    assert missing == [], "%d acknowledged writes missing on legacy" % len(missing)
    ev = events(d, "cutover.drained")
    assert ev and int(attrs(ev[-1])["connections"]) >= len(on_t)


def test_kill9_mid_bake_resumes_same_step_with_remaining_bake(env):
    start, legacy, target, clients = env
    d = start({"steps": ["10%", "100%"], "bake": ["20s", "1s"], "interval": "500ms", "min_samples": 0})
    action(d, "start")
    m = wait_phase(d, "cutting-over")
    assert m.cutover.step == 1
    time.sleep(3)
    d.kill9()
    time.sleep(2)
    d.start()
    m = migration(d)
    assert m.cutover.phase_name == "cutting-over" and m.cutover.step == 1 and m.spec.ratio_bp == 1000
    left = m.cutover.bake_left_ms
    assert 12000 <= left <= 15500, left  # 20 s - (3 s + 2 s down + start), by wall clock
    # the history of the killed run is still there (STATE_DIR/events.journal)
    before = [attrs(e) for e in events(d, "cutover.phase")]
    assert before and before[0]["from"] == "pending" and before[0]["to"] == "cutting-over"
    try:
        m = wait_phase(d, "completed", timeout=left / 1000 + 10)
    except AssertionError:
        print(d.syctl("status", "m").stdout, d.read_log()[-3000:])
        raise
    assert m.spec.ratio_bp == 10000


def test_manual_plan_promote_pause_resume_and_refusals(env):
    start, legacy, target, clients = env
    d = start({"steps": ["10%", "50%", "100%"], "bake": "500ms", "advance": "manual", "interval": "200ms",
               "min_samples": 0})
    c = pb("switchyard.v1.control")
    m = action(d, "start")
    assert m.cutover.phase_name == "cutting-over" and m.cutover.step == 1 and m.spec.ratio_bp == 1000
    wait_for(lambda: migration(d).cutover.ready, timeout=10, what="step baked")
    time.sleep(1)
    assert migration(d).cutover.step == 1  # manual: no advance without promote
    m = action(d, "promote")
    assert m.cutover.step == 2 and m.spec.ratio_bp == 5000 and not m.cutover.ready
    m = action(d, "pause", reason="investigating")
    assert m.cutover.phase_name == "paused" and "investigating" in m.cutover.reason and m.spec.ratio_bp == 5000
    with pytest.raises(grpc.RpcError) as ei:
        action(d, "promote")
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "paused" in ei.value.details()
    m = action(d, "resume")
    assert m.cutover.phase_name == "cutting-over" and m.cutover.step == 2
    # a ratio set by hand pauses the plan; resume goes back to the step's ratio
    with channel("unix:" + d.sock) as ch:
        m = unary(ch, "/switchyard.v1.Control/SetRatio", c.SetRatioRequest(name="m", ratio_bp=2500), c.Migration)
    assert m.spec.ratio_bp == 2500 and m.cutover.phase_name == "paused" and "by hand" in m.cutover.reason
    m = action(d, "resume")
    assert m.spec.ratio_bp == 5000
    m = action(d, "promote")
    assert m.cutover.phase_name == "cutting-over" and m.cutover.step == 3 and m.spec.ratio_bp == 10000
    m = action(d, "promote")  # the last step (100 %) promoted: completed
    assert m.cutover.phase_name == "completed" and m.spec.ratio_bp == 10000
    before = d.state_bytes()
    for act in ("promote", "start", "resume"):
        with pytest.raises(grpc.RpcError) as ei:
            action(d, act)
        assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "completed" in ei.value.details()
    assert d.state_bytes() == before  # nothing changed
    r = d.syctl("cutover", "m", "promote", check=False)
    assert r.returncode == 1 and "cannot promote" in r.stderr and "completed" in r.stderr
    r = d.syctl("status", "m")
    assert "phase:     completed" in r.stdout and "bake:" not in r.stdout
    r = d.syctl("cutover", "m", "pause", "--drain", check=False)
    assert r.returncode == 2 and "--drain" in r.stderr


def test_status_shows_step_bake_and_gates(env):
    start, legacy, target, clients = env
    d = start({"steps": ["20%", "100%"], "bake": "5m", "interval": "200ms", "min_samples": 0,
               "gates": {"error_rate": "1%", "p99_ratio": 2.5}})
    d.syctl("cutover", "m", "start")
    wait_for(lambda: migration(d).cutover.evaluations >= 2, timeout=10, what="evaluations")
    out = d.syctl("status", "m").stdout
    assert "phase:     cutting-over, step 1 of 2 (20.00%)" in out
    assert "bake:      4m5" in out or "bake:      4m4" in out  # 5m minus a second or two
    # thresholds as the config writes them: a percentage, a factor
    assert "error_rate" in out and "max 1% " in out and "p99_ratio" in out and "max 2.5x " in out
    j = json.loads(d.syctl("-o", "json", "get", "m").stdout)
    assert j["cutover"]["phaseName"] == "cutting-over" and len(j["cutover"]["gates"]) == 2


def test_actions_without_a_plan_or_on_unknown_migrations_are_refused(env, tmp_path):
    start, legacy, target, clients = env
    d = start(None, ratio="0%")
    with pytest.raises(grpc.RpcError) as ei:
        action(d, "start")
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "no plan" in ei.value.details()
    with pytest.raises(grpc.RpcError) as ei:
        action(d, "start", name="nope")
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as ei:
        action(d, "pause", drain=True)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # the ratio by hand still works without a plan
    r = d.syctl("cutover", "m", "30%")
    assert "30.00%" in r.stdout


@pytest.mark.parametrize("plan,msg", [
    ({"steps": ["50%", "25%", "100%"]}, "plan.steps[1]"),
    ({"steps": ["10%", "50%"]}, "the last step must be 100%"),
    ({"steps": ["10%", "100%"], "bake": ["1s"]}, "plan.bake: 1 bake times for 2 steps"),
    ({"steps": ["10%", "100%"], "bake": "5 minutes"}, "plan.bake"),
    ({"steps": ["10%", "100%"], "advance": "sometimes"}, "plan.advance"),
    ({"steps": ["10%", "100%"], "gates": {"latency": 2}}, "unknown field \"latency\""),
    ({"steps": ["10%", "100%"], "gates": {"error_rate": "150%"}}, "plan.gates.error_rate"),
    ({"steps": ["10%", "100%"], "gates": {"p99_ratio": {"max": 2, "on_breach": "panic"}}}, "on_breach"),
    ({"steps": ["10%", "100%"], "interval": "5s", "window": "1s"}, "plan.window"),
    ({"steps": []}, "plan.steps"),
])
def test_bad_plans_are_refused_with_a_clear_message(tmp_path, plan, msg):
    from sy import OUT
    path = tmp_path / "spec.yaml"
    path.write_text(spec_yaml([{"name": "m", "legacy": ["127.0.0.1:1"], "target": ["127.0.0.1:2"],
                                "plan": plan}]))
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and msg in r.stderr, r.stderr
    assert r.stderr.startswith(str(path) + ":")
