// SPDX-License-Identifier: Apache-2.0
/* verify_svc.c — switchyard.v1.Verify: start an audit, read its progress and report. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/control_plane.h"
#include "registry/fleet.h"
#include "shadow/job_request.h"
#include "model/job.h"
#include "model/spec.h"
#include "switchyard/v1/verify.pb-c.h"

#define MAX_RATE 10000000u

/* A single agent, or the fleet's leader: its jobs run here. */
static bool leads_here(const struct sy_control_ctx *ctx)
{
	return !ctx->fleet || (ctx->info->leader[0] && strcmp(ctx->info->leader, ctx->info->node) == 0);
}

/* Whose job answers for a migration's audit or backfill (SY_JOBREQ_*) on this node. */
struct whose {
	const struct sy_fleet_job *theirs; /* another node's, from its node key; NULL: ours */
	const char *node;		   /* its node ("" for a single agent) */
	bool requested;			   /* asked of the leader, not started there yet */
};

/*
 * Fleet mode: a node that is not the leader shows the job asked through the store
 * (job_request.h) — waiting for the leader, or the leader's job that answers it —
 * else the leader's when it ran none itself. The leader, and a single agent, show
 * their own.
 */
static struct whose whose_job(struct sy_control_ctx *ctx, const char *name, int kind, int local_state)
{
	const struct sy_migration_state *ms = sy_registry_find(ctx->reg, name);
	const struct sy_job_request *q = ms ? &ms->job_req[kind] : NULL;
	const char *self = ctx->info->node, *leader = ctx->info->leader;
	struct whose w = {.node = ctx->fleet ? self : ""};
	const struct sy_fleet_mig *m;
	const struct sy_fleet_job *j;

	if (leads_here(ctx))
		return w;
	if (q && sy_job_request_pending(q)) {
		w.node = leader;
		w.requested = true;
		return w;
	}
	if (q && q->nonce && strcmp(q->taken_by, self) != 0) {
		m = sy_fleet_find(ctx->fleet, q->taken_by, name);
		j = m ? (kind == SY_JOBREQ_BACKFILL ? &m->backfill : &m->audit) : NULL;
		/* the taker's key lags its start by up to a second: until it shows the job
		 * that answers the request, the request still waits — unless it ended and
		 * its taker left since; then the leader's is what there is */
		if (j && j->state != SY_JOB_IDLE && j->started_unix_ms >= q->started_unix_ms) {
			w.node = q->taken_by;
			w.theirs = j;
			return w;
		}
		if (!q->finished_unix_ms) {
			w.node = q->taken_by;
			w.requested = true;
			return w;
		}
	}
	if (local_state != SY_JOB_IDLE || !leader[0] || !(m = sy_fleet_find(ctx->fleet, leader, name)))
		return w;
	w.theirs = kind == SY_JOBREQ_BACKFILL ? &m->backfill : &m->audit;
	w.node = leader;
	return w;
}

static void reply_status(struct sy_rpc_call *call, struct sy_control_ctx *ctx, const char *name, bool report)
{
	Switchyard__V1__AuditStatus st = SWITCHYARD__V1__AUDIT_STATUS__INIT;
	Switchyard__V1__Drift *dr = NULL, **drp = NULL;
	Switchyard__V1__VersionCount vc[SY_VERSIONS_MAX], *vcp[SY_VERSIONS_MAX];
	Switchyard__V1__TransformStats ts = SWITCHYARD__V1__TRANSFORM_STATS__INIT;
	struct sy_audit_status a;

	if (sy_verify_status(ctx->verify, name, &a)) {
		sy_api_not_found(call, ctx, name);
		return;
	}
	st.migration = (char *)name;
	st.state = (char *)sy_job_state_name(a.state);
	st.scanned = a.scanned;
	st.total = a.total;
	st.eta_s = a.eta_s;
	st.keys_per_s = a.keys_per_s;
	st.missing = a.counts[SY_DRIFT_MISSING];
	st.extra = a.counts[SY_DRIFT_EXTRA];
	st.type = a.counts[SY_DRIFT_TYPE];
	st.value = a.counts[SY_DRIFT_VALUE];
	st.ttl = a.counts[SY_DRIFT_TTL];
	st.repaired = a.repaired;
	st.started_unix_ms = a.started_unix_ms;
	st.finished_unix_ms = a.finished_unix_ms;
	st.error = (char *)(a.error ? a.error : "");
	st.dual_checked = a.dual_checked;
	st.dual_drift = a.dual_drift;
	st.dual_rechecked = a.dual_rechecked;
	st.unsettled = a.unsettled;
	st.dual_repaired = a.dual_repaired;
	st.outside_scope = a.outside_scope;
	struct whose w = whose_job(ctx, name, SY_JOBREQ_AUDIT, a.state);
	const struct sy_fleet_job *j = w.theirs;

	st.node = (char *)w.node;
	if (w.requested) {
		memset(&a, 0, sizeof(a));
		st = (Switchyard__V1__AuditStatus)SWITCHYARD__V1__AUDIT_STATUS__INIT;
		st.migration = (char *)name;
		st.node = (char *)w.node;
		st.state = (char *)sy_job_state_name(SY_JOB_REQUESTED);
	} else if (j) { /* counts only: the drifted keys stay in the leader's report */
		st.state = (char *)sy_job_state_name(j->state);
		st.scanned = j->scanned;
		st.total = j->total;
		st.missing = j->diff[0];
		st.extra = j->diff[1];
		st.type = j->diff[2];
		st.value = j->diff[3];
		st.ttl = j->diff[4];
		st.repaired = j->repaired;
		st.started_unix_ms = j->started_unix_ms;
		st.finished_unix_ms = j->finished_unix_ms;
		st.error = (char *)j->error;
		report = false;
	}
	for (size_t i = 0; a.versions && i < a.versions->n; i++) {
		switchyard__v1__version_count__init(&vc[i]);
		vc[i].version = (char *)a.versions->v[i].version;
		vc[i].keys = a.versions->v[i].keys;
		vcp[i] = &vc[i];
		st.versions = vcp;
		st.n_versions = i + 1;
	}
	if (a.versions) {
		st.versions_none = a.versions->none;
		st.versions_other = a.versions->other;
	}
	if (a.has_transform) {
		ts.script = (char *)a.transform_script;
		ts.calls = a.transform.calls;
		ts.failed = a.transform.failed;
		ts.budget = a.transform.budget;
		ts.memory = a.transform.memory;
		ts.errors = a.transform.errors;
		ts.fallback = a.transform.fallback;
		ts.reloads = a.transform.reloads;
		ts.last_error = a.transform.last_error;
		st.transform = &ts;
	}
	if (report && a.n_drift) {
		dr = calloc(a.n_drift, sizeof(*dr));
		drp = calloc(a.n_drift, sizeof(*drp));
		if (!dr || !drp) {
			free(dr);
			free(drp);
			sy_rpc_finish(call, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory for the report");
			return;
		}
		for (size_t i = 0; i < a.n_drift; i++) {
			switchyard__v1__drift__init(&dr[i]);
			/* keys are bytes; the report is for people and scripts: NUL-terminated copy */
			dr[i].key = strndup(a.drift[i].key, a.drift[i].len);
			dr[i].kind = (char *)sy_drift_name(a.drift[i].kind);
			dr[i].db = a.drift[i].db;
			drp[i] = &dr[i];
		}
		st.drift = drp;
		st.n_drift = a.n_drift;
	}
	sy_rpc_reply(call, &st.base);
	for (size_t i = 0; dr && i < a.n_drift; i++)
		free(dr[i].key);
	free(dr);
	free(drp);
}

static bool name_valid(struct sy_rpc_call *call, const char *name)
{
	if (!name || !name[0] || strlen(name) >= SY_NAME_MAX || !sy_spec_name_ok(name)) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "migration: \"%s\" is not a migration name",
			      name ? name : "");
		return false;
	}
	return true;
}

/*
 * The one answer to a job that did not start, audit or backfill alike: a request naming
 * no migration is a bad request, a running job is a precondition, anything else is ours.
 * Answers the call and returns true when e is an error.
 */
static bool start_failed(struct sy_rpc_call *call, int e, const char *job, const char *name)
{
	if (!e)
		return false;
	if (e == -ENOENT)
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "migration: \"%s\" does not exist", name);
	else if (e == -EBUSY)
		sy_rpc_finish(call, SY_GRPC_FAILED_PRECONDITION, "the %s of \"%s\" is running", job, name);
	else
		sy_rpc_finish(call, SY_GRPC_INTERNAL, "start %s: %s", job, strerror(-e));
	return true;
}

static void reply_backfill(struct sy_rpc_call *call, struct sy_control_ctx *ctx, const char *name);

/*
 * Fleet mode, a node that does not lead: the job is asked of the leader through the
 * store (job_request.h) and this node scans nothing; the answer is the request's
 * status ("requested" on the leader's node). Returns whether the call is answered so.
 */
static bool hand_over(struct sy_rpc_call *call, struct sy_control_ctx *ctx, const char *name, int kind,
		      bool repair, uint32_t keys_per_s, uint64_t bytes_per_s)
{
	struct sy_spec_err err = {{0}};
	int e;

	if (leads_here(ctx))
		return false;
	if (!sy_registry_find(ctx->reg, name)) {
		start_failed(call, -ENOENT, kind == SY_JOBREQ_AUDIT ? "audit" : "backfill", name);
		return true;
	}
	e = sy_job_request_ask(ctx->reg, name, kind, ctx->info->node, repair, keys_per_s, bytes_per_s, &err);
	if (e)
		sy_api_fail(call, e, &err);
	else if (kind == SY_JOBREQ_AUDIT)
		reply_status(call, ctx, name, false);
	else
		reply_backfill(call, ctx, name);
	return true;
}

static void start_audit(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__StartAuditRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	int e;

	if (!name_valid(call, r->migration))
		return;
	if (r->keys_per_s > MAX_RATE) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "keys_per_s: %u is over %u", r->keys_per_s,
			      MAX_RATE);
		return;
	}
	if (hand_over(call, ctx, r->migration, SY_JOBREQ_AUDIT, r->repair, r->keys_per_s, 0))
		return;
	e = sy_verify_start_audit(ctx->verify, r->migration, r->repair, r->keys_per_s);
	if (!start_failed(call, e, "audit", r->migration))
		reply_status(call, ctx, r->migration, false);
}

static void get_audit(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__GetAuditRequest *r = (const void *)req;

	if (!name_valid(call, r->migration))
		return;
	reply_status(call, arg, r->migration, r->report);
}

static void reply_backfill(struct sy_rpc_call *call, struct sy_control_ctx *ctx, const char *name)
{
	Switchyard__V1__BackfillStatus st = SWITCHYARD__V1__BACKFILL_STATUS__INIT;
	struct sy_backfill_status b;

	if (sy_verify_backfill_status(ctx->verify, name, &b)) {
		sy_api_not_found(call, ctx, name);
		return;
	}
	st.migration = (char *)name;
	st.state = (char *)sy_job_state_name(b.state);
	st.scanned = b.scanned;
	st.copied = b.copied;
	st.bytes = b.bytes;
	st.total = b.total;
	st.eta_s = b.eta_s;
	st.keys_per_s = b.keys_per_s;
	st.bytes_per_s = b.bytes_per_s;
	st.rate_keys = b.rate_keys;
	st.rate_bytes = b.rate_bytes;
	st.started_unix_ms = b.started_unix_ms;
	st.finished_unix_ms = b.finished_unix_ms;
	st.resumed = b.resumed;
	struct whose w = whose_job(ctx, name, SY_JOBREQ_BACKFILL, b.state);
	const struct sy_fleet_job *j = w.theirs;

	st.node = (char *)w.node;
	if (w.requested) {
		st = (Switchyard__V1__BackfillStatus)SWITCHYARD__V1__BACKFILL_STATUS__INIT;
		st.migration = (char *)name;
		st.node = (char *)w.node;
		st.state = (char *)sy_job_state_name(SY_JOB_REQUESTED);
	} else if (j) {
		st.state = (char *)sy_job_state_name(j->state);
		st.scanned = j->scanned;
		st.total = j->total;
		st.copied = j->copied;
		st.started_unix_ms = j->started_unix_ms;
		st.finished_unix_ms = j->finished_unix_ms;
		st.eta_s = st.keys_per_s = st.bytes_per_s = 0;
		st.bytes = 0;
	}
	sy_rpc_reply(call, &st.base);
}

static void start_backfill(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__StartBackfillRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	int e;

	if (!name_valid(call, r->migration))
		return;
	if (r->keys_per_s > MAX_RATE || r->bytes_per_s > (1ull << 40)) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "keys_per_s or bytes_per_s out of range");
		return;
	}
	if (hand_over(call, ctx, r->migration, SY_JOBREQ_BACKFILL, false, r->keys_per_s, r->bytes_per_s))
		return;
	e = sy_verify_start_backfill(ctx->verify, r->migration, r->keys_per_s, r->bytes_per_s);
	if (!start_failed(call, e, "backfill", r->migration))
		reply_backfill(call, ctx, r->migration);
}

static void get_backfill(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__GetBackfillRequest *r = (const void *)req;

	if (!name_valid(call, r->migration))
		return;
	reply_backfill(call, arg, r->migration);
}

int sy_verify_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx)
{
	int e;

	if ((e = sy_rpc_server_add_unary(srv, "/switchyard.v1.Verify/StartBackfill",
					 &switchyard__v1__start_backfill_request__descriptor, start_backfill,
					 ctx)) ||
	    (e = sy_rpc_server_add_unary(srv, "/switchyard.v1.Verify/GetBackfill",
					 &switchyard__v1__get_backfill_request__descriptor, get_backfill,
					 ctx)))
		return e;

	if ((e = sy_rpc_server_add_unary(srv, "/switchyard.v1.Verify/StartAudit",
					 &switchyard__v1__start_audit_request__descriptor, start_audit, ctx)))
		return e;
	return sy_rpc_server_add_unary(srv, "/switchyard.v1.Verify/GetAudit",
				       &switchyard__v1__get_audit_request__descriptor, get_audit, ctx);
}
