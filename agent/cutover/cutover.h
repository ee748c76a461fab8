// SPDX-License-Identifier: Apache-2.0
/* cutover.h — the cutover controller: walks a migration's plan (spec.h, `plan:`)
 * through its phases — backfilling, shadowing, verifying, cutting over step by step,
 * completed — evaluates the gates every interval over the step's recent window, and
 * pauses or rolls back on a breach. Every decision is committed through the registry
 * (persisted with the ratio it implies) before it takes effect, and is an event
 * ("cutover.*") in the daemon's stream and log. See docs/cutover.md.
 *
 * Errors: -ENOENT (no such migration), -EBUSY (the action is not allowed in the
 * current phase: FAILED_PRECONDITION), -EINVAL, -EIO; err->msg says why.
 */
#ifndef SY_CUTOVER_H
#define SY_CUTOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "model/phase.h"
#include "model/spec.h"

struct sy_loop;
struct sy_registry;
struct sy_verify;
struct sy_events;
struct sy_cutover;

enum sy_cutover_action {
	SY_ACT_START = 0,
	SY_ACT_PROMOTE,
	SY_ACT_PAUSE,
	SY_ACT_RESUME,
	SY_ACT_ROLLBACK,
	SY_ACT_FINISH,
	SY_ACTS,
};

enum sy_verdict {
	SY_VERDICT_OFF = 0, /* gate not in the plan */
	SY_VERDICT_WAITING, /* too few samples in the window */
	SY_VERDICT_PASS,
	SY_VERDICT_BREACH,
};

struct sy_gate_result {
	uint8_t verdict; /* enum sy_verdict */
	double value, threshold;
	char detail[128];
};

struct sy_cutover_status {
	struct sy_cutover_state co; /* as persisted */
	uint32_t n_steps;
	uint32_t step;		/* 1..n while cutting over (or paused there), else 0 */
	uint32_t step_ratio_bp; /* that step's ratio */
	uint64_t bake_left_ms;
	struct sy_gate_result gates[SY_GATES];
	uint64_t last_eval_unix_ms;
	uint64_t samples;     /* target requests in the last window (the fleet's, in a fleet) */
	uint32_t nodes;	      /* fleet mode: live nodes summed in the last evaluation */
	uint64_t evaluations; /* in this step */
	uint64_t drained;     /* connections ended by the last rollback --drain */
};

/* Ends the established client connections of one side of a migration (drain.c); the
 * daemon provides it. Returns the count ended or a negative errno. */
typedef int64_t (*sy_cutover_drain_fn)(void *arg, uint32_t mig_id, uint8_t side);

/* Subscribes to reg (a deleted migration's gate windows go with it); free it before
 * the registry. */
struct sy_cutover *sy_cutover_new(struct sy_loop *l, struct sy_registry *reg, struct sy_verify *v,
				  struct sy_events *ev);
void sy_cutover_set_drain(struct sy_cutover *c, sy_cutover_drain_fn fn, void *arg);
void sy_cutover_free(struct sy_cutover *c);

/* An operator's action. drain: rollback also ends the target's established client
 * connections (the plan's `drain: true` asks for it always). reason may be NULL. */
int sy_cutover_action(struct sy_cutover *c, const char *name, int action, bool drain, const char *reason,
		      struct sy_spec_err *err);
/* The ratio set by hand: while a plan runs, it pauses the plan (resume goes back to the
 * plan's step). */
int sy_cutover_set_ratio(struct sy_cutover *c, const char *name, uint32_t ratio_bp, struct sy_spec_err *err);
int sy_cutover_status(struct sy_cutover *c, const char *name, struct sy_cutover_status *out);

/* In a fleet only the leader walks the plans (its decisions reach the other nodes as
 * commits); a follower keeps its plans' state and answers for them, but decides
 * nothing. A single agent is its own leader (the default). */
void sy_cutover_set_leader(struct sy_cutover *c, bool leader);

/* Fleet mode (registry/fleet.h): every node hands its counters to f each second, for
 * its store to publish; the leader's gates, min_samples and events read f's sums over
 * the live nodes instead of this node's own counters. */
struct sy_fleet;
void sy_cutover_set_fleet(struct sy_cutover *c, struct sy_fleet *f);

/* One of the migration's endpoints restarted (why: "target restarted (run_id …)"): a
 * running plan meets its server_restart gate — paused (the default), rolled back, or
 * left alone (off). 0 when nothing had to be done. */
int sy_cutover_restart_gate(struct sy_cutover *c, const char *name, const char *why);

/* Where a migration's plan is, for the metrics (sy_metrics_cutover_fn; arg: the
 * controller): step 1..n (n once completed, 0 before the steps), the phase's name,
 * "manual" without a plan. */
int sy_cutover_metrics(void *arg, uint32_t mig_id, uint32_t *step, uint32_t *n_steps, const char **state);

const char *sy_action_name(int action);
const char *sy_verdict_name(int verdict);

#endif
