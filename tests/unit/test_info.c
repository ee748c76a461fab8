// SPDX-License-Identifier: Apache-2.0
/* test_info.c — reading a field of an INFO reply (redis/info.c): the run_id the health
 * check compares, CRLF and LF lines, a field named like the start of another, values
 * too long, and a reply cut in the middle of the line asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "redis/info.h"

static const char reply[] = "# Server\r\n"
			    "redis_version:7.2.4\r\n"
			    "run_id_extra:nope\r\n"
			    "process_id:4242\r\n"
			    "run_id:a1b2c3d4e5f60718293a4b5c6d7e8f9012345678\r\n"
			    "tcp_port:6379\r\n";

static void finds_run_id(void **state)
{
	char v[41];

	(void)state;
	assert_int_equal(sy_info_field(reply, sizeof(reply) - 1, "run_id", v, sizeof(v)), 40);
	assert_string_equal(v, "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678");
	assert_int_equal(sy_info_field(reply, sizeof(reply) - 1, "tcp_port", v, sizeof(v)), 4);
	assert_string_equal(v, "6379");
}

static void lf_lines_and_headers(void **state)
{
	static const char t[] = "# Server\nrun_id:abc\n";
	char v[8];

	(void)state;
	assert_int_equal(sy_info_field(t, sizeof(t) - 1, "run_id", v, sizeof(v)), 3);
	assert_string_equal(v, "abc");
	assert_int_equal(sy_info_field(t, sizeof(t) - 1, "# Server", v, sizeof(v)), -ENOENT);
}

static void missing_and_prefix_names(void **state)
{
	char v[41];

	(void)state;
	assert_int_equal(sy_info_field(reply, sizeof(reply) - 1, "run", v, sizeof(v)), -ENOENT);
	assert_int_equal(sy_info_field(reply, sizeof(reply) - 1, "os", v, sizeof(v)), -ENOENT);
	assert_int_equal(sy_info_field("", 0, "run_id", v, sizeof(v)), -ENOENT);
}

static void value_too_long(void **state)
{
	char v[40]; /* one short of 40 characters and the NUL */

	(void)state;
	assert_int_equal(sy_info_field(reply, sizeof(reply) - 1, "run_id", v, sizeof(v)), -ENOSPC);
}

static void cut_reply(void **state)
{
	const char *at = strstr(reply, "run_id:a1");
	size_t cut = (size_t)(at - reply) + 20; /* inside the run_id line */
	char v[41];

	(void)state;
	assert_int_equal(sy_info_field(reply, cut, "run_id", v, sizeof(v)), -ENOENT);
	/* the line complete but the next one cut: found */
	cut = (size_t)(strstr(reply, "tcp_port") - reply) + 3;
	assert_int_equal(sy_info_field(reply, cut, "run_id", v, sizeof(v)), 40);
	/* a line without its LF yet, ending exactly at the CR */
	cut = (size_t)(strstr(reply, "\r\ntcp_port") - reply) + 1;
	assert_int_equal(sy_info_field(reply, cut, "run_id", v, sizeof(v)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(finds_run_id),
		cmocka_unit_test(lf_lines_and_headers),
		cmocka_unit_test(missing_and_prefix_names),
		cmocka_unit_test(value_too_long),
		cmocka_unit_test(cut_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
