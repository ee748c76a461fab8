# SPDX-License-Identifier: Apache-2.0
"""200 Server-Sent Events clients on the HTTP door at once, all from 127.0.0.1 (so
--http-max-conns-per-ip raised above them): while a plan walks to completion, every
client receives the very same events (the same seqs, in order, none missing: what
`syctl events` lists), and /metrics and /api/v1/status still answer quickly. The
default limit (64 per address) refuses the 65th connection, and a bad limit is a
usage error. CPU and memory with 200 clients are measured by bench/sse.sh."""
import json
import os
import statistics
import subprocess
import time
import urllib.request

import pytest

from sse_crowd import Crowd
from sy import OUT, free_port, spec_yaml, wait_for

CLIENTS = 200
PLAN = {"steps": ["10%", "25%", "50%", "100%"], "bake": "400ms", "advance": "auto", "interval": "100ms",
        "min_samples": 0}


def timed_get(url):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read()
        assert r.status == 200 and body
    return time.monotonic() - t0


def answers(url):
    try:
        return timed_get(url) < 2.0
    except OSError:
        return False


def events_after(d, seq):
    evs = [json.loads(x) for x in d.syctl("-o", "json", "events").stdout.splitlines() if x.strip()]
    return [e for e in evs if int(e["seq"]) > seq]


def test_200_sse_clients_get_the_same_events_while_a_plan_walks(redis_pair, daemon_factory):
    legacy, target = redis_pair
    port = free_port()
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr],
                                   "client": "connection", "plan": PLAN}]),
                       extra=["--http", "127.0.0.1:%d" % port, "--http-max-conns-per-ip", "256"])
    base = "http://127.0.0.1:%d" % port
    evs = [json.loads(x) for x in d.syctl("-o", "json", "events").stdout.splitlines() if x.strip()]
    since = int(evs[-1]["seq"]) if evs else 0
    crowd = Crowd("127.0.0.1", port, "/api/v1/events?since=%d" % since, CLIENTS)
    try:
        crowd.wait_open(20)
        statuses = crowd.snapshot(lambda cs: [c.status for c in cs])
        assert statuses == [200] * CLIENTS, crowd.snapshot(Crowd.describe)

        d.syctl("cutover", "m", "start")
        took = {"metrics": [], "status": []}
        end = time.monotonic() + 60
        while json.loads(d.syctl("-o", "json", "get", "m").stdout)["cutover"].get("phaseName") != "completed":
            assert time.monotonic() < end, "the plan did not complete: " + d.read_log()[-2000:]
            took["metrics"].append(timed_get(base + "/metrics"))
            took["status"].append(timed_get(base + "/api/v1/status"))
            time.sleep(0.1)
        want = events_after(d, since)
        assert any("-> completed" in e["message"] for e in want), want
        crowd.wait(lambda cs: all(len(c.events) >= len(want) for c in cs), 20, "every client has every event")
        got = crowd.snapshot(lambda cs: [[e for _, e in c.events] for c in cs])
        ids = crowd.snapshot(lambda cs: [[i for i, _ in c.events] for c in cs])
        # the same events for everyone: the journal's, in order, with their seqs as SSE ids
        for g, i in zip(got, ids):
            assert g[:len(want)] == want
            assert i[:len(want)] == [int(e["seq"]) for e in want]
        assert crowd.snapshot(lambda cs: sum(c.closed for c in cs)) == 0
        # the other doors of the listener kept answering while 200 streams were served
        for what, t in took.items():
            assert len(t) >= 3, took
            assert statistics.median(t) < 0.25 and max(t) < 2.0, "%s: %s" % (what, sorted(t))
    finally:
        crowd.close()
    # the streams' ends were noticed: the daemon serves on, its loop is not held
    assert timed_get(base + "/api/v1/status") < 2.0


def test_the_per_address_limit_refuses_the_next_connection(redis_pair, daemon_factory):
    legacy, target = redis_pair
    port = free_port()
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr]}]),
                       extra=["--http", "127.0.0.1:%d" % port])
    assert "64 connections per address" in d.read_log()
    crowd = Crowd("127.0.0.1", port, "/api/v1/events?since=0", 65)
    try:
        crowd.wait_open(20)
        crowd.wait(lambda cs: sum(c.closed and c.head is None for c in cs) == 1, 10, "one refused")
        assert crowd.snapshot(lambda cs: sorted(str(c.status) for c in cs)) == ["200"] * 64 + ["None"]
    finally:
        crowd.close()
    # the closed streams' slots come back once their threads notice (the next heartbeat
    # write fails): until then the address is still full and is refused
    wait_for(lambda: answers("http://127.0.0.1:%d/api/v1/status" % port), timeout=10, what="a free slot again")


def test_a_limit_without_a_listener_is_refused(redis_pair, daemon_factory):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr]}]),
                       extra=["--http-max-conns-per-ip", "100"], start=False)
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=30) != 0
    assert "--http-max-conns-per-ip: there is no HTTP listener" in d.read_log()


@pytest.mark.parametrize("value", ["0", "513", "-1", "64x", ""])
def test_a_bad_limit_is_a_usage_error(value):
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--http", "127.0.0.1:1", "--http-max-conns-per-ip",
                        value], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--http-max-conns-per-ip" in r.stderr and "from 1 to 512" in r.stderr, r.stderr
