// SPDX-License-Identifier: Apache-2.0
/* ownership.h — who owns a migration's fields, the one rule the registry decides by
 * (docs/control-plane.md, "Who owns what"):
 *
 *   The config file seeds a migration and owns its spec fields. The runtime fields —
 *   the ratio and each pin — may also be set through the API (or, the ratio, by the
 *   plan); a reload takes such a field from the file only when the file's own value of
 *   that very field changed since the file was last applied. A reload of an unchanged
 *   file therefore never moves a client. `scope:` follows the same rule when the file
 *   does not declare one: a scope the file declared neither now nor before (a format-1
 *   state's prefixes kept as scope, one set through the API) stays.
 *
 * "Since the file was last applied" is the migration's file_spec (migration.h), kept
 * in the state; without one (the file never declared this migration, or a state
 * written before it was kept) the file counts as unchanged.
 *
 * This file also stamps who last set each runtime field at every commit.
 */
#ifndef SY_OWNERSHIP_H
#define SY_OWNERSHIP_H

#include <stddef.h>

#include "registry/migration.h"

/* Who makes a commit: origin "api", "file:PATH", "plan"; peer and reason may be "". */
struct sy_who {
	char origin[PATH_MAX + 8];
	char peer[128];
	char reason[SY_REASON_MAX];
};

/* The file rule on the runtime fields of `out` (already a copy of the file's spec f,
 * spec fields and all): its ratio and pins become the running ones (cur) except where
 * f differs from last in that field; its scope is cur's when neither f nor last
 * declares one. cur NULL (a new migration): f's, as they are.
 * last NULL: the file is unchanged. 0 or -ENOMEM. */
int sy_file_rule(struct sy_migration_spec *out, const struct sy_migration_spec *cur,
		 const struct sy_migration_spec *f, const struct sy_migration_spec *last);

/* Before a commit: ratio_by and pin_by of every migration of cand, from `before`
 * where the field kept its value, else `who`. 0 or -ENOMEM. */
int sy_ownership_stamp(struct sy_migration_state *cand, size_t n, const struct sy_migration_state *before,
		       size_t n_before, const struct sy_who *who);

#endif
