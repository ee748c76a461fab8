// SPDX-License-Identifier: Apache-2.0
/* exporters.h — the daemon's metrics exporters, configured and started in one place:
 * the Prometheus listener (prom.h) and the OTLP exporter (otlp.h).
 *
 * Settings come from the command line (--metrics, --otlp-endpoint, --otlp-interval,
 * --otlp-resource, --otlp-gzip) and from the config file's top-level `telemetry:`
 * section; an option given on the command line wins over the file. They are read at
 * start (a SIGHUP does not change them), from the document the daemon parsed once for
 * the spec too (model/yaml.h). See docs/observability.md. */
#ifndef SY_EXPORTERS_H
#define SY_EXPORTERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "telemetry/metrics.h"

#define SY_EXP_RESOURCE_MAX 16

struct sy_exporters_cfg {
	char metrics[128];	 /* Prometheus listener, "" = none */
	char otlp_endpoint[256]; /* "" = no OTLP export */
	uint32_t otlp_interval_ms;
	bool otlp_gzip;
	size_t n_res;
	char res_key[SY_EXP_RESOURCE_MAX][128];
	char res_val[SY_EXP_RESOURCE_MAX][256];
	struct sy_tls *otlp_tls; /* TLS to the collector (rpc/tls.h; not owned), NULL = h2c */
	/* given on the command line: the file does not override these */
	bool cli_metrics, cli_endpoint, cli_interval, cli_gzip;
};

struct sy_loop;
struct sy_exporters;
struct sy_yaml;
struct sy_prom;
struct sy_tls;

/* The options live in the daemon's one getopt_long table (switchyardd.c): these entries,
 * each with its own val, handed back to sy_exporters_opt. */
enum {
	SY_EXP_OPT_BASE = 0x400,
	SY_EXP_OPT_METRICS = SY_EXP_OPT_BASE,
	SY_EXP_OPT_ENDPOINT,
	SY_EXP_OPT_INTERVAL,
	SY_EXP_OPT_RESOURCE,
	SY_EXP_OPT_GZIP,
};
#define SY_EXP_OPTS 5
#define SY_EXPORTERS_LONGOPTS                                                                                \
	{"metrics", required_argument, 0, SY_EXP_OPT_METRICS},                                               \
		{"otlp-endpoint", required_argument, 0, SY_EXP_OPT_ENDPOINT},                                \
		{"otlp-interval", required_argument, 0, SY_EXP_OPT_INTERVAL},                                \
		{"otlp-resource", required_argument, 0, SY_EXP_OPT_RESOURCE},                                \
	{                                                                                                    \
		"otlp-gzip", required_argument, 0, SY_EXP_OPT_GZIP                                           \
	}

void sy_exporters_defaults(struct sy_exporters_cfg *cfg);
/* "metrics", … for a val of the table; NULL for any other val. */
const char *sy_exporters_opt_name(int val);
/* One option of the table with its argument (NULL: it was missing). Returns 0, or 2
 * after printing "switchyardd: --opt: why" (bad usage). */
int sy_exporters_opt(struct sy_exporters_cfg *cfg, int val, const char *arg);
/* Reads the `telemetry:` section of the parsed config file (absent = nothing to do).
 * Returns 0, or -EINVAL with "FILE:LINE: telemetry: why" in err. */
int sy_exporters_from_yaml(struct sy_yaml *doc, struct sy_exporters_cfg *cfg, char *err, size_t errlen);
/* The same on a buffer it parses (for tests). */
int sy_exporters_load_buf(const char *name, const char *buf, size_t len, struct sy_exporters_cfg *cfg,
			  char *err, size_t errlen);
void sy_exporters_usage(FILE *f);

/* Starts what cfg asks for (nothing at all is fine: *out is still set). 0 or a
 * negative errno, logged. */
int sy_exporters_start(struct sy_loop *l, const struct sy_exporters_cfg *cfg,
		       const struct sy_metrics_src *src, uint64_t start_unix_ms, struct sy_exporters **out);
/* The Prometheus figures for the HTTP listener's /metrics (NULL: no metrics asked for). */
struct sy_prom *sy_exporters_prom(const struct sy_exporters *x);
void sy_exporters_free(struct sy_exporters *x);

#endif
