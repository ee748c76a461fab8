# SPDX-License-Identifier: Apache-2.0
"""One owner for one set of pins: a second switchyardd on the same --bpffs is refused
while the first runs, whatever its --state-dir, and the pins are adopted only by the
state dir that made them."""
import json
import os
import subprocess

from sy import OUT, Daemon, spec_yaml


def dump(bpffs, name):
    r = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", os.path.join(bpffs, "maps", name)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def kernel_state(bpffs):
    return {m: dump(bpffs, m) for m in ("sy_config_map", "sy_migrations", "sy_routes")}


def other(tmp_path, cgroup, bpffs, config_text, name):
    os.makedirs(tmp_path / name, exist_ok=True)
    return Daemon(tmp_path / name, cgroup=cgroup, bpffs=bpffs, config_text=config_text, start=False)


def run(d):
    """Runs a daemon that must be refused at start; one still running after 10 s was not."""
    p = subprocess.Popen(d.args(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("the second daemon started instead of being refused:\n" + err)
    return subprocess.CompletedProcess(d.args(), p.returncode, out, err)


def test_second_daemon_on_same_pins_is_refused(redis_pair, daemon_factory, cgroup, bpffs, tmp_path):
    legacy, target = redis_pair
    first = daemon_factory(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                                       "ratio": "30%"}]))
    before = kernel_state(bpffs)
    # another state dir, another config: it would overwrite the routes and the ratio
    cfg2 = spec_yaml([{"name": "orders", "legacy": [target.addr], "target": [legacy.addr], "ratio": "100%"}])
    second = other(tmp_path, cgroup, bpffs, cfg2, "second")
    r = run(second)
    assert r.returncode == 1, r.stderr
    lines = [l for l in r.stderr.splitlines() if "in use by" in l]
    assert len(lines) == 1, r.stderr
    assert "pid %d" % first.proc.pid in lines[0]
    assert os.path.realpath(first.state_dir) in lines[0]
    assert "adopt" not in r.stderr
    assert kernel_state(bpffs) == before
    assert first.proc.poll() is None
    assert "users" in first.syctl("list").stdout

    # the first stops cleanly: its own state dir adopts, another one is refused
    first.stop()
    r = run(second)
    assert r.returncode == 1, r.stderr
    assert "made by the switchyardd with state dir %s" % os.path.realpath(first.state_dir) in r.stderr
    assert "--uninstall" in r.stderr
    assert kernel_state(bpffs) == before

    first.start()
    assert "adopted pinned programs" in first.read_log()
    assert "users" in first.syctl("list").stdout
    first.stop()

    # once the pins are gone, any state dir may install
    subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", bpffs], check=True,
                   capture_output=True)
    assert not os.path.exists(bpffs)
    second.start()
    try:
        assert "fresh install" in second.read_log()
        assert "orders" in second.syctl("list").stdout
    finally:
        second.stop()
