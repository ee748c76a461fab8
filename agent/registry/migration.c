// SPDX-License-Identifier: Apache-2.0
/* migration.c — see migration.h. */
#include "registry/migration.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct sy_migration_state *sy_mset_find(const struct sy_migration_state *s, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].spec.name, name) == 0)
			return &s[i];
	return NULL;
}

const struct sy_migration_state *sy_mset_by_id(const struct sy_migration_state *s, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].id == id)
			return &s[i];
	return NULL;
}

bool sy_commit_slot(const struct sy_commit *c, uint32_t id, struct sy_migration_state *slot)
{
	const struct sy_migration_state *ms = sy_mset_by_id(c->after, c->n_after, id);

	if (!ms) {
		memset(slot, 0, sizeof(*slot));
		return false;
	}
	*slot = *ms;
	slot->spec.pins = NULL;
	slot->spec.n_pins = 0;
	slot->pin_cgroup_ids = NULL;
	return true;
}

void sy_commit_walk(const struct sy_commit *c, struct sy_migration_state *seen,
		    void (*fn)(void *ctx, uint32_t id, const struct sy_migration_state *cur), void *ctx)
{
	for (uint32_t id = 1; id < SY_MAX_MIGRATIONS; id++)
		fn(ctx, id, sy_commit_slot(c, id, &seen[id]) ? &seen[id] : NULL);
}

void sy_mstate_free(struct sy_migration_state *m)
{
	sy_migration_spec_free(&m->spec);
	free(m->pin_cgroup_ids);
	m->pin_cgroup_ids = NULL;
	free(m->pin_by);
	m->pin_by = NULL;
	if (m->file_spec) {
		sy_migration_spec_free(m->file_spec);
		free(m->file_spec);
		m->file_spec = NULL;
	}
}

int sy_mstate_copy(struct sy_migration_state *dst, const struct sy_migration_state *src)
{
	*dst = *src;
	dst->spec.pins = NULL;
	dst->spec.n_pins = 0;
	dst->pin_cgroup_ids = NULL;
	dst->pin_by = NULL;
	dst->file_spec = NULL;
	if (sy_migration_spec_copy(&dst->spec, &src->spec))
		return -ENOMEM;
	if (src->spec.n_pins) {
		dst->pin_cgroup_ids = calloc(src->spec.n_pins, sizeof(uint64_t));
		dst->pin_by = calloc(src->spec.n_pins, sizeof(*dst->pin_by));
		if (!dst->pin_cgroup_ids || !dst->pin_by)
			goto oom;
		memcpy(dst->pin_cgroup_ids, src->pin_cgroup_ids, src->spec.n_pins * sizeof(uint64_t));
		if (src->pin_by)
			memcpy(dst->pin_by, src->pin_by, src->spec.n_pins * sizeof(*dst->pin_by));
	}
	if (src->file_spec) {
		dst->file_spec = calloc(1, sizeof(*dst->file_spec));
		if (!dst->file_spec || sy_migration_spec_copy(dst->file_spec, src->file_spec)) {
			free(dst->file_spec);
			dst->file_spec = NULL;
			goto oom;
		}
	}
	return 0;
oom:
	sy_mstate_free(dst);
	return -ENOMEM;
}

void sy_mset_free(struct sy_migration_state *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sy_mstate_free(&s[i]);
	free(s);
}
