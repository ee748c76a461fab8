// SPDX-License-Identifier: Apache-2.0
/* histogram.c — see histogram.h. */
#include "core/histogram.h"

#include <math.h>

uint64_t sy_log2_quantile(const uint64_t *buckets, size_t n, double q)
{
	uint64_t total = 0, seen = 0, rank;

	for (size_t i = 0; i < n; i++)
		total += buckets[i];
	if (!total)
		return 0;
	rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank < 1)
		rank = 1;
	for (size_t i = 0; i < n; i++) {
		seen += buckets[i];
		if (seen >= rank)
			return i >= 63 ? UINT64_MAX : (uint64_t)1 << (i + 1);
	}
	return (uint64_t)1 << n;
}

double sy_log2_quantile_interp(const uint64_t *buckets, size_t n, double q)
{
	double total = 0, want, acc = 0;

	for (size_t i = 0; i < n; i++)
		total += (double)buckets[i];
	if (!total)
		return 0;
	want = q * total;
	for (size_t i = 0; i < n; i++) {
		double lo = i ? ldexp(1, (int)i) : 0, hi = ldexp(1, (int)i + 1);

		if (buckets[i] && acc + (double)buckets[i] >= want)
			return lo + (hi - lo) * (want - acc) / (double)buckets[i];
		acc += (double)buckets[i];
	}
	return ldexp(1, (int)n);
}
