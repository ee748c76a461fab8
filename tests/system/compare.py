"""A full, type-aware compare of two redis-servers: every key's type, value (sets and
hashes order-free) and TTL (within 1 s), with key-prefix rewriting applied. The
independent check the mirror and the audit are held to: plain python3-redis reads,
nothing shared with the agent's code."""
import time

import redis


def snapshot(port, db=0):
    """Every key of a server with a type-aware value and its TTL (seconds, -1 none)."""
    r = redis.Redis(port=port, db=db)
    out = {}
    for k in r.scan_iter(count=1000):
        t = r.type(k).decode()
        if t == "string":
            v = r.get(k)
        elif t == "hash":
            v = r.hgetall(k)
        elif t == "list":
            v = r.lrange(k, 0, -1)
        elif t == "set":
            v = r.smembers(k)
        elif t == "zset":
            v = r.zrange(k, 0, -1, withscores=True)
        elif t == "stream":
            v = r.xrange(k)
        else:
            continue  # gone between SCAN and TYPE
        ms = r.pttl(k)
        # as an expiry time, so that reading one server after the other does not skew it
        out[k] = (t, v, -1 if ms < 0 else time.monotonic() + ms / 1000.0)
    return out


def differences(a_port, b_port, rewrite=None, db=0):
    a, b = snapshot(a_port, db), snapshot(b_port, db)
    mapped = {}
    for k, v in a.items():
        for old, new in (rewrite or {}).items():
            if k.startswith(old.encode()):
                k = new.encode() + k[len(old):]
                break
        mapped[k] = v
    diffs = []
    for k in set(mapped) | set(b):
        if k not in b or k not in mapped:
            diffs.append((k, "missing" if k not in b else "extra"))
            continue
        (ta, va, xa), (tb, vb, xb) = mapped[k], b[k]
        if ta != tb or va != vb:
            diffs.append((k, "value"))
        elif (xa < 0) != (xb < 0) or abs(xa - xb) > 1:
            diffs.append((k, "ttl"))
    return len(mapped), diffs
