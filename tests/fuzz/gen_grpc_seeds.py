#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora of fuzz_grpc_server, fuzz_grpc_frame and fuzz_tls_record.

fuzz_grpc_server seeds are what a client sends on one connection (preface, SETTINGS,
HEADERS, DATA, ...), made with python3-h2 so the HPACK blocks are real, plus a few
hand-made malformed ones. They aim at the paths worth mutating from: every method of
the harness, gzip, deadlines, resets mid-stream, tiny windows with WINDOW_UPDATEs, many
streams, trailers from the client, CONTINUATION.

Run with Debian's python3 (python3-h2): /usr/bin/python3 tests/fuzz/gen_grpc_seeds.py
Existing seeds with the same names are overwritten; others are left alone.
"""
import gzip
import os
import struct

import h2.config
import h2.connection
import h2.settings

HERE = os.path.dirname(os.path.abspath(__file__))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def pb_string(s):
    """A HealthCheckRequest (field 1, string) — also the harness's request type."""
    b = s.encode() if isinstance(s, str) else s
    n, v = len(b), b""
    while True:
        c = n & 0x7F
        n >>= 7
        v += bytes([c | (0x80 if n else 0)])
        if not n:
            break
    return b"\x0a" + v + b if b else b""


def frame(msg, compressed=False, length=None):
    return struct.pack(">BI", 1 if compressed else 0, len(msg) if length is None else length) + msg


def conn(window=None):
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    c.initiate_connection()
    if window is not None:
        c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    return c


def headers(path, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers")] + list(extra)


def request(c, path, body, extra=(), end=True):
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, headers(path, extra))
    if body is not None:
        c.send_data(sid, body, end_stream=end)
    elif end:
        c.end_stream(sid)
    return sid


def server_seeds():
    s = {}

    c = conn()
    request(c, "/grpc.health.v1.Health/Check", frame(pb_string("")))
    s["check"] = c.data_to_send()

    c = conn()
    request(c, "/grpc.health.v1.Health/Watch", frame(pb_string("")))
    s["watch"] = c.data_to_send()

    c = conn()
    sid = request(c, "/grpc.health.v1.Health/Watch", frame(pb_string("")))
    c.reset_stream(sid)
    s["watch_then_rst"] = c.data_to_send()

    c = conn()
    request(c, "/fuzz.F/Echo", frame(gzip.compress(pb_string("hello hello hello")), True),
            [("grpc-encoding", "gzip"), ("grpc-accept-encoding", "identity,gzip")])
    s["echo_gzip"] = c.data_to_send()

    c = conn()
    request(c, "/fuzz.F/Echo", frame(pb_string("x")), [("grpc-timeout", "5m")])
    s["echo_timeout"] = c.data_to_send()

    c = conn(window=16)
    sid = request(c, "/fuzz.F/Big", frame(pb_string("3000")))
    for _ in range(8):
        c.increment_flow_control_window(64, sid)
        c.increment_flow_control_window(64)
    s["big_tiny_window"] = c.data_to_send()

    c = conn(window=0)
    sid = request(c, "/fuzz.F/Stream", frame(pb_string("4 100")))
    c.increment_flow_control_window(200, sid)
    c.reset_stream(sid, 8)
    s["stream_window0_rst"] = c.data_to_send()

    c = conn()
    request(c, "/fuzz.F/Stream", frame(pb_string("6 10")), [("grpc-accept-encoding", "gzip")])
    request(c, "/fuzz.F/Hold", frame(pb_string("")))
    request(c, "/fuzz.F/Flip", frame(pb_string("")))
    s["three_streams"] = c.data_to_send()

    c = conn()
    for i in range(12):
        request(c, "/fuzz.F/Echo", frame(pb_string("n%d" % i)))
    s["many_streams"] = c.data_to_send()

    c = conn()
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, headers("/fuzz.F/Echo"))
    c.send_data(sid, frame(pb_string("split"))[:3])
    c.send_data(sid, frame(pb_string("split"))[3:])
    c.send_headers(sid, [("x-trailer", "1")], end_stream=True)
    s["split_with_trailers"] = c.data_to_send()

    c = conn()
    request(c, "/fuzz.F/Echo", frame(b"", length=0x7FFFFFFF) + b"abc", end=False)
    s["two_gib_prefix"] = c.data_to_send()

    c = conn()
    request(c, "/fuzz.F/Echo", frame(gzip.compress(b"\0" * 200000), True), [("grpc-encoding", "gzip")])
    s["gzip_bomb"] = c.data_to_send()

    c = conn()
    request(c, "/fuzz.F/Echo", frame(pb_string("x")), [("grpc-encoding", "br")])
    request(c, "/fuzz.F/Echo", frame(pb_string("x")), [("grpc-timeout", "bad")])
    request(c, "/fuzz.F/Echo", frame(b"\x0a\xff\xff\xff\xff\x0f"))
    s["bad_requests"] = c.data_to_send()

    c = conn()
    c.ping(b"12345678")
    request(c, "/fuzz.F/Echo", frame(pb_string("p")))
    c.close_connection()
    s["ping_goaway"] = c.data_to_send()

    # A HEADERS block split into HEADERS + CONTINUATION by hand.
    c = conn()
    pre = c.data_to_send()
    block = c.encoder.encode(headers("/fuzz.F/Echo"))
    half = len(block) // 2
    hdr = struct.pack(">I", half)[1:] + b"\x01\x00" + struct.pack(">I", 1) + block[:half]  # END_STREAM, no END_HEADERS
    cont = struct.pack(">I", len(block) - half)[1:] + b"\x09\x04" + struct.pack(">I", 1) + block[half:]
    s["continuation"] = pre + hdr + cont

    s["garbage"] = b"GET / HTTP/1.1\r\n\r\n"
    s["bad_settings"] = PREFACE + b"\x00\x00\x05\x04\x00\x00\x00\x00\x00abcde"
    return s


def frame_seeds():
    """fuzz_grpc_frame input: byte 0 picks the split step (bits 0-2) and the limit (bits
    3-4: 0, 16, 4096, 1 MiB), the rest is a stream of framed messages (see the harness)."""
    body = frame(pb_string("hello")) + frame(b"") + frame(gzip.compress(b"a" * 300), True)
    return {
        "messages": b"\x13" + body,
        "one_byte_steps": b"\x10" + body,
        "gzip_bomb": b"\x17" + frame(gzip.compress(b"\0" * 100000), True),
        "over_limit": b"\x09" + frame(b"", length=0x7FFFFFFF),
        "percent": b"\x05" + "ratio 100% é\n".encode(),
        "timeout": b"\x02" + b"1500m",
    }


def tls_seeds(server):
    """fuzz_tls_record input: byte 0 odd = the rest goes through a real client's TLS
    (every fuzz_grpc_server seed, so the record layer's plaintext reaches the gRPC
    server), even = raw bytes on the wire after the handshake (record headers, lengths,
    alerts, a clear-text preface)."""
    s = {"enc-" + k: b"\x01" + v for k, v in server.items()}
    s.update({
        "raw-appdata-garbage": b"\x00" + bytes([0x17, 3, 3, 0, 32]) + b"\xaa" * 32,
        "raw-oversized-length": b"\x00" + bytes([0x17, 3, 3, 0xff, 0xff]) + b"\x00" * 64,
        "raw-alert-close": b"\x00" + bytes([0x15, 3, 3, 0, 2, 1, 0]),
        "raw-handshake-after": b"\x00" + bytes([0x16, 3, 3, 0, 4, 0, 0, 0, 0]),
        "raw-truncated-header": b"\x00" + bytes([0x17, 3]),
        "raw-plain-h2-preface": b"\x00" + PREFACE,
        "raw-ccs": b"\x00" + bytes([0x14, 3, 3, 0, 1, 1]),
    })
    return s


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)
    print("%s: %d seeds" % (name, len(seeds)))


if __name__ == "__main__":
    server = server_seeds()
    write("fuzz_grpc_server", server)
    write("fuzz_grpc_frame", frame_seeds())
    write("fuzz_tls_record", tls_seeds(server))
