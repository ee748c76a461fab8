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
	if (strcmp(end, "ms") == 0 || *end == '\0')
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
