// SPDX-License-Identifier: Apache-2.0
/* pbjson.h — any protobuf-c message as JSON, driven by its descriptor (proto3 JSON
 * mapping: lowerCamelCase names, enums by name, 64-bit integers as strings, bytes as
 * base64, string-keyed maps as objects). One emitter for every `syctl -o json` output. */
#ifndef SY_PBJSON_H
#define SY_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

void sy_pbjson_print(FILE *f, const ProtobufCMessage *m);
/* A JSON string literal, escaped. */
void sy_json_string(FILE *f, const char *s);

/* The size of one value of fd's type in a protobuf-c message (an element, for a
 * repeated field). */
size_t sy_pb_value_size(const ProtobufCFieldDescriptor *fd);

#endif
