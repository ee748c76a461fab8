# SPDX-License-Identifier: Apache-2.0
"""Drain (rollback --drain): the client connections steered to one side are aborted in
the kernel, everything else stays.

Real parts throughout: a running switchyardd steering a real cgroup, real redis-servers,
client processes holding real connections, and $(OUT)/tools/sy_drain calling
sy_drain_side (agent/kernel/drain.h) as the daemon does. Which connections exist is read from
the servers (CLIENT LIST, by the names the clients gave themselves), what the clients
saw from the clients themselves (errno of their next call), and which sockets belong to
the daemon from the kernel (ss -p).
"""
import json
import os
import subprocess

import pytest

from sy import OUT, PYTHON, py_redis, spec_yaml, wait_for

SY_DRAIN = os.path.join(OUT, "tools", "sy_drain")

# A client process: N raw connections to ADDR, each named TAG-i on the server, plus one
# redis-py connection named TAG-redispy, and SILENT connections that never send a byte
# (marked at connect() in sy_conns, no storage yet). Commands on stdin, one JSON line
# per answer:
#   check      → per raw connection: "ok" (PING answered), "eof", or the errno name
#   silent     → per silent connection: "ok" (open, nothing to read), "eof", or the errno
#   reconnect  → the redis-py connection's next PING (its pool replaces a dead socket
#                at checkout; a connection error gets one retry); the server's port then
#   quit
HOLDER = r'''
import errno, json, socket, sys
import redis

host, port, n, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
silent = [socket.create_connection((host, port), timeout=5) for _ in range(int(sys.argv[5]))]

def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

socks = []
for i in range(n):
    s = socket.create_connection((host, port), timeout=5)
    name = "%s-%d" % (tag, i)
    s.sendall(cmd("CLIENT", "SETNAME", name) + cmd("SET", "k:" + name, "v"))
    got = b""
    while len(got) < 10:
        chunk = s.recv(64)
        if not chunk:
            raise SystemExit("%s: closed during setup" % name)
        got += chunk
    assert got == b"+OK\r\n+OK\r\n", got
    socks.append(s)
r = redis.Redis(host=host, port=port, socket_timeout=5, client_name=tag + "-redispy")
r.ping()
print(json.dumps({"ready": n}), flush=True)

for line in sys.stdin:
    what = line.strip()
    if what == "check":
        res = []
        for s in socks:
            try:
                s.sendall(b"PING\r\n")
                data = s.recv(64)
                res.append("ok" if data.startswith(b"+PONG") else ("eof" if not data else repr(data)))
            except OSError as e:
                res.append(errno.errorcode.get(e.errno, str(e.errno)))
        print(json.dumps(res), flush=True)
    elif what == "silent":
        res = []
        for s in silent:
            s.setblocking(False)
            try:
                res.append("eof" if not s.recv(64) else "data")
            except BlockingIOError:
                res.append("ok")
            except OSError as e:
                res.append(errno.errorcode.get(e.errno, str(e.errno)))
        print(json.dumps(res), flush=True)
    elif what == "reconnect":
        first = "ok"
        try:
            r.ping()
        except redis.ConnectionError as e:
            first = str(e)
            r.ping()
        print(json.dumps({"first": first, "port": int(r.config_get("port")["port"])}), flush=True)
    elif what == "quit":
        break
'''


class Holder:
    def __init__(self, cgroup, host, port, n, tag, silent=0):
        self.tag = tag
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup,
             PYTHON, "-c", HOLDER, host, str(port), str(n), tag, str(silent)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()
        assert ready, "client %s failed: %s" % (tag, self.proc.stderr.read())
        assert json.loads(ready) == {"ready": n}

    def ask(self, what):
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "client %s died: %s" % (self.tag, self.proc.stderr.read())
        return json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def holders():
    started = []

    def make(*args):
        h = Holder(*args)
        started.append(h)
        return h

    yield make
    for h in started:
        h.stop()


def names(server, prefix):
    return sorted(c["name"] for c in server.client().client_list() if c["name"].startswith(prefix))


def agent_conns(server, pid):
    """CLIENT LIST entries of `server` whose client socket belongs to process `pid`."""
    out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True, text=True,
                         check=True).stdout
    local = set()
    for line in out.splitlines():
        if "pid=%d," % pid not in line:
            continue
        cols = line.split()
        # Recv-Q Send-Q Local Peer Process (the state column is left out with `state`)
        if cols[3].endswith(":%d" % server.port):
            local.add(cols[2])
    return {c["id"]: c for c in server.client().client_list() if c["addr"] in local}


def drain(bpffs, legacy, *extra):
    r = subprocess.run([SY_DRAIN, "--bpffs", bpffs, "--endpoint", legacy.addr] + list(extra),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "sy_drain: exit %d: %s%s" % (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def test_drain_target_aborts_steered_clients_only(redis_pair, daemon_factory, cgroup, bpffs, holders):
    legacy, target = redis_pair
    agent_cg, app_cg, old_cg = (os.path.join(cgroup, c) for c in ("agent", "app", "old"))
    for c in (agent_cg, app_cg, old_cg):
        os.mkdir(c)

    def spec(ratio):
        # mirror both ways: the daemon then holds connections of its own to both sides
        return spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                           "ratio": ratio, "mirror": "both",
                           "pins": [{"cgroup": old_cg, "side": "legacy"}]}])

    # The daemon lives inside the steered cgroup: its own connects pass through the
    # programs, and must come out without storage (never drained).
    d = daemon_factory(spec("100%"), in_cgroup=agent_cg)
    wait_for(lambda: py_redis(app_cg, legacy.addr, "print(r.config_get('port')['port'])").strip()
             == str(target.port), what="target healthy: app steered to target")

    n = 50
    steered = holders(app_cg, "127.0.0.1", legacy.port, n, "drain-t")  # dials legacy, lands on target
    direct = holders(app_cg, "127.0.0.1", target.port, 5, "drain-d")   # dials target itself
    pinned = holders(old_cg, "127.0.0.1", legacy.port, 10, "drain-l")  # pinned to legacy

    assert names(target, "drain-t") == sorted(["drain-t-%d" % i for i in range(n)] + ["drain-t-redispy"])
    assert len(names(target, "drain-d")) == 6
    assert len(names(legacy, "drain-l")) == 11
    assert names(legacy, "drain-t") == [] and names(target, "drain-l") == []

    # The mirror's connections: legacy clients' writes are replayed on target and the
    # other way round. Wait until the daemon holds a lasting connection (older than a
    # health check's) on each side.
    def lasting_conns(server):
        return {i for i, c in agent_conns(server, d.proc.pid).items() if int(c["age"]) >= 1}

    wait_for(lambda: lasting_conns(target) and lasting_conns(legacy), timeout=15,
             what="the daemon's mirror connections")
    agent_before = {s: agent_conns(s, d.proc.pid) for s in (legacy, target)}

    # Rollback first (ratio 0, the pin stays), then drain: reconnects go to legacy.
    d.reload(spec("0%"))
    res = drain(bpffs, legacy, "--side", "target")
    assert res["ok"] and res["side"] == "target"
    assert res["matched"] == n + 1, res  # the raw connections and the redis-py one
    assert res["destroyed"] == n + 1 and res["failed"] == 0, res
    assert res["examined"] >= 2 * (n + 1 + 6 + 11), res  # both ends of every connection, at least

    # Gone from target at once (the peer got a RST), nothing else touched.
    wait_for(lambda: names(target, "drain-t") == [], timeout=1.0, what="steered clients gone from target")
    assert len(names(target, "drain-d")) == 6
    assert len(names(legacy, "drain-l")) == 11
    for s in (legacy, target):
        now = agent_conns(s, d.proc.pid)
        # Health checks come and go; connections the daemon held before must remain.
        lasting = {i for i, c in agent_before[s].items() if int(c["age"]) >= 1}
        assert lasting and lasting <= set(now), (s.port, agent_before[s], now)

    # What the clients see: the aborted ones fail with ECONNABORTED, the others work.
    assert steered.ask("check") == ["ECONNABORTED"] * n
    assert direct.ask("check") == ["ok"] * 5
    assert pinned.ask("check") == ["ok"] * 10
    # A client that retries reconnects, and the connect() steering sends it to legacy
    # (redis-py's pool sees the dead socket at checkout and reconnects by itself).
    assert steered.ask("reconnect")["port"] == legacy.port
    assert names(legacy, "drain-t") == ["drain-t-redispy"]
    assert direct.ask("reconnect") == {"first": "ok", "port": target.port}

    # With --direct, the sockets that dialled target themselves go too; the daemon's own
    # connection to target (it dials target directly as well) has no storage and stays.
    lasting = lasting_conns(target)
    res = drain(bpffs, legacy, "--side", "target", "--direct")
    assert res["matched"] == 6 and res["destroyed"] == 6 and res["failed"] == 0, res
    wait_for(lambda: names(target, "drain-d") == [], timeout=1.0, what="direct clients gone from target")
    assert lasting and lasting <= set(agent_conns(target, d.proc.pid))
    assert pinned.ask("check") == ["ok"] * 10


def test_drain_legacy_side_and_errors(redis_pair, daemon_factory, cgroup, bpffs, holders):
    legacy, target = redis_pair
    app_cg = os.path.join(cgroup, "app")
    os.mkdir(app_cg)
    d = daemon_factory(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                                   "ratio": "0%", "mirror": "off"}]))
    # 3 more that never send: drained all the same (found by their sy_conns entry)
    on_legacy = holders(app_cg, "127.0.0.1", legacy.port, 20, "drain-l", 3)
    assert len(names(legacy, "drain-l")) == 21

    # Draining the side nobody is on touches nothing.
    res = drain(bpffs, legacy, "--side", "target")
    assert res["matched"] == 0 and res["destroyed"] == 0, res
    assert on_legacy.ask("check") == ["ok"] * 20
    assert on_legacy.ask("silent") == ["ok"] * 3

    # A forward drain: raise the ratio, then drain legacy; reconnects land on target.
    d.reload(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                         "ratio": "100%", "mirror": "off"}]))
    wait_for(lambda: py_redis(app_cg, legacy.addr, "print(r.config_get('port')['port'])").strip()
             == str(target.port), what="target healthy: app steered to target")
    res = drain(bpffs, legacy, "--side", "legacy")
    assert res["matched"] == 24 and res["destroyed"] == 24, res
    wait_for(lambda: names(legacy, "drain-l") == [], timeout=1.0, what="legacy clients gone")
    assert on_legacy.ask("check") == ["ECONNABORTED"] * 20
    assert on_legacy.ask("silent") == ["ECONNABORTED"] * 3
    assert on_legacy.ask("reconnect")["port"] == target.port

    # Bad input is refused with a reason, and drains nothing.
    r = subprocess.run([SY_DRAIN, "--bpffs", bpffs, "--endpoint", "127.0.0.1:1"], capture_output=True, text=True)
    assert r.returncode == 1 and "no migration's endpoint" in r.stderr
    r = subprocess.run([SY_DRAIN, "--bpffs", bpffs, "--mig", "70000"], capture_output=True, text=True)
    assert r.returncode == 1 and "drain: migration 70000 side 1: invalid arguments" in r.stderr
    r = subprocess.run([SY_DRAIN, "--bpffs", bpffs + "-missing", "--mig", "1"], capture_output=True, text=True)
    assert r.returncode == 1 and "No such file or directory" in r.stderr
