// SPDX-License-Identifier: Apache-2.0
/* repair.c — see repair.h and docs/mirror.md (repair). */
#include "shadow/repair.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "redis/redis_conn.h"
#include "shadow/jobs.h"
#include "shadow/mirror.h"

/* ---- the dirty-key set (dirty.c) ----------------------------------------------------- */

/* 0 added or already there (its due time pushed to at least `due`), -ENOSPC full. */
static int dirty_add(struct sy_repair *r, int db, const char *k, size_t len, uint64_t due)
{
	if (!r->tab && !(r->tab = sy_dirty_new(SY_MIRROR_DIRTY_MAX)))
		return -ENOMEM;
	return sy_dirty_add(r->tab, db, k, len, due);
}

bool sy_repair_has(const struct sy_repair *r, int db, const char *key, size_t len)
{
	return sy_dirty_has(r->tab, db, key, len);
}

/* ---- copies -------------------------------------------------------------------------- */

static void kick(struct sy_repair *r, uint64_t delay_ms);

void sy_repair_mark(struct sy_repair *r, int db, const char *key, size_t len, uint64_t delay_ms)
{
	int e = dirty_add(r, db, key, len, sy_now_ms() + delay_ms);

	if (e == -ENOSPC)
		r->ops->flag_audit(r->owner, "dirty-key set full");
	else if (e)
		r->ops->flag_audit(r->owner, "out of memory for dirty keys");
	r->st->dirty = sy_dirty_count(r->tab);
	kick(r, delay_ms);
}

/* One copy under way. */
struct copy {
	struct sy_repair *r;
	int db;
	size_t len;
	char key[];
};

static void copy_done(struct copy *cp, bool ok)
{
	struct sy_repair *r = cp->r;

	r->inflight--;
	if (ok) {
		r->st->repaired++;
	} else {
		r->st->repair_failed++;
		sy_repair_mark(r, cp->db, cp->key, cp->len, SY_REPAIR_RETRY_MS);
	}
	free(cp);
	kick(r, 0);
}

void sy_repair_typed_done(struct sy_repair *r, int db, const char *key, size_t len, int outcome)
{
	r->inflight--;
	if (outcome == 0) {
		r->st->repaired++;
	} else if (outcome == -EAGAIN) {
		r->st->repair_failed++;
		sy_repair_mark(r, db, key, len, SY_REPAIR_RETRY_MS);
	} else {
		r->st->repair_failed++;
		r->ops->flag_audit(r->owner, "a transform failed on some keys (syctl verify)");
	}
	kick(r, 0);
}

static void on_restored(struct sy_redis *c, redisReply *rep, void *priv)
{
	(void)c;
	copy_done(priv, rep && rep->type != REDIS_REPLY_ERROR);
}

static void on_dumped(struct sy_redis *c, redisReply *rep, void *priv)
{
	struct copy *cp = priv;
	struct sy_repair *r = cp->r;
	char buf[1024], ttl[24];
	const char *k;
	size_t kl;
	struct sy_redis *dst;
	redisReply *dump, *pttl;

	(void)c;
	/* MULTI / DUMP / PTTL / EXEC: the EXEC reply is [payload|nil, pttl] */
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
		if (rep && rep->type == REDIS_REPLY_STATUS)
			return; /* +OK of MULTI, +QUEUED: the EXEC reply follows */
		copy_done(cp, false);
		return;
	}
	dump = rep->element[0];
	pttl = rep->element[1];
	dst = r->ops->dest(r->owner, cp->db, cp->key, cp->len, buf, sizeof(buf), &k, &kl);
	if (!dst) {
		copy_done(cp, false);
		return;
	}
	if (dump->type == REDIS_REPLY_STRING)
		r->st->repaired_bytes += dump->len;
	if (dump->type != REDIS_REPLY_STRING) {
		const char *argv[2] = {"DEL", k};
		size_t lens[2] = {3, kl};

		if (sy_redis_sendv(dst, 2, argv, lens, on_restored, cp))
			copy_done(cp, false);
		return;
	}
	{
		long long ms = pttl->type == REDIS_REPLY_INTEGER && pttl->integer > 0 ? pttl->integer : 0;
		const char *argv[5] = {"RESTORE", k, ttl, dump->str, "REPLACE"};
		size_t lens[5] = {7, kl, 0, dump->len, 7};

		lens[2] = (size_t)snprintf(ttl, sizeof(ttl), "%lld", ms);
		if (sy_redis_sendv(dst, 5, argv, lens, on_restored, cp))
			copy_done(cp, false);
	}
}

static void on_queued(struct sy_redis *c, redisReply *rep, void *priv)
{
	(void)c;
	(void)rep;
	(void)priv;
}

/* Typed copies go by batches of due keys of one database: one look for them all
 * (transform_copy.c). Each key is told to the owner as it is taken, as one copy is. */
static void run_typed(struct sy_repair *r, uint64_t now)
{
	while (r->inflight < SY_REPAIR_INFLIGHT && sy_redis_alive(*r->source)) {
		struct sy_dkey *got[SY_REPAIR_BATCH];
		const struct sy_dkey *e;
		const char *keys[SY_REPAIR_BATCH];
		size_t lens[SY_REPAIR_BATCH], n = 0;

		while (n < SY_REPAIR_BATCH && r->inflight < SY_REPAIR_INFLIGHT &&
		       (e = sy_dirty_peek(r->tab, now)) && (n == 0 || e->db == got[0]->db)) {
			/* taken-out keys stay valid while copying() marks keys */
			got[n] = sy_dirty_pop(r->tab, now);
			keys[n] = sy_dkey_key(got[n]);
			lens[n] = got[n]->len;
			r->inflight++;
			r->ops->copying(r->owner, got[n]->db, keys[n], lens[n]);
			n++;
		}
		if (n == 0)
			return;
		if (sy_repair_typed_batch(r, got[0]->db, n, keys, lens))
			for (size_t i = 0; i < n; i++)
				sy_repair_typed_done(r, got[i]->db, keys[i], lens[i], -EAGAIN);
		for (size_t i = 0; i < n; i++)
			sy_dirty_put(r->tab, got[i]);
	}
	if (!sy_redis_alive(*r->source))
		kick(r, SY_REPAIR_RETRY_MS);
}

/* DUMP + PTTL in one MULTI on the source, one copy per key. */
static void run_dump(struct sy_repair *r, uint64_t now)
{
	while (r->inflight < SY_REPAIR_INFLIGHT) {
		struct sy_redis *src = *r->source;
		struct sy_dkey *e;
		struct copy *cp;

		if (!sy_redis_alive(src)) {
			kick(r, SY_REPAIR_RETRY_MS);
			break;
		}
		e = sy_dirty_pop(r->tab, now);
		if (!e)
			break;
		cp = malloc(sizeof(*cp) + e->len);
		if (!cp) {
			sy_dirty_put(r->tab, e);
			break;
		}
		cp->r = r;
		cp->db = e->db;
		cp->len = e->len;
		memcpy(cp->key, sy_dkey_key(e), e->len);
		sy_dirty_put(r->tab, e);
		r->inflight++;
		r->ops->copying(r->owner, cp->db, cp->key, cp->len);
		{
			const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
			size_t ml[1] = {5}, el[1] = {4};
			const char *dump[2] = {"DUMP", cp->key}, *pttl[2] = {"PTTL", cp->key};
			size_t kl[2] = {4, cp->len};

			if (sy_repair_select(r, src, cp->db) ||
			    sy_redis_sendv(src, 1, multi, ml, on_queued, NULL) ||
			    sy_redis_sendv(src, 2, dump, kl, on_queued, NULL) ||
			    sy_redis_sendv(src, 2, pttl, kl, on_queued, NULL) ||
			    sy_redis_sendv(src, 1, exec, el, on_dumped, cp))
				copy_done(cp, false);
		}
	}
}

static void run(struct sy_loop *l, void *arg)
{
	struct sy_repair *r = arg;
	uint64_t now = sy_now_ms();
	const struct sy_dkey *e;

	(void)l;
	r->timer = 0;
	if (!*r->active)
		return;
	if (r->xf)
		run_typed(r, now);
	else
		run_dump(r, now);
	r->st->dirty = sy_dirty_count(r->tab);
	if ((e = sy_dirty_peek(r->tab, UINT64_MAX)) && !r->timer) {
		uint64_t due = e->due_ms;

		kick(r, due > now ? due - now : 10);
	}
}

int sy_repair_select(struct sy_repair *r, struct sy_redis *src, int db)
{
	/* the source connection is the owner's alone, so what it last selected holds:
	 * one SELECT per change instead of one per copy (a fifth of a copy's commands) */
	if (sy_job_select(src, r->source_db, db)) {
		*r->source_db = -1;
		return -EIO;
	}
	return 0;
}

static void kick(struct sy_repair *r, uint64_t delay_ms)
{
	if (r->timer)
		return;
	r->timer = sy_loop_add_timer(r->loop, delay_ms, run, r);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

void sy_repair_init(struct sy_repair *r, struct sy_loop *l, const struct sy_repair_ops *ops, void *owner,
		    struct sy_redis *const *source, int *source_db, const bool *active,
		    struct sy_mirror_stats *st)
{
	r->loop = l;
	r->ops = ops;
	r->owner = owner;
	r->source = source;
	r->source_db = source_db;
	r->active = active;
	r->st = st;
}

void sy_repair_stop(struct sy_repair *r)
{
	if (r->loop)
		sy_loop_cancel_timer(r->loop, r->timer);
	r->timer = 0;
}

void sy_repair_free(struct sy_repair *r)
{
	sy_repair_stop(r);
	sy_dirty_free(r->tab);
	r->tab = NULL;
	r->inflight = 0;
}
