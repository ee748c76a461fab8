# SPDX-License-Identifier: Apache-2.0
"""Telemetry.Events through grpcio (an independent implementation) and syctl: every
state change of a migration, in order, with its attributes; filters; replay from the
history by seq, across a restart too; bad requests."""
import json
import os
import queue
import struct
import subprocess
import threading
import time

import grpc
import h2.events
import h2.settings
import pytest

from grpc_util import channel, pb, stream, unary
from sy import OUT, RedisServer, spec_yaml
from test_grpc_transport import H2, frame

CTL = "/switchyard.v1.Control/"
EVENTS = "/switchyard.v1.Telemetry/Events"
ONLY_NEW = 2 ** 64 - 1


def ctl():
    return pb("switchyard.v1.control")


def mig():
    return pb("switchyard.v1.migration")


def evpb():
    return pb("switchyard.v1.events")


@pytest.fixture
def env(redis_pair, daemon_factory):
    legacy, target = redis_pair
    return daemon_factory(None), legacy, target


def call(d, method, req, resp_cls):
    with channel("unix:" + d.sock) as ch:
        return unary(ch, CTL + method, req, resp_cls)


def apply(d, name, legacy, target, ratio_bp=0):
    c = ctl()
    s = mig().MigrationSpec(name=name, legacy=[legacy], target=[target], ratio_bp=ratio_bp)
    return call(d, "ApplyMigration", c.ApplyMigrationRequest(spec=s), c.Migration)


def by_api(attrs):
    """The attributes without the caller, which a change through the API names."""
    a = dict(attrs)
    assert a.pop("peer").startswith("uid=0 pid="), attrs
    return a


def history(d, migration="", since=0):
    """A replay without follow: ends by itself."""
    with channel("unix:" + d.sock) as ch:
        return list(stream(ch, EVENTS, evpb().EventsRequest(migration=migration, since_seq=since), evpb().Event,
                           timeout=10))


class Follower:
    """A follow stream read by a thread into a queue."""

    def __init__(self, d, migration="", since=ONLY_NEW):
        self.ch = channel("unix:" + d.sock)
        self.it = stream(self.ch, EVENTS, evpb().EventsRequest(migration=migration, since_seq=since, follow=True),
                         evpb().Event, timeout=60)
        self.q = queue.Queue()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        try:
            for e in self.it:
                self.q.put(e)
        except grpc.RpcError as err:
            self.q.put(err)

    def next(self, timeout=10):
        e = self.q.get(timeout=timeout)
        if isinstance(e, grpc.RpcError):
            raise e
        return e

    def until(self, kind, timeout=10):
        """Events up to and including the first of this kind."""
        got = []
        while True:
            got.append(self.next(timeout))
            if got[-1].kind == kind:
                return got

    def close(self):
        self.it.cancel()
        self.th.join(timeout=5)
        self.ch.close()


def brief(e):
    return (e.migration, e.kind)


def test_lifecycle_events_in_order_with_attributes(env, cgroup):
    d, legacy, target = env
    c, m = ctl(), mig()
    start = history(d)
    assert [brief(e) for e in start] == [("", "daemon.started")]
    assert start[0].attributes["migrations"] == "0" and start[0].attributes["adopted"] == "false"
    f = Follower(d, since=start[-1].seq)
    try:
        apply(d, "users", legacy.addr, target.addr)
        # The target's first good check puts it in rotation: that is a change too.
        got = f.until("target.health_changed")
        call(d, "SetRatio", c.SetRatioRequest(name="users", ratio_bp=2500), c.Migration)
        call(d, "Pin", c.PinRequest(name="users", cgroup=cgroup, side=m.SIDE_TARGET), c.Migration)
        call(d, "Pin", c.PinRequest(name="users", cgroup=cgroup, side=m.SIDE_LEGACY), c.Migration)
        call(d, "Unpin", c.UnpinRequest(name="users", cgroup=cgroup), c.Migration)
        # An apply that changes nothing is no event.
        apply(d, "users", legacy.addr, target.addr, ratio_bp=2500)
        call(d, "DeleteMigration", c.DeleteMigrationRequest(name="users", force=True), c.DeleteMigrationResponse)
        got += f.until("migration.deleted")
    finally:
        f.close()
    assert [brief(e) for e in got] == [
        ("users", "migration.created"),
        ("users", "target.health_changed"),
        ("users", "migration.ratio_changed"),
        ("users", "migration.pinned"),
        ("users", "migration.pinned"),
        ("users", "migration.unpinned"),
        ("users", "migration.deleted"),
    ]
    seqs = [e.seq for e in got]
    assert seqs == list(range(start[-1].seq + 1, start[-1].seq + 1 + len(got)))
    now = time.time() * 1000
    assert all(now - 60000 < e.unix_ms <= now + 1000 and e.message for e in got)
    a = [dict(e.attributes) for e in got]
    assert a[0]["origin"] == "api" and a[0]["legacy"] == legacy.addr and a[0]["target"] == target.addr
    assert a[0]["ratio_bp"] == "0"
    assert a[1] == {"endpoint": target.addr, "healthy": "true", "healthy_targets": "1/1", "error": ""}
    assert by_api(a[2]) == {"origin": "api", "old_ratio_bp": "0", "new_ratio_bp": "2500"}
    assert "0.00% -> 25.00%" in got[2].message
    assert by_api(a[3]) == {"cgroup": cgroup, "side": "target", "origin": "api"}
    assert by_api(a[4]) == {"cgroup": cgroup, "side": "legacy", "old_side": "target", "origin": "api"}
    assert by_api(a[5]) == {"cgroup": cgroup, "side": "legacy", "origin": "api"}
    assert by_api(a[6]) == {"origin": "api"}
    # The history holds the same events, and the daemon logged each one once.
    assert [(e.seq, e.kind) for e in history(d)[1:]] == [(e.seq, e.kind) for e in got]
    log = d.read_log()
    assert log.count("switchyard: event: users: migration.ratio_changed: ratio 0.00% -> 25.00%") == 1


def test_updates_and_unhealthy_targets(env, tmp_path):
    d, legacy, target = env
    other = RedisServer(tmp_path / "other")
    f = Follower(d)
    try:
        apply(d, "users", legacy.addr, target.addr)
        f.until("target.health_changed")
        apply(d, "users", legacy.addr, other.addr)
        got = f.until("migration.updated")
        assert by_api(got[-1].attributes) == {"origin": "api", "changed": "target"}
        e = f.until("target.health_changed")[-1]
        assert e.attributes["endpoint"] == other.addr and e.attributes["healthy"] == "true"
        other.stop()
        e = f.until("target.health_changed")[-1]
        assert e.attributes["healthy"] == "false" and e.attributes["healthy_targets"] == "0/1"
        assert e.attributes["error"].startswith("connect:"), e.attributes["error"]
        assert "is unhealthy: connect:" in e.message
    finally:
        f.close()
        other.stop()


def test_filter_by_migration_and_replay_since_seq(env):
    d, legacy, target = env
    c = ctl()
    apply(d, "users", "127.0.0.1:7", "127.0.0.1:8")
    apply(d, "carts", "127.0.0.1:9", "127.0.0.1:10")
    call(d, "SetRatio", c.SetRatioRequest(name="carts", ratio_bp=100), c.Migration)
    call(d, "SetRatio", c.SetRatioRequest(name="users", ratio_bp=200), c.Migration)
    every = history(d)
    assert [brief(e) for e in every] == [("", "daemon.started"), ("users", "migration.created"),
                                         ("carts", "migration.created"), ("carts", "migration.ratio_changed"),
                                         ("users", "migration.ratio_changed")]
    carts = history(d, migration="carts")
    assert [(e.seq, e.kind) for e in carts] == [(e.seq, e.kind) for e in every if e.migration == "carts"]
    # A name no migration has and no retained event names is NOT_FOUND, naming those that
    # exist; a deleted migration's events are still there by name.
    with pytest.raises(grpc.RpcError) as e:
        history(d, migration="nope")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "\"nope\" not found" in e.value.details() and "users" in e.value.details() and \
        "carts" in e.value.details(), e.value.details()
    # since_seq: what came after it.
    assert [e.seq for e in history(d, since=every[2].seq)] == [e.seq for e in every[3:]]
    assert [e.seq for e in history(d, migration="users", since=every[1].seq)] == [every[4].seq]
    assert history(d, since=every[-1].seq) == []
    assert history(d, since=ONLY_NEW) == []
    # Follow with only new events: nothing replayed, the next change arrives.
    f = Follower(d, migration="users", since=ONLY_NEW)
    try:
        time.sleep(0.3)  # the stream is open before the change
        call(d, "SetRatio", c.SetRatioRequest(name="carts", ratio_bp=300), c.Migration)
        call(d, "SetRatio", c.SetRatioRequest(name="users", ratio_bp=400), c.Migration)
        e = f.next()
        assert brief(e) == ("users", "migration.ratio_changed") and e.attributes["new_ratio_bp"] == "400"
        assert f.q.empty()
    finally:
        f.close()


def test_history_is_bounded_and_slow_readers_see_gaps(env):
    """4096 events are kept. A reader that does not keep up costs the daemon nothing:
    what it gets is every event in order, with events.gap markers covering exactly what
    it lost, and nothing twice. (Raw HTTP/2, so the client's window stays shut: grpcio
    would buffer everything.)"""
    d, legacy, target = env
    c = ctl()
    started = history(d)[0]
    apply(d, "users", "127.0.0.1:7", "127.0.0.1:8")
    slow = H2(d, window=1)
    sid = slow.request(EVENTS, frame(evpb().EventsRequest(since_seq=started.seq, follow=True).SerializeToString()))
    n = 5000
    t = time.monotonic()
    with channel("unix:" + d.sock) as ch:
        for i in range(n):
            unary(ch, CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=1 + i % 2), c.Migration)
    assert time.monotonic() - t < 60
    kept = history(d)
    assert len(kept) == 4096
    last = kept[-1].seq
    assert last == started.seq + 1 + n and kept[0].seq == last - 4095
    replay = history(d, since=started.seq)
    assert replay[0].kind == "events.gap" and replay[0].seq == 0
    assert (int(replay[0].attributes["first_seq"]), int(replay[0].attributes["last_seq"])) == \
        (started.seq + 1, kept[0].seq - 1)
    assert [e.seq for e in replay[1:]] == [e.seq for e in kept]
    # Now the slow reader opens its window and reads.
    slow.c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    slow.c.increment_flow_control_window(1 << 30)
    slow.flush()
    seen, gaps, buf = [], 0, b""
    end = time.monotonic() + 30
    try:
        while (not seen or seen[-1] < last) and time.monotonic() < end:
            chunk = slow.s.recv(65536)
            assert chunk, "stream closed"
            for ev in slow.c.receive_data(chunk):
                if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    buf += ev.data
                    slow.c.acknowledge_received_data(ev.flow_controlled_length, sid)
            slow.flush()
            while len(buf) >= 5 and len(buf) >= 5 + struct.unpack(">I", buf[1:5])[0]:
                size = struct.unpack(">I", buf[1:5])[0]
                e = evpb().Event.FromString(buf[5:5 + size])
                buf = buf[5 + size:]
                if e.kind == "events.gap":
                    gaps += 1
                    seen += range(int(e.attributes["first_seq"]), int(e.attributes["last_seq"]) + 1)
                else:
                    seen.append(e.seq)
    finally:
        slow.close()
    assert gaps >= 1
    assert seen == list(range(started.seq + 1, last + 1))


def test_config_file_reload_and_restart(redis_pair, daemon_factory):
    legacy, target = redis_pair
    m = {"name": "users", "legacy": [legacy.addr], "target": ["127.0.0.1:1"], "ratio": "0%"}
    d = daemon_factory(spec_yaml([m]))
    got = history(d)
    assert [brief(e) for e in got] == [("users", "migration.created"), ("", "daemon.started")]
    assert got[0].attributes["origin"] == "file:" + d.config
    assert got[1].attributes["migrations"] == "1"
    m["ratio"] = "10%"
    d.reload(spec_yaml([m]))
    d.reload(spec_yaml([m]))  # unchanged: only the reload itself
    m["ratio"] = "0%"
    d.reload(spec_yaml([m]))
    d.reload(spec_yaml([]))
    got = history(d, since=got[-1].seq)
    assert [brief(e) for e in got] == [("users", "migration.ratio_changed"), ("", "daemon.reloaded"),
                                       ("", "daemon.reloaded"), ("users", "migration.ratio_changed"),
                                       ("", "daemon.reloaded"), ("users", "migration.deleted"),
                                       ("", "daemon.reloaded")]
    assert got[0].attributes["origin"] == "file:" + d.config and got[0].attributes["new_ratio_bp"] == "1000"
    assert got[-1].attributes == {"file": d.config, "migrations": "0", "changed": "users: deleted",
                                  "moves_clients": "true"}
    assert got[2].attributes["changed"] == "" and got[2].attributes["moves_clients"] == "false"
    # A restart keeps the history (STATE_DIR/events.journal) and goes on from its last
    # seq: a client resuming with its last seq misses nothing and gets the new run's
    # events; the earlier ones are still there, with their times.
    last = got[-1].seq
    before = history(d)
    d.stop()
    d.start()
    got = history(d, since=last)
    assert [brief(e) for e in got] == [("", "daemon.started")]
    assert got[0].seq == last + 1
    again = history(d)
    assert [(brief(e), e.unix_ms) for e in again[:len(before)]] == [(brief(e), e.unix_ms) for e in before]
    assert again[len(before) - 1].seq == last
    # a client with a seq older than the history is told what it lost
    got = history(d, since=again[0].seq - 5)
    assert brief(got[0]) == ("", "events.gap")


def test_bad_requests(env):
    d, legacy, target = env
    for name in ("Bad Name", "-x", "x" * 64, "a/b"):
        with pytest.raises(grpc.RpcError) as e:
            history(d, migration=name)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details().startswith("migration: "), e.value.details()


def syctl(d, *args, server=None):
    return subprocess.run([os.path.join(OUT, "syctl"), "--server", server or "unix://" + d.sock] + list(args),
                          capture_output=True, text=True, timeout=30)


def test_syctl_events(env, cgroup, tmp_path):
    d, legacy, target = env
    c = ctl()
    apply(d, "users", "127.0.0.1:7", "127.0.0.1:8")
    call(d, "SetRatio", c.SetRatioRequest(name="users", ratio_bp=2500), c.Migration)
    apply(d, "carts", "127.0.0.1:9", "127.0.0.1:10")
    r = syctl(d, "events", "users", "-o", "json")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["migration"], x["kind"]) for x in docs] == [("users", "migration.created"),
                                                         ("users", "migration.ratio_changed")]
    assert by_api(docs[1]["attributes"]) == {"origin": "api", "old_ratio_bp": "0", "new_ratio_bp": "2500"}
    assert int(docs[1]["seq"]) == int(docs[0]["seq"]) + 1 and int(docs[0]["unixMs"]) > 0
    r = syctl(d, "events")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["SEQ", "TIME", "MIGRATION", "KIND", "MESSAGE"]
    lines = lines[1:]
    assert len(lines) == 4 and "daemon.started" in lines[0] and " - " in lines[0]
    assert "users" in lines[2] and "migration.ratio_changed" in lines[2] and "0.00% -> 25.00%" in lines[2]
    assert [int(l.split()[0]) for l in lines] == [int(x) for x in sorted(int(l.split()[0]) for l in lines)]
    r = syctl(d, "events", "--since", docs[1]["seq"], "-o", "json")
    assert [json.loads(x)["migration"] for x in r.stdout.splitlines()] == ["carts"]
    # -f: the history, then new events until stopped.
    p = subprocess.Popen([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "events", "users", "-f",
                          "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(2):
            assert json.loads(p.stdout.readline())["migration"] == "users"
        call(d, "SetRatio", c.SetRatioRequest(name="users", ratio_bp=5000), c.Migration)
        x = json.loads(p.stdout.readline())
        assert x["kind"] == "migration.ratio_changed" and x["attributes"]["new_ratio_bp"] == "5000"
    finally:
        p.terminate()
        assert p.wait(timeout=10) == 0
    # Exit codes as for every command.
    r = syctl(d, "events", "Bad Name")
    assert r.returncode == 1 and r.stderr.startswith("syctl: migration: ")
    assert syctl(d, "events", "a", "b").returncode == 2
    assert syctl(d, "events", "--since", "soon").returncode == 2
    r = syctl(d, "events", server="unix://%s/none.sock" % tmp_path)
    assert r.returncode == 3 and "cannot reach" in r.stderr
    assert syctl(d, "events", "--help").stdout.startswith("usage: syctl events")
