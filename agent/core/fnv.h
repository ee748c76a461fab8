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

#endif
