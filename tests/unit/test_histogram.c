// SPDX-License-Identifier: Apache-2.0
/* test_histogram.c — percentiles of log2 histograms (histogram.c): the bucket bound
 * used for display, the interpolated value the cutover gates compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "core/histogram.h"
#include "switchyard/index.h"

static void bound_is_the_upper_edge_of_the_bucket(void **state)
{
	uint64_t h[8] = {0};

	(void)state;
	assert_int_equal(sy_log2_quantile(h, 8, 0.99), 0);
	h[3] = 100; /* [8, 16) */
	assert_int_equal(sy_log2_quantile(h, 8, 0.5), 16);
	h[5] = 1; /* [32, 64): the 101st sample */
	assert_int_equal(sy_log2_quantile(h, 8, 0.99), 16);
	assert_int_equal(sy_log2_quantile(h, 8, 1.0), 64);
}

static void interpolated_lies_inside_the_bucket(void **state)
{
	uint64_t h[8] = {0};

	(void)state;
	assert_true(sy_log2_quantile_interp(h, 8, 0.99) == 0);
	h[3] = 100; /* [8, 16): the 99th of 100 is 99 % of the way through */
	assert_true(fabs(sy_log2_quantile_interp(h, 8, 0.99) - 15.92) < 1e-9);
	assert_true(fabs(sy_log2_quantile_interp(h, 8, 0.5) - 12.0) < 1e-9);
	h[0] = 100; /* bucket 0 spans [0, 2) */
	assert_true(fabs(sy_log2_quantile_interp(h, 8, 0.25) - 1.0) < 1e-9);
	/* never above the bucket bound */
	for (double q = 0.05; q <= 1.0; q += 0.05)
		assert_true(sy_log2_quantile_interp(h, 8, q) <= (double)sy_log2_quantile(h, 8, q));
}

/* The one bucket function the kernel's latency and the agent's mirror lag share. */
static void bucket_of_a_duration_is_its_floor_log2(void **state)
{
	(void)state;
	assert_int_equal(sy_log2_bucket(0), 0);
	assert_int_equal(sy_log2_bucket(1), 0);
	assert_int_equal(sy_log2_bucket(2), 1);
	assert_int_equal(sy_log2_bucket(3), 1);
	assert_int_equal(sy_log2_bucket(1023), 9);
	assert_int_equal(sy_log2_bucket(1024), 10);
	for (unsigned b = 1; b < SY_LAT_BUCKETS; b++) {
		assert_int_equal(sy_log2_bucket(1ull << b), b);
		assert_int_equal(sy_log2_bucket((1ull << b) - 1), b - 1);
	}
	assert_int_equal(sy_log2_bucket(UINT64_MAX), SY_LAT_BUCKETS - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bound_is_the_upper_edge_of_the_bucket),
		cmocka_unit_test(interpolated_lies_inside_the_bucket),
		cmocka_unit_test(bucket_of_a_duration_is_its_floor_log2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
