// SPDX-License-Identifier: Apache-2.0
/* prom.c — /metrics for Prometheus: the text renderer (pure, unit-tested) and the
 * hand-over of fresh figures from the loop thread to the HTTP listener's. See prom.h. */
#include <errno.h>
#include <pthread.h>
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

/* How long a scrape waits for the loop to read fresh figures before it serves the
 * newest it has: a busy loop must not make scrapes time out. */
#define FRESH_WAIT_MS 1000
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

/* ---- the hand-over ----------------------------------------------------------------------- */

struct sy_prom {
	struct sy_loop *loop;
	struct sy_metrics_src src;
	uint64_t start_unix_ms;
	sy_prom_exporter_fn exp;
	void *exp_arg;
	int efd;
	/* shared with the HTTP thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *text;
	size_t text_len;
	uint64_t asked, done; /* scrapes asked for, renderings done (generation numbers) */
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
	while (p->done < want)
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

int sy_prom_start(struct sy_loop *l, const struct sy_metrics_src *src, uint64_t start_unix_ms,
		  sy_prom_exporter_fn exp, void *exp_arg, struct sy_prom **out)
{
	struct sy_prom *p = calloc(1, sizeof(*p));
	int e = 0;

	if (!p)
		return -ENOMEM;
	p->loop = l;
	p->src = *src;
	p->start_unix_ms = start_unix_ms;
	p->exp = exp;
	p->exp_arg = exp_arg;
	p->efd = -1;
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
	*out = p;
	return 0;
fail:
	sy_prom_free(p);
	return e;
}

void sy_prom_free(struct sy_prom *p)
{
	if (!p)
		return;
	sy_loop_close_fd(p->loop, &p->efd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->text);
	free(p);
}
