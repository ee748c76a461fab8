# SPDX-License-Identifier: Apache-2.0
"""Redis AUTH/ACL on every connection the agent makes (agent/redis/auth.c): legacy with
`requirepass` (the default user), target with the minimal ACL user of
docs/operations.md; clients authenticate themselves. The mirror, a backfill, an audit
and dual reads all work through authenticated connections; a wrong password makes the
target unhealthy (reason in `syctl status`, no client steered there); a password file
readable by others is refused with FILE:LINE; and no password — the agent's own or a
client's — ever appears in the daemon's log, the API, syctl, state files or metrics
(/metrics and a decoded OTLP export)."""
import json
import os
import subprocess
import time
import urllib.request
import uuid

import pytest
import redis

from grpc_util import channel, pb, unary
from otlp_rx import Receiver, decode_raw, export_request
from sy import OUT, RedisServer, free_port, py_redis, spawn_py_redis, spec_yaml, wait_for

# The minimal ACL of the agent's user, exactly as docs/operations.md gives it.
AGENT_ACL = ("on ~* resetchannels -@all +@write -flushall -flushdb -swapdb +select +multi +exec +discard "
             "+ping +info +dump +pttl +type +scan +dbsize +eval +evalsha +script|load +get +hgetall +lrange +smembers +zrange +xrange")


def unique(what):
    return "%s-%s" % (what, uuid.uuid4().hex)


def write_secret(path, value, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, mode)


def auth_yaml(spec, legacy_file, target_file, target_user="switchyard"):
    text = spec_yaml([spec])
    return text + ("    auth:\n"
                   "      legacy: {password_file: %s}\n"
                   "      target: {user: %s, password_file: %s}\n" % (legacy_file, target_user, target_file))


def migration(d, name="m"):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        return unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name=name), c.Migration)


def drained(d):
    return all(x.queued == 0 and x.dirty == 0 for x in migration(d).mirror)


def target_health(d):
    st = json.loads(d.syctl("-o", "json", "status").stdout)["daemon"]
    return [e for e in st.get("endpoints", []) if e.get("role") == "target"][0]


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    """legacy: requirepass CLIENT_PW. target: the same requirepass for the clients (a
    client steered there sends the password it has), and the agent's ACL user."""
    pw = {"client": unique("client-pw"), "agent_target": unique("agent-target-pw")}
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    for s in (legacy, target):
        s.client().config_set("requirepass", pw["client"])
    admin_t = redis.Redis(port=target.port, password=pw["client"])
    admin_t.execute_command("ACL", "SETUSER", "switchyard", "reset", ">" + pw["agent_target"], *AGENT_ACL.split())
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    files = {"legacy": str(secrets / "legacy"), "target": str(secrets / "target")}
    write_secret(files["legacy"], pw["client"])
    write_secret(files["target"], pw["agent_target"])
    a, b = os.path.join(cgroup, "a"), os.path.join(cgroup, "b")
    os.mkdir(a)
    os.mkdir(b)

    def start(extra=(), **kw):
        spec = {"name": "m", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                "pins": [{"cgroup": b, "side": "target"}], "mirror": "both", "sample_reads": 1}
        spec.update(kw)
        # a generous health timeout: these tests are about what a check answers, and a
        # busy 2-core machine can take 100 ms to answer anything
        return daemon_factory(auth_yaml(spec, files["legacy"], files["target"]), extra=list(extra),
                              health_timeout="1s", health_interval="1s")

    yield start, legacy, target, a, b, pw, files
    legacy.stop()
    target.stop()


def client(server, pw):
    return redis.Redis(host="127.0.0.1", port=server.port, password=pw, socket_timeout=10)


def same_data(l, t):
    keys = sorted(l.scan_iter(count=500))
    for k in keys:
        ty = l.type(k)
        assert t.type(k) == ty, k
        if ty == b"string":
            assert t.get(k) == l.get(k), k
        elif ty == b"hash":
            assert t.hgetall(k) == l.hgetall(k), k
        elif ty == b"list":
            assert t.lrange(k, 0, -1) == l.lrange(k, 0, -1), k
    assert t.dbsize() == l.dbsize()
    return len(keys)


@pytest.fixture
def otlp_rx():
    r = Receiver()
    yield r
    r.stop()


def test_mirror_backfill_audit_with_auth_and_no_password_anywhere(env, tmp_path, otlp_rx):
    start, legacy, target, a, b, pw, files = env
    l, t = client(legacy, pw["client"]), client(target, pw["client"])
    for i in range(300):
        l.set("pre:%d" % i, "v%d" % i)  # before the agent: for the backfill
    port = free_port()
    d = start(extra=["--metrics", "127.0.0.1:%d" % port,
                     "--otlp-endpoint", "127.0.0.1:%d" % otlp_rx.port, "--otlp-interval", "500ms"])
    wait_for(lambda: target_health(d).get("healthy"), what="target healthy through the ACL user")
    assert target_health(d).get("lastError", "") == ""

    bf = json.loads(d.syctl("-o", "json", "backfill", "m", "--follow").stdout)
    assert bf["state"] == "done" and int(bf["copied"]) == 300

    # Clients authenticate themselves on the endpoint they dial (legacy): `a` stays on
    # legacy, `b` is pinned to target. Every write of each is replayed on the other side.
    # Between the writes: AUTH in every form a client has, with a password the agent
    # never had (a wrong one, answered -WRONGPASS) and the real one.
    creds = """
import redis as R
PW = %r
BAD = %r
r = R.Redis(host=r.connection_pool.connection_kwargs['host'], port=r.connection_pool.connection_kwargs['port'],
            password=PW)
for i in range(400):
    r.set('w:%%s:%%d' %% (TAG, i), i)
    r.hset('h:%%s:%%d' %% (TAG, i %% 20), 'f%%d' %% i, i)
    r.incr('n:%%s' %% TAG)
    r.get('w:%%s:%%d' %% (TAG, i))
    if i %% 50 == 0:
        for cmd in (('AUTH', BAD), ('AUTH', 'default', BAD), ('HELLO', '2', 'AUTH', 'default', BAD),
                    ('MIGRATE', '127.0.0.1', '1', 'w:x', '0', '100', 'AUTH', BAD),
                    ('MIGRATE', '127.0.0.1', '1', 'w:x', '0', '100', 'AUTH2', 'default', BAD)):
            try:
                r.execute_command(*cmd)
            except R.exceptions.ResponseError:
                pass
        r.execute_command('AUTH', PW)
        r.execute_command('HELLO', '2', 'AUTH', 'default', PW)
r.lpush('l:%%s' %% TAG, *range(30))
"""
    bad = unique("client-bad-pw")
    procs = [spawn_py_redis(cg, legacy.addr, "TAG=%r\n" % tag + creds % (pw["client"], bad))
             for cg, tag in ((a, "a"), (b, "b"))]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    wait_for(lambda: drained(d), timeout=30, what="mirror drained")
    n = same_data(l, t)
    assert n >= 300 + 2 * (400 + 20 + 2)
    # the kernel did see the clients' AUTH/HELLO/MIGRATE (counted as "other" commands),
    # captured writes and sampled reads on both sides: the no-leak checks below are
    # about traffic that went through every path a password could take
    for side in migration(d).sides:
        assert side.others >= 8 * 7 and side.captured >= 400 * 3 and side.sampled >= 400, side
    for x in migration(d).mirror:
        # the ACL suffices: every write replayed, none refused and repaired
        assert x.mirrored >= 400 * 3 and x.failed == 0 and x.repair_failed == 0, x

    rep = json.loads(d.syctl("--timeout", "30s", "-o", "json", "verify", "m").stdout)
    assert rep["state"] == "done" and int(rep.get("scanned", 0)) >= n
    assert sum(int(rep.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl")) == 0, rep
    wait_for(lambda: int(json.loads(d.syctl("-o", "json", "verify", "m", "--report").stdout)
                         .get("dualChecked", 0)) > 100, timeout=20, what="dual reads through AUTH")
    assert int(json.loads(d.syctl("-o", "json", "verify", "m", "--report").stdout).get("dualDrift", 0)) == 0

    # No password anywhere: the agent's two, and the client's right and wrong ones.
    got = json.loads(d.syctl("-o", "json", "get", "m").stdout)
    assert got["spec"]["auth"]["target"] == {"user": "switchyard", "passwordFile": files["target"]}
    assert got["spec"]["auth"]["legacy"]["passwordFile"] == files["legacy"]
    assert got["spec"]["auth"]["legacy"].get("user", "") == ""
    human = d.syctl("get", "m").stdout
    assert "auth:      target  switchyard, password from %s" % files["target"] in human, human
    assert "auth:      legacy  default user, password from %s" % files["legacy"] in human, human
    outputs = {
        "get": d.syctl("-o", "json", "get", "m").stdout + d.syctl("get", "m").stdout,
        "status": d.syctl("-o", "json", "status").stdout + d.syctl("status").stdout,
        "list": d.syctl("-o", "json", "list").stdout,
        "events": d.syctl("-o", "json", "events").stdout + d.syctl("events", "m").stdout,
        "watch": d.syctl("-o", "json", "watch", "m", "--interval", "100ms", "--count", "2").stdout,
        "verify": d.syctl("-o", "json", "verify", "m", "--report").stdout,
        "metrics": urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode(),
    }
    assert "switchyard_" in outputs["metrics"] and "migration" in outputs["events"]
    # an OTLP export taken after all that traffic, decoded (every string field in it)
    since = len(otlp_rx.accepted())
    wait_for(lambda: len(otlp_rx.accepted()) > since, timeout=10, what="an OTLP export after the traffic")
    body = otlp_rx.accepted()[-1][1]
    _, _, otlp_metrics = export_request(body)
    assert any(n.startswith("switchyard.") for n in otlp_metrics), sorted(otlp_metrics)
    outputs["otlp"] = repr(decode_raw(body)) + repr(otlp_metrics)
    assert "migration" in outputs["otlp"]
    d.stop()  # flushes the journal and the state; the log is complete
    outputs["log"] = d.read_log()
    assert "is healthy" in outputs["log"] and "backfill" in outputs["log"]
    blobs = dict(outputs)
    for root, _, names in os.walk(d.state_dir):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                blobs["state:" + name] = f.read().decode("latin-1")
    assert "state:state.pb" in blobs and files["target"] in blobs["state:state.pb"]
    secrets = [pw["client"], pw["agent_target"], bad]
    leaks = [(where, s) for where, text in blobs.items() for s in secrets if s in text]
    assert leaks == []


def test_wrong_password_target_unhealthy_no_steering_then_rotated(env, cgroup):
    start, legacy, target, a, b, pw, files = env
    write_secret(files["target"], unique("wrong"))
    d = start(ratio="100%", mirror="off")
    wait_for(lambda: "WRONGPASS" in target_health(d).get("lastError", ""), timeout=10, what="WRONGPASS reported")
    h = target_health(d)
    assert not h.get("healthy") and h.get("checked")
    assert "WRONGPASS" in h["lastError"] and "switchyard" in h["lastError"], h
    assert "WRONGPASS" in d.syctl("status").stdout
    # 100 % and no pin: every client would go to target, but it is unhealthy
    py_redis(a, legacy.addr, "r.execute_command('AUTH', %r)\nr.set('where', 'x')" % pw["client"])
    assert client(legacy, pw["client"]).get("where") == b"x"
    assert client(target, pw["client"]).get("where") is None
    # the password file is read at every check: the right one heals it, no signal needed
    write_secret(files["target"], pw["agent_target"])
    wait_for(lambda: target_health(d).get("healthy"), timeout=10, what="healthy after the file was fixed")
    py_redis(a, legacy.addr, "r.execute_command('AUTH', %r)\nr.set('where2', 'y')" % pw["client"])
    assert client(target, pw["client"]).get("where2") == b"y"
    # SIGHUP checks the files again: a file readable by others refuses the reload
    os.chmod(files["target"], 0o644)
    with open(d.config) as f:
        text = f.read()
    msg = d.reload(text)
    assert "reload refused: %s:" % d.config in msg and "auth.target.password_file" in msg and "mode 0644" in msg, msg
    assert pw["agent_target"] not in msg


def test_no_auth_for_a_server_that_wants_one_is_unhealthy(env, daemon_factory):
    start, legacy, target, a, b, pw, files = env
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr],
                                   "ratio": "0%", "mirror": "off"}]), health_timeout="1s", health_interval="1s")
    wait_for(lambda: "NOAUTH" in target_health(d).get("lastError", ""), timeout=10, what="NOAUTH reported")
    h = target_health(d)
    assert not h.get("healthy") and "wants a password" in h["lastError"], h


def test_password_file_readable_by_others_is_refused_with_file_line(env, tmp_path, daemon_factory):
    start, legacy, target, a, b, pw, files = env
    os.chmod(files["target"], 0o644)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(auth_yaml({"name": "m", "legacy": [legacy.addr], "target": [target.addr]},
                             files["legacy"], files["target"]))
    line = [i + 1 for i, s in enumerate(cfg.read_text().splitlines()) if "target: {user" in s][0]
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stderr.startswith("%s:%d: auth.target.password_file: %s: mode 0644" % (cfg, line, files["target"])), r.stderr
    r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix:///nonexistent", "apply", "-f", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "%s:%d: auth.target.password_file" % (cfg, line) in r.stderr, r.stderr
    # through the API: the same validator, the field named
    import grpc
    d = daemon_factory(None)
    m, c = pb("switchyard.v1.migration"), pb("switchyard.v1.control")
    s = m.MigrationSpec(name="m", legacy=[legacy.addr], target=[target.addr],
                        auth=m.Auth(target=m.Credentials(user="switchyard", password_file=files["target"])))
    with channel("unix:" + d.sock) as ch, pytest.raises(grpc.RpcError) as e:
        unary(ch, "/switchyard.v1.Control/ApplyMigration", c.ApplyMigrationRequest(spec=s), c.Migration)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "auth.target.password_file: %s: mode 0644" % files["target"] in e.value.details(), e.value.details()
    assert json.loads(d.syctl("-o", "json", "list").stdout).get("migrations", []) == []
    os.unlink(files["legacy"])
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "auth.legacy.password_file" in r.stderr and "No such file" in r.stderr
    assert pw["client"] not in r.stderr and pw["agent_target"] not in r.stderr
