# SPDX-License-Identifier: Apache-2.0
"""Daemon lifecycle around the registry: one daemon per state dir, adoption rules,
config-file ownership of migrations, --check-config."""
import os
import subprocess

import pytest

from grpc_util import channel, pb, unary
from sy import OUT, Daemon, run_clients, spec_yaml


def mig(legacy, target, ratio="0%", name="users"):
    return {"name": name, "legacy": [legacy.addr], "target": [target.addr], "ratio": ratio}


def test_second_daemon_on_same_state_dir_is_refused(redis_pair, daemon_factory, tmp_path):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([mig(legacy, target)]))
    r = subprocess.run(d.args(), capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "another switchyardd uses this state dir" in r.stderr


def test_adoption_refuses_another_cgroup(redis_pair, daemon_factory, cgroup, bpffs, tmp_path):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([mig(legacy, target)]))
    d.stop()
    other = os.path.join(cgroup, "other")
    os.mkdir(other)
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--bpffs", bpffs, "--cgroup", other, "--state-dir",
                        str(tmp_path / "st2"), "--listen", "unix:" + str(tmp_path / "x.sock")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "attached to another cgroup" in r.stderr and "--uninstall" in r.stderr


def test_half_made_install_is_redone(redis_pair, daemon_factory, cgroup, bpffs):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([mig(legacy, target, "100%")]))
    d.stop()
    os.unlink(os.path.join(bpffs, "links", "sy_connect6"))  # as if killed while installing
    d.start()
    assert "incomplete installation" in d.read_log()
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "k"}])
    assert res[0]["conns"][0]["served_port"] == target.port


def test_file_owns_only_its_migrations(redis_pair, daemon_factory):
    legacy, target = redis_pair
    d = daemon_factory(spec_yaml([mig(legacy, target, "0%")]))
    c = pb("switchyard.v1.control")
    m = pb("switchyard.v1.migration")
    with channel("unix:" + d.sock) as ch:
        unary(ch, "/switchyard.v1.Control/ApplyMigration",
              c.ApplyMigrationRequest(spec=m.MigrationSpec(name="api-made", legacy=["127.0.0.1:9"],
                                                           target=["127.0.0.1:10"])), c.Migration)

        def names():
            r = unary(ch, "/switchyard.v1.Control/ListMigrations", c.ListMigrationsRequest(),
                      c.ListMigrationsResponse)
            return sorted(x.spec.name for x in r.migrations)

        assert names() == ["api-made", "users"]
        # The file no longer names "users" (ratio 0): it goes; the API's stays.
        assert "refused" not in d.reload("migrations: []\n")
        assert names() == ["api-made"]
        # A file migration still sending clients to target is not dropped silently.
        d.reload(spec_yaml([mig(legacy, target, "50%")]))
        before = d.state_bytes()
        msg = d.reload("migrations: []\n")
        assert "reload refused" in msg and "still sends clients" in msg
        assert d.state_bytes() == before
        assert names() == ["api-made", "users"]


def test_check_config_accepts_a_good_file(redis_pair, tmp_path):
    legacy, target = redis_pair
    f = tmp_path / "ok.yaml"
    f.write_text(spec_yaml([mig(legacy, target, "25%")]))
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", str(f)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "1 migration(s), valid" in r.stdout


@pytest.mark.parametrize("args,phrase", [
    (["--health-interval", "soon"], "--health-interval"),
    (["--health-timeout", "2s", "--health-interval", "1s"], "must not exceed"),
    (["--log-level", "loud"], "--log-level"),
    (["--bogus"], "unknown option"),
    (["extra"], "unexpected argument"),
])
def test_bad_arguments_exit_2(args, phrase):
    r = subprocess.run([os.path.join(OUT, "switchyardd")] + args, capture_output=True, text=True)
    assert r.returncode == 2 and phrase in r.stderr
