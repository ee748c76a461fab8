// SPDX-License-Identifier: Apache-2.0
/* duration.c — see duration.h. */
#include "core/duration.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sy_duration_ms(const char *s, uint64_t *ms)
{
	char *end;
	double v, mul;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL; /* no sign, no blank, no "inf" */
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s)
		return -EINVAL;
	if (*end == '\0') {
		if (v != 0)
			return -EDOM;
		mul = 1;
	} else if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else
		return -EINVAL;
	if (v * mul > 7 * 86400000.0)
		return -ERANGE;
	*ms = (uint64_t)(v * mul + 0.5);
	return 0;
}

const char *sy_duration_strerror(int e)
{
	switch (e) {
	case -EDOM:
		return "needs a unit: ms, s, m or h";
	case -ERANGE:
		return "is over a week";
	default:
		return "is not a duration";
	}
}
