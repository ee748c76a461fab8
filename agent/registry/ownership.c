// SPDX-License-Identifier: Apache-2.0
/* ownership.c — see ownership.h. Pins are matched by cgroup; a pin "changed in the
 * file" is one whose side (or presence) differs between the file's two versions. */
#include "registry/ownership.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Side of cgroup's pin in s, or -1. */
static int side_in(const struct sy_migration_spec *s, const char *cgroup)
{
	for (size_t i = 0; s && i < s->n_pins; i++)
		if (strcmp(s->pins[i].cgroup, cgroup) == 0)
			return s->pins[i].side;
	return -1;
}

/* Makes pins hold cgroup on side (-1: without it). */
static int pins_set(struct sy_pin_spec **pins, size_t *n, const struct sy_pin_spec *p, int side)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*pins)[i].cgroup, p->cgroup) != 0)
			continue;
		if (side < 0) {
			memmove(&(*pins)[i], &(*pins)[i + 1], (*n - i - 1) * sizeof(**pins));
			(*n)--;
		} else {
			(*pins)[i].side = (uint8_t)side;
		}
		return 0;
	}
	if (side >= 0) {
		struct sy_pin_spec *np = realloc(*pins, (*n + 1) * sizeof(*np));

		if (!np)
			return -ENOMEM;
		np[*n] = *p;
		np[*n].side = (uint8_t)side;
		*pins = np;
		(*n)++;
	}
	return 0;
}

int sy_file_rule(struct sy_migration_spec *out, const struct sy_migration_spec *cur,
		 const struct sy_migration_spec *f, const struct sy_migration_spec *last)
{
	struct sy_pin_spec *pins = NULL;
	size_t n = 0;
	int e = 0;

	if (!cur)
		return 0;
	out->ratio_bp = last && f->ratio_bp != last->ratio_bp ? f->ratio_bp : cur->ratio_bp;
	/* A scope the file does not declare, and did not declare before either, is not the
	 * file's to drop: the running one stays (a format-1 state's prefixes kept as scope,
	 * or one set through the API). Dropping it would widen what is migrated unasked. */
	if (f->n_scope == 0 && (!last || last->n_scope == 0) && cur->n_scope) {
		memcpy(out->scope, cur->scope, sizeof(out->scope));
		out->n_scope = cur->n_scope;
	}
	/* the running pins, then what the file changed */
	if (cur->n_pins) {
		if (!(pins = malloc(cur->n_pins * sizeof(*pins))))
			return -ENOMEM;
		memcpy(pins, cur->pins, cur->n_pins * sizeof(*pins));
		n = cur->n_pins;
	}
	for (size_t i = 0; last && i < f->n_pins && !e; i++) {
		int side = f->pins[i].side;

		if (side_in(last, f->pins[i].cgroup) != side)
			e = pins_set(&pins, &n, &f->pins[i], side);
	}
	for (size_t i = 0; last && i < last->n_pins && !e; i++)
		if (side_in(f, last->pins[i].cgroup) < 0)
			e = pins_set(&pins, &n, &last->pins[i], -1);
	if (e) {
		free(pins);
		return e;
	}
	free(out->pins);
	out->pins = pins;
	out->n_pins = n;
	return 0;
}

static void set_by(struct sy_set_by *b, const struct sy_who *who)
{
	snprintf(b->origin, sizeof(b->origin), "%s", who->origin);
	snprintf(b->reason, sizeof(b->reason), "%s", who->reason);
}

int sy_ownership_stamp(struct sy_migration_state *cand, size_t n, const struct sy_migration_state *before,
		       size_t n_before, const struct sy_who *who)
{
	for (size_t i = 0; i < n; i++) {
		struct sy_migration_state *m = &cand[i];
		const struct sy_migration_state *o = sy_mset_find(before, n_before, m->spec.name);
		struct sy_set_by *by = calloc(m->spec.n_pins ? m->spec.n_pins : 1, sizeof(*by));

		if (!by)
			return -ENOMEM;
		if (o && o->spec.ratio_bp == m->spec.ratio_bp && o->ratio_by.origin[0])
			m->ratio_by = o->ratio_by;
		else if (!o || o->spec.ratio_bp != m->spec.ratio_bp)
			set_by(&m->ratio_by, who);
		for (size_t j = 0; j < m->spec.n_pins; j++) {
			const struct sy_pin_spec *p = &m->spec.pins[j];
			size_t k = o ? o->spec.n_pins : 0;

			for (size_t x = 0; o && x < o->spec.n_pins; x++)
				if (strcmp(o->spec.pins[x].cgroup, p->cgroup) == 0)
					k = x;
			if (o && k < o->spec.n_pins && o->spec.pins[k].side == p->side && o->pin_by)
				by[j] = o->pin_by[k];
			else
				set_by(&by[j], who);
		}
		free(m->pin_by);
		m->pin_by = by;
	}
	return 0;
}
