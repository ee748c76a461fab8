// SPDX-License-Identifier: GPL-2.0
/* observe.bpf.c — the data stream of migration sockets: bytes each way, and the time
 * from a request to the first byte of its answer, per migration and side.
 *
 * cgroup_skb/egress and /ingress see packets, not sends: the TCP sequence of each
 * socket is tracked in its storage so that retransmitted bytes are not counted twice.
 * Only sockets marked at connect() (sy_socks storage, see steer.bpf.c) are looked at;
 * every other packet costs one storage lookup. The data always passes (return 1).
 *
 * Latency: the first new request byte sent while no answer is awaited starts a clock;
 * the first new answer byte stops it. With pipelining this is the time to the first
 * byte of the oldest outstanding request of each burst: one sample per burst, never
 * one per command. An answer whose first byte is '-' is a RESP error.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "switchyard/abi.h"
#include "lib/maps.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP_ 6

char LICENSE[] SEC("license") = "GPL";

struct seg {
	__u32 seq;
	__u32 off; /* payload offset in the skb */
	__u32 len; /* payload length */
};

static __always_inline int tcp_segment(struct __sk_buff *skb, struct seg *s)
{
	struct tcphdr th;
	__u32 hl;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.protocol != IPPROTO_TCP_)
			return -1;
		hl = (__u32)ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) || ip6.nexthdr != IPPROTO_TCP_)
			return -1;
		hl = sizeof(ip6);
	} else {
		return -1;
	}
	if (hl < 20 || hl > 60 || bpf_skb_load_bytes(skb, hl, &th, sizeof(th)))
		return -1;
	s->seq = bpf_ntohl(th.seq);
	s->off = hl + (__u32)th.doff * 4;
	s->len = skb->len > s->off ? skb->len - s->off : 0;
	return 0;
}

/* How many bytes of s are new past *nxt; advances *nxt. `skip` gets the offset of the
 * first new byte within the payload. */
static __always_inline __u32 new_bytes(const struct seg *s, __u32 *nxt, __u8 *init, __u8 bit, __u32 *skip)
{
	__u32 end = s->seq + s->len;

	if (!(*init & bit)) {
		*nxt = s->seq;
		*init |= bit;
	}
	if ((__s32)(end - *nxt) <= 0)
		return 0; /* all of it seen before: a retransmission */
	*skip = (__s32)(*nxt - s->seq) > 0 ? *nxt - s->seq : 0;
	*nxt = end;
	return s->len - *skip;
}

static __always_inline __u32 log2_us(__u64 us)
{
	__u32 r = 0;

	if (us >> 32) {
		us >>= 32;
		r += 32;
	}
	if (us >> 16) {
		us >>= 16;
		r += 16;
	}
	if (us >> 8) {
		us >>= 8;
		r += 8;
	}
	if (us >> 4) {
		us >>= 4;
		r += 4;
	}
	if (us >> 2) {
		us >>= 2;
		r += 2;
	}
	if (us >> 1)
		r += 1;
	return r < SY_LAT_BUCKETS ? r : SY_LAT_BUCKETS - 1;
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

static __always_inline struct sy_side_stats *stats_of(const struct sy_sock *o)
{
	__u32 idx = o->mig_id * 2 + (o->side & 1);

	return bpf_map_lookup_elem(&sy_side_stats, &idx);
}

SEC("cgroup_skb/egress")
int sy_egress(struct __sk_buff *skb)
{
	struct sy_sock *o = observed(skb);
	struct sy_side_stats *st;
	struct seg s;
	__u32 n, skip = 0;

	if (!o || tcp_segment(skb, &s) || s.len == 0)
		return 1;
	n = new_bytes(&s, &o->snd_nxt, &o->seq_init, 1, &skip);
	if (!n)
		return 1;
	st = stats_of(o);
	if (st)
		st->bytes_out += n;
	if (!o->req_ns)
		o->req_ns = bpf_ktime_get_ns();
	return 1;
}

SEC("cgroup_skb/ingress")
int sy_ingress(struct __sk_buff *skb)
{
	struct sy_sock *o = observed(skb);
	struct sy_side_stats *st;
	struct seg s;
	__u64 start;
	__u32 n, skip = 0;
	__u8 first = 0;

	if (!o || tcp_segment(skb, &s) || s.len == 0)
		return 1;
	n = new_bytes(&s, &o->rcv_nxt, &o->seq_init, 2, &skip);
	if (!n)
		return 1;
	st = stats_of(o);
	if (!st)
		return 1;
	st->bytes_in += n;
	start = o->req_ns;
	if (!start)
		return 1;
	o->req_ns = 0;
	st->exchanges++;
	st->lat[log2_us((bpf_ktime_get_ns() - start) / 1000) & (SY_LAT_BUCKETS - 1)]++;
	if (skip < 0xffff && bpf_skb_load_bytes(skb, s.off + skip, &first, 1) == 0 && first == '-')
		st->errors++;
	return 1;
}
