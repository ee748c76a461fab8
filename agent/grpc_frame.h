/* grpc_frame.h — the gRPC wire details that sit above HTTP/2: the 5-byte message
 * prefix (compressed flag + big-endian length), per-message gzip, the percent-encoding
 * of grpc-message, and grpc-timeout values. Shared by the server and the client. */
#ifndef SY_GRPC_FRAME_H
#define SY_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Incremental reader of length-prefixed messages. A declared length over `max` is
 * refused as soon as the 5-byte prefix is read: nothing is allocated for it. */
struct sy_grpc_reader {
	uint8_t hdr[5];
	size_t hdr_got;
	uint8_t *buf;
	size_t len, got;
	size_t max;
	int compressed;
};

void sy_grpc_reader_init(struct sy_grpc_reader *r, size_t max);
void sy_grpc_reader_free(struct sy_grpc_reader *r);
/* Consumes bytes from *data. Returns 1 when a message is complete (*msg, *msg_len,
 * *compressed; the caller frees *msg), 0 when all input was consumed without one,
 * -EMSGSIZE when the declared length exceeds max, -ENOMEM. */
int sy_grpc_reader_feed(struct sy_grpc_reader *r, const uint8_t **data, size_t *len, uint8_t **msg,
			size_t *msg_len, int *compressed);
/* True between messages (no partial message buffered). */
int sy_grpc_reader_idle(const struct sy_grpc_reader *r);

/* Prefix + body (gzipped when gzip != 0) in one allocated buffer. */
int sy_grpc_frame(const uint8_t *body, size_t n, int gzip, uint8_t **out, size_t *out_len);

int sy_gzip_compress(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len);
/* -EMSGSIZE when the output would exceed max (zip bombs stop there), -EBADMSG when
 * the input is not gzip. */
int sy_gzip_decompress(const uint8_t *in, size_t n, size_t max, uint8_t **out, size_t *out_len);

/* Percent-encoding of grpc-message (RFC 3986 unreserved + space-ish printable ASCII
 * kept, the rest %XX). Writes a NUL-terminated string, truncating at a character. */
void sy_grpc_percent_encode(const char *in, char *out, size_t outlen);
void sy_grpc_percent_decode(const char *in, size_t n, char *out, size_t outlen);

/* grpc-timeout: 1-8 digits and a unit H M S m u n. Returns ms (rounded up, at least
 * 1 for any positive value) or -EINVAL. */
int64_t sy_grpc_timeout_parse(const char *v, size_t n);
/* Formats ms as a grpc-timeout value ("1500m"). */
void sy_grpc_timeout_format(uint64_t ms, char *out, size_t outlen);

#endif
