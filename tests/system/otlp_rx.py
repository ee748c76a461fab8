# SPDX-License-Identifier: Apache-2.0
"""An OTLP/gRPC metrics receiver for the tests, built on Debian's python3-grpcio with a
generic handler (no generated stubs), behind a byte-recording TCP relay so the tests
can look at the wire itself (HTTP/2 headers, the gRPC compressed flag, gzip magic).

Request bodies are decoded with `protoc --decode_raw`: an independent decoder that
needs no schema of ours. Field numbers below are the OTLP specification's."""
import ast
import re
import socket
import subprocess
import threading
import time
from concurrent import futures

import grpc
import hpack

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"


class Receiver:
    """grpcio server; mode "ok" answers every Export, "unavailable" fails it."""

    def __init__(self):
        self.mode = "ok"
        self.calls = []  # (monotonic time, raw request bytes, answered ok)
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(SERVICE, {
            "Export": grpc.unary_unary_rpc_method_handler(self._export),
        })
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _export(self, body, ctx):
        ok = self.mode == "ok"
        with self.lock:
            self.calls.append((time.monotonic(), body, ok))
        if not ok:
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "collector down for the test")
        return b""  # an empty ExportMetricsServiceResponse

    def accepted(self):
        with self.lock:
            return [(t, b) for t, b, ok in self.calls if ok]

    def refused(self):
        with self.lock:
            return sum(1 for _, _, ok in self.calls if not ok)

    def stop(self):
        self.server.stop(0).wait()


class Relay:
    """TCP relay 127.0.0.1:port → target, keeping every byte the client sent."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.sent = []  # one bytearray per connection
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.closed = False
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                c.close()
                continue
            rec = bytearray()
            self.sent.append(rec)
            self.socks += [c, s]
            threading.Thread(target=self._pump, args=(c, s, rec), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, None), daemon=True).start()

    @staticmethod
    def _pump(a, b, rec):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if rec is not None:
                    rec += d
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.ls.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def h2_requests(raw):
    """The requests in a client→server HTTP/2 byte stream: [(headers dict, body bytes)]."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    assert raw.startswith(preface), raw[:40]
    off, dec = len(preface), hpack.Decoder()
    heads, bodies, order = {}, {}, []
    while off + 9 <= len(raw):
        ln = int.from_bytes(raw[off:off + 3], "big")
        typ, flags = raw[off + 3], raw[off + 4]
        sid = int.from_bytes(raw[off + 5:off + 9], "big") & 0x7FFFFFFF
        payload = raw[off + 9:off + 9 + ln]
        if len(payload) < ln:
            break
        off += 9 + ln
        if typ in (0, 1) and flags & 0x8:  # PADDED
            payload = payload[1:len(payload) - payload[0]]
        if typ == 1:  # HEADERS
            if flags & 0x20:  # PRIORITY
                payload = payload[5:]
            assert flags & 0x4, "header block continued: not expected from this client"
            heads[sid] = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                          for k, v in dec.decode(payload)}
            order.append(sid)
            bodies[sid] = b""
        elif typ == 0 and sid in bodies:
            bodies[sid] += payload
    return [(heads[s], bodies[s]) for s in order]


# ---- protoc --decode_raw -------------------------------------------------------------------

def decode_raw(body):
    """The message as a tree: a list of (field number, value), value an int, bytes, or
    a tree (for nested messages)."""
    out = subprocess.run(["protoc", "--decode_raw"], input=body, capture_output=True, check=True).stdout
    stack = [[]]
    for line in out.decode().splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "}":
            node = stack.pop()
            stack[-1][-1] = (stack[-1][-1][0], node)
            continue
        m = re.match(r"^(\d+) \{$", line)
        if m:
            stack[-1].append((int(m.group(1)), None))
            stack.append([])
            continue
        m = re.match(r"^(\d+): (.*)$", line)
        assert m, line
        v = m.group(2)
        if v.startswith('"'):
            v = ast.literal_eval("b" + v)
        elif v.startswith("0x"):
            v = int(v, 16)
        else:
            v = int(v)
        stack[-1].append((int(m.group(1)), v))
    assert len(stack) == 1
    return stack[0]


def fields(tree, n):
    return [v for k, v in tree if k == n]


def field(tree, n, default=None):
    f = fields(tree, n)
    return f[0] if f else default


def text(v):
    """A string field. decode_raw prints an empty nested message for an empty string."""
    return v.decode() if isinstance(v, bytes) else ""


def kv(attrs):
    """KeyValue list → {key: string value}."""
    out = {}
    for a in attrs:
        val = field(a, 2, [])
        out[text(field(a, 1))] = text(field(val, 1)) if isinstance(val, list) else ""
    return out


def export_request(body):
    """ExportMetricsServiceRequest → (resource attributes, scope name,
    {metric name: (kind, unit, [(attrs, value, start, time)])})."""
    req = decode_raw(body)
    rms = fields(req, 1)
    assert len(rms) == 1
    rm = rms[0]
    res = kv(fields(field(rm, 1, []), 1))
    sm = field(rm, 2)
    scope = text(field(field(sm, 1, []), 1))
    metrics = {}
    for m in fields(sm, 2):
        name, unit = text(field(m, 1)), text(field(m, 3))
        for num, kind in ((7, "sum"), (5, "gauge"), (9, "histogram")):
            data = field(m, num)
            if data is not None:
                break
        pts = []
        for p in fields(data, 1):
            if kind == "histogram":
                pts.append((kv(fields(p, 9)), field(p, 4, 0), field(p, 2, 0), field(p, 3, 0)))
            else:
                v = field(p, 6)
                if v is None:
                    v = field(p, 4, 0)  # as_double, as its 64 bits
                pts.append((kv(fields(p, 7)), v, field(p, 2, 0), field(p, 3, 0)))
        extra = {"temporality": field(data, 2, 0), "monotonic": field(data, 3, 0)}
        metrics[name] = (kind, unit, pts, extra)
    return res, scope, metrics


def value(metrics, name, **attrs):
    """The one point of `name` whose attributes include attrs."""
    kind, unit, pts, _ = metrics[name]
    got = [v for a, v, _, _ in pts if all(a.get(k) == x for k, x in attrs.items())]
    assert len(got) == 1, (name, attrs, pts)
    return got[0]
