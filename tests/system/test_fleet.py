# SPDX-License-Identifier: Apache-2.0
"""Fleet mode (docs/fleet.md): agents sharing one etcd v3 store (Debian's etcd-server,
on loopback ports of its own), each a "node" with its own cgroup, bpffs folder, state
dir and socket. etcdctl (ETCDCTL_API=3) is the independent client that checks the keys.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import grpc
import pytest

from grpc_util import channel, pb, stream, unary
from sy import OUT, Daemon, _py_redis_argv, cgroup2_root, free_port, make_cgroup, remove_cgroup, run_clients, spec_yaml, \
    wait_for

CTL = "/switchyard.v1.Control/"
PREFIX = "/sy-fleet"
TTL_S = 3

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("etcdctl") is None,
                                reason="etcd-server / etcd-client not installed (packaging/deps.sh)")


class Etcd:
    """One etcd member on 127.0.0.1 with its own client and peer ports and data dir;
    stop() and start() keep both, so a restart is the same cluster."""

    def __init__(self, tmp):
        self.dir = os.path.join(str(tmp), "etcd")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.proc = None
        self.start()

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.client_port

    def start(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        client = "http://" + self.endpoint
        log = open(self.dir + ".log", "a")
        self.proc = subprocess.Popen(
            ["etcd", "--name", "t", "--data-dir", self.dir, "--listen-client-urls", client,
             "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "t=" + peer], stdout=log, stderr=log)
        log.close()
        wait_for(lambda: self.ctl("endpoint", "health", check=False).returncode == 0, timeout=20,
                 what="etcd on " + self.endpoint)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    def ctl(self, *args, check=True):
        r = subprocess.run(["etcdctl", "--endpoints", self.endpoint, "--dial-timeout", "2s"] + list(args),
                           env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, text=True, timeout=30)
        if check and r.returncode:
            raise AssertionError("etcdctl %s: %s" % (" ".join(args), r.stderr))
        return r

    def keys(self, prefix):
        return sorted(k for k in self.ctl("get", "--prefix", "--keys-only", prefix).stdout.split() if k)

    def raw(self, key):
        """A key's value as bytes (None when absent): etcdctl's JSON carries it in base64."""
        kvs = json.loads(self.ctl("get", "-w", "json", key).stdout).get("kvs") or []
        return base64.b64decode(kvs[0]["value"]) if kvs else None

    def node_status(self, name):
        """PREFIX/nodes/NAME: a switchyard.v1.NodeStatus."""
        raw = self.raw(PREFIX + "/nodes/" + name)
        return None if raw is None else pb("switchyard.v1.fleet").NodeStatus.FromString(raw)

    def value(self, key):
        out = self.ctl("get", "--print-value-only", key).stdout
        return out[:-1] if out.endswith("\n") else out


@pytest.fixture
def etcd(bpf_env, tmp_path):
    e = Etcd(tmp_path)
    yield e
    e.stop()


class Node:
    """An agent as a node of the fleet: its own cgroup, bpffs folder, state dir, socket."""

    def __init__(self, tmp_path, uid, name, etcd, extra=()):
        self.name = name
        self.cgroup = make_cgroup(os.path.join(cgroup2_root(), "sy-fleet-%s-%s" % (uid, name)))
        self.bpffs = "/sys/fs/bpf/sy-fleet-%s-%s" % (uid, name)
        tmp = tmp_path / name
        tmp.mkdir()
        self.store_args = ["--store", "etcd://%s%s" % (etcd.endpoint, PREFIX), "--node", name,
                           "--node-ttl", "%ds" % TTL_S] + list(extra)
        self.d = Daemon(tmp, cgroup=self.cgroup, bpffs=self.bpffs, extra=self.store_args)

    def syctl(self, *args, check=True):
        return self.d.syctl(*args, check=check)

    def get(self, name="users"):
        return json.loads(self.syctl("-o", "json", "get", name).stdout)

    def ratio(self, name="users"):
        return self.get(name)["spec"].get("ratioBp", 0)

    def close(self):
        self.d.stop()
        if os.path.exists(self.bpffs):
            subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", self.bpffs],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        remove_cgroup(self.cgroup)


@pytest.fixture
def nodes(etcd, tmp_path, uid):
    made = []

    def make(name, **kw):
        n = Node(tmp_path, uid, name, etcd, **kw)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def apply_users(node, legacy, target, ratio="0%"):
    f = os.path.join(node.d.tmp, "users.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                             "ratio": ratio}]))
    node.syctl("apply", "-f", f)


def wait_target_healthy(node):
    wait_for(lambda: all(t.get("healthy") for t in node.get().get("targets", [{}])), timeout=10,
             what="node %s: target healthy" % node.name)


def fill(server, prefix, n):
    """n keys PREFIX:i = vi on a server, pipelined."""
    p = server.client().pipeline(transaction=False)
    for i in range(n):
        p.set("%s:%d" % (prefix, i), "v%d" % i)
    p.execute()


def first_step_everywhere(starter, everyone, ratio_bp):
    """Waits for users and a healthy target on every node, starts the plan through
    starter and waits for its first step's ratio on every node."""
    for n in everyone:
        wait_for(lambda n=n: n.syctl("get", "users", check=False).returncode == 0, what="users on " + n.name)
        wait_target_healthy(n)
    starter.syctl("cutover", "users", "start")
    wait_for(lambda: all(n.ratio() == ratio_bp for n in everyone), what="the first step on every node")


def served_port(node, legacy):
    res = run_clients([{"cgroup": node.cgroup, "addr": legacy.addr, "key": "fleet-%s" % node.name}])
    return res[0]["conns"][0]["served_port"]


def test_a_change_on_one_node_reaches_the_others_maps(redis_pair, etcd, nodes):
    legacy, target = redis_pair
    a, b = nodes("a"), nodes("b")
    assert etcd.keys(PREFIX + "/nodes/") == [PREFIX + "/nodes/a", PREFIX + "/nodes/b"]

    apply_users(a, legacy, target, "0%")
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")
    assert b.get()["spec"]["legacy"] == [legacy.addr] and b.ratio() == 0
    wait_target_healthy(a)
    wait_target_healthy(b)
    assert served_port(b, legacy) == legacy.port

    # applied through A: B's kernel steers B's own cgroup to target at 100%
    a.syctl("cutover", "users", "100%")
    wait_for(lambda: b.ratio() == 10000, what="ratio 100% on node b")
    assert served_port(b, legacy) == target.port
    # and a ratio set on B moves A's clients back
    b.syctl("cutover", "users", "0%")
    wait_for(lambda: a.ratio() == 0, what="ratio 0% on node a")
    assert served_port(a, legacy) == legacy.port

    # each node's key says which generation it applied and how its targets are
    nodes_seen = {}
    for n in ("a", "b"):
        nodes_seen[n] = wait_for(
            lambda n=n: (lambda v: v if v.applied_revision >= 3 else None)(etcd.node_status(n)),
            what="node key of " + n)
    assert nodes_seen["a"].applied_revision == nodes_seen["b"].applied_revision
    # PREFIX/state, read by etcdctl and decoded by Python's protobuf: the State both applied
    kv = json.loads(etcd.ctl("get", "-w", "json", PREFIX + "/state").stdout)["kvs"][0]
    st = pb("switchyard.v1.state").State.FromString(base64.b64decode(kv["value"]))
    assert st.generation == nodes_seen["a"].applied_revision == 3
    assert [(m.spec.name, m.spec.ratio_bp) for m in st.migrations] == [("users", 0)]
    assert [(t.migration, t.endpoint, t.healthy) for t in nodes_seen["b"].targets] == \
        [("users", target.addr, True)]


def set_ratio(sock, bp, out, barrier):
    c = pb("switchyard.v1.control")
    with channel("unix:" + sock) as ch:
        barrier.wait()
        try:
            unary(ch, CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=bp), c.Migration)
            out[bp] = ("ok", "")
        except grpc.RpcError as e:
            out[bp] = (e.code(), e.details())


def test_concurrent_conflicting_updates_one_wins_nothing_lost(redis_pair, etcd, nodes):
    legacy, target = redis_pair
    a, b = nodes("a"), nodes("b")
    apply_users(a, legacy, target, "0%")
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")

    conflict = None
    for rnd in range(40):
        ra, rb = 100 + 2 * rnd, 101 + 2 * rnd  # every value distinct, never seen before
        out, barrier = {}, threading.Barrier(2)
        ts = [threading.Thread(target=set_ratio, args=(n.d.sock, bp, out, barrier))
              for n, bp in ((a, ra), (b, rb))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for bp, (code, msg) in out.items():
            # the only way to fail is the conflict, with a message that says what to do
            assert code == "ok" or (code == grpc.StatusCode.ABORTED and "changed elsewhere" in msg
                                    and "retry" in msg), (bp, code, msg)
        wins = [bp for bp, (code, _) in out.items() if code == "ok"]
        if len(wins) == 1:
            conflict = (wins[0], (set(out) - set(wins)).pop())
            break
        # both went through one after the other: everyone settles on one of them
        wait_for(lambda: a.ratio() == b.ratio() and a.ratio() in (ra, rb), what="nodes agree")
    assert conflict, "40 rounds of simultaneous updates never conflicted"
    won, lost = conflict
    # the winner's change is what every node and etcd holds; the loser changed nothing
    wait_for(lambda: a.ratio() == won and b.ratio() == won, what="both nodes on the winner's ratio")
    # nothing lost: the loser, told to retry, retries and that lands everywhere too
    loser = a if lost % 2 == 0 else b
    loser.syctl("cutover", "users", "%dbp" % lost)
    wait_for(lambda: a.ratio() == lost and b.ratio() == lost, what="both nodes on the retried ratio")


def test_etcd_down_nodes_stay_fail_static_then_resync(redis_pair, etcd, nodes):
    legacy, target = redis_pair
    a, b = nodes("a"), nodes("b")
    apply_users(a, legacy, target, "100%")
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")
    wait_target_healthy(a)
    wait_target_healthy(b)
    assert served_port(a, legacy) == target.port and served_port(b, legacy) == target.port

    etcd.stop()
    # both keep steering on what they applied; reads are served; changes are refused
    assert served_port(a, legacy) == target.port and served_port(b, legacy) == target.port
    assert b.ratio() == 10000
    c = pb("switchyard.v1.control")
    for n in (a, b):
        with channel("unix:" + n.d.sock) as ch:
            with pytest.raises(grpc.RpcError) as ei:
                unary(ch, CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=0), c.Migration)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "unreachable" in ei.value.details() and "refuses changes" in ei.value.details()
    r = a.syctl("cutover", "users", "0%", check=False)
    assert r.returncode == 3 and "unreachable" in r.stderr and "cannot reach switchyardd" not in r.stderr
    assert b.ratio() == 10000 and served_port(b, legacy) == target.port

    # B is frozen while etcd comes back and A changes the set: when B wakes, its watch is
    # gone, and it must catch up from a full read, not from events
    b.d.proc.send_signal(signal.SIGSTOP)
    try:
        etcd.start()
        wait_for(lambda: a.syctl("cutover", "users", "0%", check=False).returncode == 0, timeout=15,
                 what="node a accepting changes again")
        rev = int(json.loads(etcd.ctl("get", "-w", "json", PREFIX + "/state").stdout)["header"]["revision"])
        etcd.ctl("compact", str(rev))
    finally:
        b.d.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: b.ratio() == 0, timeout=15, what="node b resynced to 0%")
    assert served_port(b, legacy) == legacy.port
    wait_for(lambda: b.syctl("cutover", "users", "50%", check=False).returncode == 0, timeout=15,
             what="node b accepting changes again")
    wait_for(lambda: a.ratio() == 5000, what="node a follows node b")


def test_node_key_lives_on_the_nodes_lease(etcd, nodes):
    a, b = nodes("a"), nodes("b")
    assert etcd.keys(PREFIX + "/nodes/") == [PREFIX + "/nodes/a", PREFIX + "/nodes/b"]
    info = etcd.node_status("a")
    assert info.node == "a" and info.pid == a.d.proc.pid and info.version

    # a clean stop revokes the lease: the key goes at once
    a.d.stop()
    assert etcd.keys(PREFIX + "/nodes/") == [PREFIX + "/nodes/b"]

    # killed -9: nothing revokes it; the key stays until the TTL runs out, kept alive
    # before that by the keep-alives
    time.sleep(TTL_S + 1)
    assert etcd.keys(PREFIX + "/nodes/") == [PREFIX + "/nodes/b"]  # alive past one TTL
    b.d.kill9()
    t0 = time.monotonic()
    assert etcd.keys(PREFIX + "/nodes/") == [PREFIX + "/nodes/b"]
    wait_for(lambda: etcd.keys(PREFIX + "/nodes/") == [], timeout=TTL_S + 5, interval=0.2,
             what="node b's key expiring")
    assert time.monotonic() - t0 >= 1.0


def status(node):
    """The daemon block of `syctl -o json status` (docs/json.md)."""
    return json.loads(node.syctl("-o", "json", "status").stdout)["daemon"]


def test_one_leader_on_a_lease_and_status_says_who(etcd, nodes):
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading alone")
    b, c = nodes("b"), nodes("c")
    for n in (b, c):
        wait_for(lambda n=n: status(n).get("leader") == "a", what="node %s following a" % n.name)
        s = status(n)
        assert s["node"] == n.name and s["store"].startswith("etcd://" + etcd.endpoint)
    assert etcd.value(PREFIX + "/leader") == "a"
    assert "fleet:     node b, leader a" in b.syctl("status").stdout

    # the leader stops: its lease is revoked, the key goes, one of the others takes over
    a.d.stop()
    new = wait_for(lambda: (lambda l: l if l in ("b", "c") else None)(etcd.value(PREFIX + "/leader")),
                   what="a new leader")
    for n in (b, c):
        wait_for(lambda n=n: status(n).get("leader") == new, what="node %s sees leader %s" % (n.name, new))

    # killed -9: the leader's key outlives it until the TTL, then the last node leads
    gone, last = (b, c) if new == "b" else (c, b)
    gone.d.kill9()
    wait_for(lambda: status(last).get("leader") == last.name, timeout=TTL_S + 6, interval=0.2,
             what="node %s leading after %s died" % (last.name, gone.name))
    assert etcd.value(PREFIX + "/leader") == last.name


def test_only_the_leader_walks_a_plan_and_a_follower_takes_over(redis_pair, etcd, nodes):
    legacy, target = redis_pair
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    b = nodes("b")
    f = os.path.join(a.d.tmp, "plan.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                             "plan": {"steps": ["10%", "100%"], "bake": "1s", "interval": "100ms"}}]))
    a.syctl("apply", "-f", f)
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")

    # the leader frozen: the follower takes the operator's start, but walks nothing
    a.d.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        b.syctl("cutover", "users", "start")
        wait_for(lambda: b.get()["cutover"].get("phaseName") == "cutting-over", what="step 1 on node b")
        time.sleep(max(0.0, t0 + 1.6 - time.monotonic()))  # past the 1 s bake, before a's lease ends
        assert b.get()["cutover"].get("phaseName") == "cutting-over" and b.ratio() == 1000
        # a's lease runs out: b leads and walks the rest of the plan
        wait_for(lambda: status(b).get("leader") == "b", timeout=TTL_S + 5, what="node b leading")
        wait_for(lambda: b.get()["cutover"].get("phaseName") == "completed", timeout=10, what="plan completed")
        assert b.ratio() == 10000
    finally:
        a.d.proc.send_signal(signal.SIGCONT)
    # a wakes up a follower, on b's decisions
    wait_for(lambda: status(a).get("leader") == "b", timeout=10, what="node a following b")
    wait_for(lambda: a.ratio() == 10000, what="node a at 100%")
    assert a.get()["cutover"].get("phaseName") == "completed"


@pytest.mark.parametrize("args,msg", [
    (["--store", "http://127.0.0.1:2379/x"], "is not etcd://HOST:PORT"),
    (["--store", "etcd:///x"], "expected etcd://HOST:PORT"),
    (["--store", "etcd://127.0.0.1:1/x", "--node", "a/b"], "node name without '/'"),
    (["--store", "etcd://127.0.0.1:9/x", "--node", "a"], "127.0.0.1:9"),
    (["--store", "etcd://127.0.0.1:9/x", "--node-ttl", "1s"], "--node-ttl"),
])
def test_bad_store_options_and_an_unreachable_store_stop_the_start(bpf_env, tmp_path, uid, args, msg):
    cg = make_cgroup(os.path.join(cgroup2_root(), "sy-fleet-%s-bad" % uid))
    bpffs = "/sys/fs/bpf/sy-fleet-%s-bad" % uid
    try:
        r = subprocess.run([os.path.join(OUT, "switchyardd"), "--bpffs", bpffs, "--cgroup", cg, "--state-dir",
                            str(tmp_path / "state"), "--listen", "unix:" + str(tmp_path / "sy.sock")] + args,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and msg in r.stderr, r.stderr
    finally:
        if os.path.exists(bpffs):
            subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", bpffs],
                           capture_output=True, check=False)
        remove_cgroup(cg)


def test_a_node_restarted_while_etcd_is_down_starts_from_its_copy(redis_pair, etcd, nodes):
    legacy, target = redis_pair
    a, b = nodes("a"), nodes("b")
    apply_users(a, legacy, target, "100%")
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")
    wait_target_healthy(b)

    etcd.stop()
    b.d.stop()
    b.d.start()  # READY without etcd: from the copy of what it applied last
    assert "starting from generation 1 kept in" in b.d.read_log()
    assert b.ratio() == 10000
    wait_target_healthy(b)
    assert served_port(b, legacy) == target.port
    r = b.syctl("cutover", "users", "0%", check=False)
    assert r.returncode == 3 and "unreachable" in r.stderr

    etcd.start()
    wait_for(lambda: b.syctl("cutover", "users", "0%", check=False).returncode == 0, timeout=15,
             what="node b accepting changes again")
    wait_for(lambda: a.ratio() == 0, what="node a follows node b")
    wait_for(lambda: PREFIX + "/nodes/b" in etcd.keys(PREFIX + "/nodes/"), what="node b's key back")
    assert served_port(b, legacy) == legacy.port


def mig(node, name="users"):
    c = pb("switchyard.v1.control")
    with channel("unix:" + node.d.sock) as ch:
        return unary(ch, CTL + "GetMigration", c.GetMigrationRequest(name=name), c.Migration)


def fleet_events(node, kind, name="users"):
    e = pb("switchyard.v1.events")
    with channel("unix:" + node.d.sock) as ch:
        out = list(stream(ch, "/switchyard.v1.Telemetry/Events", e.EventsRequest(migration=name, follow=False),
                          e.Event, timeout=10))
    return [x for x in out if x.kind == kind]


def client_loop(node, addr, stop_file, errors):
    """A client in the node's cgroup, on a new connection every 10 requests (so each
    connect is steered at the ratio of the moment); with errors, half its requests are
    INCR of a string: an error reply from whichever side serves it."""
    code = ("import os, time\n"
            "i = 0\n"
            "while not os.path.exists(%r):\n"
            "    r = redis.Redis(host=%r, port=%s, socket_timeout=5)\n"
            "    for _ in range(10):\n"
            "        i += 1\n"
            "        try:\n"
            "            if %r and i %% 2:\n"
            "                r.incr('fleet:bad')\n"
            "            else:\n"
            "                r.set('fleet:%s:%%d' %% (i %% 50), 'v')\n"
            "        except redis.ResponseError:\n"
            "            pass\n"
            "        time.sleep(0.004)\n"
            "    r.close()\n") % (stop_file, addr.rsplit(":", 1)[0], addr.rsplit(":", 1)[1], errors, node.name)
    return subprocess.Popen(_py_redis_argv(node.cgroup, addr, code), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_the_leaders_gate_sees_the_fleets_errors_and_rolls_the_fleet_back_once(redis_pair, etcd, nodes, tmp_path):
    """Errors on node b's target traffic only: the leader a, whose own clients see none,
    rolls the whole fleet back on the fleet's summed error rate, once."""
    legacy, target = redis_pair
    port = free_port()
    a = nodes("a", extra=["--http", "127.0.0.1:%d" % port])
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    b = nodes("b")
    for r in (legacy.client(), target.client()):
        r.set("fleet:bad", "not-a-number")
    f = os.path.join(a.d.tmp, "plan.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                             "plan": {"steps": ["100%"], "bake": "120s", "interval": "500ms", "window": "3s",
                                      "min_samples": 20, "gates": {"error_rate": "5%"}}}]))
    a.syctl("apply", "-f", f)
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")
    wait_target_healthy(a)
    wait_target_healthy(b)
    stop = str(tmp_path / "stop")
    procs = [client_loop(a, legacy.addr, stop, False), client_loop(b, legacy.addr, stop, True)]
    try:
        a.syctl("cutover", "users", "start")
        wait_for(lambda: mig(a).cutover.phase_name == "rolled-back", timeout=25, interval=0.1,
                 what="the fleet rolled back")
        m = mig(a)
    finally:
        open(stop, "w").close()
        for p in procs:
            p.wait(timeout=20)
    # the leader's own target traffic had no error; b's had: only the sum breaches
    sides_a = {s.side: s for s in m.sides}
    sides_b = {s.side: s for s in mig(b).sides}
    assert sides_a["target"].exchanges > 0 and sides_a["target"].errors == 0
    assert sides_b["target"].errors > 0
    assert "error_rate" in m.cutover.reason and "across 2 nodes" in m.cutover.reason, m.cutover.reason
    assert m.spec.ratio_bp == 0
    wait_for(lambda: b.ratio() == 0, what="node b at 0%")
    assert mig(b).cutover.phase_name == "rolled-back"
    # decided once, by the leader: one rollback, its evaluation names the fleet
    rb = [x for x in fleet_events(a, "cutover.phase") if dict(x.attributes).get("to") == "rolled-back"]
    assert len(rb) == 1, rb
    br = [dict(x.attributes) for x in fleet_events(a, "cutover.evaluated")
          if dict(x.attributes).get("verdict") == "breach"]
    assert br and br[-1]["nodes"] == "2" and float(br[-1]["error_rate"]) > 0.05
    assert not [x for x in fleet_events(b, "cutover.evaluated")], "a follower evaluated the gates"
    # the leader's sums cover b's errors: b's node key carries its counters
    st = etcd.node_status("b")
    c = {x.name: x for x in st.migrations}["users"]
    assert c.target.errors > 0 and len(c.target.latency_log2_us) == 32
    # the fleet's sums and node count are metrics too (Prometheus; OTLP renders the same)
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    vals = {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
            if l.startswith("switchyard_fleet_")}
    assert vals["switchyard_fleet_nodes"] == 2
    assert vals['switchyard_fleet_errors_total{migration="users",side="target"}'] > 0
    assert vals['switchyard_fleet_requests_total{migration="users",side="target"}'] > \
        vals['switchyard_fleet_errors_total{migration="users",side="target"}']
    assert any(k.startswith("switchyard_fleet_request_duration_seconds_bucket") for k in vals)


def verify_call(node, method, req_type, resp_type, **kw):
    v = pb("switchyard.v1.verify")
    with channel("unix:" + node.d.sock) as ch:
        return unary(ch, "/switchyard.v1.Verify/" + method, getattr(v, req_type)(**kw), getattr(v, resp_type))


def test_a_plans_backfill_and_audit_run_on_the_leader_only(redis_pair, etcd, nodes):
    """Started through a follower, the plan's backfill and audit run once, on the
    leader; the follower shows the leader's jobs, naming the node."""
    legacy, target = redis_pair
    lr = legacy.client()
    for i in range(300):
        lr.set("bf:%d" % i, "v%d" % i)
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    b = nodes("b")
    f = os.path.join(a.d.tmp, "plan.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                             "plan": {"steps": ["100%"], "bake": "1s", "interval": "200ms", "backfill": True,
                                      "shadow": "300ms", "verify": True}}]))
    a.syctl("apply", "-f", f)
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")
    wait_target_healthy(b)
    b.syctl("cutover", "users", "start")
    wait_for(lambda: b.get()["cutover"].get("phaseName") == "completed", timeout=40, what="plan completed")
    assert target.client().dbsize() >= 300

    bf_a = verify_call(a, "GetBackfill", "GetBackfillRequest", "BackfillStatus", migration="users")
    assert bf_a.state == "done" and bf_a.node == "a" and bf_a.copied >= 300
    au_a = verify_call(a, "GetAudit", "GetAuditRequest", "AuditStatus", migration="users")
    assert au_a.state == "done" and au_a.node == "a"
    # b ran neither (its own would be shown, under its own name): it shows the leader's
    bf_b = wait_for(lambda: (lambda s: s if s.state == "done" else None)(
        verify_call(b, "GetBackfill", "GetBackfillRequest", "BackfillStatus", migration="users")),
        what="node b showing the leader's backfill")
    assert bf_b.node == "a" and bf_b.copied == bf_a.copied and bf_b.started_unix_ms == bf_a.started_unix_ms
    au_b = wait_for(lambda: (lambda s: s if s.state == "done" else None)(
        verify_call(b, "GetAudit", "GetAuditRequest", "AuditStatus", migration="users")),
        what="node b showing the leader's audit")
    assert au_b.node == "a" and au_b.scanned == au_a.scanned and au_b.missing == au_a.missing
    log_b, log_a = b.d.read_log(), a.d.read_log()
    assert "users: backfill started" in log_a and "users: audit started" in log_a
    assert "users: backfill started" not in log_b and "users: audit started" not in log_b
    # syctl on the follower names where it ran
    assert "on node a" in b.syctl("backfill", "users", "--status").stdout
    assert "on node a" in b.syctl("verify", "users", "--report").stdout
    assert json.loads(b.syctl("-o", "json", "verify", "users", "--report").stdout)["node"] == "a"


def legacy_scans(server):
    return int(server.client().info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_a_backfill_and_an_audit_asked_of_a_follower_run_once_on_the_leader(redis_pair, etcd, nodes):
    """syctl backfill / verify through a follower: the follower scans nothing, commits a
    request to the store, and the leader runs the job once; the result shows through
    the follower, naming the leader."""
    legacy, target = redis_pair
    keys = 4000  # 20 SCAN pages of 200: a second scanner would double the count
    fill(legacy, "jr", keys)
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    b = nodes("b")
    apply_users(a, legacy, target, "0%")
    wait_for(lambda: b.syctl("get", "users", check=False).returncode == 0, what="users on node b")

    before = legacy_scans(legacy)
    r = b.syctl("backfill", "users", "--follow")
    assert "backfill done" in r.stdout and "on node a" in r.stdout, r.stdout
    assert target.client().dbsize() == keys
    bf = verify_call(b, "GetBackfill", "GetBackfillRequest", "BackfillStatus", migration="users")
    assert bf.state == "done" and bf.node == "a" and bf.copied == keys
    backfill_scans = legacy_scans(legacy) - before
    assert backfill_scans >= 1, backfill_scans

    # the gRPC answer of the follower: handed to the leader, not started here
    before = legacy_scans(legacy)
    st = verify_call(b, "StartAudit", "StartAuditRequest", "AuditStatus", migration="users")
    assert st.state == "requested" and st.node == "a" and st.scanned == 0, st
    au = wait_for(lambda: (lambda s: s if s.state == "done" else None)(
        verify_call(b, "GetAudit", "GetAuditRequest", "AuditStatus", migration="users")),
        timeout=30, what="node b showing the leader's audit done")
    mine = verify_call(a, "GetAudit", "GetAuditRequest", "AuditStatus", migration="users")
    assert au.node == "a" and au.scanned >= keys and au.missing == 0
    assert (mine.node, mine.scanned, mine.started_unix_ms) == ("a", au.scanned, au.started_unix_ms)
    via_b = legacy_scans(legacy) - before
    # syctl verify through b waits for the leader's audit and takes its verdict
    r = b.syctl("verify", "users")
    assert "audit done" in r.stdout and "on node a" in r.stdout, r.stdout
    # the same audit started on the leader itself: as many SCANs, so it ran once
    before = legacy_scans(legacy)
    a.syctl("verify", "users")
    on_a = legacy_scans(legacy) - before
    assert on_a >= 10 and via_b <= 1.5 * on_a, (via_b, on_a)

    log_a, log_b = a.d.read_log(), b.d.read_log()
    assert log_a.count("backfill asked through node b runs here") == 1, log_a
    assert log_a.count("audit asked through node b runs here") == 2, log_a
    assert "users: backfill started" not in log_b and "users: audit started" not in log_b
    # the request is in the state, taken by the leader
    kv = json.loads(etcd.ctl("get", "-w", "json", PREFIX + "/state").stdout)["kvs"][0]
    m = pb("switchyard.v1.state").State.FromString(base64.b64decode(kv["value"])).migrations[0]
    assert m.audit_request.node == "b" and m.audit_request.taken_by == "a"
    assert m.backfill_request.node == "b" and m.backfill_request.taken_by == "a"


def test_a_stalled_etcd_does_not_stall_the_agent(redis_pair, etcd, nodes):
    """etcd frozen (SIGSTOP: connections open, nothing answered): a change waits a
    bounded moment and is refused UNAVAILABLE; meanwhile and after, the agent answers
    reads at once; the kernel keeps what was applied; when etcd thaws, changes flow."""
    legacy, target = redis_pair
    a = nodes("a")
    apply_users(a, legacy, target, "0%")
    wait_target_healthy(a)
    c = pb("switchyard.v1.control")
    out = {}

    def change():
        t0 = time.monotonic()
        with channel("unix:" + a.d.sock) as ch:
            try:
                unary(ch, CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=10000), c.Migration)
                out["r"] = ("ok", "")
            except grpc.RpcError as e:
                out["r"] = (e.code(), e.details())
        out["took"] = time.monotonic() - t0

    etcd.proc.send_signal(signal.SIGSTOP)
    try:
        t = threading.Thread(target=change)
        t.start()
        time.sleep(0.1)  # the change is waiting on etcd
        t0 = time.monotonic()
        st = status(a)
        took_status = time.monotonic() - t0
        t.join(timeout=10)
        assert took_status < 1.0, "status took %.2fs while a change waited on etcd" % took_status
        assert st["node"] == "a"
        assert out["r"][0] == grpc.StatusCode.UNAVAILABLE, out
        assert "unreachable" in out["r"][1]
        assert out["took"] < 1.5, out
        # the next change is refused at once: the store is down until a full read works
        t0 = time.monotonic()
        r = a.syctl("cutover", "users", "100%", check=False)
        assert r.returncode == 3 and "unreachable" in r.stderr
        assert time.monotonic() - t0 < 1.0
        assert a.ratio() == 0 and served_port(a, legacy) == legacy.port
    finally:
        etcd.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: a.syctl("cutover", "users", "100%", check=False).returncode == 0, timeout=15,
             what="changes flowing again")
    assert served_port(a, legacy) == target.port


def all_events(node, kind):
    e = pb("switchyard.v1.events")
    with channel("unix:" + node.d.sock) as ch:
        out = list(stream(ch, "/switchyard.v1.Telemetry/Events", e.EventsRequest(follow=False), e.Event,
                          timeout=10))
    return [dict(x.attributes) for x in out if x.kind == kind]


def test_nodes_lists_the_fleet_through_grpc_syctl_and_http(redis_pair, etcd, nodes):
    legacy, target = redis_pair
    a = nodes("a")
    wait_for(lambda: status(a).get("leader") == "a", what="node a leading")
    port = free_port()
    b = nodes("b", extra=["--http", "127.0.0.1:%d" % port])
    c = nodes("c")
    apply_users(b, legacy, target, "25%")
    for n in (a, c):
        wait_for(lambda n=n: n.syctl("get", "users", check=False).returncode == 0, what="users on " + n.name)

    def listed():
        got = json.loads(b.syctl("-o", "json", "nodes").stdout)["nodes"]
        ok = [n["name"] for n in got] == ["a", "b", "c"] and all(n.get("alive") for n in got) and \
            all([m.get("ratioBp") for m in n.get("migrations", [])] == [2500] for n in got)
        return got if ok else None

    got = wait_for(listed, timeout=10, what="three live nodes at 25% in syctl nodes")
    assert [n["name"] for n in got if n.get("leader")] == ["a"]
    assert [n["name"] for n in got if n.get("self")] == ["b"]
    assert all(n["version"] and int(n["lastSeenUnixMs"]) > 0 for n in got)
    assert [m["name"] for m in got[0]["migrations"]] == ["users"]
    # a peer's connections per side come from its node key: clients on c show on b
    run_clients([{"cgroup": c.cgroup, "addr": legacy.addr, "key": "fleet-nodes-c", "conns": 8}])

    def c_conns():
        row = {n["name"]: n for n in json.loads(b.syctl("-o", "json", "nodes").stdout)["nodes"]}["c"]
        m = row["migrations"][0]
        n = int(m.get("connectionsLegacy", 0)) + int(m.get("connectionsTarget", 0))
        return n if n >= 8 else None

    assert wait_for(c_conns, timeout=10, what="c's 8 connections in b's syctl nodes") >= 8
    table = b.syctl("nodes").stdout
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["NODE", "LEADER", "ALIVE"]
    assert any(l.startswith("a ") and " yes " in l for l in lines) and any("b (this)" in l for l in lines)
    assert "users" in table and "ratio 25%" in table
    # the HTTP door serves the same message
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/nodes" % port, timeout=10) as r:
        web = json.loads(r.read())
    assert [n["name"] for n in web["nodes"]] == ["a", "b", "c"]
    assert [n["name"] for n in web["nodes"] if n.get("leader")] == ["a"]

    # a node leaving and joining is an event on the others, and the list says so
    c.d.stop()
    wait_for(lambda: any(e.get("node") == "c" for e in all_events(a, "fleet.node_left")), what="c left, on a")
    gone = {n["name"]: n for n in json.loads(a.syctl("-o", "json", "nodes").stdout)["nodes"]}
    assert not gone["c"].get("alive") and gone["b"].get("alive") and gone["a"].get("self")
    assert any(e.get("node") == "b" for e in all_events(a, "fleet.node_joined"))
    c.d.start()
    wait_for(lambda: len([e for e in all_events(a, "fleet.node_joined") if e.get("node") == "c"]) >= 2,
             what="c joined again, on a")


def test_nodes_without_a_store_is_this_agent_alone(bpf_env, tmp_path, uid):
    cg = make_cgroup(os.path.join(cgroup2_root(), "sy-fleet-%s-solo" % uid))
    bpffs = "/sys/fs/bpf/sy-fleet-%s-solo" % uid
    d = Daemon(tmp_path, cgroup=cg, bpffs=bpffs)
    try:
        got = json.loads(d.syctl("-o", "json", "nodes").stdout)["nodes"]
        assert len(got) == 1 and got[0]["name"] and got[0]["self"] and got[0]["leader"] and got[0]["alive"]
        assert "(this)" in d.syctl("nodes").stdout
        assert d.syctl("nodes", "extra", check=False).returncode == 2
    finally:
        d.stop()
        subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", bpffs],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        remove_cgroup(cg)
