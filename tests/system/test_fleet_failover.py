# SPDX-License-Identifier: Apache-2.0
"""Fleet mode (docs/fleet.md), what a fleet must survive: the leader killed -9 in the
middle of a plan, a node joining late, the watched revision compacted away under a
node whose watch fell behind, and two nodes' clients writing one key from opposite
sides. The etcd member and the nodes are test_fleet.py's fixtures (lease TTL 3 s).
"""
import base64
import json
import os
import re
import signal
import time

from grpc_util import channel, pb, unary
from sy import free_port, run_clients, spec_yaml, wait_for
from test_fleet import etcd, nodes  # noqa: F401 (fixtures)
from test_fleet import CTL, PREFIX, TTL_S, apply_users, fill, first_step_everywhere, fleet_events, served_port, status, \
    verify_call, wait_target_healthy
from test_fleet import pytestmark  # noqa: F401 (skipped without etcd, as test_fleet.py)


def write_plan(node, legacy, target, **extra):
    f = os.path.join(node.d.tmp, "users.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([dict({"name": "users", "legacy": [legacy.addr], "target": [target.addr]}, **extra)]))
    node.syctl("apply", "-f", f)


def target_share(node, legacy, target, conns=100):
    """Of `conns` new connections from the node's cgroup to legacy's address, the share
    the kernel sent to target (client: connection hashes each one)."""
    res = run_clients([{"cgroup": node.cgroup, "addr": legacy.addr, "key": "share-" + node.name, "conns": conns}])
    ports = [c["served_port"] for c in res[0]["conns"]]
    assert set(ports) <= {legacy.port, target.port}, ports
    return ports.count(target.port) / len(ports)


def test_the_leader_killed_mid_plan_a_survivor_goes_on_with_the_bake_left(redis_pair, etcd, nodes):
    """kill -9 the leader while step 1 bakes: another node leads within the TTL, goes on
    at the same step and ends it when the bake that was left ends (not a fresh bake),
    applies no step twice; promote through a survivor moves the fleet; the dead node's
    pinned programs keep its clients at the step it last applied."""
    legacy, target = redis_pair
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    b, c = nodes("b"), nodes("c")
    write_plan(a, legacy, target, client="connection",
               plan={"steps": ["10%", "50%", "100%"], "bake": ["8s", "120s", "1s"], "interval": "100ms"})
    first_step_everywhere(a, (a, b, c), 1000)
    co = b.get()["cutover"]
    bake_until = time.time() * 1000 + int(co["bakeLeftMs"])
    assert co["step"] == 1 and int(co["bakeLeftMs"]) > 6000, co

    time.sleep(1.0)
    a.d.kill9()
    t_kill = time.time()
    new = wait_for(lambda: (lambda l: l if l in ("b", "c") else None)(status(b).get("leader")),
                   timeout=TTL_S + 6, interval=0.1, what="a new leader")
    took_over = time.time() - t_kill
    leader, other = (b, c) if new == "b" else (c, b)
    assert took_over < TTL_S + 3, took_over
    # the same step, still baking: the new leader neither restarted the plan nor the step
    co = leader.get()["cutover"]
    assert co["phaseName"] == "cutting-over" and co["step"] == 1 and leader.ratio() == 1000, co
    wait_for(lambda: other.ratio() == 5000, timeout=15, interval=0.05, what="step 2 (50%) on " + other.name)
    t_step2 = time.time() * 1000
    # step 2 came when the first bake ended; a fresh 8 s bake from the takeover would
    # end at least (took_over + 8 s - 1 s) after the kill
    assert bake_until - 300 <= t_step2 <= bake_until + 1500, (t_step2 - bake_until, took_over)
    assert t_step2 < (t_kill + took_over + 8) * 1000 - 1000
    # the new leader entered step 2 once and never step 1
    steps = [dict(x.attributes).get("step") for x in fleet_events(leader, "cutover.phase")
             if dict(x.attributes).get("to") == "cutting-over"]
    assert steps == ["2"], steps

    # promote through the follower: every live node goes to 100%
    other.syctl("cutover", "users", "promote")
    wait_for(lambda: leader.ratio() == 10000 and other.ratio() == 10000, what="100% on the survivors")
    wait_for(lambda: leader.get()["cutover"].get("phaseName") == "completed", timeout=10, what="plan completed")
    assert target_share(other, legacy, target) == 1.0
    # a is dead: its pinned programs still steer its cgroup at 10%, its last step
    share = target_share(a, legacy, target)
    assert 0 < share < 0.35, share


def test_a_node_joining_late_steers_from_the_store_before_it_is_ready(redis_pair, etcd, nodes):
    legacy, target = redis_pair
    a = nodes("a")
    apply_users(a, legacy, target, "0%")
    r = a.syctl("cutover", "users", "100%", check=False)
    # a change made right after READY once came back "not found": the start's full read,
    # still in flight, undid it (fixed in store_etcd_watch.c); the log goes with a failure
    assert r.returncode == 0, (r.stderr, a.d.read_log()[-6000:])
    gen = pb("switchyard.v1.state").State.FromString(etcd.raw(PREFIX + "/state")).generation
    c = nodes("c")  # returns at READY=1
    # at READY, no wait: the spec and the ratio came from the store's full read, and
    # the kernel steers by them
    assert c.get()["spec"]["legacy"] == [legacy.addr] and c.ratio() == 10000
    assert served_port(c, legacy) == target.port
    node_c = wait_for(lambda: etcd.node_status("c"), what="node c's key")
    assert node_c.applied_revision == gen == 2
    # and it follows what comes next
    a.syctl("cutover", "users", "0%")
    wait_for(lambda: c.ratio() == 0, what="node c at 0%")
    assert served_port(c, legacy) == legacy.port


def test_a_watch_behind_a_compaction_resyncs_from_a_full_read(redis_pair, etcd, nodes):
    """Node b frozen while a commits hundreds of changes: etcd cannot send b's watch
    its events and falls behind; the history is then compacted past where b's watch
    stands. When b wakes, etcd cancels its watch (compacted), and b reads the state in
    full and ends on the latest ratio."""
    legacy, target = redis_pair
    a, b = nodes("a"), nodes("b")
    # a big state (nine migrations with long prefixes and scope: ~18 kB), so that b's
    # unread events exceed its watch stream's 1 MiB window and etcd's buffers in a few
    # hundred changes: etcd then holds b's watch back
    long = [("k%02d:" % i) + "x" * 56 for i in range(16)]
    migs = [{"name": "users", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
             "prefixes": long[:15], "scope": long}]
    migs += [{"name": "m%d" % i, "legacy": ["127.0.0.1:%d" % free_port()], "target": ["127.0.0.1:%d" % free_port()],
              "prefixes": long[:15], "scope": long} for i in range(8)]
    f = os.path.join(a.d.tmp, "many.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml(migs))
    a.syctl("apply", "-f", f)
    wait_for(lambda: b.syctl("get", "m7", check=False).returncode == 0, what="the migrations on node b")
    assert len(etcd.raw(PREFIX + "/state")) > 15000
    c = pb("switchyard.v1.control")
    b.d.proc.send_signal(signal.SIGSTOP)
    try:
        with channel("unix:" + a.d.sock) as ch:
            for i in range(400):
                unary(ch, CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=1 + i % 9999), c.Migration)
            last = unary(ch, CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=7777), c.Migration)
        assert last.spec.ratio_bp == 7777
        rev = int(json.loads(etcd.ctl("get", "-w", "json", PREFIX + "/state").stdout)["header"]["revision"])
        etcd.ctl("compact", str(rev))
    finally:
        b.d.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: b.ratio() == 7777, timeout=20, what="node b on the latest ratio")
    log = b.d.read_log()
    assert re.search(r"watch cancelled \(compacted at \d+", log), \
        "\n".join(l for l in log.splitlines() if "etcd" in l and "elsewhere" not in l)
    assert "reading %s/state again" % PREFIX in log
    # and b is a full member again: a change through it reaches a
    wait_for(lambda: b.syctl("cutover", "users", "25%", check=False).returncode == 0, timeout=15,
             what="node b accepting changes")
    wait_for(lambda: a.ratio() == 2500, what="node a follows node b")


def test_a_cross_node_conflict_is_converged_by_the_leaders_audit(redis_pair, etcd, nodes):
    """A client of node a (pinned to legacy) and one of node b (pinned to target) write
    one key; b's agent is frozen while its client writes, so the two mirrors cross:
    legacy ends with b's value, target with a's. Neither node saw two writers (each sees
    only its own clients), so no conflict rule copies the key; the leader's continuous
    audit with auto_repair finds and repairs it."""
    legacy, target = redis_pair
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    b = nodes("b")
    write_plan(a, legacy, target, ratio="0%", mirror="both", auto_repair="true", audit_every=3,
               pins=[{"cgroup": a.cgroup, "side": "legacy"}, {"cgroup": b.cgroup, "side": "target"}])
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")
    wait_target_healthy(a)
    wait_target_healthy(b)
    lr, tr = legacy.client(), target.client()

    b.d.proc.send_signal(signal.SIGSTOP)  # b's mirror waits; its kernel keeps steering
    try:
        rb = run_clients([{"cgroup": b.cgroup, "addr": legacy.addr, "key": "xnode", "value": "from-b"}])
        assert rb[0]["conns"][0]["served_port"] == target.port
        ra = run_clients([{"cgroup": a.cgroup, "addr": legacy.addr, "key": "xnode", "value": "from-a"}])
        assert ra[0]["conns"][0]["served_port"] == legacy.port
        # a mirrored its client's write onto target, over b's
        wait_for(lambda: tr.get("xnode") == b"from-a", what="a's write mirrored to target")
    finally:
        b.d.proc.send_signal(signal.SIGCONT)
    # b now mirrors its client's older write onto legacy: the sides crossed
    wait_for(lambda: lr.get("xnode") == b"from-b", timeout=10, interval=0.02, what="b's write mirrored to legacy")
    # the leader's audit (every 3 s, repairing) makes them one value again
    wait_for(lambda: lr.get("xnode") == tr.get("xnode"), timeout=20, what="the key converged")
    assert lr.get("xnode") == b"from-b"  # legacy is authoritative with mirror: both
    log_a = a.d.read_log()
    assert re.search(r"users: audit done: \d+ keys scanned, \d+ missing, \d+ extra, \d+ type, [1-9]\d* value",
                     log_a), log_a[-3000:]
    assert "users: audit started" not in b.d.read_log()  # a follower runs no audit


def backfill_request(etcd):
    kv = json.loads(etcd.ctl("get", "-w", "json", PREFIX + "/state").stdout)["kvs"][0]
    return pb("switchyard.v1.state").State.FromString(base64.b64decode(kv["value"])).migrations[0].backfill_request


def test_a_requested_job_whose_taker_died_runs_again_on_the_next_leader_once(redis_pair, etcd, nodes):
    """A backfill asked through a follower and taken by the leader, which is killed -9
    mid-job: the next leader finds the taker gone from the fleet, runs the backfill
    again and takes the request, and its end is recorded in the store; the leader after
    that one does not run it a third time."""
    legacy, target = redis_pair
    keys = 2000
    fill(legacy, "rq", keys)
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    b, c = nodes("b"), nodes("c")
    apply_users(a, legacy, target, "0%")
    for n in (b, c):
        wait_for(lambda n=n: n.syctl("get", "users", check=False).returncode == 0, what="users on " + n.name)

    def backfill_on(node):
        return verify_call(node, "GetBackfill", "GetBackfillRequest", "BackfillStatus", migration="users")

    st = verify_call(b, "StartBackfill", "StartBackfillRequest", "BackfillStatus", migration="users",
                     keys_per_s=250)
    assert st.state == "requested" and st.node == "a", st
    wait_for(lambda: (lambda s: s.state == "running" and s.node == "a" and s.copied > 0)(backfill_on(b)),
             timeout=15, interval=0.1, what="a's backfill running, seen through b")
    first = backfill_request(etcd)
    assert first.taken_by == "a" and first.finished_unix_ms == 0, first
    a.d.kill9()
    assert target.client().dbsize() < keys  # a died before it ended

    new = wait_for(lambda: (lambda l: l if l in ("b", "c") else None)(status(b).get("leader")),
                   timeout=TTL_S + 6, interval=0.1, what="a new leader")
    leader, other = (b, c) if new == "b" else (c, b)
    done = wait_for(lambda: (lambda s: s if s.state == "done" and s.node == leader.name else None)(backfill_on(other)),
                    timeout=45, interval=0.2, what="the backfill run again by %s, done" % leader.name)
    # run from the start: every key scanned again, and target holds them all
    assert done.scanned >= keys and done.started_unix_ms > first.started_unix_ms, done
    assert target.client().dbsize() == keys
    assert legacy.client().mget(["rq:0", "rq:1999"]) == target.client().mget(["rq:0", "rq:1999"])
    log = leader.d.read_log()
    assert log.count("was taken by node a, which left the fleet before it ended: it runs again here") == 1, log
    assert "runs again here" not in other.d.read_log()
    # the request, taken by the new leader, with its job's end recorded
    q = wait_for(lambda: (lambda q: q if q.finished_unix_ms else None)(backfill_request(etcd)), timeout=5,
                 what="the backfill's end in the store")
    assert (q.nonce, q.node, q.taken_by, q.keys_per_s) == (first.nonce, "b", leader.name, 250), q
    assert q.started_unix_ms == done.started_unix_ms and q.finished_unix_ms == done.finished_unix_ms, (q, done)

    # the job ended: the leader after this one does not run it again
    leader.d.kill9()
    wait_for(lambda: status(other).get("leader") == other.name, timeout=TTL_S + 6, interval=0.1,
             what="%s leading" % other.name)
    time.sleep(2.5)  # more than two looks at the taken requests (each second)
    log = other.d.read_log()
    assert "users: backfill started" not in log and "runs again" not in log, log
    assert backfill_request(etcd).taken_by == leader.name
