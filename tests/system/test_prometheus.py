# SPDX-License-Identifier: Apache-2.0
"""Prometheus exposition: Debian's prometheus server scrapes the daemon's --metrics
listener every second, and its query API returns the series and exact values of a
known workload; /metrics itself is checked line by line for format validity."""
import json
import math
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from sy import RedisServer, free_port, in_cgroup, spec_yaml, wait_for

MIG = "prom"


def get(url, method="GET"):
    req = urllib.request.Request(url, method=method, data=b"x=1" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def setup(tmp_path, daemon_factory, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    port = free_port()
    d = daemon_factory(spec_yaml([{"name": MIG, "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
                                   "mirror": "off"}]),
                       extra=["--metrics", "127.0.0.1:%d" % port])
    yield d, legacy, "http://127.0.0.1:%d" % port
    legacy.stop()
    target.stop()


@pytest.fixture
def prometheus(tmp_path):
    """Starts prometheus scraping `target` every second; returns (start, query)."""
    if not shutil.which("prometheus"):
        pytest.skip("prometheus not installed (packaging/deps.sh)")
    procs = []

    def start(target):
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                       "scrape_configs:\n  - job_name: switchyard\n    scrape_interval: 1s\n"
                       "    static_configs:\n      - targets: ['%s']\n" % target)
        log = open(tmp_path / "prometheus.log", "w")
        p = subprocess.Popen(["prometheus", "--config.file", str(cfg), "--storage.tsdb.path",
                              str(tmp_path / "tsdb"), "--web.listen-address", "127.0.0.1:%d" % port],
                             stdout=log, stderr=log)
        log.close()
        procs.append(p)
        base = "http://127.0.0.1:%d" % port

        def ready():
            try:
                return get(base + "/-/ready")[0] == 200
            except OSError:
                return False

        wait_for(ready, timeout=30, interval=0.2, what="prometheus ready")
        return base

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def query(base, q):
    status, _, body = get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    assert status == 200, body
    r = json.loads(body)
    assert r["status"] == "success", r
    return {tuple(sorted((k, v) for k, v in s["metric"].items() if k not in ("job", "instance"))):
            float(s["value"][1]) for s in r["data"]["result"]}


def test_prometheus_scrapes_exact_values(setup, prometheus, cgroup):
    d, legacy, url = setup
    base = prometheus(url[len("http://"):])
    in_cgroup(cgroup, ["redis-cli", "-p", str(legacy.port), "-r", "1000", "SET", "k", "v"])
    in_cgroup(cgroup, ["redis-cli", "-p", str(legacy.port), "-r", "300", "GET", "k"])
    sel = 'migration="%s",side="legacy"' % MIG

    def settled():
        r = query(base, 'switchyard_operations_total{%s,class="write"}' % sel)
        return r if list(r.values()) == [1000.0] else None

    wait_for(settled, timeout=30, interval=0.5, what="prometheus to have scraped the 1000 writes")
    assert list(query(base, 'switchyard_operations_total{%s,class="read"}' % sel).values()) == [300.0]
    ops = query(base, 'switchyard_operations_total{migration="%s"}' % MIG)
    assert len(ops) == 6  # 2 sides x 3 classes
    assert sum(ops.values()) == 1300.0
    # two client connections, both steered to legacy
    assert list(query(base, 'switchyard_steering_decisions_total{migration="%s",decision="legacy"}'
                      % MIG).values()) == [2.0]
    # one latency sample per request; every sample in some bucket at or below +Inf
    assert list(query(base, "switchyard_request_duration_seconds_count{%s}" % sel).values()) == [1300.0]
    assert list(query(base, 'switchyard_request_duration_seconds_bucket{%s,le="+Inf"}' % sel).values()) == [1300.0]
    p50 = list(query(base, "histogram_quantile(0.5, switchyard_request_duration_seconds_bucket{%s})"
                     % sel).values())[0]
    assert 0 < p50 < 0.05
    assert list(query(base, 'switchyard_cutover_state{migration="%s",state="manual"}' % MIG).values()) == [1.0]
    assert list(query(base, 'switchyard_cutover_ratio{migration="%s"}' % MIG).values()) == [0.0]
    assert list(query(base, 'up{job="switchyard"}').values()) == [1.0]


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_labels(s):
    out, pos = {}, 0
    while pos < len(s):
        m = LABEL.match(s, pos)
        assert m, "bad labels: %r" % s
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


def test_metrics_text_is_valid_line_by_line(setup, cgroup):
    d, legacy, url = setup
    in_cgroup(cgroup, ["redis-cli", "-p", str(legacy.port), "-r", "50", "SET", "k", "v"])
    status, headers, body = get(url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert body.endswith("\n")
    types, helps, samples = {}, set(), []
    for line in body.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helps, "HELP twice for " + name
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split()
            assert typ in ("counter", "gauge", "histogram") and name not in types
            assert name in helps, "TYPE before HELP for " + name
            types[name] = typ
            continue
        assert not line.startswith("#"), line
        m = LINE.match(line)
        assert m, "bad sample line: %r" % line
        name, labels, v = m.group(1), parse_labels(m.group(3) or ""), m.group(4)
        val = math.inf if v == "+Inf" else float(v)
        family = next((f for f in (name, re.sub(r"_(bucket|sum|count)$", "", name)) if f in types), None)
        assert family, "sample before its TYPE: " + line
        if types[family] == "counter":
            assert name.endswith("_total") and val >= 0
        if types[family] == "histogram":
            assert name != family
        samples.append((family, name, labels, val))
    # every histogram series: buckets cumulative, +Inf bucket == _count
    series = {}
    for family, name, labels, val in samples:
        if types[family] != "histogram":
            continue
        key = (family, tuple(sorted((k, v) for k, v in labels.items() if k != "le")))
        s = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if name.endswith("_bucket"):
            le = labels["le"]
            s["buckets"].append((math.inf if le == "+Inf" else float(le), val))
        elif name.endswith("_count"):
            s["count"] = val
        else:
            s["sum"] = val
    assert len(series) == 4  # request duration x 2 sides, mirror lag x 2 directions
    for key, s in series.items():
        bounds = [b for b, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf, key
        assert counts == sorted(counts), key
        assert counts[-1] == s["count"] and s["sum"] is not None, key
    legacy_hist = series[("switchyard_request_duration_seconds",
                          (("migration", MIG), ("side", "legacy")))]
    assert legacy_hist["count"] == 50
    writes = [v for f, n, lab, v in samples
              if n == "switchyard_operations_total" and lab == {"migration": MIG, "side": "legacy", "class": "write"}]
    assert writes == [50]
    for name in ("switchyard_bytes_total", "switchyard_errors_total", "switchyard_unparsed_total",
                 "switchyard_steering_decisions_total", "switchyard_mirror_commands_total",
                 "switchyard_mirror_repairs_total", "switchyard_mirror_lag_seconds", "switchyard_mirror_queued",
                 "switchyard_drift_checked_total", "switchyard_drift_found_total",
                 "switchyard_drift_repaired_total", "switchyard_cutover_ratio", "switchyard_cutover_step",
                 "switchyard_cutover_steps", "switchyard_cutover_state"):
        assert name in types, name


def test_other_paths_and_methods(setup):
    d, legacy, url = setup
    assert get(url + "/")[0] == 200  # the dashboard: --metrics is an alias of --http
    assert get(url + "/metricsx")[0] == 404
    status, headers, _ = get(url + "/metrics", method="POST")
    assert status == 405 and "GET" in headers.get("Allow", "")
    assert get(url + "/metrics", method="DELETE")[0] == 405
    assert get(url + "/metrics", method="HEAD")[0] == 200



RULES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging", "prometheus")


def test_alert_rules_are_valid_and_fire(setup):
    """The shipped alert rules: promtool accepts them, each alert fires (and stays
    quiet) on the series of its unit test, and every metric and label value they
    use is one the daemon really exports (a real scrape)."""
    if not shutil.which("promtool"):
        pytest.skip("promtool not installed (packaging/deps.sh: prometheus)")
    rules = os.path.join(RULES_DIR, "switchyard-rules.yaml")
    r = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS: 9 rules found" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["promtool", "test", "rules", "rules-test.yaml"], cwd=RULES_DIR, capture_output=True,
                       text=True)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr

    _, _, url = setup
    status, _, body = get(url + "/metrics")
    assert status == 200
    exported = {}
    for line in body.splitlines():
        m = LINE.match(line)
        if m:
            exported.setdefault(m.group(1), []).append(parse_labels(m.group(3) or ""))
    text = open(rules).read()
    used = set(re.findall(r"\b(switchyard_[a-z_]+)\{", text))
    assert used, "no switchyard metric in the rules"
    for name in used:
        assert name in exported, "%s is not exported" % name
    # Label values the rules match on exist in the daemon's own vocabulary.
    for name, label, value in re.findall(r'\b(switchyard_[a-z_]+)\{[^}]*?\b([a-z]+)="([a-z-]+)"', text):
        values = {lab.get(label) for lab in exported[name]}
        assert value in values, "%s{%s=%r}: the daemon exports %s" % (name, label, value, sorted(v for v in values if v))
    # The state gauge carries only the current phase; the others are the documented ones.
    doc = open(os.path.join(RULES_DIR, "..", "..", "docs", "operations.md")).read()
    row = re.search(r"^\| `switchyard_cutover_state` \|.*$", doc, re.M).group(0)
    phases = set(re.findall(r"[a-z]+(?:-[a-z]+)?", row.split("|")[3]))
    for name, label, alt in re.findall(r'\b(switchyard_[a-z_]+)\{([a-z]+)=~"([^"]+)"', text):
        values = {lab.get(label) for lab in exported[name]}
        if name == "switchyard_cutover_state":
            values |= phases
        for value in alt.split("|"):
            assert value in values, "%s{%s=~%r}: %r is not exported" % (name, label, alt, value)
