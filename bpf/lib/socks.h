// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* socks.h — sy_socks, the storage of every migration client socket (struct sy_sock),
 * on its own so that an object needing only this map (drain.bpf.c) does not create
 * the others' maps just to load. */
#ifndef SY_BPF_SOCKS_H
#define SY_BPF_SOCKS_H

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sy_sock);
} sy_socks SEC(".maps");

#endif
