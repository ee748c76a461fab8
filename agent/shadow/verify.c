/* verify.c — see verify.h and docs/verify.md. */
#include "shadow/verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include "core/fnv.h"
#include "core/log.h"
#include "core/loop.h"
#include "model/keymap.h"
#include "registry/registry.h"
#include "shadow/mirror.h"
#include "redis/redis_conn.h"

#define FIRST_LOOK_MS  100  /* a sampled read is compared this long after it was captured */
#define RECHECK_MS     1000 /* a difference is looked at again this long after */
#define SCAN_COUNT     200
#define MAX_INFLIGHT   256
#define TTL_TOLERANCE  1000 /* ms */
#define DUAL_QUEUE_MAX 10000

/* One round trip per side: type, PTTL and the whole value. Streams are flattened. */
static const char SCRIPT[] = "local k = KEYS[1]\n"
			     "local t = redis.call('TYPE', k)['ok']\n"
			     "local ttl = redis.call('PTTL', k)\n"
			     "local v = {}\n"
			     "if t == 'string' then v = {redis.call('GET', k)}\n"
			     "elseif t == 'hash' then v = redis.call('HGETALL', k)\n"
			     "elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)\n"
			     "elseif t == 'set' then v = redis.call('SMEMBERS', k)\n"
			     "elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')\n"
			     "elseif t == 'stream' then\n"
			     "  for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do\n"
			     "    table.insert(v, e[1])\n"
			     "    for _, f in ipairs(e[2]) do table.insert(v, f) end\n"
			     "  end\n"
			     "end\n"
			     "return {t, ttl, v}\n";

const char *sy_drift_name(int kind)
{
	static const char *const n[] = {"none", "missing", "extra", "type", "value", "ttl"};

	return kind >= 0 && kind < SY_DRIFT_KINDS ? n[kind] : "?";
}

/* ---- type-aware digests -------------------------------------------------------------- */

struct look {
	char type[8]; /* "none" when absent */
	long long ttl;
	uint64_t digest;
	bool ok;
};

static int by_bytes(const void *a, const void *b)
{
	const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->str, y->str, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Pairs (field, value) sorted by field: compare the first of two. */
static int by_field(const void *a, const void *b)
{
	return by_bytes(a, b);
}

static uint64_t digest_items(redisReply **items, size_t n, size_t stride)
{
	uint64_t h = SY_FNV_OFFSET;

	for (size_t i = 0; i < n; i += stride)
		for (size_t j = 0; j < stride && i + j < n; j++) {
			uint64_t len = items[i + j]->type == REDIS_REPLY_STRING ? items[i + j]->len : 0;

			h = sy_fnv1a(&len, sizeof(len),
				     h); /* length-prefixed: no two lists collide by joining */
			if (len)
				h = sy_fnv1a(items[i + j]->str, len, h);
		}
	return h;
}

static void look_of(redisReply *r, struct look *out)
{
	redisReply *v;

	memset(out, 0, sizeof(*out));
	/* a Lua string comes back as a bulk string */
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    (r->element[0]->type != REDIS_REPLY_STATUS && r->element[0]->type != REDIS_REPLY_STRING) ||
	    r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_ARRAY)
		return;
	snprintf(out->type, sizeof(out->type), "%s", r->element[0]->str);
	out->ttl = r->element[1]->integer;
	v = r->element[2];
	if (strcmp(out->type, "set") == 0) {
		qsort(v->element, v->elements, sizeof(*v->element), by_bytes);
		out->digest = digest_items(v->element, v->elements, 1);
	} else if (strcmp(out->type, "hash") == 0) {
		/* sort the pairs as units: (field, value) → qsort over pair starts */
		size_t np = v->elements / 2;
		redisReply **pairs = malloc((np ? np : 1) * 2 * sizeof(*pairs));

		if (!pairs)
			return;
		for (size_t i = 0; i < np; i++) {
			pairs[2 * i] = v->element[2 * i];
			pairs[2 * i + 1] = v->element[2 * i + 1];
		}
		/* sort indexes of fields, then lay pairs out in that order */
		{
			redisReply **fields = malloc((np ? np : 1) * sizeof(*fields));

			if (!fields) {
				free(pairs);
				return;
			}
			for (size_t i = 0; i < np; i++)
				fields[i] = v->element[2 * i];
			qsort(fields, np, sizeof(*fields), by_field);
			for (size_t i = 0; i < np; i++) {
				/* fields are unique in a hash: find its value */
				for (size_t j = 0; j < np; j++)
					if (v->element[2 * j] == fields[i]) {
						pairs[2 * i] = v->element[2 * j];
						pairs[2 * i + 1] = v->element[2 * j + 1];
						break;
					}
			}
			free(fields);
		}
		out->digest = digest_items(pairs, np * 2, 2);
		free(pairs);
	} else {
		out->digest = digest_items(v->element, v->elements, 1);
	}
	out->ok = true;
}

static int classify(const struct look *l, const struct look *t)
{
	bool ln = strcmp(l->type, "none") == 0, tn = strcmp(t->type, "none") == 0;

	if (ln && tn)
		return SY_DRIFT_NONE;
	if (tn)
		return SY_DRIFT_MISSING;
	if (ln)
		return SY_DRIFT_EXTRA;
	if (strcmp(l->type, t->type) != 0)
		return SY_DRIFT_TYPE;
	if (l->digest != t->digest)
		return SY_DRIFT_VALUE;
	if ((l->ttl < 0) != (t->ttl < 0) || (l->ttl >= 0 && llabs(l->ttl - t->ttl) > TTL_TOLERANCE))
		return SY_DRIFT_TTL;
	return SY_DRIFT_NONE;
}

/* ---- state ----------------------------------------------------------------------------- */

struct vmig;

enum purpose { P_AUDIT_LEGACY, P_AUDIT_TARGET, P_DUAL };

/* One key compared on both sides; re-queued once for the re-check. */
struct cmp {
	struct cmp *next; /* recheck / first-look queue */
	struct vmig *g;
	uint8_t purpose;
	uint8_t attempt;
	uint8_t got;
	uint64_t due_ms;
	struct look look[2];
	size_t len;
	char key[]; /* legacy-side name */
};

struct audit {
	const char *state;
	bool repair;
	uint32_t rate;
	int phase;	  /* 0: legacy keys, 1: target keys, 2: scans done */
	uint32_t pattern; /* index of the prefix rule being scanned */
	char cursor[32];
	bool scan_pending;
	uint64_t scanned, total, started_ms, finished_ms, t0_mono;
	uint64_t counts[SY_DRIFT_KINDS];
	uint64_t repaired;
	struct sy_drift_entry *drift;
	size_t n_drift;
	uint32_t inflight;
	char error[160];
};

/* The backfill's place: persisted before every batch, so a restart copies at most one
 * batch again. */
struct backfill {
	const char *state;
	uint32_t rate_keys;
	uint64_t rate_bytes;
	uint32_t pattern;
	char cursor[32];
	bool scan_pending;
	uint64_t scanned, copied, bytes0, total, started_ms, finished_ms, t0_mono, t1_mono, copied0;
	uint32_t resumed;
	char error[160];
	uint64_t batch_ms; /* when the last batch was sent to repair */
};

struct vmig {
	struct sy_verify *v;
	bool active;
	uint32_t id;
	char name[SY_NAME_MAX];
	uint64_t created_ms;
	struct sy_migration_spec spec; /* copy, pins dropped */
	struct sy_redis *conn[2];      /* legacy, target */
	uint64_t reconnect_timer;
	struct audit a;
	struct cmp *q_head, *q_tail; /* waiting: first looks and re-checks, in due order */
	size_t q_len;
	uint64_t q_timer;
	uint64_t dual_checked, dual_drift, dual_rechecked;
	uint64_t unsettled; /* differences on keys that never stopped changing */
	uint64_t dual_repaired;
	/* every audit of this migration together: an audit's own counts restart with it,
	 * metrics need sums that only grow */
	uint64_t audit_checked, audit_found, audit_repaired;
	uint64_t step_timer;
	struct backfill b;
	uint64_t bf_timer;
	uint64_t again_timer; /* the next continuous audit */
};

struct sy_verify {
	char state_dir[PATH_MAX];
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_mirror *mirror;
	/* each slot's migration as of the registry's last commit (pins dropped: the copy
	 * owns nothing); id 0 = no migration in the slot */
	struct sy_migration_state seen[SY_MAX_MIGRATIONS];
	struct vmig migs[SY_MAX_MIGRATIONS];
};

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

static void add_drift(struct vmig *g, int kind, const char *key, size_t len)
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
		a->n_drift++;
	}
}

static void cmp_done(struct cmp *k)
{
	struct vmig *g = k->g;
	int kind = k->look[0].ok && k->look[1].ok ? classify(&k->look[0], &k->look[1]) : -1;
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
	/* the target scan only looks for keys legacy lacks */
	if (k->purpose == P_AUDIT_TARGET && kind != SY_DRIFT_EXTRA)
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
	    sy_mirror_key_busy(g->v->mirror, g->id, 0, k->key, k->len, 2 * RECHECK_MS)) {
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
			if (g->spec.auto_repair &&
			    sy_mirror_repair_key(g->v->mirror, g->id, SY_DIR_FORWARD, 0, k->key, k->len) == 0)
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
			add_drift(g, kind, rk, rl);
			if ((g->a.repair || g->spec.auto_repair) &&
			    sy_mirror_repair_key(g->v->mirror, g->id, SY_DIR_FORWARD, 0, k->key, k->len) == 0)
				g->audit_repaired++, g->a.repaired++;
		}
	}
	purpose = k->purpose;
	free(k);
	if (purpose != P_DUAL && !g->step_timer)
		g->step_timer = sy_loop_add_timer(g->v->loop, 0, audit_step, g);
}

static void on_look(struct sy_redis *c, redisReply *r, void *priv)
{
	struct cmp *k = priv;
	int side = c == k->g->conn[1];

	look_of(r, &k->look[side]);
	if (++k->got == 2)
		cmp_done(k);
}

static void cmp_send(struct cmp *k)
{
	struct vmig *g = k->g;
	char buf[1024];
	const char *tk;
	size_t tl = sy_key_map(&g->spec, SY_SIDE_LEGACY, k->key, k->len, buf, sizeof(buf), &tk);
	const char *argv[4] = {"EVAL", SCRIPT, "1", k->key};
	size_t lens[4] = {4, sizeof(SCRIPT) - 1, 1, k->len};

	k->got = 0;
	memset(k->look, 0, sizeof(k->look));
	if (!sy_redis_alive(g->conn[0]) || sy_redis_sendv(g->conn[0], 4, argv, lens, on_look, k))
		k->got++; /* that side counts as unanswered */
	argv[3] = tk;
	lens[3] = tl;
	if (!sy_redis_alive(g->conn[1]) || sy_redis_sendv(g->conn[1], 4, argv, lens, on_look, k))
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

	(void)l;
	g->q_timer = 0;
	while (g->q_head && g->q_head->due_ms <= now) {
		struct cmp *k = g->q_head;

		g->q_head = k->next;
		if (!g->q_head)
			g->q_tail = NULL;
		g->q_len--;
		k->next = NULL;
		cmp_send(k);
	}
	if (g->q_head)
		g->q_timer = sy_loop_add_timer(g->v->loop, g->q_head->due_ms - now, queue_run, g);
}

/* Delays are constant per kind of entry, so appending keeps the queue in due order
 * except between the two kinds; a late entry only waits a little longer. */
static void queue_push(struct vmig *g, struct cmp *k, uint64_t delay)
{
	k->due_ms = sy_now_ms() + delay;
	k->next = NULL;
	if (g->q_tail)
		g->q_tail->next = k;
	else
		g->q_head = k;
	g->q_tail = k;
	g->q_len++;
	if (!g->q_timer)
		g->q_timer = sy_loop_add_timer(g->v->loop, delay, queue_run, g);
}

/* ---- the audit's scans --------------------------------------------------------------------- */

/* SCAN's MATCH pattern for prefix rule i on a side: the prefix, glob characters escaped. */
static void pattern_of(const struct vmig *g, int side, uint32_t i, char *out, size_t cap)
{
	char buf[SY_PREFIX_MAX * 2 + 2];
	const char *p = g->spec.prefixes[i];
	size_t n = 0;

	if (side == SY_SIDE_TARGET) {
		const char *mapped;
		size_t ml = sy_key_map(&g->spec, SY_SIDE_LEGACY, p, strlen(p), buf, sizeof(buf) - 1, &mapped);

		memmove(buf, mapped, ml);
		buf[ml] = 0;
		p = buf;
	}
	for (; *p && n + 3 < cap; p++) {
		if (strchr("*?[]\\", *p))
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n++] = '*';
	out[n] = 0;
}

/* SCAN cursor [MATCH prefix-rule pattern] COUNT n on one side. */
static int send_scan(struct vmig *g, int side, uint32_t pattern, const char *cursor, const char *count,
		     sy_redis_reply_cb cb)
{
	char pat[SY_PREFIX_MAX * 2 + 4];
	const char *argv[6] = {"SCAN", cursor};
	size_t lens[6] = {4, strlen(cursor)};
	int argc = 2;

	if (g->spec.n_prefixes) {
		pattern_of(g, side, pattern, pat, sizeof(pat));
		argv[argc] = "MATCH";
		lens[argc++] = 5;
		argv[argc] = pat;
		lens[argc++] = strlen(pat);
	}
	argv[argc] = "COUNT";
	lens[argc++] = 5;
	argv[argc] = count;
	lens[argc++] = strlen(count);
	return sy_redis_sendv(g->conn[side], argc, argv, lens, cb, g);
}

static void audit_save(struct vmig *g);
static void audit_again(struct sy_loop *l, void *arg);

static void audit_finish(struct vmig *g, const char *state)
{
	g->a.state = state;
	g->a.finished_ms = sy_unix_ms();
	audit_save(g);
	if (g->spec.audit_every && g->active)
		g->again_timer =
			sy_loop_add_timer(g->v->loop, (uint64_t)g->spec.audit_every * 1000, audit_again, g);
	sy_info("verify",
		"%s: audit %s: %llu keys scanned, %llu missing, %llu extra, %llu type, %llu value, %llu ttl",
		g->name, state, (unsigned long long)g->a.scanned,
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
		audit_finish(g, "failed");
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
		a->scanned++;
		g->audit_checked++;
		if (a->phase == 1)
			ll = sy_key_map(&g->spec, SY_SIDE_TARGET, kr->str, kr->len, buf, sizeof(buf), &lk);
		k = cmp_new(g, a->phase == 0 ? P_AUDIT_LEGACY : P_AUDIT_TARGET, lk, ll);
		if (!k)
			continue;
		a->inflight++;
		cmp_send(k);
	}
	if (strcmp(a->cursor, "0") == 0) {
		/* this pattern is done: next prefix, then the other side */
		strcpy(a->cursor, "0");
		if (g->spec.n_prefixes && ++a->pattern < g->spec.n_prefixes)
			;
		else {
			a->pattern = 0;
			a->phase++;
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
	if (!g->active || strcmp(a->state, "running") != 0)
		return;
	if (a->phase >= 2) {
		if (a->inflight == 0)
			audit_finish(g, "done");
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
	if (send_scan(g, side, a->pattern, a->cursor, count, on_scan) == 0)
		a->scan_pending = true;
	else
		g->step_timer = sy_loop_add_timer(g->v->loop, 200, audit_step, g);
}

/* DBSIZE answers add up into the uint64_t that priv points at (a progress total). */
static void on_dbsize(struct sy_redis *c, redisReply *r, void *priv)
{
	(void)c;
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
		*(uint64_t *)priv += (uint64_t)r->integer;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void audit_clear(struct audit *a)
{
	for (size_t i = 0; i < a->n_drift; i++)
		free(a->drift[i].key);
	free(a->drift);
	memset(a, 0, sizeof(*a));
	a->state = "idle";
}

static void vmig_stop(struct vmig *g)
{
	struct sy_loop *l = g->v->loop;

	g->active = false;
	sy_loop_cancel_timer(l, g->reconnect_timer);
	sy_loop_cancel_timer(l, g->q_timer);
	sy_loop_cancel_timer(l, g->step_timer);
	sy_loop_cancel_timer(l, g->bf_timer);
	sy_loop_cancel_timer(l, g->again_timer);
	g->reconnect_timer = g->q_timer = g->step_timer = g->bf_timer = g->again_timer = 0;
	/* pending compares are answered with NULL by the frees, and freed there */
	g->a.state = "failed";
	for (int s = 0; s < 2; s++) {
		sy_redis_free(g->conn[s]);
		g->conn[s] = NULL;
	}
	while (g->q_head) {
		struct cmp *k = g->q_head;

		g->q_head = k->next;
		free(k);
	}
	g->q_tail = NULL;
	g->q_len = 0;
	/* the frees above may have queued re-checks or steps: none may run now */
	sy_loop_cancel_timer(l, g->q_timer);
	sy_loop_cancel_timer(l, g->step_timer);
	g->q_timer = g->step_timer = 0;
	while (g->q_head) {
		struct cmp *k = g->q_head;

		g->q_head = k->next;
		free(k);
	}
	g->q_tail = NULL;
	g->q_len = 0;
	audit_clear(&g->a);
	g->dual_checked = g->dual_drift = g->dual_rechecked = g->unsettled = g->dual_repaired = 0;
}

static struct vmig *vmig_of(struct sy_verify *v, const struct sy_migration_state *ms)
{
	struct vmig *g = &v->migs[ms->id];

	if (g->active && strcmp(g->name, ms->spec.name) == 0 && g->created_ms == ms->created_unix_ms) {
		g->spec = ms->spec;
		g->spec.pins = NULL;
		g->spec.n_pins = 0;
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
	g->active = true;
	g->a.state = "idle";
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
static void on_commit(void *ctx, const struct sy_commit *c)
{
	struct sy_verify *v = ctx;

	for (uint32_t id = 1; id < SY_MAX_MIGRATIONS; id++) {
		const struct sy_migration_state *ms = sy_mset_by_id(c->after, c->n_after, id);
		struct sy_migration_state *cur = &v->seen[id];
		struct vmig *g = &v->migs[id];

		if (!ms) {
			memset(cur, 0, sizeof(*cur));
			if (g->active)
				vmig_stop(g);
			continue;
		}
		*cur = *ms;
		cur->spec.pins = NULL;
		cur->spec.n_pins = 0;
		cur->pin_cgroup_ids = NULL;
		if (g->active && vmig_peek(v, cur))
			vmig_of(v, cur); /* the same migration: its spec only */
		else if (g->active)
			vmig_stop(g);
	}
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
	const char *argv[1] = {"DBSIZE"};
	size_t lens[1] = {6};

	if (!ms)
		return -ENOENT;
	g = vmig_of(v, ms);
	if (strcmp(g->a.state, "running") == 0)
		return -EBUSY;
	audit_clear(&g->a);
	g->a.state = "running";
	g->a.repair = repair;
	g->a.rate = keys_per_s ? keys_per_s : 5000;
	strcpy(g->a.cursor, "0");
	g->a.started_ms = sy_unix_ms();
	g->a.t0_mono = sy_now_ms();
	for (int s = 0; s < 2; s++)
		if (sy_redis_alive(g->conn[s]))
			sy_redis_sendv(g->conn[s], 1, argv, lens, on_dbsize, &g->a.total);
	sy_info("verify", "%s: audit started (%u keys/s%s)", name, g->a.rate, repair ? ", repairing" : "");
	g->step_timer = sy_loop_add_timer(v->loop, 0, audit_step, g);
	return 0;
}

int sy_verify_status(struct sy_verify *v, const char *name, struct sy_audit_status *out)
{
	const struct sy_migration_state *ms = sy_registry_find(v->reg, name);
	struct vmig *g;
	struct audit *a;
	double secs;

	memset(out, 0, sizeof(*out));
	if (!ms)
		return -ENOENT;
	out->state = "idle";
	out->error = "";
	if (!(g = vmig_peek(v, ms)))
		return 0;
	a = &g->a;
	out->state = a->state;
	out->scanned = a->scanned;
	out->total = a->total > a->scanned ? a->total : a->scanned;
	secs = a->started_ms
		       ? (double)((a->finished_ms ? a->finished_ms : sy_unix_ms()) - a->started_ms) / 1000.0
		       : 0;
	out->keys_per_s = secs > 0 ? (double)a->scanned / secs : 0;
	out->eta_s = strcmp(a->state, "running") == 0 && out->keys_per_s > 0
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
	lk = (const char *)c->body;
	ll = c->len;
	if (c->side == SY_SIDE_TARGET)
		ll = sy_key_map(&g->spec, SY_SIDE_TARGET, (const char *)c->body, c->len, buf, sizeof(buf),
				&lk);
	k = cmp_new(g, P_DUAL, lk, ll);
	if (k)
		queue_push(g, k, FIRST_LOOK_MS);
}

/* ---- backfill -------------------------------------------------------------------------------- */

static void bf_path(const struct vmig *g, char *p, size_t n)
{
	/* a state dir too long for PATH_MAX was refused at start: truncation cannot happen */
	if (snprintf(p, n, "%s/backfill-%s.state", g->v->state_dir, g->name) >= (int)n)
		p[0] = 0;
}

/* One line: state pattern cursor copied started_ms rate_keys rate_bytes. Written to a
 * temporary file and renamed: a crash leaves the old place or the new, never half. */
/* Writes one line to `path` through a temporary file, fsync and rename. */
static void save_line(const char *path, const char *line)
{
	char tmp[PATH_MAX + SY_NAME_MAX + 40];
	FILE *f;

	if (!path[0] || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
	    !(f = fopen(tmp, "w")))
		return;
	if (fputs(line, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0) {
		fclose(f);
		rename(tmp, path);
	} else {
		fclose(f);
		unlink(tmp);
	}
}

static void bf_save(struct vmig *g)
{
	char p[PATH_MAX + SY_NAME_MAX + 32], line[256];

	bf_path(g, p, sizeof(p));
	snprintf(line, sizeof(line), "%s %u %s %llu %llu %u %llu\n", g->b.state, g->b.pattern, g->b.cursor,
		 (unsigned long long)g->b.copied, (unsigned long long)g->b.started_ms, g->b.rate_keys,
		 (unsigned long long)g->b.rate_bytes);
	save_line(p, line);
}

static void bf_finish(struct vmig *g, const char *state)
{
	g->b.state = state;
	g->b.finished_ms = sy_unix_ms();
	g->b.t1_mono = sy_now_ms();
	bf_save(g);
	sy_info("verify", "%s: backfill %s: %llu keys copied", g->name, state,
		(unsigned long long)g->b.copied);
}

static void bf_step(struct sy_loop *l, void *arg);

static void on_bf_scan(struct sy_redis *c, redisReply *r, void *priv)
{
	struct vmig *g = priv;
	struct backfill *b = &g->b;
	redisReply *keys;

	(void)c;
	b->scan_pending = false;
	if (!g->active || strcmp(b->state, "running") != 0)
		return;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
		/* the connection dropped: the saved place is still right, try again */
		g->bf_timer = sy_loop_add_timer(g->v->loop, 200, bf_step, g);
		return;
	}
	keys = r->element[1];
	b->batch_ms = sy_now_ms();
	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *k = keys->element[i];

		if (k->type != REDIS_REPLY_STRING)
			continue;
		b->scanned++;
		/* marked first: a write to it from now on is copied again after it settles */
		sy_mirror_note_copy(g->v->mirror, g->id, 0, k->str, k->len);
		if (sy_mirror_repair_key(g->v->mirror, g->id, SY_DIR_FORWARD, 0, k->str, k->len) == 0)
			b->copied++;
	}
	snprintf(b->cursor, sizeof(b->cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
	if (strcmp(b->cursor, "0") == 0 && !(g->spec.n_prefixes && ++b->pattern < g->spec.n_prefixes))
		b->pattern = UINT32_MAX; /* every pattern scanned: done once the copies land */
	g->bf_timer = sy_loop_add_timer(g->v->loop, 0, bf_step, g);
}

static void bf_step(struct sy_loop *l, void *arg)
{
	struct vmig *g = arg;
	struct backfill *b = &g->b;
	struct sy_mirror_stats ms;
	uint64_t elapsed, wait = 0;

	(void)l;
	g->bf_timer = 0;
	if (!g->active || strcmp(b->state, "running") != 0 || b->scan_pending)
		return;
	sy_mirror_stats(g->v->mirror, g->id, SY_DIR_FORWARD, &ms);
	if (ms.dirty && sy_now_ms() - b->batch_ms < 2000) {
		/* the last batch is still being copied: its place is saved once it is done.
		 * Writers that keep other keys dirty (two connections on one key) would stall
		 * the backfill for good: after 2 s it goes on, and a crash in that window is
		 * covered by needs-audit (the mirror's clean-stop marker) */
		g->bf_timer = sy_loop_add_timer(g->v->loop, 1, bf_step, g);
		return;
	}
	if (b->pattern == UINT32_MAX) {
		bf_finish(g, "done");
		return;
	}
	bf_save(g);
	elapsed = sy_now_ms() - b->t0_mono;
	if (b->rate_keys && b->copied - b->copied0 > elapsed * b->rate_keys / 1000)
		wait = (b->copied - b->copied0) * 1000 / b->rate_keys - elapsed;
	if (b->rate_bytes && ms.repaired_bytes - b->bytes0 > elapsed * b->rate_bytes / 1000) {
		uint64_t w = (ms.repaired_bytes - b->bytes0) * 1000 / b->rate_bytes - elapsed;

		wait = w > wait ? w : wait;
	}
	if (wait || !sy_redis_alive(g->conn[0])) {
		g->bf_timer = sy_loop_add_timer(g->v->loop, wait ? wait : 200, bf_step, g);
		return;
	}
	/* small batches when slow: the pace stays smooth and a restart re-copies little;
	 * large ones at full speed, where the wait between batches would dominate */
	if (send_scan(g, SY_SIDE_LEGACY, b->pattern, b->cursor,
		      !b->rate_keys	    ? "1000"
		      : b->rate_keys < 1000 ? "10"
					    : "100",
		      on_bf_scan) == 0)
		b->scan_pending = true;
	else
		g->bf_timer = sy_loop_add_timer(g->v->loop, 200, bf_step, g);
}

static void bf_begin(struct vmig *g)
{
	struct sy_mirror_stats ms;
	const char *argv[1] = {"DBSIZE"};
	size_t lens[1] = {6};

	sy_mirror_stats(g->v->mirror, g->id, SY_DIR_FORWARD, &ms);
	g->b.bytes0 = ms.repaired_bytes;
	g->b.copied0 = g->b.copied;
	g->b.t0_mono = sy_now_ms();
	if (sy_redis_alive(g->conn[0]))
		sy_redis_sendv(g->conn[0], 1, argv, lens, on_dbsize, &g->b.total);
	g->bf_timer = sy_loop_add_timer(g->v->loop, 0, bf_step, g);
}

int sy_verify_start_backfill(struct sy_verify *v, const char *name, uint32_t keys_per_s, uint64_t bytes_per_s)
{
	const struct sy_migration_state *ms = sy_registry_find(v->reg, name);
	struct vmig *g;

	if (!ms)
		return -ENOENT;
	g = vmig_of(v, ms);
	if (g->b.state && strcmp(g->b.state, "running") == 0)
		return -EBUSY;
	memset(&g->b, 0, sizeof(g->b));
	g->b.state = "running";
	g->b.rate_keys = keys_per_s;
	g->b.rate_bytes = bytes_per_s;
	strcpy(g->b.cursor, "0");
	g->b.started_ms = sy_unix_ms();
	sy_info("verify", "%s: backfill started (%u keys/s, %llu bytes/s; 0 = unbounded)", name, keys_per_s,
		(unsigned long long)bytes_per_s);
	bf_begin(g);
	return 0;
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
		snprintf(b_p, sizeof(b_p), "%s/backfill-%s.state", v->state_dir, ms->spec.name);
		if (access(a_p, F_OK) != 0 && access(b_p, F_OK) != 0)
			continue;
		g = vmig_of(v, ms);
		char p[PATH_MAX + SY_NAME_MAX + 32], state[16], cursor[32];
		unsigned long long copied, started, rb;
		unsigned pattern, rk;
		FILE *f;
		int n;

		bf_path(g, p, sizeof(p));
		f = fopen(p, "r");
		audit_resume(g);
		if (!f)
			continue;
		n = fscanf(f, "%15s %u %31s %llu %llu %u %llu", state, &pattern, cursor, &copied, &started,
			   &rk, &rb);
		fclose(f);
		if (n != 7 || strcmp(state, "running") != 0)
			continue;
		memset(&g->b, 0, sizeof(g->b));
		g->b.state = "running";
		g->b.pattern = pattern;
		snprintf(g->b.cursor, sizeof(g->b.cursor), "%s", cursor);
		g->b.copied = copied;
		g->b.started_ms = started;
		g->b.rate_keys = rk;
		g->b.rate_bytes = rb;
		g->b.resumed = 1;
		sy_info("verify", "%s: resuming the backfill at cursor %s (%llu keys copied before)", g->name,
			cursor, copied);
		bf_begin(g);
	}
}

int sy_verify_backfill_status(struct sy_verify *v, const char *name, struct sy_backfill_status *out)
{
	const struct sy_migration_state *ms = sy_registry_find(v->reg, name);
	struct sy_mirror_stats st;
	struct vmig *g;
	double secs;

	memset(out, 0, sizeof(*out));
	if (!ms)
		return -ENOENT;
	out->state = "idle";
	out->error = "";
	if (!(g = vmig_peek(v, ms)))
		return 0;
	out->state = g->b.state ? g->b.state : "idle";
	out->scanned = g->b.scanned;
	out->copied = g->b.copied;
	sy_mirror_stats(v->mirror, g->id, SY_DIR_FORWARD, &st);
	out->bytes = st.repaired_bytes >= g->b.bytes0 ? st.repaired_bytes - g->b.bytes0 : 0;
	out->total = g->b.total > g->b.copied ? g->b.total : g->b.copied;
	secs = g->b.t0_mono ? (double)((g->b.t1_mono ? g->b.t1_mono : sy_now_ms()) - g->b.t0_mono) / 1000.0
			    : 0;
	out->keys_per_s = secs > 0 ? (double)(g->b.copied - g->b.copied0) / secs : 0;
	out->bytes_per_s = secs > 0 ? (double)out->bytes / secs : 0;
	out->eta_s = strcmp(out->state, "running") == 0 && out->keys_per_s > 0
			     ? (double)(out->total - out->copied) / out->keys_per_s
			     : 0;
	out->rate_keys = g->b.rate_keys;
	out->rate_bytes = (uint32_t)g->b.rate_bytes;
	out->started_unix_ms = g->b.started_ms;
	out->finished_unix_ms = g->b.finished_ms;
	out->resumed = g->b.resumed;
	out->error = g->b.error;
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
	snprintf(line, sizeof(line), "%s %d %u %s %llu %llu %u %d %llu %llu %llu %llu %llu %llu\n", a->state,
		 a->phase, a->pattern, a->cursor, (unsigned long long)a->scanned,
		 (unsigned long long)a->started_ms, a->rate, a->repair, (unsigned long long)a->counts[1],
		 (unsigned long long)a->counts[2], (unsigned long long)a->counts[3],
		 (unsigned long long)a->counts[4], (unsigned long long)a->counts[5],
		 (unsigned long long)a->repaired);
	save_line(p, line);
}

static void audit_resume(struct vmig *g)
{
	char p[PATH_MAX + SY_NAME_MAX + 32], state[16], cursor[32];
	unsigned long long scanned, started, c[5], repaired;
	unsigned pattern, rate;
	int phase, repair, n;
	struct audit *a = &g->a;
	FILE *f;

	audit_path(g, p, sizeof(p));
	if (!p[0] || !(f = fopen(p, "r")))
		return;
	n = fscanf(f, "%15s %d %u %31s %llu %llu %u %d %llu %llu %llu %llu %llu %llu", state, &phase,
		   &pattern, cursor, &scanned, &started, &rate, &repair, &c[0], &c[1], &c[2], &c[3], &c[4],
		   &repaired);
	fclose(f);
	if (n != 14 || strcmp(state, "running") != 0 || phase < 0 || phase > 2 || !rate)
		return;
	audit_clear(a);
	a->state = "running";
	a->phase = phase;
	a->pattern = pattern;
	snprintf(a->cursor, sizeof(a->cursor), "%s", cursor);
	a->scanned = scanned;
	a->started_ms = started;
	a->rate = rate;
	a->repair = repair != 0;
	for (int k = 0; k < 5; k++)
		a->counts[k + 1] = c[k];
	a->repaired = repaired;
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
	if (g->active && g->spec.audit_every && strcmp(g->a.state, "running") != 0)
		sy_verify_start_audit(g->v, g->name, g->a.repair, g->a.rate);
}

/* Starts the continuous audits of migrations that ask for them and have none going. */
void sy_verify_tick(struct sy_verify *v)
{
	for (size_t i = 0; i < sy_registry_count(v->reg); i++) {
		const struct sy_migration_state *ms = sy_registry_at(v->reg, i);
		struct vmig *g;

		if (!ms->spec.audit_every)
			continue;
		g = vmig_of(v, ms);
		if (!g->again_timer && strcmp(g->a.state, "running") != 0 && !g->a.started_ms)
			sy_verify_start_audit(v, ms->spec.name, ms->spec.auto_repair, 0);
	}
}
