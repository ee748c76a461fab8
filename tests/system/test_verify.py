# SPDX-License-Identifier: Apache-2.0
"""Verification (agent/shadow/verify.c): the audit finds planted drift of every kind and
nothing else, repairs it through the mirror's repair path, and reports no drift while
a mirrored workload runs; dual reads compare sampled read keys on both sides."""
import json
import os
import time

import grpc
import pytest
import redis

from compare import differences
from grpc_util import channel, pb, unary
from sy import RedisServer, py_redis, spawn_py_redis, spec_yaml, wait_for

TYPES = ["str", "hash", "list", "set", "zset", "stream"]


EXPIRE_AT = int(time.time()) + 10000


def fill(port, n, ttl_every=7):
    """n keys of every type (every ttl_every-th with a TTL)."""
    r = redis.Redis(port=port)
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.set("str:%d" % i, "v%d" % i)
        p.hset("hash:%d" % i, mapping={"a": i, "b": "x%d" % i})
        p.rpush("list:%d" % i, i, i + 1, "z")
        p.sadd("set:%d" % i, "m%d" % i, "k", i)
        p.zadd("zset:%d" % i, {"a": i, "b": i / 3})
        p.xadd("stream:%d" % i, {"f": i}, id="%d-1" % (i + 1))
        if i % ttl_every == 0:
            # one absolute deadline, so that two sides filled seconds apart on a busy
            # machine still hold the same TTL (EXPIRE would differ by the gap)
            p.expireat("hash:%d" % i, EXPIRE_AT)
        if i % 1000 == 999:
            p.execute()
    p.execute()


def audit(d, *args):
    r = d.syctl("--timeout", "30s", "-o", "json", "verify", "m", *args, check=False)
    doc = json.loads(r.stdout)
    # the exit status is the verdict: 1 for drift, a failed audit, or none run yet
    drift = sum(int(doc.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl"))
    assert r.returncode == (1 if drift or doc["state"] in ("idle", "failed") else 0), (r.returncode, r.stderr)
    return doc


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    a, b = os.path.join(cgroup, "a"), os.path.join(cgroup, "b")
    os.mkdir(a)
    os.mkdir(b)

    def start(**extra):
        spec = {"name": "m", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%"}
        spec.update(extra)
        return daemon_factory(spec_yaml([spec]))

    yield start, legacy, target, a, b
    legacy.stop()
    target.stop()


def test_planted_drift_is_found_classified_and_repaired(env):
    start, legacy, target, a, b = env
    d = start()
    fill(legacy.port, 10000)
    fill(target.port, 10000)
    t = target.client()
    planted = {}
    for i in range(50):
        typ = TYPES[i % 6]
        k = "%s:%d" % (typ, 100 + i)  # value changed
        if typ == "str":
            t.set(k, "changed")
        elif typ == "hash":
            t.hset(k, "a", "changed")
        elif typ == "list":
            t.rpush(k, "more")
        elif typ == "set":
            t.sadd(k, "more")
        elif typ == "zset":
            t.zadd(k, {"a": 99999})
        else:
            t.xadd(k, {"f": "more"}, id="999999-1")
        planted[k] = "value"
        k = "%s:%d" % (TYPES[i % 6], 1000 + i)  # missing on target
        t.delete(k)
        planted[k] = "missing"
        k = "only-target:%d" % i  # extra on target
        t.set(k, 1)
        planted[k] = "extra"
        k = "str:%d" % (2000 + i)  # type changed
        t.delete(k)
        t.sadd(k, "now-a-set")
        planted[k] = "type"
        k = "set:%d" % (3000 + i)  # TTL changed (persistent on legacy)
        t.expire(k, 5000)
        planted[k] = "ttl"
    assert len(planted) == 250
    r = audit(d, "--rate", "200000")
    assert r["state"] == "done", r
    assert int(r["scanned"]) >= 120000  # both sides
    assert {k: int(r.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")} == \
        {"missing": 50, "extra": 50, "type": 50, "value": 50, "ttl": 50}
    rep = audit(d, "--report")
    found = {x["key"]: x["kind"] for x in rep.get("drift", [])}
    assert found == planted  # every planted key, rightly classified, and no other
    # the text report names keys, never values
    r = d.syctl("verify", "m", "--report", check=False)
    assert r.returncode == 1 and "drift found in 250 key(s)" in r.stderr, r.stderr  # drift: exit 1
    text = r.stdout
    assert "only-target:3" in text and "changed" not in text and "now-a-set" not in text
    # repair through the mirror's repair path, then an independent full compare
    r = audit(d, "--repair", "--rate", "200000")
    assert int(r["repaired"]) == 250
    wait_for(lambda: not differences(legacy.port, target.port)[1], timeout=60, what="repaired")
    n, diffs = differences(legacy.port, target.port)
    print("keys compared:", n)
    assert n == 60000 and diffs == []
    r = audit(d, "--rate", "200000")
    assert sum(int(r.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")) == 0


def test_scope_and_rewrite_limit_and_map_the_audit(env):
    start, legacy, target, a, b = env
    d = start(scope=["user:"], rewrite={"user:": "u2:"})
    L, T = legacy.client(), target.client()
    for i in range(100):
        L.set("user:%d" % i, i)
        T.set("u2:%d" % i, i)
        L.set("other:%d" % i, i)  # outside the migration: not audited
    T.set("u2:5", "changed")
    T.set("u2:extra", 1)
    r = audit(d)
    assert r["state"] == "done"
    found = {x["key"]: x["kind"] for x in audit(d, "--report").get("drift", [])}
    assert found == {"user:5": "value", "u2:extra": "extra"}
    assert int(r["outsideScope"]) == 100  # other:*, counted, not compared


def test_no_false_drift_while_a_mirrored_workload_runs(env, cgroup):
    """A mixed mirrored workload on both sides for 20 s while dual reads sample every
    10th read and audits run back to back: no drift reported."""
    from test_mirror import MIXED
    start, legacy, target, a, b = env
    d = start(ratio="50%", mirror="both", sample_reads=10, capture_bytes=4096)
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        wait_for(lambda: all(t.healthy for t in unary(ch, "/switchyard.v1.Control/GetMigration",
                                                     c.GetMigrationRequest(name="m"), c.Migration).targets),
                 what="target healthy")
    clients = []
    for i in range(8):
        cg = os.path.join(cgroup, "w%d" % i)
        os.mkdir(cg)
        clients.append(spawn_py_redis(cg, legacy.addr, "SEED=%d\nSECONDS=20\n%s" % (i, MIXED)))
    readers = """
import random, time
end = time.monotonic() + 20
while time.monotonic() < end:
    r.get('mx:str:%d' % random.randrange(150))
    r.hgetall('mx:hash:%d' % random.randrange(150))
    r.zrange('mx:zset:%d' % random.randrange(150), 0, -1)
"""
    for i in range(2):
        cg = os.path.join(cgroup, "r%d" % i)
        os.mkdir(cg)
        clients.append(spawn_py_redis(cg, legacy.addr, readers))
    audits = []
    end = time.monotonic() + 20
    while time.monotonic() < end:
        # a pace that leaves the agent's one thread time for the mirror
        audits.append(audit(d, "--rate", "5000"))
    for p in clients:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    final = audit(d, "--report")
    print("audits:", len(audits), "dual reads:", final.get("dualChecked"), "rechecked:",
          final.get("dualRechecked"), "unsettled:", final.get("unsettled"))
    assert len(audits) >= 2 and all(x["state"] == "done" for x in audits)
    for x in audits:
        assert sum(int(x.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")) == 0, \
            (x, audit(d, "--report").get("drift"))
    assert int(final.get("dualChecked", 0)) > 100
    assert int(final.get("dualDrift", 0)) == 0


def test_dual_reads_find_real_drift(env):
    start, legacy, target, a, b = env
    d = start(sample_reads=1)
    for i in range(20):
        legacy.client().set("d:%d" % i, i)
        target.client().set("d:%d" % i, i if i % 4 else "drifted")
    py_redis(a, legacy.addr, "for i in range(20): r.get('d:%d' % i)")
    wait_for(lambda: int(audit(d, "--report").get("dualChecked", 0)) == 20, timeout=15, what="dual reads")
    r = audit(d, "--report")
    assert int(r["dualDrift"]) == 5 and int(r["dualRechecked"]) == 5


def test_bad_requests_start_nothing(env):
    start, legacy, target, a, b = env
    d = start()
    v = pb("switchyard.v1.verify")
    with channel("unix:" + d.sock) as ch:
        for req, code in ((v.StartAuditRequest(migration="nope"), grpc.StatusCode.INVALID_ARGUMENT),
                          (v.StartAuditRequest(migration="Bad Name"), grpc.StatusCode.INVALID_ARGUMENT),
                          (v.StartAuditRequest(migration="m", keys_per_s=4000000000),
                           grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(grpc.RpcError) as e:
                unary(ch, "/switchyard.v1.Verify/StartAudit", req, v.AuditStatus)
            assert e.value.code() == code
        for req in (v.StartBackfillRequest(migration="nope"), v.StartBackfillRequest(migration="m", keys_per_s=4000000000)):
            with pytest.raises(grpc.RpcError) as e:
                unary(ch, "/switchyard.v1.Verify/StartBackfill", req, v.BackfillStatus)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        st = unary(ch, "/switchyard.v1.Verify/GetAudit", v.GetAuditRequest(migration="m"), v.AuditStatus)
        assert st.state == "idle" and st.scanned == 0
        b = unary(ch, "/switchyard.v1.Verify/GetBackfill", v.GetBackfillRequest(migration="m"), v.BackfillStatus)
        assert b.state == "idle" and b.copied == 0
    for args in (("verify", "m", "--rate", "-5"), ("backfill", "m", "--rate", "-5"), ("backfill", "m", "--rate", "x")):
        r = d.syctl(*args, check=False)
        assert r.returncode == 2 and "--rate" in r.stderr
    assert target.client().dbsize() == 0  # nothing was copied


def backfill(d, *args):
    return json.loads(d.syctl("-o", "json", "backfill", "m", *args).stdout)


def test_backfill_resumes_after_kill_9_with_writers_active(env):
    """100 000 keys of every type, some with TTLs, copied while writers change them on
    legacy (mirror forward); the agent is killed halfway and goes on where it was."""
    start, legacy, target, a, b = env
    d = start(mirror="forward")
    fill(legacy.port, 100000 // 6 + 1)
    n0 = legacy.client().dbsize()
    writer = spawn_py_redis(a, legacy.addr, """
import random, time
end = time.monotonic() + 12
while time.monotonic() < end:
    i = random.randrange(16667)
    p = r.pipeline(transaction=False)
    p.set('str:%d' % i, 'new%f' % time.time()); p.hincrby('hash:%d' % i, 'a', 1); p.rpush('list:%d' % i, 'w')
    p.sadd('set:%d' % i, 'w'); p.zincrby('zset:%d' % i, 1, 'a'); p.expire('str:%d' % i, 5000)
    p.execute()
    time.sleep(0.001)
""")
    backfill(d, "--rate", "15000")
    wait_for(lambda: int(backfill(d, "--status").get("copied", 0)) >= n0 // 2, timeout=60, what="halfway")
    d.kill9()
    halfway = int(open(os.path.join(d.state_dir, "backfill-m.state")).read().split()[3])
    d.start()
    wait_for(lambda: backfill(d, "--status")["state"] == "done", timeout=120, interval=0.5, what="backfill done")
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    st = backfill(d, "--status")
    assert st.get("resumed") == 1
    copied = int(st["copied"])
    print("keys:", n0, "copied before the kill:", halfway, "copied in all:", copied)
    assert n0 <= copied <= n0 + 100  # a restart copies at most one batch again
    n, diffs = differences(legacy.port, target.port)
    deadline = time.monotonic() + 30
    while diffs and time.monotonic() < deadline:  # the mirror's last re-copies
        time.sleep(0.5)
        n, diffs = differences(legacy.port, target.port)
    print("keys compared:", n)
    assert diffs == [] and n == n0


def test_backfill_rate_limits_are_honoured(env):
    start, legacy, target, a, b = env
    d = start()
    L = legacy.client()
    p = L.pipeline(transaction=False)
    for i in range(6000):
        p.set("r:%d" % i, "x" * 1000)
    p.execute()
    t0 = time.monotonic()
    st = backfill(d, "--rate", "2000", "--follow")
    secs = time.monotonic() - t0
    assert st["state"] == "done" and int(st["copied"]) == 6000
    # 6000 keys at 2000/s: about 3 s; a wide margin, this is not a speed test
    assert 6000 / secs <= 2000 * 1.2, secs
    assert float(st["keysPerS"]) <= 2000 * 1.2
    target.client().flushall()
    st = backfill(d, "--bytes-rate", "2000000", "--follow")  # about 2 MB/s of DUMP payloads
    assert st["state"] == "done"
    assert float(st["bytesPerS"]) <= 2000000 * 1.2, st
    assert not differences(legacy.port, target.port)[1]
    out = d.syctl("status").stdout
    assert "BACKFILL" in out and "done" in out and "100.0%" in out


def test_audit_resumes_after_kill_9(env):
    start, legacy, target, a, b = env
    d = start()
    fill(legacy.port, 5000)
    fill(target.port, 5000)
    for i in range(20):
        target.client().set("str:%d" % (i * 200), "changed")
    # --no-wait: 0, or 1 if the audit already found some of the drift
    assert d.syctl("verify", "m", "--rate", "8000", "--no-wait", check=False).returncode in (0, 1)
    wait_for(lambda: int(audit(d, "--report").get("scanned", 0)) >= 25000, timeout=60, what="audit halfway")
    d.kill9()
    d.start()
    wait_for(lambda: audit(d, "--report")["state"] == "done", timeout=60, interval=0.5, what="audit done")
    r = audit(d, "--report")
    print("scanned:", r["scanned"])
    assert int(r["value"]) == 20 and sum(int(r.get(k, 0)) for k in ("missing", "extra", "type", "ttl")) == 0
    assert 60000 <= int(r["scanned"]) <= 60000 + 200  # went on from its place, not from the start


def test_continuous_audits_find_drift_by_themselves(env):
    start, legacy, target, a, b = env
    d = start(audit_every=1, auto_repair="true")
    for i in range(100):
        legacy.client().set("k:%d" % i, i)
        target.client().set("k:%d" % i, i)
    first = audit(d, "--report")
    wait_for(lambda: audit(d, "--report")["state"] == "done", timeout=20, what="a first audit by itself")
    t0 = int(audit(d, "--report")["startedUnixMs"])
    target.client().set("k:7", "drifted")
    # the next audit starts by itself a second after the last ended, finds the key and,
    # with auto_repair, repairs it
    wait_for(lambda: target.client().get("k:7") == b"7", timeout=20, what="found and repaired")
    assert int(audit(d, "--report")["startedUnixMs"]) > t0
    assert first["state"] in ("running", "done")


def test_every_database_is_backfilled_and_audited(env):
    """A migration whose clients use several databases (SELECT n): the backfill copies
    the keys of every database that has keys, each into the same database on target,
    and the audit finds drift in any of them — named with its database — and repairs it
    there. A key of the same name in two databases is two keys."""
    start, legacy, target, a, b = env
    d = start(mirror="off")
    dbs = (0, 3, 15)
    for db in dbs:
        r = redis.Redis(port=legacy.port, db=db)
        for i in range(40):
            r.set("k:%d" % i, "db%d-v%d" % (db, i))
    redis.Redis(port=legacy.port, db=7).set("only-db7", "x")
    redis.Redis(port=target.port, db=9).set("extra-in-9", "y")  # only target has keys in 9
    d.syctl("--timeout", "60s", "backfill", "m")
    wait_for(lambda: backfill(d, "--status")["state"] == "done", timeout=60, what="backfill done")
    st = backfill(d, "--status")
    assert int(st["copied"]) == 3 * 40 + 1 and int(st.get("total", 0)) == 3 * 40 + 1, st
    for db in dbs:
        t = redis.Redis(port=target.port, db=db)
        assert t.get("k:5") == b"db%d-v5" % db
    assert redis.Redis(port=target.port, db=7).get("only-db7") == b"x"
    # drift in database 3 and the extra key in 9; database 0's k:1 untouched
    redis.Redis(port=target.port, db=3).set("k:1", "changed")
    r = audit(d, "--rate", "100000")
    assert r["state"] == "done", r
    assert int(r["scanned"]) == 2 * (3 * 40 + 1) + 1  # both sides, every database
    assert {k: int(r.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")} == \
        {"missing": 0, "extra": 1, "type": 0, "value": 1, "ttl": 0}
    rep = audit(d, "--report")
    found = sorted((int(x.get("db", 0)), x["key"], x["kind"]) for x in rep.get("drift", []))
    assert found == [(3, "k:1", "value"), (9, "extra-in-9", "extra")], found
    text = d.syctl("verify", "m", "--report", check=False).stdout
    assert "db3 k:1" in text and "db9 extra-in-9" in text
    r = audit(d, "--repair", "--rate", "100000")
    assert int(r["repaired"]) == 2
    wait_for(lambda: redis.Redis(port=target.port, db=3).get("k:1") == b"db3-v1", timeout=20, what="repaired")
    wait_for(lambda: redis.Redis(port=target.port, db=9).get("extra-in-9") is None, timeout=20,
             what="extra deleted")
    assert redis.Redis(port=target.port, db=0).get("k:1") == b"db0-v1"
    r = audit(d, "--rate", "100000")
    assert sum(int(r.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")) == 0
