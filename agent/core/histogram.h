// SPDX-License-Identifier: Apache-2.0
/* histogram.h — percentiles of the kernel's log2 latency histograms. */
#ifndef SY_HISTOGRAM_H
#define SY_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

/* The q-quantile (0 < q <= 1) of a log2 histogram whose bucket i counts values in
 * [2^i, 2^(i+1)): the upper bound of the bucket holding it (an over-estimate by at
 * most 2x, never an under-estimate). 0 when the histogram is empty. */
uint64_t sy_log2_quantile(const uint64_t *buckets, size_t n, double q);

/* The same, interpolated linearly inside the bucket holding it (bucket 0 spans [0, 2)):
 * smoother than the bucket bound, for ratios of two histograms. 0 when empty. */
double sy_log2_quantile_interp(const uint64_t *buckets, size_t n, double q);

#endif
