// SPDX-License-Identifier: Apache-2.0
/* test_events.c — the event history (events.c): seqs, the ring's bounds by count and
 * by bytes, strings cut and cleaned, subscribers; and the registry's events
 * (migration_events.c): what a change between two sets of migrations reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/endpoint.h"
#include "registry/events.h"
#include "registry/events_journal.h"
#include "core/log.h"
#include "registry/registry_events.h"
#include "registry/registry.h"

#define FIRST 1000000

static int quiet(void **state)
{
	(void)state;
	sy_log_set_level(SY_LOG_ERROR);
	return 0;
}

static void seqs_grow_from_first(void **state)
{
	struct sy_events *ev = sy_events_new(8, 1 << 20, FIRST);
	const struct sy_event *e;

	(void)state;
	assert_non_null(ev);
	assert_int_equal(sy_events_oldest(ev), FIRST);
	assert_int_equal(sy_events_next(ev), FIRST);
	assert_null(sy_events_get(ev, FIRST));
	assert_int_equal(sy_events_emit(ev, "users", "migration.ratio_changed",
					SY_EVENT_ATTRS({"old_ratio_bp", "0"}, {"new_ratio_bp", "2500"}),
					"ratio %d -> %d", 0, 2500),
			 FIRST);
	assert_int_equal(sy_events_emit(ev, "", "daemon.reloaded", NULL, 0, "reloaded"), FIRST + 1);
	assert_int_equal(sy_events_next(ev), FIRST + 2);
	e = sy_events_get(ev, FIRST);
	assert_non_null(e);
	assert_int_equal(e->seq, FIRST);
	assert_true(e->unix_ms > 0);
	assert_string_equal(e->migration, "users");
	assert_string_equal(e->kind, "migration.ratio_changed");
	assert_string_equal(e->message, "ratio 0 -> 2500");
	assert_int_equal(e->n_attrs, 2);
	assert_string_equal(sy_event_attr(e, "new_ratio_bp"), "2500");
	assert_null(sy_event_attr(e, "side"));
	e = sy_events_get(ev, FIRST + 1);
	assert_string_equal(e->migration, "");
	assert_int_equal(e->n_attrs, 0);
	assert_null(sy_events_get(ev, FIRST + 2));
	sy_events_free(ev);
	/* No history: emitting is a no-op, so a registry works without one. */
	assert_int_equal(sy_events_emit(NULL, "x", "k", NULL, 0, "m"), 0);
	assert_null(sy_events_new(0, 1, 1));
	assert_null(sy_events_new(1, 1, 0));
}

static void ring_keeps_the_last_capacity_events(void **state)
{
	struct sy_events *ev = sy_events_new(4, 1 << 20, FIRST);
	char want[32];

	(void)state;
	for (int i = 0; i < 10; i++)
		sy_events_emit(ev, "m", "k", NULL, 0, "event %d", i);
	assert_int_equal(sy_events_oldest(ev), FIRST + 6);
	assert_int_equal(sy_events_next(ev), FIRST + 10);
	assert_null(sy_events_get(ev, FIRST + 5));
	for (uint64_t s = FIRST + 6; s < FIRST + 10; s++) {
		snprintf(want, sizeof(want), "event %d", (int)(s - FIRST));
		assert_int_equal(sy_events_get(ev, s)->seq, s);
		assert_string_equal(sy_events_get(ev, s)->message, want);
	}
	/* Far past one wrap of the ring: still one contiguous range, oldest first. */
	for (int i = 10; i < 4099; i++)
		sy_events_emit(ev, "m", "k", NULL, 0, "event %d", i);
	assert_int_equal(sy_events_next(ev) - sy_events_oldest(ev), 4);
	assert_string_equal(sy_events_get(ev, FIRST + 4095)->message, "event 4095");
	sy_events_free(ev);
}

static void ring_keeps_within_its_byte_budget(void **state)
{
	struct sy_events *ev = sy_events_new(1000, 2000, FIRST);
	char big[400];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 50; i++)
		sy_events_emit(ev, "m", "k", SY_EVENT_ATTRS({"v", big}), "%d", i);
	/* Each event holds 400+ bytes: at most four fit in 2000. */
	assert_true(sy_events_next(ev) - sy_events_oldest(ev) <= 4);
	assert_true(sy_events_next(ev) - sy_events_oldest(ev) >= 3);
	assert_string_equal(sy_events_get(ev, FIRST + 49)->message, "49");
	/* One event larger than the whole budget is still kept, alone. */
	{
		char huge[SY_EVENT_VALUE_MAX];
		struct sy_event_attr a[4];

		memset(huge, 'y', sizeof(huge) - 1);
		huge[sizeof(huge) - 1] = '\0';
		for (int i = 0; i < 4; i++)
			a[i] = (struct sy_event_attr){"k", huge};
		assert_int_equal(sy_events_emit(ev, "m", "big", a, 4, "big"), FIRST + 50);
		assert_int_equal(sy_events_oldest(ev), FIRST + 50);
	}
	sy_events_free(ev);
}

static void strings_are_cut_and_made_valid_utf8(void **state)
{
	struct sy_events *ev = sy_events_new(4, 1 << 20, FIRST);
	struct sy_event_attr many[SY_EVENT_MAX_ATTRS + 4];
	char longv[SY_EVENT_VALUE_MAX + 100], msg[SY_EVENT_MSG_MAX * 2];
	const struct sy_event *e;
	size_t len;

	(void)state;
	/* "é" is two bytes: a cut may not split it. */
	for (size_t i = 0; i + 2 < sizeof(longv); i += 2)
		memcpy(longv + i, "\xc3\xa9", 2);
	longv[sizeof(longv) - 2] = '\0';
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
		many[i] = (struct sy_event_attr){"key", longv};
	many[0] = (struct sy_event_attr){"bad", "a\377b\303(c\355\240\200"};
	sy_events_emit(ev, "m", "k", many, sizeof(many) / sizeof(many[0]), "%s", msg);
	e = sy_events_get(ev, FIRST);
	assert_int_equal(e->n_attrs, SY_EVENT_MAX_ATTRS);
	assert_string_equal(e->attrs[0].value, "a?b?(c???");
	len = strlen(e->attrs[1].value);
	assert_true(len < SY_EVENT_VALUE_MAX && len >= SY_EVENT_VALUE_MAX - 2);
	assert_int_equal(len % 2, 0);
	assert_int_equal((unsigned char)e->attrs[1].value[len - 2], 0xc3);
	assert_int_equal(strlen(e->message), SY_EVENT_MSG_MAX - 1);
	sy_events_free(ev);
}

static int calls_a, calls_b;

static void count_a(void *arg)
{
	(void)arg;
	calls_a++;
}

static void count_b(void *arg)
{
	*(int *)arg += 1;
	calls_b++;
}

static void subscribers_hear_each_event(void **state)
{
	struct sy_events *ev = sy_events_new(4, 1 << 20, FIRST);
	struct sy_events_sub *a, *b;
	int mine = 0;

	(void)state;
	calls_a = calls_b = 0;
	a = sy_events_subscribe(ev, count_a, NULL);
	b = sy_events_subscribe(ev, count_b, &mine);
	sy_events_emit(ev, "m", "k", NULL, 0, "1");
	sy_events_emit(ev, "m", "k", NULL, 0, "2");
	assert_int_equal(calls_a, 2);
	assert_int_equal(calls_b, 2);
	assert_int_equal(mine, 2);
	sy_events_unsubscribe(ev, a);
	sy_events_emit(ev, "m", "k", NULL, 0, "3");
	assert_int_equal(calls_a, 2);
	assert_int_equal(calls_b, 3);
	(void)b; /* freed with the history */
	sy_events_free(ev);
}

/* ---- migration_events.c ----------------------------------------------------------- */

static void mig(struct sy_migration_state *m, const char *name, const char *legacy, const char *target,
		uint32_t ratio, const char *origin)
{
	char why[128];

	memset(m, 0, sizeof(*m));
	snprintf(m->spec.name, sizeof(m->spec.name), "%s", name);
	assert_int_equal(sy_endpoint_parse(legacy, &m->spec.legacy[0], why, sizeof(why)), 0);
	assert_int_equal(sy_endpoint_parse(target, &m->spec.target[0], why, sizeof(why)), 0);
	m->spec.n_legacy = m->spec.n_target = 1;
	m->spec.ratio_bp = ratio;
	snprintf(m->origin, sizeof(m->origin), "%s", origin);
}

static void pin(struct sy_migration_state *m, const char *cgroup, uint8_t side)
{
	struct sy_pin_spec *p = realloc(m->spec.pins, (m->spec.n_pins + 1) * sizeof(*p));

	assert_non_null(p);
	m->spec.pins = p;
	memset(&p[m->spec.n_pins], 0, sizeof(*p));
	snprintf(p[m->spec.n_pins].cgroup, sizeof(p->cgroup), "%s", cgroup);
	p[m->spec.n_pins++].side = side;
}

static void expect(struct sy_events *ev, uint64_t *seq, const char *migration, const char *kind,
		   const char *key, const char *value)
{
	const struct sy_event *e = sy_events_get(ev, (*seq)++);

	if (!e)
		fail_msg("no event %s/%s", migration, kind);
	assert_string_equal(e->migration, migration);
	assert_string_equal(e->kind, kind);
	if (key) {
		if (!sy_event_attr(e, key))
			fail_msg("%s: no attribute %s", kind, key);
		assert_string_equal(sy_event_attr(e, key), value);
	}
}

static void registry_changes_become_events(void **state)
{
	struct sy_events *ev = sy_events_new(64, 1 << 20, FIRST);
	struct sy_migration_state a[2], b[2];
	uint64_t seq = FIRST;
	char why[128];

	(void)state;
	mig(&a[0], "users", "127.0.0.1:7000", "127.0.0.1:7001", 0, "api");
	mig(&b[0], "users", "127.0.0.1:7000", "127.0.0.1:7001", 0, "api");

	/* Nothing to nothing, and an unchanged set: no events. */
	sy_migration_events_commit(ev, NULL, 0, NULL, 0);
	sy_migration_events_commit(ev, a, 1, b, 1);
	assert_int_equal(sy_events_next(ev), FIRST);

	sy_migration_events_commit(ev, NULL, 0, a, 1);
	expect(ev, &seq, "users", "migration.created", "target", "127.0.0.1:7001");
	assert_string_equal(sy_event_attr(sy_events_get(ev, FIRST), "origin"), "api");

	b[0].spec.ratio_bp = 2500;
	sy_migration_events_commit(ev, a, 1, b, 1);
	expect(ev, &seq, "users", "migration.ratio_changed", "old_ratio_bp", "0");
	assert_string_equal(sy_event_attr(sy_events_get(ev, seq - 1), "new_ratio_bp"), "2500");
	assert_int_equal(sy_events_next(ev), seq);

	pin(&b[0], "/sys/fs/cgroup/a", SY_SIDE_TARGET);
	pin(&b[0], "/sys/fs/cgroup/b", SY_SIDE_LEGACY);
	a[0].spec.ratio_bp = 2500;
	sy_migration_events_commit(ev, a, 1, b, 1);
	expect(ev, &seq, "users", "migration.pinned", "cgroup", "/sys/fs/cgroup/a");
	assert_string_equal(sy_event_attr(sy_events_get(ev, seq - 1), "side"), "target");
	expect(ev, &seq, "users", "migration.pinned", "cgroup", "/sys/fs/cgroup/b");

	/* a := b's pins; then b: one pin moves side, one goes, target changes. */
	pin(&a[0], "/sys/fs/cgroup/a", SY_SIDE_TARGET);
	pin(&a[0], "/sys/fs/cgroup/b", SY_SIDE_LEGACY);
	b[0].spec.pins[0].side = SY_SIDE_LEGACY;
	b[0].spec.n_pins = 1;
	assert_int_equal(sy_endpoint_parse("127.0.0.1:7002", &b[0].spec.target[0], why, sizeof(why)), 0);
	b[0].spec.client_mode = SY_CLIENT_CONNECTION;
	sy_migration_events_commit(ev, a, 1, b, 1);
	expect(ev, &seq, "users", "migration.updated", "changed", "target,client");
	expect(ev, &seq, "users", "migration.pinned", "old_side", "target");
	expect(ev, &seq, "users", "migration.unpinned", "cgroup", "/sys/fs/cgroup/b");
	assert_int_equal(sy_events_next(ev), seq);

	/* A second migration from a file, and the first one deleted, in one change. */
	mig(&a[1], "carts", "127.0.0.1:8000", "127.0.0.1:8001", 10000, "file:/etc/sy.yaml");
	sy_migration_events_commit(ev, b, 1, &a[1], 1);
	expect(ev, &seq, "carts", "migration.created", "origin", "file:/etc/sy.yaml");
	expect(ev, &seq, "users", "migration.deleted", "origin", "api");

	/* Health: the mask is already the new one. */
	a[1].healthy_mask = 0;
	sy_migration_events_health(ev, &a[1], 0, false, "connect: Connection refused");
	expect(ev, &seq, "carts", "target.health_changed", "healthy", "false");
	assert_string_equal(sy_event_attr(sy_events_get(ev, seq - 1), "error"),
			    "connect: Connection refused");
	assert_string_equal(sy_event_attr(sy_events_get(ev, seq - 1), "healthy_targets"), "0/1");
	a[1].healthy_mask = 1;
	sy_migration_events_health(ev, &a[1], 0, true, NULL);
	expect(ev, &seq, "carts", "target.health_changed", "endpoint", "127.0.0.1:8001");
	assert_string_equal(sy_event_attr(sy_events_get(ev, seq - 1), "healthy_targets"), "1/1");
	sy_migration_events_health(NULL, &a[1], 0, true, NULL);

	free(a[0].spec.pins);
	free(b[0].spec.pins);
	sy_events_free(ev);
}

/* The registry subscriber: a loaded set is no change; a change and a health commit
 * report like the functions above. */
static void registry_commits_become_events(void **state)
{
	struct sy_events *ev = sy_events_new(64, 1 << 20, FIRST);
	struct sy_migration_state before, after;
	struct sy_commit c = {0};
	uint64_t seq = FIRST;

	(void)state;
	mig(&after, "users", "127.0.0.1:7000", "127.0.0.1:7001", 0, "api");
	c.kind = SY_COMMIT_LOAD;
	c.after = &after;
	c.n_after = 1;
	sy_migration_events_on_commit(ev, &c);
	assert_int_equal(sy_events_next(ev), seq);

	c.kind = SY_COMMIT_CHANGE;
	sy_migration_events_on_commit(ev, &c);
	expect(ev, &seq, "users", "migration.created", "origin", "api");

	before = after;
	after.healthy_mask = 1;
	c.kind = SY_COMMIT_HEALTH;
	c.before = &before;
	c.n_before = 1;
	sy_migration_events_on_commit(ev, &c);
	expect(ev, &seq, "users", "target.health_changed", "healthy", "true");
	before.healthy_mask = 1;
	after.healthy_mask = 0;
	c.why = "connect: Connection refused";
	sy_migration_events_on_commit(ev, &c);
	expect(ev, &seq, "users", "target.health_changed", "error", "connect: Connection refused");
	c.before = &after; /* nothing flipped: nothing to say */
	sy_migration_events_on_commit(ev, &c);
	assert_int_equal(sy_events_next(ev), seq);
	sy_events_free(ev);
}

static void journal_restores_history_across_runs(void **state)
{
	char dir[] = "/tmp/sy-journal-XXXXXX", path[300];
	struct sy_events *ev;
	struct sy_events_journal *j;
	const struct sy_event *e;
	uint64_t t0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	ev = sy_events_new(64, 1 << 20, FIRST);
	j = sy_events_journal_open(ev, dir, 1 << 20);
	assert_non_null(j);
	sy_events_emit(ev, "users", "cutover.phase", SY_EVENT_ATTRS({"from", "pending"}, {"to", "shadowing"}),
		       "pending -> shadowing");
	t0 = sy_events_get(ev, FIRST)->unix_ms;
	sy_events_emit(ev, "users", "cutover.evaluated", SY_EVENT_ATTRS({"p99_ratio", "1.2"}), "step 1");
	sy_events_journal_close(ev, j);
	sy_events_free(ev);

	/* a torn record at the end (a crash mid-write) is ignored, what came before kept */
	snprintf(path, sizeof(path), "%s/events.journal", dir);
	f = fopen(path, "ab");
	assert_non_null(f);
	fwrite("\x40\x00\x00\x00\x0a", 1, 5, f);
	fclose(f);

	ev = sy_events_new(64, 1 << 20, FIRST + 100);
	j = sy_events_journal_open(ev, dir, 1 << 20);
	assert_non_null(j);
	/* the last restored event keeps its seq: the new run goes on from it */
	assert_int_equal(sy_events_next(ev) - sy_events_oldest(ev), 2);
	assert_int_equal(sy_events_next(ev), FIRST + 2);
	e = sy_events_get(ev, FIRST);
	assert_string_equal(e->kind, "cutover.phase");
	assert_string_equal(e->migration, "users");
	assert_string_equal(sy_event_attr(e, "to"), "shadowing");
	assert_int_equal(e->unix_ms, t0); /* its own time, not the restore's */
	assert_string_equal(sy_events_get(ev, FIRST + 1)->message, "step 1");
	sy_events_journal_close(ev, j);
	sy_events_free(ev);

	/* rotation: past max_bytes the journal moves to .1; both are read back */
	ev = sy_events_new(256, 1 << 20, FIRST + 200);
	unlink(path);
	j = sy_events_journal_open(ev, dir, 300);
	for (int i = 0; i < 20; i++)
		sy_events_emit(ev, "m", "migration.ratio_changed", SY_EVENT_ATTRS({"i", "x"}), "event %d", i);
	sy_events_journal_close(ev, j);
	sy_events_free(ev);
	ev = sy_events_new(256, 1 << 20, FIRST + 300);
	j = sy_events_journal_open(ev, dir, 300);
	assert_true(sy_events_next(ev) - sy_events_oldest(ev) >= 3);
	assert_int_equal(sy_events_next(ev), FIRST + 220);
	assert_int_equal(sy_events_next(ev), FIRST + 220);
	assert_string_equal(sy_events_get(ev, sy_events_next(ev) - 1)->message, "event 19");
	sy_events_journal_close(ev, j);
	sy_events_free(ev);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seqs_grow_from_first),
		cmocka_unit_test(ring_keeps_the_last_capacity_events),
		cmocka_unit_test(ring_keeps_within_its_byte_budget),
		cmocka_unit_test(strings_are_cut_and_made_valid_utf8),
		cmocka_unit_test(subscribers_hear_each_event),
		cmocka_unit_test(registry_changes_become_events),
		cmocka_unit_test(registry_commits_become_events),
		cmocka_unit_test(journal_restores_history_across_runs),
	};

	return cmocka_run_group_tests(tests, quiet, NULL);
}
