#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Redis workloads for system tests, each client its own process (Debian's python3 and
python3-redis), moved into its cgroup (pid written to CGROUP/cgroup.procs) before it
connects, so the kernel sees it as that cgroup's client. pytest itself never changes
cgroup; cgroup None means "stay where the parent is".

    run_mixed(addr, cgroups, seconds, ...)      -> aggregated dict (see _aggregate)
    run_conflict([(addr, cgroup), ...], keys=100, seconds=10)   -> the same shape
    incr_counters(addr, cgroup, n_keys, times)  -> {"cnt:N": expected value}

Keys name their type ("w:str:17", "w:hash:3", ...) so no command ever meets the wrong
type: any error a client reports came from the path between it and the server.
Each client uses one connection (reopened after a connection error, which is counted);
no command is ever retried, so a write is applied at most once.
"""
import json
import math
import os
import random
import subprocess
import sys
import time

PYTHON = "/usr/bin/python3"
HERE = os.path.abspath(__file__)
TYPES = ("str", "int", "float", "hash", "list", "set", "zset")
MAX_MESSAGES = 5
HIST_BASE = 1.05  # latency histogram buckets: powers of 1.05 microseconds


# ================================================================ parent side

def _spawn(job):
    return subprocess.Popen([PYTHON, HERE, "--child", json.dumps(job)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _collect(procs, timeout):
    """Waits for every child; returns their JSON results. A child that crashes or
    overruns fails the caller (the others are killed first)."""
    end = time.monotonic() + timeout
    results, failure = [], None
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            failure = failure or "workload child %d overran %.0fs: %s" % (p.pid, timeout, err[-2000:])
            continue
        if p.returncode != 0 or not out.strip():
            failure = failure or "workload child %d exited %d: %s" % (p.pid, p.returncode, err[-2000:])
            continue
        results.append(json.loads(out.strip().splitlines()[-1]))
    if failure:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        raise AssertionError(failure)
    return results


def _percentile_ms(hist, q):
    total = sum(hist.values())
    if not total:
        return 0.0
    need, seen = q * total, 0
    for b in sorted(hist, key=int):
        seen += hist[b]
        if seen >= need:
            return HIST_BASE ** (int(b) + 0.5) / 1000.0
    return 0.0


def _aggregate(results, seconds):
    """{"clients": n, "seconds", "ops": {CMD: n}, "total_ops", "ops_per_sec",
    "round_trips", "pipelines", "transactions", "big_values", "errors",
    "error_messages" (first few), "p50_ms", "p99_ms", "max_ms" (merged histogram),
    "per_client": [each child's report without its histogram]}"""
    agg = {"clients": len(results), "seconds": seconds, "ops": {}, "total_ops": 0,
           "round_trips": 0, "pipelines": 0, "transactions": 0, "big_values": 0,
           "errors": 0, "error_messages": [], "per_client": []}
    hist = {}
    for r in results:
        for k, n in r["ops"].items():
            agg["ops"][k] = agg["ops"].get(k, 0) + n
        for k in ("total_ops", "round_trips", "pipelines", "transactions", "big_values", "errors"):
            agg[k] += r.get(k, 0)
        for m in r["error_messages"]:
            if len(agg["error_messages"]) < 2 * MAX_MESSAGES:
                agg["error_messages"].append(m)
        for b, n in r.pop("hist").items():
            hist[b] = hist.get(b, 0) + n
        agg["per_client"].append(r)
    agg["ops_per_sec"] = agg["total_ops"] / seconds if seconds else 0.0
    agg["p50_ms"] = _percentile_ms(hist, 0.50)
    agg["p99_ms"] = _percentile_ms(hist, 0.99)
    agg["max_ms"] = max([r["max_ms"] for r in results] or [0.0])
    return agg


def run_mixed(addr, cgroups, seconds, clients_per_cgroup=1, seed=1, key_space=64,
              big_value_bytes=200 * 1024, pipelines=True, multi=True, prefix="w:",
              big_ratio=0.003, ttl_range=(30, 600)):
    """Runs clients_per_cgroup clients in each cgroup of `cgroups` (None: the current
    one) against addr ("host:port" or "[v6]:port") for `seconds`, all starting
    together. Each does a random mix of writes and reads on keys
    PREFIX TYPE ":" N (N < key_space per type), single commands plus (when asked)
    pipelines of 5-50 commands and MULTI/EXEC of 2-10; about big_ratio of the string
    and hash writes carry a value of big_value_bytes + up to 4 KiB. Client i's
    randomness is seeded from (seed, i). Returns _aggregate's dict."""
    start_at = time.time() + 0.5  # every child imports redis before the common start
    jobs, i = [], 0
    for cg in cgroups:
        for _ in range(clients_per_cgroup):
            jobs.append({"mode": "mixed", "client": i, "addr": addr, "cgroup": cg,
                         "seconds": seconds, "seed": [seed, i], "key_space": key_space,
                         "big": big_value_bytes, "big_ratio": big_ratio,
                         "pipelines": pipelines, "multi": multi, "prefix": prefix,
                         "ttl": list(ttl_range), "start_at": start_at})
            i += 1
    return _aggregate(_collect([_spawn(j) for j in jobs], seconds + 60), seconds)


def run_conflict(addr_cgroups, keys=100, seconds=10, prefix="c:", fields=4, seed=1):
    """One client per (addr, cgroup) pair (a bare addr means cgroup None), all writing
    the same keys as fast as they can: SET PREFIX"str:"N and HSET PREFIX"hash:"N
    f0..f{fields-1}, N < keys, values "client:seq". Returns _aggregate's dict."""
    start_at = time.time() + 0.5
    jobs = []
    for i, ac in enumerate(addr_cgroups):
        addr, cg = (ac, None) if isinstance(ac, str) else ac
        jobs.append({"mode": "conflict", "client": i, "addr": addr, "cgroup": cg,
                     "seconds": seconds, "seed": [seed, i], "keys": keys, "prefix": prefix,
                     "fields": fields, "start_at": start_at})
    return _aggregate(_collect([_spawn(j) for j in jobs], seconds + 60), seconds)


def incr_counters(addr, cgroup, n_keys, times, prefix="cnt:", pipeline=1, timeout=300):
    """INCRs PREFIX N (N < n_keys) exactly `times` each, round-robin over the keys,
    from one client in `cgroup`, in pipelines of `pipeline` commands (1: one at a
    time). Returns {key: expected value}: the value before the first INCR (taken from
    its reply) plus `times`, i.e. `times` for new counters. Any error fails it: an
    INCR that failed may or may not have been applied."""
    job = {"mode": "incr", "addr": addr, "cgroup": cgroup, "n_keys": n_keys, "times": times,
           "prefix": prefix, "pipeline": max(1, int(pipeline))}
    r = _collect([_spawn(job)], timeout)[0]
    if r["errors"]:
        raise AssertionError("incr_counters: %d errors: %s" % (r["errors"], r["error_messages"]))
    return r["expected"]


# ================================================================ child side

def _join(cgroup):
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


def _connect(addr):
    import redis
    host, port = addr.rsplit(":", 1)
    if host.startswith("["):
        host = host[1:-1]
    return redis.Redis(host=host, port=int(port), socket_timeout=30, single_connection_client=True)


class Stats:
    def __init__(self, client):
        self.client = client
        self.ops = {}
        self.round_trips = self.pipelines = self.transactions = self.big_values = 0
        self.errors = 0
        self.messages = []
        self.lat = []

    def op(self, name):
        self.ops[name] = self.ops.get(name, 0) + 1

    def error(self, e):
        self.errors += 1
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append("%s: %s" % (type(e).__name__, str(e)[:200]))

    def report(self, elapsed):
        lat = sorted(self.lat)

        def pct(q):
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000.0 if lat else 0.0
        hist = {}
        for s in lat:
            b = str(int(math.log(max(s * 1e6, 1.0), HIST_BASE)))
            hist[b] = hist.get(b, 0) + 1
        return {"client": self.client, "ops": self.ops, "total_ops": sum(self.ops.values()),
                "round_trips": self.round_trips, "pipelines": self.pipelines,
                "transactions": self.transactions, "big_values": self.big_values,
                "errors": self.errors, "error_messages": self.messages,
                "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": lat[-1] * 1000.0 if lat else 0.0,
                "seconds": elapsed, "hist": hist}


class Mix:
    """Draws commands: (name, args) with keys typed by name."""

    def __init__(self, job):
        self.rng = random.Random("%s/%s" % tuple(job["seed"]))
        self.n = max(1, job["key_space"])
        self.prefix = job["prefix"]
        self.big = job["big"]
        self.big_ratio = job["big_ratio"]
        self.ttl = job["ttl"]
        self.pool = self.rng.randbytes(max(1 << 20, self.big + 8192))
        self.seq = 0
        self.stats = None
        w = [("SET", 10), ("SETEX", 3), ("DEL", 2), ("INCR", 5), ("INCRBYFLOAT", 3),
             ("APPEND", 3), ("HSET", 6), ("HDEL", 2), ("LPUSH", 4), ("RPOP", 4),
             ("SADD", 4), ("SREM", 2), ("SPOP", 1), ("ZADD", 4), ("ZINCRBY", 2),
             ("EXPIRE", 2), ("PERSIST", 2), ("MSET", 2), ("GETDEL", 1), ("GET", 5),
             ("HGETALL", 3)]
        self.names = [n for n, _ in w]
        self.weights = [x for _, x in w]

    def key(self, t):
        return "%s%s:%d" % (self.prefix, t, self.rng.randrange(self.n))

    def value(self, bigok=True):
        self.seq += 1
        r = self.rng
        if bigok and r.random() < self.big_ratio:
            n = self.big + r.randrange(1, 4096)
        elif r.random() < 0.3:  # binary-safe: CR, LF, NUL, '$', '*' inside values
            n = r.randrange(0, 64)
        else:
            return "v%d.%d" % (self.stats.client, self.seq)
        off = r.randrange(0, len(self.pool) - n + 1)
        if n > self.big:
            self.stats.big_values += 1
        return self.pool[off:off + n]

    def draw(self):
        r = self.rng
        name = r.choices(self.names, self.weights)[0]
        if name == "SET":
            return name, (self.key("str"), self.value())
        if name == "SETEX":
            return name, (self.key("str"), r.randint(*self.ttl), self.value(False))
        if name == "DEL":
            return name, (self.key(r.choice(TYPES)),)
        if name == "INCR":
            return name, (self.key("int"),)
        if name == "INCRBYFLOAT":
            return name, (self.key("float"), "%.3f" % r.uniform(-100, 100))
        if name == "APPEND":
            return name, (self.key("str"), self.value(False))
        if name == "HSET":
            k, pairs = self.key("hash"), []
            for _ in range(r.randint(1, 3)):
                pairs += ["f%d" % r.randrange(20), self.value()]
            return name, (k, *pairs)
        if name == "HDEL":
            return name, (self.key("hash"), *("f%d" % r.randrange(20) for _ in range(r.randint(1, 2))))
        if name == "LPUSH":
            return name, (self.key("list"), *(self.value(False) for _ in range(r.randint(1, 3))))
        if name == "RPOP":
            return name, (self.key("list"),)
        if name == "SADD":
            return name, (self.key("set"), *("m%d" % r.randrange(50) for _ in range(r.randint(1, 3))))
        if name == "SREM":
            return name, (self.key("set"), "m%d" % r.randrange(50))
        if name == "SPOP":
            return name, (self.key("set"),)
        if name == "ZADD":
            return name, (self.key("zset"), "%.2f" % r.uniform(-1000, 1000), "m%d" % r.randrange(50))
        if name == "ZINCRBY":
            return name, (self.key("zset"), "%.2f" % r.uniform(-10, 10), "m%d" % r.randrange(50))
        if name == "EXPIRE":
            return name, (self.key(r.choice(TYPES)), r.randint(*self.ttl))
        if name == "PERSIST":
            return name, (self.key(r.choice(TYPES)),)
        if name == "MSET":
            pairs = []
            for _ in range(r.randint(2, 5)):
                pairs += [self.key("str"), self.value(False)]
            return name, tuple(pairs)
        if name == "GETDEL":
            return name, (self.key("str"),)
        if name == "GET":
            return name, (self.key("str"),)
        return "HGETALL", (self.key("hash"),)


def _timed(stats, fn):
    t0 = time.monotonic()
    try:
        return fn()
    finally:
        stats.lat.append(time.monotonic() - t0)
        stats.round_trips += 1


def _run_batch(r, stats, cmds, transaction):
    p = r.pipeline(transaction=transaction)
    for name, args in cmds:
        p.execute_command(name, *args)
        stats.op(name)
    try:
        replies = _timed(stats, lambda: p.execute(raise_on_error=False))
    except Exception as e:  # the whole batch failed (connection, EXECABORT)
        stats.error(e)
        return False
    for x in replies:
        if isinstance(x, Exception):
            stats.error(x)
    return True


def _loop(job, stats, step):
    """Calls step() until job's end time; a failed step counts one error."""
    delay = job.get("start_at", 0) - time.time()
    if delay > 0:
        time.sleep(delay)
    t0 = time.monotonic()
    end = t0 + job["seconds"]
    while time.monotonic() < end:
        try:
            step()
        except Exception as e:
            stats.error(e)
            time.sleep(0.02)  # connection trouble: do not spin; the next call reconnects
    return time.monotonic() - t0


def child_mixed(job):
    stats = Stats(job["client"])
    mix = Mix(job)
    mix.stats = stats
    r = _connect(job["addr"])

    def step():
        x = mix.rng.random()
        if job["pipelines"] and x < 0.05:
            stats.pipelines += 1
            _run_batch(r, stats, [mix.draw() for _ in range(mix.rng.randint(5, 50))], False)
        elif job["multi"] and x < 0.08:
            stats.transactions += 1
            _run_batch(r, stats, [mix.draw() for _ in range(mix.rng.randint(2, 10))], True)
        else:
            name, args = mix.draw()
            stats.op(name)
            _timed(stats, lambda: r.execute_command(name, *args))

    elapsed = _loop(job, stats, step)
    r.close()
    return stats.report(elapsed)


def child_conflict(job):
    stats = Stats(job["client"])
    rng = random.Random("%s/%s" % tuple(job["seed"]))
    r = _connect(job["addr"])
    seq = [0]

    def step():
        seq[0] += 1
        n = rng.randrange(job["keys"])
        v = "%d:%d" % (job["client"], seq[0])
        if rng.random() < 0.5:
            stats.op("SET")
            _timed(stats, lambda: r.execute_command("SET", "%sstr:%d" % (job["prefix"], n), v))
        else:
            stats.op("HSET")
            _timed(stats, lambda: r.execute_command("HSET", "%shash:%d" % (job["prefix"], n),
                                                    "f%d" % rng.randrange(job["fields"]), v))

    elapsed = _loop(job, stats, step)
    r.close()
    return stats.report(elapsed)


def child_incr(job):
    stats = Stats(0)
    r = _connect(job["addr"])
    keys = ["%s%d" % (job["prefix"], i) for i in range(job["n_keys"])]
    cmds = [k for _ in range(job["times"]) for k in keys]
    first = {}
    t0 = time.monotonic()
    for i in range(0, len(cmds), job["pipeline"]):
        batch = cmds[i:i + job["pipeline"]]
        try:
            if len(batch) == 1:
                replies = [_timed(stats, lambda: r.execute_command("INCR", batch[0]))]
            else:
                p = r.pipeline(transaction=False)
                for k in batch:
                    p.execute_command("INCR", k)
                replies = _timed(stats, lambda: p.execute(raise_on_error=False))
        except Exception as e:
            stats.error(e)
            break  # the count is lost either way: stop at the first failure
        for k, v in zip(batch, replies):
            stats.op("INCR")
            if isinstance(v, Exception):
                stats.error(v)
            elif k not in first:
                first[k] = int(v) - 1
    r.close()
    rep = stats.report(time.monotonic() - t0)
    rep["expected"] = {k: first.get(k, 0) + job["times"] for k in keys}
    return rep


def main():
    job = json.loads(sys.argv[2])
    _join(job.get("cgroup"))  # before connecting: the kernel must see this cgroup's client
    fn = {"mixed": child_mixed, "conflict": child_conflict, "incr": child_incr}[job["mode"]]
    print(json.dumps(fn(job)), flush=True)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--child":
    main()
