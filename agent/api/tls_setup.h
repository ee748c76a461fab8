// SPDX-License-Identifier: Apache-2.0
/* tls_setup.h — the daemon's TLS and read-only access, in one place: the options, the
 * rule that a TCP control listener needs TLS, the three TLS contexts (the control
 * plane's server, the OTLP exporter's and the etcd store's clients, all rpc/tls.h),
 * their rotation on SIGHUP, and which methods a read-only identity may call.
 *
 *   --tls-cert FILE --tls-key FILE   the control plane's certificate on TCP listeners
 *   --tls-client-ca FILE             mTLS: clients must present a certificate it signed
 *   --tls-readonly-ou NAME           such a certificate with OU=NAME is read-only
 *   --insecure-listen                allow a TCP listener without TLS (warned at start)
 *   --otlp-tls-ca/-cert/-key FILE    TLS to the OTLP collector
 *   --store-tls-ca/-cert/-key FILE   TLS to etcd
 *
 * A read-only identity may call every Get/List/Status/Diff, Watch and Events, the
 * health service, GetBackfill and GetAudit (sy_tls_allow_readonly); every other method
 * answers it PERMISSION_DENIED on the request's headers, before anything changes. The
 * unix socket stays the full-authority door (mode 0600, root). See docs/security.md. */
#ifndef SY_TLS_SETUP_H
#define SY_TLS_SETUP_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "switchyard/v1/control.pb-c.h"

struct sy_tls;
struct sy_rpc_server;
struct sy_events;

struct sy_tls_cfg {
	const char *cert, *key, *client_ca, *readonly_ou;
	bool insecure_listen;
	const char *otlp_ca, *otlp_cert, *otlp_key;
	const char *store_ca, *store_cert, *store_key;
};

/* The contexts made from a cfg; NULL where it asks for none. */
struct sy_tls_set {
	struct sy_tls *server, *otlp, *store;
	const struct sy_tls_cfg *cfg; /* set by sy_tls_setup_server, for Status */
	struct sy_rpc_server *srv;
};

/* Status's TlsStatus (StatusResponse.tls), in caller-owned storage. */
struct sy_tls_status_buf {
	Switchyard__V1__TlsStatus st;
	Switchyard__V1__TlsCertificate certs[3];
	Switchyard__V1__TlsCertificate *certp[3];
	char subject[3][256];
};
void sy_tls_status(const struct sy_tls_set *set, struct sy_tls_status_buf *b);

enum {
	SY_TLS_OPT_BASE = 0x500,
	SY_TLS_OPT_CERT = SY_TLS_OPT_BASE,
	SY_TLS_OPT_KEY,
	SY_TLS_OPT_CLIENT_CA,
	SY_TLS_OPT_READONLY_OU,
	SY_TLS_OPT_INSECURE,
	SY_TLS_OPT_OTLP_CA,
	SY_TLS_OPT_OTLP_CERT,
	SY_TLS_OPT_OTLP_KEY,
	SY_TLS_OPT_STORE_CA,
	SY_TLS_OPT_STORE_CERT,
	SY_TLS_OPT_STORE_KEY,
	SY_TLS_OPT_END,
};
/* Entries of the daemon's getopt_long table, handed back to sy_tls_opt. */
#define SY_TLS_LONGOPTS                                                                                      \
	{"tls-cert", required_argument, 0, SY_TLS_OPT_CERT},                                                 \
		{"tls-key", required_argument, 0, SY_TLS_OPT_KEY},                                           \
		{"tls-client-ca", required_argument, 0, SY_TLS_OPT_CLIENT_CA},                               \
		{"tls-readonly-ou", required_argument, 0, SY_TLS_OPT_READONLY_OU},                           \
		{"insecure-listen", no_argument, 0, SY_TLS_OPT_INSECURE},                                    \
		{"otlp-tls-ca", required_argument, 0, SY_TLS_OPT_OTLP_CA},                                   \
		{"otlp-tls-cert", required_argument, 0, SY_TLS_OPT_OTLP_CERT},                               \
		{"otlp-tls-key", required_argument, 0, SY_TLS_OPT_OTLP_KEY},                                 \
		{"store-tls-ca", required_argument, 0, SY_TLS_OPT_STORE_CA},                                 \
		{"store-tls-cert", required_argument, 0, SY_TLS_OPT_STORE_CERT},                             \
	{                                                                                                    \
		"store-tls-key", required_argument, 0, SY_TLS_OPT_STORE_KEY                                  \
	}

static inline bool sy_tls_opt_is(int val)
{
	return val >= SY_TLS_OPT_BASE && val < SY_TLS_OPT_END;
}
/* One option with its argument. 0, or 2 after printing why. */
int sy_tls_opt(struct sy_tls_cfg *cfg, int val, const char *arg);
void sy_tls_usage(FILE *f);
/* After every option: pairs complete, and each TCP listener (listen[i] not unix:) has
 * TLS or --insecure-listen. 0, or 2 after printing one line that says what to add. */
int sy_tls_check(const struct sy_tls_cfg *cfg, const char *const *listen, int n_listen, bool otlp);

/* Reads the files. 0, or 1 after printing "switchyardd: --tls-key FILE: why". */
int sy_tls_open(const struct sy_tls_cfg *cfg, struct sy_tls_set *set);
/* SIGHUP: every context re-reads its files; a failure keeps the running one. Logged
 * and, when events is not NULL, an event each (daemon.tls_reloaded / _reload_failed). */
void sy_tls_reload_all(struct sy_tls_set *set, struct sy_events *events);
void sy_tls_close(struct sy_tls_set *set);

/* The control plane: TLS on TCP listeners (when set->server), the warning of an
 * insecure TCP listener, and the read-only methods. 0 or a negative errno. */
int sy_tls_setup_server(struct sy_rpc_server *srv, const struct sy_tls_cfg *cfg, struct sy_tls_set *set,
			const char *const *listen, int n_listen);
/* Marks the methods a read-only identity may call (the list in tls_setup.c). */
int sy_tls_allow_readonly(struct sy_rpc_server *srv);

#endif
