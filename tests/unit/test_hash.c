// SPDX-License-Identifier: Apache-2.0
/* test_hash.c — the client → bucket function shared with the kernel (hash.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "switchyard/hash.h"

static void bucket_in_range_and_stable(void **state)
{
	(void)state;
	for (uint64_t id = 0; id < 100000; id++) {
		uint32_t b = sy_bucket(id, 0x1234);

		assert_true(b < 10000);
		assert_int_equal(b, sy_bucket(id, 0x1234));
	}
}

/* Sequential ids (cgroup inode numbers, socket cookies) must spread evenly: the share
 * of clients under a ratio is the ratio. Chi-square over 100 buckets of 1 %. */
static void sequential_ids_spread_evenly(void **state)
{
	enum { N = 200000, K = 100 };
	static uint32_t hist[K];
	double chi = 0, expect = (double)N / K;

	(void)state;
	for (uint64_t id = 4000; id < 4000 + N; id++)
		hist[sy_bucket(id, 0xcbf29ce484222325ULL) / 100]++;
	for (int i = 0; i < K; i++)
		chi += (hist[i] - expect) * (hist[i] - expect) / expect;
	/* 99.9th percentile of chi-square with 99 degrees of freedom is about 148. */
	assert_true(chi < 148.0);
}

/* Raising the ratio only admits clients: whoever is on target at r stays at r' > r. */
static void raising_ratio_never_moves_back(void **state)
{
	(void)state;
	for (uint64_t id = 0; id < 20000; id++) {
		uint32_t b = sy_bucket(id, 42);

		for (uint32_t r = 0; r <= 10000; r += 500)
			if (b < r)
				assert_true(b < r + 500);
	}
}

static void different_salts_split_differently(void **state)
{
	int same = 0;

	(void)state;
	for (uint64_t id = 0; id < 10000; id++)
		same += (sy_bucket(id, 1) < 5000) == (sy_bucket(id, 2) < 5000);
	/* Independent splits agree about half the time. */
	assert_in_range(same, 4700, 5300);
}

static void target_pick_covers_all_targets(void **state)
{
	uint32_t seen[8] = {0};

	(void)state;
	assert_int_equal(sy_target_pick(5, 5, 0), 0);
	for (uint64_t id = 0; id < 8000; id++) {
		uint32_t t = sy_target_pick(id, 7, 8);

		assert_true(t < 8);
		assert_int_equal(t, sy_target_pick(id, 7, 8));
		seen[t]++;
	}
	for (int i = 0; i < 8; i++)
		assert_in_range(seen[i], 800, 1200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bucket_in_range_and_stable),
		cmocka_unit_test(sequential_ids_spread_evenly),
		cmocka_unit_test(raising_ratio_never_moves_back),
		cmocka_unit_test(different_salts_split_differently),
		cmocka_unit_test(target_pick_covers_all_targets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
