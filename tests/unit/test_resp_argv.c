// SPDX-License-Identifier: Apache-2.0
/* test_resp_argv.c — splitting a captured command into argv (redis/resp_argv.c): RESP
 * and inline bodies, arguments pointing into the body, many arguments, truncated and
 * malformed bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/resp_argv.h"

#define BODY(s) (const uint8_t *)(s), sizeof(s) - 1

static void arg_is(const struct sy_argv *a, int i, const char *want)
{
	assert_true(i < a->argc);
	assert_int_equal(a->lens[i], strlen(want));
	assert_memory_equal(a->argv[i], want, strlen(want));
}

static void resp_body(void **state)
{
	static const char body[] = "$3\r\nkey\r\n$5\r\nva\r\nl\r\n";
	struct sy_argv a;

	(void)state;
	assert_int_equal(sy_argv_parse(&a, "SET", 3, BODY(body), 3, false), 0);
	assert_int_equal(a.argc, 3);
	arg_is(&a, 0, "SET");
	arg_is(&a, 1, "key");
	arg_is(&a, 2, "va\r\nl");	       /* binary-safe */
	assert_ptr_equal(a.argv[1], body + 4); /* in place, no copy */
	sy_argv_free(&a);
}

static void inline_body(void **state)
{
	struct sy_argv a;

	(void)state;
	assert_int_equal(sy_argv_parse(&a, "SET", 3, BODY("  k \t v\r\nSET x y\r\n"), 0, true), 0);
	assert_int_equal(a.argc, 3);
	arg_is(&a, 1, "k");
	arg_is(&a, 2, "v");
	sy_argv_free(&a);
}

static void many_arguments_grow(void **state)
{
	size_t n = 1000, off = 0;
	char *body = malloc(n * 8);
	struct sy_argv a;

	(void)state;
	for (size_t i = 1; i < n; i++)
		off += (size_t)sprintf(body + off, "$1\r\n%c\r\n", (int)('a' + i % 26));
	assert_int_equal(sy_argv_parse(&a, "DEL", 3, (const uint8_t *)body, off, (uint32_t)n, false), 0);
	assert_int_equal(a.argc, (int)n);
	arg_is(&a, 999, "l"); /* 999 % 26 = 11 */
	sy_argv_free(&a);
	assert_null(a.argv);
	free(body);
}

static void truncated_and_malformed(void **state)
{
	struct sy_argv a;

	(void)state;
	/* the second argument runs past the end */
	assert_int_equal(sy_argv_parse(&a, "SET", 3, BODY("$3\r\nkey\r\n$10\r\nabc"), 3, false), -EINVAL);
	assert_int_equal(a.argc, 2);
	sy_argv_free(&a);
	assert_int_equal(sy_argv_parse_prefix(&a, "SET", 3, BODY("$3\r\nkey\r\n$10\r\nabc"), 3, false), 0);
	assert_int_equal(a.argc, 2);
	arg_is(&a, 1, "key");
	sy_argv_free(&a);
	/* not even the first argument: nothing to go on */
	assert_int_equal(sy_argv_parse_prefix(&a, "SET", 3, BODY("$3\r\nke"), 3, false), -EINVAL);
	assert_int_equal(a.argc, 0);
	/* no '$', no digits, nothing after the data */
	assert_int_equal(sy_argv_parse(&a, "SET", 3, BODY("3\r\nkey\r\n"), 2, false), -EINVAL);
	sy_argv_free(&a);
	assert_int_equal(sy_argv_parse(&a, "SET", 3, BODY("$\r\nkey\r\n"), 2, false), -EINVAL);
	sy_argv_free(&a);
	/* the data must be followed by two bytes (their being CRLF is the kernel's
	 * parser's business: it framed the command) */
	assert_int_equal(sy_argv_parse(&a, "SET", 3, BODY("$3\r\nkey\r"), 2, false), -EINVAL);
	sy_argv_free(&a);
	assert_int_equal(sy_argv_parse(&a, "SET", 3, BODY(""), SY_ARGV_MAX + 1, false), -EINVAL);
	sy_argv_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(resp_body),
		cmocka_unit_test(inline_body),
		cmocka_unit_test(many_arguments_grow),
		cmocka_unit_test(truncated_and_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
