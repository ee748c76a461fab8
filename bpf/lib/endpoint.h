// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* endpoint.h — building sy_endpoint keys from sock_addr contexts (BPF side). */
#ifndef SY_BPF_ENDPOINT_H
#define SY_BPF_ENDPOINT_H

static __always_inline void sy_ep_from_v4(struct sy_endpoint *ep, __u32 ip4, __u16 port)
{
	__builtin_memset(ep, 0, sizeof(*ep));
	ep->addr[10] = 0xff;
	ep->addr[11] = 0xff;
	__builtin_memcpy(&ep->addr[12], &ip4, 4);
	ep->port = port;
	ep->family = SY_AF_INET;
}

static __always_inline int sy_ep_is_v4(const struct sy_endpoint *ep)
{
	const __u32 *w = (const __u32 *)ep->addr;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

/* Dual-stack sockets dial IPv4 peers as ::ffff:a.b.c.d: that maps onto the same key
 * as a plain IPv4 connect, so one route serves both. */
static __always_inline void sy_ep_from_v6(struct sy_endpoint *ep, const __u32 ip6[4], __u16 port)
{
	__builtin_memset(ep, 0, sizeof(*ep));
	__builtin_memcpy(ep->addr, ip6, 16);
	ep->port = port;
	ep->family = sy_ep_is_v4(ep) ? SY_AF_INET : SY_AF_INET6;
}

#endif
