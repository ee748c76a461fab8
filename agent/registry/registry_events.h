// SPDX-License-Identifier: Apache-2.0
/* registry_events.h — the registry's events (events.h): what a committed change did
 * to each migration, found by comparing the set before and after it, so that every
 * path (Control API, config file, reload) reports the same way; and a target's health
 * as seen by the migrations steering to it. It follows the registry as its first
 * subscriber (sy_migration_events_on_commit). */
#ifndef SY_MIGRATION_EVENTS_H
#define SY_MIGRATION_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/migration.h"

struct sy_events;

/* migration.created / .updated / .ratio_changed / .pinned / .unpinned / .deleted, in
 * the order of the new set, deletions last. ev == NULL: nothing. */
void sy_migration_events_commit(struct sy_events *ev, const struct sy_migration_state *before,
				size_t n_before, const struct sy_migration_state *after, size_t n_after);

/* target.health_changed for migration m, whose target t (index) became healthy or not;
 * m->healthy_mask is already the new one. why: the failed check's error, or NULL. */
void sy_migration_events_health(struct sy_events *ev, const struct sy_migration_state *m, uint32_t t,
				bool healthy, const char *why);

/* migration.scope_upgraded (and a log line): m was read from a format-1 state and its
 * prefixes were kept as its scope. */
void sy_migration_events_scope_upgraded(struct sy_events *ev, const struct sy_migration_state *m);

/* The registry subscriber (ctx: the struct sy_events *): what each commit did, as
 * above; a loaded set is not a change and reports nothing. */
void sy_migration_events_on_commit(void *ctx, const struct sy_commit *c);

#endif
