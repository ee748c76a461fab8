// SPDX-License-Identifier: Apache-2.0
/* control_svc.c — switchyard.v1.Control: operator calls onto the registry. Requests
 * are converted by spec_pb.c and checked by the one validator (through the registry);
 * registry errors map to gRPC codes, and their messages, which name the field, go
 * back to the caller as they are. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/control_plane.h"
#include "api/tls_setup.h"
#include "model/endpoint.h"
#include "core/histogram.h"
#include "core/log.h"
#include "kernel/mapsync.h"
#include "model/hostname.h"
#include "switchyard/resp_reply.h"
#include "model/spec_pb.h"
#include "switchyard/v1/control.pb-c.h"

static enum sy_grpc_code code_of(int e)
{
	switch (e) {
	case -EINVAL:
		return SY_GRPC_INVALID_ARGUMENT;
	case -ENOENT:
		return SY_GRPC_NOT_FOUND;
	case -EBUSY:
		return SY_GRPC_FAILED_PRECONDITION;
	case -ENOSPC:
		return SY_GRPC_RESOURCE_EXHAUSTED;
	case -ESTALE:
		return SY_GRPC_ABORTED; /* a fleet's store moved on: read again, retry */
	case -ENOTCONN:
		return SY_GRPC_UNAVAILABLE; /* a fleet's store is unreachable: fail-static */
	default:
		return SY_GRPC_INTERNAL;
	}
}

static void fail(struct sy_rpc_call *call, int e, const struct sy_spec_err *err)
{
	sy_rpc_finish(call, code_of(e), "%s", err->msg[0] ? err->msg : strerror(-e));
}

void sy_api_fail(struct sy_rpc_call *call, int e, const struct sy_spec_err *err)
{
	fail(call, e, err);
}

void sy_api_not_found(struct sy_rpc_call *call, struct sy_control_ctx *ctx, const char *name)
{
	struct sy_spec_err err;

	sy_registry_not_found(ctx->reg, name, &err);
	sy_rpc_finish(call, SY_GRPC_NOT_FOUND, "%s", err.msg);
}

/* ---- building replies ---------------------------------------------------------------- */

struct mig_pb {
	Switchyard__V1__Migration m;
	Switchyard__V1__MigrationSpec spec;
	Switchyard__V1__SteeringCounters counters;
	Switchyard__V1__EndpointHealth th[SY_MAX_ENDPOINTS];
	Switchyard__V1__EndpointHealth *thp[SY_MAX_ENDPOINTS];
	char names[SY_MAX_ENDPOINTS][SY_EP_STRLEN];
	struct sy_endpoint_health hst[SY_MAX_ENDPOINTS];
	Switchyard__V1__SideStats side[2];
	Switchyard__V1__SideStats *sidep[2];
	uint64_t lat[2][SY_LAT_BUCKETS];
	Switchyard__V1__RuleStats rules[SY_MAX_RULES * 2];
	Switchyard__V1__RuleStats *rulep[SY_MAX_RULES * 2];
	Switchyard__V1__AgentEvents events;
	Switchyard__V1__MirrorStats mir[2];
	Switchyard__V1__MirrorStats *mirp[2];
	struct sy_mirror_stats mst[2];
	Switchyard__V1__CutoverStatus co;
	Switchyard__V1__GateStatus gates[SY_GATES];
	Switchyard__V1__GateStatus *gatep[SY_GATES];
	struct sy_cutover_status cst;
	Switchyard__V1__Ownership own;
	Switchyard__V1__PinOwnership *pins; /* n_pins + the file's own */
	Switchyard__V1__PinOwnership **pinp;
};

static const char *side_word(uint8_t side)
{
	return side == SY_SIDE_TARGET ? "target" : "legacy";
}

static const char *file_side(const struct sy_migration_spec *f, const char *cgroup)
{
	for (size_t i = 0; f && i < f->n_pins; i++)
		if (strcmp(f->pins[i].cgroup, cgroup) == 0)
			return side_word(f->pins[i].side);
	return "";
}

/* Who set the ratio and each pin, and what the file says of them (ownership.h). */
static int fill_ownership(const struct sy_migration_state *ms, struct mig_pb *o)
{
	Switchyard__V1__Ownership *w = &o->own;
	const struct sy_migration_spec *f = ms->file_spec;
	size_t cap = ms->spec.n_pins + (f ? f->n_pins : 0) + 1;

	switchyard__v1__ownership__init(w);
	w->ratio_set_by = (char *)ms->ratio_by.origin;
	w->ratio_reason = (char *)ms->ratio_by.reason;
	w->file_declared = f != NULL;
	w->file_ratio_bp = f ? f->ratio_bp : 0;
	o->pins = calloc(cap, sizeof(*o->pins));
	o->pinp = calloc(cap, sizeof(*o->pinp));
	if (!o->pins || !o->pinp)
		return -ENOMEM;
	for (size_t i = 0; i < ms->spec.n_pins; i++) {
		Switchyard__V1__PinOwnership *p = &o->pins[w->n_pins];

		switchyard__v1__pin_ownership__init(p);
		p->cgroup = (char *)ms->spec.pins[i].cgroup;
		p->side = (char *)side_word(ms->spec.pins[i].side);
		p->set_by = ms->pin_by ? (char *)ms->pin_by[i].origin : "";
		p->reason = ms->pin_by ? (char *)ms->pin_by[i].reason : "";
		p->file_side = (char *)file_side(f, p->cgroup);
		o->pinp[w->n_pins++] = p;
	}
	for (size_t i = 0; f && i < f->n_pins; i++) {
		Switchyard__V1__PinOwnership *p = &o->pins[w->n_pins];

		if (file_side(&ms->spec, f->pins[i].cgroup)[0])
			continue; /* running: listed above */
		switchyard__v1__pin_ownership__init(p);
		p->cgroup = (char *)f->pins[i].cgroup;
		p->file_side = (char *)side_word(f->pins[i].side);
		o->pinp[w->n_pins++] = p;
	}
	w->pins = o->pinp;
	o->m.ownership = w;
	return 0;
}

static void fill_cutover(struct sy_control_ctx *ctx, const struct sy_migration_state *ms, struct mig_pb *o)
{
	Switchyard__V1__CutoverStatus *x = &o->co;
	struct sy_cutover_status *st = &o->cst;

	switchyard__v1__cutover_status__init(x);
	if (!ctx->cutover || sy_cutover_status(ctx->cutover, ms->spec.name, st))
		return;
	x->phase = (Switchyard__V1__CutoverPhase)st->co.phase;
	x->phase_name = (char *)sy_phase_name(st->co.phase);
	x->step = st->step;
	x->steps = st->n_steps;
	x->step_ratio_bp = st->step_ratio_bp;
	x->bake_left_ms = st->bake_left_ms;
	x->ready = st->co.ready;
	x->reason = st->co.reason;
	x->paused_from = st->co.phase == SY_PHASE_PAUSED || st->co.phase == SY_PHASE_ROLLED_BACK
				 ? (char *)sy_phase_name(st->co.paused_from)
				 : "";
	x->last_evaluation_unix_ms = st->last_eval_unix_ms;
	x->samples = st->samples;
	x->evaluations = st->evaluations;
	x->drained = st->drained;
	x->gates = o->gatep;
	x->n_gates = sy_api_gates_pb(ms, st, o->gates, o->gatep);
}

size_t sy_api_gates_pb(const struct sy_migration_state *m, const struct sy_cutover_status *st,
		       Switchyard__V1__GateStatus gs[SY_GATES], Switchyard__V1__GateStatus *gp[SY_GATES])
{
	size_t n = 0;

	for (int g = 0; g < SY_GATES; g++) {
		if (!m->spec.plan.gates[g].enabled)
			continue;
		switchyard__v1__gate_status__init(&gs[g]);
		gs[g].gate = (char *)sy_gate_name(g);
		gs[g].value = st->gates[g].value;
		gs[g].threshold = m->spec.plan.gates[g].max;
		gs[g].verdict =
			(char *)(st->gates[g].verdict ? sy_verdict_name(st->gates[g].verdict) : "pending");
		gs[g].detail = (char *)st->gates[g].detail;
		gp[n++] = &gs[g];
	}
	return n;
}

/* `st` is the caller's storage: the reply points into it. */
static void fill_health(struct sy_control_ctx *ctx, Switchyard__V1__EndpointHealth *h, char *name,
			struct sy_endpoint_health *st, const struct sy_endpoint *ep, const char *role,
			const char *mig)
{
	switchyard__v1__endpoint_health__init(h);
	sy_endpoint_format(ep, name, SY_EP_STRLEN);
	h->endpoint = name;
	h->role = (char *)role;
	h->migration = (char *)mig;
	if (ctx->health && sy_health_get(ctx->health, ep, st) == 0) {
		h->healthy = st->healthy;
		h->checked = st->checked;
		h->last_check_unix_ms = st->last_check_unix_ms;
		h->rtt_us = st->last_rtt_us;
		h->last_error = st->last_error;
	} else {
		h->last_error = "";
	}
}

static int mig_build(struct sy_control_ctx *ctx, const struct sy_migration_state *ms, struct mig_pb *o)
{
	struct sy_steer_counters c;

	switchyard__v1__migration__init(&o->m);
	switchyard__v1__steering_counters__init(&o->counters);
	if (sy_spec_to_pb(&ms->spec, &o->spec))
		return -ENOMEM;
	o->m.spec = &o->spec;
	o->m.id = ms->id;
	o->m.created_unix_ms = ms->created_unix_ms;
	o->m.updated_unix_ms = ms->updated_unix_ms;
	o->m.origin = (char *)ms->origin;
	if (sy_mapsync_counters(sy_registry_bpf(ctx->reg), ms->id, &c) == 0) {
		o->counters.legacy = c.decisions[SY_DEC_LEGACY];
		o->counters.target = c.decisions[SY_DEC_TARGET];
		o->counters.pinned_legacy = c.decisions[SY_DEC_PINNED_LEGACY];
		o->counters.pinned_target = c.decisions[SY_DEC_PINNED_TARGET];
		o->counters.fallback = c.decisions[SY_DEC_FALLBACK];
	}
	o->m.counters = &o->counters;
	for (uint32_t i = 0; i < ms->spec.n_target; i++) {
		fill_health(ctx, &o->th[i], o->names[i], &o->hst[i], &ms->spec.target[i], "target",
			    ms->spec.name);
		o->thp[i] = &o->th[i];
	}
	o->m.targets = o->thp;
	o->m.n_targets = ms->spec.n_target;
	for (int side = 0; side < 2; side++) {
		Switchyard__V1__SideStats *ss = &o->side[side];
		struct sy_side_stats st;

		switchyard__v1__side_stats__init(ss);
		ss->side = side == SY_SIDE_TARGET ? "target" : "legacy";
		if (sy_mapsync_side_stats(sy_registry_bpf(ctx->reg), ms->id, (uint8_t)side, &st) == 0) {
			ss->sockets = st.sockets;
			ss->bytes_out = st.bytes_out;
			ss->bytes_in = st.bytes_in;
			ss->exchanges = st.exchanges;
			ss->errors = st.errors;
			ss->unparsed = st.unparsed;
			ss->outside = st.outside;
			ss->captured = st.captured;
			ss->truncated = st.truncated;
			ss->sampled = st.sampled;
			ss->events_lost = st.ev_lost;
			ss->tls_sockets = st.tls_sockets;
			ss->gaps = st.gaps;
			ss->errors_err = st.err_class[SY_ERR_ERR];
			ss->errors_moved = st.err_class[SY_ERR_MOVED];
			ss->errors_oom = st.err_class[SY_ERR_OOM];
			ss->errors_noauth = st.err_class[SY_ERR_NOAUTH];
			ss->errors_readonly = st.err_class[SY_ERR_READONLY];
			ss->errors_other = st.err_class[SY_ERR_OTHER];
			memcpy(o->lat[side], st.lat, sizeof(st.lat));
			ss->p50_us = sy_log2_quantile(o->lat[side], SY_LAT_BUCKETS, 0.50);
			ss->p95_us = sy_log2_quantile(o->lat[side], SY_LAT_BUCKETS, 0.95);
			ss->p99_us = sy_log2_quantile(o->lat[side], SY_LAT_BUCKETS, 0.99);
		}
		ss->latency_log2_us = o->lat[side];
		ss->n_latency_log2_us = SY_LAT_BUCKETS;
		o->sidep[side] = ss;
	}
	o->m.sides = o->sidep;
	o->m.n_sides = 2;
	for (uint32_t rule = 0; rule <= ms->spec.n_prefixes; rule++) {
		for (int side = 0; side < 2; side++) {
			Switchyard__V1__RuleStats *rs = &o->rules[o->m.n_rules];
			struct sy_rule_stats st;

			switchyard__v1__rule_stats__init(rs);
			rs->rule = rule;
			rs->prefix = rule ? (char *)ms->spec.prefixes[rule - 1] : "";
			rs->side = side == SY_SIDE_TARGET ? "target" : "legacy";
			if (sy_mapsync_rule_stats(sy_registry_bpf(ctx->reg), ms->id, rule, (uint8_t)side,
						  &st) == 0) {
				rs->reads = st.cmds[SY_CLASS_READ];
				rs->writes = st.cmds[SY_CLASS_WRITE];
				rs->others = st.cmds[SY_CLASS_OTHER];
				rs->read_bytes = st.bytes[SY_CLASS_READ];
				rs->write_bytes = st.bytes[SY_CLASS_WRITE];
				rs->other_bytes = st.bytes[SY_CLASS_OTHER];
				o->side[side].reads += rs->reads;
				o->side[side].writes += rs->writes;
				o->side[side].others += rs->others;
			}
			o->rulep[o->m.n_rules++] = rs;
		}
	}
	o->m.rules = o->rulep;
	switchyard__v1__agent_events__init(&o->events);
	if (ctx->capture) {
		struct sy_capture_stats cs;

		sy_capture_drain(ctx->capture); /* what the kernel has sent so far, counted */
		sy_capture_stats(ctx->capture, ms->id, &cs);
		o->events.writes = cs.writes;
		o->events.truncated = cs.truncated;
		o->events.aborted = cs.aborted;
		o->events.read_keys = cs.read_keys;
		o->events.bytes = cs.bytes;
		o->events.dropped = cs.dropped;
		o->events.records = cs.records;
	}
	o->m.events = &o->events;
	for (int k = 0; k < 2; k++) {
		Switchyard__V1__MirrorStats *x = &o->mir[k];
		struct sy_mirror_stats *st = &o->mst[k];

		switchyard__v1__mirror_stats__init(x);
		sy_mirror_stats(ctx->mirror, ms->id, k, st);
		x->direction = k == SY_DIR_FORWARD ? "forward" : "reverse";
		x->mirrored = st->mirrored;
		x->failed = st->failed;
		x->repaired = st->repaired;
		x->repair_failed = st->repair_failed;
		x->dropped = st->dropped;
		x->conflicts = st->conflicts;
		x->out_of_scope = st->out_of_scope;
		x->queued = st->queued;
		x->dirty = st->dirty;
		x->needs_audit = st->needs_audit;
		x->audit_reason = st->audit_reason;
		x->lag_p50_us = sy_log2_quantile(st->lag, SY_LAT_BUCKETS, 0.50);
		x->lag_p99_us = sy_log2_quantile(st->lag, SY_LAT_BUCKETS, 0.99);
		x->lag_log2_us = st->lag;
		x->n_lag_log2_us = SY_LAT_BUCKETS;
		o->mirp[k] = x;
	}
	o->m.mirror = o->mirp;
	o->m.n_mirror = 2;
	fill_cutover(ctx, ms, o);
	o->m.cutover = &o->co;
	if (ms->spec.n_scope && ctx->verify) {
		struct sy_audit_status a;

		/* the last complete count: a running audit's is partial */
		if (sy_verify_status(ctx->verify, ms->spec.name, &a) == 0 && a.outside_scope_last_ok) {
			o->m.outside_scope_keys = a.outside_scope_last;
			o->m.outside_scope_known = true;
		}
	}
	return fill_ownership(ms, o);
}

static void mig_free(struct mig_pb *o)
{
	sy_spec_pb_free(&o->spec);
	free(o->pins);
	free(o->pinp);
}

static void reply_migration(struct sy_rpc_call *call, struct sy_control_ctx *ctx, const char *name)
{
	const struct sy_migration_state *ms = sy_registry_find(ctx->reg, name);
	struct mig_pb *o;

	if (!ms) {
		sy_api_not_found(call, ctx, name);
		return;
	}
	o = calloc(1, sizeof(*o));
	if (!o || mig_build(ctx, ms, o)) {
		if (o)
			mig_free(o);
		free(o);
		sy_rpc_finish(call, SY_GRPC_INTERNAL, "out of memory");
		return;
	}
	sy_rpc_reply(call, &o->m.base);
	mig_free(o);
	free(o);
}

static int name_required(struct sy_rpc_call *call, const char *name)
{
	if (!name || !*name) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "name: required");
		return -1;
	}
	return 0;
}

/* ---- who calls ----------------------------------------------------------------------- */

#define REASON_MAX 200

/* Every change a call makes is recorded as the API's, with its caller and reason
 * (registry.h: sy_registry_set_who); done() forgets them. -1 after refusing a reason
 * that is too long. */
static int begin(struct sy_rpc_call *call, struct sy_control_ctx *ctx, const char *reason)
{
	char peer[128];

	if (reason && strlen(reason) > REASON_MAX) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "reason: at most %d characters", REASON_MAX);
		return -1;
	}
	sy_registry_set_who(ctx->reg, "api", sy_rpc_call_peer(call, peer, sizeof(peer)), reason);
	return 0;
}

static void done(struct sy_control_ctx *ctx)
{
	sy_registry_set_who(ctx->reg, NULL, NULL, NULL);
}

/* The end of a call that changed one migration: its error, or the migration now. */
static void done_reply(struct sy_rpc_call *call, struct sy_control_ctx *ctx, int e,
		       const struct sy_spec_err *err, const char *name)
{
	done(ctx);
	if (e)
		fail(call, e, err);
	else
		reply_migration(call, ctx, name);
}

/* ---- methods ------------------------------------------------------------------------- */

static void apply(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__ApplyMigrationRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	struct sy_migration_spec m;
	struct sy_spec_err err = {{0}};
	int e;

	if (!r->spec) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "spec: required");
		return;
	}
	/* host names: the daemon resolves them now, whatever addresses the caller sent */
	if ((e = sy_spec_from_pb(r->spec, &m, &err))) {
		fail(call, e, &err);
		return;
	}
	if ((e = sy_migration_spec_resolve(&m, NULL, &err))) {
		sy_migration_spec_free(&m);
		fail(call, e, &err);
		return;
	}
	if (begin(call, ctx, NULL)) {
		sy_migration_spec_free(&m);
		return;
	}
	e = sy_registry_apply(ctx->reg, &m, &err);
	done(ctx);
	if (e) {
		sy_migration_spec_free(&m);
		fail(call, e, &err);
		return;
	}
	reply_migration(call, ctx, m.name);
	sy_migration_spec_free(&m);
}

static void get(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__GetMigrationRequest *r = (const void *)req;

	if (name_required(call, r->name))
		return;
	reply_migration(call, arg, r->name);
}

static void list(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	struct sy_control_ctx *ctx = arg;
	Switchyard__V1__ListMigrationsResponse resp = SWITCHYARD__V1__LIST_MIGRATIONS_RESPONSE__INIT;
	size_t n = sy_registry_count(ctx->reg);
	struct mig_pb *o = calloc(n ? n : 1, sizeof(*o));
	Switchyard__V1__Migration **pp = calloc(n ? n : 1, sizeof(*pp));
	size_t built = 0;

	(void)req;
	if (!o || !pp)
		goto oom;
	for (; built < n; built++) {
		if (mig_build(ctx, sy_registry_at(ctx->reg, built), &o[built])) {
			mig_free(&o[built]);
			goto oom;
		}
		pp[built] = &o[built].m;
	}
	resp.migrations = pp;
	resp.n_migrations = n;
	sy_rpc_reply(call, &resp.base);
	goto out;
oom:
	sy_rpc_finish(call, SY_GRPC_INTERNAL, "out of memory");
out:
	for (size_t i = 0; o && i < built; i++)
		mig_free(&o[i]);
	free(o);
	free(pp);
}

static void del(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__DeleteMigrationRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	Switchyard__V1__DeleteMigrationResponse resp = SWITCHYARD__V1__DELETE_MIGRATION_RESPONSE__INIT;
	struct sy_spec_err err = {{0}};
	int e;

	if (name_required(call, r->name))
		return;
	if (begin(call, ctx, NULL))
		return;
	e = sy_registry_delete(ctx->reg, r->name, r->force, &err);
	done(ctx);
	if (e) {
		fail(call, e, &err);
		return;
	}
	sy_rpc_reply(call, &resp.base);
}

static void set_ratio(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__SetRatioRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	struct sy_spec_err err = {{0}};
	int e;

	if (name_required(call, r->name))
		return;
	if (begin(call, ctx, r->reason))
		return;
	e = ctx->cutover ? sy_cutover_set_ratio(ctx->cutover, r->name, r->ratio_bp, &err)
			 : sy_registry_set_ratio(ctx->reg, r->name, r->ratio_bp, &err);
	done_reply(call, ctx, e, &err, r->name);
}

/* Pin and Unpin name one client by its cgroup path. */
static int cgroup_required(struct sy_rpc_call *call, const char *cgroup)
{
	if (cgroup && *cgroup)
		return 0;
	sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "cgroup: required");
	return -1;
}

static void pin(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__PinRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	struct sy_spec_err err = {{0}};
	int e;

	if (name_required(call, r->name) || cgroup_required(call, r->cgroup))
		return;
	if ((unsigned)r->side > SY_SIDE_TARGET) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "side: %d is not SIDE_LEGACY or SIDE_TARGET",
			      (int)r->side);
		return;
	}
	if (begin(call, ctx, r->reason))
		return;
	e = sy_registry_pin(ctx->reg, r->name, r->cgroup, (uint8_t)r->side, &err);
	done_reply(call, ctx, e, &err, r->name);
}

static void unpin(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__UnpinRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	struct sy_spec_err err = {{0}};
	int e;

	if (name_required(call, r->name) || cgroup_required(call, r->cgroup))
		return;
	if (begin(call, ctx, r->reason))
		return;
	e = sy_registry_unpin(ctx->reg, r->name, r->cgroup, &err);
	done_reply(call, ctx, e, &err, r->name);
}

static void status(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	struct sy_control_ctx *ctx = arg;
	Switchyard__V1__StatusResponse resp = SWITCHYARD__V1__STATUS_RESPONSE__INIT;
	size_t n = sy_registry_count(ctx->reg), k = 0, cap = n * SY_MAX_ENDPOINTS * 2;
	Switchyard__V1__EndpointHealth *eh = calloc(cap ? cap : 1, sizeof(*eh));
	Switchyard__V1__EndpointHealth **ehp = calloc(cap ? cap : 1, sizeof(*ehp));
	char(*names)[SY_EP_STRLEN] = calloc(cap ? cap : 1, SY_EP_STRLEN);
	struct sy_endpoint_health *hst = calloc(cap ? cap : 1, sizeof(*hst));
	struct sy_tls_status_buf tb;

	(void)req;
	if (!eh || !ehp || !names || !hst) {
		sy_rpc_finish(call, SY_GRPC_INTERNAL, "out of memory");
		goto out;
	}
	resp.version = (char *)ctx->info->version;
	resp.cgroup = (char *)ctx->info->cgroup;
	resp.bpffs = (char *)ctx->info->bpffs;
	resp.state_dir = (char *)ctx->info->state_dir;
	resp.adopted = ctx->info->adopted;
	resp.started_unix_ms = ctx->info->started_unix_ms;
	resp.store = (char *)ctx->info->store;
	resp.node = (char *)ctx->info->node;
	resp.leader = (char *)ctx->info->leader;
	resp.migrations = (uint32_t)n;
	if (ctx->tls) {
		sy_tls_status(ctx->tls, &tb);
		resp.tls = &tb.st;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sy_migration_state *m = sy_registry_at(ctx->reg, i);

		for (uint32_t j = 0; j < m->spec.n_legacy; j++, k++) {
			fill_health(ctx, &eh[k], names[k], &hst[k], &m->spec.legacy[j], "legacy",
				    m->spec.name);
			ehp[k] = &eh[k];
		}
		for (uint32_t j = 0; j < m->spec.n_target; j++, k++) {
			fill_health(ctx, &eh[k], names[k], &hst[k], &m->spec.target[j], "target",
				    m->spec.name);
			ehp[k] = &eh[k];
		}
	}
	resp.endpoints = ehp;
	resp.n_endpoints = k;
	sy_rpc_reply(call, &resp.base);
out:
	free(eh);
	free(ehp);
	free(names);
	free(hst);
}

static void cutover(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__CutoverRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	struct sy_spec_err err = {{0}};
	int e;

	if (name_required(call, r->name))
		return;
	if (!ctx->cutover) {
		sy_rpc_finish(call, SY_GRPC_UNAVAILABLE, "the cutover controller is not running");
		return;
	}
	if ((unsigned)r->action >= SY_ACTS) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT,
			      "action: %d is not one of START, PROMOTE, PAUSE, RESUME, ROLLBACK, FINISH",
			      (int)r->action);
		return;
	}
	if (r->drain && r->action != SWITCHYARD__V1__CUTOVER_ACTION__ACTION_ROLLBACK) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "drain: only a rollback drains");
		return;
	}
	if (begin(call, ctx, r->reason))
		return;
	e = sy_cutover_action(ctx->cutover, r->name, (int)r->action, r->drain, r->reason, &err);
	done_reply(call, ctx, e, &err, r->name);
}

/* A preview (DiffRequest): the registry builds the change as it would for real and
 * reports the diff; nothing is committed. */
static void diff(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__DiffRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	Switchyard__V1__DiffResponse resp = SWITCHYARD__V1__DIFF_RESPONSE__INIT;
	struct sy_spec spec = {0};
	struct sy_spec_err err = {{0}};
	struct sy_diff d = {0};
	Switchyard__V1__MigrationDiff *md = NULL, **mdp = NULL;
	Switchyard__V1__FieldChange *fc = NULL, **fcp = NULL;
	size_t nf = 0;
	int e = 0;

	if (!(spec.migs = calloc(r->n_specs + 1, sizeof(*spec.migs)))) {
		sy_rpc_finish(call, SY_GRPC_INTERNAL, "out of memory");
		return;
	}
	for (; spec.n < r->n_specs && !e; spec.n++) {
		char msg[sizeof(err.msg)];

		if ((e = sy_spec_from_pb(r->specs[spec.n], &spec.migs[spec.n], &err)) ||
		    (e = sy_migration_spec_resolve(&spec.migs[spec.n], NULL, &err))) {
			snprintf(msg, sizeof(msg), "%s", err.msg);
			sy_spec_err_set(&err, "specs[%zu].%s", spec.n, msg);
		}
	}
	if (!e && !begin(call, ctx, NULL)) {
		e = r->file && r->file[0] ? sy_registry_preview_file(ctx->reg, &spec, r->file, &d, &err)
					  : sy_registry_preview_apply(ctx->reg, spec.migs, spec.n, &d, &err);
		done(ctx);
	} else if (!e) {
		sy_spec_free(&spec);
		return; /* begin() answered */
	}
	sy_spec_free(&spec);
	if (e) {
		fail(call, e, &err);
		return;
	}
	for (size_t i = 0; i < d.n; i++)
		nf += d.migs[i].n_fields;
	md = calloc(d.n + 1, sizeof(*md));
	mdp = calloc(d.n + 1, sizeof(*mdp));
	fc = calloc(nf + 1, sizeof(*fc));
	fcp = calloc(nf + 1, sizeof(*fcp));
	if (!md || !mdp || !fc || !fcp) {
		sy_rpc_finish(call, SY_GRPC_INTERNAL, "out of memory");
		goto out;
	}
	nf = 0;
	for (size_t i = 0; i < d.n; i++) {
		const struct sy_mig_diff *m = &d.migs[i];

		switchyard__v1__migration_diff__init(&md[i]);
		md[i].name = (char *)m->name;
		md[i].change = (char *)m->change;
		md[i].moves_clients = m->moves_clients;
		md[i].fields = &fcp[nf];
		for (size_t j = 0; j < m->n_fields; j++, nf++) {
			switchyard__v1__field_change__init(&fc[nf]);
			fc[nf].field = (char *)m->fields[j].field;
			fc[nf].old_value = (char *)m->fields[j].old_v;
			fc[nf].new_value = (char *)m->fields[j].new_v;
			fcp[nf] = &fc[nf];
		}
		md[i].n_fields = m->n_fields;
		mdp[i] = &md[i];
	}
	resp.migrations = mdp;
	resp.n_migrations = d.n;
	resp.moves_clients = d.moves_clients;
	sy_rpc_reply(call, &resp.base);
out:
	free(md);
	free(mdp);
	free(fc);
	free(fcp);
	sy_diff_free(&d);
}

int sy_control_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx)
{
	static const struct {
		const char *path;
		const ProtobufCMessageDescriptor *d;
		sy_rpc_handler h;
	} methods[] = {
		{"/switchyard.v1.Control/ApplyMigration",
		 &switchyard__v1__apply_migration_request__descriptor, apply},
		{"/switchyard.v1.Control/GetMigration", &switchyard__v1__get_migration_request__descriptor,
		 get},
		{"/switchyard.v1.Control/ListMigrations",
		 &switchyard__v1__list_migrations_request__descriptor, list},
		{"/switchyard.v1.Control/DeleteMigration",
		 &switchyard__v1__delete_migration_request__descriptor, del},
		{"/switchyard.v1.Control/SetRatio", &switchyard__v1__set_ratio_request__descriptor,
		 set_ratio},
		{"/switchyard.v1.Control/Pin", &switchyard__v1__pin_request__descriptor, pin},
		{"/switchyard.v1.Control/Unpin", &switchyard__v1__unpin_request__descriptor, unpin},
		{"/switchyard.v1.Control/Status", &switchyard__v1__status_request__descriptor, status},
		{"/switchyard.v1.Control/Cutover", &switchyard__v1__cutover_request__descriptor, cutover},
		{"/switchyard.v1.Control/Diff", &switchyard__v1__diff_request__descriptor, diff},
	};
	int e;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if ((e = sy_rpc_server_add_unary(srv, methods[i].path, methods[i].d, methods[i].h, ctx)))
			return e;
	return 0;
}
