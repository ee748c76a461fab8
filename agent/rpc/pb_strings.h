// SPDX-License-Identifier: Apache-2.0
/* pb_strings.h — owns one check of a protobuf message's raw bytes, before protobuf-c
 * unpacks them: no `string` field, at any depth, holds a NUL byte.
 *
 * Why on the raw bytes: proto3 allows U+0000 in a string, but protobuf-c unpacks a
 * string into a NUL-terminated char * and keeps no length, so "a\0b" arrives as "a"
 * and nothing after the unpack can tell (`syctl apply` once printed "migration a
 * applied" for "a\0b"). Comparing the repacked size is no proof either (defaults sent
 * explicitly, packed/unpacked repeats, unknown fields all change it). The agent's
 * model keeps C strings, so such a request is refused (INVALID_ARGUMENT) by the
 * server transport (rpc_server.c) for every method. */
#ifndef SY_PB_STRINGS_H
#define SY_PB_STRINGS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* 0 when no string field of `d` in buf holds a NUL (or the bytes are malformed: the
 * unpack that follows reports that); -EINVAL with the field's path ("spec.name",
 * "spec.pins.cgroup") in where. */
int sy_pb_strings_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, char *where,
			size_t n);

#endif
