// SPDX-License-Identifier: Apache-2.0
/* info.c — see info.h. */
#include "redis/info.h"

#include <errno.h>
#include <string.h>

int sy_info_field(const char *text, size_t len, const char *field, char *out, size_t cap)
{
	size_t fl = strlen(field), pos = 0;

	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll;

		if (!nl)
			return -ENOENT; /* an incomplete last line: its value may be cut */
		ll = (size_t)(nl - line);
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll > fl && line[fl] == ':' && memcmp(line, field, fl) == 0) {
			size_t vl = ll - fl - 1;

			if (vl + 1 > cap)
				return -ENOSPC;
			memcpy(out, line + fl + 1, vl);
			out[vl] = '\0';
			return (int)vl;
		}
		pos += (size_t)(nl - line) + 1;
	}
	return -ENOENT;
}
