// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* hash.h — the client → bucket function, one definition for the kernel and the agent.
 *
 * bucket = mix(client_id ^ salt) mod 10000. A client's bucket never changes for a
 * given salt, so it keeps its side while the ratio holds, and "bucket < ratio" only
 * admits more clients as the ratio rises: a raise never moves anyone back to legacy.
 * The mixer is splitmix64's finaliser: cheap (no loop, no table) and well spread
 * for sequential ids such as cgroup inode numbers and socket cookies.
 */
#ifndef SWITCHYARD_HASH_H
#define SWITCHYARD_HASH_H

#ifndef __BPF__
#include <linux/types.h>
#endif

#define SY_TARGET_PICK_SALT 0x9e3779b97f4a7c15ULL

static inline __u64 sy_mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* 0..9999 */
static inline __u32 sy_bucket(__u64 client_id, __u64 salt)
{
	return (__u32)(sy_mix64(client_id ^ salt) % 10000);
}

/* Which target of n a client uses: independent of its bucket, stable for the client. */
static inline __u32 sy_target_pick(__u64 client_id, __u64 salt, __u32 n)
{
	if (n == 0)
		return 0;
	return (__u32)(sy_mix64(client_id ^ salt ^ SY_TARGET_PICK_SALT) % n);
}

#endif
