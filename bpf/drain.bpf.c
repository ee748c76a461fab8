// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* drain.bpf.c — terminate the established client connections of one side of a
 * migration, so that their clients reconnect and connect() steering decides again
 * (a rollback drains the target side: the reconnects land on legacy).
 *
 * An `iter/tcp` program: reading the iterator walks every TCP socket of the reader's
 * network namespace, with the socket locked, which is what bpf_sock_destroy() needs
 * (kernel >= 6.5). A socket is ours only if steer.bpf.c marked it at connect() (a
 * sy_conns entry, turned into sy_socks storage by its first data packet): the agent's
 * own connections (mirror, health checks) and server-side sockets are never marked,
 * so they cannot match. Destroying a socket aborts it like
 * `ss -K`: the peer gets a RST, the client's next call fails with ECONNABORTED.
 *
 * Not attached to anything and never pinned: the agent loads it for one drain
 * (drain.c), reads the iterator to its end and closes it. Parameters are rodata set
 * before load; the counts are .bss globals read back through the skeleton (one
 * reader at a time runs the program, so plain increments are exact).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "switchyard/abi.h"
#include "lib/socks.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

const volatile __u32 drain_mig = 0;   /* the migration to drain */
const volatile __u8 drain_side = 0;   /* enum sy_side */
const volatile __u8 drain_direct = 0; /* also sockets that dialled the target itself */

__u64 examined = 0;  /* sockets the iterator showed us */
__u64 matched = 0;   /* of those, sockets of drain_mig on drain_side */
__u64 destroyed = 0; /* bpf_sock_destroy() succeeded */
__u64 failed = 0;    /* bpf_sock_destroy() refused */
__s32 last_err = 0;  /* its last error (negative errno) */

/* Whether a socket went through the steering decision: only those can move when they
 * reconnect. A socket that dialled a target endpoint directly (side target, not
 * rewritten) would reconnect to the same target; killing it only hurts its client. */
static __always_inline int steered(__u8 side, __u8 rewritten)
{
	return side == SY_SIDE_LEGACY || rewritten;
}

SEC("iter/tcp")
int sy_drain(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	const struct sy_conn *c;
	struct tcp_sock *tp;
	int err;

	if (!skc)
		return 0; /* the end of the walk */
	examined++;
	/* Listening, TIME_WAIT and request sockets are not client connections (and the
	 * last two are not full sockets: no storage, nothing to abort). */
	if (skc->skc_state == TCP_LISTEN || skc->skc_state == TCP_CLOSE)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	/* storage, or (connected but silent so far) its sy_conns entry */
	c = sy_conn_of(tp, skc);
	if (!c || c->mig_id != drain_mig || c->side != drain_side)
		return 0;
	if (!drain_direct && !steered(c->side, c->rewritten))
		return 0;
	matched++;
	err = bpf_sock_destroy(skc);
	if (err) {
		failed++;
		last_err = err;
	} else {
		destroyed++;
	}
	return 0;
}
