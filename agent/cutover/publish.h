// SPDX-License-Identifier: Apache-2.0
/* publish.h — fleet mode, every node: once a second, this node's cumulative counters
 * per migration (requests, errors and log2 latency per side, drift) and the state of
 * the jobs it runs (audit, backfill) go into the fleet table (registry/fleet.h), which
 * the etcd store publishes in the node key. The leader's gates read the fleet's sums;
 * the other nodes show the leader's jobs. Nothing runs on a single host.
 */
#ifndef SY_PUBLISH_H
#define SY_PUBLISH_H

struct sy_loop;
struct sy_registry;
struct sy_verify;
struct sy_fleet;
struct sy_fleet_counters;
struct sy_migration_state;
struct sy_publish;

struct sy_publish *sy_publish_new(struct sy_loop *l, struct sy_registry *reg, struct sy_verify *v,
				  struct sy_fleet *f);
void sy_publish_free(struct sy_publish *p);

/* This node's own cumulative counters of migration m (verify may be NULL: no drift). */
int sy_fleet_local_counters(struct sy_registry *reg, struct sy_verify *v, const struct sy_migration_state *m,
			    struct sy_fleet_counters *out);

#endif
