// SPDX-License-Identifier: Apache-2.0
/* pbjson.h — any protobuf-c message as JSON, driven by its descriptor (proto3 JSON
 * mapping: lowerCamelCase names, enums by name, 64-bit integers as strings, bytes as
 * base64, string-keyed maps as objects). One emitter for every `syctl -o json` output. */
#ifndef SY_PBJSON_H
#define SY_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdio.h>

void sy_pbjson_print(FILE *f, const ProtobufCMessage *m);
/* A JSON string literal, escaped. */
void sy_json_string(FILE *f, const char *s);

/* One value of field fd at v: as proto3 JSON, or (json false) as text for a human —
 * numbers, enums and strings bare, a message as JSON, an absent message as nothing,
 * bytes as "(bytes)". One printer for -o json and for the diff's field values. */
void sy_pb_value_print(FILE *f, const ProtobufCFieldDescriptor *fd, const void *v, bool json);

/* The size of one value of fd's type in a protobuf-c message (an element, for a
 * repeated field). */
size_t sy_pb_value_size(const ProtobufCFieldDescriptor *fd);

#endif
