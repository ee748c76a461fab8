# SPDX-License-Identifier: Apache-2.0
"""Bad spec files: one line "FILE:LINE: what is wrong", a non-zero exit, and nothing
changed — neither the kernel's steering nor the state file (byte-identical)."""
import os
import subprocess
import time

import pytest

from sy import OUT, run_clients, spec_yaml

GOOD = """migrations:
  - name: users
    legacy: ["{legacy}"]
    target: ["{target}"]
    ratio: 100%
"""

# (name, text, the substring on the offending line, a phrase the message must contain)
BAD = [
    ("unknown-field", """migrations:
  - name: users
    legacy: ["{legacy}"]
    target: ["{target}"]
    ratioo: 50%
""", "ratioo", "ratioo"),
    ("bad-endpoint", """migrations:
  - name: users
    legacy: ["local host:{lport}"]
    target: ["{target}"]
""", "local host", "local host"),
    ("ratio-out-of-range", """migrations:
  - name: users
    legacy: ["{legacy}"]
    target: ["{target}"]
    ratio: 120%
""", "120%", "120%"),
    ("legacy-in-two-migrations", """migrations:
  - name: users
    legacy: ["{legacy}"]
    target: ["{target}"]
  - name: carts
    legacy: ["{legacy}"]
    target: ["127.0.0.1:1"]
""", "- name: carts", "users"),
    ("missing-cgroup", """migrations:
  - name: users
    legacy: ["{legacy}"]
    target: ["{target}"]
    pins: [{{cgroup: {cgroup}/does-not-exist, side: target}}]
""", "does-not-exist", "does-not-exist"),
]


def render(text, legacy, target, cgroup):
    return text.format(legacy=legacy.addr, target=target.addr, lport=legacy.port, cgroup=cgroup)


def expected_line(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def check_message(msg, path, text, needle, phrase):
    lines = [l for l in msg.strip().splitlines() if l]
    assert len(lines) >= 1
    line = [l for l in lines if l.startswith(path + ":")]
    assert line, "no FILE:LINE message in %r" % msg
    head = "%s:%d: " % (path, expected_line(text, needle))
    assert line[0].startswith(head), "%r does not start with %r" % (line[0], head)
    assert phrase in line[0]


@pytest.mark.parametrize("name,text,needle,phrase", BAD, ids=[b[0] for b in BAD])
def test_check_config_reports_file_line(name, text, needle, phrase, redis_pair, cgroup, tmp_path):
    legacy, target = redis_pair
    body = render(text, legacy, target, cgroup)
    path = str(tmp_path / (name + ".yaml"))
    with open(path, "w") as f:
        f.write(body)
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", path],
                       capture_output=True, text=True)
    assert r.returncode != 0
    check_message(r.stderr, path, body, needle, phrase)


@pytest.mark.parametrize("name,text,needle,phrase", BAD, ids=[b[0] for b in BAD])
def test_bad_reload_changes_nothing(name, text, needle, phrase, redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    d = daemon_factory(render(GOOD, legacy, target, cgroup))
    before = d.state_bytes()
    body = render(text, legacy, target, cgroup)
    msg = d.reload(body)
    assert "reload refused" in msg
    check_message(d.read_log().splitlines()[-1].split("reload refused, running configuration kept: ", 1)[-1],
                  d.config, body, needle, phrase)
    assert d.state_bytes() == before
    res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "still"}])
    assert res[0]["conns"][0]["served_port"] == target.port


@pytest.mark.parametrize("name,text,needle,phrase", BAD, ids=[b[0] for b in BAD])
def test_bad_config_at_start_touches_nothing(name, text, needle, phrase, redis_pair, daemon_factory,
                                             cgroup, bpffs):
    legacy, target = redis_pair
    body = render(text, legacy, target, cgroup)
    d = daemon_factory(body, start=False)
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=10) != 0
    check_message(d.read_log(), d.config, body, needle, phrase)
    assert not os.path.exists(bpffs)
    assert not os.path.exists(os.path.join(d.state_dir, "state.pb"))


# ---- issue 18: hostile files and API strings -----------------------------------------

def check_config(path):
    return subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", path],
                          capture_output=True, text=True, timeout=60)


def test_deep_nesting_is_refused_at_once(tmp_path):
    """20 000 '[' took 2 s of --check-config (and of the event loop on SIGHUP)."""
    path = str(tmp_path / "deep.yaml")
    with open(path, "w") as f:
        f.write("migrations:\n  - " + "[" * 100000 + "\n")
    t = time.monotonic()
    r = check_config(path)
    elapsed = time.monotonic() - t
    assert r.returncode == 1
    assert r.stderr.strip() == "%s:2: nesting deeper than 32" % path
    assert elapsed < 10, elapsed  # a generous bound: a minute before


def test_deep_nesting_reload_keeps_running_config(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    d = daemon_factory(render(GOOD, legacy, target, cgroup))
    before = d.state_bytes()
    msg = d.reload("migrations: " + "{a: " * 20000 + "\n")
    assert "reload refused" in msg and "nesting deeper than 32" in msg
    assert d.state_bytes() == before


@pytest.mark.parametrize("field,text,line", [
    ("name", 'migrations:\n  - name: "m\\0x"\n    legacy: ["{legacy}"]\n    target: ["{target}"]\n', 2),
    ("prefix", 'migrations:\n  - name: m\n    legacy: ["{legacy}"]\n    target: ["{target}"]\n'
               '    prefixes: ["u\\0"]\n', 5),
    ("cgroup", 'migrations:\n  - name: m\n    legacy: ["{legacy}"]\n    target: ["{target}"]\n'
               '    pins: [{{cgroup: "{cgroup}\\0x", side: target}}]\n', 5),
])
def test_nul_in_a_string_is_refused(field, text, line, redis_pair, cgroup, tmp_path):
    """"m\\0x" was read as "m" without a word."""
    legacy, target = redis_pair
    body = render(text, legacy, target, cgroup)
    path = str(tmp_path / "nul.yaml")
    with open(path, "w") as f:
        f.write(body)
    r = check_config(path)
    assert r.returncode == 1
    assert r.stderr.startswith("%s:%d: " % (path, line)) and "a NUL byte in a string" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_newline_in_a_value_keeps_one_line(redis_pair, cgroup, tmp_path):
    legacy, target = redis_pair
    body = render('migrations:\n  - name: "bad\\nname"\n    legacy: ["{legacy}"]\n    target: ["{target}"]\n',
                  legacy, target, cgroup)
    path = str(tmp_path / "nl.yaml")
    with open(path, "w") as f:
        f.write(body)
    r = check_config(path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ['%s:2: name: "bad\\nname" must be 1-63 characters of a-z, 0-9, '
                                             "'.', '_', '-', starting with a letter or digit" % path]


def test_nul_over_the_api_is_refused(redis_pair, daemon_factory, cgroup):
    """protobuf-c cuts "a\\0b" to "a" on unpack: `syctl apply` printed "migration a applied"."""
    import grpc
    from grpc_util import channel, pb, unary
    legacy, target = redis_pair
    d = daemon_factory(None)
    c, m = pb("switchyard.v1.control"), pb("switchyard.v1.migration")
    for s in (m.MigrationSpec(name="a\x00b", legacy=[legacy.addr], target=[target.addr]),
              m.MigrationSpec(name="a", legacy=[legacy.addr], target=[target.addr], prefixes=["u\x00"])):
        with channel("unix:" + d.sock) as ch, pytest.raises(grpc.RpcError) as e:
            unary(ch, "/switchyard.v1.Control/ApplyMigration", c.ApplyMigrationRequest(spec=s), c.Migration)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "must not contain a NUL byte" in e.value.details()
    assert d.syctl("list").stdout.count("\n") == 1  # the header only: nothing applied


def test_cli_durations_need_a_unit(redis_pair, daemon_factory):
    """Issue 15: syctl read "--timeout 5" as seconds, the daemon a bare number as ms."""
    d = daemon_factory(None)
    for args in (["--timeout", "5", "list"], ["watch", "--interval", "100", "--count", "1"]):
        r = d.syctl(*args, check=False)
        assert r.returncode == 2 and "needs a unit: ms, s, m or h" in r.stderr, (args, r.stderr)
    assert d.syctl("--timeout", "5s", "list").returncode == 0
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--health-interval", "500", "--check-config",
                        "--config", d.config], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "needs a unit" in r.stderr
