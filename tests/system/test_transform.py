# SPDX-License-Identifier: Apache-2.0
"""Transforms (docs/transforms.md, agent/transform/): legacy's JSON users become hashes
with a version field on target through a Lua script — backfilled, mirrored under a
mixed workload, compared by an independent compare written here (not the agent's
audit), audited through forward_key with planted drift (changed values, and target-only keys
found through reverse_key) reported exactly and repaired,
and the version histogram counted exactly; scripts that loop, allocate without end or
fail on some keys are stopped and counted while the agent serves; a syntax error is
refused at apply with its FILE:LINE."""
import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest
import redis

from grpc_util import channel, pb, unary
from sy import OUT, RedisServer, free_port, py_redis, spawn_py_redis, spec_yaml, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "packaging", "examples", "transforms")
USERS = int(os.environ.get("SY_TRANSFORM_USERS", "20000"))


def forward(doc):
    """What users_json_to_hash.lua makes of a document, written independently."""
    h = {"_v": "2"}
    for f, v in doc.items():
        if v is None:
            continue
        h[f] = json.dumps(v, separators=(",", ":"), sort_keys=True) if isinstance(v, (dict, list)) else \
            ("true" if v is True else "false" if v is False else str(v))
    return {k.encode(): v.encode() for k, v in h.items()}


def independent_compare(lport, tport):
    """Every legacy user against its transform on target (value, TTL within 1 s), and
    no target key without a legacy one. Returns (keys compared, differences)."""
    L, T = redis.Redis(port=lport), redis.Redis(port=tport)
    diffs = []
    lkeys = set(L.scan_iter(count=1000))
    tkeys = set(T.scan_iter(count=1000))
    for k in sorted(tkeys - lkeys)[:20]:
        diffs.append((k, "extra on target"))
    for k in lkeys:
        p = L.pipeline(transaction=True)
        p.get(k)
        p.pttl(k)
        v, lttl = p.execute()
        p = T.pipeline(transaction=True)
        p.hgetall(k)
        p.pttl(k)
        h, tttl = p.execute()
        if v is None:
            continue  # deleted meanwhile
        if h != forward(json.loads(v)):
            diffs.append((k, "value"))
        elif (lttl < 0) != (tttl < 0) or (lttl >= 0 and abs(lttl - tttl) > 1000):
            diffs.append((k, "ttl %d %d" % (lttl, tttl)))
        if len(diffs) > 20:
            break
    return len(lkeys), diffs


def audit(d, *args):
    r = d.syctl("--timeout", "60s", "-o", "json", "verify", "m", *args, check=False)
    return json.loads(r.stdout)


def drift(doc):
    return {k: int(doc.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")}


def migration(d):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        return unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name="m"), c.Migration)


def drained(d):
    return all(x.queued == 0 and x.dirty == 0 for x in migration(d).mirror)


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")

    def start(script, args=(), **extra):
        spec = {"name": "m", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                "transform": script, "mirror": "forward"}
        spec.update(extra)
        return daemon_factory(spec_yaml([spec]), extra=list(args))

    yield start, legacy, target
    legacy.stop()
    target.stop()


WORKLOAD = """
import json, random, time
rnd = random.Random(SEED)
end = time.monotonic() + SECONDS
n = 0
while time.monotonic() < end:
    i = rnd.randrange(USERS)
    k = 'user:%d' % i
    doc = {'name': 'n%d-%d' % (i, n), 'age': rnd.randrange(90), 'tags': ['t%d' % (n % 3)]}
    op = rnd.randrange(10)
    if op < 4:
        r.set(k, json.dumps(doc))
    elif op == 4:
        r.delete(k)
    elif op == 5:
        r.expire(k, 500 + rnd.randrange(500))
    elif op == 6:
        r.setex(k, 300 + rnd.randrange(300), json.dumps(doc))
    elif op == 7:
        j = rnd.randrange(USERS)
        try:
            r.rename(k, 'user:%d' % j)
        except Exception:
            pass  # no such key
    else:
        r.set('user:%d' % (USERS + rnd.randrange(2000)), json.dumps(doc))
    n += 1
print(n)
"""


def test_json_users_backfilled_mirrored_audited_repaired_and_versioned(env, cgroup, tmp_path):
    start, legacy, target = env
    script = str(tmp_path / "users.lua")
    shutil.copy(os.path.join(EXAMPLES, "users_json_to_hash.lua"), script)
    L = legacy.client()
    p = L.pipeline(transaction=False)
    for i in range(USERS):
        p.set("user:%d" % i, json.dumps({"name": "user %d" % i, "age": i % 90, "tags": ["a", "b"][: 1 + i % 2],
                                          "note": None}))
        if i % 5 == 0:
            p.expire("user:%d" % i, 3600)
        if i % 1000 == 999:
            p.execute()
    p.execute()
    mport = free_port()
    d = start(script, args=["--metrics", "127.0.0.1:%d" % mport], version_field="_v")
    t0 = time.monotonic()
    bf = json.loads(d.syctl("--timeout", "120s", "-o", "json", "backfill", "m", "--follow").stdout)
    print("backfill: %d keys in %.1f s" % (int(bf["copied"]), time.monotonic() - t0))
    assert bf["state"] == "done" and int(bf["copied"]) == USERS
    wait_for(lambda: drained(d), timeout=60, what="backfill copies landed")
    n, diffs = independent_compare(legacy.port, target.port)
    assert n == USERS and diffs == []
    r = audit(d, "--rate", "200000")
    assert r["state"] == "done" and drift(r) == dict.fromkeys(drift(r), 0), r
    assert {v["version"]: int(v["keys"]) for v in r.get("versions", [])} == {"2": USERS}

    # a mixed workload mirrored forward for 12 s (clients on legacy, captured)
    procs = []
    for i in range(3):
        cg = os.path.join(cgroup, "w%d" % i)
        os.mkdir(cg)
        procs.append(spawn_py_redis(cg, legacy.addr, "SEED=%d\nSECONDS=12\nUSERS=%d\n%s" % (i, USERS, WORKLOAD)))
    writes = 0
    for pr in procs:
        out, err = pr.communicate(timeout=120)
        assert pr.returncode == 0, err
        writes += int(out.strip())
    print("workload writes:", writes)
    wait_for(lambda: drained(d), timeout=60, what="mirror drained")
    end = time.monotonic() + 30
    while True:
        n, diffs = independent_compare(legacy.port, target.port)
        if not diffs or time.monotonic() > end:
            break
        time.sleep(1)
    assert diffs == [], [(k, why, L.get(k), L.pttl(k), target.client().hgetall(k), target.client().pttl(k))
                          for k, why in diffs]
    st = audit(d, "--rate", "200000")
    assert drift(st) == dict.fromkeys(drift(st), 0), (st, audit(d, "--report").get("drift"))
    xf = st["transform"]
    print("transform:", xf)
    assert int(xf["calls"]) > 0 and int(xf.get("failed", 0)) == 0
    assert int(xf.get("fallback", 0)) > 0  # SETEX and RENAME went through forward_key

    # 25 planted changes on target: each a value drift, nothing else; 10 of them are
    # documents put back at version 1, which the histogram counts
    T = target.client()
    keys = sorted(k.decode() for k in T.scan_iter(match="user:*", count=1000))[:25]
    for i, k in enumerate(keys):
        T.hset(k, "_v", "1") if i < 10 else T.hset(k, "name", "planted")
    total = T.dbsize()
    audit(d, "--rate", "200000")
    r = audit(d, "--report")  # the last audit's, with its list of keys
    assert drift(r) == {"missing": 0, "extra": 0, "type": 0, "value": 25, "ttl": 0}, r
    assert {x["key"]: x["kind"] for x in r["drift"]} == {k: "value" for k in keys}
    assert {v["version"]: int(v["keys"]) for v in r["versions"]} == {"2": total - 10, "1": 10}
    r = audit(d, "--repair", "--rate", "200000")
    assert int(r["repaired"]) == 25
    wait_for(lambda: drained(d), timeout=30, what="repairs landed")
    n, diffs = independent_compare(legacy.port, target.port)
    assert diffs == []
    r = audit(d, "--rate", "200000")
    assert drift(r) == dict.fromkeys(drift(r), 0)
    assert {v["version"]: int(v["keys"]) for v in r["versions"]} == {"2": T.dbsize()}

    # the histogram is a metric too (Prometheus), as is the script's call count
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
    docs = [l for l in text.splitlines() if l.startswith("switchyard_documents{")]
    assert any('version="2"' in l and l.split()[-1] == str(T.dbsize()) for l in docs), docs
    assert any(l.startswith("switchyard_transform_calls_total{") and 'outcome="ok"' in l for l in text.splitlines())



def test_extra_target_keys_found_through_reverse_key_and_removed(env, tmp_path):
    """With a transform, the target scan finds keys with nothing on legacy behind them
    through reverse_key: planted target-only keys are reported as extra, exactly they,
    and --repair removes them (their absent legacy key's copy deletes them)."""
    start, legacy, target = env
    script = str(tmp_path / "users.lua")
    shutil.copy(os.path.join(EXAMPLES, "users_json_to_hash.lua"), script)
    users = 2000
    L, T = legacy.client(), target.client()
    p = L.pipeline(transaction=False)
    for i in range(users):
        p.set("user:%d" % i, json.dumps({"name": "user %d" % i, "age": i % 90}))
    p.execute()
    d = start(script, version_field="_v")
    bf = json.loads(d.syctl("--timeout", "120s", "-o", "json", "backfill", "m", "--follow").stdout)
    assert bf["state"] == "done" and int(bf["copied"]) == users
    wait_for(lambda: drained(d), timeout=60, what="backfill copies landed")
    r = audit(d, "--rate", "200000")
    assert r["state"] == "done" and drift(r) == dict.fromkeys(drift(r), 0), r

    # 4 hashes as the transform would make them, and a string that is no document
    extras = ["user:extra:%d" % i for i in range(4)] + ["user:orphan"]
    for k in extras[:4]:
        T.hset(k, mapping={"name": "ghost", "_v": "2"})
    T.set("user:orphan", "not a document")
    audit(d, "--rate", "200000")
    r = audit(d, "--report")
    assert drift(r) == {"missing": 0, "extra": 5, "type": 0, "value": 0, "ttl": 0}, r
    assert {x["key"]: x["kind"] for x in r["drift"]} == {k: "extra" for k in extras}
    assert {v["version"]: int(v["keys"]) for v in r["versions"]} == {"2": users + 4}
    r = audit(d, "--repair", "--rate", "200000")
    assert int(r["repaired"]) == 5, r
    wait_for(lambda: drained(d) and not any(T.exists(k) for k in extras), timeout=30, what="extras removed")
    n, diffs = independent_compare(legacy.port, target.port)
    assert n == users and diffs == []
    r = audit(d, "--rate", "200000")
    assert drift(r) == dict.fromkeys(drift(r), 0), r
    assert T.dbsize() == users


FAILING = """
function forward_key(k)
  if k.key:find("^loop:") then while true do end end
  if k.key:find("^big:") then local s = string.rep("x", 1 << 30) return {{key = k.key, value = s}} end
  if k.key:find("^bad:") then error("no way for " .. k.key) end
  return {k}
end
"""


def test_failing_scripts_are_stopped_counted_and_the_agent_serves(env, cgroup, tmp_path):
    start, legacy, target = env
    script = tmp_path / "failing.lua"
    script.write_text(FAILING)
    d = start(str(script))
    cg = os.path.join(cgroup, "c")
    os.mkdir(cg)
    py_redis(cg, legacy.addr, """
for i in range(3):
    r.set('loop:%d' % i, 'x')
    r.set('big:%d' % i, 'x')
    r.set('bad:%d' % i, 'x')
for i in range(50):
    r.set('ok:%d' % i, i)
""")
    T = target.client()
    wait_for(lambda: T.dbsize() == 50, timeout=60, what="good keys copied through the script")

    def stats():
        return audit(d).get("transform", {})
    wait_for(lambda: int(stats().get("budget", 0)) >= 3 and int(stats().get("memory", 0)) >= 3 and
             int(stats().get("errors", 0)) >= 3, timeout=60, what="failures counted")
    s = stats()
    print("transform:", s)
    assert "failing.lua:5: no way for bad:" in s["lastError"] or "instruction budget" in s["lastError"] or \
        "memory" in s["lastError"]
    fwd = [x for x in migration(d).mirror if x.direction == "forward"][0]
    assert fwd.needs_audit and "transform" in fwd.audit_reason
    assert T.get("ok:7") == b"7" and not T.exists("bad:1") and not T.exists("big:1")
    # the agent still serves: status answers, the mirror goes on
    py_redis(cg, legacy.addr, "r.set('ok:after', 1)")
    wait_for(lambda: T.get("ok:after") == b"1", what="mirror still running")
    log = d.read_log()
    assert log.count("no way for bad:") <= 3  # once per burst, not once per key


def test_batched_copies_fail_alone_expire_and_survive_lost_scripts(env, tmp_path):
    """Typed copies go by batches (one look for up to 32 keys, one MULTI/EXEC per
    destination connection): keys the script fails on, in the same batches as good ones,
    are counted and flagged without failing the others; a key whose TTL runs out before
    its write is not left immortal on target; and when the servers lose their scripts
    (SCRIPT FLUSH), or an ACL refuses EVALSHA, the looks go on by EVAL."""
    start, legacy, target = env
    script = tmp_path / "failing.lua"
    script.write_text(FAILING)
    L, T = legacy.client(), target.client()
    p = L.pipeline(transaction=False)
    for i in range(600):
        p.set("ok:%d" % i, "v%d" % i)
        if i % 3 == 0:
            p.pexpire("ok:%d" % i, 60000)
    for i in range(3):
        p.set("bad:%d" % i, "x")
    for i in range(2):
        p.set("loop:%d" % i, "x")
        p.set("big:%d" % i, "x")
    p.execute()
    d = start(str(script))
    # keys that run out while the backfill copies them: none may outlive legacy's
    p = L.pipeline(transaction=False)
    for i in range(400):
        p.set("short:%d" % i, "s", px=1 + i % 300)
    p.execute()
    bf = json.loads(d.syctl("--timeout", "120s", "-o", "json", "backfill", "m", "--follow").stdout)
    assert bf["state"] == "done", bf
    wait_for(lambda: drained(d), timeout=60, what="backfill copies landed")
    assert T.dbsize() >= 600
    assert all(T.get("ok:%d" % i) == b"v%d" % i for i in range(600))
    for i in range(0, 600, 3):
        lt, tt = L.pttl("ok:%d" % i), T.pttl("ok:%d" % i)
        assert 0 < tt and abs(lt - tt) <= 1000, (i, lt, tt)
    assert T.pttl("ok:1") == -1
    assert not any(T.exists(k) for k in ("bad:0", "bad:1", "bad:2", "loop:0", "loop:1", "big:0", "big:1"))
    s = audit(d).get("transform", {})
    assert int(s.get("errors", 0)) >= 3 and int(s.get("budget", 0)) >= 2 and int(s.get("memory", 0)) >= 2, s
    fwd = [x for x in migration(d).mirror if x.direction == "forward"][0]
    assert fwd.needs_audit and "transform" in fwd.audit_reason
    time.sleep(0.4)
    assert list(T.scan_iter(match="short:*", count=1000)) == []

    def copied_and_audited(prefix):
        """100 new keys backfilled, every one on target, and an audit without drift."""
        p = L.pipeline(transaction=False)
        for i in range(100):
            p.set("%s:%d" % (prefix, i), "%s%d" % (prefix, i))
        p.execute()
        bf = json.loads(d.syctl("--timeout", "120s", "-o", "json", "backfill", "m", "--follow").stdout)
        assert bf["state"] == "done", bf
        wait_for(lambda: drained(d), timeout=60, what="%s backfill landed" % prefix)
        assert all(T.get("%s:%d" % (prefix, i)) == b"%s%d" % (prefix.encode(), i) for i in range(100))
        r = audit(d, "--rate", "200000")
        assert r["state"] == "done" and drift(r)["value"] == 0 and drift(r)["missing"] == 0, r

    # scripts lost on both servers: EVALSHA answers NOSCRIPT, the look goes by EVAL
    L.script_flush()
    T.script_flush()
    copied_and_audited("again")
    # an ACL without EVALSHA (docs/operations.md's before it was used): EVAL instead
    for side in (L, T):
        side.execute_command("ACL", "SETUSER", "default", "-evalsha", "-script")
    copied_and_audited("acl")


def test_syntax_error_and_missing_reverse_refused_with_file_and_line(env, tmp_path):
    start, legacy, target = env
    good = tmp_path / "good.lua"
    good.write_text("function forward_key(k) return {k} end\n")
    d = start(str(good))
    bad = tmp_path / "bad.lua"
    bad.write_text("function forward_key(k)\n  return {k}\nend\nlocal x = = 1\n")
    spec = tmp_path / "apply.yaml"
    spec.write_text(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr],
                                "transform": str(bad), "mirror": "forward"}]))
    r = d.syctl("apply", "-f", str(spec), check=False)
    assert r.returncode != 0 and "%s:4:" % bad in r.stderr, r.stderr
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", str(spec)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "apply.yaml:" in r.stderr and "%s:4:" % bad in r.stderr, r.stderr
    # mirror: both with a script that has no reverse_key: a rollback would lose writes
    spec.write_text(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr],
                                "transform": str(good), "mirror": "both"}]))
    r = d.syctl("apply", "-f", str(spec), check=False)
    assert r.returncode != 0 and "reverse_key" in r.stderr, r.stderr
    # nothing changed
    assert migration(d).spec.transform.script == str(good)


SIDED = """
import json, random, time
side = 'target' if r.info('server')['tcp_port'] == TPORT else 'legacy'
rnd = random.Random(SEED)
end = time.monotonic() + SECONDS
n = 0
while time.monotonic() < end:
    k = 'user:%d' % (SEED * 1000 + rnd.randrange(300))
    doc = {'name': 'n%d' % n, 'age': rnd.randrange(90), 'side': side}
    op = rnd.randrange(6)
    if op == 0:
        r.delete(k)
    elif side == 'legacy':
        r.set(k, json.dumps(doc))
    else:  # clients on target write the new representation
        p = r.pipeline(transaction=True)
        p.delete(k)
        p.hset(k, mapping=dict({f: str(v) for f, v in doc.items()}, _v='2'))
        p.execute()
    n += 1
print(side, n)
"""


def reverse(h):
    """What users_json_to_hash.lua's reverse_key makes of a hash, written independently."""
    doc = {}
    for f, v in h.items():
        f, v = f.decode(), v.decode()
        if f != "_v":
            doc[f] = int(v) if v.lstrip("-").isdigit() else v
    return doc


def test_mirror_both_at_half_writes_each_representation_back(env, cgroup, tmp_path):
    """At 50 % with mirror: both, clients on legacy write JSON and clients on target
    write hashes; each side ends with the transform (or its reverse) of the other."""
    start, legacy, target = env
    script = str(tmp_path / "users.lua")
    shutil.copy(os.path.join(EXAMPLES, "users_json_to_hash.lua"), script)
    d = start(script, mirror="both", ratio="50%", version_field="_v", mirror_queue=200000)
    wait_for(lambda: all(t.healthy for t in migration(d).targets), what="target healthy")
    procs, sides = [], []
    for i in range(10):
        cg = os.path.join(cgroup, "s%d" % i)
        os.mkdir(cg)
        procs.append(spawn_py_redis(cg, legacy.addr, "SEED=%d\nSECONDS=10\nTPORT=%d\n%s" % (i, target.port, SIDED)))
    for pr in procs:
        out, err = pr.communicate(timeout=120)
        assert pr.returncode == 0, err
        sides.append(out.split()[0])
    print("clients per side:", {s: sides.count(s) for s in set(sides)})
    assert "legacy" in sides and "target" in sides
    wait_for(lambda: drained(d), timeout=60, what="mirror drained")
    L, T = legacy.client(), target.client()
    for x in migration(d).mirror:
        print(x.direction, "mirrored", x.mirrored, "failed", x.failed, "repaired", x.repaired, "repair_failed",
              x.repair_failed, "dropped", x.dropped, "conflicts", x.conflicts, "audit", x.needs_audit, x.audit_reason)
    print(audit(d, "--report").get("transform"))
    end = time.monotonic() + 30
    while True:
        lkeys, tkeys = set(L.scan_iter(count=1000)), set(T.scan_iter(count=1000))
        bad = [k for k in lkeys & tkeys if json.loads(L.get(k)) != reverse(T.hgetall(k))]
        if (lkeys == tkeys and not bad) or time.monotonic() > end:
            break
        time.sleep(1)
    assert lkeys == tkeys, ([(k, L.get(k), L.pttl(k)) for k in lkeys - tkeys][:5], [(k, T.hgetall(k)) for k in tkeys - lkeys][:5],
                            migration(d).mirror, "\n".join(l for l in d.read_log().splitlines()[-30:]))
    assert bad == [], [(k, L.get(k), T.hgetall(k)) for k in bad[:5]]
    # both representations agree key by key: forward of legacy is target too
    assert all(T.hgetall(k) == forward(json.loads(L.get(k))) for k in lkeys)
    fwd_rev = {x.direction: x for x in migration(d).mirror}
    assert fwd_rev["reverse"].mirrored + fwd_rev["reverse"].repaired > 0
    assert not fwd_rev["reverse"].needs_audit and not fwd_rev["forward"].needs_audit


# Acknowledged writes across a drain: each client holds CONNS connections dialled to
# legacy (the kernel steers each one, `client: connection`), learns each connection's
# side from the server, and writes keys never written before in that side's
# representation. A request whose connection is reset is retried once on a new
# connection (which learns its side again); only a request failing twice is failed.
# Every acknowledged key is printed with its side and document; the last line sums up.
ACKED = """
import json, os, sys, time
host, port = %r, %d

def connect(i):
    c = redis.Redis(host=host, port=port, socket_timeout=5, socket_connect_timeout=5,
                    single_connection_client=True, client_name='acked-%%s-%%d' %% (NAME, i))
    side = 'target' if int(c.config_get('port')['port']) == TPORT else 'legacy'
    return c, side

conns = [connect(i) for i in range(CONNS)]
open(READY, 'w').close()
acked, failed, reconnects, seq = [], 0, 0, 0
while not os.path.exists(STOP):
    i = seq %% CONNS
    k = 'user:%%s:%%d' %% (NAME, seq)
    # flat (no nested value): the reverse of its hash is the document itself
    doc = {'name': 'n%%d' %% seq, 'age': seq %% 90, 'tag': 't%%d' %% (seq %% 3), 'client': NAME}
    seq += 1
    for attempt in (0, 1):
        try:
            if conns[i] is None:
                conns[i] = connect(i)
            c, side = conns[i]
            if side == 'legacy':
                c.set(k, json.dumps(doc))
            else:  # the new representation, as a client on target writes it
                # MULTI on this very connection (redis-py's pipeline would take another
                # one from the pool, steered on its own and silently redialled)
                conn = c.connection
                fields = [x for f, v in dict(doc, _v='2').items() for x in (f, str(v))]
                conn.send_packed_command(conn.pack_commands([('MULTI',), ('DEL', k), ('HSET', k, *fields),
                                                             ('EXEC',)]))
                got = [conn.read_response() for _ in range(4)]
                assert isinstance(got[-1], list) and len(got[-1]) == 2, got
            acked.append((k, side, doc))
            break
        except (redis.ConnectionError, redis.TimeoutError) as e:
            sys.stderr.write('%%.3f %%s attempt %%d: %%r\\n' %% (time.time(), k, attempt, e))
            reconnects += 1
            if conns[i] is not None:
                try:
                    conns[i][0].close()
                except Exception:
                    pass
            conns[i] = None
            if attempt == 1:
                failed += 1
    time.sleep(0.001)
for a in acked:
    print(json.dumps(a))
print(json.dumps({'acked': len(acked), 'failed': failed, 'reconnects': reconnects}))
"""


def client_conns(server):
    return [c for c in server.client().client_list() if c["name"].startswith("acked-")]


def test_mirror_both_at_half_rollback_with_drain_loses_no_acknowledged_write(env, cgroup, tmp_path):
    """At 50 % with mirror: both and a transform, clients steered to target write hashes
    and those on legacy JSON; `rollback --drain` aborts the target connections while
    they write, the clients reconnect (to legacy) and retry; afterwards every
    acknowledged write is on legacy as JSON (the reverse transform) and on target as a
    hash (the forward transform), whichever side acknowledged it."""
    start, legacy, target = env
    script = str(tmp_path / "users.lua")
    shutil.copy(os.path.join(EXAMPLES, "users_json_to_hash.lua"), script)
    d = start(script, mirror="both", ratio="0%", version_field="_v", mirror_queue=200000, client="connection",
              plan={"steps": ["50%", "100%"], "bake": "10m", "interval": "500ms", "min_samples": 1000000})
    wait_for(lambda: all(t.healthy for t in migration(d).targets), what="target healthy")
    r = d.syctl("cutover", "m", "start")
    wait_for(lambda: migration(d).cutover.phase_name == "cutting-over", timeout=30, what="cutting-over")
    assert migration(d).spec.ratio_bp == 5000
    stop = str(tmp_path / "stop-acked")
    procs, ready = [], []
    for i in range(4):
        cg = os.path.join(cgroup, "a%d" % i)
        os.mkdir(cg)
        ready.append(str(tmp_path / ("ready-%d" % i)))
        head = "NAME=%r\nCONNS=8\nTPORT=%d\nSTOP=%r\nREADY=%r\n" % ("c%d" % i, target.port, stop, ready[-1])
        procs.append(spawn_py_redis(cg, legacy.addr, head + ACKED % ("127.0.0.1", legacy.port)))
    try:
        wait_for(lambda: all(os.path.exists(x) for x in ready), timeout=30, what="clients connected")
        on_t, on_l = client_conns(target), client_conns(legacy)
        assert len(on_t) + len(on_l) == 32 and 4 <= len(on_t) <= 28, (len(on_t), len(on_l))
        time.sleep(2)  # writes on both sides
        r = d.syctl("cutover", "m", "rollback", "--drain", "--reason", "test")
        assert "rolled-back" in r.stdout and "drained:" in r.stdout, r.stdout
        wait_for(lambda: not client_conns(target), timeout=5, what="no client connection on target")
        time.sleep(2)  # the clients go on, all on legacy now
        assert len(client_conns(legacy)) == 32
    finally:
        open(stop, "w").close()
    acked, summary = [], []
    for pr in procs:
        out, err = pr.communicate(timeout=60)
        assert pr.returncode == 0, err
        lines = out.strip().splitlines()
        summary.append(json.loads(lines[-1]))
        acked += [json.loads(x) for x in lines[:-1]]
    m = migration(d)
    assert m.cutover.phase_name == "rolled-back" and m.spec.ratio_bp == 0
    sides = {s: sum(1 for _, side, _ in acked if side == s) for s in ("legacy", "target")}
    print("acknowledged per side:", sides, "clients:", summary, "drained:", m.cutover.drained)
    assert sides["legacy"] > 100 and sides["target"] > 100, sides
    assert len(acked) == sum(s["acked"] for s in summary)
    # the only errors are the drain's aborted connections, each retried once with success
    assert sum(s["failed"] for s in summary) == 0, summary
    # every connection on target was aborted and, at its next write, dialled again
    assert m.cutover.drained >= len(on_t) and sum(s["reconnects"] for s in summary) == len(on_t), (on_t, summary)
    wait_for(lambda: drained(d), timeout=60, what="mirror drained")
    L, T = legacy.client(), target.client()

    def lost():
        bad = []
        for i in range(0, len(acked), 500):
            chunk = acked[i:i + 500]
            p = L.pipeline(transaction=False)
            for k, _, _ in chunk:
                p.get(k)
            lv = p.execute()
            p = T.pipeline(transaction=False)
            for k, _, _ in chunk:
                p.hgetall(k)
            tv = p.execute()
            for (k, side, doc), v, h in zip(chunk, lv, tv):
                if v is None or json.loads(v) != doc or reverse(h) != doc or h != forward(doc):
                    bad.append((k, side, doc, v, h))
        return bad
    end = time.monotonic() + 30
    while True:
        bad = lost()
        if not bad or time.monotonic() > end:
            break
        time.sleep(1)
    assert bad == [], ("%d of %d acknowledged writes lost or different" % (len(bad), len(acked)), bad[:5],
                       migration(d).mirror)
    fwd_rev = {x.direction: x for x in migration(d).mirror}
    assert fwd_rev["reverse"].mirrored + fwd_rev["reverse"].repaired > 0
    assert not fwd_rev["reverse"].needs_audit and not fwd_rev["forward"].needs_audit
