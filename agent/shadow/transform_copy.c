// SPDX-License-Identifier: Apache-2.0
/* transform_copy.c — see transform_copy.h and docs/transforms.md: each migration's
 * loaded script, its counters, typed keys from and to Redis. */
#include "shadow/transform_copy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fnv.h"
#include "core/log.h"
#include "core/loop.h"
#include "model/spec.h"
#include "shadow/compare.h"
#include "shadow/mirror.h"
#include "shadow/repair.h"

#define BURST_MS 10000 /* one log line per migration per burst of failures */

struct sy_xf {
	char name[SY_NAME_MAX];
	char path[PATH_MAX];
	struct sy_transform *t; /* NULL: the script does not compile (every call fails) */
	struct sy_xf_stats st;
	uint64_t burst_ms, quiet; /* failures not logged since the last line */
};

/* One handle per migration name, for the agent's life (a few, at most
 * SY_MAX_MIGRATIONS): the mirror, the repair and the audit share it. */
static struct sy_xf *xfs[SY_MAX_MIGRATIONS];

static int load(struct sy_xf *x, struct sy_transform **out)
{
	char err[SY_TRANSFORM_ERR_MAX + PATH_MAX];
	int e = sy_transform_load(x->path, x->name, NULL, out, err, sizeof(err));

	if (e)
		sy_error("transform", "%s: %s", x->name, err);
	return e;
}

struct sy_xf *sy_xf_of(const struct sy_migration_spec *spec)
{
	struct sy_xf *x = NULL, **free_slot = NULL;

	if (!spec->transform.script[0])
		return NULL;
	for (size_t i = 0; i < SY_MAX_MIGRATIONS; i++) {
		if (xfs[i] && strcmp(xfs[i]->name, spec->name) == 0) {
			x = xfs[i];
			break;
		}
		if (!xfs[i] && !free_slot)
			free_slot = &xfs[i];
	}
	if (x && strcmp(x->path, spec->transform.script) == 0)
		return x;
	if (!x) {
		if (!free_slot || !(x = calloc(1, sizeof(*x))))
			return NULL;
		snprintf(x->name, sizeof(x->name), "%s", spec->name);
		*free_slot = x;
	}
	snprintf(x->path, sizeof(x->path), "%s", spec->transform.script);
	sy_transform_free(x->t);
	x->t = NULL;
	if (load(x, &x->t) == 0)
		sy_info("transform", "%s: %s loaded", x->name, x->path);
	return x;
}

void sy_xf_reload_all(void)
{
	for (size_t i = 0; i < SY_MAX_MIGRATIONS; i++) {
		struct sy_xf *x = xfs[i];
		struct sy_transform *t = NULL;

		if (!x || load(x, &t))
			continue; /* the old version goes on */
		sy_transform_free(x->t);
		x->t = t;
		x->st.reloads++;
		sy_info("transform", "%s: %s reloaded", x->name, x->path);
	}
}

void sy_xf_free_all(void)
{
	for (size_t i = 0; i < SY_MAX_MIGRATIONS; i++) {
		if (xfs[i])
			sy_transform_free(xfs[i]->t);
		free(xfs[i]);
		xfs[i] = NULL;
	}
}

bool sy_xf_stats(const char *name, struct sy_xf_stats *out)
{
	for (size_t i = 0; i < SY_MAX_MIGRATIONS; i++)
		if (xfs[i] && strcmp(xfs[i]->name, name) == 0) {
			*out = xfs[i]->st;
			return true;
		}
	memset(out, 0, sizeof(*out));
	return false;
}

/* Counts a failed call; one log line per burst, with the key (or command) and line. */
static int failed(struct sy_xf *x, int e, const char *fn, const char *what, size_t wl, const char *err)
{
	uint64_t now = sy_now_ms();

	x->st.failed++;
	if (e == -ETIME)
		x->st.budget++;
	else if (e == -ENOMEM)
		x->st.memory++;
	else
		x->st.errors++;
	snprintf(x->st.last_error, sizeof(x->st.last_error), "%s(%.*s): %s", fn, (int)(wl > 80 ? 80 : wl),
		 what, err);
	if (now - x->burst_ms >= BURST_MS || !x->burst_ms) {
		sy_warn("transform", "%s: %s%s", x->name, x->st.last_error, x->quiet ? "" : "");
		if (x->quiet)
			sy_warn("transform", "%s: and %llu more failures in the last burst", x->name,
				(unsigned long long)x->quiet);
		x->burst_ms = now;
		x->quiet = 0;
	} else {
		x->quiet++;
	}
	return e;
}

int sy_xf_key(struct sy_xf *x, bool reverse, const struct sy_tkey *in, struct sy_tkeys *out)
{
	char err[SY_TRANSFORM_ERR_MAX];
	const char *fn = reverse ? "reverse_key" : "forward_key";
	int e;

	memset(out, 0, sizeof(*out));
	x->st.calls++;
	if (!x->t)
		return failed(x, -EINVAL, fn, in->key, in->klen, "the script did not compile");
	e = sy_transform_key(x->t, reverse, in, out, err, sizeof(err));
	return e ? failed(x, e, fn, in->key, in->klen, err) : 0;
}

int sy_xf_write(struct sy_xf *x, bool reverse, int argc, const char *const *argv, const size_t *lens,
		struct sy_targvs *out)
{
	char err[SY_TRANSFORM_ERR_MAX];
	int e;

	memset(out, 0, sizeof(*out));
	if (!x->t || !sy_transform_has(x->t, reverse ? SY_TF_REVERSE_WRITE : SY_TF_FORWARD_WRITE))
		return 1;
	x->st.calls++;
	e = sy_transform_write(x->t, reverse, argc, argv, lens, out, err, sizeof(err));
	if (e == -ENOSYS)
		return 1;
	return e < 0 ? failed(x, e, reverse ? "reverse_write" : "forward_write", argc > 1 ? argv[1] : argv[0],
			      argc > 1 ? lens[1] : lens[0], err)
		     : e;
}

bool sy_xf_has(const struct sy_xf *x, enum sy_tfn fn)
{
	return x && x->t && sy_transform_has(x->t, fn);
}

void sy_xf_fell_back(struct sy_xf *x)
{
	x->st.fallback++;
}

/* ---- typed keys from and to Redis --------------------------------------------------------- */

bool sy_tkey_of_reply(redisReply *r, struct sy_tkey *k, const char *key, size_t len, void **arena)
{
	redisReply *v;
	int t;

	memset(k, 0, sizeof(*k));
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    (r->element[0]->type != REDIS_REPLY_STATUS && r->element[0]->type != REDIS_REPLY_STRING) ||
	    r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_ARRAY)
		return false;
	t = sy_ktype_parse(r->element[0]->str, r->element[0]->len);
	if (t < 0)
		return false;
	k->key = key;
	k->klen = len;
	k->type = (uint8_t)t;
	k->ttl_ms = r->element[1]->integer >= 0 ? r->element[1]->integer : -1;
	v = r->element[2];
	if (v->elements) {
		k->items = sy_arena_alloc(arena, v->elements * sizeof(*k->items));
		if (!k->items)
			return false;
	}
	for (size_t i = 0; i < v->elements; i++) {
		if (v->element[i]->type != REDIS_REPLY_STRING)
			return false;
		k->items[i].p = v->element[i]->str;
		k->items[i].n = v->element[i]->len;
	}
	k->n = v->elements;
	return true;
}

static int by_val(const void *a, const void *b)
{
	const struct sy_tval *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->p, y->p, n);

	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Pairs sorted by their first element (fields and members are unique). */
static int by_pair(const void *a, const void *b)
{
	return by_val(a, b);
}

static uint64_t digest_of(const struct sy_tval *it, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t len = it[i].n;

		h = sy_fnv1a(&len, sizeof(len), h);
		if (len)
			h = sy_fnv1a(it[i].p, len, h);
	}
	return h;
}

uint64_t sy_tkey_digest(const struct sy_tkey *k)
{
	uint64_t h = SY_FNV_OFFSET ^ k->type;
	struct sy_tval *c;
	size_t n = k->n;

	if (k->type == SY_KT_STRING || k->type == SY_KT_LIST || k->type == SY_KT_STREAM || n == 0)
		return digest_of(k->items, n, h);
	c = malloc(n * sizeof(*c));
	if (!c)
		return 0;
	memcpy(c, k->items, n * sizeof(*c));
	if (k->type == SY_KT_SET) {
		qsort(c, n, sizeof(*c), by_val);
		h = digest_of(c, n, h);
	} else {
		/* hash, zset: (field|member, value|score) pairs; a score as a number */
		qsort(c, n / 2, 2 * sizeof(*c), by_pair);
		for (size_t i = 0; i + 1 < n; i += 2) {
			h = digest_of(&c[i], 1, h);
			if (k->type == SY_KT_ZSET) {
				char num[64];
				double d;

				snprintf(num, sizeof(num), "%.*s", (int)(c[i + 1].n < 63 ? c[i + 1].n : 63),
					 c[i + 1].p);
				d = strtod(num, NULL);
				h = sy_fnv1a(&d, sizeof(d), h);
			} else {
				h = digest_of(&c[i + 1], 1, h);
			}
		}
	}
	free(c);
	return h;
}

/* Commands are sent through one vector of arguments, grown as needed. */
struct vec {
	const char **argv;
	size_t *lens;
	size_t n, cap;
};

static int vec_push(struct vec *v, const char *p, size_t n)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 16;
		const char **a = realloc(v->argv, nc * sizeof(*a));
		size_t *l;

		if (!a)
			return -ENOMEM;
		v->argv = a;
		l = realloc(v->lens, nc * sizeof(*l));
		if (!l)
			return -ENOMEM;
		v->lens = l;
		v->cap = nc;
	}
	v->argv[v->n] = p;
	v->lens[v->n++] = n;
	return 0;
}

static int send_vec(struct sy_redis *c, struct vec *v, sy_redis_reply_cb cb, void *priv, uint32_t *parts)
{
	int e = sy_redis_sendv(c, (int)v->n, v->argv, v->lens, cb, priv);

	v->n = 0;
	if (!e)
		(*parts)++;
	return e;
}

static const char *const WRITE_CMD[SY_KT_TYPES] = {NULL, "SET", "HSET", "RPUSH", "SADD", "ZADD", NULL};

/* Sends one key's commands to c, their replies unwanted (they are read from EXEC's):
 * DEL, and unless its type is none the typed write with its TTL (PX, or PEXPIRE). *cmds
 * counts the commands sent. */
static int key_send(struct sy_redis *c, struct vec *v, const struct sy_tkey *k, uint32_t *cmds)
{
	const char *cmd = WRITE_CMD[k->type];
	char ttl[24];
	size_t tl = k->ttl_ms > 0 ? (size_t)snprintf(ttl, sizeof(ttl), "%lld", k->ttl_ms) : 0;
	int e;

	if ((e = vec_push(v, "DEL", 3)) || (e = vec_push(v, k->key, k->klen)) ||
	    (e = send_vec(c, v, NULL, NULL, cmds)))
		return e;
	if (!cmd || k->n == 0)
		return 0;
	if ((e = vec_push(v, cmd, strlen(cmd))) || (e = vec_push(v, k->key, k->klen)))
		return e;
	for (size_t j = 0; j < k->n && !e; j++) {
		/* ZADD takes score then member: the pairs are member, score */
		size_t at = k->type == SY_KT_ZSET ? (j % 2 ? j - 1 : j + 1) : j;

		e = vec_push(v, k->items[at].p, k->items[at].n);
	}
	if (!e && k->type == SY_KT_STRING && tl)
		if (!(e = vec_push(v, "PX", 2)))
			e = vec_push(v, ttl, tl);
	if (e || (e = send_vec(c, v, NULL, NULL, cmds)))
		return e;
	if (tl && k->type != SY_KT_STRING &&
	    ((e = vec_push(v, "PEXPIRE", 7)) || (e = vec_push(v, k->key, k->klen)) ||
	     (e = vec_push(v, ttl, tl)) || (e = send_vec(c, v, NULL, NULL, cmds))))
		return e;
	return 0;
}

int sy_targvs_send(struct sy_redis *c, const struct sy_targvs *a, sy_redis_reply_cb cb, void *priv,
		   uint32_t *parts)
{
	const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
	size_t ml[1] = {5}, el[1] = {4};
	bool txn = a->n > 1;
	int e = 0;

	*parts = 0;
	if (txn && (e = sy_redis_sendv(c, 1, multi, ml, cb, priv)))
		return e;
	*parts += txn;
	for (size_t i = 0; i < a->n; i++) {
		if ((e = sy_redis_sendv(c, a->v[i].argc, a->v[i].argv, a->v[i].lens, cb, priv)))
			return e;
		(*parts)++;
	}
	if (txn && !(e = sy_redis_sendv(c, 1, exec, el, cb, priv)))
		(*parts)++;
	return e;
}

/* ---- the typed copies of repair (repair.h), by batches ------------------------------------- */

/* One destination connection's part of a batch: one MULTI … EXEC. */
struct dpart {
	struct tbatch *b;
	struct sy_redis *dst;
	uint32_t cmds; /* queued between MULTI and EXEC */
	bool broken;   /* a command could not be queued: no EXEC, its keys fail */
};

struct bkey {
	size_t off, len;       /* the key's bytes in tbatch.keys */
	struct dpart *part;    /* NULL: nothing to write, or done */
	uint32_t first, ncmds; /* its commands' answers in its part's EXEC reply */
};

struct tbatch {
	struct sy_repair *r;
	int db;
	uint64_t sent_us; /* when the look was sent */
	uint32_t n, left; /* keys, and those not done yet */
	uint32_t nparts;
	struct dpart part[SY_REPAIR_BATCH];
	struct bkey k[SY_REPAIR_BATCH];
	char keys[];
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void key_done(struct tbatch *b, uint32_t i, int outcome)
{
	b->k[i].part = NULL;
	sy_repair_typed_done(b->r, b->db, b->keys + b->k[i].off, b->k[i].len, outcome);
	if (--b->left == 0)
		free(b);
}

/* EXEC's answer: one reply per queued command; a key is copied when none of its own
 * failed. nil or an error (EXECABORT), or no answer: every key of the part again. */
static void on_exec(struct sy_redis *c, redisReply *rep, void *priv)
{
	struct dpart *p = priv;
	struct tbatch *b = p->b;
	bool all = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == p->cmds;

	(void)c;
	b->left++; /* held: the last key's end would free b */
	for (uint32_t i = 0; i < b->n; i++) {
		struct bkey *k = &b->k[i];
		int outcome = all ? 0 : -EAGAIN;

		if (k->part != p)
			continue;
		for (uint32_t j = 0; all && j < k->ncmds; j++)
			if (rep->element[k->first + j]->type == REDIS_REPLY_ERROR)
				outcome = -EAGAIN;
		key_done(b, i, outcome);
	}
	if (--b->left == 0)
		free(b);
}

/* The part of b that writes to dst, opened with MULTI on first use; NULL when it
 * cannot take commands. */
static struct dpart *part_of(struct tbatch *b, struct sy_redis *dst)
{
	const char *multi[1] = {"MULTI"};
	size_t ml[1] = {5};
	struct dpart *p;

	for (uint32_t i = 0; i < b->nparts; i++)
		if (b->part[i].dst == dst)
			return b->part[i].broken ? NULL : &b->part[i];
	p = &b->part[b->nparts];
	*p = (struct dpart){.b = b, .dst = dst};
	if (sy_redis_sendv(dst, 1, multi, ml, NULL, NULL))
		return NULL;
	b->nparts++;
	return p;
}

/* A key's look through the script into its part's transaction: 0 when queued, 1 when
 * there is nothing to write, or the outcome for sy_repair_typed_done. */
static int key_copy(struct tbatch *b, uint32_t i, redisReply *look, struct vec *v)
{
	struct sy_repair *r = b->r;
	struct bkey *bk = &b->k[i];
	const char *key = b->keys + bk->off, *dk;
	struct sy_tkey in;
	struct sy_tkeys out;
	void *arena = NULL;
	char buf[1024];
	size_t dl;
	struct sy_redis *dst;
	struct dpart *p;
	int e = 0;

	if (!sy_tkey_of_reply(look, &in, key, bk->len, &arena))
		e = -EAGAIN;
	else if (in.type == SY_KT_STREAM)
		e = -EINVAL; /* not transformed: a failed transform, as an error would be */
	if (e) {
		sy_arena_free(&arena);
		return e;
	}
	/* the TTL as of now, not as of the look: the write lands as much later. Measured
	 * from the look's send, so the look's own wait is taken off too (target's clock
	 * and legacy's need not agree); run out meanwhile, the key is gone */
	sy_tkey_age(&in, (now_us() - b->sent_us + 999) / 1000);
	e = sy_xf_key(r->xf, r->reverse, &in, &out);
	sy_arena_free(&arena);
	if (e)
		return e == -EAGAIN ? -EINVAL : e;
	if (out.n == 0)
		return 1;
	dst = r->ops->dest(r->owner, b->db, key, bk->len, buf, sizeof(buf), &dk, &dl);
	if (!dst || !(p = part_of(b, dst))) {
		sy_tkeys_free(&out);
		return -EAGAIN;
	}
	bk->first = p->cmds;
	for (size_t j = 0; j < out.n && !e; j++) {
		e = key_send(dst, v, &out.v[j], &p->cmds);
		if (out.v[j].type != SY_KT_NONE && out.v[j].n)
			r->st->repaired_bytes += out.v[j].klen;
	}
	v->n = 0;
	sy_tkeys_free(&out);
	if (e) {
		p->broken = true;
		return -EAGAIN;
	}
	bk->ncmds = p->cmds - bk->first;
	bk->part = p;
	return 0;
}

static void on_looks(struct sy_redis *c, redisReply *rep, void *priv)
{
	struct tbatch *b = priv;
	const char *exec[1] = {"EXEC"}, *discard[1] = {"DISCARD"};
	size_t el[1] = {4}, dl[1] = {7};
	bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == b->n;
	struct vec v = {0};
	uint32_t nparts;

	(void)c;
	b->left++; /* held while the batch is sent */
	for (uint32_t i = 0; i < b->n; i++) {
		int e = ok ? key_copy(b, i, rep->element[i], &v) : -EAGAIN;

		if (e)
			key_done(b, i, e > 0 ? 0 : e);
	}
	free(v.argv);
	free(v.lens);
	nparts = b->nparts;
	for (uint32_t i = 0; i < nparts; i++) {
		struct dpart *p = &b->part[i];

		if (!p->broken && sy_redis_sendv(p->dst, 1, exec, el, on_exec, p) == 0)
			continue;
		/* never leave the connection inside a transaction the replays would join */
		sy_redis_sendv(p->dst, 1, discard, dl, NULL, NULL);
		p->broken = false;
		on_exec(p->dst, NULL, p);
	}
	if (--b->left == 0)
		free(b);
}

int sy_repair_typed_batch(struct sy_repair *r, int db, size_t n, const char *const *keys, const size_t *lens)
{
	struct sy_redis *src = *r->source;
	size_t bytes = 0;
	struct tbatch *b;

	if (n == 0 || n > SY_REPAIR_BATCH)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		bytes += lens[i];
	if (!(b = calloc(1, sizeof(*b) + bytes)))
		return -ENOMEM;
	b->r = r;
	b->db = db;
	b->n = b->left = (uint32_t)n;
	bytes = 0;
	for (size_t i = 0; i < n; i++) {
		b->k[i].off = bytes;
		b->k[i].len = lens[i];
		memcpy(b->keys + bytes, keys[i], lens[i]);
		bytes += lens[i];
	}
	b->sent_us = now_us();
	/* through the owner's record of the selected database: the DUMP/RESTORE copy (a
	 * transform removed by a reload) relies on it being right */
	if (sy_repair_select(r, src, db) || sy_looks_send(src, n, keys, lens, on_looks, b)) {
		free(b);
		return -EIO;
	}
	return 0;
}

/* ---- the mirror's replay (mirror.c) ---------------------------------------------------------- */

int sy_xf_replay(struct sy_xf *x, bool reverse, int argc, const char *const *argv, const size_t *lens,
		 struct sy_redis *c, sy_redis_reply_cb cb, void *priv, uint32_t *parts)
{
	struct sy_targvs out;
	int e = sy_xf_write(x, reverse, argc, argv, lens, &out);

	*parts = 0;
	if (e) {
		/* nil, no forward_write, or the script failed (counted): copy the keys */
		if (e > 0)
			sy_xf_fell_back(x);
		return 1;
	}
	e = sy_targvs_send(c, &out, cb, priv, parts);
	sy_targvs_free(&out);
	return e < 0 ? e : 0;
}
