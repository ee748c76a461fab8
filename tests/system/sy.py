# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the system tests: Redis servers, the daemon, cgroups, clients."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

REQUIRE_BPF = os.environ.get("SWITCHYARD_REQUIRE_BPF") == "1"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.environ.get("OUT") or os.path.join(ROOT, "build")
PYTHON = "/usr/bin/python3"
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sy_client.py")


def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "cgroup2":
                return parts[1]
    return None


def make_cgroup(path):
    os.makedirs(path, exist_ok=False)
    return path


def remove_cgroup(path):
    """rmdir children first; processes we started have exited by now."""
    if not os.path.isdir(path):
        return
    for entry in sorted(os.listdir(path)):
        sub = os.path.join(path, entry)
        if os.path.isdir(sub):
            remove_cgroup(sub)
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.1)  # a just-exited process may still be accounted


def free_port():
    # Bind both families to port 0 on the same number so servers can listen on both.
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s6.bind(("::1", port))
        except OSError:
            s.close()
            s6.close()
            continue
        s.close()
        s6.close()
        return port
    raise RuntimeError("no free port")


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


class RedisServer:
    def __init__(self, workdir, port=None, extra=()):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None
        self.start()

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "::1",
                "--save", "", "--appendonly", "no", "--dir", self.workdir,
                "--daemonize", "no", "--logfile", os.path.join(self.workdir, "redis.log")] + self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, what="redis-server on port %d" % self.port)

    def ping(self):
        try:
            return self.client().ping()
        except Exception:
            return False

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    @property
    def addr6(self):
        return "[::1]:%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def spec_yaml(migrations):
    """Render a spec file from a list of dicts (flow style, strings quoted)."""
    lines = ["migrations:"]
    for m in migrations:
        lines.append("  - name: %s" % m["name"])
        lines.append("    legacy: [%s]" % ", ".join('"%s"' % e for e in m["legacy"]))
        lines.append("    target: [%s]" % ", ".join('"%s"' % e for e in m["target"]))
        if "client" in m:
            lines.append("    client: %s" % m["client"])
        if "ratio" in m:
            lines.append("    ratio: %s" % m["ratio"])
        if m.get("pins"):
            lines.append("    pins:")
            for p in m["pins"]:
                lines.append("      - {cgroup: %s, side: %s}" % (p["cgroup"], p["side"]))
        if m.get("prefixes"):
            lines.append("    prefixes: [%s]" % ", ".join('"%s"' % p for p in m["prefixes"]))
        if m.get("scope"):
            lines.append("    scope: [%s]" % ", ".join('"%s"' % p for p in m["scope"]))
        for k in ("sample_reads", "mirror", "capture_bytes", "mirror_queue", "auto_repair", "audit_every",
                  "resolve_interval"):
            if k in m:
                lines.append("    %s: %s" % (k, m[k]))
        if m.get("rewrite"):
            lines.append("    rewrite: {%s}" % ", ".join('"%s": "%s"' % kv for kv in m["rewrite"].items()))
        if m.get("plan"):
            lines.append("    plan: %s" % _flow(m["plan"]))
        if m.get("transform"):
            lines.append("    transform: {script: %s}" % m["transform"])
        if m.get("version_field"):
            lines.append("    version_field: %s" % m["version_field"])
    return "\n".join(lines) + "\n"


def _flow(v):
    """A value in YAML flow style: dicts and lists nest, scalars as given."""
    if isinstance(v, dict):
        return "{%s}" % ", ".join("%s: %s" % (k, _flow(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "[%s]" % ", ".join(_flow(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Daemon:
    """switchyardd under test. Readiness comes through sd_notify (READY=1), the same
    signal systemd waits for, on a NOTIFY_SOCKET we own."""

    def __init__(self, tmp, cgroup, bpffs, config_text=None, health_interval="200ms",
                 health_timeout="100ms", extra=(), in_cgroup=None, start=True, wrap=()):
        self.tmp = str(tmp)
        self.cgroup = cgroup
        self.bpffs = bpffs
        self.state_dir = os.path.join(self.tmp, "state")
        self.config = os.path.join(self.tmp, "switchyard.yaml")
        self.sock = os.path.join(self.tmp, "sy.sock")
        self.log = os.path.join(self.tmp, "switchyardd.log")
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.extra = list(extra)
        self.in_cgroup = in_cgroup
        self.wrap = list(wrap)  # argv the daemon runs under (a private mount namespace)
        self.proc = None
        self.notify = None
        if config_text is not None:
            self.write_config(config_text)
        if start:
            self.start()

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def args(self):
        a = [os.path.join(OUT, "switchyardd"), "--bpffs", self.bpffs, "--cgroup", self.cgroup,
             "--state-dir", self.state_dir, "--listen", "unix:" + self.sock,
             "--health-interval", self.health_interval, "--health-timeout", self.health_timeout]
        if os.path.exists(self.config):
            a += ["--config", self.config]
        return a + self.extra

    def start(self, expect_ready=True):
        npath = os.path.join(self.tmp, "notify-%d.sock" % random.randrange(1 << 30))
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(npath)
        env = dict(os.environ, NOTIFY_SOCKET=npath)
        cg = self.in_cgroup

        def preexec():
            if cg:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))

        logf = open(self.log, "a")
        self.proc = subprocess.Popen(self.wrap + self.args(), env=env, stdout=logf, stderr=logf,
                                     preexec_fn=preexec)
        logf.close()
        if expect_ready:
            try:
                # loading the programs takes 3-4 s here when idle, several times that under load
                self.wait_notify("READY=1", timeout=30)
            except AssertionError:
                self.stop()  # not left running: the test's fixtures never saw it
                raise

    def wait_notify(self, what, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("switchyardd exited (%d) before %s:\n%s"
                                     % (self.proc.returncode, what, self.read_log()))
            self.notify.settimeout(0.1)
            try:
                msg = self.notify.recv(4096).decode()
            except socket.timeout:
                continue
            if what in msg.split("\n"):
                return msg
        raise AssertionError("no %s from switchyardd within %ss:\n%s" % (what, timeout, self.read_log()))

    def reload(self, text):
        """Rewrite the config, SIGHUP, wait for the daemon to settle. Returns the
        final notify message (STATUS= says whether the reload was refused)."""
        self.write_config(text)
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_notify("READY=1")

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.notify:
            path = self.notify.getsockname()
            self.notify.close()
            self.notify = None
            try:
                os.unlink(path)
            except OSError:
                pass

    def state_bytes(self):
        p = os.path.join(self.state_dir, "state.pb")
        with open(p, "rb") as f:
            return f.read()

    def syctl(self, *args, check=True):
        r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + self.sock] + list(args),
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError("syctl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return r


def run_clients(jobs, timeout=120):
    """Runs sy_client.py (outside pytest's own cgroup) over a list of jobs:
    {"cgroup": path or None, "addr": "host:port", "family": 4|6, "key": str,
     "conns": n}. Returns one result dict per job (see sy_client.py)."""
    p = subprocess.run([PYTHON, CLIENT], input=json.dumps(jobs), capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("sy_client failed: %s" % p.stderr)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def in_cgroup(cgroup, argv, stdin=None, timeout=300):
    """Runs argv as a child that first moves itself into `cgroup`; returns its stdout."""
    r = subprocess.run(["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, *argv],
                       input=stdin, capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _py_redis_argv(cgroup, addr, code):
    host, port = addr.rsplit(":", 1)
    prog = "import redis\nr = redis.Redis(host=%r, port=%s)\n%s\n" % (host, port, code)
    return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, PYTHON, "-c", prog]


def py_redis(cgroup, addr, code, timeout=300):
    """Runs `code` with `r` = redis.Redis(addr) (Debian's python3-redis) in `cgroup`;
    returns its stdout."""
    r = subprocess.run(_py_redis_argv(cgroup, addr, code), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def spawn_py_redis(cgroup, addr, code):
    """The same, started in the background (communicate() for its output)."""
    return subprocess.Popen(_py_redis_argv(cgroup, addr, code), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
