# SPDX-License-Identifier: Apache-2.0
"""Many Server-Sent Events clients at once, read by one thread (selectors), for the
HTTP door's load test (test_http_crowd.py) and bench/sse.sh. Each client is a plain
socket speaking HTTP/1.1 (the chunked transfer coding libmicrohttpd answers streams
with); it keeps the events it read as (id or None, parsed JSON), heartbeats (comment
lines) counted apart.

    crowd = Crowd("127.0.0.1", port, "/api/v1/events?since=5", 200)
    crowd.wait_open(10)        # every client has its 200 response head
    ...
    crowd.close()              # sockets closed, thread joined
"""
import json
import selectors
import socket
import threading
import time


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.head = None
        self.chunked = False
        self.text = ""
        self.events = []  # (id or None, JSON)
        self.heartbeats = 0
        self.closed = False
        self.error = None  # why it closed, when the socket said

    def feed(self, data):
        self.buf += data
        if self.head is None:
            if b"\r\n\r\n" not in self.buf:
                return
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.head = head.decode()
            self.chunked = "transfer-encoding: chunked" in self.head.lower()
        if not self.chunked:
            self.text += self.buf.decode()
            self.buf = b""
        else:
            while b"\r\n" in self.buf:
                size_line, rest = self.buf.split(b"\r\n", 1)
                n = int(size_line, 16)
                if len(rest) < n + 2:
                    break
                self.text += rest[:n].decode()
                self.buf = rest[n + 2:]
        while "\n\n" in self.text:
            block, self.text = self.text.split("\n\n", 1)
            ev_id, data = None, None
            for line in block.split("\n"):
                if line.startswith("id: "):
                    ev_id = int(line[4:])
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line.startswith(":"):
                    self.heartbeats += 1
            if data is not None:
                self.events.append((ev_id, data))

    @property
    def status(self):
        return int(self.head.split(" ", 2)[1]) if self.head else None


class Crowd:
    def __init__(self, host, port, path, n):
        self.sel = selectors.DefaultSelector()
        self.clients = []
        self.lock = threading.Lock()
        self.stopping = False
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n" % (path, host, port)).encode()
        for _ in range(n):
            s = socket.create_connection((host, port), timeout=10)
            c = Client(s)
            self.clients.append(c)
            try:
                s.sendall(req)
            except OSError as e:  # refused at once (a connection limit): closed, no head
                c.closed, c.error = True, e.strerror
                continue
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, c)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.2):
                c = key.data
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    c.error = e.strerror
                    data = b""
                with self.lock:
                    if not data:
                        c.closed = True
                        self.sel.unregister(c.sock)
                    else:
                        c.feed(data)

    def snapshot(self, fn):
        """fn(clients) under the reader's lock."""
        with self.lock:
            return fn(self.clients)

    def wait(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.snapshot(pred):
                return
            time.sleep(0.05)
        raise AssertionError("timed out: " + what + ": " + self.snapshot(self.describe))

    def wait_open(self, timeout=15):
        self.wait(lambda cs: all(c.head is not None or c.closed for c in cs), timeout, "response heads")

    @staticmethod
    def describe(cs):
        statuses = {}
        for c in cs:
            k = ("closed" + (" (%s)" % c.error if c.error else "")) if c.closed and c.head is None else str(c.status)
            statuses[k] = statuses.get(k, 0) + 1
        return "statuses %s, events min %d max %d" % (statuses, min(len(c.events) for c in cs),
                                                       max(len(c.events) for c in cs))

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        for c in self.clients:
            try:
                c.sock.close()
            except OSError:
                pass
        self.sel.close()
