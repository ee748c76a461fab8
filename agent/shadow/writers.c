// SPDX-License-Identifier: Apache-2.0
/* writers.c — see writers.h. One set of WAYS entries is one 64-byte cache line, so a
 * lookup costs one miss: the table is 1 MiB where a set used to span three lines. */
#include "shadow/writers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fnv.h"
#include "core/loop.h"
#include "model/keymap.h"
#include "model/spec.h"

#define SLOTS 65536 /* power of two */
#define WAYS  4	    /* entries per set (power of two) */

/* Times are kept as 32-bit ms after t->base_ms. Before they could wrap (49.7 days) the
 * base moves up, keeping the last REBASE_KEEP ms exact; older times become 1 ("long
 * ago"), which every window here (seconds) treats as the exact time would. */
#define REBASE_AT   0xf0000000u
#define REBASE_KEEP 0x80000000u

struct sy_writer {
	uint32_t tag; /* the fingerprint's low 32 bits (bit 0 set), 0 = empty */
	uint32_t who; /* the last writer: who_of(side, cookie) */
	uint32_t ms;  /* its write, ms after base, 0 = none */
	uint32_t hot; /* a conflict was seen: every write until then re-arms the copy */
};

_Static_assert(sizeof(struct sy_writer) * WAYS == 64, "a set is one cache line");

void sy_writers_free(struct sy_writers *w)
{
	free(w->tab);
	w->tab = NULL;
}

static uint64_t fingerprint(int db, const char *k, size_t len)
{
	return sy_fnv1a(k, len, SY_FNV_OFFSET ^ (uint64_t)db) | 1;
}

/* The writer's identity in 32 bits: splitmix64's finalizer of the cookie (a bijection,
 * so two cookies differ in all 64 bits of it), its high half, and the side in bit 0 by
 * xor. One connection's two sides never collide; two connections collide with
 * probability 2^-32, which is the only way a conflict can be missed (see writers.h). */
static uint32_t who_of(int side, uint64_t cookie)
{
	return (uint32_t)(sy_mix64(cookie) >> 32) ^ (uint32_t)(side != 0);
}

static uint32_t age(const struct sy_writer *w)
{
	return w->ms > w->hot ? w->ms : w->hot;
}

/* Moves the base up to now - REBASE_KEEP: an entry's times keep their order (older
 * ones all become 1, or 0 for an expired hot window). */
static void rebase(struct sy_writers *t, uint64_t now)
{
	uint64_t base = now - REBASE_KEEP, shift = base - t->base_ms; /* may pass 2^32 after a long rest */

	for (size_t i = 0; i < SLOTS; i++) {
		struct sy_writer *w = &t->tab[i];

		w->ms = w->ms > shift ? (uint32_t)(w->ms - shift) : w->ms ? 1 : 0;
		w->hot = w->hot > shift ? (uint32_t)(w->hot - shift) : 0;
	}
	t->base_ms = base;
}

/* `now` after the base (never 0), the table made on first use; 0 out of memory. */
static uint32_t rel_now(struct sy_writers *t, uint64_t now)
{
	if (!t->tab) {
		t->tab = aligned_alloc(64, SLOTS * sizeof(*t->tab));
		if (!t->tab)
			return 0;
		memset(t->tab, 0, SLOTS * sizeof(*t->tab));
		t->base_ms = now - 1;
	}
	if (now - t->base_ms >= REBASE_AT)
		rebase(t, now);
	return (uint32_t)(now - t->base_ms);
}

/* The set a fingerprint picks. */
static struct sy_writer *set_of(const struct sy_writers *t, uint64_t fp)
{
	/* the whole fingerprint, mixed: FNV-1a's upper bits hardly depend on a key's last
	 * bytes, so its bits 42-55 crowded key:1, key:2… into a few sets (a variance of 24
	 * keys per set where an even spread gives 6), whose histories were pushed out early */
	return &t->tab[((fp * 0x9e3779b97f4a7c15ull) >> 48) & (SLOTS - WAYS)];
}

/* The entry of a key (legacy-side name). create: take the set's oldest entry over if
 * the key has none; else NULL. */
static struct sy_writer *entry(const struct sy_writers *t, uint64_t fp, bool create)
{
	struct sy_writer *w, *old;
	uint32_t tag = (uint32_t)fp;

	if (!t->tab)
		return NULL;
	/* 4-way sets: a key's entry is only reused for another key once it is the oldest
	 * of its set, so keys written now never lose their history to a hash collision
	 * (a lost entry would hide a conflict, or call a settling key drift). The set
	 * index is set_of's, the tag bits 0-31 (bit 0 always set) */
	w = set_of(t, fp);
	for (int i = 0; i < WAYS; i++)
		if (w[i].tag == tag)
			return &w[i];
	if (!create)
		return NULL;
	old = w;
	for (int i = 1; i < WAYS; i++)
		if (age(&w[i]) < age(old))
			old = &w[i];
	memset(old, 0, sizeof(*old));
	old->tag = tag;
	return old;
}

/* The fingerprint of a key named as `side` names it (keys compare by legacy-side name). */
static uint64_t fingerprint_of(const struct sy_migration_spec *spec, int side, int db, const char *k,
			       size_t len)
{
	char buf[1024];
	const char *lk = k;
	size_t ll = len;

	if (side == SY_SIDE_TARGET)
		ll = sy_key_map(spec, SY_SIDE_TARGET, k, len, buf, sizeof(buf), &lk);
	return fingerprint(db, lk, ll);
}

static struct sy_writer *entry_of(struct sy_writers *t, const struct sy_migration_spec *spec, int side,
				  int db, const char *k, size_t len)
{
	return entry(t, fingerprint_of(spec, side, db, k, len), true);
}

uint64_t sy_writers_touch(const struct sy_writers *t, const struct sy_migration_spec *spec, int side, int db,
			  const char *k, size_t len)
{
	uint64_t fp = fingerprint_of(spec, side, db, k, len);

	if (t->tab)
		__builtin_prefetch(set_of(t, fp), 1);
	return fp;
}

bool sy_writers_conflict_fp(struct sy_writers *t, int side, uint64_t cookie, uint64_t fp, uint64_t now_ms)
{
	uint32_t now = rel_now(t, now_ms), who = who_of(side, cookie);
	struct sy_writer *w = now ? entry(t, fp, true) : NULL;
	bool hit;

	if (!w)
		return false;
	hit = (w->ms && w->who != who && now - w->ms <= SY_CONFLICT_MS) || now < w->hot;
	if (hit)
		w->hot = now + 2 * SY_CONFLICT_MS;
	w->who = who;
	w->ms = now;
	return hit;
}

bool sy_writers_conflict_at(struct sy_writers *t, const struct sy_migration_spec *spec, int side,
			    uint64_t cookie, int db, const char *k, size_t len, uint64_t now_ms)
{
	return sy_writers_conflict_fp(t, side, cookie, fingerprint_of(spec, side, db, k, len), now_ms);
}

int sy_writers_mark_hot_at(struct sy_writers *t, const struct sy_migration_spec *spec, int side, int db,
			   const char *k, size_t len, uint64_t now_ms)
{
	uint32_t now = rel_now(t, now_ms);
	struct sy_writer *w = now ? entry_of(t, spec, side, db, k, len) : NULL;
	int recent;

	if (!w)
		return -ENOMEM;
	recent = w->ms && now - w->ms <= 2 * SY_CONFLICT_MS;
	w->hot = now + 2 * SY_CONFLICT_MS;
	return recent;
}

int sy_writers_mark_hot(struct sy_writers *t, const struct sy_migration_spec *spec, int side, int db,
			const char *k, size_t len)
{
	return sy_writers_mark_hot_at(t, spec, side, db, k, len, sy_coarse_ms());
}

uint64_t sy_writers_last_ms(const struct sy_writers *t, int db, const char *k, size_t len)
{
	const struct sy_writer *w = entry(t, fingerprint(db, k, len), false);

	return w && w->ms ? t->base_ms + w->ms : 0;
}
