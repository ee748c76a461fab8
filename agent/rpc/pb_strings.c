// SPDX-License-Identifier: Apache-2.0
/* pb_strings.c — see pb_strings.h. A walk of the wire format driven by the message's
 * descriptor: length-delimited fields are either strings (looked into), messages
 * (walked, map entries included), or bytes / packed scalars (skipped). */
#include "rpc/pb_strings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 64 /* deeper than any of our messages: the unpack will judge */

static int varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *i < len; shift += 7) {
		uint8_t b = p[(*i)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, char *where, size_t n,
		int depth)
{
	size_t i = 0;

	while (i < len) {
		uint64_t key, l;
		const ProtobufCFieldDescriptor *f;
		char sub[256];

		if (varint(p, len, &i, &key))
			return 0;
		switch (key & 7) {
		case 0:
			if (varint(p, len, &i, &l))
				return 0;
			continue;
		case 1:
			i += 8;
			continue;
		case 5:
			i += 4;
			continue;
		case 2:
			break;
		default:
			return 0; /* groups or garbage: for the unpack to refuse */
		}
		if (varint(p, len, &i, &l) || l > len - i)
			return 0;
		f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
		if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p + i, 0, l)) {
			snprintf(where, n, "%s", f->name);
			return -EINVAL;
		}
		if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < MAX_DEPTH &&
		    walk(f->descriptor, p + i, l, sub, sizeof(sub), depth + 1)) {
			snprintf(where, n, "%s.%s", f->name, sub);
			return -EINVAL;
		}
		i += l;
	}
	return 0;
}

int sy_pb_strings_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, char *where,
			size_t n)
{
	return walk(d, buf, len, where, n, 0);
}
