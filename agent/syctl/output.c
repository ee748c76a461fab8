// SPDX-License-Identifier: Apache-2.0
/* output.c — syctl's human views (tables, progress lines) and its JSON (model/pbjson.h,
 * one line per message). Every ratio is shown by sy_ratio_format. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syctl/syctl.h"

#include "model/job.h"
#include "model/keymap.h"
#include "model/pbjson.h"
#include "model/spec.h"

void print_json(const ProtobufCMessage *m)
{
	sy_pbjson_print(stdout, m);
	fputc('\n', stdout);
}

const char *ago(uint64_t unix_ms, char *buf, size_t n)
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

void print_migration(const Switchyard__V1__Migration *m)
{
	const Switchyard__V1__MigrationSpec *s = m->spec;
	const Switchyard__V1__SteeringCounters *c = m->counters;

	printf("name:      %s\n", s->name);
	char ratio[SY_RATIO_STRLEN];

	printf("ratio:     %s (%ubp)", sy_ratio_format(s->ratio_bp, ratio, sizeof(ratio)), s->ratio_bp);
	print_ratio_owner(m);
	printf("\n");
	printf("client:    %s\n",
	       s->client == SWITCHYARD__V1__CLIENT_MODE__CLIENT_CONNECTION ? "connection" : "cgroup");
	for (size_t i = 0; i < s->n_legacy; i++)
		printf("legacy:    %s\n", s->legacy[i]);
	/* host names: what each resolves to now (targets below are the addresses) */
	for (size_t i = 0; i < s->n_hosts; i++) {
		const Switchyard__V1__HostEndpoint *h = s->hosts[i];

		printf("resolved:  %-7s %s ->",
		       h->side == SWITCHYARD__V1__SIDE__SIDE_TARGET ? "target" : "legacy", h->name);
		for (size_t a = 0; a < h->n_addresses; a++)
			printf("%s %s", a ? "," : "", h->addresses[a]);
		printf("%s\n", h->stale ? " (stale: no longer resolves, last addresses kept)" : "");
	}
	for (size_t i = 0; i < m->n_targets; i++)
		printf("target:    %-24s %s%s%s\n", m->targets[i]->endpoint,
		       !m->targets[i]->checked	? "unchecked"
		       : m->targets[i]->healthy ? "healthy"
						: "UNHEALTHY",
		       m->targets[i]->last_error[0] ? ": " : "", m->targets[i]->last_error);
	for (int side = 0; s->auth && side < 2; side++) {
		const Switchyard__V1__Credentials *a = side ? s->auth->target : s->auth->legacy;

		/* who and which file: the password itself is never in the API */
		if (a && a->password_file && a->password_file[0])
			printf("auth:      %-7s %s, password from %s\n", side ? "target" : "legacy",
			       a->user && a->user[0] ? a->user : "default user", a->password_file);
	}
	print_pins_owned(m);
	if (c)
		printf("decisions: legacy %llu, target %llu, pinned legacy %llu, pinned target %llu, "
		       "fallback %llu\n",
		       (unsigned long long)c->legacy, (unsigned long long)c->target,
		       (unsigned long long)c->pinned_legacy, (unsigned long long)c->pinned_target,
		       (unsigned long long)c->fallback);
	printf("origin:    %s\n", m->origin);
	print_scope(m, "scope:     ");
}

/* What is migrated, loud when it is not every key (docs/mirror.md, "Scope"). */
void print_scope(const Switchyard__V1__Migration *m, const char *lead)
{
	char d[160];

	printf("%s%s", lead,
	       sy_scope_describe((uint32_t)m->spec->n_scope, m->outside_scope_keys, m->outside_scope_known, d,
				 sizeof(d)));
	for (size_t i = 0; i < m->spec->n_scope; i++)
		printf("%s%s", i ? ", " : " (", m->spec->scope[i]);
	printf("%s\n", m->spec->n_scope ? ")" : "");
}

void fmt_ms(uint64_t ms, char *buf, size_t n)
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

/* A gate's value or maximum in the unit the config file writes it in: error_rate a
 * percentage, drift_rate keys per second, the ratios a factor. */
void fmt_gate(const char *gate, double v, char *buf, size_t n)
{
	if (strcmp(gate, "error_rate") == 0)
		snprintf(buf, n, "%.4g%%", 100 * v);
	else if (strcmp(gate, "drift_rate") == 0)
		snprintf(buf, n, "%.4g/s", v);
	else
		snprintf(buf, n, "%.4gx", v);
}

/* The plan in one line: its steps, how it advances, and where it is. */
void print_plan_line(const Switchyard__V1__Migration *m)
{
	const Switchyard__V1__CutoverStatus *c = m->cutover;
	const Switchyard__V1__Plan *p = m->spec->plan;
	char t[32];

	printf("plan:      ");
	if (!p || !p->n_steps_bp || !c || c->phase == SWITCHYARD__V1__CUTOVER_PHASE__PHASE_NONE) {
		printf("none (the ratio is set by hand)\n");
		return;
	}
	for (size_t i = 0; i < p->n_steps_bp; i++)
		printf("%s%s", i ? " → " : "", sy_ratio_format(p->steps_bp[i], t, sizeof(t)));
	printf(" (%s) — %s", p->manual ? "manual" : "auto", c->phase_name);
	if (c->paused_from[0])
		printf(" from %s", c->paused_from);
	if (c->step)
		printf(", step %u of %u", c->step, c->steps);
	if (c->phase == SWITCHYARD__V1__CUTOVER_PHASE__PHASE_CUTTING_OVER) {
		fmt_ms(c->bake_left_ms, t, sizeof(t));
		printf(", %s", c->ready ? "baked, waiting for promote" : "bake ");
		if (!c->ready)
			printf("%s left", t);
	}
	if (c->reason[0])
		printf(": %s", c->reason);
	printf("\n");
}

/* get's view: per side totals since the migration was created (the Migration message
 * carries counters, not rates: `watch` has those), then each mirror direction. */
static void print_error_classes(const Switchyard__V1__Migration *m);

void print_sides(const Switchyard__V1__Migration *m)
{
	if (m->n_sides) {
		printf("\n%-8s %12s %12s %12s %12s %8s %8s %10s %10s\n", "SIDE", "REQUESTS", "READS",
		       "WRITES", "OTHER", "P50", "P99", "ERRORS", "UNPARSED");
		for (size_t i = 0; i < m->n_sides; i++) {
			const Switchyard__V1__SideStats *d = m->sides[i];
			char p50[16], p99[16];

			printf("%-8s %12llu %12llu %12llu %12llu %8s %8s %10llu %10llu\n", d->side,
			       (unsigned long long)d->exchanges, (unsigned long long)d->reads,
			       (unsigned long long)d->writes, (unsigned long long)d->others,
			       fmt_us(d->p50_us, p50, sizeof(p50)), fmt_us(d->p99_us, p99, sizeof(p99)),
			       (unsigned long long)d->errors, (unsigned long long)d->unparsed);
		}
	}
	print_error_classes(m);
	if (m->n_mirror) {
		printf("\n%-8s %12s %8s %8s %8s %8s %s\n", "MIRROR", "MIRRORED", "QUEUED", "DIRTY", "LAG P50",
		       "LAG P99", "NEEDS AUDIT");
		for (size_t i = 0; i < m->n_mirror; i++) {
			const Switchyard__V1__MirrorStats *x = m->mirror[i];
			char p50[16], p99[16];

			printf("%-8s %12llu %8llu %8llu %8s %8s %s%s%s\n", x->direction,
			       (unsigned long long)x->mirrored, (unsigned long long)x->queued,
			       (unsigned long long)x->dirty, fmt_us(x->lag_p50_us, p50, sizeof(p50)),
			       fmt_us(x->lag_p99_us, p99, sizeof(p99)), x->needs_audit ? "yes" : "no",
			       x->needs_audit && x->audit_reason[0] ? ": " : "",
			       x->needs_audit ? x->audit_reason : "");
		}
	}
}

/* The plan's progress: phase, step, bake left, each gate against its threshold. */
void print_cutover(const Switchyard__V1__Migration *m)
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
	printf("restart:   server_restart %s (an endpoint restarted: needs audit, then this)\n",
	       sy_restart_gate_name((int)p->server_restart));
	printf("phase:     %s", c->phase_name);
	if (c->paused_from[0])
		printf(" (from %s)", c->paused_from);
	if (c->step)
		printf(", step %u of %u (%s)", c->step, c->steps,
		       sy_ratio_format(c->step_ratio_bp, t, sizeof(t)));
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

			char v[24], max[24];

			fmt_gate(g->gate, g->value, v, sizeof(v));
			fmt_gate(g->gate, g->threshold, max, sizeof(max));
			printf("  %-12s %10s  max %-10s %-8s %s\n", g->gate, v, max, g->verdict, g->detail);
		}
	}
}

int one_migration(const char *method, const ProtobufCMessage *req)
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

const char *fmt_us(uint64_t us, char *buf, size_t n)
{
	if (!us)
		snprintf(buf, n, "-");
	else if (us < 1000)
		snprintf(buf, n, "%lluus", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(buf, n, "%.1fms", (double)us / 1000);
	else
		snprintf(buf, n, "%.2fs", (double)us / 1e6);
	return buf;
}

void print_snapshot(const Switchyard__V1__Snapshot *s, int tty)
{
	time_t t = (time_t)(s->unix_ms / 1000);
	char when[32];

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("switchyard watch — %s, every %.1fs (Ctrl-C to stop)\n", when, s->interval_s);
	for (size_t i = 0; i < s->n_migrations; i++) {
		const Switchyard__V1__MigrationSnapshot *m = s->migrations[i];

		char ratio[SY_RATIO_STRLEN];

		printf("\n%s  ratio %s  targets healthy %u/%u  fallback %llu\n", m->name,
		       sy_ratio_format(m->ratio_bp, ratio, sizeof(ratio)), m->healthy_targets, m->targets,
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
		if (m->n_gates) {
			printf("  gates:");
			for (size_t j = 0; j < m->n_gates; j++) {
				const Switchyard__V1__GateStatus *g = m->gates[j];
				char v[24], max[24];

				fmt_gate(g->gate, g->value, v, sizeof(v));
				fmt_gate(g->gate, g->threshold, max, sizeof(max));
				printf("%s %s %s (max %s) %s", j ? "," : "", g->gate, v, max, g->verdict);
			}
			printf("\n");
		}
		printf("  %-7s %9s %9s %9s %9s %10s %10s %8s %8s %8s %8s %7s %9s %8s\n", "SIDE", "REQ/S",
		       "READS/S", "WRITES/S", "OTHER/S", "OUT B/S", "IN B/S", "P50", "P95", "P99", "ERR/S",
		       "ERR%", "CONNECTS", "UNPARSED");
		for (size_t j = 0; j < m->n_sides; j++) {
			const Switchyard__V1__SideSnapshot *d = m->sides[j];
			char p50[16], p95[16], p99[16];

			printf("  %-7s %9.1f %9.1f %9.1f %9.1f %10.0f %10.0f %8s %8s %8s %8.1f %6.2f%% %9llu "
			       "%8llu\n",
			       d->side, d->exchanges_per_s, d->reads_per_s, d->writes_per_s, d->others_per_s,
			       d->bytes_out_per_s, d->bytes_in_per_s, fmt_us(d->p50_us, p50, sizeof(p50)),
			       fmt_us(d->p95_us, p95, sizeof(p95)), fmt_us(d->p99_us, p99, sizeof(p99)),
			       d->errors_per_s, 100 * d->error_ratio, (unsigned long long)d->decisions,
			       (unsigned long long)d->unparsed);
		}
		for (size_t j = 0; j < m->n_mirror; j++) {
			const Switchyard__V1__MirrorSnapshot *x = m->mirror[j];
			char p50[16], p99[16];

			printf("  mirror %-7s %9.1f/s  lag p50 %s p99 %s  queued %llu  failed %llu  repaired "
			       "%llu  "
			       "dropped %llu  dirty %llu%s\n",
			       x->direction, x->mirrored_per_s, fmt_us(x->lag_p50_us, p50, sizeof(p50)),
			       fmt_us(x->lag_p99_us, p99, sizeof(p99)), (unsigned long long)x->queued,
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

void print_event(const Switchyard__V1__Event *e)
{
	time_t t = (time_t)(e->unix_ms / 1000);
	struct tm tm;
	char when[32], who[1024];

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%16llu  %s.%03u  %-16s %-24s %s%s\n", (unsigned long long)e->seq, when,
	       (unsigned)(e->unix_ms % 1000), e->migration[0] ? e->migration : "-", e->kind, e->message,
	       event_who(e, who, sizeof(who)));
}

void print_event_header(void)
{
	printf("%16s  %-23s  %-16s %-24s %s\n", "SEQ", "TIME", "MIGRATION", "KIND", "MESSAGE");
}

void print_audit(const Switchyard__V1__AuditStatus *a)
{
	printf("%s: audit %s  scanned %llu/%llu  %.0f keys/s", a->migration, a->state,
	       (unsigned long long)a->scanned, (unsigned long long)a->total, a->keys_per_s);
	if (sy_job_state_parse(a->state) == SY_JOB_RUNNING)
		printf("  eta %.0fs", a->eta_s);
	if (a->node && a->node[0])
		printf("  on node %s", a->node);
	printf("\n  drift: missing %llu  extra %llu  type %llu  value %llu  ttl %llu  (repaired %llu)\n",
	       (unsigned long long)a->missing, (unsigned long long)a->extra, (unsigned long long)a->type,
	       (unsigned long long)a->value, (unsigned long long)a->ttl, (unsigned long long)a->repaired);
	printf("  dual reads: %llu compared, %llu drifted, %llu re-checked\n",
	       (unsigned long long)a->dual_checked, (unsigned long long)a->dual_drift,
	       (unsigned long long)a->dual_rechecked);
	if (a->n_versions || a->versions_none || a->versions_other) {
		printf("  versions:");
		for (size_t i = 0; i < a->n_versions; i++)
			printf("  %s %llu", a->versions[i]->version,
			       (unsigned long long)a->versions[i]->keys);
		if (a->versions_none)
			printf("  (none) %llu", (unsigned long long)a->versions_none);
		if (a->versions_other)
			printf("  (other) %llu", (unsigned long long)a->versions_other);
		printf("\n");
	}
	if (a->transform) {
		printf("  transform %s: %llu calls, %llu failed (budget %llu, memory %llu, errors %llu), "
		       "%llu "
		       "fallbacks\n",
		       a->transform->script, (unsigned long long)a->transform->calls,
		       (unsigned long long)a->transform->failed, (unsigned long long)a->transform->budget,
		       (unsigned long long)a->transform->memory, (unsigned long long)a->transform->errors,
		       (unsigned long long)a->transform->fallback);
		if (a->transform->last_error[0])
			printf("    last failure: %s\n", a->transform->last_error);
	}
	if (a->error && a->error[0])
		printf("  error: %s\n", a->error);
	for (size_t i = 0; i < a->n_drift; i++) {
		if (a->drift[i]->db)
			printf("  %-8s db%u %s\n", a->drift[i]->kind, a->drift[i]->db, a->drift[i]->key);
		else
			printf("  %-8s %s\n", a->drift[i]->kind, a->drift[i]->key);
	}
}

/* bar: redrawn in place (a terminal); else one plain line, the percentage in words. */
void print_backfill(const Switchyard__V1__BackfillStatus *b, bool bar)
{
	double pct = b->total ? 100.0 * (double)b->copied / (double)b->total : 0;
	char line[64];
	int filled = (int)(pct > 100 ? 30 : pct * 30 / 100);

	if (bar) {
		line[0] = '[';
		memset(line + 1, '#', (size_t)filled);
		memset(line + 1 + filled, '.', (size_t)(30 - filled));
		line[31] = ']';
		line[32] = 0;
	} else {
		snprintf(line, sizeof(line), "%.1f%%", pct);
	}
	printf("%s%s: backfill %s %s %llu/%llu keys  %.0f keys/s  %.1f MB/s", bar ? "\r" : "", b->migration,
	       b->state, line, (unsigned long long)b->copied, (unsigned long long)b->total, b->keys_per_s,
	       b->bytes_per_s / 1e6);
	if (sy_job_state_parse(b->state) == SY_JOB_RUNNING)
		printf("  eta %.0fs", b->eta_s);
	if (b->resumed)
		printf("  (resumed)");
	if (b->node && b->node[0])
		printf("  on node %s", b->node);
	printf(bar ? "   " : "\n");
	fflush(stdout);
}

/* Errors by class, TLS sockets and stream gaps, per side: printed only when one is
 * not zero, so the common table stays as it was. */
static void print_error_classes(const Switchyard__V1__Migration *m)
{
	bool any = false;

	for (size_t i = 0; i < m->n_sides; i++) {
		const Switchyard__V1__SideStats *d = m->sides[i];

		any = any || d->errors || d->tls_sockets || d->gaps;
	}
	if (!any)
		return;
	printf("\n%-8s %10s %10s %10s %10s %10s %10s %12s %8s\n", "SIDE", "ERR", "MOVED/ASK", "OOM", "NOAUTH",
	       "READONLY", "OTHER ERR", "TLS SOCKETS", "GAPS");
	for (size_t i = 0; i < m->n_sides; i++) {
		const Switchyard__V1__SideStats *d = m->sides[i];

		printf("%-8s %10llu %10llu %10llu %10llu %10llu %10llu %12llu %8llu\n", d->side,
		       (unsigned long long)d->errors_err, (unsigned long long)d->errors_moved,
		       (unsigned long long)d->errors_oom, (unsigned long long)d->errors_noauth,
		       (unsigned long long)d->errors_readonly, (unsigned long long)d->errors_other,
		       (unsigned long long)d->tls_sockets, (unsigned long long)d->gaps);
	}
}
