// SPDX-License-Identifier: Apache-2.0
/* fuzz_http_req.c — the HTTP door's JSON request parser (api/http_req.c, json-c) on any
 * bytes: no crash, no leak; what it accepts is one of the contract's shapes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sy_http_cutover co;
	char err[256];

	if (sy_http_cutover_parse((const char *)data, size, &co, err, sizeof(err)) == 0) {
		if (co.has_action ? (co.action < 0 || co.action > 5)
				  : (co.ratio_bp > 10000 || co.drain || co.reason[0]))
			abort();
		if (strlen(co.reason) >= sizeof(co.reason))
			abort();
	}
	return 0;
}
