// SPDX-License-Identifier: Apache-2.0
/* registry_apply.c — the changes that declare migrations: ApplyMigration (every field
 * as given) and a config file (the file rule of ownership.h, and deletion of the
 * file's migrations it no longer names); and their previews, built by the same code
 * and compared (diff.h) instead of committed. See registry.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "model/endpoint.h"
#include "registry/diff.h"
#include "registry/ownership.h"
#include "registry/registry_impl.h"

static uint32_t free_slot(const struct sy_migration_state *s, size_t n)
{
	for (uint32_t id = 1; id < SY_MAX_MIGRATIONS; id++)
		if (!sy_mset_by_id(s, n, id))
			return id;
	return 0;
}

/* Puts spec m into cand (at an existing index or appended at cand[*n]). from_file: the
 * config file declares m, and the file rule (ownership.h) decides its ratio and pins;
 * otherwise (ApplyMigration) m is taken as it is. origin NULL keeps the migration's. */
static int upsert(struct sy_migration_state *cand, size_t *n, const struct sy_migration_spec *m,
		  const char *origin, bool from_file, struct sy_spec_err *err)
{
	ssize_t at = sy_reg_find(cand, *n, m->name);
	struct sy_migration_state nm = {0};
	int e;

	if ((e = sy_migration_spec_copy(&nm.spec, m)))
		return e;
	if (from_file) {
		nm.file_spec = calloc(1, sizeof(*nm.file_spec));
		if (!nm.file_spec || sy_migration_spec_copy(nm.file_spec, m) ||
		    (at >= 0 && sy_file_rule(&nm.spec, &cand[at].spec, m, cand[at].file_spec))) {
			sy_mstate_free(&nm);
			return -ENOMEM;
		}
	} else if (at >= 0 && cand[at].file_spec) {
		/* the API's change is not the file's: what the file said stays the reference */
		nm.file_spec = cand[at].file_spec;
		cand[at].file_spec = NULL;
	}
	if ((e = sy_reg_resolve_pins(&nm, from_file && at >= 0 ? &cand[at] : NULL, err))) {
		sy_mstate_free(&nm);
		return e;
	}
	nm.updated_unix_ms = sy_unix_ms();
	if (at >= 0) {
		struct sy_migration_state *old = &cand[at];

		nm.id = old->id;
		nm.salt = old->salt;
		nm.created_unix_ms = old->created_unix_ms;
		/* A target endpoint kept across the update keeps its health. */
		for (uint32_t i = 0; i < nm.spec.n_target; i++)
			for (uint32_t j = 0; j < old->spec.n_target; j++)
				if (sy_endpoint_equal(&nm.spec.target[i], &old->spec.target[j]) &&
				    (old->healthy_mask & (1u << j)))
					nm.healthy_mask |= (uint8_t)(1u << i);
		snprintf(nm.origin, sizeof(nm.origin), "%s", origin ? origin : old->origin);
		nm.co = old->co;
		nm.ratio_by = old->ratio_by;
		if (sy_reg_plan_running(old))
			nm.spec.ratio_bp = old->spec.ratio_bp; /* the controller owns it */
		sy_reg_derive(&nm);
		sy_mstate_free(old);
		*old = nm;
		return 0;
	}
	nm.id = free_slot(cand, *n);
	if (nm.id == 0) {
		sy_reg_err(err, "no free migration slot (at most %d migrations)", SY_MAX_MIGRATIONS - 1);
		sy_mstate_free(&nm);
		return -ENOSPC;
	}
	nm.salt = sy_reg_salt(m->name);
	nm.created_unix_ms = nm.updated_unix_ms;
	snprintf(nm.origin, sizeof(nm.origin), "%s", origin ? origin : "api");
	sy_reg_derive(&nm);
	cand[(*n)++] = nm;
	return 0;
}

/* Validates one spec against every other migration of the set s. */
static int validate_one(const struct sy_migration_state *s, size_t n_s, const struct sy_migration_spec *m,
			struct sy_spec_err *err)
{
	struct sy_migration_spec *others = calloc(n_s + 1, sizeof(*others));
	size_t n = 0;
	int e;

	if (!others)
		return -ENOMEM;
	for (size_t i = 0; i < n_s; i++)
		if (strcmp(s[i].spec.name, m->name) != 0)
			others[n++] = s[i].spec; /* shallow: read only */
	e = sy_spec_validate_against(m, others, n, err);
	free(others);
	return e;
}

/* The set ApplyMigration makes of the current one with specs m[0..k) applied in turn
 * (one for the API, several for a preview of syctl apply). */
static int build_apply(struct sy_registry *r, const struct sy_migration_spec *m, size_t k,
		       struct sy_migration_state **out, size_t *n_out, struct sy_spec_err *err)
{
	struct sy_migration_state *cand, *next;
	size_t n = r->n;
	int e;

	if ((e = sy_reg_clone(r, &cand)))
		return e;
	if (!(next = realloc(cand, (r->n + k + 1) * sizeof(*cand)))) {
		sy_mset_free(cand, n);
		return -ENOMEM;
	}
	cand = next;
	for (size_t i = 0; i < k; i++) {
		if ((e = validate_one(cand, n, &m[i], err)) ||
		    (e = upsert(cand, &n, &m[i], NULL, false, err))) {
			sy_mset_free(cand, n);
			return e;
		}
	}
	*out = cand;
	*n_out = n;
	return 0;
}

int sy_registry_apply(struct sy_registry *r, const struct sy_migration_spec *m, struct sy_spec_err *err)
{
	struct sy_migration_state *cand;
	struct sy_who who = sy_reg_who(r, "api");
	size_t n;
	int e;

	if ((e = build_apply(r, m, 1, &cand, &n, err)))
		return e;
	return sy_reg_commit(r, cand, n, &who, err);
}

/* The set a config file makes of the current one (the file rule, deletions of its own
 * migrations it no longer names), validated, not committed. */
static int build_file(struct sy_registry *r, const struct sy_spec *s, const char *file, const char *origin,
		      struct sy_migration_state **out, size_t *n_out, struct sy_spec_err *err)
{
	struct sy_migration_state *cand, *next;
	size_t n = r->n, m = 0;
	int e;

	if ((e = sy_spec_validate(s, file, err)))
		return e;
	/* Migrations made through the API are not the file's to delete, but they must not
	 * conflict with it either. */
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->migs[i].origin, origin) == 0)
			continue;
		for (size_t j = 0; j < s->n; j++) {
			if (strcmp(r->migs[i].spec.name, s->migs[j].name) == 0)
				continue;
			e = sy_spec_validate_against(&s->migs[j], &r->migs[i].spec, 1, err);
			if (e) {
				char msg[sizeof(err->msg)];

				snprintf(msg, sizeof(msg), "%s", err->msg);
				sy_reg_err(err, "%s:%d: %s (migration \"%s\" was made through the API)", file,
					   s->migs[j].line, msg, r->migs[i].spec.name);
				return e;
			}
		}
	}
	if ((e = sy_reg_clone(r, &cand)))
		return e;
	next = realloc(cand, (r->n + s->n + 1) * sizeof(*cand));
	if (!next) {
		sy_mset_free(cand, n);
		return -ENOMEM;
	}
	cand = next;
	for (size_t j = 0; j < s->n; j++) {
		if ((e = upsert(cand, &n, &s->migs[j], origin, true, err))) {
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			sy_reg_err(err, "%s:%d: %s", file, s->migs[j].line, msg);
			sy_mset_free(cand, n);
			return e;
		}
	}
	/* Drop this file's migrations that it no longer names. */
	for (size_t i = 0; i < n; i++) {
		int named = 0;

		for (size_t j = 0; j < s->n && !named; j++)
			named = strcmp(cand[i].spec.name, s->migs[j].name) == 0;
		if (named || strcmp(cand[i].origin, origin) != 0) {
			cand[m++] = cand[i];
			continue;
		}
		if (sy_reg_has_target_clients(&cand[i])) {
			sy_reg_err(err,
				   "%s: migration \"%s\" is no longer in the file but still sends clients to "
				   "its target; set its ratio to 0%% and remove its target pins first, or "
				   "delete "
				   "it with syctl delete --force",
				   file, cand[i].spec.name);
			for (size_t k = i; k < n; k++)
				cand[m++] = cand[k];
			sy_mset_free(cand, m);
			return -EBUSY;
		}
		sy_mstate_free(&cand[i]);
	}
	*out = cand;
	*n_out = m;
	return 0;
}

int sy_registry_apply_file(struct sy_registry *r, const struct sy_spec *s, const char *file,
			   struct sy_spec_err *err)
{
	struct sy_migration_state *cand;
	struct sy_who who = {0};
	size_t n;
	int e;

	snprintf(who.origin, sizeof(who.origin), "file:%s", file);
	if ((e = build_file(r, s, file, who.origin, &cand, &n, err)))
		return e;
	return sy_reg_commit(r, cand, n, &who, err);
}

/* The diff of a candidate set against the current one; takes cand. */
static int preview(struct sy_registry *r, struct sy_migration_state *cand, size_t n, const struct sy_who *who,
		   struct sy_diff *d)
{
	int e = sy_ownership_stamp(cand, n, r->migs, r->n, who);

	if (!e)
		e = sy_mset_diff(r->migs, r->n, cand, n, d);
	sy_mset_free(cand, n);
	return e;
}

int sy_registry_preview_apply(struct sy_registry *r, const struct sy_migration_spec *m, size_t k,
			      struct sy_diff *d, struct sy_spec_err *err)
{
	struct sy_migration_state *cand;
	struct sy_who who = sy_reg_who(r, "api");
	size_t n;
	int e;

	memset(d, 0, sizeof(*d));
	if ((e = build_apply(r, m, k, &cand, &n, err)))
		return e;
	return preview(r, cand, n, &who, d);
}

int sy_registry_preview_file(struct sy_registry *r, const struct sy_spec *s, const char *file,
			     struct sy_diff *d, struct sy_spec_err *err)
{
	struct sy_migration_state *cand;
	struct sy_who who = {0};
	size_t n;
	int e;

	memset(d, 0, sizeof(*d));
	snprintf(who.origin, sizeof(who.origin), "file:%s", file);
	if ((e = build_file(r, s, file, who.origin, &cand, &n, err)))
		return e;
	return preview(r, cand, n, &who, d);
}
