// SPDX-License-Identifier: Apache-2.0
/* prom.h — Prometheus' /metrics: GET /metrics in text format 0.0.4, the families of
 * metrics.h under their Prometheus names (the OpenTelemetry mapping: dots become
 * underscores, the unit becomes a suffix, monotonic sums end in _total; histograms as
 * _bucket/_sum/_count with le).
 *
 * The daemon's HTTP listener (api/http.h) serves it on its own threads, which never
 * touch loop state: a scrape asks the loop (an eventfd) for a fresh rendering and waits
 * up to a second for it, then serves the newest text there is. The rendering happens
 * on the loop thread. */
#ifndef SY_PROM_H
#define SY_PROM_H

#include <stddef.h>

#include "telemetry/metrics.h"

struct sy_loop;
struct sy_prom;

/* The OTLP exporter's figures, or false when there is none. */
typedef int (*sy_prom_exporter_fn)(void *arg, struct sy_exporter_stats *out);

/* Readies the hand-over on loop l. Returns 0 or a negative errno (logged). */
int sy_prom_start(struct sy_loop *l, const struct sy_metrics_src *src, uint64_t start_unix_ms,
		  sy_prom_exporter_fn exp, void *exp_arg, struct sy_prom **out);
#define SY_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* From any thread but the loop's: asks the loop for a fresh rendering, waits up to a
 * second for it, and copies the newest text there is into *text (malloc'd, *len
 * bytes). -EAGAIN: nothing rendered yet; -ENOMEM. */
int sy_prom_text(struct sy_prom *p, char **text, size_t *len);
/* Frees the hand-over; the HTTP listener is stopped first. */
void sy_prom_free(struct sy_prom *p);

/* Prometheus name of a family into buf ("switchyard.bytes", "By", sum → "switchyard_bytes_total"). */
void sy_prom_name(const struct sy_metric_family *f, char *buf, size_t n);

/* Renders a set in text format 0.0.4. Returns 0 (*out malloc'd, *len bytes) or -ENOMEM. */
int sy_prom_render(const struct sy_metrics_set *set, char **out, size_t *len);

#endif
