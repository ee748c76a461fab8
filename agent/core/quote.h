// SPDX-License-Identifier: Apache-2.0
/* quote.h — owns how a value given by a user (a file, the API, the command line) is
 * shown inside a one-line message: control bytes, quotes and backslashes escaped
 * (so a name with a newline cannot break "FILE:LINE: what" in two), long values cut.
 * Callers keep their own quotes around it ("name: \"%s\""), so a plain value reads
 * exactly as before. */
#ifndef SY_QUOTE_H
#define SY_QUOTE_H

#include <stddef.h>

/* A value longer than this many bytes is cut and ends in "...". */
#define SY_QUOTE_MAX 128
/* Room for the worst case: every byte as \xHH, plus "..." and the NUL. */
#define SY_QUOTE_BUF (SY_QUOTE_MAX * 4 + 4)

/* The letter that follows a backslash for c in both a message and a JSON string
 * (\n \r \t \" \\), or 0 when c has no one-letter escape. One table, so a log line and
 * the JSON API never disagree on how a value with a quote or a newline reads. */
static inline char sy_escape_letter(unsigned char c)
{
	return c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '"' || c == '\\' ? (char)c : 0;
}

/* The first len bytes of s (NULs included, shown as \0), escaped into buf; returns buf. */
const char *sy_quote_n(char buf[SY_QUOTE_BUF], const char *s, size_t len);
/* The same for a C string; NULL shows as "(null)". */
const char *sy_quote(char buf[SY_QUOTE_BUF], const char *s);

#endif
