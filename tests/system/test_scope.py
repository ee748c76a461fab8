# SPDX-License-Identifier: Apache-2.0
"""What a migration moves (docs/mirror.md, "Scope"): `prefixes:` only count, they never
limit the mirror, the backfill, audits or dual reads; `scope:` does, and says so —
`syctl get`, `status`, the audit and the plan's verify step report the keys left
outside. A state file of the previous format keeps its prefixes as the scope."""
import json
import os
import subprocess

import pytest

from grpc_util import channel, pb, unary
from sy import OUT, RedisServer, py_redis, spec_yaml, wait_for


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    a = os.path.join(cgroup, "a")
    os.mkdir(a)

    def spec(**extra):
        s = {"name": "m", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
             "mirror": "forward"}
        s.update(extra)
        return s

    def start(**extra):
        return daemon_factory(spec_yaml([spec(**extra)]))

    yield start, spec, legacy, target, a, daemon_factory
    legacy.stop()
    target.stop()


def migration(d):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        return unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name="m"), c.Migration)


def forward(d):
    return [x for x in migration(d).mirror if x.direction == "forward"][0]


def js(d, *args, rc=0):
    """syctl -o json; `verify` exits 1 when it found drift (docs/json.md)."""
    r = d.syctl("--timeout", "60s", "-o", "json", *args, check=False)
    assert r.returncode == rc, r.stderr
    return json.loads(r.stdout)


def seed(r, inside, outside):
    p = r.pipeline(transaction=False)
    for i in range(inside):
        p.set(("user:%d" if i % 2 else "cart:%d") % i, "v%d" % i)
    for i in range(outside):
        p.set("other:%d" % i, i)
    p.execute()


def test_prefixes_only_count(env):
    """prefixes: ["user:"] with no scope: a write to other:zz is mirrored, other keys are
    backfilled and audited, and the per-prefix counters still count."""
    start, spec, legacy, target, a, _ = env
    d = start(prefixes=["user:"])
    L, T = legacy.client(), target.client()
    seed(L, 20, 30)
    st = js(d, "backfill", "m", "--follow")
    assert st["state"] == "done" and int(st["copied"]) == 50 and int(st["total"]) == 50, st
    assert T.get("other:7") == b"7"
    py_redis(a, legacy.addr, "r.set('other:zz', 'x')\nr.set('user:zz', 'y')")
    wait_for(lambda: T.get("other:zz") == b"x" and T.get("user:zz") == b"y", what="both mirrored")
    assert forward(d).out_of_scope == 0
    m = migration(d)
    legacy_user = [r for r in m.rules if r.prefix == "user:" and r.side == "legacy"][0]
    assert legacy_user.writes == 1  # counted per prefix, as before
    T.set("other:3", "drifted")
    r = js(d, "verify", "m", rc=1)
    assert int(r.get("value", 0)) == 1 and int(r.get("outsideScope", 0)) == 0, r
    assert "scope:     every key" in d.syctl("get", "m").stdout


def test_scope_limits_what_is_migrated_and_says_so(env):
    """scope: ["user:", "cart:"] (user: renamed u2: on target): 231 keys in scope, 1001
    outside. The backfill copies and counts only the 231, the audit compares only them
    and counts the 1001, the mirror skips other:zz, and get/status say it."""
    start, spec, legacy, target, a, _ = env
    d = start(scope=["user:", "cart:"], prefixes=["user:"], rewrite={"user:": "u2:"}, sample_reads=1)
    L, T = legacy.client(), target.client()
    seed(L, 231, 1001)
    st = js(d, "backfill", "m", "--follow")
    assert st["state"] == "done" and int(st["copied"]) == 231 and int(st["total"]) == 231, st
    assert T.dbsize() == 231 and T.get("u2:1") == b"v1" and T.get("cart:2") == b"v2"
    assert T.get("other:1") is None
    py_redis(a, legacy.addr, "r.set('other:zz', 'x')\nr.set('user:zz', 'y')")
    wait_for(lambda: T.get("u2:zz") == b"y", what="in-scope write mirrored")
    wait_for(lambda: forward(d).out_of_scope == 1, what="out-of-scope write counted")
    assert T.get("other:zz") is None
    T.set("other:5", "only on target")  # outside: never compared, not "extra"
    r = js(d, "verify", "m")
    assert r["state"] == "done", r
    assert int(r["scanned"]) == 2 * 232  # both sides, in scope only (user:zz too)
    assert int(r["total"]) == int(r["scanned"])
    assert int(r["outsideScope"]) == 1002  # other:0..1000 and other:zz on legacy
    assert sum(int(r.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")) == 0, r
    m = migration(d)
    assert m.outside_scope_known and m.outside_scope_keys == 1002
    get = d.syctl("get", "m").stdout
    assert "scope:     2 prefixes; 1002 keys on legacy outside the scope (user:, cart:)" in get, get
    status = d.syctl("status").stdout
    assert "scope: 2 prefixes; 1002 keys on legacy outside the scope" in status, status
    got = js(d, "get", "m")
    assert got["spec"]["scope"] == ["user:", "cart:"] and int(got["outsideScopeKeys"]) == 1002


def test_a_scoped_backfill_has_no_made_up_total(env):
    """While a scoped backfill runs its total is unknown (0, no ETA), not legacy's DBSIZE."""
    start, spec, legacy, target, a, _ = env
    d = start(scope=["user:"])
    L = legacy.client()
    seed(L, 400, 3000)
    st = js(d, "backfill", "m", "--rate", "100")
    seen = js(d, "backfill", "m", "--status")
    assert seen["state"] == "running", seen
    assert int(seen.get("total", 0)) == 0 and float(seen.get("etaS", 0)) == 0, seen
    wait_for(lambda: js(d, "backfill", "m", "--status")["state"] == "done", timeout=30, what="done")
    st = js(d, "backfill", "m", "--status")
    assert int(st["total"]) == int(st["copied"]) == 200, st


@pytest.mark.parametrize("scope,phrase", [
    ('["user:", "user:vip:"]', 'scope[1]: "user:vip:" overlaps scope[0] "user:"'),
    ('["user:", ""]', "scope[1]: must be a string of 1 to 64 bytes"),
    ('"user:"', "scope: must be a list of key prefixes"),
    ('["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"]',
     "scope: at most 16"),
])
def test_bad_scopes_are_refused_with_file_and_line(scope, phrase, tmp_path):
    path = str(tmp_path / "bad.yaml")
    body = ('migrations:\n  - name: m\n    legacy: ["127.0.0.1:7000"]\n    target: ["127.0.0.1:7001"]\n'
            '    scope: %s\n' % scope)
    with open(path, "w") as f:
        f.write(body)
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "%s:5: %s" % (path, phrase) in r.stderr, r.stderr


def test_a_format_1_state_keeps_its_prefixes_as_scope(env, tmp_path):
    """A state written before scope existed (format 1): its prefixes limited what was
    migrated, and a restarted agent goes on doing exactly that, loudly."""
    start, spec, legacy, target, a, factory = env
    d = factory(None)
    f = tmp_path / "m.yaml"
    f.write_text(spec_yaml([spec(prefixes=["user:"])]))
    d.syctl("apply", "-f", str(f))
    d.stop()
    s = pb("switchyard.v1.state")
    st = s.State()
    st.ParseFromString(d.state_bytes())
    assert st.format == 2 and list(st.migrations[0].spec.scope) == []
    st.format = 1  # what the previous version wrote
    with open(os.path.join(d.state_dir, "state.pb"), "wb") as out:
        out.write(st.SerializeToString())
    d.start()
    m = migration(d)
    assert list(m.spec.scope) == ["user:"] and list(m.spec.prefixes) == ["user:"]
    assert "kept as scope: [user:]" in d.read_log()
    ev = d.syctl("events", "m").stdout
    assert "migration.scope_upgraded" in ev, ev
    py_redis(a, legacy.addr, "r.set('other:zz', 'x')\nr.set('user:zz', 'y')")
    T = target.client()
    wait_for(lambda: T.get("user:zz") == b"y", what="in-scope write mirrored")
    wait_for(lambda: forward(d).out_of_scope == 1, what="out-of-scope write skipped")
    assert T.get("other:zz") is None


def test_the_plans_verify_step_names_the_scope(env):
    """The plan's verify step reports what the scope leaves behind."""
    start, spec, legacy, target, a, _ = env
    seed(legacy.client(), 10, 25)
    d = start(scope=["user:"], mirror="auto",
              plan={"steps": ["100%"], "bake": "1s", "interval": "250ms", "window": "1s", "backfill": True,
                    "shadow": "200ms", "verify": True})
    d.syctl("cutover", "m", "start")
    want = "scope: 1 prefix; 30 keys on legacy outside the scope"  # other:* and cart:*
    wait_for(lambda: want in d.syctl("events", "m").stdout, timeout=60, interval=0.3, what="verify step")
    assert target.client().dbsize() == 5  # user:1, 3, 5, 7, 9


def test_a_config_with_only_prefixes_keeps_an_upgraded_scope(env, tmp_path):
    """The ownership rule on scope: a --config file that declares only `prefixes:` (as
    every file did before scope existed) is re-applied at restart and on SIGHUP over a
    format-1 state whose prefixes were kept as scope. The file never declared a scope,
    so the upgraded one stays; a file that then declares a scope and drops it again
    does drop it (it changed that very field)."""
    start, spec, legacy, target, a, factory = env
    d = start(prefixes=["user:"])
    assert list(migration(d).spec.scope) == []
    d.stop()
    s = pb("switchyard.v1.state")
    st = s.State()
    st.ParseFromString(d.state_bytes())
    assert st.migrations[0].HasField("file_spec") and list(st.migrations[0].file_spec.scope) == []
    st.format = 1  # what the previous version wrote
    with open(os.path.join(d.state_dir, "state.pb"), "wb") as out:
        out.write(st.SerializeToString())
    d.start()  # the same --config file, applied over the upgraded state
    assert list(migration(d).spec.scope) == ["user:"]
    d.reload(spec_yaml([spec(prefixes=["user:"])]))
    assert list(migration(d).spec.scope) == ["user:"]
    diff = d.syctl("diff", "-f", d.config).stdout
    assert "scope" not in diff, diff
    py_redis(a, legacy.addr, "r.set('other:zz', 'x')\nr.set('user:zz', 'y')")
    T = target.client()
    wait_for(lambda: T.get("user:zz") == b"y", what="in-scope write mirrored")
    wait_for(lambda: forward(d).out_of_scope == 1, what="out-of-scope write skipped")
    assert T.get("other:zz") is None
    # the file takes the field over: declares a scope, then drops it
    d.reload(spec_yaml([spec(prefixes=["user:"], scope=["user:", "cart:"])]))
    assert list(migration(d).spec.scope) == ["user:", "cart:"]
    d.reload(spec_yaml([spec(prefixes=["user:"])]))
    assert list(migration(d).spec.scope) == []
