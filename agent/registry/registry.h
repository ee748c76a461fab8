/* registry.h — the registry of migrations and their live state: the only writer of
 * the steering maps and of the state file. Every change is validated (spec.c), applied
 * to the kernel maps, and persisted (write temp + rename) before the call returns; a
 * change that fails at any step leaves maps and file as they were.
 *
 * Errors: -EINVAL (invalid input), -ENOENT (no such migration), -EBUSY (refused: clients
 * on target), -ENOSPC (no free slot), -EIO (persisting failed); err->msg says why.
 */
#ifndef SY_MIGRATIONS_H
#define SY_MIGRATIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "model/phase.h"
#include "model/spec.h"

struct sy_bpf;

struct sy_migration_state {
	struct sy_migration_spec spec; /* live spec: its ratio is the current ratio */
	uint32_t id;		       /* slot in the kernel's migrations map */
	uint64_t salt;
	uint64_t *pin_cgroup_ids; /* parallel to spec.pins */
	uint64_t created_unix_ms, updated_unix_ms;
	uint8_t healthy_mask;	    /* bit i: spec.target[i] answered its last health check */
	char origin[PATH_MAX + 8];  /* "file:PATH" or "api": a reloaded file only deletes its own */
	struct sy_cutover_state co; /* the plan's progress (cutover.c decides, the registry keeps) */
};

struct sy_registry;

struct sy_registry *sy_registry_new(struct sy_bpf *bpf, const char *state_dir);
void sy_registry_free(struct sy_registry *r);

/* Where committed changes and target health flips are recorded (events.h); NULL = none. */
struct sy_events;
void sy_registry_set_events(struct sy_registry *r, struct sy_events *ev);

/* Called after every committed change (the daemon re-targets health checks). */
void sy_registry_on_change(struct sy_registry *r, void (*cb)(struct sy_registry *r, void *arg), void *arg);

/* Loads STATE_DIR/state.pb (absent = empty) and writes it into the maps. */
int sy_registry_load(struct sy_registry *r, struct sy_spec_err *err);

/* Creates or updates one migration (the API's ApplyMigration). */
int sy_registry_apply(struct sy_registry *r, const struct sy_migration_spec *m, struct sy_spec_err *err);
/* Makes the set of migrations named in a config file exactly s (create, update, and
 * delete those no longer named), all or nothing. `file` prefixes error messages. */
int sy_registry_apply_file(struct sy_registry *r, const struct sy_spec *s, const char *file,
			   struct sy_spec_err *err);
int sy_registry_delete(struct sy_registry *r, const char *name, bool force, struct sy_spec_err *err);
int sy_registry_set_ratio(struct sy_registry *r, const char *name, uint32_t ratio_bp,
			  struct sy_spec_err *err);
/* Commits the plan's progress and, when ratio_bp >= 0, a new ratio with it (one
 * persisted change, so a restart never sees one without the other). */
int sy_registry_set_cutover(struct sy_registry *r, const char *name, const struct sy_cutover_state *co,
			    int64_t ratio_bp, struct sy_spec_err *err);
int sy_registry_pin(struct sy_registry *r, const char *name, const char *cgroup, uint8_t side,
		    struct sy_spec_err *err);
int sy_registry_unpin(struct sy_registry *r, const char *name, const char *cgroup, struct sy_spec_err *err);

size_t sy_registry_count(const struct sy_registry *r);
const struct sy_migration_state *sy_registry_at(const struct sy_registry *r, size_t i);
const struct sy_migration_state *sy_registry_find(const struct sy_registry *r, const char *name);
/* The migration in kernel slot `id`, or NULL. */
const struct sy_migration_state *sy_registry_by_id(const struct sy_registry *r, uint32_t id);

/* Sums the per-CPU steering decision counters of a migration. */
int sy_registry_counters(const struct sy_registry *r, const char *name, struct sy_steer_counters *out);

/* Sums the per-CPU observe statistics of one side (enum sy_side) of a migration. */
int sy_registry_side_stats(const struct sy_registry *r, const char *name, uint8_t side,
			   struct sy_side_stats *out);
/* Commands and bytes by class of one rule (0 = whole endpoint or keyless, i = prefixes[i-1])
 * and side, summed over CPUs. */
int sy_registry_rule_stats(const struct sy_registry *r, const char *name, uint32_t rule, uint8_t side,
			   struct sy_rule_stats *out);
/* The same over every rule of the migration. */
int sy_registry_side_classes(const struct sy_registry *r, const char *name, uint8_t side,
			     struct sy_rule_stats *out);

/* Health of a target endpoint, from health.c; updates the kernel's healthy mask. why:
 * the failed check's error (for the event), or NULL. */
void sy_registry_set_target_health(struct sy_registry *r, const struct sy_endpoint *ep, bool healthy,
				   const char *why);

#endif
