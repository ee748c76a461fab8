# SPDX-License-Identifier: Apache-2.0
"""OTLP/gRPC export to a real receiver (grpcio), checked on the wire (gzip) and decoded
with `protoc --decode_raw`: resource attributes, metric names, and values that match a
known workload exactly; retries while the collector is down with nothing lost inside
the buffer; a dead collector slows neither clients nor the control API."""
import os
import socket
import subprocess
import time

import pytest

from otlp_rx import Receiver, Relay, export_request, h2_requests, value
from sy import OUT, RedisServer, in_cgroup, spec_yaml, wait_for

MIG = "otlpmig"
SUM = "switchyard.operations"


@pytest.fixture
def rx():
    r = Receiver()
    relay = Relay(r.port)
    yield r, relay
    relay.close()
    r.stop()


@pytest.fixture
def setup(tmp_path, daemon_factory, cgroup, rx):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    r, relay = rx

    def start(interval="500ms", extra=()):
        return daemon_factory(
            spec_yaml([{"name": MIG, "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                        "mirror": "off"}]),
            extra=["--otlp-endpoint", "127.0.0.1:%d" % relay.port, "--otlp-interval", interval,
                   "--otlp-resource", "deployment.environment=systest"] + list(extra))

    yield start, legacy, r, relay
    legacy.stop()
    target.stop()


def sets(cgroup, server, n, key="k"):
    in_cgroup(cgroup, ["redis-cli", "-p", str(server.port), "-r", str(n), "SET", key, "v"])


def writes(body):
    _, _, metrics = export_request(body)
    return value(metrics, SUM, migration=MIG, side="legacy", **{"class": "write"})


def test_export_structure_values_and_gzip(setup, cgroup):
    start, legacy, r, relay = setup
    start()
    sets(cgroup, legacy, 1000)
    # The first export after the workload says exactly 1000 writes on legacy.
    body = wait_for(lambda: next((b for _, b in reversed(r.accepted()) if writes(b) == 1000), None),
                    timeout=10, what="an export with the 1000 writes")
    res, scope, metrics = export_request(body)
    assert res["service.name"] == "switchyardd"
    assert res["service.version"]
    assert res["host.name"] == socket.gethostname()
    assert res["deployment.environment"] == "systest"
    assert scope == "switchyardd"
    for name in ("switchyard.operations", "switchyard.bytes", "switchyard.request.duration", "switchyard.errors",
                 "switchyard.unparsed", "switchyard.steering.decisions", "switchyard.mirror.commands",
                 "switchyard.mirror.repairs", "switchyard.mirror.lag", "switchyard.mirror.queued",
                 "switchyard.drift.checked", "switchyard.drift.found", "switchyard.drift.repaired",
                 "switchyard.cutover.ratio", "switchyard.cutover.step", "switchyard.cutover.steps",
                 "switchyard.cutover.state"):
        assert name in metrics, name
    kind, unit, pts, extra = metrics[SUM]
    assert (kind, unit, extra["temporality"], extra["monotonic"]) == ("sum", "{operation}", 2, 1)
    assert len([p for p in pts if p[0]["migration"] == MIG]) == 6  # 2 sides x 3 classes
    assert value(metrics, SUM, migration=MIG, side="legacy", **{"class": "read"}) == 0
    assert value(metrics, SUM, migration=MIG, side="target", **{"class": "write"}) == 0
    # one connection from the cgroup, steered to legacy by the hash
    assert value(metrics, "switchyard.steering.decisions", migration=MIG, decision="legacy") == 1
    # one latency sample per answered request: a histogram count of 1000
    kind, unit, _, _ = metrics["switchyard.request.duration"]
    assert (kind, unit) == ("histogram", "s")
    assert value(metrics, "switchyard.request.duration", migration=MIG, side="legacy") == 1000
    assert value(metrics, "switchyard.cutover.state", migration=MIG, state="manual") == 1
    # start and time stamps: a fixed start, a time after it
    _, _, pts, _ = metrics[SUM]
    starts = {p[2] for p in pts}
    assert len(starts) == 1 and all(p[3] > p[2] for p in pts)
    # On the wire: every request says grpc-encoding gzip, and its message carries the
    # compressed flag and the gzip magic.
    reqs = [q for raw in relay.sent for q in h2_requests(bytes(raw))]
    assert reqs
    for h, b in reqs:
        assert h[":path"] == "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
        assert h["grpc-encoding"] == "gzip"
        assert h["content-type"] == "application/grpc"
        assert b[0] == 1 and b[5:7] == b"\x1f\x8b", b[:8]


def test_gzip_off_sends_plain(setup, cgroup):
    start, legacy, r, relay = setup
    start(extra=["--otlp-gzip", "off"])
    wait_for(lambda: r.accepted(), timeout=10, what="an export")
    reqs = [q for raw in relay.sent for q in h2_requests(bytes(raw))]
    assert reqs and all("grpc-encoding" not in h or h["grpc-encoding"] == "identity" for h, _ in reqs)
    assert all(b[0] == 0 for _, b in reqs)


def test_collector_down_retries_then_delivers_everything(setup, cgroup):
    start, legacy, r, relay = setup
    d = start(interval="500ms")
    sets(cgroup, legacy, 100)
    wait_for(lambda: any(writes(b) == 100 for _, b in r.accepted()), timeout=10, what="a first export")
    n_before = len(r.accepted())
    r.mode = "unavailable"
    down_at = time.monotonic()
    sets(cgroup, legacy, 400, key="k2")  # counted while the collector is down
    time.sleep(10 - (time.monotonic() - down_at))
    refused = r.refused()
    r.mode = "ok"
    assert refused >= 3, "the exporter should have retried: %d attempts" % refused
    # Backoff is at most 5 s: everything queued during the outage lands soon after.
    time.sleep(7)
    acc = r.accepted()
    after = [export_request(b) for _, b in acc[n_before:]]
    assert after, "nothing delivered after the collector came back"
    # Every interval of the outage is there (20 batches at 500 ms, well inside the
    # 64-batch buffer), in order, and the sums only grow.
    times = [value(m, SUM, migration=MIG, side="legacy", **{"class": "write"}) for _, _, m in after]
    stamps = [m[SUM][2][0][3] for _, _, m in after]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    gaps = [(b - a) / 1e9 for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) < 1.0, gaps  # no batch missing: each ~0.5 s after the previous
    assert (stamps[-1] - stamps[0]) / 1e9 > 14, "the outage's batches are not all there"
    assert times == sorted(times) and times[-1] == 500
    _, _, last = after[-1]
    assert value(last, "switchyard.exporter.batches", outcome="dropped") == 0
    assert value(last, "switchyard.exporter.retries") >= 3
    assert "export to" in d.read_log() and "works again" in d.read_log()


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def client_and_api_unaffected(d, cgroup, legacy):
    """Client requests from the cgroup and `syctl status` stay fast."""
    prog = ("import redis, time\nr = redis.Redis(host='127.0.0.1', port=%d)\nworst = 0\n"
            "for i in range(300):\n    t = time.monotonic(); r.set('x%%d' %% i, 'v')\n"
            "    worst = max(worst, time.monotonic() - t)\nprint(worst)\n") % legacy.port
    worst = float(in_cgroup(cgroup, ["/usr/bin/python3", "-c", prog]).decode())
    assert worst < 0.1, "a client request took %.3f s" % worst
    for _ in range(10):
        assert timed(lambda: d.syctl("status")) < 1.0
        time.sleep(0.2)


def test_collector_gone_clients_and_api_unaffected(setup, cgroup):
    start, legacy, r, relay = setup
    d = start(interval="200ms")
    wait_for(lambda: r.accepted(), timeout=10, what="an export")
    relay.close()  # connection refused from now on
    r.stop()
    time.sleep(1)
    client_and_api_unaffected(d, cgroup, legacy)
    # and the exporter kept trying, quietly: one warning for the whole burst
    assert len([ln for ln in d.read_log().splitlines() if "otlp: " in ln and "failed" in ln]) == 1, d.read_log()


def test_black_holed_collector_clients_and_api_unaffected(tmp_path, daemon_factory, cgroup):
    """A collector that accepts the connection and never answers: each call ends at
    its deadline, the loop never waits."""
    legacy = RedisServer(tmp_path / "legacy")
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(1)  # never accepted, never read
    try:
        d = daemon_factory(spec_yaml([{"name": MIG, "legacy": [legacy.addr], "target": ["127.0.0.1:9"],
                                       "ratio": "0%", "mirror": "off"}]),
                           extra=["--otlp-endpoint", "127.0.0.1:%d" % hole.getsockname()[1],
                                  "--otlp-interval", "200ms"])
        time.sleep(3)
        client_and_api_unaffected(d, cgroup, legacy)
    finally:
        hole.close()
        legacy.stop()


@pytest.mark.parametrize("args,phrase", [
    (["--otlp-endpoint", "nohost"], "--otlp-endpoint: \"nohost\" is not HOST:PORT"),
    (["--otlp-endpoint"], "--otlp-endpoint: missing value"),
    (["--otlp-interval", "soon"], "--otlp-interval: \"soon\" is not a duration"),
    (["--otlp-interval", "5ms"], "from 100ms to 1h"),
    (["--otlp-gzip", "yes please"], "--otlp-gzip: \"yes please\" is not on or off"),
    (["--otlp-resource", "team"], "--otlp-resource: \"team\" is not KEY=VALUE"),
    (["--metrics", "localhost"], "--metrics: \"localhost\" is not HOST:PORT"),
    (["--metrics=unix:/tmp/x"], "a unix socket is not supported"),
])
def test_bad_exporter_options_exit_2(args, phrase):
    r = subprocess.run([os.path.join(OUT, "switchyardd")] + args, capture_output=True, text=True)
    assert r.returncode == 2 and phrase in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("section,phrase", [
    ("telemetry:\n  otlp:\n    interval: often\n", ":4: telemetry: otlp.interval: \"often\" is not a duration"),
    ("telemetry:\n  prometheus: 1\n", ":3: telemetry: unknown field \"prometheus\""),
    ("telemetry:\n  metrics: [a]\n", ":3: telemetry: metrics: expected a single value"),
])
def test_bad_telemetry_section_is_refused(tmp_path, section, phrase):
    f = tmp_path / "bad.yaml"
    f.write_text("migrations: []\n" + section)
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", str(f)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and (str(f) + phrase) in r.stderr, r.stderr


def test_telemetry_section_configures_the_exporter(tmp_path, daemon_factory, cgroup, rx):
    r, relay = rx
    legacy = RedisServer(tmp_path / "legacy")
    try:
        spec = spec_yaml([{"name": MIG, "legacy": [legacy.addr], "target": ["127.0.0.1:9"], "ratio": "0%"}])
        spec += ("telemetry:\n  otlp:\n    endpoint: 127.0.0.1:%d\n    interval: 300ms\n    gzip: off\n"
                 "    resource:\n      team: storage\n" % relay.port)
        daemon_factory(spec)
        body = wait_for(lambda: next((b for _, b in r.accepted()), None), timeout=10, what="an export")
        res, _, _ = export_request(body)
        assert res["team"] == "storage" and res["service.name"] == "switchyardd"
        assert all(b[0] == 0 for raw in relay.sent for _, b in h2_requests(bytes(raw)))
    finally:
        legacy.stop()
