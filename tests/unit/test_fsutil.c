// SPDX-License-Identifier: Apache-2.0
/* test_fsutil.c — the one atomic file writer (core/fsutil.c): a replace leaves the new
 * content and no temporary file, a failure is returned (not swallowed) and leaves the
 * old content; and the job states' one spelling (model/job.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "model/job.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sy-fsutil-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void slurp(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = 0;
	fclose(f);
}

static void replace_leaves_new_content_only(void **state)
{
	char p[PATH_MAX], tmp[PATH_MAX + 8], got[64];

	(void)state;
	snprintf(p, sizeof(p), "%s/place", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	assert_int_equal(sy_file_replace(p, "one\n", 4, 0644), 0);
	assert_int_equal(sy_file_replace(p, "two\n", 4, 0644), 0);
	slurp(p, got, sizeof(got));
	assert_string_equal(got, "two\n");
	assert_int_not_equal(access(tmp, F_OK), 0);
}

static void failure_is_returned_and_old_content_kept(void **state)
{
	char p[PATH_MAX], sub[PATH_MAX], got[64];

	(void)state;
	snprintf(p, sizeof(p), "%s/missing/place", dir);
	assert_int_equal(sy_file_replace(p, "x\n", 2, 0644), -ENOENT);
	assert_int_equal(sy_file_replace("", "x\n", 2, 0644), -EINVAL);
	/* a rename over a folder fails: the folder is untouched, the temp file gone */
	snprintf(sub, sizeof(sub), "%s/dir", dir);
	assert_int_equal(sy_mkdir_p(sub, 0755), 0);
	snprintf(p, sizeof(p), "%s/dir/keep", dir);
	assert_int_equal(sy_file_replace(p, "old\n", 4, 0644), 0);
	assert_int_equal(sy_file_replace(sub, "new\n", 4, 0644), -EISDIR);
	snprintf(p, sizeof(p), "%s/dir.tmp", dir);
	assert_int_not_equal(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/dir/keep", dir);
	slurp(p, got, sizeof(got));
	assert_string_equal(got, "old\n");
}

static void job_states_spell_as_the_api_does(void **state)
{
	static const char *const want[] = {"idle", "running", "done", "failed"};

	(void)state;
	for (int s = SY_JOB_IDLE; s <= SY_JOB_FAILED; s++) {
		assert_string_equal(sy_job_state_name((enum sy_job_state)s), want[s]);
		assert_int_equal(sy_job_state_parse(want[s]), s);
	}
	assert_int_equal((int)SY_JOB_IDLE, 0); /* zeroed state is idle */
	assert_string_equal(sy_job_state_name((enum sy_job_state)42), "?");
	assert_int_equal(sy_job_state_parse("Running"), -EINVAL);
	assert_int_equal(sy_job_state_parse(NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(replace_leaves_new_content_only, setup, teardown),
		cmocka_unit_test_setup_teardown(failure_is_returned_and_old_content_kept, setup, teardown),
		cmocka_unit_test(job_states_spell_as_the_api_does),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
