# SPDX-License-Identifier: Apache-2.0
"""Packaging: the systemd unit (systemd-analyze verify, sd_notify ordering, its
capability set), the .deb (built by `make deb`, installed with dpkg on this machine,
the daemon run from /usr/sbin, syctl from /usr/bin, an upgrade that keeps steering and
whose new daemon adopts the pins, a purge that removes files, state and pins), the
Kubernetes DaemonSet manifest and the Grafana dashboard.

The package tests install into this machine's real /usr, /etc and /var/lib: they
refuse to run when a switchyard package, /var/lib/switchyard, /run/switchyard or
/sys/fs/bpf/switchyard already exists (someone's real installation), and always purge
what they installed. The daemons they start use a test cgroup and a test bpffs
folder; the purge is pointed at that folder with SWITCHYARD_BPFFS.
"""
import glob
import gzip
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from sy import OUT, ROOT, Daemon, free_port, run_clients, spec_yaml

UNIT = os.path.join(ROOT, "packaging", "switchyardd.service")
MANIFEST = os.path.join(ROOT, "packaging", "kubernetes", "daemonset.yaml")
DASHBOARD = os.path.join(ROOT, "packaging", "grafana", "switchyard-dashboard.json")
EXAMPLE_CONFIG = os.path.join(ROOT, "packaging", "switchyard.yaml")

PKG = "switchyard"
CONFFILE = "/etc/switchyard/switchyard.yaml"
STATE_DIR = "/var/lib/switchyard"
RUN_DIR = "/run/switchyard"
DEFAULT_BPFFS = "/sys/fs/bpf/switchyard"
INSTALLED = ["/usr/sbin/switchyardd", "/usr/bin/syctl", "/lib/systemd/system/switchyardd.service", CONFFILE,
             "/usr/share/man/man8/switchyardd.8.gz", "/usr/share/man/man1/syctl.1.gz",
             "/usr/share/doc/switchyard/README.md", "/usr/share/doc/switchyard/docs/operations.md",
             "/usr/share/switchyard/grafana/switchyard-dashboard.json",
             "/usr/share/switchyard/kubernetes/daemonset.yaml",
             "/usr/share/switchyard/kubernetes/fleet/kustomization.yaml",
             "/usr/share/switchyard/prometheus/switchyard-rules.yaml", "/usr/share/doc/switchyard/copyright",
             "/usr/share/bash-completion/completions/syctl", "/usr/share/zsh/vendor-completions/_syctl"]

# The programs switchyardd attaches (bpftool's names for the attach types).
ATTACH_TYPES = {"cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_inet4_getpeername",
                "cgroup_inet6_getpeername", "cgroup_inet_egress", "cgroup_inet_ingress"}


def unit_value(key):
    with open(UNIT) as f:
        text = f.read().replace("\\\n", " ")
    vals = re.findall(r"(?m)^%s=(.*)$" % re.escape(key), text)
    assert vals, "%s= missing from %s" % (key, UNIT)
    return vals[-1].strip()


def unit_caps():
    return unit_value("CapabilityBoundingSet").split()


def attached(cgroup):
    r = subprocess.run(["bpftool", "-j", "cgroup", "show", cgroup], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {p["attach_type"] for p in json.loads(r.stdout.strip() or "[]")}


def links(bpffs):
    d = os.path.join(bpffs, "links")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# --- the systemd unit -----------------------------------------------------------------

def test_unit_passes_systemd_analyze_verify(tmp_path):
    """The unit as shipped, with ExecStart pointed at the built binary: no warning."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze missing (packaging/deps.sh installs systemd)")
    binary = os.path.join(OUT, "switchyardd")
    assert os.access(binary, os.X_OK), "build first: make OUT=%s" % OUT
    with open(UNIT) as f:
        text = f.read()
    assert "ExecStart=/usr/sbin/switchyardd " in text
    unit = tmp_path / "switchyardd.service"
    unit.write_text(text.replace("/usr/sbin/switchyardd", binary))

    def verify(path):
        # --man=no: the man page is checked in the package (test_deb_contents).
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True,
                           text=True, cwd=str(tmp_path))
        return r.returncode, [line for line in (r.stdout + r.stderr).splitlines()
                              if path.name in line or "switchyardd" in line]

    rc, complaints = verify(unit)
    assert rc == 0 and complaints == [], complaints
    # And the check is not blind: a misspelt key in a copy is reported.
    bad = tmp_path / "switchyardd-bad.service"
    bad.write_text(unit.read_text().replace("Restart=always", "Restart=always\nRestartSecs=1"))
    rc, complaints = verify(bad)
    assert any("RestartSecs" in c for c in complaints), complaints

    assert unit_value("Type") == "notify"
    assert unit_value("Restart") == "always"
    assert unit_value("StateDirectory") == "switchyard"
    assert unit_value("RuntimeDirectory") == "switchyard"
    assert unit_value("LimitMEMLOCK") == "infinity"
    exec_start = unit_value("ExecStart").split()
    assert exec_start[exec_start.index("--state-dir") + 1] == STATE_DIR
    assert exec_start[exec_start.index("--listen") + 1] == "unix:" + RUN_DIR + "/switchyard.sock"
    assert sorted(unit_caps()) == ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"]


def recv_notify(sock, timeout):
    """One datagram with the sender's credentials: (pid, [lines]) or None."""
    sock.settimeout(timeout)
    try:
        data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        return None
    pid = None
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", cdata[:12])[0]
    return pid, data.decode().split("\n")


def test_ready_after_attach_and_stopping_on_sigterm(cgroup, bpffs, tmp_path):
    """READY=1 comes from the main pid once the programs are attached and their links
    pinned (the daemon is frozen the moment READY=1 arrives, then inspected);
    STOPPING=1 on SIGTERM, and the programs stay attached (fail-static)."""
    npath = str(tmp_path / "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(npath)
    ns.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    log = open(str(tmp_path / "d.log"), "w")
    proc = subprocess.Popen([os.path.join(OUT, "switchyardd"), "--cgroup", cgroup, "--bpffs", bpffs,
                             "--state-dir", str(tmp_path / "state"), "--listen",
                             "unix:" + str(tmp_path / "sy.sock")],
                            env=dict(os.environ, NOTIFY_SOCKET=npath), stdout=log, stderr=log)
    try:
        before = []
        end = time.monotonic() + 15
        while True:
            assert time.monotonic() < end, "no READY=1 within 15s"
            assert proc.poll() is None, open(str(tmp_path / "d.log")).read()
            msg = recv_notify(ns, 0.05)
            if msg is None:
                continue
            pid, lines = msg
            if "READY=1" in lines:
                proc.send_signal(signal.SIGSTOP)
                try:
                    pinned, progs = links(bpffs), attached(cgroup)
                finally:
                    proc.send_signal(signal.SIGCONT)
                break
            before.append(lines)
        assert pid == proc.pid, "READY=1 from pid %s, not the main pid %d" % (pid, proc.pid)
        assert progs == ATTACH_TYPES, progs
        assert len(pinned) >= len(ATTACH_TYPES), pinned
        assert not any("READY=1" in b for b in before)

        proc.send_signal(signal.SIGTERM)
        while True:
            msg = recv_notify(ns, 10)
            assert msg is not None, "no STOPPING=1 within 10s of SIGTERM"
            if "STOPPING=1" in msg[1]:
                assert msg[0] == proc.pid
                break
        assert proc.wait(timeout=10) == 0
        assert attached(cgroup) == ATTACH_TYPES and links(bpffs) == pinned
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        ns.close()


def setpriv_argv(caps):
    """Runs as root with only CAPS, as systemd does with CapabilityBoundingSet= for a
    root service (after exec, permitted = effective = the bounding set)."""
    spec = "-all" + "".join(",+" + c[len("CAP_"):].lower() for c in caps)
    return ["setpriv", "--bounding-set", spec, "--inh-caps", "-all", "--"]


CAP_BITS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39}


def test_unit_capabilities_are_enough_and_each_is_needed(redis_pair, cgroup, bpffs, tmp_path):
    legacy, target = redis_pair
    caps = unit_caps()
    cfg = spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr], "ratio": "100%",
                      "mirror": "forward"}])

    class Limited(Daemon):
        def args(self):
            return setpriv_argv(self.caps) + super().args()

    # With the unit's set: attached, steering, mirroring.
    Limited.caps = caps
    os.makedirs(str(tmp_path / "all"))
    d = Limited(tmp_path / "all", cgroup=cgroup, bpffs=bpffs, config_text=cfg, start=False)
    try:
        d.start()
        with open("/proc/%d/status" % d.proc.pid) as f:
            eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", f.read()).group(1), 16)
        assert eff == sum(1 << CAP_BITS[c] for c in caps), hex(eff)
        assert attached(cgroup) == ATTACH_TYPES
        res = run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "cap-k"}])
        assert res[0]["conns"][0]["served_port"] == target.port
        d.syctl("status")
    finally:
        d.stop()
    subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", bpffs], check=True,
                   capture_output=True)

    # Without any one of them, a fresh start fails and leaves nothing attached.
    for missing in caps:
        Limited.caps = [c for c in caps if c != missing]
        os.makedirs(str(tmp_path / ("no-" + missing)))
        d = Limited(tmp_path / ("no-" + missing), cgroup=cgroup, bpffs=bpffs, config_text=cfg, start=False)
        try:
            with pytest.raises(AssertionError, match="exited"):
                d.start()
            assert attached(cgroup) == set(), "attached without %s" % missing
        finally:
            d.stop()
        subprocess.run([os.path.join(OUT, "switchyardd"), "--uninstall", "--bpffs", bpffs],
                       capture_output=True)


# --- the .deb ---------------------------------------------------------------------------

def dpkg_status(pkg=PKG):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def version():
    with open(os.path.join(ROOT, "agent", "core", "daemon.h")) as f:
        return re.search(r'#define SY_VERSION "([^"]+)"', f.read()).group(1)


def make_deb(deb_version):
    r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "OUT=" + OUT, "deb",
                        "DEB_VERSION=" + deb_version], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    path = r.stdout.strip().splitlines()[-1]
    path = path if os.path.isabs(path) else os.path.join(ROOT, path)
    assert os.path.basename(path) == "%s_%s_%s.deb" % (PKG, deb_version, arch()), path
    assert os.path.isfile(path)
    return path


def arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def debs():
    """make deb twice: the release version, and a later one for the upgrade."""
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "help2man"):
        if not shutil.which(tool):
            pytest.skip("%s missing (packaging/deps.sh installs it)" % tool)
    v1 = make_deb(version())
    v2 = make_deb(version() + "+pkgtest1")
    yield v1, v2
    os.unlink(v2)


def purge(bpffs):
    env = dict(os.environ, SWITCHYARD_BPFFS=bpffs, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(["dpkg", "--purge", PKG], env=env, capture_output=True, text=True, timeout=120)


def dpkg_install(deb, bpffs=None):
    """dpkg -i; with bpffs, the maintainer scripts are pointed at the test's pins (an
    upgrade must leave them alone all the same)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if bpffs:
        env["SWITCHYARD_BPFFS"] = bpffs
    r = subprocess.run(["dpkg", "-i", "--force-confold", deb], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture
def pkg(bpf_env, bpffs):
    """Guards this machine's real installation; purges whatever the test installed."""
    if os.geteuid() != 0 or not shutil.which("dpkg"):
        pytest.skip("needs root and dpkg")
    if dpkg_status():
        pytest.fail("a %s package is on this machine (%s): the test would replace and purge it; "
                    "dpkg --purge %s first" % (PKG, dpkg_status(), PKG))
    for p in (STATE_DIR, RUN_DIR, DEFAULT_BPFFS):
        if os.path.exists(p):
            pytest.fail("%s exists (a switchyardd run with default paths?): the purge would remove it" % p)
    try:
        yield
    finally:
        if dpkg_status():
            r = purge(bpffs)
            assert r.returncode == 0, r.stdout + r.stderr


class InstalledDaemon(Daemon):
    """/usr/sbin/switchyardd with the test's cgroup and bpffs; state dir and socket at
    the packaged defaults unless given."""

    def __init__(self, tmp, cgroup, bpffs, state_dir=None, sock=None, config=CONFFILE, **kw):
        self._state, self._sock, self._config = state_dir, sock, config
        super().__init__(tmp, cgroup=cgroup, bpffs=bpffs, **kw)

    def args(self):
        a = ["/usr/sbin/switchyardd", "--bpffs", self.bpffs, "--cgroup", self.cgroup, "--config", self._config,
             "--health-interval", self.health_interval, "--health-timeout", self.health_timeout]
        if self._state:
            a += ["--state-dir", self._state]
        if self._sock:
            a += ["--listen", "unix:" + self._sock]
        return a

    def syctl(self, *args, check=True):
        argv = ["/usr/bin/syctl"] + (["--server", "unix://" + self._sock] if self._sock else []) + list(args)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError("syctl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return r

    def status(self):
        return json.loads(self.syctl("-o", "json", "status").stdout)["daemon"]


def needed_packages(binary):
    """The Debian packages holding the libraries BINARY links directly (NEEDED)."""
    needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", binary], capture_output=True,
                                                           text=True, check=True).stdout)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    pkgs = set()
    for lib in needed:
        m = re.search(r"^\s*%s => (\S+)" % re.escape(lib), ldd, re.M)
        assert m, "ldd does not resolve %s" % lib
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(m.group(1))], capture_output=True, text=True)
        if owner.returncode != 0:  # /lib → /usr/lib merged paths
            owner = subprocess.run(["dpkg", "-S", m.group(1)], capture_output=True, text=True, check=True)
        pkgs.add(owner.stdout.split(":")[0])
    return pkgs


def test_deb_contents(debs, tmp_path):
    v1, _ = debs

    def field(name):
        return subprocess.run(["dpkg-deb", "-f", v1, name], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert field("Package") == PKG and field("Version") == version() and field("Architecture") == arch()
    depends = {d.split()[0] for d in field("Depends").split(", ")}
    for b in ("switchyardd", "syctl"):
        missing = needed_packages(os.path.join(OUT, b)) - depends
        assert not missing, "Depends lacks %s (%s)" % (missing, field("Depends"))
    assert {"libbpf1", "libprotobuf-c1", "libnghttp2-14", "libyaml-0-2", "libhiredis0.14"} <= depends
    # the dashboard's charts: switchyardd serves /usr/share/javascript/chart.js/chart.min.js
    assert "libjs-chart.js" in depends, field("Depends")

    files = subprocess.run(["dpkg-deb", "-c", v1], capture_output=True, text=True, check=True).stdout
    paths = {line.split()[-1].lstrip(".") for line in files.splitlines()}
    assert set(INSTALLED) <= paths, set(INSTALLED) - paths
    for doc in glob.glob(os.path.join(ROOT, "docs", "*.md")):
        assert "/usr/share/doc/switchyard/docs/" + os.path.basename(doc) in paths
    assert re.search(r"^-rwxr-xr-x root/root .* \./usr/sbin/switchyardd$", files, re.M)

    ctl = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", v1, str(ctl)], check=True)
    assert (ctl / "conffiles").read_text().split() == [CONFFILE]
    for s in ("postinst", "prerm", "postrm"):
        assert os.access(str(ctl / s), os.X_OK), s
        assert subprocess.run(["sh", "-n", str(ctl / s)]).returncode == 0

    ext = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", v1, str(ext)], check=True)
    # The man pages are the binaries' --help, every option of it.
    man8 = gzip.open(str(ext / "usr/share/man/man8/switchyardd.8.gz"), "rt").read()
    assert man8.startswith(".\\\" DO NOT MODIFY THIS FILE!  It was generated by help2man")
    for opt in re.findall(r"--([a-z][a-z-]+)", subprocess.run([os.path.join(OUT, "switchyardd"), "--help"],
                                                                capture_output=True, text=True).stdout):
        assert "\\-\\-" + opt.replace("-", "\\-") in man8, opt
    man1 = gzip.open(str(ext / "usr/share/man/man1/syctl.1.gz"), "rt").read()
    assert ".TH SYCTL \"1\"" in man1 and "cutover" in man1
    # Both pages carry examples and what each exit status means (packaging/man/*.h2m).
    for page in (man1, man8):
        assert ".SH EXAMPLES" in page and ".SH \"EXIT STATUS\"" in page, page[:200]
    for code in ("0", "1", "2", "3", "4"):
        assert ".B %s\n" % code in man1.split(".SH \"EXIT STATUS\"")[1], code
    # The shipped files are the repository's; the example config is valid.
    for rel, src in (("lib/systemd/system/switchyardd.service", UNIT), ("etc/switchyard/switchyard.yaml", EXAMPLE_CONFIG),
                     ("usr/share/switchyard/grafana/switchyard-dashboard.json", DASHBOARD)):
        assert (ext / rel).read_bytes() == open(src, "rb").read(), rel
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", EXAMPLE_CONFIG],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "0 migration(s), valid" in r.stdout, r.stderr
    # The licence: a DEP-5 copyright file, the repository's own, whose every Files
    # stanza names a licence that has its own paragraph.
    copyright = (ext / "usr/share/doc/switchyard/copyright").read_text()
    assert copyright == open(os.path.join(ROOT, "packaging/debian/copyright")).read()
    check_dep5(copyright)


def check_dep5(text):
    paras = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    head = dict(re.findall(r"^([A-Za-z-]+):[ ]?(.*)$", paras[0], re.M))
    assert head.get("Format") == "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/", head
    files, licences = [], set()
    for p in paras[1:]:
        fields = dict(re.findall(r"^([A-Za-z-]+):[ ]?(.*)$", p, re.M))
        for line in p.splitlines()[1:]:  # continuation lines start with a space
            assert line.startswith(" ") or re.match(r"^[A-Za-z-]+:", line), line
        if "Files" in fields:
            assert fields.get("Copyright") and fields.get("License"), p
            files.append(fields)
        else:
            assert list(fields) == ["License"], p
            licences.add(fields["License"].strip())
    assert files and files[0]["Files"] == "*"
    for f in files:
        for lic in re.split(r"\s+or\s+", f["License"].strip()):
            assert lic in licences, "%s has no License paragraph" % lic
    assert {"Apache-2.0", "GPL-2.0-only", "BSD-2-Clause"} <= licences


def test_install_run_purge(debs, pkg, cgroup, bpffs, tmp_path):
    """dpkg -i; the installed daemon with the packaged defaults (state dir, socket,
    conffile) but the test's cgroup and bpffs; syctl from /usr/bin; dpkg --purge."""
    v1, _ = debs
    default_bpffs_before = os.path.exists(DEFAULT_BPFFS)
    dpkg_install(v1)
    assert dpkg_status() == "install ok installed " + version()
    for p in INSTALLED:
        assert os.path.isfile(p), p
    # postinst enabled the unit (deb-systemd-helper works without a running systemd).
    wants = "/etc/systemd/system/multi-user.target.wants/switchyardd.service"
    assert os.path.islink(wants)
    assert os.path.realpath(wants) == os.path.realpath("/lib/systemd/system/switchyardd.service")

    d = InstalledDaemon(tmp_path, cgroup, bpffs)
    try:
        st = d.status()  # syctl's default server: the packaged socket
        assert st["version"] == version() and st["cgroup"] == cgroup and st["bpffs"] == bpffs
        assert st["stateDir" if "stateDir" in st else "state_dir"] == STATE_DIR
        assert not st.get("adopted", False)
        assert d.syctl("health").returncode == 0
        assert os.path.exists(os.path.join(RUN_DIR, "switchyard.sock"))
        assert attached(cgroup) == ATTACH_TYPES
    finally:
        d.stop()
    assert attached(cgroup) == ATTACH_TYPES and links(bpffs), "stopping must not detach"
    assert os.path.isdir(STATE_DIR)

    r = purge(bpffs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert dpkg_status() == ""
    for p in INSTALLED + [STATE_DIR, RUN_DIR, "/etc/switchyard", "/usr/share/doc/switchyard", "/usr/share/switchyard"]:
        assert not os.path.exists(p), "%s left after purge" % p
    assert not glob.glob("/etc/systemd/system/**/switchyardd.service", recursive=True)
    assert not os.path.exists(bpffs), "purge left the pins"
    assert attached(cgroup) == set(), "purge left programs attached"
    assert os.path.exists(DEFAULT_BPFFS) == default_bpffs_before


def test_upgrade_keeps_steering_and_new_daemon_adopts(debs, pkg, redis_pair, cgroup, bpffs, tmp_path):
    legacy, target = redis_pair
    v1, v2 = debs
    dpkg_install(v1)
    # The admin's configuration, in the conffile: the upgrade keeps it.
    with open(CONFFILE, "w") as f:
        f.write("# edited by the admin\n" + spec_yaml([{"name": "users", "legacy": [legacy.addr],
                                                         "target": [target.addr], "ratio": "100%"}]))
    conf = open(CONFFILE).read()
    sock = str(tmp_path / "up.sock")
    d = InstalledDaemon(tmp_path, cgroup, bpffs, state_dir=str(tmp_path / "state"), sock=sock)

    def served():
        return run_clients([{"cgroup": cgroup, "addr": legacy.addr, "key": "up-k"}])[0]["conns"][0]["served_port"]

    try:
        assert served() == target.port
        pinned = links(bpffs)
        # The upgrade, with the old daemon still running (no systemd here to restart it).
        dpkg_install(v2, bpffs=bpffs)
        assert dpkg_status() == "install ok installed %s+pkgtest1" % version()
        assert open(CONFFILE).read() == conf
        assert links(bpffs) == pinned, "the upgrade touched the pins"
        assert served() == target.port
        d.stop()
        assert served() == target.port, "no daemon: steering must go on (fail-static)"
        # The new binary adopts what the old one pinned.
        d.start()
        st = d.status()
        assert st.get("adopted") is True, st
        assert links(bpffs) == pinned
        assert served() == target.port
        ev = d.syctl("-o", "json", "events").stdout
        assert '"adopted":"true"' in ev.replace(" ", "") or "adopted pinned programs" in ev
    finally:
        d.stop()


# --- the DaemonSet ----------------------------------------------------------------------

def load_manifest():
    import yaml
    with open(MANIFEST) as f:
        docs = [x for x in yaml.safe_load_all(f) if x]
    return {x["kind"]: x for x in docs}


def arg_value(argv, name):
    for i, a in enumerate(argv):
        if a == name:
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def test_daemonset_manifest(tmp_path):
    m = load_manifest()
    assert {"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"} <= set(m)
    ds = m["DaemonSet"]
    ns = m["Namespace"]["metadata"]["name"]
    assert ds["metadata"]["namespace"] == ns == m["ConfigMap"]["metadata"]["namespace"]
    spec = ds["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == m["ServiceAccount"]["metadata"]["name"]
    assert pod["hostPID"] is True and pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert 10 <= pod["terminationGracePeriodSeconds"] <= 120
    (c,) = pod["containers"]
    argv = c["command"] + c.get("args", [])
    assert argv[0] == "/usr/sbin/switchyardd"

    # Security: not privileged, exactly the unit's capabilities.
    sc = c["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False and sc["runAsUser"] == 0
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sorted("CAP_" + x for x in sc["capabilities"]["add"]) == sorted(unit_caps())

    # Every mount has its volume, every volume is mounted.
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {mt["mountPath"]: mt for mt in c["volumeMounts"]}
    assert {mt["name"] for mt in mounts.values()} == set(vols)

    def host(path):
        mt = mounts[path]
        return vols[mt["name"]].get("hostPath", {}).get("path"), mt

    bpffs = arg_value(argv, "--bpffs")
    hp, mt = host("/sys/fs/bpf")
    assert hp == "/sys/fs/bpf" and bpffs.startswith("/sys/fs/bpf/") and not mt.get("readOnly")
    assert mt["mountPropagation"] in ("HostToContainer", "Bidirectional")
    for mt in mounts.values():  # the API server refuses Bidirectional without privileged
        assert mt.get("mountPropagation") != "Bidirectional" or sc["privileged"]
    cg = arg_value(argv, "--cgroup")
    hp, mt = host(cg)
    assert hp == "/sys/fs/cgroup" == cg
    hp, mt = host("/sys/kernel/btf")
    assert hp == "/sys/kernel/btf" and mt["readOnly"] is True
    state = arg_value(argv, "--state-dir")
    assert host(state)[0] == "/var/lib/switchyard"
    listen = arg_value(argv, "--listen")
    assert listen.startswith("unix:")
    sock = listen[len("unix:"):]
    assert host(os.path.dirname(sock))[0] == "/run/switchyard"
    # The config file comes from the ConfigMap, and is valid.
    config = arg_value(argv, "--config")
    cm_mount = mounts[os.path.dirname(config)]
    assert vols[cm_mount["name"]]["configMap"]["name"] == m["ConfigMap"]["metadata"]["name"]
    cfg = tmp_path / "cm.yaml"
    cfg.write_text(m["ConfigMap"]["data"][os.path.basename(config)])
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # The daemon accepts the container's arguments as written (--opt=value).
    r = subprocess.run([os.path.join(OUT, "switchyardd")] + argv[1:] + ["--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr

    # Probes: grpc.health.v1 (syctl health) on the socket the daemon listens on.
    for probe in ("readinessProbe", "livenessProbe"):
        cmd = c[probe]["exec"]["command"]
        assert cmd[0] == "/usr/bin/syctl" and cmd[-1] == "health", cmd
        assert arg_value(cmd, "--server") == "unix://" + sock, cmd
        assert c[probe]["timeoutSeconds"] >= 2

    res = c["resources"]
    for k in ("cpu", "memory"):
        assert k in res["requests"] and k in res["limits"]


def test_daemonset_probe_command_answers(daemon_factory):
    """The probes' command, against a real daemon on its socket."""
    d = daemon_factory()
    c = load_manifest()["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
    cmd = c["readinessProbe"]["exec"]["command"]
    cmd = [os.path.join(OUT, "syctl")] + [("unix://" + d.sock if a.startswith("unix://") else a) for a in cmd[1:]]
    assert subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
    d.stop()
    assert subprocess.run(cmd, capture_output=True, timeout=10).returncode != 0


# --- the Grafana dashboard --------------------------------------------------------------

METRICS = {
    "switchyard_operations_total", "switchyard_bytes_total", "switchyard_request_duration_seconds_bucket",
    "switchyard_request_duration_seconds_sum", "switchyard_request_duration_seconds_count",
    "switchyard_errors_total", "switchyard_unparsed_total", "switchyard_steering_decisions_total",
    "switchyard_mirror_commands_total", "switchyard_mirror_repairs_total", "switchyard_mirror_lag_seconds_bucket",
    "switchyard_mirror_queued", "switchyard_drift_checked_total", "switchyard_drift_found_total",
    "switchyard_drift_repaired_total", "switchyard_cutover_ratio", "switchyard_cutover_step",
    "switchyard_cutover_steps", "switchyard_cutover_state",
    "switchyard_gate_threshold", "switchyard_gate_value", "switchyard_endpoint_healthy",
    "switchyard_backfill_scanned", "switchyard_backfill_keys", "switchyard_backfill_running",
    "switchyard_audit_scanned", "switchyard_audit_keys", "switchyard_audit_running",
    "switchyard_mirror_needs_audit", "switchyard_mirror_dirty",
}
# Series that exist only once the cutover controller evaluated a step's gates (a plan
# running with traffic): test_ops_metrics.py checks them in a real scrape.
EVALUATED_ONLY = {"switchyard_gate_value"}


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def test_grafana_dashboard():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    tvars = {v["name"]: v for v in dash["templating"]["list"]}
    assert tvars["datasource"]["type"] == "datasource" and tvars["datasource"]["query"] == "prometheus"
    mig = tvars["migration"]
    assert mig["type"] == "query" and mig["datasource"]["uid"] == "${datasource}"
    assert re.fullmatch(r"label_values\((switchyard_\w+), migration\)", mig["query"]["query"]).group(1) in METRICS

    exprs = []
    ids = set()
    for p in all_panels(dash["panels"]):
        assert p["id"] not in ids
        ids.add(p["id"])
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"], p["title"]
            e = t["expr"]
            names = set(re.findall(r"\bswitchyard_\w+", e))
            assert names and names <= METRICS, (p["title"], names - METRICS)
            assert e.count("(") == e.count(")") and e.count("{") == e.count("}"), e
            # every series is one migration's (the row repeats per $migration)
            for sel in re.findall(r"switchyard_\w+(\{[^}]*\})?", e):
                assert 'migration="$migration"' in sel, (p["title"], e)
            exprs.append((p["title"], e))
    text = "\n".join(e for _, e in exprs)
    # What the dashboard must show, both sides where there are sides.
    assert re.search(r"sum by \(side, class\) \(rate\(switchyard_operations_total", text)
    assert re.search(r"histogram_quantile\(0\.99, sum by \(side, le\) \(rate\("
                     r"switchyard_request_duration_seconds_bucket", text)
    assert re.search(r"sum by \(side\) \(rate\(switchyard_errors_total", text)
    assert re.search(r"histogram_quantile\(0\.99, sum by \(direction, le\) \(rate\("
                     r"switchyard_mirror_lag_seconds_bucket", text)
    assert re.search(r'switchyard_mirror_commands_total\{[^}]*outcome=~"dropped\|failed"', text)
    for name in ("switchyard_drift_found_total", "switchyard_drift_repaired_total", "switchyard_cutover_ratio",
                 "switchyard_cutover_step", "switchyard_mirror_queued", "switchyard_steering_decisions_total"):
        assert name in text, name
    rows = [p for p in dash["panels"] if p["type"] == "row"]
    assert any(r.get("repeat") == "migration" for r in rows)
    # each gate's value against its threshold; phase changes as annotations
    for gate in ("drift_rate", "error_rate", "error_ratio", "p99_ratio"):
        assert 'switchyard_gate_value{migration="$migration",gate="%s"}' % gate in text, gate
        assert 'switchyard_gate_threshold{migration="$migration",gate="%s"}' % gate in text, gate
    for name in ("switchyard_endpoint_healthy", "switchyard_backfill_scanned", "switchyard_audit_keys",
                 "switchyard_mirror_needs_audit", "switchyard_mirror_dirty"):
        assert name in text, name
    ann = [a for a in dash["annotations"]["list"] if "switchyard_cutover_state" in a.get("expr", "")]
    assert ann and ann[0]["datasource"]["uid"] == "${datasource}" and "{{state}}" in ann[0]["titleFormat"]


def test_dashboard_metrics_are_what_the_daemon_exports(redis_pair, daemon_factory):
    """Every metric the dashboard queries is in a real scrape of switchyardd --metrics
    (histograms by their _bucket series), with the labels the panels group by."""
    import urllib.request
    legacy, target = redis_pair
    port = free_port()
    plan = {"steps": ["100%"], "gates": {"drift_rate": 0, "error_rate": "1%", "error_ratio": 3, "p99_ratio": 2}}
    daemon_factory(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr],
                               "mirror": "both", "plan": plan}]), extra=["--metrics", "127.0.0.1:%d" % port])
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    series = {}
    for line in text.splitlines():
        m = re.match(r'(switchyard_\w+)(?:\{(.*)\})? ', line)
        if m:
            series.setdefault(m.group(1), set()).update(re.findall(r'(\w+)="', m.group(2) or ""))
    with open(DASHBOARD) as f:
        exprs = [t["expr"] for p in all_panels(json.load(f)["panels"]) for t in p.get("targets", [])]
    for e in exprs:
        for name in re.findall(r"\bswitchyard_\w+", e):
            if name in EVALUATED_ONLY:
                continue
            assert name in series, "%s is not exported (%s)" % (name, sorted(series))
            assert "migration" in series[name], name
        for by in re.findall(r"sum by \(([^)]*)\) \(\w*\(?(switchyard_\w+)", e):
            labels = {x.strip() for x in by[0].split(",")}
            assert labels <= series[by[1]], (e, labels - series[by[1]])


def test_fleet_overlay_wires_the_store_and_the_node_name():
    """packaging/kubernetes/fleet: the DaemonSet's agents get --store from a ConfigMap
    and --node from the downward API, and the daemon accepts the arguments."""
    import yaml
    d = os.path.join(ROOT, "packaging", "kubernetes", "fleet")
    with open(os.path.join(d, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    for path in k["resources"] + [p["path"] for p in k["patches"]]:
        assert os.path.exists(os.path.join(d, path)), path
    with open(os.path.join(d, "store.yaml")) as f:
        store = {x["kind"]: x for x in yaml.safe_load_all(f) if x}
    with open(os.path.join(d, "daemonset-store.yaml")) as f:
        patch = yaml.safe_load(f)
    base = load_manifest()
    ns = base["Namespace"]["metadata"]["name"]
    assert store["ConfigMap"]["metadata"]["namespace"] == store["Service"]["metadata"]["namespace"] == ns
    assert patch["metadata"]["name"] == base["DaemonSet"]["metadata"]["name"]
    (c,) = patch["spec"]["template"]["spec"]["containers"]
    (base_c,) = base["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    assert c["name"] == base_c["name"]
    env = {e["name"]: e["valueFrom"] for e in c["env"]}
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    ref = env["SY_STORE"]["configMapKeyRef"]
    assert ref["name"] == store["ConfigMap"]["metadata"]["name"]
    url = store["ConfigMap"]["data"][ref["key"]]
    assert arg_value(c["args"], "--store") == "$(SY_STORE)"
    assert arg_value(c["args"], "--node") == "$(NODE_NAME)"
    # The store's addresses are dialled as written: the Service's fixed cluster IP.
    svc = store["Service"]["spec"]
    assert url.startswith("etcd://%s:%d/" % (svc["clusterIP"], svc["ports"][0]["port"]))
    argv = base_c["command"] + [a.replace("$(SY_STORE)", url).replace("$(NODE_NAME)", "node-1")
                                for a in c["args"]]
    r = subprocess.run([os.path.join(OUT, "switchyardd")] + argv[1:] + ["--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
