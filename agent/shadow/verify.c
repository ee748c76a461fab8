// SPDX-License-Identifier: Apache-2.0
/* verify.c — see verify.h and docs/verify.md: the audit, dual reads, their waiting
 * queue and connections; what "equal" means is compare.c, the backfill backfill.c. */
#include "shadow/verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <time.h>
#include <sys/queue.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "model/endpoint.h"
#include "model/keymap.h"
#include "registry/registry.h"
#include "shadow/backfill.h"
#include "shadow/compare.h"
#include "shadow/transform_audit.h"
#include "shadow/transform_copy.h"
#include "shadow/jobs.h"
#include "shadow/mirror.h"
#include "shadow/verify_state.h"
#include "redis/redis_conn.h"

#define FIRST_LOOK_MS  100  /* a sampled read is compared this long after it was captured */
#define RECHECK_MS     1000 /* a difference is looked at again this long after */
#define SCAN_COUNT     200
#define MAX_INFLIGHT   256
#define DUAL_QUEUE_MAX 10000

/* ---- connections ------------------------------------------------------------------------ */

static void conn_state(struct sy_redis *c, bool up, const char *why, void *arg);

static void reconnect(struct sy_loop *l, void *arg)
{
	struct vmig *g = arg;

	(void)l;
	g->reconnect_timer = 0;
	for (int s = 0; s < 2; s++) {
		if (g->conn[s] && sy_redis_alive(g->conn[s]))
			continue;
		sy_redis_free(g->conn[s]);
		g->conn_db[s] = 0;
		g->conn[s] =
			g->active ? sy_redis_connect(g->v->loop, s ? &g->spec.target[0] : &g->spec.legacy[0],
						     &g->spec.auth[s ? SY_SIDE_TARGET : SY_SIDE_LEGACY],
						     conn_state, g)
				  : NULL;
	}
}

static void conn_state(struct sy_redis *c, bool up, const char *why, void *arg)
{
	struct vmig *g = arg;

	(void)c;
	if (up)
		return;
	sy_warn("verify", "%s: connection lost: %s", g->name, why);
	if (!g->reconnect_timer)
		g->reconnect_timer = sy_loop_add_timer(g->v->loop, 200, reconnect, g);
}

/* ---- comparing one key ------------------------------------------------------------------ */

static void cmp_send(struct cmp *k);
static void queue_push(struct vmig *g, struct cmp *k, uint64_t delay);
static void audit_step(struct sy_loop *l, void *arg);

static void add_drift(struct vmig *g, int kind, int db, const char *key, size_t len)
{
	struct audit *a = &g->a;

	a->counts[kind]++;
	g->audit_found++;
	if (a->n_drift < SY_AUDIT_REPORT_MAX) {
		struct sy_drift_entry *e;

		if (!a->drift && !(a->drift = calloc(SY_AUDIT_REPORT_MAX, sizeof(*a->drift))))
			return;
		e = &a->drift[a->n_drift];
		e->key = malloc(len ? len : 1);
		if (!e->key)
			return;
		memcpy(e->key, key, len);
		e->len = len;
		e->kind = (uint8_t)kind;
		e->db = (uint8_t)db;
		a->n_drift++;
	}
}

static void cmp_free(struct cmp *k)
{
	free(k->via);
	free(k);
}

/* A drifted key found by the audit is copied again from legacy, which deletes a key
 * legacy lacks; an extra found through reverse_key goes through the legacy key that
 * deletes it, or is deleted on target when there is none (transform_audit.h). */
static int repair_audited(struct vmig *g, const struct cmp *k, int kind)
{
	if (kind != SY_DRIFT_EXTRA || !g->xf || k->via)
		return sy_mirror_repair_key(g->v->mirror, g->id, SY_DIR_FORWARD, k->db,
					    k->via ? k->via : k->key, k->via ? k->via_len : k->len);
	return sy_job_del(g->conn[1], &g->conn_db[1], k->db, k->key, k->len);
}

static void cmp_done(struct cmp *k)
{
	struct vmig *g = k->g;
	int kind = k->look[0].ok && k->look[1].ok ? sy_look_classify(&k->look[0], &k->look[1]) : -1;
	uint8_t purpose;

	if (kind < 0) {
		/* a side did not answer: look again later, never call it drift */
		if (k->attempt < 3) {
			k->attempt++;
			queue_push(g, k, RECHECK_MS);
			return;
		}
		if (k->purpose != P_DUAL && !g->a.error[0])
			snprintf(g->a.error, sizeof(g->a.error), "some keys could not be read on both sides");
		kind = SY_DRIFT_NONE;
	}
	/* the target scan only looks for keys legacy lacks; through a transform only when it
	 * has reverse_key (its target keys need not be named as legacy's) */
	if (k->purpose == P_AUDIT_TARGET &&
	    (kind != SY_DRIFT_EXTRA || (g->xf && !sy_xf_has(g->xf, SY_TF_REVERSE_KEY))))
		kind = SY_DRIFT_NONE;
	if (kind != SY_DRIFT_NONE && k->attempt == 0) {
		/* maybe a write in flight through the mirror: look again after it settles */
		if (k->purpose == P_DUAL)
			g->dual_rechecked++;
		k->attempt = 1;
		queue_push(g, k, RECHECK_MS);
		return;
	}
	if (kind != SY_DRIFT_NONE &&
	    sy_mirror_key_busy(g->v->mirror, g->id, k->db, k->key, k->len, 2 * RECHECK_MS)) {
		/* still being written or repaired: not a verdict yet. A key that never
		 * settles is counted as unsettled, never as drift. */
		if (k->attempt < 8) {
			k->attempt++;
			queue_push(g, k, RECHECK_MS);
			return;
		}
		g->unsettled++;
		kind = SY_DRIFT_NONE;
	}
	if (k->purpose == P_DUAL) {
		g->dual_checked++;
		if (kind != SY_DRIFT_NONE) {
			g->dual_drift++;
			if (g->spec.auto_repair && sy_mirror_repair_key(g->v->mirror, g->id, SY_DIR_FORWARD,
									k->db, k->key, k->len) == 0)
				g->dual_repaired++;
		}
	} else {
		g->a.inflight--;
		if (kind != SY_DRIFT_NONE) {
			char buf[1024];
			const char *rk = k->key;
			size_t rl = k->len;

			/* a key only target has is reported as target names it */
			if (kind == SY_DRIFT_EXTRA)
				rl = sy_key_map(&g->spec, SY_SIDE_LEGACY, k->key, k->len, buf, sizeof(buf),
						&rk);
			add_drift(g, kind, k->db, rk, rl);
			if ((g->a.repair || g->spec.auto_repair) && repair_audited(g, k, kind) == 0)
				g->audit_repaired++, g->a.repaired++;
		}
	}
	purpose = k->purpose;
	cmp_free(k);
	if (purpose != P_DUAL && !g->step_timer)
		g->step_timer = sy_loop_add_timer(g->v->loop, 0, audit_step, g);
}

static void on_look(struct sy_redis *c, redisReply *r, void *priv)
{
	struct cmp *k = priv;
	int side = c == k->g->conn[1];

	if (side == 1 && k->purpose == P_AUDIT_TARGET && k->attempt == 0 && k->g->spec.version_field[0])
		sy_versions_add(&k->g->a.versions, r, k->g->spec.version_field);
	sy_look_of(r, &k->look[side]);
	if (++k->got == 2)
		cmp_done(k);
}

/* Brings connection `side` to database `db` first (shared with the backfill, which
 * sends on the legacy connection too). */
static int use_db(struct vmig *g, int side, int db)
{
	return sy_job_select(g->conn[side], &g->conn_db[side], db);
}

static void on_tcmp(void *priv, const struct sy_look *l, const struct sy_look *t)
{
	struct cmp *k = priv;

	k->look[0] = *l;
	k->look[1] = *t;
	cmp_done(k);
}

static void on_textra(void *priv, const struct sy_look *l, const struct sy_look *t, const char *via,
		      size_t via_len)
{
	struct cmp *k = priv;

	free(k->via);
	k->via = via ? malloc(via_len ? via_len : 1) : NULL;
	if (k->via)
		memcpy(k->via, via, via_len);
	k->via_len = via_len;
	on_tcmp(k, l, t);
}

static void cmp_send(struct cmp *k)
{
	struct vmig *g = k->g;
	char buf[1024];
	const char *tk;
	size_t tl = sy_key_map(&g->spec, SY_SIDE_LEGACY, k->key, k->len, buf, sizeof(buf), &tk);

	k->got = 0;
	memset(k->look, 0, sizeof(k->look));
	if (g->xf && k->purpose != P_AUDIT_TARGET) { /* through forward_key (transform_audit.c) */
		if (use_db(g, 0, k->db) || use_db(g, 1, k->db) ||
		    sy_tcmp_send(g->xf, g->conn[0], g->conn[1], k->key, k->len, on_tcmp, k))
			cmp_done(k); /* looks not ok: unanswered */
		return;
	}
	if (g->xf && sy_xf_has(g->xf, SY_TF_REVERSE_KEY)) { /* extra keys through reverse_key */
		if (use_db(g, 0, k->db) || use_db(g, 1, k->db) ||
		    sy_textra_send(g->xf, g->conn[0], g->conn[1], k->key, k->len,
				   k->attempt == 0 ? g->spec.version_field : NULL, &g->a.versions, on_textra,
				   k))
			cmp_done(k);
		return;
	}
	if (!sy_redis_alive(g->conn[0]) || use_db(g, 0, k->db) ||
	    sy_look_send(g->conn[0], k->key, k->len, on_look, k))
		k->got++; /* that side counts as unanswered */
	if (!sy_redis_alive(g->conn[1]) || use_db(g, 1, k->db) ||
	    sy_look_send(g->conn[1], tk, tl, on_look, k))
		k->got++;
	if (k->got == 2)
		cmp_done(k);
}

static struct cmp *cmp_new(struct vmig *g, int purpose, const char *key, size_t len)
{
	struct cmp *k = calloc(1, sizeof(*k) + len);

	if (!k)
		return NULL;
	k->g = g;
	k->purpose = (uint8_t)purpose;
	k->len = len;
	memcpy(k->key, key, len);
	return k;
}

/* ---- the waiting queue (first looks of sampled reads, re-checks) --------------------------- */

static void queue_run(struct sy_loop *l, void *arg)
{
	struct vmig *g = arg;
	uint64_t now = sy_now_ms();
	struct cmp *k;

	(void)l;
	g->q_timer = 0;
	while ((k = STAILQ_FIRST(&g->q)) && k->due_ms <= now) {
		STAILQ_REMOVE_HEAD(&g->q, link);
		g->q_len--;
		cmp_send(k);
	}
	if ((k = STAILQ_FIRST(&g->q)))
		g->q_timer = sy_loop_add_timer(g->v->loop, k->due_ms - now, queue_run, g);
}

/* Delays are constant per kind of entry, so appending keeps the queue in due order
 * except between the two kinds; a late entry only waits a little longer. */
static void queue_push(struct vmig *g, struct cmp *k, uint64_t delay)
{
	k->due_ms = sy_now_ms() + delay;
	if (STAILQ_EMPTY(&g->q))
		STAILQ_INIT(&g->q); /* a new migration's state is zeroed */
	STAILQ_INSERT_TAIL(&g->q, k, link);
	g->q_len++;
	if (!g->q_timer)
		g->q_timer = sy_loop_add_timer(g->v->loop, delay, queue_run, g);
}

/* ---- the audit's scans --------------------------------------------------------------------- */

static void audit_save(struct vmig *g);
static void audit_again(struct sy_loop *l, void *arg);

static void audit_finish(struct vmig *g, enum sy_job_state state)
{
	g->a.state = state;
	g->a.finished_ms = sy_unix_ms();
	if (state == SY_JOB_DONE) {
		g->outside_last = g->a.outside_legacy;
		g->outside_last_ok = true;
	}
	audit_save(g);
	if (g->spec.audit_every && g->active)
		g->again_timer =
			sy_loop_add_timer(g->v->loop, (uint64_t)g->spec.audit_every * 1000, audit_again, g);
	sy_info("verify",
		"%s: audit %s: %llu keys scanned, %llu missing, %llu extra, %llu type, %llu value, %llu ttl",
		g->name, sy_job_state_name(state), (unsigned long long)g->a.scanned,
		(unsigned long long)g->a.counts[SY_DRIFT_MISSING],
		(unsigned long long)g->a.counts[SY_DRIFT_EXTRA],
		(unsigned long long)g->a.counts[SY_DRIFT_TYPE],
		(unsigned long long)g->a.counts[SY_DRIFT_VALUE],
		(unsigned long long)g->a.counts[SY_DRIFT_TTL]);
}

static void on_scan(struct sy_redis *c, redisReply *r, void *priv)
{
	struct vmig *g = priv;
	struct audit *a = &g->a;
	redisReply *keys;

	(void)c;
	a->scan_pending = false;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
		snprintf(a->error, sizeof(a->error), "SCAN failed: %s",
			 r && r->type == REDIS_REPLY_ERROR ? r->str : "connection lost");
		audit_finish(g, SY_JOB_FAILED);
		return;
	}
	snprintf(a->cursor, sizeof(a->cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
	keys = r->element[1];
	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *kr = keys->element[i];
		struct cmp *k;
		char buf[1024];
		const char *lk = kr->str;
		size_t ll = kr->len;

		if (kr->type != REDIS_REPLY_STRING)
			continue;
		if (!sy_key_in_scope(&g->spec, a->phase, kr->str, kr->len)) {
			a->outside++;
			a->outside_legacy += a->phase == 0;
			continue;
		}
		a->scanned++;
		g->audit_checked++;
		if (a->phase == 1)
			ll = sy_key_map(&g->spec, SY_SIDE_TARGET, kr->str, kr->len, buf, sizeof(buf), &lk);
		k = cmp_new(g, a->phase == 0 ? P_AUDIT_LEGACY : P_AUDIT_TARGET, lk, ll);
		if (!k)
			continue;
		k->db = (uint8_t)a->db;
		a->inflight++;
		cmp_send(k);
	}
	if (strcmp(a->cursor, "0") == 0) {
		/* this side is done: the other side next, then the next database with keys on
		 * either side (INFO keyspace at the start; its answers came before any SCAN's) */
		strcpy(a->cursor, "0");
		if (++a->phase == 2 && sy_job_next_db(a->ks.dbs, a->db) >= 0) {
			a->db = sy_job_next_db(a->ks.dbs, a->db);
			a->phase = 0;
		}
	}
	if (!g->step_timer)
		g->step_timer = sy_loop_add_timer(g->v->loop, 0, audit_step, g);
}

static void audit_step(struct sy_loop *l, void *arg)
{
	struct vmig *g = arg;
	struct audit *a = &g->a;
	uint64_t elapsed, allowed;
	char count[16];
	int side;

	(void)l;
	g->step_timer = 0;
	if (!g->active || a->state != SY_JOB_RUNNING)
		return;
	if (a->phase >= 2) {
		if (a->inflight == 0)
			audit_finish(g, SY_JOB_DONE);
		return;
	}
	if (a->scan_pending || a->inflight >= MAX_INFLIGHT)
		return; /* a reply will step again */
	if (a->inflight == 0)
		audit_save(g); /* a consistent place: everything before it is counted */
	elapsed = sy_now_ms() - a->t0_mono;
	allowed = elapsed * a->rate / 1000 + SCAN_COUNT;
	if (a->scanned >= allowed) {
		g->step_timer = sy_loop_add_timer(g->v->loop, (a->scanned - allowed) * 1000 / a->rate + 1,
						  audit_step, g);
		return;
	}
	side = a->phase;
	if (!sy_redis_alive(g->conn[side])) {
		g->step_timer = sy_loop_add_timer(g->v->loop, 200, audit_step, g);
		return;
	}
	snprintf(count, sizeof(count), "%d", SCAN_COUNT);
	if (use_db(g, side, a->db) == 0 &&
	    sy_job_scan(g->conn[side], &g->spec, side, a->pattern, a->cursor, count, on_scan, g) == 0)
		a->scan_pending = true;
	else
		g->step_timer = sy_loop_add_timer(g->v->loop, 200, audit_step, g);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void audit_clear(struct audit *a)
{
	for (size_t i = 0; i < a->n_drift; i++)
		free(a->drift[i].key);
	free(a->drift);
	memset(a, 0, sizeof(*a));
	a->state = SY_JOB_IDLE;
}

static void queue_drop(struct vmig *g)
{
	struct cmp *k;

	while ((k = STAILQ_FIRST(&g->q))) {
		STAILQ_REMOVE_HEAD(&g->q, link);
		cmp_free(k);
	}
	g->q_len = 0;
}

static void vmig_stop(struct vmig *g)
{
	struct sy_loop *l = g->v->loop;

	g->active = false;
	sy_loop_cancel_timer(l, g->reconnect_timer);
	sy_loop_cancel_timer(l, g->q_timer);
	sy_loop_cancel_timer(l, g->step_timer);
	sy_backfill_stop(&g->b);
	sy_loop_cancel_timer(l, g->again_timer);
	g->reconnect_timer = g->q_timer = g->step_timer = g->again_timer = 0;
	/* pending compares are answered with NULL by the frees, and freed there */
	g->a.state = SY_JOB_FAILED;
	for (int s = 0; s < 2; s++) {
		sy_redis_free(g->conn[s]);
		g->conn[s] = NULL;
	}
	queue_drop(g);
	/* the frees above may have queued re-checks or steps: none may run now */
	sy_loop_cancel_timer(l, g->q_timer);
	sy_loop_cancel_timer(l, g->step_timer);
	g->q_timer = g->step_timer = 0;
	queue_drop(g);
	audit_clear(&g->a);
	g->dual_checked = g->dual_drift = g->dual_rechecked = g->unsettled = g->dual_repaired = 0;
}

static struct vmig *vmig_of(struct sy_verify *v, const struct sy_migration_state *ms)
{
	struct vmig *g = &v->migs[ms->id];

	if (g->active && strcmp(g->name, ms->spec.name) == 0 && g->created_ms == ms->created_unix_ms) {
		/* the endpoints it connects to moved (a host name's new addresses, an update):
		 * new connections; what was in flight on the old ones ends as unanswered */
		bool moved = !sy_endpoint_equal(&g->spec.legacy[0], &ms->spec.legacy[0]) ||
			     !sy_endpoint_equal(&g->spec.target[0], &ms->spec.target[0]);

		g->spec = ms->spec;
		g->spec.pins = NULL;
		g->spec.n_pins = 0;
		for (int s = 0; moved && s < 2; s++) {
			struct sy_redis *old = g->conn[s];

			g->conn[s] = NULL;
			g->conn_db[s] = 0;
			sy_redis_free(old);
		}
		if (moved)
			reconnect(v->loop, g);
		g->xf = sy_xf_of(&g->spec);
		return g;
	}
	if (g->active)
		vmig_stop(g);
	memset(g, 0, sizeof(*g));
	g->v = v;
	g->id = ms->id;
	snprintf(g->name, sizeof(g->name), "%s", ms->spec.name);
	g->created_ms = ms->created_unix_ms;
	g->spec = ms->spec;
	g->spec.pins = NULL;
	g->spec.n_pins = 0;
	g->xf = sy_xf_of(&g->spec);
	g->active = true;
	g->a.state = SY_JOB_IDLE;
	reconnect(v->loop, g);
	return g;
}

/* The migration's verification state if it has any, without connecting anything. */
static struct vmig *vmig_peek(struct sy_verify *v, const struct sy_migration_state *ms)
{
	struct vmig *g = &v->migs[ms->id];

	return g->active && strcmp(g->name, ms->spec.name) == 0 && g->created_ms == ms->created_unix_ms
		       ? g
		       : NULL;
}

/* Registry subscriber: keeps each slot's copy for the sampled-read path; a running
 * slot takes the new spec at once, and stops when its migration is gone or replaced. */
static void slot_committed(void *ctx, uint32_t id, const struct sy_migration_state *cur)
{
	struct sy_verify *v = ctx;
	struct vmig *g = &v->migs[id];

	if (g->active && cur && vmig_peek(v, cur))
		vmig_of(v, cur); /* the same migration: its spec only */
	else if (g->active)
		vmig_stop(g);
}

static void on_commit(void *ctx, const struct sy_commit *c)
{
	struct sy_verify *v = ctx;

	sy_commit_walk(c, v->seen, slot_committed, v);
}

struct sy_verify *sy_verify_new(struct sy_loop *l, struct sy_registry *reg, struct sy_mirror *mirror,
				const char *state_dir)
{
	struct sy_verify *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	snprintf(v->state_dir, sizeof(v->state_dir), "%s", state_dir);
	v->loop = l;
	v->reg = reg;
	v->mirror = mirror;
	if (sy_registry_subscribe(reg, "verify", on_commit, v)) {
		free(v);
		return NULL;
	}
	return v;
}

void sy_verify_free(struct sy_verify *v)
{
	if (!v)
		return;
	sy_registry_unsubscribe(v->reg, on_commit, v);
	for (int i = 0; i < SY_MAX_MIGRATIONS; i++)
		if (v->migs[i].active)
			vmig_stop(&v->migs[i]);
	free(v);
}

int sy_verify_start_audit(struct sy_verify *v, const char *name, bool repair, uint32_t keys_per_s)
{
	const struct sy_migration_state *ms = sy_registry_find(v->reg, name);
	struct vmig *g;

	if (!ms)
		return -ENOENT;
	g = vmig_of(v, ms);
	if (g->a.state == SY_JOB_RUNNING)
		return -EBUSY;
	audit_clear(&g->a);
	g->a.state = SY_JOB_RUNNING;
	g->a.repair = repair;
	g->a.rate = keys_per_s ? keys_per_s : 5000;
	strcpy(g->a.cursor, "0");
	g->a.pattern = SY_JOB_WHOLE;
	g->a.started_ms = sy_unix_ms();
	g->a.t0_mono = sy_now_ms();
	/* every database with keys on either side is audited, database 0 always */
	g->a.ks.dbs = 1;
	for (int s = 0; s < 2; s++)
		if (sy_redis_alive(g->conn[s]))
			sy_job_keyspace(g->conn[s], &g->a.ks);
	sy_info("verify", "%s: audit started (%u keys/s%s)", name, g->a.rate, repair ? ", repairing" : "");
	g->step_timer = sy_loop_add_timer(v->loop, 0, audit_step, g);
	return 0;
}

/* The verification state of migration name (NULL: nothing ever ran), or -ENOENT. Zeroed
 * job state reads as idle, with no error. */
static int job_of(struct sy_verify *v, const char *name, struct vmig **g)
{
	const struct sy_migration_state *ms = sy_registry_find(v->reg, name);

	if (!ms)
		return -ENOENT;
	*g = vmig_peek(v, ms);
	return 0;
}

int sy_verify_status(struct sy_verify *v, const char *name, struct sy_audit_status *out)
{
	struct vmig *g;
	struct audit *a;
	double secs;
	int e;

	memset(out, 0, sizeof(*out));
	out->error = "";
	if ((e = job_of(v, name, &g)) || !g)
		return e;
	a = &g->a;
	out->state = a->state;
	out->scanned = a->scanned;
	out->total = a->ks.keys > a->scanned ? a->ks.keys : a->scanned;
	if (g->spec.n_scope) {
		/* DBSIZE counts every key: in scope, the share seen in scope so far, and none
		 * (unknown) before the first keys are seen; exact once done */
		uint64_t seen = a->scanned + a->outside;

		out->total = a->state != SY_JOB_RUNNING ? a->scanned
			     : seen			? (uint64_t)((double)a->ks.keys * a->scanned / seen)
							: 0;
		if (a->state == SY_JOB_RUNNING && out->total < a->scanned)
			out->total = a->scanned;
	}
	out->outside_scope = a->outside_legacy;
	out->outside_scope_last = g->outside_last;
	out->outside_scope_last_ok = g->outside_last_ok;
	secs = a->started_ms
		       ? (double)((a->finished_ms ? a->finished_ms : sy_unix_ms()) - a->started_ms) / 1000.0
		       : 0;
	out->keys_per_s = secs > 0 ? (double)a->scanned / secs : 0;
	out->eta_s = a->state == SY_JOB_RUNNING && out->keys_per_s > 0 && out->total
			     ? (double)(out->total - out->scanned) / out->keys_per_s
			     : 0;
	memcpy(out->counts, a->counts, sizeof(out->counts));
	out->repaired = a->repaired;
	out->started_unix_ms = a->started_ms;
	out->finished_unix_ms = a->finished_ms;
	out->error = a->error;
	out->drift = a->drift;
	out->n_drift = a->n_drift;
	out->dual_checked = g->dual_checked;
	out->dual_drift = g->dual_drift;
	out->dual_rechecked = g->dual_rechecked;
	out->unsettled = g->unsettled;
	out->dual_repaired = g->dual_repaired;
	out->audit_checked = g->audit_checked;
	out->audit_found = g->audit_found;
	out->audit_repaired = g->audit_repaired;
	out->versions = g->spec.version_field[0] ? &a->versions : NULL;
	out->has_transform = g->xf && sy_xf_stats(g->name, &out->transform);
	out->transform_script = g->spec.transform.script;
	return 0;
}

void sy_verify_on_captured(const struct sy_captured *c, void *arg)
{
	struct sy_verify *v = arg;
	const struct sy_migration_state *ms;
	struct vmig *g;
	struct cmp *k;
	char buf[1024];
	const char *lk;
	size_t ll;

	if (c->type != SY_EVT_READ_KEY || c->mig_id >= SY_MAX_MIGRATIONS || c->truncated)
		return;
	ms = &v->seen[c->mig_id];
	if (!ms->id)
		return;
	g = vmig_of(v, ms);
	if (g->q_len >= DUAL_QUEUE_MAX)
		return; /* sampling is a sample: under load, fewer are compared */
	if (!sy_key_in_scope(&g->spec, c->side, (const char *)c->body, c->len))
		return; /* not migrated: nothing to compare */
	lk = (const char *)c->body;
	ll = c->len;
	if (c->side == SY_SIDE_TARGET)
		ll = sy_key_map(&g->spec, SY_SIDE_TARGET, (const char *)c->body, c->len, buf, sizeof(buf),
				&lk);
	k = cmp_new(g, P_DUAL, lk, ll);
	if (k)
		queue_push(g, k, FIRST_LOOK_MS);
}

/* ---- backfill (backfill.c) ------------------------------------------------------------------ */

/* The migration's backfill, bound to its state here (a new migration's is zeroed). */
static struct sy_backfill *bf_of(struct vmig *g)
{
	const struct sy_backfill_env env = {
		.loop = g->v->loop,
		.mirror = g->v->mirror,
		.state_dir = g->v->state_dir,
		.name = g->name,
		.id = g->id,
		.spec = &g->spec,
		.legacy = &g->conn[0],
		.legacy_db = &g->conn_db[0],
		.active = &g->active,
	};

	sy_backfill_bind(&g->b, &env);
	return &g->b;
}

int sy_verify_start_backfill(struct sy_verify *v, const char *name, uint32_t keys_per_s, uint64_t bytes_per_s)
{
	const struct sy_migration_state *ms = sy_registry_find(v->reg, name);

	if (!ms)
		return -ENOENT;
	return sy_backfill_start(bf_of(vmig_of(v, ms)), keys_per_s, bytes_per_s);
}

static void audit_resume(struct vmig *g);

void sy_verify_resume(struct sy_verify *v)
{
	for (size_t i = 0; i < sy_registry_count(v->reg); i++) {
		const struct sy_migration_state *ms = sy_registry_at(v->reg, i);
		char a_p[PATH_MAX + SY_NAME_MAX + 32], b_p[PATH_MAX + SY_NAME_MAX + 32];
		struct vmig *g;

		/* nothing to go on with: connect nothing */
		snprintf(a_p, sizeof(a_p), "%s/audit-%s.state", v->state_dir, ms->spec.name);
		sy_backfill_path(v->state_dir, ms->spec.name, b_p, sizeof(b_p));
		if (access(a_p, F_OK) != 0 && access(b_p, F_OK) != 0)
			continue;
		g = vmig_of(v, ms);
		audit_resume(g);
		sy_backfill_resume(bf_of(g));
	}
}

int sy_verify_backfill_status(struct sy_verify *v, const char *name, struct sy_backfill_status *out)
{
	struct vmig *g;
	int e;

	memset(out, 0, sizeof(*out));
	out->error = "";
	if ((e = job_of(v, name, &g)) || !g)
		return e;
	sy_backfill_status(bf_of(g), out);
	return 0;
}

/* ---- the audit's place, kept so that a restarted agent goes on ---------------------------------- */

static void audit_path(const struct vmig *g, char *p, size_t n)
{
	if (snprintf(p, n, "%s/audit-%s.state", g->v->state_dir, g->name) >= (int)n)
		p[0] = 0;
}

static void audit_save(struct vmig *g)
{
	char p[PATH_MAX + SY_NAME_MAX + 32], line[512];
	struct audit *a = &g->a;

	audit_path(g, p, sizeof(p));
	snprintf(line, sizeof(line),
		 "%s %d %u %s %llu %llu %u %d %llu %llu %llu %llu %llu %llu %llu %llu %d %llu\n",
		 sy_job_state_name(a->state), a->phase, a->pattern, a->cursor, (unsigned long long)a->scanned,
		 (unsigned long long)a->started_ms, a->rate, a->repair, (unsigned long long)a->counts[1],
		 (unsigned long long)a->counts[2], (unsigned long long)a->counts[3],
		 (unsigned long long)a->counts[4], (unsigned long long)a->counts[5],
		 (unsigned long long)a->repaired, (unsigned long long)a->outside_legacy,
		 (unsigned long long)a->outside, a->db, (unsigned long long)a->ks.dbs);
	sy_job_save(g->name, "audit", p, line, &a->save_err);
}

static void audit_resume(struct vmig *g)
{
	char p[PATH_MAX + SY_NAME_MAX + 32], state[16], cursor[32];
	unsigned long long scanned, started, c[5], repaired, out_l = 0, out_all = 0, dbs = 1;
	unsigned pattern, rate;
	int phase, repair, n, db = 0;
	struct audit *a = &g->a;
	FILE *f;

	audit_path(g, p, sizeof(p));
	if (!p[0] || !(f = fopen(p, "r")))
		return;
	n = fscanf(f, "%15s %d %u %31s %llu %llu %u %d %llu %llu %llu %llu %llu %llu %llu %llu %d %llu",
		   state, &phase, &pattern, cursor, &scanned, &started, &rate, &repair, &c[0], &c[1], &c[2],
		   &c[3], &c[4], &repaired, &out_l, &out_all, &db, &dbs);
	fclose(f);
	/* 14 fields: a place saved before the scope's counts were kept; 16: before every
	 * database was audited (database 0 only) */
	if ((n != 14 && n != 16 && n != 18) || sy_job_state_parse(state) != SY_JOB_RUNNING || phase < 0 ||
	    phase > 2 || !rate || db < 0 || db >= 64)
		return;
	audit_clear(a);
	a->state = SY_JOB_RUNNING;
	a->phase = phase;
	a->pattern = SY_JOB_WHOLE;
	/* a place saved by a version that scanned per prefix: that side again from the start */
	snprintf(a->cursor, sizeof(a->cursor), "%s", pattern == SY_JOB_WHOLE ? cursor : "0");
	a->scanned = scanned;
	a->started_ms = started;
	a->rate = rate;
	a->repair = repair != 0;
	for (int k = 0; k < 5; k++)
		a->counts[k + 1] = c[k];
	a->repaired = repaired;
	a->outside_legacy = out_l;
	a->outside = out_all;
	a->db = n == 18 ? db : 0;
	a->ks.dbs = (n == 18 ? dbs : 0) | 1ull << a->db;
	/* the pace counts from now: keys already scanned are not owed again */
	a->t0_mono = sy_now_ms() - (a->scanned * 1000) / a->rate;
	sy_info("verify", "%s: resuming the audit (%llu keys scanned before)", g->name, scanned);
	g->step_timer = sy_loop_add_timer(g->v->loop, 0, audit_step, g);
}

/* Continuous audits (audit_every): the next starts that long after one ended. */
static void audit_again(struct sy_loop *l, void *arg)
{
	struct vmig *g = arg;

	(void)l;
	g->again_timer = 0;
	if (g->active && g->spec.audit_every && g->a.state != SY_JOB_RUNNING && !g->v->follower)
		sy_verify_start_audit(g->v, g->name, g->a.repair, g->a.rate);
}

/* Starts the continuous audits of migrations that ask for them and have none going. */
void sy_verify_tick(struct sy_verify *v)
{
	if (v->follower)
		return;
	for (size_t i = 0; i < sy_registry_count(v->reg); i++) {
		const struct sy_migration_state *ms = sy_registry_at(v->reg, i);
		struct vmig *g;

		if (!ms->spec.audit_every)
			continue;
		g = vmig_of(v, ms);
		if (!g->again_timer && g->a.state != SY_JOB_RUNNING && !g->a.started_ms)
			sy_verify_start_audit(v, ms->spec.name, ms->spec.auto_repair, 0);
	}
}

void sy_verify_set_leader(struct sy_verify *v, bool leader)
{
	v->follower = !leader;
	sy_verify_tick(v);
}
