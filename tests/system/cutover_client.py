#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A client application for the cutover tests (Debian's python3-redis), run as its own
process inside a client cgroup so the kernel steers its connections.

    cutover_client.py '{"addr": "127.0.0.1:7000", "cgroup": "/sys/fs/cgroup/...",
                        "conns": 20, "mode": "persistent"|"reconnect", "name": "wl-1",
                        "stop_file": "/tmp/stop", "seconds": 60, "keys_file": "/tmp/acked",
                        "reads": ["r:0", ...], "pause": 0.002}'

It always dials `addr` (the legacy endpoint, as an unmodified application would); the
kernel decides where each connection really goes. Each write is a SET of a key never
written before, so an acknowledged write can be checked afterwards. With "key_space": N
(and "last_file") the writes overwrite N keys round and round instead (a long run's key
space stays bounded): write n sets ack:NAME:(n % N) to n, and last_file gets, per key,
the last acknowledged n and the later ones whose reply never came (applied or not). A request that fails
because its connection was reset is retried once on a new connection, as a client with
reconnect-and-retry does; only a request failing twice counts as failed. Every
acknowledged key is appended to keys_file. The last line of stdout is a JSON summary.
"""
import json
import os
import sys
import time

import redis


def main():
    job = json.loads(sys.argv[1])
    if job.get("cgroup"):
        with open(os.path.join(job["cgroup"], "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    host, port = job["addr"].rsplit(":", 1)
    name = job.get("name", "wl")
    persistent = job.get("mode", "persistent") == "persistent"
    reads = job.get("reads") or []
    pause = job.get("pause", 0.002)
    end = time.monotonic() + job.get("seconds", 60)
    stop_file = job.get("stop_file")
    key_space = job.get("key_space")
    last = {}  # key -> [last acknowledged n, later unacknowledged n...] (key_space only)

    def connect(i):
        return redis.Redis(host=host, port=int(port), socket_timeout=5, socket_connect_timeout=5,
                           single_connection_client=True, client_name="%s-%d" % (name, i))

    conns = [connect(i) for i in range(job.get("conns", 1))] if persistent else []
    acked = reconnects = failed = reads_done = read_errors = 0
    keys = open(job["keys_file"], "a") if job.get("keys_file") else None
    seq = 0
    ready = job.get("ready_file")
    if persistent:
        for c in conns:
            c.ping()  # every connection open (and steered) before the caller goes on
    if ready:
        open(ready, "w").close()
    while time.monotonic() < end and not (stop_file and os.path.exists(stop_file)):
        i = seq % max(1, len(conns)) if persistent else 0
        if key_space:
            key, value = "ack:%s:%d" % (name, seq % key_space), seq
        else:
            key, value = "ack:%s:%d" % (name, seq), seq + 1
        seq += 1
        for attempt in (0, 1):
            c = None
            try:
                # a single-connection client connects (and names itself) when made: that
                # can meet a drain too, so it is inside the try
                if persistent:
                    if conns[i] is None:
                        conns[i] = connect(i)
                    c = conns[i]
                else:
                    c = connect(0)
                c.set(key, value)
                acked += 1
                if key_space:
                    last[key] = [value]
                elif keys:
                    keys.write(key + "\n")
                if reads:
                    try:
                        c.get(reads[seq % len(reads)])
                        reads_done += 1
                    except redis.ResponseError:
                        read_errors += 1
                    except (redis.ConnectionError, redis.TimeoutError) as e:
                        # the write was acknowledged; a lost read is only counted
                        read_errors += 1
                        sys.stderr.write("%.3f read on a new connection failed: %r\n" % (time.time(), e))
                break
            except (redis.ConnectionError, redis.TimeoutError) as e:
                sys.stderr.write("%.3f %s attempt %d: %r\n" % (time.time(), key, attempt, e))
                reconnects += 1
                if c is not None:
                    try:
                        c.close()
                    except Exception:
                        pass
                if persistent:
                    conns[i] = None  # dialled again on the next attempt
                if attempt == 1:
                    failed += 1
                    if key_space:
                        last.setdefault(key, [None]).append(value)
            except redis.ResponseError:
                failed += 1  # the server refused the write (an error-gate test wants this)
                break
            finally:
                if not persistent and c is not None:
                    c.close()
        if pause:
            time.sleep(pause)
    if keys:
        keys.close()
    if key_space and job.get("last_file"):
        with open(job["last_file"], "w") as f:
            json.dump(last, f)
    print(json.dumps({"acked": acked, "reconnects": reconnects, "failed": failed, "reads": reads_done,
                      "read_errors": read_errors}))


if __name__ == "__main__":
    main()
