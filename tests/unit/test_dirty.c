// SPDX-License-Identifier: Apache-2.0
/* test_dirty.c — the repair engine's dirty-key set (shadow/dirty.h): deduplication,
 * marking order, due times, the bound, keys of every length, and a long random run
 * checked against a plain list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/dirty.h"

static int add(struct sy_dirty *s, const char *k, uint64_t due)
{
	return sy_dirty_add(s, 0, k, strlen(k), due);
}

/* A set of at most max keys holding a, b, c (in that order), due at `due`. */
static struct sy_dirty *abc(size_t max, uint64_t due)
{
	static const char *const keys[] = {"a", "b", "c"};
	struct sy_dirty *s = sy_dirty_new(max);

	assert_non_null(s);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(add(s, keys[i], due), 0);
	return s;
}

static bool has(struct sy_dirty *s, const char *k)
{
	return sy_dirty_has(s, 0, k, strlen(k));
}

/* Pops the first key (due at now) and checks it is k. */
static void pop_is(struct sy_dirty *s, uint64_t now, const char *k)
{
	struct sy_dkey *e = sy_dirty_pop(s, now);

	assert_non_null(e);
	assert_int_equal(e->len, strlen(k));
	assert_memory_equal(sy_dkey_key(e), k, e->len);
	sy_dirty_put(s, e);
}

static void a_key_is_kept_once_in_first_marking_order(void **state)
{
	struct sy_dirty *s = abc(100, 10);

	(void)state;
	assert_int_equal(add(s, "a", 10), 0); /* again: no second entry, a keeps its place */
	assert_int_equal(sy_dirty_count(s), 3);
	/* one name in two databases is two keys */
	assert_int_equal(sy_dirty_add(s, 1, "a", 1, 10), 0);
	assert_int_equal(sy_dirty_count(s), 4);
	assert_true(has(s, "b"));
	assert_false(has(s, "d"));
	pop_is(s, 10, "a");
	assert_false(has(s, "a"));
	assert_true(sy_dirty_has(s, 1, "a", 1));
	pop_is(s, 10, "b");
	pop_is(s, 10, "c");
	pop_is(s, 10, "a");
	assert_null(sy_dirty_pop(s, 10));
	assert_int_equal(sy_dirty_count(s), 0);
	sy_dirty_free(s);
}

static void keys_leave_in_order_once_due(void **state)
{
	struct sy_dirty *s = sy_dirty_new(100);

	(void)state;
	assert_null(sy_dirty_peek(NULL, UINT64_MAX));
	assert_int_equal(add(s, "late", 100), 0);
	assert_int_equal(add(s, "early", 10), 0);
	/* the first key holds the others back, as marking order is kept */
	assert_null(sy_dirty_pop(s, 50));
	assert_null(sy_dirty_peek(s, 99));
	assert_int_equal(sy_dirty_peek(s, UINT64_MAX)->due_ms, 100);
	/* marking again pushes the due time later, never earlier */
	assert_int_equal(add(s, "late", 20), 0);
	assert_null(sy_dirty_pop(s, 99));
	assert_int_equal(add(s, "late", 150), 0);
	assert_null(sy_dirty_pop(s, 149));
	pop_is(s, 150, "late");
	pop_is(s, 150, "early");
	sy_dirty_free(s);
}

static void a_full_set_refuses_new_keys_only(void **state)
{
	struct sy_dirty *s = abc(3, 1);

	(void)state;
	assert_int_equal(add(s, "d", 1), -ENOSPC);
	assert_int_equal(add(s, "b", 5), 0); /* already there: its due time moves */
	assert_false(has(s, "d"));
	pop_is(s, 1, "a");
	assert_int_equal(add(s, "d", 1), 0);
	assert_int_equal(sy_dirty_count(s), 3);
	sy_dirty_free(s);
}

/* Keys inline and apart, empty, and a key taken out staying whole while many are
 * added (the index grows, nodes are made). */
static void keys_of_any_length(void **state)
{
	struct sy_dirty *s = sy_dirty_new(200000);
	char big[300];
	struct sy_dkey *held;

	(void)state;
	memset(big, 'x', sizeof(big));
	for (size_t len = 0; len <= sizeof(big); len += 1 + len / 4)
		assert_int_equal(sy_dirty_add(s, 0, big, len, len), 0);
	assert_int_equal(sy_dirty_add(s, 0, "", 0, 0), 0); /* the empty key, once */
	held = sy_dirty_pop(s, UINT64_MAX);
	assert_int_equal(held->len, 0);
	sy_dirty_put(s, held);
	held = sy_dirty_pop(s, UINT64_MAX);
	assert_int_equal(held->len, 1);
	for (int i = 0; i < 150000; i++) {
		char k[40];
		int n = snprintf(k, sizeof(k), "key:%d:with-a-longer-tail-%d", i, i % 7);

		assert_int_equal(sy_dirty_add(s, 0, k, (size_t)n, 7), 0);
	}
	assert_memory_equal(sy_dkey_key(held), "x", 1);
	sy_dirty_put(s, held);
	for (size_t len = 2; len <= sizeof(big); len += 1 + len / 4) {
		struct sy_dkey *e = sy_dirty_pop(s, UINT64_MAX);

		assert_int_equal(e->len, len);
		assert_int_equal(e->due_ms, len);
		assert_memory_equal(sy_dkey_key(e), big, len);
		sy_dirty_put(s, e);
	}
	assert_true(has(s, "key:149999:with-a-longer-tail-3")); /* 149999 % 7 */
	assert_false(has(s, "key:149999:with-a-longer-tail-6"));
	sy_dirty_free(s); /* with keys in it, some stored apart */
}

/* Adds, re-adds and pops at random, against a plain list in order. */
static void random_run_matches_a_list(void **state)
{
	enum { KEYS = 5000, OPS = 400000 };
	static int order[KEYS + 1];
	static uint64_t due[KEYS];
	static bool in[KEYS];
	int head = 0, tail = 0; /* order[head..tail) in a ring */
	struct sy_dirty *s = sy_dirty_new(KEYS);
	uint64_t now = 0;

	(void)state;
	srand(11);
	for (int op = 0; op < OPS; op++) {
		int r = rand(), k = r % KEYS;
		char key[64];
		int n = snprintf(key, sizeof(key), k % 3 ? "k%d" : "a-key-long-enough-to-be-stored-apart-%d",
				 k);

		if ((r >> 20) % 3) {
			uint64_t d = now + (uint64_t)(rand() % 50);

			assert_int_equal(sy_dirty_add(s, 0, key, (size_t)n, d), 0);
			if (!in[k]) {
				in[k] = true;
				due[k] = d;
				order[tail] = k;
				tail = (tail + 1) % (KEYS + 1);
			} else if (due[k] < d) {
				due[k] = d;
			}
		} else {
			struct sy_dkey *e = sy_dirty_pop(s, now);

			if (head == tail || due[order[head]] > now) {
				assert_null(e);
			} else {
				int f = order[head];

				head = (head + 1) % (KEYS + 1);
				assert_non_null(e);
				n = snprintf(key, sizeof(key),
					     f % 3 ? "k%d" : "a-key-long-enough-to-be-stored-apart-%d", f);
				assert_int_equal(e->len, n);
				assert_memory_equal(sy_dkey_key(e), key, (size_t)n);
				assert_int_equal(e->due_ms, due[f]);
				in[f] = false;
				sy_dirty_put(s, e);
			}
			now += (uint64_t)(rand() % 4);
		}
		if (op % 1000 == 0)
			for (int j = 0; j < KEYS; j += 97) {
				n = snprintf(key, sizeof(key),
					     j % 3 ? "k%d" : "a-key-long-enough-to-be-stored-apart-%d", j);
				assert_int_equal(sy_dirty_has(s, 0, key, (size_t)n), in[j]);
			}
		assert_int_equal(sy_dirty_count(s), (size_t)((tail - head + KEYS + 1) % (KEYS + 1)));
	}
	sy_dirty_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_key_is_kept_once_in_first_marking_order),
		cmocka_unit_test(keys_leave_in_order_once_due),
		cmocka_unit_test(a_full_set_refuses_new_keys_only),
		cmocka_unit_test(keys_of_any_length),
		cmocka_unit_test(random_run_matches_a_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
