// SPDX-License-Identifier: Apache-2.0
/* cutover.c — see cutover.h.
 *
 * The controller is a 100 ms tick on the daemon's loop. Its only persistent state is
 * struct sy_cutover_state inside the registry (phase, step, wall-clock bake end); what
 * it keeps here — the window of counter snapshots and the last gate results — is
 * rebuilt after a restart from fresh samples, so a restarted agent resumes the same
 * step with the bake time that is left and judges it on what it sees from then on.
 *
 * Gates look at deltas of the kernel's cumulative counters between the newest snapshot
 * and the one `window` ago (never before the step began):
 *   drift_rate   drifted keys found (dual reads + audits) per second
 *   error_rate   target error replies / target replies
 *   error_ratio  target error rate / legacy error rate (legacy floored at 0.1 %, so a
 *                quiet legacy does not make one error an infinite ratio)
 *   p99_ratio    target p99 / legacy p99, breached only when target p99 is also above
 *                min_p99 (loopback latencies of tens of microseconds are noise). With no
 *                legacy traffic in the window (late steps) the last legacy p99 measured
 *                with enough samples is the baseline.
 * A window with fewer than min_samples target requests is "waiting": the step does not
 * end on it, and its client-side gates can neither pass nor breach.
 */
#include "cutover/cutover.h"
#include "cutover/publish.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/events.h"
#include "core/histogram.h"
#include "core/log.h"
#include "core/loop.h"
#include "kernel/mapsync.h"
#include "registry/fleet.h"
#include "registry/registry.h"
#include "model/keymap.h"
#include "shadow/verify.h"

#define TICK_MS	  100
#define RING	  512	/* snapshots kept per migration (window / interval, bounded) */
#define ERR_FLOOR 0.001 /* legacy error rate floor for error_ratio */

struct snap {
	uint64_t t_ms;	/* monotonic */
	uint32_t nodes; /* fleet mode: the live nodes summed; 0 on a single host */
	uint64_t exch[2], errs[2];
	uint64_t lat[2][SY_LAT_BUCKETS];
	uint64_t drift;
};

struct rt {
	bool used;
	char name[SY_NAME_MAX];
	uint64_t step_key; /* phase, step and phase start: a change restarts the window */
	struct snap ring[RING];
	size_t head, count;
	uint64_t next_eval_ms;
	struct sy_gate_result gates[SY_GATES];
	uint64_t samples, evaluations, last_eval_unix_ms;
	uint32_t nodes; /* fleet mode: live nodes in the last evaluation's sums */
	uint64_t drained;
	double base_p99_us; /* last legacy p99 measured with enough samples */
	bool backfill_asked, audit_asked;
};

struct sy_cutover {
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_verify *verify;
	struct sy_events *events;
	sy_cutover_drain_fn drain;
	void *drain_arg;
	uint64_t timer;
	bool follower;		/* a fleet's follower: the leader walks the plans (docs/fleet.md) */
	struct sy_fleet *fleet; /* fleet mode: gates on the fleet's sums */
	struct rt rt[SY_MAX_MIGRATIONS];
};

static const char *const action_names[SY_ACTS] = {"start",  "promote",	"pause",
						  "resume", "rollback", "finish"};
static const char *const verdict_names[] = {"off", "waiting", "pass", "breach"};

const char *sy_action_name(int action)
{
	return action >= 0 && action < SY_ACTS ? action_names[action] : "?";
}

const char *sy_verdict_name(int verdict)
{
	return verdict >= 0 && verdict <= SY_VERDICT_BREACH ? verdict_names[verdict] : "?";
}

static void fmt_ratio(uint32_t bp, char *buf, size_t n)
{
	if (bp % 100)
		sy_ratio_format(bp, buf, n);
	else
		snprintf(buf, n, "%u%%", bp / 100);
}

/* The phase a pause holds (the phase itself otherwise). */
static uint8_t held_phase(const struct sy_cutover_state *co)
{
	return co->phase == SY_PHASE_PAUSED ? co->paused_from : co->phase;
}

/* The step for people: 1..n while cutting over (or paused there), 0 otherwise. */
static uint32_t step_of(const struct sy_cutover_state *co)
{
	return held_phase(co) == SY_PHASE_CUTTING_OVER ? co->step + 1 : 0;
}

/* "step 2/5 (25%)", "" outside the steps. */
static void fmt_where(const struct sy_migration_state *m, const struct sy_cutover_state *co, char *buf,
		      size_t n)
{
	char r[16];

	if (!step_of(co)) {
		buf[0] = '\0';
		return;
	}
	fmt_ratio(m->spec.plan.steps_bp[co->step], r, sizeof(r));
	snprintf(buf, n, "step %u/%u (%s)", co->step + 1, m->spec.plan.n_steps, r);
}

static struct rt *rt_of(struct sy_cutover *c, const struct sy_migration_state *m)
{
	struct rt *t = &c->rt[m->id % SY_MAX_MIGRATIONS];

	if (!t->used || strcmp(t->name, m->spec.name) != 0) {
		memset(t, 0, sizeof(*t));
		t->used = true;
		snprintf(t->name, sizeof(t->name), "%s", m->spec.name);
	}
	return t;
}

/* ---- transitions ------------------------------------------------------------------ */

/* Commits a new phase (and ratio, when >= 0) and tells the world. */
static int transition(struct sy_cutover *c, const struct sy_migration_state *m, struct sy_cutover_state *co,
		      int64_t ratio_bp, const char *why, struct sy_spec_err *err)
{
	char name[SY_NAME_MAX], from[24], where[48], ratio[16], step[12];
	struct sy_spec_err local = {{0}};
	uint8_t old_phase = m->co.phase;
	int e;

	snprintf(name, sizeof(name), "%s", m->spec.name);
	snprintf(from, sizeof(from), "%s", sy_phase_name(old_phase));
	co->changed_unix_ms = sy_unix_ms();
	e = sy_registry_set_cutover(c->reg, name, co, ratio_bp, err ? err : &local);
	if (e) {
		sy_error("cutover", "%s: commit %s -> %s: %s", name, from, sy_phase_name(co->phase),
			 (err ? err : &local)->msg);
		return e;
	}
	m = sy_registry_find(c->reg, name); /* the registry replaced its set */
	if (!m)
		return 0;
	fmt_where(m, co, where, sizeof(where));
	fmt_ratio(m->spec.ratio_bp, ratio, sizeof(ratio));
	snprintf(step, sizeof(step), "%u", co->step + 1);
	sy_events_emit(c->events, name, "cutover.phase",
		       SY_EVENT_ATTRS({"from", from}, {"to", sy_phase_name(co->phase)}, {"step", step},
				      {"ratio", ratio}, {"reason", co->reason}),
		       "%s -> %s%s%s, ratio %s%s%s", from, sy_phase_name(co->phase), where[0] ? " " : "",
		       where, ratio, why && why[0] ? ": " : "", why ? why : "");
	return 0;
}

/* Enters a phase afresh: a new start (the gates' window restarts), no bake, no reason. */
static void enter_phase(struct sy_cutover_state *co, uint8_t phase)
{
	co->phase = phase;
	co->ready = false;
	co->reason[0] = '\0';
	co->phase_started_unix_ms = sy_unix_ms();
	co->bake_until_unix_ms = 0;
}

static void enter_step(const struct sy_migration_state *m, struct sy_cutover_state *co, uint32_t step)
{
	enter_phase(co, SY_PHASE_CUTTING_OVER);
	co->step = step;
	co->bake_until_unix_ms = co->phase_started_unix_ms + m->spec.plan.bake_ms[step];
}

/* The phase after `ph` in this plan (skipping what the plan does not ask for). */
static uint8_t next_phase(const struct sy_plan_spec *p, uint8_t ph)
{
	if (ph < SY_PHASE_BACKFILLING && p->backfill)
		return SY_PHASE_BACKFILLING;
	if (ph < SY_PHASE_SHADOWING && p->shadow_ms)
		return SY_PHASE_SHADOWING;
	if (ph < SY_PHASE_VERIFYING && p->verify)
		return SY_PHASE_VERIFYING;
	return SY_PHASE_CUTTING_OVER;
}

/* Moves to the phase after the current one (the first step when it is cutting over). */
static int advance_phase(struct sy_cutover *c, const struct sy_migration_state *m, uint8_t from,
			 const char *why)
{
	struct sy_cutover_state co = m->co;
	uint8_t ph = next_phase(&m->spec.plan, from);

	if (ph == SY_PHASE_CUTTING_OVER) {
		enter_step(m, &co, 0);
		return transition(c, m, &co, m->spec.plan.steps_bp[0], why, NULL);
	}
	enter_phase(&co, ph);
	co.step = 0;
	return transition(c, m, &co, -1, why, NULL);
}

/* The next step, or completed after the last. */
static int advance_step(struct sy_cutover *c, const struct sy_migration_state *m, const char *why,
			struct sy_spec_err *err)
{
	struct sy_cutover_state co = m->co;

	if (co.step + 1 >= m->spec.plan.n_steps) {
		enter_phase(&co, SY_PHASE_COMPLETED);
		return transition(c, m, &co, SY_RATIO_MAX, why, err);
	}
	enter_step(m, &co, co.step + 1);
	return transition(c, m, &co, m->spec.plan.steps_bp[co.step], why, err);
}

static int64_t do_drain(struct sy_cutover *c, const struct sy_migration_state *m)
{
	char name[SY_NAME_MAX], n[24];
	int64_t r;

	if (!c->drain) {
		sy_warn("cutover", "%s: drain asked for, but this agent cannot drain", m->spec.name);
		return -EOPNOTSUPP;
	}
	snprintf(name, sizeof(name), "%s", m->spec.name);
	r = c->drain(c->drain_arg, m->id, SY_SIDE_TARGET);
	if (r < 0) {
		sy_error("cutover", "%s: drain target connections: %s", name, strerror((int)-r));
		return r;
	}
	rt_of(c, m)->drained = (uint64_t)r;
	snprintf(n, sizeof(n), "%lld", (long long)r);
	sy_events_emit(c->events, name, "cutover.drained",
		       SY_EVENT_ATTRS({"side", "target"}, {"connections", n}),
		       "ended %lld established client connection(s) to target: they reconnect to legacy",
		       (long long)r);
	return r;
}

static int rollback(struct sy_cutover *c, const struct sy_migration_state *m, bool drain, const char *reason,
		    struct sy_spec_err *err)
{
	struct sy_cutover_state co = m->co;
	char name[SY_NAME_MAX];
	int e;

	snprintf(name, sizeof(name), "%s", m->spec.name);
	co.paused_from = held_phase(&co);
	enter_phase(&co, SY_PHASE_ROLLED_BACK);
	snprintf(co.reason, sizeof(co.reason), "%s", reason);
	/* ratio 0 first: new connections go to legacy before established ones are cut */
	if ((e = transition(c, m, &co, 0, reason, err)))
		return e;
	m = sy_registry_find(c->reg, name);
	if (m && (drain || m->spec.plan.drain))
		do_drain(c, m);
	return 0;
}

static int pause_plan(struct sy_cutover *c, const struct sy_migration_state *m, const char *reason,
		      int64_t ratio_bp, struct sy_spec_err *err)
{
	struct sy_cutover_state co = m->co;

	if (co.phase != SY_PHASE_PAUSED)
		co.paused_from = co.phase;
	co.phase = SY_PHASE_PAUSED;
	co.ready = false;
	snprintf(co.reason, sizeof(co.reason), "%s", reason);
	return transition(c, m, &co, ratio_bp, reason, err);
}

int sy_cutover_restart_gate(struct sy_cutover *c, const char *name, const char *why)
{
	const struct sy_migration_state *m = sy_registry_find(c->reg, name);
	struct sy_spec_err err = {""};
	char r[SY_REASON_MAX];
	int e;

	if (!m || !m->spec.plan.n_steps || m->spec.plan.server_restart == SY_RESTART_OFF ||
	    m->co.phase < SY_PHASE_BACKFILLING || m->co.phase > SY_PHASE_COMPLETED)
		return 0; /* no plan running: nothing to hold */
	snprintf(r, sizeof(r), "server_restart gate: %s", why);
	e = m->spec.plan.server_restart == SY_RESTART_ROLLBACK ? rollback(c, m, false, r, &err)
							       : pause_plan(c, m, r, -1, &err);
	if (e)
		sy_error("cutover", "%s: %s: %s", name, r, err.msg);
	return e;
}

/* ---- gates ------------------------------------------------------------------------ */

/* The counters the gates read: this node's on a single host; in a fleet, the sums of
 * every live node's published counters (fleet.h), this node's included. */
static int take_snap(struct sy_cutover *c, const struct sy_migration_state *m, struct snap *s)
{
	struct sy_fleet_counters fc;
	int rc;

	memset(s, 0, sizeof(*s));
	s->t_ms = sy_now_ms();
	if (sy_fleet_active(c->fleet))
		rc = sy_fleet_sum(c->fleet, m->spec.name, &fc, &s->nodes);
	else
		rc = sy_fleet_local_counters(c->reg, c->verify, m, &fc);
	if (rc)
		return rc;
	for (int side = 0; side < 2; side++) {
		s->exch[side] = fc.req[side];
		s->errs[side] = fc.err[side];
		memcpy(s->lat[side], fc.lat[side], sizeof(s->lat[side]));
	}
	s->drift = fc.drift;
	return 0;
}

void sy_cutover_set_fleet(struct sy_cutover *c, struct sy_fleet *f)
{
	c->fleet = f;
}

static uint64_t sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0; /* counters restart with their migration */
}

static void fmt_us(double us, char *buf, size_t n)
{
	if (us >= 1000)
		snprintf(buf, n, "%.1fms", us / 1000);
	else
		snprintf(buf, n, "%.0fus", us);
}

/* Evaluates every gate over the window; returns the first breached gate or -1. */
static int evaluate(const struct sy_migration_state *m, struct rt *t)
{
	const struct sy_plan_spec *p = &m->spec.plan;
	const struct snap *now = &t->ring[(t->head + RING - 1) % RING], *base = NULL;
	uint64_t lat[2][SY_LAT_BUCKETS], exch[2], errs[2];
	double secs, rate[2], p99[2];
	int breached = -1;
	char across[32];

	/* the oldest snapshot still inside the window (the step's first at worst) */
	for (size_t i = 0; i < t->count; i++) {
		const struct snap *s = &t->ring[(t->head + RING - t->count + i) % RING];

		if (now->t_ms - s->t_ms <= p->window_ms) {
			base = s;
			break;
		}
	}
	if (!base || base == now)
		return -1;
	secs = (double)(now->t_ms - base->t_ms) / 1000.0;
	for (int side = 0; side < 2; side++) {
		exch[side] = sub(now->exch[side], base->exch[side]);
		errs[side] = sub(now->errs[side], base->errs[side]);
		for (int i = 0; i < SY_LAT_BUCKETS; i++)
			lat[side][i] = sub(now->lat[side][i], base->lat[side][i]);
		rate[side] = exch[side] ? (double)errs[side] / (double)exch[side] : 0;
		p99[side] = sy_log2_quantile_interp(lat[side], SY_LAT_BUCKETS, 0.99);
	}
	t->samples = exch[SY_SIDE_TARGET];
	t->nodes = now->nodes;
	across[0] = '\0';
	if (now->nodes)
		snprintf(across, sizeof(across), " across %u nodes", now->nodes);
	if (exch[SY_SIDE_LEGACY] >= (p->min_samples ? p->min_samples : 1))
		t->base_p99_us = p99[SY_SIDE_LEGACY];
	for (int g = 0; g < SY_GATES; g++) {
		struct sy_gate_result *r = &t->gates[g];
		bool client_gate = g != SY_GATE_DRIFT_RATE;
		char a[16], b[16];

		memset(r, 0, sizeof(*r));
		if (!p->gates[g].enabled)
			continue;
		r->threshold = p->gates[g].max;
		switch (g) {
		case SY_GATE_DRIFT_RATE:
			r->value = secs > 0 ? (double)sub(now->drift, base->drift) / secs : 0;
			snprintf(r->detail, sizeof(r->detail), "%llu drifted key(s) in %.1fs%s",
				 (unsigned long long)sub(now->drift, base->drift), secs, across);
			break;
		case SY_GATE_ERROR_RATE:
			r->value = rate[SY_SIDE_TARGET];
			snprintf(r->detail, sizeof(r->detail), "%llu error(s) in %llu target replies%s",
				 (unsigned long long)errs[SY_SIDE_TARGET],
				 (unsigned long long)exch[SY_SIDE_TARGET], across);
			break;
		case SY_GATE_ERROR_RATIO:
			r->value = rate[SY_SIDE_TARGET] / fmax(rate[SY_SIDE_LEGACY], ERR_FLOOR);
			snprintf(r->detail, sizeof(r->detail), "target %.3f%% / legacy %.3f%% errors%s",
				 100 * rate[SY_SIDE_TARGET], 100 * rate[SY_SIDE_LEGACY], across);
			break;
		case SY_GATE_P99_RATIO:
			fmt_us(p99[SY_SIDE_TARGET], a, sizeof(a));
			fmt_us(t->base_p99_us, b, sizeof(b));
			r->value = t->base_p99_us > 0 ? p99[SY_SIDE_TARGET] / t->base_p99_us : 0;
			snprintf(r->detail, sizeof(r->detail), "target p99 %s / legacy %s%s%s", a, b,
				 t->base_p99_us > 0 ? "" : " (no legacy baseline yet)", across);
			break;
		}
		if (client_gate && t->samples < p->min_samples) {
			r->verdict = SY_VERDICT_WAITING;
			continue;
		}
		if (g == SY_GATE_P99_RATIO && p99[SY_SIDE_TARGET] <= (double)p->min_p99_us)
			r->verdict = SY_VERDICT_PASS; /* fast in absolute terms */
		else
			r->verdict = r->value > r->threshold ? SY_VERDICT_BREACH : SY_VERDICT_PASS;
		if (r->verdict == SY_VERDICT_BREACH && breached < 0)
			breached = g;
	}
	t->evaluations++;
	t->last_eval_unix_ms = sy_unix_ms();
	return breached;
}

static bool gates_pass(const struct rt *t)
{
	for (int g = 0; g < SY_GATES; g++)
		if (t->gates[g].verdict == SY_VERDICT_WAITING || t->gates[g].verdict == SY_VERDICT_BREACH)
			return false;
	return true;
}

static void emit_evaluation(struct sy_cutover *c, const struct sy_migration_state *m, const struct rt *t,
			    int breached)
{
	struct sy_event_attr at[4 + SY_GATES * 3];
	char vals[SY_GATES][2][24], keys[SY_GATES][3][32], step[12], samples[24], nodes[12];
	char msg[SY_EVENT_MSG_MAX] = "";
	size_t n = 0, len = 0;

	snprintf(step, sizeof(step), "%u", m->co.step + 1);
	snprintf(samples, sizeof(samples), "%llu", (unsigned long long)t->samples);
	at[n++] = (struct sy_event_attr){"step", step};
	at[n++] = (struct sy_event_attr){"samples", samples};
	if (t->nodes) {
		snprintf(nodes, sizeof(nodes), "%u", t->nodes);
		at[n++] = (struct sy_event_attr){"nodes", nodes};
	}
	at[n++] = (struct sy_event_attr){"verdict", breached >= 0   ? "breach"
						    : gates_pass(t) ? "pass"
								    : "waiting"};
	for (int g = 0; g < SY_GATES; g++) {
		const struct sy_gate_result *r = &t->gates[g];

		if (r->verdict == SY_VERDICT_OFF)
			continue;
		snprintf(keys[g][0], sizeof(keys[g][0]), "%s", sy_gate_name(g));
		snprintf(keys[g][1], sizeof(keys[g][1]), "%s.max", sy_gate_name(g));
		snprintf(keys[g][2], sizeof(keys[g][2]), "%s.verdict", sy_gate_name(g));
		snprintf(vals[g][0], sizeof(vals[g][0]), "%.6g", r->value);
		snprintf(vals[g][1], sizeof(vals[g][1]), "%.6g", r->threshold);
		at[n++] = (struct sy_event_attr){keys[g][0], vals[g][0]};
		at[n++] = (struct sy_event_attr){keys[g][1], vals[g][1]};
		at[n++] = (struct sy_event_attr){keys[g][2], sy_verdict_name(r->verdict)};
		if (len < sizeof(msg))
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s %.4g/%.4g %s",
						len ? ", " : "", sy_gate_name(g), r->value, r->threshold,
						sy_verdict_name(r->verdict));
	}
	sy_events_emit(c->events, m->spec.name, "cutover.evaluated", at, n, "step %u, %llu samples%s: %s",
		       m->co.step + 1, (unsigned long long)t->samples, t->nodes ? " (fleet)" : "",
		       msg[0] ? msg : "no gates");
}

/* Takes a snapshot each interval and evaluates; while cutting over, acts on a breach,
 * and ends the step once its bake is over and the last evaluation passed. */
static void gates_tick(struct sy_cutover *c, const struct sy_migration_state *m, struct rt *t)
{
	const struct sy_plan_spec *p = &m->spec.plan;
	uint64_t now = sy_now_ms();
	int breached;
	char name[SY_NAME_MAX];

	if (now < t->next_eval_ms)
		return;
	t->next_eval_ms = now + p->interval_ms;
	if (take_snap(c, m, &t->ring[t->head]))
		return;
	t->head = (t->head + 1) % RING;
	if (t->count < RING)
		t->count++;
	if (t->count < 2)
		return; /* the step's first snapshot: the baseline */
	breached = evaluate(m, t);
	if (m->co.phase != SY_PHASE_CUTTING_OVER)
		return; /* paused or completed: measured for the status, not acted on */
	emit_evaluation(c, m, t, breached);
	snprintf(name, sizeof(name), "%s", m->spec.name);
	if (breached >= 0) {
		const struct sy_gate_result *r = &t->gates[breached];
		char why[SY_REASON_MAX];

		snprintf(why, sizeof(why), "gate %s breached: %.4g > %.4g (%s)", sy_gate_name(breached),
			 r->value, r->threshold, r->detail);
		if (p->gates[breached].on_breach == SY_BREACH_PAUSE)
			pause_plan(c, m, why, -1, NULL);
		else
			rollback(c, m, false, why, NULL);
		return;
	}
	m = sy_registry_find(c->reg, name);
	if (!m || m->co.phase != SY_PHASE_CUTTING_OVER || sy_unix_ms() < m->co.bake_until_unix_ms ||
	    !gates_pass(t))
		return;
	if (m->spec.plan.manual) {
		if (!m->co.ready) {
			struct sy_cutover_state co = m->co;

			co.ready = true;
			transition(c, m, &co, -1, "baked with passing gates: waiting for promote", NULL);
		}
		return;
	}
	advance_step(c, m, "baked with passing gates", NULL);
}

/* ---- the tick --------------------------------------------------------------------- */

static void phase_tick(struct sy_cutover *c, const struct sy_migration_state *m)
{
	struct rt *t = rt_of(c, m);
	uint64_t key =
		((uint64_t)m->co.phase << 56) ^ ((uint64_t)m->co.step << 48) ^ m->co.phase_started_unix_ms;
	char name[SY_NAME_MAX], why[SY_REASON_MAX];

	if (key != t->step_key) { /* a new step or phase: a new window */
		t->step_key = key;
		t->count = t->head = 0;
		t->next_eval_ms = 0;
		t->evaluations = 0;
		memset(t->gates, 0, sizeof(t->gates));
	}
	snprintf(name, sizeof(name), "%s", m->spec.name);
	switch (m->co.phase) {
	case SY_PHASE_BACKFILLING: {
		struct sy_backfill_status b;

		if (!c->verify || sy_verify_backfill_status(c->verify, name, &b))
			return;
		if (b.state == SY_JOB_DONE && b.finished_unix_ms >= m->co.phase_started_unix_ms) {
			snprintf(why, sizeof(why), "backfill done: %llu keys copied",
				 (unsigned long long)b.copied);
			advance_phase(c, m, SY_PHASE_BACKFILLING, why);
		} else if (b.state != SY_JOB_RUNNING && !t->backfill_asked) {
			t->backfill_asked = true;
			sy_verify_start_backfill(c->verify, name, 0, 0);
		} else if (b.state == SY_JOB_FAILED) {
			snprintf(why, sizeof(why), "backfill failed: %s", b.error ? b.error : "?");
			pause_plan(c, m, why, -1, NULL);
		}
		return;
	}
	case SY_PHASE_SHADOWING:
		if (sy_unix_ms() >= m->co.phase_started_unix_ms + m->spec.plan.shadow_ms)
			advance_phase(c, m, SY_PHASE_SHADOWING, "shadowed every write");
		return;
	case SY_PHASE_VERIFYING: {
		struct sy_audit_status a;
		uint64_t diff = 0;

		if (!c->verify || sy_verify_status(c->verify, name, &a))
			return;
		for (int k = 1; k < SY_DRIFT_KINDS; k++)
			diff += a.counts[k];
		if (a.state == SY_JOB_DONE && a.started_unix_ms >= m->co.phase_started_unix_ms) {
			if (diff > a.repaired) {
				snprintf(why, sizeof(why),
					 "audit found %llu difference(s), %llu repaired: repair (syctl "
					 "verify %s "
					 "--repair), then resume",
					 (unsigned long long)diff, (unsigned long long)a.repaired, name);
				pause_plan(c, m, why, -1, NULL);
			} else {
				char scope[128];

				/* a scoped migration says what it leaves behind at every verify */
				snprintf(why, sizeof(why),
					 "audit: %llu keys compared, %llu difference(s), %llu repaired; "
					 "scope: %s",
					 (unsigned long long)a.scanned, (unsigned long long)diff,
					 (unsigned long long)a.repaired,
					 sy_scope_describe(m->spec.n_scope, a.outside_scope, true, scope,
							   sizeof(scope)));
				advance_phase(c, m, SY_PHASE_VERIFYING, why);
			}
		} else if (a.state != SY_JOB_RUNNING && !t->audit_asked) {
			t->audit_asked = true;
			sy_verify_start_audit(c->verify, name, m->spec.auto_repair, 0);
		} else if (a.state == SY_JOB_FAILED && a.started_unix_ms >= m->co.phase_started_unix_ms) {
			snprintf(why, sizeof(why), "audit failed: %s", a.error ? a.error : "?");
			pause_plan(c, m, why, -1, NULL);
		}
		return;
	}
	case SY_PHASE_CUTTING_OVER:
	case SY_PHASE_PAUSED:
	case SY_PHASE_COMPLETED:
		gates_tick(c, m, t);
		return;
	default:
		return;
	}
}

static void tick(struct sy_loop *l, void *arg)
{
	struct sy_cutover *c = arg;
	char names[SY_MAX_MIGRATIONS][SY_NAME_MAX];
	size_t n = 0;

	/* transitions replace the registry's set: walk names, not pointers */
	for (size_t i = 0; i < sy_registry_count(c->reg) && n < SY_MAX_MIGRATIONS; i++)
		snprintf(names[n++], SY_NAME_MAX, "%s", sy_registry_at(c->reg, i)->spec.name);
	for (size_t i = 0; i < n; i++) {
		const struct sy_migration_state *m = sy_registry_find(c->reg, names[i]);

		if (m && m->spec.plan.n_steps && !c->follower)
			phase_tick(c, m);
	}
	c->timer = sy_loop_add_timer(l, TICK_MS, tick, c);
}

/* ---- API -------------------------------------------------------------------------- */

/* Registry subscriber: a slot whose migration is gone or replaced loses its gate
 * windows and counts, so a new migration there starts from nothing. */
static void on_commit(void *ctx, const struct sy_commit *c)
{
	struct sy_cutover *co = ctx;

	for (uint32_t id = 0; id < SY_MAX_MIGRATIONS; id++) {
		const struct sy_migration_state *m = sy_mset_by_id(c->after, c->n_after, id);
		struct rt *t = &co->rt[id];

		if (t->used && (!m || strcmp(t->name, m->spec.name) != 0))
			memset(t, 0, sizeof(*t));
	}
}

struct sy_cutover *sy_cutover_new(struct sy_loop *l, struct sy_registry *reg, struct sy_verify *v,
				  struct sy_events *ev)
{
	struct sy_cutover *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = l;
	c->reg = reg;
	c->verify = v;
	c->events = ev;
	if (sy_registry_subscribe(reg, "cutover", on_commit, c)) {
		free(c);
		return NULL;
	}
	c->timer = sy_loop_add_timer(l, 0, tick, c);
	return c;
}

void sy_cutover_set_leader(struct sy_cutover *c, bool leader)
{
	c->follower = !leader;
}

void sy_cutover_set_drain(struct sy_cutover *c, sy_cutover_drain_fn fn, void *arg)
{
	c->drain = fn;
	c->drain_arg = arg;
}

void sy_cutover_free(struct sy_cutover *c)
{
	if (!c)
		return;
	sy_registry_unsubscribe(c->reg, on_commit, c);
	if (c->timer)
		sy_loop_cancel_timer(c->loop, c->timer);
	free(c);
}

static int refuse(struct sy_spec_err *err, const struct sy_migration_state *m, int action)
{
	char where[48];

	fmt_where(m, &m->co, where, sizeof(where));
	sy_spec_err_set(err, "cannot %s migration \"%s\": it is %s%s%s%s%s", sy_action_name(action),
			m->spec.name, sy_phase_name(m->co.phase), where[0] ? " at " : "", where,
			m->co.reason[0] ? " — " : "", m->co.reason);
	return -EBUSY;
}

int sy_cutover_action(struct sy_cutover *c, const char *name, int action, bool drain, const char *reason,
		      struct sy_spec_err *err)
{
	const struct sy_migration_state *m = sy_registry_find(c->reg, name);
	struct sy_cutover_state co;
	char why[SY_REASON_MAX];
	uint8_t ph;

	if (!m)
		return sy_registry_not_found(c->reg, name, err);
	if (action < 0 || action >= SY_ACTS) {
		sy_spec_err_set(err, "action: %d is not a cutover action", action);
		return -EINVAL;
	}
	if (!m->spec.plan.n_steps) {
		sy_spec_err_set(
			err,
			"migration \"%s\" has no plan: add `plan:` to its spec, or set the ratio by hand",
			name);
		return -EBUSY;
	}
	if (reason && strlen(reason) > 200) {
		sy_spec_err_set(err, "reason: at most 200 characters");
		return -EINVAL;
	}
	snprintf(why, sizeof(why), "%s by operator%s%s", sy_action_name(action),
		 reason && reason[0] ? ": " : "", reason ? reason : "");
	co = m->co;
	ph = co.phase;
	switch (action) {
	case SY_ACT_START:
		if (ph != SY_PHASE_PENDING && ph != SY_PHASE_ROLLED_BACK)
			return refuse(err, m, action);
		rt_of(c, m)->backfill_asked = rt_of(c, m)->audit_asked = false;
		return advance_phase(c, m, SY_PHASE_PENDING, why);
	case SY_ACT_PROMOTE:
		if (ph == SY_PHASE_BACKFILLING || ph == SY_PHASE_SHADOWING || ph == SY_PHASE_VERIFYING) {
			co = m->co;
			enter_step(m, &co, 0);
			return transition(c, m, &co, m->spec.plan.steps_bp[0], why, err);
		}
		if (ph != SY_PHASE_CUTTING_OVER)
			return refuse(err, m, action);
		return advance_step(c, m, why, err);
	case SY_ACT_PAUSE:
		if (ph < SY_PHASE_BACKFILLING || ph > SY_PHASE_COMPLETED)
			return refuse(err, m, action);
		return pause_plan(c, m, why, -1, err);
	case SY_ACT_RESUME:
		if (ph != SY_PHASE_PAUSED)
			return refuse(err, m, action);
		if (co.paused_from == SY_PHASE_CUTTING_OVER) {
			/* the step's bake starts again: what it saw before the pause is stale */
			enter_step(m, &co, co.step);
			return transition(c, m, &co, m->spec.plan.steps_bp[co.step], why, err);
		}
		enter_phase(&co, co.paused_from);
		rt_of(c, m)->backfill_asked = rt_of(c, m)->audit_asked = false;
		return transition(c, m, &co, co.phase == SY_PHASE_COMPLETED ? SY_RATIO_MAX : -1, why, err);
	case SY_ACT_ROLLBACK:
		if (ph == SY_PHASE_ROLLED_BACK && drain) {
			int64_t r = do_drain(c, m);

			if (r < 0) {
				sy_spec_err_set(err, "drain: %s", strerror((int)-r));
				return -EIO;
			}
			return 0;
		}
		if (ph < SY_PHASE_BACKFILLING || ph > SY_PHASE_PAUSED)
			return refuse(err, m, action);
		return rollback(c, m, drain, why, err);
	case SY_ACT_FINISH:
		if (ph != SY_PHASE_COMPLETED)
			return refuse(err, m, action);
		enter_phase(&co, SY_PHASE_FINISHED);
		return transition(c, m, &co, -1, why, err);
	}
	return -EINVAL;
}

int sy_cutover_set_ratio(struct sy_cutover *c, const char *name, uint32_t ratio_bp, struct sy_spec_err *err)
{
	const struct sy_migration_state *m = sy_registry_find(c->reg, name);
	char r[16], why[SY_REASON_MAX];

	if (!m)
		return sy_registry_not_found(c->reg, name, err);
	if (ratio_bp > SY_RATIO_MAX) {
		sy_spec_err_set(err, "ratio_bp: %u is out of range 0..%u", ratio_bp, SY_RATIO_MAX);
		return -EINVAL;
	}
	if (m->co.phase < SY_PHASE_BACKFILLING || m->co.phase > SY_PHASE_COMPLETED)
		return sy_registry_set_ratio(c->reg, name, ratio_bp, err);
	fmt_ratio(ratio_bp, r, sizeof(r));
	snprintf(why, sizeof(why), "ratio set by hand to %s", r);
	return pause_plan(c, m, why, ratio_bp, err);
}

int sy_cutover_status(struct sy_cutover *c, const char *name, struct sy_cutover_status *out)
{
	const struct sy_migration_state *m = sy_registry_find(c->reg, name);
	const struct rt *t;
	uint64_t now = sy_unix_ms();

	memset(out, 0, sizeof(*out));
	if (!m)
		return -ENOENT;
	out->co = m->co;
	out->n_steps = m->spec.plan.n_steps;
	out->step = out->n_steps ? step_of(&m->co) : 0;
	if (out->step)
		out->step_ratio_bp = m->spec.plan.steps_bp[m->co.step];
	if (m->co.phase == SY_PHASE_CUTTING_OVER && m->co.bake_until_unix_ms > now)
		out->bake_left_ms = m->co.bake_until_unix_ms - now;
	t = &c->rt[m->id % SY_MAX_MIGRATIONS];
	if (t->used && strcmp(t->name, name) == 0) {
		memcpy(out->gates, t->gates, sizeof(out->gates));
		out->last_eval_unix_ms = t->last_eval_unix_ms;
		out->samples = t->samples;
		out->nodes = t->nodes;
		out->evaluations = t->evaluations;
		out->drained = t->drained;
	}
	return 0;
}

int sy_cutover_metrics(void *arg, uint32_t mig_id, uint32_t *step, uint32_t *n_steps, const char **state)
{
	struct sy_cutover *c = arg;
	const struct sy_migration_state *m = sy_registry_by_id(c->reg, mig_id);

	if (!m)
		return -ENOENT;
	*n_steps = m->spec.plan.n_steps;
	*step = held_phase(&m->co) == SY_PHASE_COMPLETED ? *n_steps : step_of(&m->co);
	*state = m->co.phase == SY_PHASE_NONE ? "manual" : sy_phase_name(m->co.phase);
	return 0;
}
