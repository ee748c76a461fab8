// SPDX-License-Identifier: Apache-2.0
/* fuzz_tls_record.c — bytes from a hostile client into the TLS record layer of our gRPC
 * server (rpc/tls.c under rpc_server.c), after a complete handshake: one input is one
 * connection, fed through sy_rpc_server_feed_tls with memory BIOs (no socket, no loop
 * iteration: deterministic).
 *
 * The first byte picks the mode: odd, the rest is what a client sends once the
 * handshake is done, encrypted by a real client (so OpenSSL's record decryption hands
 * it to nghttp2, our framing, routing and handlers: the gRPC harness's reach, through
 * TLS); even, the rest is raw bytes on the wire after the handshake (record headers,
 * lengths, alerts, garbage the record layer must refuse without harm). After every
 * input the server holds no connection, no call and no buffered request bytes.
 *
 * The server's certificate is made at start (a self-signed P-256 key in a temporary
 * folder, removed at exit): no key material lives in the repository. Seeds:
 * tests/fuzz/corpus/fuzz_tls_record (the gRPC seeds with mode byte 1, and raw records). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/control_plane.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc/rpc.h"
#include "rpc/tls.h"

typedef Grpc__Health__V1__HealthCheckRequest Req;
#define REQ_DESC (&grpc__health__v1__health_check_request__descriptor)

static char dir[64], cert_path[128], key_path[128];

static void echo(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	Req r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	(void)arg;
	r.service = ((const Req *)req)->service;
	sy_rpc_reply(call, &r.base);
}

static void cleanup(void)
{
	unlink(cert_path);
	unlink(key_path);
	rmdir(dir);
}

/* A self-signed certificate and its key, written as PEM files. */
static void make_cert(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/sy-fuzz-tls-XXXXXX");
	if (!k || !x || !mkdtemp(dir))
		abort();
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
	atexit(cleanup);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	if (!X509_sign(x, k, EVP_sha256()))
		abort();
	umask(077);
	if (!(f = fopen(key_path, "w")) || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
		abort();
	fclose(f);
	if (!(f = fopen(cert_path, "w")) || !PEM_write_X509(f, x))
		abort();
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sy_loop *loop;
	static struct sy_rpc_server *srv;
	static struct sy_tls *server_tls, *client_tls;
	struct sy_rpc_server_stats st;
	struct sy_tls_conn *client;
	char why[600];

	if (!loop) {
		struct sy_rpc_server_opts o = {.max_recv_msg = 64 << 10, .max_send_msg = 256 << 10};

		make_cert();
		if (sy_tls_new(SY_TLS_SERVER, &(struct sy_tls_files){.cert = cert_path, .key = key_path},
			       &server_tls, why, sizeof(why)) ||
		    sy_tls_new(SY_TLS_CLIENT, &(struct sy_tls_files){.ca = cert_path}, &client_tls, why,
			       sizeof(why))) {
			fprintf(stderr, "fuzz_tls_record: %s\n", why);
			abort();
		}
		loop = sy_loop_new();
		srv = sy_rpc_server_new(loop, &o);
		if (!srv || sy_health_svc_register(srv) ||
		    sy_rpc_server_add_unary(srv, "/fuzz.F/Echo", REQ_DESC, echo, NULL))
			abort();
		sy_rpc_server_set_tls(srv, server_tls);
	}
	if (size < 1)
		return 0;
	client = sy_tls_conn_new(client_tls, -1, NULL);
	if (!client)
		abort();
	if (sy_rpc_server_feed_tls(srv, client, data + 1, size - 1, data[0] & 1) < 0) {
		fprintf(stderr, "fuzz_tls_record: the handshake failed\n");
		abort();
	}
	sy_tls_conn_free(client);
	sy_rpc_server_get_stats(srv, &st);
	if (st.conns || st.calls || st.req_buffered) {
		fprintf(stderr, "after the connection: %zu conns, %zu calls, %zu bytes buffered\n", st.conns,
			st.calls, st.req_buffered);
		abort();
	}
	return 0;
}
