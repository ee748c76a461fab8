// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* scratch.h — the observe programs' per-CPU working memory (a window of the payload,
 * the record being built) and the claim of a slot of it by one run of a program.
 * Needs abi.h (included first by its one user, observe.bpf.c). */
#ifndef SY_BPF_SCRATCH_H
#define SY_BPF_SCRATCH_H

/* Bytes of the payload loaded into scratch.buf at a time; the fast paths look at
 * most SY_FAST_WINDOW (64) bytes past any point of it. */
#define SY_WINDOW 128

/* Per-CPU working memory: a window of the payload, and the record being built (its
 * header and data are contiguous, so one output call sends both). */
struct scratch {
	/* The walk's positions live here, not on the stack: the verifier tracks stack
	 * values exactly, so every distinct step length would be a distinct state to
	 * explore; map memory is just "some number", and the states converge. */
	__u32 off;  /* skb offset of the next byte */
	__u32 end;  /* skb offset past the last new byte */
	__u32 seq;  /* TCP sequence of the byte at `off` */
	__u32 off0; /* skb offset and sequence of the packet's first new byte */
	__u32 seq0;
	__u32 buf_off; /* skb offset of buf[0] */
	__u32 buf_len;
	/* Commands counted but not yet added to sy_rule_stats: a run of one rule and
	 * class, added once when the rule or class changes and at the packet's end, so a
	 * pipelined packet costs one map update, not one per command. */
	__u32 cnt_rule;
	__u32 cnt_n; /* commands in the run; 0: none */
	__u32 cnt_cls;
	__u64 cnt_bytes;
	/* Captured commands of this packet not yet sent: whole ones, back to back, sent
	 * as one SY_EVF_BATCH record (see abi.h) when the run ends or the packet does. */
	__u32 bt_start; /* sequence of the first one's '*' */
	__u32 bt_end;	/* sequence past the last one */
	__u32 bt_n;	/* how many; 0: none */
	__u32 bt_seq;	/* the first one's cmd_seq */
	__u8 buf[192];	/* 128 loaded at a time; the rest lets fast paths look ahead */
	struct sy_ev_hdr hdr;
	__u8 data[SY_EV_FRAG_MAX];
	struct sy_prefix_key pk;
};

/* A run of a program can be interrupted on its CPU by another run: egress in process
 * context by a softirq's egress (an ACK releasing another socket's data), and any run
 * by preemption where the kernel preempts. So a run claims a scratch slot of its own
 * (a bit of sy_scratch_used) instead of one fixed per direction. */
#define SY_SCRATCH_SLOTS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SY_SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct scratch);
} sy_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* bit i: slot i of sy_scratch is in use on this CPU */
} sy_scratch_used SEC(".maps");

/* Claims bit `bit` of *used; 1 if it was free. */
#define CLAIM(used, bit) (!(__sync_fetch_and_or((used), (bit)) & (bit)))

/* A free scratch slot of this CPU, claimed (NULL: all in use, or no map). Written
 * out rather than looped: a slot is almost always the first. */
static __always_inline struct scratch *claim_scratch(__u32 *slot)
{
	__u32 zero = 0, i, *used;
	struct scratch *sc;

	used = bpf_map_lookup_elem(&sy_scratch_used, &zero);
	if (!used)
		return NULL;
	if (CLAIM(used, 1))
		i = 0;
	else if (CLAIM(used, 2))
		i = 1;
	else if (CLAIM(used, 4))
		i = 2;
	else if (CLAIM(used, 8))
		i = 3;
	else
		return NULL;
	sc = bpf_map_lookup_elem(&sy_scratch, &i);
	if (!sc) {
		__sync_fetch_and_and(used, ~(1u << i));
		return NULL;
	}
	*slot = i;
	return sc;
}

/* Looked up again rather than kept: a map pointer kept across the walk is one more
 * value for the verifier to carry through every state of it. */
static __always_inline void release_scratch(__u32 slot)
{
	__u32 zero = 0, *used;

	used = bpf_map_lookup_elem(&sy_scratch_used, &zero);
	if (used)
		__sync_fetch_and_and(used, ~(1u << (slot & (SY_SCRATCH_SLOTS - 1))));
}

#endif
