// SPDX-License-Identifier: Apache-2.0
/* test_pbjson.c — the proto3 JSON emitter on what only it prints: bytes as base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/pbjson.h"
#include "opentelemetry/proto/common/v1/common.pb-c.h"

static void bytes_are_base64(void **state)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe"};
	static const char *const want[] = {"",	       "Zg==",	   "Zm8=",     "Zm9v",
					   "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "//4="};

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		Opentelemetry__Proto__Common__V1__AnyValue v =
			OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
		char *out = NULL, expect[64];
		size_t n = 0;
		FILE *f = open_memstream(&out, &n);

		assert_non_null(f);
		v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
		v.bytes_value.data = (uint8_t *)in[i];
		v.bytes_value.len = strlen(in[i]);
		sy_pbjson_print(f, &v.base);
		fclose(f);
		snprintf(expect, sizeof(expect), "\"bytesValue\":\"%s\"}", want[i]);
		if (!strstr(out, expect))
			fail_msg("%s: no %s", out, expect);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bytes_are_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
