/* registry_events.h — the registry's events (events.h): what a committed change did
 * to each migration, found by comparing the set before and after it, so that every
 * path (Control API, config file, reload) reports the same way; and a target's health
 * as seen by the migrations steering to it. */
#ifndef SY_MIGRATION_EVENTS_H
#define SY_MIGRATION_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sy_events;
struct sy_migration_state;

/* migration.created / .updated / .ratio_changed / .pinned / .unpinned / .deleted, in
 * the order of the new set, deletions last. ev == NULL: nothing. */
void sy_migration_events_commit(struct sy_events *ev, const struct sy_migration_state *before,
				size_t n_before, const struct sy_migration_state *after, size_t n_after);

/* target.health_changed for migration m, whose target t (index) became healthy or not;
 * m->healthy_mask is already the new one. why: the failed check's error, or NULL. */
void sy_migration_events_health(struct sy_events *ev, const struct sy_migration_state *m, uint32_t t,
				bool healthy, const char *why);

#endif
