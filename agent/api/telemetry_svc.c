// SPDX-License-Identifier: Apache-2.0
/* telemetry_svc.c — switchyard.v1.Telemetry/Watch: per stream, a timer at the asked
 * interval reads the kernel's counters (steering decisions, observe statistics),
 * subtracts the previous reading of the same stream and sends rates and interval
 * percentiles. A stream whose client reads slower than it sends is skipped a tick
 * (counted as the next snapshot covering a longer interval), never queued without end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/control_plane.h"
#include "core/histogram.h"
#include "core/log.h"
#include "core/loop.h"
#include "model/job.h"
#include "telemetry/metrics.h"
#include "switchyard/v1/telemetry.pb-c.h"

#define MAX_PENDING (256u << 10)

struct watch {
	struct sy_control_ctx *ctx;
	struct sy_rpc_call *call;
	uint64_t interval_ms;
	char filter[SY_NAME_MAX];
	uint64_t timer;
	uint64_t last_ms;
	uint64_t seq;
	struct sy_metrics_mig *prev;
	size_t nprev;
};

static struct sy_metrics_mig *prev_of(struct watch *w, const struct sy_migration_state *m)
{
	for (size_t i = 0; i < w->nprev; i++)
		if (w->prev[i].id == m->id && strcmp(w->prev[i].name, m->spec.name) == 0)
			return &w->prev[i];
	return NULL;
}

static void tick(struct sy_loop *l, void *arg);

static void watch_free(struct watch *w)
{
	free(w->prev);
	free(w);
}

static void on_cancel(struct sy_rpc_call *call, void *arg)
{
	struct watch *w = arg;
	struct sy_loop *loop = w->ctx->loop;

	(void)call;
	sy_loop_cancel_timer(loop, w->timer);
	watch_free(w);
}

static void fill_side(Switchyard__V1__SideSnapshot *ss, int side, const struct sy_metrics_mig *cur,
		      const struct sy_metrics_mig *p, uint64_t dec, double secs)
{
	const struct sy_side_stats *now = &cur->side[side], *before = &p->side[side];
	const struct sy_rule_stats *cn = &cur->cls[side], *cb = &p->cls[side];
	uint64_t lat[SY_LAT_BUCKETS], ex = now->exchanges - before->exchanges,
				      err = now->errors - before->errors;

	switchyard__v1__side_snapshot__init(ss);
	ss->side = side ? "target" : "legacy";
	ss->exchanges_per_s = (double)ex / secs;
	ss->bytes_out_per_s = (double)(now->bytes_out - before->bytes_out) / secs;
	ss->bytes_in_per_s = (double)(now->bytes_in - before->bytes_in) / secs;
	ss->errors_per_s = (double)err / secs;
	ss->error_ratio = ex ? (double)err / (double)ex : 0;
	for (int b = 0; b < SY_LAT_BUCKETS; b++)
		lat[b] = now->lat[b] - before->lat[b];
	ss->p50_us = sy_log2_quantile(lat, SY_LAT_BUCKETS, 0.50);
	ss->p95_us = sy_log2_quantile(lat, SY_LAT_BUCKETS, 0.95);
	ss->p99_us = sy_log2_quantile(lat, SY_LAT_BUCKETS, 0.99);
	ss->sockets_opened = now->sockets - before->sockets;
	ss->decisions = dec;
	ss->reads_per_s = (double)(cn->cmds[SY_CLASS_READ] - cb->cmds[SY_CLASS_READ]) / secs;
	ss->writes_per_s = (double)(cn->cmds[SY_CLASS_WRITE] - cb->cmds[SY_CLASS_WRITE]) / secs;
	ss->others_per_s = (double)(cn->cmds[SY_CLASS_OTHER] - cb->cmds[SY_CLASS_OTHER]) / secs;
	ss->unparsed = now->unparsed - before->unparsed;
	ss->gaps = now->gaps - before->gaps;
	ss->events_lost = now->ev_lost - before->ev_lost;
	ss->outside_per_s = (double)(now->outside - before->outside) / secs;
	ss->captured_per_s = (double)(now->captured - before->captured) / secs;
	ss->sampled_per_s = (double)(now->sampled - before->sampled) / secs;
}

/* Everything a snapshot needs of one migration, read now. */
static void read_counters(struct sy_control_ctx *ctx, const struct sy_migration_state *m,
			  struct sy_metrics_mig *p)
{
	const struct sy_metrics_src src = {
		.reg = ctx->reg, .mirror = ctx->mirror, .verify = ctx->verify, .fleet = ctx->fleet};

	sy_metrics_read(&src, m, p);
}

/* Keys compared, and drift found, by the audits and dual reads together. */
static uint64_t checked_of(const struct sy_metrics_mig *p)
{
	return p->drift_checked[SY_SRC_AUDIT] + p->drift_checked[SY_SRC_DUAL_READ];
}

static uint64_t drifted_of(const struct sy_metrics_mig *p)
{
	return p->drift_found[SY_SRC_AUDIT] + p->drift_found[SY_SRC_DUAL_READ];
}

/* A migration's gates in a snapshot: the reply points into it until sent. */
struct gates_pb {
	struct sy_cutover_status st;
	Switchyard__V1__GateStatus g[SY_GATES];
	Switchyard__V1__GateStatus *gp[SY_GATES];
};

static void fill_gates(const struct sy_migration_state *m, Switchyard__V1__MigrationSnapshot *x,
		       struct gates_pb *o)
{
	x->gates = o->gp;
	x->n_gates = sy_api_gates_pb(m, &o->st, o->g, o->gp);
}

static void fill_verify(struct sy_control_ctx *ctx, const struct sy_migration_state *m,
			Switchyard__V1__MigrationSnapshot *x, const struct sy_metrics_mig *cur,
			const struct sy_metrics_mig *p, double secs, struct gates_pb *gates)
{
	struct sy_audit_status a;
	struct sy_backfill_status b;
	uint64_t checked = checked_of(cur) - checked_of(p);

	x->checked_per_s = (double)checked / secs;
	x->drift = drifted_of(cur) - drifted_of(p);
	x->drift_rate = checked ? (double)x->drift / (double)checked : 0;
	if (ctx->cutover) {
		struct sy_cutover_status *c = &gates->st;

		if (sy_cutover_status(ctx->cutover, m->spec.name, c) == 0) {
			x->phase = (char *)sy_phase_name(c->co.phase);
			x->step = c->step;
			x->steps = c->n_steps;
			x->bake_left_ms = c->bake_left_ms;
			x->reason = (char *)m->co.reason; /* the registry's: lives past the reply */
			fill_gates(m, x, gates);
		}
	}
	if (!ctx->verify)
		return;
	if (sy_verify_status(ctx->verify, m->spec.name, &a) == 0) {
		x->audit_state = (char *)sy_job_state_name(a.state);
		x->audit_progress = a.total ? (double)a.scanned / (double)a.total : 0;
	}
	if (sy_verify_backfill_status(ctx->verify, m->spec.name, &b) == 0) {
		x->backfill_state = (char *)sy_job_state_name(b.state);
		x->backfill_progress = b.total ? (double)b.copied / (double)b.total : 0;
		x->backfill_eta_s = b.eta_s;
	}
}

static void fill_mirror(Switchyard__V1__MirrorSnapshot *x, int k, const struct sy_metrics_mig *cur,
			const struct sy_metrics_mig *p, double secs)
{
	const struct sy_mirror_stats *n = &cur->mir[k], *b = &p->mir[k];
	uint64_t lag[SY_LAT_BUCKETS];

	switchyard__v1__mirror_snapshot__init(x);
	x->direction = k ? "reverse" : "forward";
	x->mirrored_per_s = (double)(n->mirrored - b->mirrored) / secs;
	x->failed = n->failed - b->failed;
	x->repaired = n->repaired - b->repaired;
	x->dropped = n->dropped - b->dropped;
	x->conflicts = n->conflicts - b->conflicts;
	x->queued = n->queued;
	x->dirty = n->dirty;
	x->needs_audit = n->needs_audit;
	for (int i = 0; i < SY_LAT_BUCKETS; i++)
		lag[i] = n->lag[i] - b->lag[i];
	x->lag_p50_us = sy_log2_quantile(lag, SY_LAT_BUCKETS, 0.50);
	x->lag_p99_us = sy_log2_quantile(lag, SY_LAT_BUCKETS, 0.99);
}

static void send_snapshot(struct watch *w)
{
	struct sy_registry *reg = w->ctx->reg;
	size_t n = sy_registry_count(reg), k = 0;
	Switchyard__V1__Snapshot snap = SWITCHYARD__V1__SNAPSHOT__INIT;
	Switchyard__V1__MigrationSnapshot *ms = calloc(n ? n : 1, sizeof(*ms));
	Switchyard__V1__MigrationSnapshot **msp = calloc(n ? n : 1, sizeof(*msp));
	Switchyard__V1__SideSnapshot *ss = calloc(n ? n * 2 : 1, sizeof(*ss));
	Switchyard__V1__SideSnapshot **ssp = calloc(n ? n * 2 : 1, sizeof(*ssp));
	Switchyard__V1__MirrorSnapshot *mx = calloc(n ? n * 2 : 1, sizeof(*mx));
	Switchyard__V1__MirrorSnapshot **mxp = calloc(n ? n * 2 : 1, sizeof(*mxp));
	struct sy_metrics_mig *next = calloc(n ? n : 1, sizeof(*next));
	struct gates_pb *gates = calloc(n ? n : 1, sizeof(*gates));
	uint64_t now = sy_unix_ms();
	double secs = w->last_ms && now > w->last_ms ? (double)(now - w->last_ms) / 1000.0
						     : (double)w->interval_ms / 1000.0;

	if (!ms || !msp || !ss || !ssp || !next || !mx || !mxp || !gates)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct sy_migration_state *m = sy_registry_at(reg, i);
		struct sy_metrics_mig *p = prev_of(w, m), zero = {0}, *cur = &next[k];

		if (w->filter[0] && strcmp(w->filter, m->spec.name) != 0)
			continue;
		if (!p)
			p = &zero;
		read_counters(w->ctx, m, cur);
		switchyard__v1__migration_snapshot__init(&ms[k]);
		ms[k].name = (char *)m->spec.name;
		ms[k].ratio_bp = m->spec.ratio_bp;
		ms[k].targets = m->spec.n_target;
		ms[k].healthy_targets = (uint32_t)__builtin_popcount(m->healthy_mask);
		ms[k].fallback = cur->dec.decisions[SY_DEC_FALLBACK] - p->dec.decisions[SY_DEC_FALLBACK];
		fill_side(&ss[2 * k], 0, cur, p,
			  (cur->dec.decisions[SY_DEC_LEGACY] + cur->dec.decisions[SY_DEC_PINNED_LEGACY] +
			   cur->dec.decisions[SY_DEC_FALLBACK]) -
				  (p->dec.decisions[SY_DEC_LEGACY] + p->dec.decisions[SY_DEC_PINNED_LEGACY] +
				   p->dec.decisions[SY_DEC_FALLBACK]),
			  secs);
		fill_side(&ss[2 * k + 1], 1, cur, p,
			  (cur->dec.decisions[SY_DEC_TARGET] + cur->dec.decisions[SY_DEC_PINNED_TARGET]) -
				  (p->dec.decisions[SY_DEC_TARGET] + p->dec.decisions[SY_DEC_PINNED_TARGET]),
			  secs);
		ssp[2 * k] = &ss[2 * k];
		ssp[2 * k + 1] = &ss[2 * k + 1];
		ms[k].sides = &ssp[2 * k];
		ms[k].n_sides = 2;
		fill_verify(w->ctx, m, &ms[k], cur, p, secs, &gates[k]);
		if (sy_mirror_effective(&m->spec)) {
			for (int j = 0; j < 2; j++) {
				fill_mirror(&mx[2 * k + j], j, cur, p, secs);
				mxp[2 * k + j] = &mx[2 * k + j];
			}
			ms[k].mirror = &mxp[2 * k];
			ms[k].n_mirror = 2;
		}
		msp[k] = &ms[k];
		k++;
	}
	snap.unix_ms = now;
	snap.seq = ++w->seq;
	snap.interval_s = secs;
	snap.migrations = msp;
	snap.n_migrations = k;
	if (sy_rpc_send(w->call, &snap.base) == 0) {
		free(w->prev);
		w->prev = next;
		w->nprev = k;
		next = NULL;
		w->last_ms = now;
	}
out:
	free(ms);
	free(msp);
	free(ss);
	free(ssp);
	free(mx);
	free(mxp);
	free(next);
	free(gates);
}

static void tick(struct sy_loop *l, void *arg)
{
	struct watch *w = arg;

	w->timer = sy_loop_add_timer(l, w->interval_ms, tick, w);
	/* A slow reader: skip this tick; the next snapshot covers the longer interval. */
	if (sy_rpc_call_pending(w->call) > MAX_PENDING)
		return;
	send_snapshot(w);
}

static void watch(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__WatchRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	struct watch *w;

	if (r->interval_ms && r->interval_ms < 10) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT, "interval_ms: %u is below the minimum of 10",
			      r->interval_ms);
		return;
	}
	if (r->migration && *r->migration && !sy_registry_find(ctx->reg, r->migration)) {
		sy_api_not_found(call, ctx, r->migration);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		sy_rpc_finish(call, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	w->ctx = ctx;
	w->call = call;
	w->interval_ms = r->interval_ms ? r->interval_ms : 1000;
	snprintf(w->filter, sizeof(w->filter), "%s", r->migration ? r->migration : "");
	/* The first snapshot's rates need a baseline: read it now, send after one interval. */
	{
		size_t n = sy_registry_count(ctx->reg);

		w->prev = calloc(n ? n : 1, sizeof(*w->prev));
		for (size_t i = 0; w->prev && i < n; i++) {
			const struct sy_migration_state *m = sy_registry_at(ctx->reg, i);
			read_counters(ctx, m, &w->prev[w->nprev++]);
		}
	}
	w->last_ms = sy_unix_ms();
	sy_rpc_call_set_cancel(call, on_cancel, w);
	w->timer = sy_loop_add_timer(ctx->loop, w->interval_ms, tick, w);
}

int sy_telemetry_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx)
{
	return sy_rpc_server_add_stream(srv, "/switchyard.v1.Telemetry/Watch",
					&switchyard__v1__watch_request__descriptor, watch, ctx);
}
