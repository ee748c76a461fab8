// SPDX-License-Identifier: Apache-2.0
/* dirty.h — the repair engine's dirty-key set (repair.c): keys waiting to be copied,
 * deduplicated, in the order they were first marked, each due at a time.
 *
 * Contract: adding a key already in the set only pushes its due time later (never
 * earlier) and keeps its place; a new key goes last, unless the set holds `max` keys
 * (-ENOSPC). Keys leave from the front only, once due (sy_dirty_pop): the caller owns
 * the key taken out until it gives it back (sy_dirty_put), and may add keys meanwhile.
 *
 * Cost: a key lives in a 64-byte node from a pool (no malloc per key; a key longer
 * than SY_DKEY_INLINE bytes has its bytes allocated apart), found through an
 * open-addressing index of 8-byte slots that keep 32 bits of the key's (mixed) hash
 * inline, so a key not in the set costs one index line and no node. */
#ifndef SY_DIRTY_H
#define SY_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SY_DKEY_INLINE 32 /* key bytes kept in the node itself */

/* One key, in the set or taken out of it. */
struct sy_dkey {
	uint64_t hash;
	uint64_t due_ms;
	uint32_t next; /* the next key in order (or on the free list): pool index + 1, 0 = none */
	uint32_t self; /* its own pool index + 1 */
	uint32_t len;
	int32_t db;
	union {
		char in[SY_DKEY_INLINE]; /* len <= SY_DKEY_INLINE */
		char *out;
	} k;
};

_Static_assert(sizeof(struct sy_dkey) == 64, "a node is one cache line");

static inline const char *sy_dkey_key(const struct sy_dkey *e)
{
	return e->len <= SY_DKEY_INLINE ? e->k.in : e->k.out;
}

struct sy_dirty;

/* An empty set of at most max keys (at most 2^30); NULL out of memory. */
struct sy_dirty *sy_dirty_new(size_t max);
/* Frees the set and the keys in it (taken-out keys must have been given back). */
void sy_dirty_free(struct sy_dirty *s);
/* 0 added or already there (due pushed to at least `due_ms`), -ENOSPC full, -ENOMEM. */
int sy_dirty_add(struct sy_dirty *s, int db, const char *k, size_t len, uint64_t due_ms);
bool sy_dirty_has(const struct sy_dirty *s, int db, const char *k, size_t len);
/* The first key if it is due at now_ms (UINT64_MAX: the first key), left in the set. */
const struct sy_dkey *sy_dirty_peek(const struct sy_dirty *s, uint64_t now_ms);
/* Takes the first key out if it is due; give it back with sy_dirty_put. */
struct sy_dkey *sy_dirty_pop(struct sy_dirty *s, uint64_t now_ms);
void sy_dirty_put(struct sy_dirty *s, struct sy_dkey *e);
/* Keys in the set (0 for NULL). */
size_t sy_dirty_count(const struct sy_dirty *s);

#endif
