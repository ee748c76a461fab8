#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Test client: for each job, moves itself into the job's cgroup (so the kernel sees a
different client), connects to the dialled address, writes its key with SET, asks the
server which port it really is (CONFIG GET port), reads getpeername(), and closes.
Reads a JSON list of jobs on stdin, prints one JSON line per job.

It runs as its own process so that pytest itself never changes cgroup."""
import json
import os
import socket
import sys


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    t, rest = line[:1], line[1:-2]
    if t in (b"+", b"-", b":"):
        if t == b"-":
            raise RuntimeError(rest.decode())
        return rest
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if t == b"*":
        return [read_reply(f) for _ in range(int(rest))]
    raise RuntimeError("bad reply %r" % line)


def split_addr(addr):
    host, port = addr.rsplit(":", 1)
    if host.startswith("["):
        return socket.AF_INET6, host[1:-1], int(port)
    return socket.AF_INET, host, int(port)


def own_cgroup():
    """The cgroup2 directory this process started in, to come back to for jobs that
    must run outside the test cgroup."""
    root = None
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] == "cgroup2":
                root = parts[1]
                break
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return root + line[3:].strip()
    return None


HOME = own_cgroup()


def join(cgroup):
    with open(os.path.join(cgroup or HOME, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def run(job):
    join(job.get("cgroup"))
    fam, host, port = split_addr(job["addr"])
    results = []
    for i in range(job.get("conns", 1)):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect((host, port))
        f = s.makefile("rb")
        peer = s.getpeername()
        key = job["key"] if job.get("conns", 1) == 1 else "%s:%d" % (job["key"], i)
        s.sendall(resp("SET", key, job.get("value", "1")) + resp("CONFIG", "GET", "port"))
        read_reply(f)
        served_port = int(read_reply(f)[1])
        # after the first request the address comes from the socket's storage, before
        # it from what connect() recorded (steer.bpf.c): both must be the dialled one
        peer_after = s.getpeername()
        f.close()
        s.close()
        results.append({"key": key, "peer": [peer[0], peer[1]], "peer_after": [peer_after[0], peer_after[1]],
                        "served_port": served_port})
    return {"job": job, "conns": results}


def loop(job):
    """Connect, SET, GET, close, for job["seconds"]; counts errors and where each
    connection was served. Used to prove a daemon restart never fails a client."""
    import time
    if job.get("cgroup"):
        with open(os.path.join(job["cgroup"], "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    fam, host, port = split_addr(job["addr"])
    end = time.monotonic() + job["seconds"]
    ok, errors, ports, last_err = 0, 0, {}, None
    i = 0
    while time.monotonic() < end:
        i += 1
        try:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect((host, port))
            f = s.makefile("rb")
            s.sendall(resp("SET", "loop:%d" % i, i) + resp("GET", "loop:%d" % i) + resp("CONFIG", "GET", "port"))
            read_reply(f)
            if read_reply(f) != str(i).encode():
                raise RuntimeError("wrong value")
            served = int(read_reply(f)[1])
            f.close()
            s.close()
            ports[served] = ports.get(served, 0) + 1
            ok += 1
        except Exception as e:  # every failure is counted, none is retried
            errors += 1
            last_err = repr(e)
        if job.get("pause"):
            time.sleep(job["pause"])
    return {"ok": ok, "errors": errors, "ports": ports, "last_error": last_err}


def script(job):
    """Runs commands on one connection, each awaited unless job["pipeline"] (then
    job["then"], if any, one by one on the same connection): returns
    per-command seconds, bytes written and read, and the replies' first bytes."""
    import time
    join(job.get("cgroup"))
    fam, host, port = split_addr(job["addr"])
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect((host, port))
    f = s.makefile("rb")
    sent = got = 0
    times, kinds = [], []

    class Counting:
        def __init__(self, f):
            self.f = f

        def readline(self):
            nonlocal got
            line = self.f.readline()
            got += len(line)
            return line

        def read(self, n):
            nonlocal got
            data = self.f.read(n)
            got += len(data)
            return data

    cf = Counting(f)

    def take():
        """Reads one reply; notes whether it was an error."""
        try:
            read_reply(cf)
            kinds.append("+")
        except RuntimeError:
            kinds.append("-")

    def one_by_one(cmds):
        nonlocal sent
        for c in cmds:
            t0 = time.monotonic()
            s.sendall(c)
            sent += len(c)
            take()
            times.append(time.monotonic() - t0)

    cmds = [resp(*c) for c in job["commands"]]
    if job.get("pipeline"):
        blob = b"".join(cmds)
        t0 = time.monotonic()
        s.sendall(blob)
        sent += len(blob)
        for _ in cmds:
            take()
        times.append(time.monotonic() - t0)
    else:
        one_by_one(cmds)
    # job["then"]: commands sent one by one after the first batch, on the same connection
    one_by_one([resp(*c) for c in job.get("then", [])])
    f.close()
    s.close()
    return {"times": times, "sent": sent, "got": got, "kinds": kinds}


def raw(job):
    """Sends job["raw"] (latin-1 text of the bytes) in sends of job["chunk"] bytes
    (TCP_NODELAY, job["gap"] seconds apart, so small chunks leave as separate
    packets), reads job["replies"] replies and returns their exact bytes."""
    import time
    join(job.get("cgroup"))
    fam, host, port = split_addr(job["addr"])
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(30)
    s.connect((host, port))
    data = job["raw"].encode("latin-1")
    chunk = job.get("chunk") or len(data) or 1
    for i in range(0, len(data), chunk):
        s.sendall(data[i:i + chunk])
        if job.get("gap"):
            time.sleep(job["gap"])
    got = bytearray()

    class Recording:
        def __init__(self, f):
            self.f = f

        def readline(self):
            line = self.f.readline()
            got.extend(line)
            return line

        def read(self, n):
            d = self.f.read(n)
            got.extend(d)
            return d

    f = Recording(s.makefile("rb"))
    kinds = []
    for _ in range(job.get("replies", 0)):
        try:
            read_reply(f)
            kinds.append("+")
        except RuntimeError:
            kinds.append("-")
    s.close()
    return {"replies": got.decode("latin-1"), "kinds": kinds, "sent": len(data)}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--raw":
        print(json.dumps(raw(json.loads(sys.stdin.read()))), flush=True)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--script":
        print(json.dumps(script(json.loads(sys.argv[2]))), flush=True)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--loop":
        print(json.dumps(loop(json.loads(sys.argv[2]))), flush=True)
        return
    jobs = json.load(sys.stdin)
    for job in jobs:
        print(json.dumps(run(job)), flush=True)


if __name__ == "__main__":
    main()
