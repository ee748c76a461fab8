// SPDX-License-Identifier: Apache-2.0
/* dirty.c — see dirty.h. The index is linear probing at most half full, a slot's home
 * taken from its inline hash bits so that deleting (backward shift) never reads a node;
 * nodes come from 64 KiB chunks and go back to a free list, and never move, so a key
 * taken out stays valid while keys are added. */
#include "shadow/dirty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fnv.h"

#define CHUNK_BITS 10
#define CHUNK	   (1u << CHUNK_BITS) /* nodes per chunk */
#define MIN_SLOTS  1024u	      /* power of two */

struct slot {
	uint32_t tag; /* tag_of(hash); home slot = tag & mask */
	uint32_t idx; /* the node: pool index + 1, 0 = empty */
};

struct sy_dirty {
	struct slot *tab;
	uint32_t mask;
	uint32_t head, tail; /* the order keys were marked in: pool index + 1, 0 = none */
	uint32_t free;	     /* nodes given back */
	uint32_t made;	     /* nodes made */
	uint32_t nchunks, capchunks;
	struct sy_dkey **chunks;
	size_t n, max;
};

static struct sy_dkey *node(const struct sy_dirty *s, uint32_t idx)
{
	return &s->chunks[(idx - 1) >> CHUNK_BITS][(idx - 1) & (CHUNK - 1)];
}

static uint64_t key_hash(int db, const char *k, size_t len)
{
	return sy_fnv1a(k, len, SY_FNV_OFFSET ^ (uint64_t)db);
}

/* FNV-1a's middle bits hardly depend on a key's last bytes, so keys that differ there
 * (key:1, key:2…) would crowd into runs: mix all 64 bits first. */
static uint32_t tag_of(uint64_t h)
{
	return (uint32_t)sy_mix64(h);
}

/* The slot holding a key, or the empty slot where it would go. */
static uint32_t find(const struct sy_dirty *s, uint64_t h, int db, const char *k, size_t len)
{
	uint32_t tag = tag_of(h), i = tag & s->mask;

	for (;; i = (i + 1) & s->mask) {
		const struct slot *sl = &s->tab[i];
		const struct sy_dkey *e;

		if (!sl->idx)
			return i;
		if (sl->tag != tag)
			continue;
		e = node(s, sl->idx);
		if (e->hash == h && e->db == db && e->len == len && (!len || !memcmp(sy_dkey_key(e), k, len)))
			return i;
	}
}

/* Doubles the index: the keys are found again through the order list. */
static int grow(struct sy_dirty *s)
{
	uint32_t mask = s->mask * 2 + 1;
	struct slot *tab = calloc((size_t)mask + 1, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (uint32_t idx = s->head; idx; idx = node(s, idx)->next) {
		uint32_t tag = tag_of(node(s, idx)->hash), i = tag & mask;

		while (tab[i].idx)
			i = (i + 1) & mask;
		tab[i] = (struct slot){.tag = tag, .idx = idx};
	}
	free(s->tab);
	s->tab = tab;
	s->mask = mask;
	return 0;
}

/* Empties slot i, moving later slots of its run back so that every key stays
 * reachable from its home without tombstones. */
static void slot_del(struct sy_dirty *s, uint32_t i)
{
	for (uint32_t j = (i + 1) & s->mask; s->tab[j].idx; j = (j + 1) & s->mask) {
		uint32_t home = s->tab[j].tag & s->mask;

		/* j may fill the hole unless its home lies after the hole, up to j */
		if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
			s->tab[i] = s->tab[j];
			i = j;
		}
	}
	s->tab[i] = (struct slot){0};
}

static struct sy_dkey *node_get(struct sy_dirty *s)
{
	struct sy_dkey *e;

	if (s->free) {
		e = node(s, s->free);
		s->free = e->next;
		return e;
	}
	if (s->made == s->nchunks * CHUNK) {
		if (s->nchunks == s->capchunks) {
			uint32_t cap = s->capchunks ? s->capchunks * 2 : 8;
			struct sy_dkey **c = realloc(s->chunks, cap * sizeof(*c));

			if (!c)
				return NULL;
			s->chunks = c;
			s->capchunks = cap;
		}
		if (!(s->chunks[s->nchunks] = aligned_alloc(64, CHUNK * sizeof(struct sy_dkey))))
			return NULL;
		s->nchunks++;
	}
	e = node(s, ++s->made);
	e->self = s->made;
	return e;
}

void sy_dirty_put(struct sy_dirty *s, struct sy_dkey *e)
{
	if (e->len > SY_DKEY_INLINE)
		free(e->k.out);
	e->next = s->free;
	s->free = e->self;
}

struct sy_dirty *sy_dirty_new(size_t max)
{
	struct sy_dirty *s = calloc(1, sizeof(*s));

	if (s && !(s->tab = calloc(MIN_SLOTS, sizeof(*s->tab)))) {
		free(s);
		return NULL;
	}
	if (s) {
		s->mask = MIN_SLOTS - 1;
		s->max = max;
	}
	return s;
}

void sy_dirty_free(struct sy_dirty *s)
{
	if (!s)
		return;
	for (uint32_t idx = s->head; idx; idx = node(s, idx)->next)
		if (node(s, idx)->len > SY_DKEY_INLINE)
			free(node(s, idx)->k.out);
	for (uint32_t i = 0; i < s->nchunks; i++)
		free(s->chunks[i]);
	free(s->chunks);
	free(s->tab);
	free(s);
}

int sy_dirty_add(struct sy_dirty *s, int db, const char *k, size_t len, uint64_t due_ms)
{
	uint64_t h = key_hash(db, k, len);
	uint32_t i = find(s, h, db, k, len);
	struct sy_dkey *e;

	if (s->tab[i].idx) {
		e = node(s, s->tab[i].idx);
		if (e->due_ms < due_ms)
			e->due_ms = due_ms;
		return 0;
	}
	if (s->n >= s->max)
		return -ENOSPC;
	if (len > UINT32_MAX)
		return -EINVAL;
	if ((s->n + 1) * 2 > (size_t)s->mask + 1) {
		if (grow(s))
			return -ENOMEM;
		i = find(s, h, db, k, len);
	}
	if (!(e = node_get(s)))
		return -ENOMEM;
	e->len = (uint32_t)len;
	if (len > SY_DKEY_INLINE && !(e->k.out = malloc(len))) {
		e->len = 0;
		sy_dirty_put(s, e);
		return -ENOMEM;
	}
	if (len)
		memcpy(len > SY_DKEY_INLINE ? e->k.out : e->k.in, k, len);
	e->hash = h;
	e->due_ms = due_ms;
	e->db = db;
	e->next = 0;
	s->tab[i] = (struct slot){.tag = tag_of(h), .idx = e->self};
	if (s->tail)
		node(s, s->tail)->next = e->self;
	else
		s->head = e->self;
	s->tail = e->self;
	s->n++;
	return 0;
}

bool sy_dirty_has(const struct sy_dirty *s, int db, const char *k, size_t len)
{
	return s && s->tab[find(s, key_hash(db, k, len), db, k, len)].idx;
}

const struct sy_dkey *sy_dirty_peek(const struct sy_dirty *s, uint64_t now_ms)
{
	const struct sy_dkey *e = s && s->head ? node(s, s->head) : NULL;

	return e && e->due_ms <= now_ms ? e : NULL;
}

struct sy_dkey *sy_dirty_pop(struct sy_dirty *s, uint64_t now_ms)
{
	struct sy_dkey *e = (struct sy_dkey *)sy_dirty_peek(s, now_ms);
	uint32_t i;

	if (!e)
		return NULL;
	s->head = e->next;
	if (!s->head)
		s->tail = 0;
	for (i = tag_of(e->hash) & s->mask; s->tab[i].idx != e->self; i = (i + 1) & s->mask)
		;
	slot_del(s, i);
	s->n--;
	return e;
}

size_t sy_dirty_count(const struct sy_dirty *s)
{
	return s ? s->n : 0;
}
