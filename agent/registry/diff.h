// SPDX-License-Identifier: Apache-2.0
/* diff.h — what a change does to a set of migrations, field by field: the one
 * comparison behind the events (registry_events.c), the reload's summary and the
 * Control API's preview (Diff). Migrations are matched by name; spec fields other than
 * ratio and pins are compared in their protobuf form one field at a time, so a field
 * added to the spec is reported by its proto name without being listed anywhere.
 */
#ifndef SY_REGISTRY_DIFF_H
#define SY_REGISTRY_DIFF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "registry/migration.h"

#define SY_DIFF_VALUE_MAX 512 /* longer values are cut, ending in "..." */

/* "ratio_bp", "pins[CGROUP]", a spec field's proto name, or "migration" (created or
 * deleted); values as text, "" for absent. */
struct sy_field_change {
	char field[PATH_MAX + 8];
	char old_v[SY_DIFF_VALUE_MAX], new_v[SY_DIFF_VALUE_MAX];
};

struct sy_mig_diff {
	char name[SY_NAME_MAX];
	const char *change; /* "created", "updated", "deleted" */
	struct sy_field_change *fields;
	size_t n_fields;
	bool moves_clients; /* created, deleted, ratio, a pin, endpoints or client mode */
};

struct sy_diff {
	struct sy_mig_diff *migs; /* only migrations that changed: the new set's order, deletions last */
	size_t n;
	bool moves_clients;
};

/* 0 or -ENOMEM (then *d is empty). Free with sy_diff_free. */
int sy_mset_diff(const struct sy_migration_state *before, size_t n_before,
		 const struct sy_migration_state *after, size_t n_after, struct sy_diff *d);
void sy_diff_free(struct sy_diff *d);
/* "users: ratio_bp,pins[/sys/fs/cgroup/a]; orders: created", "" when nothing changed. */
void sy_diff_summary(const struct sy_diff *d, char *buf, size_t n);

/* Comma-separated proto names of the spec fields that differ, other than name,
 * ratio_bp and pins. */
void sy_spec_changed_fields(const struct sy_migration_spec *a, const struct sy_migration_spec *b, char *out,
			    size_t len);

#endif
