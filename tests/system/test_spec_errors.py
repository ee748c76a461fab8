"""Bad spec files: one line "FILE:LINE: what is wrong", a non-zero exit, and nothing
changed — neither the kernel's steering nor the state file (byte-identical)."""
import os
import subprocess

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
    legacy: ["localhost:{lport}"]
    target: ["{target}"]
""", "localhost", "localhost"),
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
