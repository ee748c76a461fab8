// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* steer.bpf.c — connect-time steering: legacy endpoint → target endpoint.
 *
 * cgroup/connect4 and connect6 look the dialled address up in `routes`; for a
 * migration's legacy endpoint they pick the client's side (pins first, then
 * bucket(client id, salt) < ratio) and rewrite the destination to a healthy target.
 * getpeername4/6 then report the address the application dialled. What was decided
 * goes to sy_conns (an LRU hash keyed by socket cookie), not to the socket's storage:
 * creating storage costs about 1 us, the observe program creates it on the first
 * data packet. Cost for every other connect(): one hash lookup. No packet of the data
 * stream is touched here.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "switchyard/abi.h"
#include "switchyard/hash.h"
#include "switchyard/index.h"
#include "lib/endpoint.h"

#define SY_SOCK_STREAM 1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SY_MAX_ROUTES);
	__type(key, struct sy_endpoint);
	__type(value, struct sy_route);
} sy_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SY_MAX_PINS);
	__type(key, struct sy_pin_key);
	__type(value, struct sy_pin);
} sy_pins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SY_MAX_MIGRATIONS);
	__type(key, __u32);
	__type(value, struct sy_steer_counters);
} sy_steer_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sy_config);
} sy_config_map SEC(".maps");

#include "lib/maps.h"

static __always_inline void count(__u32 mig_id, enum sy_decision d)
{
	struct sy_steer_counters *c = bpf_map_lookup_elem(&sy_steer_counters, &mig_id);

	if (c && d < SY_DEC_MAX)
		c->decisions[d]++; /* per-CPU: no atomics needed */
}

static __always_inline int is_agent(void)
{
	__u32 zero = 0;
	struct sy_config *cfg = bpf_map_lookup_elem(&sy_config_map, &zero);

	return cfg && cfg->agent_tgid && cfg->agent_tgid == (__u32)(bpf_get_current_pid_tgid() >> 32);
}

/* Picks a healthy target for the client, or returns -1. The preferred target is chosen
 * by hash; when it is down the next healthy one (in order) takes its clients. */
static __always_inline int pick_target(const struct sy_migration *m, __u64 client, int want_v4)
{
	__u32 n = m->n_targets;
	__u32 first;

	if (n == 0 || n > SY_MAX_ENDPOINTS)
		return -1;
	first = sy_target_pick(client, m->salt, n);
	for (__u32 i = 0; i < SY_MAX_ENDPOINTS; i++) {
		__u32 t;

		if (i >= n)
			break;
		t = first + i;
		if (t >= n)
			t -= n;
		/* The verifier loses t < n across the arithmetic: hide t from the compiler,
		 * then bound it with a mask it must keep (SY_MAX_ENDPOINTS is a power of 2). */
		asm volatile("" : "+r"(t));
		t &= SY_MAX_ENDPOINTS - 1;
		if (!(m->healthy_mask & (1u << t)))
			continue;
		/* An AF_INET socket can only reach an IPv4 target. */
		if (want_v4 && m->targets[t].family != SY_AF_INET)
			continue;
		return (int)t;
	}
	return -1;
}

/* Decides the side for a connect to `dialled`. Returns the target index to rewrite
 * to, or -1 to leave the connection where it goes. *mig_out is set (non-zero) when the
 * socket belongs to a migration at all, whichever role its endpoint has. */
static __always_inline int decide(struct bpf_sock_addr *ctx, const struct sy_endpoint *dialled,
				  __u32 *mig_out, __u8 *side_out, int want_v4)
{
	struct sy_route *r;
	struct sy_migration *m;
	struct sy_pin_key pk = {};
	struct sy_pin *pin;
	__u64 client;
	__u32 mig;
	int to_target, pinned = 0, t;

	if (ctx->type != SY_SOCK_STREAM)
		return -1;
	r = bpf_map_lookup_elem(&sy_routes, dialled);
	if (!r)
		return -1;
	mig = r->mig_id;
	m = bpf_map_lookup_elem(&sy_migrations, &mig);
	if (!m || !m->active)
		return -1;
	if (is_agent())
		return -1;
	*mig_out = mig;
	*side_out = r->role == SY_ROLE_TARGET ? SY_SIDE_TARGET : SY_SIDE_LEGACY;
	if (r->role != SY_ROLE_LEGACY)
		return -1; /* dialled the target directly: observed, never steered */

	pk.cgroup_id = bpf_get_current_cgroup_id();
	pk.mig_id = mig;
	pin = bpf_map_lookup_elem(&sy_pins, &pk);
	if (pin) {
		pinned = 1;
		to_target = pin->side == SY_SIDE_TARGET;
	}
	client = m->client_mode == SY_CLIENT_CONNECTION ? bpf_get_socket_cookie(ctx) : pk.cgroup_id;
	if (!pinned)
		to_target = sy_bucket(client, m->salt) < m->ratio_bp;
	if (!to_target) {
		count(mig, pinned ? SY_DEC_PINNED_LEGACY : SY_DEC_LEGACY);
		return -1;
	}
	t = pick_target(m, client, want_v4);
	if (t < 0) {
		count(mig, SY_DEC_FALLBACK);
		return -1;
	}
	count(mig, pinned ? SY_DEC_PINNED_TARGET : SY_DEC_TARGET);
	return t;
}

/* Marks a migration socket: a sy_conns entry, which the egress program turns into the
 * socket's storage on its first data packet (observed from there on), and which
 * getpeername reads until then. */
static __always_inline void mark(struct bpf_sock_addr *ctx, const struct sy_endpoint *dialled,
				 const struct sy_endpoint *actual, __u32 mig, __u8 side, __u8 rewritten)
{
	struct sy_conn c = {};
	struct sy_side_stats *st;
	__u32 idx = sy_side_index(mig, side);
	__u64 cookie = bpf_get_socket_cookie(ctx);

	c.dialled = *dialled;
	c.actual = *actual;
	c.mig_id = mig;
	c.side = side;
	c.rewritten = rewritten;
	if (bpf_map_update_elem(&sy_conns, &cookie, &c, BPF_ANY))
		return; /* not observed, getpeername shows the peer; the connection itself
			 * is unaffected */
	st = bpf_map_lookup_elem(&sy_side_stats, &idx);
	if (st)
		st->sockets++;
}

SEC("cgroup/connect4")
int sy_connect4(struct bpf_sock_addr *ctx)
{
	struct sy_endpoint dialled;
	struct sy_migration *m;
	__u32 mig = 0, ip4;
	__u8 side = SY_SIDE_LEGACY;
	int t;

	sy_ep_from_v4(&dialled, ctx->user_ip4, (__u16)ctx->user_port);
	t = decide(ctx, &dialled, &mig, &side, 1);
	if (!mig)
		return 1;
	if (t < 0 || t >= SY_MAX_ENDPOINTS) {
		mark(ctx, &dialled, &dialled, mig, side, 0);
		return 1;
	}
	m = bpf_map_lookup_elem(&sy_migrations, &mig);
	if (!m)
		return 1;
	__builtin_memcpy(&ip4, &m->targets[t].addr[12], 4);
	ctx->user_ip4 = ip4;
	ctx->user_port = m->targets[t].port;
	mark(ctx, &dialled, &m->targets[t], mig, SY_SIDE_TARGET, 1);
	return 1;
}

SEC("cgroup/connect6")
int sy_connect6(struct bpf_sock_addr *ctx)
{
	struct sy_endpoint dialled;
	struct sy_migration *m;
	__u32 ip6[4], mig = 0;
	__u8 side = SY_SIDE_LEGACY;
	int t;

	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	sy_ep_from_v6(&dialled, ip6, (__u16)ctx->user_port);
	t = decide(ctx, &dialled, &mig, &side, 0);
	if (!mig)
		return 1;
	if (t < 0 || t >= SY_MAX_ENDPOINTS) {
		mark(ctx, &dialled, &dialled, mig, side, 0);
		return 1;
	}
	m = bpf_map_lookup_elem(&sy_migrations, &mig);
	if (!m)
		return 1;
	/* IPv4 targets are stored mapped, which is what a dual-stack socket dials. */
	__builtin_memcpy(ip6, m->targets[t].addr, 16);
	ctx->user_ip6[0] = ip6[0];
	ctx->user_ip6[1] = ip6[1];
	ctx->user_ip6[2] = ip6[2];
	ctx->user_ip6[3] = ip6[3];
	ctx->user_port = m->targets[t].port;
	mark(ctx, &dialled, &m->targets[t], mig, SY_SIDE_TARGET, 1);
	return 1;
}

/* The address a rewritten socket dialled: from its storage once it has sent data,
 * from its sy_conns entry before. NULL when it was not rewritten. */
static __always_inline const struct sy_endpoint *dialled_of(struct bpf_sock_addr *ctx)
{
	const struct sy_conn *c;

	if (!ctx->sk)
		return NULL;
	c = sy_conn_of(ctx->sk, ctx);
	return c && c->rewritten ? &c->dialled : NULL;
}

SEC("cgroup/getpeername4")
int sy_getpeername4(struct bpf_sock_addr *ctx)
{
	const struct sy_endpoint *d = dialled_of(ctx);
	__u32 ip4;

	if (!d)
		return 1;
	__builtin_memcpy(&ip4, &d->addr[12], 4);
	ctx->user_ip4 = ip4;
	ctx->user_port = d->port;
	return 1;
}

SEC("cgroup/getpeername6")
int sy_getpeername6(struct bpf_sock_addr *ctx)
{
	const struct sy_endpoint *d = dialled_of(ctx);
	__u32 ip6[4];

	if (!d)
		return 1;
	__builtin_memcpy(ip6, d->addr, 16);
	ctx->user_ip6[0] = ip6[0];
	ctx->user_ip6[1] = ip6[1];
	ctx->user_ip6[2] = ip6[2];
	ctx->user_ip6[3] = ip6[3];
	ctx->user_port = d->port;
	return 1;
}
