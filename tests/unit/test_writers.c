// SPDX-License-Identifier: Apache-2.0
/* test_writers.c — the mirror's table of recent writers (shadow/writers.h): what is a
 * conflict and for how long, eviction of a set's oldest entry, times across the wrap
 * of the entries' 32-bit ms. Times are passed in (the _at calls), so the windows are
 * checked to the millisecond. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/fnv.h"
#include "model/spec.h"
#include "shadow/writers.h"

#define A 1001 /* two client connections' cookies */
#define B 1002
#define L SY_SIDE_LEGACY
#define T SY_SIDE_TARGET

static struct sy_migration_spec spec;

static bool write_at(struct sy_writers *w, int side, uint64_t cookie, const char *k, uint64_t now)
{
	return sy_writers_conflict_at(w, &spec, side, cookie, 0, k, strlen(k), now);
}

static uint64_t last(struct sy_writers *w, const char *k)
{
	return sy_writers_last_ms(w, 0, k, strlen(k));
}

static void conflict_within_the_window_only(void **state)
{
	struct sy_writers w = {0};
	uint64_t t = 50000;

	(void)state;
	assert_false(write_at(&w, L, A, "k1", t));
	assert_true(write_at(&w, L, B, "k1", t + SY_CONFLICT_MS)); /* the window's last ms */
	assert_false(write_at(&w, L, A, "k2", t));
	assert_false(write_at(&w, L, B, "k2", t + SY_CONFLICT_MS + 1)); /* just past it */
	/* the other side is another writer, even on one connection */
	assert_false(write_at(&w, L, A, "k3", t));
	assert_true(write_at(&w, T, A, "k3", t + 10));
	assert_int_equal(last(&w, "k1"), t + SY_CONFLICT_MS);
	assert_int_equal(last(&w, "nothing"), 0);
	sy_writers_free(&w);
}

static void one_connection_is_no_conflict(void **state)
{
	struct sy_writers w = {0};

	(void)state;
	for (uint64_t t = 1000; t < 1100; t++)
		assert_false(write_at(&w, L, A, "k", t));
	for (uint64_t t = 1100; t < 1200; t++)
		assert_false(write_at(&w, T, B, "k", t + 5000));
	sy_writers_free(&w);
}

/* The target side names keys through the rewrite rules: one key, two names. */
static void target_names_are_mapped(void **state)
{
	struct sy_writers w = {0};

	(void)state;
	snprintf(spec.rewrite[0].from, sizeof(spec.rewrite[0].from), "user:");
	snprintf(spec.rewrite[0].to, sizeof(spec.rewrite[0].to), "u2:");
	spec.n_rewrite = 1;
	assert_false(write_at(&w, L, A, "user:7", 7000));
	assert_true(write_at(&w, T, B, "u2:7", 7001));
	assert_int_equal(last(&w, "user:7"), 7001);
	memset(&spec, 0, sizeof(spec));
	sy_writers_free(&w);
}

static void hot_keys_conflict_until_they_cool(void **state)
{
	struct sy_writers w = {0};
	uint64_t t = 90000;

	(void)state;
	assert_false(write_at(&w, L, A, "k", t));
	assert_true(write_at(&w, L, B, "k", t + 100)); /* hot until t + 100 + 2 s */
	/* every write meanwhile is a conflict, one connection's too, and re-arms it */
	assert_true(write_at(&w, L, B, "k", t + 100 + 2 * SY_CONFLICT_MS - 1));
	assert_false(write_at(&w, L, B, "k", t + 100 + 4 * SY_CONFLICT_MS - 1));

	/* a copy under way: hot for 2 s, and told whether a write came just before */
	assert_int_equal(sy_writers_mark_hot_at(&w, &spec, L, 0, "c", 1, t), 0);
	assert_true(write_at(&w, L, A, "c", t + 2 * SY_CONFLICT_MS - 1));
	assert_int_equal(sy_writers_mark_hot_at(&w, &spec, L, 0, "c", 1, t + 4 * SY_CONFLICT_MS - 1), 1);
	assert_int_equal(sy_writers_mark_hot_at(&w, &spec, L, 0, "c", 1, t + 6 * SY_CONFLICT_MS), 0);
	assert_false(write_at(&w, L, A, "c", t + 8 * SY_CONFLICT_MS));
	sy_writers_free(&w);
}

/* Keys whose fingerprints pick one 4-way set (writers.c: the mixed fingerprint's bits
 * 50-63). */
static int same_set(char keys[][16], int n)
{
	static uint16_t count[16384];
	static uint32_t first[16384][5];

	memset(count, 0, sizeof(count));
	for (uint32_t i = 0; i < 1000000; i++) {
		char k[16];
		int len = snprintf(k, sizeof(k), "s%u", i);
		uint64_t fp = sy_fnv1a(k, (size_t)len, SY_FNV_OFFSET) | 1;
		uint32_t set = (uint32_t)((fp * 0x9e3779b97f4a7c15ull) >> 50) & 16383;

		if (count[set] < 5)
			first[set][count[set]] = i;
		if (++count[set] == n) {
			for (int j = 0; j < n; j++)
				snprintf(keys[j], 16, "s%u", first[set][j]);
			return 0;
		}
	}
	return -1;
}

static void a_full_set_gives_up_its_oldest(void **state)
{
	struct sy_writers w = {0};
	char k[5][16];
	uint64_t t = 30000;

	(void)state;
	assert_int_equal(same_set(k, 5), 0);
	for (int i = 0; i < 4; i++)
		assert_false(write_at(&w, L, A, k[i], t + (uint64_t)i));
	/* k0 is oldest by its write, but hot until t + 10 + 2 s: k1 goes instead */
	assert_int_equal(sy_writers_mark_hot_at(&w, &spec, L, 0, k[0], strlen(k[0]), t + 10), 1);
	assert_false(write_at(&w, L, A, k[4], t + 20));
	assert_int_equal(last(&w, k[1]), 0);
	assert_int_equal(last(&w, k[0]), t);
	assert_int_equal(last(&w, k[2]), t + 2);
	assert_int_equal(last(&w, k[4]), t + 20);
	/* k1's history is gone: another writer now is no conflict; k2's is kept */
	assert_false(write_at(&w, L, B, k[1], t + 30));
	assert_int_equal(last(&w, k[2]), 0); /* k1 took the oldest left: k2 */
	assert_true(write_at(&w, L, B, k[3], t + 40));
	sy_writers_free(&w);
}

/* Entries keep 32-bit ms after a base: windows hold across the base's moves and
 * across a rest longer than 2^32 ms. */
static void times_survive_the_wrap(void **state)
{
	struct sy_writers w = {0};
	uint64_t t0 = 0, t;

	(void)state;
	assert_false(write_at(&w, L, A, "old", t0)); /* the base is now - 1: wraps below 0 */
	for (t = 0xeffffc00ull; t < 0x1f0000800ull; t += 0x0fffff00ull) {
		assert_false(write_at(&w, L, A, "k", t));
		assert_true(write_at(&w, L, B, "k", t + SY_CONFLICT_MS));
		assert_int_equal(last(&w, "k"), t + SY_CONFLICT_MS);
		assert_false(write_at(&w, L, A, "j", t));
		assert_false(write_at(&w, L, B, "j", t + 2 * SY_CONFLICT_MS + 1));
	}
	/* long ago stays long ago, never "just now" */
	assert_true(last(&w, "old") < t - 0x7fffffffull);
	assert_false(write_at(&w, L, B, "old", t));
	/* 2^40 ms of rest */
	t += 1ull << 40;
	assert_false(write_at(&w, L, A, "k", t));
	assert_true(write_at(&w, L, B, "k", t + 1));
	sy_writers_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(conflict_within_the_window_only),
		cmocka_unit_test(one_connection_is_no_conflict),
		cmocka_unit_test(target_names_are_mapped),
		cmocka_unit_test(hot_keys_conflict_until_they_cool),
		cmocka_unit_test(a_full_set_gives_up_its_oldest),
		cmocka_unit_test(times_survive_the_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
