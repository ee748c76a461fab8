// SPDX-License-Identifier: Apache-2.0
/* h2_out.h — writing an nghttp2 session's output to a socket, shared by the gRPC server
 * and client: straight from nghttp2's buffer, keeping only what the socket refuses
 * (TLS retries a refused write with the same bytes) until it takes it. */
#ifndef SY_H2_OUT_H
#define SY_H2_OUT_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What the socket did not take yet: buf[off, len). */
struct sy_h2_out {
	uint8_t *buf;
	size_t len, off, cap;
};

static inline int sy_h2_out_pending(const struct sy_h2_out *o)
{
	return o->off < o->len;
}

/* Writes what s has with send (a write(2)-like call: -1 and errno), the kept bytes first,
 * until s has nothing more or the socket is full. 0, or -1 with *why when the connection
 * is to fail (a send error, an nghttp2 error, no memory). */
int sy_h2_flush(nghttp2_session *s, struct sy_h2_out *o,
		ssize_t (*send)(void *arg, const uint8_t *d, size_t n), void *arg, const char **why);

#endif
