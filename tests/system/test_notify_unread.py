# SPDX-License-Identifier: Apache-2.0
"""sd_notify must never block the event loop: a manager whose NOTIFY_SOCKET is full
(never read) costs the daemon its notifications, not its control API or reloads."""
import os
import signal
import socket
import subprocess
import time

from sy import OUT, Daemon, spec_yaml, wait_for


def fill(sock_path):
    """A datagram socket at sock_path whose receive queue is full: further senders
    would block (or get EAGAIN)."""
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    rx.bind(sock_path)
    tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx.setblocking(False)
    sent = 0
    while True:
        try:
            tx.sendto(b"X" * 512, sock_path)
            sent += 1
        except BlockingIOError:
            break
    tx.close()
    assert sent > 0
    return rx


def status_within(d, seconds):
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "--timeout", "5s",
                        "status"], capture_output=True, text=True, timeout=seconds + 5)
    return r, time.monotonic() - t0


def test_full_notify_socket_does_not_block_the_daemon(redis_pair, cgroup, bpffs, tmp_path):
    legacy, target = redis_pair
    npath = str(tmp_path / "unread-notify.sock")
    rx = fill(npath)
    d = Daemon(tmp_path, cgroup=cgroup, bpffs=bpffs, start=False,
               config_text=spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr]}]))
    logf = open(d.log, "a")
    d.proc = subprocess.Popen(d.args(), env=dict(os.environ, NOTIFY_SOCKET=npath), stdout=logf,
                              stderr=logf)
    logf.close()
    try:
        wait_for(lambda: os.path.exists(d.sock), timeout=10, what="control socket")
        # READY=1 is due once the first health checks end (~100 ms here): by then it
        # has been attempted against the full socket.
        time.sleep(1.0)
        for _ in range(3):
            r, took = status_within(d, 1)
            assert r.returncode == 0, r.stderr + d.read_log()
            assert took < 1.0, "syctl status took %.2fs" % took
        assert "users" in d.syctl("list").stdout
        # A reload runs, and its READY=1 is dropped too, without stalling anything.
        d.write_config(spec_yaml([{"name": "orders", "legacy": [legacy.addr], "target": [target.addr]}]))
        d.proc.send_signal(signal.SIGHUP)

        def reloaded():
            r, took = status_within(d, 1)
            assert r.returncode == 0 and took < 1.0, (r.stderr, took)
            names = d.syctl("list").stdout
            return "orders" in names and "users" not in names

        wait_for(reloaded, timeout=5, what="the reloaded config in syctl status")
        assert d.proc.poll() is None
        assert "notifications dropped" in d.read_log()
        # STOPPING=1 cannot be delivered either: the daemon still stops promptly.
        d.proc.terminate()
        assert d.proc.wait(timeout=5) == 0
    finally:
        d.stop()
        rx.close()


def test_ready_reaches_an_abstract_notify_socket(redis_pair, cgroup, bpffs, tmp_path, uid):
    """NOTIFY_SOCKET=@name is the abstract namespace (what systemd uses in containers)."""
    legacy, target = redis_pair
    name = "sy-test-notify-" + uid
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind("\0" + name)
    rx.settimeout(15)
    d = Daemon(tmp_path, cgroup=cgroup, bpffs=bpffs, start=False,
               config_text=spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr]}]))
    logf = open(d.log, "a")
    d.proc = subprocess.Popen(d.args(), env=dict(os.environ, NOTIFY_SOCKET="@" + name), stdout=logf,
                              stderr=logf)
    logf.close()
    try:
        msg = rx.recv(4096).decode()
        assert "READY=1" in msg.split("\n"), msg
        d.proc.terminate()
        assert "STOPPING=1" in rx.recv(4096).decode().split("\n")
        assert d.proc.wait(timeout=5) == 0
    finally:
        d.stop()
        rx.close()
