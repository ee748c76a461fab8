// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* socks.h — sy_socks, the storage of every migration client socket (struct sy_sock),
 * and sy_conns, what connect() decided for the sockets that have sent nothing yet
 * (struct sy_conn, also the head of struct sy_sock), and the one reader of either;
 * on their own so that an object needing only these maps
 * (drain.bpf.c) does not create the others' maps just to load. */
#ifndef SY_BPF_SOCKS_H
#define SY_BPF_SOCKS_H

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sy_sock);
} sy_socks SEC(".maps");

/* LRU: an entry is deleted when its socket's first data packet leaves; a socket closed
 * before that leaves its entry to age out (cookies are never reused). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SY_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct sy_conn);
} sy_conns SEC(".maps");

/* What connect() decided for a socket, wherever it is kept: the head of its storage
 * once it has sent data, its sy_conns entry before. NULL: not a migration socket.
 * `sk` is what the caller's program type hands bpf_sk_storage_get, `cookie_of` what it
 * hands bpf_get_socket_cookie; the cookie is only taken when there is no storage. */
static __always_inline const struct sy_conn *sy_conn_of(void *sk, void *cookie_of)
{
	const struct sy_sock *o = bpf_sk_storage_get(&sy_socks, sk, 0, 0);
	__u64 cookie;

	if (o)
		return &o->c;
	cookie = bpf_get_socket_cookie(cookie_of);
	return bpf_map_lookup_elem(&sy_conns, &cookie);
}

#endif
