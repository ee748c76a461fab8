// SPDX-License-Identifier: Apache-2.0
/* tls_setup.c — see tls_setup.h. */
#include "api/tls_setup.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "registry/events.h"
#include "rpc/rpc.h"
#include "rpc/rpc_listen.h"
#include "rpc/tls.h"

/* What a read-only identity may call: what looks, never what acts. A method added to the
 * API is refused to it until it is listed here (fail closed). */
static const char *const readonly_methods[] = {
	"/switchyard.v1.Control/GetMigration", "/switchyard.v1.Control/ListMigrations",
	"/switchyard.v1.Control/Status",       "/switchyard.v1.Control/Diff",
	"/switchyard.v1.Telemetry/Watch",      "/switchyard.v1.Telemetry/Events",
	"/switchyard.v1.Verify/GetBackfill",   "/switchyard.v1.Verify/GetAudit",
	"/grpc.health.v1.Health/Check",	       "/grpc.health.v1.Health/Watch",
};

static const char *const opt_names[] = {
	"tls-cert",	 "tls-key",	 "tls-client-ca", "tls-readonly-ou", "insecure-listen", "otlp-tls-ca",
	"otlp-tls-cert", "otlp-tls-key", "store-tls-ca",  "store-tls-cert",  "store-tls-key",
};

int sy_tls_opt(struct sy_tls_cfg *c, int val, const char *arg)
{
	const char **slot[] = {&c->cert,     &c->key,	     &c->client_ca, &c->readonly_ou,
			       NULL,	     &c->otlp_ca,    &c->otlp_cert, &c->otlp_key,
			       &c->store_ca, &c->store_cert, &c->store_key};
	int i = val - SY_TLS_OPT_BASE;

	if (val == SY_TLS_OPT_INSECURE) {
		c->insecure_listen = true;
		return 0;
	}
	if (!arg || !*arg) {
		fprintf(stderr, "switchyardd: --%s needs a value\n", opt_names[i]);
		return 2;
	}
	*slot[i] = arg;
	return 0;
}

void sy_tls_usage(FILE *f)
{
	fprintf(f, "TLS (docs/security.md; files re-read on SIGHUP):\n"
		   "  --tls-cert FILE         certificate of the TCP control listeners (PEM, with chain);\n"
		   "                          the --http listener then serves HTTPS with it too\n"
		   "  --tls-key FILE          its private key (mode 0600)\n"
		   "  --tls-client-ca FILE    mTLS: clients must present a certificate this CA signed\n"
		   "  --tls-readonly-ou NAME  a client certificate with OU=NAME may only look\n"
		   "                          (Get/List/Status/Diff/Watch/Events), never act\n"
		   "  --insecure-listen       allow a TCP --listen without TLS (anyone who can connect\n"
		   "                          may act; warned at every start)\n"
		   "  --otlp-tls-ca FILE      OTLP over TLS: the collector's CA (--otlp-tls-cert and\n"
		   "                          --otlp-tls-key: a client certificate)\n"
		   "  --store-tls-ca FILE     etcd over TLS: etcd's CA (--store-tls-cert and\n"
		   "                          --store-tls-key: a client certificate)\n");
}

/* A TCP address; a malformed one is the listener's to refuse, with its own words. */
static int is_tcp(const char *spec)
{
	struct sy_rpc_addr a;

	return sy_rpc_addr_parse(spec, &a) == 0 && a.ss.ss_family != AF_UNIX;
}

static int usage_err(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "switchyardd: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 2;
}

int sy_tls_check(const struct sy_tls_cfg *c, const char *const *listen, int n_listen, bool otlp)
{
	if (!!c->cert != !!c->key)
		return usage_err("--tls-cert and --tls-key go together%s%s", "", "");
	if (!!c->otlp_cert != !!c->otlp_key)
		return usage_err("--otlp-tls-cert and --otlp-tls-key go together%s%s", "", "");
	if (!!c->store_cert != !!c->store_key)
		return usage_err("--store-tls-cert and --store-tls-key go together%s%s", "", "");
	if (c->client_ca && !c->cert)
		return usage_err("--tls-client-ca needs --tls-cert and --tls-key%s%s", "", "");
	if (c->readonly_ou && !c->client_ca)
		return usage_err("--tls-readonly-ou needs --tls-client-ca: the role is read from the client "
				 "certificate%s%s",
				 "", "");
	if ((c->otlp_cert || c->otlp_ca) && !otlp)
		return usage_err("--otlp-tls-* without an OTLP endpoint (--otlp-endpoint)%s%s", "", "");
	for (int i = 0; i < n_listen; i++) {
		if (!is_tcp(listen[i]) || c->cert || c->insecure_listen)
			continue;
		return usage_err("--listen %s: a TCP control listener needs --tls-cert and --tls-key (and "
				 "--tls-client-ca for mTLS), or --insecure-listen to serve it unencrypted to "
				 "anyone who can connect%s",
				 listen[i], "");
	}
	return 0;
}

static int open_one(enum sy_tls_role role, const struct sy_tls_files *f, const char *what,
		    struct sy_tls **out)
{
	char why[600];

	if (sy_tls_new(role, f, out, why, sizeof(why))) {
		fprintf(stderr, "switchyardd: %s: %s\n", what, why);
		return 1;
	}
	return 0;
}

int sy_tls_open(const struct sy_tls_cfg *c, struct sy_tls_set *set)
{
	*set = (struct sy_tls_set){0};
	if (c->cert && open_one(SY_TLS_SERVER,
				&(struct sy_tls_files){.cert = c->cert,
						       .key = c->key,
						       .ca = c->client_ca,
						       .readonly_ou = c->readonly_ou},
				"--tls-cert", &set->server))
		goto fail;
	if ((c->otlp_ca || c->otlp_cert) &&
	    open_one(SY_TLS_CLIENT,
		     &(struct sy_tls_files){.cert = c->otlp_cert, .key = c->otlp_key, .ca = c->otlp_ca},
		     "--otlp-tls", &set->otlp))
		goto fail;
	if ((c->store_ca || c->store_cert) &&
	    open_one(SY_TLS_CLIENT,
		     &(struct sy_tls_files){.cert = c->store_cert, .key = c->store_key, .ca = c->store_ca},
		     "--store-tls", &set->store))
		goto fail;
	return 0;
fail:
	sy_tls_close(set);
	return 1;
}

static void reload_one(struct sy_tls *t, const char *what, struct sy_events *events)
{
	char why[600], desc[1024];

	if (!t)
		return;
	if (sy_tls_reload(t, why, sizeof(why))) {
		sy_error("tls", "%s: reload refused, running certificate kept: %s", what, why);
		if (events)
			sy_events_emit(events, "", "daemon.tls_reload_failed",
				       SY_EVENT_ATTRS({"context", what}, {"error", why}),
				       "TLS %s: reload refused, running certificate kept: %s", what, why);
		return;
	}
	sy_tls_describe(t, desc, sizeof(desc));
	sy_info("tls", "%s: reloaded: %s", what, desc);
	if (events)
		sy_events_emit(events, "", "daemon.tls_reloaded",
			       SY_EVENT_ATTRS({"context", what}, {"what", desc}), "TLS %s reloaded: %s", what,
			       desc);
}

void sy_tls_reload_all(struct sy_tls_set *set, struct sy_events *events)
{
	reload_one(set->server, "control plane", events);
	reload_one(set->otlp, "otlp", events);
	reload_one(set->store, "store", events);
}

void sy_tls_close(struct sy_tls_set *set)
{
	sy_tls_free(set->server);
	sy_tls_free(set->otlp);
	sy_tls_free(set->store);
	*set = (struct sy_tls_set){0};
}

void sy_tls_status(const struct sy_tls_set *set, struct sy_tls_status_buf *b)
{
	const struct {
		const struct sy_tls *t;
		const char *name;
	} ctxs[3] = {{set->server, "control plane"}, {set->otlp, "otlp"}, {set->store, "store"}};
	struct sy_rpc_server_stats st = {0};
	size_t n = 0;

	switchyard__v1__tls_status__init(&b->st);
	if (set->srv)
		sy_rpc_server_get_stats(set->srv, &st);
	b->st.enabled = set->server != NULL;
	b->st.client_auth = set->cfg && set->cfg->client_ca;
	b->st.readonly_ou = (char *)(set->cfg && set->cfg->readonly_ou ? set->cfg->readonly_ou : "");
	b->st.insecure_listen = set->cfg && set->cfg->insecure_listen;
	b->st.handshakes_refused = st.tls_refused;
	b->st.readonly_denied = st.readonly_denied;
	for (size_t i = 0; i < 3; i++) {
		const char *file;
		uint64_t exp;

		if (!ctxs[i].t)
			continue;
		sy_tls_cert_info(ctxs[i].t, &file, b->subject[n], sizeof(b->subject[n]), &exp);
		if (!file)
			continue; /* a client without a certificate of its own */
		switchyard__v1__tls_certificate__init(&b->certs[n]);
		b->certs[n].context = (char *)ctxs[i].name;
		b->certs[n].file = (char *)file;
		b->certs[n].subject = b->subject[n];
		b->certs[n].not_after_unix_ms = exp;
		b->certp[n] = &b->certs[n];
		n++;
	}
	b->st.certificates = b->certp;
	b->st.n_certificates = n;
}

int sy_tls_allow_readonly(struct sy_rpc_server *srv)
{
	for (size_t i = 0; i < sizeof(readonly_methods) / sizeof(readonly_methods[0]); i++) {
		int e = sy_rpc_server_allow_readonly(srv, readonly_methods[i]);

		if (e) {
			sy_error("tls", "read-only method %s: not registered", readonly_methods[i]);
			return e;
		}
	}
	return 0;
}

int sy_tls_setup_server(struct sy_rpc_server *srv, const struct sy_tls_cfg *c, struct sy_tls_set *set,
			const char *const *listen, int n_listen)
{
	char desc[1024];

	set->cfg = c;
	set->srv = srv;
	for (int i = 0; i < n_listen; i++) {
		if (!is_tcp(listen[i]))
			continue;
		if (set->server)
			sy_info("rpc", "%s: TLS, %s%s%s%s", listen[i],
				sy_tls_describe(set->server, desc, sizeof(desc)),
				c->client_ca ? "; client certificates required (mTLS)"
					     : "; no client certificate asked",
				c->readonly_ou ? "; read-only OU " : "",
				c->readonly_ou ? c->readonly_ou : "");
		else
			sy_warn("rpc",
				"%s: --insecure-listen: the control API is served unencrypted and without "
				"authentication; anyone who can connect may change, roll back or delete "
				"migrations",
				listen[i]);
	}
	if (set->server)
		sy_rpc_server_set_tls(srv, set->server);
	return sy_tls_allow_readonly(srv);
}
