// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* resp_bulk.h — the one reader of a "$N\r\n" bulk header for the fast paths of both
 * RESP machines (resp.h: requests, resp_reply.h: replies), compiled into the kernel's
 * observe program (so the verifier checks it there) and into the host's tests and
 * fuzzers. It only recognises the common shape, at most SY_BULK_FAST_DIGITS digits
 * and no sign; anything else returns 0 and the caller's byte machine decides.
 *
 * Index contract: p[0..avail) are the stream's next bytes with avail <= 64; indexes
 * are masked with 63 so that the verifier sees them bounded (the mask never changes
 * an index that passed the `< avail` check).
 */
#ifndef SWITCHYARD_RESP_BULK_H
#define SWITCHYARD_RESP_BULK_H

#include "switchyard/abi.h"

#ifndef SY_INLINE
#ifdef __BPF__
#define SY_INLINE static __always_inline
#else
#define SY_INLINE static inline
#endif
#endif

#define SY_BULK_FAST_DIGITS 7 /* lengths below 10 MB: no overflow check is needed */
#define SY_FAST_WINDOW	    64

/* The bytes a fast path may look at: a struct, so that the kernel's verifier knows
 * the size behind the pointer. */
struct sy_window {
	__u8 b[SY_FAST_WINDOW];
};

/* The fast paths (sy_resp_fast, sy_reply_fast) are global functions in the kernel:
 * the verifier checks a global function once, on its own, and its caller sees only
 * "some number" come back. Inlined, every distinct header length became a distinct
 * verifier state at every call site, and the program passed the verifier's limit. */
#ifdef __BPF__
#define SY_FAST_FN		    __attribute__((noinline))
#define SY_FAST_ARGS_OK(r, win, ev) ((r) && (win) && (ev))
#else
#define SY_FAST_FN		    static inline
#define SY_FAST_ARGS_OK(r, win, ev) 1
#endif

/* "$N\r\n" at p[at..]: returns its length (at least 4) and sets *len = N, or 0. */
SY_INLINE __u32 sy_bulk_header(const __u8 *p, __u32 at, __u32 avail, __u32 *len)
{
	__u32 i, n = 0;
	__u8 c;

	if (at >= avail || avail - at < 4 || p[at & (SY_FAST_WINDOW - 1)] != '$')
		return 0;
	for (i = 1; i <= SY_BULK_FAST_DIGITS; i++) {
		if (at + i >= avail)
			return 0;
		c = p[(at + i) & (SY_FAST_WINDOW - 1)];
		if (c < '0' || c > '9')
			break;
		n = n * 10 + (c - '0');
	}
	if (i == 1 || i > SY_BULK_FAST_DIGITS || at + i + 1 >= avail ||
	    p[(at + i) & (SY_FAST_WINDOW - 1)] != '\r' || p[(at + i + 1) & (SY_FAST_WINDOW - 1)] != '\n')
		return 0;
	*len = n;
	return i + 2;
}

#endif
