// SPDX-License-Identifier: Apache-2.0
/* fuzz_grpc_frame.c — the wire helpers of grpc_frame.h on hostile bytes, with their
 * invariants checked, not only "no crash":
 *   - the reader gives the same messages whatever the split of its input (byte 0 picks
 *     the piece size and the limit), never one over the limit, and never more bytes
 *     than it was given;
 *   - gzip: a decompressed message never exceeds the limit, and compressing it again
 *     round-trips;
 *   - percent-encoding round-trips whenever the output had room;
 *   - grpc-timeout and the header judgements accept or refuse without reading past n.
 * Seeds: tests/fuzz/gen_grpc_seeds.py. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/grpc_frame.h"

#define CHECK(c)                                                                                             \
	do {                                                                                                 \
		if (!(c)) {                                                                                  \
			fprintf(stderr, "fuzz_grpc_frame: %s:%d: %s\n", __FILE__, __LINE__, #c);             \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

struct msgs {
	size_t n;
	size_t len[64];
	uint32_t sum[64]; /* a cheap digest of each body */
	int comp[64];
	int err;
};

static void read_msgs(const uint8_t *d, size_t n, size_t step, size_t max, struct msgs *out)
{
	struct sy_grpc_reader r;
	size_t off = 0, consumed_bodies = 0;

	memset(out, 0, sizeof(*out));
	sy_grpc_reader_init(&r, max);
	while (off < n && !out->err) {
		const uint8_t *p = d + off;
		size_t len = n - off < step ? n - off : step;

		off += len;
		while (len && !out->err) {
			uint8_t *msg;
			size_t ml;
			int comp, rc = sy_grpc_reader_feed(&r, &p, &len, &msg, &ml, &comp);

			if (rc < 0) {
				out->err = rc;
				break;
			}
			if (rc == 0)
				break;
			CHECK(ml <= max);
			consumed_bodies += ml + 5;
			CHECK(consumed_bodies <= n);
			if (out->n < 64) {
				uint32_t h = 2166136261u;

				for (size_t i = 0; i < ml; i++)
					h = (h ^ msg[i]) * 16777619u;
				out->len[out->n] = ml;
				out->sum[out->n] = h;
				out->comp[out->n] = comp;
			}
			out->n++;
			if (comp) {
				uint8_t *plain, *z, *back;
				size_t pl, zl, bl;
				int e = sy_gzip_decompress(msg, ml, max, &plain, &pl);

				CHECK(e == 0 || e == -EMSGSIZE || e == -EBADMSG);
				if (e == 0) {
					CHECK(pl <= max);
					CHECK(sy_gzip_compress(plain, pl, &z, &zl) == 0);
					CHECK(sy_gzip_decompress(z, zl, max, &back, &bl) == 0);
					CHECK(bl == pl && memcmp(back, plain, pl) == 0);
					free(back);
					free(z);
					free(plain);
				}
			}
			free(msg);
		}
	}
	sy_grpc_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t steps[8] = {1, 2, 3, 5, 7, 64, 1000, SIZE_MAX};
	static const size_t maxes[4] = {0, 16, 4096, 1 << 20};
	struct msgs a, b;
	char s[256], enc[256 * 3 + 1], dec[257];
	size_t sl;

	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	size_t step = steps[sel & 7], max = maxes[(sel >> 3) & 3];

	data++;
	size--;
	read_msgs(data, size, step, max, &a);
	read_msgs(data, size, SIZE_MAX, max, &b);
	CHECK(a.n == b.n && a.err == b.err);
	for (size_t i = 0; i < a.n && i < 64; i++)
		CHECK(a.len[i] == b.len[i] && a.sum[i] == b.sum[i] && a.comp[i] == b.comp[i]);

	/* The same bytes as text: percent-encoding and header values. */
	sl = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, sl);
	s[sl] = '\0';
	sy_grpc_percent_encode(s, enc, sizeof(enc));
	CHECK(strlen(enc) <= 3 * strlen(s));
	sy_grpc_percent_decode(enc, strlen(enc), dec, sizeof(dec));
	CHECK(strcmp(dec, s) == 0);
	sy_grpc_percent_encode(s, enc, 1 + sel % 16); /* truncating */
	sy_grpc_percent_decode(s, sl, dec, 1 + sel % 16);

	int64_t ms = sy_grpc_timeout_parse((const char *)data, size);

	CHECK(ms >= -EINVAL);
	if (ms >= 0) {
		char t[32];

		sy_grpc_timeout_format((uint64_t)ms, t, sizeof(t));
		CHECK(sy_grpc_timeout_parse(t, strlen(t)) >= ms);
	}
	(void)sy_grpc_content_type_ok((const char *)data, size);
	(void)sy_grpc_list_has((const char *)data, size, "gzip");
	(void)sy_grpc_status_parse((const char *)data, size);
	return 0;
}
