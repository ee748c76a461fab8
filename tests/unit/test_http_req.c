// SPDX-License-Identifier: Apache-2.0
/* test_http_req.c — the HTTP door's pure parts: the cutover body parser (json-c) and
 * the gRPC status → HTTP status mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_req.h"
#include "switchyard/v1/cutover.pb-c.h"

static int parse(const char *s, struct sy_http_cutover *co, char *err)
{
	return sy_http_cutover_parse(s, strlen(s), co, err, 256);
}

static void actions_and_ratios(void **state)
{
	struct sy_http_cutover co;
	char err[256];

	(void)state;
	assert_int_equal(
		parse("{\"action\": \"rollback\", \"drain\": true, \"reason\": \"p99\"}\n", &co, err), 0);
	assert_true(co.has_action);
	assert_int_equal(co.action, SWITCHYARD__V1__CUTOVER_ACTION__ACTION_ROLLBACK);
	assert_true(co.drain);
	assert_string_equal(co.reason, "p99");
	assert_int_equal(parse("{\"action\":\"promote\"}", &co, err), 0);
	assert_int_equal(co.action, SWITCHYARD__V1__CUTOVER_ACTION__ACTION_PROMOTE);
	assert_false(co.drain);
	assert_string_equal(sy_http_action_name(co.action), "promote");
	assert_int_equal(parse("{\"ratio\": \"12.5%\"}", &co, err), 0);
	assert_false(co.has_action);
	assert_int_equal(co.ratio_bp, 1250);
	assert_string_equal(sy_http_action_name(-1), "ratio");
}

static void refusals_name_the_field(void **state)
{
	static const struct {
		const char *body, *msg;
	} bad[] = {
		{"", "not valid JSON"},
		{"{", "not valid JSON"},
		{"{\"action\":\"start\"} {}", "not valid JSON"},
		{"[]", "JSON object"},
		{"null", "not valid JSON"},
		{"\"start\"", "JSON object"},
		{"{}", "exactly one"},
		{"{\"action\":\"start\",\"ratio\":\"5%\"}", "exactly one"},
		{"{\"action\":\"jump\"}", "\"jump\" is not one of"},
		{"{\"action\":3}", "action: a string"},
		{"{\"action\":\"start\",\"drain\":\"yes\"}", "drain: true or false"},
		{"{\"action\":\"start\",\"reason\":7}", "reason"},
		{"{\"action\":\"st\\u0000art\"}", "action: a string"},
		{"{\"action\":\"start\",\"force\":true}", "force: unknown field"},
		{"{\"ratio\":\"101%\"}", "ratio: \"101%\" is not a ratio"},
		{"{\"ratio\":25}", "ratio: a string"},
		{"{\"ratio\":\"5%\",\"drain\":true}", "only with an action"},
		{"{'action':'start'}", "not valid JSON"},
	};
	struct sy_http_cutover co;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i].body, &co, err) != -EINVAL || !strstr(err, bad[i].msg))
			fail_msg("%s: \"%s\", want \"%s\"", bad[i].body, err, bad[i].msg);
	}
}

static void long_reasons_and_large_bodies(void **state)
{
	struct sy_http_cutover co;
	char err[256], *big = malloc(SY_HTTP_MAX_BODY + 2);
	char body[600];

	(void)state;
	memset(body, 0, sizeof(body));
	snprintf(body, sizeof(body), "{\"action\":\"pause\",\"reason\":\"%0300d\"}", 0);
	assert_int_equal(parse(body, &co, err), -EINVAL);
	assert_non_null(strstr(err, "reason: longer than"));
	assert_non_null(big);
	memset(big, ' ', SY_HTTP_MAX_BODY + 1);
	big[SY_HTTP_MAX_BODY + 1] = '\0';
	assert_int_equal(sy_http_cutover_parse(big, SY_HTTP_MAX_BODY + 1, &co, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too large"));
	free(big);
}

static void grpc_codes_as_http(void **state)
{
	(void)state;
	assert_int_equal(sy_http_status_of(SY_GRPC_OK), 200);
	assert_int_equal(sy_http_status_of(SY_GRPC_INVALID_ARGUMENT), 400);
	assert_int_equal(sy_http_status_of(SY_GRPC_UNAUTHENTICATED), 401);
	assert_int_equal(sy_http_status_of(SY_GRPC_PERMISSION_DENIED), 403);
	assert_int_equal(sy_http_status_of(SY_GRPC_NOT_FOUND), 404);
	assert_int_equal(sy_http_status_of(SY_GRPC_FAILED_PRECONDITION), 409);
	assert_int_equal(sy_http_status_of(SY_GRPC_RESOURCE_EXHAUSTED), 429);
	assert_int_equal(sy_http_status_of(SY_GRPC_UNAVAILABLE), 503);
	assert_int_equal(sy_http_status_of(SY_GRPC_DEADLINE_EXCEEDED), 504);
	assert_int_equal(sy_http_status_of(SY_GRPC_INTERNAL), 500);
	assert_string_equal(sy_grpc_code_name(SY_GRPC_UNAVAILABLE), "UNAVAILABLE");
	assert_string_equal(sy_grpc_code_name(SY_GRPC_FAILED_PRECONDITION), "FAILED_PRECONDITION");
	assert_string_equal(sy_grpc_code_name((enum sy_grpc_code)99), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(actions_and_ratios),
		cmocka_unit_test(refusals_name_the_field),
		cmocka_unit_test(long_reasons_and_large_bodies),
		cmocka_unit_test(grpc_codes_as_http),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
