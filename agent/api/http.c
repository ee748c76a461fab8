// SPDX-License-Identifier: Apache-2.0
/* http.c — the HTTP listener: routing, the token, the hand-over of each call to the
 * loop and of its output back. See http.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "api/http_int.h"
#include "api/http_req.h"
#include "api/http_vendor.h"
#include "core/log.h"
#include "core/secret.h"
#include "model/pbjson.h"
#include "rpc/rpc_listen.h"
#include "switchyard/v1/control.pb-c.h"
#include "switchyard/v1/events.pb-c.h"
#include "switchyard/v1/telemetry.pb-c.h"
#include "switchyard/v1/verify.pb-c.h"
#include "telemetry/prom.h"

extern const char sy_web_index_html[], sy_web_index_html_end[];
extern const char sy_web_app_js[], sy_web_app_js_end[];
extern const char sy_web_charts_js[], sy_web_charts_js_end[];
extern const char sy_web_style_css[], sy_web_style_css_end[];

/* ---- who may act ------------------------------------------------------------------------------ */

static void remote_of(struct MHD_Connection *c, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "";

	if (ci && ci->client_addr)
		getnameinfo(ci->client_addr,
			    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								   : sizeof(struct sockaddr_in),
			    host, sizeof(host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(out, n, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

/* 0 = may act, else the HTTP status to refuse with. The comparison does not stop at
 * the first difference, and reads the same bytes whatever the token given. */
static unsigned authorize(struct sy_http *h, struct MHD_Connection *c)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	char given[TOKEN_MAX] = {0};
	size_t glen = 0;
	volatile unsigned char diff = 0;
	unsigned status;

	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		glen = strlen(auth + 7);
		memcpy(given, auth + 7, glen < TOKEN_MAX ? glen : TOKEN_MAX);
	}
	pthread_mutex_lock(&h->mu);
	if (!h->token_len) {
		status = MHD_HTTP_FORBIDDEN;
	} else {
		for (size_t i = 0; i < TOKEN_MAX; i++)
			diff |= (unsigned char)(given[i] ^ h->token[i]);
		diff |= (unsigned char)(glen != h->token_len);
		status = diff ? MHD_HTTP_UNAUTHORIZED : 0;
	}
	pthread_mutex_unlock(&h->mu);
	return status;
}

void sy_http_reload_token(struct sy_http *h)
{
	char buf[TOKEN_MAX + 2];
	struct stat st;
	ssize_t n = -1;
	int fd = -1;
	const char *why = NULL;

	if (!h->token_file[0])
		return;
	fd = open(h->token_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		why = strerror(errno);
	else if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_mode & 077)
		why = "readable by group or others (chmod 0600)";
	else if ((n = read(fd, buf, sizeof(buf) - 1)) < 0)
		why = strerror(errno);
	if (fd >= 0)
		close(fd);
	if (!why) {
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
			n--;
		buf[n] = '\0';
		if (n == 0)
			why = "empty";
		else if (n >= TOKEN_MAX)
			why = "longer than 255 bytes";
		else if (strlen(buf) != (size_t)n || strpbrk(buf, " \t\r\n"))
			why = "not one line of printable characters";
	}
	pthread_mutex_lock(&h->mu);
	memset(h->token, 0, sizeof(h->token));
	h->token_len = 0;
	if (!why) {
		memcpy(h->token, buf, (size_t)n);
		h->token_len = (size_t)n;
	}
	pthread_mutex_unlock(&h->mu);
	if (why)
		sy_error("http", "token file %s: %s: actions over http are disabled", h->token_file, why);
	else
		sy_info("http", "token file %s read: actions over http need its bearer token", h->token_file);
}

/* ---- routing ---------------------------------------------------------------------------------- */

struct upload {
	char *body;
	size_t len;
	int too_large;
};

/* "/api/v1/migrations/NAME[/rest]" → NAME and rest ("" when none). */
static int split_migration(const char *url, char *name, size_t n, const char **rest)
{
	const char *p = url + strlen("/api/v1/migrations/"), *slash = strchr(p, '/');
	size_t len = slash ? (size_t)(slash - p) : strlen(p);

	if (!len || len >= n)
		return -1;
	memcpy(name, p, len);
	name[len] = '\0';
	*rest = slash ? slash : "";
	return 0;
}

/* A request message of type d with its defaults, on the heap (NULL: out of memory); the
 * job frees it with protobuf_c_message_free_unpacked. */
static void *new_req(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = malloc(d->sizeof_message);

	if (m)
		protobuf_c_message_init(d, m);
	return m;
}

/* The GET resources whose request has no field to fill. */
static const struct {
	const char *url, *path;
	const ProtobufCMessageDescriptor *d;
} bare[] = {
	{"/api/v1/status", "/switchyard.v1.Control/Status", &switchyard__v1__status_request__descriptor},
	{"/api/v1/migrations", "/switchyard.v1.Control/ListMigrations",
	 &switchyard__v1__list_migrations_request__descriptor},
	{"/api/v1/nodes", "/switchyard.v1.Control/ListNodes",
	 &switchyard__v1__list_nodes_request__descriptor},
};

static enum MHD_Result api_get(struct sy_http *h, struct MHD_Connection *c, const char *url)
{
	const char *rest = "";
	char name[128];
	struct job *j;
	ProtobufCMessage *req = NULL;
	const char *path = NULL;
	int stream = 0;

	for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]) && !path; i++)
		if (strcmp(url, bare[i].url) == 0) {
			req = new_req(bare[i].d);
			path = bare[i].path;
		}
	if (path) {
		/* a request without fields: nothing more to read */
	} else if (strncmp(url, "/api/v1/migrations/", 19) == 0 &&
		   !split_migration(url, name, sizeof(name), &rest) &&
		   (!*rest || strcmp(rest, "/audit") == 0)) {
		/* the migration, or with "/audit" its audit: a request naming it either way */
		int audit = *rest != '\0';

		req = new_req(audit ? &switchyard__v1__get_audit_request__descriptor
				    : &switchyard__v1__get_migration_request__descriptor);
		if (req && audit)
			((Switchyard__V1__GetAuditRequest *)req)->migration = strdup(name);
		else if (req)
			((Switchyard__V1__GetMigrationRequest *)req)->name = strdup(name);
		path = audit ? "/switchyard.v1.Verify/GetAudit" : "/switchyard.v1.Control/GetMigration";
	} else if (strcmp(url, "/api/v1/events") == 0) {
		Switchyard__V1__EventsRequest *r = new_req(&switchyard__v1__events_request__descriptor);
		const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
		const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
		const char *mig = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "migration");
		const char *s = last && *last ? last : since; /* a reconnecting browser resumes */
		char *end = NULL;

		if (r) {
			r->follow = 1;
			if (s && *s) {
				errno = 0;
				r->since_seq = strtoull(s, &end, 10);
				if (errno || *end || *s == '-') {
					free(r);
					return http_send_error(
						c, 0, SY_GRPC_INVALID_ARGUMENT,
						"since: an event seq (a decimal number) is required", NULL);
				}
			}
			if (mig && *mig)
				r->migration = strdup(mig);
		}
		req = r ? &r->base : NULL;
		path = "/switchyard.v1.Telemetry/Events";
		stream = 1;
	} else if (strcmp(url, "/api/v1/watch") == 0) {
		Switchyard__V1__WatchRequest *r = new_req(&switchyard__v1__watch_request__descriptor);
		const char *mig = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "migration");
		const char *iv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "interval_ms");

		if (r) {
			if (mig && *mig)
				r->migration = strdup(mig);
			if (iv)
				r->interval_ms = (uint32_t)strtoul(iv, NULL, 10);
		}
		req = r ? &r->base : NULL;
		path = "/switchyard.v1.Telemetry/Watch";
		stream = 1;
	} else {
		return http_send_error(c, 0, SY_GRPC_NOT_FOUND, "no such resource (see docs/http.md)", NULL);
	}
	if (!req || !(j = http_job_new(h, path, req, stream))) {
		if (req)
			protobuf_c_message_free_unpacked(req, NULL);
		return http_send_error(c, 0, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
	return stream ? http_run_stream(h, c, j) : http_run_unary(h, c, j);
}

static enum MHD_Result api_cutover(struct sy_http *h, struct MHD_Connection *c, const char *name,
				   const struct upload *u)
{
	struct sy_http_cutover co;
	char err[256];
	ProtobufCMessage *req;
	const char *path;
	struct job *j;

	if (u->too_large)
		return http_send_error(c, 413, SY_GRPC_INVALID_ARGUMENT, "body: larger than 64 KiB", NULL);
	if (sy_http_cutover_parse(u->body ? u->body : "", u->len, &co, err, sizeof(err)))
		return http_send_error(c, 0, SY_GRPC_INVALID_ARGUMENT, err, NULL);
	if (co.has_action) {
		Switchyard__V1__CutoverRequest *r = malloc(sizeof(*r));

		if (r) {
			switchyard__v1__cutover_request__init(r);
			r->name = strdup(name);
			r->action = (Switchyard__V1__CutoverAction)co.action;
			r->drain = co.drain;
			if (co.reason[0])
				r->reason = strdup(co.reason);
		}
		req = r ? &r->base : NULL;
		path = "/switchyard.v1.Control/Cutover";
	} else {
		Switchyard__V1__SetRatioRequest *r = malloc(sizeof(*r));

		if (r) {
			switchyard__v1__set_ratio_request__init(r);
			r->name = strdup(name);
			r->ratio_bp = co.ratio_bp;
		}
		req = r ? &r->base : NULL;
		path = "/switchyard.v1.Control/SetRatio";
	}
	if (!req || !(j = http_job_new(h, path, req, 0))) {
		if (req)
			protobuf_c_message_free_unpacked(req, NULL);
		return http_send_error(c, 0, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
	remote_of(c, j->remote, sizeof(j->remote));
	snprintf(j->action, sizeof(j->action), "%s", sy_http_action_name(co.has_action ? co.action : -1));
	snprintf(j->migration, sizeof(j->migration), "%s", name);
	return http_run_unary(h, c, j);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size,
				  void **con_cls)
{
	struct sy_http *h = cls;
	int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	struct upload *u = *con_cls;
	const char *rest = "";
	char name[128];

	(void)version;
	if (strncmp(url, "/api/v1/migrations/", 19) == 0 &&
	    !split_migration(url, name, sizeof(name), &rest) && strcmp(rest, "/cutover") == 0) {
		if (!post) {
			*upload_size = 0;
			return http_send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, SY_GRPC_UNIMPLEMENTED,
					       "method not allowed: POST", "POST");
		}
		if (!u) { /* headers only so far: refuse before reading a body */
			unsigned refuse = authorize(h, c);
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_CONTENT_LENGTH);

			if (refuse == MHD_HTTP_FORBIDDEN)
				return http_send_error(
					c, refuse, SY_GRPC_PERMISSION_DENIED,
					"actions over http are disabled: start switchyardd with "
					"--http-token-file",
					NULL);
			if (refuse)
				return http_send_error(c, refuse, SY_GRPC_UNAUTHENTICATED,
						       "Authorization: Bearer TOKEN required (the token of "
						       "--http-token-file)",
						       NULL);
			if (cl && strtoull(cl, NULL, 10) > SY_HTTP_MAX_BODY)
				return http_send_error(c, 413, SY_GRPC_INVALID_ARGUMENT,
						       "body: larger than 64 KiB", NULL);
			if (!(u = calloc(1, sizeof(*u))))
				return MHD_NO;
			*con_cls = u;
			return MHD_YES;
		}
		if (*upload_size) {
			if (!u->too_large && u->len + *upload_size <= SY_HTTP_MAX_BODY) {
				char *p = realloc(u->body, u->len + *upload_size + 1);

				if (!p)
					return MHD_NO;
				memcpy(p + u->len, upload, *upload_size);
				u->body = p;
				u->len += *upload_size;
				u->body[u->len] = '\0';
			} else {
				u->too_large = 1;
			}
			*upload_size = 0;
			return MHD_YES;
		}
		return api_cutover(h, c, name, u);
	}
	if (!get) {
		*upload_size = 0; /* a body is not read: the answer does not depend on it */
		return http_send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, SY_GRPC_UNIMPLEMENTED,
				       "method not allowed: GET", "GET, HEAD");
	}
	if (strncmp(url, "/api/", 5) == 0)
		return api_get(h, c, url);
	if (strcmp(url, "/metrics") == 0) {
		char *text;
		size_t len = 0;

		if (!h->prom)
			return http_send_error(c, 0, SY_GRPC_NOT_FOUND, "metrics are not exported", NULL);
		if (sy_prom_text(h->prom, &text, &len))
			return http_send_buf(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
					     "no figures yet: the agent is busy\n", 34,
					     MHD_RESPMEM_PERSISTENT, NULL);
		return http_send_buf(c, 200, SY_PROM_CONTENT_TYPE, text, len, MHD_RESPMEM_MUST_FREE, NULL);
	}
	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
		return http_send_buf(c, 200, "text/html; charset=utf-8", sy_web_index_html,
				     (size_t)(sy_web_index_html_end - sy_web_index_html),
				     MHD_RESPMEM_PERSISTENT, NULL);
	if (strcmp(url, "/app.js") == 0)
		return http_send_buf(c, 200, "text/javascript; charset=utf-8", sy_web_app_js,
				     (size_t)(sy_web_app_js_end - sy_web_app_js), MHD_RESPMEM_PERSISTENT,
				     NULL);
	if (strcmp(url, "/charts.js") == 0)
		return http_send_buf(c, 200, "text/javascript; charset=utf-8", sy_web_charts_js,
				     (size_t)(sy_web_charts_js_end - sy_web_charts_js),
				     MHD_RESPMEM_PERSISTENT, NULL);
	if (strcmp(url, "/style.css") == 0)
		return http_send_buf(c, 200, "text/css; charset=utf-8", sy_web_style_css,
				     (size_t)(sy_web_style_css_end - sy_web_style_css),
				     MHD_RESPMEM_PERSISTENT, NULL);
	if (strcmp(url, SY_HTTP_VENDOR_CHART_URL) == 0)
		return sy_http_send_vendor_chart(c);
	if (strcmp(url, "/favicon.ico") == 0) /* none: an empty answer, not an error in the console */
		return http_send_buf(c, 204, "image/x-icon", "", 0, MHD_RESPMEM_PERSISTENT, NULL);
	return http_send_buf(c, 404, "text/plain; charset=utf-8", "not found\n", 10, MHD_RESPMEM_PERSISTENT,
			     NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode t)
{
	struct upload *u = *con_cls;

	(void)cls;
	(void)c;
	(void)t;
	if (u) {
		free(u->body);
		free(u);
		*con_cls = NULL;
	}
}

/* ---- start / stop ------------------------------------------------------------------------------ */

/* A PEM file, NUL-terminated (libmicrohttpd takes certificates and keys as strings). */
static char *read_pem(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0;

	if (f) {
		buf = calloc(1, 65537);
		n = buf ? fread(buf, 1, 65536, f) : 0;
		if (buf && (ferror(f) || n == 0 || n == 65536)) {
			free(buf);
			buf = NULL;
		}
		fclose(f);
	}
	if (!buf)
		sy_error("http", "HTTPS: read %s: %s", path,
			 f ? "empty, unreadable or larger than 64 KiB" : strerror(errno));
	*len = n;
	return buf;
}

int sy_http_start(struct sy_loop *l, const char *spec, struct sy_rpc_server *rpc, struct sy_control_ctx *ctx,
		  struct sy_prom *prom, const char *token_file, unsigned per_ip, const char *tls_cert,
		  const char *tls_key, struct sy_http **out)
{
	struct sy_http *h = calloc(1, sizeof(*h));
	struct sy_rpc_addr a;
	sigset_t all, old;
	size_t cl;
	int e;

	if (!h)
		return -ENOMEM;
	h->loop = l;
	h->rpc = rpc;
	h->ctx = ctx;
	h->prom = prom;
	h->listen_fd = h->efd = -1;
	pthread_mutex_init(&h->mu, NULL);
	if (token_file)
		snprintf(h->token_file, sizeof(h->token_file), "%s", token_file);
	sy_http_reload_token(h);
	if (per_ip < 1 || per_ip > SY_HTTP_MAX_CONNS) {
		sy_error("http", "listen %s: %u connections per address: not from 1 to %d", spec, per_ip,
			 SY_HTTP_MAX_CONNS);
		e = -EINVAL;
		goto fail;
	}
	if ((e = sy_rpc_addr_parse(spec, &a)) || a.ss.ss_family == AF_UNIX) {
		sy_error("http", "listen %s: not HOST:PORT or [V6]:PORT", spec);
		e = -EINVAL;
		goto fail;
	}
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd < 0 || (e = sy_loop_add_fd(l, h->efd, SY_EV_READ, http_on_wake, h)) < 0) {
		e = h->efd < 0 ? -errno : e;
		sy_error("http", "eventfd: %s", strerror(-e));
		goto fail;
	}
	if (tls_cert && tls_key &&
	    (!(h->tls_cert = read_pem(tls_cert, &cl)) ||
	     !(h->tls_key = read_pem(tls_key, &h->tls_key_len)))) {
		e = -EINVAL;
		goto fail;
	}
	struct MHD_OptionItem tls_opts[] = {
		{h->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->tls_cert},
		{MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key},
		{MHD_OPTION_END, 0, NULL},
	};

	h->listen_fd = sy_rpc_listen_on(&a, &h->port);
	if (h->listen_fd < 0) {
		e = h->listen_fd;
		h->listen_fd = -1;
		sy_error("http", "listen %s: %s", spec, strerror(-e));
		goto fail;
	}
	/* The HTTP threads inherit this mask: every signal stays with the loop's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					  MHD_USE_POLL | (h->tls_cert ? MHD_USE_TLS : 0),
				  0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, h->listen_fd,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned int)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned int)SY_HTTP_MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
				  MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!h->mhd) {
		e = -EIO;
		sy_error("http", "listen %s: libmicrohttpd did not start", spec);
		goto fail;
	}
	h->listen_fd = -1; /* MHD's now */
	sy_info("http",
		"serving the dashboard, /api/v1 and /metrics on %s (port %d, %u connections per address)%s",
		spec, h->port, per_ip, h->tls_cert ? " over HTTPS" : "");
	*out = h;
	return 0;
fail:
	sy_http_free(h);
	return e;
}

int sy_http_port(const struct sy_http *h)
{
	return h->port;
}

void sy_http_free(struct sy_http *h)
{
	if (!h)
		return;
	if (h->mhd) {
		pthread_mutex_lock(&h->mu);
		h->stopping = 1;
		pthread_mutex_unlock(&h->mu);
		/* every waiting thread looks at stopping within HEARTBEAT_MS */
		MHD_stop_daemon(h->mhd);
	}
	/* the connections are gone: run what they queued (cancels of their streams) */
	if (h->efd >= 0) {
		uint64_t one = 1;

		if (write(h->efd, &one, sizeof(one)) == sizeof(one))
			http_on_wake(h->loop, h->efd, 0, h);
		sy_loop_del_fd(h->loop, h->efd);
		close(h->efd);
	}
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	pthread_mutex_destroy(&h->mu);
	free(h->tls_cert);
	if (h->tls_key)
		sy_secret_wipe(h->tls_key, h->tls_key_len);
	free(h->tls_key);
	free(h);
}
