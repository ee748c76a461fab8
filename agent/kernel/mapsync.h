// SPDX-License-Identifier: Apache-2.0
/* mapsync.h — the steering and statistics maps as the agent writes and reads them:
 * makes the maps hold exactly a set of migrations, and sums the per-CPU statistics of
 * one migration. It knows the maps' layout (abi.h, index.h), not where the set comes
 * from: the registry hands it a view of its set (struct sy_map_mig).
 *
 * The write keeps connect() consistent at every instant: rules, migration entries and
 * pins are written before the routes that lead to them, and stale routes are removed
 * before the migration slots they pointed to are cleared. A write that fails midway
 * leaves the maps partly written: the caller writes its previous set back.
 *
 * Errors: negative errno (-ENODEV: no maps, b == NULL).
 */
#ifndef SY_MAPSYNC_H
#define SY_MAPSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "model/spec.h"
#include "switchyard/abi.h"

struct sy_bpf;

/* One migration as the maps need it. */
struct sy_map_mig {
	uint32_t id; /* slot in sy_migrations, 1..SY_MAX_MIGRATIONS-1 */
	uint64_t salt;
	uint8_t healthy_mask; /* bit i: spec->target[i] is healthy */
	const struct sy_migration_spec *spec;
	const uint64_t *pin_cgroup_ids; /* parallel to spec->pins */
};

/* Makes routes, migrations, pins and prefix rules hold exactly s[0..n); a freed slot's
 * counters and statistics restart from zero for its next migration. */
int sy_mapsync_write(struct sy_bpf *b, const struct sy_map_mig *s, size_t n);
/* Rewrites one migration's entry only (a health flip: routes and rules unchanged). */
int sy_mapsync_write_one(struct sy_bpf *b, const struct sy_map_mig *m);
/* The kernel's healthy mask for m's slot if the slot holds the same targets, else 0:
 * a restarted daemon keeps steering exactly as before until its first health check. */
uint8_t sy_mapsync_healthy_mask(struct sy_bpf *b, const struct sy_map_mig *m);

/* Per-CPU statistics of migration slot `id`, summed over CPUs. */
int sy_mapsync_counters(struct sy_bpf *b, uint32_t id, struct sy_steer_counters *out);
/* One side (enum sy_side): bytes, latency, errors, capture. */
int sy_mapsync_side_stats(struct sy_bpf *b, uint32_t id, uint8_t side, struct sy_side_stats *out);
/* Commands and bytes by class of one rule (0 = whole endpoint or keyless, i =
 * prefixes[i-1]) and side. */
int sy_mapsync_rule_stats(struct sy_bpf *b, uint32_t id, uint32_t rule, uint8_t side,
			  struct sy_rule_stats *out);
/* The same over every rule of the migration. */
int sy_mapsync_side_classes(struct sy_bpf *b, uint32_t id, uint8_t side, struct sy_rule_stats *out);

#endif
