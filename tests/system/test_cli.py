# SPDX-License-Identifier: Apache-2.0
"""syctl as people and scripts meet it: shell completion (bash, run for real against a
live daemon for migration names; zsh parsed); help, version and did-you-mean; the exit
codes scripts rely on (verify's drift, cutover --wait, unknown names); the tables (get,
watch, events); and -o json checked against the keys docs/json.md promises."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from sy import OUT, RedisServer, spec_yaml, wait_for

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
    assert complete("syctl ") == sorted(["status", "apply", "diff", "get", "list", "nodes", "delete", "cutover", "pin",
                                         "unpin", "watch", "events", "health", "backfill", "verify", "version",
                                         "help", "--server", "--tls-ca", "--tls-cert", "--tls-key", "--timeout", "-o", "--help", "--version"])
    assert complete("syctl cu") == ["cutover"]
    assert complete("syctl -o ") == ["json", "table"]
    assert complete("syctl -o json veri") == ["verify"]
    assert complete("syctl verify users --re") == ["--repair", "--report"]
    assert complete("syctl pin users --side ") == ["legacy", "target"]
    assert complete("syctl cutover users ro") == ["rollback"]
    assert complete("syctl cutover users rollback --") == ["--drain", "--reason"]
    assert complete("syctl cutover users start --") == ["--reason", "--timeout", "--wait"]
    assert complete("syctl events users --") == ["--follow", "--kind", "--since", "--verbose"]
    assert complete("syctl help cu") == ["cutover"]


def test_bash_completion_every_command_is_syctls():
    """The completion's commands are exactly those syctl --help lists."""
    r = subprocess.run([os.path.join(OUT, "syctl"), "--help"], capture_output=True, text=True)
    listed = set()
    in_cmds = False
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("commands"):
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


# ---- help, version, usage errors ---------------------------------------------------------


def syctl(*args, server=None, timeout=60):
    argv = [os.path.join(OUT, "syctl")] + (["--server", server] if server else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def test_help_did_you_mean_and_units():
    # one command's help, two ways, with its examples
    a, b = syctl("help", "cutover"), syctl("cutover", "--help")
    assert a.returncode == 0 and a.stdout == b.stdout
    assert a.stdout.startswith("usage: syctl cutover") and "--wait" in a.stdout and "examples:" in a.stdout
    # a typo is answered with the command meant; nothing close, no guess
    r = syctl("stauts")
    assert r.returncode == 2 and 'did you mean "status"' in r.stderr, r.stderr
    r = syctl("help", "evnets")
    assert r.returncode == 2 and 'did you mean "events"' in r.stderr
    r = syctl("frobnicate")
    assert r.returncode == 2 and "did you mean" not in r.stderr
    # a duration without a unit is refused, saying which units
    for args in (["--timeout", "5", "list"], ["cutover", "m", "start", "--wait", "--timeout", "30"],
                 ["watch", "--interval", "100"]):
        r = syctl(*args)
        assert r.returncode == 2 and "needs a unit" in r.stderr, (args, r.stderr)
    # --wait only where a plan goes forward; --timeout only with --wait
    assert syctl("cutover", "m", "pause", "--wait").returncode == 2
    assert syctl("cutover", "m", "start", "--timeout", "1m").returncode == 2
    # version without a daemon: the client's, then exit 3
    r = syctl("version", server="unix:///nonexistent/sock")
    assert r.returncode == 3 and r.stdout.startswith("syctl ")


# ---- one daemon, the people-facing views and the exit codes ------------------------------


@pytest.fixture
def live(daemon_factory, tmp_path, cgroup):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    pin = os.path.join(cgroup, "pinned")
    os.mkdir(pin)
    d = daemon_factory(spec_yaml([
        {"name": "users", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%", "mirror": "both",
         "pins": [{"cgroup": pin, "side": "legacy"}],
         "plan": {"steps": ["50%", "100%"], "bake": "10m", "interval": "100ms", "min_samples": 0,
                  "gates": {"error_rate": "1%", "p99_ratio": 2.5}}},
        {"name": "carts", "legacy": ["127.0.0.1:1"], "target": ["127.0.0.1:2"], "ratio": "0%"},
    ]))
    yield d, "unix://" + d.sock, legacy, target
    legacy.stop()
    target.stop()


def test_get_watch_and_status_show_what_people_need(live):
    d, srv, legacy, target = live
    r = syctl("get", "users", server=srv)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^SIDE +REQUESTS +READS +WRITES +OTHER +P50 +P99 +ERRORS +UNPARSED$", out, re.M), out
    assert re.search(r"^legacy +\d+ +\d+", out, re.M) and re.search(r"^target +\d+ +\d+", out, re.M)
    assert re.search(r"^MIRROR +MIRRORED +QUEUED +DIRTY +LAG P50 +LAG P99 +NEEDS AUDIT$", out, re.M), out
    assert re.search(r"^forward ", out, re.M) and re.search(r"^reverse ", out, re.M)
    assert "plan:      50.00% → 100.00% (auto) — pending" in out, out
    assert re.search(r"^pin: +\S+pinned -> legacy \(set by file:\S+\)$", out, re.M), out
    # the columns line up: right-aligned, each row exactly as wide as its header
    rows = [l for l in out.splitlines() if re.match(r"^(SIDE|legacy|target) ", l)]
    assert len(rows) == 3 and len({len(l) for l in rows}) == 1, rows
    # a plan running: status NAME shows the gates in the config's units; watch adds them
    assert syctl("cutover", "users", "start", server=srv).returncode == 0
    wait_for(lambda: "evaluation(s)" in syctl("status", "users", server=srv).stdout and
             " 0 evaluation" not in syctl("status", "users", server=srv).stdout, timeout=15, what="evaluations")
    st = syctl("status", "users", server=srv).stdout
    assert re.search(r"error_rate +\S+%  max 1% ", st) and re.search(r"p99_ratio +\S+x  max 2.5x ", st), st
    assert "0.01" not in st
    w = syctl("watch", "users", "--count", "2", "--interval", "200ms", server=srv)
    assert w.returncode == 0, w.stderr
    assert re.search(r"^  SIDE +REQ/S +READS/S +WRITES/S", w.stdout, re.M), w.stdout
    assert re.search(r"gates: error_rate \S+% \(max 1%\) \w+, p99_ratio \S+x \(max 2.5x\) \w+", w.stdout), w.stdout
    # the same verdicts in the snapshot itself
    j = json.loads(syctl("-o", "json", "watch", "users", "--count", "1", server=srv).stdout.splitlines()[0])
    assert [g["gate"] for g in j["migrations"][0]["gates"]] == ["error_rate", "p99_ratio"]


def test_messages_name_the_fix(live, cgroup):
    d, srv, legacy, target = live
    # an unknown migration: NOT_FOUND everywhere, listing the ones there are
    for args in (["get", "usres"], ["events", "usres"], ["verify", "usres", "--report"], ["cutover", "usres", "10%"],
                 ["watch", "usres", "--count", "1"]):
        r = syctl(*args, server=srv)
        assert r.returncode == 1, (args, r.stderr)
        assert 'migration "usres" not found; the migrations are: users, carts' in r.stderr or \
            'migration "usres" not found; the migrations are: carts, users' in r.stderr, (args, r.stderr)
    # delete refused: the message says how to go on, on one line
    assert syctl("pin", "users", "--cgroup", os.path.join(cgroup, "pinned"), "--side", "target",
                 server=srv).returncode == 0
    r = syctl("delete", "users", server=srv)
    assert r.returncode == 1 and "syctl delete users --force" in r.stderr and len(r.stderr.splitlines()) == 1
    # a cgroup that is no cgroup: the request's field, no index into the spec's list
    r = syctl("pin", "users", "--cgroup", "/tmp", "--side", "target", server=srv)
    assert r.returncode == 1 and r.stderr.startswith("syctl: cgroup: ") and "pins[" not in r.stderr, r.stderr


def test_events_seq_since_kind_and_hidden_evaluations(live):
    d, srv, legacy, target = live
    assert syctl("cutover", "carts", "25%", server=srv).returncode == 0
    assert syctl("cutover", "users", "start", server=srv).returncode == 0
    wait_for(lambda: "cutover.evaluated" in syctl("-o", "json", "events", "users", server=srv).stdout,
             timeout=15, what="an evaluation event")
    r = syctl("events", server=srv)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert re.match(r"^ +SEQ +TIME +MIGRATION +KIND +MESSAGE$", lines[0]), lines[0]
    seqs = [int(l.split()[0]) for l in lines[1:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert "cutover.evaluated" not in r.stdout  # noise in a table
    assert "cutover.evaluated" in syctl("events", "users", "-v", server=srv).stdout
    ev = syctl("events", "users", "--kind", "cutover.evaluated", server=srv).stdout.splitlines()[1:]
    assert ev and all(" cutover.evaluated " in l for l in ev)
    # a comma list, repeatable, prefixes
    kinds = lambda *a: {json.loads(l)["kind"] for l in syctl("-o", "json", "events", *a, server=srv).stdout.splitlines()}
    assert kinds("--kind", "migration.created,migration.ratio_changed") == {"migration.created",
                                                                           "migration.ratio_changed"}
    assert kinds("--kind", "migration.created", "--kind", "cutover.phase") == {"migration.created", "cutover.phase"}
    assert kinds("users", "--kind", "cutover.") >= {"cutover.phase", "cutover.evaluated"}
    assert all(k.startswith("cutover.") for k in kinds("users", "--kind", "cutover."))
    # --since: a duration back from now, or a seq
    assert len(syctl("events", "--since", "10m", server=srv).stdout.splitlines()) == len(lines)
    time.sleep(0.3)
    assert syctl("events", "carts", "--since", "200ms", server=srv).stdout.splitlines()[1:] == []
    assert syctl("events", "--since", str(seqs[-1]), server=srv).stdout.splitlines()[1:] == \
        [l for l in syctl("events", server=srv).stdout.splitlines()[1:] if int(l.split()[0]) > seqs[-1]]
    assert syctl("events", "--since", "soon", server=srv).returncode == 2


def test_verify_exit_codes(live):
    d, srv, legacy, target = live
    # no audit yet: a report of nothing is no clean report
    r = syctl("verify", "users", "--report", server=srv)
    assert r.returncode == 1 and "no audit has run" in r.stderr and "drift:" not in r.stdout
    assert json.loads(syctl("-o", "json", "verify", "users", "--report", server=srv).stdout)["state"] == "idle"
    legacy.client().set("same", "1")
    target.client().set("same", "1")
    r = syctl("--timeout", "30s", "verify", "users", server=srv)
    assert r.returncode == 0, r.stderr
    assert syctl("verify", "users", "--report", server=srv).returncode == 0
    legacy.client().set("only-legacy", "1")
    r = syctl("--timeout", "30s", "verify", "users", server=srv)
    assert r.returncode == 1 and "drift found in 1 key" in r.stderr, r.stderr
    r = syctl("verify", "users", "--report", server=srv)
    assert r.returncode == 1 and "only-legacy" in r.stdout


def test_backfill_progress_is_plain_lines_off_a_terminal(live):
    d, srv, legacy, target = live
    c = legacy.client()
    p = c.pipeline()
    for i in range(20000):
        p.set("k%d" % i, "v")
    p.execute()
    r = syctl("backfill", "users", "--rate", "20000", "--follow", server=srv)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout and "[#" not in r.stdout and "[." not in r.stdout
    assert r.stdout.splitlines()[-1].startswith("users: backfill done 100.0% 20000/20000")


def test_cutover_wait_exit_codes(daemon_factory, tmp_path):
    legacy = RedisServer(tmp_path / "legacy")
    target = RedisServer(tmp_path / "target")
    try:
        quick = {"steps": ["50%", "100%"], "bake": "300ms", "interval": "100ms", "min_samples": 0}
        d = daemon_factory(spec_yaml([
            {"name": "quick", "legacy": [legacy.addr], "target": [target.addr], "plan": quick},
            {"name": "slow", "legacy": ["127.0.0.1:3"], "target": ["127.0.0.1:4"],
             "plan": dict(quick, bake="10m")},
            {"name": "manual", "legacy": ["127.0.0.1:5"], "target": ["127.0.0.1:6"],
             "plan": dict(quick, advance="manual")},
        ]))
        srv = "unix://" + d.sock
        # completed: 0, the outcome on stdout, the progress (no terminal) as plain lines on stderr
        r = syctl("cutover", "quick", "start", "--wait", "--timeout", "30s", server=srv)
        assert r.returncode == 0 and r.stdout == "quick: completed\n", (r.stdout, r.stderr)
        assert "\r" not in r.stderr
        # past --timeout: 4
        t0 = time.time()
        r = syctl("cutover", "slow", "start", "--wait", "--timeout", "1s", server=srv)
        assert r.returncode == 4 and "still cutting-over" in r.stderr and time.time() - t0 < 10
        # paused while waited for: 1, with the reason
        assert syctl("cutover", "slow", "pause", server=srv).returncode == 0
        p = subprocess.Popen([os.path.join(OUT, "syctl"), "--server", srv, "cutover", "slow", "resume", "--wait"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: "— cutting-over" in syctl("get", "slow", server=srv).stdout, timeout=10, what="resumed")
        time.sleep(0.5)  # the waiter is polling
        assert syctl("cutover", "slow", "30%", server=srv).returncode == 0  # by hand: pauses the plan
        out, err = p.communicate(timeout=30)
        assert p.returncode == 1 and "slow: paused" in err and "by hand" in err, err
        # a manual plan: the wait ends when the step is baked, waiting for promote
        r = syctl("cutover", "manual", "start", "--wait", "--timeout", "30s", server=srv)
        assert r.returncode == 0 and "manual: step 1 of 2 baked" in r.stdout, (r.stdout, r.stderr)
        # -o json: the final Migration (a manual plan's last step waits for promote too)
        r = syctl("-o", "json", "cutover", "manual", "promote", "--wait", "--timeout", "30s", server=srv)
        c = json.loads(r.stdout)["cutover"]
        assert r.returncode == 0 and c["phaseName"] == "cutting-over" and c["step"] == 2 and c["ready"], c
        r = syctl("-o", "json", "cutover", "manual", "promote", "--wait", "--timeout", "30s", server=srv)
        assert r.returncode == 0 and json.loads(r.stdout)["cutover"]["phaseName"] == "completed", r.stdout
    finally:
        legacy.stop()
        target.stop()


# ---- -o json against docs/json.md --------------------------------------------------------


def documented_keys():
    """docs/json.md's ```keys block: {command: [required top-level keys]}."""
    doc = open(os.path.join(ROOT, "docs", "json.md")).read()
    block = re.search(r"^```keys\n(.*?)^```", doc, re.M | re.S).group(1)
    out = {}
    for line in block.splitlines():
        name, _, keys = line.partition(":")
        out[name.strip()] = keys.split()
    return out


def test_json_outputs_have_the_documented_keys(live):
    d, srv, legacy, target = live
    keys = documented_keys()
    assert set(keys) == {"status", "status.migrations[]", "get", "list", "nodes", "nodes[]", "delete", "watch",
                         "events", "health", "backfill", "verify", "version"}

    def check(name, doc):
        missing = [k for k in keys[name] if k not in doc]
        assert not missing, (name, missing, sorted(doc))

    def one(*args):
        r = syctl("-o", "json", *args, server=srv)
        assert r.returncode in (0, 1), (args, r.stderr)
        return json.loads(r.stdout)

    # status and status NAME: one shape; backfill and audit there though never run
    every, users = one("status"), one("status", "users")
    for doc in (every, users):
        check("status", doc)
        assert doc["apiVersion"] == "switchyard.v1"
        for m in doc["migrations"]:
            check("status.migrations[]", m)
            assert m["backfill"]["state"] == "idle" and m["audit"]["state"] == "idle"
    assert [m["name"] for m in every["migrations"]] == ["users", "carts"] or \
        sorted(m["name"] for m in every["migrations"]) == ["carts", "users"]
    assert [m["name"] for m in users["migrations"]] == ["users"]
    assert set(every) == set(users) and set(every["migrations"][0]) == set(users["migrations"][0])
    # enums in one style: the .proto's names
    assert users["migrations"][0]["migration"]["cutover"]["phase"] == "PHASE_PENDING"
    check("get", one("get", "users"))
    check("list", one("list"))
    nodes = one("nodes")
    check("nodes", nodes)
    for n in nodes["nodes"]:
        check("nodes[]", n)
    check("health", one("health"))
    check("backfill", one("backfill", "users", "--status"))
    check("verify", one("verify", "users", "--report"))
    v = one("version")
    check("version", v)
    assert v["client"] == v["server"] != ""
    for line in syctl("-o", "json", "events", server=srv).stdout.splitlines():
        check("events", json.loads(line))
    for line in syctl("-o", "json", "watch", "--count", "1", server=srv).stdout.splitlines():
        check("watch", json.loads(line))
    assert syctl("cutover", "carts", "0%", server=srv).returncode == 0
    r = syctl("-o", "json", "delete", "carts", server=srv)
    assert r.returncode == 0 and json.loads(r.stdout) == {}
