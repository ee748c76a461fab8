// SPDX-License-Identifier: Apache-2.0
/* grpc_frame.h — the gRPC wire details that sit above HTTP/2, shared by the server and
 * the client: the 5-byte message prefix (compressed flag + big-endian length), per-
 * message gzip, the percent-encoding of grpc-message, grpc-timeout values, and the few
 * header values both sides must judge the same way (content-type, grpc-status,
 * grpc-accept-encoding, the HTTP-status fallback).
 *
 * Nothing here knows about nghttp2 or sockets: pure functions over bytes, so the unit
 * tests and fuzz_grpc_frame can drive every branch. Every size coming from the peer is
 * checked against a caller-given limit before anything is allocated for it.
 */
#ifndef SY_GRPC_FRAME_H
#define SY_GRPC_FRAME_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define SY_GRPC_PREFIX 5

/* Incremental reader of length-prefixed messages. A declared length over `max` is
 * refused as soon as the prefix is read, and the body buffer grows with the bytes
 * that actually arrive: a peer announcing 4 MiB and sending 10 bytes costs 10 bytes. */
struct sy_grpc_reader {
	uint8_t hdr[SY_GRPC_PREFIX];
	size_t hdr_got;
	uint8_t *buf;
	size_t cap;
	size_t len, got;
	size_t max;
	int compressed;
};

void sy_grpc_reader_init(struct sy_grpc_reader *r, size_t max);
void sy_grpc_reader_free(struct sy_grpc_reader *r);
/* Consumes bytes from *data / *len. Returns 1 when a message is complete (*msg,
 * *msg_len, *compressed; the caller frees *msg; call again for the rest of the input),
 * 0 when all input was consumed without completing one, -EMSGSIZE when a declared
 * length exceeds max, -ENOMEM. After an error the reader must not be fed again. */
int sy_grpc_reader_feed(struct sy_grpc_reader *r, const uint8_t **data, size_t *len, uint8_t **msg,
			size_t *msg_len, int *compressed);
/* True between messages (no partial prefix or body buffered). */
int sy_grpc_reader_idle(const struct sy_grpc_reader *r);

/* Prefix + body (gzipped, with the compressed flag, when gzip != 0) in one allocated
 * buffer. -EMSGSIZE when the body does not fit the 32-bit length. */
int sy_grpc_frame(const uint8_t *body, size_t n, int gzip, uint8_t **out, size_t *out_len);

/* Message m packed and framed as sy_grpc_frame does; -EMSGSIZE when it packs to more than
 * max bytes. */
int sy_grpc_pack(const ProtobufCMessage *m, size_t max, int gzip, uint8_t **out, size_t *out_len);
/* A received compressed message: *msg (freed either way) becomes its gunzipped bytes, at
 * most max of them; the errors of sy_gzip_decompress. */
int sy_grpc_gunzip(uint8_t **msg, size_t *len, size_t max);

int sy_gzip_compress(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len);
/* -EMSGSIZE as soon as the output would exceed max (a zip bomb stops there, having
 * cost at most max + 1 bytes), -EBADMSG when the input is not one complete gzip
 * member. */
int sy_gzip_decompress(const uint8_t *in, size_t n, size_t max, uint8_t **out, size_t *out_len);

/* Percent-encoding of grpc-message: bytes outside 0x20-0x7e, and '%', become %XX.
 * Writes a NUL-terminated string into out, truncating before an escape that would not
 * fit. */
void sy_grpc_percent_encode(const char *in, char *out, size_t outlen);
/* The reverse; a '%' not followed by two hex digits is kept as is (as the spec asks of
 * a lenient receiver). NUL-terminates, truncating to outlen - 1 bytes. */
void sy_grpc_percent_decode(const char *in, size_t n, char *out, size_t outlen);

/* grpc-timeout: 1-8 digits and a unit H M S m u n. Returns ms (rounded up, so any
 * positive value is at least 1) or -EINVAL. */
int64_t sy_grpc_timeout_parse(const char *v, size_t n);
/* Formats ms as a grpc-timeout value ("1500m"; whole seconds rounded up past 8 digits). */
void sy_grpc_timeout_format(uint64_t ms, char *out, size_t outlen);

/* content-type is "application/grpc" or "application/grpc+proto", optionally with
 * ";params". */
int sy_grpc_content_type_ok(const char *v, size_t n);
/* True when the comma-separated token list (grpc-accept-encoding) names enc. */
int sy_grpc_list_has(const char *list, size_t n, const char *enc);
/* grpc-status: decimal digits, 0..2^31-1. Returns the code or -EINVAL. */
int sy_grpc_status_parse(const char *v, size_t n);
/* The gRPC code a client reports for an HTTP status that came without grpc-status
 * (gRPC's "HTTP to gRPC Status Code Mapping"). */
int sy_grpc_code_from_http(int http_status);

#endif
