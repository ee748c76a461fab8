// SPDX-License-Identifier: Apache-2.0
/* fuzz_spec.c — arbitrary bytes as a spec file: libyaml, our tree walk and the
 * validator must answer with an error line or a spec, never crash or leak. The error
 * is one line whatever the file holds (values are escaped: core/quote.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sy_spec s;
	struct sy_spec_err err;

	if (sy_spec_load_buf("fuzz.yaml", (const char *)data, size, &s, &err) == 0)
		sy_spec_free(&s);
	else if (strchr(err.msg, '\n') || strncmp(err.msg, "fuzz.yaml", 9) != 0)
		abort();
	return 0;
}
