// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* socks.h — sy_socks, the storage of every migration client socket (struct sy_sock),
 * and sy_conns, what connect() decided for the sockets that have sent nothing yet
 * (struct sy_conn); on their own so that an object needing only these maps
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

#endif
