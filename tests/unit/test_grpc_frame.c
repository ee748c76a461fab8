/* test_grpc_frame.c — message framing, gzip limits, grpc-message encoding, timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"

static void frames_split_anywhere(void **state)
{
	uint8_t *f1, *f2, stream[64];
	size_t l1, l2;

	(void)state;
	assert_int_equal(sy_grpc_frame((const uint8_t *)"hello", 5, 0, &f1, &l1), 0);
	assert_int_equal(sy_grpc_frame((const uint8_t *)"", 0, 0, &f2, &l2), 0);
	assert_int_equal(l1, 10);
	memcpy(stream, f1, l1);
	memcpy(stream + l1, f2, l2);
	for (size_t cut = 0; cut <= l1 + l2; cut++) {
		struct sy_grpc_reader r;
		const uint8_t *p = stream;
		size_t left = cut, n = 0;
		uint8_t *msg;
		size_t ml;
		int comp, got = 0;

		sy_grpc_reader_init(&r, 100);
		for (int pass = 0; pass < 2; pass++) {
			while (left) {
				int rc = sy_grpc_reader_feed(&r, &p, &left, &msg, &ml, &comp);

				assert_true(rc >= 0);
				if (rc == 1) {
					assert_int_equal(ml, got == 0 ? 5 : 0);
					free(msg);
					got++;
				}
			}
			left = l1 + l2 - cut;
			n++;
		}
		assert_int_equal(got, 2);
		assert_true(sy_grpc_reader_idle(&r));
		sy_grpc_reader_free(&r);
	}
	free(f1);
	free(f2);
}

static void oversized_length_refused_before_allocating(void **state)
{
	struct sy_grpc_reader r;
	const uint8_t hdr[5] = {0, 0x7f, 0xff, 0xff, 0xff}, *p = hdr;
	size_t left = 5, ml;
	uint8_t *msg;
	int comp;

	(void)state;
	sy_grpc_reader_init(&r, 4u << 20);
	assert_int_equal(sy_grpc_reader_feed(&r, &p, &left, &msg, &ml, &comp), -EMSGSIZE);
	assert_null(r.buf);
	sy_grpc_reader_free(&r);
}

static void gzip_round_trip_and_bomb_limit(void **state)
{
	static uint8_t zeros[1 << 20];
	uint8_t *z, *out;
	size_t zl, ol;

	(void)state;
	assert_int_equal(sy_gzip_compress(zeros, sizeof(zeros), &z, &zl), 0);
	assert_true(zl < 8192);
	assert_int_equal(sy_gzip_decompress(z, zl, sizeof(zeros), &out, &ol), 0);
	assert_int_equal(ol, sizeof(zeros));
	free(out);
	assert_int_equal(sy_gzip_decompress(z, zl, 4096, &out, &ol), -EMSGSIZE);
	assert_int_equal(sy_gzip_decompress(z, zl / 2, sizeof(zeros), &out, &ol), -EBADMSG);
	assert_int_equal(sy_gzip_decompress((const uint8_t *)"not gzip", 8, 100, &out, &ol), -EBADMSG);
	free(z);
}

static void percent_encoding(void **state)
{
	char enc[64], dec[64];

	(void)state;
	sy_grpc_percent_encode("ratio: 100% \xc3\xa9\n", enc, sizeof(enc));
	assert_string_equal(enc, "ratio: 100%25 %C3%A9%0A");
	sy_grpc_percent_decode(enc, strlen(enc), dec, sizeof(dec));
	assert_string_equal(dec, "ratio: 100% \xc3\xa9\n");
}

static void timeouts(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(sy_grpc_timeout_parse("100m", 4), 100);
	assert_int_equal(sy_grpc_timeout_parse("2S", 2), 2000);
	assert_int_equal(sy_grpc_timeout_parse("1H", 2), 3600000);
	assert_int_equal(sy_grpc_timeout_parse("1500u", 5), 2);
	assert_int_equal(sy_grpc_timeout_parse("1n", 2), 1);
	assert_int_equal(sy_grpc_timeout_parse("123456789S", 10), -EINVAL);
	assert_int_equal(sy_grpc_timeout_parse("10x", 3), -EINVAL);
	assert_int_equal(sy_grpc_timeout_parse("m", 1), -EINVAL);
	sy_grpc_timeout_format(1500, out, sizeof(out));
	assert_string_equal(out, "1500m");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_split_anywhere),
		cmocka_unit_test(oversized_length_refused_before_allocating),
		cmocka_unit_test(gzip_round_trip_and_bomb_limit),
		cmocka_unit_test(percent_encoding),
		cmocka_unit_test(timeouts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
