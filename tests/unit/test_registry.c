// SPDX-License-Identifier: Apache-2.0
/* test_registry.c — the registry's one commit path, without a kernel (bpf NULL): every
 * commit reaches every subscriber once, in the order they subscribed, with the set
 * before and after it; a commit that fails (invalid spec, a store that cannot be
 * written) reaches none of them and leaves the state file byte for byte as it was; a
 * change made elsewhere, delivered by a store's watch, is a commit like the others. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "model/endpoint.h"
#include "registry/registry.h"
#include "registry/registry_pb.h"
#include "registry/store_file.h"

/* What a subscriber saw of one commit. */
struct seen {
	char who;
	enum sy_commit_kind kind;
	size_t n_before, n_after;
	char before[64], after[64]; /* "name=ratio;…" */
	uint8_t mask_after;	    /* of the first migration after */
	char why[64];
};

static struct seen log_[32];
static size_t n_log;

static void names(const struct sy_migration_state *s, size_t n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s=%u;", s[i].spec.name, s[i].spec.ratio_bp);
}

static void record(void *ctx, const struct sy_commit *c)
{
	struct seen *e;

	assert_true(n_log < sizeof(log_) / sizeof(log_[0]));
	e = &log_[n_log++];
	e->who = *(const char *)ctx;
	e->kind = c->kind;
	e->n_before = c->n_before;
	e->n_after = c->n_after;
	names(c->before, c->n_before, e->before, sizeof(e->before));
	names(c->after, c->n_after, e->after, sizeof(e->after));
	e->mask_after = c->n_after ? c->after[0].healthy_mask : 0;
	snprintf(e->why, sizeof(e->why), "%s", c->why ? c->why : "");
}

static char dir[64], moved[80];
static struct sy_store *store;
static struct sy_registry *reg;
static const char A = 'a', B = 'b';

static int setup(void **state)
{
	struct sy_spec_err err = {{0}};

	(void)state;
	n_log = 0;
	snprintf(dir, sizeof(dir), "/tmp/sy-test-registry-XXXXXX");
	if (!mkdtemp(dir) || sy_store_file_open(dir, &store))
		return -1;
	snprintf(moved, sizeof(moved), "%s.moved", dir);
	reg = sy_registry_new(NULL, store);
	if (!reg || sy_registry_load(reg, &err))
		return -1;
	if (sy_registry_subscribe(reg, "a", record, (void *)&A) ||
	    sy_registry_subscribe(reg, "b", record, (void *)&B))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char p[128];

	(void)state;
	sy_registry_free(reg);
	sy_store_close(store);
	snprintf(p, sizeof(p), "%s/state.pb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/.state.pb.tmp", dir);
	rmdir(p);
	unlink(p);
	return rmdir(dir);
}

static void spec_of(struct sy_migration_spec *m, const char *name, uint32_t ratio)
{
	struct sy_spec_err err = {{0}};

	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	assert_int_equal(sy_endpoint_parse("127.0.0.1:7000", &m->legacy[0], err.msg, sizeof(err.msg)), 0);
	assert_int_equal(sy_endpoint_parse("127.0.0.1:7001", &m->target[0], err.msg, sizeof(err.msg)), 0);
	m->n_legacy = m->n_target = 1;
	m->ratio_bp = ratio;
}

/* The whole state file, for byte-for-byte comparisons. */
static size_t slurp(const char *d, char *buf, size_t len)
{
	char p[128];
	ssize_t got;
	int fd;

	snprintf(p, sizeof(p), "%s/state.pb", d);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	got = read(fd, buf, len);
	close(fd);
	assert_true(got > 0 && (size_t)got < len);
	return (size_t)got;
}

static void expect_seen(size_t i, char who, enum sy_commit_kind kind, const char *before, const char *after)
{
	assert_true(i < n_log);
	assert_int_equal(log_[i].who, who);
	assert_int_equal(log_[i].kind, kind);
	assert_string_equal(log_[i].before, before);
	assert_string_equal(log_[i].after, after);
}

static void each_commit_reaches_each_subscriber_once_in_order(void **state)
{
	struct sy_spec_err err = {{0}};
	struct sy_migration_spec m;

	(void)state;
	/* subscribing catches up with the set as it is */
	assert_int_equal(n_log, 2);
	expect_seen(0, 'a', SY_COMMIT_LOAD, "", "");
	expect_seen(1, 'b', SY_COMMIT_LOAD, "", "");

	spec_of(&m, "users", 0);
	assert_int_equal(sy_registry_apply(reg, &m, &err), 0);
	assert_int_equal(n_log, 4);
	expect_seen(2, 'a', SY_COMMIT_CHANGE, "", "users=0;");
	expect_seen(3, 'b', SY_COMMIT_CHANGE, "", "users=0;");

	assert_int_equal(sy_registry_set_ratio(reg, "users", 500, &err), 0);
	assert_int_equal(n_log, 6);
	expect_seen(4, 'a', SY_COMMIT_CHANGE, "users=0;", "users=500;");
	expect_seen(5, 'b', SY_COMMIT_CHANGE, "users=0;", "users=500;");

	/* a health flip is a commit too, not persisted, carrying the check's error */
	sy_registry_set_target_health(reg, &m.target[0], true, NULL);
	assert_int_equal(n_log, 8);
	expect_seen(6, 'a', SY_COMMIT_HEALTH, "users=500;", "users=500;");
	expect_seen(7, 'b', SY_COMMIT_HEALTH, "users=500;", "users=500;");
	assert_int_equal(log_[7].mask_after, 1);
	sy_registry_set_target_health(reg, &m.target[0], true, NULL); /* no flip: no commit */
	assert_int_equal(n_log, 8);
	sy_registry_set_target_health(reg, &m.target[0], false, "connect: refused");
	assert_int_equal(n_log, 10);
	assert_int_equal(log_[9].mask_after, 0);
	assert_string_equal(log_[9].why, "connect: refused");

	assert_int_equal(sy_registry_set_ratio(reg, "users", 0, &err), 0);
	assert_int_equal(sy_registry_delete(reg, "users", false, &err), 0);
	assert_int_equal(n_log, 14);
	expect_seen(12, 'a', SY_COMMIT_CHANGE, "users=0;", "");
	expect_seen(13, 'b', SY_COMMIT_CHANGE, "users=0;", "");

	/* an unsubscribed subscriber hears nothing more; the others keep their order */
	sy_registry_unsubscribe(reg, record, (void *)&A);
	spec_of(&m, "carts", 0);
	assert_int_equal(sy_registry_apply(reg, &m, &err), 0);
	assert_int_equal(n_log, 15);
	expect_seen(14, 'b', SY_COMMIT_CHANGE, "", "carts=0;");
}

static void a_restart_loads_what_was_committed(void **state)
{
	struct sy_spec_err err = {{0}};
	struct sy_migration_spec m;
	struct sy_registry *again;
	struct sy_store *st2;

	(void)state;
	spec_of(&m, "users", 250);
	assert_int_equal(sy_registry_apply(reg, &m, &err), 0);
	assert_int_equal(sy_store_file_open(dir, &st2), 0);
	again = sy_registry_new(NULL, st2);
	assert_non_null(again);
	assert_int_equal(sy_registry_load(again, &err), 0);
	n_log = 0;
	assert_int_equal(sy_registry_subscribe(again, "a", record, (void *)&A), 0);
	expect_seen(0, 'a', SY_COMMIT_LOAD, "", "users=250;");
	assert_int_equal(log_[0].n_after, 1);
	sy_registry_free(again);
	sy_store_close(st2);
}

static void an_invalid_change_reaches_no_subscriber(void **state)
{
	struct sy_spec_err err = {{0}};
	struct sy_migration_spec m;
	char before[4096], after[4096];
	size_t nb, na;

	(void)state;
	spec_of(&m, "users", 0);
	assert_int_equal(sy_registry_apply(reg, &m, &err), 0);
	nb = slurp(dir, before, sizeof(before));
	n_log = 0;

	spec_of(&m, "users", SY_RATIO_MAX + 1);
	assert_int_equal(sy_registry_apply(reg, &m, &err), -EINVAL);
	assert_int_equal(sy_registry_set_ratio(reg, "users", SY_RATIO_MAX + 1, &err), -EINVAL);
	assert_int_equal(sy_registry_set_ratio(reg, "nobody", 1, &err), -ENOENT);
	assert_int_equal(n_log, 0);
	na = slurp(dir, after, sizeof(after));
	assert_int_equal(na, nb);
	assert_memory_equal(after, before, nb);
	assert_int_equal(sy_registry_find(reg, "users")->spec.ratio_bp, 0);
}

static void a_store_that_cannot_be_written_fails_the_commit(void **state)
{
	struct sy_spec_err err = {{0}};
	struct sy_migration_spec m;
	char before[4096], after[4096];
	size_t nb, na;
	int fd;

	(void)state;
	spec_of(&m, "users", 100);
	assert_int_equal(sy_registry_apply(reg, &m, &err), 0);
	nb = slurp(dir, before, sizeof(before));
	n_log = 0;

	/* the state dir replaced by a file: no temp file can be made, even by root */
	assert_int_equal(rename(dir, moved), 0);
	fd = open(dir, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	err.msg[0] = '\0';
	assert_int_equal(sy_registry_set_ratio(reg, "users", 200, &err), -EIO);
	assert_non_null(strstr(err.msg, "persist state in"));
	assert_int_equal(n_log, 0);
	assert_int_equal(sy_registry_find(reg, "users")->spec.ratio_bp, 100);
	na = slurp(moved, after, sizeof(after));
	assert_int_equal(na, nb);
	assert_memory_equal(after, before, nb);
	assert_int_equal(unlink(dir), 0);
	assert_int_equal(rename(moved, dir), 0);

	/* a temp path that cannot be a file fails the same way, in place */
	{
		char tmp[128];

		snprintf(tmp, sizeof(tmp), "%s/.state.pb.tmp", dir);
		assert_int_equal(mkdir(tmp, 0700), 0);
		assert_int_equal(sy_registry_set_ratio(reg, "users", 300, &err), -EIO);
		assert_int_equal(n_log, 0);
		na = slurp(dir, after, sizeof(after));
		assert_int_equal(na, nb);
		assert_memory_equal(after, before, nb);
		assert_int_equal(rmdir(tmp), 0);
	}

	/* the same change goes through once the store can be written again */
	assert_int_equal(sy_registry_set_ratio(reg, "users", 200, &err), 0);
	assert_int_equal(n_log, 2);
	expect_seen(0, 'a', SY_COMMIT_CHANGE, "users=100;", "users=200;");
}

static int nested_rc = 1;

static void change_from_inside(void *ctx, const struct sy_commit *c)
{
	struct sy_spec_err err = {{0}};

	(void)ctx;
	if (c->kind == SY_COMMIT_CHANGE)
		nested_rc = sy_registry_set_ratio(reg, "users", 1, &err);
}

static void a_subscriber_cannot_change_the_registry(void **state)
{
	struct sy_spec_err err = {{0}};
	struct sy_migration_spec m;

	(void)state;
	assert_int_equal(sy_registry_subscribe(reg, "nested", change_from_inside, NULL), 0);
	spec_of(&m, "users", 0);
	assert_int_equal(sy_registry_apply(reg, &m, &err), 0);
	assert_int_equal(nested_rc, -EDEADLK);
	assert_int_equal(sy_registry_find(reg, "users")->spec.ratio_bp, 0);
	sy_registry_unsubscribe(reg, change_from_inside, NULL);
}

/* ---- another store behind the same interface ------------------------------------- */

/* A store that keeps nothing and lets the test play "another agent": what a shared
 * store's watch would deliver. */
struct mem_store {
	struct sy_store s;
	sy_store_watch_fn fn;
	void *ctx;
	int commits;
};

static int mem_load(struct sy_store *s, Switchyard__V1__State **out)
{
	(void)s;
	*out = NULL;
	return 0;
}

static int mem_commit(struct sy_store *s, const Switchyard__V1__State *st, int (*apply)(void *arg), void *arg)
{
	struct mem_store *m = (struct mem_store *)s;
	int e;

	if (st->generation != s->revision + 1)
		return -ESTALE;
	if (apply && (e = apply(arg)))
		return e;
	s->revision = st->generation;
	m->commits++;
	return 0;
}

static int mem_watch(struct sy_store *s, sy_store_watch_fn fn, void *ctx)
{
	struct mem_store *m = (struct mem_store *)s;

	m->fn = fn;
	m->ctx = ctx;
	return 0;
}

static void mem_close(struct sy_store *s)
{
	(void)s;
}

static const struct sy_store_ops mem_ops = {mem_load, mem_commit, mem_watch, mem_close};

static void a_change_made_elsewhere_arrives_as_a_commit(void **state)
{
	struct mem_store ms = {.s = {.ops = &mem_ops}};
	struct sy_spec_err err = {{0}};
	struct sy_migration_state set[1];
	Switchyard__V1__State st;
	struct sy_registry *r;

	(void)state;
	snprintf(ms.s.where, sizeof(ms.s.where), "memory");
	r = sy_registry_new(NULL, &ms.s);
	assert_non_null(r);
	assert_int_equal(sy_registry_load(r, &err), 0);
	assert_non_null(ms.fn); /* the registry watches the store */
	n_log = 0;
	assert_int_equal(sy_registry_subscribe(r, "a", record, (void *)&A), 0);
	spec_of(&set[0].spec, "users", 0);
	assert_int_equal(sy_registry_apply(r, &set[0].spec, &err), 0);
	assert_int_equal(ms.commits, 1);

	/* another agent raised the ratio: revision 2, as the shared store hands it over */
	memset(set, 0, sizeof(set));
	assert_int_equal(sy_mstate_copy(&set[0], sy_registry_find(r, "users")), 0);
	set[0].spec.ratio_bp = 700;
	assert_int_equal(sy_mset_to_pb(set, 1, 2, &st), 0);
	ms.s.revision = 2;
	ms.fn(ms.ctx, &st);
	sy_mset_pb_free(&st);
	sy_mstate_free(&set[0]);
	assert_int_equal(n_log, 3);
	expect_seen(2, 'a', SY_COMMIT_REMOTE, "users=0;", "users=700;");
	assert_int_equal(sy_registry_find(r, "users")->spec.ratio_bp, 700);
	assert_int_equal(ms.commits, 1); /* applied, not written back */

	/* the next local change goes on from the store's revision */
	assert_int_equal(sy_registry_set_ratio(r, "users", 800, &err), 0);
	assert_int_equal(ms.s.revision, 3);
	sy_registry_free(r);
}

/* A shared store carries the cgroup ids of the node that pinned; each node resolves
 * the path again, and a path it does not have pins nothing there. */
static void a_shared_store_pin_is_resolved_on_this_node(void **state)
{
	struct mem_store ms = {.s = {.ops = &mem_ops, .shared = true}};
	struct sy_spec_err err = {{0}};
	struct sy_migration_state set[1];
	const struct sy_migration_state *got;
	Switchyard__V1__State st;
	struct sy_registry *r;
	struct stat tmp;

	(void)state;
	assert_int_equal(stat("/tmp", &tmp), 0);
	r = sy_registry_new(NULL, &ms.s);
	assert_non_null(r);
	assert_int_equal(sy_registry_load(r, &err), 0);
	memset(set, 0, sizeof(set));
	spec_of(&set[0].spec, "users", 0);
	set[0].id = 1;
	set[0].spec.pins = calloc(2, sizeof(*set[0].spec.pins));
	set[0].pin_cgroup_ids = calloc(2, sizeof(uint64_t));
	assert_non_null(set[0].spec.pins);
	assert_non_null(set[0].pin_cgroup_ids);
	set[0].spec.n_pins = 2;
	snprintf(set[0].spec.pins[0].cgroup, sizeof(set[0].spec.pins[0].cgroup), "/tmp");
	snprintf(set[0].spec.pins[1].cgroup, sizeof(set[0].spec.pins[1].cgroup), "/nonexistent-sy-cgroup");
	set[0].pin_cgroup_ids[0] = 12345; /* the other node's ids */
	set[0].pin_cgroup_ids[1] = 777;
	assert_int_equal(sy_mset_to_pb(set, 1, 1, &st), 0);
	ms.s.revision = 1;
	ms.fn(ms.ctx, &st);
	sy_mset_pb_free(&st);
	sy_mstate_free(&set[0]);
	got = sy_registry_find(r, "users");
	assert_non_null(got);
	assert_int_equal(got->spec.n_pins, 2);
	assert_int_equal(got->pin_cgroup_ids[0], tmp.st_ino);
	assert_int_equal(got->pin_cgroup_ids[1], 0);
	sy_registry_free(r);
}

/* A job asked of the leader travels in the state: committed through the registry,
 * written to the store's protobuf and read back whole; none asked is no field at all. */
static void a_job_request_round_trips_through_the_state(void **state)
{
	struct mem_store ms = {.s = {.ops = &mem_ops, .shared = true}};
	struct sy_job_request q = {.nonce = 0x1234567890abcdefull,
				   .requested_unix_ms = 1700000000123ull,
				   .repair = true,
				   .keys_per_s = 500,
				   .bytes_per_s = 1ull << 30,
				   .taken_by = "a",
				   .started_unix_ms = 1700000000456ull,
				   .finished_unix_ms = 1700000000789ull};
	struct sy_spec_err err = {{0}};
	struct sy_migration_state set[1], *back = NULL;
	const struct sy_migration_state *got;
	Switchyard__V1__State st;
	struct sy_registry *r;
	size_t n = 0;

	(void)state;
	r = sy_registry_new(NULL, &ms.s);
	assert_non_null(r);
	assert_int_equal(sy_registry_load(r, &err), 0);
	spec_of(&set[0].spec, "users", 0);
	assert_int_equal(sy_registry_apply(r, &set[0].spec, &err), 0);
	snprintf(q.node, sizeof(q.node), "b");
	assert_int_equal(sy_registry_set_job_request(r, "users", SY_JOBREQ_BACKFILL, &q, &err), 0);
	assert_int_equal(sy_registry_set_job_request(r, "users", SY_JOBREQ_KINDS, &q, &err), -EINVAL);
	assert_int_equal(sy_registry_set_job_request(r, "nope", SY_JOBREQ_AUDIT, &q, &err), -ENOENT);
	got = sy_registry_find(r, "users");
	assert_int_equal(got->job_req[SY_JOBREQ_BACKFILL].nonce, q.nonce);

	assert_int_equal(sy_mset_to_pb(got, 1, 3, &st), 0);
	assert_null(st.migrations[0]->audit_request);
	assert_non_null(st.migrations[0]->backfill_request);
	assert_int_equal(sy_mset_from_pb(&st, &back, &n, &err), 0);
	sy_mset_pb_free(&st);
	assert_int_equal(n, 1);
	assert_int_equal(back[0].job_req[SY_JOBREQ_AUDIT].nonce, 0);
	{
		const struct sy_job_request *b = &back[0].job_req[SY_JOBREQ_BACKFILL];

		assert_int_equal(b->nonce, q.nonce);
		assert_string_equal(b->node, "b");
		assert_int_equal(b->requested_unix_ms, q.requested_unix_ms);
		assert_true(b->repair);
		assert_int_equal(b->keys_per_s, 500);
		assert_int_equal(b->bytes_per_s, q.bytes_per_s);
		assert_string_equal(b->taken_by, "a");
		assert_int_equal(b->started_unix_ms, q.started_unix_ms);
		assert_int_equal(b->finished_unix_ms, q.finished_unix_ms);
	}
	sy_mset_free(back, n);
	sy_registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(each_commit_reaches_each_subscriber_once_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_restart_loads_what_was_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(an_invalid_change_reaches_no_subscriber, setup, teardown),
		cmocka_unit_test_setup_teardown(a_store_that_cannot_be_written_fails_the_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_subscriber_cannot_change_the_registry, setup, teardown),
		cmocka_unit_test(a_change_made_elsewhere_arrives_as_a_commit),
		cmocka_unit_test(a_shared_store_pin_is_resolved_on_this_node),
		cmocka_unit_test(a_job_request_round_trips_through_the_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
