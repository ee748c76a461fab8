// SPDX-License-Identifier: Apache-2.0
/* test_grpc_frame.c — the gRPC wire helpers (grpc_frame.h): message framing read back
 * at every split point, the size limit refused before any allocation, gzip both ways
 * with the zip-bomb limit, grpc-message percent-encoding, grpc-timeout, and the header
 * judgements shared by server and client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/grpc_frame.h"
#include "rpc/rpc.h"

/* Feeds buf in pieces of `step` bytes; collects every message into out (concatenated
 * bodies) and their sizes. Returns the number of messages, or the reader's error. */
static int read_all(const uint8_t *buf, size_t n, size_t step, size_t max, uint8_t *out, size_t *sizes,
		    int *flags)
{
	struct sy_grpc_reader r;
	size_t off = 0, o = 0;
	int nmsg = 0;

	sy_grpc_reader_init(&r, max);
	while (off < n) {
		const uint8_t *p = buf + off;
		size_t len = n - off < step ? n - off : step;

		off += len;
		while (len) {
			uint8_t *msg;
			size_t mlen;
			int comp, rc = sy_grpc_reader_feed(&r, &p, &len, &msg, &mlen, &comp);

			if (rc < 0) {
				sy_grpc_reader_free(&r);
				return rc;
			}
			if (rc == 0)
				break;
			memcpy(out + o, msg, mlen);
			o += mlen;
			sizes[nmsg] = mlen;
			flags[nmsg++] = comp;
			free(msg);
		}
	}
	assert_true(sy_grpc_reader_idle(&r));
	sy_grpc_reader_free(&r);
	return nmsg;
}

static void frames_read_back_at_every_split(void **state)
{
	const char *bodies[] = {"hello", "", "a slightly longer third message"};
	uint8_t wire[256], out[256];
	size_t n = 0, sizes[8];
	int flags[8];

	(void)state;
	for (int i = 0; i < 3; i++) {
		uint8_t *f;
		size_t fl;

		assert_int_equal(sy_grpc_frame((const uint8_t *)bodies[i], strlen(bodies[i]), 0, &f, &fl), 0);
		assert_int_equal(fl, strlen(bodies[i]) + 5);
		assert_int_equal(f[0], 0);
		memcpy(wire + n, f, fl);
		n += fl;
		free(f);
	}
	for (size_t step = 1; step <= n; step++) {
		assert_int_equal(read_all(wire, n, step, 1024, out, sizes, flags), 3);
		assert_int_equal(sizes[0], 5);
		assert_int_equal(sizes[1], 0);
		assert_int_equal(sizes[2], strlen(bodies[2]));
		assert_memory_equal(out, "helloa slightly longer third message", 36);
		assert_int_equal(flags[0] | flags[1] | flags[2], 0);
	}
}

static void declared_length_over_limit_is_refused_before_allocating(void **state)
{
	/* 0x7fffffff: a 2 GiB claim, followed by a few bytes. */
	const uint8_t wire[] = {0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3};
	struct sy_grpc_reader r;
	const uint8_t *p = wire;
	size_t len = sizeof(wire), mlen;
	uint8_t *msg;
	int comp;

	(void)state;
	sy_grpc_reader_init(&r, SY_RPC_DEFAULT_MAX_MSG);
	assert_int_equal(sy_grpc_reader_feed(&r, &p, &len, &msg, &mlen, &comp), -EMSGSIZE);
	assert_null(r.buf);
	assert_int_equal(r.cap, 0);
	assert_int_equal(len, 3); /* stopped right after the prefix */
	/* Fed again by mistake: still refused, still nothing allocated. */
	assert_int_equal(sy_grpc_reader_feed(&r, &p, &len, &msg, &mlen, &comp), -EMSGSIZE);
	assert_null(r.buf);
	sy_grpc_reader_free(&r);
}

static void buffer_grows_with_the_bytes_that_arrive(void **state)
{
	/* Claims exactly the 4 MiB limit (allowed), sends 10 bytes. */
	const uint8_t wire[] = {0, 0x00, 0x40, 0x00, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	struct sy_grpc_reader r;
	const uint8_t *p = wire;
	size_t len = sizeof(wire), mlen;
	uint8_t *msg;
	int comp;

	(void)state;
	sy_grpc_reader_init(&r, SY_RPC_DEFAULT_MAX_MSG);
	assert_int_equal(sy_grpc_reader_feed(&r, &p, &len, &msg, &mlen, &comp), 0);
	assert_int_equal(len, 0);
	assert_true(r.cap <= 4096);
	assert_false(sy_grpc_reader_idle(&r));
	sy_grpc_reader_free(&r);
}

static void gzip_frame_sets_flag_and_round_trips(void **state)
{
	char body[4000];
	uint8_t *f, *plain;
	size_t fl, pl;

	(void)state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = "abcab"[i % 5];
	assert_int_equal(sy_grpc_frame((const uint8_t *)body, sizeof(body), 1, &f, &fl), 0);
	assert_int_equal(f[0], 1);
	assert_true(fl < sizeof(body) / 4); /* it did compress */
	assert_int_equal(((size_t)f[1] << 24 | (size_t)f[2] << 16 | (size_t)f[3] << 8 | f[4]), fl - 5);
	assert_int_equal(sy_gzip_decompress(f + 5, fl - 5, sizeof(body), &plain, &pl), 0);
	assert_int_equal(pl, sizeof(body));
	assert_memory_equal(plain, body, sizeof(body));
	free(plain);
	free(f);
}

static void zip_bomb_stops_at_the_limit(void **state)
{
	size_t big = 10u << 20;
	uint8_t *zeros = calloc(1, big), *z, *out;
	size_t zl, ol;

	(void)state;
	assert_non_null(zeros);
	assert_int_equal(sy_gzip_compress(zeros, big, &z, &zl), 0);
	assert_true(zl < 20000); /* 10 MiB of zeros: a few KiB on the wire */
	assert_int_equal(sy_gzip_decompress(z, zl, SY_RPC_DEFAULT_MAX_MSG, &out, &ol), -EMSGSIZE);
	/* Exactly at the limit passes, one byte under fails. */
	assert_int_equal(sy_gzip_decompress(z, zl, big, &out, &ol), 0);
	assert_int_equal(ol, big);
	free(out);
	assert_int_equal(sy_gzip_decompress(z, zl, big - 1, &out, &ol), -EMSGSIZE);
	free(z);
	free(zeros);
}

static void bad_gzip_is_ebadmsg(void **state)
{
	const uint8_t junk[] = "this is not gzip at all";
	uint8_t *z, *out;
	size_t zl, ol;

	(void)state;
	assert_int_equal(sy_gzip_decompress(junk, sizeof(junk), 1024, &out, &ol), -EBADMSG);
	assert_int_equal(sy_gzip_decompress(junk, 0, 1024, &out, &ol), -EBADMSG);
	assert_int_equal(sy_gzip_compress((const uint8_t *)"hello hello hello", 17, &z, &zl), 0);
	/* Truncated: the stream never ends. */
	assert_int_equal(sy_gzip_decompress(z, zl - 4, 1024, &out, &ol), -EBADMSG);
	/* A flipped byte in the deflate data or CRC. */
	z[zl - 6] ^= 0xff;
	assert_int_equal(sy_gzip_decompress(z, zl, 1024, &out, &ol), -EBADMSG);
	free(z);
	/* Empty message compressed: valid, decompresses to 0 bytes. */
	assert_int_equal(sy_gzip_compress((const uint8_t *)"", 0, &z, &zl), 0);
	assert_int_equal(sy_gzip_decompress(z, zl, 0, &out, &ol), 0);
	assert_int_equal(ol, 0);
	free(out);
	free(z);
}

static void percent_encoding(void **state)
{
	char enc[64], dec[64];

	(void)state;
	sy_grpc_percent_encode("h\xc3\xa9llo 100%\n", enc, sizeof(enc));
	assert_string_equal(enc, "h%C3%A9llo 100%25%0A");
	sy_grpc_percent_decode(enc, strlen(enc), dec, sizeof(dec));
	assert_string_equal(dec, "h\xc3\xa9llo 100%\n");
	/* Truncation never leaves half an escape. */
	sy_grpc_percent_encode("ab\xff", enc, 5);
	assert_string_equal(enc, "ab");
	sy_grpc_percent_encode("ab\xff", enc, 6);
	assert_string_equal(enc, "ab%FF");
	/* Lenient decoding of broken escapes, and lowercase hex. */
	sy_grpc_percent_decode("%zz%4%e9", 8, dec, sizeof(dec));
	assert_string_equal(dec, "%zz%4\xe9");
	sy_grpc_percent_decode("abcdef", 6, dec, 4);
	assert_string_equal(dec, "abc");
}

static void timeout_values(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(sy_grpc_timeout_parse("1S", 2), 1000);
	assert_int_equal(sy_grpc_timeout_parse("100m", 4), 100);
	assert_int_equal(sy_grpc_timeout_parse("2M", 2), 120000);
	assert_int_equal(sy_grpc_timeout_parse("3H", 2), 3 * 3600000);
	assert_int_equal(sy_grpc_timeout_parse("1u", 2), 1); /* rounded up */
	assert_int_equal(sy_grpc_timeout_parse("1000001n", 8), 2);
	assert_int_equal(sy_grpc_timeout_parse("0m", 2), 0);
	assert_int_equal(sy_grpc_timeout_parse("99999999H", 9), 99999999LL * 3600000);
	assert_int_equal(sy_grpc_timeout_parse("", 0), -EINVAL);
	assert_int_equal(sy_grpc_timeout_parse("S", 1), -EINVAL);
	assert_int_equal(sy_grpc_timeout_parse("123456789S", 10), -EINVAL); /* 9 digits */
	assert_int_equal(sy_grpc_timeout_parse("1x", 2), -EINVAL);
	assert_int_equal(sy_grpc_timeout_parse("-1S", 3), -EINVAL);
	assert_int_equal(sy_grpc_timeout_parse("1 S", 3), -EINVAL);
	sy_grpc_timeout_format(1500, buf, sizeof(buf));
	assert_string_equal(buf, "1500m");
	sy_grpc_timeout_format(100000001, buf, sizeof(buf));
	assert_string_equal(buf, "100001S"); /* whole seconds, rounded up */
	for (uint64_t ms = 1; ms < (1ull << 50); ms = ms * 7 + 3) {
		sy_grpc_timeout_format(ms, buf, sizeof(buf));
		assert_true(sy_grpc_timeout_parse(buf, strlen(buf)) >= (int64_t)ms ||
			    ms > 99999999ull * 3600000);
	}
}

static void header_judgements(void **state)
{
	(void)state;
	assert_true(sy_grpc_content_type_ok("application/grpc", 16));
	assert_true(sy_grpc_content_type_ok("application/grpc+proto", 22));
	assert_true(sy_grpc_content_type_ok("application/grpc; charset=utf-8", 31));
	assert_true(sy_grpc_content_type_ok("application/grpc+proto;x=y", 26));
	assert_false(sy_grpc_content_type_ok("application/grpc+json", 21)); /* not our codec */
	assert_false(sy_grpc_content_type_ok("application/grpc+protox", 23));
	assert_false(sy_grpc_content_type_ok("application/grpcx", 17));
	assert_false(sy_grpc_content_type_ok("application/json", 16));
	assert_false(sy_grpc_content_type_ok("application/grp", 15));

	assert_true(sy_grpc_list_has("identity, deflate, gzip", 23, "gzip"));
	assert_true(sy_grpc_list_has("gzip", 4, "gzip"));
	assert_false(sy_grpc_list_has("identity,gzipx", 14, "gzip"));
	assert_false(sy_grpc_list_has("", 0, "gzip"));
	assert_false(sy_grpc_list_has("identity,gzip", 12, "gzip")); /* length is honoured */

	assert_int_equal(sy_grpc_status_parse("0", 1), 0);
	assert_int_equal(sy_grpc_status_parse("14", 2), 14);
	assert_int_equal(sy_grpc_status_parse("", 0), -EINVAL);
	assert_int_equal(sy_grpc_status_parse("1a", 2), -EINVAL);
	assert_int_equal(sy_grpc_status_parse("99999999999", 11), -EINVAL);

	assert_int_equal(sy_grpc_code_from_http(400), SY_GRPC_INTERNAL);
	assert_int_equal(sy_grpc_code_from_http(401), SY_GRPC_UNAUTHENTICATED);
	assert_int_equal(sy_grpc_code_from_http(403), SY_GRPC_PERMISSION_DENIED);
	assert_int_equal(sy_grpc_code_from_http(404), SY_GRPC_UNIMPLEMENTED);
	assert_int_equal(sy_grpc_code_from_http(503), SY_GRPC_UNAVAILABLE);
	assert_int_equal(sy_grpc_code_from_http(415), SY_GRPC_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_read_back_at_every_split),
		cmocka_unit_test(declared_length_over_limit_is_refused_before_allocating),
		cmocka_unit_test(buffer_grows_with_the_bytes_that_arrive),
		cmocka_unit_test(gzip_frame_sets_flag_and_round_trips),
		cmocka_unit_test(zip_bomb_stops_at_the_limit),
		cmocka_unit_test(bad_gzip_is_ebadmsg),
		cmocka_unit_test(percent_encoding),
		cmocka_unit_test(timeout_values),
		cmocka_unit_test(header_judgements),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
