# SPDX-License-Identifier: Apache-2.0
"""Shadow writes (agent/shadow/mirror.c): writes captured by the kernel on one side are
replayed (or repaired) on the other, and a full compare of the two real servers finds
no difference once the mirror has drained."""
import os
import time

import pytest
import redis

from grpc_util import channel, pb, unary
from compare import differences
from sy import RedisServer, py_redis, spawn_py_redis, spec_yaml, wait_for


def py_redis_r(cgroup, code, addr):
    return py_redis(cgroup, addr, code)


def spawn_py_redis_r(cgroup, code, addr):
    return spawn_py_redis(cgroup, addr, code)


def migration(d, name="m"):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        return unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name=name), c.Migration)


def mirror(d, direction):
    return [x for x in migration(d).mirror if x.direction == direction][0]


def drained(d):
    m = migration(d)
    return all(x.queued == 0 and x.dirty == 0 for x in m.mirror)


def converge(d, a_port, b_port, timeout=30, **kw):
    wait_for(lambda: drained(d), timeout=timeout, what="mirror drained")
    end = time.monotonic() + timeout
    while True:
        n, diffs = differences(a_port, b_port, **kw)
        if not diffs or time.monotonic() > end:
            return n, diffs
        time.sleep(0.3)


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    a, b = os.path.join(cgroup, "a"), os.path.join(cgroup, "b")
    os.mkdir(a)
    os.mkdir(b)

    def start(**extra):
        spec = {"name": "m", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                "pins": [{"cgroup": b, "side": "target"}], "mirror": "both"}
        spec.update(extra)
        return daemon_factory(spec_yaml([spec]))

    yield start, legacy, target, a, b
    legacy.stop()
    target.stop()


def test_no_loop_each_write_applied_once_per_side(env):
    """With `both`, INCRs on each side land once on each side: replays are never
    captured again."""
    start, legacy, target, a, b = env
    d = start()
    pa = spawn_py_redis_r(a, "for i in range(500):\n    r.incr('cnt:%d' % (i % 10))", legacy.addr)
    pb_ = spawn_py_redis_r(b, "for i in range(300):\n    r.incr('cnt:%d' % (i % 10))", legacy.addr)  # pinned: target
    assert pa.wait(60) == 0 and pb_.wait(60) == 0
    n, diffs = converge(d, legacy.port, target.port)
    assert diffs == []
    for side in (legacy, target):
        vals = [int(side.client().get("cnt:%d" % i)) for i in range(10)]
        assert vals == [80] * 10  # 50 + 30 per key, each applied exactly once per side
    assert mirror(d, "forward").mirrored == 500 and mirror(d, "reverse").mirrored == 300


def test_forward_replay_with_select_multi_rewrite_and_nondeterministic(env):
    start, legacy, target, a, b = env
    d = start(mirror="forward", rewrite={"user:": "u2:"})
    py_redis_r(a, """
for i in range(300):
    r.set('user:%d' % i, i)
    r.hset('user:h:%d' % (i % 7), 'f%d' % i, i)
r.sadd('set', *range(50))
for _ in range(10):
    r.spop('set')
p = r.pipeline(transaction=True)
p.set('tx:1', 'a'); p.lpush('tx:l', 1, 2, 3); p.expire('tx:l', 100); p.execute()
p = r.pipeline(transaction=True)
p.set('tx:discarded', 1); p.reset()
r.execute_command('SELECT', 3)
r.set('in:db3', 'yes')
r.execute_command('SELECT', 0)
r.mset({'user:m1': 1, 'user:m2': 2, 'other': 3})
""", legacy.addr)
    n, diffs = converge(d, legacy.port, target.port, rewrite={"user:": "u2:"})
    print("keys compared:", n)
    assert diffs == [] and n >= 300
    t = target.client()
    assert t.get("u2:7") == b"7" and t.get("user:7") is None
    assert redis.Redis(port=target.port, db=3).get("in:db3") == b"yes"
    assert t.ttl("tx:l") > 90
    assert mirror(d, "forward").repaired >= 1  # SPOP is repaired, never replayed


def test_values_over_the_capture_cap_are_repaired(env):
    start, legacy, target, a, b = env
    d = start(mirror="forward", capture_bytes=4096)
    py_redis_r(a, """
big = b'z' * 300000
for i in range(5):
    r.set('big:%d' % i, big + str(i).encode())
r.rpush('lbig', big, big)
r.hset('hbig', mapping={'a': big, 'b': big})
""", legacy.addr)
    n, diffs = converge(d, legacy.port, target.port)
    assert diffs == [] and n == 7
    st = migration(d)
    assert [s for s in st.sides if s.side == "legacy"][0].truncated == 7
    f = mirror(d, "forward")
    assert f.repaired >= 7 and not f.needs_audit
    # MSET's second key lies past the captured part: nothing can name it, so the
    # migration says it needs an audit rather than pretending
    py_redis_r(a, "r.mset({'mbig:1': b'z' * 300000, 'mbig:2': b'y' * 10})", legacy.addr)
    wait_for(lambda: mirror(d, "forward").needs_audit, what="needs audit")
    assert "truncated" in mirror(d, "forward").audit_reason


def test_tiny_queue_drops_are_counted_and_repaired(env, tmp_path):
    """A queue of one command in flight: most replays are dropped (counted), their keys
    repaired; the clients do not notice (p99 compared with the same workload against
    a server no migration covers, generous bound: this is not a benchmark)."""
    start, legacy, target, a, b = env
    d = start(mirror="forward", mirror_queue=1)
    plain = RedisServer(tmp_path / "plain")
    code = """
import time
lat = []
for i in range(0, 4000, 50):
    t0 = time.monotonic()
    p = r.pipeline(transaction=False)
    for j in range(i, i + 50):
        p.set('q:%d' % j, j)
    p.execute()
    lat.append(time.monotonic() - t0)
lat.sort()
print(lat[int(len(lat) * 0.99) - 1])
"""
    try:
        base = float(py_redis_r(a, code, plain.addr))
        mirrored = float(py_redis_r(a, code, legacy.addr))
    finally:
        plain.stop()
    n, diffs = converge(d, legacy.port, target.port)
    assert diffs == [] and n == 4000
    f = mirror(d, "forward")
    print("p99 s: plain %.5f mirrored %.5f; dropped %d repaired %d" % (base, mirrored, f.dropped, f.repaired))
    assert f.dropped > 0 and f.repaired >= f.dropped and not f.needs_audit
    assert mirrored <= 3 * base + 0.005


def test_target_down_then_back_empty(env, tmp_path):
    """The target dies for 5 s mid-run and comes back empty of what it missed: clients
    on legacy see no error, the failed replays are counted, and repair restores all."""
    start, legacy, target, a, b = env
    d = start(mirror="forward")
    writer = spawn_py_redis_r(a, """
import time
end = time.monotonic() + 9
i = 0
while time.monotonic() < end:
    r.set('t:%d' % (i % 3000), i)
    i += 1
    time.sleep(0.0005)
print(i)
""", legacy.addr)
    time.sleep(1.5)
    target.stop()
    time.sleep(5)
    target.start()
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err  # no client error on legacy
    n, diffs = converge(d, legacy.port, target.port, timeout=60)
    assert diffs == [] and n == 3000
    assert mirror(d, "forward").failed > 0


def test_conflicting_writers_converge(env):
    """Clients on both sides SET and HSET the same 100 keys as fast as they can."""
    start, legacy, target, a, b = env
    d = start()
    code = """
import time, random
end = time.monotonic() + 6
while time.monotonic() < end:
    k = random.randrange(100)
    p = r.pipeline(transaction=False)
    p.set('c:str:%d' % k, '%s-%f' % (SIDE, time.time()))
    p.hset('c:hash:%d' % k, 'f%d' % random.randrange(5), SIDE)
    p.execute()
"""
    procs = [spawn_py_redis_r(a, "SIDE='legacy'\n" + code, legacy.addr) for _ in range(2)]
    procs += [spawn_py_redis_r(b, "SIDE='target'\n" + code, legacy.addr) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    n, diffs = converge(d, legacy.port, target.port, timeout=60)
    print("keys compared:", n, "conflicts:", mirror(d, "forward").conflicts)
    assert diffs == [] and n == 200
    assert mirror(d, "forward").conflicts > 0


def test_kill_9_flags_needs_audit_and_captured_writes_are_replayed(env):
    start, legacy, target, a, b = env
    d = start(mirror="forward")
    py_redis_r(a, "for i in range(200): r.set('before:%d' % i, i)", legacy.addr)
    converge(d, legacy.port, target.port)
    assert not mirror(d, "forward").needs_audit
    d.kill9()
    # written while no agent runs: the kernel still captures into the pinned ring buffer
    py_redis_r(a, "for i in range(300): r.set('during:%d' % i, i)", legacy.addr)
    d.start()
    n, diffs = converge(d, legacy.port, target.port)
    assert diffs == [] and n == 500
    f = mirror(d, "forward")
    assert f.needs_audit and "stopped without draining" in f.audit_reason
    # a clean stop with nothing in flight leaves no doubt for the next start
    d.stop()
    d.start()
    assert not mirror(d, "forward").needs_audit


MIXED = """
import random, time
rnd = random.Random(SEED)
end = time.monotonic() + SECONDS
big = b'B' * 20000  # over capture_bytes: repaired, never replayed
ops = 0

def k(t):
    return 'mx:%s:%d' % (t, rnd.randrange(150))

while time.monotonic() < end:
    x = rnd.randrange(22)
    if x == 0: r.set(k('str'), rnd.random())
    elif x == 1: r.setex(k('str'), 100 + rnd.randrange(100), 'e')
    elif x == 2: r.delete(k(rnd.choice(['str', 'hash', 'list', 'set', 'zset', 'num', 'flt'])))
    elif x == 3: r.incr(k('num'))
    elif x == 4: r.incrbyfloat(k('flt'), 0.5)
    elif x == 5: r.append(k('str'), 'a')
    elif x == 6: r.hset(k('hash'), 'f%d' % rnd.randrange(10), rnd.randrange(1000))
    elif x == 7: r.hdel(k('hash'), 'f%d' % rnd.randrange(10))
    elif x == 8: r.lpush(k('list'), rnd.randrange(1000))
    elif x == 9: r.rpop(k('list'))
    elif x == 10: r.sadd(k('set'), rnd.randrange(50))
    elif x == 11: r.srem(k('set'), rnd.randrange(50))
    elif x == 12: r.zadd(k('zset'), {'m%d' % rnd.randrange(20): rnd.randrange(100)})
    elif x == 13: r.zincrby(k('zset'), 1.5, 'm%d' % rnd.randrange(20))
    elif x == 14: r.expire(k('hash'), 200)
    elif x == 15: r.persist(k('hash'))
    elif x == 16: r.mset({k('str'): 'm1', k('str'): 'm2'})
    elif x == 17: r.getdel(k('str'))
    elif x == 18:
        p = r.pipeline(transaction=False)
        for _ in range(rnd.randrange(5, 30)):
            p.set(k('str'), rnd.randrange(10**6))
            p.hincrby(k('hash'), 'n', 1)
        p.execute()
    elif x == 19:
        p = r.pipeline(transaction=True)
        p.incr(k('num')); p.lpush(k('list'), 'tx'); p.sadd(k('set'), 'tx')
        p.execute()
    elif x == 20: r.spop(k('set'))
    elif x == 21 and rnd.randrange(20) == 0: r.set(k('str'), big)
    ops += 1
print(ops)
"""


def run_mixed(cgroups, addr, seconds):
    procs = [spawn_py_redis_r(cg, "SEED=%d\nSECONDS=%d\n%s" % (i, seconds, MIXED), addr)
             for i, cg in enumerate(cgroups)]
    total = 0
    for p in procs:
        out, err = p.communicate(timeout=seconds + 120)
        assert p.returncode == 0, err  # not one client error
        total += int(out.strip())
    return total


@pytest.mark.parametrize("ratio,mode", [("0%", "forward"), ("50%", "both")])
def test_mixed_workload_leaves_no_difference(env, cgroup, ratio, mode):
    start, legacy, target, a, b = env
    d = start(ratio=ratio, mirror=mode, capture_bytes=4096)
    # a target counts once its first health check passed: until then everyone stays on legacy
    wait_for(lambda: all(t.healthy for t in migration(d).targets), what="target healthy")
    clients = []
    for i in range(10):
        c = os.path.join(cgroup, "w%d" % i)
        os.mkdir(c)
        clients.append(c)
    ops = run_mixed(clients, legacy.addr, 20)
    n, diffs = converge(d, legacy.port, target.port, timeout=60)
    m = migration(d)
    print("ops:", ops, "keys compared:", n, "mirror:",
          [(x.direction, x.mirrored, x.repaired, x.conflicts, x.failed, x.dropped) for x in m.mirror])
    assert diffs == [], diffs[:10]
    assert n > 500
    f = mirror(d, "forward")
    assert f.mirrored > 1000 and f.repaired > 0 and not f.needs_audit
    if mode == "both":
        sides = {s.side: s for s in m.sides}
        assert sides["legacy"].sockets > 0 and sides["target"].sockets > 0  # really split
        assert mirror(d, "reverse").mirrored > 1000


def test_auto_mirror_starts_with_the_cutover(env):
    """`mirror: auto` (the default): nothing is mirrored while every client is on
    legacy; once the ratio leaves 0 %, writes are mirrored both ways."""
    start, legacy, target, a, b = env
    d = start(mirror="auto", pins=[{"cgroup": a, "side": "legacy"}])  # a pin to legacy: still off
    py_redis_r(a, "r.set('before', 1)", legacy.addr)
    time.sleep(0.5)
    assert target.client().get("before") is None
    assert [s for s in migration(d).sides if s.side == "legacy"][0].captured == 0
    d.syctl("cutover", "m", "1%")
    py_redis_r(a, "r.set('after', 2)", legacy.addr)  # pinned to legacy
    wait_for(lambda: target.client().get("after") == b"2", what="mirrored after the cutover started")
    assert migration(d).spec.mirror == 0  # still "auto" in the spec
