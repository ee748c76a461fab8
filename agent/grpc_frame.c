/* grpc_frame.c — see grpc_frame.h. gzip through zlib (windowBits 15+16). */
#include "grpc_frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void sy_grpc_reader_init(struct sy_grpc_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void sy_grpc_reader_free(struct sy_grpc_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

int sy_grpc_reader_idle(const struct sy_grpc_reader *r)
{
	return r->hdr_got == 0;
}

int sy_grpc_reader_feed(struct sy_grpc_reader *r, const uint8_t **data, size_t *len, uint8_t **msg,
			size_t *msg_len, int *compressed)
{
	while (*len) {
		if (r->hdr_got < 5) {
			size_t take = 5 - r->hdr_got;

			if (take > *len)
				take = *len;
			memcpy(r->hdr + r->hdr_got, *data, take);
			r->hdr_got += take;
			*data += take;
			*len -= take;
			if (r->hdr_got < 5)
				return 0;
			r->compressed = r->hdr[0] & 1;
			r->len = (size_t)r->hdr[1] << 24 | (size_t)r->hdr[2] << 16 | (size_t)r->hdr[3] << 8 | r->hdr[4];
			if (r->len > r->max)
				return -EMSGSIZE;
			r->got = 0;
			r->buf = malloc(r->len ? r->len : 1);
			if (!r->buf)
				return -ENOMEM;
		}
		size_t take = r->len - r->got;

		if (take > *len)
			take = *len;
		memcpy(r->buf + r->got, *data, take);
		r->got += take;
		*data += take;
		*len -= take;
		if (r->got == r->len)
			break;
	}
	if (r->hdr_got == 5 && r->got == r->len && r->buf) {
		*msg = r->buf;
		*msg_len = r->len;
		*compressed = r->compressed;
		r->buf = NULL;
		r->hdr_got = 0;
		return 1;
	}
	return 0;
}

int sy_gzip_compress(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
	z_stream z = {0};
	size_t cap;
	uint8_t *buf;
	int rc;

	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, n) + 32;
	buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
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
	size_t cap = n * 4 + 64, used = 0;
	uint8_t *buf;
	int rc;

	if (cap > max + 1)
		cap = max + 1;
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return -ENOMEM;
	buf = malloc(cap ? cap : 1);
	if (!buf) {
		inflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	for (;;) {
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
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			rc = -EBADMSG;
			break;
		}
		if (z.avail_in == 0 && z.avail_out != 0) {
			rc = -EBADMSG; /* truncated */
			break;
		}
		if (z.avail_out == 0) {
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			uint8_t *nb;

			if (ncap == cap) {
				rc = -EMSGSIZE;
				break;
			}
			nb = realloc(buf, ncap);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
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
	buf = malloc(n + 5);
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
		memcpy(buf + 5, body, n);
	free(z);
	*out = buf;
	*out_len = n + 5;
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
	uint64_t x = 0;
	uint64_t ms;

	if (n < 2 || n > 9)
		return -EINVAL;
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H':
		ms = x * 3600000;
		break;
	case 'M':
		ms = x * 60000;
		break;
	case 'S':
		ms = x * 1000;
		break;
	case 'm':
		ms = x;
		break;
	case 'u':
		ms = (x + 999) / 1000;
		break;
	case 'n':
		ms = (x + 999999) / 1000000;
		break;
	default:
		return -EINVAL;
	}
	return (int64_t)ms;
}

void sy_grpc_timeout_format(uint64_t ms, char *out, size_t outlen)
{
	if (ms <= 99999999)
		snprintf(out, outlen, "%llum", (unsigned long long)ms);
	else
		snprintf(out, outlen, "%lluS", (unsigned long long)(ms / 1000 > 99999999 ? 99999999 : ms / 1000));
}
