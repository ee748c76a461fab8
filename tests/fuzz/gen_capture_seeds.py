#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of fuzz_capture: ring-buffer records as the kernel sends them
(one per command, fragments of a long one, batch records of several whole commands),
a few made wrong on purpose, in the harness's input format: per record a 10-byte
descriptor (flags, control, len, total, off as little-endian 16-bit numbers, cmd_seq,
name index | argc << 4) then its bytes (see tests/fuzz/fuzz_capture.c).

Run: /usr/bin/python3 tests/fuzz/gen_capture_seeds.py
Existing seeds with the same names are overwritten; others are left alone.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))
from sy_client import resp  # noqa: E402  (the system tests' RESP encoder)

FIRST, LAST, TRUNC, INLINE, ABORT, OUTSIDE, BATCH = 1, 2, 4, 8, 0x10, 0x20, 0x40
CTL_BATCH, CTL_READ = 1, 2
SET, MULTI, EXEC, SELECT, GET = 0, 1, 2, 3, 4


def body(*args):
    """What a per-command record carries: the arguments after the name."""
    return resp("X", *args)[len(b"*%d\r\n$1\r\nX\r\n" % (len(args) + 1)):]


def rec(data, flags=0, ctl=0, total=None, off=0, seq=1, name=SET, argc=0, sock=0):
    total = len(data) if total is None else total
    return struct.pack("<BBHHHBB", flags, ctl | sock << 2, len(data), total, off, seq, name | argc << 4) + data


def batch(cmds, seq=1, total=None, sock=0):
    data = b"".join(cmds)
    return rec(data, BATCH | FIRST | LAST, total=len(cmds) if total is None else total, seq=seq, sock=sock)


PIPE = [resp("SET", "k%d" % i, "v" * i) for i in range(8)]
SEEDS = {
    "batch_sets": batch(PIPE[:3], seq=10),
    "batch_txn": batch([resp("SELECT", 2), resp("MULTI"), resp("SET", "a", "1"), resp("INCR", "n"),
                        resp("EXEC")]),
    "batch_odd_bytes": batch([b"*3\rX$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n",
                              b"*3\r\n$3\r\nSETzz$1\r\nb\r\n$1\r\n2\r\n",
                              resp("MSET", *["k%d" % (i // 2) if i % 2 == 0 else "v" for i in range(10)])]),
    "batch_long_value": batch([resp("SET", "big", "x" * 3000), resp("DEL", "big")]),
    "per_command": rec(body("k", "v"), FIRST | LAST, argc=3) + rec(b"", FIRST | LAST, seq=2, name=MULTI, argc=1),
    "fragments": (rec(body("k", "x" * 200)[:100], FIRST, total=0, argc=3)
                  + rec(body("k", "x" * 200)[100:], LAST, off=100, total=len(body("k", "x" * 200)), argc=3)),
    "fragment_then_batch": (rec(body("k", "x" * 200)[:50], FIRST, total=0, argc=3)
                            + batch(PIPE[:2], seq=2) + rec(b"", LAST | ABORT, seq=1)),
    "two_sockets": batch(PIPE[:2], sock=1) + batch(PIPE[2:5], sock=2, seq=7) + rec(b"k1", FIRST | LAST, CTL_READ),
    "first_fragment_empty": rec(b"", FIRST, total=0, argc=3) + rec(body("k", "v"), LAST, total=14, argc=3),
    "batch_truncated": batch(PIPE[:3])[:-5],
    "batch_count_short": batch(PIPE[:2], total=3),
    "batch_inline": rec(b"SET a 1\r\n", BATCH | FIRST | LAST, total=1),
    "batch_empty": rec(b"", BATCH | FIRST | LAST, total=3),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_capture")
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
