// SPDX-License-Identifier: Apache-2.0
/* tls.h — the one TLS layer (OpenSSL) under every gRPC connection the project makes or
 * takes: the daemon's TCP control listener (server, optionally mTLS), syctl, the OTLP
 * exporter and the etcd store (clients). Why one layer: the same rules everywhere —
 * TLS 1.2 or later, ALPN "h2", the peer's certificate verified against the given CA, a
 * client checks the server's name (DNS name or IP address, as the target is written)
 * against the certificate, and files re-read on demand (SIGHUP) without a restart.
 *
 * A context (struct sy_tls) holds the files and the OpenSSL context built from them.
 * sy_tls_reload builds a fresh one from the same files and swaps it in only when it is
 * complete: a bad file keeps the running certificate. Connections already open keep the
 * context they started with (OpenSSL counts its references).
 *
 * A connection (struct sy_tls_conn) is non-blocking: on a socket, or (fd < 0) on two
 * memory buffers for the fuzzer (sy_tls_conn_feed / sy_tls_conn_take). Every call
 * returns at once; SY_TLS_WANT_* says what the socket must become before trying again.
 * Messages never contain key material: only file names and OpenSSL's reason strings.
 */
#ifndef SY_TLS_H
#define SY_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum sy_tls_role { SY_TLS_SERVER, SY_TLS_CLIENT };

/* Files, copied by sy_tls_new. Server: cert and key required; ca = the client CA (then
 * every client must present a certificate it signed: mTLS). Client: ca = the trusted CA
 * (NULL: the system's store); cert and key = an optional client certificate (both or
 * neither). readonly_ou (server only, may be NULL): a client certificate with this
 * organizational unit in its subject is a read-only identity (sy_tls_conn_readonly). */
struct sy_tls_files {
	const char *cert;
	const char *key;
	const char *ca;
	const char *readonly_ou;
};

struct sy_tls;
struct sy_tls_conn;

/* 0, or a negative errno with why filled ("--tls-key /x: mode 0644: readable by group
 * or others", "server.pem: no certificate in the file"). A key file must be readable by
 * its owner only, like every secret the agent reads. */
int sy_tls_new(enum sy_tls_role role, const struct sy_tls_files *f, struct sy_tls **out, char *why,
	       size_t wn);
/* Re-reads the files; on failure the running context stays and why says what failed. */
int sy_tls_reload(struct sy_tls *t, char *why, size_t wn);
void sy_tls_free(struct sy_tls *t);
/* A one-line description for logs: "cert FILE (CN=…, expires …)". */
const char *sy_tls_describe(const struct sy_tls *t, char *buf, size_t n);
/* The certificate presented (NULL file when there is none): its file, subject and
 * expiry in unix ms. */
void sy_tls_cert_info(const struct sy_tls *t, const char **file, char *subject, size_t n,
		      uint64_t *not_after_ms);

enum { SY_TLS_WANT_READ = 1, SY_TLS_WANT_WRITE = 2 };

/* A connection on fd (not owned: the caller closes it), or on memory buffers (fd < 0).
 * server_name (clients): the host as the target was written, checked against the
 * server's certificate (an IP address against its IP SANs) and sent as SNI when it is a
 * DNS name. NULL on out of memory. */
struct sy_tls_conn *sy_tls_conn_new(struct sy_tls *t, int fd, const char *server_name);
void sy_tls_conn_free(struct sy_tls_conn *c);

/* Drives the handshake: 1 done, 0 in progress (see sy_tls_conn_want), or -1 failed with
 * why filled (the peer's certificate refused, no h2 in ALPN, a protocol error). */
int sy_tls_handshake(struct sy_tls_conn *c, char *why, size_t wn);
/* Like recv/send: > 0 bytes, 0 = the peer closed (read only), -1 with errno EAGAIN (see
 * sy_tls_conn_want) or EPROTO/ECONNRESET/EPIPE (the connection is over). A write that
 * returned -1 EAGAIN must be retried with the same bytes. */
ssize_t sy_tls_read(struct sy_tls_conn *c, void *buf, size_t n);
ssize_t sy_tls_write(struct sy_tls_conn *c, const void *buf, size_t n);
unsigned sy_tls_conn_want(const struct sy_tls_conn *c);
/* After EPROTO: OpenSSL's reason ("…tlsv13 alert certificate required"). */
const char *sy_tls_conn_error(const struct sy_tls_conn *c);
/* Decrypted bytes OpenSSL holds that the socket will not signal again. */
int sy_tls_conn_pending(const struct sy_tls_conn *c);
/* After the handshake: 1 when the peer's certificate names the read-only OU. */
int sy_tls_conn_readonly(const struct sy_tls_conn *c);
/* After the handshake: the peer certificate's subject CN (and OU), "" without one. */
const char *sy_tls_conn_peer(const struct sy_tls_conn *c);

/* Memory connections (fd < 0): bytes from the peer in; bytes for the peer out (up to
 * n, returns how many, 0 when none). */
int sy_tls_conn_feed(struct sy_tls_conn *c, const void *data, size_t n);
size_t sy_tls_conn_take(struct sy_tls_conn *c, void *out, size_t n);

#endif
