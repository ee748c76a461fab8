// SPDX-License-Identifier: Apache-2.0
/* h2_out.c — see h2_out.h. */
#include "rpc/h2_out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Keeps d[0, n) as the bytes to send next. */
static int keep(struct sy_h2_out *o, const uint8_t *d, size_t n)
{
	if (n > o->cap) {
		uint8_t *nb = realloc(o->buf, n);

		if (!nb)
			return -ENOMEM;
		o->buf = nb;
		o->cap = n;
	}
	memcpy(o->buf, d, n);
	o->len = n;
	o->off = 0;
	return 0;
}

int sy_h2_flush(nghttp2_session *s, struct sy_h2_out *o,
		ssize_t (*send)(void *arg, const uint8_t *d, size_t n), void *arg, const char **why)
{
	for (;;) {
		const uint8_t *d;
		ssize_t n, w;

		if (o->off < o->len) {
			w = send(arg, o->buf + o->off, o->len - o->off);
			if (w < 0 && (errno == EAGAIN || errno == EINTR))
				return 0;
			if (w < 0)
				goto failed;
			o->off += (size_t)w;
			continue;
		}
		n = nghttp2_session_mem_send(s, &d);
		if (n < 0) {
			*why = nghttp2_strerror((int)n);
			return -1;
		}
		if (n == 0)
			return 0;
		w = send(arg, d, (size_t)n);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			goto failed;
		if (w < 0)
			w = 0;
		if (w < n && keep(o, d + w, (size_t)(n - w)) < 0) {
			*why = "out of memory";
			return -1;
		}
	}
failed:
	*why = strerror(errno);
	return -1;
}
