// SPDX-License-Identifier: Apache-2.0
/* writers.c — see writers.h. */
#include "shadow/writers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fnv.h"
#include "core/loop.h"
#include "model/spec.h"
#include "model/keymap.h"

#define SLOTS 65536 /* power of two */
#define WAYS  4	    /* entries per set (power of two) */

struct sy_writer {
	uint64_t fp; /* key fingerprint, 0 = empty */
	uint64_t cookie;
	uint64_t ms;
	uint64_t hot_until_ms; /* a conflict was seen: every write until then re-arms the copy */
	uint8_t side;
};

void sy_writers_free(struct sy_writers *w)
{
	free(w->tab);
	w->tab = NULL;
}

static uint64_t fingerprint(int db, const char *k, size_t len)
{
	return sy_fnv1a(k, len, SY_FNV_OFFSET ^ (uint64_t)db) | 1;
}

/* The entry of a key (legacy-side name). create: take the set's oldest entry over if
 * the key has none; else NULL. */
static struct sy_writer *entry(struct sy_writers *t, uint64_t fp, bool create)
{
	struct sy_writer *w, *old;

	if (!t->tab && (!create || !(t->tab = calloc(SLOTS, sizeof(*t->tab)))))
		return NULL;
	/* 4-way sets: a key's entry is only reused for another key once it is the oldest
	 * of its set, so keys written now never lose their history to a hash collision
	 * (a lost entry would hide a conflict, or call a settling key drift) */
	w = &t->tab[(fp >> 40) & (SLOTS - WAYS)];
	for (int i = 0; i < WAYS; i++)
		if (w[i].fp == fp)
			return &w[i];
	if (!create)
		return NULL;
	old = w;
	for (int i = 1; i < WAYS; i++) {
		uint64_t a = w[i].ms > w[i].hot_until_ms ? w[i].ms : w[i].hot_until_ms;
		uint64_t b = old->ms > old->hot_until_ms ? old->ms : old->hot_until_ms;

		if (a < b)
			old = &w[i];
	}
	memset(old, 0, sizeof(*old));
	old->fp = fp;
	return old;
}

/* The entry of a key named as `side` names it (compared by its legacy-side name). */
static struct sy_writer *entry_of(struct sy_writers *t, const struct sy_migration_spec *spec, int side,
				  int db, const char *k, size_t len, bool create)
{
	char buf[1024];
	const char *lk = k;
	size_t ll = len;

	if (side == SY_SIDE_TARGET)
		ll = sy_key_map(spec, SY_SIDE_TARGET, k, len, buf, sizeof(buf), &lk);
	return entry(t, fingerprint(db, lk, ll), create);
}

bool sy_writers_conflict(struct sy_writers *t, const struct sy_migration_spec *spec, int side,
			 uint64_t cookie, int db, const char *k, size_t len)
{
	struct sy_writer *w = entry_of(t, spec, side, db, k, len, true);
	uint64_t now = sy_now_ms();
	bool hit;

	if (!w)
		return false;
	hit = (w->ms && (w->side != side || w->cookie != cookie) && now - w->ms <= SY_CONFLICT_MS) ||
	      now < w->hot_until_ms;
	if (hit)
		w->hot_until_ms = now + 2 * SY_CONFLICT_MS;
	w->cookie = cookie;
	w->ms = now;
	w->side = (uint8_t)side;
	return hit;
}

int sy_writers_mark_hot(struct sy_writers *t, const struct sy_migration_spec *spec, int side, int db,
			const char *k, size_t len)
{
	struct sy_writer *w = entry_of(t, spec, side, db, k, len, true);
	int recent;

	if (!w)
		return -ENOMEM;
	recent = w->ms && sy_now_ms() - w->ms <= 2 * SY_CONFLICT_MS;
	w->hot_until_ms = sy_now_ms() + 2 * SY_CONFLICT_MS;
	return recent;
}

uint64_t sy_writers_last_ms(const struct sy_writers *t, int db, const char *k, size_t len)
{
	const struct sy_writer *w = entry((struct sy_writers *)t, fingerprint(db, k, len), false);

	return w ? w->ms : 0;
}
