// SPDX-License-Identifier: Apache-2.0
/* mirror.c — see mirror.h and docs/mirror.md: the capture callback, replay, destination
 * connections; repair.c, writers.c, clients.c and redis/resp_argv.c hold the rest. */
#include "shadow/mirror.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include "redis/commands.h"
#include "switchyard/index.h"
#include "core/log.h"
#include "core/loop.h"
#include "kernel/mapsync.h"
#include "model/keymap.h"
#include "registry/registry.h"
#include "redis/redis_conn.h"
#include "redis/resp_argv.h"
#include "shadow/clients.h"
#include "shadow/mirror_state.h"
#include "shadow/repair.h"
#include "shadow/replay_rec.h"
#include "shadow/transform_copy.h"
#include "shadow/writers.h"

#define SETTLE_MS	   50		      /* a repair waits for replays in flight to land */
#define CONFLICT_SETTLE_MS 300		      /* a conflict repair waits for both sides' replays */
#define RETRY_MS	   SY_REPAIR_RETRY_MS /* a failed replay's keys are copied this late */
#define RECONNECT_MS	   200

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *dir_name(const struct dir *d)
{
	return d->dir == SY_DIR_FORWARD ? "forward" : "reverse";
}

/* The side writes of this direction are made on, and the side they go to. */
static int src_side(const struct dir *d)
{
	return d->dir == SY_DIR_FORWARD ? SY_SIDE_LEGACY : SY_SIDE_TARGET;
}

static const struct sy_endpoint *endpoint(const struct mig *g, int side)
{
	/* several endpoints of one side are one datastore (proxies, a cluster's
	 * entry points): the first is used */
	return side == SY_SIDE_LEGACY ? &g->spec.legacy[0] : &g->spec.target[0];
}

/* ---- connections ------------------------------------------------------------------- */

static void conn_state(struct sy_redis *c, bool up, const char *why, void *arg);

static void conn_open(struct dconn *dc)
{
	struct dir *d = dc->d;
	int side = dc->is_src ? src_side(d) : !src_side(d);

	dc->db = 0;
	dc->r = sy_redis_connect(d->mig->m->loop, endpoint(d->mig, side), &d->mig->spec.auth[side],
				 conn_state, dc);
}

static void reconnect(struct sy_loop *l, void *arg)
{
	struct dconn *dc = arg;

	(void)l;
	dc->retry_timer = 0;
	sy_redis_free(dc->r);
	dc->r = NULL;
	if (dc->d->mig->active)
		conn_open(dc);
}

static void conn_state(struct sy_redis *c, bool up, const char *why, void *arg)
{
	struct dconn *dc = arg;
	struct dir *d = dc->d;

	(void)c;
	if (up)
		return;
	sy_warn("mirror", "%s %s: %s connection lost: %s", d->mig->name, dir_name(d),
		dc->is_src ? "source" : "destination", why);
	/* freed from a timer: we may be inside hiredis's callbacks now */
	if (!dc->retry_timer)
		dc->retry_timer = sy_loop_add_timer(d->mig->m->loop, RECONNECT_MS, reconnect, dc);
}

/* Brings a destination connection to database `db` first. */
static int select_db(struct dconn *dc, int db, sy_redis_reply_cb cb)
{
	char n[16];
	const char *argv[2] = {"SELECT", n};
	size_t lens[2] = {6, 0};

	if (dc->db == db)
		return 0;
	lens[1] = (size_t)snprintf(n, sizeof(n), "%d", db);
	if (sy_redis_sendv(dc->r, 2, argv, lens, cb, NULL))
		return -EIO;
	dc->db = db;
	return 0;
}

static void ignore_reply(struct sy_redis *c, redisReply *r, void *priv)
{
	(void)c;
	(void)r;
	(void)priv;
}

/* ---- repair (repair.c) --------------------------------------------------------------- */

static void flag_audit(struct dir *d, const char *why)
{
	bool was = d->st.needs_audit;

	if (!was)
		sy_warn("mirror", "%s %s: needs audit: %s", d->mig->name, dir_name(d), why);
	d->st.needs_audit = true;
	snprintf(d->st.audit_reason, sizeof(d->st.audit_reason), "%s", why);
	if (!was && d->mig->m->on_audit)
		d->mig->m->on_audit(d->mig->m->on_audit_arg, d->mig->name, dir_name(d), why);
}

void sy_mirror_on_audit_flag(struct sy_mirror *m, sy_mirror_audit_fn fn, void *arg)
{
	m->on_audit = fn;
	m->on_audit_arg = arg;
}

static struct sy_redis *repair_dest(void *owner, int db, const char *key, size_t len, char *buf, size_t cap,
				    const char **dkey, size_t *dlen)
{
	struct dir *d = owner;
	struct dconn *dc = &d->dst;

	*dlen = sy_key_map(&d->mig->spec, src_side(d), key, len, buf, cap, dkey);
	if (!sy_redis_alive(dc->r) || select_db(dc, db, ignore_reply))
		return NULL;
	return dc->r;
}

static void mark_dirty(struct dir *d, int db, const char *k, size_t len, uint64_t delay_ms);

static void repair_copying(void *owner, int db, const char *key, size_t len)
{
	struct dir *d = owner;

	/* a write landing between this DUMP and its RESTORE would be overwritten by
	 * the older copy: writes to the key in the next seconds copy it again. With a
	 * transform, typed copies against the authoritative direction (every fallback)
	 * would turn the other side's next writes into conflicts copied from a stale
	 * side: they only copy once more a key written just before */
	bool auth = d->dir == ((d->mig->mirror & SY_CAPTURE_LEGACY) ? SY_DIR_FORWARD : SY_DIR_REVERSE);

	if (!d->mig->xf || auth)
		sy_writers_mark_hot(&d->mig->writers, &d->mig->spec, src_side(d), db, key, len);
	if (d->mig->xf &&
	    sy_now_ms() - sy_writers_last_ms(&d->mig->writers, db, key, len) < CONFLICT_SETTLE_MS)
		mark_dirty(d, db, key, len, CONFLICT_SETTLE_MS);
}

static void repair_flag_audit(void *owner, const char *why)
{
	flag_audit(owner, why);
}

static const struct sy_repair_ops repair_ops = {
	.dest = repair_dest,
	.copying = repair_copying,
	.flag_audit = repair_flag_audit,
};

/* Marks a key (named as on the source side of d) for repair after `delay_ms`. */
static void mark_dirty(struct dir *d, int db, const char *k, size_t len, uint64_t delay_ms)
{
	/* the engine borrows the direction's source connection and stats */
	if (!d->rep.ops)
		sy_repair_init(&d->rep, d->mig->m->loop, &repair_ops, d, &d->src.r, &d->src.db,
			       &d->mig->active, &d->st);
	d->rep.xf = d->mig->xf, d->rep.reverse = d->dir == SY_DIR_REVERSE;
	sy_repair_mark(&d->rep, db, k, len, delay_ms);
}

/* ---- replay ----------------------------------------------------------------------- */

static void repair_keys_of(struct sy_pending *p, uint64_t delay)
{
	size_t off = 0;

	for (int i = 0; i < p->nkeys; i++) {
		mark_dirty(p->d, p->db, p->kdata + off, p->klen[i], delay);
		off += p->klen[i];
	}
}

static void on_replayed(struct sy_redis *c, redisReply *r, void *priv)
{
	struct sy_pending *p = priv;
	struct dir *d = p->d;

	/* nil for EXEC: a transaction aborted on the destination */
	if (!r || r->type == REDIS_REPLY_ERROR || (p->parts > 1 && r->type == REDIS_REPLY_NIL))
		p->failed = true;
	if (--p->parts)
		return;
	d->inflight--;
	d->st.queued = d->inflight;
	if (p->failed) {
		d->st.failed++;
		repair_keys_of(p, SETTLE_MS);
	} else {
		/* when the read that brought the answer returned: one clock read per read,
		 * not per answer (sy_now_ms() is the same clock, in ms) */
		uint64_t now = c ? sy_redis_read_ns(c) : mono_ns(), now_ms = now / 1000000;
		uint64_t lag_ms = now > p->ts_ns ? (now - p->ts_ns) / 1000000 : 0;

		d->st.mirrored++;
		d->st.lag[sy_log2_bucket(now > p->ts_ns ? (now - p->ts_ns) / 1000 : 0)]++;
		if (now_ms - d->lag_epoch_ms >= 2000) {
			d->lag_prev_ms = d->lag_cur_ms;
			d->lag_cur_ms = 0;
			d->lag_epoch_ms = now_ms;
		}
		if (lag_ms > d->lag_cur_ms)
			d->lag_cur_ms = lag_ms;
	}
	sy_pending_free(&p->d->mig->m->pool, p);
}

/* The state of client connection `cookie` (clients.c). */
static struct sy_client *src_of(struct mig *g, uint64_t cookie)
{
	bool lost;
	struct sy_client *s = sy_clients_get(&g->clients, cookie, &lost);

	if (lost)
		for (int k = 0; k < 2; k++)
			flag_audit(&g->d[k],
				   "too many client connections at once: one's SELECT/MULTI state was lost");
	return s;
}

/* ---- the capture callback -------------------------------------------------------------- */

static void sync_mig(struct sy_mirror *m, struct mig *g, const struct sy_migration_state *ms);

/* The registry's migration in slot id, as of its last commit, or NULL. */
static const struct sy_migration_state *seen_of(const struct sy_mirror *m, uint32_t id)
{
	return id < SY_MAX_MIGRATIONS && m->seen[id].id ? &m->seen[id] : NULL;
}

/* A replay is on its way: one more answer to wait for. */
static void replay_sent(struct dir *d)
{
	d->inflight++;
	d->st.queued = d->inflight;
}

/* A replay that could not be sent: its keys (p may be NULL) are copied again later. */
static void replay_failed(struct dir *d, struct sy_pending *p)
{
	d->st.failed++;
	if (p) {
		repair_keys_of(p, RETRY_MS);
		sy_pending_free(&p->d->mig->m->pool, p);
	}
}

/* A relative expiry replayed later than this is copied instead (sy_argv_relative_ttl). */
#define LATE_TTL_MS 200

static void replay(struct dir *d, struct sy_client *s, struct sy_argv *a, const struct sy_captured *c,
		   int *keys, int nkeys)
{
	struct mig *g = d->mig;
	struct sy_pending *p = NULL;
	struct dconn *dc = &d->dst;
	uint32_t limit = g->spec.mirror_queue ? g->spec.mirror_queue : SY_MIRROR_QUEUE_DEFAULT;
	int e;

	p = sy_pending_new(&g->m->pool, d, c->ts_ns, s->db);
	if (!p || sy_pending_keys(p, a->argc, a->argv, a->lens, keys, nkeys))
		goto fail;
	if (d->inflight >= limit) {
		d->st.dropped++;
		repair_keys_of(p, SETTLE_MS);
		sy_pending_free(&p->d->mig->m->pool, p);
		return;
	}
	if (sy_argv_relative_ttl(a) && mono_ns() - c->ts_ns > LATE_TTL_MS * 1000000ull) {
		repair_keys_of(p, 0);
		sy_pending_free(&p->d->mig->m->pool, p);
		return;
	}
	if (!sy_redis_alive(dc->r) || select_db(dc, s->db, ignore_reply))
		goto fail;
	p->parts = 1;
	if (g->xf) { /* forward_write, or the keys through forward_key (transform_copy.c) */
		e = sy_xf_replay(g->xf, d->dir == SY_DIR_REVERSE, a->argc, a->argv, a->lens, dc->r,
				 on_replayed, p, &p->parts);
		if (e > 0 || (e == 0 && !p->parts)) {
			e > 0 ? repair_keys_of(p, SETTLE_MS) : (void)d->st.mirrored++;
			sy_pending_free(&p->d->mig->m->pool, p);
			return;
		}
		p->failed = e < 0;
		e = e < 0 && !p->parts;
	} else if (!g->spec.n_rewrite && !c->is_inline) {
		/* the captured bytes as they are: the header rebuilt, the body copied once */
		size_t nl = a->lens[0], n;

		if (!(n = sy_replay_raw(&g->m->pool, c->argc, c->name, nl, c->body, c->len)))
			goto fail;
		e = sy_redis_send(dc->r, g->m->pool.raw, n, on_replayed, p);
	} else if (g->spec.n_rewrite) {
		const char **argv;
		size_t *lens;
		char *store;

		if (sy_argv_rewrite(&g->spec, src_side(d), a, keys, nkeys, &argv, &lens, &store))
			goto fail;
		e = sy_redis_sendv(dc->r, a->argc, argv, lens, on_replayed, p);
		free(argv);
		free(lens);
		free(store);
	} else {
		e = sy_redis_sendv(dc->r, a->argc, a->argv, a->lens, on_replayed, p);
	}
	if (e)
		goto fail;
	replay_sent(d);
	return;
fail:
	replay_failed(d, p);
}

/* EXEC: the collected transaction as one unit on one connection. */
static void replay_txn(struct dir *d, struct sy_client *s, uint64_t ts)
{
	struct mig *g = d->mig;
	struct dconn *dc = &d->dst;
	struct sy_pending *p = sy_pending_new(&g->m->pool, d, ts, s->db);
	uint32_t limit = g->spec.mirror_queue ? g->spec.mirror_queue : SY_MIRROR_QUEUE_DEFAULT;
	const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
	size_t ml[1] = {5}, el[1] = {4};
	bool ok = p != NULL;
	struct sy_txcmd *t;

	STAILQ_FOREACH(t, &s->txn, link)
	if (ok)
		ok = sy_pending_keys(p, t->argc, (const char *const *)t->argv, t->lens, t->keys, t->nkeys) ==
		     0;
	if (!ok)
		goto fail;
	if (s->txn_n == 0) { /* reads only, or nothing: nothing to replay */
		sy_pending_free(&p->d->mig->m->pool, p);
		return;
	}
	if (s->txn_bad || g->xf || d->inflight >= limit) { /* a transform: key by key */
		if (!s->txn_bad && !g->xf)
			d->st.dropped++;
		repair_keys_of(p, SETTLE_MS);
		sy_pending_free(&p->d->mig->m->pool, p);
		return;
	}
	if (!sy_redis_alive(dc->r) || select_db(dc, s->db, ignore_reply))
		goto fail;
	p->parts = (uint32_t)s->txn_n + 2;
	if (sy_redis_sendv(dc->r, 1, multi, ml, on_replayed, p))
		goto fail;
	replay_sent(d);
	/* from here every part answers (a part that could not be sent counts as failed) */
	STAILQ_FOREACH(t, &s->txn, link)
	{
		struct sy_argv v = {.argc = t->argc, .argv = (const char **)t->argv, .lens = t->lens};
		const char **argv = v.argv;
		size_t *lens = t->lens;
		char *store = NULL;

		if (g->spec.n_rewrite &&
		    sy_argv_rewrite(&g->spec, src_side(d), &v, t->keys, t->nkeys, &argv, &lens, &store)) {
			on_replayed(NULL, NULL, p);
			continue;
		}
		if (sy_redis_sendv(dc->r, t->argc, argv, lens, on_replayed, p))
			on_replayed(NULL, NULL, p);
		if (store) {
			free(argv);
			free(lens);
			free(store);
		}
	}
	if (sy_redis_sendv(dc->r, 1, exec, el, on_replayed, p))
		on_replayed(NULL, NULL, p);
	return;
fail:
	replay_failed(d, p);
}

/* MULTI, WATCH, UNWATCH, DISCARD and EXEC move the client's transaction along; true when
 * cmd was one of them. */
static bool txn_command(struct dir *d, struct sy_client *s, const struct sy_command *cmd,
			const struct sy_captured *c)
{
	if (cmd->flags & SY_CMDF_TXN_WATCH) {
		s->watched = cmd->name[0] == 'W'; /* UNWATCH forgets */
		return true;
	}
	if (!(cmd->flags & (SY_CMDF_TXN_MULTI | SY_CMDF_TXN_DISCARD | SY_CMDF_TXN_EXEC)))
		return false;
	if ((cmd->flags & SY_CMDF_TXN_EXEC) && s->in_multi && s->watched && s->txn_n) {
		/* aborted if a watched key changed, and only EXEC's reply says so, which
		 * the capture does not see: copy the keys once it settled, whichever way
		 * it went, instead of replaying what may not have happened */
		s->txn_bad = true;
		flag_audit(d, "WATCH transaction: EXEC's outcome unknown, its keys were copied");
	}
	if ((cmd->flags & SY_CMDF_TXN_EXEC) && s->in_multi)
		replay_txn(d, s, c->ts_ns);
	/* MULTI starts afresh (keeping WATCH); DISCARD and EXEC end the transaction and WATCH */
	sy_client_txn_clear(s);
	if (cmd->flags & SY_CMDF_TXN_MULTI)
		s->in_multi = true;
	else
		s->watched = false;
	return true;
}

/* Records the write's keys as written by its connection; a key written by another
 * writer lately is a conflict: copied once it settles, in one direction only so that
 * two copies never cross — from legacy (authoritative) when writes on legacy are
 * mirrored, else from target. fps: the first nfp keys' fingerprints (sy_writers_touch). */
static void note_writers(struct mig *g, const struct sy_captured *c, struct sy_client *s,
			 const struct sy_argv *a, const int *keys, int nkeys, const uint64_t *fps, int nfp)
{
	uint64_t now = sy_coarse_ms();

	for (int i = 0; i < nkeys; i++) {
		const char *k = a->argv[keys[i]];
		size_t kl = a->lens[keys[i]];
		struct dir *auth;
		char buf[1024];

		if (!(i < nfp ? sy_writers_conflict_fp(&g->writers, c->side, c->cookie, fps[i], now)
			      : sy_writers_conflict_at(&g->writers, &g->spec, c->side, c->cookie, s->db, k,
						       kl, now)))
			continue;
		auth = &g->d[(g->mirror & SY_CAPTURE_LEGACY) ? SY_DIR_FORWARD : SY_DIR_REVERSE];
		if (auth->dir == SY_DIR_FORWARD && c->side == SY_SIDE_TARGET)
			kl = sy_key_map(&g->spec, SY_SIDE_TARGET, k, kl, buf, sizeof(buf), &k);
		auth->st.conflicts++;
		mark_dirty(auth, s->db, k, kl, CONFLICT_SETTLE_MS);
	}
}

#define KEYS_INLINE 16 /* key positions of a command with this many arguments: on the stack */

void sy_mirror_on_captured(const struct sy_captured *c, void *arg)
{
	struct sy_mirror *m = arg;
	const struct sy_migration_state *ms;
	const struct sy_command *cmd;
	struct mig *g;
	struct dir *d;
	struct sy_client *s;
	struct sy_argv a;
	int keys_s[KEYS_INLINE], *keys = NULL, nkeys = 0, nfp = 0, e;
	uint64_t fps[KEYS_INLINE];
	size_t nlen;

	if (c->type != SY_EVT_WRITE || !(ms = seen_of(m, c->mig_id)))
		return;
	g = &m->migs[c->mig_id];
	sync_mig(m, g, ms);
	d = &g->d[c->side == SY_SIDE_LEGACY ? SY_DIR_FORWARD : SY_DIR_REVERSE];
	if (!(g->mirror & (c->side == SY_SIDE_LEGACY ? SY_CAPTURE_LEGACY : SY_CAPTURE_TARGET)))
		return; /* captured before mirroring of this side was turned off */
	s = src_of(g, c->cookie);
	if (!s)
		return;
	if (c->aborted) {
		flag_audit(d, "a captured command was lost by the kernel parser");
		if (s->in_multi)
			s->txn_bad = true;
		return;
	}
	nlen = strnlen(c->name, SY_CMD_NAME_MAX);
	cmd = c->cmd;
	if (!cmd)
		return;
	if (txn_command(d, s, cmd, c))
		return;
	e = (c->truncated ? sy_argv_parse_prefix : sy_argv_parse)(&a, c->name, nlen, c->body, c->len, c->argc,
								  c->is_inline);
	if (e) {
		sy_argv_free(&a);
		flag_audit(d, c->truncated ? "a truncated write's keys are unknown"
					   : "a captured write did not parse");
		if (s->in_multi)
			s->txn_bad = true;
		return;
	}
	if (cmd->flags & SY_CMDF_SELECT) {
		if (a.argc == 2 && a.lens[1] > 0 && a.lens[1] < 6) {
			char n[8];

			memcpy(n, a.argv[1], a.lens[1]);
			n[a.lens[1]] = 0;
			s->db = atoi(n);
		}
		sy_argv_free(&a);
		return;
	}
	if (cmd->flags & SY_CMDF_ADMIN) {
		flag_audit(d, "an administrative write (FLUSHDB, SWAPDB, …) cannot be mirrored");
		sy_argv_free(&a);
		return;
	}
	keys = a.argc <= KEYS_INLINE ? keys_s : malloc((size_t)a.argc * sizeof(int));
	nkeys = keys ? sy_command_keys(cmd, a.argc, (const char *const *)a.argv, a.lens, keys, a.argc)
		     : -ENOMEM;
	if (nkeys < 0) {
		/* a truncated command may have lost its later keys: its first ones still count */
		if (c->truncated && cmd->first > 0 && cmd->first < a.argc &&
		    !(cmd->flags & SY_CMDF_NUMKEYS)) {
			keys[0] = cmd->first;
			nkeys = 1;
		}
		if (nkeys < 0) {
			flag_audit(d, "a write's keys could not be found");
			if (keys != keys_s)
				free(keys);
			sy_argv_free(&a);
			return;
		}
		if (c->truncated)
			flag_audit(d, "a truncated write may have more keys than were captured");
	}
	if (c->truncated && (uint32_t)a.argc < c->argc &&
	    (cmd->last < 0 || cmd->last >= a.argc || (cmd->flags & (SY_CMDF_NUMKEYS | SY_CMDF_STREAMS))))
		flag_audit(d, "a truncated write may have more keys than were captured");
	if (nkeys > 0 && !sy_key_in_scope(&g->spec, c->side, a.argv[keys[0]], a.lens[keys[0]])) {
		/* outside the migration's scope (`scope:`): not migrated, by the first key as
		 * the kernel sees it */
		d->st.out_of_scope++;
		if (keys != keys_s)
			free(keys);
		sy_argv_free(&a);
		return;
	}
	/* the writers' lookups start here and finish after the replay is queued, which
	 * hides most of their memory miss */
	nfp = nkeys < KEYS_INLINE ? nkeys : KEYS_INLINE;
	for (int i = 0; i < nfp; i++)
		fps[i] = sy_writers_touch(&g->writers, &g->spec, c->side, s->db, a.argv[keys[i]],
					  a.lens[keys[i]]);
	if ((cmd->flags & SY_CMDF_NONDET) &&
	    (strncmp(cmd->name, "EVAL", 4) == 0 || strcmp(cmd->name, "FCALL") == 0))
		/* a script's declared keys are copied below; nothing names the keys it
		 * may write without declaring them */
		flag_audit(d, "a script (EVAL, EVALSHA, FCALL) may write keys it did not declare");
	if (c->truncated || (cmd->flags & SY_CMDF_NONDET)) {
		/* not replayable exactly: copy the result instead */
		for (int i = 0; i < nkeys; i++)
			mark_dirty(d, s->db, a.argv[keys[i]], a.lens[keys[i]], SETTLE_MS);
		if (s->in_multi)
			s->txn_bad = true;
	} else if (s->in_multi) {
		if (sy_client_txn_add(s, &a, keys, nkeys))
			s->txn_bad = true;
	} else {
		replay(d, s, &a, c, keys, nkeys);
	}
	note_writers(g, c, s, &a, keys, nkeys, fps, nfp);
	if (keys != keys_s)
		free(keys);
	sy_argv_free(&a);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static void dir_stop(struct dir *d)
{
	struct sy_loop *l = d->mig->m->loop;

	for (int i = 0; i < 2; i++) {
		struct dconn *dc = i ? &d->src : &d->dst;

		sy_loop_cancel_timer(l, dc->retry_timer);
		dc->retry_timer = 0;
		sy_redis_free(dc->r); /* pending replies run with NULL: their keys go dirty */
		dc->r = NULL;
	}
	sy_repair_stop(&d->rep);
}

static void mig_stop(struct mig *g)
{
	g->active = false;
	for (int k = 0; k < 2; k++)
		dir_stop(&g->d[k]);
	for (int k = 0; k < 2; k++) {
		sy_repair_free(&g->d[k].rep);
		memset(&g->d[k].st, 0, sizeof(g->d[k].st));
		g->d[k].inflight = 0;
	}
	sy_clients_free(&g->clients);
	sy_writers_free(&g->writers);
}

/* Follows the registry: a new migration in the slot, new endpoints or rewrite rules. */
static void sync_mig(struct sy_mirror *m, struct mig *g, const struct sy_migration_state *ms)
{
	bool same = g->active && strcmp(g->name, ms->spec.name) == 0 && g->created_ms == ms->created_unix_ms;

	if (same && g->updated_ms == ms->updated_unix_ms)
		return; /* the common case: one compare per captured command */
	if (same && memcmp(&g->spec.legacy[0], &ms->spec.legacy[0], sizeof(struct sy_endpoint)) == 0 &&
	    memcmp(&g->spec.target[0], &ms->spec.target[0], sizeof(struct sy_endpoint)) == 0) {
		/* the spec's other fields (mode, rewrite, queue) apply from now on */
		g->spec = ms->spec;
		g->spec.pins = NULL;
		g->spec.n_pins = 0;
		g->mirror = sy_mirror_effective(&ms->spec);
		g->xf = sy_xf_of(&g->spec);
		g->updated_ms = ms->updated_unix_ms;
		return;
	}
	if (g->active && same) {
		/* endpoints changed: reconnect, keep counters and dirty keys */
		for (int k = 0; k < 2; k++)
			dir_stop(&g->d[k]);
	} else if (g->active) {
		mig_stop(g);
	}
	g->m = m;
	g->id = ms->id;
	snprintf(g->name, sizeof(g->name), "%s", ms->spec.name);
	g->created_ms = ms->created_unix_ms;
	g->updated_ms = ms->updated_unix_ms;
	g->spec = ms->spec;
	g->spec.pins = NULL;
	g->spec.n_pins = 0;
	g->mirror = sy_mirror_effective(&ms->spec);
	g->xf = sy_xf_of(&g->spec);
	g->active = true;
	{
		struct sy_side_stats st[2];

		g->ev_lost = 0;
		if (sy_mapsync_side_stats(m->bpf, g->id, SY_SIDE_LEGACY, &st[0]) == 0 &&
		    sy_mapsync_side_stats(m->bpf, g->id, SY_SIDE_TARGET, &st[1]) == 0)
			g->ev_lost = st[0].ev_lost + st[1].ev_lost; /* only new losses count */
	}
	for (int k = 0; k < 2; k++) {
		struct dir *d = &g->d[k];

		d->mig = g;
		d->dir = k;
		d->src.d = d;
		d->src.is_src = true;
		conn_open(&d->src);
		d->dst.d = d;
		d->dst.is_src = false;
		conn_open(&d->dst);
	}
}

/* Writes the kernel could not hand over (ring buffer full) are unknown to repair. */
static void check_lost(struct sy_loop *l, void *arg)
{
	struct sy_mirror *m = arg;

	for (uint32_t id = 1; id < SY_MAX_MIGRATIONS; id++) {
		struct mig *g = &m->migs[id];
		struct sy_side_stats st[2];
		uint64_t lost;

		if (!g->active)
			continue;
		if (sy_mapsync_side_stats(m->bpf, g->id, SY_SIDE_LEGACY, &st[0]) ||
		    sy_mapsync_side_stats(m->bpf, g->id, SY_SIDE_TARGET, &st[1]))
			continue;
		lost = st[0].ev_lost + st[1].ev_lost;
		if (lost > g->ev_lost)
			for (int k = 0; k < 2; k++)
				flag_audit(&g->d[k],
					   "the kernel's ring buffer overflowed: captured writes were lost");
		g->ev_lost = lost;
	}
	m->check_timer = sy_loop_add_timer(l, 1000, check_lost, m);
}

/* Registry subscriber: keeps each slot's copy for the captured-command path, brings
 * running slots up to date, and stops those whose migration is gone or replaced (a new
 * one starts on its first captured write, as before). */
static void slot_committed(void *ctx, uint32_t id, const struct sy_migration_state *cur)
{
	struct sy_mirror *m = ctx;
	struct mig *g = &m->migs[id];

	if (!g->active)
		return;
	if (!cur || strcmp(g->name, cur->spec.name) != 0 || g->created_ms != cur->created_unix_ms)
		mig_stop(g);
	else
		sync_mig(m, g, cur);
}

static void on_commit(void *ctx, const struct sy_commit *c)
{
	struct sy_mirror *m = ctx;

	sy_commit_walk(c, m->seen, slot_committed, m);
}

struct sy_mirror *sy_mirror_new(struct sy_loop *l, struct sy_registry *reg)
{
	struct sy_mirror *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->loop = l;
	m->reg = reg;
	m->bpf = sy_registry_bpf(reg);
	if (sy_registry_subscribe(reg, "mirror", on_commit, m)) {
		free(m);
		return NULL;
	}
	m->check_timer = sy_loop_add_timer(l, 1000, check_lost, m);
	return m;
}

void sy_mirror_free(struct sy_mirror *m)
{
	if (!m)
		return;
	sy_registry_unsubscribe(m->reg, on_commit, m);
	sy_loop_cancel_timer(m->loop, m->check_timer);
	for (int i = 0; i < SY_MAX_MIGRATIONS; i++)
		if (m->migs[i].active)
			mig_stop(&m->migs[i]);
	sy_pending_pool_free(&m->pool);
	free(m);
}

void sy_mirror_stats(const struct sy_mirror *m, uint32_t mig_id, int dir, struct sy_mirror_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!m || mig_id >= SY_MAX_MIGRATIONS || dir < 0 || dir > 1 || !m->migs[mig_id].active)
		return;
	*out = m->migs[mig_id].d[dir].st;
	out->queued = m->migs[mig_id].d[dir].inflight;
	out->dirty = sy_repair_backlog(&m->migs[mig_id].d[dir].rep);
}

void sy_mirror_flag_audit(struct sy_mirror *m, uint32_t mig_id, const char *why)
{
	const struct sy_migration_state *ms;

	if (!m || !(ms = seen_of(m, mig_id)))
		return;
	sync_mig(m, &m->migs[mig_id], ms);
	for (int k = 0; k < 2; k++)
		flag_audit(&m->migs[mig_id].d[k], why);
}

int sy_mirror_repair_key(struct sy_mirror *m, uint32_t mig_id, int dir, int db, const char *key, size_t len)
{
	const struct sy_migration_state *ms;

	if (!m || dir < 0 || dir > 1 || !(ms = seen_of(m, mig_id)))
		return -ENOENT;
	sync_mig(m, &m->migs[mig_id], ms);
	mark_dirty(&m->migs[mig_id].d[dir], db, key, len, 0);
	return 0;
}

void sy_mirror_note_copy(struct sy_mirror *m, uint32_t mig_id, int db, const char *key, size_t len)
{
	const struct sy_migration_state *ms;
	struct mig *g;

	if (!m || !(ms = seen_of(m, mig_id)))
		return;
	g = &m->migs[mig_id];
	sync_mig(m, g, ms);
	/* a write just before may still be on its way to the other side, where it would
	 * land on top of the copy (twice, for an INCR): copy again once it landed */
	if (sy_writers_mark_hot(&g->writers, &g->spec, SY_SIDE_LEGACY, db, key, len) > 0)
		mark_dirty(&g->d[SY_DIR_FORWARD], db, key, len, CONFLICT_SETTLE_MS);
}

bool sy_mirror_key_busy(struct sy_mirror *m, uint32_t mig_id, int db, const char *key, size_t len,
			uint64_t window_ms)
{
	uint64_t last;
	struct mig *g;

	if (!m || mig_id >= SY_MAX_MIGRATIONS || !(g = &m->migs[mig_id])->active)
		return false;
	/* under load replays lag: a write that old may not have landed yet */
	for (int k = 0; k < 2; k++) {
		uint64_t lag =
			g->d[k].lag_cur_ms > g->d[k].lag_prev_ms ? g->d[k].lag_cur_ms : g->d[k].lag_prev_ms;

		if (g->d[k].inflight)
			lag += 1000;
		window_ms += lag;
	}
	last = sy_writers_last_ms(&g->writers, db, key, len);
	if (last && sy_now_ms() - last <= window_ms)
		return true;
	for (int k = 0; k < 2; k++) {
		struct dir *d = &g->d[k];
		char buf[1024];
		const char *dk = key;
		size_t dl = len;

		if (d->rep.inflight)
			return true; /* cheap and safe: while repairs run, wait */
		if (!d->rep.tab)
			continue;
		if (k == SY_DIR_REVERSE)
			dl = sy_key_map(&g->spec, SY_SIDE_LEGACY, key, len, buf, sizeof(buf), &dk);
		if (sy_repair_has(&d->rep, db, dk, dl))
			return true;
	}
	return false;
}

uint64_t sy_mirror_backlog(const struct sy_mirror *m)
{
	uint64_t n = 0;

	for (int i = 0; m && i < SY_MAX_MIGRATIONS; i++)
		for (int k = 0; k < 2; k++)
			if (m->migs[i].active)
				n += m->migs[i].d[k].inflight + sy_repair_backlog(&m->migs[i].d[k].rep);
	return n;
}
