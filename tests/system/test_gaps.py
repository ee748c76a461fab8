# SPDX-License-Identifier: Apache-2.0
"""Gaps in a stream the kernel observer follows: a segment dropped before the observer
saw it (here by an nftables rule on the test's own port; in production by the network,
or by a full backlog on a loaded host) comes again as a retransmission after later
segments were seen. The parser cannot place those later bytes, so it counts a gap,
leaves what the gap held uncounted, and picks the replies up again where the client's
next request found the stream: every count after that is exact again, and the gap
never shows as protocol errors or invented replies."""
import contextlib
import json
import os
import subprocess
import uuid

from sy import OUT
from test_observe import script, setup, sides  # noqa: F401 (setup is a fixture)

NFT = "/usr/sbin/nft"
BIG = 300000  # several loopback segments of 64 KiB: later ones are in flight when one drops


@contextlib.contextmanager
def dropping(hook, match, nth=1):
    """Drops the nth packet (from 0) that `match` selects at `hook` (input: before the
    receiving socket's filters; output: before the sender's), in a table of its own."""
    table = "sy_gap_%d_%s" % (os.getpid(), uuid.uuid4().hex[:8])

    def nft(*args):
        r = subprocess.run([NFT, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr

    nft("add", "table", "inet", table)
    try:
        nft("add", "chain", "inet", table, "c", "{ type filter hook %s priority 0; policy accept; }" % hook)
        nft("add", "rule", "inet", table, "c", *match.split(), "numgen", "inc", "mod", "1000000", "==", str(nth),
            "counter", "drop")
        yield lambda: json.loads(subprocess.run([NFT, "-j", "list", "table", "inet", table], capture_output=True,
                                                text=True, timeout=30).stdout)
    finally:
        nft("delete", "table", "inet", table)


def dropped(listing):
    return sum(x["rule"]["expr"][-2]["counter"]["packets"] for x in listing["nftables"] if "rule" in x)


def test_a_gap_in_a_big_reply_is_counted_and_the_replies_picked_up_again(setup):
    d, legacy, target, a, b = setup
    legacy.client().set("big", "x" * BIG)
    cmds = [["PING"]] * 5 + [["GET", "big"]] + [["SET", "k%d" % i, "v"] for i in range(50)] + \
           [["GET", "k%d" % i] for i in range(50)] + [["GET", "nokey"], ["INCR", "n"]]
    with dropping("input", "tcp sport %d meta length > 1000" % legacy.port) as listing:
        r = script({"cgroup": a, "addr": legacy.addr, "commands": cmds})
        assert dropped(listing()) == 1
    assert r["kinds"].count("-") == 0  # TCP delivered everything to the client
    s = sides(d)["legacy"]
    assert s.gaps == 1
    assert s.unparsed == 0 and s.errors == 0
    # the big reply began before the gap; every later reply is counted, none invented
    assert s.exchanges == len(cmds)
    assert s.bytes_in == r["got"]  # the gap's bytes count as bytes all the same
    assert (s.reads, s.writes) == (52, 51)


def test_replies_after_a_gap_in_a_pipeline_wait_for_the_next_request(setup):
    """A pipelined batch whose answers are partly lost: the rest of the batch's answers
    cannot be placed, so they are not counted; the commands sent after the batch was
    answered are, exactly."""
    d, legacy, target, a, b = setup
    legacy.client().set("big", "x" * BIG)
    batch = [["PING"]] + [["GET", "big"]] + [["PING"]] * 20
    then = [["PING"]] * 10 + [["GET", "nokey"]]
    with dropping("input", "tcp sport %d meta length > 1000" % legacy.port) as listing:
        r = script({"cgroup": a, "addr": legacy.addr, "pipeline": True, "commands": batch, "then": then})
        assert dropped(listing()) == 1
    assert r["kinds"].count("-") == 0
    s = sides(d)["legacy"]
    assert s.gaps == 1 and s.unparsed == 0 and s.errors == 0
    # PING and GET big began before the gap, the 20 PINGs after it are lost with it
    assert s.exchanges == 2 + len(then)
    assert s.bytes_in == r["got"]
    out = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "-o", "json", "get", "obs"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    leg = [x for x in json.loads(out.stdout)["sides"] if x["side"] == "legacy"][0]
    assert int(leg["gaps"]) == 1
    table = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "get", "obs"],
                           capture_output=True, text=True, timeout=30)
    assert "GAPS" in table.stdout, table.stdout


def test_a_request_segment_dropped_on_its_way_out_is_no_gap(setup):
    """A client's segment dropped on the way out (an output rule) is reported to TCP at
    once, and TCP sends it again before anything after it: the observer, which sits
    after the output rules, sees the request stream in order, so every command counts."""
    d, legacy, target, a, b = setup
    value = "y" * 100000  # two segments (the job travels on a command line: 128 KiB at most)
    cmds = [["SET", "big", value]] + [["SET", "k%d" % i, "v"] for i in range(20)]
    with dropping("output", "tcp dport %d meta length > 1000" % legacy.port, nth=0) as listing:
        r = script({"cgroup": a, "addr": legacy.addr, "commands": cmds})
        assert dropped(listing()) == 1
    assert r["kinds"].count("-") == 0
    assert legacy.client().get("big") == value.encode()
    s = sides(d)["legacy"]
    assert s.gaps == 0 and s.unparsed == 0
    assert (s.reads, s.writes, s.others) == (0, 21, 0)
    assert s.bytes_out == r["sent"] and s.exchanges == len(cmds)
