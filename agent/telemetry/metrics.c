// SPDX-License-Identifier: Apache-2.0
/* metrics.c — reads the figures of every migration (kernel maps through the registry,
 * the mirror, verify, the cutover source) and lays them out as the metric families
 * that docs/observability.md names. The names, units and attributes are a contract
 * with dashboards: change them only with the docs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "kernel/mapsync.h"
#include "switchyard/resp_reply.h"
#include "telemetry/metrics.h"
#include "registry/fleet.h"
#include "registry/registry.h"
#include "shadow/mirror.h"
#include "shadow/verify.h"

static sy_metrics_cutover_fn cutover_fn;
static void *cutover_arg;
static struct sy_metrics_ops_src ops;

void sy_metrics_set_ops_source(const struct sy_metrics_ops_src *src)
{
	ops = src ? *src : (struct sy_metrics_ops_src){0};
}

/* Gates (threshold from the plan, value from the controller), endpoints' health,
 * backfill and audit progress, needs-audit, dirty keys, host names. */
static void read_ops(const struct sy_metrics_src *src, const struct sy_migration_state *m,
		     struct sy_metrics_mig *out)
{
	double val[SY_GATES] = {0};
	bool have[SY_GATES] = {0};

	if (m->spec.plan.n_steps && ops.gates)
		ops.gates(ops.arg, m->spec.name, val, have);
	for (int g = 0; g < SY_GATES; g++) {
		out->gate[g].enabled = m->spec.plan.n_steps && m->spec.plan.gates[g].enabled;
		out->gate[g].threshold = m->spec.plan.gates[g].max;
		out->gate[g].have_value = out->gate[g].enabled && have[g];
		out->gate[g].value = val[g];
	}
	for (int side = 0; side < 2; side++) {
		const struct sy_endpoint *eps = side == SY_SIDE_TARGET ? m->spec.target : m->spec.legacy;

		out->n_eps[side] = side == SY_SIDE_TARGET ? m->spec.n_target : m->spec.n_legacy;
		for (uint32_t i = 0; i < out->n_eps[side]; i++) {
			sy_endpoint_format(&eps[i], out->ep[side][i], sizeof(out->ep[side][i]));
			out->ep_healthy[side][i] = ops.endpoint_health
							   ? (int8_t)ops.endpoint_health(ops.arg, &eps[i])
							   : (int8_t)-1;
		}
		for (uint32_t h = 0; h < m->spec.n_hosts[side] && out->n_hosts < 2 * SY_SPEC_MAX_HOSTS; h++) {
			const struct sy_host_spec *hs = &m->spec.hosts[side][h];

			snprintf(out->host[out->n_hosts].name, sizeof(out->host[0].name), "%s:%u", hs->host,
				 hs->port);
			out->host[out->n_hosts].side = (uint8_t)side;
			out->host[out->n_hosts].n_addrs = hs->n;
			out->host[out->n_hosts++].stale = hs->stale;
		}
	}
	for (int k = 0; k < 2; k++) {
		out->dirty += out->mir[k].dirty;
		out->needs_audit |= out->mir[k].needs_audit;
	}
	if (src->verify) {
		struct sy_backfill_status b;
		struct sy_audit_status a;

		if (sy_verify_backfill_status(src->verify, m->spec.name, &b) == 0) {
			out->job[SY_JOB_BACKFILL].running = b.state == SY_JOB_RUNNING;
			out->job[SY_JOB_BACKFILL].done = b.scanned;
			out->job[SY_JOB_BACKFILL].total = b.total;
		}
		if (sy_verify_status(src->verify, m->spec.name, &a) == 0) {
			out->job[SY_JOB_AUDIT].running = a.state == SY_JOB_RUNNING;
			out->job[SY_JOB_AUDIT].done = a.scanned;
			out->job[SY_JOB_AUDIT].total = a.total;
		}
	}
}

void sy_metrics_set_cutover_source(sy_metrics_cutover_fn fn, void *arg)
{
	cutover_fn = fn;
	cutover_arg = arg;
}

void sy_metrics_read(const struct sy_metrics_src *src, const struct sy_migration_state *m,
		     struct sy_metrics_mig *out)
{
	const char *state = NULL;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", m->spec.name);
	out->id = m->id;
	out->start_unix_ms = m->created_unix_ms;
	out->ratio_bp = m->spec.ratio_bp;
	for (uint8_t side = 0; side < 2; side++) {
		sy_mapsync_side_stats(sy_registry_bpf(src->reg), m->id, side, &out->side[side]);
		sy_mapsync_side_classes(sy_registry_bpf(src->reg), m->id, side, &out->cls[side]);
		for (int i = 0; i < SY_LAT_BUCKETS; i++)
			out->lat[side][i] = out->side[side].lat[i];
	}
	sy_mapsync_counters(sy_registry_bpf(src->reg), m->id, &out->dec);
	for (int k = 0; src->mirror && k < 2; k++)
		sy_mirror_stats(src->mirror, m->id, k, &out->mir[k]);
	if (src->verify) {
		struct sy_audit_status a;

		if (sy_verify_status(src->verify, m->spec.name, &a) == 0) {
			out->drift_checked[SY_SRC_AUDIT] = a.audit_checked;
			out->drift_found[SY_SRC_AUDIT] = a.audit_found;
			out->drift_repaired[SY_SRC_AUDIT] = a.audit_repaired;
			out->drift_checked[SY_SRC_DUAL_READ] = a.dual_checked;
			out->drift_found[SY_SRC_DUAL_READ] = a.dual_drift;
			out->drift_repaired[SY_SRC_DUAL_READ] = a.dual_repaired;
			if ((out->has_versions = a.versions != NULL))
				out->versions = *a.versions;
			if ((out->has_xf = a.has_transform))
				out->xf = a.transform;
		}
	}
	if (!cutover_fn || cutover_fn(cutover_arg, m->id, &out->step, &out->n_steps, &state) < 0 || !state) {
		out->step = out->n_steps = 0;
		state = "manual";
	}
	snprintf(out->state, sizeof(out->state), "%s", state);
	if (sy_fleet_active(src->fleet)) {
		struct sy_fleet_counters fc;
		uint32_t nodes;

		out->fleet_ok = sy_fleet_sum(src->fleet, m->spec.name, &fc, &nodes) == 0;
		for (int d = 0; out->fleet_ok && d < 2; d++) {
			out->fleet_req[d] = fc.req[d];
			out->fleet_err[d] = fc.err[d];
			memcpy(out->fleet_lat[d], fc.lat[d], sizeof(out->fleet_lat[d]));
		}
	}
	read_ops(src, m, out);
}

/* ---- families ------------------------------------------------------------------------ */

/* Points one migration can add across every family (see build()), and the exporter's. */
#define POINTS_PER_MIG                                                                                       \
	(72 + 27 /* the versions' 18, the transform's 5 */ + 2 * SY_GATES + 2 * SY_MAX_ENDPOINTS + 8 +       \
	 4 * SY_SPEC_MAX_HOSTS)
#define EXPORTER_POINTS 12 /* the exporter's 6, the resolver's 3 */
#define FLEET_POINTS	1
#define TLS_POINTS	(2 + SY_METRICS_TLS_CERTS)
#define MAX_FAMILIES	64

static const char *const side_name[2] = {"legacy", "target"};
/* enum sy_reply_err, in order */
static const char *const err_class_name[SY_ERR_CLASSES] = {"err",    "moved",	 "oom",
							   "noauth", "readonly", "other"};
static const char *const dir_name[2] = {"forward", "reverse"};
static const char *const src_name[2] = {"audit", "dual_read"};

struct bld {
	struct sy_metrics_set *s;
	struct sy_metric_family *f;
};

static void fam(struct bld *b, const char *name, const char *unit, enum sy_metric_kind kind, bool mono,
		const char *help)
{
	struct sy_metric_family *f = &b->s->fam[b->s->n_fam++];

	*f = (struct sy_metric_family){.name = name,
				       .unit = unit,
				       .help = help,
				       .kind = kind,
				       .monotonic = mono,
				       .points = b->s->pool + b->s->n_pool};
	b->f = f;
}

/* A point of the current family for migration m (NULL: an agent-wide point), with
 * up to two more attributes (NULL key = none). */
static struct sy_metric_point *pt(struct bld *b, const struct sy_metrics_mig *m, const char *k1,
				  const char *v1, const char *k2, const char *v2)
{
	struct sy_metric_point *p = &b->s->pool[b->s->n_pool++];
	uint64_t start = b->s->start_unix_ms;

	memset(p, 0, sizeof(*p));
	if (m) {
		p->key[p->n_attrs] = "migration";
		p->val[p->n_attrs++] = m->name;
		if (m->start_unix_ms > start)
			start = m->start_unix_ms;
	}
	if (k1) {
		p->key[p->n_attrs] = k1;
		p->val[p->n_attrs++] = v1;
	}
	if (k2) {
		p->key[p->n_attrs] = k2;
		p->val[p->n_attrs++] = v2;
	}
	p->start_unix_ms = start;
	b->f->n_points++;
	return p;
}

static void build_sides(struct bld *b)
{
	static const char *const cls[3] = {"read", "write", "other"};
	static const int cls_idx[3] = {SY_CLASS_READ, SY_CLASS_WRITE, SY_CLASS_OTHER};
	struct sy_metrics_set *s = b->s;

	fam(b, "switchyard.operations", "{operation}", SY_METRIC_SUM, true,
	    "Commands clients sent, by side and class, as parsed in the kernel");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++)
			for (int c = 0; c < 3; c++)
				pt(b, &s->migs[i], "side", side_name[d], "class", cls[c])->u =
					s->migs[i].cls[d].cmds[cls_idx[c]];
	fam(b, "switchyard.bytes", "By", SY_METRIC_SUM, true,
	    "Bytes clients sent (request) and received (reply), retransmissions excluded");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++) {
			pt(b, &s->migs[i], "side", side_name[d], "direction", "request")->u =
				s->migs[i].side[d].bytes_out;
			pt(b, &s->migs[i], "side", side_name[d], "direction", "reply")->u =
				s->migs[i].side[d].bytes_in;
		}
	fam(b, "switchyard.request.duration", "s", SY_METRIC_HISTOGRAM, false,
	    "Request to first reply byte, measured in the kernel (log2 buckets)");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++)
			pt(b, &s->migs[i], "side", side_name[d], NULL, NULL)->buckets = s->migs[i].lat[d];
	fam(b, "switchyard.errors", "{reply}", SY_METRIC_SUM, true, "RESP error replies");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++)
			pt(b, &s->migs[i], "side", side_name[d], NULL, NULL)->u = s->migs[i].side[d].errors;
	fam(b, "switchyard.unparsed", "{command}", SY_METRIC_SUM, true,
	    "Protocol errors or parser limits: the kernel's parser resynchronised");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++)
			pt(b, &s->migs[i], "side", side_name[d], NULL, NULL)->u = s->migs[i].side[d].unparsed;
	fam(b, "switchyard.errors.classes", "{reply}", SY_METRIC_SUM, true,
	    "RESP error replies by the first word of the error (each error counted once)");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++)
			for (int c = 0; c < SY_ERR_CLASSES; c++)
				pt(b, &s->migs[i], "side", side_name[d], "class", err_class_name[c])->u =
					s->migs[i].side[d].err_class[c];
	fam(b, "switchyard.stream_gaps", "{segment}", SY_METRIC_SUM, true,
	    "Segments after bytes the kernel observer never saw (dropped or overtaken): the parser "
	    "picked the stream up again; what the gap held is not counted");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++)
			pt(b, &s->migs[i], "side", side_name[d], NULL, NULL)->u = s->migs[i].side[d].gaps;
	fam(b, "switchyard.tls_sockets", "{socket}", SY_METRIC_SUM, true,
	    "Client sockets that spoke TLS (rediss://): steered, not parsed");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++)
			pt(b, &s->migs[i], "side", side_name[d], NULL, NULL)->u =
				s->migs[i].side[d].tls_sockets;
}

static void build_steering(struct bld *b)
{
	static const char *const dec[5] = {"legacy", "target", "pinned_legacy", "pinned_target", "fallback"};
	static const int dec_idx[5] = {SY_DEC_LEGACY, SY_DEC_TARGET, SY_DEC_PINNED_LEGACY,
				       SY_DEC_PINNED_TARGET, SY_DEC_FALLBACK};
	struct sy_metrics_set *s = b->s;

	fam(b, "switchyard.steering.decisions", "{connection}", SY_METRIC_SUM, true,
	    "connect() calls to a legacy endpoint, by the side they were sent to and why");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int k = 0; k < 5; k++)
			pt(b, &s->migs[i], "decision", dec[k], NULL, NULL)->u =
				s->migs[i].dec.decisions[dec_idx[k]];
}

/* Document versions and transform calls (docs/transforms.md): only migrations with
 * version_field: or transform: have points. */
static void build_transform(struct bld *b)
{
	struct sy_metrics_set *s = b->s;

	fam(b, "switchyard.documents", "{key}", SY_METRIC_GAUGE, false,
	    "Target keys per document version (version_field:), as the last audit counted them");
	for (size_t i = 0; i < s->n_migs; i++) {
		const struct sy_metrics_mig *m = &s->migs[i];

		for (size_t k = 0; m->has_versions && k < m->versions.n; k++)
			pt(b, m, "version", m->versions.v[k].version, NULL, NULL)->u = m->versions.v[k].keys;
		if (m->has_versions && m->versions.none)
			pt(b, m, "version", "", NULL, NULL)->u = m->versions.none;
		if (m->has_versions && m->versions.other)
			pt(b, m, "version", "other", NULL, NULL)->u = m->versions.other;
	}
	fam(b, "switchyard.transform.calls", "{call}", SY_METRIC_SUM, true,
	    "Transform script calls: ok, or stopped by the budget, the memory cap, an error; and "
	    "forward_write fallbacks to forward_key");
	for (size_t i = 0; i < s->n_migs; i++) {
		const struct sy_metrics_mig *m = &s->migs[i];

		if (!m->has_xf)
			continue;
		pt(b, m, "outcome", "ok", NULL, NULL)->u = m->xf.calls - m->xf.failed;
		pt(b, m, "outcome", "budget", NULL, NULL)->u = m->xf.budget;
		pt(b, m, "outcome", "memory", NULL, NULL)->u = m->xf.memory;
		pt(b, m, "outcome", "error", NULL, NULL)->u = m->xf.errors;
		pt(b, m, "outcome", "fallback", NULL, NULL)->u = m->xf.fallback;
	}
}

static void build_mirror(struct bld *b)
{
	struct sy_metrics_set *s = b->s;

	fam(b, "switchyard.mirror.commands", "{command}", SY_METRIC_SUM, true,
	    "Captured writes replayed on the other side (mirrored), failed, or dropped for overload");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int k = 0; k < 2; k++) {
			const struct sy_mirror_stats *x = &s->migs[i].mir[k];

			pt(b, &s->migs[i], "direction", dir_name[k], "outcome", "mirrored")->u = x->mirrored;
			pt(b, &s->migs[i], "direction", dir_name[k], "outcome", "failed")->u = x->failed;
			pt(b, &s->migs[i], "direction", dir_name[k], "outcome", "dropped")->u = x->dropped;
		}
	fam(b, "switchyard.mirror.repairs", "{key}", SY_METRIC_SUM, true,
	    "Keys copied from the authoritative side by repair, and failed attempts");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int k = 0; k < 2; k++) {
			const struct sy_mirror_stats *x = &s->migs[i].mir[k];

			pt(b, &s->migs[i], "direction", dir_name[k], "outcome", "repaired")->u = x->repaired;
			pt(b, &s->migs[i], "direction", dir_name[k], "outcome", "failed")->u =
				x->repair_failed;
		}
	fam(b, "switchyard.mirror.lag", "s", SY_METRIC_HISTOGRAM, false,
	    "Capture of a write to its replay acknowledged (log2 buckets)");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int k = 0; k < 2; k++)
			pt(b, &s->migs[i], "direction", dir_name[k], NULL, NULL)->buckets =
				s->migs[i].mir[k].lag;
	fam(b, "switchyard.mirror.queued", "{command}", SY_METRIC_GAUGE, false, "Replays in flight now");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int k = 0; k < 2; k++)
			pt(b, &s->migs[i], "direction", dir_name[k], NULL, NULL)->u =
				s->migs[i].mir[k].queued;
}

static void build_drift(struct bld *b)
{
	static const char *const names[3] = {"switchyard.drift.checked", "switchyard.drift.found",
					     "switchyard.drift.repaired"};
	static const char *const help[3] = {"Keys compared on both sides (audit scans and dual reads)",
					    "Keys found different after mirroring settled",
					    "Drifted keys repaired"};
	struct sy_metrics_set *s = b->s;

	for (int n = 0; n < 3; n++) {
		fam(b, names[n], "{key}", SY_METRIC_SUM, true, help[n]);
		for (size_t i = 0; i < s->n_migs; i++)
			for (int k = 0; k < 2; k++) {
				const struct sy_metrics_mig *m = &s->migs[i];
				const uint64_t *v = n == 0   ? m->drift_checked
						    : n == 1 ? m->drift_found
							     : m->drift_repaired;

				pt(b, m, "source", src_name[k], NULL, NULL)->u = v[k];
			}
	}
}

static void build_cutover(struct bld *b)
{
	struct sy_metrics_set *s = b->s;

	fam(b, "switchyard.cutover.ratio", "1", SY_METRIC_GAUGE, false, "Share of clients sent to target");
	b->f->is_double = true;
	for (size_t i = 0; i < s->n_migs; i++)
		pt(b, &s->migs[i], NULL, NULL, NULL, NULL)->d = (double)s->migs[i].ratio_bp / 10000.0;
	fam(b, "switchyard.cutover.step", "{step}", SY_METRIC_GAUGE, false,
	    "Current step of the cutover plan");
	for (size_t i = 0; i < s->n_migs; i++)
		pt(b, &s->migs[i], NULL, NULL, NULL, NULL)->u = s->migs[i].step;
	fam(b, "switchyard.cutover.steps", "{step}", SY_METRIC_GAUGE, false, "Steps in the cutover plan");
	for (size_t i = 0; i < s->n_migs; i++)
		pt(b, &s->migs[i], NULL, NULL, NULL, NULL)->u = s->migs[i].n_steps;
	fam(b, "switchyard.cutover.state", "", SY_METRIC_GAUGE, false,
	    "State of the cutover (always 1; the state is the attribute)");
	for (size_t i = 0; i < s->n_migs; i++)
		pt(b, &s->migs[i], "state", s->migs[i].state, NULL, NULL)->u = 1;
}

/* Fleet mode: live nodes, and every live node's counters summed (what the leader's
 * gates read), from this agent's view of the node keys. */
static void build_fleet(struct bld *b)
{
	struct sy_metrics_set *s = b->s;

	fam(b, "switchyard.fleet.nodes", "{node}", SY_METRIC_GAUGE, false,
	    "Agents whose node key is live in the shared store");
	pt(b, NULL, NULL, NULL, NULL, NULL)->u = s->fleet_nodes;
	fam(b, "switchyard.fleet.requests", "{request}", SY_METRIC_SUM, true,
	    "Answered requests summed over the fleet's live nodes, by side");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; s->migs[i].fleet_ok && d < 2; d++)
			pt(b, &s->migs[i], "side", side_name[d], NULL, NULL)->u = s->migs[i].fleet_req[d];
	fam(b, "switchyard.fleet.errors", "{reply}", SY_METRIC_SUM, true,
	    "RESP error replies summed over the fleet's live nodes, by side");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; s->migs[i].fleet_ok && d < 2; d++)
			pt(b, &s->migs[i], "side", side_name[d], NULL, NULL)->u = s->migs[i].fleet_err[d];
	fam(b, "switchyard.fleet.request.duration", "s", SY_METRIC_HISTOGRAM, false,
	    "Request to first reply byte summed over the fleet's live nodes (log2 buckets)");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; s->migs[i].fleet_ok && d < 2; d++)
			pt(b, &s->migs[i], "side", side_name[d], NULL, NULL)->buckets =
				s->migs[i].fleet_lat[d];
}

static void build_ops(struct bld *b)
{
	static const char *const job_name[2] = {"backfill", "audit"};
	struct sy_metrics_set *s = b->s;

	fam(b, "switchyard.gate.threshold", "", SY_METRIC_GAUGE, false,
	    "A cutover gate's maximum, as the plan sets it (gates that are on)");
	b->f->is_double = true;
	for (size_t i = 0; i < s->n_migs; i++)
		for (int g = 0; g < SY_GATES; g++)
			if (s->migs[i].gate[g].enabled)
				pt(b, &s->migs[i], "gate", sy_gate_name(g), NULL, NULL)->d =
					s->migs[i].gate[g].threshold;
	fam(b, "switchyard.gate.value", "", SY_METRIC_GAUGE, false,
	    "A cutover gate's value over the step's last window (absent until evaluated)");
	b->f->is_double = true;
	for (size_t i = 0; i < s->n_migs; i++)
		for (int g = 0; g < SY_GATES; g++)
			if (s->migs[i].gate[g].have_value)
				pt(b, &s->migs[i], "gate", sy_gate_name(g), NULL, NULL)->d =
					s->migs[i].gate[g].value;
	fam(b, "switchyard.endpoint.healthy", "", SY_METRIC_GAUGE, false,
	    "1 when the endpoint answered its last health check, 0 when not (absent until checked)");
	for (size_t i = 0; i < s->n_migs; i++)
		for (int d = 0; d < 2; d++)
			for (uint32_t e = 0; e < s->migs[i].n_eps[d]; e++)
				if (s->migs[i].ep_healthy[d][e] >= 0) {
					struct sy_metric_point *p = pt(b, &s->migs[i], "side", side_name[d],
								       "endpoint", s->migs[i].ep[d][e]);
					p->u = (uint64_t)s->migs[i].ep_healthy[d][e];
				}
	for (int j = 0; j < 2; j++) {
		static const char *const scanned[2] = {"switchyard.backfill.scanned",
						       "switchyard.audit.scanned"};
		static const char *const keys[2] = {"switchyard.backfill.keys", "switchyard.audit.keys"};
		static const char *const running[2] = {"switchyard.backfill.running",
						       "switchyard.audit.running"};

		fam(b, scanned[j], "{key}", SY_METRIC_GAUGE, false,
		    j ? "In-scope keys the current (or last) audit has compared"
		      : "In-scope keys the current (or last) backfill has scanned");
		for (size_t i = 0; i < s->n_migs; i++)
			pt(b, &s->migs[i], NULL, NULL, NULL, NULL)->u = s->migs[i].job[j].done;
		fam(b, keys[j], "{key}", SY_METRIC_GAUGE, false,
		    "In-scope keys the job has to scan (0: not known yet)");
		for (size_t i = 0; i < s->n_migs; i++)
			pt(b, &s->migs[i], NULL, NULL, NULL, NULL)->u = s->migs[i].job[j].total;
		fam(b, running[j], "", SY_METRIC_GAUGE, false,
		    job_name[j][0] == 'a' ? "1 while an audit runs" : "1 while a backfill runs");
		for (size_t i = 0; i < s->n_migs; i++)
			pt(b, &s->migs[i], NULL, NULL, NULL, NULL)->u = s->migs[i].job[j].running;
	}
	fam(b, "switchyard.mirror.needs_audit", "", SY_METRIC_GAUGE, false,
	    "1 when the mirror may have missed writes that repair cannot know of: run an audit "
	    "(the reason is in the events)");
	for (size_t i = 0; i < s->n_migs; i++)
		pt(b, &s->migs[i], NULL, NULL, NULL, NULL)->u = s->migs[i].needs_audit;
	fam(b, "switchyard.mirror.dirty", "{key}", SY_METRIC_GAUGE, false, "Keys waiting for repair now");
	for (size_t i = 0; i < s->n_migs; i++)
		pt(b, &s->migs[i], NULL, NULL, NULL, NULL)->u = s->migs[i].dirty;
	fam(b, "switchyard.endpoint.name.stale", "", SY_METRIC_GAUGE, false,
	    "1 when a host name no longer resolves and its last addresses are kept");
	for (size_t i = 0; i < s->n_migs; i++)
		for (uint32_t h = 0; h < s->migs[i].n_hosts; h++)
			pt(b, &s->migs[i], "side", side_name[s->migs[i].host[h].side], "name",
			   s->migs[i].host[h].name)
				->u = s->migs[i].host[h].stale;
	fam(b, "switchyard.endpoint.name.addresses", "{address}", SY_METRIC_GAUGE, false,
	    "Addresses a host name resolves to now");
	for (size_t i = 0; i < s->n_migs; i++)
		for (uint32_t h = 0; h < s->migs[i].n_hosts; h++)
			pt(b, &s->migs[i], "side", side_name[s->migs[i].host[h].side], "name",
			   s->migs[i].host[h].name)
				->u = s->migs[i].host[h].n_addrs;
}

static void build_resolver(struct bld *b)
{
	fam(b, "switchyard.resolver.lookups", "{lookup}", SY_METRIC_SUM, true,
	    "Host names resolved again (every resolve_interval), by outcome");
	pt(b, NULL, "outcome", "resolved", NULL, NULL)->u = b->s->resolver[0] - b->s->resolver[1];
	pt(b, NULL, "outcome", "failed", NULL, NULL)->u = b->s->resolver[1];
	fam(b, "switchyard.resolver.changes", "{change}", SY_METRIC_SUM, true,
	    "New address sets of host names committed");
	pt(b, NULL, NULL, NULL, NULL, NULL)->u = b->s->resolver[2];
}

static void build_exporter(struct bld *b)
{
	const struct sy_exporter_stats *x = &b->s->exporter;

	fam(b, "switchyard.exporter.batches", "{batch}", SY_METRIC_SUM, true,
	    "OTLP export batches: accepted, refused for good, or dropped for a full buffer");
	pt(b, NULL, "outcome", "exported", NULL, NULL)->u = x->exported;
	pt(b, NULL, "outcome", "failed", NULL, NULL)->u = x->failed;
	pt(b, NULL, "outcome", "dropped", NULL, NULL)->u = x->dropped;
	fam(b, "switchyard.exporter.retries", "{attempt}", SY_METRIC_SUM, true,
	    "OTLP export attempts retried after a retryable failure");
	pt(b, NULL, NULL, NULL, NULL, NULL)->u = x->retries;
	fam(b, "switchyard.exporter.bytes", "By", SY_METRIC_SUM, true, "OTLP request bytes sent");
	pt(b, NULL, NULL, NULL, NULL, NULL)->u = x->bytes;
	fam(b, "switchyard.exporter.pending", "{batch}", SY_METRIC_GAUGE, false,
	    "OTLP batches waiting to be sent");
	pt(b, NULL, NULL, NULL, NULL, NULL)->u = x->pending;
}

static void build_tls(struct bld *b)
{
	const struct sy_metrics_tls *t = &b->s->tls;

	fam(b, "switchyard.tls.handshakes_refused", "{handshake}", SY_METRIC_SUM, true,
	    "TLS clients of the control plane refused (no, or a wrong, certificate...)");
	pt(b, NULL, NULL, NULL, NULL, NULL)->u = t->handshakes_refused;
	fam(b, "switchyard.tls.readonly_denied", "{call}", SY_METRIC_SUM, true,
	    "Control calls refused to a read-only identity");
	pt(b, NULL, NULL, NULL, NULL, NULL)->u = t->readonly_denied;
	fam(b, "switchyard.tls.certificate.expiry", "s", SY_METRIC_GAUGE, false,
	    "When each certificate the agent presents expires (unix seconds)");
	for (size_t i = 0; i < t->n_certs && i < SY_METRICS_TLS_CERTS; i++)
		pt(b, NULL, "role", t->cert[i].role, NULL, NULL)->u = t->cert[i].not_after_unix_s;
}

int sy_metrics_build(struct sy_metrics_set *set)
{
	struct bld b = {.s = set};

	free(set->fam);
	free(set->pool);
	set->fam = calloc(MAX_FAMILIES, sizeof(*set->fam));
	set->pool = calloc(set->n_migs * POINTS_PER_MIG + EXPORTER_POINTS + FLEET_POINTS + TLS_POINTS,
			   sizeof(*set->pool));
	set->n_fam = set->n_pool = 0;
	if (!set->fam || !set->pool)
		return -ENOMEM;
	build_sides(&b);
	build_steering(&b);
	build_mirror(&b);
	build_transform(&b);
	build_drift(&b);
	build_cutover(&b);
	if (set->have_fleet)
		build_fleet(&b);
	build_ops(&b);
	if (set->have_resolver)
		build_resolver(&b);
	if (set->have_exporter)
		build_exporter(&b);
	if (set->have_tls)
		build_tls(&b);
	return 0;
}

int sy_metrics_collect(const struct sy_metrics_src *src, uint64_t start_unix_ms,
		       const struct sy_exporter_stats *exporter, struct sy_metrics_set *out)
{
	size_t n = sy_registry_count(src->reg);

	memset(out, 0, sizeof(*out));
	out->unix_ms = sy_unix_ms();
	out->start_unix_ms = start_unix_ms;
	out->migs = calloc(n ? n : 1, sizeof(*out->migs));
	if (!out->migs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		sy_metrics_read(src, sy_registry_at(src->reg, i), &out->migs[out->n_migs++]);
	if (ops.resolver) {
		out->have_resolver = true;
		ops.resolver(ops.arg, out->resolver);
	}
	if (ops.tls)
		out->have_tls = ops.tls(ops.arg, &out->tls);
	if (exporter) {
		out->have_exporter = true;
		out->exporter = *exporter;
	}
	if (sy_fleet_active(src->fleet)) {
		out->have_fleet = true;
		out->fleet_nodes = sy_fleet_alive(src->fleet);
	}
	return sy_metrics_build(out);
}

void sy_metrics_set_free(struct sy_metrics_set *set)
{
	free(set->migs);
	free(set->fam);
	free(set->pool);
	memset(set, 0, sizeof(*set));
}

/* ---- histograms ---------------------------------------------------------------------- */

double sy_metrics_bucket_bound_s(int i)
{
	return (double)(2ull << i) / 1e6;
}

uint64_t sy_metrics_hist_count(const uint64_t *buckets)
{
	uint64_t n = 0;

	for (int i = 0; i < SY_LAT_BUCKETS; i++)
		n += buckets[i];
	return n;
}

double sy_metrics_hist_sum_s(const uint64_t *buckets)
{
	double sum = 0;

	/* bucket 0 holds [0, 2) us, bucket i [2^i, 2^(i+1)) */
	sum += (double)buckets[0] * 1e-6;
	for (int i = 1; i < SY_LAT_BUCKETS; i++)
		sum += (double)buckets[i] * 1.5 * (double)(1ull << i) / 1e6;
	return sum;
}
