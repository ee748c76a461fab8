# SPDX-License-Identifier: Apache-2.0
"""The file rule (docs/control-plane.md, "Who owns what"): a reload or a restart with an
unchanged config file keeps a ratio and pins set through the API, byte for byte in
state.pb, and says nothing moved; a file that changes a field moves that field and the
reload reports the diff; syctl diff / apply --dry-run preview field by field and change
nothing; a refused reload is an event; every change event names its origin (api with
the caller, file:PATH, plan) and the operator's reason."""
import json
import os
import time

from grpc_util import channel, pb, stream
from sy import make_cgroup, remove_cgroup, spec_yaml, wait_for

EVENTS = "/switchyard.v1.Telemetry/Events"


def history(d, since=0):
    ev = pb("switchyard.v1.events")
    with channel("unix:" + d.sock) as ch:
        return list(stream(ch, EVENTS, ev.EventsRequest(since_seq=since), ev.Event, timeout=10))


def last_seq(d):
    return history(d)[-1].seq


def state(d):
    st = pb("switchyard.v1.state").State()
    st.ParseFromString(d.state_bytes())
    return st


def runtime_bytes(d, name="users"):
    """The runtime fields of a migration as stored: ratio and pins, serialized."""
    for m in state(d).migrations:
        if m.spec.name == name:
            pins = b"".join(p.SerializeToString() for p in m.spec.pins)
            states = b"".join(p.SerializeToString() for p in m.pins)
            return m.spec.ratio_bp, pins + b"|" + states
    raise AssertionError("no migration %s in state.pb" % name)


def get(d, name="users"):
    return json.loads(d.syctl("get", name, "-o", "json").stdout)


def kinds(events):
    return [(e.migration, e.kind) for e in events]


def start_users(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    a = make_cgroup(os.path.join(cgroup, "app-a"))
    b = make_cgroup(os.path.join(cgroup, "app-b"))
    m = {"name": "users", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%",
         "pins": [{"cgroup": a, "side": "legacy"}]}
    d = daemon_factory(spec_yaml([m]))
    return d, m, a, b


def hand_set(d, b):
    d.syctl("cutover", "users", "25%", "--reason", "canary for ticket 42")
    d.syctl("pin", "users", "--cgroup", b, "--side", "target", "--reason", "vip client")


def test_unchanged_reload_and_restart_keep_what_the_operator_set(redis_pair, daemon_factory, cgroup):
    d, m, a, b = start_users(redis_pair, daemon_factory, cgroup)
    try:
        hand_set(d, b)
        before = runtime_bytes(d)
        assert before[0] == 2500
        seq = last_seq(d)
        status = d.reload(spec_yaml([m]))  # the very same file
        assert "reload refused" not in status
        assert runtime_bytes(d) == before
        got = history(d, since=seq)
        assert kinds(got) == [("", "daemon.reloaded")], kinds(got)
        assert got[0].attributes["changed"] == "" and got[0].attributes["moves_clients"] == "false"
        assert "nothing changed" in got[0].message
        # syctl get says who set the ratio and the pins, and where the file disagrees
        out = d.syctl("get", "users").stdout
        assert "ratio:     25.00% (2500bp) (set by api: canary for ticket 42; the file says 0.00%)" in out, out
        assert "pin:       %s -> target (set by api: vip client; not in the file)" % b in out, out
        assert "pin:       %s -> legacy (set by file:%s)" % (a, d.config) in out, out
        own = get(d)["ownership"]
        assert own["ratioSetBy"] == "api" and own["ratioReason"] == "canary for ticket 42"
        assert own["fileDeclared"] is True and own.get("fileRatioBp", 0) == 0
        pins = {p["cgroup"]: p for p in own["pins"]}
        assert pins[b]["setBy"] == "api" and pins[b].get("fileSide", "") == ""
        assert pins[a]["setBy"] == "file:" + d.config and pins[a]["fileSide"] == "legacy"
        # a restart with the same --config: the same
        d.stop()
        d.start()
        assert runtime_bytes(d) == before
        assert not [e for e in history(d, since=seq) if e.kind in ("migration.ratio_changed",
                                                                   "migration.unpinned",
                                                                   "migration.pinned")]
    finally:
        remove_cgroup(a)
        remove_cgroup(b)


def test_a_file_that_changes_a_field_moves_that_field_only(redis_pair, daemon_factory, cgroup):
    d, m, a, b = start_users(redis_pair, daemon_factory, cgroup)
    try:
        hand_set(d, b)
        seq = last_seq(d)
        m["ratio"] = "50%"
        d.reload(spec_yaml([m]))
        st = {x.spec.name: x for x in state(d).migrations}["users"]
        assert st.spec.ratio_bp == 5000
        assert {(p.cgroup, p.side) for p in st.spec.pins} == {(a, 0), (b, 1)}  # the hand pin stays
        got = history(d, since=seq)
        assert kinds(got) == [("users", "migration.ratio_changed"), ("", "daemon.reloaded")], kinds(got)
        assert got[0].attributes["origin"] == "file:" + d.config
        assert got[0].attributes["old_ratio_bp"] == "2500" and got[0].attributes["new_ratio_bp"] == "5000"
        assert got[1].attributes["changed"] == "users: ratio_bp"
        assert got[1].attributes["moves_clients"] == "true"
        assert "reload: users: ratio_bp: 25.00% -> 50.00%" in d.read_log()
        # the file now pins b to legacy: that pin changed in the file, so it moves
        seq = got[-1].seq
        m["pins"] = [{"cgroup": a, "side": "legacy"}, {"cgroup": b, "side": "legacy"}]
        d.reload(spec_yaml([m]))
        got = history(d, since=seq)
        assert kinds(got) == [("users", "migration.pinned"), ("", "daemon.reloaded")], kinds(got)
        assert got[0].attributes["old_side"] == "target" and got[0].attributes["origin"] == "file:" + d.config
        assert got[1].attributes["changed"] == "users: pins[%s]" % b
        assert get(d)["spec"]["ratioBp"] == 5000
    finally:
        remove_cgroup(a)
        remove_cgroup(b)


def test_diff_and_dry_run_preview_and_change_nothing(redis_pair, daemon_factory, cgroup, tmp_path):
    d, m, a, b = start_users(redis_pair, daemon_factory, cgroup)
    try:
        hand_set(d, b)
        seq = last_seq(d)
        before = d.state_bytes()
        # the unchanged file: a reload would change nothing
        r = d.syctl("diff", "-f", d.config)
        assert r.stdout.strip() == "%s: no change" % d.config, r.stdout
        # the file edited, not yet reloaded
        m["ratio"] = "50%"
        m["sample_reads"] = 10
        d.write_config(spec_yaml([m]))
        r = d.syctl("diff", "-f", d.config)
        assert "updated users  (moves clients)" in r.stdout, r.stdout
        assert "ratio_bp                 25.00% -> 50.00%" in r.stdout, r.stdout
        assert "sample_reads             0 -> 10" in r.stdout, r.stdout
        assert "pins[" not in r.stdout  # the hand pin stays under the file rule
        doc = json.loads(d.syctl("diff", "-f", d.config, "-o", "json").stdout)
        fields = {f["field"]: f for f in doc["migrations"][0]["fields"]}
        assert set(fields) == {"ratio_bp", "sample_reads"} and doc["movesClients"] is True
        # through the API (syctl apply): every field as given, so the hand pin would go
        r = d.syctl("apply", "-f", d.config, "--dry-run")
        assert "ratio_bp                 25.00% -> 50.00%" in r.stdout, r.stdout
        assert "pins[%s]" % b in r.stdout and "target -> (none)" in r.stdout, r.stdout
        # an invalid file is refused by the preview like the real thing
        bad = tmp_path / "bad.yaml"
        bad.write_text(spec_yaml([dict(m, name="other")]))  # same legacy endpoint twice
        r = d.syctl("diff", "-f", str(bad), check=False)
        assert r.returncode == 1 and "legacy" in r.stderr, r.stderr
        assert d.state_bytes() == before
        assert history(d, since=seq) == []
        # and the reload does what diff said
        d.reload(spec_yaml([m]))
        assert runtime_bytes(d)[0] == 5000
    finally:
        remove_cgroup(a)
        remove_cgroup(b)


def test_refused_reload_is_an_event(redis_pair, daemon_factory, cgroup):
    d, m, a, b = start_users(redis_pair, daemon_factory, cgroup)
    try:
        seq = last_seq(d)
        before = d.state_bytes()
        status = d.reload("migrations:\n  - name: users\n    legacy: [\"nope\"]\n")
        assert "reload refused" in status
        got = history(d, since=seq)
        assert kinds(got) == [("", "daemon.reload_failed")], kinds(got)
        err = got[0].attributes["error"]
        assert err.startswith(d.config + ":3:"), err
        assert got[0].attributes["file"] == d.config
        assert d.state_bytes() == before
    finally:
        remove_cgroup(a)
        remove_cgroup(b)


def test_events_name_their_origin_and_reason(redis_pair, daemon_factory, cgroup):
    legacy, target = redis_pair
    b = make_cgroup(os.path.join(cgroup, "app-b"))
    m = {"name": "users", "legacy": [legacy.addr], "target": [target.addr], "client": "connection",
         "plan": {"steps": ["10%", "100%"], "bake": "300ms", "interval": "100ms", "min_samples": 0}}
    d = daemon_factory(spec_yaml([m]))
    try:
        created = [e for e in history(d) if e.kind == "migration.created"][0]
        assert created.attributes["origin"] == "file:" + d.config and "peer" not in created.attributes
        seq = last_seq(d)
        d.syctl("pin", "users", "--cgroup", b, "--side", "target", "--reason", "vip")
        d.syctl("cutover", "users", "start")
        wait_for(lambda: get(d)["spec"].get("ratioBp") == 10000, timeout=15, what="plan completed")
        got = [e for e in history(d, since=seq) if e.kind.startswith("migration.")]
        pin = got[0]
        assert pin.kind == "migration.pinned" and pin.attributes["origin"] == "api"
        assert pin.attributes["peer"].startswith("uid=0 pid=") and pin.attributes["reason"] == "vip"
        ratios = [e for e in got if e.kind == "migration.ratio_changed"]
        # the start is the operator's (through the API), the step to 100 % the plan's
        assert ratios[0].attributes["new_ratio_bp"] == "1000" and ratios[0].attributes["origin"] == "api"
        assert ratios[-1].attributes["new_ratio_bp"] == "10000" and ratios[-1].attributes["origin"] == "plan"
        assert "peer" not in ratios[-1].attributes
        assert get(d)["ownership"]["ratioSetBy"] == "plan"
        # syctl events shows who, in the table and in JSON
        table = d.syctl("events", "users").stdout
        assert "[by api uid=0 pid=" in table and ": vip]" in table, table
        assert "[by plan]" in table, table
        docs = [json.loads(l) for l in d.syctl("events", "users", "-o", "json").stdout.splitlines()]
        assert any(x["attributes"].get("reason") == "vip" for x in docs)
    finally:
        remove_cgroup(b)
