// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* observe.bpf.c — the data stream of migration sockets: every request command parsed
 * (class, first key, prefix rule), bytes each way, the time from a request to the
 * first byte of its answer, per migration and side; write commands and sampled read
 * keys go to the agent through a ring buffer.
 *
 * cgroup_skb/egress and /ingress see packets, not sends: the TCP sequence of each
 * socket is tracked in its storage so that retransmitted bytes are neither counted
 * nor parsed twice. Only sockets marked at connect() are looked at (a sy_conns entry,
 * see steer.bpf.c, that the first data packet turns into sy_socks storage); every
 * other packet costs one storage lookup (and a data packet of a socket that has
 * received nothing yet, one sy_conns lookup). The data
 * always passes (return 1): what cannot be parsed is counted and skipped.
 *
 * Parsing: the RESP machine of include/switchyard/resp.h, driven by bpf_loop one byte
 * (or one skipped stretch of value bytes) per step, so values of any size cost one
 * step each. Its state lives in the socket's storage: commands may span packets.
 * When a socket's migration reads no key (no prefix rule, no sampling), a whole short
 * command is one fast step (a capture needs only where the command and its name end). Commands
 * are counted in the per-CPU scratch and added to sy_rule_stats once per run of one
 * rule and class (at most once per packet for a pipeline of one kind).
 *
 * Replies: the RESP machine of include/switchyard/resp_reply.h walks the answer stream
 * the same way (bulk bytes skipped in one step), so every reply of a pipelined burst
 * is counted, and each top-level error reply ('-', RESP3 '!') is one error, however
 * deep in a burst, and counted again by the class of its first word (ERR, MOVED/ASK,
 * OOM, NOAUTH/WRONGPASS, READONLY, other). RESP3 pushes answer no request and are not
 * counted.
 *
 * TLS: a socket whose first request bytes are a TLS handshake record (a client
 * speaking rediss://) is counted once in tls_sockets and never parsed either way.
 *
 * Latency: one sample per reply, from the packet that carried its request's first
 * byte to the packet that carries the reply's first byte. Requests and replies are
 * matched by number (the n-th reply answers the n-th request); egress leaves a mark
 * (first request number, time) per packet that starts requests, in a ring of
 * SY_LAT_MARKS per socket; when the ring is full the newest mark absorbs the new
 * requests (their samples then err long, never short). Replies beyond the requests
 * (RESP2 pub/sub messages) are timed from the newest mark.
 *
 * Ring buffer records are submitted without waking the agent (it drains on a short
 * timer) unless the buffer is more than a quarter full: a wakeup per record costs
 * more than the parsing itself.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "switchyard/abi.h"
#include "switchyard/index.h"
#include "switchyard/resp.h"
#include "switchyard/resp_reply.h"
#include "lib/maps.h"
#include "lib/scratch.h"

#define ETH_P_IP     0x0800
#define ETH_P_IPV6   0x86DD
#define IPPROTO_TCP_ 6

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct sy_cmd_key);
	__type(value, struct sy_cmd_info);
} sy_cmds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SY_MAX_MIGRATIONS *SY_MAX_RULES);
	__type(key, struct sy_prefix_key);
	__type(value, struct sy_prefix_rule);
} sy_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SY_RULE_STATS_ENTRIES);
	__type(key, __u32);
	__type(value, struct sy_rule_stats);
} sy_rule_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SY_EV_RING_BYTES);
} sy_events SEC(".maps");

struct seg {
	__u32 seq;
	__u32 off;     /* payload offset in the skb */
	__u32 len;     /* payload length */
	__u32 fin_rst; /* FIN or RST: the socket is closing */
};

/* Headers are read in place (cgroup_skb may read the linear part directly): a helper
 * call per header cost more than the rest of the program for small packets. */
static __always_inline int tcp_segment(struct __sk_buff *skb, struct seg *s)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct tcphdr *th;
	__u32 hl;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP_)
			return -1;
		hl = (__u32)ip->ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP_)
			return -1;
		hl = sizeof(*ip6);
	} else {
		return -1;
	}
	if (hl < 20 || hl > 60)
		return -1;
	th = data + hl;
	if ((void *)(th + 1) > end)
		return -1;
	s->seq = bpf_ntohl(th->seq);
	s->fin_rst = th->fin || th->rst;
	s->off = hl + (__u32)th->doff * 4;
	s->len = skb->len > s->off ? skb->len - s->off : 0;
	return 0;
}

/* How many bytes of s are new past *nxt; advances *nxt. `skip` gets the offset of the
 * first new byte within the payload, `hole` how many bytes between *nxt and s were
 * never seen: a segment that overtook an earlier one, or one whose walk was given up
 * (ingress on two CPUs at once, no scratch slot). The parser cannot follow a stream
 * with a hole, so its caller starts it over at s. */
static __always_inline __u32 new_bytes(const struct seg *s, __u32 *nxt, __u8 *init, __u32 *skip, __u32 *hole)
{
	__u32 end = s->seq + s->len;

	*hole = 0;
	if (!*init) {
		*nxt = s->seq;
		*init = 1;
	}
	if ((__s32)(end - *nxt) <= 0)
		return 0; /* all of it seen before: a retransmission */
	if ((__s32)(s->seq - *nxt) > 0)
		*hole = s->seq - *nxt;
	*skip = (__s32)(*nxt - s->seq) > 0 ? *nxt - s->seq : 0;
	*nxt = end;
	return s->len - *skip;
}

static __always_inline struct sy_sock *observed(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return NULL;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return NULL;
	return bpf_sk_storage_get(&sy_socks, sk, 0, 0);
}

/* Whether a socket without storage may still have a sy_conns entry: only one that has
 * received nothing (a Redis client speaks first), so every other socket stops paying
 * for the lookup at its first reply. */
static __always_inline int may_be_pending(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct bpf_tcp_sock *tp;

	if (!sk)
		return 0;
	tp = bpf_tcp_sock(sk);
	return tp && !tp->bytes_received;
}

/* A socket closing before it sent a request: its sy_conns entry goes now rather than
 * by eviction, so that the LRU keeps free entries and connect() stays one update. */
static __always_inline void forget(struct __sk_buff *skb)
{
	__u64 cookie;

	cookie = bpf_get_socket_cookie(skb);
	/* a lookup takes no lock: most closing sockets are not ours */
	if (bpf_map_lookup_elem(&sy_conns, &cookie))
		bpf_map_delete_elem(&sy_conns, &cookie);
}

/* A migration socket's first data packet: its sy_conns entry (what connect() decided)
 * becomes its storage. NULL: not a migration socket (or no memory: then it is not
 * observed). */
static __always_inline struct sy_sock *adopt(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	const struct sy_conn *c;
	struct sy_sock *o;
	__u64 cookie;

	cookie = bpf_get_socket_cookie(skb);
	c = bpf_map_lookup_elem(&sy_conns, &cookie);
	if (!c || !sk)
		return NULL;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return NULL;
	o = bpf_sk_storage_get(&sy_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return NULL; /* its entry stays: getpeername still reads it */
	/* created zeroed: parser states, sequence tracking and marks start at 0 */
	o->c = *c;
	o->cookie = cookie;
	bpf_map_delete_elem(&sy_conns, &cookie);
	return o;
}

static __always_inline struct sy_side_stats *stats_of(const struct sy_sock *o)
{
	__u32 idx = sy_side_index(o->c.mig_id, o->c.side);

	return bpf_map_lookup_elem(&sy_side_stats, &idx);
}

/* One packet's walk through the parser. */
struct walk {
	struct __sk_buff *skb;
	struct sy_sock *o;
	struct scratch *sc;
	struct sy_side_stats *st;
	struct sy_migration *m; /* NULL if the migration is gone */
	int names_only;		/* no rule, no sampling: no key is read, a short command is one step */
};

static __always_inline __u64 wake_flags(void)
{
	return bpf_ringbuf_query(&sy_events, BPF_RB_AVAIL_DATA) > SY_EV_RING_BYTES / 4 ? BPF_RB_FORCE_WAKEUP
										       : BPF_RB_NO_WAKEUP;
}

/* The record header's socket part: what every record of this socket says. */
static __always_inline struct sy_ev_hdr *ev_socket(struct walk *w, __u8 type, __u8 flags)
{
	struct sy_ev_hdr *h = &w->sc->hdr;

	h->type = type;
	h->flags = flags;
	h->side = w->o->c.side;
	h->mig_id = w->o->c.mig_id;
	h->cookie = w->o->cookie;
	h->ts_ns = bpf_ktime_get_ns();
	h->off = 0;
	h->len = 0;
	h->total = 0;
	return h;
}

/* A record of the command being parsed. */
static __always_inline void ev_header(struct walk *w, __u8 type, __u8 flags)
{
	struct sy_resp *r = &w->o->resp;
	struct sy_ev_hdr *h = ev_socket(w, type, flags);

	h->name_len = r->name_len;
	h->cmd_seq = r->cmd_seq;
	h->argc = r->argc;
	h->rule = r->rule;
	__builtin_memcpy(h->name, r->name, SY_CMD_NAME_MAX);
}

/* Sends the captured bytes [from, to) of the current command that are in this packet
 * (bytes before it went with earlier packets), at most capture_max in all. */
static __always_inline void emit_write(struct walk *w, __u32 from, __u32 to, __u8 flags)
{
	struct sy_resp *r = &w->o->resp;
	struct sy_ev_hdr *h = &w->sc->hdr;
	__u32 len, room, cap, skb_off, chunk, total = to - r->cap_start;
	__u64 sz;
	int i;

	cap = w->m ? w->m->capture_max : 0;
	if ((__s32)(from - w->sc->seq0) < 0)
		from = w->sc->seq0;
	len = (__s32)(to - from) > 0 ? to - from : 0;
	room = cap > r->cap_sent ? cap - r->cap_sent : 0;
	if (len > room)
		len = room;
	if ((flags & SY_EVF_LAST) && total > cap) {
		flags |= SY_EVF_TRUNCATED;
		w->st->truncated++;
	}
	if (!len && !(flags & SY_EVF_LAST))
		return;
	skb_off = w->sc->off0 + (from - w->sc->seq0);
	for (i = 0; i < 8; i++) {
		chunk = len > SY_EV_FRAG_MAX ? SY_EV_FRAG_MAX : len;
		ev_header(w, SY_EVT_WRITE,
			  (flags & (chunk == len ? 0xff : ~SY_EVF_LAST)) |
				  (r->cap_sent == 0 ? SY_EVF_FIRST : 0) |
				  ((r->flags & SY_RESPF_INLINE) ? SY_EVF_INLINE : 0));
		h->off = r->cap_sent;
		h->total = total;
		/* the verifier must see the bound on the register the helpers get */
		sz = chunk;
		asm volatile("" : "+r"(sz));
		if (sz > SY_EV_FRAG_MAX)
			return;
		h->len = sz;
		if (sz && bpf_skb_load_bytes(w->skb, skb_off, w->sc->data, sz)) {
			w->st->ev_lost++;
			return;
		}
		if (bpf_ringbuf_output(&sy_events, h, sizeof(*h) + sz, wake_flags()))
			w->st->ev_lost++;
		r->cap_sent += chunk;
		skb_off += chunk;
		len -= chunk;
		if (!len)
			return;
	}
	/* more than 8 records' worth in one packet: the rest is cut */
}

/* Sends the batch of whole captured commands (scratch bt_*), if any, as one record. */
static __always_inline void flush_batch(struct walk *w)
{
	struct scratch *sc = w->sc;
	struct sy_ev_hdr *h;
	__u32 n = sc->bt_n;
	__u64 sz = sc->bt_end - sc->bt_start;

	if (!n)
		return;
	sc->bt_n = 0;
	/* the commands name themselves in the bytes (abi.h) */
	h = ev_socket(w, SY_EVT_WRITE, SY_EVF_FIRST | SY_EVF_LAST | SY_EVF_BATCH);
	h->name_len = 0;
	h->cmd_seq = sc->bt_seq;
	h->argc = 0;
	h->total = n;
	h->rule = 0;
	__builtin_memset(h->name, 0, SY_CMD_NAME_MAX);
	/* the verifier must see the bound on the register the helpers get */
	asm volatile("" : "+r"(sz));
	if (sz == 0 || sz > SY_EV_FRAG_MAX)
		return;
	h->len = sz;
	/* a lost batch is as many lost writes as it held */
	if (bpf_skb_load_bytes(w->skb, sc->off0 + (sc->bt_start - sc->seq0), sc->data, sz) ||
	    bpf_ringbuf_output(&sy_events, h, sizeof(*h) + sz, wake_flags()))
		w->st->ev_lost += n;
}

/* Whether the captured command that just ended may go in a batch: a RESP command
 * wholly in this packet, not cut by capture_bytes, of a migration without prefix
 * rules (a rule's key decides SY_EVF_OUTSIDE per command). */
static __always_inline int batchable(struct walk *w)
{
	struct sy_resp *r = &w->o->resp;
	__u32 len = w->sc->seq - r->cmd_start;

	return w->m && !w->m->n_rules && !(r->flags & SY_RESPF_INLINE) && r->cap_sent == 0 &&
	       (__s32)(r->cmd_start - w->sc->seq0) >= 0 && len <= w->m->capture_max && len <= SY_EV_FRAG_MAX;
}

/* Adds the command that just ended to the packet's batch: a run of captured commands
 * back to back, at most one record long. */
static __always_inline void batch_cmd(struct walk *w)
{
	struct sy_resp *r = &w->o->resp;
	struct scratch *sc = w->sc;

	if (sc->bt_n && (r->cmd_start != sc->bt_end || sc->seq - sc->bt_start > SY_EV_FRAG_MAX))
		flush_batch(w);
	if (!sc->bt_n) {
		sc->bt_start = r->cmd_start;
		sc->bt_seq = r->cmd_seq;
	}
	sc->bt_end = sc->seq;
	sc->bt_n++;
}

static __always_inline void emit_key(struct walk *w)
{
	struct sy_resp *r = &w->o->resp;
	__u32 len = r->key_len;

	ev_header(w, SY_EVT_READ_KEY, SY_EVF_FIRST | SY_EVF_LAST);
	if (len > SY_KEY_MAX)
		return;
	w->sc->hdr.len = len;
	w->sc->hdr.total = len;
	__builtin_memcpy(w->sc->data, r->key, SY_KEY_MAX);
	if (bpf_ringbuf_output(&sy_events, &w->sc->hdr, sizeof(struct sy_ev_hdr) + len, wake_flags()))
		w->st->ev_lost++;
	else
		w->st->sampled++;
}

/* `body`: the sequence of the byte after the name's "\r\n", where a capture starts. */
static __always_inline void on_name(struct walk *w, __u32 body)
{
	struct sy_sock *o = w->o;
	struct sy_resp *r = &o->resp;
	struct sy_cmd_info *ci = NULL;
	__u64 *a = (__u64 *)r->name, *b = (__u64 *)o->last_name;

	if (r->flags & SY_RESPF_NAMETRUNC) {
		ci = NULL;
	} else if (o->last_known && a[0] == b[0] && a[1] == b[1] && a[2] == b[2]) {
		ci = o->last_known == 1 ? &o->last_cmd : NULL;
	} else {
		ci = bpf_map_lookup_elem(&sy_cmds, r->name);
		__builtin_memcpy(o->last_name, r->name, SY_CMD_NAME_MAX);
		if (ci)
			o->last_cmd = *ci;
		o->last_known = ci ? 1 : 2;
	}
	if (ci && (ci->flags & SY_CMDF_SECRET)) {
		/* AUTH, HELLO … AUTH, MIGRATE … AUTH: its arguments may be a password. The
		 * command stays "other" with no key: none of its bytes is captured, no
		 * argument is read, so no password reaches the ring buffer. */
		r->cmd_flags = SY_CMDF_SECRET;
		return;
	}
	if (ci) {
		r->class = ci->class;
		/* the key is read only when something needs it: a prefix rule, or sampling */
		if (w->m && (w->m->n_rules || (w->m->sample_n && ci->class == SY_CLASS_READ)))
			r->first_key = ci->first_key;
		r->cmd_flags = ci->flags;
	}
	/* writes, and what the mirror must follow to replay them right: the database
	 * (SELECT) and transactions (WATCH, MULTI … EXEC, DISCARD) */
	if ((r->class == SY_CLASS_WRITE ||
	     (r->cmd_flags & (SY_CMDF_SELECT | SY_CMDF_TXN_MULTI | SY_CMDF_TXN_EXEC | SY_CMDF_TXN_DISCARD |
			      SY_CMDF_TXN_WATCH))) &&
	    w->m && (w->m->capture & (1 << (w->o->c.side & 1)))) {
		w->o->capturing = 1;
		r->cap_start = body;
		r->cap_sent = 0;
	}
}

static __always_inline void on_key(struct walk *w)
{
	struct sy_resp *r = &w->o->resp;
	struct sy_prefix_key *pk = &w->sc->pk;
	struct sy_prefix_rule *rule;
	__u32 n = r->key_len;

	if (!w->m || !w->m->n_rules)
		return; /* rule 0: the whole endpoint */
	if (n > SY_PREFIX_MAX)
		n = SY_PREFIX_MAX;
	pk->prefixlen = 32 + 8 * n;
	pk->mig_id = w->o->c.mig_id;
	__builtin_memcpy(pk->bytes, r->key, SY_PREFIX_MAX);
	rule = bpf_map_lookup_elem(&sy_prefixes, pk);
	r->rule = rule ? rule->rule : SY_RULE_OUTSIDE;
}

/* Adds the run of counted commands to sy_rule_stats. */
static __always_inline void flush_counts(struct sy_sock *o, struct scratch *sc)
{
	struct sy_rule_stats *rs;
	__u32 idx;

	if (!sc->cnt_n)
		return;
	idx = sy_rule_index(o->c.mig_id, sc->cnt_rule, o->c.side);
	rs = bpf_map_lookup_elem(&sy_rule_stats, &idx);
	if (rs) {
		rs->cmds[sc->cnt_cls & (SY_CLASS_MAX - 1)] += sc->cnt_n;
		rs->bytes[sc->cnt_cls & (SY_CLASS_MAX - 1)] += sc->cnt_bytes;
	}
	sc->cnt_n = 0;
	sc->cnt_bytes = 0;
}

static __always_inline void count_cmd(struct walk *w)
{
	struct sy_resp *r = &w->o->resp;
	struct scratch *sc = w->sc;

	if (r->rule == SY_RULE_OUTSIDE) {
		w->st->outside++;
		return;
	}
	if (sc->cnt_n && (sc->cnt_rule != r->rule || sc->cnt_cls != r->class))
		flush_counts(w->o, sc);
	sc->cnt_rule = r->rule;
	sc->cnt_cls = r->class;
	sc->cnt_n++;
	sc->cnt_bytes += sc->seq - r->cmd_start;
}

/* A command that needs nothing but counting: most of them. */
static __always_inline int plain_cmd(struct walk *w)
{
	struct sy_resp *r = &w->o->resp;

	return !w->o->capturing && !(r->class == SY_CLASS_READ && w->m && w->m->sample_n);
}

static __always_inline void on_cmd(struct walk *w)
{
	struct sy_resp *r = &w->o->resp;

	count_cmd(w);
	if (w->o->capturing) {
		w->o->capturing = 0;
		if (batchable(w)) {
			batch_cmd(w);
		} else {
			flush_batch(w);
			emit_write(w, r->cap_start, w->sc->seq,
				   SY_EVF_LAST | (r->rule == SY_RULE_OUTSIDE ? SY_EVF_OUTSIDE : 0));
		}
		if (r->class == SY_CLASS_WRITE)
			w->st->captured++;
	}
	if (r->class == SY_CLASS_READ && w->m && w->m->sample_n && (r->flags & SY_RESPF_KEYSEEN) &&
	    !(r->flags & SY_RESPF_KEYTRUNC) && bpf_get_prandom_u32() % w->m->sample_n == 0)
		emit_key(w);
}

static __always_inline void abort_capture(struct walk *w)
{
	if (!w->o->capturing)
		return;
	w->o->capturing = 0;
	flush_batch(w); /* whole commands before the lost one still go, first */
	ev_header(w, SY_EVT_WRITE, SY_EVF_LAST | SY_EVF_ABORT);
	if (bpf_ringbuf_output(&sy_events, &w->sc->hdr, sizeof(struct sy_ev_hdr), wake_flags()))
		w->st->ev_lost++;
}

static __always_inline void on_events(struct walk *w, int ev)
{
	/* w->sc->seq is already past the byte (or the stretch) that raised the events */
	if (ev & SY_RESP_EV_ERROR) {
		w->st->unparsed++;
		abort_capture(w);
	}
	if (ev & SY_RESP_EV_NAME)
		on_name(w, w->sc->seq); /* the byte path: the name just ended */
	if (ev & SY_RESP_EV_KEY)
		on_key(w);
	if (ev & SY_RESP_EV_CMD)
		on_cmd(w);
}

/* One step: a stretch of skippable bytes, or one byte. Returns -1 when the packet is
 * done, else the SY_RESP_EV_* bits the step raised (handled by the caller). */
static __always_inline int one_step(struct walk *w)
{
	struct sy_resp *r = &w->o->resp;
	__u32 n, k, i, body;
	__u64 sz;
	int ev = 0;
	__u8 c;

	if (w->sc->off >= w->sc->end)
		return -1;
	n = sy_resp_skippable(r);
	if (n) {
		k = w->sc->end - w->sc->off;
		if (k > n)
			k = n;
		w->sc->off += k;
		w->sc->seq += k;
		return sy_resp_skipped(r, k);
	}
	/* refill when the window is used up, or too short for a header fast path */
	if (w->sc->off < w->sc->buf_off || w->sc->off - w->sc->buf_off + 8 > w->sc->buf_len) {
		if (w->sc->off < w->sc->buf_off || w->sc->off - w->sc->buf_off >= w->sc->buf_len ||
		    w->sc->buf_off + w->sc->buf_len < w->sc->end) {
			sz = w->sc->end - w->sc->off;
			if (sz > SY_WINDOW)
				sz = SY_WINDOW;
			asm volatile("" : "+r"(sz));
			if (sz == 0 || sz > SY_WINDOW ||
			    bpf_skb_load_bytes(w->skb, w->sc->off, w->sc->buf, sz))
				return -1;
			w->sc->buf_off = w->sc->off;
			w->sc->buf_len = sz;
		}
	}
	i = (w->sc->off - w->sc->buf_off) & (SY_WINDOW - 1);
	ev = w->names_only ? SY_RESP_IN_NAMES_ONLY : 0;
	k = sy_resp_fast(r, (const struct sy_window *)&w->sc->buf[i], w->sc->buf_len - i,
			 w->sc->end - w->sc->off, &ev);
	if (k) {
		w->sc->off += k;
		w->sc->seq += k;
	} else {
		c = w->sc->buf[i];
		w->sc->off++;
		w->sc->seq++;
		ev = sy_resp_byte(r, c);
	}
	/* where the name ended: a fast step may have gone past it (a short command's
	 * header, name and arguments in one step); its header is 8 bytes. (An empty name
	 * read by the argument loop after a header of the byte path gets a wrong start,
	 * but it names no command, so no capture starts there.) */
	body = k ? w->sc->seq - k + ((ev & SY_RESP_EV_BEGIN) ? 8 : 0) + r->name_len + 2 : w->sc->seq;
	if (ev & SY_RESP_EV_BEGIN) {
		/* handled here: a command's start must not end a run of steps */
		r->cmd_start = w->sc->seq - (k ? k : 1);
		r->cmd_seq++;
		ev &= ~SY_RESP_EV_BEGIN;
	}
	if ((ev & (SY_RESP_EV_NAME | SY_RESP_EV_ERROR)) == SY_RESP_EV_NAME) {
		on_name(w, body); /* cheap (a compare, mostly): no need to end the run */
		ev &= ~SY_RESP_EV_NAME;
	}
	if (ev == SY_RESP_EV_CMD && plain_cmd(w)) {
		count_cmd(w);
		ev = 0;
	}
	return ev;
}

#define STEPS_PER_CALL 4

/* bpf_loop's callback: several steps per call, because the indirect call per step
 * costs more than the step itself. Events end a call's run of steps, so their
 * handling (lookups, ring-buffer output) is verified once, not once per step. */
static long parse_steps(__u32 i __attribute__((unused)), void *ctx)
{
	struct walk *w = ctx;
	int ev = 0;

#pragma unroll
	for (int j = 0; j < STEPS_PER_CALL; j++) {
		ev = one_step(w);
		if (ev)
			break;
	}
	if (ev < 0)
		return 1;
	if (ev)
		on_events(w, ev);
	return 0;
}

/* Parses the new request bytes of one packet; `hole`: bytes before them never seen. */
static __always_inline void parse(struct __sk_buff *skb, struct sy_sock *o, struct sy_side_stats *st,
				  struct scratch *sc, const struct seg *s, __u32 skip, __u32 n, __u32 hole)
{
	__u32 mig = o->c.mig_id;
	struct walk w = {};

	w.sc = sc;
	sc->bt_n = 0;
	w.skb = skb;
	w.o = o;
	w.st = st;
	w.m = bpf_map_lookup_elem(&sy_migrations, &mig);
	if (hole) {
		/* The command in progress lost bytes, and the gap may have held whole
		 * writes: with capture on, an abort tells the mirror (needs-audit) even
		 * when no command was being captured. */
		st->gaps++;
		if (w.m && (w.m->capture & (1 << (o->c.side & 1))))
			o->capturing = 1;
		abort_capture(&w);
		o->tx_lost = 1;
	}
	if (o->tx_lost) {
		/* picked up again at a packet that starts a RESP command: clients write a
		 * command at a time, so its first byte starts a packet (a bulk's bytes
		 * seldom start with '*'; an inline-only client stays unfollowed) */
		__u8 c0;

		if (bpf_skb_load_bytes(skb, s->off + skip, &c0, 1) || c0 != '*')
			return;
		o->tx_lost = 0;
		sy_resp_fail(&o->resp, '\n');
	}
	w.names_only = !w.m || (!w.m->n_rules && !w.m->sample_n);
	sc->cnt_n = 0;
	sc->cnt_bytes = 0;
	sc->off0 = sc->off = s->off + skip;
	sc->end = sc->off + n;
	sc->seq0 = sc->seq = s->seq + skip;
	sc->buf_off = 0;
	sc->buf_len = 0;
	/* A call makes at least one step, a step eats at least one byte or ends an
	 * argument: 2n + 8 calls never run out for packets up to 512 KiB. The loop ends
	 * as soon as the packet is done. */
	bpf_loop(2 * n + 8 < (1u << 20) ? 2 * n + 8 : (1u << 20), parse_steps, &w, 0);
	flush_counts(o, sc);
	flush_batch(&w);
	if (sc->off < sc->end) {
		/* the loop's budget or a load failed: drop the rest, resynchronise */
		st->unparsed++;
		abort_capture(&w);
		sy_resp_fail(&o->resp, 0);
		return;
	}
	if (o->capturing)
		emit_write(&w, o->resp.cap_start, sc->seq, 0);
}

/* Requests from number `from` on began in this packet. */
static __always_inline void mark_requests(struct sy_sock *o, __u32 from)
{
	__u8 w = o->mark_w;

	if ((__u8)(w - o->mark_r) >= SY_LAT_MARKS)
		return; /* full: the newest mark stands for these requests too */
	o->marks[w & (SY_LAT_MARKS - 1)].from = from;
	o->marks[w & (SY_LAT_MARKS - 1)].ns = bpf_ktime_get_ns();
	o->mark_w = w + 1;
}

/* A TLS record header of a handshake (a ClientHello opens every TLS connection):
 * content type 22, version 3.x (SSL 3.0 to TLS 1.3, whose records say 3.1 or 3.3).
 * No RESP command starts with byte 0x16, so a Redis stream is never taken for one. */
static __always_inline int tls_hello(struct __sk_buff *skb, __u32 off)
{
	__u8 h[3];

	if (bpf_skb_load_bytes(skb, off, h, sizeof(h)))
		return 0;
	return h[0] == 0x16 && h[1] == 0x03 && h[2] <= 0x04;
}

/* Egress while the reply stream is lost: request `req` began in this packet, when the
 * kernel had received the reply stream up to its rcv_nxt. */
static __always_inline void sync_point(struct __sk_buff *skb, struct sy_sock *o, __u32 req)
{
	struct bpf_sock *sk = skb->sk;
	struct bpf_tcp_sock *tp;

	if (!sk)
		return;
	tp = bpf_tcp_sock(sk);
	if (tp && req)
		*(volatile __u64 *)&o->rx_sync = ((__u64)tp->rcv_nxt << 32) | req;
}

SEC("cgroup_skb/egress")
int sy_egress(struct __sk_buff *skb)
{
	struct sy_sock *o = observed(skb);
	struct sy_side_stats *st;
	struct scratch *sc;
	struct seg s;
	__u32 n, c0, skip = 0, hole, first, slot;

	if (!o && !may_be_pending(skb))
		return 1;
	if (tcp_segment(skb, &s))
		return 1;
	if (s.len == 0) {
		if (!o && s.fin_rst)
			forget(skb);
		return 1;
	}
	if (!o)
		o = adopt(skb);
	if (!o)
		return 1;
	/* Egress of one socket is serialised by the socket's lock; the scratch slot is
	 * this CPU's. Without one, the bytes are left unseen: the next packet finds the
	 * hole and starts the walk over. */
	sc = claim_scratch(&slot);
	if (!sc)
		return 1;
	first = !o->snd_init;
	n = new_bytes(&s, &o->snd_nxt, &o->snd_init, &skip, &hole);
	st = n ? stats_of(o) : NULL;
	if (!st)
		goto out;
	st->bytes_out += n + hole;
	if (o->tls)
		goto out; /* ciphertext: nothing to parse */
	if (first && skip == 0 && n >= 3 && tls_hello(skb, s.off)) {
		/* rediss:// — steered at connect() like any client, but its stream
		 * cannot be read: counted once, never parsed (nor counted unparsed) */
		o->tls = 1;
		st->tls_sockets++;
		goto out;
	}
	c0 = o->resp.cmd_seq;
	parse(skb, o, st, sc, &s, skip, n, hole);
	if (o->resp.cmd_seq != c0) {
		mark_requests(o, c0 + 1);
		if (o->rx_lost)
			sync_point(skb, o, c0 + 1);
	}
out:
	release_scratch(slot);
	return 1;
}

#include "lib/replies.h"

SEC("cgroup_skb/ingress")
int sy_ingress(struct __sk_buff *skb)
{
	struct sy_sock *o = observed(skb);
	struct sy_side_stats *st;
	struct scratch *sc;
	struct seg s;
	__u32 n, skip = 0, hole;
	__u32 slot;
	int probation;

	if (!o || tcp_segment(skb, &s) || s.len == 0)
		return 1;
	/* The filter runs before TCP takes the socket's lock, so one socket's segments
	 * can be walked on two CPUs at once (on loopback each CPU drains the backlog its
	 * senders filled). One walker at a time: a segment that finds another walking
	 * is left unseen, and the next one finds the hole. */
	if (__sync_fetch_and_or(&o->rx_walking, 1) & 1)
		return 1;
	sc = claim_scratch(&slot);
	if (!sc)
		goto out;
	n = new_bytes(&s, &o->rcv_nxt, &o->rcv_init, &skip, &hole);
	st = n ? stats_of(o) : NULL;
	if (!st)
		goto out_sc;
	st->bytes_in += n + hole;
	if (o->tls)
		goto out_sc;
	if (hole)
		replies_lost(o, st);
	probation = o->rx_lost;
	if (probation && !replies_found(o, s.seq + skip))
		goto out_sc;
	parse_replies(skb, o, st, sc, s.off + skip, n, probation);
out_sc:
	release_scratch(slot);
out:
	__sync_fetch_and_and(&o->rx_walking, 0);
	return 1;
}
