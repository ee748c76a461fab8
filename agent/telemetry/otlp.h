// SPDX-License-Identifier: Apache-2.0
/* otlp.h — OTLP/gRPC metrics export: every interval, one snapshot (metrics.h) becomes
 * one ExportMetricsServiceRequest (cumulative sums from a fixed start time), packed
 * and gzipped once, queued, and sent to the collector by the daemon's async gRPC
 * client on the loop.
 *
 * A slow or dead collector never slows the loop: connects are non-blocking, each call
 * has a deadline, at most one call is in flight, and pending batches are bounded
 * (SY_OTLP_PENDING_MAX; when full the oldest waiting one is dropped: sums are
 * cumulative, so a later batch carries everything a dropped one had). Retryable
 * failures (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, connection
 * errors) are retried with exponential backoff; others drop the batch (counted as
 * failed). Each burst of failures or drops is logged once, and once more when it ends. */
#ifndef SY_OTLP_H
#define SY_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry/metrics.h"

#define SY_OTLP_PENDING_MAX 64
#define SY_OTLP_EXPORT_PATH "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

struct sy_loop;
struct sy_tls;
struct sy_otlp;

/* Resource attributes, in order; later keys replace earlier ones of the same name. */
struct sy_otlp_resource {
	const char *const *keys;
	const char *const *vals;
	size_t n;
};

struct sy_otlp_opts {
	const char *endpoint; /* numeric HOST:PORT, [V6]:PORT or localhost:PORT */
	uint32_t interval_ms;
	bool gzip;
	struct sy_otlp_resource resource; /* besides service.name, service.version, host.name */
	struct sy_tls *tls;		  /* TLS to the collector (rpc/tls.h; not owned), NULL = h2c */
	const char *tls_name;		  /* HOST:PORT as configured: the name TLS checks */
};

/* Starts exporting; the first batch after one interval. 0 or a negative errno (logged). */
int sy_otlp_start(struct sy_loop *l, const struct sy_otlp_opts *o, const struct sy_metrics_src *src,
		  uint64_t start_unix_ms, struct sy_otlp **out);
void sy_otlp_stats(const struct sy_otlp *x, struct sy_exporter_stats *out);
/* Pending batches are dropped (not flushed: stopping must not wait on a collector). */
void sy_otlp_free(struct sy_otlp *x);

/* The request for one snapshot, packed (not framed). res: every resource attribute.
 * 0 or -ENOMEM. Pure: for the unit tests too. */
int sy_otlp_build(const struct sy_metrics_set *set, const struct sy_otlp_resource *res, uint8_t **out,
		  size_t *len);

#endif
