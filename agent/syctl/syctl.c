/* syctl — the operator's CLI for switchyardd, over gRPC.
 *
 * Exit codes (scripts rely on them): 0 done; 1 the server said no (its message on
 * stderr); 2 usage error (bad arguments or a bad spec file); 3 the server cannot be
 * reached. Human tables by default, `-o json` for one JSON document on stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/daemon.h"
#include "grpc/health/v1/health.pb-c.h"
#include "model/pbjson.h"
#include "rpc/rpc.h"
#include "model/job.h"
#include "model/spec.h"
#include "model/spec_pb.h"
#include "switchyard/v1/control.pb-c.h"
#include "switchyard/v1/events.pb-c.h"
#include "switchyard/v1/telemetry.pb-c.h"
#include "switchyard/v1/verify.pb-c.h"
#include "core/loop.h"
#include <signal.h>
#include <unistd.h>

#define EX_OK	       0
#define EX_REFUSED     1
#define EX_USAGE       2
#define EX_UNREACHABLE 3
#define DEFAULT_SERVER "unix:///run/switchyard/switchyard.sock"

static const char *server;
static uint64_t timeout_ms = 5000;
static int json;

static int usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("syctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see syctl %s%s--help)\n", cmd ? cmd : "", cmd ? " " : "");
	return EX_USAGE;
}

static int parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v <= 0)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		*ms = (uint64_t)v;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		*ms = (uint64_t)(v * 1000);
	else if (strcmp(end, "m") == 0)
		*ms = (uint64_t)(v * 60000);
	else
		return -EINVAL;
	return *ms ? 0 : -EINVAL;
}

/* One call; prints the failure and returns the exit code, or 0 with *resp. */
static int call(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
		ProtobufCMessage **resp)
{
	struct sy_rpc_status st;
	int e = sy_rpc_call_sync(server, method, req, rd, timeout_ms, 0, resp, &st);

	if (e) {
		fprintf(stderr, "syctl: %s: %s\n", method, strerror(-e));
		return EX_UNREACHABLE;
	}
	if (st.code == SY_GRPC_OK)
		return EX_OK;
	if (st.code == SY_GRPC_UNAVAILABLE ||
	    (st.code == SY_GRPC_DEADLINE_EXCEEDED && strstr(st.message, "while connecting"))) {
		fprintf(stderr, "syctl: cannot reach switchyardd at %s: %s\n", server, st.message);
		return EX_UNREACHABLE;
	}
	fprintf(stderr, "syctl: %s\n", st.message[0] ? st.message : "request refused");
	return EX_REFUSED;
}

/* The same without a word on failure: for optional parts of a view. */
static int call_quiet(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
		      ProtobufCMessage **resp)
{
	struct sy_rpc_status st;
	int e = sy_rpc_call_sync(server, method, req, rd, timeout_ms, 0, resp, &st);

	if (e)
		return e;
	if (st.code != SY_GRPC_OK) {
		if (*resp)
			protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
		return -EIO;
	}
	return 0;
}

static void print_json(const ProtobufCMessage *m)
{
	sy_pbjson_print(stdout, m);
	fputc('\n', stdout);
}

static const char *ago(uint64_t unix_ms, char *buf, size_t n)
{
	struct timespec ts;
	uint64_t now;

	if (!unix_ms)
		return "never";
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	snprintf(buf, n, "%.1fs ago", now > unix_ms ? (double)(now - unix_ms) / 1000 : 0.0);
	return buf;
}

static void print_migration(const Switchyard__V1__Migration *m)
{
	const Switchyard__V1__MigrationSpec *s = m->spec;
	const Switchyard__V1__SteeringCounters *c = m->counters;

	printf("name:      %s\n", s->name);
	printf("ratio:     %u.%02u%% (%ubp)\n", s->ratio_bp / 100, s->ratio_bp % 100, s->ratio_bp);
	printf("client:    %s\n",
	       s->client == SWITCHYARD__V1__CLIENT_MODE__CLIENT_CONNECTION ? "connection" : "cgroup");
	for (size_t i = 0; i < s->n_legacy; i++)
		printf("legacy:    %s\n", s->legacy[i]);
	for (size_t i = 0; i < m->n_targets; i++)
		printf("target:    %-24s %s%s%s\n", m->targets[i]->endpoint,
		       !m->targets[i]->checked	? "unchecked"
		       : m->targets[i]->healthy ? "healthy"
						: "UNHEALTHY",
		       m->targets[i]->last_error[0] ? ": " : "", m->targets[i]->last_error);
	for (size_t i = 0; i < s->n_pins; i++)
		printf("pin:       %s -> %s\n", s->pins[i]->cgroup,
		       s->pins[i]->side == SWITCHYARD__V1__SIDE__SIDE_TARGET ? "target" : "legacy");
	if (c)
		printf("decisions: legacy %llu, target %llu, pinned legacy %llu, pinned target %llu, "
		       "fallback %llu\n",
		       (unsigned long long)c->legacy, (unsigned long long)c->target,
		       (unsigned long long)c->pinned_legacy, (unsigned long long)c->pinned_target,
		       (unsigned long long)c->fallback);
	printf("origin:    %s\n", m->origin);
}

static void fmt_ms(uint64_t ms, char *buf, size_t n)
{
	if (ms >= 3600000)
		snprintf(buf, n, "%lluh%02llum", (unsigned long long)(ms / 3600000),
			 (unsigned long long)(ms / 60000 % 60));
	else if (ms >= 60000)
		snprintf(buf, n, "%llum%02llus", (unsigned long long)(ms / 60000),
			 (unsigned long long)(ms / 1000 % 60));
	else
		snprintf(buf, n, "%.1fs", (double)ms / 1000);
}

/* The plan's progress: phase, step, bake left, each gate against its threshold. */
static void print_cutover(const Switchyard__V1__Migration *m)
{
	const Switchyard__V1__CutoverStatus *c = m->cutover;
	const Switchyard__V1__Plan *p = m->spec->plan;
	char t[32];

	if (!c || c->phase == SWITCHYARD__V1__CUTOVER_PHASE__PHASE_NONE || !p)
		return;
	printf("plan:      ");
	for (size_t i = 0; i < p->n_steps_bp; i++)
		printf("%s%u%%", i ? " → " : "", p->steps_bp[i] / 100);
	printf(" (%s advance, evaluated every %.1fs over %.0fs)\n", p->manual ? "manual" : "auto",
	       (double)p->interval_ms / 1000, (double)p->window_ms / 1000);
	printf("phase:     %s", c->phase_name);
	if (c->paused_from[0])
		printf(" (from %s)", c->paused_from);
	if (c->step)
		printf(", step %u of %u (%u.%02u%%)", c->step, c->steps, c->step_ratio_bp / 100,
		       c->step_ratio_bp % 100);
	printf("\n");
	if (c->phase == SWITCHYARD__V1__CUTOVER_PHASE__PHASE_CUTTING_OVER) {
		fmt_ms(c->bake_left_ms, t, sizeof(t));
		printf("bake:      %s left%s\n", t,
		       c->ready ? " — baked, waiting for `syctl cutover NAME promote`" : "");
	}
	if (c->reason[0])
		printf("reason:    %s\n", c->reason);
	if (c->drained)
		printf("drained:   %llu target connection(s) ended\n", (unsigned long long)c->drained);
	if (c->n_gates) {
		printf("gates:     %llu target samples in the window, %llu evaluation(s) this step, last "
		       "%s\n",
		       (unsigned long long)c->samples, (unsigned long long)c->evaluations,
		       ago(c->last_evaluation_unix_ms, t, sizeof(t)));
		for (size_t i = 0; i < c->n_gates; i++) {
			const Switchyard__V1__GateStatus *g = c->gates[i];

			printf("  %-12s %10.4g  max %-10.4g %-8s %s\n", g->gate, g->value, g->threshold,
			       g->verdict, g->detail);
		}
	}
}

static int one_migration(const char *method, const ProtobufCMessage *req)
{
	ProtobufCMessage *resp;
	int rc = call(method, req, &switchyard__v1__migration__descriptor, &resp);

	if (rc)
		return rc;
	if (json)
		print_json(resp);
	else {
		print_migration((const void *)resp);
		print_cutover((const void *)resp);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}

/* ---- commands -------------------------------------------------------------------- */

struct cmd {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);
};

/* Per migration: backfill and audit progress with ETAs (best effort: a daemon
 * without the Verify service just shows nothing here). */
static void status_verification(void)
{
	Switchyard__V1__ListMigrationsRequest lreq = SWITCHYARD__V1__LIST_MIGRATIONS_REQUEST__INIT;
	Switchyard__V1__ListMigrationsResponse *l;
	ProtobufCMessage *resp = NULL;
	bool header = false;

	if (call_quiet("/switchyard.v1.Control/ListMigrations", &lreq.base,
		       &switchyard__v1__list_migrations_response__descriptor, &resp))
		return;
	l = (void *)resp;
	for (size_t i = 0; i < l->n_migrations; i++) {
		Switchyard__V1__GetBackfillRequest breq = SWITCHYARD__V1__GET_BACKFILL_REQUEST__INIT;
		Switchyard__V1__GetAuditRequest areq = SWITCHYARD__V1__GET_AUDIT_REQUEST__INIT;
		ProtobufCMessage *br = NULL, *ar = NULL;
		const char *name = l->migrations[i]->spec->name;

		breq.migration = areq.migration = (char *)name;
		if (call_quiet("/switchyard.v1.Verify/GetBackfill", &breq.base,
			       &switchyard__v1__backfill_status__descriptor, &br) == 0 &&
		    call_quiet("/switchyard.v1.Verify/GetAudit", &areq.base,
			       &switchyard__v1__audit_status__descriptor, &ar) == 0) {
			const Switchyard__V1__BackfillStatus *b = (void *)br;
			const Switchyard__V1__AuditStatus *a = (void *)ar;

			if (!header) {
				printf("\n%-16s %-30s %s\n", "MIGRATION", "BACKFILL", "AUDIT");
				header = true;
			}
			printf("%-16s %-8s %5.1f%% eta %5.0fs   %-8s %5.1f%% eta %5.0fs  drift %llu\n", name,
			       b->state, b->total ? 100.0 * (double)b->copied / (double)b->total : 0,
			       b->eta_s, a->state,
			       a->total ? 100.0 * (double)a->scanned / (double)a->total : 0, a->eta_s,
			       (unsigned long long)(a->missing + a->extra + a->type + a->value + a->ttl));
		}
		if (br)
			protobuf_c_message_free_unpacked(br, NULL);
		if (ar)
			protobuf_c_message_free_unpacked(ar, NULL);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
}

static int cmd_status(int argc, char **argv)
{
	Switchyard__V1__StatusRequest req = SWITCHYARD__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *resp;
	Switchyard__V1__StatusResponse *s;
	char t[32];
	int rc;

	if (argc > 2)
		return usage_err("status", "unexpected argument \"%s\"", argv[2]);
	if (argc == 2) {
		Switchyard__V1__GetMigrationRequest g = SWITCHYARD__V1__GET_MIGRATION_REQUEST__INIT;

		g.name = argv[1];
		return one_migration("/switchyard.v1.Control/GetMigration", &g.base);
	}
	if ((rc = call("/switchyard.v1.Control/Status", &req.base,
		       &switchyard__v1__status_response__descriptor, &resp)))
		return rc;
	s = (void *)resp;
	if (json) {
		print_json(resp);
	} else {
		printf("switchyardd %s, %u migration(s)\n", s->version, s->migrations);
		printf("attached:  %s (%s)\n", s->cgroup,
		       s->adopted ? "adopted pinned programs" : "fresh install");
		printf("bpffs:     %s\nstate:     %s\n\n", s->bpffs, s->state_dir);
		printf("%-16s %-7s %-28s %-10s %-8s %s\n", "MIGRATION", "ROLE", "ENDPOINT", "HEALTH", "RTT",
		       "CHECKED");
		for (size_t i = 0; i < s->n_endpoints; i++) {
			Switchyard__V1__EndpointHealth *e = s->endpoints[i];
			char rtt[16];

			snprintf(rtt, sizeof(rtt), e->healthy ? "%lluus" : "-",
				 (unsigned long long)e->rtt_us);
			printf("%-16s %-7s %-28s %-10s %-8s %s%s%s\n", e->migration, e->role, e->endpoint,
			       !e->checked  ? "unchecked"
			       : e->healthy ? "healthy"
					    : "UNHEALTHY",
			       rtt, ago(e->last_check_unix_ms, t, sizeof(t)), e->last_error[0] ? "  " : "",
			       e->last_error);
		}
		status_verification();
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}

static int cmd_apply(int argc, char **argv)
{
	const char *file = NULL;
	struct sy_spec spec;
	struct sy_spec_err err;
	int rc = EX_OK;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--file") == 0) && i + 1 < argc)
			file = argv[++i];
		else
			return usage_err("apply", "unexpected argument \"%s\"", argv[i]);
	}
	if (!file)
		return usage_err("apply", "-f FILE is required");
	if (sy_spec_load_file(file, &spec, &err)) {
		fprintf(stderr, "syctl: %s\n", err.msg);
		return EX_USAGE;
	}
	for (size_t i = 0; i < spec.n && rc == EX_OK; i++) {
		Switchyard__V1__ApplyMigrationRequest req = SWITCHYARD__V1__APPLY_MIGRATION_REQUEST__INIT;
		Switchyard__V1__MigrationSpec pb;
		ProtobufCMessage *resp;

		if (sy_spec_to_pb(&spec.migs[i], &pb)) {
			rc = EX_REFUSED;
			break;
		}
		req.spec = &pb;
		rc = call("/switchyard.v1.Control/ApplyMigration", &req.base,
			  &switchyard__v1__migration__descriptor, &resp);
		sy_spec_pb_free(&pb);
		if (rc == EX_OK) {
			if (json)
				print_json(resp);
			else
				printf("migration %s applied\n", spec.migs[i].name);
			protobuf_c_message_free_unpacked(resp, NULL);
		}
	}
	sy_spec_free(&spec);
	return rc;
}

static int cmd_get(int argc, char **argv)
{
	Switchyard__V1__GetMigrationRequest req = SWITCHYARD__V1__GET_MIGRATION_REQUEST__INIT;

	if (argc != 2)
		return usage_err("get", "expected NAME");
	req.name = argv[1];
	return one_migration("/switchyard.v1.Control/GetMigration", &req.base);
}

static int cmd_list(int argc, char **argv)
{
	Switchyard__V1__ListMigrationsRequest req = SWITCHYARD__V1__LIST_MIGRATIONS_REQUEST__INIT;
	Switchyard__V1__ListMigrationsResponse *l;
	ProtobufCMessage *resp;
	int rc;

	if (argc > 1)
		return usage_err("list", "unexpected argument \"%s\"", argv[1]);
	if ((rc = call("/switchyard.v1.Control/ListMigrations", &req.base,
		       &switchyard__v1__list_migrations_response__descriptor, &resp)))
		return rc;
	l = (void *)resp;
	if (json) {
		print_json(resp);
	} else {
		printf("%-16s %9s %-11s %-24s %-24s %s\n", "NAME", "RATIO", "CLIENT", "LEGACY", "TARGET",
		       "TARGETS HEALTHY");
		for (size_t i = 0; i < l->n_migrations; i++) {
			Switchyard__V1__Migration *m = l->migrations[i];
			size_t healthy = 0;
			char ratio[16];

			for (size_t j = 0; j < m->n_targets; j++)
				healthy += m->targets[j]->healthy;
			snprintf(ratio, sizeof(ratio), "%u.%02u%%", m->spec->ratio_bp / 100,
				 m->spec->ratio_bp % 100);
			printf("%-16s %9s %-11s %-24s %-24s %zu/%zu\n", m->spec->name, ratio,
			       m->spec->client == SWITCHYARD__V1__CLIENT_MODE__CLIENT_CONNECTION
				       ? "connection"
				       : "cgroup",
			       m->spec->n_legacy ? m->spec->legacy[0] : "-",
			       m->spec->n_target ? m->spec->target[0] : "-", healthy, m->n_targets);
		}
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}

static int cmd_delete(int argc, char **argv)
{
	Switchyard__V1__DeleteMigrationRequest req = SWITCHYARD__V1__DELETE_MIGRATION_REQUEST__INIT;
	ProtobufCMessage *resp;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			req.force = 1;
		else if (argv[i][0] == '-' || *req.name)
			return usage_err("delete", "unexpected argument \"%s\"", argv[i]);
		else
			req.name = argv[i];
	}
	if (!*req.name)
		return usage_err("delete", "expected NAME");
	if ((rc = call("/switchyard.v1.Control/DeleteMigration", &req.base,
		       &switchyard__v1__delete_migration_response__descriptor, &resp)))
		return rc;
	if (json)
		print_json(resp);
	else
		printf("migration %s deleted\n", req.name);
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}

static int cmd_cutover(int argc, char **argv)
{
	static const char *const actions[] = {"start", "promote", "pause", "resume", "rollback", "finish"};
	Switchyard__V1__SetRatioRequest req = SWITCHYARD__V1__SET_RATIO_REQUEST__INIT;
	Switchyard__V1__CutoverRequest creq = SWITCHYARD__V1__CUTOVER_REQUEST__INIT;
	size_t a;

	if (argc < 3)
		return usage_err("cutover",
				 "expected NAME start|promote|pause|resume|rollback|finish, or NAME RATIO "
				 "(25%%, 12.5%%, 2500bp)");
	for (a = 0; a < sizeof(actions) / sizeof(actions[0]) && strcmp(actions[a], argv[2]) != 0; a++)
		;
	if (a == sizeof(actions) / sizeof(actions[0])) {
		if (argc != 3)
			return usage_err("cutover", "unexpected argument \"%s\"", argv[3]);
		if (sy_ratio_parse(argv[2], &req.ratio_bp))
			return usage_err(
				"cutover",
				"\"%s\" is neither an action (start, promote, pause, resume, rollback, "
				"finish) nor a ratio from 0%% to 100%% (25%%, 12.5%%, 2500bp)",
				argv[2]);
		req.name = argv[1];
		return one_migration("/switchyard.v1.Control/SetRatio", &req.base);
	}
	creq.name = argv[1];
	creq.action = (Switchyard__V1__CutoverAction)a;
	creq.reason = "";
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--drain") == 0) {
			if (a != SWITCHYARD__V1__CUTOVER_ACTION__ACTION_ROLLBACK)
				return usage_err("cutover", "--drain: only with rollback");
			creq.drain = 1;
		} else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			creq.reason = argv[++i];
		} else {
			return usage_err("cutover", "unexpected argument \"%s\"", argv[i]);
		}
	}
	return one_migration("/switchyard.v1.Control/Cutover", &creq.base);
}

static int cmd_pin(int argc, char **argv)
{
	Switchyard__V1__PinRequest req = SWITCHYARD__V1__PIN_REQUEST__INIT;
	int have_side = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc) {
			req.cgroup = argv[++i];
		} else if (strcmp(argv[i], "--side") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "target") == 0)
				req.side = SWITCHYARD__V1__SIDE__SIDE_TARGET;
			else if (strcmp(argv[i], "legacy") == 0)
				req.side = SWITCHYARD__V1__SIDE__SIDE_LEGACY;
			else
				return usage_err("pin", "--side must be target or legacy, not \"%s\"",
						 argv[i]);
			have_side = 1;
		} else if (argv[i][0] != '-' && !*req.name) {
			req.name = argv[i];
		} else {
			return usage_err("pin", "unexpected argument \"%s\"", argv[i]);
		}
	}
	if (!*req.name || !*req.cgroup || !have_side)
		return usage_err("pin", "expected NAME --cgroup PATH --side target|legacy");
	return one_migration("/switchyard.v1.Control/Pin", &req.base);
}

static int cmd_unpin(int argc, char **argv)
{
	Switchyard__V1__UnpinRequest req = SWITCHYARD__V1__UNPIN_REQUEST__INIT;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc)
			req.cgroup = argv[++i];
		else if (argv[i][0] != '-' && !*req.name)
			req.name = argv[i];
		else
			return usage_err("unpin", "unexpected argument \"%s\"", argv[i]);
	}
	if (!*req.name || !*req.cgroup)
		return usage_err("unpin", "expected NAME --cgroup PATH");
	return one_migration("/switchyard.v1.Control/Unpin", &req.base);
}

static int cmd_health(int argc, char **argv)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage *resp;
	const ProtobufCEnumValue *ev;
	int rc;

	if (argc > 2)
		return usage_err("health", "unexpected argument \"%s\"", argv[2]);
	req.service = argc == 2 ? argv[1] : "";
	if ((rc = call("/grpc.health.v1.Health/Check", &req.base,
		       &grpc__health__v1__health_check_response__descriptor, &resp)))
		return rc;
	if (json) {
		print_json(resp);
	} else {
		ev = protobuf_c_enum_descriptor_get_value(
			&grpc__health__v1__health_check_response__serving_status__descriptor,
			((Grpc__Health__V1__HealthCheckResponse *)resp)->status);
		printf("%s\n", ev ? ev->name : "UNKNOWN");
	}
	rc = ((Grpc__Health__V1__HealthCheckResponse *)resp)->status ==
			     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
		     ? EX_OK
		     : EX_REFUSED;
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* ---- watch ----------------------------------------------------------------------- */

struct watch_ctx {
	struct sy_loop *loop;
	struct sy_rpc_client_call *call;
	long count, seen;
	int tty;
	int rc;
	int stopping;
};

static void fmt_us(uint64_t us, char *buf, size_t n)
{
	if (!us)
		snprintf(buf, n, "-");
	else if (us < 1000)
		snprintf(buf, n, "%lluus", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(buf, n, "%.1fms", (double)us / 1000);
	else
		snprintf(buf, n, "%.2fs", (double)us / 1e6);
}

static void print_snapshot(const Switchyard__V1__Snapshot *s, int tty)
{
	time_t t = (time_t)(s->unix_ms / 1000);
	char when[32];

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("switchyard watch — %s, every %.1fs (Ctrl-C to stop)\n", when, s->interval_s);
	for (size_t i = 0; i < s->n_migrations; i++) {
		const Switchyard__V1__MigrationSnapshot *m = s->migrations[i];

		printf("\n%s  ratio %u.%02u%%  targets healthy %u/%u  fallback %llu\n", m->name,
		       m->ratio_bp / 100, m->ratio_bp % 100, m->healthy_targets, m->targets,
		       (unsigned long long)m->fallback);
		if (m->phase && m->phase[0] && strcmp(m->phase, "none") != 0) {
			char bake[32] = "";

			if (m->bake_left_ms)
				snprintf(bake, sizeof(bake), ", bake %.1fs left",
					 (double)m->bake_left_ms / 1000);
			if (m->step)
				printf("  plan: %s, step %u of %u%s%s%s\n", m->phase, m->step, m->steps, bake,
				       m->reason[0] ? " — " : "", m->reason);
			else
				printf("  plan: %s%s%s\n", m->phase, m->reason[0] ? " — " : "", m->reason);
		}
		printf("  %-7s %9s %9s %9s %10s %10s %8s %8s %8s %8s %7s %9s %8s\n", "SIDE", "READS/S",
		       "WRITES/S", "OTHER/S", "OUT B/S", "IN B/S", "P50", "P95", "P99", "ERR/S", "ERR%",
		       "CONNECTS", "UNPARSED");
		for (size_t j = 0; j < m->n_sides; j++) {
			const Switchyard__V1__SideSnapshot *d = m->sides[j];
			char p50[16], p95[16], p99[16];

			fmt_us(d->p50_us, p50, sizeof(p50));
			fmt_us(d->p95_us, p95, sizeof(p95));
			fmt_us(d->p99_us, p99, sizeof(p99));
			printf("  %-7s %9.1f %9.1f %9.1f %10.0f %10.0f %8s %8s %8s %8.1f %6.2f%% %9llu "
			       "%8llu\n",
			       d->side, d->reads_per_s, d->writes_per_s, d->others_per_s, d->bytes_out_per_s,
			       d->bytes_in_per_s, p50, p95, p99, d->errors_per_s, 100 * d->error_ratio,
			       (unsigned long long)d->decisions, (unsigned long long)d->unparsed);
		}
		for (size_t j = 0; j < m->n_mirror; j++) {
			const Switchyard__V1__MirrorSnapshot *x = m->mirror[j];
			char p50[16], p99[16];

			fmt_us(x->lag_p50_us, p50, sizeof(p50));
			fmt_us(x->lag_p99_us, p99, sizeof(p99));
			printf("  mirror %-7s %9.1f/s  lag p50 %s p99 %s  queued %llu  failed %llu  repaired "
			       "%llu  "
			       "dropped %llu  dirty %llu%s\n",
			       x->direction, x->mirrored_per_s, p50, p99, (unsigned long long)x->queued,
			       (unsigned long long)x->failed, (unsigned long long)x->repaired,
			       (unsigned long long)x->dropped, (unsigned long long)x->dirty,
			       x->needs_audit ? "  NEEDS AUDIT" : "");
		}
		if (m->checked_per_s > 0 ||
		    (m->audit_state && sy_job_state_parse(m->audit_state) != SY_JOB_IDLE) ||
		    (m->backfill_state && sy_job_state_parse(m->backfill_state) != SY_JOB_IDLE))
			printf("  verify: %.1f checked/s  drift %llu (rate %.4f)  audit %s %.0f%%  backfill "
			       "%s %.0f%% eta %.0fs\n",
			       m->checked_per_s, (unsigned long long)m->drift, m->drift_rate,
			       m->audit_state ? m->audit_state : "idle", 100 * m->audit_progress,
			       m->backfill_state ? m->backfill_state : "idle", 100 * m->backfill_progress,
			       m->backfill_eta_s);
		if (m->n_sides == 2 && (m->sides[0]->events_lost || m->sides[1]->events_lost))
			printf("  ring buffer: %llu events lost\n",
			       (unsigned long long)(m->sides[0]->events_lost + m->sides[1]->events_lost));
	}
	fflush(stdout);
}

/* The final status of a streaming call: the exit code, the message printed once. */
static void stream_ended(struct watch_ctx *w, const struct sy_rpc_status *st)
{
	w->call = NULL;
	if (!w->stopping) {
		if (st->code == SY_GRPC_OK || st->code == SY_GRPC_CANCELLED) {
			w->rc = EX_OK;
		} else if (st->code == SY_GRPC_UNAVAILABLE || (st->code == SY_GRPC_DEADLINE_EXCEEDED &&
							       strstr(st->message, "while connecting"))) {
			fprintf(stderr, "syctl: cannot reach switchyardd at %s: %s\n", server, st->message);
			w->rc = EX_UNREACHABLE;
		} else {
			fprintf(stderr, "syctl: %s\n", st->message);
			w->rc = EX_REFUSED;
		}
	}
	sy_loop_stop(w->loop);
}

static void on_snapshot(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct watch_ctx *w = arg;

	if (msg) {
		if (json)
			print_json(msg);
		else
			print_snapshot((const void *)msg, w->tty);
		fflush(stdout);
		if (w->count && ++w->seen >= w->count && !w->stopping) {
			w->stopping = 1;
			w->rc = EX_OK;
			sy_loop_stop(w->loop);
		}
		return;
	}
	stream_ended(w, st);
}

static void on_interrupt(struct sy_loop *l, int signo, void *arg)
{
	struct watch_ctx *w = arg;

	(void)signo;
	w->stopping = 1;
	w->rc = EX_OK;
	sy_loop_stop(l);
}

/* Runs one streaming call until it ends, Ctrl-C, or cb stops the loop. */
static int run_stream(const char *path, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
		      uint64_t deadline_ms, sy_rpc_client_cb cb, struct watch_ctx *w)
{
	struct sy_rpc_client *c;

	w->loop = sy_loop_new();
	if (!w->loop)
		return EX_REFUSED;
	c = sy_rpc_client_new(w->loop, server, 0);
	if (!c || sy_rpc_client_start(c, path, req, rd, deadline_ms, cb, w, &w->call)) {
		fprintf(stderr, "syctl: %s: cannot start the call\n", path);
		sy_rpc_client_free(c);
		sy_loop_free(w->loop);
		return EX_UNREACHABLE;
	}
	sy_loop_add_signal(w->loop, SIGINT, on_interrupt, w);
	sy_loop_add_signal(w->loop, SIGTERM, on_interrupt, w);
	sy_loop_run(w->loop);
	if (w->call) {
		w->stopping = 1;
		sy_rpc_client_cancel(w->call);
	}
	sy_rpc_client_free(c);
	sy_loop_free(w->loop);
	return w->rc;
}

static int cmd_watch(int argc, char **argv)
{
	Switchyard__V1__WatchRequest req = SWITCHYARD__V1__WATCH_REQUEST__INIT;
	struct watch_ctx w = {.rc = EX_UNREACHABLE, .tty = isatty(STDOUT_FILENO)};
	uint64_t ms;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			if (parse_duration(argv[++i], &ms) || ms < 10 || ms > 3600000)
				return usage_err("watch",
						 "--interval: \"%s\" is not a duration from 10ms to 1h",
						 argv[i]);
			req.interval_ms = (uint32_t)ms;
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			char *end;

			w.count = strtol(argv[++i], &end, 10);
			if (*end || w.count <= 0)
				return usage_err("watch", "--count: \"%s\" is not a positive number",
						 argv[i]);
		} else if (argv[i][0] != '-' && !*req.migration) {
			req.migration = argv[i];
		} else {
			return usage_err("watch", "unexpected argument \"%s\"", argv[i]);
		}
	}
	return run_stream("/switchyard.v1.Telemetry/Watch", &req.base, &switchyard__v1__snapshot__descriptor,
			  0, on_snapshot, &w);
}

/* ---- events ---------------------------------------------------------------------- */

static void print_event(const Switchyard__V1__Event *e)
{
	time_t t = (time_t)(e->unix_ms / 1000);
	struct tm tm;
	char when[32];

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s.%03u  %-16s %-24s %s\n", when, (unsigned)(e->unix_ms % 1000),
	       e->migration[0] ? e->migration : "-", e->kind, e->message);
}

static void on_event(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	if (!msg) {
		stream_ended(arg, st);
		return;
	}
	if (json)
		print_json(msg);
	else
		print_event((const void *)msg);
	fflush(stdout);
}

static int cmd_events(int argc, char **argv)
{
	Switchyard__V1__EventsRequest req = SWITCHYARD__V1__EVENTS_REQUEST__INIT;
	struct watch_ctx w = {.rc = EX_UNREACHABLE};

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			req.follow = 1;
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			char *end;

			errno = 0;
			req.since_seq = strtoull(argv[++i], &end, 10);
			if (errno || end == argv[i] || *end || argv[i][0] == '-')
				return usage_err("events", "--since: \"%s\" is not an event seq", argv[i]);
		} else if (argv[i][0] != '-' && !*req.migration) {
			req.migration = argv[i];
		} else {
			return usage_err("events", "unexpected argument \"%s\"", argv[i]);
		}
	}
	/* A replay ends by itself: it gets the usual deadline; a follow runs until Ctrl-C. */
	return run_stream("/switchyard.v1.Telemetry/Events", &req.base, &switchyard__v1__event__descriptor,
			  req.follow ? 0 : timeout_ms, on_event, &w);
}

/* ---- verify ---------------------------------------------------------------------- */

static void print_audit(const Switchyard__V1__AuditStatus *a)
{
	printf("%s: audit %s  scanned %llu/%llu  %.0f keys/s", a->migration, a->state,
	       (unsigned long long)a->scanned, (unsigned long long)a->total, a->keys_per_s);
	if (sy_job_state_parse(a->state) == SY_JOB_RUNNING)
		printf("  eta %.0fs", a->eta_s);
	printf("\n  drift: missing %llu  extra %llu  type %llu  value %llu  ttl %llu  (repaired %llu)\n",
	       (unsigned long long)a->missing, (unsigned long long)a->extra, (unsigned long long)a->type,
	       (unsigned long long)a->value, (unsigned long long)a->ttl, (unsigned long long)a->repaired);
	printf("  dual reads: %llu compared, %llu drifted, %llu re-checked\n",
	       (unsigned long long)a->dual_checked, (unsigned long long)a->dual_drift,
	       (unsigned long long)a->dual_rechecked);
	if (a->error && a->error[0])
		printf("  error: %s\n", a->error);
	for (size_t i = 0; i < a->n_drift; i++)
		printf("  %-8s %s\n", a->drift[i]->kind, a->drift[i]->key);
}

static int cmd_verify(int argc, char **argv)
{
	Switchyard__V1__StartAuditRequest start = SWITCHYARD__V1__START_AUDIT_REQUEST__INIT;
	Switchyard__V1__GetAuditRequest get = SWITCHYARD__V1__GET_AUDIT_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	bool report = false, no_wait = false;
	char *name = NULL; /* protobuf-c's INIT leaves strings "", not NULL */
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--repair") == 0) {
			start.repair = true;
		} else if (strcmp(argv[i], "--report") == 0) {
			report = true;
		} else if (strcmp(argv[i], "--no-wait") == 0) {
			no_wait = true;
		} else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);

			if (*end || argv[i][0] == '-' || v == 0 || v > 10000000)
				return usage_err(
					"verify",
					"--rate: \"%s\" is not a number of keys per second (1..10000000)",
					argv[i]);
			start.keys_per_s = (uint32_t)v;
		} else if (argv[i][0] != '-' && !name) {
			name = argv[i];
		} else {
			return usage_err("verify", "unexpected argument \"%s\"", argv[i]);
		}
	}
	if (!name)
		return usage_err("verify", "expected NAME");
	start.migration = get.migration = name;
	get.report = report;
	if (!report) {
		/* a new audit, then its progress until it ends */
		if ((rc = call("/switchyard.v1.Verify/StartAudit", &start.base,
			       &switchyard__v1__audit_status__descriptor, &resp)))
			return rc;
		protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
		for (;;) {
			const Switchyard__V1__AuditStatus *a;

			if ((rc = call("/switchyard.v1.Verify/GetAudit", &get.base,
				       &switchyard__v1__audit_status__descriptor, &resp)))
				return rc;
			a = (void *)resp;
			if (no_wait || sy_job_state_parse(a->state) != SY_JOB_RUNNING)
				break;
			if (!json && isatty(STDERR_FILENO))
				fprintf(stderr, "\r%s: scanned %llu/%llu, eta %.0fs   ", a->migration,
					(unsigned long long)a->scanned, (unsigned long long)a->total,
					a->eta_s);
			protobuf_c_message_free_unpacked(resp, NULL);
			resp = NULL;
			usleep(200 * 1000);
		}
		if (!json && isatty(STDERR_FILENO))
			fprintf(stderr, "\n");
	} else if ((rc = call("/switchyard.v1.Verify/GetAudit", &get.base,
			      &switchyard__v1__audit_status__descriptor, &resp))) {
		return rc;
	}
	if (json)
		print_json(resp);
	else
		print_audit((void *)resp);
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}

static void print_backfill(const Switchyard__V1__BackfillStatus *b, bool bar)
{
	double pct = b->total ? 100.0 * (double)b->copied / (double)b->total : 0;
	char line[64];
	int filled = (int)(pct > 100 ? 30 : pct * 30 / 100);

	memset(line, '#', (size_t)filled);
	memset(line + filled, '.', (size_t)(30 - filled));
	line[30] = 0;
	printf("%s%s: backfill %s [%s] %llu/%llu keys  %.0f keys/s  %.1f MB/s", bar ? "\r" : "", b->migration,
	       b->state, line, (unsigned long long)b->copied, (unsigned long long)b->total, b->keys_per_s,
	       b->bytes_per_s / 1e6);
	if (sy_job_state_parse(b->state) == SY_JOB_RUNNING)
		printf("  eta %.0fs", b->eta_s);
	if (b->resumed)
		printf("  (resumed)");
	printf(bar ? "   " : "\n");
	fflush(stdout);
}

static int cmd_backfill(int argc, char **argv)
{
	Switchyard__V1__StartBackfillRequest start = SWITCHYARD__V1__START_BACKFILL_REQUEST__INIT;
	Switchyard__V1__GetBackfillRequest get = SWITCHYARD__V1__GET_BACKFILL_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	bool follow = false, status = false;
	char *name = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			follow = true;
		} else if (strcmp(argv[i], "--status") == 0) {
			status = true;
		} else if ((strcmp(argv[i], "--rate") == 0 || strcmp(argv[i], "--bytes-rate") == 0) &&
			   i + 1 < argc) {
			char *end;
			bool keys = strcmp(argv[i], "--rate") == 0;
			unsigned long long v = strtoull(argv[++i], &end, 10);

			if (*end || argv[i][0] == '-' || v == 0 || (keys && v > 10000000))
				return usage_err("backfill", "%s: \"%s\" is not a positive rate", argv[i - 1],
						 argv[i]);
			if (keys)
				start.keys_per_s = (uint32_t)v;
			else
				start.bytes_per_s = v;
		} else if (argv[i][0] != '-' && !name) {
			name = argv[i];
		} else {
			return usage_err("backfill", "unexpected argument \"%s\"", argv[i]);
		}
	}
	if (!name)
		return usage_err("backfill", "expected NAME");
	start.migration = get.migration = name;
	if (!status) {
		if ((rc = call("/switchyard.v1.Verify/StartBackfill", &start.base,
			       &switchyard__v1__backfill_status__descriptor, &resp)))
			return rc;
		protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
	}
	for (;;) {
		const Switchyard__V1__BackfillStatus *b;

		if ((rc = call("/switchyard.v1.Verify/GetBackfill", &get.base,
			       &switchyard__v1__backfill_status__descriptor, &resp)))
			return rc;
		b = (void *)resp;
		if (!follow || sy_job_state_parse(b->state) != SY_JOB_RUNNING)
			break;
		if (!json)
			print_backfill(b, true);
		protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
		usleep(250 * 1000);
	}
	if (json) {
		print_json(resp);
	} else {
		if (follow)
			printf("\n");
		print_backfill((void *)resp, false);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}

static const struct cmd cmds[] = {
	{"status", "[NAME]",
	 "daemon version, attachment, endpoint health; with NAME: the plan's step, bake left, gates",
	 cmd_status},
	{"apply", "-f FILE", "create or update the migrations of a spec file", cmd_apply},
	{"get", "NAME", "one migration: ratio, endpoints, pins, steering decisions", cmd_get},
	{"list", "", "all migrations", cmd_list},
	{"delete", "NAME [--force]",
	 "delete a migration (refused while clients are on target, unless forced)", cmd_delete},
	{"cutover", "NAME start|promote|pause|resume|rollback [--drain]|finish [--reason TEXT] | NAME RATIO",
	 "drive the plan; a RATIO (25%, 2500bp) set by hand pauses it", cmd_cutover},
	{"pin", "NAME --cgroup PATH --side target|legacy", "force one client (cgroup) to a side", cmd_pin},
	{"unpin", "NAME --cgroup PATH", "remove a pin", cmd_unpin},
	{"watch", "[NAME] [--interval 1s] [--count N]",
	 "live per-side telemetry (-o json: one line per snapshot)", cmd_watch},
	{"events", "[NAME] [-f|--follow] [--since SEQ]",
	 "state changes: the history, then new ones with -f (-o json: one line each)", cmd_events},
	{"health", "[SERVICE]", "grpc.health.v1 check of the daemon (exit 0 when SERVING)", cmd_health},
	{"backfill", "NAME [--rate KEYS/S] [--bytes-rate B/S] [-f|--follow] | NAME --status",
	 "copy legacy's keys to target (resumable); --follow shows a progress bar", cmd_backfill},
	{"verify", "NAME [--repair] [--rate N] [--no-wait] | NAME --report",
	 "audit both sides (missing, extra, type, value, ttl); --report lists the drifted keys", cmd_verify},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: syctl [--server unix:///PATH|HOST:PORT] [--timeout DURATION] [-o table|json] COMMAND "
		"[ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %-40s %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
	fprintf(f, "\nexit codes: 0 done, 1 refused by the server, 2 usage error, 3 server unreachable\n"
		   "server: --server, else $SYCTL_SERVER, else " DEFAULT_SERVER "\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", required_argument, 0, 's'}, {"timeout", required_argument, 0, 't'},
		{"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
	};
	int c;

	server = getenv("SYCTL_SERVER") ? getenv("SYCTL_SERVER") : DEFAULT_SERVER;
	opterr = 0;
	/* "+": stop at the command; its own options are parsed by the command. */
	while ((c = getopt_long(argc, argv, "+o:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			server = optarg;
			break;
		case 't':
			if (parse_duration(optarg, &timeout_ms))
				return usage_err(NULL, "--timeout: \"%s\" is not a duration (5s, 500ms)",
						 optarg);
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0)
				json = 1;
			else if (strcmp(optarg, "table") == 0)
				json = 0;
			else
				return usage_err(NULL, "-o: \"%s\" is not table or json", optarg);
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("syctl %s\n", SY_VERSION);
			return EX_OK;
		default:
			return usage_err(NULL, "%s: unknown option or missing value", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, argv[optind]) != 0)
			continue;
		/* Options may also follow the command: -o json and --help anywhere. */
		int n = 0;
		char **rest = calloc((size_t)(argc - optind + 1), sizeof(char *));

		if (!rest)
			return EX_REFUSED;
		for (int j = optind; j < argc; j++) {
			if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
				printf("usage: syctl %s %s\n  %s\n", cmds[i].name, cmds[i].args,
				       cmds[i].help);
				free(rest);
				return EX_OK;
			}
			if (strcmp(argv[j], "-o") == 0 && j + 1 < argc) {
				if (strcmp(argv[j + 1], "json") != 0 && strcmp(argv[j + 1], "table") != 0) {
					free(rest);
					return usage_err(cmds[i].name, "-o: \"%s\" is not table or json",
							 argv[j + 1]);
				}
				json = strcmp(argv[++j], "json") == 0;
				continue;
			}
			rest[n++] = argv[j];
		}
		int rc = cmds[i].run(n, rest);

		free(rest);
		return rc;
	}
	return usage_err(NULL, "unknown command \"%s\"", argv[optind]);
}
