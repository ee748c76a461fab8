// SPDX-License-Identifier: Apache-2.0
/* spec_pb.c — see spec_pb.h. */
#include "model/spec_pb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/endpoint.h"
#include "model/hostname.h"
#include "model/phase.h"
#include "switchyard/v1/cutover.pb-c.h"

/* The C enums whose values are the wire's, cast across as they are: a renumbering on
 * either side must fail the build, not silently change what the API and the state
 * file mean. (Mirror is numbered differently on each side: it maps through a table.) */
#define SAME(c, pb) _Static_assert((int)(c) == (int)(pb), #c " != " #pb)
SAME(SY_SIDE_LEGACY, SWITCHYARD__V1__SIDE__SIDE_LEGACY);
SAME(SY_SIDE_TARGET, SWITCHYARD__V1__SIDE__SIDE_TARGET);
SAME(SY_CLIENT_CGROUP, SWITCHYARD__V1__CLIENT_MODE__CLIENT_CGROUP);
SAME(SY_CLIENT_CONNECTION, SWITCHYARD__V1__CLIENT_MODE__CLIENT_CONNECTION);
SAME(SY_BREACH_ROLLBACK, SWITCHYARD__V1__BREACH__BREACH_ROLLBACK);
SAME(SY_BREACH_PAUSE, SWITCHYARD__V1__BREACH__BREACH_PAUSE);
SAME(SY_PHASE_NONE, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_NONE);
SAME(SY_PHASE_PENDING, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_PENDING);
SAME(SY_PHASE_BACKFILLING, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_BACKFILLING);
SAME(SY_PHASE_SHADOWING, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_SHADOWING);
SAME(SY_PHASE_VERIFYING, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_VERIFYING);
SAME(SY_PHASE_CUTTING_OVER, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_CUTTING_OVER);
SAME(SY_PHASE_COMPLETED, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_COMPLETED);
SAME(SY_PHASE_PAUSED, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_PAUSED);
SAME(SY_PHASE_ROLLED_BACK, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_ROLLED_BACK);
SAME(SY_PHASE_FINISHED, SWITCHYARD__V1__CUTOVER_PHASE__PHASE_FINISHED);
_Static_assert(SY_PHASES == SWITCHYARD__V1__CUTOVER_PHASE__PHASE_FINISHED + 1, "a phase only one side has");

/* enum sy_mirror_mode (capture bits, auto = 4) ↔ proto Mirror (auto = 0, off = 4). */
static const Switchyard__V1__Mirror mirror_to_pb[] = {
	[SY_MIRROR_OFF] = SWITCHYARD__V1__MIRROR__MIRROR_OFF,
	[SY_MIRROR_FORWARD] = SWITCHYARD__V1__MIRROR__MIRROR_FORWARD,
	[SY_MIRROR_REVERSE] = SWITCHYARD__V1__MIRROR__MIRROR_REVERSE,
	[SY_MIRROR_BOTH] = SWITCHYARD__V1__MIRROR__MIRROR_BOTH,
	[SY_MIRROR_AUTO] = SWITCHYARD__V1__MIRROR__MIRROR_AUTO,
};

static int cred_from(const Switchyard__V1__Credentials *pb, const char *side, struct sy_auth_spec *a,
		     struct sy_spec_err *err)
{
	if (!pb)
		return 0;
	if ((pb->user && strlen(pb->user) >= sizeof(a->user)) ||
	    (pb->password_file && strlen(pb->password_file) >= sizeof(a->password_file))) {
		snprintf(err->msg, sizeof(err->msg), "auth.%s: user or password_file too long", side);
		return -EINVAL;
	}
	snprintf(a->user, sizeof(a->user), "%s", pb->user ? pb->user : "");
	snprintf(a->password_file, sizeof(a->password_file), "%s",
		 pb->password_file ? pb->password_file : "");
	return 0;
}

static Switchyard__V1__Credentials *cred_to(const struct sy_auth_spec *a)
{
	Switchyard__V1__Credentials *pb;

	if (!a->password_file[0] && !a->user[0])
		return NULL;
	pb = calloc(1, sizeof(*pb));
	if (!pb)
		return NULL;
	switchyard__v1__credentials__init(pb);
	pb->user = strdup(a->user);
	pb->password_file = strdup(a->password_file);
	if (!pb->user || !pb->password_file) {
		free(pb->user);
		free(pb->password_file);
		free(pb);
		return NULL;
	}
	return pb;
}

static void cred_free(Switchyard__V1__Credentials *pb)
{
	if (!pb)
		return;
	free(pb->user);
	free(pb->password_file);
	free(pb);
}

/* The list as written: numeric endpoints into the side's array, host names recorded
 * (unresolved) at their place. */
static int eps_from(char **in, size_t n, const char *field, struct sy_migration_spec *m, int side,
		    struct sy_spec_err *err)
{
	struct sy_endpoint *out = side == SY_SIDE_TARGET ? m->target : m->legacy;
	uint32_t k = 0;
	char why[200], why2[200];

	if (n > SY_MAX_ENDPOINTS) {
		snprintf(err->msg, sizeof(err->msg), "%s: at most %d endpoints, got %zu", field,
			 SY_MAX_ENDPOINTS, n);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		struct sy_host_spec *h = &m->hosts[side][m->n_hosts[side]];

		if (sy_endpoint_parse(in[i], &out[k], why, sizeof(why)) == 0) {
			k++;
			continue;
		}
		/* Counted before h is written: the slot past the last is the next side's. */
		if (m->n_hosts[side] == SY_SPEC_MAX_HOSTS) {
			snprintf(err->msg, sizeof(err->msg), "%s: at most %d host names", field,
				 SY_SPEC_MAX_HOSTS);
			return -EINVAL;
		}
		if (sy_hostport_parse(in[i], h->host, &h->port, why2, sizeof(why2))) {
			snprintf(err->msg, sizeof(err->msg), "%s[%zu]: %s", field, i,
				 strstr(why, "numeric") ? why2 : why);
			return -EINVAL;
		}
		h->pos = (uint8_t)i;
		h->first = (uint8_t)k;
		m->n_hosts[side]++;
	}
	if (side == SY_SIDE_TARGET)
		m->n_target = k;
	else
		m->n_legacy = k;
	return 0;
}

/* The addresses a state (or a previous answer) holds for the names: a restart resumes
 * with them, fail-static, without resolving first. */
static int hosts_from(const Switchyard__V1__MigrationSpec *pb, struct sy_migration_spec *m,
		      struct sy_spec_err *err)
{
	for (size_t i = 0; i < pb->n_hosts; i++) {
		const Switchyard__V1__HostEndpoint *he = pb->hosts[i];
		int side = he->side == SWITCHYARD__V1__SIDE__SIDE_TARGET ? SY_SIDE_TARGET : SY_SIDE_LEGACY;
		struct sy_endpoint eps[SY_MAX_ENDPOINTS];
		char why[200], name[SY_HOST_MAX + 8];

		if (!he->name || he->n_addresses > SY_MAX_ENDPOINTS)
			continue;
		for (size_t h = 0; h < m->n_hosts[side]; h++) {
			struct sy_host_spec *hs = &m->hosts[side][h];

			sy_host_format(hs, name, sizeof(name));
			if (strcmp(name, he->name) != 0 || hs->n)
				continue;
			for (size_t a = 0; a < he->n_addresses; a++)
				if (sy_endpoint_parse(he->addresses[a], &eps[a], why, sizeof(why))) {
					snprintf(err->msg, sizeof(err->msg), "hosts[%zu].addresses[%zu]: %s",
						 i, a, why);
					return -EINVAL;
				}
			if (sy_spec_host_set(m, side, h, eps, he->n_addresses)) {
				snprintf(err->msg, sizeof(err->msg),
					 "hosts[%zu]: more than %d endpoints on %s", i, SY_MAX_ENDPOINTS,
					 side ? "target" : "legacy");
				return -EINVAL;
			}
			hs->stale = he->stale;
			break;
		}
	}
	return 0;
}

static int plan_from(const Switchyard__V1__Plan *pb, struct sy_plan_spec *p, struct sy_spec_err *err)
{
	const Switchyard__V1__Gate *g[SY_GATES] = {pb->drift_rate, pb->error_rate, pb->error_ratio,
						   pb->p99_ratio};

	memset(p, 0, sizeof(*p));
	if (pb->n_steps_bp == 0)
		return 0; /* an empty plan is no plan */
	if (pb->n_steps_bp > SY_PLAN_MAX_STEPS) {
		snprintf(err->msg, sizeof(err->msg), "plan.steps_bp: at most %d steps, got %zu",
			 SY_PLAN_MAX_STEPS, pb->n_steps_bp);
		return -EINVAL;
	}
	if (pb->n_bake_ms != pb->n_steps_bp && pb->n_bake_ms > 1) {
		snprintf(err->msg, sizeof(err->msg),
			 "plan.bake_ms: %zu bake times for %zu steps (give one, or one per step)",
			 pb->n_bake_ms, pb->n_steps_bp);
		return -EINVAL;
	}
	p->n_steps = (uint32_t)pb->n_steps_bp;
	for (size_t i = 0; i < pb->n_steps_bp; i++) {
		p->steps_bp[i] = pb->steps_bp[i];
		p->bake_ms[i] = pb->n_bake_ms == 0   ? SY_PLAN_BAKE_DEFAULT
				: pb->n_bake_ms == 1 ? pb->bake_ms[0]
						     : pb->bake_ms[i];
	}
	p->manual = pb->manual;
	p->interval_ms = pb->interval_ms ? pb->interval_ms : SY_PLAN_INTERVAL_DEFAULT;
	p->window_ms = pb->window_ms ? pb->window_ms : SY_PLAN_WINDOW_DEFAULT;
	p->min_samples = pb->min_samples;
	p->min_p99_us = pb->min_p99_us;
	p->backfill = pb->backfill;
	p->shadow_ms = pb->shadow_ms;
	p->verify = pb->verify;
	p->drain = pb->drain;
	if ((unsigned)pb->server_restart > SY_RESTART_OFF) {
		snprintf(err->msg, sizeof(err->msg),
			 "plan.server_restart: %d is not RESTART_PAUSE, RESTART_ROLLBACK or RESTART_OFF",
			 (int)pb->server_restart);
		return -EINVAL;
	}
	p->server_restart = (uint8_t)pb->server_restart;
	for (int i = 0; i < SY_GATES; i++) {
		if (!g[i] || !g[i]->enabled)
			continue;
		if ((unsigned)g[i]->on_breach > SY_BREACH_PAUSE) {
			snprintf(err->msg, sizeof(err->msg),
				 "plan.%s.on_breach: %d is not BREACH_ROLLBACK or BREACH_PAUSE",
				 sy_gate_name(i), (int)g[i]->on_breach);
			return -EINVAL;
		}
		p->gates[i].enabled = true;
		p->gates[i].max = g[i]->max;
		p->gates[i].on_breach = (uint8_t)g[i]->on_breach;
	}
	return 0;
}

static int plan_to(const struct sy_plan_spec *p, Switchyard__V1__Plan *pb)
{
	Switchyard__V1__Gate **g[SY_GATES] = {&pb->drift_rate, &pb->error_rate, &pb->error_ratio,
					      &pb->p99_ratio};

	switchyard__v1__plan__init(pb);
	pb->steps_bp = calloc(p->n_steps ? p->n_steps : 1, sizeof(uint32_t));
	pb->bake_ms = calloc(p->n_steps ? p->n_steps : 1, sizeof(uint32_t));
	if (!pb->steps_bp || !pb->bake_ms)
		return -ENOMEM;
	pb->n_steps_bp = pb->n_bake_ms = p->n_steps;
	memcpy(pb->steps_bp, p->steps_bp, p->n_steps * sizeof(uint32_t));
	memcpy(pb->bake_ms, p->bake_ms, p->n_steps * sizeof(uint32_t));
	pb->manual = p->manual;
	pb->interval_ms = p->interval_ms;
	pb->window_ms = p->window_ms;
	pb->min_samples = p->min_samples;
	pb->min_p99_us = p->min_p99_us;
	pb->backfill = p->backfill;
	pb->shadow_ms = p->shadow_ms;
	pb->verify = p->verify;
	pb->drain = p->drain;
	pb->server_restart = (Switchyard__V1__RestartGate)p->server_restart;
	for (int i = 0; i < SY_GATES; i++) {
		if (!p->gates[i].enabled)
			continue;
		*g[i] = calloc(1, sizeof(**g[i]));
		if (!*g[i])
			return -ENOMEM;
		switchyard__v1__gate__init(*g[i]);
		(*g[i])->enabled = true;
		(*g[i])->max = p->gates[i].max;
		(*g[i])->on_breach = (Switchyard__V1__Breach)p->gates[i].on_breach;
	}
	return 0;
}

static void plan_free(Switchyard__V1__Plan *pb)
{
	free(pb->steps_bp);
	free(pb->bake_ms);
	free(pb->drift_rate);
	free(pb->error_rate);
	free(pb->error_ratio);
	free(pb->p99_ratio);
	free(pb);
}

int sy_spec_from_pb(const Switchyard__V1__MigrationSpec *pb, struct sy_migration_spec *out,
		    struct sy_spec_err *err)
{
	int e;

	memset(out, 0, sizeof(*out));
	if (!pb->name || !pb->name[0]) {
		snprintf(err->msg, sizeof(err->msg), "name: required");
		return -EINVAL;
	}
	if (strlen(pb->name) >= sizeof(out->name)) {
		snprintf(err->msg, sizeof(err->msg), "name: longer than %zu characters",
			 sizeof(out->name) - 1);
		return -EINVAL;
	}
	strcpy(out->name, pb->name);
	if ((e = eps_from(pb->legacy, pb->n_legacy, "legacy", out, SY_SIDE_LEGACY, err)) ||
	    (e = eps_from(pb->target, pb->n_target, "target", out, SY_SIDE_TARGET, err)) ||
	    (e = hosts_from(pb, out, err)))
		return e;
	out->resolve_interval_ms = pb->resolve_interval_ms;
	if ((unsigned)pb->client > SY_CLIENT_CONNECTION) {
		snprintf(err->msg, sizeof(err->msg), "client: %d is not CLIENT_CGROUP or CLIENT_CONNECTION",
			 (int)pb->client);
		return -EINVAL;
	}
	out->client_mode = (uint8_t)pb->client;
	out->ratio_bp = pb->ratio_bp;
	if (pb->n_prefixes > SY_SPEC_MAX_PREFIXES) {
		snprintf(err->msg, sizeof(err->msg), "prefixes: at most %d, got %zu", SY_SPEC_MAX_PREFIXES,
			 pb->n_prefixes);
		return -EINVAL;
	}
	for (size_t i = 0; i < pb->n_prefixes; i++) {
		if (!pb->prefixes[i] || !pb->prefixes[i][0] || strlen(pb->prefixes[i]) > SY_PREFIX_MAX) {
			snprintf(err->msg, sizeof(err->msg), "prefixes[%zu]: must be 1 to %d bytes", i,
				 SY_PREFIX_MAX);
			return -EINVAL;
		}
		strcpy(out->prefixes[i], pb->prefixes[i]);
	}
	out->n_prefixes = (uint32_t)pb->n_prefixes;
	if (pb->n_scope > SY_SPEC_MAX_SCOPE) {
		snprintf(err->msg, sizeof(err->msg), "scope: at most %d, got %zu", SY_SPEC_MAX_SCOPE,
			 pb->n_scope);
		return -EINVAL;
	}
	for (size_t i = 0; i < pb->n_scope; i++) {
		if (!pb->scope[i] || !pb->scope[i][0] || strlen(pb->scope[i]) > SY_PREFIX_MAX) {
			snprintf(err->msg, sizeof(err->msg), "scope[%zu]: must be 1 to %d bytes", i,
				 SY_PREFIX_MAX);
			return -EINVAL;
		}
		strcpy(out->scope[i], pb->scope[i]);
	}
	out->n_scope = (uint32_t)pb->n_scope;
	out->sample_reads = pb->sample_reads;
	for (out->mirror = 0; out->mirror <= SY_MIRROR_AUTO && mirror_to_pb[out->mirror] != pb->mirror;
	     out->mirror++)
		;
	if (out->mirror > SY_MIRROR_AUTO) {
		snprintf(err->msg, sizeof(err->msg),
			 "mirror: %d is not MIRROR_AUTO, _OFF, _FORWARD, _REVERSE or _BOTH", (int)pb->mirror);
		return -EINVAL;
	}
	out->capture_bytes = pb->capture_bytes;
	out->mirror_queue = pb->mirror_queue;
	out->auto_repair = pb->auto_repair;
	out->audit_every = pb->audit_every;
	if (pb->plan && (e = plan_from(pb->plan, &out->plan, err)))
		return e;
	if (pb->auth && ((e = cred_from(pb->auth->legacy, "legacy", &out->auth[SY_SIDE_LEGACY], err)) ||
			 (e = cred_from(pb->auth->target, "target", &out->auth[SY_SIDE_TARGET], err))))
		return e;
	if (pb->transform && pb->transform->script) {
		if (strlen(pb->transform->script) >= sizeof(out->transform.script)) {
			snprintf(err->msg, sizeof(err->msg), "transform.script: longer than %zu bytes",
				 sizeof(out->transform.script) - 1);
			return -EINVAL;
		}
		strcpy(out->transform.script, pb->transform->script);
	}
	if (pb->version_field) {
		if (strlen(pb->version_field) >= sizeof(out->version_field)) {
			snprintf(err->msg, sizeof(err->msg), "version_field: longer than %d bytes",
				 SY_VERSION_FIELD_MAX - 1);
			return -EINVAL;
		}
		strcpy(out->version_field, pb->version_field);
	}
	if (pb->n_rewrite > SY_SPEC_MAX_REWRITES) {
		snprintf(err->msg, sizeof(err->msg), "rewrite: at most %d, got %zu", SY_SPEC_MAX_REWRITES,
			 pb->n_rewrite);
		return -EINVAL;
	}
	for (size_t i = 0; i < pb->n_rewrite; i++) {
		const Switchyard__V1__KeyRewrite *w = pb->rewrite[i];

		if (!w->from || !w->to || strlen(w->from) > SY_PREFIX_MAX || strlen(w->to) > SY_PREFIX_MAX) {
			snprintf(err->msg, sizeof(err->msg), "rewrite[%zu]: prefixes must be 1 to %d bytes",
				 i, SY_PREFIX_MAX);
			return -EINVAL;
		}
		strcpy(out->rewrite[i].from, w->from);
		strcpy(out->rewrite[i].to, w->to);
	}
	out->n_rewrite = (uint32_t)pb->n_rewrite;
	if (pb->n_pins > 4096) {
		snprintf(err->msg, sizeof(err->msg), "pins: at most 4096");
		return -EINVAL;
	}
	if (pb->n_pins) {
		out->pins = calloc(pb->n_pins, sizeof(*out->pins));
		if (!out->pins)
			return -ENOMEM;
	}
	for (size_t i = 0; i < pb->n_pins; i++) {
		const Switchyard__V1__Pin *p = pb->pins[i];

		if (!p->cgroup || strlen(p->cgroup) >= sizeof(out->pins[i].cgroup)) {
			snprintf(err->msg, sizeof(err->msg),
				 "pins[%zu].cgroup: required, at most %zu characters", i,
				 sizeof(out->pins[i].cgroup) - 1);
			sy_migration_spec_free(out);
			return -EINVAL;
		}
		if ((unsigned)p->side > SY_SIDE_TARGET) {
			snprintf(err->msg, sizeof(err->msg),
				 "pins[%zu].side: %d is not SIDE_LEGACY or SIDE_TARGET", i, (int)p->side);
			sy_migration_spec_free(out);
			return -EINVAL;
		}
		strcpy(out->pins[i].cgroup, p->cgroup);
		out->pins[i].side = (uint8_t)p->side;
		out->n_pins++;
	}
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t j = 0; j < n; j++)
		free(v[j]);
	free(v);
}

/* The side's list as written: numeric endpoints, and each host name in its place. */
static char **eps_to(const struct sy_migration_spec *m, int side, size_t *n_out)
{
	const struct sy_endpoint *eps = side == SY_SIDE_TARGET ? m->target : m->legacy;
	uint32_t n = side == SY_SIDE_TARGET ? m->n_target : m->n_legacy;
	const struct sy_host_spec *hs = m->hosts[side];
	uint32_t nh = m->n_hosts[side], covered = 0;
	size_t total, h = 0, i = 0;
	char **out;

	for (uint32_t j = 0; j < nh; j++)
		covered += hs[j].n;
	total = n - covered + nh;
	if (!(out = calloc(total ? total : 1, sizeof(*out))))
		return NULL;
	for (size_t pos = 0; pos < total; pos++) {
		if (!(out[pos] = malloc(SY_HOST_MAX + 8))) {
			strv_free(out, pos);
			return NULL;
		}
		if (h < nh && hs[h].pos == pos) {
			sy_host_format(&hs[h], out[pos], SY_HOST_MAX + 8);
			i += hs[h++].n;
		} else {
			sy_endpoint_format(&eps[i++], out[pos], SY_HOST_MAX + 8);
		}
	}
	*n_out = total;
	return out;
}

static void hosts_pb_free(Switchyard__V1__MigrationSpec *pb)
{
	for (size_t i = 0; i < pb->n_hosts; i++) {
		free(pb->hosts[i]->name);
		strv_free(pb->hosts[i]->addresses, pb->hosts[i]->n_addresses);
		free(pb->hosts[i]);
	}
	free(pb->hosts);
	pb->hosts = NULL;
	pb->n_hosts = 0;
}

static int hosts_to(const struct sy_migration_spec *m, Switchyard__V1__MigrationSpec *pb)
{
	size_t total = m->n_hosts[0] + m->n_hosts[1];

	if (!total)
		return 0;
	if (!(pb->hosts = calloc(total, sizeof(*pb->hosts))))
		return -ENOMEM;
	for (int side = 0; side < 2; side++)
		for (size_t h = 0; h < m->n_hosts[side]; h++) {
			const struct sy_host_spec *hs = &m->hosts[side][h];
			const struct sy_endpoint *eps = (side ? m->target : m->legacy) + hs->first;
			Switchyard__V1__HostEndpoint *he = calloc(1, sizeof(*he));

			if (!he)
				return -ENOMEM;
			switchyard__v1__host_endpoint__init(he);
			pb->hosts[pb->n_hosts++] = he;
			he->side =
				side ? SWITCHYARD__V1__SIDE__SIDE_TARGET : SWITCHYARD__V1__SIDE__SIDE_LEGACY;
			he->stale = hs->stale;
			if (!(he->name = malloc(SY_HOST_MAX + 8)) ||
			    !(he->addresses = calloc(hs->n ? hs->n : 1, sizeof(*he->addresses))))
				return -ENOMEM;
			sy_host_format(hs, he->name, SY_HOST_MAX + 8);
			for (size_t a = 0; a < hs->n; a++) {
				if (!(he->addresses[a] = malloc(SY_EP_STRLEN)))
					return -ENOMEM;
				sy_endpoint_format(&eps[a], he->addresses[a], SY_EP_STRLEN);
				he->n_addresses++;
			}
		}
	return 0;
}

int sy_spec_to_pb(const struct sy_migration_spec *m, Switchyard__V1__MigrationSpec *pb)
{
	switchyard__v1__migration_spec__init(pb);
	pb->name = strdup(m->name);
	pb->legacy = eps_to(m, SY_SIDE_LEGACY, &pb->n_legacy);
	pb->target = eps_to(m, SY_SIDE_TARGET, &pb->n_target);
	pb->resolve_interval_ms = m->resolve_interval_ms;
	if (hosts_to(m, pb)) {
		sy_spec_pb_free(pb);
		return -ENOMEM;
	}
	pb->client = (Switchyard__V1__ClientMode)m->client_mode;
	pb->ratio_bp = m->ratio_bp;
	pb->sample_reads = m->sample_reads;
	pb->mirror =
		m->mirror <= SY_MIRROR_AUTO ? mirror_to_pb[m->mirror] : SWITCHYARD__V1__MIRROR__MIRROR_AUTO;
	pb->capture_bytes = m->capture_bytes;
	pb->mirror_queue = m->mirror_queue;
	pb->auto_repair = m->auto_repair;
	pb->audit_every = m->audit_every;
	if (m->plan.n_steps) {
		pb->plan = calloc(1, sizeof(*pb->plan));
		if (!pb->plan || plan_to(&m->plan, pb->plan)) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
	}
	for (int side = 0; side < 2; side++) {
		const struct sy_auth_spec *a = &m->auth[side];

		if (!a->password_file[0] && !a->user[0])
			continue;
		if (!pb->auth) {
			pb->auth = calloc(1, sizeof(*pb->auth));
			if (!pb->auth) {
				sy_spec_pb_free(pb);
				return -ENOMEM;
			}
			switchyard__v1__auth__init(pb->auth);
		}
		if (side == SY_SIDE_LEGACY)
			pb->auth->legacy = cred_to(a);
		else
			pb->auth->target = cred_to(a);
		if (!(side == SY_SIDE_LEGACY ? pb->auth->legacy : pb->auth->target)) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
	}
	if (!(pb->version_field = strdup(m->version_field))) {
		sy_spec_pb_free(pb);
		return -ENOMEM;
	}
	if (m->transform.script[0]) {
		pb->transform = calloc(1, sizeof(*pb->transform));
		if (pb->transform)
			switchyard__v1__transform__init(pb->transform);
		if (!pb->transform || !(pb->transform->script = strdup(m->transform.script))) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
	}
	pb->rewrite = calloc(m->n_rewrite ? m->n_rewrite : 1, sizeof(*pb->rewrite));
	for (uint32_t i = 0; pb->rewrite && i < m->n_rewrite; i++) {
		Switchyard__V1__KeyRewrite *w = calloc(1, sizeof(*w));

		if (!w) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
		switchyard__v1__key_rewrite__init(w);
		pb->rewrite[pb->n_rewrite++] = w;
		w->from = strdup(m->rewrite[i].from);
		w->to = strdup(m->rewrite[i].to);
		if (!w->from || !w->to) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
	}
	pb->prefixes = calloc(m->n_prefixes ? m->n_prefixes : 1, sizeof(*pb->prefixes));
	for (uint32_t i = 0; pb->prefixes && i < m->n_prefixes; i++) {
		pb->prefixes[i] = strdup(m->prefixes[i]);
		if (!pb->prefixes[i]) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
		pb->n_prefixes++;
	}
	pb->scope = calloc(m->n_scope ? m->n_scope : 1, sizeof(*pb->scope));
	for (uint32_t i = 0; pb->scope && i < m->n_scope; i++) {
		pb->scope[i] = strdup(m->scope[i]);
		if (!pb->scope[i]) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
		pb->n_scope++;
	}
	pb->pins = calloc(m->n_pins ? m->n_pins : 1, sizeof(*pb->pins));
	if (!pb->name || !pb->legacy || !pb->target || !pb->pins || !pb->prefixes || !pb->scope ||
	    !pb->rewrite) {
		sy_spec_pb_free(pb);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n_pins; i++) {
		Switchyard__V1__Pin *p = calloc(1, sizeof(*p));

		if (!p) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
		switchyard__v1__pin__init(p);
		p->cgroup = strdup(m->pins[i].cgroup);
		p->side = (Switchyard__V1__Side)m->pins[i].side;
		pb->pins[pb->n_pins++] = p;
		if (!p->cgroup) {
			sy_spec_pb_free(pb);
			return -ENOMEM;
		}
	}
	return 0;
}

void sy_spec_pb_free(Switchyard__V1__MigrationSpec *pb)
{
	hosts_pb_free(pb);
	free(pb->name);
	for (size_t i = 0; i < pb->n_legacy; i++)
		free(pb->legacy[i]);
	free(pb->legacy);
	for (size_t i = 0; i < pb->n_target; i++)
		free(pb->target[i]);
	free(pb->target);
	for (size_t i = 0; i < pb->n_pins; i++) {
		free(pb->pins[i]->cgroup);
		free(pb->pins[i]);
	}
	free(pb->pins);
	for (size_t i = 0; i < pb->n_prefixes; i++)
		free(pb->prefixes[i]);
	free(pb->prefixes);
	for (size_t i = 0; i < pb->n_scope; i++)
		free(pb->scope[i]);
	free(pb->scope);
	for (size_t i = 0; i < pb->n_rewrite; i++) {
		free(pb->rewrite[i]->from);
		free(pb->rewrite[i]->to);
		free(pb->rewrite[i]);
	}
	free(pb->rewrite);
	if (pb->plan)
		plan_free(pb->plan);
	if (pb->auth) {
		cred_free(pb->auth->legacy);
		cred_free(pb->auth->target);
		free(pb->auth);
	}
	if (pb->version_field != protobuf_c_empty_string)
		free(pb->version_field);
	if (pb->transform) {
		if (pb->transform->script != protobuf_c_empty_string)
			free(pb->transform->script);
		free(pb->transform);
	}
	switchyard__v1__migration_spec__init(pb);
}
