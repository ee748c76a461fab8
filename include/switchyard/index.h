// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* index.h — where a migration's entries sit in the per-CPU statistics arrays, one
 * definition for the kernel programs and the agent (they must agree, or the agent
 * reads and zeroes another migration's counters).
 *
 * sy_side_stats: one entry per migration and side; sy_rule_stats: one per migration,
 * rule (0 = whole endpoint or keyless, i = prefixes[i - 1]) and side. Side and rule
 * are masked so the verifier sees the index bounded whatever the caller held.
 */
#ifndef SWITCHYARD_INDEX_H
#define SWITCHYARD_INDEX_H

#ifndef __BPF__
#include <linux/types.h>
#endif

#include "switchyard/abi.h"

#define SY_SIDE_STATS_ENTRIES (SY_MAX_MIGRATIONS * 2)
#define SY_RULE_STATS_ENTRIES (SY_MAX_MIGRATIONS * SY_MAX_RULES * 2)

_Static_assert((SY_MAX_RULES & (SY_MAX_RULES - 1)) == 0, "SY_MAX_RULES is a mask bound");

static inline __u32 sy_side_index(__u32 mig_id, __u32 side)
{
	return mig_id * 2 + (side & 1);
}

static inline __u32 sy_rule_index(__u32 mig_id, __u32 rule, __u32 side)
{
	return (mig_id * SY_MAX_RULES + (rule & (SY_MAX_RULES - 1))) * 2 + (side & 1);
}

/* The latency bucket of a duration in microseconds: floor(log2(us)), 0 for 0 and 1,
 * capped at the last bucket (abi.h: SY_LAT_BUCKETS). Branch-free steps, so the kernel
 * programs can call it in a loop the verifier accepts; the agent's mirror-lag histogram
 * uses the same buckets, so both read alike. */
static inline __u32 sy_log2_bucket(__u64 us)
{
	__u32 r = 0;

	if (us >> 32) {
		us >>= 32;
		r += 32;
	}
	if (us >> 16) {
		us >>= 16;
		r += 16;
	}
	if (us >> 8) {
		us >>= 8;
		r += 8;
	}
	if (us >> 4) {
		us >>= 4;
		r += 4;
	}
	if (us >> 2) {
		us >>= 2;
		r += 2;
	}
	if (us >> 1)
		r += 1;
	return r < SY_LAT_BUCKETS ? r : SY_LAT_BUCKETS - 1;
}

#endif
