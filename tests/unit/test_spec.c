// SPDX-License-Identifier: Apache-2.0
/* test_spec.c — the spec parser and the one validator: exact messages and lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/duration.h"
#include "model/endpoint.h"
#include "model/spec.h"
#include "model/spec_pb.h"
#include "rpc/pb_strings.h"
#include "switchyard/v1/control.pb-c.h"
#include "telemetry/exporters.h"

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
		"audit_every, plan, auth, scope, resolve_interval, transform, version_field)");
	expect_error(
		"migrations:\n  - name: a\n    legacy: [\"local host:1\"]\n    target: [\"127.0.0.1:2\"]\n",
		"t.yaml:3: legacy[0]: \"local host:1\": not a numeric IPv4 or [IPv6] address, nor a host "
		"name");
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

/* Issue 18: a file of "[[[[…" is refused at depth 33 by the event parser, before any
 * document is built (20 000 levels once took 2 s of the event loop). */
static void deep_nesting_is_refused_early(void **state)
{
	static const size_t depths[] = {33, 20000, 100000};
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	char *text;

	(void)state;
	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		text = malloc(depths[i] + 64);
		assert_non_null(text);
		strcpy(text, "migrations:\n  - ");
		memset(text + strlen(text), '[', depths[i]);
		text[strlen("migrations:\n  - ") + depths[i]] = '\0';
		assert_int_equal(load(text, &s, &err), -EINVAL);
		assert_string_equal(err.msg, "t.yaml:2: nesting deeper than 32");
		free(text);
	}
	/* 32 levels are read (and refused by the spec reader for what they are) */
	text = malloc(200);
	assert_non_null(text);
	strcpy(text, "migrations:\n  - ");
	memset(text + strlen(text), '[', 30);
	memset(text + strlen("migrations:\n  - ") + 30, ']', 30);
	text[strlen("migrations:\n  - ") + 60] = '\0';
	assert_int_equal(load(text, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "t.yaml:2: migrations[0] must be a mapping, not a list");
	free(text);
}

/* Issue 18: "m\0x" was read as "m"; every string of the file is refused with a NUL. */
static void nul_in_any_string_is_refused(void **state)
{
	static const char *const bad[][2] = {
		{"migrations:\n  - name: \"m\\0x\"\n", "t.yaml:2: \"m\\0x\": a NUL byte in a string"},
		{"migrations:\n  - name: m\n    prefixes: [\"user:\\0\"]\n",
		 "t.yaml:3: \"user:\\0\": a NUL byte in a string"},
		{"migrations:\n  - name: m\n    legacy: [\"127.0.0.1:1\\0\"]\n",
		 "t.yaml:3: \"127.0.0.1:1\\0\": a NUL byte in a string"},
		{"migrations:\n  - name: m\n    pins: [{cgroup: \"/sys\\0/x\", side: target}]\n",
		 "t.yaml:3: \"/sys\\0/x\": a NUL byte in a string"},
		{"migrations:\n  - name: m\n    rewrite: {\"a\\0\": b}\n",
		 "t.yaml:3: \"a\\0\": a NUL byte in a string"},
		{"migrations:\n  - \"na\\0me\": m\n", "t.yaml:2: \"na\\0me\": a NUL byte in a string"},
	};
	struct sy_exporters_cfg c;
	char e[256];
	const char *t = "telemetry:\n  otlp:\n    resource: {team: \"a\\0b\"}\n";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i][0], bad[i][1]);
	sy_exporters_defaults(&c);
	assert_int_equal(sy_exporters_load_buf("t.yaml", t, strlen(t), &c, e, sizeof(e)), -EINVAL);
	assert_string_equal(e, "t.yaml:3: \"a\\0b\": a NUL byte in a string");
}

/* Issue 18: a value with a newline kept the message on two lines; long ones are cut. */
static void values_in_messages_are_escaped_and_cut(void **state)
{
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	struct sy_migration_spec m = {0};
	char text[1024], long_name[301];

	(void)state;
	expect_error("migrations:\n  - name: \"a\\nb\\t\\\"c\"\n",
		     "t.yaml:2: name: \"a\\nb\\t\\\"c\" must be 1-63 characters");
	expect_error("migrations:\n  - name: m\n    \"ratio\\nx\": 1%\n",
		     "t.yaml:3: unknown field \"ratio\\nx\"");
	memset(long_name, 'a', 300);
	long_name[300] = '\0';
	snprintf(text, sizeof(text), "migrations:\n  - name: %s\n", long_name);
	assert_int_equal(load(text, &s, &err), -EINVAL);
	assert_null(strchr(err.msg, '\n'));
	assert_non_null(strstr(err.msg, "aaaa...\" must be"));
	assert_true(strlen(err.msg) < 300);
	/* the API path: the one validator escapes too */
	snprintf(m.name, sizeof(m.name), "x\ny");
	assert_int_equal(sy_migration_spec_validate(&m, &err), -EINVAL);
	assert_null(strchr(err.msg, '\n'));
	assert_memory_equal(err.msg, "name: \"x\\ny\" must be", strlen("name: \"x\\ny\" must be"));
}

/* Over the API, protobuf-c cuts a string at its NUL and keeps no length: the raw bytes
 * are looked at before the unpack (rpc_server.c refuses them). */
static void nul_in_api_strings_is_seen_in_the_raw_bytes(void **state)
{
	Switchyard__V1__ApplyMigrationRequest req = SWITCHYARD__V1__APPLY_MIGRATION_REQUEST__INIT;
	Switchyard__V1__MigrationSpec pb;
	Switchyard__V1__ApplyMigrationRequest *back;
	struct sy_migration_spec m = {0};
	uint8_t buf[1024], *x;
	char where[256] = "";
	size_t n;

	(void)state;
	snprintf(m.name, sizeof(m.name), "aXb");
	m.n_legacy = m.n_target = 1;
	sy_endpoint_parse("127.0.0.1:1", &m.legacy[0], where, sizeof(where));
	sy_endpoint_parse("127.0.0.1:2", &m.target[0], where, sizeof(where));
	m.n_prefixes = 1;
	snprintf(m.prefixes[0], sizeof(m.prefixes[0]), "uYs");
	assert_int_equal(sy_spec_to_pb(&m, &pb), 0);
	req.spec = &pb;
	n = switchyard__v1__apply_migration_request__pack(&req, buf);
	sy_spec_pb_free(&pb);
	assert_int_equal(sy_pb_strings_check(&switchyard__v1__apply_migration_request__descriptor, buf, n,
					     where, sizeof(where)),
			 0);
	x = memchr(buf, 'Y', n);
	*x = 0;
	assert_int_equal(sy_pb_strings_check(&switchyard__v1__apply_migration_request__descriptor, buf, n,
					     where, sizeof(where)),
			 -EINVAL);
	assert_string_equal(where, "spec.prefixes");
	*x = 'Y';
	x = memchr(buf, 'X', n);
	*x = 0;
	assert_int_equal(sy_pb_strings_check(&switchyard__v1__apply_migration_request__descriptor, buf, n,
					     where, sizeof(where)),
			 -EINVAL);
	assert_string_equal(where, "spec.name");
	/* what the check is for: after the unpack, "a\0b" is "a" and nothing tells */
	back = switchyard__v1__apply_migration_request__unpack(NULL, n, buf);
	assert_non_null(back);
	assert_string_equal(back->spec->name, "a");
	switchyard__v1__apply_migration_request__free_unpacked(back, NULL);
	/* malformed bytes are left to the unpack */
	assert_int_equal(sy_pb_strings_check(&switchyard__v1__apply_migration_request__descriptor, buf, n / 2,
					     where, sizeof(where)),
			 0);
}

/* One duration reader: a number needs a unit (but 0), the daemon's and syctl's alike. */
static void durations_need_a_unit(void **state)
{
	uint64_t ms = 7;

	(void)state;
	assert_int_equal(sy_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(sy_duration_ms("1.5s", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(sy_duration_ms("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(sy_duration_ms("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(sy_duration_ms("0", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(sy_duration_ms("500", &ms), -EDOM);
	assert_int_equal(sy_duration_ms("5", &ms), -EDOM);
	assert_int_equal(sy_duration_ms("soon", &ms), -EINVAL);
	assert_int_equal(sy_duration_ms("-1s", &ms), -EINVAL);
	assert_int_equal(sy_duration_ms("8d", &ms), -EINVAL);
	assert_int_equal(sy_duration_ms("200h", &ms), -ERANGE);
	assert_string_equal(sy_duration_strerror(-EDOM), "needs a unit: ms, s, m or h");
	expect_error(
		"migrations:\n  - name: m\n    legacy: [\"127.0.0.1:1\"]\n    target: [\"127.0.0.1:2\"]\n"
		"    plan: {steps: [100%], bake: 5}\n",
		"t.yaml:5: plan.bake: \"5\" needs a unit: ms, s, m or h");
}

/* One ratio formatter, the bytes every view printed before; every mirror mode crosses
 * the API and comes back (the two enums are numbered differently). */
static void ratio_format_and_mirror_mapping(void **state)
{
	static const uint32_t bp[] = {0, 1, 50, 1250, 2500, 9999, 10000};
	static const char *const want[] = {"0.00%",  "0.01%",  "0.50%",	 "12.50%",
					   "25.00%", "99.99%", "100.00%"};
	struct sy_migration_spec m = {0}, back;
	Switchyard__V1__MigrationSpec pb;
	struct sy_spec_err err;
	char buf[SY_RATIO_STRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bp) / sizeof(bp[0]); i++)
		assert_string_equal(sy_ratio_format(bp[i], buf, sizeof(buf)), want[i]);
	snprintf(m.name, sizeof(m.name), "m");
	for (uint8_t mode = 0; mode <= SY_MIRROR_AUTO; mode++) {
		m.mirror = mode;
		assert_int_equal(sy_spec_to_pb(&m, &pb), 0);
		assert_int_equal((int)pb.mirror,
				 mode == SY_MIRROR_AUTO	     ? SWITCHYARD__V1__MIRROR__MIRROR_AUTO
				 : mode == SY_MIRROR_OFF     ? SWITCHYARD__V1__MIRROR__MIRROR_OFF
				 : mode == SY_MIRROR_FORWARD ? SWITCHYARD__V1__MIRROR__MIRROR_FORWARD
				 : mode == SY_MIRROR_REVERSE ? SWITCHYARD__V1__MIRROR__MIRROR_REVERSE
							     : SWITCHYARD__V1__MIRROR__MIRROR_BOTH);
		pb.n_legacy = pb.n_target = 0;
		assert_int_equal(sy_spec_from_pb(&pb, &back, &err), 0);
		assert_int_equal(back.mirror, mode);
		sy_migration_spec_free(&back);
		sy_spec_pb_free(&pb);
	}
}

/* auth: the file named, never the password; the file's mode checked at load with
 * FILE:LINE; the protobuf form carries the path and the user, nothing else. */
static void auth_names_a_file_never_a_password(void **state)
{
	char dir[] = "/tmp/sy-auth-XXXXXX", pw[64], text[1024];
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	Switchyard__V1__MigrationSpec pb;
	struct sy_migration_spec back;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pw, sizeof(pw), "%s/pw", dir);
	f = fopen(pw, "w");
	assert_non_null(f);
	fputs("Sekr1t-value\n", f);
	fclose(f);
	chmod(pw, 0600);
	snprintf(text, sizeof(text),
		 "migrations:\n"
		 "  - name: users\n"
		 "    legacy: [\"127.0.0.1:7000\"]\n"
		 "    target: [\"127.0.0.1:7001\"]\n"
		 "    auth:\n"
		 "      legacy: {password_file: %s}\n"
		 "      target:\n"
		 "        user: switchyard\n"
		 "        password_file: %s\n",
		 pw, pw);
	assert_int_equal(load(text, &s, &err), 0);
	assert_string_equal(s.migs[0].auth[SY_SIDE_LEGACY].password_file, pw);
	assert_string_equal(s.migs[0].auth[SY_SIDE_LEGACY].user, "");
	assert_string_equal(s.migs[0].auth[SY_SIDE_TARGET].user, "switchyard");
	assert_int_equal(sy_spec_to_pb(&s.migs[0], &pb), 0);
	assert_non_null(pb.auth);
	assert_string_equal(pb.auth->target->password_file, pw);
	assert_string_equal(pb.auth->target->user, "switchyard");
	assert_int_equal(sy_spec_from_pb(&pb, &back, &err), 0);
	assert_true(sy_auth_spec_equal(&back.auth[SY_SIDE_TARGET], &s.migs[0].auth[SY_SIDE_TARGET]));
	assert_true(sy_auth_spec_equal(&back.auth[SY_SIDE_LEGACY], &s.migs[0].auth[SY_SIDE_LEGACY]));
	sy_migration_spec_free(&back);
	sy_spec_pb_free(&pb);
	sy_spec_free(&s);

	/* readable by others: refused, at the line of password_file */
	chmod(pw, 0644);
	assert_int_equal(load(text, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:6: auth.legacy.password_file: "));
	assert_non_null(strstr(err.msg, "mode 0644"));
	assert_null(strstr(err.msg, "Sekr1t"));
	chmod(pw, 0400);
	assert_int_equal(load(text, &s, &err), 0);
	sy_spec_free(&s);
	unlink(pw);
	assert_int_equal(load(text, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:6: auth.legacy.password_file: "));
	assert_non_null(strstr(err.msg, "No such file or directory"));
	/* a FIFO is refused at once, not waited on (the daemon has one thread) */
	assert_int_equal(mkfifo(pw, 0600), 0);
	assert_int_equal(load(text, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
	unlink(pw);
	rmdir(dir);

	expect_error("migrations:\n"
		     "  - name: users\n"
		     "    legacy: [\"127.0.0.1:7000\"]\n"
		     "    target: [\"127.0.0.1:7001\"]\n"
		     "    auth:\n"
		     "      target: {user: sy, password: Sekr1t-inline}\n",
		     "t.yaml:6: auth.target.password: a password is never written in the spec");
	assert_int_equal(load("migrations:\n"
			      "  - name: users\n"
			      "    legacy: [\"127.0.0.1:7000\"]\n"
			      "    target: [\"127.0.0.1:7001\"]\n"
			      "    auth:\n"
			      "      target: {user: sy, password: Sekr1t-inline}\n",
			      &s, &err),
			 -EINVAL);
	assert_null(strstr(err.msg, "Sekr1t"));
	expect_error("migrations:\n"
		     "  - name: users\n"
		     "    legacy: [\"127.0.0.1:7000\"]\n"
		     "    target: [\"127.0.0.1:7001\"]\n"
		     "    auth:\n"
		     "      target: {password_file: relative/pw}\n",
		     "t.yaml:6: auth.target.password_file: \"relative/pw\" must be an absolute path");
}

/* transform: and version_field: (spec_transform.c): the script is compiled, its own
 * FILE:LINE in the message after the spec's; a reverse mirror needs reverse_key. */
static void transform_is_compiled_and_checked(void **state)
{
	char dir[] = "/tmp/sy-spec-xf-XXXXXX", good[64], bad[64], text[1024];
	struct sy_spec s;
	struct sy_spec_err err = {{0}};
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(good, sizeof(good), "%s/good.lua", dir);
	snprintf(bad, sizeof(bad), "%s/bad.lua", dir);
	assert_non_null(f = fopen(good, "w"));
	fputs("function forward_key(k) return {k} end\n", f);
	fclose(f);
	assert_non_null(f = fopen(bad, "w"));
	fputs("function forward_key(k)\n  return {k}\nend\nlocal x = = 1\n", f);
	fclose(f);
	snprintf(text, sizeof(text),
		 "migrations:\n  - name: m\n    legacy: [\"127.0.0.1:7000\"]\n    target: "
		 "[\"127.0.0.1:7001\"]\n"
		 "    mirror: forward\n    transform: {script: %s}\n    version_field: _v\n",
		 good);
	assert_int_equal(load(text, &s, &err), 0);
	assert_string_equal(s.migs[0].transform.script, good);
	assert_int_equal(s.migs[0].transform.line, 6);
	assert_string_equal(s.migs[0].version_field, "_v");
	{
		Switchyard__V1__MigrationSpec pb = SWITCHYARD__V1__MIGRATION_SPEC__INIT;
		struct sy_migration_spec back;
		struct sy_spec_err e2;

		assert_int_equal(sy_spec_to_pb(&s.migs[0], &pb), 0);
		assert_int_equal(sy_spec_from_pb(&pb, &back, &e2), 0);
		assert_string_equal(back.transform.script, good);
		assert_string_equal(back.version_field, "_v");
		sy_migration_spec_free(&back);
		sy_spec_pb_free(&pb);
	}
	sy_spec_free(&s);
	snprintf(text, sizeof(text),
		 "migrations:\n  - name: m\n    legacy: [\"127.0.0.1:7000\"]\n    target: "
		 "[\"127.0.0.1:7001\"]\n"
		 "    mirror: forward\n    transform: {script: %s}\n",
		 bad);
	assert_int_equal(load(text, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:6: transform.script: "));
	assert_non_null(strstr(err.msg, "bad.lua:4: unexpected symbol"));
	snprintf(text, sizeof(text),
		 "migrations:\n  - name: m\n    legacy: [\"127.0.0.1:7000\"]\n    target: "
		 "[\"127.0.0.1:7001\"]\n"
		 "    mirror: both\n    transform: {script: %s}\n",
		 good);
	assert_int_equal(load(text, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:6: transform: mirror: both"));
	assert_non_null(strstr(err.msg, "reverse_key"));
	snprintf(text, sizeof(text),
		 "migrations:\n  - name: m\n    legacy: [\"127.0.0.1:7000\"]\n    target: "
		 "[\"127.0.0.1:7001\"]\n"
		 "    mirror: forward\n    rewrite: {\"a:\": \"b:\"}\n    transform: {script: %s}\n",
		 good);
	assert_int_equal(load(text, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "drop rewrite"));
	expect_error("migrations:\n  - name: m\n    legacy: [\"127.0.0.1:7000\"]\n    target: "
		     "[\"127.0.0.1:7001\"]\n"
		     "    transform: {script: relative.lua}\n",
		     "t.yaml:5: transform.script: \"relative.lua\" must be an absolute path");
	expect_error("migrations:\n  - name: m\n    legacy: [\"127.0.0.1:7000\"]\n    target: "
		     "[\"127.0.0.1:7001\"]\n"
		     "    transform: {}\n",
		     "t.yaml:5: transform.script: required");
	unlink(good);
	unlink(bad);
	rmdir(dir);
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
		cmocka_unit_test(deep_nesting_is_refused_early),
		cmocka_unit_test(nul_in_any_string_is_refused),
		cmocka_unit_test(values_in_messages_are_escaped_and_cut),
		cmocka_unit_test(nul_in_api_strings_is_seen_in_the_raw_bytes),
		cmocka_unit_test(durations_need_a_unit),
		cmocka_unit_test(ratio_format_and_mirror_mapping),
		cmocka_unit_test(auth_names_a_file_never_a_password),
		cmocka_unit_test(transform_is_compiled_and_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
