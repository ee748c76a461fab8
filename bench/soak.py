#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/soak.sh's driver: owns the agent and the target redis-server (it kills and
restarts both), the client workload, the plan's walk, the sampling and the summary.
Argument: one JSON object (work, cg, bpffs, out, legacy, target, minutes, kill_every,
keys: the workload's key space, overwritten round and round so that the final audit of a
long run stays short)."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import redis

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CLIENT = os.path.join(ROOT, "tests", "system", "cutover_client.py")
MIG = "soak"


class Soak:
    def __init__(self, job):
        self.j = job
        self.work = job["work"]
        self.sock = os.path.join(self.work, "sy.sock")
        self.daemon = None
        self.target = None
        self.procs = []
        self.kills = self.target_restarts = self.actions = 0
        self.rounds = {}  # plan action -> times it succeeded

    def syctl(self, *args, check=False, timeout=30):
        r = subprocess.run([os.path.join(self.j["out"], "syctl"), "--server", "unix://" + self.sock] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("syctl %s: %s" % (" ".join(args), r.stderr.strip()))
        return r

    def get(self):
        r = self.syctl("-o", "json", "get", MIG)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def start_target(self):
        d = os.path.join(self.work, "target")
        os.makedirs(d, exist_ok=True)
        self.target = subprocess.Popen(["redis-server", "--port", str(self.j["target"]), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no", "--dir", d, "--logfile",
                                        os.path.join(d, "log")])
        r = redis.Redis(port=self.j["target"])
        for _ in range(200):
            try:
                r.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("target did not start")

    def start_daemon(self):
        log = open(os.path.join(self.work, "switchyardd.log"), "a")
        self.daemon = subprocess.Popen(
            [os.path.join(self.j["out"], "switchyardd"), "--config", os.path.join(self.work, "spec.yaml"),
             "--cgroup", self.j["cg"], "--bpffs", self.j["bpffs"], "--state-dir", os.path.join(self.work, "state"),
             "--listen", "unix:" + self.sock, "--health-interval", "500ms", "--health-timeout", "200ms"],
            stdout=log, stderr=log)
        log.close()
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.daemon.poll() is not None:
                raise RuntimeError("switchyardd exited %d (see %s/switchyardd.log)" % (self.daemon.returncode,
                                                                                       self.work))
            if os.path.exists(self.sock) and self.syctl("health").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("switchyardd did not answer")

    CLIENTS = (("web1", "reconnect", 1), ("web2", "reconnect", 1), ("web3", "reconnect", 1),
               ("web4", "reconnect", 1), ("pool1", "persistent", 8), ("pool2", "persistent", 8))

    def start_clients(self, seconds):
        reads = ["session:%d" % i for i in range(0, 5000, 25)]
        per_client = max(1, -(-self.j["keys"] // len(self.CLIENTS)))
        for name, mode, conns in self.CLIENTS:
            cg = os.path.join(self.j["cg"], name)
            os.makedirs(cg, exist_ok=True)
            job = {"addr": "127.0.0.1:%d" % self.j["legacy"], "cgroup": cg, "mode": mode, "conns": conns,
                   "name": name, "stop_file": os.path.join(self.work, "stop"), "seconds": seconds,
                   "key_space": per_client, "last_file": os.path.join(self.work, "last-" + name),
                   "reads": reads, "pause": 0.004}
            out = open(os.path.join(self.work, "client-%s.out" % name), "w")
            self.procs.append(subprocess.Popen(["/usr/bin/python3", CLIENT, json.dumps(job)], stdout=out,
                                               stderr=subprocess.STDOUT))
            out.close()

    def rss_fds(self):
        pid = self.daemon.pid
        try:
            rss = next(int(l.split()[1]) for l in open("/proc/%d/status" % pid) if l.startswith("VmRSS:"))
            return rss / 1024.0, len(os.listdir("/proc/%d/fd" % pid))
        except (OSError, StopIteration):
            return 0.0, 0

    @staticmethod
    def lag_buckets(m):
        out = [0] * 64
        for x in (m or {}).get("mirror", []):
            for i, v in enumerate(x.get("lagLog2Us", [])):
                out[i] += int(v)
        return out

    @staticmethod
    def p99_ms(buckets):
        n = sum(buckets)
        if not n:
            return None
        acc = 0
        for i, v in enumerate(buckets):
            acc += v
            if acc >= 0.99 * n:
                return (1 << (i + 1)) / 1000.0  # the bucket's upper bound
        return None

    def steer_plan(self, phase, since):
        """Walks the plan round and round: start it, let it complete, roll it back
        with a drain, start again; resume what a gate paused."""
        act = None
        if phase in ("none", "pending", "finished"):
            act = ("start",)
        elif phase == "completed" and since > 15:
            act = ("rollback", "--drain", "--reason", "soak: rollback round")
        elif phase == "rolled-back" and since > 10:
            act = ("start", "--reason", "soak: again")
        elif phase == "paused" and since > 10:
            act = ("resume",)
        if act:
            r = self.syctl("cutover", MIG, *act)
            self.actions += 1
            if r.returncode == 0:
                kind = {"start": "walks started", "rollback": "rolled back", "resume": "resumed"}[act[0]]
                self.rounds[kind] = self.rounds.get(kind, 0) + 1
            print("   %s: cutover %s -> %s" % (time.strftime("%H:%M:%S"), " ".join(act),
                                                 "ok" if r.returncode == 0 else r.stderr.strip()), flush=True)

    def run(self):
        minutes, kill_every = self.j["minutes"], self.j["kill_every"]
        dur = minutes * 60
        self.start_target()
        self.start_daemon()
        self.start_clients(dur + 900)
        t0 = time.monotonic()
        next_kill = t0 + kill_every
        restarts = [t0 + dur / 3.0, t0 + 2 * dur / 3.0]
        last_phase, phase_since = None, t0
        prev_lag = None
        samples = []
        print("   time      phase          RSS MiB  fds  lag p99 ms  kills  target restarts", flush=True)
        next_sample = t0
        while time.monotonic() - t0 < dur:
            now = time.monotonic()
            if now >= next_kill:
                self.daemon.send_signal(signal.SIGKILL)
                self.daemon.wait()
                self.kills += 1
                print("   %s: agent killed (-9), restarting" % time.strftime("%H:%M:%S"), flush=True)
                self.start_daemon()
                next_kill = time.monotonic() + kill_every
                prev_lag = None
            if restarts and now >= restarts[0]:
                restarts.pop(0)
                self.target.send_signal(signal.SIGKILL)
                self.target.wait()
                shutil_rm(os.path.join(self.work, "target"))
                self.start_target()
                self.target_restarts += 1
                print("   %s: target restarted (empty)" % time.strftime("%H:%M:%S"), flush=True)
            m = self.get()
            phase = (m or {}).get("cutover", {}).get("phaseName", "none") if m else "?"
            if phase != last_phase:
                last_phase, phase_since = phase, now
            self.steer_plan(phase, now - phase_since)
            if now >= next_sample:
                next_sample = now + 10
                rss, fds = self.rss_fds()
                lag = self.lag_buckets(m)
                p99 = self.p99_ms([a - b for a, b in zip(lag, prev_lag)]) if prev_lag else None
                prev_lag = lag
                samples.append({"t": now - t0, "rss": rss, "fds": fds, "p99": p99})
                print("   %6.0fs   %-13s  %7.1f  %3d  %10s  %5d  %d" % (
                    now - t0, phase, rss, fds, "%.1f" % p99 if p99 is not None else "-", self.kills,
                    self.target_restarts), flush=True)
            time.sleep(1)
        return samples

    def stop_clients(self):
        """Stops the workload; its failed requests and reconnects."""
        open(os.path.join(self.work, "stop"), "w").close()
        for p in self.procs:
            p.wait(timeout=120)
        failed = reconnects = 0
        for f in glob.glob(os.path.join(self.work, "client-*.out")):
            lines = [l for l in open(f) if l.startswith("{")]
            if not lines:
                print("soak: a client printed no summary: " + f)
                failed += 1
                continue
            r = json.loads(lines[-1])
            failed += r["failed"]
            reconnects += r["reconnects"]
        return failed, reconnects

    def wait_quiet(self, deadline):
        """Waits until the mirror has replayed everything and no backfill, audit or plan
        step that starts one runs: an audit beside a running backfill (the refill of a
        restarted target) would count as missing what is still being copied."""
        busy_phases = ("backfilling", "shadowing", "verifying")
        waited, m = False, None
        while time.monotonic() < deadline:
            m = self.get()
            if m:
                pending = sum(int(x.get("queued", 0)) + int(x.get("dirty", 0)) for x in m.get("mirror", []))
                phase = m.get("cutover", {}).get("phaseName", "none")
                jobs = (m.get("auditState", "idle"), m.get("backfillState", "idle"))
                if pending == 0 and "running" not in jobs and phase not in busy_phases:
                    return True
                if not waited:
                    print("   %s: waiting before the final audit: %d mirrored writes pending, audit %s, "
                          "backfill %s, phase %s" % (time.strftime("%H:%M:%S"), pending, jobs[0], jobs[1], phase),
                          flush=True)
                    waited = True
            time.sleep(1)
        print("soak: still busy after SOAK_AUDIT_WAIT_S: %s" % json.dumps(m), flush=True)
        return False

    def final_audit(self):
        """A read-only audit of every key, started once nothing else runs; its result
        (parsed whatever the verdict: syctl exits 1 on drift) and a reason when there is
        no verdict."""
        deadline = time.monotonic() + float(os.environ.get("SOAK_AUDIT_WAIT_S", "600"))
        while True:
            self.wait_quiet(deadline)
            t = time.monotonic()
            r = self.syctl("-o", "json", "verify", MIG, "--rate", "100000", timeout=1800)
            print("   %s: final audit: %s after %.0f s" % (time.strftime("%H:%M:%S"), "syctl exited %d" % r.returncode,
                                                           time.monotonic() - t), flush=True)
            if "is running" in r.stderr and time.monotonic() < deadline:
                time.sleep(2)  # a job began between the wait and the start: wait for it
                continue
            try:
                audit = json.loads(r.stdout)
            except ValueError:
                return None, "no verdict: %s" % (r.stderr.strip() or "syctl exited %d" % r.returncode)
            if audit.get("state") != "done":
                return audit, "no verdict: the audit is %s: %s" % (audit.get("state"), audit.get("error", ""))
            return audit, None

    def lost_writes(self):
        """Per side, the keys whose value is not the last acknowledged write (nor a later
        write whose reply never came, which may have been applied): exact, key by key."""
        want = {}
        for f in glob.glob(os.path.join(self.work, "last-*")):
            want.update(json.load(open(f)))
        keys = sorted(want)
        acked = sum(1 for k in keys if want[k][0] is not None)
        lost, example = {}, {}
        for name, port in (("legacy", self.j["legacy"]), ("target", self.j["target"])):
            r = redis.Redis(port=port)
            lost[name] = 0
            for i in range(0, len(keys), 1000):
                for k, v in zip(keys[i:i + 1000], r.mget(keys[i:i + 1000])):
                    ok = want[k] if want[k][0] is not None else want[k][1:] + [None]
                    if (int(v) if v is not None else None) not in ok:
                        lost[name] += 1
                        example.setdefault(name, "%s = %s, acknowledged %s" % (k, v and v.decode(), want[k]))
        return acked, len(keys), lost, example

    def finish(self, samples):
        failed, reconnects = self.stop_clients()
        audit, no_verdict = self.final_audit()
        audit = audit or {}
        diff = sum(int(audit.get(k, 0)) for k in ("missing", "extra", "type", "value", "ttl"))
        acked, nkeys, lost, example = self.lost_writes()
        lags = [s["p99"] for s in samples if s["p99"] is not None]
        first, last = samples[0] if samples else {}, samples[-1] if samples else {}
        print("soak summary (%d min):" % self.j["minutes"])
        print("  agent killed %d times, target restarted %d times, %d plan actions (%s)" % (
            self.kills, self.target_restarts, self.actions,
            ", ".join("%s %d" % kv for kv in sorted(self.rounds.items())) or "none"))
        # A target killed under its clients fails their in-flight requests (a real
        # outage of the server): reported, not a verdict on the agent.
        print("  client requests failed: %d (reconnects: %d; the target's restarts fail the requests in flight on it)"
              % (failed, reconnects))
        print("  keys written: %d (overwritten round and round), with an acknowledged write: %d; "
              "last acknowledged value lost on legacy: %d, on target: %d" % (nkeys, acked, lost["legacy"],
                                                                             lost["target"]))
        for side, e in sorted(example.items()):
            print("    e.g. on %s: %s" % (side, e))
        print("  final audit (read-only): %s keys compared, %d differing%s" % (
            audit.get("scanned", "?"), diff, " (%s)" % no_verdict if no_verdict else ""))
        print("  agent RSS: first %.1f MiB, last %.1f MiB, max %.1f MiB; fds: first %d, last %d, max %d" % (
            first.get("rss", 0), last.get("rss", 0), max((s["rss"] for s in samples), default=0),
            first.get("fds", 0), last.get("fds", 0), max((s["fds"] for s in samples), default=0)))
        if lags:
            lags.sort()
            print("  mirror lag p99 per 10 s interval (%d intervals): median %.1f ms, worst %.1f ms" % (
                len(lags), lags[len(lags) // 2], lags[-1]))
        ok = lost["legacy"] == 0 and diff == 0 and not no_verdict
        print("soak: %s" % ("PASS" if ok else "FAIL"))
        return 0 if ok else 1

    def stop(self):
        for p in self.procs + [self.daemon, self.target]:
            if p and p.poll() is None:
                p.kill()
                p.wait()


def shutil_rm(path):
    for f in glob.glob(os.path.join(path, "*")):
        if os.path.isfile(f) and not f.endswith("/log"):
            os.unlink(f)


def main():
    s = Soak(json.loads(sys.argv[1]))
    try:
        samples = s.run()
        return s.finish(samples)
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(main())
