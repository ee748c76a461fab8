# SPDX-License-Identifier: Apache-2.0
"""observe.bpf.c: bytes, request → first-answer-byte latency and error answers, per
migration and side, measured in the kernel and read through the Control API; checked
against what the clients themselves sent, received and timed."""
import json
import os
import subprocess

import pytest

from grpc_util import channel, pb, unary
from sy import CLIENT, PYTHON, RedisServer, spec_yaml


def script(job):
    r = subprocess.run([PYTHON, CLIENT, "--script", json.dumps(job)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sides(d, name="obs"):
    c = pb("switchyard.v1.control")
    with channel("unix:" + d.sock) as ch:
        m = unary(ch, "/switchyard.v1.Control/GetMigration", c.GetMigrationRequest(name=name), c.Migration)
    return {s.side: s for s in m.sides}


@pytest.fixture
def setup(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target", extra=["--enable-debug-command", "yes"])
    a, b = os.path.join(cgroup, "a"), os.path.join(cgroup, "b")
    os.mkdir(a)
    os.mkdir(b)
    d = daemon_factory(spec_yaml([{"name": "obs", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                                   "pins": [{"cgroup": b, "side": "target"}]}]))
    yield d, legacy, target, a, b
    legacy.stop()
    target.stop()


def test_latency_per_side_matches_the_clients(setup):
    d, legacy, target, a, b = setup
    slow = script({"cgroup": b, "addr": legacy.addr, "commands": [["DEBUG", "SLEEP", "0.02"]] * 20})
    fast = script({"cgroup": a, "addr": legacy.addr, "commands": [["PING"]] * 20})
    s = sides(d)
    assert s["target"].exchanges == 20 and s["legacy"].exchanges == 20
    client_p50_us = sorted(slow["times"])[10] * 1e6
    # The kernel's p50 is the upper bound of its log2 bucket: at least the client's
    # sleep, at most twice the client's own measurement (plus a bucket for jitter).
    assert s["target"].p50_us >= 10000
    assert 20000 <= s["target"].p50_us <= 2 * client_p50_us + 2000, (s["target"].p50_us, client_p50_us)
    assert s["legacy"].p50_us < 5000
    assert s["legacy"].p99_us <= 2 * max(fast["times"]) * 1e6 + 1000
    # p99 the same way: within one log2 bucket of the client's own p99 (a bucket's
    # upper bound is at most twice any sample in it, and the client's time includes
    # the kernel's)
    client_p99_us = sorted(slow["times"])[-1] * 1e6
    assert client_p99_us / 2 <= s["target"].p99_us <= 2 * client_p99_us + 2000, (s["target"].p99_us, client_p99_us)


def test_bytes_are_exact_and_errors_counted_per_side(setup):
    d, legacy, target, a, b = setup
    legacy.client().set("str", "v")
    target.client().set("str", "v")
    cmds = [["SET", "k%d" % i, "x" * i] for i in range(30)] + [["NOSUCHCOMMAND"]] * 5 + [["LPUSH", "str", "v"]] * 3
    la = script({"cgroup": a, "addr": legacy.addr, "commands": cmds})
    tb = script({"cgroup": b, "addr": legacy.addr, "commands": [["GET", "k1"]] * 7})
    s = sides(d)
    assert la["kinds"].count("-") == 8
    assert s["legacy"].bytes_out == la["sent"] and s["legacy"].bytes_in == la["got"]
    assert s["target"].bytes_out == tb["sent"] and s["target"].bytes_in == tb["got"]
    assert s["legacy"].errors == 8 and s["target"].errors == 0
    # by class: 5 "-ERR unknown command", 3 "-WRONGTYPE" (another class)
    assert (s["legacy"].errors_err, s["legacy"].errors_other) == (5, 3)
    assert s["legacy"].errors_moved == s["legacy"].errors_oom == s["legacy"].errors_noauth == 0
    assert s["legacy"].sockets == 1 and s["target"].sockets == 1


def test_pipelined_bursts_give_sane_samples(setup):
    d, legacy, target, a, b = setup
    r = script({"cgroup": a, "addr": legacy.addr, "pipeline": True, "commands": [["SET", "p", "1"]] * 500})
    s = sides(d)["legacy"]
    assert s.bytes_out == r["sent"] and s.bytes_in == r["got"]
    assert s.exchanges == 500  # one latency sample per request
    assert s.p99_us <= 2 * r["times"][0] * 1e6 + 1000  # no sample longer than the whole burst


def test_every_error_in_a_pipeline_is_counted(setup):
    """Errors deep in a pipelined answer burst count, each once: commands 10, 50 and
    99 of 100 fail (INCR of a non-integer) in one write, answered in one burst."""
    from sy import OUT
    d, legacy, target, a, b = setup
    legacy.client().set("text", "not a number")
    cmds = [["INCR", "text"] if i in (10, 50, 99) else ["INCR", "n%d" % i] for i in range(1, 101)]
    r = script({"cgroup": a, "addr": legacy.addr, "pipeline": True, "commands": cmds})
    assert [i + 1 for i, k in enumerate(r["kinds"]) if k == "-"] == [10, 50, 99]
    s = sides(d)["legacy"]
    assert s.bytes_out == r["sent"] and s.bytes_in == r["got"]
    assert s.errors == 3 and s.errors_err == 3  # "-ERR value is not an integer"
    assert s.exchanges == 100  # one latency sample per request
    assert s.unparsed == 0
    # the CLI shows the same counts
    out = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "-o", "json", "get", "obs"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    leg = [x for x in json.loads(out.stdout)["sides"] if x["side"] == "legacy"][0]
    assert int(leg["errors"]) == 3 and int(leg["exchanges"]) == 100
    assert int(leg.get("errorsErr", leg.get("errors_err", 0))) == 3
    table = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "get", "obs"],
                           capture_output=True, text=True, timeout=30)
    assert "MOVED/ASK" in table.stdout and "TLS SOCKETS" in table.stdout, table.stdout


TLS_CLIENT = r"""
import os, socket, ssl, sys
open(os.path.join(sys.argv[1], "cgroup.procs"), "w").write(str(os.getpid()))
host, port = sys.argv[2].rsplit(":", 1)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection((host, int(port)), timeout=10)
try:
    ctx.wrap_socket(s, server_hostname="redis").close()  # the server speaks no TLS
except (ssl.SSLError, OSError) as e:
    print("handshake failed as expected:", e)
"""


def test_tls_clients_are_counted_not_parsed(setup):
    """A client speaking TLS (rediss://) to a migration endpoint: its ClientHello is the
    first bytes of the stream, so the socket counts in tls_sockets, and neither its
    ciphertext nor the server's answer to it counts as unparsed or as errors. A plain
    client beside it is parsed as ever."""
    from sy import OUT
    d, legacy, target, a, b = setup
    r = subprocess.run([PYTHON, "-c", TLS_CLIENT, a, legacy.addr], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    plain = script({"cgroup": a, "addr": legacy.addr, "commands": [["PING"]] * 3})
    assert plain["kinds"].count("-") == 0
    s = sides(d)["legacy"]
    assert s.sockets == 2 and s.tls_sockets == 1
    assert s.unparsed == 0 and s.errors == 0
    assert s.others == 3 and s.exchanges == 3  # the plain client's PINGs only
    out = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "-o", "json", "get", "obs"],
                         capture_output=True, text=True, timeout=30)
    leg = [x for x in json.loads(out.stdout)["sides"] if x["side"] == "legacy"][0]
    assert int(leg.get("tlsSockets", leg.get("tls_sockets", 0))) == 1


def test_replies_of_any_shape_are_counted_once(setup):
    """Nested arrays (EXEC's), bulks larger than a packet, nulls, empty arrays: each
    reply is one answer. (A nested error is no error of its own: the unit tests show
    it, this client cannot read one.)"""
    d, legacy, target, a, b = setup
    cmds = [["SET", "big", "v" * 100000], ["GET", "big"], ["GET", "missing"], ["MULTI"], ["INCR", "n"],
            ["SET", "x", "1"], ["EXEC"], ["LRANGE", "nolist", "0", "-1"], ["GET", "big"], ["PING"]]
    r = script({"cgroup": a, "addr": legacy.addr, "pipeline": True, "commands": cmds})
    assert r["kinds"].count("-") == 0
    s = sides(d)["legacy"]
    assert s.bytes_in == r["got"]
    assert s.exchanges == len(cmds) and s.errors == 0 and s.unparsed == 0


def test_other_ports_and_outside_processes_are_not_observed(setup, tmp_path):
    d, legacy, target, a, b = setup
    other = RedisServer(tmp_path / "other")
    try:
        script({"cgroup": a, "addr": other.addr, "commands": [["PING"]] * 5})
        script({"cgroup": None, "addr": legacy.addr, "commands": [["PING"]] * 5})
        s = sides(d)
        assert s["legacy"].bytes_out == 0 and s["legacy"].exchanges == 0 and s["legacy"].sockets == 0
        assert s["target"].bytes_out == 0
        for side in ("legacy", "target"):  # nothing parsed either
            assert (s[side].reads, s[side].writes, s[side].others, s[side].unparsed) == (0, 0, 0, 0)
    finally:
        other.stop()


def test_watch_from_grpcio_interval_and_counts(setup):
    """Snapshots arrive at the asked interval, and the counts they carry add up to
    exactly what the workload did."""
    import threading
    import time
    d, legacy, target, a, b = setup
    t = pb("switchyard.v1.telemetry")
    snaps = []
    with channel("unix:" + d.sock) as ch:
        fn = ch.unary_stream("/switchyard.v1.Telemetry/Watch", request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=t.Snapshot.FromString)
        it = fn(t.WatchRequest(interval_ms=200, migration="obs"), timeout=30)

        def collect():
            for s in it:
                snaps.append((time.monotonic(), s))
                if len(snaps) >= 12:
                    break

        th = threading.Thread(target=collect)
        th.start()
        time.sleep(0.3)
        script({"cgroup": a, "addr": legacy.addr, "commands": [["PING"]] * 40})
        script({"cgroup": b, "addr": legacy.addr, "commands": [["GET", "x"]] * 15})
        th.join(timeout=20)
        it.cancel()
    assert len(snaps) >= 12
    gaps = [snaps[i + 1][0] - snaps[i][0] for i in range(len(snaps) - 1)]
    assert 0.15 <= sorted(gaps)[len(gaps) // 2] <= 0.25, gaps
    assert [s.seq for _, s in snaps] == list(range(1, len(snaps) + 1))

    def total(side, field):
        return round(sum(getattr([x for x in s.migrations[0].sides if x.side == side][0], field) * s.interval_s
                         for _, s in snaps))

    assert all(s.migrations[0].name == "obs" for _, s in snaps)
    assert total("legacy", "exchanges_per_s") == 40
    assert total("target", "exchanges_per_s") == 15
    # commands by class, from the kernel's parser: PING is "other", GET a read
    assert total("legacy", "others_per_s") == 40 and total("legacy", "reads_per_s") == 0
    assert total("target", "reads_per_s") == 15 and total("target", "writes_per_s") == 0
    assert sum([x for x in s.migrations[0].sides if x.side == "target"][0].decisions for _, s in snaps) == 1


def test_watch_rejects_bad_requests(setup):
    import grpc
    d, legacy, target, a, b = setup
    t = pb("switchyard.v1.telemetry")
    with channel("unix:" + d.sock) as ch:
        fn = ch.unary_stream("/switchyard.v1.Telemetry/Watch", request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=t.Snapshot.FromString)
        with pytest.raises(grpc.RpcError) as e:
            next(fn(t.WatchRequest(interval_ms=5), timeout=5))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as e:
            next(fn(t.WatchRequest(migration="nope"), timeout=5))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_syctl_watch_json_lines(setup):
    from sy import OUT
    d, legacy, target, a, b = setup
    r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "watch", "obs", "--interval",
                        "100ms", "--count", "3", "-o", "json"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert [int(l["seq"]) for l in lines] == [1, 2, 3]
    assert lines[0]["migrations"][0]["name"] == "obs"
    r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "watch", "--count", "1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "WRITES/S" in r.stdout and "legacy" in r.stdout and "target" in r.stdout
    r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "watch", "nope", "--count", "1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "not found" in r.stderr
