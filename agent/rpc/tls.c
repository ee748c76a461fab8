// SPDX-License-Identifier: Apache-2.0
/* tls.c — see tls.h. OpenSSL 3 (Debian's libssl-dev): one SSL_CTX per context, swapped
 * whole on reload; one SSL per connection on its socket (or on memory BIOs). */
#include "rpc/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PATH_LEN 512

struct sy_tls {
	enum sy_tls_role role;
	char cert[PATH_LEN], key[PATH_LEN], ca[PATH_LEN], ou[128];
	SSL_CTX *ctx;
	char desc[1024]; /* subject and expiry of our certificate, for the logs */
};

struct sy_tls_conn {
	struct sy_tls *t;
	SSL *ssl;
	BIO *rbio, *wbio; /* memory connections only (owned by ssl) */
	unsigned want;
	int done;
	int readonly;
	char peer[256];
	char err[256]; /* why the last read or write failed with EPROTO */
};

static const unsigned char ALPN_H2[] = {2, 'h', '2'};

/* The first OpenSSL reason on the error queue, the root cause (the queue is then
 * cleared: later entries only say which caller passed it on). */
static const char *ossl_reason(char *buf, size_t n)
{
	unsigned long first = ERR_get_error();

	ERR_clear_error();
	if (!first) {
		snprintf(buf, n, "unknown OpenSSL error");
		return buf;
	}
	ERR_error_string_n(first, buf, n);
	return buf;
}

/* The error queue's root cause into buf (the queue is emptied); 1 when one of its
 * entries is "key values mismatch": a key of another certificate. */
static int key_error(char *buf, size_t n)
{
	unsigned long first = ERR_peek_error(), e;
	int mismatch = 0;

	while ((e = ERR_get_error()))
		if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
			mismatch = 1;
	if (first)
		ERR_error_string_n(first, buf, n);
	else
		snprintf(buf, n, "unknown OpenSSL error");
	return mismatch;
}

static int check_key_mode(const char *path, char *why, size_t wn)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int e = -errno;

		snprintf(why, wn, "%s: %s", path, strerror(errno));
		return e;
	}
	if (st.st_mode & 077) {
		snprintf(why, wn, "%s: mode %04o: readable by group or others (chmod 600)", path,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned inlen, void *arg)
{
	unsigned char *o;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&o, outlen, ALPN_H2, sizeof(ALPN_H2), in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* gRPC is h2 only */
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

static void describe(struct sy_tls *t, SSL_CTX *ctx)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	char subj[200] = "", exp[64] = "";

	if (!x) {
		snprintf(t->desc, sizeof(t->desc), "no certificate, CA %s", t->ca[0] ? t->ca : "(system)");
		return;
	}
	X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
	BIO *b = BIO_new(BIO_s_mem());

	if (b) {
		ASN1_TIME_print(b, X509_get0_notAfter(x));
		int n = BIO_read(b, exp, sizeof(exp) - 1);

		exp[n > 0 ? n : 0] = '\0';
		BIO_free(b);
	}
	snprintf(t->desc, sizeof(t->desc), "cert %s (%s, expires %s)", t->cert, subj, exp);
}

/* A complete SSL_CTX from the files, or NULL with why. */
static SSL_CTX *build(struct sy_tls *t, char *why, size_t wn)
{
	SSL_CTX *ctx = SSL_CTX_new(t->role == SY_TLS_SERVER ? TLS_server_method() : TLS_client_method());
	char r[256];

	ERR_clear_error();
	if (!ctx) {
		snprintf(why, wn, "TLS context: %s", ossl_reason(r, sizeof(r)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (t->cert[0]) {
		if (check_key_mode(t->key, why, wn))
			goto fail;
		if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
			snprintf(why, wn, "%s: %s", t->cert, ossl_reason(r, sizeof(r)));
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
			if (key_error(r, sizeof(r)))
				snprintf(why, wn, "%s does not match the certificate %s", t->key, t->cert);
			else
				snprintf(why, wn, "%s: %s", t->key, r);
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(why, wn, "%s does not match the certificate %s", t->key, t->cert);
			goto fail;
		}
	}
	if (t->ca[0]) {
		if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
			snprintf(why, wn, "%s: %s", t->ca, ossl_reason(r, sizeof(r)));
			goto fail;
		}
	} else if (t->role == SY_TLS_CLIENT && SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(why, wn, "system CA store: %s", ossl_reason(r, sizeof(r)));
		goto fail;
	}
	if (t->role == SY_TLS_SERVER) {
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
		if (t->ca[0]) {
			STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca);

			if (names)
				SSL_CTX_set_client_CA_list(ctx, names);
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		}
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (SSL_CTX_set_alpn_protos(ctx, ALPN_H2, sizeof(ALPN_H2)) != 0) {
			snprintf(why, wn, "ALPN: %s", ossl_reason(r, sizeof(r)));
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

int sy_tls_new(enum sy_tls_role role, const struct sy_tls_files *f, struct sy_tls **out, char *why, size_t wn)
{
	struct sy_tls *t;

	*out = NULL;
	if (!!f->cert != !!f->key) {
		snprintf(why, wn, "a certificate needs its key and a key its certificate");
		return -EINVAL;
	}
	if (role == SY_TLS_SERVER && !f->cert) {
		snprintf(why, wn, "a TLS server needs a certificate and its key");
		return -EINVAL;
	}
	if ((f->cert && strlen(f->cert) >= PATH_LEN) || (f->key && strlen(f->key) >= PATH_LEN) ||
	    (f->ca && strlen(f->ca) >= PATH_LEN) || (f->readonly_ou && strlen(f->readonly_ou) >= 128)) {
		snprintf(why, wn, "file name too long");
		return -ENAMETOOLONG;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(why, wn, "out of memory");
		return -ENOMEM;
	}
	t->role = role;
	copy(t->cert, sizeof(t->cert), f->cert);
	copy(t->key, sizeof(t->key), f->key);
	copy(t->ca, sizeof(t->ca), f->ca);
	copy(t->ou, sizeof(t->ou), f->readonly_ou);
	t->ctx = build(t, why, wn);
	if (!t->ctx) {
		free(t);
		return -EINVAL;
	}
	describe(t, t->ctx);
	*out = t;
	return 0;
}

int sy_tls_reload(struct sy_tls *t, char *why, size_t wn)
{
	SSL_CTX *ctx = build(t, why, wn);

	if (!ctx)
		return -EINVAL;
	SSL_CTX_free(t->ctx); /* connections that use it hold their own reference */
	t->ctx = ctx;
	describe(t, ctx);
	return 0;
}

void sy_tls_free(struct sy_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

const char *sy_tls_describe(const struct sy_tls *t, char *buf, size_t n)
{
	snprintf(buf, n, "%s", t->desc);
	return buf;
}

void sy_tls_cert_info(const struct sy_tls *t, const char **file, char *subject, size_t n,
		      uint64_t *not_after_ms)
{
	X509 *x = SSL_CTX_get0_certificate(t->ctx);
	struct tm tm;

	*file = NULL;
	subject[0] = '\0';
	*not_after_ms = 0;
	if (!x)
		return;
	*file = t->cert;
	X509_NAME_oneline(X509_get_subject_name(x), subject, (int)n);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		*not_after_ms = (uint64_t)timegm(&tm) * 1000;
}

/* ---- connections -------------------------------------------------------------------- */

struct sy_tls_conn *sy_tls_conn_new(struct sy_tls *t, int fd, const char *server_name)
{
	struct sy_tls_conn *c = calloc(1, sizeof(*c));
	struct in6_addr ip;

	if (!c)
		return NULL;
	c->t = t;
	c->ssl = SSL_new(t->ctx);
	if (!c->ssl)
		goto fail;
	if (fd >= 0) {
		if (SSL_set_fd(c->ssl, fd) != 1)
			goto fail;
	} else {
		c->rbio = BIO_new(BIO_s_mem());
		c->wbio = BIO_new(BIO_s_mem());
		if (!c->rbio || !c->wbio) {
			BIO_free(c->rbio);
			BIO_free(c->wbio);
			goto fail;
		}
		BIO_set_mem_eof_return(c->rbio, -1); /* empty = "try again", not EOF */
		SSL_set_bio(c->ssl, c->rbio, c->wbio);
	}
	if (t->role == SY_TLS_SERVER) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		if (server_name && *server_name) {
			int is_ip = inet_pton(AF_INET, server_name, &ip) == 1 ||
				    inet_pton(AF_INET6, server_name, &ip) == 1;

			if (is_ip) {
				if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), server_name) != 1)
					goto fail;
			} else if (SSL_set1_host(c->ssl, server_name) != 1 ||
				   SSL_set_tlsext_host_name(c->ssl, server_name) != 1) {
				goto fail;
			}
		}
	}
	c->want = SY_TLS_WANT_READ | SY_TLS_WANT_WRITE;
	return c;
fail:
	SSL_free(c->ssl);
	free(c);
	return NULL;
}

void sy_tls_conn_free(struct sy_tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl); /* frees the memory BIOs too */
	free(c);
}

/* The subject's CN and OU, and whether the OU is the read-only one. */
static void read_peer(struct sy_tls_conn *c)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	X509_NAME *nm;
	char cn[128] = "";
	int i = -1;

	if (!x)
		return;
	nm = X509_get_subject_name(x);
	X509_NAME_get_text_by_NID(nm, NID_commonName, cn, sizeof(cn));
	snprintf(c->peer, sizeof(c->peer), "CN=%s", cn);
	while ((i = X509_NAME_get_index_by_NID(nm, NID_organizationalUnitName, i)) >= 0) {
		ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i));
		const unsigned char *v = ASN1_STRING_get0_data(d);
		int len = ASN1_STRING_length(d);
		size_t pl = strlen(c->peer);

		snprintf(c->peer + pl, sizeof(c->peer) - pl, " OU=%.*s", len, (const char *)v);
		if (c->t->ou[0] && (size_t)len == strlen(c->t->ou) && memcmp(v, c->t->ou, (size_t)len) == 0)
			c->readonly = 1;
	}
}

/* Maps an SSL_ERROR_* of a call that returned r <= 0: sets want and errno. */
static int io_error(struct sy_tls_conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r);

	c->want = 0;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->want = SY_TLS_WANT_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		c->want = SY_TLS_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (errno == 0 || errno == EAGAIN)
			errno = ECONNRESET; /* closed without close_notify */
		return -1;
	default:
		ossl_reason(c->err, sizeof(c->err));
		errno = EPROTO;
		return -1;
	}
}

int sy_tls_handshake(struct sy_tls_conn *c, char *why, size_t wn)
{
	char r[256];
	int rc, e;

	if (c->done)
		return 1;
	ERR_clear_error();
	errno = 0;
	rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		const unsigned char *proto = NULL;
		unsigned plen = 0;

		SSL_get0_alpn_selected(c->ssl, &proto, &plen);
		if (c->t->role == SY_TLS_CLIENT && !(plen == 2 && memcmp(proto, "h2", 2) == 0)) {
			snprintf(why, wn, "the server did not select ALPN h2");
			return -1;
		}
		c->done = 1;
		c->want = 0;
		read_peer(c);
		return 1;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		c->want = e == SSL_ERROR_WANT_READ ? SY_TLS_WANT_READ : SY_TLS_WANT_WRITE;
		return 0;
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
		ERR_clear_error();
		snprintf(why, wn, "certificate verify failed: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	} else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error()) {
		snprintf(why, wn, "TLS handshake: %s",
			 errno ? strerror(errno) : "connection closed by the peer");
	} else {
		snprintf(why, wn, "TLS handshake: %s", ossl_reason(r, sizeof(r)));
	}
	return -1;
}

/* One SSL_read into rbuf, or (writing) SSL_write of wbuf, of at most INT_MAX bytes: the
 * bytes moved, or io_error's answer. */
static int ssl_io(struct sy_tls_conn *c, int writing, void *rbuf, const void *wbuf, size_t n)
{
	int len = n > 0x7fffffff ? 0x7fffffff : (int)n, r;

	ERR_clear_error();
	errno = 0;
	r = writing ? SSL_write(c->ssl, wbuf, len) : SSL_read(c->ssl, rbuf, len);
	if (r > 0) {
		c->want = 0;
		return r;
	}
	return io_error(c, r);
}

ssize_t sy_tls_read(struct sy_tls_conn *c, void *buf, size_t n)
{
	return ssl_io(c, 0, buf, NULL, n);
}

ssize_t sy_tls_write(struct sy_tls_conn *c, const void *buf, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	r = ssl_io(c, 1, NULL, buf, n);
	if (r == 0) {
		errno = EPIPE;
		return -1;
	}
	return r;
}

const char *sy_tls_conn_error(const struct sy_tls_conn *c)
{
	return c->err[0] ? c->err : "TLS protocol error";
}

unsigned sy_tls_conn_want(const struct sy_tls_conn *c)
{
	return c->want;
}

int sy_tls_conn_pending(const struct sy_tls_conn *c)
{
	return SSL_pending(c->ssl) > 0;
}

int sy_tls_conn_readonly(const struct sy_tls_conn *c)
{
	return c->readonly;
}

const char *sy_tls_conn_peer(const struct sy_tls_conn *c)
{
	return c->peer;
}

int sy_tls_conn_feed(struct sy_tls_conn *c, const void *data, size_t n)
{
	if (!c->rbio || n > 0x7fffffff)
		return -EINVAL;
	return BIO_write(c->rbio, data, (int)n) == (int)n ? 0 : -ENOMEM;
}

size_t sy_tls_conn_take(struct sy_tls_conn *c, void *out, size_t n)
{
	int r;

	if (!c->wbio || !BIO_ctrl_pending(c->wbio))
		return 0;
	r = BIO_read(c->wbio, out, n > 0x7fffffff ? 0x7fffffff : (int)n);
	return r > 0 ? (size_t)r : 0;
}
