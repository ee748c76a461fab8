// SPDX-License-Identifier: Apache-2.0
/* test_capture.c — the ring-buffer records' reassembly (kernel/capture.c,
 * sy_reasm_feed): per-command records and fragments as the kernel sends them, and
 * batch records (SY_EVF_BATCH) split into the commands a per-command record would have
 * carried: names, argc, bodies and command numbers, Redis's unchecked byte after '\r',
 * and malformed batches, which deliver what was whole and then one aborted capture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/capture.h"
#include "redis/commands.h"

#define MIG	3
#define COOKIE	0xc0ffee
#define MAX_GOT 16

struct got {
	struct sy_captured c;
	uint8_t body[256]; /* c.body points here */
};

struct sink {
	int n;
	struct got g[MAX_GOT];
};

static void on_captured(const struct sy_captured *c, void *arg)
{
	struct sink *s = arg;
	struct got *g;

	assert_true(s->n < MAX_GOT);
	g = &s->g[s->n++];
	g->c = *c;
	assert_true(c->len <= sizeof(g->body));
	if (c->len)
		memcpy(g->body, c->body, c->len);
	g->c.body = g->body;
}

struct fixture {
	struct sy_reasm *r;
	struct sink sink;
	struct sy_capture_stats per[SY_MAX_MIGRATIONS];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->r = sy_reasm_new(64, on_captured, &f->sink);
	assert_non_null(f->r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sy_reasm_free(f->r);
	free(f);
	return 0;
}

/* One record: a header as the kernel fills it, then `len` bytes. */
static int feed(struct fixture *f, uint8_t flags, uint32_t cmd_seq, uint32_t total, const char *name,
		uint32_t argc, uint32_t off, const void *bytes, size_t len)
{
	static uint8_t rec[sizeof(struct sy_ev_hdr) + 4096];
	struct sy_ev_hdr h;

	assert_true(len <= sizeof(rec) - sizeof(h));
	memset(&h, 0, sizeof(h));
	h.type = SY_EVT_WRITE;
	h.flags = flags;
	h.side = SY_SIDE_LEGACY;
	h.mig_id = MIG;
	h.cookie = COOKIE;
	h.ts_ns = 777;
	h.cmd_seq = cmd_seq;
	h.argc = argc;
	h.off = off;
	h.len = (uint32_t)len;
	h.total = total;
	if (name) {
		h.name_len = (uint8_t)strlen(name);
		memcpy(h.name, name, h.name_len);
	}
	memcpy(rec, &h, sizeof(h));
	memcpy(rec + sizeof(h), bytes, len);
	return sy_reasm_feed(f->r, rec, sizeof(h) + len, f->per);
}

#define BATCH_FLAGS (SY_EVF_FIRST | SY_EVF_LAST | SY_EVF_BATCH)

static int feed_batch(struct fixture *f, uint32_t cmd_seq, uint32_t total, const char *bytes, size_t len)
{
	return feed(f, BATCH_FLAGS, cmd_seq, total, NULL, 0, 0, bytes, len);
}

#define BATCH(f, seq, total, s) feed_batch(f, seq, total, s, sizeof(s) - 1)

static void got_cmd(const struct fixture *f, int i, const char *name, uint32_t argc, const char *body,
		    uint32_t cmd_seq)
{
	const struct sy_captured *c;

	assert_true(i < f->sink.n);
	c = &f->sink.g[i].c;
	assert_false(c->aborted);
	assert_false(c->truncated);
	assert_false(c->is_inline);
	assert_string_equal(c->name, name);
	assert_int_equal(c->argc, argc);
	assert_int_equal(c->len, strlen(body));
	assert_int_equal(c->total, strlen(body));
	assert_memory_equal(c->body, body, strlen(body));
	assert_int_equal(c->cmd_seq, cmd_seq);
	assert_int_equal(c->type, SY_EVT_WRITE);
	assert_int_equal(c->side, SY_SIDE_LEGACY);
	assert_int_equal(c->mig_id, MIG);
	assert_int_equal(c->cookie, COOKIE);
	assert_int_equal(c->ts_ns, 777);
}

static void got_abort(const struct fixture *f, int i, uint32_t cmd_seq)
{
	const struct sy_captured *c;

	assert_true(i < f->sink.n);
	c = &f->sink.g[i].c;
	assert_true(c->aborted);
	assert_int_equal(c->cmd_seq, cmd_seq);
	assert_int_equal(c->len, 0);
	assert_int_equal(c->mig_id, MIG);
	assert_int_equal(c->cookie, COOKIE);
}

#define SET_A "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
#define SET_B "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\n22\r\n"
#define SET_C "*3\r\n$3\r\nSET\r\n$3\r\nccc\r\n$3\r\n333\r\n"

static void three_sets(void **state)
{
	struct fixture *f = *state;
	const struct sy_capture_stats *st = &f->per[MIG];

	assert_int_equal(BATCH(f, 10, 3, SET_A SET_B SET_C), 0);
	assert_int_equal(f->sink.n, 3);
	got_cmd(f, 0, "SET", 3, "$1\r\na\r\n$1\r\n1\r\n", 10);
	got_cmd(f, 1, "SET", 3, "$1\r\nb\r\n$2\r\n22\r\n", 11);
	got_cmd(f, 2, "SET", 3, "$3\r\nccc\r\n$3\r\n333\r\n", 12);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(f->sink.g[i].c.cmd, sy_command_find("SET", 3));
	assert_int_equal(st->records, 1);
	assert_int_equal(st->writes, 3);
	assert_int_equal(st->bytes, 14 + 15 + 18);
	assert_int_equal(st->dropped, 0);
	assert_int_equal(st->aborted, 0);
}

/* The mirror follows the database and transactions: they come in batches too, and are
 * delivered, but counted as writes only when they are. */
static void mixed_select_multi_set_exec(void **state)
{
	struct fixture *f = *state;
	const struct sy_capture_stats *st = &f->per[MIG];

	assert_int_equal(BATCH(f, 1, 4,
			       "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"
			       "*1\r\n$5\r\nMULTI\r\n" SET_A "*1\r\n$4\r\nEXEC\r\n"),
			 0);
	assert_int_equal(f->sink.n, 4);
	got_cmd(f, 0, "SELECT", 2, "$1\r\n2\r\n", 1);
	got_cmd(f, 1, "MULTI", 1, "", 2);
	got_cmd(f, 2, "SET", 3, "$1\r\na\r\n$1\r\n1\r\n", 3);
	got_cmd(f, 3, "EXEC", 1, "", 4);
	assert_ptr_equal(f->sink.g[1].c.cmd, sy_command_find("MULTI", 5));
	assert_ptr_equal(f->sink.g[3].c.cmd, sy_command_find("EXEC", 4));
	assert_int_equal(st->writes, 1);
	assert_int_equal(st->bytes, 14);
	assert_int_equal(st->records, 1);
}

static void argc_one_has_empty_body(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(BATCH(f, 5, 1, "*1\r\n$5\r\nMULTI\r\n"), 0);
	assert_int_equal(f->sink.n, 1);
	got_cmd(f, 0, "MULTI", 1, "", 5);
}

/* Redis skips the byte after each '\r' unchecked, and so does the machine: the body
 * starts where the machine says, not after the first "\r\n" a hand parser finds. */
static void unchecked_byte_after_cr(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(BATCH(f, 1, 4,
			       "*3\rX$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"    /* after the count */
			       "*3\r\n$3\rYSET\r\n$1\r\nb\r\n$1\r\n2\r\n"    /* after the name's length */
			       "*3\r\n$3\r\nSETzz$1\r\nc\r\n$1\r\n3\r\n"     /* after the name */
			       "*11\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n" /* a count of two digits */
			       "$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nd\r\n$1\r\n4\r\n"
			       "$1\r\ne\r\n$1\r\n5\r\n"),
			 0);
	assert_int_equal(f->sink.n, 4);
	got_cmd(f, 0, "SET", 3, "$1\r\na\r\n$1\r\n1\r\n", 1);
	got_cmd(f, 1, "SET", 3, "$1\r\nb\r\n$1\r\n2\r\n", 2);
	got_cmd(f, 2, "SET", 3, "$1\r\nc\r\n$1\r\n3\r\n", 3);
	got_cmd(f, 3, "MSET", 11,
		"$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nd\r\n$1\r\n4\r\n"
		"$1\r\ne\r\n$1\r\n5\r\n",
		4);
	assert_int_equal(f->per[MIG].writes, 4);
}

/* After a two-digit count the machine's fast step reads an empty name's header and
 * skips on over the arguments: the body still starts right after the name. */
static void empty_name_after_long_count(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(BATCH(f, 1, 1,
			       "*10\r\n$0\r\n\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n"
			       "$1\r\nf\r\n$1\r\ng\r\n$1\r\nh\r\n$1\r\ni\r\n"),
			 0);
	assert_int_equal(f->sink.n, 1);
	got_cmd(f, 0, "", 10,
		"$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n$1\r\nf\r\n$1\r\ng\r\n$1\r\nh\r\n$"
		"1\r\ni\r\n",
		1);
	assert_null(f->sink.g[0].c.cmd);
	assert_int_equal(f->per[MIG].writes, 0);
}

static void lower_case_name(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
		BATCH(f, 1, 2, "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$4\r\nIncr\r\n$1\r\nn\r\n"),
		0);
	assert_int_equal(f->sink.n, 2);
	got_cmd(f, 0, "SET", 3, "$1\r\nk\r\n$1\r\nv\r\n", 1);
	got_cmd(f, 1, "INCR", 2, "$1\r\nn\r\n", 2);
	assert_ptr_equal(f->sink.g[1].c.cmd, sy_command_find("INCR", 4));
	assert_int_equal(f->per[MIG].writes, 2);
}

/* A malformed batch: `delivered` whole commands first, then one aborted capture. */
static void malformed(struct fixture *f, int rc, int delivered, uint32_t first)
{
	const struct sy_capture_stats *st = &f->per[MIG];

	assert_int_equal(rc, -EPROTO);
	assert_int_equal(f->sink.n, delivered + 1);
	for (int i = 0; i < delivered; i++)
		assert_false(f->sink.g[i].c.aborted);
	got_abort(f, delivered, first + (uint32_t)delivered);
	assert_int_equal(st->aborted, 1);
	assert_int_equal(st->dropped, 1);
	assert_int_equal(st->records, 1);
	assert_int_equal(st->writes, (uint64_t)delivered);
}

static void truncated_last_command(void **state)
{
	struct fixture *f = *state;
	static const char b[] = SET_A SET_B SET_C;

	malformed(f, feed_batch(f, 20, 3, b, sizeof(b) - 1 - 5), 2, 20);
	got_cmd(f, 1, "SET", 3, "$1\r\nb\r\n$2\r\n22\r\n", 21);
}

static void fewer_commands_than_total(void **state)
{
	struct fixture *f = *state;

	malformed(f, BATCH(f, 1, 3, SET_A SET_B), 2, 1);
}

static void more_commands_than_total(void **state)
{
	struct fixture *f = *state;

	malformed(f, BATCH(f, 1, 2, SET_A SET_B SET_C), 2, 1);
}

static void garbage(void **state)
{
	struct fixture *f = *state;

	malformed(f, BATCH(f, 1, 1, "*x\r\n\xff\x00garbage"), 0, 1);
}

static void protocol_error_in_the_middle(void **state)
{
	struct fixture *f = *state;

	malformed(f, BATCH(f, 1, 3, SET_A "*2\r\n$3\r\nDEL\r\n$z\r\n" SET_C), 1, 1);
}

static void inline_command(void **state)
{
	struct fixture *f = *state;

	malformed(f, BATCH(f, 1, 1, "SET a 1\r\n"), 0, 1);
}

static void nothing_but_a_count(void **state)
{
	struct fixture *f = *state;

	malformed(f, feed_batch(f, 1, 3, "", 0), 0, 1);
}

static void bytes_after_the_last_command(void **state)
{
	struct fixture *f = *state;

	malformed(f, BATCH(f, 1, 2, SET_A SET_B "\r\n"), 2, 1);
}

static void bytes_between_commands(void **state)
{
	struct fixture *f = *state;

	malformed(f, BATCH(f, 1, 2, SET_A "\r\n" SET_B), 1, 1);
}

static void total_out_of_bounds(void **state)
{
	struct fixture *f = *state;

	malformed(f, BATCH(f, 1, 0, SET_A), 0, 1);
	memset(f->per, 0, sizeof(f->per));
	f->sink.n = 0;
	malformed(f, BATCH(f, 1, 100000, SET_A), 0, 1);
}

static void batch_flags_must_be_whole(void **state)
{
	struct fixture *f = *state;

	malformed(f, feed(f, SY_EVF_FIRST | SY_EVF_BATCH, 1, 1, NULL, 0, 0, SET_A, sizeof(SET_A) - 1), 0, 1);
	memset(f->per, 0, sizeof(f->per));
	f->sink.n = 0;
	malformed(f, feed(f, BATCH_FLAGS | SY_EVF_TRUNCATED, 1, 1, NULL, 0, 0, SET_A, sizeof(SET_A) - 1), 0,
		  1);
}

/* The records of today: one per command, or fragments of a long one. */
static void per_command_records(void **state)
{
	struct fixture *f = *state;
	static const char body[] = "$1\r\nk\r\n$5\r\nhello\r\n";

	assert_int_equal(
		feed(f, SY_EVF_FIRST | SY_EVF_LAST, 7, sizeof(body) - 1, "SET", 3, 0, body, sizeof(body) - 1),
		0);
	assert_int_equal(feed(f, SY_EVF_FIRST, 8, 0, "SET", 3, 0, body, 6), 0);
	assert_int_equal(f->sink.n, 1);
	assert_int_equal(feed(f, SY_EVF_LAST, 8, sizeof(body) - 1, "SET", 3, 6, body + 6, sizeof(body) - 7),
			 0);
	assert_int_equal(f->sink.n, 2);
	got_cmd(f, 0, "SET", 3, body, 7);
	got_cmd(f, 1, "SET", 3, body, 8);
	assert_int_equal(f->per[MIG].records, 3);
	assert_int_equal(f->per[MIG].writes, 2);
}

/* A batch after a half-assembled command of its socket: that command was lost by
 * the kernel; its last fragment, if it came, matches nothing. */
static void batch_erases_pending(void **state)
{
	struct fixture *f = *state;
	static const char body[] = "$1\r\nk\r\n$5\r\nhello\r\n";

	assert_int_equal(feed(f, SY_EVF_FIRST, 1, 0, "SET", 3, 0, body, 6), 0);
	assert_int_equal(BATCH(f, 2, 1, SET_A), 0);
	assert_int_equal(feed(f, SY_EVF_LAST, 1, sizeof(body) - 1, "SET", 3, 6, body + 6, sizeof(body) - 7),
			 -EPROTO);
	assert_int_equal(f->sink.n, 1);
	got_cmd(f, 0, "SET", 3, "$1\r\na\r\n$1\r\n1\r\n", 2);
	assert_int_equal(f->per[MIG].dropped, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(three_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(mixed_select_multi_set_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(argc_one_has_empty_body, setup, teardown),
		cmocka_unit_test_setup_teardown(unchecked_byte_after_cr, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_name_after_long_count, setup, teardown),
		cmocka_unit_test_setup_teardown(lower_case_name, setup, teardown),
		cmocka_unit_test_setup_teardown(truncated_last_command, setup, teardown),
		cmocka_unit_test_setup_teardown(fewer_commands_than_total, setup, teardown),
		cmocka_unit_test_setup_teardown(more_commands_than_total, setup, teardown),
		cmocka_unit_test_setup_teardown(garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(protocol_error_in_the_middle, setup, teardown),
		cmocka_unit_test_setup_teardown(inline_command, setup, teardown),
		cmocka_unit_test_setup_teardown(nothing_but_a_count, setup, teardown),
		cmocka_unit_test_setup_teardown(bytes_after_the_last_command, setup, teardown),
		cmocka_unit_test_setup_teardown(bytes_between_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(total_out_of_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_flags_must_be_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(per_command_records, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_erases_pending, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
