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
#include "api/http_req.h"
#include "core/log.h"
#include "model/pbjson.h"
#include "rpc/rpc_listen.h"
#include "switchyard/v1/control.pb-c.h"
#include "switchyard/v1/events.pb-c.h"
#include "switchyard/v1/telemetry.pb-c.h"
#include "switchyard/v1/verify.pb-c.h"
#include "telemetry/prom.h"

/* The same bounds as the old /metrics listener (prom.c): a connection silent for
 * IDLE_TIMEOUT_S is closed, one address holds at most PER_IP_LIMIT. A stream is never
 * silent that long: it sends a comment line every HEARTBEAT_MS. */
#define MAX_CONNS      512
#define PER_IP_LIMIT   64
#define IDLE_TIMEOUT_S 3
#define HEARTBEAT_MS   1500
#define CALL_WAIT_S    10 /* a unary call the loop has not answered by then is 503 */
#define TOKEN_MAX      256

extern const char sy_web_index_html[], sy_web_index_html_end[];
extern const char sy_web_app_js[], sy_web_app_js_end[];
extern const char sy_web_style_css[], sy_web_style_css_end[];

struct job;

struct sy_http {
	struct sy_loop *loop;
	struct sy_rpc_server *rpc;
	struct sy_control_ctx *ctx;
	struct sy_prom *prom;
	struct MHD_Daemon *mhd;
	int listen_fd, efd, port;
	char token_file[PATH_MAX];
	pthread_mutex_t mu; /* the queue and the token */
	struct job *head, *tail;
	char token[TOKEN_MAX];
	size_t token_len; /* 0: actions disabled */
	int stopping;
};

/* One request's call. Two owners: the connection's thread and the loop; freed by the
 * last to let go. Everything below mu is shared. */
struct job {
	struct sy_http *h;
	struct sy_control_ctx *ctx;
	const char *path;
	ProtobufCMessage *req;
	int stream;
	int cancel;				     /* queued again to cancel the running stream */
	char remote[64], action[16], migration[128]; /* action != "": an event names it */
	struct job *next;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs, started, ended, gone;
	enum sy_grpc_code code;
	char msg[512];
	char *out; /* unary: the reply's JSON; stream: SSE bytes not yet read */
	size_t out_len, out_off, out_cap;
	struct sy_rpc_call *call; /* a running stream (loop thread only) */
};

/* ---- jobs -------------------------------------------------------------------------------- */

static struct job *job_new(struct sy_http *h, const char *path, ProtobufCMessage *req, int stream)
{
	struct job *j = calloc(1, sizeof(*j));
	pthread_condattr_t ca;

	if (!j)
		return NULL;
	j->h = h;
	j->ctx = h->ctx;
	j->path = path;
	j->req = req;
	j->stream = stream;
	j->refs = 2;
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	return j;
}

static void job_unref(struct job *j)
{
	int left;

	pthread_mutex_lock(&j->mu);
	left = --j->refs;
	pthread_mutex_unlock(&j->mu);
	if (left)
		return;
	if (j->req)
		protobuf_c_message_free_unpacked(j->req, NULL);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j->out);
	free(j);
}

/* Any thread: hands the job to the loop. */
static void job_queue(struct job *j)
{
	struct sy_http *h = j->h;
	uint64_t one = 1;

	pthread_mutex_lock(&h->mu);
	j->next = NULL;
	if (h->tail)
		h->tail->next = j;
	else
		h->head = j;
	h->tail = j;
	pthread_mutex_unlock(&h->mu);
	if (write(h->efd, &one, sizeof(one)) < 0) {
		/* an eventfd counter does not overflow at these rates */
	}
}

static int out_append(struct job *j, const char *s, size_t n)
{
	if (j->out_off && j->out_off == j->out_len)
		j->out_off = j->out_len = 0;
	if (j->out_len + n + 1 > j->out_cap) {
		size_t cap = j->out_cap ? j->out_cap : 4096;
		char *p;

		while (cap < j->out_len + n + 1)
			cap *= 2;
		if (!(p = realloc(j->out, cap)))
			return -ENOMEM;
		j->out = p;
		j->out_cap = cap;
	}
	memcpy(j->out + j->out_len, s, n);
	j->out_len += n;
	j->out[j->out_len] = '\0';
	return 0;
}

/* ---- the sink: loop thread ------------------------------------------------------------------ */

static int sink_msg(void *arg, const ProtobufCMessage *m)
{
	struct job *j = arg;
	char *json = NULL, head[48] = "";
	size_t len = 0;
	FILE *f = open_memstream(&json, &len);
	int e = 0;

	if (!f)
		return -ENOMEM;
	sy_pbjson_print(f, m);
	if (fclose(f) || !json) {
		free(json);
		return -ENOMEM;
	}
	/* an event's seq is its SSE id, so Last-Event-ID resumes exactly after it */
	if (j->stream && m->descriptor == &switchyard__v1__event__descriptor &&
	    ((const Switchyard__V1__Event *)m)->seq)
		snprintf(head, sizeof(head), "id: %llu\n",
			 (unsigned long long)((const Switchyard__V1__Event *)m)->seq);
	pthread_mutex_lock(&j->mu);
	if (j->stream)
		e = out_append(j, head, strlen(head)) || out_append(j, "data: ", 6) ||
				    out_append(j, json, len) || out_append(j, "\n\n", 2)
			    ? -ENOMEM
			    : 0;
	else
		e = out_append(j, json, len);
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	free(json);
	return e;
}

static void sink_end(void *arg, enum sy_grpc_code code, const char *message)
{
	struct job *j = arg;
	int started;

	if (j->action[0])
		sy_events_emit(j->ctx->events, j->migration, "http.action",
			       SY_EVENT_ATTRS({"source", "http"}, {"remote", j->remote},
					      {"action", j->action}, {"result", sy_grpc_code_name(code)}),
			       "%s of %s over http from %s: %s%s%s", j->action, j->migration, j->remote,
			       sy_grpc_code_name(code), *message ? ": " : "", message);
	pthread_mutex_lock(&j->mu);
	j->ended = 1;
	j->code = code;
	snprintf(j->msg, sizeof(j->msg), "%s", message);
	j->call = NULL;
	started = j->started;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (started) /* else the loop's reference goes when invoke returns */
		job_unref(j);
}

static size_t sink_pending(void *arg)
{
	struct job *j = arg;
	size_t n;

	pthread_mutex_lock(&j->mu);
	n = j->out_len - j->out_off;
	pthread_mutex_unlock(&j->mu);
	return n;
}

static const struct sy_rpc_sink sink = {sink_msg, sink_end, sink_pending};

static void run_job(struct job *j)
{
	struct sy_rpc_call *call = NULL;
	int gone, ended, e;

	if (j->cancel) {
		/* sink_end has not run (else the loop's reference is gone already): it never
		 * will now, so the loop lets go here; then the cancel's own reference */
		pthread_mutex_lock(&j->mu);
		ended = j->ended;
		j->ended = 1;
		pthread_mutex_unlock(&j->mu);
		if (!ended) {
			if (j->call)
				sy_rpc_local_cancel(j->call);
			j->call = NULL;
			job_unref(j);
		}
		job_unref(j);
		return;
	}
	pthread_mutex_lock(&j->mu);
	gone = j->gone;
	pthread_mutex_unlock(&j->mu);
	if (gone) { /* the client gave up before the loop got here */
		job_unref(j);
		return;
	}
	e = sy_rpc_server_invoke(j->h->rpc, j->path, j->req, &sink, j, &call);
	pthread_mutex_lock(&j->mu);
	if (e) {
		j->ended = 1;
		j->code = SY_GRPC_UNIMPLEMENTED;
		snprintf(j->msg, sizeof(j->msg), "%s is not served here", j->path);
	}
	j->started = 1;
	ended = j->ended;
	if (!ended)
		j->call = call;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (ended)
		job_unref(j);
}

static void on_wake(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct sy_http *h = arg;
	struct job *j;
	uint64_t n;

	(void)l;
	(void)ev;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		j = h->head;
		if (j) {
			h->head = j->next;
			if (!h->head)
				h->tail = NULL;
		}
		pthread_mutex_unlock(&h->mu);
		if (!j)
			break;
		run_job(j);
	}
}

/* ---- replies: connection threads ------------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type, const void *body,
				size_t len, enum MHD_ResponseMemoryMode mode, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* {"code": "NOT_FOUND", "message": "…"} */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, enum sy_grpc_code code,
				  const char *msg, const char *allow)
{
	char *json = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&json, &len);

	if (!f)
		return MHD_NO;
	fprintf(f, "{\"code\":\"%s\",\"message\":", sy_grpc_code_name(code));
	sy_json_string(f, msg);
	fputs("}\n", f);
	if (fclose(f) || !json) {
		free(json);
		return MHD_NO;
	}
	return send_buf(c, status ? status : sy_http_status_of(code), "application/json", json, len,
			MHD_RESPMEM_MUST_FREE, allow);
}

static int stopping(struct sy_http *h)
{
	int s;

	pthread_mutex_lock(&h->mu);
	s = h->stopping;
	pthread_mutex_unlock(&h->mu);
	return s;
}

/* Waits on j->cv (j->mu held) for at most slice_ms: a stopping listener waits for no
 * loop turn (the loop is the one stopping it). */
static void wait_slice(struct job *j, long slice_ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += slice_ms / 1000;
	t.tv_nsec += (slice_ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&j->cv, &j->mu, &t);
}

/* Waits for a unary call's end and answers with its JSON or its status. */
static enum MHD_Result run_unary(struct sy_http *h, struct MHD_Connection *c, struct job *j)
{
	enum MHD_Result ret;
	int slices = CALL_WAIT_S * 10;

	job_queue(j);
	pthread_mutex_lock(&j->mu);
	while (!j->ended && slices-- > 0) {
		pthread_mutex_unlock(&j->mu);
		if (stopping(h)) {
			pthread_mutex_lock(&j->mu);
			break;
		}
		pthread_mutex_lock(&j->mu);
		if (!j->ended)
			wait_slice(j, 100);
	}
	if (!j->ended) {
		j->gone = 1;
		pthread_mutex_unlock(&j->mu);
		job_unref(j);
		return send_error(c, 0, SY_GRPC_UNAVAILABLE, "the agent did not answer in time", NULL);
	}
	pthread_mutex_unlock(&j->mu);
	if (j->code != SY_GRPC_OK)
		ret = send_error(c, 0, j->code, j->msg, NULL);
	else
		ret = send_buf(c, 200, "application/json", j->out ? j->out : "{}", j->out ? j->out_len : 2,
			       MHD_RESPMEM_MUST_COPY, NULL);
	job_unref(j);
	return ret;
}

/* SSE: what the stream has produced, or a heartbeat comment, or the end. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct job *j = cls;
	int stop = stopping(j->h);
	ssize_t n;

	(void)pos;
	pthread_mutex_lock(&j->mu);
	if (j->out_len == j->out_off && !j->ended && !stop)
		wait_slice(j, HEARTBEAT_MS);
	if (j->out_len > j->out_off) {
		n = (ssize_t)(j->out_len - j->out_off < max ? j->out_len - j->out_off : max);
		memcpy(buf, j->out + j->out_off, (size_t)n);
		j->out_off += (size_t)n;
	} else if (j->ended || stop) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		n = max >= 3 ? 3 : 0;
		memcpy(buf, ":\n\n", (size_t)n);
	}
	pthread_mutex_unlock(&j->mu);
	return n;
}

/* The connection is gone (or the stream ended): stop the call on the loop. */
static void sse_free(void *cls)
{
	struct job *j = cls;
	int live;

	pthread_mutex_lock(&j->mu);
	j->gone = 1;
	live = j->started && !j->ended;
	if (live)
		j->refs++; /* the cancel's, until the loop has run it */
	pthread_mutex_unlock(&j->mu);
	if (live) {
		pthread_mutex_lock(&j->h->mu);
		j->cancel = 1;
		pthread_mutex_unlock(&j->h->mu);
		job_queue(j); /* the loop's run_job cancels and lets go */
	}
	job_unref(j);
}

static enum MHD_Result run_stream(struct sy_http *h, struct MHD_Connection *c, struct job *j)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	job_queue(j);
	/* the handler validates its request at once: an error is an HTTP status, not a stream */
	pthread_mutex_lock(&j->mu);
	while (!j->started) {
		pthread_mutex_unlock(&j->mu);
		if (stopping(h)) {
			pthread_mutex_lock(&j->mu);
			break;
		}
		pthread_mutex_lock(&j->mu);
		if (!j->started)
			wait_slice(j, 100);
	}
	if (!j->started || (j->ended && j->code != SY_GRPC_OK && j->out_len == 0)) {
		enum sy_grpc_code code = j->started ? j->code : SY_GRPC_UNAVAILABLE;
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", j->started ? j->msg : "shutting down");
		j->gone = 1;
		pthread_mutex_unlock(&j->mu);
		job_unref(j);
		return send_error(c, 0, code, msg, NULL);
	}
	pthread_mutex_unlock(&j->mu);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, j, sse_free);
	if (!r) {
		sse_free(j);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

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

static enum MHD_Result api_get(struct sy_http *h, struct MHD_Connection *c, const char *url)
{
	const char *rest = "";
	char name[128];
	struct job *j;
	ProtobufCMessage *req = NULL;
	const char *path = NULL;
	int stream = 0;

	if (strcmp(url, "/api/v1/status") == 0) {
		Switchyard__V1__StatusRequest *r = malloc(sizeof(*r));

		if (r)
			switchyard__v1__status_request__init(r);
		req = r ? &r->base : NULL;
		path = "/switchyard.v1.Control/Status";
	} else if (strcmp(url, "/api/v1/migrations") == 0) {
		Switchyard__V1__ListMigrationsRequest *r = malloc(sizeof(*r));

		if (r)
			switchyard__v1__list_migrations_request__init(r);
		req = r ? &r->base : NULL;
		path = "/switchyard.v1.Control/ListMigrations";
	} else if (strncmp(url, "/api/v1/migrations/", 19) == 0 &&
		   !split_migration(url, name, sizeof(name), &rest) &&
		   (!*rest || strcmp(rest, "/audit") == 0)) {
		if (!*rest) {
			Switchyard__V1__GetMigrationRequest *r = malloc(sizeof(*r));

			if (r) {
				switchyard__v1__get_migration_request__init(r);
				r->name = strdup(name);
			}
			req = r ? &r->base : NULL;
			path = "/switchyard.v1.Control/GetMigration";
		} else {
			Switchyard__V1__GetAuditRequest *r = malloc(sizeof(*r));

			if (r) {
				switchyard__v1__get_audit_request__init(r);
				r->migration = strdup(name);
			}
			req = r ? &r->base : NULL;
			path = "/switchyard.v1.Verify/GetAudit";
		}
	} else if (strcmp(url, "/api/v1/events") == 0) {
		Switchyard__V1__EventsRequest *r = malloc(sizeof(*r));
		const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
		const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
		const char *mig = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "migration");
		const char *s = last && *last ? last : since; /* a reconnecting browser resumes */
		char *end = NULL;

		if (r) {
			switchyard__v1__events_request__init(r);
			r->follow = 1;
			if (s && *s) {
				errno = 0;
				r->since_seq = strtoull(s, &end, 10);
				if (errno || *end || *s == '-') {
					free(r);
					return send_error(
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
		Switchyard__V1__WatchRequest *r = malloc(sizeof(*r));
		const char *mig = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "migration");
		const char *iv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "interval_ms");

		if (r) {
			switchyard__v1__watch_request__init(r);
			if (mig && *mig)
				r->migration = strdup(mig);
			if (iv)
				r->interval_ms = (uint32_t)strtoul(iv, NULL, 10);
		}
		req = r ? &r->base : NULL;
		path = "/switchyard.v1.Telemetry/Watch";
		stream = 1;
	} else {
		return send_error(c, 0, SY_GRPC_NOT_FOUND, "no such resource (see docs/http.md)", NULL);
	}
	if (!req || !(j = job_new(h, path, req, stream))) {
		if (req)
			protobuf_c_message_free_unpacked(req, NULL);
		return send_error(c, 0, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
	return stream ? run_stream(h, c, j) : run_unary(h, c, j);
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
		return send_error(c, 413, SY_GRPC_INVALID_ARGUMENT, "body: larger than 64 KiB", NULL);
	if (sy_http_cutover_parse(u->body ? u->body : "", u->len, &co, err, sizeof(err)))
		return send_error(c, 0, SY_GRPC_INVALID_ARGUMENT, err, NULL);
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
	if (!req || !(j = job_new(h, path, req, 0))) {
		if (req)
			protobuf_c_message_free_unpacked(req, NULL);
		return send_error(c, 0, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
	remote_of(c, j->remote, sizeof(j->remote));
	snprintf(j->action, sizeof(j->action), "%s", sy_http_action_name(co.has_action ? co.action : -1));
	snprintf(j->migration, sizeof(j->migration), "%s", name);
	return run_unary(h, c, j);
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
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, SY_GRPC_UNIMPLEMENTED,
					  "method not allowed: POST", "POST");
		}
		if (!u) { /* headers only so far: refuse before reading a body */
			unsigned refuse = authorize(h, c);
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_CONTENT_LENGTH);

			if (refuse == MHD_HTTP_FORBIDDEN)
				return send_error(c, refuse, SY_GRPC_PERMISSION_DENIED,
						  "actions over http are disabled: start switchyardd with "
						  "--http-token-file",
						  NULL);
			if (refuse)
				return send_error(c, refuse, SY_GRPC_UNAUTHENTICATED,
						  "Authorization: Bearer TOKEN required (the token of "
						  "--http-token-file)",
						  NULL);
			if (cl && strtoull(cl, NULL, 10) > SY_HTTP_MAX_BODY)
				return send_error(c, 413, SY_GRPC_INVALID_ARGUMENT,
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
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, SY_GRPC_UNIMPLEMENTED,
				  "method not allowed: GET", "GET, HEAD");
	}
	if (strncmp(url, "/api/", 5) == 0)
		return api_get(h, c, url);
	if (strcmp(url, "/metrics") == 0) {
		char *text;
		size_t len = 0;

		if (!h->prom)
			return send_error(c, 0, SY_GRPC_NOT_FOUND, "metrics are not exported", NULL);
		if (sy_prom_text(h->prom, &text, &len))
			return send_buf(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
					"no figures yet: the agent is busy\n", 34, MHD_RESPMEM_PERSISTENT,
					NULL);
		return send_buf(c, 200, SY_PROM_CONTENT_TYPE, text, len, MHD_RESPMEM_MUST_FREE, NULL);
	}
	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
		return send_buf(c, 200, "text/html; charset=utf-8", sy_web_index_html,
				(size_t)(sy_web_index_html_end - sy_web_index_html), MHD_RESPMEM_PERSISTENT,
				NULL);
	if (strcmp(url, "/app.js") == 0)
		return send_buf(c, 200, "text/javascript; charset=utf-8", sy_web_app_js,
				(size_t)(sy_web_app_js_end - sy_web_app_js), MHD_RESPMEM_PERSISTENT, NULL);
	if (strcmp(url, "/style.css") == 0)
		return send_buf(c, 200, "text/css; charset=utf-8", sy_web_style_css,
				(size_t)(sy_web_style_css_end - sy_web_style_css), MHD_RESPMEM_PERSISTENT,
				NULL);
	if (strcmp(url, "/favicon.ico") == 0) /* none: an empty answer, not an error in the console */
		return send_buf(c, 204, "image/x-icon", "", 0, MHD_RESPMEM_PERSISTENT, NULL);
	return send_buf(c, 404, "text/plain; charset=utf-8", "not found\n", 10, MHD_RESPMEM_PERSISTENT, NULL);
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

int sy_http_start(struct sy_loop *l, const char *spec, struct sy_rpc_server *rpc, struct sy_control_ctx *ctx,
		  struct sy_prom *prom, const char *token_file, struct sy_http **out)
{
	struct sy_http *h = calloc(1, sizeof(*h));
	struct sy_rpc_addr a;
	sigset_t all, old;
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
	if ((e = sy_rpc_addr_parse(spec, &a)) || a.ss.ss_family == AF_UNIX) {
		sy_error("http", "listen %s: not HOST:PORT or [V6]:PORT", spec);
		e = -EINVAL;
		goto fail;
	}
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd < 0 || (e = sy_loop_add_fd(l, h->efd, SY_EV_READ, on_wake, h)) < 0) {
		e = h->efd < 0 ? -errno : e;
		sy_error("http", "eventfd: %s", strerror(-e));
		goto fail;
	}
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
	h->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL, NULL,
		on_request, h, MHD_OPTION_LISTEN_SOCKET, h->listen_fd, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)PER_IP_LIMIT, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!h->mhd) {
		e = -EIO;
		sy_error("http", "listen %s: libmicrohttpd did not start", spec);
		goto fail;
	}
	h->listen_fd = -1; /* MHD's now */
	sy_info("http", "serving the dashboard, /api/v1 and /metrics on %s (port %d)", spec, h->port);
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
			on_wake(h->loop, h->efd, 0, h);
		sy_loop_del_fd(h->loop, h->efd);
		close(h->efd);
	}
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
