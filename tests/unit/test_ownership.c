// SPDX-License-Identifier: Apache-2.0
/* test_ownership.c — the file rule (registry/ownership.h), through the registry without
 * a kernel (bpf NULL) and on its own for pins: a reload of an unchanged file keeps a
 * ratio set through the API and who set it, and its preview is empty; a file that
 * changes the ratio moves it; a restart keeps what was set and who set it;
 * the preview reports what the real change does and leaves the state file alone;
 * without a previous file version the file counts as unchanged; commits carry who made
 * them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/endpoint.h"
#include "registry/ownership.h"
#include "registry/registry.h"
#include "registry/store_file.h"

static char dir[64];

static struct {
	size_t n;
	char origin[64], peer[64], reason[64];
} seen;

static void record(void *ctx, const struct sy_commit *c)
{
	(void)ctx;
	if (c->kind != SY_COMMIT_CHANGE)
		return;
	seen.n++;
	snprintf(seen.origin, sizeof(seen.origin), "%s", c->origin);
	snprintf(seen.peer, sizeof(seen.peer), "%s", c->peer);
	snprintf(seen.reason, sizeof(seen.reason), "%s", c->reason);
}

static void spec_of(struct sy_migration_spec *m, uint32_t ratio)
{
	char why[128];

	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "users");
	assert_int_equal(sy_endpoint_parse("127.0.0.1:7000", &m->legacy[0], why, sizeof(why)), 0);
	assert_int_equal(sy_endpoint_parse("127.0.0.1:7001", &m->target[0], why, sizeof(why)), 0);
	m->n_legacy = m->n_target = 1;
	m->ratio_bp = ratio;
}

static size_t slurp(char *buf, size_t len)
{
	char p[128];
	ssize_t got;
	int fd;

	snprintf(p, sizeof(p), "%s/state.pb", dir);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	got = read(fd, buf, len);
	close(fd);
	assert_true(got > 0 && (size_t)got < len);
	return (size_t)got;
}

static struct sy_registry *open_reg(struct sy_store **store)
{
	struct sy_spec_err err = {{0}};
	struct sy_registry *r;

	assert_int_equal(sy_store_file_open(dir, store), 0);
	r = sy_registry_new(NULL, *store);
	assert_non_null(r);
	assert_int_equal(sy_registry_load(r, &err), 0);
	assert_int_equal(sy_registry_subscribe(r, "t", record, NULL), 0);
	return r;
}

static int apply_file(struct sy_registry *r, uint32_t ratio)
{
	struct sy_migration_spec m;
	struct sy_spec s = {.migs = &m, .n = 1};
	struct sy_spec_err err = {{0}};

	spec_of(&m, ratio);
	return sy_registry_apply_file(r, &s, "/etc/sy.yaml", &err);
}

static void reload_keeps_a_hand_set_ratio_until_the_file_changes_it(void **state)
{
	struct sy_store *store;
	struct sy_registry *r;
	struct sy_spec_err err = {{0}};
	struct sy_migration_spec m;
	struct sy_spec s = {.migs = &m, .n = 1};
	struct sy_diff d;
	char a[4096], b[4096];
	size_t na, nb, commits;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sy-test-ownership-XXXXXX");
	assert_non_null(mkdtemp(dir));
	r = open_reg(&store);
	assert_int_equal(apply_file(r, 0), 0);
	assert_string_equal(sy_registry_find(r, "users")->ratio_by.origin, "file:/etc/sy.yaml");

	sy_registry_set_who(r, "api", "uid=0 pid=7", "canary");
	assert_int_equal(sy_registry_set_ratio(r, "users", 2500, &err), 0);
	sy_registry_set_who(r, NULL, NULL, NULL);
	assert_string_equal(seen.origin, "api");
	assert_string_equal(seen.peer, "uid=0 pid=7");
	assert_string_equal(seen.reason, "canary");

	/* the unchanged file: a preview says nothing changes, the reload commits nothing */
	spec_of(&m, 0);
	assert_int_equal(sy_registry_preview_file(r, &s, "/etc/sy.yaml", &d, &err), 0);
	assert_int_equal(d.n, 0);
	assert_false(d.moves_clients);
	sy_diff_free(&d);
	commits = seen.n;
	assert_int_equal(apply_file(r, 0), 0);
	assert_int_equal(sy_registry_find(r, "users")->spec.ratio_bp, 2500);
	assert_string_equal(sy_registry_find(r, "users")->ratio_by.origin, "api");
	assert_string_equal(sy_registry_find(r, "users")->ratio_by.reason, "canary");
	/* still a commit (the file's version and the update time are stored), the file's */
	assert_int_equal(seen.n, commits + 1);
	assert_string_equal(seen.origin, "file:/etc/sy.yaml");

	/* a restart: the same, with who set it */
	sy_registry_free(r);
	sy_store_close(store);
	r = open_reg(&store);
	assert_int_equal(sy_registry_find(r, "users")->spec.ratio_bp, 2500);
	assert_string_equal(sy_registry_find(r, "users")->ratio_by.reason, "canary");
	assert_int_equal(apply_file(r, 0), 0);
	assert_int_equal(sy_registry_find(r, "users")->spec.ratio_bp, 2500);

	/* the file changes the ratio: previewed, the preview commits nothing, then applied */
	spec_of(&m, 5000);
	na = slurp(a, sizeof(a));
	assert_int_equal(sy_registry_preview_file(r, &s, "/etc/sy.yaml", &d, &err), 0);
	assert_int_equal(d.n, 1);
	assert_true(d.moves_clients);
	assert_int_equal(d.migs[0].n_fields, 1);
	assert_string_equal(d.migs[0].fields[0].field, "ratio_bp");
	assert_string_equal(d.migs[0].fields[0].old_v, "25.00%");
	assert_string_equal(d.migs[0].fields[0].new_v, "50.00%");
	sy_diff_free(&d);
	nb = slurp(b, sizeof(b));
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	assert_int_equal(apply_file(r, 5000), 0);
	assert_int_equal(sy_registry_find(r, "users")->spec.ratio_bp, 5000);
	assert_string_equal(sy_registry_find(r, "users")->ratio_by.origin, "file:/etc/sy.yaml");

	/* the API's apply takes every field it is given; the file's version stays the reference */
	spec_of(&m, 100);
	assert_int_equal(sy_registry_apply(r, &m, &err), 0);
	assert_int_equal(sy_registry_find(r, "users")->spec.ratio_bp, 100);
	assert_non_null(sy_registry_find(r, "users")->file_spec);
	assert_int_equal(sy_registry_find(r, "users")->file_spec->ratio_bp, 5000);
	assert_int_equal(apply_file(r, 5000), 0);
	assert_int_equal(sy_registry_find(r, "users")->spec.ratio_bp, 100);

	sy_registry_free(r);
	sy_store_close(store);
	snprintf(a, sizeof(a), "%s/state.pb", dir);
	unlink(a);
	assert_int_equal(rmdir(dir), 0);
}

static void pin(struct sy_migration_spec *m, const char *cgroup, uint8_t side)
{
	struct sy_pin_spec *p = realloc(m->pins, (m->n_pins + 1) * sizeof(*p));

	assert_non_null(p);
	memset(&p[m->n_pins], 0, sizeof(*p));
	snprintf(p[m->n_pins].cgroup, sizeof(p->cgroup), "%s", cgroup);
	p[m->n_pins].side = side;
	m->pins = p;
	m->n_pins++;
}

static uint8_t side_of(const struct sy_migration_spec *m, const char *cgroup)
{
	for (size_t i = 0; i < m->n_pins; i++)
		if (strcmp(m->pins[i].cgroup, cgroup) == 0)
			return m->pins[i].side;
	return 9; /* not pinned */
}

static void pins_follow_the_file_only_where_it_changed(void **state)
{
	struct sy_migration_spec cur, last, f, out;

	(void)state;
	/* the file said: /a legacy, /c target. Running: /a legacy, /b target (by hand),
	 * /c unpinned by hand, ratio 25 % by hand. */
	spec_of(&last, 0);
	pin(&last, "/a", SY_SIDE_LEGACY);
	pin(&last, "/c", SY_SIDE_TARGET);
	spec_of(&cur, 2500);
	pin(&cur, "/a", SY_SIDE_LEGACY);
	pin(&cur, "/b", SY_SIDE_TARGET);

	/* the same file: everything as it runs */
	assert_int_equal(sy_migration_spec_copy(&f, &last), 0);
	assert_int_equal(sy_migration_spec_copy(&out, &f), 0);
	assert_int_equal(sy_file_rule(&out, &cur, &f, &last), 0);
	assert_int_equal(out.ratio_bp, 2500);
	assert_int_equal(out.n_pins, 2);
	assert_int_equal(side_of(&out, "/a"), SY_SIDE_LEGACY);
	assert_int_equal(side_of(&out, "/b"), SY_SIDE_TARGET);
	assert_int_equal(side_of(&out, "/c"), 9);
	sy_migration_spec_free(&out);

	/* the file moves /a to target and drops /c, its ratio unchanged */
	f.pins[0].side = SY_SIDE_TARGET;
	f.n_pins = 1;
	assert_int_equal(sy_migration_spec_copy(&out, &f), 0);
	assert_int_equal(sy_file_rule(&out, &cur, &f, &last), 0);
	assert_int_equal(out.ratio_bp, 2500);
	assert_int_equal(side_of(&out, "/a"), SY_SIDE_TARGET);
	assert_int_equal(side_of(&out, "/b"), SY_SIDE_TARGET);
	assert_int_equal(side_of(&out, "/c"), 9);
	sy_migration_spec_free(&out);

	/* the file pins /b to legacy and changes the ratio: both move */
	pin(&f, "/b", SY_SIDE_LEGACY);
	f.ratio_bp = 1000;
	assert_int_equal(sy_migration_spec_copy(&out, &f), 0);
	assert_int_equal(sy_file_rule(&out, &cur, &f, &last), 0);
	assert_int_equal(out.ratio_bp, 1000);
	assert_int_equal(side_of(&out, "/b"), SY_SIDE_LEGACY);
	sy_migration_spec_free(&out);

	/* no previous version (a state from before it was kept): the file is unchanged */
	assert_int_equal(sy_migration_spec_copy(&out, &f), 0);
	assert_int_equal(sy_file_rule(&out, &cur, &f, NULL), 0);
	assert_int_equal(out.ratio_bp, 2500);
	assert_int_equal(out.n_pins, 2);
	assert_int_equal(side_of(&out, "/a"), SY_SIDE_LEGACY);
	assert_int_equal(side_of(&out, "/b"), SY_SIDE_TARGET);
	sy_migration_spec_free(&out);

	/* a new migration: the file's, as it is */
	assert_int_equal(sy_migration_spec_copy(&out, &f), 0);
	assert_int_equal(sy_file_rule(&out, NULL, &f, NULL), 0);
	assert_int_equal(out.ratio_bp, 1000);
	assert_int_equal(out.n_pins, 2);
	sy_migration_spec_free(&out);

	sy_migration_spec_free(&f);
	sy_migration_spec_free(&cur);
	sy_migration_spec_free(&last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reload_keeps_a_hand_set_ratio_until_the_file_changes_it),
		cmocka_unit_test(pins_follow_the_file_only_where_it_changed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
