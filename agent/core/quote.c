// SPDX-License-Identifier: Apache-2.0
/* quote.c — see quote.h. */
#include "core/quote.h"

#include <stdio.h>
#include <string.h>

const char *sy_quote_n(char buf[SY_QUOTE_BUF], const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < SY_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		/* a NUL inside a value (which a C string cannot hold) shows as \0 */
		char l = c ? sy_escape_letter(c) : '0';

		if (l) {
			buf[o++] = '\\';
			buf[o++] = l;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(buf + o, 5, "\\x%02x", c);
			o += 4;
		} else {
			buf[o++] = (char)c;
		}
	}
	if (len > SY_QUOTE_MAX) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

const char *sy_quote(char buf[SY_QUOTE_BUF], const char *s)
{
	if (!s)
		return strcpy(buf, "(null)");
	return sy_quote_n(buf, s, strlen(s));
}
