// SPDX-License-Identifier: Apache-2.0
/* fuzz_json_decode.c — switchyard.json.decode (transform/transform_json.c), the parser a
 * transform runs on legacy's values, on any bytes: no crash, no leak, the state usable
 * after an error; what it accepts, encode writes back as JSON that json-c reads. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transform/transform.h"

static const char SRC[] = "local json = switchyard.json\n"
			  "function forward_key(k)\n"
			  "  return {{key = k.key, value = json.encode(json.decode(k.value))}}\n"
			  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sy_transform *t;
	struct sy_tval v = {(const char *)data, size};
	struct sy_tkey in = {.key = "k", .klen = 1, .type = SY_KT_STRING, .ttl_ms = -1, .items = &v, .n = 1};
	struct sy_tkeys out;
	char err[SY_TRANSFORM_ERR_MAX];

	if (!t && sy_transform_load_buf("fuzz.lua", "fuzz", SRC, sizeof(SRC) - 1, NULL, &t, err, sizeof(err)))
		abort();
	if (sy_transform_key(t, false, &in, &out, err, sizeof(err)) == 0) {
		const char *s = out.v[0].items[0].p;
		/* json-c's reader with a depth above decode's (64): its default of 32 refused
		 * documents decode rightly takes (found by this harness, the oracle's limit) */
		struct json_tokener *tok = json_tokener_new_ex(128);
		struct json_object *o = tok ? json_tokener_parse_ex(tok, s, (int)strlen(s) + 1) : NULL;

		json_tokener_free(tok);

		if (!o && strcmp(s, "null") != 0)
			abort();
		json_object_put(o);
		sy_tkeys_free(&out);
	}
	return 0;
}
