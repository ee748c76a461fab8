// SPDX-License-Identifier: Apache-2.0
/* cmd_migrations.c — the commands on migrations: status, apply, get, list, delete,
 * cutover, pin, unpin, and the daemon's health check. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syctl/syctl.h"

#include "core/daemon.h"
#include "grpc/health/v1/health.pb-c.h"
#include "model/pbjson.h"
#include "model/spec.h"
#include "model/spec_pb.h"

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
			if (l->migrations[i]->spec->n_scope)
				print_scope(l->migrations[i], "  scope: ");
		}
		if (br)
			protobuf_c_message_free_unpacked(br, NULL);
		if (ar)
			protobuf_c_message_free_unpacked(ar, NULL);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
}

/* ,"key": and the answer to method as JSON, or null when it could not be had. */
static void json_answer(const char *key, const char *method, const ProtobufCMessage *req,
			const ProtobufCMessageDescriptor *rd)
{
	ProtobufCMessage *r = NULL;

	printf(",\"%s\":", key);
	if (call_quiet(method, req, rd, &r) == 0)
		sy_pbjson_print(stdout, r);
	else
		fputs("null", stdout);
	if (r)
		protobuf_c_message_free_unpacked(r, NULL);
}

/* One migration's entry of status's JSON: the Migration, then its backfill and audit
 * (their "idle" state when never run; null only from a daemon without Verify). */
static void status_json_entry(const Switchyard__V1__Migration *m)
{
	Switchyard__V1__GetBackfillRequest breq = SWITCHYARD__V1__GET_BACKFILL_REQUEST__INIT;
	Switchyard__V1__GetAuditRequest areq = SWITCHYARD__V1__GET_AUDIT_REQUEST__INIT;

	breq.migration = areq.migration = m->spec->name;
	fputs("{\"name\":", stdout);
	sy_json_string(stdout, m->spec->name);
	fputs(",\"migration\":", stdout);
	sy_pbjson_print(stdout, &m->base);
	json_answer("backfill", "/switchyard.v1.Verify/GetBackfill", &breq.base,
		    &switchyard__v1__backfill_status__descriptor);
	json_answer("audit", "/switchyard.v1.Verify/GetAudit", &areq.base,
		    &switchyard__v1__audit_status__descriptor);
	fputc('}', stdout);
}

/* `status` and `status NAME` in one shape (docs/json.md): the daemon, then each
 * migration asked for with its backfill and audit. */
static int status_json(const char *name)
{
	Switchyard__V1__StatusRequest req = SWITCHYARD__V1__STATUS_REQUEST__INIT;
	Switchyard__V1__ListMigrationsRequest lreq = SWITCHYARD__V1__LIST_MIGRATIONS_REQUEST__INIT;
	Switchyard__V1__GetMigrationRequest greq = SWITCHYARD__V1__GET_MIGRATION_REQUEST__INIT;
	ProtobufCMessage *st, *resp;
	int rc;

	if ((rc = call("/switchyard.v1.Control/Status", &req.base,
		       &switchyard__v1__status_response__descriptor, &st)))
		return rc;
	if (name) {
		greq.name = (char *)name;
		rc = call("/switchyard.v1.Control/GetMigration", &greq.base,
			  &switchyard__v1__migration__descriptor, &resp);
	} else {
		rc = call("/switchyard.v1.Control/ListMigrations", &lreq.base,
			  &switchyard__v1__list_migrations_response__descriptor, &resp);
	}
	if (rc) {
		protobuf_c_message_free_unpacked(st, NULL);
		return rc;
	}
	fputs("{\"apiVersion\":\"switchyard.v1\",\"daemon\":", stdout);
	sy_pbjson_print(stdout, st);
	fputs(",\"migrations\":[", stdout);
	if (name) {
		status_json_entry((const void *)resp);
	} else {
		const Switchyard__V1__ListMigrationsResponse *l = (const void *)resp;

		for (size_t i = 0; i < l->n_migrations; i++) {
			if (i)
				fputc(',', stdout);
			status_json_entry(l->migrations[i]);
		}
	}
	fputs("]}\n", stdout);
	protobuf_c_message_free_unpacked(resp, NULL);
	protobuf_c_message_free_unpacked(st, NULL);
	return EX_OK;
}

/* One line for the control plane's TLS (only when some TCP listener or client has it). */
static void print_tls(const Switchyard__V1__TlsStatus *t)
{
	if (!t || (!t->enabled && !t->insecure_listen && !t->n_certificates))
		return;
	if (t->enabled)
		printf("tls:       %s%s%s; %llu handshake(s) refused, %llu read-only call(s) denied\n",
		       t->client_auth ? "mTLS" : "TLS, no client certificate asked",
		       t->readonly_ou[0] ? ", read-only OU " : "", t->readonly_ou,
		       (unsigned long long)t->handshakes_refused, (unsigned long long)t->readonly_denied);
	else if (t->insecure_listen)
		printf("tls:       NONE: --insecure-listen serves the API unencrypted\n");
	for (size_t i = 0; i < t->n_certificates; i++) {
		const Switchyard__V1__TlsCertificate *c = t->certificates[i];
		time_t exp = (time_t)(c->not_after_unix_ms / 1000);
		struct tm tm;
		char day[32] = "?";

		if (gmtime_r(&exp, &tm))
			strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		printf("cert:      %s: %s, expires %s\n", c->context, c->subject, day);
	}
}

int cmd_status(int argc, char **argv)
{
	Switchyard__V1__StatusRequest req = SWITCHYARD__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *resp;
	Switchyard__V1__StatusResponse *s;
	char t[32];
	int rc;

	if (argc > 2)
		return usage_err("status", "unexpected argument \"%s\"", argv[2]);
	if (json)
		return status_json(argc == 2 ? argv[1] : NULL);
	if (argc == 2) {
		Switchyard__V1__GetMigrationRequest g = SWITCHYARD__V1__GET_MIGRATION_REQUEST__INIT;

		g.name = argv[1];
		return one_migration("/switchyard.v1.Control/GetMigration", &g.base);
	}
	if ((rc = call("/switchyard.v1.Control/Status", &req.base,
		       &switchyard__v1__status_response__descriptor, &resp)))
		return rc;
	s = (void *)resp;
	printf("switchyardd %s, %u migration(s)\n", s->version, s->migrations);
	printf("attached:  %s (%s)\n", s->cgroup, s->adopted ? "adopted pinned programs" : "fresh install");
	printf("bpffs:     %s\nstate:     %s\n", s->bpffs, s->state_dir);
	if (s->node[0])
		printf("fleet:     node %s, leader %s (%s)\n", s->node, s->leader[0] ? s->leader : "unknown",
		       s->store);
	print_tls(s->tls);
	printf("\n");
	printf("%-16s %-7s %-28s %-10s %-8s %s\n", "MIGRATION", "ROLE", "ENDPOINT", "HEALTH", "RTT",
	       "CHECKED");
	for (size_t i = 0; i < s->n_endpoints; i++) {
		Switchyard__V1__EndpointHealth *e = s->endpoints[i];
		char rtt[16];

		snprintf(rtt, sizeof(rtt), e->healthy ? "%lluus" : "-", (unsigned long long)e->rtt_us);
		printf("%-16s %-7s %-28s %-10s %-8s %s%s%s\n", e->migration, e->role, e->endpoint,
		       !e->checked  ? "unchecked"
		       : e->healthy ? "healthy"
				    : "UNHEALTHY",
		       rtt, ago(e->last_check_unix_ms, t, sizeof(t)), e->last_error[0] ? "  " : "",
		       e->last_error);
	}
	status_verification();
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}

int cmd_apply(int argc, char **argv)
{
	const char *file = NULL;
	struct sy_spec spec;
	struct sy_spec_err err;
	int rc = EX_OK, dry_run = 0;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--file") == 0) && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry_run = 1;
		else
			return usage_err("apply", "unexpected argument \"%s\"", argv[i]);
	}
	if (!file)
		return usage_err("apply", "-f FILE is required");
	if (dry_run)
		return apply_dry_run(file);
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

/* `syctl get NAME` as text: the migration, its plan and its sides. */
static void print_get(const ProtobufCMessage *resp)
{
	print_migration((const void *)resp);
	print_plan_line((const void *)resp);
	print_sides((const void *)resp);
}

int cmd_get(int argc, char **argv)
{
	Switchyard__V1__GetMigrationRequest req = SWITCHYARD__V1__GET_MIGRATION_REQUEST__INIT;

	if (argc != 2)
		return usage_err("get", "expected NAME");
	req.name = argv[1];
	return call_show("/switchyard.v1.Control/GetMigration", &req.base,
			 &switchyard__v1__migration__descriptor, print_get);
}

static void print_list(const ProtobufCMessage *resp)
{
	const Switchyard__V1__ListMigrationsResponse *l = (const void *)resp;

	printf("%-16s %9s %-11s %-24s %-24s %s\n", "NAME", "RATIO", "CLIENT", "LEGACY", "TARGET",
	       "TARGETS HEALTHY");
	for (size_t i = 0; i < l->n_migrations; i++) {
		Switchyard__V1__Migration *m = l->migrations[i];
		size_t healthy = 0;
		char ratio[SY_RATIO_STRLEN];

		for (size_t j = 0; j < m->n_targets; j++)
			healthy += m->targets[j]->healthy;
		sy_ratio_format(m->spec->ratio_bp, ratio, sizeof(ratio));
		printf("%-16s %9s %-11s %-24s %-24s %zu/%zu\n", m->spec->name, ratio,
		       m->spec->client == SWITCHYARD__V1__CLIENT_MODE__CLIENT_CONNECTION ? "connection"
											 : "cgroup",
		       m->spec->n_legacy ? m->spec->legacy[0] : "-",
		       m->spec->n_target ? m->spec->target[0] : "-", healthy, m->n_targets);
	}
}

int cmd_list(int argc, char **argv)
{
	Switchyard__V1__ListMigrationsRequest req = SWITCHYARD__V1__LIST_MIGRATIONS_REQUEST__INIT;

	return call_show_bare("list", argc, argv, "/switchyard.v1.Control/ListMigrations", &req.base,
			      &switchyard__v1__list_migrations_response__descriptor, print_list);
}

int cmd_delete(int argc, char **argv)
{
	Switchyard__V1__DeleteMigrationRequest req = SWITCHYARD__V1__DELETE_MIGRATION_REQUEST__INIT;
	ProtobufCMessage *resp;
	static char hint[128];
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
	if (!req.force) {
		snprintf(hint, sizeof(hint), "`syctl delete %s --force` deletes it anyway", req.name);
		refusal_hint = hint;
	}
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

int cmd_cutover(int argc, char **argv)
{
	static const char *const actions[] = {"start", "promote", "pause", "resume", "rollback", "finish"};
	Switchyard__V1__SetRatioRequest req = SWITCHYARD__V1__SET_RATIO_REQUEST__INIT;
	Switchyard__V1__CutoverRequest creq = SWITCHYARD__V1__CUTOVER_REQUEST__INIT;
	uint64_t wait_ms = 0;
	bool wait = false;
	size_t a;

	if (argc < 3)
		return usage_err("cutover",
				 "expected NAME start|promote|pause|resume|rollback|finish, or NAME RATIO "
				 "(25%%, 12.5%%, 2500bp)");
	for (a = 0; a < sizeof(actions) / sizeof(actions[0]) && strcmp(actions[a], argv[2]) != 0; a++)
		;
	if (a == sizeof(actions) / sizeof(actions[0])) {
		req.reason = "";
		if (argc == 5 && strcmp(argv[3], "--reason") == 0)
			req.reason = argv[4];
		else if (argc != 3)
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
		} else if (strcmp(argv[i], "--wait") == 0) {
			wait = true;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			int e = duration_arg("cutover", "--timeout", argv[++i], &wait_ms);

			if (e == EX_USAGE)
				return e;
			if (e || wait_ms == 0)
				return usage_err("cutover", "--timeout: \"%s\" is not a duration (10m, 1h)",
						 argv[i]);
		} else {
			return usage_err("cutover", "unexpected argument \"%s\"", argv[i]);
		}
	}
	if (wait_ms && !wait)
		return usage_err("cutover", "--timeout: only with --wait");
	if (wait && a != SWITCHYARD__V1__CUTOVER_ACTION__ACTION_START &&
	    a != SWITCHYARD__V1__CUTOVER_ACTION__ACTION_PROMOTE &&
	    a != SWITCHYARD__V1__CUTOVER_ACTION__ACTION_RESUME)
		return usage_err("cutover", "--wait: only with start, promote or resume");
	if (wait)
		return cutover_wait(&creq, wait_ms);
	return one_migration("/switchyard.v1.Control/Cutover", &creq.base);
}

int cmd_pin(int argc, char **argv)
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
		} else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			req.reason = argv[++i];
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

int cmd_unpin(int argc, char **argv)
{
	Switchyard__V1__UnpinRequest req = SWITCHYARD__V1__UNPIN_REQUEST__INIT;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc)
			req.cgroup = argv[++i];
		else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
			req.reason = argv[++i];
		else if (argv[i][0] != '-' && !*req.name)
			req.name = argv[i];
		else
			return usage_err("unpin", "unexpected argument \"%s\"", argv[i]);
	}
	if (!*req.name || !*req.cgroup)
		return usage_err("unpin", "expected NAME --cgroup PATH");
	return one_migration("/switchyard.v1.Control/Unpin", &req.base);
}

int cmd_health(int argc, char **argv)
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

/* The client's version, then the daemon's: a mismatch is the first thing to rule out. */
int cmd_version(int argc, char **argv)
{
	Switchyard__V1__StatusRequest req = SWITCHYARD__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rc;

	if (argc > 1)
		return usage_err("version", "unexpected argument \"%s\"", argv[1]);
	if (!json)
		printf("syctl        %s\n", SY_VERSION);
	rc = call("/switchyard.v1.Control/Status", &req.base, &switchyard__v1__status_response__descriptor,
		  &resp);
	if (json) { /* the shape of docs/json.md: server "" when it could not be asked */
		fputs("{\"client\":", stdout);
		sy_json_string(stdout, SY_VERSION);
		fputs(",\"server\":", stdout);
		sy_json_string(stdout, rc ? "" : ((Switchyard__V1__StatusResponse *)resp)->version);
		fputs("}\n", stdout);
	} else if (!rc)
		printf("switchyardd  %s\n", ((Switchyard__V1__StatusResponse *)resp)->version);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
