# SPDX-License-Identifier: Apache-2.0
"""Batched capture records (SY_EVF_BATCH, bpf/observe.bpf.c, agent/kernel/capture.c):
the whole captured commands one packet carries back to back reach the agent as one
ring-buffer record, which the agent splits with the kernel's own RESP machine. What is
replayed must be exactly what the client wrote, whatever the pipeline mixes."""
import os

import pytest
import redis

from sy import RedisServer, py_redis, spec_yaml, wait_for
from test_mirror import converge, migration, mirror


@pytest.fixture
def env(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    a = os.path.join(cgroup, "a")
    os.mkdir(a)

    def start(**extra):
        spec = {"name": "m", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                "mirror": "forward"}
        spec.update(extra)
        return daemon_factory(spec_yaml([spec]))

    yield start, legacy, target, a
    legacy.stop()
    target.stop()


def events(d):
    return migration(d).events


def test_a_mixed_pipeline_is_batched_and_replayed_exactly(env):
    """150 SETs with reads between them, SELECT and a MULTI … EXEC block in the middle,
    names in lower case, all in one pipeline: far fewer records than writes, and the
    target ends up equal to legacy in both databases."""
    start, legacy, target, a = env
    d = start()
    py_redis(a, legacy.addr, """
p = r.pipeline(transaction=False)
for i in range(150):
    p.execute_command('set' if i % 2 else 'SET', 'p:%d' % i, 'v%d' % i)
    if i % 10 == 0:
        p.get('p:%d' % i)
    if i == 70:
        p.execute_command('select', 2)
        p.execute_command('incrby', 'db2:n', 5)
        p.execute_command('SELECT', 0)
        p.execute_command('MULTI')
        p.execute_command('SET', 'tx:a', 'A')
        p.execute_command('incr', 'tx:n')
        p.execute_command('EXEC')
p.execute()
""")
    n, diffs = converge(d, legacy.port, target.port)
    assert diffs == [] and n == 152  # 150 p:*, tx:a, tx:n in db 0
    assert redis.Redis(port=target.port, db=2).get("db2:n") == b"5"
    assert target.client().get("tx:a") == b"A" and target.client().get("tx:n") == b"1"
    ev = events(d)
    assert ev.writes == 153 and ev.aborted == 0 and ev.dropped == 0
    # a batch is a run of captured commands: each GET between SETs ends one (about
    # 16 here, and redis-py writes a pipeline in pieces of ~6 KB)
    assert 1 <= ev.records < ev.writes // 4, ev
    f = mirror(d, "forward")
    assert f.failed == 0 and not f.needs_audit


def test_a_command_across_packets_between_batches(env):
    """A 50 KB SET (under capture_bytes, 64 KiB) in the middle of a pipeline travels in fragments of its own; the
    small SETs on either side are batched; every write lands, in order (the same key
    is written before, by and after the big one)."""
    start, legacy, target, a = env
    d = start()
    py_redis(a, legacy.addr, """
p = r.pipeline(transaction=False)
for i in range(20):
    p.set('a:%d' % i, i)
p.set('same', 'before')
p.set('big', b'x' * 50000)
p.append('same', '-during')
for i in range(20):
    p.set('b:%d' % i, i)
p.append('same', '-after')
p.execute()
""")
    n, diffs = converge(d, legacy.port, target.port)
    assert diffs == [] and n == 42
    assert target.client().get("same") == b"before-during-after"
    ev = events(d)
    assert ev.writes == 44 and ev.aborted == 0 and ev.dropped == 0 and ev.truncated == 0
    # the big one alone is 4 records of at most 16 KiB
    assert 5 <= ev.records < 44, ev
    assert not mirror(d, "forward").needs_audit


def test_prefix_rules_keep_one_record_per_command(env):
    """With prefix rules the kernel decides per command whether its key is outside
    them, so nothing is batched; the replay is as exact."""
    start, legacy, target, a = env
    d = start(prefixes=["a:"])
    py_redis(a, legacy.addr, """
p = r.pipeline(transaction=False)
for i in range(30):
    p.set(('a:%d' if i % 3 else 'z:%d') % i, i)
p.execute()
""")
    wait_for(lambda: events(d).writes == 30, what="30 writes captured")
    n, diffs = converge(d, legacy.port, target.port)
    assert diffs == [] and n == 30
    assert events(d).records == 30


def test_a_hundred_thousand_pipelined_writes(env):
    """Batches at volume: 100 000 SETs pipelined 1000 at a time arrive and replay
    exactly, in far fewer records."""
    start, legacy, target, a = env
    d = start(mirror_queue=200000)
    py_redis(a, legacy.addr, """
for b in range(100):
    p = r.pipeline(transaction=False)
    for i in range(1000):
        p.set('k:%d' % (b * 1000 + i), b)
    p.execute()
""")
    wait_for(lambda: events(d).writes == 100000, timeout=60, what="100 000 writes captured")
    n, diffs = converge(d, legacy.port, target.port, timeout=60)
    assert diffs == [] and n == 100000
    ev = events(d)
    assert ev.dropped == 0 and ev.aborted == 0 and ev.records < 100000 // 10, ev
    assert mirror(d, "forward").mirrored == 100000
