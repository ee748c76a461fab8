// SPDX-License-Identifier: Apache-2.0
/* migration.h — one migration as the registry keeps it (its spec and live state), and a
 * registry commit as its subscribers see it. The registry (registry.c), its events
 * (registry_events.c) and the components that follow it (shadow, cutover, the daemon)
 * include this header, not each other; this file owns the deep copy of a set.
 */
#ifndef SY_MIGRATION_H
#define SY_MIGRATION_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/phase.h"
#include "model/spec.h"

/* Fleet mode: an audit or backfill asked of a follower, for the leader to run
 * (state.proto JobRequest; registry/job_request.c). nonce 0: none asked. */
enum { SY_JOBREQ_AUDIT, SY_JOBREQ_BACKFILL, SY_JOBREQ_KINDS };

struct sy_job_request {
	uint64_t nonce;
	char node[64]; /* who asked */
	uint64_t requested_unix_ms;
	bool repair;
	uint32_t keys_per_s;
	uint64_t bytes_per_s;
	char taken_by[64];	   /* the leader that started it; "" while pending */
	uint64_t started_unix_ms;  /* the leader's job's started_unix_ms */
	uint64_t finished_unix_ms; /* its end, as the taker recorded it; 0: not yet */
};

/* Who last set a runtime field (the ratio, one pin), kept with the state. */
struct sy_set_by {
	char origin[PATH_MAX + 8]; /* "api", "file:PATH", "plan" */
	char reason[SY_REASON_MAX];
};

struct sy_migration_state {
	struct sy_migration_spec spec; /* live spec: its ratio is the current ratio */
	uint32_t id;		       /* slot in the kernel's migrations map */
	uint64_t salt;
	uint64_t *pin_cgroup_ids; /* parallel to spec.pins */
	uint64_t created_unix_ms, updated_unix_ms;
	uint8_t healthy_mask;	    /* bit i: spec.target[i] answered its last health check */
	char origin[PATH_MAX + 8];  /* "file:PATH" or "api": a reloaded file only deletes its own */
	struct sy_cutover_state co; /* the plan's progress (cutover.c decides, the registry keeps) */
	/* Ownership (ownership.h): who set the ratio and each pin (pin_by is parallel to
	 * spec.pins), and the migration as the config file last declared it (NULL: no
	 * file did, or the state predates it). Deep-copied with the rest. */
	struct sy_set_by ratio_by;
	struct sy_set_by *pin_by;
	struct sy_migration_spec *file_spec;
	/* Read from a format-1 state whose prefixes also scoped: they were copied to
	 * spec.scope so that it mirrors what it did (reported once, at load). */
	bool scope_upgraded;
	struct sy_job_request job_req[SY_JOBREQ_KINDS];
};

enum sy_commit_kind {
	SY_COMMIT_LOAD,	  /* the set as it is (start, or a new subscriber catching up): before is empty */
	SY_COMMIT_CHANGE, /* a change made here (Control API, config file, cutover), persisted */
	SY_COMMIT_HEALTH, /* target health flips only: healthy masks, not persisted */
	SY_COMMIT_REMOTE, /* a change made elsewhere, arrived through the store's watch */
};

/* What one commit did: the whole set before and after it. Both arrays belong to the
 * registry and live only during the call; `after` is already the registry's set. */
struct sy_commit {
	enum sy_commit_kind kind;
	uint64_t revision; /* the store's revision the set is at */
	const struct sy_migration_state *before, *after;
	size_t n_before, n_after;
	const char *why; /* SY_COMMIT_HEALTH: the failed check's error, or NULL */
	/* SY_COMMIT_CHANGE: who made it — origin "api", "file:PATH" or "plan"; peer (the
	 * API's caller: "uid=0 pid=42", "127.0.0.1:5000") and reason may be "". NULL for
	 * the other kinds. */
	const char *origin, *peer, *reason;
};

/* The migration of a set by name or by kernel slot, or NULL. */
const struct sy_migration_state *sy_mset_find(const struct sy_migration_state *s, size_t n, const char *name);
const struct sy_migration_state *sy_mset_by_id(const struct sy_migration_state *s, size_t n, uint32_t id);

/* A subscriber's copy of slot id after commit c, into *slot: the state without its
 * pins (their arrays are the registry's and die with the commit; the other pointers
 * live as long as the migration's spec), or zeroes when the slot is empty. Returns
 * whether the slot holds a migration. */
bool sy_commit_slot(const struct sy_commit *c, uint32_t id, struct sy_migration_state *slot);
/* sy_commit_slot for every slot id (1 to SY_MAX_MIGRATIONS - 1) into seen[id], then
 * fn(ctx, id, &seen[id]), or fn(ctx, id, NULL) for an empty slot. */
void sy_commit_walk(const struct sy_commit *c, struct sy_migration_state *seen,
		    void (*fn)(void *ctx, uint32_t id, const struct sy_migration_state *cur), void *ctx);

/* Deep copies (spec, pin ids, ownership); 0 or -ENOMEM. */
int sy_mstate_copy(struct sy_migration_state *dst, const struct sy_migration_state *src);
void sy_mstate_free(struct sy_migration_state *m);
void sy_mset_free(struct sy_migration_state *s, size_t n);

#endif
