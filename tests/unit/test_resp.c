// SPDX-License-Identifier: Apache-2.0
/* test_resp.c — the RESP request machine (resp.h) driven on the host as the kernel
 * drives it (resp_scan.c), and the command table (commands.c). Every stream test
 * checks exact results, then that every chunking (one byte at a time, every split
 * point, growing chunks) with the header fast paths on and off gives the same ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "redis/commands.h"
#include "redis/resp_scan.h"
#include "switchyard/resp.h"

#define MAX_GOT 256

struct got {
	int n;
	char line[MAX_GOT][200]; /* "NAME class key=K[T] inline" */
	uint64_t bytes[MAX_GOT];
	int first_key[MAX_GOT];
	size_t key_len[MAX_GOT];
	uint64_t unparsed;
};

static bool names_only; /* scan as the kernel does for a keyless, capture-free migration */

static void record(const struct sy_resp_cmd *c, void *arg)
{
	struct got *g = arg;

	if (g->n >= MAX_GOT)
		return;
	snprintf(g->line[g->n], sizeof(g->line[0]), "%.*s %d %s%.*s%s%s", (int)c->name_len, c->name, c->class,
		 c->has_key ? "key=" : "", c->has_key ? (int)(c->key_len > 40 ? 40 : c->key_len) : 0,
		 c->has_key ? (const char *)c->key : "", c->key_truncated ? "[T]" : "",
		 c->is_inline ? " inline" : "");
	g->bytes[g->n] = c->bytes;
	g->first_key[g->n] = c->first_key;
	g->key_len[g->n] = c->has_key ? c->key_len : 0;
	g->n++;
}

/* Feeds in[0..len) cut at the given points (sorted, in (0, len)). */
static struct sy_resp_scan scan_cuts(const char *in, size_t len, const size_t *cuts, int ncuts, bool fast,
				     struct got *g)
{
	struct sy_resp_scan s;
	size_t from = 0;

	memset(g, 0, sizeof(*g));
	sy_resp_scan_init(&s, fast, record, g);
	s.names_only = names_only;
	for (int i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		sy_resp_scan_feed(&s, (const uint8_t *)in + from, to - from);
		from = to;
	}
	g->unparsed = s.unparsed;
	return s;
}

/* Feeds `in` in chunks of `chunk` bytes (0 = whole). */
static struct sy_resp_scan scan(const char *in, size_t len, size_t chunk, bool fast, struct got *g)
{
	struct sy_resp_scan s;

	memset(g, 0, sizeof(*g));
	sy_resp_scan_init(&s, fast, record, g);
	s.names_only = names_only;
	if (!chunk)
		chunk = len ? len : 1;
	for (size_t i = 0; i < len; i += chunk)
		sy_resp_scan_feed(&s, (const uint8_t *)in + i, len - i < chunk ? len - i : chunk);
	g->unparsed = s.unparsed;
	return s;
}

static void assert_same(const struct got *g, const struct got *want)
{
	assert_int_equal(g->n, want->n);
	assert_int_equal(g->unparsed, want->unparsed);
	for (int i = 0; i < g->n; i++) {
		assert_string_equal(g->line[i], want->line[i]);
		assert_int_equal(g->bytes[i], want->bytes[i]);
		assert_int_equal(g->first_key[i], want->first_key[i]);
		assert_int_equal(g->key_len[i], want->key_len[i]);
	}
}

/* One byte at a time, every single split point, growing chunks; fast paths on and off. */
static void same_results(const char *in, size_t len, const struct got *want)
{
	static struct got g, ref;

	/* names_only: no first key is read, and whole commands take one fast step; the
	 * same commands of the same lengths, against the byte path's answer */
	for (int no = 0; no < 2; no++) {
		const struct got *w = want;

		names_only = no;
		if (no) {
			scan(in, len, 1, false, &ref);
			assert_int_equal(ref.n, want->n);
			assert_int_equal(ref.unparsed, want->unparsed);
			for (int i = 0; i < ref.n; i++)
				assert_int_equal(ref.bytes[i], want->bytes[i]);
			w = &ref;
		}
		for (int fast = 0; fast < 2; fast++) {
			scan(in, len, 1, fast, &g);
			assert_same(&g, w);
			for (size_t cut = 1; cut < len; cut++) {
				scan_cuts(in, len, &cut, 1, fast, &g);
				assert_same(&g, w);
			}
			for (size_t chunk = 2; chunk <= len; chunk = chunk < 16 ? chunk + 1 : chunk * 2) {
				scan(in, len, chunk, fast, &g);
				assert_same(&g, w);
			}
		}
	}
	names_only = false;
}

#define S(x) x, sizeof(x) - 1

static void set_get_del_arrays(void **state)
{
	static const char in[] = "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$5\r\nhello\r\n"
				 "*2\r\n$3\r\nget\r\n$2\r\nk1\r\n"
				 "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n"
				 "*1\r\n$4\r\nPING\r\n"
				 "*2\r\n$6\r\nNOSUCH\r\n$1\r\nx\r\n";
	static struct got g;
	struct sy_resp_scan s;

	(void)state;
	s = scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 5);
	assert_string_equal(g.line[0], "SET 1 key=k1");
	assert_string_equal(g.line[1], "GET 0 key=k1");
	assert_string_equal(g.line[2], "DEL 1 key=a");
	assert_string_equal(g.line[3], "PING 2 ");
	assert_string_equal(g.line[4], "NOSUCH 2 ");
	assert_int_equal(g.bytes[0], 32);
	assert_int_equal(g.bytes[1], 21);
	assert_int_equal(g.bytes[2], 27);
	assert_int_equal(g.bytes[3], 14);
	assert_int_equal(g.bytes[4], 23);
	assert_int_equal(g.first_key[0], 1);
	assert_int_equal(g.first_key[3], 0);
	assert_int_equal(g.first_key[4], 0); /* unknown: no key */
	assert_int_equal(s.commands, 5);
	assert_int_equal(s.unparsed, 0);
	assert_int_equal(s.pos, sizeof(in) - 1);
	same_results(S(in), &g);
}

static void fifty_pipelined(void **state)
{
	char in[4096];
	size_t len = 0, lens[50];
	static struct got g;

	(void)state;
	for (int i = 0; i < 50; i++) {
		size_t was = len;

		len += (size_t)snprintf(in + len, sizeof(in) - len,
					"*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$1\r\nv\r\n", i < 10 ? 5 : 6, i);
		lens[i] = len - was;
	}
	scan(in, len, 0, true, &g);
	assert_int_equal(g.n, 50);
	for (int i = 0; i < 50; i++) {
		char want[32];

		snprintf(want, sizeof(want), "SET 1 key=key:%d", i);
		assert_string_equal(g.line[i], want);
		assert_int_equal(g.bytes[i], lens[i]);
	}
	same_results(in, len, &g);
}

static void inline_commands(void **state)
{
	static const char in[] = "\r\n\n\r\nSET a b\r\nPING\n  get a\r\n\tDEL x y\r\nHELLO\r\n";
	static struct got g;

	(void)state;
	scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 5);
	assert_string_equal(g.line[0], "SET 1 key=a inline");
	assert_string_equal(g.line[1], "PING 2  inline");
	assert_string_equal(g.line[2], "GET 0 key=a inline");
	assert_string_equal(g.line[3], "DEL 1 key=x inline");
	assert_string_equal(g.line[4], "HELLO 2  inline");
	assert_int_equal(g.bytes[0], 9); /* from 'S' to '\n': leading empty lines are no command */
	assert_int_equal(g.bytes[1], 5);
	assert_int_equal(g.bytes[2], 9); /* blanks start an inline command: "  get a\r\n" */
	assert_int_equal(g.unparsed, 0);
	same_results(S(in), &g);
}

static void multi_exec(void **state)
{
	static const char in[] =
		"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nEXEC\r\n";
	static struct got g;
	struct sy_resp_scan s;

	(void)state;
	s = scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.line[0], "MULTI 2 ");
	assert_string_equal(g.line[1], "SET 1 key=k");
	assert_string_equal(g.line[2], "EXEC 2 ");
	assert_int_equal(s.r.cmd_flags, SY_CMDF_TXN_EXEC);
	same_results(S(in), &g);
}

static void one_mib_value_is_skipped(void **state)
{
	size_t v = 1 << 20, len;
	char *in = malloc(v + 64);
	static struct got g;
	struct sy_resp_scan s;
	const size_t chunks[] = {0, 1, 1000, 7000, 65536, 343000};

	(void)state;
	assert_non_null(in);
	len = (size_t)sprintf(in, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", v);
	memset(in + len, 'x', v);
	len += v;
	memcpy(in + len, "\r\n*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 24);
	len += 24;
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		for (int fast = 0; fast < 2; fast++) {
			s = scan(in, len, chunks[i], fast, &g);
			assert_int_equal(g.n, 2);
			assert_string_equal(g.line[0], "SET 1 key=big");
			assert_string_equal(g.line[1], "GET 0 key=big");
			assert_int_equal(g.bytes[0], len - 22); /* its "\r\n" belongs to the SET */
			assert_int_equal(g.bytes[1], 22);
			/* the value was never looked at byte by byte, whatever the chunks */
			assert_true(s.byte_steps < 100);
		}
	}
	free(in);
}

static void long_names_and_keys(void **state)
{
	char in[1024], key[300];
	size_t len;
	static struct got g;
	struct sy_resp_scan s;

	(void)state;
	memset(key, 'k', 200);
	key[200] = 0;
	len = (size_t)sprintf(in,
			      "*2\r\n$3\r\nGET\r\n$200\r\n%s\r\n"
			      "*2\r\n$3\r\nGET\r\n$128\r\n%.128s\r\n"
			      "*1\r\n$30\r\nABCDEFGHIJABCDEFGHIJABCDEFGHIJ\r\n"
			      "*1\r\n$24\r\nABCDEFGHIJABCDEFGHIJABCD\r\n"
			      "GETABCDEFGHIJABCDEFGHIJABCD k\r\n",
			      key, key);
	s = scan(in, len, 0, true, &g);
	assert_int_equal(g.n, 5);
	assert_string_equal(g.line[0], "GET 0 key=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk[T]");
	assert_int_equal(g.key_len[0], SY_KEY_MAX); /* the first 128 bytes, flagged */
	assert_string_equal(g.line[1], "GET 0 key=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
	assert_int_equal(g.key_len[1], SY_KEY_MAX);		       /* exactly 128: whole, not flagged */
	assert_string_equal(g.line[2], "ABCDEFGHIJABCDEFGHIJABCD 2 "); /* 24 bytes kept, unknown */
	assert_string_equal(g.line[3], "ABCDEFGHIJABCDEFGHIJABCD 2 ");
	assert_string_equal(g.line[4], "GETABCDEFGHIJABCDEFGHIJA 2  inline");
	assert_int_equal(s.unparsed, 0);
	same_results(in, len, &g);
}

/* The kernel looks names up as zero-padded 24-byte keys: the host must agree. */
static void names_with_nul_bytes(void **state)
{
	static const char in[] = "*2\r\n$5\r\nGET\0X\r\n$1\r\nk\r\n"
				 "*2\r\n$4\r\nGET\0\r\n$1\r\nk\r\n"
				 "*2\r\n$0\r\n\r\n$1\r\nk\r\n";
	static struct got g;

	(void)state;
	scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.first_key[0], 0);	  /* "GET\0X": no table entry */
	assert_string_equal(g.line[0], "GET 2 "); /* printed up to its NUL */
	assert_string_equal(g.line[1], "GET 0 key=k");
	assert_int_equal(g.first_key[1], 1); /* "GET\0": the padding of "GET" */
	assert_int_equal(g.first_key[2], 0); /* empty name */
	same_results(S(in), &g);
}

/* Streams that switch names, repeat them, change case, shrink and grow them, and
 * empty them: every chunking gives the byte path's answer. */
static void names_repeated_and_changed(void **state)
{
	static const char in[] =
		"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
		"*2\r\n$3\r\nget\r\n$1\r\nc\r\n*3\r\n$6\r\nGETSET\r\n$1\r\nd\r\n$1\r\nv\r\n"
		"*2\r\n$3\r\nGET\r\n$1\r\ne\r\n*2\r\n$3\r\nGE\0\r\n$1\r\nf\r\n"
		"*2\r\n$2\r\nGE\r\n$1\r\ng\r\n*2\r\n$0\r\n\r\n$1\r\nh\r\n"
		"*2\r\n$3\r\nGET\r\n$1\r\ni\r\n"
		"*2\r\n$20\r\nCLIENTXXXXXXXXXXXXXX\r\n$1\r\nj\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
		"GET l\r\n*2\r\n$3\r\nGET\r\n$1\r\nm\r\n";
	static struct got g;

	(void)state;
	scan(S(in), 1, false, &g);
	assert_int_equal(g.n, 13);
	assert_string_equal(g.line[1], "GET 0 key=b");
	assert_string_equal(g.line[2], "GET 0 key=c");
	assert_string_equal(g.line[4], "GET 0 key=e");
	assert_int_equal(g.first_key[7], 0); /* empty name */
	assert_string_equal(g.line[8], "GET 0 key=i");
	assert_string_equal(g.line[10], "GET 0 key=k");
	assert_string_equal(g.line[12], "GET 0 key=m");
	same_results(S(in), &g);
}

static void empty_and_null_arrays_are_nothing(void **state)
{
	static const char in[] = "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n*0\r\n";
	static struct got g;
	struct sy_resp_scan s;

	(void)state;
	s = scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "PING 2 ");
	assert_int_equal(g.bytes[0], 14);
	assert_int_equal(s.unparsed, 0);
	same_results(S(in), &g);
}

static void errors_resynchronise(void **state)
{
	static const char *bad[] = {
		"*2\r\n$3\r\nGET\r\nX\r\n",   /* '$' expected */
		"*x\r\n",		      /* count */
		"*1\r\n$536870913\r\n",	      /* bulk over 512 MiB */
		"*1073741825\r\n",	      /* argc over 2^30 */
		"*99999999999\r\n",	      /* argc past 32 bits */
		"*2\r\n$3\r\nGET\r\n$-1\r\n", /* negative bulk */
		"*1\r\n$3X\r\n",	      /* junk in a length */
		"*1\r\n$\r\n",		      /* no digits */
		"*1\r\r\n",		      /* '\n' expected */
	};
	const char *good = "*2\r\n$3\r\nGET\r\n$4\r\nnext\r\n";
	static struct got g;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char in[256];
		size_t len = (size_t)snprintf(in, sizeof(in), "%s%s", bad[i], good);

		scan(in, len, 0, true, &g);
		assert_int_equal(g.unparsed, 1);
		assert_int_equal(g.n, 1);
		assert_string_equal(g.line[0], "GET 0 key=next");
		assert_int_equal(g.bytes[0], strlen(good));
		same_results(in, len, &g);
	}
}

/* The limits themselves are allowed: 512 MiB of bulk, 2^30 arguments. */
static void limits_are_inclusive(void **state)
{
	static const char in[] = "*1\r\n$536870912\r\n";
	static const char argc[] = "*1073741824\r\n$3\r\nDEL\r\n$1\r\nk\r\n";
	static struct got g;
	struct sy_resp_scan s;

	(void)state;
	s = scan(S(in), 0, true, &g);
	assert_int_equal(s.unparsed, 0);
	assert_int_equal(s.r.state, SY_RS_DATA);
	assert_int_equal(sy_resp_skippable(&s.r), 0); /* the name is still to be read */
	s = scan(S(argc), 0, true, &g);
	assert_int_equal(s.unparsed, 0);
	assert_int_equal(s.r.argc, 1u << 30);
	assert_int_equal(g.n, 0); /* still waiting for the other arguments */
}

/* Garbage straight after a command, with no line end: the resync drops the rest of
 * the line, which is the next command's "*2" header, so its lines read as inline
 * commands; the one after is parsed again. (Redis closes such a connection.) */
static void error_without_line_end(void **state)
{
	static const char in[] =
		"*2\r\n$3\r\nGET\r\nX*2\r\n$3\r\nGET\r\n$4\r\nnext\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
	static struct got g;

	(void)state;
	scan(S(in), 0, true, &g);
	assert_int_equal(g.unparsed, 1);
	assert_int_equal(g.n, 5);
	assert_string_equal(g.line[0], "$3 2  inline");
	assert_string_equal(g.line[1], "GET 0  inline");
	assert_string_equal(g.line[2], "$4 2  inline");
	assert_string_equal(g.line[3], "NEXT 2  inline");
	assert_string_equal(g.line[4], "GET 0 key=k");
	same_results(S(in), &g);
}

static void inline_over_64k_is_an_error(void **state)
{
	size_t n = SY_RESP_MAX_INLINE + 10, len;
	char *in = malloc(n + 64);
	static struct got g;

	(void)state;
	assert_non_null(in);
	memset(in, 'a', n);
	len = n + (size_t)sprintf(in + n, "\r\nPING\r\n");
	scan(in, len, 0, true, &g);
	assert_int_equal(g.unparsed, 1);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "PING 2  inline");
	scan(in, len, 4096, false, &g);
	assert_int_equal(g.unparsed, 1);
	assert_int_equal(g.n, 1);
	free(in);
}

/* First keys from the stream, as the kernel reads them. */
static void first_keys_in_the_stream(void **state)
{
	static const char in[] =
		"*6\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n2\r\n$2\r\nk1\r\n$2\r\nk2\r\n$1\r\na\r\n"
		"*5\r\n$11\r\nZUNIONSTORE\r\n$3\r\ndst\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\nb\r\n"
		"*4\r\n$5\r\nXREAD\r\n$7\r\nSTREAMS\r\n$1\r\ns\r\n$1\r\n0\r\n"
		"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
		"*1\r\n$3\r\nGET\r\n";
	static struct got g;

	(void)state;
	scan(S(in), 0, true, &g);
	assert_int_equal(g.n, 5);
	assert_string_equal(g.line[0], "EVAL 1 key=k1");
	assert_int_equal(g.first_key[0], 3);
	assert_string_equal(g.line[1], "ZUNIONSTORE 1 key=dst");
	assert_string_equal(g.line[2], "XREAD 0 "); /* STREAMS: no first key for the kernel */
	assert_string_equal(g.line[3], "MSET 1 key=a");
	assert_string_equal(g.line[4], "GET 0 "); /* the key never came */
	same_results(S(in), &g);
}

static void table_lookup_and_kernel_info(void **state)
{
	const struct sy_command *c;
	struct sy_cmd_info ki;

	(void)state;
	assert_non_null(c = sy_command_find("get", 3));
	assert_string_equal(c->name, "GET");
	assert_int_equal(c->class, SY_CLASS_READ);
	assert_ptr_equal(sy_command_find("GeT", 3), c);
	assert_null(sy_command_find("GETX", 4));
	assert_null(sy_command_find("GE", 2));
	assert_null(sy_command_find("GET\0", 4));
	assert_null(sy_command_find("", 0));
	assert_null(sy_command_find("GEORADIUSBYMEMBER_RO_LONGER", 27));
	assert_non_null(sy_command_find("georadiusbymember_ro", 20));

	assert_int_equal(sy_command_kernel_info(sy_command_find("SET", 3), &ki), 0);
	assert_int_equal(ki.class, SY_CLASS_WRITE);
	assert_int_equal(ki.first_key, 1);
	sy_command_kernel_info(sy_command_find("EVAL", 4), &ki);
	assert_int_equal(ki.first_key, 3);
	assert_int_equal(ki.flags, SY_CMDF_NUMKEYS | SY_CMDF_NONDET);
	sy_command_kernel_info(sy_command_find("SINTERCARD", 10), &ki);
	assert_int_equal(ki.first_key, 2);
	sy_command_kernel_info(sy_command_find("ZUNIONSTORE", 11), &ki);
	assert_int_equal(ki.first_key, 1);
	sy_command_kernel_info(sy_command_find("XREADGROUP", 10), &ki);
	assert_int_equal(ki.first_key, 0);
	assert_int_equal(ki.class, SY_CLASS_WRITE);
	sy_command_kernel_info(sy_command_find("PING", 4), &ki);
	assert_int_equal(ki.first_key, 0);
	assert_int_equal(ki.class, SY_CLASS_OTHER);
	sy_command_kernel_info(sy_command_find("SELECT", 6), &ki);
	assert_int_equal(ki.flags, SY_CMDF_SELECT);
}

/* Commands that may carry a password: in the kernel's view (the parser driven with the
 * table's info, as observe.bpf.c does) they are "other" with no key, whatever the
 * stream looks like, so nothing of them is captured or sampled. */
static void credentials_are_never_keys_nor_writes(void **state)
{
	static const char in[] =
		"*2\r\n$4\r\nAUTH\r\n$11\r\nPW-s3cret-1\r\n"
		"*3\r\n$4\r\nauth\r\n$4\r\nuser\r\n$11\r\nPW-s3cret-2\r\n"
		"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$11\r\nPW-s3cret-3\r\n"
		"*9\r\n$7\r\nMIGRATE\r\n$1\r\nh\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n0\r\n"
		"$1\r\n9\r\n$5\r\nAUTH2\r\n$1\r\nu\r\n$11\r\nPW-s3cret-4\r\n"
		"AUTH PW-s3cret-5\r\n"
		"*3\r\n$3\r\nACL\r\n$7\r\nSETUSER\r\n$11\r\nPW-s3cret-6\r\n";
	static const char *const secret[] = {"AUTH", "HELLO", "MIGRATE", "ACL", "CONFIG"};
	struct got g;

	(void)state;
	scan_cuts(in, sizeof(in) - 1, NULL, 0, true, &g);
	assert_int_equal(g.n, 6);
	for (int i = 0; i < g.n; i++) {
		assert_int_equal(g.first_key[i], 0);
		assert_int_equal(g.key_len[i], 0);
		assert_null(strstr(g.line[i], "s3cret"));
		assert_int_equal(g.line[i][strcspn(g.line[i], " ") + 1] - '0', SY_CLASS_OTHER);
	}
	same_results(in, sizeof(in) - 1, &g);
	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
		const struct sy_command *c = sy_command_find(secret[i], strlen(secret[i]));
		struct sy_cmd_info ki;

		assert_non_null(c);
		assert_true(c->flags & SY_CMDF_SECRET);
		assert_int_equal(sy_command_kernel_info(c, &ki), 0);
		assert_int_equal(ki.class, SY_CLASS_OTHER);
		assert_int_equal(ki.first_key, 0);
		assert_false(ki.flags &
			     (SY_CMDF_SELECT | SY_CMDF_TXN_MULTI | SY_CMDF_TXN_EXEC | SY_CMDF_TXN_DISCARD));
	}
}

/* sy_command_keys on one command line; returns its result, keys in idx. */
static int keys_of(const char *line, int *idx, int max)
{
	static char buf[512];
	const char *argv[32];
	size_t lens[32];
	int argc = 0;
	const struct sy_command *c;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok(buf, " "); t && argc < 32; t = strtok(NULL, " ")) {
		argv[argc] = t;
		lens[argc++] = strlen(t);
	}
	c = sy_command_find(argv[0], lens[0]);
	assert_non_null(c);
	return sy_command_keys(c, argc, argv, lens, idx, max);
}

#define KEYS(line, ...)                                                                                      \
	do {                                                                                                 \
		const int want_[] = {__VA_ARGS__};                                                           \
		int got_[32];                                                                                \
		int n_ = keys_of(line, got_, 32);                                                            \
		assert_int_equal(n_, sizeof(want_) / sizeof(want_[0]));                                      \
		for (int i_ = 0; i_ < n_; i_++)                                                              \
			assert_int_equal(got_[i_], want_[i_]);                                               \
	} while (0)

static void key_positions(void **state)
{
	int idx[32];

	(void)state;
	KEYS("GET k", 1);
	KEYS("SET k v EX 10", 1);
	KEYS("DEL a b c", 1, 2, 3);
	KEYS("MSET a 1 b 2 c 3", 1, 3, 5);
	KEYS("BLPOP a b 0", 1, 2);
	KEYS("LCS a b", 1, 2);
	KEYS("BITOP AND dst a b", 2, 3, 4);
	KEYS("EVAL return 2 k1 k2 arg", 3, 4);
	KEYS("EVALSHA abc 1 k1", 3);
	KEYS("ZUNIONSTORE dst 2 s1 s2 WEIGHTS 1 2", 1, 3, 4);
	KEYS("ZINTER 3 a b c", 2, 3, 4);
	KEYS("SINTERCARD 2 a b LIMIT 1", 2, 3);
	KEYS("BLMPOP 0 2 a b LEFT", 3, 4);
	KEYS("XREAD COUNT 2 STREAMS s1 s2 0 0", 4, 5);
	KEYS("XREAD streams s 0", 2);
	KEYS("XREADGROUP GROUP streams c BLOCK 0 NOACK STREAMS s $", 8);
	assert_int_equal(keys_of("PING", idx, 32), 0);
	assert_int_equal(keys_of("EVAL return 0", idx, 32), 0);

	/* argument lists the command cannot have */
	assert_int_equal(keys_of("GET", idx, 32), -EINVAL);
	assert_int_equal(keys_of("DEL", idx, 32), -EINVAL);
	assert_int_equal(keys_of("LCS a", idx, 32), -EINVAL);
	assert_int_equal(keys_of("BLPOP 0", idx, 32), -EINVAL);
	assert_int_equal(keys_of("MSET a 1 b", idx, 32), -EINVAL);
	assert_int_equal(keys_of("EVAL x 5 a", idx, 32), -EINVAL);
	assert_int_equal(keys_of("EVAL x -1 a", idx, 32), -EINVAL);
	assert_int_equal(keys_of("EVAL x 1a a", idx, 32), -EINVAL);
	assert_int_equal(keys_of("EVAL x", idx, 32), -EINVAL);
	assert_int_equal(keys_of("EVAL x 99999999999 a", idx, 32), -EINVAL);
	assert_int_equal(keys_of("ZUNIONSTORE dst", idx, 32), -EINVAL);
	assert_int_equal(keys_of("XREAD COUNT 2", idx, 32), -EINVAL);
	assert_int_equal(keys_of("XREAD STREAMS", idx, 32), -EINVAL);
	assert_int_equal(keys_of("XREAD STREAMS a b c", idx, 32), -EINVAL);
	assert_int_equal(keys_of("XREADGROUP GROUP STREAMS", idx, 32), -EINVAL);

	/* more keys than room: an error, and nothing written past idx[max - 1] */
	idx[2] = -1;
	assert_int_equal(keys_of("DEL a b c", idx, 2), -E2BIG);
	assert_int_equal(idx[2], -1);
	assert_int_equal(keys_of("ZUNIONSTORE dst 2 a b", idx, 0), -E2BIG);
	assert_int_equal(keys_of("ZUNIONSTORE dst 2 a b", idx, 2), -E2BIG);
	assert_int_equal(keys_of("XREAD STREAMS a b 0 0", idx, 1), -E2BIG);
	assert_int_equal(sy_command_keys(sy_command_find("GET", 3), 0, NULL, NULL, idx, 32), -EINVAL);
}

/* The static check of the table: names unique and within SY_CMD_NAME_MAX (commands.c
 * also refuses to compile otherwise), sane classes and key specs. */
static void table_has_unique_names_that_fit(void **state)
{
	(void)state;
	assert_true(sy_command_count() > 150);
	assert_null(sy_command_at(sy_command_count()));
	for (size_t i = 0; i < sy_command_count(); i++) {
		const struct sy_command *c = sy_command_at(i);
		struct sy_cmd_info ki;

		assert_true(strlen(c->name) > 0 && strlen(c->name) <= SY_CMD_NAME_MAX);
		for (const char *p = c->name; *p; p++)
			assert_true((*p >= 'A' && *p <= 'Z') || *p == '_');
		assert_true(c->class == SY_CLASS_READ || c->class == SY_CLASS_WRITE ||
			    c->class == SY_CLASS_OTHER);
		if (i)
			assert_true(strcmp(sy_command_at(i - 1)->name, c->name) < 0); /* sorted, no twins */
		assert_ptr_equal(sy_command_find(c->name, strlen(c->name)), c);
		assert_int_equal(sy_command_kernel_info(c, &ki), 0);
		assert_true(c->first >= 0 && c->step >= 0);
		if (c->first && !(c->flags & SY_CMDF_NUMKEYS))
			assert_true(c->last < 0 || c->last >= c->first);
		if (c->flags & SY_CMDF_DEST1)
			assert_true(c->flags & SY_CMDF_NUMKEYS);
	}
}

/* The common shapes (redis-benchmark's SET and GET) take one fast step per command
 * when nothing past the name is needed, and never the byte path. When the key is
 * kept: header + name, the key's header, the rest (SET's value) after the key. */
static void short_commands_take_one_fast_step(void **state)
{
	static char in[16 * 64];
	struct sy_resp_scan s;
	static struct got g;
	size_t len = 0;

	(void)state;
	for (int i = 0; i < 8; i++) {
		len += (size_t)snprintf(in + len, sizeof(in) - len,
					"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$3\r\nxxx\r\n", i);
		len += (size_t)snprintf(in + len, sizeof(in) - len, "*2\r\n$3\r\nGET\r\n$16\r\nkey:%012d\r\n",
					i);
	}
	for (int no = 1; no >= 0; no--) { /* the last pass, with keys, is the reference */
		memset(&g, 0, sizeof(g));
		sy_resp_scan_init(&s, true, record, &g);
		s.names_only = no;
		sy_resp_scan_feed(&s, (const uint8_t *)in, len);
		assert_int_equal(s.commands, 16);
		assert_int_equal(s.unparsed, 0);
		/* with keys, each key is read byte by byte: 16 bytes, 16 commands */
		assert_int_equal(s.byte_steps, no ? 0 : 16 * 16);
		assert_int_equal(s.fast_steps, no ? 16 : 16 * 3 - 8);
		assert_string_equal(g.line[0], no ? "SET 1 " : "SET 1 key=key:000000000000");
		assert_int_equal(g.bytes[0], 45);
		assert_int_equal(g.bytes[1], 36);
	}
	same_results(in, len, &g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(set_get_del_arrays),
		cmocka_unit_test(fifty_pipelined),
		cmocka_unit_test(short_commands_take_one_fast_step),
		cmocka_unit_test(inline_commands),
		cmocka_unit_test(multi_exec),
		cmocka_unit_test(one_mib_value_is_skipped),
		cmocka_unit_test(long_names_and_keys),
		cmocka_unit_test(names_with_nul_bytes),
		cmocka_unit_test(names_repeated_and_changed),
		cmocka_unit_test(empty_and_null_arrays_are_nothing),
		cmocka_unit_test(errors_resynchronise),
		cmocka_unit_test(limits_are_inclusive),
		cmocka_unit_test(error_without_line_end),
		cmocka_unit_test(inline_over_64k_is_an_error),
		cmocka_unit_test(first_keys_in_the_stream),
		cmocka_unit_test(table_lookup_and_kernel_info),
		cmocka_unit_test(credentials_are_never_keys_nor_writes),
		cmocka_unit_test(key_positions),
		cmocka_unit_test(table_has_unique_names_that_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
