// SPDX-License-Identifier: Apache-2.0
/* test_transform_examples.c — the shipped transforms (packaging/examples/transforms/)
 * compile in the sandbox and do what their comments say, both ways. Run from the
 * repository's root (make unit). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "transform/transform.h"

#define DIR "packaging/examples/transforms/"

static struct sy_transform *load(const char *file)
{
	struct sy_transform *t = NULL;
	char err[SY_TRANSFORM_ERR_MAX];
	int rc = sy_transform_load(file, "example", NULL, &t, err, sizeof(err));

	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	return t;
}

/* The value of field f in a hash key, or NULL. */
static const char *field(const struct sy_tkey *k, const char *f)
{
	for (size_t i = 0; i + 1 < k->n; i += 2)
		if (strcmp(k->items[i].p, f) == 0)
			return k->items[i + 1].p;
	return NULL;
}

static void users_json_to_hash_and_back(void **state)
{
	struct sy_transform *t = load(DIR "users_json_to_hash.lua");
	const char *doc = "{\"name\":\"ann\",\"age\":31,\"tags\":[\"a\"],\"gone\":null}";
	struct sy_tval v = {doc, strlen(doc)};
	struct sy_tkey in = {
		.key = "user:1", .klen = 6, .type = SY_KT_STRING, .ttl_ms = 4000, .items = &v, .n = 1};
	struct sy_tkeys out, back;
	struct sy_targvs w;
	char err[SY_TRANSFORM_ERR_MAX];
	const char *set[] = {"SET", "user:2", "{\"name\":\"bo\"}"},
		   *setex[] = {"SETEX", "user:2", "10", "{}"};
	size_t setl[] = {3, 6, 13}, setexl[] = {5, 6, 2, 2};

	(void)state;
	assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.v[0].type, SY_KT_HASH);
	assert_int_equal(out.v[0].ttl_ms, 4000);
	assert_string_equal(field(&out.v[0], "_v"), "2");
	assert_string_equal(field(&out.v[0], "age"), "31");
	assert_string_equal(field(&out.v[0], "tags"), "[\"a\"]");
	assert_null(field(&out.v[0], "gone"));
	assert_int_equal(sy_transform_key(t, true, &out.v[0], &back, err, sizeof(err)), 0);
	assert_string_equal(back.v[0].items[0].p, "{\"age\":31,\"name\":\"ann\",\"tags\":\"[\\\"a\\\"]\"}");
	assert_int_equal(back.v[0].ttl_ms, 4000);
	sy_tkeys_free(&back);
	sy_tkeys_free(&out);
	assert_int_equal(sy_transform_write(t, false, 3, set, setl, &w, err, sizeof(err)), 0);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.v[0].argv[0], "DEL");
	assert_string_equal(w.v[1].argv[0], "HSET");
	assert_int_equal(w.v[1].argc, 6);
	sy_targvs_free(&w);
	assert_int_equal(sy_transform_write(t, false, 4, setex, setexl, &w, err, sizeof(err)), 1);
	sy_transform_free(t);
}

static void hash_field_rename_both_ways(void **state)
{
	struct sy_transform *t = load(DIR "hash_field_rename.lua");
	struct sy_tval h[] = {{"mail", 4}, {"a@b", 3}, {"n", 1}, {"x", 1}};
	struct sy_tkey in = {.key = "u", .klen = 1, .type = SY_KT_HASH, .ttl_ms = -1, .items = h, .n = 4};
	struct sy_tkeys out, back;
	struct sy_targvs w;
	char err[SY_TRANSFORM_ERR_MAX];
	const char *hset[] = {"HSET", "u", "email", "c@d"};
	size_t hl[] = {4, 1, 5, 3};

	(void)state;
	assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), 0);
	assert_string_equal(field(&out.v[0], "email"), "a@b");
	assert_null(field(&out.v[0], "mail"));
	assert_int_equal(sy_transform_key(t, true, &out.v[0], &back, err, sizeof(err)), 0);
	assert_string_equal(field(&back.v[0], "mail"), "a@b");
	sy_tkeys_free(&back);
	sy_tkeys_free(&out);
	assert_int_equal(sy_transform_write(t, true, 4, hset, hl, &w, err, sizeof(err)), 0);
	assert_string_equal(w.v[0].argv[2], "mail");
	sy_targvs_free(&w);
	sy_transform_free(t);
}

static void split_key_in_two(void **state)
{
	struct sy_transform *t = load(DIR "split_key.lua");
	struct sy_tval h[] = {{"name", 4}, {"ann", 3}, {"theme", 5}, {"dark", 4}};
	struct sy_tkey in = {
		.key = "user:1", .klen = 6, .type = SY_KT_HASH, .ttl_ms = -1, .items = h, .n = 4};
	struct sy_tkeys out;
	struct sy_targvs w;
	char err[SY_TRANSFORM_ERR_MAX];
	const char *hset[] = {"HSET", "user:1:prefs", "lang", "fr"};
	size_t hl[] = {4, 12, 4, 2};

	(void)state;
	assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 2);
	assert_string_equal(out.v[1].key, "user:1:prefs");
	assert_string_equal(field(&out.v[0], "name"), "ann");
	assert_string_equal(field(&out.v[1], "theme"), "dark");
	/* one part alone cannot rebuild legacy's key: refused, not half copied */
	assert_int_equal(sy_transform_key(t, true, &out.v[1], &(struct sy_tkeys){0}, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "cannot rebuild user:1"));
	sy_tkeys_free(&out);
	assert_int_equal(sy_transform_write(t, true, 4, hset, hl, &w, err, sizeof(err)), 0);
	assert_string_equal(w.v[0].argv[1], "user:1");
	sy_targvs_free(&w);
	sy_transform_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(users_json_to_hash_and_back),
		cmocka_unit_test(hash_field_rename_both_ways),
		cmocka_unit_test(split_key_in_two),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
