// SPDX-License-Identifier: Apache-2.0
/* test_fleet.c — the fleet's summed counters (registry/fleet.h): node keys as the
 * store hands them over (packed NodeStatus), sums that only grow: a node's first
 * report is its baseline, what grew after adds exactly (histograms too), a counter that
 * went down is a restart, a node gone adds nothing and drops out of the live count, a
 * bad value changes nothing; join and leave are told once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry/fleet.h"
#include "switchyard/v1/fleet.pb-c.h"

static int joined, left;

static void on_change(void *ctx, const char *node, bool j)
{
	(void)ctx;
	(void)node;
	if (j)
		joined++;
	else
		left++;
}

/* A node's key: migration "m" with target requests/errors and one latency bucket. */
static void put(struct sy_fleet *f, const char *node, uint64_t req, uint64_t err, uint64_t b5)
{
	Switchyard__V1__NodeStatus ns = SWITCHYARD__V1__NODE_STATUS__INIT;
	Switchyard__V1__NodeMigrationCounters mc = SWITCHYARD__V1__NODE_MIGRATION_COUNTERS__INIT, *mcp = &mc;
	Switchyard__V1__NodeSideCounters t = SWITCHYARD__V1__NODE_SIDE_COUNTERS__INIT;
	uint64_t lat[SY_LAT_BUCKETS] = {0};
	uint8_t buf[1024];
	size_t len;

	lat[5] = b5;
	t.requests = req;
	t.errors = err;
	t.n_latency_log2_us = SY_LAT_BUCKETS;
	t.latency_log2_us = lat;
	mc.name = "m";
	mc.target = &t;
	ns.node = (char *)node;
	ns.version = "v";
	ns.n_migrations = 1;
	ns.migrations = &mcp;
	len = switchyard__v1__node_status__pack(&ns, buf);
	assert_int_equal(sy_fleet_node_put(f, node, buf, len), 0);
}

static void sums_grow_by_what_each_node_counted_after_it_joined(void **state)
{
	struct sy_fleet *f = sy_fleet_new("a");
	struct sy_fleet_counters c;
	uint32_t nodes;

	(void)state;
	joined = left = 0;
	sy_fleet_on_change(f, on_change, NULL);
	assert_int_equal(sy_fleet_sum(f, "m", &c, &nodes), -ENOENT);
	put(f, "a", 100, 1, 100); /* baselines: what came before is not news */
	put(f, "b", 500, 50, 500);
	assert_int_equal(joined, 2);
	assert_int_equal(sy_fleet_sum(f, "m", &c, &nodes), 0);
	assert_int_equal(nodes, 2);
	assert_int_equal(c.req[SY_SIDE_TARGET], 0);
	put(f, "a", 110, 1, 110);
	put(f, "b", 530, 56, 530);
	sy_fleet_sum(f, "m", &c, &nodes);
	assert_int_equal(c.req[SY_SIDE_TARGET], 40);
	assert_int_equal(c.err[SY_SIDE_TARGET], 6);
	assert_int_equal(c.lat[SY_SIDE_TARGET][5], 40);
	/* b restarted: its counters began again at 0 */
	put(f, "b", 7, 1, 7);
	sy_fleet_sum(f, "m", &c, &nodes);
	assert_int_equal(c.req[SY_SIDE_TARGET], 47);
	assert_int_equal(c.err[SY_SIDE_TARGET], 7);
	/* b's key went: it adds nothing more, and it is not live */
	sy_fleet_node_gone(f, "b");
	assert_int_equal(left, 1);
	assert_int_equal(sy_fleet_alive(f), 1);
	put(f, "a", 120, 1, 120);
	sy_fleet_sum(f, "m", &c, &nodes);
	assert_int_equal(nodes, 1);
	assert_int_equal(c.req[SY_SIDE_TARGET], 57);
	/* back: a baseline again, then growth */
	put(f, "b", 100, 100, 100);
	put(f, "b", 101, 100, 101);
	sy_fleet_sum(f, "m", &c, &nodes);
	assert_int_equal(c.req[SY_SIDE_TARGET], 58);
	assert_int_equal(c.err[SY_SIDE_TARGET], 7);
	assert_int_equal(joined, 3);
	sy_fleet_free(f);
}

static void a_bad_value_and_a_full_read_without_a_node(void **state)
{
	struct sy_fleet *f = sy_fleet_new("a");
	struct sy_fleet_counters c;
	uint32_t nodes;
	const uint8_t junk[] = {0xff, 0xff, 0xff};

	(void)state;
	put(f, "a", 1, 0, 0);
	put(f, "b", 1, 0, 0);
	assert_int_equal(sy_fleet_node_put(f, "b", junk, sizeof(junk)), -EBADMSG);
	assert_int_equal(sy_fleet_alive(f), 2);
	assert_int_equal(sy_fleet_count(f), 2);
	assert_string_equal(sy_fleet_at(f, 1)->name, "b");
	sy_fleet_sync_begin(f);
	put(f, "a", 2, 0, 0);
	sy_fleet_sync_end(f);
	assert_int_equal(sy_fleet_alive(f), 1);
	assert_false(sy_fleet_at(f, 1)->alive);
	assert_int_equal(sy_fleet_sum(f, "m", &c, &nodes), 0);
	assert_int_equal(nodes, 1);
	sy_fleet_node_gone(f, "a");
	assert_int_equal(sy_fleet_sum(f, "m", &c, &nodes), -ENOENT);
	sy_fleet_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sums_grow_by_what_each_node_counted_after_it_joined),
		cmocka_unit_test(a_bad_value_and_a_full_read_without_a_node),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
