# SPDX-License-Identifier: Apache-2.0
"""A full, type-aware compare of two redis-servers: every key's type, value (sets and
hashes order-free, zset scores as floats) and TTL, with key-prefix rewriting applied.
The independent check the mirror, the audit and shadow writes are held to: plain
python3-redis reads, nothing shared with the agent's code.

    res = compare("127.0.0.1:6379", "127.0.0.1:6380", rewrite={"user:": "u2:"})
    res.keys_compared, res.diffs      # diffs: [(key, kind, detail)], kind in KINDS
    res = wait_converged(a, b, timeout=30, rewrite=...)   # last result

Keys in results are text (UTF-8, undecodable bytes as \\xNN). A diff names the a-side
key, except an "extra" one, which names the b-side key. Details are short reasons:
values are never printed, only lengths, counts and a few clipped field names.
"""
import re
import time
from collections import Counter

import redis

KINDS = ("missing", "extra", "type", "value", "ttl")
TYPES = ("string", "hash", "list", "set", "zset", "stream")
BATCH = 500


# ---------------------------------------------------------------- addresses, names

def _client(addr, db=0):
    """addr: "host:port", "[v6]:port", a port number, or anything with .port
    (sy.RedisServer)."""
    if hasattr(addr, "port"):
        host, port = "127.0.0.1", addr.port
    elif isinstance(addr, int):
        host, port = "127.0.0.1", addr
    elif isinstance(addr, (tuple, list)):
        host, port = addr
    else:
        host, port = str(addr).rsplit(":", 1)
        if host.startswith("["):
            host = host[1:-1]
    return redis.Redis(host=host, port=int(port), db=db, socket_timeout=30)


def _b(s):
    return s if isinstance(s, bytes) else str(s).encode()


def _name(k):
    return k.decode("utf-8", "backslashreplace")


def _clip(x, n=24):
    s = _name(x) if isinstance(x, bytes) else str(x)
    return s if len(s) <= n else s[:n] + "..."


class Rewrite:
    """Key-prefix mappings a -> b; the longest matching a-prefix wins."""

    def __init__(self, rules):
        self.rules = sorted(((_b(o), _b(n)) for o, n in (rules or {}).items()),
                            key=lambda r: -len(r[0]))

    def fwd(self, k):
        for old, new in self.rules:
            if k.startswith(old):
                return new + k[len(old):]
        return k

    def back(self, bk):
        """Every a-side name that maps onto b-side name bk."""
        out = []
        for old, new in self.rules:
            if bk.startswith(new):
                cand = old + bk[len(new):]
                if self.fwd(cand) == bk:
                    out.append(cand)
        if self.fwd(bk) == bk:
            out.append(bk)
        return out


def glob_regex(pattern):
    """Redis's glob (stringmatchlen: * ? [abc] [^a-z] and \\ escapes) as a bytes regex."""
    p, i, out = _b(pattern), 0, [b"\\A"]
    while i < len(p):
        c = p[i:i + 1]
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\" and i + 1 < len(p):
            i += 1
            out.append(re.escape(p[i:i + 1]))
        elif c == b"[":
            j, cls = i + 1, [b"["]
            if p[j:j + 1] == b"^":
                cls.append(b"^")
                j += 1
            while j < len(p) and p[j:j + 1] != b"]":
                if p[j:j + 1] == b"\\" and j + 1 < len(p):
                    j += 1
                    cls.append(re.escape(p[j:j + 1]))
                elif p[j + 1:j + 2] == b"-" and j + 2 < len(p) and p[j + 2:j + 3] != b"]":
                    lo, hi = sorted((p[j:j + 1], p[j + 2:j + 3]))
                    cls.append(re.escape(lo) + b"-" + re.escape(hi))
                    j += 2
                else:
                    cls.append(re.escape(p[j:j + 1]))
                j += 1
            neg = cls[1:2] == [b"^"]
            if len(cls) == (2 if neg else 1):  # an empty class
                out.append(b"[\\s\\S]" if neg else b"[^\\s\\S]")
            else:
                out.append(b"".join(cls) + b"]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    out.append(b"\\Z")
    return re.compile(b"".join(out), re.S)


# ---------------------------------------------------------------- reading one side

def _read(pipe_fn, keys, types):
    """Value and PTTL of each key, by its type, in one pipeline."""
    p = pipe_fn()
    for k, t in zip(keys, types):
        if t == "string":
            p.get(k)
        elif t == "hash":
            p.hgetall(k)
        elif t == "list":
            p.lrange(k, 0, -1)
        elif t == "set":
            p.smembers(k)
        elif t == "zset":
            p.zrange(k, 0, -1, withscores=True)
        elif t == "stream":
            p.xrange(k)
        else:
            p.exists(k)
        p.pttl(k)
    return p.execute(raise_on_error=False)


def snapshot(addr, db=0, match=None, keep=None):
    """{key: (type, value, expiry)} for every key (expiry: monotonic seconds when the
    key expires, or None when persistent). match: a SCAN MATCH pattern; keep: a
    predicate on the key, applied client-side. Keys gone between SCAN and read are
    left out; a key whose type changed under the read is read again."""
    r = _client(addr, db)
    try:
        keys = [k for k in r.scan_iter(match=match, count=1000) if keep is None or keep(k)]
        keys = list(dict.fromkeys(keys))  # SCAN may return a key twice
        out = {}
        for i in range(0, len(keys), BATCH):
            todo = keys[i:i + BATCH]
            for _ in range(5):
                p = r.pipeline(transaction=False)
                for k in todo:
                    p.type(k)
                types = [_name(t) for t in p.execute()]
                res = _read(lambda: r.pipeline(transaction=False), todo, types)
                now = time.monotonic()
                again = []
                for j, (k, t) in enumerate(zip(todo, types)):
                    v, ms = res[2 * j], res[2 * j + 1]
                    if t not in TYPES or isinstance(ms, Exception) or ms == -2:
                        continue  # gone (or an unknown type: modules are not compared)
                    if isinstance(v, Exception):
                        again.append(k)  # WRONGTYPE: replaced under us
                        continue
                    if v is None or (t != "string" and not v):
                        continue  # deleted or expired between TYPE and read
                    out[k] = (t, v, None if ms < 0 else now + ms / 1000.0)
                todo = again
                if not todo:
                    break
        return out
    finally:
        r.close()


# ---------------------------------------------------------------- diffing values

def _seq_diff(what, va, vb):
    if len(va) != len(vb):
        return "%s length %d on a, %d on b" % (what, len(va), len(vb))
    for i, (x, y) in enumerate(zip(va, vb)):
        if x != y:
            return "%s differ first at index %d" % (what, i)
    return None


def _keyed_diff(what, da, db, eq=lambda x, y: x == y):
    only_a = [k for k in da if k not in db]
    only_b = [k for k in db if k not in da]
    changed = [k for k in da if k in db and not eq(da[k], db[k])]
    if not (only_a or only_b or changed):
        return None
    parts = []
    for label, ks in (("only on a", only_a), ("only on b", only_b), ("differ", changed)):
        if ks:
            ks = sorted(ks)
            parts.append("%d %s %s (%s%s)" % (len(ks), what, label,
                                             ", ".join(_clip(k) for k in ks[:3]),
                                             ", ..." if len(ks) > 3 else ""))
    return "; ".join(parts)


def value_diff(t, va, vb):
    """None when equal, else a short reason (no values)."""
    if t == "string":
        if va == vb:
            return None
        if len(va) != len(vb):
            return "length %d on a, %d on b" % (len(va), len(vb))
        i = next(i for i in range(len(va)) if va[i] != vb[i])
        return "same length %d, differ first at byte %d" % (len(va), i)
    if t == "hash":
        return _keyed_diff("fields", va, vb)
    if t == "list":
        return _seq_diff("elements", va, vb)
    if t == "set":
        return _keyed_diff("members", dict.fromkeys(va), dict.fromkeys(vb))
    if t == "zset":
        sa = {m: float(s) for m, s in va}
        sb = {m: float(s) for m, s in vb}
        return _keyed_diff("members", sa, sb, eq=lambda x, y: x == y)
    if t == "stream":
        ia = [e[0] for e in va]
        ib = [e[0] for e in vb]
        d = _seq_diff("entry ids", ia, ib)
        if d:
            return d
        for (eid, fa), (_, fb) in zip(va, vb):
            if fa != fb:
                return "entry %s fields differ" % _name(eid)
        return None
    return None if va == vb else "differ"


def _ttl_text(x, now):
    return "persistent" if x is None else "expires in %.1fs" % (x - now)


# ---------------------------------------------------------------- compare

class Result:
    """keys_compared: distinct keys looked at (union of both sides, a-side keys counted
    under their rewritten name); diffs: [(key, kind, detail)]. Also indexable
    like a dict: res["diffs"]."""

    def __init__(self, keys_compared, diffs, a_keys, b_keys):
        self.keys_compared = keys_compared
        self.diffs = diffs
        self.a_keys = a_keys
        self.b_keys = b_keys

    def __getitem__(self, name):
        return getattr(self, name)

    def as_dict(self):
        return {"keys_compared": self.keys_compared, "diffs": list(self.diffs),
                "a_keys": self.a_keys, "b_keys": self.b_keys}

    @property
    def ok(self):
        return not self.diffs

    def kinds(self):
        return Counter(kind for _, kind, _ in self.diffs)

    def by_key(self):
        return {k: (kind, detail) for k, kind, detail in self.diffs}

    def summary(self, limit=10):
        head = "%d keys compared (a %d, b %d), %d diffs %s" % (
            self.keys_compared, self.a_keys, self.b_keys, len(self.diffs), dict(self.kinds()))
        lines = ["  %s %s: %s" % (kind, k, detail) for k, kind, detail in self.diffs[:limit]]
        if len(self.diffs) > limit:
            lines.append("  ... %d more" % (len(self.diffs) - limit))
        return "\n".join([head] + lines)

    __str__ = summary

    def __repr__(self):
        return "<compare %d keys, %d diffs %s>" % (self.keys_compared, len(self.diffs),
                                                  dict(self.kinds()))


def compare(a_addr, b_addr, rewrite=None, ttl_tolerance=1.0, match=None, db=0):
    """Compares every key of a (mapped through `rewrite`) with b. match: a Redis glob
    naming the a-side keys to compare; b-side keys are in scope when their a-side
    name (rewrite reversed) matches it."""
    rw = Rewrite(rewrite)
    a = snapshot(a_addr, db, match=match)
    if match is None:
        b = snapshot(b_addr, db)
    elif not rw.rules:
        b = snapshot(b_addr, db, match=match)
    else:
        rx = glob_regex(match)
        b = snapshot(b_addr, db, keep=lambda bk: any(rx.match(x) for x in rw.back(bk)))
    mapped, aname = {}, {}
    for k, v in a.items():
        bk = rw.fwd(k)
        mapped[bk], aname[bk] = v, k
    now = time.monotonic()
    diffs = []
    for bk in sorted(set(mapped) | set(b)):
        key = aname.get(bk, bk)
        shown = _name(key)
        where = "" if bk == key else " (as %s on b)" % _name(bk)
        if bk not in b:
            diffs.append((shown, "missing", "%s on a, absent on b%s" % (mapped[bk][0], where)))
            continue
        if bk not in mapped:
            diffs.append((shown, "extra", "%s on b, absent on a" % b[bk][0]))
            continue
        (ta, va, xa), (tb, vb, xb) = mapped[bk], b[bk]
        if ta != tb:
            diffs.append((shown, "type", "%s on a, %s on b%s" % (ta, tb, where)))
            continue
        d = value_diff(ta, va, vb)
        if d:
            diffs.append((shown, "value", "%s: %s%s" % (ta, d, where)))
            continue
        if (xa is None) != (xb is None) or (xa is not None and abs(xa - xb) > ttl_tolerance):
            diffs.append((shown, "ttl", "%s on a, %s on b%s" % (_ttl_text(xa, now),
                                                              _ttl_text(xb, now), where)))
    return Result(len(set(mapped) | set(b)), diffs, len(a), len(b))


def wait_converged(a, b, timeout, interval=0.3, **kw):
    """Re-runs compare(a, b, **kw) until it finds no diffs or `timeout` seconds have
    passed; returns the last result (check .diffs)."""
    end = time.monotonic() + timeout
    while True:
        res = compare(a, b, **kw)
        if not res.diffs or time.monotonic() >= end:
            return res
        time.sleep(interval)


def assert_same(a, b, timeout=0, **kw):
    """wait_converged, then fail with a short summary when diffs remain."""
    res = wait_converged(a, b, timeout, **kw)
    assert not res.diffs, res.summary()
    return res


def differences(a_port, b_port, rewrite=None, db=0):
    """The older form: (keys compared, [(key, kind)])."""
    res = compare(a_port, b_port, rewrite=rewrite, db=db)
    return res.keys_compared, [(k, kind) for k, kind, _ in res.diffs]
