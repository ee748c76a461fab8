# SPDX-License-Identifier: Apache-2.0
"""Host names in legacy/target endpoints (docs/operations.md, "Host names"): resolved
at apply, every address steered; re-resolved every resolve_interval off the daemon's
loop, a new set of addresses committed (kernel maps, event with old and new); a name
that stops resolving keeps its last addresses (fail-static) and says so (event, status,
metric); a name that does not resolve at apply is refused (FILE:LINE, INVALID_ARGUMENT).

No DNS: the daemon runs in a private mount namespace (unshare -m) where the test's own
files are bind-mounted over /etc/hosts and /etc/nsswitch.conf ("hosts: files"), so the
production resolver path (getaddrinfo) reads names the test controls and changes."""
import json
import os
import re
import subprocess
import urllib.request

import pytest

from grpc_util import channel, pb, stream
from sy import free_port, make_cgroup, run_clients, spec_yaml, wait_for

EVENTS = "/switchyard.v1.Telemetry/Events"


@pytest.fixture
def resolv(tmp_path, uid):
    """(hosts file, names, wrap argv): names unique to this run."""
    hosts = tmp_path / "hosts"
    nss = tmp_path / "nsswitch.conf"
    hosts.write_text("127.0.0.1 localhost\n")
    nss.write_text("hosts: files\n")
    names = {"legacy": "sy-legacy-%s.test" % uid, "target": "sy-target-%s.test" % uid}
    wrap = ["unshare", "-m", "--", "/bin/sh", "-c",
            'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/nsswitch.conf && shift && exec "$@"',
            str(hosts), str(nss)]
    return hosts, names, wrap


def write_hosts(path, lines):
    # in place (same inode): the bind mount shows the file, not the name
    with open(path, "w") as f:
        f.write("127.0.0.1 localhost\n" + "".join("%s %s\n" % kv for kv in lines))


def history(d):
    ev = pb("switchyard.v1.events")
    with channel("unix:" + d.sock) as ch:
        return list(stream(ch, EVENTS, ev.EventsRequest(since_seq=0), ev.Event, timeout=10))


def events_of(d, kind):
    return [e for e in history(d) if e.kind == kind]


def hosts_of(d, name="users"):
    spec = json.loads(d.syctl("get", name, "-o", "json").stdout)["spec"]
    return {(h.get("side", "SIDE_LEGACY"), h["name"]): (h.get("addresses", []), h.get("stale", False))
            for h in spec.get("hosts", [])}


def landed(legacy, target, cgs, tag):
    """Where a v4 and a v6 client dialling legacy land: {4: side, 6: side}."""
    res = run_clients([{"cgroup": cgs[0], "addr": legacy.addr, "key": "%s:4" % tag},
                       {"cgroup": cgs[1], "addr": legacy.addr6, "family": 6, "key": "%s:6" % tag}])
    out = {}
    for fam, r in zip((4, 6), res):
        key = r["conns"][0]["key"]
        on_t = target.client().exists(key)
        assert on_t + legacy.client().exists(key) == 1
        out[fam] = "target" if on_t else "legacy"
    return out


def test_names_resolved_reresolved_and_fail_static(redis_pair, daemon_factory, cgroup, resolv):
    legacy, target = redis_pair
    hosts, names, wrap = resolv
    ln, tn = names["legacy"], names["target"]
    write_hosts(hosts, [("::1", ln), ("127.0.0.1", tn), ("::1", tn)])
    lname, tname = "%s:%d" % (ln, legacy.port), "%s:%d" % (tn, target.port)
    m = {"name": "users", "legacy": [lname], "target": [tname], "ratio": "100%", "mirror": "off",
         "resolve_interval": "1s"}
    port = free_port()
    http = "http://127.0.0.1:%d" % port
    d = daemon_factory(spec_yaml([m]), wrap=wrap, extra=["--http", "127.0.0.1:%d" % port])
    cgs = [make_cgroup(os.path.join(cgroup, "c4")), make_cgroup(os.path.join(cgroup, "c6"))]

    # apply: the names and every address they resolve to
    h = hosts_of(d)
    assert h[("SIDE_LEGACY", lname)] == (["[::1]:%d" % legacy.port], False)
    assert h[("SIDE_TARGET", tname)] == (["127.0.0.1:%d" % target.port, "[::1]:%d" % target.port], False)
    spec = json.loads(d.syctl("get", "users", "-o", "json").stdout)["spec"]
    assert spec["legacy"] == [lname] and spec["target"] == [tname]  # as written
    assert landed(legacy, target, cgs, "a") == {4: "legacy", 6: "target"}
    table = d.syctl("get", "users").stdout
    assert lname in table and "[::1]:%d" % legacy.port in table
    # the HTTP JSON door shows the same
    got = json.loads(urllib.request.urlopen(http + "/api/v1/migrations/users", timeout=10).read())
    assert got["spec"]["legacy"] == [lname]
    assert [h["addresses"] for h in got["spec"]["hosts"] if h["name"] == lname] == [["[::1]:%d" % legacy.port]]

    # the mapping changes: after resolve_interval the kernel maps follow, with an event
    write_hosts(hosts, [("127.0.0.1", ln), ("127.0.0.1", tn), ("::1", tn)])
    wait_for(lambda: events_of(d, "endpoint.resolved"), timeout=10, what="endpoint.resolved")
    ev = events_of(d, "endpoint.resolved")[0]
    attrs = dict(ev.attributes)
    assert ev.migration == "users"
    assert attrs["name"] == lname and attrs["side"] == "legacy"
    assert attrs["old_addresses"] == "[::1]:%d" % legacy.port
    assert attrs["addresses"] == "127.0.0.1:%d" % legacy.port
    assert landed(legacy, target, cgs, "b") == {4: "target", 6: "legacy"}
    assert hosts_of(d)[("SIDE_LEGACY", lname)] == (["127.0.0.1:%d" % legacy.port], False)

    # the name stops resolving: its last addresses stay (fail-static), said once
    write_hosts(hosts, [("127.0.0.1", tn), ("::1", tn)])
    wait_for(lambda: events_of(d, "endpoint.resolve_failed"), timeout=10, what="endpoint.resolve_failed")
    attrs = dict(events_of(d, "endpoint.resolve_failed")[0].attributes)
    assert attrs["name"] == lname and attrs["addresses"] == "127.0.0.1:%d" % legacy.port
    assert hosts_of(d)[("SIDE_LEGACY", lname)] == (["127.0.0.1:%d" % legacy.port], True)
    assert landed(legacy, target, cgs, "c") == {4: "target", 6: "legacy"}
    n_failed = len(events_of(d, "endpoint.resolve_failed"))
    metrics = urllib.request.urlopen(http + "/metrics", timeout=10).read().decode()
    assert 'switchyard_endpoint_name_stale{migration="users",side="legacy",name="%s"} 1' % lname in metrics
    assert 'switchyard_endpoint_name_stale{migration="users",side="target",name="%s"} 0' % tname in metrics
    assert re.search(r'switchyard_resolver_lookups_total\{outcome="failed"\} [1-9]', metrics), metrics
    wait_for(lambda: "stale" in d.syctl("get", "users").stdout, timeout=5, what="stale in syctl get")
    assert "stale: no longer resolves" in d.syctl("status", "users").stdout

    # back: one event says it resolves again, the flag clears
    write_hosts(hosts, [("127.0.0.1", ln), ("127.0.0.1", tn), ("::1", tn)])
    wait_for(lambda: hosts_of(d)[("SIDE_LEGACY", lname)][1] is False, timeout=10, what="stale cleared")
    assert len(events_of(d, "endpoint.resolve_failed")) == n_failed  # one per failure streak
    assert len(events_of(d, "endpoint.resolved")) == 2


def test_unresolvable_name_is_refused(redis_pair, daemon_factory, cgroup, resolv, tmp_path):
    legacy, target = redis_pair
    hosts, names, wrap = resolv
    ln = names["legacy"]
    bad = {"name": "users", "legacy": ["%s:%d" % (ln, legacy.port)], "target": [target.addr]}

    # at start: the daemon exits, naming the file and the line
    d = daemon_factory(spec_yaml([bad]), wrap=wrap, start=False)
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=20) != 0
    assert "%s:3: legacy[0]: \"%s:%d\": does not resolve" % (d.config, ln, legacy.port) in d.read_log()

    # at reload: refused, the running configuration kept
    write_hosts(hosts, [("127.0.0.1", ln)])
    d.start()
    write_hosts(hosts, [])
    status = d.reload(spec_yaml([dict(bad, ratio="25%")]))
    assert "reload refused" in status and "%s:3: legacy[0]" % d.config in status and "does not resolve" in status
    got = json.loads(d.syctl("get", "users", "-o", "json").stdout)
    assert got["spec"].get("ratio_bp", 0) == 0

    # through the API: INVALID_ARGUMENT, nothing changed
    f = tmp_path / "api.yaml"
    f.write_text(spec_yaml([dict(bad, name="other", legacy=["%s:%d" % (ln, free_port())])]))
    r = d.syctl("apply", "-f", str(f), check=False)
    assert r.returncode != 0 and "does not resolve" in r.stderr, r.stderr
    assert "other" not in d.syctl("status").stdout

    # resolve_interval is validated
    f.write_text(spec_yaml([dict(bad, resolve_interval="500ms")]))
    r = d.syctl("apply", "-f", str(f), check=False)
    assert r.returncode != 0 and "%s:" % f in r.stderr and "resolve_interval: at least 1s" in r.stderr, r.stderr


def test_the_agents_own_connections_follow_a_target_name(redis_pair, daemon_factory, cgroup, resolv, tmp_path):
    """The mirror, the health checks and the audit connect to a target name's current
    address: when it moves (127.0.0.1 → 127.0.0.2, same port), mirrored writes land on
    the new server and the audit compares with it."""
    import redis
    legacy, target = redis_pair
    hosts, names, wrap = resolv
    tn = names["target"]
    t2dir = tmp_path / "t2"
    t2dir.mkdir()
    t2 = subprocess.Popen(["redis-server", "--port", str(target.port), "--bind", "127.0.0.2", "--save", "",
                           "--appendonly", "no", "--dir", str(t2dir)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        r2 = redis.Redis(host="127.0.0.2", port=target.port, socket_timeout=5)

        def up():
            try:
                return r2.ping()
            except Exception:
                return False

        wait_for(up, what="second target on 127.0.0.2")
        write_hosts(hosts, [("127.0.0.1", tn)])
        tname = "%s:%d" % (tn, target.port)
        m = {"name": "users", "legacy": [legacy.addr], "target": [tname], "ratio": "0%", "mirror": "forward",
             "resolve_interval": "1s"}
        d = daemon_factory(spec_yaml([m]), wrap=wrap)
        cg = make_cgroup(os.path.join(cgroup, "w"))
        from sy import py_redis
        py_redis(cg, legacy.addr, "r.set('a', '1')")
        t1 = target.client()
        wait_for(lambda: t1.get("a") == b"1", what="mirrored to the first target")

        write_hosts(hosts, [("127.0.0.2", tn)])
        wait_for(lambda: events_of(d, "endpoint.resolved"), timeout=10, what="endpoint.resolved")
        wait_for(lambda: "127.0.0.2:%d" % target.port in d.syctl("get", "users").stdout and
                 "healthy" in d.syctl("get", "users").stdout, timeout=10, what="new target checked")
        py_redis(cg, legacy.addr, "r.set('b', '2')")
        wait_for(lambda: r2.get("b") == b"2", what="mirrored to the second target")
        assert t1.get("b") is None
        # the audit compares legacy with the second target: 'a' is missing there
        r = d.syctl("--timeout", "30s", "-o", "json", "verify", "users", check=False)
        doc = json.loads(r.stdout)
        assert r.returncode == 1 and int(doc.get("missing", 0)) == 1, doc
        rep = json.loads(d.syctl("-o", "json", "verify", "users", "--report", check=False).stdout)
        assert [(x["key"], x["kind"]) for x in rep.get("drift", [])] == [("a", "missing")], rep
    finally:
        t2.kill()
        t2.wait()
