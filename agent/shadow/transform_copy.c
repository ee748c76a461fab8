// SPDX-License-Identifier: Apache-2.0
/* transform_copy.c — see transform_copy.h and docs/transforms.md: each migration's
 * loaded script, its counters, typed keys from and to Redis. */
#include "shadow/transform_copy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int sy_tkeys_send(struct sy_redis *c, const struct sy_tkeys *keys, sy_redis_reply_cb cb, void *priv,
		  uint32_t *parts)
{
	struct vec v = {0};
	char ttl[24];
	int e = 0;

	*parts = 0;
	if ((e = vec_push(&v, "MULTI", 5)) || (e = send_vec(c, &v, cb, priv, parts)))
		goto out;
	for (size_t i = 0; i < keys->n && !e; i++) {
		const struct sy_tkey *k = &keys->v[i];
		const char *cmd = WRITE_CMD[k->type];
		size_t tl = k->ttl_ms > 0 ? (size_t)snprintf(ttl, sizeof(ttl), "%lld", k->ttl_ms) : 0;

		if ((e = vec_push(&v, "DEL", 3)) || (e = vec_push(&v, k->key, k->klen)) ||
		    (e = send_vec(c, &v, cb, priv, parts)))
			break;
		if (!cmd || k->n == 0)
			continue;
		if ((e = vec_push(&v, cmd, strlen(cmd))) || (e = vec_push(&v, k->key, k->klen)))
			break;
		for (size_t j = 0; j < k->n && !e; j++) {
			/* ZADD takes score then member: the pairs are member, score */
			size_t at = k->type == SY_KT_ZSET ? (j % 2 ? j - 1 : j + 1) : j;

			e = vec_push(&v, k->items[at].p, k->items[at].n);
		}
		if (!e && k->type == SY_KT_STRING && tl)
			if (!(e = vec_push(&v, "PX", 2)))
				e = vec_push(&v, ttl, tl);
		if (e || (e = send_vec(c, &v, cb, priv, parts)))
			break;
		if (tl && k->type != SY_KT_STRING &&
		    ((e = vec_push(&v, "PEXPIRE", 7)) || (e = vec_push(&v, k->key, k->klen)) ||
		     (e = vec_push(&v, ttl, tl)) || (e = send_vec(c, &v, cb, priv, parts))))
			break;
	}
	if (!e && !(e = vec_push(&v, "EXEC", 4)))
		e = send_vec(c, &v, cb, priv, parts);
out:
	free(v.argv);
	free(v.lens);
	return e;
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

/* ---- the typed copy of repair (repair.h) ----------------------------------------------------- */

struct tcopy {
	struct sy_repair *r;
	int db;
	uint32_t parts; /* replies of the write still expected */
	bool failed;
	size_t len;
	char key[];
};

static void tcopy_end(struct tcopy *t, int outcome)
{
	sy_repair_typed_done(t->r, t->db, t->key, t->len, outcome);
	free(t);
}

static void on_written(struct sy_redis *c, redisReply *rep, void *priv)
{
	struct tcopy *t = priv;

	(void)c;
	if (!rep || rep->type == REDIS_REPLY_ERROR || rep->type == REDIS_REPLY_NIL)
		t->failed = true;
	if (--t->parts == 0)
		tcopy_end(t, t->failed ? -EAGAIN : 0);
}

static void on_looked(struct sy_redis *c, redisReply *rep, void *priv)
{
	struct tcopy *t = priv;
	struct sy_repair *r = t->r;
	struct sy_tkey in;
	struct sy_tkeys out;
	void *arena = NULL;
	char buf[1024];
	const char *dk;
	size_t dl;
	struct sy_redis *dst;
	int e;

	(void)c;
	if (rep && rep->type == REDIS_REPLY_STATUS)
		return; /* +OK of SELECT */
	if (!sy_tkey_of_reply(rep, &in, t->key, t->len, &arena)) {
		sy_arena_free(&arena);
		tcopy_end(t, -EAGAIN);
		return;
	}
	if (in.type == SY_KT_STREAM) {
		/* not transformed: a failed transform, as an error would be */
		sy_arena_free(&arena);
		tcopy_end(t, -EINVAL);
		return;
	}
	e = sy_xf_key(r->xf, r->reverse, &in, &out);
	sy_arena_free(&arena);
	if (e) {
		tcopy_end(t, e == -EAGAIN ? -EINVAL : e);
		return;
	}
	dst = r->ops->dest(r->owner, t->db, t->key, t->len, buf, sizeof(buf), &dk, &dl);
	if (!dst) {
		sy_tkeys_free(&out);
		tcopy_end(t, -EAGAIN);
		return;
	}
	e = sy_tkeys_send(dst, &out, on_written, t, &t->parts);
	for (size_t i = 0; i < out.n; i++)
		if (out.v[i].type != SY_KT_NONE && out.v[i].n)
			r->st->repaired_bytes += out.v[i].klen;
	sy_tkeys_free(&out);
	if (e) {
		t->failed = true;
		if (t->parts == 0)
			tcopy_end(t, -EAGAIN);
	}
}

int sy_repair_typed_start(struct sy_repair *r, int db, const char *key, size_t len)
{
	struct sy_redis *src = *r->source;
	struct tcopy *t = calloc(1, sizeof(*t) + len);

	if (!t)
		return -ENOMEM;
	t->r = r;
	t->db = db;
	t->len = len;
	memcpy(t->key, key, len);
	if (sy_repair_select(r, src, db) || sy_look_send(src, key, len, on_looked, t)) {
		free(t);
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
