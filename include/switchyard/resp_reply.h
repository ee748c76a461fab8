// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* resp_reply.h — the reply-stream parser (RESP2 and RESP3, any nesting), written once
 * and compiled twice: into the kernel's ingress program (bpf/observe.bpf.c) and into
 * the agent's tests and fuzzers on the host (agent/redis/reply_scan.c).
 *
 * It only finds where each top-level reply begins and ends, and the first word of a
 * top-level error, so that every reply of a pipelined burst is counted and classed.
 * Nesting needs no stack: `pending` counts the elements of the current reply still to
 * read (an aggregate of n replaces itself with its n children), so a reply of any
 * depth is followed in constant state. Bulk bytes are skipped in one step
 * (sy_reply_skippable / sy_reply_skipped), whatever their size.
 *
 * The grammar is what Redis sends, as hiredis reads it: a line ends at the first
 * "\r\n"; a bulk's own "\r\n" is skipped unchecked; lengths are digits ("-1" is a
 * null). Anything else returns SY_REPLY_EV_ERROR and resynchronises at the next '\n'
 * as if a new top-level reply started there: counted, never fatal.
 */
#ifndef SWITCHYARD_RESP_REPLY_H
#define SWITCHYARD_RESP_REPLY_H

#include "switchyard/abi.h"
#include "switchyard/resp_bulk.h"

/* Beyond these the stream is not Redis's: a bulk or aggregate length, and the
 * elements one reply may still owe. */
#define SY_REPLY_MAX_LEN     (1ull << 40)
#define SY_REPLY_MAX_PENDING (1ull << 62)

/* The verifier must see an index's bound on the register used for the access (see
 * SY_RESP_IDX in resp.h). */
#ifdef __BPF__
#define SY_REPLY_IDX(i, mask)                                                                                \
	({                                                                                                   \
		__u32 __i = (i);                                                                             \
		asm volatile("" : "+r"(__i));                                                                \
		__i &(mask);                                                                                 \
	})
#else
#define SY_REPLY_IDX(i, mask) ((i) & (mask))
#endif

enum sy_reply_state {
	SY_RP_TYPE = 0, /* the type byte of the next element (or top-level reply) */
	SY_RP_LINE,	/* a simple line: up to "\r\n" */
	SY_RP_LINE_CR,	/* a '\r' in a line */
	SY_RP_LEN,	/* the digits of a bulk or aggregate length */
	SY_RP_LEN_LF,	/* the '\n' after a length */
	SY_RP_DATA,	/* inside a bulk: r->num bytes left, its "\r\n" included */
	SY_RP_RESYNC,	/* after an error: dropping bytes up to the next '\n' */
};

#define SY_REPLYF_DIGITS   0x01 /* a length has at least one digit */
#define SY_REPLYF_NEG	   0x02 /* a length started with '-' */
#define SY_REPLYF_CODE	   0x04 /* the line being read is a top-level error's */
#define SY_REPLYF_CODEDONE 0x08 /* its first word is complete */

#define SY_REPLY_EV_BEGIN 0x01 /* this byte starts a top-level reply (r->type) */
#define SY_REPLY_EV_END	  0x02 /* this byte ends a top-level reply */
#define SY_REPLY_EV_ERROR 0x04 /* protocol error or limit: resynchronising */

/* Error classes of a top-level error reply, by its first word. */
enum sy_reply_err {
	SY_ERR_ERR = 0,
	SY_ERR_MOVED, /* -MOVED and -ASK: cluster redirections */
	SY_ERR_OOM,
	SY_ERR_NOAUTH, /* -NOAUTH and -WRONGPASS */
	SY_ERR_READONLY,
	SY_ERR_OTHER,
	SY_ERR_CLASSES,
};

SY_INLINE int sy_reply_is_error(__u8 type)
{
	return type == '-' || type == '!';
}

SY_INLINE int sy_reply_fail(struct sy_reply *r, __u8 c)
{
	r->flags = 0;
	r->pending = 0;
	r->num = 0;
	r->state = c == '\n' ? SY_RP_TYPE : SY_RP_RESYNC;
	return SY_REPLY_EV_ERROR;
}

/* One element of the current reply is complete. */
SY_INLINE int sy_reply_elem_done(struct sy_reply *r)
{
	r->state = SY_RP_TYPE;
	r->flags = 0;
	if (--r->pending == 0)
		return SY_REPLY_EV_END;
	return 0;
}

SY_INLINE int sy_reply_type(struct sy_reply *r, __u8 c)
{
	int ev = 0;
	__u8 st;

	switch (c) {
	case '-':
	case '+':
	case ':':
	case '_': /* RESP3: null, double, boolean, big number */
	case ',':
	case '#':
	case '(':
		st = SY_RP_LINE;
		break;
	case '$':
	case '*':
	case '!': /* RESP3: blob error, verbatim string, map, set, push, attribute */
	case '=':
	case '%':
	case '~':
	case '>':
	case '|':
		st = SY_RP_LEN;
		break;
	default:
		return sy_reply_fail(r, c);
	}
	r->flags = 0;
	if (r->pending == 0) {
		/* a new top-level reply */
		r->pending = 1;
		r->type = c;
		r->code_len = 0;
		__builtin_memset(r->code, 0, sizeof(r->code));
		if (c == '-')
			r->flags = SY_REPLYF_CODE;
		ev = SY_REPLY_EV_BEGIN;
	}
	/* a nested error (in EXEC's answer) is an element of its reply, not a reply */
	r->kind = c;
	r->num = 0;
	r->state = st;
	return ev;
}

SY_INLINE int sy_reply_line(struct sy_reply *r, __u8 c)
{
	__u32 i;

	if (c == '\r') {
		r->state = SY_RP_LINE_CR;
		r->flags |= SY_REPLYF_CODEDONE;
		return 0;
	}
	if (!(r->flags & SY_REPLYF_CODE) || (r->flags & SY_REPLYF_CODEDONE))
		return 0;
	if (c == ' ') {
		r->flags |= SY_REPLYF_CODEDONE;
		return 0;
	}
	i = r->code_len;
	if (i < SY_REPLY_CODE_MAX)
		r->code[SY_REPLY_IDX(i, SY_REPLY_CODE_MAX - 1)] = c;
	if (i <= SY_REPLY_CODE_MAX)
		r->code_len = i + 1; /* SY_REPLY_CODE_MAX + 1: longer than kept */
	return 0;
}

/* The '\n' ending a length line: null, bulk, or aggregate. */
SY_INLINE int sy_reply_len_done(struct sy_reply *r, __u8 c)
{
	__u64 n = r->num;

	if (c != '\n')
		return sy_reply_fail(r, c);
	if (r->flags & SY_REPLYF_NEG) {
		if (n != 1) /* "-1" is a null, any other negative is no length */
			return sy_reply_fail(r, c);
		return sy_reply_elem_done(r);
	}
	switch (r->kind) {
	case '$':
	case '!':
	case '=':
		r->num = n + 2;
		r->flags = 0;
		r->state = SY_RP_DATA;
		return 0;
	case '%':
		n *= 2;
		break;
	case '|':
		/* an attribute's pairs come before the element it describes, which stays
		 * pending: count it back in */
		n = n * 2 + 1;
		break;
	default:
		break;
	}
	r->pending += n;
	if (r->pending > SY_REPLY_MAX_PENDING)
		return sy_reply_fail(r, c);
	r->num = 0;
	return sy_reply_elem_done(r);
}

/* Feeds one byte; returns SY_REPLY_EV_* bits. */
SY_INLINE int sy_reply_byte(struct sy_reply *r, __u8 c)
{
	switch (r->state) {
	case SY_RP_TYPE:
		return sy_reply_type(r, c);
	case SY_RP_LINE:
		return sy_reply_line(r, c);
	case SY_RP_LINE_CR:
		if (c == '\n')
			return sy_reply_elem_done(r);
		if (c != '\r') /* the '\r' was text: so may this byte be */
			r->state = SY_RP_LINE;
		return 0;
	case SY_RP_LEN:
		if (c == '-' && !(r->flags & (SY_REPLYF_DIGITS | SY_REPLYF_NEG))) {
			r->flags |= SY_REPLYF_NEG;
			return 0;
		}
		if (c == '\r' && (r->flags & SY_REPLYF_DIGITS)) {
			r->state = SY_RP_LEN_LF;
			return 0;
		}
		if (c < '0' || c > '9' || r->num > (SY_REPLY_MAX_LEN - (c - '0')) / 10)
			return sy_reply_fail(r, c);
		r->num = r->num * 10 + (c - '0');
		r->flags |= SY_REPLYF_DIGITS;
		return 0;
	case SY_RP_LEN_LF:
		return sy_reply_len_done(r, c);
	case SY_RP_DATA:
		return --r->num == 0 ? sy_reply_elem_done(r) : 0;
	default: /* SY_RP_RESYNC, or a state nobody wrote */
		r->state = c == '\n' ? SY_RP_TYPE : SY_RP_RESYNC;
		return 0;
	}
}

/* How many of the next bytes the caller may skip without feeding them: the rest of a
 * bulk, its "\r\n" included (at most 2^40 + 2, so the caller clamps to its packet). */
SY_INLINE __u64 sy_reply_skippable(const struct sy_reply *r)
{
	return r->state == SY_RP_DATA ? r->num : 0;
}

/* The caller skipped n <= sy_reply_skippable() bytes; returns SY_REPLY_EV_* bits. */
SY_INLINE int sy_reply_skipped(struct sy_reply *r, __u32 n)
{
	r->num -= n;
	return r->num == 0 ? sy_reply_elem_done(r) : 0;
}

#define SY_REPLY_FAST_LINE 16 /* line replies up to this long take one step */

/* Fast path over bytes the caller already holds (p[0..avail) are the stream's next
 * bytes, `more` of them at hand in all): a whole short "+…" or ":…" line, or a
 * "$N\r\n" bulk header and as much of the bulk as `more` holds, in one step. Returns
 * the bytes consumed (0: use the byte path) and ORs events into *ev. The state
 * reached is exactly what feeding the same bytes one by one would reach; anything
 * else (errors, whose first word is kept, long lines, aggregates) is the byte path's. */
SY_FAST_FN __u32 sy_reply_fast(struct sy_reply *r, const struct sy_window *win, __u32 avail, __u32 more,
			       int *ev)
{
	__u32 i, n = 0, k, m;
	const __u8 *p;
	__u8 c;

	if (!SY_FAST_ARGS_OK(r, win, ev))
		return 0;
	p = win->b;

	if (avail > SY_FAST_WINDOW)
		avail = SY_FAST_WINDOW;
	if (r->state != SY_RP_TYPE || avail < 4)
		return 0;
	c = p[0];
	if (c == '+' || c == ':') {
		for (i = 1; i < SY_REPLY_FAST_LINE; i++) {
			if (i + 1 >= avail)
				return 0;
			if (p[i] == '\r')
				break;
		}
		if (i >= SY_REPLY_FAST_LINE || p[i + 1] != '\n')
			return 0;
		*ev |= sy_reply_type(r, c);
		*ev |= sy_reply_elem_done(r);
		return i + 2;
	}
	if (c != '$')
		return 0;
	i = sy_bulk_header(p, 0, avail, &n);
	if (!i)
		return 0;
	*ev |= sy_reply_type(r, c);
	r->num = n + 2;
	r->state = SY_RP_DATA;
	k = i;
	if (more > k) {
		m = more - k < r->num ? more - k : (__u32)r->num;
		k += m;
		*ev |= sy_reply_skipped(r, m);
	}
	return k;
}

/* The class of the top-level error whose first word is r->code (valid from the
 * reply's end on, or once the word is complete). */
SY_INLINE enum sy_reply_err sy_reply_err_class(const struct sy_reply *r)
{
	const char *w = r->code;
	__u32 n = r->code_len;

	if (n == 3 && w[0] == 'E' && w[1] == 'R' && w[2] == 'R')
		return SY_ERR_ERR;
	if ((n == 5 && w[0] == 'M' && w[1] == 'O' && w[2] == 'V' && w[3] == 'E' && w[4] == 'D') ||
	    (n == 3 && w[0] == 'A' && w[1] == 'S' && w[2] == 'K'))
		return SY_ERR_MOVED;
	if (n == 3 && w[0] == 'O' && w[1] == 'O' && w[2] == 'M')
		return SY_ERR_OOM;
	if ((n == 6 && w[0] == 'N' && w[1] == 'O' && w[2] == 'A' && w[3] == 'U' && w[4] == 'T' &&
	     w[5] == 'H') ||
	    (n == 9 && w[0] == 'W' && w[1] == 'R' && w[2] == 'O' && w[3] == 'N' && w[4] == 'G' &&
	     w[5] == 'P' && w[6] == 'A' && w[7] == 'S' && w[8] == 'S'))
		return SY_ERR_NOAUTH;
	if (n == 8 && w[0] == 'R' && w[1] == 'E' && w[2] == 'A' && w[3] == 'D' && w[4] == 'O' &&
	    w[5] == 'N' && w[6] == 'L' && w[7] == 'Y')
		return SY_ERR_READONLY;
	return SY_ERR_OTHER;
}

#endif
