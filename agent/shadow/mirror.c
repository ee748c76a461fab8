/* mirror.c — see mirror.h and docs/mirror.md. */
#include "shadow/mirror.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "redis/commands.h"
#include "core/fnv.h"
#include "core/log.h"
#include "core/loop.h"
#include "kernel/mapsync.h"
#include "model/keymap.h"
#include "registry/registry.h"
#include "redis/redis_conn.h"

#define NCONN		   4	 /* destination connections per direction */
#define SRC_SLOTS	   16384 /* client connections followed at once (power of two) */
#define LASTW_SLOTS	   65536 /* recent writers per key, for conflicts (power of two) */
#define LASTW_WAYS	   4	 /* entries per set (power of two) */
#define CONFLICT_MS	   1000	 /* writes to one key from both sides this close: conflict */
#define SETTLE_MS	   50	 /* a repair waits for replays in flight to land */
#define CONFLICT_SETTLE_MS 300	 /* a conflict repair waits for both sides' replays */
#define RETRY_MS	   500	 /* a failed repair is tried again */
#define REPAIR_INFLIGHT	   256
#define RECONNECT_MS	   200
#define MAX_ARGS	   (1 << 20)

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned log2_bucket(uint64_t us)
{
	unsigned b = 0;

	while (us > 1 && b < SY_LAT_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	return b;
}

/* ---- dirty keys: deduplicated, in order, each due at a time ----------------------- */

struct dkey {
	struct dkey *hnext; /* hash chain */
	struct dkey *next;  /* FIFO */
	uint64_t hash;
	uint64_t due_ms;
	int db;
	size_t len;
	char key[];
};

struct dirty {
	struct dkey **tab; /* 65536 chains */
	struct dkey *head, *tail;
	size_t n;
};

#define DIRTY_BUCKETS 65536

static struct dkey **dirty_slot(struct dirty *d, uint64_t h, int db, const char *k, size_t len)
{
	struct dkey **pp = &d->tab[h & (DIRTY_BUCKETS - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && (*pp)->db == db && (*pp)->len == len &&
		    memcmp((*pp)->key, k, len) == 0)
			return pp;
	return pp;
}

/* 0 added or already there (its due time pushed to at least `due`), -ENOSPC full. */
static int dirty_add(struct dirty *d, int db, const char *k, size_t len, uint64_t due)
{
	uint64_t h = sy_fnv1a(k, len, SY_FNV_OFFSET ^ (uint64_t)db);
	struct dkey **pp, *e;

	if (!d->tab && !(d->tab = calloc(DIRTY_BUCKETS, sizeof(*d->tab))))
		return -ENOMEM;
	pp = dirty_slot(d, h, db, k, len);
	if (*pp) {
		if ((*pp)->due_ms < due)
			(*pp)->due_ms = due;
		return 0;
	}
	if (d->n >= SY_MIRROR_DIRTY_MAX)
		return -ENOSPC;
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	e->hnext = NULL;
	e->next = NULL;
	e->hash = h;
	e->due_ms = due;
	e->db = db;
	e->len = len;
	memcpy(e->key, k, len);
	*pp = e;
	if (d->tail)
		d->tail->next = e;
	else
		d->head = e;
	d->tail = e;
	d->n++;
	return 0;
}

/* Takes the first key if it is due; the caller frees it. */
static struct dkey *dirty_pop(struct dirty *d, uint64_t now)
{
	struct dkey *e = d->head, **pp;

	if (!e || e->due_ms > now)
		return NULL;
	d->head = e->next;
	if (!d->head)
		d->tail = NULL;
	pp = dirty_slot(d, e->hash, e->db, e->key, e->len);
	if (*pp == e)
		*pp = e->hnext;
	d->n--;
	return e;
}

static void dirty_free(struct dirty *d)
{
	struct dkey *e = d->head;

	while (e) {
		struct dkey *n = e->next;

		free(e);
		e = n;
	}
	free(d->tab);
	memset(d, 0, sizeof(*d));
}

/* ---- state ------------------------------------------------------------------------ */

struct dir;

struct dconn {
	struct dir *d;
	bool is_src;
	struct sy_redis *r;
	int db; /* selected on this connection */
	uint64_t retry_timer;
};

struct dir {
	struct mig *mig;
	int dir;
	struct dconn dst[NCONN];
	struct dconn src; /* reads for repair (DUMP) */
	struct dirty dirty;
	uint64_t inflight;
	uint32_t repairs_inflight;
	uint64_t repair_timer;
	struct sy_mirror_stats st;
	uint64_t lag_cur_ms, lag_prev_ms, lag_epoch_ms; /* the largest recent lag, two 2 s windows */
};

struct txcmd {
	struct txcmd *next;
	int argc;
	char **argv;
	size_t *lens;
	int nkeys;
	int *keys; /* argv indexes */
};

struct src {
	uint64_t cookie; /* 0: free */
	uint64_t last_ms;
	int db;
	bool in_multi;
	bool txn_bad; /* the transaction cannot be replayed exactly: repair its keys */
	struct txcmd *txn_head, *txn_tail;
	size_t txn_n;
};

struct lastw {
	uint64_t fp; /* key fingerprint, 0 = empty */
	uint64_t cookie;
	uint64_t ms;
	uint64_t hot_until_ms; /* a conflict was seen: every write until then re-arms the copy */
	uint8_t side;
};

struct mig {
	struct sy_mirror *m;
	uint32_t id;
	bool active;
	char name[SY_NAME_MAX];
	uint64_t created_ms, updated_ms;
	uint64_t ev_lost;	       /* the kernel's count when last looked at */
	struct sy_migration_spec spec; /* copy, pins dropped */
	uint8_t mirror;		       /* effective mode (auto resolved): SY_CAPTURE_* bits */
	struct dir d[2];
	struct src *srcs; /* SRC_SLOTS */
	struct lastw *lastw;
};

struct sy_mirror {
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_bpf *bpf; /* the capture statistics: lost records */
	/* each slot's migration as of the registry's last commit (pins dropped: the copy
	 * owns nothing); id 0 = no migration in the slot */
	struct sy_migration_state seen[SY_MAX_MIGRATIONS];
	struct mig migs[SY_MAX_MIGRATIONS];
	uint64_t check_timer;
};

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

/* ---- key names across sides -------------------------------------------------------- */

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

static struct dconn *dst_for(struct dir *d, uint64_t h)
{
	return &d->dst[h % NCONN];
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

/* ---- repair ------------------------------------------------------------------------ */

static void flag_audit(struct dir *d, const char *why)
{
	if (!d->st.needs_audit)
		sy_warn("mirror", "%s %s: needs audit: %s", d->mig->name, dir_name(d), why);
	d->st.needs_audit = true;
	snprintf(d->st.audit_reason, sizeof(d->st.audit_reason), "%s", why);
}

static void repair_kick(struct dir *d, uint64_t delay_ms);

/* Marks a key (named as on the source side of d) for repair after `delay_ms`. */
static void mark_dirty(struct dir *d, int db, const char *k, size_t len, uint64_t delay_ms)
{
	int e = dirty_add(&d->dirty, db, k, len, sy_now_ms() + delay_ms);

	if (e == -ENOSPC)
		flag_audit(d, "dirty-key set full");
	else if (e)
		flag_audit(d, "out of memory for dirty keys");
	d->st.dirty = d->dirty.n;
	repair_kick(d, delay_ms);
}

struct repair {
	struct dir *d;
	int db;
	size_t len;
	char key[];
};

static void repair_done(struct repair *rp, bool ok)
{
	struct dir *d = rp->d;

	d->repairs_inflight--;
	if (ok) {
		d->st.repaired++;
	} else {
		d->st.repair_failed++;
		mark_dirty(d, rp->db, rp->key, rp->len, RETRY_MS);
	}
	free(rp);
	repair_kick(d, 0);
}

static void on_restored(struct sy_redis *c, redisReply *r, void *priv)
{
	(void)c;
	repair_done(priv, r && r->type != REDIS_REPLY_ERROR);
}

static void on_dumped(struct sy_redis *c, redisReply *r, void *priv)
{
	struct repair *rp = priv;
	struct dir *d = rp->d;
	char buf[1024], ttl[24];
	const char *k;
	size_t kl;
	struct dconn *dc;
	redisReply *dump, *pttl;

	(void)c;
	/* MULTI / DUMP / PTTL / EXEC: the EXEC reply is [payload|nil, pttl] */
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		if (r && r->type == REDIS_REPLY_STATUS)
			return; /* +OK of MULTI, +QUEUED: the EXEC reply follows */
		repair_done(rp, false);
		return;
	}
	dump = r->element[0];
	pttl = r->element[1];
	kl = sy_key_map(&d->mig->spec, src_side(d), rp->key, rp->len, buf, sizeof(buf), &k);
	dc = dst_for(d, sy_fnv1a(k, kl, SY_FNV_OFFSET));
	if (!sy_redis_alive(dc->r) || select_db(dc, rp->db, ignore_reply)) {
		repair_done(rp, false);
		return;
	}
	if (dump->type == REDIS_REPLY_STRING)
		d->st.repaired_bytes += dump->len;
	if (dump->type != REDIS_REPLY_STRING) {
		const char *argv[2] = {"DEL", k};
		size_t lens[2] = {3, kl};

		if (sy_redis_sendv(dc->r, 2, argv, lens, on_restored, rp))
			repair_done(rp, false);
		return;
	}
	{
		long long ms = pttl->type == REDIS_REPLY_INTEGER && pttl->integer > 0 ? pttl->integer : 0;
		const char *argv[5] = {"RESTORE", k, ttl, dump->str, "REPLACE"};
		size_t lens[5] = {7, kl, 0, dump->len, 7};

		lens[2] = (size_t)snprintf(ttl, sizeof(ttl), "%lld", ms);
		if (sy_redis_sendv(dc->r, 5, argv, lens, on_restored, rp))
			repair_done(rp, false);
	}
}

static void on_queued(struct sy_redis *c, redisReply *r, void *priv)
{
	(void)c;
	(void)r;
	(void)priv;
}

static void mark_hot(struct dir *d, int db, const char *key, size_t len);

static void repair_run(struct sy_loop *l, void *arg)
{
	struct dir *d = arg;
	uint64_t now = sy_now_ms();

	(void)l;
	d->repair_timer = 0;
	if (!d->mig->active)
		return;
	while (d->repairs_inflight < REPAIR_INFLIGHT) {
		struct dkey *e;
		struct repair *rp;
		char n[16];

		if (!sy_redis_alive(d->src.r)) {
			repair_kick(d, RETRY_MS);
			break;
		}
		e = dirty_pop(&d->dirty, now);
		if (!e)
			break;
		rp = malloc(sizeof(*rp) + e->len);
		if (!rp) {
			free(e);
			break;
		}
		rp->d = d;
		rp->db = e->db;
		rp->len = e->len;
		memcpy(rp->key, e->key, e->len);
		free(e);
		d->repairs_inflight++;
		/* a write landing between this DUMP and its RESTORE would be overwritten by
		 * the older copy: writes to the key in the next seconds copy it again */
		mark_hot(d, rp->db, rp->key, rp->len);
		{
			const char *sel[2] = {"SELECT", n};
			size_t sell[2] = {6, (size_t)snprintf(n, sizeof(n), "%d", rp->db)};
			const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
			size_t ml[1] = {5}, el[1] = {4};
			const char *dump[2] = {"DUMP", rp->key}, *pttl[2] = {"PTTL", rp->key};
			size_t kl[2] = {4, rp->len};

			/* the source connection is ours alone: select every time, cheap */
			if (sy_redis_sendv(d->src.r, 2, sel, sell, on_queued, NULL) ||
			    sy_redis_sendv(d->src.r, 1, multi, ml, on_queued, NULL) ||
			    sy_redis_sendv(d->src.r, 2, dump, kl, on_queued, NULL) ||
			    sy_redis_sendv(d->src.r, 2, pttl, kl, on_queued, NULL) ||
			    sy_redis_sendv(d->src.r, 1, exec, el, on_dumped, rp))
				repair_done(rp, false);
		}
	}
	d->st.dirty = d->dirty.n;
	if (d->dirty.head && !d->repair_timer) {
		uint64_t due = d->dirty.head->due_ms;

		repair_kick(d, due > now ? due - now : 10);
	}
}

static void repair_kick(struct dir *d, uint64_t delay_ms)
{
	if (d->repair_timer)
		return;
	d->repair_timer = sy_loop_add_timer(d->mig->m->loop, delay_ms, repair_run, d);
}

/* ---- replay ----------------------------------------------------------------------- */

/* One replayed command (or transaction) awaiting its reply: what to repair if it fails. */
struct pending {
	struct dir *d;
	uint64_t ts_ns;
	int db;
	int nkeys;
	uint32_t parts; /* replies still expected (a transaction: MULTI, cmds, EXEC) */
	bool failed;
	size_t *klen;
	char *kdata; /* the keys (source-side names), one after the other */
	size_t kbytes;
};

static void pending_free(struct pending *p)
{
	free(p->klen);
	free(p->kdata);
	free(p);
}

static void repair_keys_of(struct pending *p, uint64_t delay)
{
	size_t off = 0;

	for (int i = 0; i < p->nkeys; i++) {
		mark_dirty(p->d, p->db, p->kdata + off, p->klen[i], delay);
		off += p->klen[i];
	}
}

static void on_replayed(struct sy_redis *c, redisReply *r, void *priv)
{
	struct pending *p = priv;
	struct dir *d = p->d;

	(void)c;
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
		uint64_t now = mono_ns(), lag_ms = now > p->ts_ns ? (now - p->ts_ns) / 1000000 : 0;

		d->st.mirrored++;
		d->st.lag[log2_bucket(now > p->ts_ns ? (now - p->ts_ns) / 1000 : 0)]++;
		if (sy_now_ms() - d->lag_epoch_ms >= 2000) {
			d->lag_prev_ms = d->lag_cur_ms;
			d->lag_cur_ms = 0;
			d->lag_epoch_ms = sy_now_ms();
		}
		if (lag_ms > d->lag_cur_ms)
			d->lag_cur_ms = lag_ms;
	}
	pending_free(p);
}

static struct pending *pending_new(struct dir *d, uint64_t ts, int db)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (p) {
		p->d = d;
		p->ts_ns = ts;
		p->db = db;
	}
	return p;
}

static int pending_keys(struct pending *p, int argc, const char *const *argv, const size_t *lens,
			const int *idx, int n)
{
	size_t add = 0, *l;
	char *k;

	for (int i = 0; i < n; i++)
		if (idx[i] < argc)
			add += lens[idx[i]];
	l = realloc(p->klen, (size_t)(p->nkeys + n) * sizeof(*l));
	if (!l)
		return -ENOMEM;
	p->klen = l;
	k = realloc(p->kdata, p->kbytes + add + 1);
	if (!k)
		return -ENOMEM;
	p->kdata = k;
	for (int i = 0; i < n; i++) {
		if (idx[i] >= argc)
			continue;
		memcpy(p->kdata + p->kbytes, argv[idx[i]], lens[idx[i]]);
		p->kbytes += lens[idx[i]];
		l[p->nkeys++] = lens[idx[i]];
	}
	return 0;
}

/* ---- parsing a captured body ---------------------------------------------------------- */

#define ARGS_INLINE 64

/* A captured command's arguments, pointing into the captured bytes (no copies). */
struct args {
	int argc;
	const char **argv;
	size_t *lens;
	const char *argv_s[ARGS_INLINE];
	size_t lens_s[ARGS_INLINE];
};

static void args_free(struct args *a)
{
	if (a->argv && a->argv != a->argv_s) {
		free(a->argv);
		free(a->lens);
	}
	a->argv = NULL;
	a->lens = NULL;
	a->argc = 0;
}

static int args_push(struct args *a, size_t *cap, const char *p, size_t n)
{
	if ((size_t)a->argc == *cap) {
		size_t nc = *cap * 2;
		const char **v = malloc(nc * sizeof(*v));
		size_t *l = malloc(nc * sizeof(*l));

		if (!v || !l || nc > MAX_ARGS) {
			free(v);
			free(l);
			return -ENOMEM;
		}
		memcpy(v, a->argv, (size_t)a->argc * sizeof(*v));
		memcpy(l, a->lens, (size_t)a->argc * sizeof(*l));
		args_free(a);
		a->argv = v;
		a->lens = l;
		a->argc = (int)(*cap);
		*cap = nc;
	}
	a->argv[a->argc] = p;
	a->lens[a->argc++] = n;
	return 0;
}

/* name + body (RESP arguments from argv[1], or the rest of an inline line) → argv.
 * -EINVAL when the body is not what it should be (a truncated one included: then
 * a->argc says how many arguments were complete). */
static int parse_args(const struct sy_captured *c, struct args *a)
{
	size_t cap = ARGS_INLINE, pos = 0;
	const char *b = (const char *)c->body;

	memset(a, 0, sizeof(*a) - sizeof(a->argv_s) - sizeof(a->lens_s));
	a->argv = a->argv_s;
	a->lens = a->lens_s;
	if (args_push(a, &cap, c->name, strnlen(c->name, SY_CMD_NAME_MAX)))
		return -ENOMEM;
	if (c->is_inline) {
		size_t i = 0;

		while (i < c->len && b[i] != '\r' && b[i] != '\n') {
			size_t st;

			while (i < c->len && (b[i] == ' ' || b[i] == '\t'))
				i++;
			if (i >= c->len || b[i] == '\r' || b[i] == '\n')
				break;
			st = i;
			while (i < c->len && b[i] != ' ' && b[i] != '\t' && b[i] != '\r' && b[i] != '\n')
				i++;
			if (args_push(a, &cap, b + st, i - st))
				return -ENOMEM;
		}
		return 0;
	}
	if (c->argc > MAX_ARGS)
		return -EINVAL;
	while ((uint32_t)a->argc < c->argc) {
		size_t n = 0, digits = 0;

		if (pos >= c->len || b[pos] != '$')
			return -EINVAL;
		pos++;
		while (pos < c->len && b[pos] >= '0' && b[pos] <= '9' && digits < 10) {
			n = n * 10 + (size_t)(b[pos++] - '0');
			digits++;
		}
		if (!digits || pos + 2 > c->len || b[pos] != '\r' || b[pos + 1] != '\n')
			return -EINVAL;
		pos += 2;
		if (n > c->len - pos || c->len - pos - n < 2)
			return -EINVAL;
		if (args_push(a, &cap, b + pos, n))
			return -ENOMEM;
		pos += n + 2;
	}
	return 0;
}

/* As many leading arguments as a truncated body holds (for its keys). */
static int parse_prefix(const struct sy_captured *c, struct args *a)
{
	struct sy_captured t = *c;
	int e;

	/* parse what is complete: stop at the first argument that runs past the end */
	e = parse_args(&t, a);
	if (e != -EINVAL)
		return e;
	if (a->argc > 1)
		return 0;
	args_free(a);
	return -EINVAL;
}

/* ---- per-client-connection state ---------------------------------------------------- */

static void txn_clear(struct src *s)
{
	struct txcmd *t = s->txn_head;

	while (t) {
		struct txcmd *n = t->next;

		free(t->argv);
		free(t->lens);
		free(t->keys);
		free(t);
		t = n;
	}
	s->txn_head = s->txn_tail = NULL;
	s->txn_n = 0;
	s->in_multi = false;
	s->txn_bad = false;
}

#define SRC_WAYS 8

static void flag_audit(struct dir *d, const char *why);

/* The state of client connection `cookie`. Sockets never say they closed, so the table
 * forgets the least recently active of SRC_WAYS candidates; forgetting one that had a
 * database selected or a transaction open would replay its next writes wrongly, so
 * that is flagged. */
static struct src *src_of(struct mig *g, uint64_t cookie)
{
	size_t h = (size_t)(cookie * 0x9e3779b97f4a7c15ull >> 40);
	struct src *s, *victim = NULL;

	if (!g->srcs && !(g->srcs = calloc(SRC_SLOTS, sizeof(*g->srcs))))
		return NULL;
	for (size_t k = 0; k < SRC_WAYS; k++) {
		s = &g->srcs[(h + k) & (SRC_SLOTS - 1)];
		if (s->cookie == cookie) {
			s->last_ms = sy_now_ms();
			return s;
		}
		if (!s->cookie) {
			victim = s;
			break;
		}
		if (!victim || s->last_ms < victim->last_ms)
			victim = s;
	}
	if (victim->cookie && (victim->in_multi || victim->db != 0) && sy_now_ms() - victim->last_ms < 60000)
		for (int k = 0; k < 2; k++)
			flag_audit(&g->d[k],
				   "too many client connections at once: one's SELECT/MULTI state was lost");
	txn_clear(victim);
	memset(victim, 0, sizeof(*victim));
	victim->cookie = cookie;
	victim->last_ms = sy_now_ms();
	return victim;
}

/* ---- conflicts ------------------------------------------------------------------------ */

/* The writers' table entry of a key named as `side` names it (compared by its
 * legacy-side name). create: take the slot over if another key holds it; else NULL. */
static struct lastw *lastw_of(struct mig *g, int side, int db, const char *k, size_t len, bool create)
{
	char buf[1024];
	const char *lk = k;
	size_t ll = len;
	struct lastw *w;
	uint64_t fp;

	if (side == SY_SIDE_TARGET)
		ll = sy_key_map(&g->spec, SY_SIDE_TARGET, k, len, buf, sizeof(buf), &lk);
	if (!g->lastw && (!create || !(g->lastw = calloc(LASTW_SLOTS, sizeof(*g->lastw)))))
		return NULL;
	fp = sy_fnv1a(lk, ll, SY_FNV_OFFSET ^ (uint64_t)db) | 1;
	/* 4-way sets: a key's entry is only reused for another key once it is the oldest
	 * of its set, so keys written now never lose their history to a hash collision
	 * (a lost entry would hide a conflict, or call a settling key drift) */
	w = &g->lastw[(fp >> 40) & (LASTW_SLOTS - LASTW_WAYS)];
	for (int i = 0; i < LASTW_WAYS; i++)
		if (w[i].fp == fp)
			return &w[i];
	if (!create)
		return NULL;
	{
		struct lastw *old = w;

		for (int i = 1; i < LASTW_WAYS; i++) {
			uint64_t a = w[i].ms > w[i].hot_until_ms ? w[i].ms : w[i].hot_until_ms;
			uint64_t b = old->ms > old->hot_until_ms ? old->ms : old->hot_until_ms;

			if (a < b)
				old = &w[i];
		}
		memset(old, 0, sizeof(*old));
		old->fp = fp;
		return old;
	}
}

/* Records a write of key k (source-side name) by connection `cookie` on `side`; true
 * when another connection — on either side — wrote it within CONFLICT_MS, or a
 * conflict on it is recent. Replays of different connections travel on different
 * destination connections, so two writers of one key may be applied in another order
 * on the other side: such keys are re-copied once things settle. Keys are compared by
 * their legacy-side names. */
static bool conflict(struct mig *g, int side, uint64_t cookie, int db, const char *k, size_t len)
{
	struct lastw *w = lastw_of(g, side, db, k, len, true);
	uint64_t now = sy_now_ms();
	bool hit;

	if (!w)
		return false;
	hit = (w->ms && (w->side != side || w->cookie != cookie) && now - w->ms <= CONFLICT_MS) ||
	      now < w->hot_until_ms;
	if (hit)
		w->hot_until_ms = now + 2 * CONFLICT_MS;
	w->cookie = cookie;
	w->ms = now;
	w->side = (uint8_t)side;
	return hit;
}

/* ---- the capture callback -------------------------------------------------------------- */

static void sync_mig(struct sy_mirror *m, struct mig *g, const struct sy_migration_state *ms);

/* The registry's migration in slot id, as of its last commit, or NULL. */
static const struct sy_migration_state *seen_of(const struct sy_mirror *m, uint32_t id)
{
	return id < SY_MAX_MIGRATIONS && m->seen[id].id ? &m->seen[id] : NULL;
}

/* argv with every key renamed for the other side; `store` holds the new names. */
static int rewrite_argv(const struct mig *g, int from_side, const struct args *a, const int *keys, int nkeys,
			const char ***argv_out, size_t **lens_out, char **store)
{
	size_t total = 0, off = 0;
	const char **argv = malloc((size_t)a->argc * sizeof(*argv));
	size_t *lens = malloc((size_t)a->argc * sizeof(*lens));

	for (int i = 0; i < nkeys; i++)
		total += a->lens[keys[i]] + SY_PREFIX_MAX;
	*store = malloc(total + 1);
	if (!argv || !lens || !*store) {
		free(argv);
		free(lens);
		free(*store);
		*store = NULL;
		return -ENOMEM;
	}
	memcpy(argv, a->argv, (size_t)a->argc * sizeof(*argv));
	memcpy(lens, a->lens, (size_t)a->argc * sizeof(*lens));
	for (int i = 0; i < nkeys; i++) {
		size_t cap = a->lens[keys[i]] + SY_PREFIX_MAX;

		lens[keys[i]] = sy_key_map(&g->spec, from_side, a->argv[keys[i]], a->lens[keys[i]],
					   *store + off, cap, &argv[keys[i]]);
		off += cap;
	}
	*argv_out = argv;
	*lens_out = lens;
	return 0;
}

#define LATE_TTL_MS 200

/* A relative expiry (EXPIRE 10, SET … EX 10) replayed late expires late: past
 * LATE_TTL_MS the key is copied instead, and the copy carries the exact PTTL. */
static bool relative_ttl(const struct args *a)
{
	static const char *const always[] = {"EXPIRE", "PEXPIRE", "SETEX", "PSETEX"};
	const char *n = a->argv[0];

	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		if (a->lens[0] == strlen(always[i]) && strncasecmp(n, always[i], a->lens[0]) == 0)
			return true;
	if ((a->lens[0] == 3 && strncasecmp(n, "SET", 3) == 0) ||
	    (a->lens[0] == 5 && strncasecmp(n, "GETEX", 5) == 0))
		for (int i = 2; i < a->argc; i++)
			if (a->lens[i] == 2 &&
			    (strncasecmp(a->argv[i], "EX", 2) == 0 || strncasecmp(a->argv[i], "PX", 2) == 0))
				return true;
	return false;
}

static void replay(struct dir *d, struct src *s, struct args *a, const struct sy_captured *c, int *keys,
		   int nkeys)
{
	struct mig *g = d->mig;
	struct pending *p = NULL;
	struct dconn *dc = dst_for(d, c->cookie);
	uint32_t limit = g->spec.mirror_queue ? g->spec.mirror_queue : SY_MIRROR_QUEUE_DEFAULT;
	int e;

	p = pending_new(d, c->ts_ns, s->db);
	if (!p || pending_keys(p, a->argc, a->argv, a->lens, keys, nkeys))
		goto fail;
	if (d->inflight >= limit) {
		d->st.dropped++;
		repair_keys_of(p, SETTLE_MS);
		pending_free(p);
		return;
	}
	if (mono_ns() - c->ts_ns > LATE_TTL_MS * 1000000ull && relative_ttl(a)) {
		repair_keys_of(p, 0);
		pending_free(p);
		return;
	}
	if (!sy_redis_alive(dc->r) || select_db(dc, s->db, ignore_reply))
		goto fail;
	p->parts = 1;
	if (!g->spec.n_rewrite && !c->is_inline) {
		/* the captured bytes as they are: the header rebuilt, the body copied once */
		size_t nl = a->lens[0], cap = c->len + nl + 64;
		char *raw = malloc(cap);
		int h;

		if (!raw)
			goto fail;
		h = snprintf(raw, cap, "*%u\r\n$%zu\r\n", c->argc, nl);
		memcpy(raw + h, c->name, nl);
		memcpy(raw + h + nl, "\r\n", 2);
		memcpy(raw + h + nl + 2, c->body, c->len);
		e = sy_redis_send(dc->r, raw, (size_t)h + nl + 2 + c->len, on_replayed, p);
		free(raw);
	} else if (g->spec.n_rewrite) {
		const char **argv;
		size_t *lens;
		char *store;

		if (rewrite_argv(g, src_side(d), a, keys, nkeys, &argv, &lens, &store))
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
	d->inflight++;
	d->st.queued = d->inflight;
	return;
fail:
	d->st.failed++;
	if (p) {
		repair_keys_of(p, RETRY_MS);
		pending_free(p);
	}
}

/* EXEC: the collected transaction as one unit on one connection. */
static void replay_txn(struct dir *d, struct src *s, uint64_t ts, uint64_t cookie)
{
	struct mig *g = d->mig;
	struct dconn *dc = dst_for(d, cookie);
	struct pending *p = pending_new(d, ts, s->db);
	uint32_t limit = g->spec.mirror_queue ? g->spec.mirror_queue : SY_MIRROR_QUEUE_DEFAULT;
	const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
	size_t ml[1] = {5}, el[1] = {4};
	bool ok = p != NULL;

	for (struct txcmd *t = s->txn_head; ok && t; t = t->next)
		ok = pending_keys(p, t->argc, (const char *const *)t->argv, t->lens, t->keys, t->nkeys) == 0;
	if (!ok)
		goto fail;
	if (s->txn_n == 0) { /* reads only, or nothing: nothing to replay */
		pending_free(p);
		return;
	}
	if (s->txn_bad || d->inflight >= limit) {
		if (!s->txn_bad)
			d->st.dropped++;
		repair_keys_of(p, SETTLE_MS);
		pending_free(p);
		return;
	}
	if (!sy_redis_alive(dc->r) || select_db(dc, s->db, ignore_reply))
		goto fail;
	p->parts = (uint32_t)s->txn_n + 2;
	if (sy_redis_sendv(dc->r, 1, multi, ml, on_replayed, p))
		goto fail;
	d->inflight++;
	d->st.queued = d->inflight;
	/* from here every part answers (a part that could not be sent counts as failed) */
	for (struct txcmd *t = s->txn_head; t; t = t->next) {
		struct args v = {.argc = t->argc, .argv = (const char **)t->argv, .lens = t->lens};
		const char **argv = v.argv;
		size_t *lens = t->lens;
		char *store = NULL;

		if (g->spec.n_rewrite &&
		    rewrite_argv(g, src_side(d), &v, t->keys, t->nkeys, &argv, &lens, &store)) {
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
	d->st.failed++;
	if (p) {
		repair_keys_of(p, RETRY_MS);
		pending_free(p);
	}
}

/* Keeps one command of a transaction (the argv is moved into it). */
static int txn_add(struct src *s, struct args *a, const int *keys, int nkeys)
{
	struct txcmd *t = calloc(1, sizeof(*t));
	char *copy;
	size_t total = 0;

	if (!t)
		return -ENOMEM;
	for (int i = 0; i < a->argc; i++)
		total += a->lens[i];
	/* own copies: a->store is freed by the caller */
	t->argv = malloc((size_t)a->argc * sizeof(char *) + total + 1);
	t->lens = malloc((size_t)a->argc * sizeof(size_t));
	t->keys = malloc((size_t)(nkeys ? nkeys : 1) * sizeof(int));
	if (!t->argv || !t->lens || !t->keys) {
		free(t->argv);
		free(t->lens);
		free(t->keys);
		free(t);
		return -ENOMEM;
	}
	copy = (char *)(t->argv + a->argc);
	for (int i = 0; i < a->argc; i++) {
		memcpy(copy, a->argv[i], a->lens[i]);
		t->argv[i] = copy;
		t->lens[i] = a->lens[i];
		copy += a->lens[i];
	}
	t->argc = a->argc;
	memcpy(t->keys, keys, (size_t)nkeys * sizeof(int));
	t->nkeys = nkeys;
	if (s->txn_tail)
		s->txn_tail->next = t;
	else
		s->txn_head = t;
	s->txn_tail = t;
	s->txn_n++;
	return 0;
}

void sy_mirror_on_captured(const struct sy_captured *c, void *arg)
{
	struct sy_mirror *m = arg;
	const struct sy_migration_state *ms;
	const struct sy_command *cmd;
	struct mig *g;
	struct dir *d;
	struct src *s;
	struct args a;
	int *keys = NULL, nkeys = 0, e;

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
	cmd = sy_command_find(c->name, strnlen(c->name, SY_CMD_NAME_MAX));
	if (!cmd)
		return;
	if (cmd->flags & SY_CMDF_TXN_MULTI) {
		txn_clear(s);
		s->in_multi = true;
		return;
	}
	if (cmd->flags & SY_CMDF_TXN_DISCARD) {
		txn_clear(s);
		return;
	}
	if (cmd->flags & SY_CMDF_TXN_EXEC) {
		if (s->in_multi)
			replay_txn(d, s, c->ts_ns, c->cookie);
		txn_clear(s);
		return;
	}
	e = c->truncated ? parse_prefix(c, &a) : parse_args(c, &a);
	if (e) {
		args_free(&a);
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
		args_free(&a);
		return;
	}
	if (cmd->flags & SY_CMDF_ADMIN) {
		flag_audit(d, "an administrative write (FLUSHDB, SWAPDB, …) cannot be mirrored");
		args_free(&a);
		return;
	}
	keys = malloc((size_t)(a.argc ? a.argc : 1) * sizeof(int));
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
			free(keys);
			args_free(&a);
			return;
		}
		if (c->truncated)
			flag_audit(d, "a truncated write may have more keys than were captured");
	}
	if (c->truncated && (uint32_t)a.argc < c->argc &&
	    (cmd->last < 0 || cmd->last >= a.argc || (cmd->flags & (SY_CMDF_NUMKEYS | SY_CMDF_STREAMS))))
		flag_audit(d, "a truncated write may have more keys than were captured");
	for (int i = 0; i < nkeys; i++)
		if (conflict(g, c->side, c->cookie, s->db, a.argv[keys[i]], a.lens[keys[i]])) {
			/* copied in one direction only, so two copies never cross: from legacy
			 * (authoritative) when writes on legacy are mirrored, else from target */
			struct dir *auth =
				&g->d[(g->mirror & SY_CAPTURE_LEGACY) ? SY_DIR_FORWARD : SY_DIR_REVERSE];
			char buf[1024];
			const char *lk = a.argv[keys[i]];
			size_t ll = a.lens[keys[i]];

			if (auth->dir == SY_DIR_FORWARD && c->side == SY_SIDE_TARGET)
				ll = sy_key_map(&g->spec, SY_SIDE_TARGET, lk, ll, buf, sizeof(buf), &lk);
			auth->st.conflicts++;
			mark_dirty(auth, s->db, lk, ll, CONFLICT_SETTLE_MS);
		}
	if (c->truncated || (cmd->flags & SY_CMDF_NONDET)) {
		/* not replayable exactly: copy the result instead */
		for (int i = 0; i < nkeys; i++)
			mark_dirty(d, s->db, a.argv[keys[i]], a.lens[keys[i]], SETTLE_MS);
		if (s->in_multi)
			s->txn_bad = true;
	} else if (s->in_multi) {
		if (txn_add(s, &a, keys, nkeys))
			s->txn_bad = true;
	} else {
		replay(d, s, &a, c, keys, nkeys);
	}
	free(keys);
	args_free(&a);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static void dir_stop(struct dir *d)
{
	struct sy_loop *l = d->mig->m->loop;

	for (int i = 0; i <= NCONN; i++) {
		struct dconn *dc = i < NCONN ? &d->dst[i] : &d->src;

		sy_loop_cancel_timer(l, dc->retry_timer);
		dc->retry_timer = 0;
		sy_redis_free(dc->r); /* pending replies run with NULL: their keys go dirty */
		dc->r = NULL;
	}
	sy_loop_cancel_timer(l, d->repair_timer);
	d->repair_timer = 0;
}

static void mig_stop(struct mig *g)
{
	g->active = false;
	for (int k = 0; k < 2; k++)
		dir_stop(&g->d[k]);
	for (int k = 0; k < 2; k++) {
		dirty_free(&g->d[k].dirty);
		memset(&g->d[k].st, 0, sizeof(g->d[k].st));
		g->d[k].inflight = 0;
		g->d[k].repairs_inflight = 0;
	}
	if (g->srcs)
		for (size_t i = 0; i < SRC_SLOTS; i++)
			txn_clear(&g->srcs[i]);
	free(g->srcs);
	g->srcs = NULL;
	free(g->lastw);
	g->lastw = NULL;
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
		for (int i = 0; i < NCONN; i++) {
			d->dst[i].d = d;
			d->dst[i].is_src = false;
			conn_open(&d->dst[i]);
		}
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
static void on_commit(void *ctx, const struct sy_commit *c)
{
	struct sy_mirror *m = ctx;

	for (uint32_t id = 1; id < SY_MAX_MIGRATIONS; id++) {
		const struct sy_migration_state *ms = sy_mset_by_id(c->after, c->n_after, id);
		struct sy_migration_state *cur = &m->seen[id];
		struct mig *g = &m->migs[id];

		if (!ms) {
			memset(cur, 0, sizeof(*cur));
			if (g->active)
				mig_stop(g);
			continue;
		}
		*cur = *ms;
		cur->spec.pins = NULL;
		cur->spec.n_pins = 0;
		cur->pin_cgroup_ids = NULL;
		if (!g->active)
			continue;
		if (strcmp(g->name, cur->spec.name) != 0 || g->created_ms != cur->created_unix_ms)
			mig_stop(g);
		else
			sync_mig(m, g, cur);
	}
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
	free(m);
}

void sy_mirror_stats(const struct sy_mirror *m, uint32_t mig_id, int dir, struct sy_mirror_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!m || mig_id >= SY_MAX_MIGRATIONS || dir < 0 || dir > 1 || !m->migs[mig_id].active)
		return;
	*out = m->migs[mig_id].d[dir].st;
	out->queued = m->migs[mig_id].d[dir].inflight;
	out->dirty = m->migs[mig_id].d[dir].dirty.n + m->migs[mig_id].d[dir].repairs_inflight;
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

/* Marks a key being repaired on d (source-side name) hot in the writers' table. */
static void mark_hot(struct dir *d, int db, const char *key, size_t len)
{
	struct lastw *w = lastw_of(d->mig, src_side(d), db, key, len, true);

	if (w)
		w->hot_until_ms = sy_now_ms() + 2 * CONFLICT_MS;
}

void sy_mirror_note_copy(struct sy_mirror *m, uint32_t mig_id, int db, const char *key, size_t len)
{
	const struct sy_migration_state *ms;
	struct mig *g;
	struct lastw *w;

	if (!m || !(ms = seen_of(m, mig_id)))
		return;
	g = &m->migs[mig_id];
	sync_mig(m, g, ms);
	w = lastw_of(g, SY_SIDE_LEGACY, db, key, len, true);
	if (!w)
		return;
	/* a write just before may still be on its way to the other side, where it would
	 * land on top of the copy (twice, for an INCR): copy again once it landed */
	if (w->ms && sy_now_ms() - w->ms <= 2 * CONFLICT_MS)
		mark_dirty(&g->d[SY_DIR_FORWARD], db, key, len, CONFLICT_SETTLE_MS);
	w->hot_until_ms = sy_now_ms() + 2 * CONFLICT_MS;
}

bool sy_mirror_key_busy(struct sy_mirror *m, uint32_t mig_id, int db, const char *key, size_t len,
			uint64_t window_ms)
{
	const struct lastw *w;
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
	w = lastw_of(g, SY_SIDE_LEGACY, db, key, len, false);
	if (w && sy_now_ms() - w->ms <= window_ms)
		return true;
	for (int k = 0; k < 2; k++) {
		struct dir *d = &g->d[k];
		char buf[1024];
		const char *dk = key;
		size_t dl = len;

		if (d->repairs_inflight)
			return true; /* cheap and safe: while repairs run, wait */
		if (!d->dirty.tab)
			continue;
		if (k == SY_DIR_REVERSE)
			dl = sy_key_map(&g->spec, SY_SIDE_LEGACY, key, len, buf, sizeof(buf), &dk);
		if (*dirty_slot(&d->dirty, sy_fnv1a(dk, dl, SY_FNV_OFFSET ^ (uint64_t)db), db, dk, dl))
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
				n += m->migs[i].d[k].inflight + m->migs[i].d[k].dirty.n +
				     m->migs[i].d[k].repairs_inflight;
	return n;
}
