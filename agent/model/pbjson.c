// SPDX-License-Identifier: Apache-2.0
/* pbjson.c — see pbjson.h. Default values are printed too (scripts should not have to
 * know proto3's "absent means zero"). */
#include "model/pbjson.h"

#include "core/quote.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

void sy_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		char l = sy_escape_letter(*p);

		if (l)
			fprintf(f, "\\%c", l);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void camel(FILE *f, const char *name)
{
	int up = 0;

	fputc('"', f);
	for (const char *p = name; *p; p++) {
		if (*p == '_') {
			up = 1;
			continue;
		}
		fputc(up ? toupper((unsigned char)*p) : *p, f);
		up = 0;
	}
	fputc('"', f);
}

void sy_pb_value_print(FILE *f, const ProtobufCFieldDescriptor *fd, const void *v, bool json)
{
	/* text: 64-bit integers unquoted, enums and strings bare */
	const char *q = json ? "\"" : "";

	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(f, "%" PRId32, *(const int32_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(f, "%" PRIu32, *(const uint32_t *)v);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(f, "%s%" PRId64 "%s", q, *(const int64_t *)v, q);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(f, "%s%" PRIu64 "%s", q, *(const uint64_t *)v, q);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		fprintf(f, "%g", (double)*(const float *)v);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		fprintf(f, "%g", *(const double *)v);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)v ? "true" : "false", f);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(fd->descriptor, *(const int *)v);

		if (ev)
			json ? sy_json_string(f, ev->name) : (void)fputs(ev->name, f);
		else
			fprintf(f, "%d", *(const int *)v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		if (json)
			sy_json_string(f, *(char *const *)v);
		else
			fputs(*(char *const *)v ? *(char *const *)v : "", f);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		/* proto3 JSON: standard base64 with padding */
		static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const ProtobufCBinaryData *b = v;

		if (!json) {
			fputs("(bytes)", f);
			break;
		}
		fputc('"', f);
		for (size_t i = 0; i < b->len; i += 3) {
			uint32_t w = (uint32_t)b->data[i] << 16;

			if (i + 1 < b->len)
				w |= (uint32_t)b->data[i + 1] << 8;
			if (i + 2 < b->len)
				w |= b->data[i + 2];
			fputc(b64[w >> 18 & 63], f);
			fputc(b64[w >> 12 & 63], f);
			fputc(i + 1 < b->len ? b64[w >> 6 & 63] : '=', f);
			fputc(i + 2 < b->len ? b64[w & 63] : '=', f);
		}
		fputc('"', f);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		if (*(ProtobufCMessage *const *)v)
			sy_pbjson_print(f, *(ProtobufCMessage *const *)v);
		else if (json)
			fputs("null", f);
		break;
	}
}

size_t sy_pb_value_size(const ProtobufCFieldDescriptor *fd)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

/* protoc-c turns map<string, V> into a repeated nested "…Entry" message of key = 1 and
 * value = 2; proto3's JSON mapping prints it as an object. */
static int is_string_map(const ProtobufCFieldDescriptor *fd)
{
	const ProtobufCMessageDescriptor *d = fd->descriptor;
	size_t len;

	if (fd->type != PROTOBUF_C_TYPE_MESSAGE || fd->label != PROTOBUF_C_LABEL_REPEATED || !d ||
	    d->n_fields != 2)
		return 0;
	len = strlen(d->name);
	return len > 5 && strcmp(d->name + len - 5, "Entry") == 0 && strcmp(d->fields[0].name, "key") == 0 &&
	       d->fields[0].id == 1 && d->fields[0].type == PROTOBUF_C_TYPE_STRING &&
	       strcmp(d->fields[1].name, "value") == 0 && d->fields[1].id == 2;
}

static void map_object(FILE *f, const ProtobufCFieldDescriptor *fd, ProtobufCMessage *const *entries,
		       size_t n)
{
	const ProtobufCMessageDescriptor *d = fd->descriptor;

	fputc('{', f);
	for (size_t j = 0; j < n; j++) {
		const char *e = (const char *)entries[j];

		if (j)
			fputc(',', f);
		sy_json_string(f, *(char *const *)(e + d->fields[0].offset));
		fputc(':', f);
		sy_pb_value_print(f, &d->fields[1], e + d->fields[1].offset, true);
	}
	fputc('}', f);
}

void sy_pbjson_print(FILE *f, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;

	fputc('{', f);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const char *base = (const char *)m;

		/* a oneof's members share one union: only the member set is there to print */
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		camel(f, fd->name);
		fputc(':', f);
		if (is_string_map(fd)) {
			map_object(f, fd, *(ProtobufCMessage *const *const *)(base + fd->offset),
				   *(const size_t *)(base + fd->quantifier_offset));
		} else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + fd->quantifier_offset);
			const char *arr = *(char *const *)(base + fd->offset);

			fputc('[', f);
			for (size_t j = 0; j < n; j++) {
				if (j)
					fputc(',', f);
				sy_pb_value_print(f, fd, arr + j * sy_pb_value_size(fd), true);
			}
			fputc(']', f);
		} else {
			sy_pb_value_print(f, fd, base + fd->offset, true);
		}
	}
	fputc('}', f);
}
