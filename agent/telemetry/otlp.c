// SPDX-License-Identifier: Apache-2.0
/* otlp.c — OTLP/gRPC metrics exporter: request building (pure) and the send queue with
 * retries and backoff on the loop. See otlp.h for the contract. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/daemon.h"
#include "rpc/grpc_frame.h"
#include "core/log.h"
#include "core/loop.h"
#include "telemetry/otlp.h"
#include "rpc/rpc.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000

/* ---- building a request ------------------------------------------------------------------ */

/* Every allocation of one build, freed together once the request is packed. */
struct arena {
	void **p;
	size_t n, cap;
	int oom;
};

static void *alloc(struct arena *a, size_t count, size_t size)
{
	void *x;

	if (a->oom)
		return NULL;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		void **np = realloc(a->p, cap * sizeof(*np));

		if (!np) {
			a->oom = 1;
			return NULL;
		}
		a->p = np;
		a->cap = cap;
	}
	x = calloc(count ? count : 1, size);
	if (!x) {
		a->oom = 1;
		return NULL;
	}
	a->p[a->n++] = x;
	return x;
}

static void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->p[i]);
	free(a->p);
}

/* n string attributes as KeyValue pointers. */
static KeyValue **attrs(struct arena *a, const char *const *keys, const char *const *vals, size_t n)
{
	KeyValue **pp = alloc(a, n, sizeof(*pp)), *kv = alloc(a, n, sizeof(*kv));
	AnyValue *av = alloc(a, n, sizeof(*av));

	if (!pp || !kv || !av)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		opentelemetry__proto__common__v1__key_value__init(&kv[i]);
		opentelemetry__proto__common__v1__any_value__init(&av[i]);
		av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		av[i].string_value = (char *)vals[i];
		kv[i].key = (char *)keys[i];
		kv[i].value = &av[i];
		pp[i] = &kv[i];
	}
	return pp;
}

static uint64_t ns(uint64_t ms)
{
	return ms * 1000000ull;
}

static void number_points(struct arena *a, const struct sy_metric_family *f, uint64_t now_ms,
			  NumberDataPoint ***out, size_t *n)
{
	NumberDataPoint **pp = alloc(a, f->n_points, sizeof(*pp)), *dp = alloc(a, f->n_points, sizeof(*dp));

	if (!pp || !dp)
		return;
	for (size_t i = 0; i < f->n_points; i++) {
		const struct sy_metric_point *p = &f->points[i];

		opentelemetry__proto__metrics__v1__number_data_point__init(&dp[i]);
		dp[i].attributes = attrs(a, p->key, p->val, p->n_attrs);
		dp[i].n_attributes = p->n_attrs;
		dp[i].start_time_unix_nano = ns(p->start_unix_ms);
		dp[i].time_unix_nano = ns(now_ms);
		if (f->is_double) {
			dp[i].value_case =
				OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
			dp[i].as_double = p->d;
		} else {
			dp[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
			dp[i].as_int = (int64_t)p->u;
		}
		pp[i] = &dp[i];
	}
	*out = pp;
	*n = f->n_points;
}

static void histogram_points(struct arena *a, const struct sy_metric_family *f, uint64_t now_ms,
			     double *bounds, HistogramDataPoint ***out, size_t *n)
{
	HistogramDataPoint **pp = alloc(a, f->n_points, sizeof(*pp)),
			   *dp = alloc(a, f->n_points, sizeof(*dp));

	if (!pp || !dp)
		return;
	for (size_t i = 0; i < f->n_points; i++) {
		const struct sy_metric_point *p = &f->points[i];
		uint64_t *counts = alloc(a, SY_LAT_BUCKETS, sizeof(*counts));

		if (!counts)
			return;
		opentelemetry__proto__metrics__v1__histogram_data_point__init(&dp[i]);
		dp[i].attributes = attrs(a, p->key, p->val, p->n_attrs);
		dp[i].n_attributes = p->n_attrs;
		dp[i].start_time_unix_nano = ns(p->start_unix_ms);
		dp[i].time_unix_nano = ns(now_ms);
		/* OTLP buckets are (bound[i-1], bound[i]]; the kernel's [2^i, 2^(i+1)) us: the same
		 * buckets but for a sample of exactly 2^(i+1) us, one bucket up in the kernel */
		memcpy(counts, p->buckets, SY_LAT_BUCKETS * sizeof(*counts));
		dp[i].bucket_counts = counts;
		dp[i].n_bucket_counts = SY_LAT_BUCKETS;
		dp[i].explicit_bounds = bounds;
		dp[i].n_explicit_bounds = SY_LAT_BUCKETS - 1;
		dp[i].count = sy_metrics_hist_count(p->buckets);
		dp[i].sum = sy_metrics_hist_sum_s(p->buckets);
		pp[i] = &dp[i];
	}
	*out = pp;
	*n = f->n_points;
}

int sy_otlp_build(const struct sy_metrics_set *set, const struct sy_otlp_resource *res, uint8_t **out,
		  size_t *len)
{
	Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
	Opentelemetry__Proto__Metrics__V1__ResourceMetrics
		rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT,
		*rmp = &rm;
	Opentelemetry__Proto__Resource__V1__Resource resource =
		OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	Opentelemetry__Proto__Metrics__V1__ScopeMetrics
		sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT,
		*smp = &sm;
	Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
		OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	struct arena a = {0};
	Metric **mp = alloc(&a, set->n_fam, sizeof(*mp)), *m = alloc(&a, set->n_fam, sizeof(*m));
	Opentelemetry__Proto__Metrics__V1__Sum *sums = alloc(&a, set->n_fam, sizeof(*sums));
	Opentelemetry__Proto__Metrics__V1__Gauge *gauges = alloc(&a, set->n_fam, sizeof(*gauges));
	Opentelemetry__Proto__Metrics__V1__Histogram *hists = alloc(&a, set->n_fam, sizeof(*hists));
	double *bounds = alloc(&a, SY_LAT_BUCKETS, sizeof(*bounds));
	int e = -ENOMEM;

	if (a.oom)
		goto out;
	for (int i = 0; i < SY_LAT_BUCKETS - 1; i++)
		bounds[i] = sy_metrics_bucket_bound_s(i);
	for (size_t i = 0; i < set->n_fam; i++) {
		const struct sy_metric_family *f = &set->fam[i];

		opentelemetry__proto__metrics__v1__metric__init(&m[i]);
		m[i].name = (char *)f->name;
		m[i].unit = (char *)f->unit;
		m[i].description = (char *)(f->help ? f->help : "");
		switch (f->kind) {
		case SY_METRIC_SUM:
			opentelemetry__proto__metrics__v1__sum__init(&sums[i]);
			sums[i].aggregation_temporality =
				OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
			sums[i].is_monotonic = f->monotonic;
			number_points(&a, f, set->unix_ms, &sums[i].data_points, &sums[i].n_data_points);
			m[i].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
			m[i].sum = &sums[i];
			break;
		case SY_METRIC_GAUGE:
			opentelemetry__proto__metrics__v1__gauge__init(&gauges[i]);
			number_points(&a, f, set->unix_ms, &gauges[i].data_points, &gauges[i].n_data_points);
			m[i].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
			m[i].gauge = &gauges[i];
			break;
		case SY_METRIC_HISTOGRAM:
			opentelemetry__proto__metrics__v1__histogram__init(&hists[i]);
			hists[i].aggregation_temporality =
				OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
			histogram_points(&a, f, set->unix_ms, bounds, &hists[i].data_points,
					 &hists[i].n_data_points);
			m[i].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
			m[i].histogram = &hists[i];
			break;
		}
		mp[i] = &m[i];
	}
	resource.attributes = attrs(&a, res->keys, res->vals, res->n);
	resource.n_attributes = res->n;
	scope.name = "switchyardd";
	scope.version = SY_VERSION;
	sm.scope = &scope;
	sm.metrics = mp;
	sm.n_metrics = set->n_fam;
	rm.resource = &resource;
	rm.scope_metrics = &smp;
	rm.n_scope_metrics = 1;
	req.resource_metrics = &rmp;
	req.n_resource_metrics = 1;
	if (a.oom)
		goto out;
	*len = protobuf_c_message_get_packed_size(&req.base);
	*out = malloc(*len ? *len : 1);
	if (!*out)
		goto out;
	protobuf_c_message_pack(&req.base, *out);
	e = 0;
out:
	arena_free(&a);
	return e;
}

/* ---- the exporter -------------------------------------------------------------------------- */

struct batch {
	uint8_t *framed;
	size_t len;
};

struct sy_otlp {
	struct sy_loop *loop;
	struct sy_rpc_client *client;
	struct sy_metrics_src src;
	uint64_t start_unix_ms;
	char endpoint[256];
	uint32_t interval_ms, timeout_ms;
	bool gzip;
	/* resource attributes, owned */
	char **keys, **vals;
	size_t n_res;
	/* pending batches: a ring, the oldest (head) is the one sent or in flight */
	struct batch q[SY_OTLP_PENDING_MAX];
	size_t head, n;
	bool in_flight;
	uint64_t tick_timer, retry_timer;
	uint32_t backoff_ms;
	struct sy_exporter_stats st;
	/* bursts, each logged once when it starts and once when it ends */
	uint64_t fail_burst, drop_burst;
	uint64_t rng;
};

static void send_head(struct sy_otlp *x);

static void batch_pop(struct sy_otlp *x)
{
	free(x->q[x->head].framed);
	x->q[x->head] = (struct batch){0};
	x->head = (x->head + 1) % SY_OTLP_PENDING_MAX;
	x->n--;
}

/* Backoff with +-20 % jitter, so agents of a fleet do not retry in step. */
static uint32_t next_backoff(struct sy_otlp *x)
{
	uint32_t b = x->backoff_ms ? x->backoff_ms * 2 : BACKOFF_MIN_MS;

	if (b > BACKOFF_MAX_MS)
		b = BACKOFF_MAX_MS;
	x->backoff_ms = b;
	x->rng = x->rng * 6364136223846793005ull + 1442695040888963407ull;
	return b - b / 5 + (uint32_t)((x->rng >> 33) % (2 * (b / 5) + 1));
}

static void on_retry(struct sy_loop *l, void *arg)
{
	struct sy_otlp *x = arg;

	(void)l;
	x->retry_timer = 0;
	send_head(x);
}

static bool retryable(enum sy_grpc_code c)
{
	return c == SY_GRPC_UNAVAILABLE || c == SY_GRPC_RESOURCE_EXHAUSTED ||
	       c == SY_GRPC_DEADLINE_EXCEEDED || c == SY_GRPC_ABORTED || c == SY_GRPC_CANCELLED ||
	       c == SY_GRPC_OUT_OF_RANGE || c == SY_GRPC_DATA_LOSS;
}

static void end_fail_burst(struct sy_otlp *x)
{
	if (!x->fail_burst)
		return;
	sy_info("otlp", "export to %s works again after %llu failed attempt(s)", x->endpoint,
		(unsigned long long)x->fail_burst);
	x->fail_burst = 0;
}

static void on_reply(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct sy_otlp *x = arg;

	if (msg) {
		const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *r =
			(const void *)msg;

		if (r->partial_success && r->partial_success->rejected_data_points)
			sy_warn("otlp", "%s rejected %lld data point(s): %s", x->endpoint,
				(long long)r->partial_success->rejected_data_points,
				r->partial_success->error_message ? r->partial_success->error_message : "");
		return;
	}
	x->in_flight = false;
	if (st->code == SY_GRPC_OK) {
		x->st.exported++;
		x->st.bytes += x->q[x->head].len;
		batch_pop(x);
		x->backoff_ms = 0;
		end_fail_burst(x);
		send_head(x);
		return;
	}
	if (!x->fail_burst++)
		sy_warn("otlp", "export to %s failed: %s (%d): %s", x->endpoint,
			retryable(st->code) ? "retrying with backoff" : "batch dropped", st->code,
			st->message);
	if (retryable(st->code)) {
		x->st.retries++;
		x->retry_timer = sy_loop_add_timer(x->loop, next_backoff(x), on_retry, x);
		return;
	}
	x->st.failed++;
	batch_pop(x);
	send_head(x);
}

static void send_head(struct sy_otlp *x)
{
	struct batch *b;
	int e;

	if (x->in_flight || x->retry_timer || !x->n)
		return;
	b = &x->q[x->head];
	e = sy_rpc_client_start_framed(
		x->client, SY_OTLP_EXPORT_PATH, b->framed, b->len,
		&opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor,
		x->timeout_ms, on_reply, x, NULL);
	if (e == 0) {
		x->in_flight = true;
		return;
	}
	/* out of memory or a session refusing streams: as good as unavailable */
	if (!x->fail_burst++)
		sy_warn("otlp", "export to %s: %s; retrying with backoff", x->endpoint, strerror(-e));
	x->st.retries++;
	x->retry_timer = sy_loop_add_timer(x->loop, next_backoff(x), on_retry, x);
}

/* Room for one more batch: drop the oldest one not in flight. */
static void make_room(struct sy_otlp *x)
{
	size_t victim;

	if (x->n < SY_OTLP_PENDING_MAX) {
		if (x->drop_burst) {
			sy_info("otlp", "buffer has room again: %llu batch(es) were dropped",
				(unsigned long long)x->drop_burst);
			x->drop_burst = 0;
		}
		return;
	}
	victim = x->in_flight ? (x->head + 1) % SY_OTLP_PENDING_MAX : x->head;
	if (!x->drop_burst++)
		sy_warn("otlp",
			"%d batches wait for %s: dropping the oldest (sums are cumulative: later batches "
			"carry their counts)",
			SY_OTLP_PENDING_MAX, x->endpoint);
	x->st.dropped++;
	free(x->q[victim].framed);
	/* close the gap: shift the ones after the victim back by one */
	for (size_t i = victim, k = (victim + 1) % SY_OTLP_PENDING_MAX;
	     k != (x->head + x->n) % SY_OTLP_PENDING_MAX; i = k, k = (k + 1) % SY_OTLP_PENDING_MAX)
		x->q[i] = x->q[k];
	x->n--;
	x->q[(x->head + x->n) % SY_OTLP_PENDING_MAX] = (struct batch){0};
}

static void tick(struct sy_loop *l, void *arg)
{
	struct sy_otlp *x = arg;
	struct sy_otlp_resource res = {(const char *const *)x->keys, (const char *const *)x->vals, x->n_res};
	struct sy_metrics_set set;
	struct sy_exporter_stats st;
	uint8_t *plain = NULL;
	size_t plen = 0;
	struct batch b = {0};
	int e;

	x->tick_timer = sy_loop_add_timer(l, x->interval_ms, tick, x);
	sy_otlp_stats(x, &st);
	e = sy_metrics_collect(&x->src, x->start_unix_ms, &st, &set);
	if (!e)
		e = sy_otlp_build(&set, &res, &plain, &plen);
	if (!e)
		e = sy_grpc_frame(plain, plen, x->gzip, &b.framed, &b.len);
	sy_metrics_set_free(&set);
	free(plain);
	if (e) {
		sy_warn("otlp", "build a batch: %s (skipped; the next one carries its counts)", strerror(-e));
		return;
	}
	make_room(x);
	x->q[(x->head + x->n) % SY_OTLP_PENDING_MAX] = b;
	x->n++;
	send_head(x);
}

void sy_otlp_stats(const struct sy_otlp *x, struct sy_exporter_stats *out)
{
	*out = x->st;
	out->pending = x->n;
}

/* host.name, service.name, service.version, then the user's (later wins). */
static int set_resource(struct sy_otlp *x, const struct sy_otlp_resource *user)
{
	char host[256] = "unknown";
	const char *k[3] = {"service.name", "service.version", "host.name"};
	const char *v[3] = {"switchyardd", SY_VERSION, host};
	size_t n = 0;

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "unknown");
	x->keys = calloc(3 + user->n, sizeof(*x->keys));
	x->vals = calloc(3 + user->n, sizeof(*x->vals));
	if (!x->keys || !x->vals)
		return -ENOMEM;
	for (size_t i = 0; i < 3 + user->n; i++) {
		const char *key = i < 3 ? k[i] : user->keys[i - 3], *val = i < 3 ? v[i] : user->vals[i - 3];
		size_t j;

		for (j = 0; j < n && strcmp(x->keys[j], key) != 0; j++)
			;
		if (j == n) {
			if (!(x->keys[n] = strdup(key)))
				return -ENOMEM;
			x->n_res = ++n; /* what there is to free, whatever fails next */
		}
		free(x->vals[j]);
		if (!(x->vals[j] = strdup(val)))
			return -ENOMEM;
	}
	return 0;
}

int sy_otlp_start(struct sy_loop *l, const struct sy_otlp_opts *o, const struct sy_metrics_src *src,
		  uint64_t start_unix_ms, struct sy_otlp **out)
{
	struct sy_otlp *x = calloc(1, sizeof(*x));
	int e = -ENOMEM;

	if (!x)
		goto fail;
	x->loop = l;
	x->src = *src;
	x->start_unix_ms = start_unix_ms;
	x->interval_ms = o->interval_ms;
	/* a deadline per call: long enough for a loaded collector, short enough that a
	 * black-holed one is given up on before many batches pile up */
	x->timeout_ms = o->interval_ms < 2000 ? 2000 : o->interval_ms > 10000 ? 10000 : o->interval_ms;
	x->gzip = o->gzip;
	x->rng = sy_now_ms() ^ (uint64_t)getpid() << 32;
	snprintf(x->endpoint, sizeof(x->endpoint), "%s", o->endpoint);
	if ((e = set_resource(x, &o->resource)))
		goto fail;
	x->client = sy_rpc_client_new(l, o->endpoint, o->gzip);
	if (!x->client) {
		e = -ENOMEM;
		goto fail;
	}
	if (o->tls)
		sy_rpc_client_set_tls(x->client, o->tls, o->tls_name);
	x->tick_timer = sy_loop_add_timer(l, x->interval_ms, tick, x);
	sy_info("otlp", "exporting metrics to %s every %u ms%s%s", x->endpoint, x->interval_ms,
		x->gzip ? " (gzip)" : "", o->tls ? " over TLS" : "");
	*out = x;
	return 0;
fail:
	sy_error("otlp", "start exporting to %s: %s", o->endpoint, strerror(-e));
	sy_otlp_free(x);
	return e;
}

void sy_otlp_free(struct sy_otlp *x)
{
	if (!x)
		return;
	sy_loop_cancel_timer(x->loop, x->tick_timer);
	sy_loop_cancel_timer(x->loop, x->retry_timer);
	sy_rpc_client_free(x->client);
	while (x->n)
		batch_pop(x);
	for (size_t i = 0; x->keys && i < x->n_res; i++)
		free(x->keys[i]);
	for (size_t i = 0; x->vals && i < x->n_res; i++)
		free(x->vals[i]);
	free(x->keys);
	free(x->vals);
	free(x);
}
