// SPDX-License-Identifier: Apache-2.0
/* transform_audit.c — see transform_audit.h. */
#include "shadow/transform_audit.h"

#include <errno.h>
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

struct tlook {
	struct tcmp *c;
	size_t i; /* the expected key */
};

static void on_target(struct sy_redis *rc, redisReply *r, void *priv)
{
	struct tlook *tl = priv;
	struct tcmp *c = tl->c;
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
	struct sy_tkey in;
	void *arena = NULL;
	int e;

	(void)rc;
	if (!sy_tkey_of_reply(r, &in, c->key, c->len, &arena)) {
		sy_arena_free(&arena);
		c->kind = -1;
		finish(c);
		return;
	}
	e = in.type == SY_KT_STREAM ? -EINVAL : sy_xf_key(c->xf, false, &in, &c->exp);
	sy_arena_free(&arena);
	if (e || c->exp.n == 0) {
		/* a script failure is the transform's count, not drift */
		finish(c);
		return;
	}
	c->waiting = 1; /* held while sending */
	for (size_t i = 0; i < c->exp.n; i++) {
		struct tlook *tl = malloc(sizeof(*tl));

		if (!tl || !sy_redis_alive(c->target) ||
		    sy_look_send(c->target, c->exp.v[i].key, c->exp.v[i].klen, on_target, tl)) {
			free(tl);
			c->kind = -1;
			continue;
		}
		tl->c = c;
		tl->i = i;
		c->waiting++;
	}
	if (--c->waiting == 0)
		finish(c);
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
	c->xf = xf;
	c->target = target;
	c->cb = cb;
	c->priv = priv;
	c->len = len;
	memcpy(c->key, key, len);
	if (sy_look_send(legacy, key, len, on_legacy, c)) {
		free(c);
		return -EIO;
	}
	return 0;
}
