// SPDX-License-Identifier: Apache-2.0
/* transform_audit.c — see transform_audit.h. */
#include "shadow/transform_audit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/transform_copy.h"
#include "shadow/verify.h"

void sy_versions_add(struct sy_versions *h, redisReply *look, const char *field)
{
	struct sy_tkey k;
	void *arena = NULL;
	char ver[32];

	if (!sy_tkey_of_reply(look, &k, "", 0, &arena) || k.type == SY_KT_NONE) {
		sy_arena_free(&arena);
		return;
	}
	if (!sy_tkey_version(&k, field, ver, sizeof(ver))) {
		h->none++;
	} else {
		size_t i;

		for (i = 0; i < h->n && strcmp(h->v[i].version, ver) != 0; i++)
			;
		if (i == h->n && h->n < SY_VERSIONS_MAX)
			strcpy(h->v[h->n++].version, ver);
		if (i < h->n)
			h->v[i].keys++;
		else
			h->other++;
	}
	sy_arena_free(&arena);
}

/* One compare under way: the legacy look, then one look per expected target key. */
struct tcmp {
	struct sy_xf *xf;
	struct sy_redis *target;
	sy_tcmp_cb cb;
	void *priv;
	struct sy_tkeys exp;
	uint32_t waiting;
	int kind; /* the worst so far; -1: a side did not answer */
	size_t len;
	char key[];
};

/* Looks that sy_look_classify turns into `kind`. */
static void looks_for(int kind, struct sy_look *l, struct sy_look *t)
{
	memset(l, 0, sizeof(*l));
	memset(t, 0, sizeof(*t));
	if (kind < 0)
		return; /* not ok: unanswered */
	l->ok = t->ok = true;
	strcpy(l->type, kind == SY_DRIFT_EXTRA ? "none" : "string");
	strcpy(t->type, kind == SY_DRIFT_MISSING ? "none" : kind == SY_DRIFT_TYPE ? "hash" : "string");
	l->ttl = t->ttl = -1;
	if (kind == SY_DRIFT_VALUE)
		t->digest = 1;
	if (kind == SY_DRIFT_TTL)
		t->ttl = 10 * SY_TTL_TOLERANCE_MS;
	if (kind == SY_DRIFT_NONE)
		strcpy(l->type, "none"), strcpy(t->type, "none");
}

static void finish(struct tcmp *c)
{
	struct sy_look l, t;

	looks_for(c->kind, &l, &t);
	sy_tkeys_free(&c->exp);
	c->cb(c->priv, &l, &t);
	free(c);
}

/* Severity order for "the worst": missing, type, value, ttl, extra over none. */
static void worse(struct tcmp *c, int kind)
{
	if (c->kind < 0 || kind == SY_DRIFT_NONE)
		return;
	if (c->kind == SY_DRIFT_NONE || kind < c->kind)
		c->kind = kind;
}

static int classify(const struct sy_tkey *want, const struct sy_tkey *got)
{
	int kind = sy_drift_presence(want->type == SY_KT_NONE || (want->n == 0 && want->type != SY_KT_STRING),
				     got->type == SY_KT_NONE);

	if (kind >= 0)
		return kind;
	if (want->type != got->type)
		return SY_DRIFT_TYPE;
	if (sy_tkey_digest(want) != sy_tkey_digest(got))
		return SY_DRIFT_VALUE;
	return sy_drift_ttl(want->ttl_ms, got->ttl_ms) ? SY_DRIFT_TTL : SY_DRIFT_NONE;
}

/* The look of one key of a list (keys->v[i]) for its owner. */
struct klook {
	void *owner;
	size_t i;
};

/* One look per key of `keys` on c, answered to cb; *waiting counts those out, held at
 * one while sending so that an answer given at once cannot end the owner before all are
 * sent. false when one of them could not be sent. None out (*waiting 0): the owner is
 * done, and its caller ends it. */
static bool look_each(struct sy_redis *c, const struct sy_tkeys *keys, sy_redis_reply_cb cb, void *owner,
		      uint32_t *waiting)
{
	bool all = true;

	(*waiting)++;
	for (size_t i = 0; i < keys->n; i++) {
		struct klook *kl = malloc(sizeof(*kl));

		if (kl)
			*kl = (struct klook){owner, i};
		if (!kl || !sy_redis_alive(c) || sy_look_send(c, keys->v[i].key, keys->v[i].klen, cb, kl)) {
			free(kl);
			all = false;
			continue;
		}
		(*waiting)++;
	}
	(*waiting)--;
	return all;
}

enum mapped { MAPPED, NOT_MAPPED, UNANSWERED };

/* A side's reply for key through the transform into out: forward (legacy's key to the
 * target keys it writes) or reverse. A stream is never transformed, and in reverse a key
 * gone meanwhile maps to nothing: NOT_MAPPED, as is a script failure (the transform's
 * count, not drift). */
static enum mapped map_reply(struct sy_xf *xf, bool reverse, redisReply *r, const char *key, size_t len,
			     struct sy_tkeys *out)
{
	enum mapped m = UNANSWERED;
	struct sy_tkey in;
	void *arena = NULL;

	if (sy_tkey_of_reply(r, &in, key, len, &arena))
		m = in.type == SY_KT_STREAM || (reverse && in.type == SY_KT_NONE) ||
				    sy_xf_key(xf, reverse, &in, out)
			    ? NOT_MAPPED
			    : MAPPED;
	sy_arena_free(&arena);
	return m;
}

static void on_target(struct sy_redis *rc, redisReply *r, void *priv)
{
	struct klook *tl = priv;
	struct tcmp *c = tl->owner;
	struct sy_tkey got;
	void *arena = NULL;

	(void)rc;
	if (!sy_tkey_of_reply(r, &got, c->exp.v[tl->i].key, c->exp.v[tl->i].klen, &arena))
		c->kind = -1;
	else
		worse(c, classify(&c->exp.v[tl->i], &got));
	sy_arena_free(&arena);
	free(tl);
	if (--c->waiting == 0)
		finish(c);
}

static void on_legacy(struct sy_redis *rc, redisReply *r, void *priv)
{
	struct tcmp *c = priv;
	enum mapped m = map_reply(c->xf, false, r, c->key, c->len, &c->exp);

	(void)rc;
	/* not mapped: a script failure is the transform's count, not drift */
	if (m == UNANSWERED || (m == MAPPED && !look_each(c->target, &c->exp, on_target, c, &c->waiting)))
		c->kind = -1;
	if (c->waiting == 0)
		finish(c);
}

/* The look at key on side that starts check o (just allocated, with room for the key at
 * okey): o keeps its copy of the key, and is freed when the look cannot be sent. */
static int first_look(struct sy_redis *side, const char *key, size_t len, char *okey, sy_redis_reply_cb cb,
		      void *o)
{
	memcpy(okey, key, len);
	if (sy_look_send(side, key, len, cb, o)) {
		free(o);
		return -EIO;
	}
	return 0;
}

int sy_tcmp_send(struct sy_xf *xf, struct sy_redis *legacy, struct sy_redis *target, const char *key,
		 size_t len, sy_tcmp_cb cb, void *priv)
{
	struct tcmp *c;

	if (!sy_redis_alive(legacy))
		return -ENOTCONN;
	c = calloc(1, sizeof(*c) + len);
	if (!c)
		return -ENOMEM;
	*c = (struct tcmp){.xf = xf, .target = target, .cb = cb, .priv = priv, .len = len};
	return first_look(legacy, key, len, c->key, on_legacy, c);
}

/* ---- extra keys on target (reverse_key) ------------------------------------------------------ */

struct textra {
	struct sy_xf *xf;
	struct sy_redis *legacy;
	sy_textra_cb cb;
	void *priv;
	const char *vfield;
	struct sy_versions *versions;
	struct sy_tkeys src; /* reverse_key's legacy keys */
	uint32_t waiting;
	bool mapped, unanswered;
	long via; /* the index in src of the key a repair goes through; -1 */
	size_t len;
	char key[];
};

static void extra_finish(struct textra *x)
{
	struct sy_look l, t;
	bool extra = !x->unanswered && !x->mapped;

	looks_for(x->unanswered ? -1 : extra ? SY_DRIFT_EXTRA : SY_DRIFT_NONE, &l, &t);
	x->cb(x->priv, &l, &t, extra && x->via >= 0 ? x->src.v[x->via].key : NULL,
	      extra && x->via >= 0 ? x->src.v[x->via].klen : 0);
	sy_tkeys_free(&x->src);
	free(x);
}

/* Whether keys holds target's key: present (as a value) or at all (present false). */
static bool names(const struct sy_tkeys *keys, const char *key, size_t len, bool present)
{
	for (size_t i = 0; i < keys->n; i++) {
		const struct sy_tkey *k = &keys->v[i];

		if (k->klen == len && memcmp(k->key, key, len) == 0 &&
		    (!present || (k->type != SY_KT_NONE && (k->n > 0 || k->type == SY_KT_STRING))))
			return true;
	}
	return false;
}

static void on_source(struct sy_redis *rc, redisReply *r, void *priv)
{
	struct klook *xl = priv;
	struct textra *x = xl->owner;
	const struct sy_tkey *s = &x->src.v[xl->i];
	struct sy_tkey in;
	struct sy_tkeys fw;
	void *arena = NULL;

	(void)rc;
	if (!sy_tkey_of_reply(r, &in, s->key, s->klen, &arena)) {
		x->unanswered = true;
	} else if (in.type != SY_KT_STREAM && sy_xf_key(x->xf, false, &in, &fw) == 0) {
		/* present and mapped to this key: not extra; absent and deleting it: the way
		 * a repair removes it, keeping the mirror's order on that legacy key */
		if (in.type != SY_KT_NONE && names(&fw, x->key, x->len, true))
			x->mapped = true;
		else if (in.type == SY_KT_NONE && x->via < 0 && names(&fw, x->key, x->len, false))
			x->via = (long)xl->i;
		sy_tkeys_free(&fw);
	} else {
		x->mapped = true; /* a script failure is the transform's count, not drift */
	}
	sy_arena_free(&arena);
	free(xl);
	if (--x->waiting == 0)
		extra_finish(x);
}

static void on_extra_target(struct sy_redis *rc, redisReply *r, void *priv)
{
	struct textra *x = priv;
	enum mapped m;

	(void)rc;
	if (x->vfield)
		sy_versions_add(x->versions, r, x->vfield);
	/* gone meanwhile, or a stream (never transformed): nothing to say */
	m = map_reply(x->xf, true, r, x->key, x->len, &x->src);
	if (m == NOT_MAPPED)
		x->mapped = true;
	else if (m == UNANSWERED || !look_each(x->legacy, &x->src, on_source, x, &x->waiting))
		x->unanswered = true;
	if (x->waiting == 0)
		extra_finish(x);
}

int sy_textra_send(struct sy_xf *xf, struct sy_redis *legacy, struct sy_redis *target, const char *key,
		   size_t len, const char *version_field, struct sy_versions *versions, sy_textra_cb cb,
		   void *priv)
{
	struct textra *x;

	if (!sy_redis_alive(target))
		return -ENOTCONN;
	x = calloc(1, sizeof(*x) + len);
	if (!x)
		return -ENOMEM;
	*x = (struct textra){.xf = xf,
			     .legacy = legacy,
			     .cb = cb,
			     .priv = priv,
			     .vfield = version_field && version_field[0] ? version_field : NULL,
			     .versions = versions,
			     .via = -1,
			     .len = len};
	return first_look(target, key, len, x->key, on_extra_target, x);
}
