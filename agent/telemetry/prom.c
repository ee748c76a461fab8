// SPDX-License-Identifier: Apache-2.0
/* prom.c — /metrics for Prometheus: the text renderer (pure, unit-tested) and the
 * libmicrohttpd listener with its hand-over to the loop thread. See prom.h. */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "telemetry/prom.h"
#include "rpc/rpc_listen.h"

/* How long a scrape waits for the loop to read fresh figures before it serves the
 * newest it has: a busy loop must not make scrapes time out. */
#define FRESH_WAIT_MS 1000
/* Bounds against idle or slow clients (300 idle sockets used to lock scrapes out for
 * the 10 s timeout). A scraper keeps one connection; collectors behind one NAT a few.
 * One address cannot take more than PER_IP_LIMIT (the rest are closed at accept), so
 * another collector's scrape always finds a slot unless many addresses gang up, and
 * then MAX_CONNS is far above what scrapes need. MHD has a single inactivity timeout,
 * which is the header timeout in effect: a scrape is one request answered within
 * FRESH_WAIT_MS, so a connection silent for IDLE_TIMEOUT_S is not a scraper's. */
#define MAX_CONNS      512
#define PER_IP_LIMIT   64
#define IDLE_TIMEOUT_S 3

/* ---- rendering ------------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 16384;
		char *np;

		while (cap - b->len <= (size_t)n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

/* Label values escape \, " and newline; HELP text \ and newline (format 0.0.4). */
static void put_escaped(struct buf *b, const char *s, int quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\");
		else if (*s == '\n')
			put(b, "\\n");
		else if (quote && *s == '"')
			put(b, "\\\"");
		else
			put(b, "%c", *s);
	}
}

/* The shortest decimal that reads back as v: bounds like 2147.483648 stay exact. */
static void fmt_double(double v, char *out, size_t n)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static void unit_suffix(const struct sy_metric_family *f, char *out, size_t n)
{
	const char *u = f->unit ? f->unit : "";

	out[0] = '\0';
	if (!*u || *u == '{')
		return; /* annotations like {operation} are not units */
	if (strcmp(u, "By") == 0)
		snprintf(out, n, "bytes");
	else if (strcmp(u, "s") == 0)
		snprintf(out, n, "seconds");
	else if (strcmp(u, "ms") == 0)
		snprintf(out, n, "milliseconds");
	else if (strcmp(u, "1") == 0)
		snprintf(out, n, "%s", f->kind == SY_METRIC_GAUGE ? "ratio" : "");
	else
		snprintf(out, n, "%s", u);
}

static int ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && strcmp(s + a - b, tail) == 0;
}

void sy_prom_name(const struct sy_metric_family *f, char *buf, size_t n)
{
	char suf[32], tail[40];
	size_t i;

	snprintf(buf, n, "%s", f->name);
	for (i = 0; buf[i]; i++) {
		char c = buf[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == ':'))
			buf[i] = '_';
	}
	unit_suffix(f, suf, sizeof(suf));
	if (suf[0]) {
		snprintf(tail, sizeof(tail), "_%s", suf);
		if (!ends_with(buf, tail) && strlen(buf) + strlen(tail) < n)
			strcat(buf, tail);
	}
	if (f->kind == SY_METRIC_SUM && f->monotonic && !ends_with(buf, "_total") && strlen(buf) + 6 < n)
		strcat(buf, "_total");
}

/* {k="v",...} with an optional extra label (le) last; nothing when there are none. */
static void put_labels(struct buf *b, const struct sy_metric_point *p, const char *le)
{
	if (!p->n_attrs && !le)
		return;
	put(b, "{");
	for (int i = 0; i < p->n_attrs; i++) {
		put(b, "%s%s=\"", i ? "," : "", p->key[i]);
		put_escaped(b, p->val[i], 1);
		put(b, "\"");
	}
	if (le)
		put(b, "%sle=\"%s\"", p->n_attrs ? "," : "", le);
	put(b, "}");
}

static void put_histogram(struct buf *b, const char *name, const struct sy_metric_point *p)
{
	uint64_t cum = 0;
	char le[32], sum[32];

	for (int i = 0; i < SY_LAT_BUCKETS - 1; i++) {
		cum += p->buckets[i];
		fmt_double(sy_metrics_bucket_bound_s(i), le, sizeof(le));
		put(b, "%s_bucket", name);
		put_labels(b, p, le);
		put(b, " %llu\n", (unsigned long long)cum);
	}
	cum += p->buckets[SY_LAT_BUCKETS - 1];
	put(b, "%s_bucket", name);
	put_labels(b, p, "+Inf");
	put(b, " %llu\n", (unsigned long long)cum);
	fmt_double(sy_metrics_hist_sum_s(p->buckets), sum, sizeof(sum));
	put(b, "%s_sum", name);
	put_labels(b, p, NULL);
	put(b, " %s\n", sum);
	put(b, "%s_count", name);
	put_labels(b, p, NULL);
	put(b, " %llu\n", (unsigned long long)cum);
}

int sy_prom_render(const struct sy_metrics_set *set, char **out, size_t *len)
{
	struct buf b = {0};
	char name[128], v[32];

	for (size_t i = 0; i < set->n_fam; i++) {
		const struct sy_metric_family *f = &set->fam[i];
		const char *type = f->kind == SY_METRIC_HISTOGRAM	      ? "histogram"
				   : f->kind == SY_METRIC_SUM && f->monotonic ? "counter"
									      : "gauge";

		sy_prom_name(f, name, sizeof(name));
		put(&b, "# HELP %s ", name);
		put_escaped(&b, f->help ? f->help : "", 0);
		put(&b, "\n# TYPE %s %s\n", name, type);
		for (size_t j = 0; j < f->n_points; j++) {
			const struct sy_metric_point *p = &f->points[j];

			if (f->kind == SY_METRIC_HISTOGRAM) {
				put_histogram(&b, name, p);
				continue;
			}
			put(&b, "%s", name);
			put_labels(&b, p, NULL);
			if (f->is_double)
				fmt_double(p->d, v, sizeof(v));
			else
				snprintf(v, sizeof(v), "%llu", (unsigned long long)p->u);
			put(&b, " %s\n", v);
		}
	}
	if (!b.p)
		put(&b, "%s", "");
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* ---- the listener ----------------------------------------------------------------------- */

struct sy_prom {
	struct sy_loop *loop;
	struct sy_metrics_src src;
	uint64_t start_unix_ms;
	sy_prom_exporter_fn exp;
	void *exp_arg;
	struct MHD_Daemon *mhd;
	int listen_fd, efd, port;
	/* shared with the HTTP thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *text;
	size_t text_len;
	uint64_t asked, done; /* scrapes asked for, renderings done (generation numbers) */
	int stopping;
};

/* Loop thread: read everything now, render, hand the text over. */
static void on_wake(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct sy_prom *p = arg;
	struct sy_metrics_set set;
	struct sy_exporter_stats es;
	uint64_t n, want;
	char *text = NULL;
	size_t len = 0;
	int e;

	(void)l;
	(void)ev;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&p->mu);
	want = p->asked;
	pthread_mutex_unlock(&p->mu);
	e = sy_metrics_collect(&p->src, p->start_unix_ms, p->exp && p->exp(p->exp_arg, &es) ? &es : NULL,
			       &set);
	if (!e)
		e = sy_prom_render(&set, &text, &len);
	sy_metrics_set_free(&set);
	if (e)
		sy_warn("metrics", "render /metrics: %s (serving the previous figures)", strerror(-e));
	pthread_mutex_lock(&p->mu);
	if (!e) {
		free(p->text);
		p->text = text;
		p->text_len = len;
	}
	p->done = want;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body, const char *allow)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

int sy_prom_text(struct sy_prom *p, char **text, size_t *len)
{
	struct timespec until;
	uint64_t one = 1, want;
	int e = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += FRESH_WAIT_MS / 1000;
	pthread_mutex_lock(&p->mu);
	want = ++p->asked;
	if (write(p->efd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow at these rates; nothing to do but serve */
	}
	while (p->done < want && !p->stopping)
		if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT)
			break;
	*text = NULL;
	if (!p->text)
		e = -EAGAIN;
	else if (!(*text = malloc(p->text_len ? p->text_len : 1)))
		e = -ENOMEM;
	else {
		memcpy(*text, p->text, p->text_len);
		*len = p->text_len;
	}
	pthread_mutex_unlock(&p->mu);
	return e;
}

/* HTTP thread (only with a listener of its own). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size,
				  void **con_cls)
{
	struct sy_prom *p = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text;
	size_t len = 0;

	(void)version;
	(void)upload;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		*upload_size = 0; /* a body is not read: the answer does not depend on it */
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: GET /metrics\n",
			     "GET, HEAD");
	}
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n", NULL);
	if (sy_prom_text(p, &text, &len))
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no figures yet: the agent is busy\n", NULL);
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, SY_PROM_CONTENT_TYPE);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

int sy_prom_start(struct sy_loop *l, const char *spec, const struct sy_metrics_src *src,
		  uint64_t start_unix_ms, sy_prom_exporter_fn exp, void *exp_arg, struct sy_prom **out)
{
	struct sy_prom *p = calloc(1, sizeof(*p));
	struct sy_rpc_addr a;
	sigset_t all, old;
	int e = 0;

	if (!p)
		return -ENOMEM;
	p->loop = l;
	p->src = *src;
	p->start_unix_ms = start_unix_ms;
	p->exp = exp;
	p->exp_arg = exp_arg;
	p->listen_fd = p->efd = -1;
	pthread_mutex_init(&p->mu, NULL);
	{
		pthread_condattr_t ca;

		/* scrapes wait on the monotonic clock: a wall-clock step must not stall them */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0 || (e = sy_loop_add_fd(l, p->efd, SY_EV_READ, on_wake, p)) < 0) {
		e = p->efd < 0 ? -errno : e;
		sy_error("metrics", "eventfd: %s", strerror(-e));
		goto fail;
	}
	if (!spec) {
		*out = p; /* served through the HTTP listener (api/http.h) */
		return 0;
	}
	if ((e = sy_rpc_addr_parse(spec, &a)) || a.ss.ss_family == AF_UNIX) {
		sy_error("metrics", "listen %s: not HOST:PORT or [V6]:PORT", spec);
		e = -EINVAL;
		goto fail;
	}
	p->listen_fd = sy_rpc_listen_on(&a, &p->port);
	if (p->listen_fd < 0) {
		e = p->listen_fd;
		p->listen_fd = -1;
		sy_error("metrics", "listen %s: %s", spec, strerror(-e));
		goto fail;
	}
	/* The HTTP thread inherits this mask: every signal stays with the loop's signalfd
	 * (a thread with SIGTERM unblocked would take it and kill the process). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	p->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, on_request,
				  p, MHD_OPTION_LISTEN_SOCKET, p->listen_fd, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned int)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned int)MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  (unsigned int)PER_IP_LIMIT, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!p->mhd) {
		e = -EIO;
		sy_error("metrics", "listen %s: libmicrohttpd did not start", spec);
		goto fail;
	}
	p->listen_fd = -1; /* MHD's now */
	sy_info("metrics", "serving /metrics on %s (port %d)", spec, p->port);
	*out = p;
	return 0;
fail:
	sy_prom_free(p);
	return e;
}

int sy_prom_port(const struct sy_prom *p)
{
	return p->port;
}

void sy_prom_free(struct sy_prom *p)
{
	if (!p)
		return;
	if (p->mhd) {
		pthread_mutex_lock(&p->mu);
		p->stopping = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		MHD_stop_daemon(p->mhd);
	}
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	if (p->efd >= 0) {
		sy_loop_del_fd(p->loop, p->efd);
		close(p->efd);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->text);
	free(p);
}
