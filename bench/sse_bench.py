#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/sse_bench.py — what Server-Sent Events clients cost switchyardd: its CPU (utime
+ stime from /proc/PID/stat over the round, as % of one core), its RSS and threads at
the round's end, and the time /api/v1/status takes (median), for rounds in one run:
no client (the baseline), N clients on /api/v1/events, N clients on /api/v1/watch
(interval 1s). While every round runs, a changer sets the ratio 5 times a second
(each an event every events client receives, and a state commit), and a workload
(bench/sse.sh) keeps the mirror busy; the forward mirror lag p99 (median of the
round's watch samples) shows whether the loop was held up.

usage: sse_bench.py PORT SOCKET PID MIGRATION [CLIENTS] [SECONDS]"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
from sse_crowd import Crowd  # noqa: E402

OUT = os.environ.get("OUT", "build")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def status_of(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def get_ms(url):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()
    return (time.monotonic() - t0) * 1000


def changer(sock, mig, stop):
    i = 0
    while not stop.is_set():
        subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + sock, "cutover", mig,
                        "%d%%" % (10 + i % 2)], capture_output=True)
        i += 1
        stop.wait(0.2)


def lag_sampler(port, mig, samples, stop):
    """The forward mirror lag p99 of each 1 s snapshot, from one watch stream of our own."""
    crowd = Crowd("127.0.0.1", port, "/api/v1/watch?migration=%s&interval_ms=1000" % mig, 1)
    seen = 0
    try:
        while not stop.is_set():
            evs = crowd.snapshot(lambda cs: list(cs[0].events))
            for _, snap in evs[seen:]:
                for m in snap.get("migrations", []):
                    for x in m.get("mirror", []):
                        if x["direction"] == "forward":
                            samples.append(int(x.get("lagP99Us", 0)))
            seen = len(evs)
            stop.wait(0.2)
    finally:
        crowd.close()


def settle(pid, threads, timeout=15):
    """Waits for the daemon to be back to its thread count: a closed stream's thread
    (and its slot under the per-address limit) ends at the next heartbeat write."""
    end = time.monotonic() + timeout
    while status_of(pid, "Threads") > threads and time.monotonic() < end:
        time.sleep(0.1)


def round_(name, port, sock, pid, mig, path, clients, seconds):
    crowd = Crowd("127.0.0.1", port, path, clients) if clients else None
    if crowd:
        crowd.wait_open(30)
        bad = crowd.snapshot(lambda cs: sum(c.status != 200 for c in cs))
        assert bad == 0, crowd.snapshot(Crowd.describe)
    stop = threading.Event()
    lags = []
    threads = [threading.Thread(target=changer, args=(sock, mig, stop)),
               threading.Thread(target=lag_sampler, args=(port, mig, lags, stop))]
    for t in threads:
        t.start()
    time.sleep(1)  # settled: the streams' first bursts (history, first snapshot) are out
    c0, t0 = cpu_s(pid), time.monotonic()
    lat = []
    while time.monotonic() - t0 < seconds:
        lat.append(get_ms("http://127.0.0.1:%d/api/v1/status" % port))
        time.sleep(0.25)
    c1, t1 = cpu_s(pid), time.monotonic()
    rss, threads_n = status_of(pid, "VmRSS"), status_of(pid, "Threads")
    got = crowd.snapshot(lambda cs: min(len(c.events) for c in cs)) if crowd else 0
    stop.set()
    for t in threads:
        t.join()
    if crowd:
        crowd.close()
    return {"round": name, "clients": clients, "cpu_pct": 100 * (c1 - c0) / (t1 - t0), "rss_kib": rss,
            "threads": threads_n, "status_ms": statistics.median(lat),
            "lag_p99_us": statistics.median(lags) if lags else 0, "events_per_client": got}


def main():
    port, sock, pid, mig = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 10
    threads = status_of(pid, "Threads")
    rows = []
    for args in (("baseline", None, 0), ("events", "/api/v1/events?since=0", n),
                 ("watch 1s", "/api/v1/watch?interval_ms=1000", n), ("baseline again", None, 0)):
        settle(pid, threads)
        rows.append(round_(args[0], port, sock, pid, mig, args[1], args[2], seconds))
    print("%-15s %7s %8s %9s %8s %10s %12s %8s" % ("round", "clients", "cpu %", "rss MiB", "threads",
                                                    "status ms", "lag p99 us", "events"))
    for r in rows:
        print("%-15s %7d %8.1f %9.1f %8d %10.2f %12d %8d" % (r["round"], r["clients"], r["cpu_pct"],
                                                             r["rss_kib"] / 1024, r["threads"], r["status_ms"],
                                                             r["lag_p99_us"], r["events_per_client"]))
    base = (rows[0]["cpu_pct"] + rows[3]["cpu_pct"]) / 2
    for r in rows[1:3]:
        print("%s: +%.1f %% of a core, +%.1f MiB RSS vs no client (%d clients)"
              % (r["round"], r["cpu_pct"] - base, (r["rss_kib"] - rows[0]["rss_kib"]) / 1024, r["clients"]))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
