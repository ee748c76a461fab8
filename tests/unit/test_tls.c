// SPDX-License-Identifier: Apache-2.0
/* test_tls.c — the one TLS layer (rpc/tls.c) on memory connections: a bad file is
 * refused with its name and why (missing, a key readable by others, a key of another
 * certificate), a client checks the server's name or IP against the certificate, a
 * server with a client CA refuses a client without a certificate, the read-only OU is
 * read from the client certificate, data goes both ways, and a reload with a bad file
 * keeps the running certificate. Certificates are made here with OpenSSL's API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rpc/tls.h"

static char dir[64];
static EVP_PKEY *ca_key;
static X509 *ca_cert;

static const char *p(const char *name)
{
	static char buf[8][128];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* NAME.pem and NAME.key (0600): signed by the CA, or the CA itself (ca_cert NULL). */
static void make_cert(const char *name, const char *cn, const char *ou, const char *san)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm = X509_get_subject_name(x);
	FILE *f;
	char file[64];
	static long serial = 1;

	assert_non_null(k);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	if (ou)
		X509_NAME_add_entry_by_txt(nm, "OU", MBSTRING_ASC, (const unsigned char *)ou, -1, -1, 0);
	X509_set_pubkey(x, k);
	if (!ca_cert) {
		X509_set_issuer_name(x, nm);
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		X509_sign(x, k, EVP_sha256());
	} else {
		X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
		add_ext(x, ca_cert, NID_basic_constraints, "CA:FALSE");
		if (san)
			add_ext(x, ca_cert, NID_subject_alt_name, san);
		X509_sign(x, ca_key, EVP_sha256());
	}
	snprintf(file, sizeof(file), "%s.key", name);
	f = fopen(p(file), "w");
	assert_non_null(f);
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	chmod(p(file), 0600);
	snprintf(file, sizeof(file), "%s.pem", name);
	f = fopen(p(file), "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	if (!ca_cert) {
		ca_cert = x;
		ca_key = k;
		return;
	}
	X509_free(x);
	EVP_PKEY_free(k);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sy-tls-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	make_cert("ca", "test CA", NULL, NULL);
	make_cert("server", "localhost", NULL, "DNS:localhost,IP:127.0.0.1");
	make_cert("viewer", "dash", "viewers", NULL);
	make_cert("ops", "alice", "operators", NULL);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	ca_cert = NULL;
	ca_key = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct sy_tls *server(const char *client_ca, const char *ou)
{
	struct sy_tls *t;
	char why[600];

	assert_int_equal(sy_tls_new(SY_TLS_SERVER,
				    &(struct sy_tls_files){.cert = p("server.pem"),
							   .key = p("server.key"),
							   .ca = client_ca,
							   .readonly_ou = ou},
				    &t, why, sizeof(why)),
			 0);
	return t;
}

static struct sy_tls *client(const char *name)
{
	struct sy_tls *t;
	char why[600], cert[64], key[64];

	snprintf(cert, sizeof(cert), "%s.pem", name ? name : "");
	snprintf(key, sizeof(key), "%s.key", name ? name : "");
	assert_int_equal(sy_tls_new(SY_TLS_CLIENT,
				    &(struct sy_tls_files){.cert = name ? p(cert) : NULL,
							   .key = name ? p(key) : NULL,
							   .ca = p("ca.pem")},
				    &t, why, sizeof(why)),
			 0);
	return t;
}

static void move(struct sy_tls_conn *from, struct sy_tls_conn *to)
{
	uint8_t buf[16384];
	size_t n;

	while ((n = sy_tls_conn_take(from, buf, sizeof(buf))))
		assert_int_equal(sy_tls_conn_feed(to, buf, n), 0);
}

/* Runs both handshakes to their end: 1 both done, -1 one failed (why). */
static int handshake(struct sy_tls_conn *c, struct sy_tls_conn *s, char *why, size_t wn)
{
	int rc = 0, rs = 0;

	for (int i = 0; i < 20 && (rc != 1 || rs != 1); i++) {
		if (rc != 1 && (rc = sy_tls_handshake(c, why, wn)) < 0)
			return -1;
		move(c, s);
		if (rs != 1 && (rs = sy_tls_handshake(s, why, wn)) < 0)
			return -1;
		move(s, c);
	}
	return rc == 1 && rs == 1 ? 1 : 0;
}

static void bad_files_are_refused_with_their_name(void **state)
{
	struct sy_tls *t = NULL;
	char why[600];

	(void)state;
	assert_int_equal(sy_tls_new(SY_TLS_SERVER, &(struct sy_tls_files){.cert = p("server.pem")}, &t, why,
				    sizeof(why)),
			 -EINVAL);
	assert_int_equal(sy_tls_new(SY_TLS_SERVER, &(struct sy_tls_files){0}, &t, why, sizeof(why)), -EINVAL);
	assert_int_equal(sy_tls_new(SY_TLS_SERVER,
				    &(struct sy_tls_files){.cert = p("nope.pem"), .key = p("server.key")}, &t,
				    why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "nope.pem"));
	chmod(p("server.key"), 0644);
	assert_int_equal(sy_tls_new(SY_TLS_SERVER,
				    &(struct sy_tls_files){.cert = p("server.pem"), .key = p("server.key")},
				    &t, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "readable by group or others"));
	chmod(p("server.key"), 0600);
	assert_int_equal(sy_tls_new(SY_TLS_SERVER,
				    &(struct sy_tls_files){.cert = p("server.pem"), .key = p("ops.key")}, &t,
				    why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "does not match"));
	assert_null(t);
}

static void names_and_ips_are_checked(void **state)
{
	struct sy_tls *s = server(NULL, NULL), *c = client(NULL);
	const char *good[] = {"localhost", "127.0.0.1"}, *bad[] = {"other.example", "127.0.0.2"};
	char why[600];

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct sy_tls_conn *cc = sy_tls_conn_new(c, -1, good[i]), *sc = sy_tls_conn_new(s, -1, NULL);

		assert_int_equal(handshake(cc, sc, why, sizeof(why)), 1);
		sy_tls_conn_free(cc);
		sy_tls_conn_free(sc);
	}
	for (int i = 0; i < 2; i++) {
		struct sy_tls_conn *cc = sy_tls_conn_new(c, -1, bad[i]), *sc = sy_tls_conn_new(s, -1, NULL);

		assert_int_equal(handshake(cc, sc, why, sizeof(why)), -1);
		assert_non_null(strstr(why, "certificate verify failed"));
		sy_tls_conn_free(cc);
		sy_tls_conn_free(sc);
	}
	sy_tls_free(s);
	sy_tls_free(c);
}

static void mtls_roles_and_data(void **state)
{
	struct sy_tls *s = server(p("ca.pem"), "viewers"), *anon = client(NULL), *viewer = client("viewer"),
		      *ops = client("ops");
	struct sy_tls_conn *cc, *sc;
	char why[600], buf[64];

	(void)state;
	/* no client certificate: the server refuses */
	cc = sy_tls_conn_new(anon, -1, "localhost");
	sc = sy_tls_conn_new(s, -1, NULL);
	assert_int_equal(handshake(cc, sc, why, sizeof(why)), -1);
	sy_tls_conn_free(cc);
	sy_tls_conn_free(sc);
	/* the viewer: read-only, named by its subject */
	cc = sy_tls_conn_new(viewer, -1, "localhost");
	sc = sy_tls_conn_new(s, -1, NULL);
	assert_int_equal(handshake(cc, sc, why, sizeof(why)), 1);
	assert_int_equal(sy_tls_conn_readonly(sc), 1);
	assert_string_equal(sy_tls_conn_peer(sc), "CN=dash OU=viewers");
	/* data both ways; nothing to read yet is EAGAIN, not an end */
	assert_int_equal(sy_tls_read(sc, buf, sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(sy_tls_write(cc, "ping", 4), 4);
	move(cc, sc);
	assert_int_equal(sy_tls_read(sc, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(sy_tls_write(sc, "pong", 4), 4);
	move(sc, cc);
	assert_int_equal(sy_tls_read(cc, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "pong", 4);
	sy_tls_conn_free(cc);
	sy_tls_conn_free(sc);
	/* another OU: full authority */
	cc = sy_tls_conn_new(ops, -1, "localhost");
	sc = sy_tls_conn_new(s, -1, NULL);
	assert_int_equal(handshake(cc, sc, why, sizeof(why)), 1);
	assert_int_equal(sy_tls_conn_readonly(sc), 0);
	assert_string_equal(sy_tls_conn_peer(sc), "CN=alice OU=operators");
	sy_tls_conn_free(cc);
	sy_tls_conn_free(sc);
	sy_tls_free(s);
	sy_tls_free(anon);
	sy_tls_free(viewer);
	sy_tls_free(ops);
}

static void a_bad_reload_keeps_the_running_certificate(void **state)
{
	struct sy_tls *s = server(NULL, NULL), *c = client(NULL);
	struct sy_tls_conn *cc, *sc;
	char why[600], before[1024], after[1024];

	(void)state;
	sy_tls_describe(s, before, sizeof(before));
	assert_non_null(strstr(before, "CN = localhost") ? before : strstr(before, "CN=localhost"));
	/* the key of another certificate over the server's key file */
	rename(p("server.key"), p("server.key.good"));
	rename(p("ops.key"), p("server.key"));
	assert_int_equal(sy_tls_reload(s, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "does not match"));
	cc = sy_tls_conn_new(c, -1, "localhost");
	sc = sy_tls_conn_new(s, -1, NULL);
	assert_int_equal(handshake(cc, sc, why, sizeof(why)), 1);
	sy_tls_conn_free(cc);
	sy_tls_conn_free(sc);
	/* a new certificate and its key: taken */
	make_cert("server", "rotated", NULL, "DNS:localhost");
	assert_int_equal(sy_tls_reload(s, why, sizeof(why)), 0);
	sy_tls_describe(s, after, sizeof(after));
	assert_non_null(strstr(after, "rotated"));
	sy_tls_free(s);
	sy_tls_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bad_files_are_refused_with_their_name, setup, teardown),
		cmocka_unit_test_setup_teardown(names_and_ips_are_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(mtls_roles_and_data, setup, teardown),
		cmocka_unit_test_setup_teardown(a_bad_reload_keeps_the_running_certificate, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
