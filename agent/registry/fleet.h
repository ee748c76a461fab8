// SPDX-License-Identifier: Apache-2.0
/* fleet.h — what this agent knows of the other agents sharing its store: each node's
 * last status (switchyard.v1.NodeStatus, the value of PREFIX/nodes/NODE) and the
 * fleet's summed counters per migration, which the leader's gates read.
 *
 * Sums are cumulative and never go down, like the kernel's own counters, so the gates'
 * window logic (deltas between snapshots) is the same on one host and on a fleet: each
 * node's report adds what grew since that node's previous report. A node's first report
 * is its baseline (what it counted before it joined is not news), a counter that went
 * down is a restart (its new value is what grew), and a node that left adds nothing
 * more. Counters and log2 histograms add exactly, so the fleet p99 is exact to the
 * bucket. No I/O: store_etcd feeds it, the cutover controller reads it.
 */
#ifndef SY_FLEET_H
#define SY_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/spec.h"
#include "switchyard/abi.h"

#define SY_FLEET_NODE_MAX 64 /* a node name, with its NUL */

struct sy_fleet;

/* One migration's cumulative counters (per side: enum sy_side). */
struct sy_fleet_counters {
	uint64_t req[2], err[2];
	uint64_t lat[2][SY_LAT_BUCKETS];
	uint64_t drift;
	uint64_t conns[2]; /* sockets steered to each side (shown per node, not summed) */
};

/* A background job (audit, backfill) as its node reports it. */
struct sy_fleet_job {
	uint8_t state; /* enum sy_job_state */
	uint64_t scanned, total, copied, found, repaired;
	uint64_t diff[5]; /* audit: missing, extra, type, value, ttl (sum: found) */
	uint64_t started_unix_ms, finished_unix_ms;
	char error[128];
};

struct sy_fleet_mig {
	char name[SY_NAME_MAX];
	uint32_t ratio_bp;
	struct sy_fleet_counters c;
	struct sy_fleet_job audit, backfill;
};

struct sy_fleet_node {
	char name[SY_FLEET_NODE_MAX];
	char version[32];
	bool alive;		    /* its key exists (its lease holds) */
	uint64_t last_seen_unix_ms; /* when this agent last read its key */
	uint64_t applied_revision;
	size_t n_mig;
	struct sy_fleet_mig *mig;
};

struct sy_fleet *sy_fleet_new(const char *self);
void sy_fleet_free(struct sy_fleet *f);

/* fn(ctx, node, joined) when a node's key appears (joined) or goes (left). */
void sy_fleet_on_change(struct sy_fleet *f, void (*fn)(void *ctx, const char *node, bool joined), void *ctx);

/* This node's own counters, which its store publishes in its key (copied); the store
 * hears of each new set through fn (one listener). */
void sy_fleet_set_local(struct sy_fleet *f, const struct sy_fleet_mig *m, size_t n);
void sy_fleet_on_local(struct sy_fleet *f, void (*fn)(void *ctx), void *ctx);
size_t sy_fleet_local(const struct sy_fleet *f, const struct sy_fleet_mig **out);

/* A node key's value read or watched: -EBADMSG (logged once per node) when it is not a
 * NodeStatus, and nothing changes. */
int sy_fleet_node_put(struct sy_fleet *f, const char *node, const uint8_t *v, size_t len);
/* Its key was deleted (lease revoked or expired). */
void sy_fleet_node_gone(struct sy_fleet *f, const char *node);
/* A full read: nodes not put between begin and end are gone. */
void sy_fleet_sync_begin(struct sy_fleet *f);
void sy_fleet_sync_end(struct sy_fleet *f);

/* Whether the sums stand for a fleet (a store feeds this); false on a single host. */
bool sy_fleet_active(const struct sy_fleet *f);
void sy_fleet_set_active(struct sy_fleet *f, bool on);

/* The fleet's cumulative counters of migration `name` and the live nodes that report
 * it. -ENOENT: no live node reports it. */
int sy_fleet_sum(const struct sy_fleet *f, const char *name, struct sy_fleet_counters *out, uint32_t *nodes);
/* Live nodes. */
uint32_t sy_fleet_alive(const struct sy_fleet *f);

/* Every node known (alive or gone since this agent started), sorted by name. */
size_t sy_fleet_count(const struct sy_fleet *f);
const struct sy_fleet_node *sy_fleet_at(const struct sy_fleet *f, size_t i);
const char *sy_fleet_self(const struct sy_fleet *f);
/* What live node `node` last reported of migration `name`; NULL when nothing. */
const struct sy_fleet_mig *sy_fleet_find(const struct sy_fleet *f, const char *node, const char *name);

#endif
