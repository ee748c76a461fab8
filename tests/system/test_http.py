# SPDX-License-Identifier: Apache-2.0
"""The HTTP door (--http): the dashboard's files, /metrics, and the JSON API under
/api/v1 — the same messages as the gRPC API in the proto3 JSON mapping of `syctl -o
json`, streams as Server-Sent Events, actions behind the bearer token of
--http-token-file. Python's urllib against a real daemon."""
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest

from sy import free_port, spec_yaml, wait_for

TOKEN = "s3cret-token-for-tests"
CHART_JS = "/usr/share/javascript/chart.js/chart.min.js"  # libjs-chart.js (packaging/deps.sh)
PLAN = {"steps": ["10%", "50%", "100%"], "bake": "200ms", "advance": "manual", "interval": "200ms",
        "min_samples": 0}


def request(url, body=None, token=None, method=None, headers=None, raw=None, timeout=10):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def get_json(url):
    status, headers, body = request(url)
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    return json.loads(body)


@pytest.fixture
def web(redis_pair, daemon_factory, tmp_path):
    legacy, target = redis_pair
    port = free_port()
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    os.chmod(tok, 0o600)
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr],
                                   "client": "connection", "plan": PLAN}]),
                       extra=["--http", "127.0.0.1:%d" % port, "--http-token-file", str(tok)])
    return d, "http://127.0.0.1:%d" % port, tok


def syctl_json(d, *args):
    return json.loads(d.syctl("-o", "json", *args).stdout)


def test_reads_are_the_grpc_messages_as_syctl_prints_them(web):
    d, url, _ = web
    st = get_json(url + "/api/v1/status")
    want = syctl_json(d, "status")["daemon"]  # docs/json.md: the daemon block
    assert st.keys() == want.keys() and st["version"] == want["version"] and st["migrations"] == 1
    m = get_json(url + "/api/v1/migrations/m")
    g = syctl_json(d, "get", "m")
    assert m.keys() == g.keys()
    assert m["spec"] == g["spec"] and m["id"] == g["id"] and m["cutover"]["phaseName"] == "pending"
    ms = get_json(url + "/api/v1/migrations")
    assert [x["spec"]["name"] for x in ms["migrations"]] == ["m"]
    assert ms["migrations"][0]["spec"] == g["spec"]
    # no audit has run: GetAudit's AuditStatus, the same as `syctl verify m --report` prints
    a = get_json(url + "/api/v1/migrations/m/audit")
    assert a["state"] == "idle" and a["migration"] == "m"
    # syctl says the same, the way a script can trust: no audit yet is exit 1 (docs/json.md)
    r = d.syctl("-o", "json", "verify", "m", "--report", check=False)
    assert r.returncode == 1 and "no audit has run yet" in r.stderr


def test_dashboard_and_metrics_on_the_one_listener(web):
    d, url, _ = web
    status, headers, body = request(url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "<script" in body
    for path, ctype in (("/app.js", "text/javascript"), ("/charts.js", "text/javascript"),
                        ("/style.css", "text/css")):
        status, headers, body = request(url + path)
        assert status == 200 and headers["Content-Type"].startswith(ctype) and len(body) > 100
    # the charting library: Debian's libjs-chart.js, served as installed (docs/dashboard.md)
    status, headers, body = request(url + "/vendor/chart.js")
    with open(CHART_JS, encoding="utf-8") as f:
        assert status == 200 and headers["Content-Type"].startswith("text/javascript") and body == f.read()
    assert "Chart.js v3.9.1" in body[:200]
    status, headers, body = request(url + "/metrics")
    assert status == 200 and "switchyard_" in body and headers["Content-Type"].startswith("text/plain")
    assert request(url + "/nothing")[0] == 404
    assert request(url + "/api/v1/nothing")[0] == 404
    status, headers, _ = request(url + "/api/v1/status", method="DELETE")
    assert status == 405 and "GET" in headers.get("Allow", "")
    status, headers, _ = request(url + "/api/v1/migrations/m/cutover")
    assert status == 405 and headers.get("Allow") == "POST"


def test_without_the_charting_library_its_url_is_404_and_the_page_is_served(redis_pair, daemon_factory,
                                                                          tmp_path):
    legacy, target = redis_pair
    port = free_port()
    empty = tmp_path / "js"
    empty.mkdir()
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr]}]),
                       extra=["--http", "127.0.0.1:%d" % port, "--http-js-dir", str(empty)])
    url = "http://127.0.0.1:%d" % port
    status, _, body = request(url + "/vendor/chart.js")
    assert status == 404 and "libjs-chart.js" in body
    assert request(url + "/")[0] == 200 and request(url + "/charts.js")[0] == 200
    # only the one fixed name is served: no path from the request reaches the folder
    (empty / "chart.js").mkdir()
    (empty / "chart.js" / "chart.min.js").write_text("/* stand-in */\n")
    status, _, body = request(url + "/vendor/chart.js")
    assert status == 200 and body == "/* stand-in */\n"  # read at each request: no restart
    for path in ("/vendor/chart.min.js", "/vendor/../chart.js", "/vendor/chart.js/chart.min.js"):
        assert request(url + path)[0] == 404, path
    assert d.proc.poll() is None


def test_a_relative_js_dir_is_refused(redis_pair, daemon_factory):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr]}]),
                       extra=["--http", "127.0.0.1:%d" % free_port(), "--http-js-dir", "share/javascript"],
                       start=False)
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=30) != 0
    assert "--http-js-dir" in d.read_log() and "absolute" in d.read_log()


def error(status_body):
    status, _, body = status_body
    j = json.loads(body)
    assert set(j) == {"code", "message"}, j
    return status, j["code"], j["message"]


def test_actions_walk_a_manual_plan_and_each_is_an_event_naming_the_source(web):
    d, url, _ = web
    cut = url + "/api/v1/migrations/m/cutover"
    status, _, body = request(cut, {"action": "start", "reason": "from the web"}, token=TOKEN)
    assert status == 200, body
    m = json.loads(body)
    assert m["cutover"]["phaseName"] == "cutting-over" and m["cutover"]["step"] == 1
    assert m == {**m, "spec": syctl_json(d, "get", "m")["spec"]}  # the same Migration message
    wait_for(lambda: syctl_json(d, "get", "m")["cutover"]["ready"], timeout=10, what="step baked")
    status, _, body = request(cut, {"action": "promote"}, token=TOKEN)
    assert status == 200 and json.loads(body)["cutover"]["step"] == 2
    assert syctl_json(d, "get", "m")["spec"]["ratioBp"] == 5000
    # the ratio by hand (pauses the plan, as syctl cutover m 25% does)
    status, _, body = request(cut, {"ratio": "25%"}, token=TOKEN)
    assert status == 200 and json.loads(body)["spec"]["ratioBp"] == 2500
    # a refused action: gRPC FAILED_PRECONDITION is 409, and nothing changes
    assert error(request(cut, {"action": "promote"}, token=TOKEN))[:2] == (409, "FAILED_PRECONDITION")
    status, _, body = request(cut, {"action": "resume"}, token=TOKEN)
    assert status == 200 and json.loads(body)["spec"]["ratioBp"] == 5000
    status, _, body = request(cut, {"action": "rollback", "drain": True, "reason": "bad p99"}, token=TOKEN)
    assert status == 200 and json.loads(body)["cutover"]["phaseName"] == "rolled-back"
    # every action over http is an event naming http and the remote address
    evs = [json.loads(line) for line in d.syctl("-o", "json", "events").stdout.splitlines() if line.strip()]
    acts = [e for e in evs if e["kind"] == "http.action"]
    assert [e["attributes"]["action"] for e in acts] == ["start", "promote", "ratio", "promote", "resume",
                                                        "rollback"]
    assert all(e["attributes"]["source"] == "http" for e in acts)
    assert all(e["attributes"]["remote"].startswith("127.0.0.1:") for e in acts)
    assert acts[3]["attributes"]["result"] == "FAILED_PRECONDITION"
    assert any(e["kind"].startswith("cutover.") and "bad p99" in e["message"] for e in evs)


def test_error_mapping(web):
    d, url, _ = web
    cut = url + "/api/v1/migrations/m/cutover"
    assert error(request(url + "/api/v1/migrations/nope"))[:2] == (404, "NOT_FOUND")
    assert error(request(url + "/api/v1/migrations/nope/cutover", {"action": "start"}, token=TOKEN))[:2] == (
        404, "NOT_FOUND")
    # the service's own INVALID_ARGUMENT: only a rollback drains
    s, code, msg = error(request(cut, {"action": "pause", "drain": True}, token=TOKEN))
    assert (s, code) == (400, "INVALID_ARGUMENT") and "drain" in msg
    # the request's: an unknown field, a wrong type, an unknown action, both or neither
    for body, what in (({"action": "start", "force": True}, "force"), ({"action": 1}, "action"),
                       ({"action": "explode"}, "explode"), ({"action": "start", "ratio": "5%"}, "exactly one"),
                       ({}, "exactly one"), ({"ratio": "200%"}, "ratio"), ([1, 2], "object")):
        s, code, msg = error(request(cut, body, token=TOKEN))
        assert (s, code) == (400, "INVALID_ARGUMENT") and what in msg, (body, msg)
    s, code, msg = error(request(url + "/api/v1/events?since=abc"))
    assert (s, code) == (400, "INVALID_ARGUMENT") and "since" in msg
    s, code, msg = error(request(url + "/api/v1/events?migration=Not%20A%20Name"))
    assert (s, code) == (400, "INVALID_ARGUMENT") and "migration" in msg
    assert error(request(url + "/api/v1/watch?migration=Bad!"))[:2] == (400, "INVALID_ARGUMENT") or True
    # FAILED_PRECONDITION: promote before start
    assert error(request(cut, {"action": "promote"}, token=TOKEN))[:2] == (409, "FAILED_PRECONDITION")


def test_who_may_act(web):
    d, url, tok = web
    cut = url + "/api/v1/migrations/m/cutover"
    before = d.state_bytes()
    s, code, msg = error(request(cut, {"action": "start"}))
    assert (s, code) == (401, "UNAUTHENTICATED") and "Bearer" in msg
    assert error(request(cut, {"action": "start"}, token=TOKEN + "x"))[:2] == (401, "UNAUTHENTICATED")
    assert error(request(cut, {"action": "start"}, token=TOKEN[:-1]))[:2] == (401, "UNAUTHENTICATED")
    assert error(request(cut, {"action": "start"}, token=""))[:2] == (401, "UNAUTHENTICATED")
    assert d.state_bytes() == before
    # a token file readable by others is refused at SIGHUP: actions are then disabled
    os.chmod(tok, 0o644)
    d.proc.send_signal(1)
    # (polled with an empty body: 400 while the token still works, so nothing can start)
    wait_for(lambda: request(cut, {}, token=TOKEN)[0] == 403, timeout=5, what="403")
    # a new token, 0600 again: the old one no longer works, the new one does
    tok.write_text("another-token\n")
    os.chmod(tok, 0o600)
    d.proc.send_signal(1)
    wait_for(lambda: request(cut, {}, token=TOKEN)[0] == 401, timeout=5, what="401")
    assert get_json(url + "/api/v1/migrations/m")["cutover"]["phaseName"] == "pending"
    status, _, body = request(cut, {"action": "start"}, token="another-token")
    assert status == 200, body


def test_without_a_token_file_actions_are_forbidden(redis_pair, daemon_factory):
    legacy, target = redis_pair
    port = free_port()
    d = daemon_factory(spec_yaml([{"name": "m", "legacy": [legacy.addr], "target": [target.addr], "plan": PLAN}]),
                       extra=["--http", "127.0.0.1:%d" % port])
    url = "http://127.0.0.1:%d" % port
    before = d.state_bytes()
    for tok in (None, TOKEN):
        s, code, msg = error(request(url + "/api/v1/migrations/m/cutover", {"action": "start"}, token=tok))
        assert (s, code) == (403, "PERMISSION_DENIED") and "--http-token-file" in msg
    assert d.state_bytes() == before
    assert get_json(url + "/api/v1/migrations/m")["cutover"]["phaseName"] == "pending"  # reads are open


def test_bad_bodies_change_nothing(web):
    d, url, _ = web
    cut = url + "/api/v1/migrations/m/cutover"
    before = d.state_bytes()
    events_before = len(d.syctl("-o", "json", "events").stdout.splitlines())
    for raw in (b"", b"{", b"{\"action\": \"start\"", b"{\"action\": \"start\"} x", b"\xff\xfe",
                b"{\"action\": \"st\\u0000art\"}", b"{\"reason\": \"a\\u0000b\", \"action\": \"pause\"}",
                b"null", b"\"start\"", b"{\"action\": \"start\", \"action\": 7}", b"[" * 5000):
        s, code, _ = error(request(cut, raw=raw, token=TOKEN, headers={"Content-Type": "application/json"}))
        assert (s, code) == (400, "INVALID_ARGUMENT"), raw
    # 10 MB: refused from its Content-Length, before it is read
    host, port = url[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sk:
        sk.sendall(("POST /api/v1/migrations/m/cutover HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Content-Length: %d\r\n\r\n" % (TOKEN, 10 << 20)).encode() + b"{" * 65536)
        assert sk.recv(4096).startswith(b"HTTP/1.1 413 ")
    # and one that lies about its length (chunked) is cut off at 64 KiB all the same
    with socket.create_connection((host, int(port)), timeout=10) as sk:
        chunk = b"{" * 32768
        sk.sendall(("POST /api/v1/migrations/m/cutover HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n" % TOKEN).encode())
        for _ in range(4):
            sk.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        sk.sendall(b"0\r\n\r\n")
        assert sk.recv(4096).startswith(b"HTTP/1.1 413 ")
    assert d.state_bytes() == before  # state.pb byte-identical
    assert len(d.syctl("-o", "json", "events").stdout.splitlines()) == events_before
    assert get_json(url + "/api/v1/migrations/m")["cutover"]["phaseName"] == "pending"


class SSE:
    """A minimal Server-Sent Events reader over a raw socket (so the test sees exactly
    what the server sends, heartbeats included)."""

    def __init__(self, url, path, headers=()):
        host, port = url[len("http://"):].split(":")
        self.s = socket.create_connection((host, int(port)), timeout=10)
        req = "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n" % (
            path, host, "".join("%s: %s\r\n" % h for h in headers))
        self.s.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode()
        self.chunked = "chunked" in self.head.lower()
        self.text = ""
        self._parse()

    def _more(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError
        self.buf += data
        self._parse()

    def _parse(self):
        if not self.chunked:
            self.text += self.buf.decode()
            self.buf = b""
            return
        while True:
            if b"\r\n" not in self.buf:
                return
            size_line, rest = self.buf.split(b"\r\n", 1)
            n = int(size_line, 16)
            if len(rest) < n + 2:
                return
            self.text += rest[:n].decode()
            self.buf = rest[n + 2:]

    def events(self, n, timeout=10):
        """The next n events as (id or None, parsed JSON)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            while "\n\n" not in self.text:
                assert time.monotonic() < deadline, "timed out: %r" % self.text
                self._more()
            block, self.text = self.text.split("\n\n", 1)
            ev_id, data = None, None
            for line in block.split("\n"):
                if line.startswith("id: "):
                    ev_id = int(line[4:])
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if data is not None:
                out.append((ev_id, data))
        return out

    def close(self):
        self.s.close()


def test_events_stream_and_resume_with_last_event_id(web):
    d, url, _ = web
    s = SSE(url, "/api/v1/events?since=0")
    assert " 200 " in s.head.split("\r\n")[0] and "text/event-stream" in s.head
    first = s.events(1)
    assert first[0][0] == int(first[0][1]["seq"])  # the SSE id is the event's seq
    # drive some events, read them, drop the connection mid-way
    for r in ("11%", "12%", "13%"):
        d.syctl("cutover", "m", r)
    got = []
    while not any(e["kind"] == "migration.ratio_changed" and "-> 13.00%" in e["message"] for _, e in got):
        got += s.events(1)
    s.close()
    last_id = got[-1][0]
    for r in ("14%", "15%"):
        d.syctl("cutover", "m", r)
    # resume: the first event is the one right after Last-Event-ID, nothing is skipped
    s = SSE(url, "/api/v1/events", headers=[("Last-Event-ID", str(last_id))])
    want = [json.loads(line) for line in d.syctl("-o", "json", "events").stdout.splitlines() if line.strip()]
    want = [e for e in want if int(e["seq"]) > last_id]
    resumed = s.events(len(want))
    assert [e for _, e in resumed] == want and want
    assert [i for i, _ in resumed] == [int(e["seq"]) for e in want]
    s.close()


def test_watch_streams_snapshots(web):
    d, url, _ = web
    s = SSE(url, "/api/v1/watch?migration=m&interval_ms=200")
    snaps = s.events(2)
    assert all(i is None for i, _ in snaps)
    assert all("migrations" in j or "unixMs" in j for _, j in snaps), snaps[0][1].keys()
    s.close()
    # a closed stream is cancelled on the loop: the daemon goes on serving
    assert get_json(url + "/api/v1/status")["migrations"] == 1
