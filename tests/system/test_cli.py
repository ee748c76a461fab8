# SPDX-License-Identifier: Apache-2.0
"""syctl as people and scripts meet it: shell completion (bash, run for real against a
live daemon for migration names; zsh parsed)."""
import os
import shutil
import subprocess

import pytest

from sy import OUT, RedisServer, spec_yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BASH_COMPLETION = os.path.join(ROOT, "packaging", "completion", "syctl.bash")
ZSH_COMPLETION = os.path.join(ROOT, "packaging", "completion", "_syctl")


def complete(line, server=None):
    """What bash's completion offers for the words of `line` (the last one being
    completed; a trailing space means a new empty word)."""
    words = line.split()
    if line.endswith(" "):
        words.append("")
    script = """
shopt -s extglob
PATH=%s:$PATH
. %s
COMP_WORDS=(%s)
COMP_CWORD=%d
_syctl
printf '%%s\\n' "${COMPREPLY[@]}"
""" % (OUT, BASH_COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1)
    env = dict(os.environ)
    if server:
        env["SYCTL_SERVER"] = server
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(w for w in r.stdout.split("\n") if w)


def test_bash_completion_commands_and_options():
    assert complete("syctl ") == sorted(["status", "apply", "diff", "get", "list", "delete", "cutover", "pin", "unpin",
                                         "watch", "events", "health", "backfill", "verify", "--server",
                                         "--timeout", "-o", "--help"])
    assert complete("syctl cu") == ["cutover"]
    assert complete("syctl -o ") == ["json", "table"]
    assert complete("syctl -o json ver") == ["verify"]
    assert complete("syctl verify users --re") == ["--repair", "--report"]
    assert complete("syctl pin users --side ") == ["legacy", "target"]
    assert complete("syctl cutover users ro") == ["rollback"]
    assert complete("syctl cutover users rollback --") == ["--drain", "--reason"]


def test_bash_completion_every_command_is_syctls():
    """The completion's commands are exactly those syctl --help lists."""
    r = subprocess.run([os.path.join(OUT, "syctl"), "--help"], capture_output=True, text=True)
    listed = set()
    in_cmds = False
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("commands:"):
            in_cmds = True
            continue
        if in_cmds and line.startswith("  ") and line.split():
            listed.add(line.split()[0])
        elif in_cmds and not line.strip():
            break
    offered = {w for w in complete("syctl ") if not w.startswith("-")}
    assert listed and offered == listed, (offered ^ listed)


def test_bash_completion_names_come_from_the_daemon(daemon_factory, tmp_path):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    try:
        d = daemon_factory(spec_yaml([
            {"name": "users", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%"},
            {"name": "carts", "legacy": ["127.0.0.1:1"], "target": ["127.0.0.1:2"], "ratio": "0%"},
        ]))
        server = "unix://" + d.sock
        assert complete("syctl get ", server) == ["carts", "users"]
        assert complete("syctl cutover u", server) == ["users"]
        # --server on the line being completed wins over the environment
        assert complete("syctl --server %s status c" % server, "unix:///nonexistent") == ["carts"]
        # a daemon that is not there offers nothing, quickly, and no error on the terminal
        assert complete("syctl get ", "unix://" + str(tmp_path / "none.sock")) == []
    finally:
        legacy.stop()
        target.stop()


def test_zsh_completion_parses():
    if not shutil.which("zsh"):
        pytest.skip("zsh not installed (packaging/deps.sh)")
    r = subprocess.run(["zsh", "-n", ZSH_COMPLETION], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert open(ZSH_COMPLETION).readline().startswith("#compdef syctl")
