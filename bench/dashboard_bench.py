#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/dashboard_bench.py — the agent's CPU (utime + stime of switchyardd from
/proc/PID/stat, % of one core) over rounds of one run: no dashboard, N dashboards open
in headless chromium (bench/dashboard_pages.mjs), no dashboard again. The chromium
processes' own CPU is printed too, for scale: it is the browser's, not the agent's.

With COMPARE_APP_JS=FILE, one more round: the same dashboards with FILE served as their
/app.js (another version of the page, e.g. `git show REV:agent/web/app.js`).

usage: dashboard_bench.py URL PID MIGRATIONS [DASHBOARDS] [SECONDS]"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def tree(pid):
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def measure(pid, seconds, browser=None):
    kids = tree(browser.pid) if browser else []
    a0, b0, t0 = cpu_s(pid), sum(cpu_s(k) for k in kids), time.monotonic()
    time.sleep(seconds)
    a1, b1, t1 = cpu_s(pid), sum(cpu_s(k) for k in kids), time.monotonic()
    return 100 * (a1 - a0) / (t1 - t0), 100 * (b1 - b0) / (t1 - t0)


def dashboards(url, n, migs, pid, seconds, app_js=None):
    b = subprocess.Popen(["node", os.path.join(HERE, "dashboard_pages.mjs"), url, str(n), migs]
                         + ([app_js] if app_js else []), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = b.stdout.readline().strip()
    if line != "ready":
        b.kill()
        sys.exit("dashboard_pages did not get ready: %r" % line)
    time.sleep(2)  # past the first reads of every tab
    got = measure(pid, seconds, b)
    b.stdin.close()
    out = b.stdout.read()
    if b.wait() != 0 or "closed" not in out:
        sys.exit("dashboard_pages failed")
    time.sleep(3)  # the streams' threads end at their next heartbeat
    return got


def main():
    url, pid, migs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 30
    rows = [("no dashboard", 0) + measure(pid, seconds)]
    rows.append(("%d dashboards" % n, n) + dashboards(url, n, migs, pid, seconds))
    rows.append(("no dashboard again", 0) + measure(pid, seconds))
    other = os.environ.get("COMPARE_APP_JS")
    if other:
        rows.append(("%d, app.js from file" % n, n) + dashboards(url, n, migs, pid, seconds, other))
    print("%-20s %10s %12s %14s" % ("round", "dashboards", "agent cpu %", "chromium cpu %"))
    for name, k, a, c in rows:
        print("%-20s %10d %12.2f %14.1f" % (name, k, a, c))
    base = (rows[0][2] + rows[2][2]) / 2
    print("%d dashboards on %s migrations cost the agent %+.2f %% of one core (goal: <= 1 %%)"
          % (n, migs, rows[1][2] - base))


if __name__ == "__main__":
    main()
