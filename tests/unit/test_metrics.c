// SPDX-License-Identifier: Apache-2.0
/* test_metrics.c — the exporters' pure parts: metric families over a snapshot, their
 * Prometheus names and text rendering, the OTLP request (decoded back with
 * protobuf-c), and the exporters' settings (command line and telemetry: section). */
#include <setjmp.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telemetry/exporters.h"
#include "telemetry/metrics.h"
#include "telemetry/otlp.h"
#include "telemetry/prom.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

/* Two migrations with known figures. */
static void make_set(struct sy_metrics_set *s)
{
	memset(s, 0, sizeof(*s));
	s->unix_ms = 1700000010000ull;
	s->start_unix_ms = 1700000000000ull;
	s->n_migs = 2;
	s->migs = calloc(2, sizeof(*s->migs));
	assert_non_null(s->migs);
	snprintf(s->migs[0].name, sizeof(s->migs[0].name), "users");
	snprintf(s->migs[1].name, sizeof(s->migs[1].name), "carts\"x");
	s->migs[1].start_unix_ms = 1700000005000ull; /* created after the agent started */
	s->migs[0].cls[0].cmds[SY_CLASS_WRITE] = 1000;
	s->migs[0].cls[1].cmds[SY_CLASS_READ] = 7;
	s->migs[0].side[0].bytes_out = 12345;
	s->migs[0].side[0].errors = 3;
	s->migs[0].lat[0][0] = 1;  /* < 2 us */
	s->migs[0].lat[0][4] = 10; /* [16, 32) us */
	s->migs[0].lat[0][31] = 2; /* beyond the last bound */
	s->migs[0].dec.decisions[SY_DEC_FALLBACK] = 5;
	s->migs[0].mir[1].dropped = 9;
	s->migs[0].drift_found[SY_SRC_DUAL_READ] = 4;
	s->migs[0].ratio_bp = 2500;
	s->migs[0].step = 2;
	s->migs[0].n_steps = 5;
	snprintf(s->migs[0].state, sizeof(s->migs[0].state), "baking");
	snprintf(s->migs[1].state, sizeof(s->migs[1].state), "manual");
	s->have_exporter = true;
	s->exporter.dropped = 6;
	assert_int_equal(sy_metrics_build(s), 0);
}

static const struct sy_metric_family *family(const struct sy_metrics_set *s, const char *name)
{
	for (size_t i = 0; i < s->n_fam; i++)
		if (strcmp(s->fam[i].name, name) == 0)
			return &s->fam[i];
	fail_msg("no family %s", name);
	return NULL;
}

/* The names and their Prometheus forms are a contract with dashboards. */
static void names_are_the_contract(void **state)
{
	static const char *const want[][2] = {
		{"switchyard.operations", "switchyard_operations_total"},
		{"switchyard.bytes", "switchyard_bytes_total"},
		{"switchyard.request.duration", "switchyard_request_duration_seconds"},
		{"switchyard.errors", "switchyard_errors_total"},
		{"switchyard.unparsed", "switchyard_unparsed_total"},
		{"switchyard.errors.classes", "switchyard_errors_classes_total"},
		{"switchyard.tls_sockets", "switchyard_tls_sockets_total"},
		{"switchyard.stream_gaps", "switchyard_stream_gaps_total"},
		{"switchyard.steering.decisions", "switchyard_steering_decisions_total"},
		{"switchyard.mirror.commands", "switchyard_mirror_commands_total"},
		{"switchyard.mirror.repairs", "switchyard_mirror_repairs_total"},
		{"switchyard.mirror.lag", "switchyard_mirror_lag_seconds"},
		{"switchyard.mirror.queued", "switchyard_mirror_queued"},
		{"switchyard.drift.checked", "switchyard_drift_checked_total"},
		{"switchyard.drift.found", "switchyard_drift_found_total"},
		{"switchyard.drift.repaired", "switchyard_drift_repaired_total"},
		{"switchyard.cutover.ratio", "switchyard_cutover_ratio"},
		{"switchyard.cutover.step", "switchyard_cutover_step"},
		{"switchyard.cutover.steps", "switchyard_cutover_steps"},
		{"switchyard.cutover.state", "switchyard_cutover_state"},
		{"switchyard.exporter.batches", "switchyard_exporter_batches_total"},
		{"switchyard.exporter.bytes", "switchyard_exporter_bytes_total"},
		{"switchyard.gate.threshold", "switchyard_gate_threshold"},
		{"switchyard.gate.value", "switchyard_gate_value"},
		{"switchyard.endpoint.healthy", "switchyard_endpoint_healthy"},
		{"switchyard.backfill.scanned", "switchyard_backfill_scanned"},
		{"switchyard.backfill.keys", "switchyard_backfill_keys"},
		{"switchyard.backfill.running", "switchyard_backfill_running"},
		{"switchyard.audit.scanned", "switchyard_audit_scanned"},
		{"switchyard.audit.keys", "switchyard_audit_keys"},
		{"switchyard.audit.running", "switchyard_audit_running"},
		{"switchyard.mirror.needs_audit", "switchyard_mirror_needs_audit"},
		{"switchyard.mirror.dirty", "switchyard_mirror_dirty"},
		{"switchyard.endpoint.name.stale", "switchyard_endpoint_name_stale"},
		{"switchyard.endpoint.name.addresses", "switchyard_endpoint_name_addresses"},
	};
	struct sy_metrics_set s;
	char name[128];

	(void)state;
	make_set(&s);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		sy_prom_name(family(&s, want[i][0]), name, sizeof(name));
		assert_string_equal(name, want[i][1]);
	}
	/* 69 points per migration (no gates, endpoints or names here), every one with the
	 * migration attribute first */
	assert_int_equal(s.n_pool, 2 * 69 + 6);
	for (size_t i = 0; i < s.n_pool - 6; i++)
		assert_string_equal(s.pool[i].key[0], "migration");
	sy_metrics_set_free(&s);
}

static void points_carry_the_figures(void **state)
{
	struct sy_metrics_set s;
	const struct sy_metric_family *f;
	int seen = 0;

	(void)state;
	make_set(&s);
	f = family(&s, "switchyard.operations");
	assert_true(f->kind == SY_METRIC_SUM && f->monotonic);
	assert_string_equal(f->unit, "{operation}");
	for (size_t i = 0; i < f->n_points; i++) {
		const struct sy_metric_point *p = &f->points[i];

		assert_int_equal(p->n_attrs, 3);
		if (strcmp(p->val[0], "users") == 0 && strcmp(p->val[1], "legacy") == 0 &&
		    strcmp(p->val[2], "write") == 0) {
			assert_int_equal(p->u, 1000);
			assert_int_equal(p->start_unix_ms, s.start_unix_ms);
			seen++;
		}
		if (strcmp(p->val[0], "carts\"x") == 0)
			assert_int_equal(p->start_unix_ms, 1700000005000ull); /* its own start */
	}
	assert_int_equal(seen, 1);
	f = family(&s, "switchyard.cutover.ratio");
	assert_true(f->is_double);
	assert_true(f->points[0].d == 0.25);
	f = family(&s, "switchyard.cutover.state");
	assert_string_equal(f->points[0].key[1], "state");
	assert_string_equal(f->points[0].val[1], "baking");
	assert_int_equal(f->points[0].u, 1);
	sy_metrics_set_free(&s);
}

/* Gates, endpoint health, jobs and names: a gate that is off has no threshold, one not
 * evaluated has no value, an endpoint not checked yet has no point. */
/* TLS figures only when TLS is configured; with every optional group on, the set
 * stays within its bounds (ASan sees an overflow of the families or the pool). */
static void tls_figures_become_points(void **state)
{
	struct sy_metrics_set s;
	const struct sy_metric_family *f;
	char name[128];

	(void)state;
	make_set(&s);
	for (size_t i = 0; i < s.n_fam; i++)
		assert_null(strstr(s.fam[i].name, "switchyard.tls."));
	s.have_fleet = s.have_resolver = s.have_tls = true;
	s.tls = (struct sy_metrics_tls){.handshakes_refused = 3, .readonly_denied = 2, .n_certs = 3};
	s.tls.cert[0].role = "server";
	s.tls.cert[0].not_after_unix_s = 1900000000;
	s.tls.cert[1].role = "otlp";
	s.tls.cert[2].role = "store";
	assert_int_equal(sy_metrics_build(&s), 0);
	f = family(&s, "switchyard.tls.handshakes_refused");
	assert_true(f->kind == SY_METRIC_SUM && f->monotonic && f->n_points == 1 && f->points[0].u == 3);
	sy_prom_name(f, name, sizeof(name));
	assert_string_equal(name, "switchyard_tls_handshakes_refused_total");
	f = family(&s, "switchyard.tls.readonly_denied");
	assert_true(f->kind == SY_METRIC_SUM && f->n_points == 1 && f->points[0].u == 2);
	f = family(&s, "switchyard.tls.certificate.expiry");
	assert_true(f->kind == SY_METRIC_GAUGE && f->n_points == 3);
	sy_prom_name(f, name, sizeof(name));
	assert_string_equal(name, "switchyard_tls_certificate_expiry_seconds");
	assert_string_equal(f->points[0].key[0], "role");
	assert_string_equal(f->points[0].val[0], "server");
	assert_int_equal(f->points[0].u, 1900000000);
	assert_string_equal(f->points[2].val[0], "store");
	sy_metrics_set_free(&s);
}

static void ops_figures_become_points(void **state)
{
	struct sy_metrics_set s;
	struct sy_metrics_mig *m;
	const struct sy_metric_family *f;

	(void)state;
	make_set(&s);
	m = &s.migs[0];
	m->gate[SY_GATE_ERROR_RATE] =
		(typeof(m->gate[0])){.enabled = true, .threshold = 0.01, .have_value = true, .value = 0.002};
	m->gate[SY_GATE_P99_RATIO] = (typeof(m->gate[0])){.enabled = true, .threshold = 2};
	m->n_eps[SY_SIDE_TARGET] = 2;
	snprintf(m->ep[SY_SIDE_TARGET][0], SY_EP_STRLEN, "127.0.0.1:7001");
	snprintf(m->ep[SY_SIDE_TARGET][1], SY_EP_STRLEN, "[::1]:7001");
	m->ep_healthy[SY_SIDE_TARGET][0] = 0;
	m->ep_healthy[SY_SIDE_TARGET][1] = -1;
	m->job[SY_JOB_AUDIT] = (typeof(m->job[0])){.running = true, .done = 40, .total = 100};
	m->needs_audit = true;
	m->dirty = 7;
	m->n_hosts = 1;
	snprintf(m->host[0].name, sizeof(m->host[0].name), "redis.svc:7000");
	m->host[0].stale = true;
	m->host[0].n_addrs = 2;
	assert_int_equal(sy_metrics_build(&s), 0);
	f = family(&s, "switchyard.gate.threshold");
	assert_int_equal(f->n_points, 2);
	assert_true(f->is_double);
	assert_string_equal(f->points[0].val[1], "error_rate");
	assert_true(f->points[0].d == 0.01);
	assert_string_equal(f->points[1].val[1], "p99_ratio");
	f = family(&s, "switchyard.gate.value");
	assert_int_equal(f->n_points, 1);
	assert_true(f->points[0].d == 0.002);
	f = family(&s, "switchyard.endpoint.healthy");
	assert_int_equal(f->n_points, 1);
	assert_string_equal(f->points[0].val[1], "target");
	assert_string_equal(f->points[0].val[2], "127.0.0.1:7001");
	assert_int_equal(f->points[0].u, 0);
	assert_int_equal(family(&s, "switchyard.audit.scanned")->points[0].u, 40);
	assert_int_equal(family(&s, "switchyard.audit.keys")->points[0].u, 100);
	assert_int_equal(family(&s, "switchyard.audit.running")->points[0].u, 1);
	assert_int_equal(family(&s, "switchyard.backfill.running")->points[0].u, 0);
	assert_int_equal(family(&s, "switchyard.mirror.needs_audit")->points[0].u, 1);
	assert_int_equal(family(&s, "switchyard.mirror.dirty")->points[0].u, 7);
	f = family(&s, "switchyard.endpoint.name.stale");
	assert_int_equal(f->n_points, 1);
	assert_string_equal(f->points[0].val[2], "redis.svc:7000");
	assert_int_equal(f->points[0].u, 1);
	assert_int_equal(family(&s, "switchyard.endpoint.name.addresses")->points[0].u, 2);
	sy_metrics_set_free(&s);
}

static void hist_helpers(void **state)
{
	uint64_t b[SY_LAT_BUCKETS] = {0};

	(void)state;
	assert_true(sy_metrics_bucket_bound_s(0) == 2e-6);
	assert_true(sy_metrics_bucket_bound_s(30) == 2147.483648);
	b[0] = 1;
	b[4] = 2;
	assert_int_equal(sy_metrics_hist_count(b), 3);
	/* 1 us + 2 * 24 us */
	assert_true(sy_metrics_hist_sum_s(b) > 48.9e-6 && sy_metrics_hist_sum_s(b) < 49.1e-6);
}

/* Every line of the text: HELP and TYPE before samples, cumulative buckets ending at
 * +Inf == _count, escaped label values. */
static void prom_text_is_valid(void **state)
{
	struct sy_metrics_set s;
	char *text, *line, *save;
	size_t len;
	unsigned long long last = 0, inf = 0;
	int buckets = 0, saw_count = 0;

	(void)state;
	make_set(&s);
	assert_int_equal(sy_prom_render(&s, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "# TYPE switchyard_operations_total counter\n"));
	assert_non_null(strstr(
		text, "switchyard_operations_total{migration=\"users\",side=\"legacy\",class=\"write\"} "
		      "1000\n"));
	assert_non_null(strstr(text,
			       "switchyard_operations_total{migration=\"carts\\\"x\",side=\"legacy\",class="
			       "\"read\"} 0\n"));
	assert_non_null(strstr(text, "# TYPE switchyard_request_duration_seconds histogram\n"));
	assert_non_null(strstr(text, "switchyard_cutover_ratio{migration=\"users\"} 0.25\n"));
	assert_non_null(strstr(text, "switchyard_exporter_batches_total{outcome=\"dropped\"} 6\n"));
	assert_non_null(
		strstr(text, "switchyard_request_duration_seconds_bucket{migration=\"users\",side=\"legacy\","
			     "le=\"2147.483648\"} 11\n"));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *pfx = "switchyard_request_duration_seconds_bucket{migration=\"users\",side="
				  "\"legacy\",le=\"";
		unsigned long long v;

		if (line[0] == '#') {
			assert_true(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
			continue;
		}
		assert_non_null(strrchr(line, ' '));
		if (strncmp(line, pfx, strlen(pfx)) == 0) {
			v = strtoull(strrchr(line, ' ') + 1, NULL, 10);
			assert_true(v >= last);
			last = v;
			buckets++;
			if (strstr(line, "le=\"+Inf\""))
				inf = v;
		}
		if (strncmp(line,
			    "switchyard_request_duration_seconds_count{migration=\"users\",side=\"legacy\"}",
			    73) == 0) {
			assert_int_equal(strtoull(strrchr(line, ' ') + 1, NULL, 10), inf);
			saw_count = 1;
		}
	}
	assert_int_equal(buckets, SY_LAT_BUCKETS);
	assert_int_equal(inf, 13);
	assert_true(saw_count);
	free(text);
	sy_metrics_set_free(&s);
}

static const char *attr(Opentelemetry__Proto__Common__V1__KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i]->key, key) == 0)
			return kv[i]->value->string_value;
	return NULL;
}

static void otlp_request_decodes(void **state)
{
	static const char *const keys[] = {"service.name", "host.name", "team"};
	static const char *const vals[] = {"switchyardd", "h1", "storage"};
	struct sy_otlp_resource res = {keys, vals, 3};
	Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req;
	Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm;
	struct sy_metrics_set s;
	uint8_t *buf;
	size_t len;
	int found = 0;

	(void)state;
	make_set(&s);
	assert_int_equal(sy_otlp_build(&s, &res, &buf, &len), 0);
	req = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(NULL, len,
												   buf);
	assert_non_null(req);
	assert_int_equal(req->n_resource_metrics, 1);
	assert_string_equal(attr(req->resource_metrics[0]->resource->attributes,
				 req->resource_metrics[0]->resource->n_attributes, "team"),
			    "storage");
	sm = req->resource_metrics[0]->scope_metrics[0];
	assert_string_equal(sm->scope->name, "switchyardd");
	assert_int_equal(sm->n_metrics, s.n_fam);
	for (size_t i = 0; i < sm->n_metrics; i++) {
		Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[i];

		if (strcmp(m->name, "switchyard.operations") == 0) {
			assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
			assert_true(m->sum->is_monotonic);
			assert_int_equal(
				m->sum->aggregation_temporality,
				OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
			for (size_t j = 0; j < m->sum->n_data_points; j++) {
				Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p =
					m->sum->data_points[j];

				assert_int_equal(p->time_unix_nano, 1700000010000ull * 1000000);
				if (strcmp(attr(p->attributes, p->n_attributes, "migration"), "users") == 0 &&
				    strcmp(attr(p->attributes, p->n_attributes, "side"), "legacy") == 0 &&
				    strcmp(attr(p->attributes, p->n_attributes, "class"), "write") == 0) {
					assert_int_equal(p->as_int, 1000);
					assert_int_equal(p->start_time_unix_nano, 1700000000000ull * 1000000);
					found++;
				}
			}
		}
		if (strcmp(m->name, "switchyard.request.duration") == 0) {
			Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p =
				m->histogram->data_points[0];

			assert_string_equal(m->unit, "s");
			assert_int_equal(p->n_explicit_bounds, SY_LAT_BUCKETS - 1);
			assert_int_equal(p->n_bucket_counts, SY_LAT_BUCKETS);
			assert_true(p->explicit_bounds[0] == 2e-6);
			assert_int_equal(p->count, 13);
			assert_int_equal(p->bucket_counts[4], 10);
			found++;
		}
		if (strcmp(m->name, "switchyard.cutover.ratio") == 0) {
			assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
			assert_true(m->gauge->data_points[0]->as_double == 0.25);
			found++;
		}
	}
	assert_int_equal(found, 3);
	opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(req,
												    NULL);
	free(buf);
	sy_metrics_set_free(&s);
}

/* The daemon's way (switchyardd.c): the exporters' options are entries of its one
 * getopt_long table beside its own (here only --config); *config gets the latter. */
static int exporters_args(int argc, char **argv, struct sy_exporters_cfg *cfg, const char **config)
{
	static const struct option lo[] = {
		{"config", required_argument, 0, 'c'},
		SY_EXPORTERS_LONGOPTS,
		{0, 0, 0, 0},
	};
	int c, e;

	sy_exporters_defaults(cfg);
	optind = 0; /* a full reset: each test parses its own argv */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		if (c == 'c' && config)
			*config = optarg;
		else if (sy_exporters_opt_name(c) && (e = sy_exporters_opt(cfg, c, optarg)))
			return e;
		else if (c == ':' && sy_exporters_opt_name(optopt))
			return sy_exporters_opt(cfg, optopt, NULL);
		else if (c == '?' || c == ':')
			return 2;
	}
	return 0;
}

static void settings_from_the_command_line(void **state)
{
	char *argv[] = {"switchyardd",
			"--metrics",
			"127.0.0.1:9464",
			"--config",
			"x.yaml",
			"--otlp-gzip=off",
			"--otlp-resource",
			"team=storage",
			"--otlp-endpoint",
			"[::1]:4317",
			"--otlp-interval",
			"2s",
			NULL};
	int argc = 12;
	struct sy_exporters_cfg c;
	const char *config = NULL;

	(void)state;
	assert_int_equal(exporters_args(argc, argv, &c, &config), 0);
	assert_string_equal(config, "x.yaml"); /* the daemon's own option, in the same table */
	assert_string_equal(c.metrics, "127.0.0.1:9464");
	assert_string_equal(c.otlp_endpoint, "[::1]:4317");
	assert_int_equal(c.otlp_interval_ms, 2000);
	assert_false(c.otlp_gzip);
	assert_int_equal(c.n_res, 1);
	assert_string_equal(c.res_key[0], "team");
	assert_string_equal(c.res_val[0], "storage");
}

static void bad_options_exit_2(void **state)
{
	static const char *const bad[][2] = {
		{"--otlp-interval", "soon"},	{"--otlp-interval", "10ms"},   {"--otlp-gzip", "maybe"},
		{"--otlp-resource", "novalue"}, {"--otlp-endpoint", "nohost"}, {"--otlp-endpoint", "h:99999"},
		{"--metrics", "unix:/x"},	{"--metrics", "name:80"},      {"--otlp-resource", "=v"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = {"switchyardd", (char *)bad[i][0], (char *)bad[i][1], NULL};
		int argc = 3;
		struct sy_exporters_cfg c;

		assert_int_equal(exporters_args(argc, argv, &c, NULL), 2);
	}
	{
		char *argv[] = {"switchyardd", "--otlp-endpoint", NULL};
		int argc = 2;
		struct sy_exporters_cfg c;

		assert_int_equal(exporters_args(argc, argv, &c, NULL), 2);
	}
}

static void settings_from_the_file(void **state)
{
	const char *y = "migrations: []\n"
			"telemetry:\n"
			"  metrics: 127.0.0.1:9100\n"
			"  otlp:\n"
			"    endpoint: collector.local:4317\n"
			"    interval: 30s\n"
			"    gzip: off\n"
			"    resource: {team: storage, region: eu}\n";
	char *argv[] = {"switchyardd", "--otlp-interval", "5s", "--otlp-resource", "team=db", NULL};
	int argc = 5;
	struct sy_exporters_cfg c;
	char err[256];

	(void)state;
	assert_int_equal(exporters_args(argc, argv, &c, NULL), 0);
	assert_int_equal(sy_exporters_load_buf("f.yaml", y, strlen(y), &c, err, sizeof(err)), 0);
	assert_string_equal(c.metrics, "127.0.0.1:9100");
	assert_string_equal(c.otlp_endpoint, "collector.local:4317");
	assert_int_equal(c.otlp_interval_ms, 5000); /* the command line wins */
	assert_false(c.otlp_gzip);
	assert_int_equal(c.n_res, 2);
	assert_string_equal(c.res_key[0], "team");
	assert_string_equal(c.res_val[0], "db"); /* the command line wins */
	assert_string_equal(c.res_key[1], "region");
}

static void bad_files_say_where(void **state)
{
	static const char *const bad[][2] = {
		{"telemetry:\n  otlp:\n    interval: never\n", "f.yaml:3: telemetry: otlp.interval:"},
		{"telemetry:\n  prometheus: x\n", "f.yaml:2: telemetry: unknown field \"prometheus\""},
		{"telemetry:\n  otlp:\n    gzip: [on]\n",
		 "f.yaml:3: telemetry: gzip: expected a single value"},
		{"telemetry: 5\n", "f.yaml:1: telemetry: the telemetry section must be a mapping"},
		{"telemetry:\n  otlp:\n    endpoint: x\n", "f.yaml:3: telemetry: otlp.endpoint:"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sy_exporters_cfg c;
		char err[256];
		char *argv[] = {"switchyardd", NULL};
		int argc = 1;

		exporters_args(argc, argv, &c, NULL);
		assert_int_equal(
			sy_exporters_load_buf("f.yaml", bad[i][0], strlen(bad[i][0]), &c, err, sizeof(err)),
			-22);
		if (strncmp(err, bad[i][1], strlen(bad[i][1])) != 0)
			fail_msg("%s: got \"%s\"", bad[i][1], err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_are_the_contract),
		cmocka_unit_test(points_carry_the_figures),
		cmocka_unit_test(hist_helpers),
		cmocka_unit_test(ops_figures_become_points),
		cmocka_unit_test(tls_figures_become_points),
		cmocka_unit_test(prom_text_is_valid),
		cmocka_unit_test(otlp_request_decodes),
		cmocka_unit_test(settings_from_the_command_line),
		cmocka_unit_test(bad_options_exit_2),
		cmocka_unit_test(settings_from_the_file),
		cmocka_unit_test(bad_files_say_where),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
