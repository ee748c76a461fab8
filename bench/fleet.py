#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Fleet mode figures (docs/fleet.md): Debian's etcd and N agents on this machine, each
with its own cgroup, bpffs folder and state dir (as tests/system/test_fleet.py makes them).

    bench/fleet.py [N] [CHANGES]        (root; N = 3, CHANGES = 30 by default)

Prints:
  - propagation: SetRatio through node 0 returning → every other node's GetMigration
    showing the new ratio (applied to its kernel maps on the same commit), p50/p99 ms,
    over CHANGES changes (polled every 2 ms per node, so the figure is ±2 ms);
  - etcd writes: revisions per second per agent over 10 s, idle and with a client
    loop in every node's cgroup (node keys carry the counters: a write per second per
    busy agent is the design), against the goal of ≤ 2 writes/s per agent;
  - agent CPU: utime + stime from /proc/PID/stat of every agent over the idle and the
    busy 10 s windows, as a share of one core (mean and max over the agents);
  - the commit's bound: SetRatio with etcd frozen (SIGSTOP), refused after ~400 ms;
  - leader failover (N >= 2): the leader killed -9 while a plan waits in a step (gates
    evaluated every 100 ms) → a survivor's status naming a new leader, and → the new
    leader's first cutover.evaluated event (its first decision); both bounded by the
    dead leader's lease (--node-ttl, default 10 s), which nobody revokes.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
from grpc_util import channel, pb, stream, unary  # noqa: E402
from sy import OUT, Daemon, RedisServer, _py_redis_argv, cgroup2_root, free_port, make_cgroup, \
    remove_cgroup, spec_yaml, wait_for  # noqa: E402
from test_fleet import Etcd, PREFIX  # noqa: E402

CTL = "/switchyard.v1.Control/"


def revision(etcd):
    return int(json.loads(etcd.ctl("endpoint", "status", "-w", "json").stdout)[0]["Status"]["header"]["revision"])


TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/PID/stat,
    counted after the command's closing parenthesis)."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def writes_per_s(etcd, n, pids, secs=10):
    """etcd writes per second per agent over secs, and each agent's CPU share then."""
    r0, c0, t0 = revision(etcd), [cpu_s(p) for p in pids], time.monotonic()
    time.sleep(secs)
    dt = time.monotonic() - t0
    cpu = [(cpu_s(p) - c) / dt for p, c in zip(pids, c0)]
    return (revision(etcd) - r0) / dt / n, cpu


def cpu_fmt(cpu):
    return "agent CPU mean %.1f%% max %.1f%% of a core" % (100 * statistics.mean(cpu), 100 * max(cpu))


def evaluations(ch):
    e = pb("switchyard.v1.events")
    out = stream(ch, "/switchyard.v1.Telemetry/Events", e.EventsRequest(migration="plan", follow=False), e.Event,
                 timeout=10)
    return [x for x in out if x.kind == "cutover.evaluated"]


def failover(nodes, chans, legacy, target, tmp):
    """kill -9 the leader while a plan waits in its first step; the figures run from the
    kill to a survivor's status naming a new leader and to its first evaluation."""
    def leader_of(d):
        return json.loads(d.syctl("-o", "json", "status").stdout)["daemon"].get("leader")

    leader = wait_for(lambda: leader_of(nodes[0][0]), timeout=30, what="a leader after etcd's freeze")
    idx = int(leader[1:])
    f = os.path.join(tmp, "plan.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([{"name": "plan", "legacy": [legacy.addr], "target": [target.addr],
                             "plan": {"steps": ["10%", "100%"], "bake": "1h", "interval": "100ms",
                                      "min_samples": 1000000, "gates": {"error_rate": "50%"}}}]))
        # min_samples never reached: every evaluation is "waiting", the step never ends
    # a legacy endpoint is in one migration at a time; the store may still be coming back
    wait_for(lambda: nodes[idx][0].syctl("delete", "users", "--force", check=False).returncode == 0, timeout=30,
             what="users deleted")
    nodes[idx][0].syctl("apply", "-f", f)
    nodes[idx][0].syctl("cutover", "plan", "start")
    wait_for(lambda: evaluations(chans[idx]), what="the leader evaluating")
    others = [i for i in range(len(nodes)) if i != idx]
    seen = {i: {x.seq for x in evaluations(chans[i])} for i in others}
    t_kill_ms = time.time() * 1000
    t0 = time.monotonic()
    nodes[idx][0].kill9()
    new, t_leader = None, None
    while time.monotonic() - t0 < 60:
        if new is None:
            now = leader_of(nodes[others[0]][0])
            if now not in (None, "", leader):
                new, t_leader = now, time.monotonic() - t0
        if new is not None:
            ev = [x for x in evaluations(chans[int(new[1:])]) if x.seq not in seen[int(new[1:])]]
            if ev:
                print("leader failover (kill -9 %s, lease TTL 10s): %s named leader after %.2f s, its first "
                      "evaluation after %.2f s (event time)" %
                      (leader, new, t_leader, (min(x.unix_ms for x in ev) - t_kill_ms) / 1000))
                return
        time.sleep(0.05)
    print("leader failover: no new leader's evaluation within 60 s (new leader %r)" % new)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    changes = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    tmp = tempfile.mkdtemp(prefix="sy-bench-fleet-")
    uid = uuid.uuid4().hex[:8]
    c = pb("switchyard.v1.control")
    etcd = Etcd(tmp)
    legacy, target = RedisServer(os.path.join(tmp, "legacy")), RedisServer(os.path.join(tmp, "target"))
    nodes, procs = [], []
    stop = os.path.join(tmp, "stop")
    try:
        for i in range(n):
            cg = make_cgroup(os.path.join(cgroup2_root(), "sy-bench-%s-%d" % (uid, i)))
            d_tmp = os.path.join(tmp, "n%d" % i)
            os.mkdir(d_tmp)
            d = Daemon(d_tmp, cgroup=cg, bpffs="/sys/fs/bpf/sy-bench-%s-%d" % (uid, i),
                       extra=["--store", "etcd://%s%s" % (etcd.endpoint, PREFIX), "--node", "n%d" % i])
            nodes.append((d, cg))
        f = os.path.join(tmp, "users.yaml")
        with open(f, "w") as fh:
            fh.write(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr], "ratio": "0%"}]))
        nodes[0][0].syctl("apply", "-f", f)
        chans = [channel("unix:" + d.sock) for d, _ in nodes]

        def ratio(ch):
            return unary(ch, CTL + "GetMigration", c.GetMigrationRequest(name="users"), c.Migration).spec.ratio_bp

        for ch in chans:
            wait_for(lambda ch=ch: ratio(ch) == 0, what="users everywhere")
        print("fleet bench: %d agents, etcd %s" % (n, etcd.endpoint))

        took, c0 = [], [cpu_s(d.proc.pid) for d, _ in nodes]
        t_run = time.monotonic()
        for k in range(changes):
            bp = 100 * (1 + k % 99)
            unary(chans[0], CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=bp), c.Migration)
            t0 = time.monotonic()
            for ch in chans[1:]:
                while ratio(ch) != bp:
                    time.sleep(0.002)
            took.append((time.monotonic() - t0) * 1000)
        run_cpu = [(cpu_s(d.proc.pid) - c) / (time.monotonic() - t_run) for (d, _), c in zip(nodes, c0)]
        took.sort()
        print("propagation to all %d other agents: p50 %.1f ms  p99 %.1f ms  (max %.1f, %d changes)" %
              (n - 1, statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))], took[-1],
               len(took)))
        print("  during the changes: %s" % cpu_fmt(run_cpu))

        pids = [d.proc.pid for d, _ in nodes]
        w, cpu = writes_per_s(etcd, n, pids)
        print("etcd writes per agent, idle: %.2f/s; %s" % (w, cpu_fmt(cpu)))
        code = ("import os, time\nwhile not os.path.exists(%r):\n    r.set('k', 'v')\n    time.sleep(0.002)\n" % stop)
        procs = [subprocess.Popen(_py_redis_argv(cg, legacy.addr, code), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _, cg in nodes]
        time.sleep(2)
        w, cpu = writes_per_s(etcd, n, pids)
        print("etcd writes per agent, clients busy on every node: %.2f/s  (goal <= 2); %s" % (w, cpu_fmt(cpu)))

        etcd.proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            try:
                unary(chans[0], CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=10000), c.Migration)
                what = "accepted?"
            except grpc.RpcError as e:
                what = e.code().name
            print("SetRatio with etcd frozen: %s after %.0f ms (before this change: up to 2000 ms per endpoint)" %
                  (what, (time.monotonic() - t0) * 1000))
        finally:
            etcd.proc.send_signal(signal.SIGCONT)
        if n >= 2:
            failover(nodes, chans, legacy, target, tmp)
        for ch in chans:
            ch.close()
    finally:
        open(stop, "w").close()
        for p in procs:
            p.wait(timeout=20)
        for d, cg in nodes:
            d.stop()
            subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", d.bpffs],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            remove_cgroup(cg)
        etcd.stop()
        legacy.stop()
        target.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
