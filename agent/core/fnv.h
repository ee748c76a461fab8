// SPDX-License-Identifier: Apache-2.0
/* fnv.h — FNV-1a over bytes, for the agent's hash tables, fingerprints and digests
 * (not for anything an adversary chooses to collide on purpose). */
#ifndef SY_FNV_H
#define SY_FNV_H

#include <stddef.h>
#include <stdint.h>

#define SY_FNV_OFFSET 0xcbf29ce484222325ull

static inline uint64_t sy_fnv1a(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* splitmix64's finalizer: every output bit depends on every input bit (a bijection).
 * FNV-1a's middle and upper bits hardly depend on a key's last bytes, so a table
 * indexed by them crowds key:1, key:2… together: mix first. */
static inline uint64_t sy_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#endif
