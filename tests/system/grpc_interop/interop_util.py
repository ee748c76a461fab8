# SPDX-License-Identifier: Apache-2.0
"""Shared by check_server.py and check_client.py: the grpc.health.v1 message classes
(generated with protoc from the project's own proto, loaded by path so the package name
"grpc" does not shadow grpcio), channel helpers, and the peer process."""
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
_health = None


def health_pb():
    global _health
    if _health is None:
        out = tempfile.mkdtemp(prefix="sy-interop-pb-")
        subprocess.run(["protoc", "--proto_path", os.path.join(ROOT, "proto"), "--python_out", out,
                        "grpc/health/v1/health.proto"], check=True)
        spec = importlib.util.spec_from_file_location("sy_health_pb2",
                                                      os.path.join(out, "grpc/health/v1/health_pb2.py"))
        _health = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_health)
    return _health


def text_req(s):
    """Our test methods take and return a HealthCheckRequest whose string is the payload."""
    return health_pb().HealthCheckRequest(service=s)


def ser(m):
    return m.SerializeToString()


class Peer:
    """tests/system/grpc_interop/peer.c, built as README.md says."""

    def __init__(self, binary, listens):
        self.binary = binary
        self.proc = subprocess.Popen([binary, "serve"] + listens, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("peer did not start: %r" % line)
        self.port = int(line[1])
        self.lines = []

    def read_events(self, want, timeout=5.0):
        """Waits for a stdout line starting with `want` (e.g. "cancel /interop.T/Stream")."""
        import select
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for ln in self.lines:
                if ln.startswith(want):
                    return ln
            r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if r:
                ln = self.proc.stdout.readline()
                if ln:
                    self.lines.append(ln.strip())
        return None

    def terminate(self, timeout=10):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def run_checks(checks, *args):
    """Runs each check(*args); prints one line per check; returns the number failed."""
    failed = 0
    for fn in checks:
        t0 = time.monotonic()
        try:
            fn(*args)
            print("PASS %-45s %.2fs" % (fn.__name__, time.monotonic() - t0))
        except Exception:
            failed += 1
            print("FAIL %-45s" % fn.__name__)
            traceback.print_exc(file=sys.stdout)
    return failed
