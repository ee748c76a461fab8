# SPDX-License-Identifier: Apache-2.0
"""switchyard.v1.Control through grpcio (an independent implementation), and syctl
against the daemon and against a grpcio server. State-changing calls with invalid input
must leave the state file byte-identical."""
import concurrent.futures
import json
import os
import subprocess
import threading

import grpc
import pytest

from grpc_util import channel, pb, unary
from sy import OUT, run_clients

CTL = "/switchyard.v1.Control/"


def ctl():
    return pb("switchyard.v1.control")


def mig():
    return pb("switchyard.v1.migration")


@pytest.fixture
def env(redis_pair, daemon_factory):
    legacy, target = redis_pair
    d = daemon_factory(None)
    return d, legacy, target


def call(d, method, req, resp_cls, gzip=False):
    with channel("unix:" + d.sock, gzip=gzip) as ch:
        return unary(ch, CTL + method, req, resp_cls)


def spec(legacy, target, name="users", ratio_bp=0, **kw):
    return mig().MigrationSpec(name=name, legacy=[legacy.addr], target=[target.addr], ratio_bp=ratio_bp, **kw)


def apply(d, s, gzip=False):
    c = ctl()
    return call(d, "ApplyMigration", c.ApplyMigrationRequest(spec=s), c.Migration, gzip=gzip)


def code_of(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def test_every_control_method(env, cgroup):
    d, legacy, target = env
    c = ctl()
    m = apply(d, spec(legacy, target))
    assert m.spec.name == "users" and m.id >= 1 and m.origin == "api"

    got = call(d, "GetMigration", c.GetMigrationRequest(name="users"), c.Migration)
    assert list(got.spec.legacy) == [legacy.addr] and list(got.spec.target) == [target.addr]

    lst = call(d, "ListMigrations", c.ListMigrationsRequest(), c.ListMigrationsResponse)
    assert [x.spec.name for x in lst.migrations] == ["users"]

    m = call(d, "SetRatio", c.SetRatioRequest(name="users", ratio_bp=10000), c.Migration)
    assert m.spec.ratio_bp == 10000
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "api"}])
    assert res[0]["conns"][0]["served_port"] == target.port
    m = call(d, "GetMigration", c.GetMigrationRequest(name="users"), c.Migration)
    assert m.counters.target >= 1
    assert m.targets[0].endpoint == target.addr and m.targets[0].healthy

    m = call(d, "Pin", c.PinRequest(name="users", cgroup=cgroup, side=mig().SIDE_LEGACY), c.Migration)
    assert [(p.cgroup, p.side) for p in m.spec.pins] == [(cgroup, mig().SIDE_LEGACY)]
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "pinned"}])
    assert res[0]["conns"][0]["served_port"] == legacy.port
    m = call(d, "Unpin", c.UnpinRequest(name="users", cgroup=cgroup), c.Migration)
    assert list(m.spec.pins) == []

    st = call(d, "Status", c.StatusRequest(), c.StatusResponse)
    assert st.version and st.cgroup == d.cgroup and st.bpffs == d.bpffs and st.migrations == 1
    assert {(e.role, e.endpoint) for e in st.endpoints} == {("legacy", legacy.addr), ("target", target.addr)}

    code, msg = code_of(lambda: call(d, "DeleteMigration", c.DeleteMigrationRequest(name="users"),
                                     c.DeleteMigrationResponse))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "ratio" in msg
    call(d, "DeleteMigration", c.DeleteMigrationRequest(name="users", force=True), c.DeleteMigrationResponse)
    code, _ = code_of(lambda: call(d, "GetMigration", c.GetMigrationRequest(name="users"), c.Migration))
    assert code == grpc.StatusCode.NOT_FOUND
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "deleted"}])
    assert res[0]["conns"][0]["served_port"] == legacy.port


def test_apply_with_gzip(env):
    d, legacy, target = env
    assert apply(d, spec(legacy, target), gzip=True).spec.name == "users"


BAD = [
    ("name", lambda l, t: mig().MigrationSpec(name="", legacy=[l.addr], target=[t.addr]), "name"),
    ("name-chars", lambda l, t: mig().MigrationSpec(name="Bad Name", legacy=[l.addr], target=[t.addr]), "name"),
    ("endpoint", lambda l, t: mig().MigrationSpec(name="x", legacy=["local host:1"], target=[t.addr]), "legacy[0]"),
    ("no-target", lambda l, t: mig().MigrationSpec(name="x", legacy=[l.addr]), "target"),
    ("ratio", lambda l, t: mig().MigrationSpec(name="x", legacy=[l.addr], target=[t.addr], ratio_bp=10001),
     "ratio_bp"),
    ("same-endpoint", lambda l, t: mig().MigrationSpec(name="x", legacy=[l.addr], target=[l.addr]), "target[0]"),
    ("taken-legacy", lambda l, t: mig().MigrationSpec(name="other", legacy=[l.addr], target=["127.0.0.1:1"]),
     "legacy[0]"),
    ("pin-missing", lambda l, t: mig().MigrationSpec(name="x", legacy=["127.0.0.1:2"], target=["127.0.0.1:3"],
                                                     pins=[mig().Pin(cgroup="/sys/fs/cgroup/nope-nope")]),
     "pins[0].cgroup"),
]


@pytest.mark.parametrize("name,make,field", BAD, ids=[b[0] for b in BAD])
def test_invalid_apply_names_field_and_changes_nothing(env, name, make, field):
    d, legacy, target = env
    apply(d, spec(legacy, target))
    before = d.state_bytes()
    code, msg = code_of(lambda: apply(d, make(legacy, target)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg.startswith(field), msg
    assert d.state_bytes() == before


def test_invalid_ratio_and_unknown_names_change_nothing(env, cgroup):
    d, legacy, target = env
    c = ctl()
    apply(d, spec(legacy, target))
    before = d.state_bytes()
    code, msg = code_of(lambda: call(d, "SetRatio", c.SetRatioRequest(name="users", ratio_bp=20000), c.Migration))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("ratio_bp")
    code, _ = code_of(lambda: call(d, "SetRatio", c.SetRatioRequest(name="nope", ratio_bp=1), c.Migration))
    assert code == grpc.StatusCode.NOT_FOUND
    code, msg = code_of(lambda: call(d, "Pin", c.PinRequest(name="users", cgroup="relative/path"), c.Migration))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cgroup" in msg
    code, msg = code_of(lambda: call(d, "Unpin", c.UnpinRequest(name="users", cgroup=cgroup), c.Migration))
    assert code == grpc.StatusCode.NOT_FOUND
    code, msg = code_of(lambda: call(d, "GetMigration", c.GetMigrationRequest(name=""), c.Migration))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg == "name: required"
    assert d.state_bytes() == before


def test_changes_survive_restart(env):
    d, legacy, target = env
    c = ctl()
    apply(d, spec(legacy, target))
    call(d, "SetRatio", c.SetRatioRequest(name="users", ratio_bp=2500), c.Migration)
    d.stop()
    d.start()
    m = call(d, "GetMigration", c.GetMigrationRequest(name="users"), c.Migration)
    assert m.spec.ratio_bp == 2500


def test_hundred_concurrent_control_calls(env):
    d, legacy, target = env
    c = ctl()
    apply(d, spec(legacy, target))
    with channel("unix:" + d.sock) as ch:
        fn = ch.unary_unary(CTL + "GetMigration", request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=c.Migration.FromString)
        futs = [fn.future(c.GetMigrationRequest(name="users"), timeout=10) for _ in range(100)]
        assert {f.result().spec.name for f in futs} == {"users"}


# ---- syctl -------------------------------------------------------------------------

def syctl(d, *args, server=None):
    srv = server or "unix://" + d.sock
    return subprocess.run([os.path.join(OUT, "syctl"), "--server", srv] + list(args), capture_output=True,
                          text=True, timeout=30)


def test_syctl_commands_and_exit_codes(env, cgroup, tmp_path):
    d, legacy, target = env
    f = tmp_path / "m.yaml"
    f.write_text('migrations:\n  - name: users\n    legacy: ["%s"]\n    target: ["%s"]\n' % (legacy.addr, target.addr))
    r = syctl(d, "apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    r = syctl(d, "cutover", "users", "25%")
    assert r.returncode == 0 and "25.00%" in r.stdout
    r = syctl(d, "-o", "json", "get", "users")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["spec"]["ratioBp"] == 2500 and doc["spec"]["name"] == "users"
    r = syctl(d, "cutover", "users", "1250bp")
    assert r.returncode == 0
    assert json.loads(syctl(d, "get", "users", "-o", "json").stdout)["spec"]["ratioBp"] == 1250
    r = syctl(d, "pin", "users", "--cgroup", cgroup, "--side", "target")
    assert r.returncode == 0 and cgroup in r.stdout
    assert syctl(d, "unpin", "users", "--cgroup", cgroup).returncode == 0
    r = syctl(d, "list")
    assert r.returncode == 0 and "users" in r.stdout and "12.50%" in r.stdout
    r = syctl(d, "status")
    assert r.returncode == 0 and legacy.addr in r.stdout and target.addr in r.stdout
    r = syctl(d, "health")
    assert r.returncode == 0 and r.stdout.strip() == "SERVING"
    # 1: the server said no, with its message on one line.
    r = syctl(d, "delete", "users")
    assert r.returncode == 1 and r.stderr.startswith("syctl: ") and len(r.stderr.strip().splitlines()) == 1
    r = syctl(d, "get", "nope")
    assert r.returncode == 1 and "not found" in r.stderr
    assert syctl(d, "delete", "users", "--force").returncode == 0
    # 2: usage errors, caught before any call.
    for args in (["cutover", "users", "120%"], ["cutover", "users"], ["frobnicate"], ["pin", "users"],
                 ["-o", "yaml", "list"], ["--timeout", "soon", "list"]):
        r = syctl(d, *args)
        assert r.returncode == 2, (args, r.stderr)
    bad = tmp_path / "bad.yaml"
    bad.write_text("migrations:\n  - name: x\n    legacy: [nope]\n")
    r = syctl(d, "apply", "-f", str(bad))
    assert r.returncode == 2 and r.stderr.startswith("syctl: %s:3:" % bad)
    # --help on every command.
    for cmd in ("status", "apply", "get", "list", "delete", "cutover", "pin", "unpin", "health"):
        r = syctl(d, cmd, "--help")
        assert r.returncode == 0 and r.stdout.startswith("usage: syctl " + cmd)


def test_syctl_cannot_reach_server_exits_3(tmp_path):
    r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://%s/none.sock" % tmp_path, "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "cannot reach" in r.stderr


def test_syctl_malformed_server_address_is_a_usage_error():
    """A server address that is not unix:///PATH or HOST:PORT is the caller's mistake:
    exit 2 with the forms named, from --server and from $SYCTL_SERVER alike."""
    for args, env in ((["--server", "garbage://x", "status"], {}), (["list"], {"SYCTL_SERVER": "nohostport"})):
        r = subprocess.run([os.path.join(OUT, "syctl")] + args, capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, **env))
        assert r.returncode == 2 and "unix:///PATH or HOST:PORT" in r.stderr, (args, r.stderr)


def test_syctl_against_a_grpcio_server():
    """The other direction: our client against grpcio's server."""
    c = ctl()
    h = pb("grpc.health.v1.health")
    seen = {}

    def status(req, context):
        seen["status"] = True
        return c.StatusResponse(version="grpcio-fake", cgroup="/x", migrations=0)

    def set_ratio(req, context):
        if req.ratio_bp > 10000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ratio_bp: too big")
        seen["ratio"] = (req.name, req.ratio_bp)
        return c.Migration(spec=mig().MigrationSpec(name=req.name, ratio_bp=req.ratio_bp))

    def check(req, context):
        return h.HealthCheckResponse(status=h.HealthCheckResponse.NOT_SERVING)

    handlers = {
        "Status": grpc.unary_unary_rpc_method_handler(status, c.StatusRequest.FromString,
                                                      lambda m: m.SerializeToString()),
        "SetRatio": grpc.unary_unary_rpc_method_handler(set_ratio, c.SetRatioRequest.FromString,
                                                        lambda m: m.SerializeToString()),
    }
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("switchyard.v1.Control", handlers),
                                     grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
                                         "Check": grpc.unary_unary_rpc_method_handler(
                                             check, h.HealthCheckRequest.FromString,
                                             lambda m: m.SerializeToString())})))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        srv = "127.0.0.1:%d" % port
        r = subprocess.run([os.path.join(OUT, "syctl"), "--server", srv, "status"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0 and "grpcio-fake" in r.stdout
        r = subprocess.run([os.path.join(OUT, "syctl"), "--server", srv, "cutover", "m", "33%"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0 and seen["ratio"] == ("m", 3300)
        r = subprocess.run([os.path.join(OUT, "syctl"), "--server", srv, "health"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1 and r.stdout.strip() == "NOT_SERVING"
        r = subprocess.run([os.path.join(OUT, "syctl"), "--server", srv, "get", "x"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1  # UNIMPLEMENTED from grpcio: the server said no
    finally:
        server.stop(0)
