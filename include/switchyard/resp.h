// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* resp.h — the request-stream parser (RESP2/RESP3 arrays of bulk strings, and inline
 * commands), written once and compiled twice: into the kernel's egress program
 * (bpf/observe.bpf.c) and into the agent's tests and fuzzers on the host.
 *
 * It is a byte machine with one escape hatch: the bytes of an argument nobody needs
 * (values) are skipped in one step (sy_resp_skippable / sy_resp_skipped), so the
 * kernel only looks at headers, names and first keys, whatever the value sizes.
 * All state is in struct sy_resp (abi.h), which lives in the socket's storage, so a
 * command may span any number of sends and packets and a packet may hold any number
 * of commands. The machine never needs to look back or ahead.
 *
 * The caller reacts to events between bytes: after SY_RESP_EV_NAME it looks the name
 * up in the command table and sets r->first_key (and class, flags); after
 * SY_RESP_EV_KEY the first key is in r->key. A protocol error (or a limit) returns
 * SY_RESP_EV_ERROR and resynchronises at the next '\n': counted, never fatal.
 */
#ifndef SWITCHYARD_RESP_H
#define SWITCHYARD_RESP_H

#include "switchyard/abi.h"
#include "switchyard/resp_bulk.h"

/* The verifier must see an index's bound on the register used for the access; the
 * barrier keeps clang from dropping the mask as redundant after the range check. */
#ifdef __BPF__
#define SY_RESP_IDX(i, mask)                                                                                 \
	({                                                                                                   \
		__u32 __i = (i);                                                                             \
		asm volatile("" : "+r"(__i));                                                                \
		__i &(mask);                                                                                 \
	})
#else
#define SY_RESP_IDX(i, mask) ((i) & (mask))
#endif

#ifdef __clang__
#define SY_UNROLL _Pragma("unroll")
#else
#define SY_UNROLL
#endif

#define SY_RESP_FAST_NAME 16 /* names up to this long are copied in one step */

/* Redis's own limits: beyond them the server refuses the command, so do we. */
#define SY_RESP_MAX_ARGC   (1u << 30)
#define SY_RESP_MAX_BULK   (512u << 20)
#define SY_RESP_MAX_INLINE (64u << 10)

enum sy_resp_state {
	SY_RS_START = 0, /* before the first byte of a command */
	SY_RS_ARGC,	 /* digits after '*' */
	SY_RS_ARGC_LF,	 /* '\n' after the count */
	SY_RS_DOLLAR,	 /* '$' of the next argument */
	SY_RS_BULKLEN,	 /* digits after '$' */
	SY_RS_BULKLEN_LF,
	SY_RS_DATA,   /* inside an argument: r->num bytes left, its "\r\n" included */
	SY_RS_INLINE, /* inside an inline command line */
	SY_RS_RESYNC, /* after an error: dropping bytes up to the next '\n' */
};

#define SY_RESPF_DIGITS	   0x01 /* a number has at least one digit */
#define SY_RESPF_NEG	   0x02 /* a count started with '-' */
#define SY_RESPF_KEYTRUNC  0x04 /* the key is longer than SY_KEY_MAX */
#define SY_RESPF_NAMETRUNC 0x08 /* the name is longer than SY_CMD_NAME_MAX */
#define SY_RESPF_INTOKEN   0x10 /* inline: inside a word */
#define SY_RESPF_INLINE	   0x40 /* the current command is inline */
#define SY_RESPF_KEYSEEN   0x80 /* the first key has been read */

#define SY_RESP_EV_BEGIN 0x01 /* this byte starts a command */
#define SY_RESP_EV_NAME	 0x02 /* the name is complete (upper case in r->name) */
#define SY_RESP_EV_KEY	 0x04 /* the first key is complete */
#define SY_RESP_EV_CMD	 0x08 /* this byte ends a command */
#define SY_RESP_EV_ERROR 0x10 /* protocol error or limit: resynchronising */

SY_INLINE void sy_resp_reset_cmd(struct sy_resp *r)
{
	r->flags = 0;
	__builtin_memset(r->name, 0, sizeof(r->name)); /* the name is the table's map key */
	r->name_len = 0;
	r->key_len = 0;
	r->class = SY_CLASS_OTHER;
	r->first_key = 0;
	r->cmd_flags = 0;
	r->argc = 0;
	r->arg = 0;
	r->num = 0;
	r->rule = 0;
}

SY_INLINE int sy_resp_fail(struct sy_resp *r, __u8 c)
{
	sy_resp_reset_cmd(r);
	r->state = c == '\n' ? SY_RS_START : SY_RS_RESYNC;
	return SY_RESP_EV_ERROR;
}

/* Adds a digit to r->num; 0 when c is not a digit, -1 past `max`. */
SY_INLINE int sy_resp_digit(struct sy_resp *r, __u8 c, __u32 max)
{
	if (c < '0' || c > '9')
		return 0;
	if (r->num > (max - (c - '0')) / 10)
		return -1;
	r->num = r->num * 10 + (c - '0');
	r->flags |= SY_RESPF_DIGITS;
	return 1;
}

SY_INLINE __u8 sy_resp_upper(__u8 c)
{
	return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

/* The argument being read is the first key, still to be kept. */
SY_INLINE int sy_resp_wants_key(const struct sy_resp *r)
{
	return r->arg && r->first_key && r->arg == r->first_key && !(r->flags & SY_RESPF_KEYSEEN);
}

SY_INLINE void sy_resp_keep(struct sy_resp *r, __u8 c)
{
	__u32 i;

	if (r->arg == 0) {
		i = r->name_len;
		if (i < SY_CMD_NAME_MAX) {
			r->name[SY_RESP_IDX(i, 31)] = sy_resp_upper(c);
			r->name_len = i + 1;
		} else {
			r->flags |= SY_RESPF_NAMETRUNC;
		}
	} else if (r->first_key && r->arg == r->first_key && !(r->flags & SY_RESPF_KEYSEEN)) {
		i = r->key_len;
		if (i < SY_KEY_MAX) {
			r->key[SY_RESP_IDX(i, SY_KEY_MAX - 1)] = c;
			r->key_len = i + 1;
		} else {
			r->flags |= SY_RESPF_KEYTRUNC;
		}
	}
}

/* Events for the end of argument r->arg. */
SY_INLINE int sy_resp_arg_done(struct sy_resp *r)
{
	if (r->arg == 0)
		return SY_RESP_EV_NAME;
	if (r->first_key && r->arg == r->first_key && !(r->flags & SY_RESPF_KEYSEEN)) {
		r->flags |= SY_RESPF_KEYSEEN;
		return SY_RESP_EV_KEY;
	}
	return 0;
}

/* The last byte of an argument's data was consumed. */
SY_INLINE int sy_resp_data_done(struct sy_resp *r)
{
	int ev = sy_resp_arg_done(r);

	if (++r->arg == r->argc) {
		r->state = SY_RS_START;
		ev |= SY_RESP_EV_CMD;
	} else {
		r->state = SY_RS_DOLLAR;
	}
	return ev;
}

SY_INLINE int sy_resp_inline(struct sy_resp *r, __u8 c)
{
	int ev = 0;

	if (++r->num > SY_RESP_MAX_INLINE)
		return sy_resp_fail(r, c);
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
		if (r->flags & SY_RESPF_INTOKEN) {
			r->flags &= ~SY_RESPF_INTOKEN;
			ev = sy_resp_arg_done(r);
			r->arg++;
		}
		if (c == '\n') {
			r->state = SY_RS_START;
			/* an empty line is no command (Redis skips it too) */
			if (r->arg)
				ev |= SY_RESP_EV_CMD;
		}
		return ev;
	}
	r->flags |= SY_RESPF_INTOKEN;
	sy_resp_keep(r, c);
	return 0;
}

/* Feeds one byte; returns SY_RESP_EV_* bits. */
SY_INLINE int sy_resp_byte(struct sy_resp *r, __u8 c)
{
	int d;

	switch (r->state) {
	case SY_RS_START:
		if (c == '\r' || c == '\n')
			return 0;
		sy_resp_reset_cmd(r);
		if (c == '*') {
			r->state = SY_RS_ARGC;
			return SY_RESP_EV_BEGIN;
		}
		r->flags |= SY_RESPF_INLINE;
		r->state = SY_RS_INLINE;
		return SY_RESP_EV_BEGIN | sy_resp_inline(r, c);
	case SY_RS_ARGC:
		if (c == '-' && !(r->flags & (SY_RESPF_DIGITS | SY_RESPF_NEG))) {
			r->flags |= SY_RESPF_NEG;
			return 0;
		}
		if (c == '\r' && (r->flags & SY_RESPF_DIGITS)) {
			r->state = SY_RS_ARGC_LF;
			return 0;
		}
		d = sy_resp_digit(r, c, SY_RESP_MAX_ARGC);
		return d > 0 ? 0 : sy_resp_fail(r, c);
	case SY_RS_ARGC_LF:
		/* Redis skips the byte after '\r' unchecked: so must we, or a client could
		 * hide a command from the parser that the server runs */
		if ((r->flags & SY_RESPF_NEG) || r->num == 0) {
			/* "*0" and "*-1": Redis reads them as nothing at all */
			r->state = SY_RS_START;
			return 0;
		}
		r->argc = r->num;
		r->num = 0;
		r->flags &= ~SY_RESPF_DIGITS;
		r->state = SY_RS_DOLLAR;
		return 0;
	case SY_RS_DOLLAR:
		if (c != '$')
			return sy_resp_fail(r, c);
		r->num = 0;
		r->flags &= ~SY_RESPF_DIGITS;
		r->state = SY_RS_BULKLEN;
		return 0;
	case SY_RS_BULKLEN:
		if (c == '\r' && (r->flags & SY_RESPF_DIGITS)) {
			r->state = SY_RS_BULKLEN_LF;
			return 0;
		}
		d = sy_resp_digit(r, c, SY_RESP_MAX_BULK);
		return d > 0 ? 0 : sy_resp_fail(r, c);
	case SY_RS_BULKLEN_LF: /* any byte, as Redis (see SY_RS_ARGC_LF) */
		r->flags &= ~SY_RESPF_DIGITS;
		r->num += 2; /* the data's "\r\n", skipped unchecked as Redis does */
		r->state = SY_RS_DATA;
		return 0;
	case SY_RS_DATA:
		if (r->num > 2)
			sy_resp_keep(r, c);
		return --r->num == 0 ? sy_resp_data_done(r) : 0;
	case SY_RS_INLINE:
		return sy_resp_inline(r, c);
	default: /* SY_RS_RESYNC, or a state nobody wrote */
		if (c == '\n')
			r->state = SY_RS_START;
		else
			r->state = SY_RS_RESYNC;
		return 0;
	}
}

/* How many of the next bytes the caller may skip without feeding them: the rest of
 * an argument that is neither the name nor a first key still to be kept, and the
 * "\r\n" ending every argument. */
SY_INLINE __u32 sy_resp_skippable(struct sy_resp *r)
{
	if (r->state != SY_RS_DATA)
		return 0;
	if (r->num <= 2)
		return r->num;
	if (r->arg == 0) {
		if (r->name_len < SY_CMD_NAME_MAX)
			return 0;
		r->flags |= SY_RESPF_NAMETRUNC;
	} else if (r->first_key && r->arg == r->first_key && !(r->flags & SY_RESPF_KEYSEEN)) {
		if (r->key_len < SY_KEY_MAX)
			return 0;
		r->flags |= SY_RESPF_KEYTRUNC;
	}
	return r->num;
}

/* The caller skipped n <= sy_resp_skippable() bytes; returns SY_RESP_EV_* bits (the
 * argument, and maybe the command, ended). */
SY_INLINE int sy_resp_skipped(struct sy_resp *r, __u32 n)
{
	r->num -= n;
	return r->num == 0 ? sy_resp_data_done(r) : 0;
}

/* Fast path over bytes the caller already holds (p[0..avail) are the stream's next
 * bytes, avail <= SY_FAST_WINDOW; `more` of them are in the packet in all): in one
 * step instead of one per byte,
 *  - a "*N\r\n$M\r\n" command header, and the short name that follows when it is at
 *    hand (events BEGIN, NAME);
 *  - a short name alone;
 *  - up to SY_RESP_FAST_ARGS "$M\r\n" argument headers, each with its argument when
 *    nobody needs its bytes (skipped, not read: the last one may run past the window
 *    into the rest of the packet); a first key to keep ends the step after its header;
 *  - with SY_RESP_IN_NAMES_ONLY set in *ev on entry (the caller needs no key, so nothing it does after the
 * name depends on where the step stops: a capture's start, after the name, is the step's start plus the
 * 8 header bytes if BEGIN is raised, the name and its "\r\n"), the arguments after the name too: a whole
 * short command in one step. Returns the bytes consumed (0: use the byte path) and ORs events
 * into *ev. The state reached is exactly what feeding the same bytes one by one would reach; anything unusual
 * (multi-digit counts, errors) is left to the byte path. */
#define SY_RESP_FAST_ARGS 4
/* In *ev on entry to sy_resp_fast (a kernel function takes at most 5 arguments). */
#define SY_RESP_IN_NAMES_ONLY 0x100

SY_FAST_FN __u32 sy_resp_fast(struct sy_resp *r, const struct sy_window *win, __u32 avail, __u32 more,
			      int *ev)
{
	__u32 i, n = 0, k = 0, h, m, a;
	const __u8 *p;
	int names_only;

	if (!SY_FAST_ARGS_OK(r, win, ev))
		return 0;
	names_only = *ev & SY_RESP_IN_NAMES_ONLY;
	*ev &= ~SY_RESP_IN_NAMES_ONLY;
	p = win->b;

	if (avail > SY_FAST_WINDOW)
		avail = SY_FAST_WINDOW;
	if (avail < 4)
		return 0;
	if (r->state == SY_RS_START) {
		if (avail < 8 || p[0] != '*' || p[1] < '1' || p[1] > '9' || p[2] != '\r' || p[3] != '\n' ||
		    p[4] != '$' || p[5] < '0' || p[5] > '9' || p[6] != '\r' || p[7] != '\n')
			return 0;
		sy_resp_reset_cmd(r);
		r->argc = p[1] - '0';
		r->num = p[5] - '0' + 2;
		r->state = SY_RS_DATA;
		*ev |= SY_RESP_EV_BEGIN;
		k = 8;
	}
	if (r->state == SY_RS_DATA && r->arg == 0 && r->name_len == 0 && r->num > 2 &&
	    r->num <= SY_RESP_FAST_NAME + 2 && k + r->num <= avail) {
		/* a whole short name and its "\r\n" */
		n = r->num - 2;
		/* a fixed trip count (the name stays zero padded: it is the table's key) */
		SY_UNROLL
		for (i = 0; i < SY_RESP_FAST_NAME; i++)
			r->name[i] = i >= n ? 0 : sy_resp_upper(p[(k + i) & (SY_FAST_WINDOW - 1)]);
		r->name_len = n;
		k += r->num;
		r->num = 0;
		*ev |= sy_resp_data_done(r);
		if (!names_only)
			return k;
	}
	for (a = 0; a < SY_RESP_FAST_ARGS; a++) {
		if (r->state != SY_RS_DOLLAR)
			break;
		h = sy_bulk_header(p, k, avail, &n);
		if (!h)
			break;
		r->num = n + 2;
		r->flags &= ~SY_RESPF_DIGITS;
		r->state = SY_RS_DATA;
		k += h;
		/* the argument itself when nobody needs its bytes */
		m = sy_resp_skippable(r);
		if (!m || more <= k)
			break; /* kept (the first key: the byte path), or the packet ends */
		if (m > more - k)
			m = more - k;
		k += m;
		*ev |= sy_resp_skipped(r, m);
		if (r->state != SY_RS_DOLLAR)
			break; /* the command ended, or its argument goes on in the next packet */
	}
	return k;
}

#endif
