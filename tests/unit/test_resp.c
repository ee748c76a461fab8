/* test_resp.c — the RESP request machine (resp.h) driven on the host as the kernel
 * drives it (resp_scan.c), and the command table (commands.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "commands.h"
#include "resp_scan.h"
#include "switchyard/resp.h"

struct got {
	int n;
	char line[256][200]; /* "NAME class key(len)[T] bytes" */
	uint64_t bytes[256];
};

static void record(const struct sy_resp_cmd *c, void *arg)
{
	struct got *g = arg;

	if (g->n >= 256)
		return;
	snprintf(g->line[g->n], sizeof(g->line[0]), "%.*s %d %s%.*s%s%s", (int)c->name_len, c->name, c->class,
		 c->has_key ? "key=" : "", c->has_key ? (int)(c->key_len > 40 ? 40 : c->key_len) : 0,
		 c->has_key ? (const char *)c->key : "", c->key_truncated ? "[T]" : "",
		 c->is_inline ? " inline" : "");
	g->bytes[g->n] = c->bytes;
	g->n++;
}

/* Feeds `in` in chunks of `chunk` bytes (0 = whole), fast paths on or off. */
static struct sy_resp_scan scan(const char *in, size_t len, size_t chunk, bool fast, struct got *g)
{
	struct sy_resp_scan s;

	memset(g, 0, sizeof(*g));
	sy_resp_scan_init(&s, fast, record, g);
	if (!chunk)
		chunk = len ? len : 1;
	for (size_t i = 0; i < len; i += chunk)
		sy_resp_scan_feed(&s, (const uint8_t *)in + i, len - i < chunk ? len - i : chunk);
	return s;
}

static void same_results(const char *in, size_t len, const struct got *want)
{
	struct got g;

	for (size_t chunk = 1; chunk <= len; chunk = chunk < 16 ? chunk + 1 : chunk * 2) {
		for (int fast = 0; fast < 2; fast++) {
			scan(in, len, chunk, fast, &g);
			assert_int_equal(g.n, want->n);
			for (int i = 0; i < g.n; i++) {
				assert_string_equal(g.line[i], want->line[i]);
				assert_int_equal(g.bytes[i], want->bytes[i]);
			}
		}
	}
}

#define S(x) x, sizeof(x) - 1

static void arrays_pipelines_and_every_split(void **state)
{
	static const char in[] = "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$5\r\nhello\r\n"
				 "*2\r\n$3\r\nget\r\n$2\r\nk1\r\n"
				 "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n"
				 "*1\r\n$4\r\nPING\r\n"
				 "*2\r\n$6\r\nNOSUCH\r\n$1\r\nx\r\n";
	struct got g;
	struct sy_resp_scan s;

	(void)state;
	s = scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 5);
	assert_string_equal(g.line[0], "SET 1 key=k1");
	assert_string_equal(g.line[1], "GET 0 key=k1");
	assert_string_equal(g.line[2], "DEL 1 key=a");
	assert_string_equal(g.line[3], "PING 2 ");
	assert_string_equal(g.line[4], "NOSUCH 2 ");
	assert_int_equal(g.bytes[0], 32);
	assert_int_equal(s.unparsed, 0);
	same_results(S(in), &g);
}

static void fifty_pipelined(void **state)
{
	char in[4096];
	size_t len = 0;
	struct got g;

	(void)state;
	for (int i = 0; i < 50; i++)
		len += (size_t)snprintf(in + len, sizeof(in) - len, "*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$1\r\nv\r\n",
					i < 10 ? 5 : 6, i);
	scan(in, len, 0, true, &g);
	assert_int_equal(g.n, 50);
	assert_string_equal(g.line[49], "SET 1 key=key:49");
	same_results(in, len, &g);
}

static void inline_commands(void **state)
{
	static const char in[] = "\r\nSET a b\r\nget a\n\n  PING\r\nDEL x y\r\n";
	struct got g;

	(void)state;
	scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.line[0], "SET 1 key=a inline");
	assert_string_equal(g.line[1], "GET 0 key=a inline");
	assert_string_equal(g.line[2], "PING 2  inline");
	assert_string_equal(g.line[3], "DEL 1 key=x inline");
	same_results(S(in), &g);
}

static void multi_exec(void **state)
{
	static const char in[] = "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nEXEC\r\n";
	struct got g;

	(void)state;
	scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.line[0], "MULTI 2 ");
	assert_string_equal(g.line[1], "SET 1 key=k");
	assert_string_equal(g.line[2], "EXEC 2 ");
}

static void one_mib_value_is_skipped(void **state)
{
	size_t v = 1 << 20, len;
	char *in = malloc(v + 64);
	struct got g;
	struct sy_resp_scan s;

	(void)state;
	len = (size_t)sprintf(in, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", v);
	memset(in + len, 'x', v);
	len += v;
	memcpy(in + len, "\r\n*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 24);
	len += 24;
	for (size_t chunk = 1000; chunk <= len; chunk *= 7) {
		s = scan(in, len, chunk, true, &g);
		assert_int_equal(g.n, 2);
		assert_string_equal(g.line[0], "SET 1 key=big");
		assert_int_equal(g.bytes[0], len - 22); /* its "\r\n" belongs to the SET */
		assert_true(s.byte_steps < 100); /* the value was never looked at byte by byte */
	}
	free(in);
}

static void long_names_and_keys(void **state)
{
	char in[1024], key[300];
	size_t len;
	struct got g;

	(void)state;
	memset(key, 'k', 200);
	key[200] = 0;
	len = (size_t)sprintf(in, "*2\r\n$3\r\nGET\r\n$200\r\n%s\r\n*1\r\n$30\r\nABCDEFGHIJABCDEFGHIJABCDEFGHIJ\r\n", key);
	scan(in, len, 0, true, &g);
	assert_int_equal(g.n, 2);
	assert_non_null(strstr(g.line[0], "[T]"));
	assert_string_equal(g.line[1], "ABCDEFGHIJABCDEFGHIJABCD 2 "); /* 24 bytes kept, unknown */
	same_results(in, len, &g);
}

static void empty_and_null_arrays_are_nothing(void **state)
{
	static const char in[] = "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n";
	struct got g;
	struct sy_resp_scan s;

	(void)state;
	s = scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(s.unparsed, 0);
}

static void errors_resynchronise(void **state)
{
	static const char *bad[] = {
		"*2\r\n$3\r\nGET\r\nX\r\n",	       /* '$' expected */
		"*x\r\n",			       /* count */
		"*1\r\n$536870913\r\n",	       /* bulk over 512 MiB */
		"*1073741825\r\n",		       /* argc over 2^30 */
		"*2\r\n$3\r\nGET\r\n$-1\r\n",	       /* negative bulk */
		"*1\r\n$3X\r\n",		       /* junk in a length */
	};
	const char *good = "*2\r\n$3\r\nGET\r\n$4\r\nnext\r\n";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char in[256];
		size_t len = (size_t)snprintf(in, sizeof(in), "%s%s", bad[i], good);
		struct got g;
		struct sy_resp_scan s;

		for (int fast = 0; fast < 2; fast++) {
			s = scan(in, len, 0, fast, &g);
			assert_int_equal(s.unparsed, 1);
			assert_int_equal(g.n, 1);
			assert_string_equal(g.line[0], "GET 0 key=next");
		}
	}
}

static void table_lookup_and_key_positions(void **state)
{
	const struct sy_command *c;
	int idx[16];
	const char *eval[] = {"EVAL", "return 1", "2", "a", "b", "arg"};
	size_t evall[] = {4, 8, 1, 1, 1, 3};
	const char *zu[] = {"ZUNIONSTORE", "dst", "2", "s1", "s2", "WEIGHTS", "1", "2"};
	size_t zul[] = {11, 3, 1, 2, 2, 7, 1, 1};
	const char *ms[] = {"MSET", "a", "1", "b", "2"};
	size_t msl[] = {4, 1, 1, 1, 1};
	const char *xr[] = {"XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"};
	size_t xrl[] = {5, 5, 1, 7, 2, 2, 1, 1};
	const char *bad[] = {"EVAL", "x", "5", "a"};
	size_t badl[] = {4, 1, 1, 1};
	struct sy_cmd_info ki;

	(void)state;
	assert_non_null(c = sy_command_find("get", 3));
	assert_int_equal(c->class, SY_CLASS_READ);
	assert_null(sy_command_find("GETX", 4));
	assert_null(sy_command_find("", 0));
	assert_non_null(c = sy_command_find("EVAL", 4));
	assert_int_equal(sy_command_keys(c, 6, eval, evall, idx, 16), 2);
	assert_int_equal(idx[0], 3);
	assert_int_equal(idx[1], 4);
	assert_int_equal(sy_command_keys(c, 4, bad, badl, idx, 16), -EINVAL);
	sy_command_kernel_info(c, &ki);
	assert_int_equal(ki.first_key, 3);
	assert_non_null(c = sy_command_find("zunionstore", 11));
	assert_int_equal(sy_command_keys(c, 8, zu, zul, idx, 16), 3);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[2], 4);
	sy_command_kernel_info(c, &ki);
	assert_int_equal(ki.first_key, 1);
	assert_non_null(c = sy_command_find("MSET", 4));
	assert_int_equal(sy_command_keys(c, 5, ms, msl, idx, 16), 2);
	assert_int_equal(idx[1], 3);
	assert_non_null(c = sy_command_find("XREAD", 5));
	assert_int_equal(sy_command_keys(c, 8, xr, xrl, idx, 16), 2);
	assert_int_equal(idx[0], 4);
	assert_int_equal(idx[1], 5);
}

static void table_has_unique_names_that_fit(void **state)
{
	(void)state;
	assert_true(sy_command_count() > 150);
	for (size_t i = 0; i < sy_command_count(); i++) {
		const struct sy_command *c = sy_command_at(i);

		assert_true(strlen(c->name) <= SY_CMD_NAME_MAX);
		assert_true(c->class == SY_CLASS_READ || c->class == SY_CLASS_WRITE || c->class == SY_CLASS_OTHER);
		if (i)
			assert_true(strcmp(sy_command_at(i - 1)->name, c->name) < 0);
		assert_ptr_equal(sy_command_find(c->name, strlen(c->name)), c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arrays_pipelines_and_every_split),
		cmocka_unit_test(fifty_pipelined),
		cmocka_unit_test(inline_commands),
		cmocka_unit_test(multi_exec),
		cmocka_unit_test(one_mib_value_is_skipped),
		cmocka_unit_test(long_names_and_keys),
		cmocka_unit_test(empty_and_null_arrays_are_nothing),
		cmocka_unit_test(errors_resynchronise),
		cmocka_unit_test(table_lookup_and_key_positions),
		cmocka_unit_test(table_has_unique_names_that_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
