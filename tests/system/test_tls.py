# SPDX-License-Identifier: Apache-2.0
"""TLS and mTLS on every gRPC connection (agent/rpc/tls.c, agent/api/tls_setup.c;
docs/security.md): the TCP control listener with a client CA, checked with an
independent client (Debian's python3-grpcio) and with syctl; a TCP listener without TLS
refuses to start; a read-only identity (OU of its client certificate) may look but not
act, and the state file stays byte-identical; certificates rotate on SIGHUP; the OTLP
exporter speaks TLS to a grpcio collector and the etcd store to Debian's etcd.

Certificates are made per test with the openssl CLI: a CA, a server certificate for
localhost / 127.0.0.1, client certificates (an operator, a viewer with OU=viewers), and
a client certificate from another CA."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from concurrent import futures

import grpc
import pytest

from grpc_util import pb, unary
from otlp_rx import SERVICE as OTLP_SERVICE
from sy import OUT, free_port, spec_yaml, wait_for

CTL = "/switchyard.v1.Control/"
READONLY_OU = "viewers"


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


class Pki:
    """A test CA in a folder, and certificates it (or another CA) signs."""

    def __init__(self, folder):
        self.dir = str(folder)
        os.makedirs(self.dir, exist_ok=True)
        self.ca("ca", "sy test CA")
        self.ca("other-ca", "another CA")
        self.cert("server", "localhost", san="DNS:localhost,IP:127.0.0.1")
        self.cert("operator", "ops", ou="operators")
        self.cert("viewer", "dash", ou=READONLY_OU)
        self.cert("stranger", "ops", ou="operators", ca="other-ca")

    def p(self, name):
        return os.path.join(self.dir, name)

    def ca(self, name, cn):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                name + ".key", "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + cn, cwd=self.dir)
        os.chmod(self.p(name + ".key"), 0o600)

    def cert(self, name, cn, ou=None, san=None, ca="ca", out=None):
        out = out or name
        subj = "/CN=%s" % cn + ("/OU=%s" % ou if ou else "")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                out + ".key", "-out", out + ".csr", "-subj", subj, cwd=self.dir)
        ext = self.p(out + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if san:
                f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % san)
            else:
                f.write("extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", out + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
                "-out", out + ".pem", "-days", "2", "-extfile", ext, cwd=self.dir)
        os.chmod(self.p(out + ".key"), 0o600)

    def read(self, name):
        with open(self.p(name), "rb") as f:
            return f.read()

    def creds(self, client=None, ca="ca"):
        if client is None:
            return grpc.ssl_channel_credentials(root_certificates=self.read(ca + ".pem"))
        return grpc.ssl_channel_credentials(root_certificates=self.read(ca + ".pem"),
                                            private_key=self.read(client + ".key"),
                                            certificate_chain=self.read(client + ".pem"))


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path / "pki")


def ctl():
    return pb("switchyard.v1.control")


def tls_args(pki, port, readonly=True):
    # [::1] too: the certificate names localhost and 127.0.0.1, not ::1
    a = ["--listen", "127.0.0.1:%d" % port, "--listen", "[::1]:%d" % port, "--tls-cert", pki.p("server.pem"), "--tls-key", pki.p("server.key"),
         "--tls-client-ca", pki.p("ca.pem")]
    return a + (["--tls-readonly-ou", READONLY_OU] if readonly else [])


@pytest.fixture
def mtls(pki, daemon_factory):
    port = free_port()
    d = daemon_factory(None, extra=tls_args(pki, port))
    return d, port


def status(port, creds, timeout=5):
    with grpc.secure_channel("127.0.0.1:%d" % port, creds, options=[("grpc.enable_retries", 0)]) as ch:
        return unary(ch, CTL + "Status", ctl().StatusRequest(), ctl().StatusResponse, timeout=timeout)


def refused(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def syctl(port, pki, *args, client="operator", env=None):
    a = [os.path.join(OUT, "syctl"), "--server", "127.0.0.1:%d" % port]
    if env is None:
        a += ["--tls-ca", pki.p("ca.pem")]
        if client:
            a += ["--tls-cert", pki.p(client + ".pem"), "--tls-key", pki.p(client + ".key")]
    return subprocess.run(a + list(args), capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, **(env or {})))


def test_tcp_listen_without_tls_refuses_to_start(tmp_path):
    port = free_port()
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--state-dir", str(tmp_path / "st"), "--bpffs",
                        "/sys/fs/bpf/sy-never-%s" % uuid.uuid4().hex[:8], "--listen", "127.0.0.1:%d" % port],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:%d" % port in lines[0] and "--tls-cert" in lines[0] \
        and "--insecure-listen" in lines[0], r.stderr
    assert not os.path.exists(str(tmp_path / "st")), "refused before anything was touched"
    # half a pair, and a role without the CA that makes it meaningful, are usage errors too
    for extra, why in ((["--tls-cert", "x.pem"], "--tls-key"),
                       (["--tls-cert", "x.pem", "--tls-key", "x.key", "--tls-readonly-ou", "v"], "--tls-client-ca")):
        r = subprocess.run([os.path.join(OUT, "switchyardd"), "--state-dir", str(tmp_path / "st")] + extra,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and why in r.stderr, r.stderr


def test_key_readable_by_others_is_refused(pki, tmp_path):
    os.chmod(pki.p("server.key"), 0o644)
    r = subprocess.run([os.path.join(OUT, "switchyardd"), "--state-dir", str(tmp_path / "st"),
                        "--listen", "127.0.0.1:%d" % free_port(), "--tls-cert", pki.p("server.pem"),
                        "--tls-key", pki.p("server.key")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "server.key" in r.stderr and "readable by group or others" in r.stderr, r.stderr


def test_insecure_listen_starts_with_a_warning(daemon_factory):
    port = free_port()
    d = daemon_factory(None, extra=["--listen", "127.0.0.1:%d" % port, "--insecure-listen"])
    log = d.read_log()
    assert "--insecure-listen" in log and "unencrypted" in log, log
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        unary(ch, CTL + "Status", ctl().StatusRequest(), ctl().StatusResponse)


def test_mtls_client_certificate_required_and_checked(pki, mtls):
    d, port = mtls
    # an operator's certificate from the CA: served
    r = status(port, pki.creds("operator"))
    assert r.version
    # no client certificate, a certificate of another CA: the handshake is refused
    for creds in (pki.creds(None), pki.creds("stranger")):
        code, _ = refused(lambda: status(port, creds))
        assert code == grpc.StatusCode.UNAVAILABLE
    # clear-text HTTP/2 to the TLS port: refused too
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        with pytest.raises(grpc.RpcError):
            unary(ch, CTL + "Status", ctl().StatusRequest(), ctl().StatusResponse, timeout=3)
    log = d.read_log()
    assert "TLS client 127.0.0.1 refused" in log, log
    # the server checks the client's certificate, and the client the server's: a client that
    # trusts only the other CA refuses the daemon
    code, _ = refused(lambda: status(port, pki.creds("operator", ca="other-ca")))
    assert code == grpc.StatusCode.UNAVAILABLE
    # the unix socket stays the default door, plain and 0600
    assert oct(os.stat(d.sock).st_mode & 0o777) == "0o600"
    # Status says how the control plane is protected, and counts the refusals
    tls = json.loads(d.syctl("-o", "json", "status").stdout)["daemon"]["tls"]
    assert tls["enabled"] and tls["clientAuth"] and tls["readonlyOu"] == READONLY_OU, tls
    assert int(tls["handshakesRefused"]) >= 3, tls
    cert = tls["certificates"][0]
    assert cert["context"] == "control plane" and "CN=localhost" in cert["subject"], cert
    assert int(cert["notAfterUnixMs"]) > time.time() * 1000
    table = d.syctl("status").stdout
    assert "tls:       mTLS, read-only OU viewers" in table and "cert:      control plane: " in table, table


def test_syctl_over_mtls(pki, mtls, redis_pair):
    d, port = mtls
    legacy, target = redis_pair
    r = syctl(port, pki, "-o", "json", "status")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)
    # the same from SYCTL_TLS_* environment variables
    r = syctl(port, pki, "status", env={"SYCTL_TLS_CA": pki.p("ca.pem"), "SYCTL_TLS_CERT": pki.p("operator.pem"),
                                        "SYCTL_TLS_KEY": pki.p("operator.key")})
    assert r.returncode == 0, r.stderr
    # an operator acts: apply, then cutover
    f = os.path.join(d.tmp, "users.yaml")
    with open(f, "w") as fh:
        fh.write(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr]}]))
    assert syctl(port, pki, "apply", "-f", f).returncode == 0
    r = syctl(port, pki, "cutover", "users", "5%")
    assert r.returncode == 0, r.stderr
    got = json.loads(d.syctl("-o", "json", "get", "users").stdout)
    assert got["spec"]["ratioBp"] == 500
    # the change names its caller by address and certificate subject
    ev = d.syctl("-o", "json", "events", "users", "--kind", "migration.ratio_changed").stdout
    peers = [json.loads(line)["attributes"].get("peer", "") for line in ev.splitlines() if line.strip()]
    assert len(peers) == 1 and peers[0].startswith("127.0.0.1:") and peers[0].endswith(" CN=ops OU=operators"), ev
    # without a client certificate: unreachable (3), saying why
    r = syctl(port, pki, "status", client=None)
    assert r.returncode == 3 and "127.0.0.1:%d" % port in r.stderr and "certificate required" in r.stderr, r.stderr
    # an address that is not in the certificate: refused by syctl
    r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "[::1]:%d" % port, "--tls-ca", pki.p("ca.pem"),
                        "--tls-cert", pki.p("operator.pem"), "--tls-key", pki.p("operator.key"), "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "certificate verify failed" in r.stderr, r.stderr
    # TLS flags aimed at a unix socket: a usage error
    r = subprocess.run([os.path.join(OUT, "syctl"), "--server", "unix://" + d.sock, "--tls-ca", pki.p("ca.pem"),
                        "status"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unix socket" in r.stderr, r.stderr


def test_readonly_identity_may_look_but_not_act(pki, mtls, redis_pair):
    d, port = mtls
    legacy, target = redis_pair
    c = ctl()
    m = pb("switchyard.v1.migration")
    spec = m.MigrationSpec(name="users", legacy=[legacy.addr], target=[target.addr], ratio_bp=0)
    with grpc.insecure_channel("unix:" + d.sock) as ch:
        unary(ch, CTL + "ApplyMigration", c.ApplyMigrationRequest(spec=spec), c.Migration)
    before = d.state_bytes()
    viewer = pki.creds("viewer")
    with grpc.secure_channel("127.0.0.1:%d" % port, viewer) as ch:
        # every look is served
        assert unary(ch, CTL + "Status", c.StatusRequest(), c.StatusResponse).version
        assert [x.spec.name for x in
                unary(ch, CTL + "ListMigrations", c.ListMigrationsRequest(), c.ListMigrationsResponse).migrations] \
            == ["users"]
        assert unary(ch, CTL + "GetMigration", c.GetMigrationRequest(name="users"), c.Migration).spec.name == "users"
        # every action is refused, before anything changes
        for method, req, resp in (
                ("SetRatio", c.SetRatioRequest(name="users", ratio_bp=5000), c.Migration),
                ("ApplyMigration", c.ApplyMigrationRequest(spec=spec), c.Migration),
                ("DeleteMigration", c.DeleteMigrationRequest(name="users"), c.DeleteMigrationResponse),
                ("Pin", c.PinRequest(name="users"), c.Migration)):
            code, msg = refused(lambda: unary(ch, CTL + method, req, resp))
            assert code == grpc.StatusCode.PERMISSION_DENIED, (method, code, msg)
            assert "read-only" in msg and "OU=" + READONLY_OU in msg, msg
    assert d.state_bytes() == before, "a refused call changed the state file"
    tls = json.loads(d.syctl("-o", "json", "status").stdout)["daemon"]["tls"]
    assert int(tls["readonlyDenied"]) == 4, tls
    assert json.loads(d.syctl("-o", "json", "get", "users").stdout)["spec"].get("ratioBp", 0) == 0
    # syctl with the viewer's certificate: status and the events stream work, cutover is
    # refused (exit 1)
    assert syctl(port, pki, "status", client="viewer").returncode == 0
    r = syctl(port, pki, "-o", "json", "events", "users", client="viewer")
    assert r.returncode == 0 and "migration.created" in r.stdout, r.stderr
    r = syctl(port, pki, "cutover", "users", "50%", client="viewer")
    assert r.returncode == 1 and "read-only" in r.stderr, r.stderr
    assert d.state_bytes() == before
    # the operator's certificate (another OU) may act
    with grpc.secure_channel("127.0.0.1:%d" % port, pki.creds("operator")) as ch:
        assert unary(ch, CTL + "SetRatio", c.SetRatioRequest(name="users", ratio_bp=100), c.Migration).spec.ratio_bp \
            == 100


def peer_cert_cn(port, pki):
    ctx = ssl.create_default_context(cafile=pki.p("ca.pem"))
    ctx.load_cert_chain(pki.p("operator.pem"), pki.p("operator.key"))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            cert = t.getpeercert()
            assert t.selected_alpn_protocol() == "h2"
    return dict(x[0] for x in cert["subject"])["commonName"], cert["serialNumber"]


def test_certificates_rotate_on_sighup(pki, mtls):
    d, port = mtls
    cn, serial = peer_cert_cn(port, pki)
    assert cn == "localhost"
    # a new server certificate (new serial, new CN) written over the files, then SIGHUP
    pki.cert("server2", "localhost-rotated", san="DNS:localhost,IP:127.0.0.1")
    shutil.copy(pki.p("server2.pem"), pki.p("server.pem"))
    shutil.copy(pki.p("server2.key"), pki.p("server.key"))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: peer_cert_cn(port, pki)[0] == "localhost-rotated", timeout=10, what="rotated certificate")
    assert peer_cert_cn(port, pki)[1] != serial
    assert status(port, pki.creds("operator")).version
    # a bad pair (the key of another certificate) is refused: the running certificate stays
    shutil.copy(pki.p("operator.key"), pki.p("server.key"))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused, running certificate kept" in d.read_log(), timeout=10, what="refused reload")
    assert peer_cert_cn(port, pki)[0] == "localhost-rotated"
    ev = d.syctl("-o", "json", "events", "--kind", "daemon.tls_reloaded,daemon.tls_reload_failed").stdout
    kinds = [json.loads(line)["kind"] for line in ev.splitlines() if line.strip()]
    assert kinds == ["daemon.tls_reloaded", "daemon.tls_reload_failed"], ev


class TlsReceiver:
    """An OTLP collector (grpcio) on TLS with the test CA's server certificate."""

    def __init__(self, pki):
        self.calls = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(OTLP_SERVICE, {
            "Export": grpc.unary_unary_rpc_method_handler(self._export),
        })
        self.server.add_generic_rpc_handlers((handler,))
        creds = grpc.ssl_server_credentials([(pki.read("server.key"), pki.read("server.pem"))],
                                            root_certificates=pki.read("ca.pem"), require_client_auth=True)
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()

    def _export(self, body, ctx):
        self.calls.append((body, dict(ctx.auth_context())))
        return b""

    def stop(self):
        self.server.stop(0).wait()


def test_otlp_over_mtls_to_a_grpcio_collector(pki, daemon_factory):
    rx = TlsReceiver(pki)
    try:
        d = daemon_factory(None, extra=["--otlp-endpoint", "127.0.0.1:%d" % rx.port, "--otlp-interval", "300ms",
                                        "--otlp-tls-ca", pki.p("ca.pem"), "--otlp-tls-cert", pki.p("operator.pem"),
                                        "--otlp-tls-key", pki.p("operator.key")])
        wait_for(lambda: rx.calls, timeout=15, what="an OTLP export over TLS")
        body, auth = rx.calls[0]
        assert b"switchyard" in body
        assert auth.get("x509_common_name") == [b"ops"], auth
        assert "over TLS" in d.read_log()
        d.stop()
        # a collector whose certificate the agent's CA did not sign: nothing is exported
        n = len(rx.calls)
        d2 = daemon_factory(None, extra=["--otlp-endpoint", "127.0.0.1:%d" % rx.port, "--otlp-interval", "300ms",
                                         "--otlp-tls-ca", pki.p("other-ca.pem")])
        wait_for(lambda: "certificate verify failed" in d2.read_log(), timeout=15, what="verify failure logged")
        assert len(rx.calls) == n
    finally:
        rx.stop()


@pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("etcdctl") is None,
                    reason="etcd-server / etcd-client not installed (packaging/deps.sh)")
def test_etcd_store_over_mtls(pki, daemon_factory, redis_pair, tmp_path):
    legacy, target = redis_pair
    cport, pport = free_port(), free_port()
    data = str(tmp_path / "etcd")
    client = "https://127.0.0.1:%d" % cport
    peer = "http://127.0.0.1:%d" % pport
    log = open(data + ".log", "a")
    etcd = subprocess.Popen(
        ["etcd", "--name", "t", "--data-dir", data, "--listen-client-urls", client, "--advertise-client-urls", client,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "t=" + peer,
         "--cert-file", pki.p("server.pem"), "--key-file", pki.p("server.key"), "--trusted-ca-file", pki.p("ca.pem"),
         "--client-cert-auth"], stdout=log, stderr=log)
    log.close()
    ctl_args = ["etcdctl", "--endpoints", client, "--cacert", pki.p("ca.pem"), "--cert", pki.p("operator.pem"),
                "--key", pki.p("operator.key"), "--dial-timeout", "2s"]
    env = dict(os.environ, ETCDCTL_API="3")
    try:
        wait_for(lambda: subprocess.run(ctl_args + ["endpoint", "health"], env=env, capture_output=True)
                 .returncode == 0, timeout=20, what="etcd over TLS")
        prefix = "/sy-tls-%s" % uuid.uuid4().hex[:8]
        # a CA that did not sign etcd's certificate (and no cached state to start from): the
        # agent refuses to start, saying why
        d2 = daemon_factory(None, extra=["--store", "etcd://127.0.0.1:%d%s" % (cport, prefix), "--node", "b",
                                         "--store-tls-ca", pki.p("other-ca.pem")], start=False)
        d2.start(expect_ready=False)
        d2.proc.wait(timeout=30)
        assert d2.proc.returncode != 0
        assert "certificate verify failed" in d2.read_log(), d2.read_log()
        d = daemon_factory(None, extra=["--store", "etcd://127.0.0.1:%d%s" % (cport, prefix), "--node", "a",
                                        "--store-tls-ca", pki.p("ca.pem"), "--store-tls-cert", pki.p("operator.pem"),
                                        "--store-tls-key", pki.p("operator.key")])
        f = os.path.join(d.tmp, "users.yaml")
        with open(f, "w") as fh:
            fh.write(spec_yaml([{"name": "users", "legacy": [legacy.addr], "target": [target.addr]}]))
        d.syctl("apply", "-f", f)
        keys = subprocess.run(ctl_args + ["get", "--prefix", "--keys-only", prefix], env=env, capture_output=True,
                              text=True, check=True).stdout.split()
        assert prefix + "/state" in keys and prefix + "/nodes/a" in keys, keys
        d.stop()
    finally:
        etcd.terminate()
        etcd.wait(timeout=20)


def test_http_listener_serves_https_with_the_same_certificate(pki, daemon_factory):
    port, hport = free_port(), free_port()
    d = daemon_factory(None, extra=tls_args(pki, port) + ["--http", "127.0.0.1:%d" % hport])
    ctx = ssl.create_default_context(cafile=pki.p("ca.pem"))
    with urllib.request.urlopen("https://localhost:%d/api/v1/status" % hport, context=ctx, timeout=10) as r:
        body = json.loads(r.read())
    assert body["tls"]["enabled"] is True, body
    assert "over HTTPS" in d.read_log()
    # a refused handshake shows in the TLS metrics, next to the certificate's expiry
    code, _ = refused(lambda: status(port, pki.creds(None)))
    assert code == grpc.StatusCode.UNAVAILABLE
    with urllib.request.urlopen("https://localhost:%d/metrics" % hport, context=ctx, timeout=10) as r:
        prom = r.read().decode()
    got = {l.split(" ")[0]: float(l.split(" ")[1]) for l in prom.splitlines()
           if l.startswith("switchyard_tls_")}
    assert got.get("switchyard_tls_handshakes_refused_total", 0) >= 1, prom
    assert got.get("switchyard_tls_readonly_denied_total") == 0, prom
    assert got.get('switchyard_tls_certificate_expiry_seconds{role="server"}', 0) > time.time(), prom
    # plain HTTP to the HTTPS port gets no answer it could use
    with pytest.raises(Exception):
        urllib.request.urlopen("http://127.0.0.1:%d/api/v1/status" % hport, timeout=5).read()
    # a client that does not trust the CA refuses the listener
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen("https://localhost:%d/api/v1/status" % hport,
                               context=ssl.create_default_context(cafile=pki.p("other-ca.pem")), timeout=5)


def test_a_client_that_never_handshakes_is_closed(pki, mtls):
    d, port = mtls
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        t0 = time.monotonic()
        assert s.recv(1) == b"", "the server closes a connection without a handshake"
        assert 5 < time.monotonic() - t0 < 25
    finally:
        s.close()
    assert "no handshake within 10 s" in d.read_log()
    # and it still serves
    assert status(port, pki.creds("operator")).version
