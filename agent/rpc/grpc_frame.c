// SPDX-License-Identifier: Apache-2.0
/* grpc_frame.c — see grpc_frame.h. gzip is zlib with windowBits 15 + 16 (a gzip
 * header and trailer, as grpc-encoding: gzip means), one member per message. */
#include "rpc/grpc_frame.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "rpc/rpc.h"
#include "core/decimal.h"

/* First allocation for a message body: small bodies take one malloc, large ones grow
 * by doubling as their bytes arrive. */
#define READER_FIRST_CAP 4096

void sy_grpc_reader_init(struct sy_grpc_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void sy_grpc_reader_free(struct sy_grpc_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

int sy_grpc_reader_idle(const struct sy_grpc_reader *r)
{
	return r->hdr_got == 0;
}

/* Makes room for `more` bytes after r->got, never past the declared length. */
static int reader_reserve(struct sy_grpc_reader *r, size_t more)
{
	size_t need = r->got + more, ncap;
	uint8_t *nb;

	if (need <= r->cap && r->buf)
		return 0;
	ncap = r->cap ? r->cap : READER_FIRST_CAP;
	while (ncap < need)
		ncap *= 2;
	if (ncap > r->len)
		ncap = r->len;
	nb = realloc(r->buf, ncap ? ncap : 1);
	if (!nb)
		return -ENOMEM;
	r->buf = nb;
	r->cap = ncap;
	return 0;
}

int sy_grpc_reader_feed(struct sy_grpc_reader *r, const uint8_t **data, size_t *len, uint8_t **msg,
			size_t *msg_len, int *compressed)
{
	if (r->hdr_got == SY_GRPC_PREFIX && r->len > r->max)
		return -EMSGSIZE; /* fed again after refusing: still refused */
	while (r->hdr_got < SY_GRPC_PREFIX) {
		if (!*len)
			return 0;
		r->hdr[r->hdr_got++] = **data;
		(*data)++;
		(*len)--;
		if (r->hdr_got == SY_GRPC_PREFIX) {
			r->compressed = r->hdr[0] & 1;
			r->len = (size_t)r->hdr[1] << 24 | (size_t)r->hdr[2] << 16 | (size_t)r->hdr[3] << 8 |
				 r->hdr[4];
			r->got = 0;
			/* Refused before a byte of it is stored: a 2 GiB claim costs nothing. */
			if (r->len > r->max)
				return -EMSGSIZE;
		}
	}
	size_t take = r->len - r->got;

	if (take > *len)
		take = *len;
	if (!take && r->got < r->len)
		return 0; /* nothing to store yet: allocate nothing yet */
	if (reader_reserve(r, take))
		return -ENOMEM;
	if (take) {
		memcpy(r->buf + r->got, *data, take);
		r->got += take;
		*data += take;
		*len -= take;
	}
	if (r->got < r->len)
		return 0;
	*msg = r->buf;
	*msg_len = r->len;
	*compressed = r->compressed;
	r->buf = NULL;
	r->cap = 0;
	r->hdr_got = 0;
	return 1;
}

/* The output buffer (cap bytes) of a gzip pass over in[n] on the initialised z, which
 * gets in as its input; NULL, z ended by end(), when out of memory. */
static uint8_t *z_start(z_stream *z, int (*end)(z_streamp), const uint8_t *in, size_t n, size_t cap)
{
	uint8_t *buf = malloc(cap);

	if (!buf) {
		end(z);
		return NULL;
	}
	z->next_in = (Bytef *)in;
	z->avail_in = (uInt)n;
	return buf;
}

int sy_grpc_pack(const ProtobufCMessage *m, size_t max, int gzip, uint8_t **out, size_t *out_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *body;
	int e;

	if (n > max)
		return -EMSGSIZE;
	if (!(body = malloc(n ? n : 1)))
		return -ENOMEM;
	protobuf_c_message_pack(m, body);
	e = sy_grpc_frame(body, n, gzip, out, out_len);
	free(body);
	return e;
}

int sy_grpc_gunzip(uint8_t **msg, size_t *len, size_t max)
{
	uint8_t *plain;
	size_t plen;
	int e = sy_gzip_decompress(*msg, *len, max, &plain, &plen);

	free(*msg);
	*msg = e ? NULL : plain;
	*len = e ? 0 : plen;
	return e;
}

int sy_gzip_compress(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
	z_stream z = {0};
	size_t cap;
	uint8_t *buf;
	int rc;

	if (n > UINT_MAX / 2)
		return -EMSGSIZE; /* zlib counts in uInt */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	/* deflateBound is exact for one Z_FINISH call; +32 covers the gzip wrapper. */
	cap = deflateBound(&z, (uLong)n) + 32;
	if (!(buf = z_start(&z, deflateEnd, in, n, cap)))
		return -ENOMEM;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*out_len = cap - z.avail_out;
	return 0;
}

int sy_gzip_decompress(const uint8_t *in, size_t n, size_t max, uint8_t **out, size_t *out_len)
{
	z_stream z = {0};
	/* The output buffer never grows past max + 1: one byte more than allowed is
	 * enough to know the limit is crossed. */
	size_t limit = max + 1, cap, used = 0;
	uint8_t *buf;
	int rc;

	if (n > UINT_MAX || max >= UINT_MAX)
		return -EMSGSIZE;
	cap = n < 64 ? 256 : n * 4;
	if (cap > limit)
		cap = limit;
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return -ENOMEM;
	if (!(buf = z_start(&z, inflateEnd, in, n, cap)))
		return -ENOMEM;
	for (;;) {
		if (used == cap) {
			size_t ncap = cap * 2 < limit ? cap * 2 : limit;
			uint8_t *nb = realloc(buf, ncap);

			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		z.next_out = buf + used;
		z.avail_out = (uInt)(cap - used);
		rc = inflate(&z, Z_NO_FLUSH);
		used = cap - z.avail_out;
		if (used > max) {
			rc = -EMSGSIZE;
			break;
		}
		if (rc == Z_STREAM_END) {
			rc = 0;
			break;
		}
		if (rc == Z_OK || (rc == Z_BUF_ERROR && z.avail_out == 0)) {
			if (z.avail_in == 0 && z.avail_out != 0) {
				rc = -EBADMSG; /* wants input we do not have: truncated */
				break;
			}
			continue;
		}
		rc = -EBADMSG; /* Z_DATA_ERROR, Z_NEED_DICT, or stuck without input */
		break;
	}
	inflateEnd(&z);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*out_len = used;
	return 0;
}

int sy_grpc_frame(const uint8_t *body, size_t n, int gzip, uint8_t **out, size_t *out_len)
{
	uint8_t *z = NULL, *buf;
	size_t zn = 0;

	if (gzip) {
		int e = sy_gzip_compress(body, n, &z, &zn);

		if (e)
			return e;
		body = z;
		n = zn;
	}
	if (n > UINT32_MAX) {
		free(z);
		return -EMSGSIZE;
	}
	buf = malloc(n + SY_GRPC_PREFIX);
	if (!buf) {
		free(z);
		return -ENOMEM;
	}
	buf[0] = gzip ? 1 : 0;
	buf[1] = (uint8_t)(n >> 24);
	buf[2] = (uint8_t)(n >> 16);
	buf[3] = (uint8_t)(n >> 8);
	buf[4] = (uint8_t)n;
	if (n)
		memcpy(buf + SY_GRPC_PREFIX, body, n);
	free(z);
	*out = buf;
	*out_len = n + SY_GRPC_PREFIX;
	return 0;
}

void sy_grpc_percent_encode(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (!outlen)
		return;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
			if (o + 1 >= outlen)
				break;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= outlen)
				break;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void sy_grpc_percent_decode(const char *in, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	if (!outlen)
		return;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		if (in[i] == '%' && i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
			out[o++] = (char)(hexval(in[i + 1]) << 4 | hexval(in[i + 2]));
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
}

int64_t sy_grpc_timeout_parse(const char *v, size_t n)
{
	int64_t x = n < 2 ? -EINVAL : sy_decimal(v, n - 1, 8);

	if (x < 0)
		return -EINVAL;
	/* At most 99999999 of any unit: even hours stay far inside int64 ms. */
	switch (v[n - 1]) {
	case 'H':
		return (int64_t)(x * 3600000);
	case 'M':
		return (int64_t)(x * 60000);
	case 'S':
		return (int64_t)(x * 1000);
	case 'm':
		return (int64_t)x;
	case 'u':
		return (int64_t)((x + 999) / 1000);
	case 'n':
		return (int64_t)((x + 999999) / 1000000);
	default:
		return -EINVAL;
	}
}

void sy_grpc_timeout_format(uint64_t ms, char *out, size_t outlen)
{
	/* At most 8 digits: the smallest unit that fits, rounded up so a deadline is
	 * never shortened (hours are capped at the largest value the spec allows). */
	uint64_t s = ms / 1000 + (ms % 1000 != 0), h = s / 3600 + (s % 3600 != 0);

	if (ms <= 99999999)
		snprintf(out, outlen, "%llum", (unsigned long long)ms);
	else if (s <= 99999999)
		snprintf(out, outlen, "%lluS", (unsigned long long)s);
	else
		snprintf(out, outlen, "%lluH", (unsigned long long)(h > 99999999 ? 99999999 : h));
}

int sy_grpc_content_type_ok(const char *v, size_t n)
{
	static const char ct[] = "application/grpc", proto[] = "+proto";
	size_t k = sizeof(ct) - 1, p = sizeof(proto) - 1;

	if (n < k || strncasecmp(v, ct, k) != 0)
		return 0;
	/* Only the protobuf codec is spoken here: "+json" and friends get the 415 too. */
	if (n >= k + p && strncasecmp(v + k, proto, p) == 0)
		k += p;
	return n == k || v[k] == ';';
}

int sy_grpc_list_has(const char *list, size_t n, const char *enc)
{
	size_t el = strlen(enc), i = 0;

	while (i < n) {
		size_t b, e;

		while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
			i++;
		b = i;
		while (i < n && list[i] != ',')
			i++;
		e = i;
		while (e > b && (list[e - 1] == ' ' || list[e - 1] == '\t'))
			e--;
		if (e - b == el && el && strncasecmp(list + b, enc, el) == 0)
			return 1;
	}
	return 0;
}

int sy_grpc_status_parse(const char *v, size_t n)
{
	int64_t x = sy_decimal(v, n, 10);

	return x < 0 || x > INT32_MAX ? -EINVAL : (int)x;
}

int sy_grpc_code_from_http(int http_status)
{
	switch (http_status) {
	case 400:
		return SY_GRPC_INTERNAL;
	case 401:
		return SY_GRPC_UNAUTHENTICATED;
	case 403:
		return SY_GRPC_PERMISSION_DENIED;
	case 404:
		return SY_GRPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return SY_GRPC_UNAVAILABLE;
	default:
		return SY_GRPC_UNKNOWN;
	}
}
