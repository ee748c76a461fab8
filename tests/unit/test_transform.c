// SPDX-License-Identifier: Apache-2.0
/* test_transform.c — the Lua transform engine (agent/transform/): load errors as
 * FILE:LINE, the sandbox, typed keys both ways, switchyard.json, writes, and the
 * limits (instruction budget, memory cap, errors) leaving the state usable. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "transform/transform.h"

static struct sy_transform *load(const char *src, int want, char *err)
{
	struct sy_transform *t = NULL;
	static char e[SY_TRANSFORM_ERR_MAX];
	int rc = sy_transform_load_buf("/etc/t.lua", "test", src, strlen(src), NULL, &t, err ? err : e,
				       SY_TRANSFORM_ERR_MAX);

	assert_int_equal(rc, want);
	return t;
}

static void syntax_error_names_file_and_line(void **state)
{
	char err[SY_TRANSFORM_ERR_MAX];

	(void)state;
	load("function forward_key(k)\n  return {k}\nend\nlocal x = = 1\n", -EINVAL, err);
	assert_non_null(strstr(err, "/etc/t.lua:4:"));
	load("x = 1\n", -EINVAL, err);
	assert_non_null(strstr(err, "no forward_key"));
	load("forward_key = 3\n", -EINVAL, err);
	assert_non_null(strstr(err, "not a function"));
	/* bytecode is refused: the loader takes text only */
	load("\x1bLua\x54\x00", -EINVAL, err);
	assert_non_null(strstr(err, "binary"));
}

static void sandbox_has_no_io_os_require_load(void **state)
{
	static const char *const bad[] = {
		"io.write('x')",	 "os.exit(1)",	       "require('x')",	   "load('return 1')",
		"dofile('/etc/passwd')", "string.dump(print)", "debug.getinfo(1)", "collectgarbage('stop')"};
	char err[SY_TRANSFORM_ERR_MAX], src[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(src, sizeof(src), "function forward_key(k) return {} end\n%s\n", bad[i]);
		load(src, -EINVAL, err);
		assert_non_null(strstr(err, "/etc/t.lua:2:"));
	}
}

static void json_string_to_hash_and_back(void **state)
{
	const char *src = "local json = switchyard.json\n"
			  "function forward_key(k)\n"
			  "  if k.type == 'none' then return {{key=k.key, type='none'}} end\n"
			  "  local d = json.decode(k.value)\n"
			  "  local h = {_v='2'}\n"
			  "  for f, v in pairs(d) do h[f] = tostring(v) end\n"
			  "  return {{key=k.key, type='hash', value=h, ttl_ms=k.ttl_ms}}\n"
			  "end\n"
			  "function reverse_key(k)\n"
			  "  local d = {}\n"
			  "  for f, v in pairs(k.value) do if f ~= '_v' then d[f] = v end end\n"
			  "  return {{key=k.key, value=json.encode(d), ttl_ms=k.ttl_ms}}\n"
			  "end\n";
	struct sy_transform *t = load(src, 0, NULL);
	struct sy_tval v = {"{\"name\":\"ann\",\"age\":31}", 23};
	struct sy_tkey in = {
		.key = "user:1", .klen = 6, .type = SY_KT_STRING, .ttl_ms = 5000, .items = &v, .n = 1};
	struct sy_tkeys out;
	char err[SY_TRANSFORM_ERR_MAX], ver[16];
	int fields = 0;

	(void)state;
	assert_true(sy_transform_has(t, SY_TF_REVERSE_KEY));
	assert_false(sy_transform_has(t, SY_TF_FORWARD_WRITE));
	assert_int_equal(sy_transform_line(t, SY_TF_REVERSE_KEY), 9);
	assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.v[0].type, SY_KT_HASH);
	assert_int_equal(out.v[0].ttl_ms, 5000);
	assert_int_equal(out.v[0].n, 6);
	for (size_t i = 0; i < out.v[0].n; i += 2) {
		if (strcmp(out.v[0].items[i].p, "age") == 0 && strcmp(out.v[0].items[i + 1].p, "31") == 0)
			fields++;
		if (strcmp(out.v[0].items[i].p, "_v") == 0 && strcmp(out.v[0].items[i + 1].p, "2") == 0)
			fields++;
	}
	assert_int_equal(fields, 2);
	assert_true(sy_tkey_version(&out.v[0], "_v", ver, sizeof(ver)));
	assert_string_equal(ver, "2");
	{
		struct sy_tkeys back;

		assert_int_equal(sy_transform_key(t, true, &out.v[0], &back, err, sizeof(err)), 0);
		assert_int_equal(back.n, 1);
		assert_int_equal(back.v[0].type, SY_KT_STRING);
		/* encode sorts keys: the same document is always the same bytes */
		assert_string_equal(back.v[0].items[0].p, "{\"age\":\"31\",\"name\":\"ann\"}");
		sy_tkeys_free(&back);
	}
	sy_tkeys_free(&out);
	in.type = SY_KT_NONE;
	in.n = 0;
	assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.v[0].type, SY_KT_NONE);
	sy_tkeys_free(&out);
	sy_transform_free(t);
}

static void json_edges(void **state)
{
	const char *src = "local json = switchyard.json\n"
			  "function forward_key(k)\n"
			  "  local d = json.decode(k.value)\n"
			  "  return {{key=k.key, value=json.encode(d)}}\n"
			  "end\n";
	struct sy_transform *t = load(src, 0, NULL);
	static const char *const ok[][2] = {
		{"[1,2.5,\"x\",true,null]", "[1,2.5,\"x\",true,null]"},
		{"{\"b\":{\"z\":1,\"a\":[]},\"a\":null}", "{\"a\":null,\"b\":{\"a\":{},\"z\":1}}"},
		{"null", "null"},
		{" 7 ", "7"},
		/* escapes, a surrogate pair, a lone half (U+FFFD), whitespace everywhere */
		{"\"a\\u00e9\\ud83d\\ude00\\ud800x\\n\\/\"",
		 "\"a\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx\\n/\""},
		{" { \"k\" : [ -0 , 1e3 , -2.5E-1 ] } ", "{\"k\":[0,1000.0,-0.25]}"},
		{"[9223372036854775807,-9223372036854775808]", "[9223372036854775807,-9223372036854775808]"},
		{"{\"a\":1,\"a\":2}", "{\"a\":2}"},
	};
	static const char *const bad[] = {
		"{",	 "[1,]",	  "{\"a\":1} x", "",	"01",	   "-",	     "1.",
		"[1 2]", "{\"a\" 1}",	  "{a:1}",	 "\"x", "\"\\q\"", "\"\t\"", "tru",
		"nul",	 "[\"\\u12g4\"]", "{,}",	 "'x'", "NaN"};
	char err[SY_TRANSFORM_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct sy_tval v = {ok[i][0], strlen(ok[i][0])};
		struct sy_tkey in = {
			.key = "k", .klen = 1, .type = SY_KT_STRING, .ttl_ms = -1, .items = &v, .n = 1};
		struct sy_tkeys out;

		assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), 0);
		assert_string_equal(out.v[0].items[0].p, ok[i][1]);
		assert_int_equal(out.v[0].ttl_ms, -1);
		sy_tkeys_free(&out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sy_tval v = {bad[i], strlen(bad[i])};
		struct sy_tkey in = {
			.key = "k", .klen = 1, .type = SY_KT_STRING, .ttl_ms = -1, .items = &v, .n = 1};
		struct sy_tkeys out;

		assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "json.decode"));
	}
	sy_transform_free(t);
}

static void typed_values_round_trip(void **state)
{
	const char *src = "function forward_key(k) return {k} end\n";
	struct sy_transform *t = load(src, 0, NULL);
	struct sy_tval items[] = {{"a", 1}, {"1.5", 3}, {"b", 1}, {"-inf", 4}};
	struct sy_tkey in = {.key = "z", .klen = 1, .type = SY_KT_ZSET, .ttl_ms = 10, .items = items, .n = 4};
	struct sy_tkeys out;
	char err[SY_TRANSFORM_ERR_MAX];

	(void)state;
	assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), 0);
	assert_int_equal(out.v[0].type, SY_KT_ZSET);
	assert_int_equal(out.v[0].n, 4);
	sy_tkeys_free(&out);
	in.type = SY_KT_LIST;
	assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), 0);
	assert_int_equal(out.v[0].n, 4);
	assert_string_equal(out.v[0].items[3].p, "-inf");
	sy_tkeys_free(&out);
	sy_transform_free(t);
}

static void malformed_results_are_errors(void **state)
{
	static const char *const bad[][2] = {
		{"return 3", "list of keys"},
		{"return {{type='string', value='x'}}", "key:"},
		{"return {{key='a', type='hash', value='x'}}", "must be a table"},
		{"return {{key='a', type='stream', value={}}}", "type must be"},
		{"return {{key='a', type='zset', value={m='x'}}}", "score"},
		{"return {{key='a', value={}}}", "type is needed"},
		{"error('no way')", "/etc/t.lua:1: no way"},
	};
	char src[256], err[SY_TRANSFORM_ERR_MAX];
	struct sy_tval v = {"x", 1};
	struct sy_tkey in = {.key = "k", .klen = 1, .type = SY_KT_STRING, .ttl_ms = -1, .items = &v, .n = 1};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sy_tkeys out;
		struct sy_transform *t;

		snprintf(src, sizeof(src), "function forward_key(k) %s end\n", bad[i][0]);
		t = load(src, 0, NULL);
		assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, bad[i][1]));
		assert_null(out.v);
		sy_transform_free(t);
	}
}

static void limits_stop_a_call_and_the_state_lives_on(void **state)
{
	const char *src = "function forward_key(k)\n"
			  "  if k.key == 'loop' then while true do end end\n"
			  "  if k.key == 'big' then local s = string.rep('x', 1 << 30) return {{key=s}} end\n"
			  "  if k.key == 'grow' then local t = {} for i = 1, 1e9 do t[i] = i end end\n"
			  "  return {{key=k.key, value='ok'}}\n"
			  "end\n";
	struct sy_transform_limits lim = {.mem_bytes = 8u << 20, .insns = 1000000};
	struct sy_transform *t = NULL;
	char err[SY_TRANSFORM_ERR_MAX];
	static const struct {
		const char *key;
		int rc;
		const char *msg;
	} cases[] = {
		{"loop", -ETIME, "instruction budget"},
		{"big", -ENOMEM, "memory"},
		{"grow", -ENOMEM, "memory"},
		{"fine", 0, NULL},
	};

	(void)state;
	assert_int_equal(sy_transform_load_buf("/t.lua", "t", src, strlen(src), &lim, &t, err, sizeof(err)),
			 0);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct sy_tval v = {"x", 1};
			struct sy_tkey in = {.key = cases[i].key,
					     .klen = strlen(cases[i].key),
					     .type = SY_KT_STRING,
					     .ttl_ms = -1,
					     .items = &v,
					     .n = 1};
			struct sy_tkeys out;

			assert_int_equal(sy_transform_key(t, false, &in, &out, err, sizeof(err)),
					 cases[i].rc);
			if (cases[i].msg)
				assert_non_null(strstr(err, cases[i].msg));
			else
				sy_tkeys_free(&out);
			assert_true(sy_transform_mem(t) <= lim.mem_bytes);
		}
	sy_transform_free(t);
}

static void writes_map_argv_or_fall_back(void **state)
{
	const char *src = "function forward_key(k) return {k} end\n"
			  "function forward_write(a)\n"
			  "  if a[1]:upper() == 'SET' then return {{'HSET', a[2], 'v', a[3]}, {'PEXPIRE', "
			  "a[2], 10}} end\n"
			  "  if a[1]:upper() == 'DEL' then return {} end\n"
			  "  return nil\n"
			  "end\n";
	struct sy_transform *t = load(src, 0, NULL);
	const char *set[] = {"set", "k", "val"}, *incr[] = {"INCR", "n"}, *del[] = {"DEL", "k"};
	size_t setl[] = {3, 1, 3}, incrl[] = {4, 1}, dell[] = {3, 1};
	struct sy_targvs out;
	char err[SY_TRANSFORM_ERR_MAX];

	(void)state;
	assert_int_equal(sy_transform_write(t, false, 3, set, setl, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 2);
	assert_int_equal(out.v[0].argc, 4);
	assert_string_equal(out.v[0].argv[0], "HSET");
	assert_string_equal(out.v[0].argv[3], "val");
	assert_string_equal(out.v[1].argv[2], "10");
	sy_targvs_free(&out);
	assert_int_equal(sy_transform_write(t, false, 2, incr, incrl, &out, err, sizeof(err)), 1);
	assert_int_equal(sy_transform_write(t, false, 2, del, dell, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 0);
	sy_targvs_free(&out);
	assert_int_equal(sy_transform_write(t, true, 2, del, dell, &out, err, sizeof(err)), -ENOSYS);
	sy_transform_free(t);
}

static void version_of_documents(void **state)
{
	struct sy_tval h[] = {{"name", 4}, {"x", 1}, {"_v", 2}, {"3", 1}};
	struct sy_tval js = {"{\"_v\":2,\"n\":1}", 14}, nov = {"{\"n\":1}", 7}, notjs = {"plain", 5};
	struct sy_tkey k = {.key = "k", .klen = 1, .type = SY_KT_HASH, .items = h, .n = 4};
	char b[16];

	(void)state;
	assert_true(sy_tkey_version(&k, "_v", b, sizeof(b)));
	assert_string_equal(b, "3");
	assert_false(sy_tkey_version(&k, "v", b, sizeof(b)));
	k.type = SY_KT_STRING;
	k.n = 1;
	k.items = &js;
	assert_true(sy_tkey_version(&k, "_v", b, sizeof(b)));
	assert_string_equal(b, "2");
	k.items = &nov;
	assert_false(sy_tkey_version(&k, "_v", b, sizeof(b)));
	k.items = &notjs;
	assert_false(sy_tkey_version(&k, "_v", b, sizeof(b)));
}

/* A copy's TTL is the one left when it is written; run out, the key is gone. */
static void ttl_aged_to_the_write(void **state)
{
	struct sy_tval v = {"x", 1};
	struct sy_tkey k = {.key = "k", .klen = 1, .type = SY_KT_STRING, .ttl_ms = 5000, .items = &v, .n = 1};

	(void)state;
	sy_tkey_age(&k, 1200);
	assert_int_equal(k.ttl_ms, 3800);
	assert_int_equal(k.type, SY_KT_STRING);
	assert_int_equal(k.n, 1);
	sy_tkey_age(&k, 3799);
	assert_int_equal(k.ttl_ms, 1);
	sy_tkey_age(&k, 1);
	assert_int_equal(k.type, SY_KT_NONE);
	assert_int_equal(k.n, 0);
	assert_true(k.ttl_ms < 0);
	k = (struct sy_tkey){.key = "k", .klen = 1, .type = SY_KT_HASH, .ttl_ms = 10, .items = &v, .n = 1};
	sy_tkey_age(&k, 60000);
	assert_int_equal(k.type, SY_KT_NONE);
	k = (struct sy_tkey){.key = "k", .klen = 1, .type = SY_KT_STRING, .ttl_ms = 0, .items = &v, .n = 1};
	sy_tkey_age(&k, 0); /* PTTL 0: expiring now, never copied without expiry */
	assert_int_equal(k.type, SY_KT_NONE);
	k = (struct sy_tkey){.key = "k", .klen = 1, .type = SY_KT_STRING, .ttl_ms = -1, .items = &v, .n = 1};
	sy_tkey_age(&k, 60000);
	assert_int_equal(k.type, SY_KT_STRING);
	assert_true(k.ttl_ms < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(syntax_error_names_file_and_line),
		cmocka_unit_test(sandbox_has_no_io_os_require_load),
		cmocka_unit_test(json_string_to_hash_and_back),
		cmocka_unit_test(json_edges),
		cmocka_unit_test(typed_values_round_trip),
		cmocka_unit_test(malformed_results_are_errors),
		cmocka_unit_test(limits_stop_a_call_and_the_state_lives_on),
		cmocka_unit_test(writes_map_argv_or_fall_back),
		cmocka_unit_test(version_of_documents),
		cmocka_unit_test(ttl_aged_to_the_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
