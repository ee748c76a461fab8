// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* replies.h — the ingress half of the observer: the walk of a socket's reply stream
 * with the machine of include/switchyard/resp_reply.h (every reply counted, errors by
 * class, one latency sample per reply against its request's mark), and how the walk
 * is given up at a gap and picked up again. Included by observe.bpf.c after the maps
 * and scratch (lib/scratch.h) it uses. */
#ifndef SY_BPF_REPLIES_H
#define SY_BPF_REPLIES_H

#define REPLY_STEPS_PER_CALL 4
#define SY_REPLY_RUN	     8 /* fast reply steps in one run */

struct rwalk {
	struct __sk_buff *skb;
	struct sy_sock *o;
	struct scratch *sc;
	struct sy_side_stats *st;
	__u64 now;
	int probation; /* the packet picks the replies up after a gap: a protocol error
			* means the guess was wrong, not that the server erred */
};

/* Replies are not followed until a request finds the stream answered (rx_sync). */
static __always_inline void lose_replies(struct sy_sock *o)
{
	o->rx_lost = 1;
	o->rx_sync = 0;
}

/* A top-level reply began: one latency sample, against the mark of its request. */
static __always_inline void on_reply_begin(struct rwalk *w)
{
	struct sy_sock *o = w->o;
	__u32 k, nreq = o->resp.cmd_seq;
	__u8 r, wr;
	__u64 t;

	if (o->reply.type == '>')
		return; /* a RESP3 push answers no request */
	k = o->replies + 1;
	if ((__s32)(k - nreq) > 0)
		k = nreq; /* more replies than requests (pub/sub): keep the numbering */
	o->replies = k;
	r = o->mark_r;
	wr = o->mark_w;
	/* drop the oldest mark once the next one starts at k: replies are numbered one
	 * by one and marks start at distinct, growing numbers, so one step keeps up */
	if ((__u8)(wr - r) > 1 && (__s32)(o->marks[(__u8)(r + 1) & (SY_LAT_MARKS - 1)].from - k) <= 0)
		r++;
	o->mark_r = r;
	if (wr == r)
		return; /* no request seen (the parser lost them): no time to measure */
	t = o->marks[r & (SY_LAT_MARKS - 1)].ns;
	w->st->exchanges++;
	w->st->lat[sy_log2_bucket(w->now > t ? (w->now - t) / 1000 : 0) & (SY_LAT_BUCKETS - 1)]++;
}

static __always_inline void on_reply_events(struct rwalk *w, int ev)
{
	if ((ev & SY_REPLY_EV_ERROR) && w->probation) {
		/* lost again: the rest of the packet is skipped, the next request tries */
		lose_replies(w->o);
		w->sc->off = w->sc->end;
		return;
	}
	if (ev & SY_REPLY_EV_ERROR)
		w->st->unparsed++;
	if (ev & SY_REPLY_EV_BEGIN)
		on_reply_begin(w);
	if ((ev & SY_REPLY_EV_END) && sy_reply_is_error(w->o->reply.type)) {
		w->st->errors++;
		w->st->err_class[sy_reply_err_class(&w->o->reply) & (SY_ERR_CLASS_SLOTS - 1)]++;
	}
}

/* One step of the reply walk: a stretch of bulk bytes, or one byte. Returns -1 when
 * the packet is done, else the SY_REPLY_EV_* bits the step raised. */
static __always_inline int reply_step(struct rwalk *w)
{
	struct sy_reply *rp = &w->o->reply;
	struct scratch *sc = w->sc;
	__u64 n, k;
	__u64 sz;
	__u32 i, j;
	int ev = 0, e;
	__u8 c;

	if (sc->off >= sc->end)
		return -1;
	n = sy_reply_skippable(rp);
	if (n) {
		k = sc->end - sc->off;
		if (k > n)
			k = n;
		sc->off += k;
		return sy_reply_skipped(rp, k);
	}
	/* refill when the window is used up, or too short for the fast path */
	if (sc->off < sc->buf_off || sc->off - sc->buf_off + SY_REPLY_FAST_LINE + 2 > sc->buf_len) {
		if (sc->off < sc->buf_off || sc->off - sc->buf_off >= sc->buf_len ||
		    sc->buf_off + sc->buf_len < sc->end) {
			sz = sc->end - sc->off;
			if (sz > SY_WINDOW)
				sz = SY_WINDOW;
			asm volatile("" : "+r"(sz));
			if (sz == 0 || sz > SY_WINDOW || bpf_skb_load_bytes(w->skb, sc->off, sc->buf, sz))
				return -1;
			sc->buf_off = sc->off;
			sc->buf_len = sz;
		}
	}
	/* A run of whole replies (or elements) in the window, one fast step each: a
	 * pipelined burst of short answers costs a step per window, not per reply. */
	k = 0;
	for (j = 0; j < SY_REPLY_RUN; j++) {
		i = (sc->off - sc->buf_off) & (SY_WINDOW - 1);
		e = 0;
		n = sy_reply_fast(rp, (const struct sy_window *)&sc->buf[i], sc->buf_len - i,
				  sc->end - sc->off, &e);
		if (!n)
			break;
		sc->off += n;
		k += n;
		if (e & SY_REPLY_EV_BEGIN)
			on_reply_begin(w);
		if (rp->state != SY_RP_TYPE || sc->off >= sc->end || sc->off - sc->buf_off >= sc->buf_len)
			break;
	}
	if (k)
		return 0; /* a fast step ends no error reply: nothing else to handle */
	i = (sc->off - sc->buf_off) & (SY_WINDOW - 1);
	c = sc->buf[i];
	sc->off++;
	ev = sy_reply_byte(rp, c);
	/* handled here, not by ending the run of steps: every reply begins one */
	if ((ev & (SY_REPLY_EV_BEGIN | SY_REPLY_EV_ERROR)) == SY_REPLY_EV_BEGIN) {
		on_reply_begin(w);
		ev &= ~SY_REPLY_EV_BEGIN;
	}
	if ((ev & SY_REPLY_EV_END) && !sy_reply_is_error(rp->type))
		ev &= ~SY_REPLY_EV_END; /* nothing to do at a plain reply's end */
	return ev;
}

/* bpf_loop's callback for replies: several steps per call, a run ends at an event
 * that needs more handling (an error's end, a protocol error). */
static long reply_steps(__u32 i __attribute__((unused)), void *ctx)
{
	struct rwalk *w = ctx;
	int ev = 0;

#pragma unroll
	for (int j = 0; j < REPLY_STEPS_PER_CALL; j++) {
		ev = reply_step(w);
		if (ev)
			break;
	}
	if (ev < 0)
		return 1;
	if (ev)
		on_reply_events(w, ev);
	return 0;
}

/* The reply stream had a gap: the bytes that follow cannot be placed (the gap may
 * end a reply and hold others), so replies are not followed until a sure start. */
static __always_inline void replies_lost(struct sy_sock *o, struct sy_side_stats *st)
{
	st->gaps++;
	lose_replies(o);
}

/* Ingress's new bytes start at `seq`: the replies are picked up again if this is where
 * the client's request found the stream. A client that has read every answer before
 * it asks (no pipelining at that moment, as after any pipelined batch) gets its next
 * answer exactly there; a wrong guess (a packet starting inside a reply) most often
 * meets a protocol error within the packet, and the next request tries again. */
static __always_inline int replies_found(struct sy_sock *o, __u32 seq)
{
	__u64 sync = *(volatile __u64 *)&o->rx_sync;
	__u32 req = (__u32)sync;
	__u32 r, wr;

	if (!req || (__u32)(sync >> 32) != seq)
		return 0;
	o->rx_lost = 0;
	o->rx_sync = 0;
	sy_reply_fail(&o->reply, '\n');
	o->replies = req - 1;
	/* drop the marks of requests answered in the gap (on_reply_begin moves one
	 * mark per reply, which only keeps up without gaps) */
	r = o->mark_r;
	wr = o->mark_w;
#pragma unroll
	for (int j = 0; j < SY_LAT_MARKS; j++)
		if ((__u8)(wr - r) > 1 &&
		    (__s32)(o->marks[(__u8)(r + 1) & (SY_LAT_MARKS - 1)].from - req) <= 0)
			r++;
	o->mark_r = r;
	return 1;
}

/* Walks the new reply bytes of one packet. */
static __always_inline void parse_replies(struct __sk_buff *skb, struct sy_sock *o, struct sy_side_stats *st,
					  struct scratch *sc, __u32 off, __u32 n, int probation)
{
	struct rwalk w = {};

	w.probation = probation;
	w.sc = sc;
	w.skb = skb;
	w.o = o;
	w.st = st;
	w.now = bpf_ktime_get_ns();
	sc->off = off;
	sc->end = sc->off + n;
	sc->buf_off = 0;
	sc->buf_len = 0;
	/* as parse(): a call eats at least one byte or ends an element */
	bpf_loop(2 * n + 8 < (1u << 20) ? 2 * n + 8 : (1u << 20), reply_steps, &w, 0);
	if (sc->off < sc->end) {
		st->unparsed++;
		sy_reply_fail(&o->reply, 0);
	}
}

#endif
