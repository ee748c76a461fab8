/* test_spec.c — the spec parser and the one validator: exact messages and lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "model/endpoint.h"
#include "model/spec.h"
#include "model/spec_pb.h"

static int load(const char *text, struct sy_spec *s, struct sy_spec_err *err)
{
	return sy_spec_load_buf("t.yaml", text, strlen(text), s, err);
}

static void expect_error(const char *text, const char *msg)
{
	struct sy_spec s;
	struct sy_spec_err err = {{0}};

	assert_int_equal(load(text, &s, &err), -EINVAL);
	if (strncmp(err.msg, msg, strlen(msg)) != 0)
		fail_msg("got  \"%s\"\nwant \"%s…\"", err.msg, msg);
}

static void block_and_flow_styles_parse_the_same(void **state)
{
	const char *block = "migrations:\n"
			    "  - name: users\n"
			    "    legacy:\n"
			    "      - \"127.0.0.1:7000\"\n"
			    "    target: [\"[::1]:7001\", \"127.0.0.2:7001\"]\n"
			    "    client: connection\n"
			    "    ratio: 12.5%\n";
	const char *flow =
		"{migrations: [{name: users, legacy: [\"127.0.0.1:7000\"], target: [\"[::1]:7001\", "
		"\"127.0.0.2:7001\"], client: connection, ratio: 1250bp}]}";
	struct sy_spec a, b;
	struct sy_spec_err err;
	char ep[SY_EP_STRLEN];

	(void)state;
	assert_int_equal(load(block, &a, &err), 0);
	assert_int_equal(load(flow, &b, &err), 0);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.migs[0].name, "users");
	assert_int_equal(a.migs[0].ratio_bp, 1250);
	assert_int_equal(b.migs[0].ratio_bp, 1250);
	assert_int_equal(a.migs[0].client_mode, SY_CLIENT_CONNECTION);
	assert_int_equal(a.migs[0].n_target, 2);
	assert_int_equal(a.migs[0].line, 2);
	sy_endpoint_format(&a.migs[0].target[0], ep, sizeof(ep));
	assert_string_equal(ep, "[::1]:7001");
	assert_memory_equal(a.migs[0].target, b.migs[0].target, sizeof(a.migs[0].target));
	assert_int_equal(a.migs[0].legacy[0].port, htons(7000));
	sy_spec_free(&a);
	sy_spec_free(&b);
}

static void errors_name_file_line_and_field(void **state)
{
	(void)state;
	expect_error("", "t.yaml:1: empty spec");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"    ratioo: 5%\n",
		"t.yaml:5: unknown field \"ratioo\" (expected one of: name, legacy, target, client, ratio, "
		"pins, prefixes, sample_reads, mirror, capture_bytes, rewrite, mirror_queue, auto_repair, "
		"audit_every, plan)");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"localhost:1\"]\n    target: [\"127.0.0.1:2\"]\n",
		"t.yaml:3: legacy[0]: \"localhost:1\": not a numeric IPv4 or [IPv6] address");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"    ratio: 120%\n",
		"t.yaml:5: ratio: \"120%\" is out of range 0%..100%");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"    ratio: 12.345%\n",
		"t.yaml:5: ratio: \"12.345%\" is not a percentage with at most 2 decimals");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"  - name: b\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:3\"]\n",
		"t.yaml:5: legacy[0]: legacy endpoint 127.0.0.1:1 is already in migration \"a\" (line 2)");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:1\"]\n",
		"t.yaml:2: target[0]: 127.0.0.1:1 is also a legacy endpoint");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"    pins: [{cgroup: /nonexistent-sy, side: target}]\n",
		"t.yaml:5: pins[0].cgroup: /nonexistent-sy: No such file or directory");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"    pins: [{cgroup: /tmp, side: target}]\n",
		"t.yaml:5: pins[0].cgroup: /tmp is not a cgroup v2 directory");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"    client: pod\n",
		"t.yaml:5: client: \"pod\" is not cgroup or connection");
	expect_error("migrations:\n  - name: Users\n", "t.yaml:2: name: \"Users\" must be");
	expect_error("migrations:\n  - name: a\n    name: b\n", "t.yaml:3: field \"name\" is given twice");
	expect_error("migrations: [\n", "t.yaml:2: YAML:");
	expect_error("migrations:\n  - name: a\n    target: [\"127.0.0.1:2\"]\n",
		     "t.yaml:2: legacy: required");
}

static void ratio_forms(void **state)
{
	static const struct {
		const char *in;
		int ok;
		uint32_t bp;
	} cases[] = {
		{"0", 1, 0},	   {"0%", 1, 0},       {"25%", 1, 2500},    {"12.5%", 1, 1250},
		{"0.01%", 1, 1},   {"100%", 1, 10000}, {"2500bp", 1, 2500}, {"10000bp", 1, 10000},
		{"10001bp", 0, 0}, {"100.01%", 0, 0},  {"25", 0, 0},	    {"%", 0, 0},
		{"-5%", 0, 0},	   {"1.234%", 0, 0},   {"bp", 0, 0},	    {"", 0, 0},
		{"5 %", 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t bp = 77;
		int e = sy_ratio_parse(cases[i].in, &bp);

		if ((e == 0) != cases[i].ok)
			fail_msg("ratio \"%s\": got %d", cases[i].in, e);
		if (cases[i].ok)
			assert_int_equal(bp, cases[i].bp);
	}
}

static void endpoints(void **state)
{
	struct sy_endpoint ep;
	char err[200], out[SY_EP_STRLEN];
	static const char *bad[] = {
		"",	 "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "localhost:6379", "::1:6379",
		"[::1]", "[::1]6379", "1.2.3.4:x",   "[zz::1]:1",	"1.2.3.4:-1"};

	(void)state;
	assert_int_equal(sy_endpoint_parse("10.0.0.1:6379", &ep, err, sizeof(err)), 0);
	assert_int_equal(ep.family, SY_AF_INET);
	sy_endpoint_format(&ep, out, sizeof(out));
	assert_string_equal(out, "10.0.0.1:6379");
	assert_int_equal(sy_endpoint_parse("[::ffff:10.0.0.1]:6379", &ep, err, sizeof(err)), 0);
	assert_int_equal(ep.family, SY_AF_INET); /* mapped is the IPv4 key */
	sy_endpoint_format(&ep, out, sizeof(out));
	assert_string_equal(out, "10.0.0.1:6379");
	assert_int_equal(sy_endpoint_parse("[2001:db8::5]:7000", &ep, err, sizeof(err)), 0);
	sy_endpoint_format(&ep, out, sizeof(out));
	assert_string_equal(out, "[2001:db8::5]:7000");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sy_endpoint_parse(bad[i], &ep, err, sizeof(err)) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
}

static void pb_round_trip_and_api_messages(void **state)
{
	struct sy_spec s;
	struct sy_spec_err err;
	struct sy_migration_spec back;
	Switchyard__V1__MigrationSpec pb;
	char *bad_legacy[] = {"nope"}, **saved;
	size_t nsaved;

	(void)state;
	assert_int_equal(load("migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\", \"[::1]:2\"]\n"
			      "    target: [\"127.0.0.1:3\"]\n    ratio: 33%\n",
			      &s, &err),
			 0);
	assert_int_equal(sy_spec_to_pb(&s.migs[0], &pb), 0);
	assert_int_equal(sy_spec_from_pb(&pb, &back, &err), 0);
	assert_string_equal(back.name, "a");
	assert_int_equal(back.ratio_bp, 3300);
	assert_memory_equal(back.legacy, s.migs[0].legacy, sizeof(back.legacy));
	sy_migration_spec_free(&back);
	saved = pb.legacy;
	nsaved = pb.n_legacy;
	pb.legacy = bad_legacy;
	pb.n_legacy = 1;
	assert_int_equal(sy_spec_from_pb(&pb, &back, &err), -EINVAL);
	assert_string_equal(err.msg, "legacy[0]: \"nope\": missing port (expected ip:port)");
	s.migs[0].ratio_bp = 10001;
	assert_int_equal(sy_migration_spec_validate(&s.migs[0], &err), -EINVAL);
	assert_string_equal(err.msg, "ratio_bp: 10001 is out of range 0..10000");
	pb.legacy = saved;
	pb.n_legacy = nsaved;
	s.migs[0].ratio_bp = 0;
	{
		struct sy_migration_spec other = s.migs[0];

		strcpy(other.name, "b");
		other.line = 0; /* from the API: no line to cite */
		assert_int_equal(sy_spec_validate_against(&s.migs[0], &other, 1, &err), -EINVAL);
		assert_string_equal(err.msg,
				    "legacy[0]: legacy endpoint 127.0.0.1:1 is already in migration \"b\"");
	}
	sy_spec_pb_free(&pb);
	sy_spec_free(&s);
}

static void plan_parses_defaults_and_round_trips(void **state)
{
	const char *text =
		"migrations:\n  - name: a\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"    plan:\n      steps: [1%, 25%, 100%]\n      bake: [1s, 2m, 500ms]\n"
		"      advance: manual\n      min_p99: 250us\n      on_breach: pause\n"
		"      gates: {error_rate: 1%, p99_ratio: {max: 2.5, on_breach: rollback}}\n";
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	Switchyard__V1__MigrationSpec pb;
	struct sy_migration_spec back;
	const struct sy_plan_spec *p;

	(void)state;
	assert_int_equal(load(text, &s, &err), 0);
	p = &s.migs[0].plan;
	assert_int_equal(p->n_steps, 3);
	assert_int_equal(p->steps_bp[0], 100);
	assert_int_equal(p->steps_bp[2], 10000);
	assert_int_equal(p->bake_ms[1], 120000);
	assert_int_equal(p->bake_ms[2], 500);
	assert_true(p->manual);
	assert_int_equal(p->min_p99_us, 250);
	assert_int_equal(p->interval_ms, SY_PLAN_INTERVAL_DEFAULT);
	assert_int_equal(p->window_ms, SY_PLAN_WINDOW_DEFAULT);
	assert_true(p->gates[SY_GATE_ERROR_RATE].enabled);
	assert_true(p->gates[SY_GATE_ERROR_RATE].max > 0.0099 && p->gates[SY_GATE_ERROR_RATE].max < 0.0101);
	assert_int_equal(p->gates[SY_GATE_ERROR_RATE].on_breach, SY_BREACH_PAUSE);   /* the plan's default */
	assert_int_equal(p->gates[SY_GATE_P99_RATIO].on_breach, SY_BREACH_ROLLBACK); /* its own */
	assert_false(p->gates[SY_GATE_DRIFT_RATE].enabled);
	assert_int_equal(sy_spec_to_pb(&s.migs[0], &pb), 0);
	assert_int_equal(sy_spec_from_pb(&pb, &back, &err), 0);
	assert_memory_equal(&back.plan, p, sizeof(*p));
	sy_spec_pb_free(&pb);
	sy_migration_spec_free(&back);
	sy_spec_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(block_and_flow_styles_parse_the_same),
		cmocka_unit_test(errors_name_file_line_and_field),
		cmocka_unit_test(ratio_forms),
		cmocka_unit_test(endpoints),
		cmocka_unit_test(pb_round_trip_and_api_messages),
		cmocka_unit_test(plan_parses_defaults_and_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
