// SPDX-License-Identifier: Apache-2.0
/* metrics.h — one snapshot of every figure the agent exports, read on the loop thread
 * and turned into exporter-neutral metric families (name, unit, kind, points with
 * attributes). The OTLP exporter (otlp.c) and the Prometheus listener (prom.c) only
 * render these families; the Watch stream (telemetry_svc.c) reads the same snapshot.
 * So a figure is read, and named, in one place. See docs/observability.md.
 *
 * Every sum is cumulative since the series' start (the agent's start, or the
 * migration's creation if later): kernel counters live in pinned maps and are zeroed
 * when a migration slot is reused, never otherwise. */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shadow/mirror.h"
#include "model/endpoint.h"
#include "shadow/transform_audit.h"
#include "shadow/transform_copy.h"
#include "model/spec.h"
#include "switchyard/abi.h"

struct sy_registry;
struct sy_mirror;
struct sy_verify;
struct sy_migration_state;
struct sy_fleet;

/* Where the figures come from; mirror, verify and fleet may be NULL. */
struct sy_metrics_src {
	struct sy_registry *reg;
	struct sy_mirror *mirror;
	struct sy_verify *verify;
	struct sy_fleet *fleet; /* fleet mode: the nodes and their summed counters */
};

enum { SY_SRC_AUDIT = 0, SY_SRC_DUAL_READ = 1 };

/* The figures of one migration, read at one instant. */
struct sy_metrics_mig {
	char name[SY_NAME_MAX];
	uint32_t id;
	uint64_t start_unix_ms; /* start of its cumulative series */
	uint32_t ratio_bp;
	struct sy_side_stats side[2];	 /* enum sy_side */
	struct sy_rule_stats cls[2];	 /* commands and bytes by class, every rule */
	uint64_t lat[2][SY_LAT_BUCKETS]; /* side[].lat as uint64_t, like the mirror's lag */
	struct sy_steer_counters dec;	 /* steering decisions */
	struct sy_mirror_stats mir[2];	 /* enum sy_mirror_dir */
	uint64_t drift_checked[2];	 /* SY_SRC_AUDIT, SY_SRC_DUAL_READ */
	uint64_t drift_found[2];
	uint64_t drift_repaired[2];
	bool has_versions, has_xf;   /* version_field:, transform: */
	struct sy_versions versions; /* target keys per version, as of the last audit */
	struct sy_xf_stats xf;	     /* transform calls and failures */
	uint32_t step, n_steps;	     /* from the cutover source */
	char state[32];
	/* fleet mode: every live node's counters summed (registry/fleet.h), since this
	 * agent started reading them; fleet_ok false when no live node reports it */
	bool fleet_ok;
	uint64_t fleet_req[2], fleet_err[2];
	uint64_t fleet_lat[2][SY_LAT_BUCKETS];
	/* What the runbooks rely on (docs/operations.md, "Metrics"): */
	struct {
		bool enabled;	  /* in the plan */
		double threshold; /* the plan's max */
		bool have_value;  /* evaluated at least once in this step */
		double value;	  /* measured over the last window */
	} gate[SY_GATES];
	uint32_t n_eps[2];			    /* enum sy_side */
	char ep[2][SY_MAX_ENDPOINTS][SY_EP_STRLEN]; /* "127.0.0.1:7000" */
	int8_t ep_healthy[2][SY_MAX_ENDPOINTS];	    /* 1, 0, or -1: not checked yet */
	struct {
		bool running;
		uint64_t done, total; /* in-scope keys scanned, and to scan (0 = unknown) */
	} job[2];		      /* SY_JOB_BACKFILL, SY_JOB_AUDIT */
	bool needs_audit;
	uint64_t dirty; /* keys waiting for repair, both directions */
	uint32_t n_hosts;
	struct {
		char name[SY_HOST_MAX + 8]; /* "redis.svc:6379" */
		uint8_t side;
		uint8_t n_addrs;
		bool stale;
	} host[2 * SY_SPEC_MAX_HOSTS];
};

enum { SY_JOB_BACKFILL = 0, SY_JOB_AUDIT = 1 };

/* The control plane's TLS figures (StatusResponse.tls): refusals and the expiry of each
 * certificate the agent presents, by role ("server", "otlp", "store"). */
#define SY_METRICS_TLS_CERTS 3
struct sy_metrics_tls {
	uint64_t handshakes_refused, readonly_denied;
	size_t n_certs;
	struct {
		const char *role; /* a static string */
		uint64_t not_after_unix_s;
	} cert[SY_METRICS_TLS_CERTS];
};

/* Figures that live in components telemetry may not include (the controller's gate
 * values, the health checks, the resolver): the daemon hands them over through these
 * accessors. Any may be NULL. */
struct sy_metrics_ops_src {
	void *arg;
	/* The last gate values of a migration's current step: have[g] false when gate g
	 * has no value (not evaluated yet, or off). */
	void (*gates)(void *arg, const char *name, double value[SY_GATES], bool have[SY_GATES]);
	/* 1 healthy, 0 unhealthy, -1 not checked yet. */
	int (*endpoint_health)(void *arg, const struct sy_endpoint *ep);
	/* The resolver's counters (registry/resolver.h): lookups, failures, changes. */
	void (*resolver)(void *arg, uint64_t out[3]);
	/* TLS figures; false when no TLS is configured (then no TLS metrics). */
	bool (*tls)(void *arg, struct sy_metrics_tls *out);
};
/* Process-wide, like the cutover source; src is copied. NULL = none. */
void sy_metrics_set_ops_source(const struct sy_metrics_ops_src *src);

/* The cutover controller tells where a migration's plan is. Returns 0, or a negative
 * errno when it knows nothing of the migration (then: step 0 of 0, "manual"). *state
 * must stay valid until the next call into the controller. */
typedef int (*sy_metrics_cutover_fn)(void *arg, uint32_t mig_id, uint32_t *step, uint32_t *n_steps,
				     const char **state);
/* Process-wide, like the controller itself; NULL fn = none. */
void sy_metrics_set_cutover_source(sy_metrics_cutover_fn fn, void *arg);

/* Reads one migration now. */
void sy_metrics_read(const struct sy_metrics_src *src, const struct sy_migration_state *m,
		     struct sy_metrics_mig *out);

/* Exporter bookkeeping, exported beside the migrations' figures. */
struct sy_exporter_stats {
	uint64_t exported; /* batches the collector accepted */
	uint64_t failed;   /* batches it refused for good (not retryable) */
	uint64_t dropped;  /* batches dropped: the pending buffer was full */
	uint64_t retries;  /* attempts retried after a retryable failure */
	uint64_t bytes;	   /* request bytes sent (framed, compressed if gzip) */
	uint64_t pending;  /* batches waiting now */
};

/* ---- metric families: what both exporters render ---------------------------------- */

enum sy_metric_kind { SY_METRIC_SUM, SY_METRIC_GAUGE, SY_METRIC_HISTOGRAM };

#define SY_METRIC_ATTRS 3

struct sy_metric_point {
	const char *key[SY_METRIC_ATTRS]; /* attribute names, n_attrs of them */
	const char *val[SY_METRIC_ATTRS];
	uint8_t n_attrs;
	uint64_t start_unix_ms;
	uint64_t u;		 /* integer sums and gauges */
	double d;		 /* SY_METRIC_GAUGE with is_double */
	const uint64_t *buckets; /* histograms: SY_LAT_BUCKETS log2-microsecond counts */
};

struct sy_metric_family {
	const char *name; /* OTLP name, e.g. "switchyard.operations" */
	const char *unit; /* UCUM, e.g. "{operation}", "By", "s", "1" */
	const char *help;
	enum sy_metric_kind kind;
	bool monotonic; /* sums */
	bool is_double; /* gauges */
	struct sy_metric_point *points;
	size_t n_points;
};

/* A whole snapshot: the migrations' figures and the families built over them (the
 * families point into migs, so they live and die together). */
struct sy_metrics_set {
	uint64_t unix_ms;	/* when it was read */
	uint64_t start_unix_ms; /* the agent's start */
	struct sy_metrics_mig *migs;
	size_t n_migs;
	bool have_exporter;
	struct sy_exporter_stats exporter;
	bool have_fleet;      /* fleet mode */
	uint32_t fleet_nodes; /* live nodes */
	bool have_resolver;
	uint64_t resolver[3]; /* lookups, failures, changes */
	bool have_tls;
	struct sy_metrics_tls tls;
	struct sy_metric_family *fam;
	size_t n_fam;
	struct sy_metric_point *pool; /* every family's points */
	size_t n_pool;
};

/* Reads every migration now (the loop thread only) and builds the families.
 * exporter: NULL = no exporter figures. -ENOMEM. */
int sy_metrics_collect(const struct sy_metrics_src *src, uint64_t start_unix_ms,
		       const struct sy_exporter_stats *exporter, struct sy_metrics_set *out);
/* Builds the families over set->migs (already filled): for tests and collect. */
int sy_metrics_build(struct sy_metrics_set *set);
void sy_metrics_set_free(struct sy_metrics_set *set);

/* Upper bound, in seconds, of log2-microsecond bucket i (bucket i counts [2^i, 2^(i+1))
 * microseconds): the histograms' explicit bounds are these for i < SY_LAT_BUCKETS - 1. */
double sy_metrics_bucket_bound_s(int i);
/* An estimate of a log2 histogram's sum in seconds (each sample at 1.5x its bucket's
 * lower bound): the kernel keeps no sum, and Prometheus histograms need one. */
double sy_metrics_hist_sum_s(const uint64_t *buckets);
uint64_t sy_metrics_hist_count(const uint64_t *buckets);

#endif
