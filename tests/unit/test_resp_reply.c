// SPDX-License-Identifier: Apache-2.0
/* test_resp_reply.c — the RESP reply machine (resp_reply.h) driven on the host as the
 * kernel drives it (reply_scan.c). Every stream test checks exact results (replies,
 * errors by class, each reply's type and length), then that every chunking (one byte
 * at a time, every split point, growing chunks) gives the same ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "redis/reply_scan.h"
#include "switchyard/resp_reply.h"

#define MAX_GOT 1024

struct got {
	int n;
	char type[MAX_GOT];
	int err_class[MAX_GOT]; /* -1: no error */
	uint64_t bytes[MAX_GOT];
	uint64_t replies, pushes, errors, unparsed;
	uint64_t err_class_n[8];
};

static void record(const struct sy_reply_info *ri, void *arg)
{
	struct got *g = arg;

	if (g->n >= MAX_GOT)
		return;
	g->type[g->n] = (char)ri->type;
	g->err_class[g->n] = ri->is_error ? ri->err_class : -1;
	g->bytes[g->n] = ri->bytes;
	g->n++;
}

static void finish(struct got *g, const struct sy_reply_scan *s)
{
	g->replies = s->replies;
	g->pushes = s->pushes;
	g->errors = s->errors;
	g->unparsed = s->unparsed;
	memcpy(g->err_class_n, s->err_class, sizeof(g->err_class_n));
}

/* The fast path (as the kernel drives it) or bytes only: same_results tries both. */
static bool fast_path = true;

/* Feeds `in` in chunks of `chunk` bytes (0 = whole), or cut once at `cut` (if > 0). */
static struct sy_reply_scan scan(const char *in, size_t len, size_t chunk, size_t cut, struct got *g)
{
	struct sy_reply_scan s;

	memset(g, 0, sizeof(*g));
	sy_reply_scan_init(&s, fast_path, record, g);
	if (cut) {
		sy_reply_scan_feed(&s, (const uint8_t *)in, cut);
		sy_reply_scan_feed(&s, (const uint8_t *)in + cut, len - cut);
	} else {
		if (!chunk)
			chunk = len ? len : 1;
		for (size_t i = 0; i < len; i += chunk)
			sy_reply_scan_feed(&s, (const uint8_t *)in + i, len - i < chunk ? len - i : chunk);
	}
	finish(g, &s);
	return s;
}

static void assert_same(const struct got *g, const struct got *want)
{
	assert_int_equal(g->n, want->n);
	assert_int_equal(g->replies, want->replies);
	assert_int_equal(g->pushes, want->pushes);
	assert_int_equal(g->errors, want->errors);
	assert_int_equal(g->unparsed, want->unparsed);
	assert_memory_equal(g->err_class_n, want->err_class_n, sizeof(g->err_class_n));
	for (int i = 0; i < g->n; i++) {
		assert_int_equal(g->type[i], want->type[i]);
		assert_int_equal(g->err_class[i], want->err_class[i]);
		assert_int_equal(g->bytes[i], want->bytes[i]);
	}
}

/* One byte at a time, every single split point, growing chunks; fast path on and off. */
static void same_results(const char *in, size_t len, const struct got *want)
{
	static struct got g;

	for (int fast = 0; fast < 2; fast++) {
		fast_path = fast;
		scan(in, len, 1, 0, &g);
		assert_same(&g, want);
		for (size_t cut = 1; cut < len; cut++) {
			scan(in, len, 0, cut, &g);
			assert_same(&g, want);
		}
		for (size_t chunk = 2; chunk <= len; chunk = chunk < 16 ? chunk + 1 : chunk * 2) {
			scan(in, len, chunk, 0, &g);
			assert_same(&g, want);
		}
	}
	fast_path = true;
}

#define S(x) x, sizeof(x) - 1

static void resp2_scalars(void **state)
{
	static const char in[] = "+OK\r\n"
				 ":42\r\n"
				 "$3\r\nfoo\r\n"
				 "$-1\r\n"
				 "*-1\r\n"
				 "*0\r\n"
				 "$0\r\n\r\n"
				 "-ERR unknown command 'FOO'\r\n"
				 "+a\rb\r\r\n"; /* a lone '\r' is text */
	static struct got g;
	struct sy_reply_scan s;

	(void)state;
	s = scan(S(in), 0, 0, &g);
	assert_int_equal(g.n, 9);
	assert_int_equal(s.replies, 9);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.err_class[SY_ERR_ERR], 1);
	assert_int_equal(s.unparsed, 0);
	assert_memory_equal(g.type, "+:$$**$-+", 9);
	assert_int_equal(g.err_class[7], SY_ERR_ERR);
	assert_int_equal(g.err_class[0], -1);
	assert_int_equal(g.bytes[0], 5);
	assert_int_equal(g.bytes[2], 9);
	assert_int_equal(g.bytes[6], 6);
	assert_int_equal(g.bytes[8], 7);
	assert_int_equal(s.r.pending, 0);
	assert_int_equal(s.r.state, SY_RP_TYPE);
	same_results(S(in), &g);
}

/* An EXEC answer holding an error is one reply, and no error: the error belongs to
 * a queued command, the reply to EXEC. Nesting deeper than any stack. */
static void nested_aggregates(void **state)
{
	static char in[8192];
	static struct got g;
	struct sy_reply_scan s;
	size_t n = 0;

	(void)state;
	n += (size_t)sprintf(in + n, "*3\r\n+OK\r\n-ERR in exec\r\n*2\r\n$2\r\nab\r\n*0\r\n");
	for (int i = 0; i < 500; i++) /* 500 levels deep */
		n += (size_t)sprintf(in + n, "*2\r\n:%d\r\n", i);
	n += (size_t)sprintf(in + n, "$-1\r\n");
	n += (size_t)sprintf(in + n, "-MOVED 3999 127.0.0.1:6381\r\n");
	s = scan(in, n, 0, 0, &g);
	assert_int_equal(g.n, 3);
	assert_int_equal(s.replies, 3);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.err_class[SY_ERR_MOVED], 1);
	assert_memory_equal(g.type, "**-", 3);
	assert_int_equal(g.err_class[0], -1);
	assert_int_equal(s.unparsed, 0);
	same_results(in, n, &g);
}

/* The case: 50 pipelined answers, errors at positions 1, 17 and 50 of three
 * classes, counted exactly and classed. */
static void fifty_with_three_errors(void **state)
{
	static char in[4096];
	static struct got g;
	struct sy_reply_scan s;
	size_t n = 0;

	(void)state;
	for (int i = 1; i <= 50; i++) {
		if (i == 1)
			n += (size_t)sprintf(in + n, "-ERR value is not an integer or out of range\r\n");
		else if (i == 17)
			n += (size_t)sprintf(in + n, "-ASK 3999 127.0.0.1:6381\r\n");
		else if (i == 50)
			n += (size_t)sprintf(in + n,
					     "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
		else if (i % 3 == 0)
			n += (size_t)sprintf(in + n, "$5\r\nv%04d\r\n", i);
		else
			n += (size_t)sprintf(in + n, ":%d\r\n", i);
	}
	s = scan(in, n, 0, 0, &g);
	assert_int_equal(s.replies, 50);
	assert_int_equal(s.errors, 3);
	assert_int_equal(g.err_class[0], SY_ERR_ERR);
	assert_int_equal(g.err_class[16], SY_ERR_MOVED);
	assert_int_equal(g.err_class[49], SY_ERR_OOM);
	for (int i = 0; i < 50; i++)
		if (i != 0 && i != 16 && i != 49)
			assert_int_equal(g.err_class[i], -1);
	same_results(in, n, &g);
}

static void error_classes(void **state)
{
	static const char in[] = "-ERR x\r\n"
				 "-MOVED 1 a:1\r\n"
				 "-ASK 1 a:1\r\n"
				 "-OOM x\r\n"
				 "-NOAUTH Authentication required.\r\n"
				 "-WRONGPASS invalid username-password pair\r\n"
				 "-READONLY You can't write against a read only replica.\r\n"
				 "-WRONGTYPE Operation against a key\r\n"
				 "-READONLYX x\r\n" /* a longer word is another word */
				 "-ERR\r\n"	    /* a word alone */
				 "-\r\n"	    /* no word */
				 "-ABCDEFGHIJKLMNOPQRSTUVWXYZ long\r\n"
				 "!9\r\nERR blob!\r\n"; /* RESP3 blob error */
	static struct got g;
	struct sy_reply_scan s;
	static const int want[] = {SY_ERR_ERR,	  SY_ERR_MOVED,	   SY_ERR_MOVED, SY_ERR_OOM,   SY_ERR_NOAUTH,
				   SY_ERR_NOAUTH, SY_ERR_READONLY, SY_ERR_OTHER, SY_ERR_OTHER, SY_ERR_ERR,
				   SY_ERR_OTHER,  SY_ERR_OTHER,	   SY_ERR_OTHER};

	(void)state;
	s = scan(S(in), 0, 0, &g);
	assert_int_equal(g.n, 13);
	assert_int_equal(s.errors, 13);
	for (int i = 0; i < 13; i++)
		assert_int_equal(g.err_class[i], want[i]);
	same_results(S(in), &g);
}

static void resp3_types(void **state)
{
	static const char in[] = "%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*2\r\n_\r\n,1.5\r\n" /* map */
				 "~2\r\n#t\r\n(123456789012345678901234567890\r\n"  /* set */
				 ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"   /* push */
				 "|1\r\n+key-popularity\r\n*0\r\n:7\r\n"	    /* attribute, then 7 */
				 "=15\r\ntxt:Some string\r\n"			    /* verbatim */
				 "_\r\n";
	static struct got g;
	struct sy_reply_scan s;

	(void)state;
	s = scan(S(in), 0, 0, &g);
	assert_int_equal(g.n, 6);
	assert_memory_equal(g.type, "%~>|=_", 6);
	assert_int_equal(s.replies, 5); /* the push answers no request */
	assert_int_equal(s.pushes, 1);
	assert_int_equal(s.errors, 0);
	assert_int_equal(s.unparsed, 0);
	same_results(S(in), &g);
}

/* A bulk's bytes are skipped in one step, whatever their size. */
static void one_mib_bulk_is_skipped(void **state)
{
	static char in[(1 << 20) + 64];
	static struct got g;
	struct sy_reply_scan s;
	size_t n = (size_t)sprintf(in, "$%d\r\n", 1 << 20);

	(void)state;
	memset(in + n, '-', 1 << 20);
	n += 1 << 20;
	n += (size_t)sprintf(in + n, "\r\n+OK\r\n");
	s = scan(in, n, 0, 0, &g);
	assert_int_equal(s.replies, 2);
	assert_int_equal(s.errors, 0);
	assert_true(s.byte_steps < 32);
	s = scan(in, n, 1000, 0, &g);
	assert_int_equal(s.replies, 2);
	assert_int_equal(g.bytes[0], n - 5);
}

static void protocol_errors_resynchronise(void **state)
{
	static const char in[] = "?what\r\n+OK\r\n"
				 "$-2\r\n:1\r\n"	    /* only -1 is a null */
				 "$1x\r\n:2\r\n"	    /* a length is digits */
				 "*\r\n:3\r\n"		    /* with at least one */
				 "$2\rX\r\n:4\r\n"	    /* a length line ends in "\r\n" */
				 "*1099511627777\r\n:5\r\n" /* over 2^40 */
				 "*1099511627776\r\n"	    /* 2^40: still a length, */
				 "\r\n+OK\r\n";		    /* but no element */
	static struct got g;
	struct sy_reply_scan s;

	(void)state;
	s = scan(S(in), 0, 0, &g);
	assert_int_equal(s.unparsed, 7);
	/* the lines after each error (a failed reply never ends) */
	assert_int_equal(g.n, 7);
	assert_memory_equal(g.type, "+:::::+", 7);
	assert_int_equal(s.replies, 7 + 6); /* the six that failed had begun */
	assert_int_equal(s.r.pending, 0);
	same_results(S(in), &g);
}

/* 100 000 answers in one stream (one write on the server's side) are all counted. */
static void hundred_thousand_answers(void **state)
{
	static char in[100000 * 16];
	static struct got g;
	struct sy_reply_scan s;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 100000; i++)
		n += (size_t)sprintf(in + n,
				     i % 1000 == 999 ? "-ERR no\r\n"
				     : (i & 1)	     ? ":%d\r\n"
						     : "+OK\r\n",
				     i);
	s = scan(in, n, 0, 0, &g);
	assert_int_equal(s.replies, 100000);
	assert_int_equal(s.errors, 100);
	for (size_t chunk = 1460; chunk < 70000; chunk *= 3) {
		s = scan(in, n, chunk, 0, &g);
		assert_int_equal(s.replies, 100000);
		assert_int_equal(s.errors, 100);
		assert_int_equal(s.unparsed, 0);
	}
}

/* The fast path: a short line or a bulk header (and its bulk) is one step. */
static void fast_path_takes_one_step_per_reply(void **state)
{
	static const char in[] =
		"+OK\r\n:1000\r\n$5\r\nhello\r\n+OK\r\n$-1\r\n+a line longer than sixteen\r\n";
	static struct got g;
	struct sy_reply_scan s;

	(void)state;
	s = scan(S(in), 0, 0, &g);
	assert_int_equal(s.replies, 6);
	/* "$-1" and the long line go byte by byte, the rest take none */
	assert_int_equal(s.byte_steps, 5 + sizeof("+a line longer than sixteen\r\n") - 1);
	same_results(S(in), &g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(resp2_scalars),
		cmocka_unit_test(nested_aggregates),
		cmocka_unit_test(fifty_with_three_errors),
		cmocka_unit_test(error_classes),
		cmocka_unit_test(resp3_types),
		cmocka_unit_test(one_mib_bulk_is_skipped),
		cmocka_unit_test(protocol_errors_resynchronise),
		cmocka_unit_test(hundred_thousand_answers),
		cmocka_unit_test(fast_path_takes_one_step_per_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
