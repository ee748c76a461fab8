// SPDX-License-Identifier: Apache-2.0
/* registry_impl.h — private to registry/: the registry's state and the commit-path
 * helpers that registry.c (the commit path, edits, health) and registry_apply.c (the
 * declaring changes: ApplyMigration, a config file, their previews) share. Nothing
 * outside registry/ includes it: the interface is registry.h. */
#ifndef SY_REGISTRY_IMPL_H
#define SY_REGISTRY_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "registry/ownership.h"
#include "registry/registry.h"

#define MAX_SUBS 16

struct sub {
	char name[24];
	sy_registry_sub_fn fn;
	void *ctx;
};

struct sy_registry {
	struct sy_bpf *bpf; /* NULL: no kernel (unit tests) */
	struct sy_store *store;
	struct sy_migration_state *migs;
	size_t n;
	struct sub subs[MAX_SUBS];
	size_t n_subs;
	bool notifying;	   /* subscribers are being called: the set must not change under them */
	struct sy_who who; /* who makes the changes now (sy_registry_set_who); origin "" = none said */
};

/* err->msg = the message (printf style); err may be NULL. */
/* The spec's one error formatter (model/spec.h), by the registry's name for it. */
#define sy_reg_err sy_spec_err_set
/* The salt of a name (FNV-1a): the same name splits clients the same way anywhere. */
uint64_t sy_reg_salt(const char *name);
/* What the cutover phase implies for the rest of m (mirror hint, a plan added or gone). */
void sy_reg_derive(struct sy_migration_state *m);
/* Whether the controller owns the ratio. */
bool sy_reg_plan_running(const struct sy_migration_state *m);
/* A deep copy of the current set with room for one more. */
int sy_reg_clone(const struct sy_registry *r, struct sy_migration_state **out);
/* Index of name in s, or -1. */
ssize_t sy_reg_find(const struct sy_migration_state *s, size_t n, const char *name);
/* Who makes the change being built: what the caller said, else dflt. */
struct sy_who sy_reg_who(const struct sy_registry *r, const char *dflt);
/* Makes cand the registry's set (stamped, stored, maps written, subscribers told);
 * takes cand. */
int sy_reg_commit(struct sy_registry *r, struct sy_migration_state *cand, size_t ncand,
		  const struct sy_who *who, struct sy_spec_err *err);
/* The cgroup ids of m's pins (kept: see registry.c). */
int sy_reg_resolve_pins(struct sy_migration_state *m, const struct sy_migration_state *kept,
			struct sy_spec_err *err);
/* A ratio above 0 or a pin to target. */
int sy_reg_has_target_clients(const struct sy_migration_state *m);

#endif
