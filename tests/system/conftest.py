# SPDX-License-Identifier: Apache-2.0
"""Fixtures for system tests: real kernel, real cgroups, real redis-server.

Every test gets its own cgroup under the cgroup2 mount, its own bpffs folder, its own
state dir and its own Redis ports, all removed afterwards. Tests that need root, bpffs
or cgroup2 skip on a laptop; with SWITCHYARD_REQUIRE_BPF=1 (CI) a skip is a failure.
"""
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest

from sy import (Daemon, RedisServer, cgroup2_root, free_port, make_cgroup,
                remove_cgroup, REQUIRE_BPF, OUT)


def pytest_configure(config):
    config.addinivalue_line("markers", "bpf: needs root, bpffs and cgroup2")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_BPF and rep.skipped:
        # CI must run everything: a skip there hides a broken environment.
        rep.outcome = "failed"
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.longrepr = "skipped with SWITCHYARD_REQUIRE_BPF=1: %s" % reason


def _bpffs_mounted():
    with open("/proc/mounts") as f:
        return any(line.split()[1:3] == ["/sys/fs/bpf", "bpf"] for line in f)


def _bpf_unavailable():
    if os.geteuid() != 0:
        return "needs root"
    if cgroup2_root() is None:
        return "no cgroup2 mount in /proc/mounts"
    if os.path.isdir("/sys/fs/bpf") and not _bpffs_mounted():
        # systemd mounts it at boot; a bare container may not have: as root we can
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=False)
    if not _bpffs_mounted():
        return "no bpffs mounted at /sys/fs/bpf"
    if not os.path.exists(os.path.join(OUT, "switchyardd")):
        return "switchyardd not built (make)"
    return None


@pytest.fixture
def bpf_env():
    why = _bpf_unavailable()
    if why:
        pytest.skip(why)


@pytest.fixture
def uid():
    return "%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])


@pytest.fixture
def cgroup(bpf_env, uid):
    path = make_cgroup(os.path.join(cgroup2_root(), "sy-test-" + uid))
    yield path
    remove_cgroup(path)


@pytest.fixture
def bpffs(bpf_env, uid):
    path = "/sys/fs/bpf/sy-test-" + uid
    yield path
    if os.path.exists(path):
        subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if os.path.exists(path):
        subprocess.run(["rm", "-rf", path], check=False)


@pytest.fixture
def redis_pair(tmp_path):
    """A legacy and a target redis-server on 127.0.0.1 and ::1."""
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    yield legacy, target
    legacy.stop()
    target.stop()


@pytest.fixture
def daemon_factory(cgroup, bpffs, tmp_path):
    started = []

    def make(config_text=None, **kw):
        d = Daemon(tmp_path, cgroup=cgroup, bpffs=bpffs, config_text=config_text, **kw)
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()
