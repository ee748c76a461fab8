# SPDX-License-Identifier: Apache-2.0
"""The kernel's RESP parser (observe.bpf.c + resp.h): commands counted per migration,
prefix rule, side and class, exactly, whatever the client and however the bytes are
cut into sends and packets; replies untouched; write commands and sampled read keys
delivered to the agent through the ring buffer."""
import json
import os
import subprocess
import urllib.request

import pytest

from grpc_util import channel, pb, unary
from sy import CLIENT, PYTHON, RedisServer, free_port, in_cgroup, py_redis, spec_yaml

REDIS_CLI = "/usr/bin/redis-cli"


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def raw(job):
    r = subprocess.run([PYTHON, CLIENT, "--raw"], input=json.dumps(job), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def migration(d, name="p"):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        return unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name=name), c.Migration)


def classes(m, side="legacy", rule=None):
    """(reads, writes, others) of one side, over every rule or one."""
    if rule is None:
        s = [x for x in m.sides if x.side == side][0]
        return s.reads, s.writes, s.others
    r = [x for x in m.rules if x.side == side and x.rule == rule][0]
    return r.reads, r.writes, r.others


def side(m, name):
    return [x for x in m.sides if x.side == name][0]


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    a, b = os.path.join(cgroup, "a"), os.path.join(cgroup, "b")
    os.mkdir(a)
    os.mkdir(b)
    made = {}

    def start(daemon_kw=None, **extra):
        spec = {"name": "p", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                "pins": [{"cgroup": b, "side": "target"}]}
        spec.update(extra)
        made["d"] = daemon_factory(spec_yaml([spec]), **(daemon_kw or {}))
        return made["d"]

    yield start, legacy, target, a, b
    legacy.stop()
    target.stop()


WORKLOAD = [("SET", "k%d" % i, "v%d" % i) for i in range(1000)] + \
           [("GET", "k%d" % i) for i in range(500)] + [("DEL", "k%d" % i) for i in range(100)]


def test_exact_counts_redis_cli_one_by_one(env):
    start, legacy, target, a, b = env
    d = start()
    text = "".join(" ".join(c) + "\n" for c in WORKLOAD)
    in_cgroup(a, [REDIS_CLI, "-h", "127.0.0.1", "-p", str(legacy.port)], stdin=text.encode())
    m = migration(d)
    reads, writes, others = classes(m, "legacy")
    assert (reads, writes) == (500, 1100)
    assert others <= 2  # redis-cli's own handshake, if any
    assert classes(m, "target") == (0, 0, 0)
    assert side(m, "legacy").unparsed == 0


def test_exact_counts_pipelined_redis_cli_pipe(env):
    """redis-cli --pipe streams the whole file as fast as it can (many commands per
    send and per packet) and adds one ECHO of its own to find the end."""
    start, legacy, target, a, b = env
    d = start()
    blob = b"".join(resp(*c) for c in WORKLOAD)
    in_cgroup(a, [REDIS_CLI, "-h", "127.0.0.1", "-p", str(legacy.port), "--pipe"], stdin=blob)
    m = migration(d)
    assert classes(m, "legacy") == (500, 1100, 1)
    rule0 = [r for r in m.rules if r.side == "legacy" and r.rule == 0][0]
    assert rule0.read_bytes + rule0.write_bytes == len(blob)
    # plus redis-cli's ECHO and the blank line it may send around it
    assert 0 <= side(m, "legacy").bytes_out - len(blob) - rule0.other_bytes <= 2
    assert side(m, "legacy").unparsed == 0


def test_exact_counts_python_redis_pipelines_of_50_on_target(env):
    start, legacy, target, a, b = env
    d = start()
    py_redis(b, legacy.addr, """
cmds = %r
for i in range(0, len(cmds), 50):
    p = r.pipeline(transaction=False)
    for c in cmds[i:i + 50]:
        p.execute_command(*c)
    p.execute()
""" % (WORKLOAD,))
    m = migration(d)
    assert classes(m, "target") == (500, 1100, 0)
    assert classes(m, "legacy") == (0, 0, 0)


def test_exact_counts_one_byte_per_send(env):
    start, legacy, target, a, b = env
    d = start()
    cmds = [("SET", "one:%d" % i, "x" * i) for i in range(6)] + [("GET", "one:3"), ("DEL", "one:1", "one:2")]
    blob = b"".join(resp(*c) for c in cmds)
    r = raw({"cgroup": a, "addr": legacy.addr, "raw": blob.decode("latin-1"), "chunk": 1, "gap": 0.0005,
             "replies": len(cmds)})
    assert r["kinds"] == ["+"] * len(cmds)
    m = migration(d)
    assert classes(m, "legacy") == (1, 7, 0)
    assert side(m, "legacy").bytes_out == len(blob)
    rule0 = [x for x in m.rules if x.side == "legacy" and x.rule == 0][0]
    assert rule0.write_bytes + rule0.read_bytes == len(blob)


def test_exact_counts_inline_commands(env):
    start, legacy, target, a, b = env
    d = start()
    text = "SET in1 a\r\nGET in1\r\n\r\nset in2 b\nget in2\r\nDEL in1 in2\r\nPING\r\n"
    r = raw({"cgroup": a, "addr": legacy.addr, "raw": text, "replies": 6})
    assert r["kinds"] == ["+"] * 6
    assert classes(migration(d), "legacy") == (2, 3, 1)


def test_exact_counts_inside_multi_exec(env):
    start, legacy, target, a, b = env
    d = start()
    py_redis(a, legacy.addr, """
p = r.pipeline(transaction=True)
for i in range(10):
    p.set("tx:%d" % i, i)
p.get("tx:1")
p.execute()
""")
    assert classes(migration(d), "legacy") == (1, 10, 2)  # MULTI and EXEC are "other"


def test_exact_counts_with_one_mib_values(env):
    start, legacy, target, a, b = env
    d = start()
    py_redis(a, legacy.addr, """
v = b"x" * (1 << 20)
for i in range(8):
    r.set("big:%d" % i, v)
for i in range(4):
    assert r.get("big:%d" % i) == v
""")
    m = migration(d)
    assert classes(m, "legacy") == (4, 8, 0)
    rule0 = [x for x in m.rules if x.side == "legacy" and x.rule == 0][0]
    assert rule0.write_bytes == sum(len(resp("SET", "big:%d" % i, b"x" * (1 << 20))) for i in range(8))
    assert side(m, "legacy").unparsed == 0


def test_key_prefix_rules(env):
    start, legacy, target, a, b = env
    d = start(prefixes=["user:", "cart:", "user:vip:"])
    py_redis(a, legacy.addr, """
for i in range(30):
    r.set("user:%d" % i, i)
for i in range(20):
    r.set("cart:%d" % i, i)
for i in range(7):
    r.get("user:vip:%d" % i)
for i in range(11):
    r.set("other:%d" % i, i)
r.get("use")
r.ping()
""")
    m = migration(d)
    rules = {x.rule: x for x in m.rules if x.side == "legacy"}
    assert [rules[i].prefix for i in range(4)] == ["", "user:", "cart:", "user:vip:"]
    assert (rules[1].reads, rules[1].writes) == (0, 30)
    assert (rules[2].reads, rules[2].writes) == (0, 20)
    assert (rules[3].reads, rules[3].writes) == (7, 0)  # the longest prefix wins
    assert (rules[0].reads, rules[0].writes, rules[0].others) == (0, 0, 1)  # PING: keyless
    assert side(m, "legacy").outside == 12  # other:* and "use"
    assert classes(m, "legacy") == (7, 50, 1)


def test_replies_are_byte_identical_with_and_without_the_programs(env, tmp_path):
    """The same session (values of every size, errors, pipelining, inline) against
    two identical servers: one through an observed socket, one from outside the
    cgroup. The replies must be the same bytes."""
    start, legacy, target, a, b = env
    start(mirror="both", sample_reads=1)
    plain = RedisServer(tmp_path / "plain")
    try:
        cmds = [resp("SET", "s%d" % i, os.urandom(i * 997)) for i in range(40)]
        cmds += [resp("GET", "s%d" % i) for i in range(40)]
        cmds += [resp("LPUSH", "s1", "x"), resp("NOSUCH", "a"), b"PING\r\n", resp("MGET", "s1", "s2", "s3")]
        cmds += [resp("HSET", "h", "f%d" % i, "v" * i) for i in range(50)] + [resp("HGETALL", "h")]
        blob = b"".join(cmds)
        job = {"raw": blob.decode("latin-1"), "chunk": 7001, "replies": len(cmds)}
        seen = raw(dict(job, cgroup=a, addr=legacy.addr))
        unseen = raw(dict(job, cgroup=None, addr=plain.addr))
        assert seen["replies"] == unseen["replies"]
        assert len(seen["replies"]) > 400000
    finally:
        plain.stop()


def test_capture_and_sampling_reach_the_agent(env):
    start, legacy, target, a, b = env
    port = free_port()
    d = start(daemon_kw={"extra": ["--http", "127.0.0.1:%d" % port]}, mirror="forward", sample_reads=10,
              capture_bytes=65536)
    py_redis(a, legacy.addr, """
for i in range(1000):
    r.set("c:%d" % i, "v" * (i % 300))
for i in range(1000):
    r.get("c:%d" % i)
big = b"y" * (1 << 20)
for i in range(3):
    r.set("cbig:%d" % i, big)
""")
    py_redis(b, legacy.addr, "for i in range(50): r.set('t:%d' % i, i)")  # target side: not captured
    m = migration(d)
    lg, tg = side(m, "legacy"), side(m, "target")
    assert lg.captured == 1003 and lg.truncated == 3 and tg.captured == 0
    assert lg.events_lost == 0
    assert 40 <= lg.sampled <= 170, lg.sampled  # binomial(1000, 0.1): mean 100, sd 9.5
    ev = m.events
    assert ev.writes == 1003 and ev.truncated == 3 and ev.aborted == 0 and ev.dropped == 0
    assert ev.read_keys == lg.sampled
    # bodies: everything after the name, at most capture_bytes each
    expect = sum(len(resp("SET", "c:%d" % i, "v" * (i % 300))) - len(b"*3\r\n$3\r\nSET\r\n") for i in range(1000))
    assert ev.bytes == expect + 3 * 65536
    # one record per short command (one at a time: nothing to batch) and per sampled
    # key; a big one is at least its 4 records of 16 KiB, and one per packet at most
    assert 1000 + ev.read_keys + 3 * 4 <= ev.records <= 1000 + ev.read_keys + 3 * 64, ev.records
    # the same counter in the JSON of the HTTP door and of syctl
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/migrations/p" % port, timeout=10) as r:
        http = json.loads(r.read())["events"]
    cli = json.loads(d.syctl("-o", "json", "get", "p").stdout)["events"]
    for got in (http, cli):
        assert int(got["records"]) == ev.records, got
        assert int(got["writes"]) == 1003


def test_garbage_is_counted_as_unparsed_and_the_next_connection_is_fine(env):
    start, legacy, target, a, b = env
    d = start()
    raw({"cgroup": a, "addr": legacy.addr, "raw": "*2\r\n$3\r\nGET\r\nXX\r\n", "replies": 1})
    raw({"cgroup": a, "addr": legacy.addr, "raw": resp("SET", "after", "1").decode(), "replies": 1})
    m = migration(d)
    assert side(m, "legacy").unparsed == 1
    assert classes(m, "legacy")[1] == 1


def test_the_agents_own_sockets_are_never_parsed(env):
    """The daemon runs inside the attached cgroup and PINGs both sides every 200 ms;
    none of it may show up as traffic of the migration."""
    import time
    start, legacy, target, a, b = env
    d = start(daemon_kw={"in_cgroup": a})
    time.sleep(1.5)  # several health rounds
    m = migration(d)
    for name in ("legacy", "target"):
        s = side(m, name)
        assert (s.reads, s.writes, s.others, s.sockets, s.bytes_out) == (0, 0, 0, 0, 0)
    assert legacy.client().info("stats")["total_connections_received"] >= 3  # the checks did run
