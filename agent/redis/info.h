// SPDX-License-Identifier: Apache-2.0
/* info.h — reads one field of an INFO reply's text ("# Section" headers and
 * "field:value" lines ended by CRLF or LF). Used by the health check to learn a
 * server's run_id, which changes whenever the server process restarts.
 *
 * Contract: only complete lines count (the text may be the first part of a reply still
 * arriving); no allocation; never reads past len. */
#ifndef SY_INFO_H
#define SY_INFO_H

#include <stddef.h>

/* Copies field's value into out (NUL-terminated) and returns its length; -ENOENT when
 * no complete line names the field, -ENOSPC when the value does not fit in cap. */
int sy_info_field(const char *text, size_t len, const char *field, char *out, size_t cap);

#endif
