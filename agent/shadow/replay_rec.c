// SPDX-License-Identifier: Apache-2.0
/* replay_rec.c — see replay_rec.h. */
#include "shadow/replay_rec.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define KEEP_FREE 4096 /* records kept for reuse: a burst's worth, not the whole queue */

struct sy_pending *sy_pending_new(struct sy_pending_pool *pool, struct dir *d, uint64_t ts, int db)
{
	struct sy_pending *p = pool->free;

	if (p) {
		pool->free = p->next_free;
		pool->n_free--;
	} else if (!(p = malloc(sizeof(*p)))) {
		return NULL;
	}
	memset(p, 0, offsetof(struct sy_pending, klen_s));
	p->d = d;
	p->ts_ns = ts;
	p->db = db;
	p->klen = p->klen_s;
	p->kdata = p->kdata_s;
	return p;
}

void sy_pending_free(struct sy_pending_pool *pool, struct sy_pending *p)
{
	if (p->klen != p->klen_s)
		free(p->klen);
	if (p->kdata != p->kdata_s)
		free(p->kdata);
	if (pool->n_free >= KEEP_FREE) {
		free(p);
		return;
	}
	p->next_free = pool->free;
	pool->free = p;
	pool->n_free++;
}

/* Room for `n` more keys of `add` bytes, off the inline buffers once they are full. */
static int room(struct sy_pending *p, int n, size_t add)
{
	size_t nk = (size_t)(p->nkeys + n), nb = p->kbytes + add + 1;

	if (nk > SY_PENDING_KEYS) {
		size_t *l = realloc(p->klen == p->klen_s ? NULL : p->klen, nk * sizeof(*l));

		if (!l)
			return -ENOMEM;
		if (p->klen == p->klen_s)
			memcpy(l, p->klen_s, (size_t)p->nkeys * sizeof(*l));
		p->klen = l;
	}
	if (nb > SY_PENDING_KBYTES) {
		char *k = realloc(p->kdata == p->kdata_s ? NULL : p->kdata, nb);

		if (!k)
			return -ENOMEM;
		if (p->kdata == p->kdata_s)
			memcpy(k, p->kdata_s, p->kbytes);
		p->kdata = k;
	}
	return 0;
}

int sy_pending_keys(struct sy_pending *p, int argc, const char *const *argv, const size_t *lens,
		    const int *idx, int n)
{
	size_t add = 0;

	for (int i = 0; i < n; i++)
		if (idx[i] < argc)
			add += lens[idx[i]];
	if (room(p, n, add))
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		if (idx[i] >= argc)
			continue;
		memcpy(p->kdata + p->kbytes, argv[idx[i]], lens[idx[i]]);
		p->kbytes += lens[idx[i]];
		p->klen[p->nkeys++] = lens[idx[i]];
	}
	return 0;
}

/* Decimal digits of v, no terminator; their count (snprintf was 2 % of the agent's time
 * at -P 4). */
static size_t put_uint(char *b, uint64_t v)
{
	char t[24];
	size_t n = 0, k = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		b[k++] = t[--n];
	return k;
}

size_t sy_replay_raw(struct sy_pending_pool *pool, uint32_t argc, const char *name, size_t nl,
		     const uint8_t *body, size_t len)
{
	size_t need = len + nl + 64, h = 0;
	char *b;

	if (need > pool->raw_cap) {
		if (!(b = realloc(pool->raw, need)))
			return 0;
		pool->raw = b;
		pool->raw_cap = need;
	}
	b = pool->raw;
	b[h++] = '*';
	h += put_uint(b + h, argc);
	memcpy(b + h, "\r\n$", 3);
	h += 3;
	h += put_uint(b + h, nl);
	memcpy(b + h, "\r\n", 2);
	h += 2;
	memcpy(b + h, name, nl);
	h += nl;
	memcpy(b + h, "\r\n", 2);
	h += 2;
	memcpy(b + h, body, len);
	return h + len;
}

void sy_pending_pool_free(struct sy_pending_pool *pool)
{
	while (pool->free) {
		struct sy_pending *p = pool->free;

		pool->free = p->next_free;
		free(p);
	}
	free(pool->raw);
	pool->raw = NULL;
	pool->raw_cap = 0;
	pool->n_free = 0;
}
