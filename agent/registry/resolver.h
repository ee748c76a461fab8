// SPDX-License-Identifier: Apache-2.0
/* resolver.h — keeps the host names of the migrations' endpoints (model/hostname.h)
 * resolved: every migration's `resolve_interval` (default 30 s) each name is resolved
 * again on a worker thread (getaddrinfo blocks; the daemon's loop must not), and the
 * answer comes back to the loop through an eventfd. A new set of addresses is committed
 * through the registry (origin "dns": stored, kernel maps rewritten, subscribers told)
 * and reported as an `endpoint.resolved` event with the old and new addresses. A name
 * that stops resolving keeps its last addresses (fail-static): it is flagged stale (in
 * the spec, so status shows it) and an `endpoint.resolve_failed` event says why, once
 * per failure streak. Counters for /metrics and OTLP: sy_resolver_stats.
 *
 * The resolver follows the registry as a subscriber (it learns the names from the
 * commits); it never changes the registry from inside a commit.
 */
#ifndef SY_RESOLVER_H
#define SY_RESOLVER_H

#include <stdint.h>

struct sy_loop;
struct sy_registry;
struct sy_events;
struct sy_resolver;

struct sy_resolver_stats {
	uint64_t lookups;  /* resolutions done */
	uint64_t failures; /* of those, names that did not resolve */
	uint64_t changes;  /* address sets that changed and were committed */
	uint64_t refused;  /* new addresses the registry refused (kept the old ones) */
};

/* Starts the worker thread and subscribes to r. NULL on failure (logged). */
struct sy_resolver *sy_resolver_new(struct sy_loop *l, struct sy_registry *r, struct sy_events *ev);
/* Stops the worker (waits for a lookup in flight) and unsubscribes. */
void sy_resolver_free(struct sy_resolver *res);
void sy_resolver_stats(const struct sy_resolver *res, struct sy_resolver_stats *out);

#endif
