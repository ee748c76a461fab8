// SPDX-License-Identifier: Apache-2.0
/* test_state.c — the state file: round trip, absent file, corrupt and empty files, abort,
 * a temp file left by a crash, the store interface over it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry/registry.h"
#include "registry/store_file.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sy-test-state-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char p[128];

	(void)state;
	snprintf(p, sizeof(p), "%s/state.pb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/.state.pb.tmp", dir);
	unlink(p);
	return rmdir(dir);
}

static void absent_file_reads_as_empty(void **state)
{
	Switchyard__V1__State *st = (void *)1;

	(void)state;
	assert_int_equal(sy_state_read(dir, &st), 0);
	assert_null(st);
}

static void round_trip(void **state)
{
	Switchyard__V1__State st = SWITCHYARD__V1__STATE__INIT, *got = NULL;
	Switchyard__V1__MigrationState ms = SWITCHYARD__V1__MIGRATION_STATE__INIT, *pms = &ms;

	(void)state;
	st.format = SY_STATE_FORMAT;
	st.generation = 7;
	ms.id = 3;
	ms.salt = 0xdeadbeef;
	ms.origin = "api";
	st.migrations = &pms;
	st.n_migrations = 1;
	assert_int_equal(sy_state_prepare(dir, &st), 0);
	/* Prepared but not committed: readers still see the old (absent) state. */
	assert_int_equal(sy_state_read(dir, &got), 0);
	assert_null(got);
	assert_int_equal(sy_state_commit(dir), 0);
	assert_int_equal(sy_state_read(dir, &got), 0);
	assert_non_null(got);
	assert_int_equal(got->generation, 7);
	assert_int_equal(got->n_migrations, 1);
	assert_int_equal(got->migrations[0]->id, 3);
	assert_int_equal(got->migrations[0]->salt, 0xdeadbeef);
	switchyard__v1__state__free_unpacked(got, NULL);
}

static void abort_leaves_old_state(void **state)
{
	Switchyard__V1__State st = SWITCHYARD__V1__STATE__INIT, *got = NULL;
	char p[128];

	(void)state;
	st.format = SY_STATE_FORMAT;
	st.generation = 1;
	assert_int_equal(sy_state_prepare(dir, &st), 0);
	assert_int_equal(sy_state_commit(dir), 0);
	st.generation = 2;
	assert_int_equal(sy_state_prepare(dir, &st), 0);
	sy_state_abort(dir);
	snprintf(p, sizeof(p), "%s/.state.pb.tmp", dir);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(sy_state_read(dir, &got), 0);
	assert_int_equal(got->generation, 1);
	switchyard__v1__state__free_unpacked(got, NULL);
}

static void corrupt_file_is_refused(void **state)
{
	Switchyard__V1__State *got = NULL;
	char p[128];
	int fd;

	(void)state;
	snprintf(p, sizeof(p), "%s/state.pb", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\xff\xff\xff\xff garbage", 12), 12);
	close(fd);
	assert_int_equal(sy_state_read(dir, &got), -EBADMSG);
	assert_null(got);
}

static void touch(const char *name, const char *text)
{
	char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void empty_file_is_reported_as_empty(void **state)
{
	struct sy_spec_err err = {{0}};
	Switchyard__V1__State *got = (void *)1;
	struct sy_registry *r;
	struct sy_store *st;

	(void)state;
	touch("state.pb", "");
	assert_int_equal(sy_state_read(dir, &got), -ENODATA);
	assert_null(got);
	assert_int_equal(sy_store_file_open(dir, &st), 0);
	r = sy_registry_new(NULL, st);
	assert_non_null(r);
	assert_int_equal(sy_registry_load(r, &err), -ENODATA);
	if (!strstr(err.msg, "empty state file") || strstr(err.msg, "Protocol error"))
		fail_msg("got \"%s\"", err.msg);
	sy_registry_free(r);
	sy_store_close(st);
}

static void stale_temp_file_is_removed_at_open(void **state)
{
	Switchyard__V1__State st = SWITCHYARD__V1__STATE__INIT, *got = NULL;
	struct sy_store *s;
	char p[128];

	(void)state;
	st.format = SY_STATE_FORMAT;
	st.generation = 4;
	assert_int_equal(sy_state_prepare(dir, &st), 0);
	assert_int_equal(sy_state_commit(dir), 0);
	/* kill -9 between prepare and rename: the temp file stays, never the state */
	st.generation = 5;
	assert_int_equal(sy_state_prepare(dir, &st), 0);
	snprintf(p, sizeof(p), "%s/.state.pb.tmp", dir);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(sy_store_file_open(dir, &s), 0);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(sy_store_load(s, &got), 0);
	assert_int_equal(got->generation, 4);
	assert_int_equal(s->revision, 4);
	switchyard__v1__state__free_unpacked(got, NULL);
	sy_store_close(s);
}

static int fail_apply(void *arg)
{
	(*(int *)arg)++;
	return -EIO;
}

static void store_commits_only_the_next_revision(void **state)
{
	Switchyard__V1__State st = SWITCHYARD__V1__STATE__INIT, *got = NULL;
	struct sy_store *s;
	int calls = 0;

	(void)state;
	assert_int_equal(sy_store_file_open(dir, &s), 0);
	assert_int_equal(sy_store_load(s, &got), 0);
	assert_null(got);
	st.format = SY_STATE_FORMAT;
	st.generation = 2; /* not revision + 1 */
	assert_int_equal(sy_store_commit(s, &st, NULL, NULL), -ESTALE);
	st.generation = 1;
	/* apply fails: nothing committed, no temp file left */
	assert_int_equal(sy_store_commit(s, &st, fail_apply, &calls), -EIO);
	assert_int_equal(calls, 1);
	assert_int_equal(s->revision, 0);
	assert_int_equal(sy_state_read(dir, &got), 0);
	assert_null(got);
	assert_int_equal(sy_store_commit(s, &st, NULL, NULL), 0);
	assert_int_equal(s->revision, 1);
	assert_int_equal(sy_state_read(dir, &got), 0);
	assert_int_equal(got->generation, 1);
	switchyard__v1__state__free_unpacked(got, NULL);
	sy_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(absent_file_reads_as_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(abort_leaves_old_state, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_file_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_file_is_reported_as_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(stale_temp_file_is_removed_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(store_commits_only_the_next_revision, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
