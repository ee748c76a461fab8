// SPDX-License-Identifier: Apache-2.0
/* test_hostname.c — host names in endpoints (model/hostname.h): what is a name, where
 * its addresses go in the side's array, the list as written through protobuf and back
 * (the state keeps the addresses: a restart resumes with them), and resolution of a
 * name every host has (localhost, from /etc/hosts: no DNS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "model/endpoint.h"
#include "model/hostname.h"
#include "model/spec.h"
#include "model/spec_pb.h"

static struct sy_endpoint ep(const char *s)
{
	struct sy_endpoint e;
	char why[200];

	assert_int_equal(sy_endpoint_parse(s, &e, why, sizeof(why)), 0);
	return e;
}

static void names_are_told_from_numbers(void **state)
{
	char host[SY_HOST_MAX + 1], why[200];
	uint16_t port;

	(void)state;
	assert_int_equal(sy_hostport_parse("redis-legacy.prod.svc:6379", host, &port, why, sizeof(why)), 0);
	assert_string_equal(host, "redis-legacy.prod.svc");
	assert_int_equal(port, 6379);
	assert_int_equal(sy_hostport_parse("10.0.0.300:6379", host, &port, why, sizeof(why)), -EINVAL);
	assert_int_equal(sy_hostport_parse("bad host:6379", host, &port, why, sizeof(why)), -EINVAL);
	assert_int_equal(sy_hostport_parse("a..b:6379", host, &port, why, sizeof(why)), -EINVAL);
	assert_int_equal(sy_hostport_parse("redis:0", host, &port, why, sizeof(why)), -EINVAL);
	assert_int_equal(sy_hostport_parse("redis", host, &port, why, sizeof(why)), -EINVAL);
	assert_int_equal(sy_hostport_parse("[::1]:6379", host, &port, why, sizeof(why)), -EINVAL);
}

static const char *yaml =
	"migrations:\n"
	"  - name: users\n"
	"    legacy: [\"10.0.0.1:7000\", \"redis-a.svc:7000\", \"10.0.0.2:7000\", \"redis-b:7000\"]\n"
	"    target: [\"127.0.0.1:7001\"]\n"
	"    resolve_interval: 5s\n";

static void addresses_fill_the_names_place(void **state)
{
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	struct sy_endpoint a[2] = {ep("10.1.0.1:7000"), ep("[fd00::1]:7000")}, b[1] = {ep("10.2.0.1:7000")};
	struct sy_migration_spec *m;
	char buf[SY_EP_STRLEN];

	(void)state;
	assert_int_equal(sy_spec_load_buf("t.yaml", yaml, strlen(yaml), &s, &err), 0);
	m = &s.migs[0];
	assert_int_equal(m->n_legacy, 2); /* the numeric ones; the names are not resolved yet */
	assert_int_equal(m->n_hosts[SY_SIDE_LEGACY], 2);
	assert_int_equal(m->hosts[0][0].line, 3);
	assert_int_equal(m->resolve_interval_ms, 5000);
	assert_int_equal(sy_spec_host_set(m, SY_SIDE_LEGACY, 1, b, 1), 0);
	assert_int_equal(sy_spec_host_set(m, SY_SIDE_LEGACY, 0, a, 2), 0);
	assert_int_equal(m->n_legacy, 5);
	const char *want[5] = {"10.0.0.1:7000", "10.1.0.1:7000", "[fd00::1]:7000", "10.0.0.2:7000",
			       "10.2.0.1:7000"};
	for (int i = 0; i < 5; i++) {
		sy_endpoint_format(&m->legacy[i], buf, sizeof(buf));
		assert_string_equal(buf, want[i]);
	}
	assert_int_equal(sy_migration_spec_validate(m, &err), 0);
	/* a name that shrinks moves the rest back */
	assert_int_equal(sy_spec_host_set(m, SY_SIDE_LEGACY, 0, b, 1), 0);
	assert_int_equal(m->n_legacy, 4);
	assert_int_equal(m->hosts[0][1].first, 3);
	/* more than a side holds: refused, nothing changed */
	struct sy_endpoint many[8];
	for (int i = 0; i < 8; i++) {
		snprintf(buf, sizeof(buf), "10.9.0.%d:7000", i + 1);
		many[i] = ep(buf);
	}
	assert_int_equal(sy_spec_host_set(m, SY_SIDE_LEGACY, 0, many, 8), -ENOSPC);
	assert_int_equal(m->n_legacy, 4);

	/* through protobuf (the API, the state) and back: written list and addresses kept */
	Switchyard__V1__MigrationSpec pb;
	struct sy_migration_spec back;

	m->hosts[0][1].stale = true;
	assert_int_equal(sy_spec_to_pb(m, &pb), 0);
	assert_int_equal(pb.n_legacy, 4);
	assert_string_equal(pb.legacy[1], "redis-a.svc:7000");
	assert_string_equal(pb.legacy[3], "redis-b:7000");
	assert_int_equal(pb.n_hosts, 2);
	assert_int_equal(sy_spec_from_pb(&pb, &back, &err), 0);
	assert_int_equal(back.n_legacy, m->n_legacy);
	assert_memory_equal(back.legacy, m->legacy, sizeof(m->legacy[0]) * m->n_legacy);
	assert_true(back.hosts[0][1].stale);
	assert_int_equal(back.resolve_interval_ms, 5000);
	sy_spec_pb_free(&pb);
	sy_migration_spec_free(&back);
	sy_spec_free(&s);
}

static void localhost_resolves_and_unknown_names_fail(void **state)
{
	struct sy_endpoint out[8];
	char why[200], buf[SY_EP_STRLEN];
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	const char *bad = "migrations:\n"
			  "  - name: users\n"
			  "    legacy: [\"127.0.0.1:7000\",\n"
			  "             \"sy-no-such-name.invalid:7000\"]\n"
			  "    target: [\"localhost:7001\"]\n";
	int n;

	(void)state;
	n = sy_host_resolve("localhost", 7001, out, 8, why, sizeof(why));
	assert_true(n >= 1);
	sy_endpoint_format(&out[0], buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:7001"); /* IPv4 sorts first */
	assert_int_equal(sy_spec_load_buf("t.yaml", bad, strlen(bad), &s, &err), 0);
	assert_int_equal(sy_spec_resolve(&s, "t.yaml", &err), -EINVAL);
	assert_non_null(
		strstr(err.msg, "t.yaml:4: legacy[1]: \"sy-no-such-name.invalid:7000\": does not resolve"));
	sy_spec_free(&s);
}

static void bad_values_name_the_line(void **state)
{
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	const char *t = "migrations:\n"
			"  - name: users\n"
			"    legacy: [\"redis a:7000\"]\n"
			"    target: [\"127.0.0.1:7001\"]\n";
	const char *iv = "migrations:\n"
			 "  - name: users\n"
			 "    legacy: [\"redis-a:7000\"]\n"
			 "    target: [\"127.0.0.1:7001\"]\n"
			 "    resolve_interval: 100ms\n";

	(void)state;
	assert_int_equal(sy_spec_load_buf("t.yaml", t, strlen(t), &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:3: legacy[0]: \"redis a:7000\": not a numeric IPv4 or [IPv6] "
					"address, nor a host name"));
	assert_int_equal(sy_spec_load_buf("t.yaml", iv, strlen(iv), &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:5: resolve_interval: at least 1s"));
}

/* A fifth host name on one side is refused by both readers without writing past the
 * side's slots (the API's reader wrote it over n_hosts: found by fuzz_control_req). */
static void a_fifth_host_name_is_refused_by_both_readers(void **state)
{
	char *names[5] = {"a.svc:7000", "b.svc:7000", "c.svc:7000", "d.svc:7000", "e.svc:7000"};
	char *one[1] = {"127.0.0.1:7001"};
	Switchyard__V1__MigrationSpec pb = SWITCHYARD__V1__MIGRATION_SPEC__INIT;
	struct sy_migration_spec back;
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	const char *yaml = "migrations:\n"
			   "  - name: users\n"
			   "    legacy: [\"127.0.0.1:7000\"]\n"
			   "    target: [\"a.svc:7001\", \"b.svc:7001\", \"c.svc:7001\",\n"
			   "             \"d.svc:7001\", \"e.svc:7001\"]\n";

	(void)state;
	pb.name = "users";
	pb.legacy = one;
	pb.n_legacy = 1;
	pb.target = names;
	pb.n_target = 5;
	assert_int_equal(sy_spec_from_pb(&pb, &back, &err), -EINVAL);
	assert_string_equal(err.msg, "target: at most 4 host names");
	assert_int_equal(back.n_hosts[SY_SIDE_TARGET], 4);
	assert_int_equal(back.n_hosts[SY_SIDE_LEGACY], 0);
	sy_migration_spec_free(&back);

	memset(&err, 0, sizeof(err));
	assert_int_equal(sy_spec_load_buf("t.yaml", yaml, strlen(yaml), &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "target: at most 4 host names"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_are_told_from_numbers),
		cmocka_unit_test(addresses_fill_the_names_place),
		cmocka_unit_test(localhost_resolves_and_unknown_names_fail),
		cmocka_unit_test(bad_values_name_the_line),
		cmocka_unit_test(a_fifth_host_name_is_refused_by_both_readers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
