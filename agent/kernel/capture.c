// SPDX-License-Identifier: Apache-2.0
/* capture.c — see capture.h. */
#include "kernel/capture.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis/commands.h"
#include "redis/resp_scan.h"
#include "core/log.h"
#include "core/loop.h"

#define REASM_SLOTS   4096 /* half-assembled commands at once (power of two) */
#define REASM_MAX_LEN (SY_EV_FRAG_MAX + (1u << 20))
#define STALE_NS      (30ull * 1000000000ull) /* a socket silent this long mid-command */

struct pending {
	uint64_t cookie; /* 0: free */
	uint64_t last_ns;
	struct sy_ev_hdr h; /* of the first fragment */
	uint8_t *buf;
	size_t len, cap;
};

struct sy_reasm {
	struct pending *tab;
	size_t mask;
	size_t used;
	sy_capture_cb cb;
	void *arg;
	struct sy_capture_stats dropped_no_mig; /* records naming no valid migration */
	/* the last name looked up in the command table and its entry: a run of one
	 * command (the usual load) skips the table's binary search */
	char last_name[SY_CMD_NAME_MAX + 1];
	const struct sy_command *last_cmd;
};

struct sy_capture {
	struct sy_loop *loop;
	struct ring_buffer *rb;
	struct sy_reasm *ra;
	unsigned drain_ms;
	uint64_t timer;
	uint64_t last_sweep_ms;
	uint64_t last_records_ms; /* when a drain last found records */
	struct sy_capture_stats per[SY_MAX_MIGRATIONS];
};

static size_t slot_of(const struct sy_reasm *r, uint64_t cookie)
{
	uint64_t x = cookie * 0x9e3779b97f4a7c15ull;

	return (size_t)(x >> 32) & r->mask;
}

static struct pending *find(struct sy_reasm *r, uint64_t cookie)
{
	for (size_t i = slot_of(r, cookie), n = 0; n <= r->mask; i = (i + 1) & r->mask, n++) {
		if (r->tab[i].cookie == cookie)
			return &r->tab[i];
		if (r->tab[i].cookie == 0)
			return NULL;
	}
	return NULL;
}

static struct pending *insert(struct sy_reasm *r, uint64_t cookie)
{
	if (r->used * 4 >= (r->mask + 1) * 3)
		return NULL; /* keep probes short: a full table drops instead */
	for (size_t i = slot_of(r, cookie);; i = (i + 1) & r->mask) {
		if (r->tab[i].cookie == 0) {
			r->tab[i].cookie = cookie;
			r->tab[i].len = 0;
			r->used++;
			return &r->tab[i];
		}
	}
}

/* Backward-shift deletion: no tombstones, probes stay correct. */
static void erase(struct sy_reasm *r, struct pending *p)
{
	size_t i = (size_t)(p - r->tab), j = i;

	for (;;) {
		j = (j + 1) & r->mask;
		if (r->tab[j].cookie == 0)
			break;
		size_t home = slot_of(r, r->tab[j].cookie);

		/* move j back to i when its home is not in (i, j] (cyclically) */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			struct pending t = r->tab[i];

			r->tab[i] = r->tab[j];
			r->tab[j] = t;
			i = j;
		}
	}
	r->tab[i].cookie = 0;
	r->tab[i].len = 0;
	r->used--;
}

struct sy_reasm *sy_reasm_new(size_t max_pending, sy_capture_cb cb, void *arg)
{
	struct sy_reasm *r = calloc(1, sizeof(*r));
	size_t n = 16;

	while (n < max_pending * 2)
		n *= 2;
	if (!r || !(r->tab = calloc(n, sizeof(*r->tab)))) {
		free(r);
		return NULL;
	}
	r->mask = n - 1;
	r->cb = cb;
	r->arg = arg;
	return r;
}

void sy_reasm_free(struct sy_reasm *r)
{
	if (!r)
		return;
	for (size_t i = 0; i <= r->mask; i++)
		free(r->tab[i].buf);
	free(r->tab);
	free(r);
}

static void deliver(struct sy_reasm *r, const struct sy_ev_hdr *h, uint8_t flags, const uint8_t *body,
		    size_t len, struct sy_capture_stats *st)
{
	/* an initializer, not memset (gcc's `rep stos`, slow to start, for every command) */
	struct sy_captured c = {.type = h->type};
	size_t nl = h->name_len < SY_CMD_NAME_MAX ? h->name_len : SY_CMD_NAME_MAX;

	c.side = h->side;
	c.mig_id = h->mig_id;
	c.rule = h->rule;
	c.cookie = h->cookie;
	c.cmd_seq = h->cmd_seq;
	c.argc = h->argc;
	c.ts_ns = h->ts_ns;
	memcpy(c.name, h->name, nl);
	c.body = body;
	c.len = len;
	c.total = h->type == SY_EVT_WRITE ? h->total : len;
	c.truncated = (flags & SY_EVF_TRUNCATED) != 0;
	c.aborted = (flags & SY_EVF_ABORT) != 0;
	c.is_inline = (flags & SY_EVF_INLINE) != 0;
	if (c.type == SY_EVT_READ_KEY) {
		st->read_keys++;
	} else if (c.aborted) {
		st->aborted++;
	} else {
		const struct sy_command *cmd = r->last_cmd;

		/* both names are zero padded */
		if (!cmd || memcmp(r->last_name, c.name, sizeof(c.name)) != 0) {
			cmd = sy_command_find(c.name, strnlen(c.name, SY_CMD_NAME_MAX));
			memcpy(r->last_name, c.name, sizeof(c.name));
			r->last_cmd = cmd;
		}
		c.cmd = cmd;
		/* SELECT, MULTI, EXEC come too (the mirror follows them): not writes */
		if (cmd && cmd->class == SY_CLASS_WRITE) {
			st->writes++;
			st->bytes += len;
			if (c.truncated)
				st->truncated++;
		}
	}
	if (r->cb)
		r->cb(&c, r->arg);
}

static int append(struct pending *p, const uint8_t *d, size_t n)
{
	if (!n)
		return 0; /* nothing to copy, and maybe no buffer yet to copy into */
	if (p->len + n > REASM_MAX_LEN)
		return -E2BIG;
	if (p->len + n > p->cap) {
		size_t cap = p->cap ? p->cap : 1024;
		uint8_t *b;

		while (cap < p->len + n)
			cap *= 2;
		b = realloc(p->buf, cap);
		if (!b)
			return -ENOMEM;
		p->buf = b;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, d, n);
	p->len += n;
	return 0;
}

/* ---- batch records (SY_EVF_BATCH) -------------------------------------------------
 * Several whole commands in one record. They are split by the machine the kernel ran
 * over the same bytes (resp_scan.c, fast paths on as in the kernel), so both ends agree
 * on where each command and its arguments start, even where the machine, as Redis,
 * skips a byte unchecked. Each command goes out as a FIRST|LAST record would have.
 * Anything else than `total` back-to-back RESP commands filling the record is lost
 * for the mirror: those already delivered stay, and one aborted capture follows (the
 * mirror then wants an audit). */

#define BATCH_MIN_CMD  10 /* "*1\r\n$0\r\n\r\n", the shortest command */
#define BATCH_MAX_CMDS (SY_EV_FRAG_MAX / BATCH_MIN_CMD)

struct batch {
	struct sy_reasm *r;
	const struct sy_ev_hdr *h;
	const uint8_t *data;
	struct sy_capture_stats *st;
	const struct sy_resp_scan *scan;
	uint32_t n;   /* commands delivered */
	uint64_t end; /* where the last one ended */
	bool bad;
};

static void on_batch_cmd(const struct sy_resp_cmd *c, void *arg)
{
	struct batch *b = arg;
	struct sy_ev_hdr one;

	if (b->bad || b->scan->unparsed || c->is_inline || c->name_truncated || c->start != b->end ||
	    b->n >= b->h->total) {
		b->bad = true;
		return;
	}
	one = *b->h;
	memcpy(one.name, c->name, sizeof(one.name)); /* zero padded, as the kernel's */
	one.name_len = (uint8_t)c->name_len;
	one.argc = c->argc;
	one.cmd_seq = b->h->cmd_seq + b->n;
	b->end = c->start + c->bytes;
	one.total = (uint32_t)(b->end - c->args_at);
	deliver(b->r, &one, SY_EVF_FIRST | SY_EVF_LAST, b->data + c->args_at, one.total, b->st);
	b->n++;
}

static int feed_batch(struct sy_reasm *r, const struct sy_ev_hdr *h, const uint8_t *data,
		      struct sy_capture_stats *st)
{
	struct batch b = {.r = r, .h = h, .data = data, .st = st};
	struct sy_resp_scan s;
	struct sy_ev_hdr lost;

	if ((h->flags & (SY_EVF_FIRST | SY_EVF_LAST)) == (SY_EVF_FIRST | SY_EVF_LAST) &&
	    !(h->flags & (SY_EVF_TRUNCATED | SY_EVF_INLINE | SY_EVF_ABORT)) && h->total &&
	    h->total <= BATCH_MAX_CMDS && h->len <= SY_EV_FRAG_MAX) {
		sy_resp_scan_init(&s, true, on_batch_cmd, &b);
		s.no_table = true; /* deliver looks the name up, once per run of one name */
		b.scan = &s;
		sy_resp_scan_feed(&s, data, h->len);
		if (!b.bad && !s.unparsed && sy_resp_scan_between(&s) && b.end == h->len && b.n == h->total)
			return 0;
	}
	st->dropped++;
	lost = *h;
	memset(lost.name, 0, sizeof(lost.name));
	lost.name_len = 0;
	lost.argc = 0;
	lost.cmd_seq = h->cmd_seq + b.n;
	deliver(r, &lost, SY_EVF_ABORT, NULL, 0, st);
	return -EPROTO;
}

int sy_reasm_feed(struct sy_reasm *r, const void *rec, size_t size, struct sy_capture_stats *per_mig)
{
	struct sy_ev_hdr h;
	const uint8_t *data = (const uint8_t *)rec + sizeof(h);
	struct sy_capture_stats *st;
	struct pending *p;

	if (size < sizeof(h))
		return -EINVAL;
	memcpy(&h, rec, sizeof(h));
	if (h.len != size - sizeof(h) || h.mig_id == 0 || h.mig_id >= SY_MAX_MIGRATIONS ||
	    (h.type != SY_EVT_WRITE && h.type != SY_EVT_READ_KEY)) {
		r->dropped_no_mig.dropped++;
		return -EINVAL;
	}
	st = &per_mig[h.mig_id];
	st->records++;
	if (h.type == SY_EVT_READ_KEY) {
		deliver(r, &h, h.flags, data, h.len, st);
		return 0;
	}
	p = find(r, h.cookie);
	if (h.flags & SY_EVF_BATCH) {
		if (p) /* the previous command never finished: the kernel lost it */
			erase(r, p);
		return feed_batch(r, &h, data, st);
	}
	if (h.flags & SY_EVF_FIRST) {
		if (p) /* the previous command never finished: the kernel lost it */
			erase(r, p);
		if (h.flags & SY_EVF_LAST) {
			/* outside the counting prefixes is still migrated: the mirror
			 * decides by the scope (prefixes only count) */
			deliver(r, &h, h.flags, data, h.len, st);
			return 0;
		}
		p = insert(r, h.cookie);
		if (!p) {
			st->dropped++;
			return -ENOSPC;
		}
		p->h = h;
		p->last_ns = h.ts_ns;
		if (append(p, data, h.len)) {
			erase(r, p);
			st->dropped++;
			return -E2BIG;
		}
		return 0;
	}
	if (!p || p->h.cmd_seq != h.cmd_seq || h.off != p->len) {
		if (h.flags & SY_EVF_ABORT) {
			if (p)
				erase(r, p);
			deliver(r, &h, h.flags, NULL, 0, st);
			return 0;
		}
		st->dropped++;
		if (p)
			erase(r, p);
		return -EPROTO;
	}
	p->last_ns = h.ts_ns;
	if ((h.flags & SY_EVF_ABORT) || append(p, data, h.len)) {
		struct sy_ev_hdr first = p->h;

		erase(r, p);
		if (h.flags & SY_EVF_ABORT)
			deliver(r, &first, SY_EVF_ABORT, NULL, 0, st);
		else
			st->dropped++;
		return 0;
	}
	if (h.flags & SY_EVF_LAST) {
		struct sy_ev_hdr first = p->h;

		first.total = h.total;
		first.rule = h.rule;
		deliver(r, &first, h.flags | (first.flags & SY_EVF_INLINE), p->buf, p->len, st);
		erase(r, p);
	}
	return 0;
}

/* Drops half-assembled commands of sockets silent for STALE_NS (closed mid-command). */
static void sweep(struct sy_capture *c, uint64_t now_ns)
{
	struct sy_reasm *r = c->ra;

	for (size_t i = 0; i <= r->mask; i++) {
		struct pending *p = &r->tab[i];

		if (p->cookie && now_ns - p->last_ns > STALE_NS) {
			uint32_t mig = p->h.mig_id;

			erase(r, p);
			c->per[mig].dropped++;
			i--; /* erase may have shifted another entry into slot i */
		}
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct sy_capture *c = ctx;

	sy_reasm_feed(c->ra, data, size, c->per);
	return 0;
}

int sy_capture_drain(struct sy_capture *c)
{
	int n = ring_buffer__consume(c->rb);
	uint64_t now = sy_now_ms();

	if (now - c->last_sweep_ms >= 1000) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		sweep(c, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
		c->last_sweep_ms = now;
	}
	return n;
}

/* The drain adapts to the load. Idle: every drain_ms. A trickle (the last drain found a
 * few records): every millisecond, so that records gather into a batch. Busy (a batch's
 * worth): again right after the loop's next pass over its descriptors — the replies of
 * the last batch read, its replays written — so a captured write waits for the agent's
 * own work, not for a clock tick (a fixed 1 ms timer, sleeping up to 2 ms between
 * batches, made a large part of the lag at -P 4). Load comes in bursts (clients that
 * pipeline wait for their answers together), so one empty drain is no sign of idleness:
 * the drain keeps the 1 ms pace until it has found nothing for drain_ms. Going idle at
 * the first empty drain put half the drains of a -P 4 benchmark 4-8 ms apart, and the
 * mirror's lag p50 in the 4-8 ms bucket. */
#define BUSY_RECORDS 32

static void on_timer(struct sy_loop *l, void *arg)
{
	struct sy_capture *c = arg;
	int n = sy_capture_drain(c);
	uint64_t now = sy_coarse_ms(), next = c->drain_ms;

	if (n > 0)
		c->last_records_ms = now;
	if (n >= BUSY_RECORDS)
		next = 0;
	else if (now - c->last_records_ms < c->drain_ms)
		next = 1;
	c->timer = sy_loop_add_timer(l, next, on_timer, c);
}

static void on_wakeup(struct sy_loop *l, int fd, unsigned events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	sy_capture_drain(arg);
}

int sy_capture_new(struct sy_loop *l, int events_fd, unsigned drain_ms, sy_capture_cb cb, void *arg,
		   struct sy_capture **out)
{
	struct sy_capture *c = calloc(1, sizeof(*c));
	int e;

	if (!c)
		return -ENOMEM;
	c->loop = l;
	c->drain_ms = drain_ms ? drain_ms : 5;
	c->ra = sy_reasm_new(REASM_SLOTS / 2, cb, arg);
	if (!c->ra) {
		free(c);
		return -ENOMEM;
	}
	c->rb = ring_buffer__new(events_fd, on_record, c, NULL);
	if (!c->rb) {
		e = -errno;
		sy_error("capture", "open ring buffer: %s", strerror(-e));
		sy_capture_free(c);
		return e;
	}
	if ((e = sy_loop_add_fd(l, ring_buffer__epoll_fd(c->rb), SY_EV_READ, on_wakeup, c))) {
		sy_error("capture", "watch ring buffer: %s", strerror(-e));
		sy_capture_free(c);
		return e;
	}
	c->timer = sy_loop_add_timer(l, c->drain_ms, on_timer, c);
	*out = c;
	return 0;
}

void sy_capture_free(struct sy_capture *c)
{
	if (!c)
		return;
	if (c->rb) {
		sy_loop_del_fd(c->loop, ring_buffer__epoll_fd(c->rb));
		ring_buffer__free(c->rb);
	}
	sy_loop_cancel_timer(c->loop, c->timer);
	sy_reasm_free(c->ra);
	free(c);
}

void sy_capture_stats(const struct sy_capture *c, uint32_t mig_id, struct sy_capture_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (c && mig_id < SY_MAX_MIGRATIONS)
		*out = c->per[mig_id];
}

void sy_capture_reset(struct sy_capture *c, uint32_t mig_id)
{
	if (c && mig_id < SY_MAX_MIGRATIONS)
		memset(&c->per[mig_id], 0, sizeof(c->per[mig_id]));
}
