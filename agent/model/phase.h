// SPDX-License-Identifier: Apache-2.0
/* phase.h — where a migration's cutover plan stands: the part of the controller's
 * state that the registry persists with the migration (state.proto CutoverState), so
 * a restarted agent goes on exactly where it was. Values match CutoverPhase (checked
 * at compile time in spec_pb.c). The controller that moves it is cutover/cutover.c;
 * the names are here (phase.c), beside the values. */
#ifndef SY_PHASE_H
#define SY_PHASE_H

#include <stdbool.h>
#include <stdint.h>

enum sy_phase {
	SY_PHASE_NONE = 0, /* no plan: the ratio is set by hand */
	SY_PHASE_PENDING,
	SY_PHASE_BACKFILLING,
	SY_PHASE_SHADOWING,
	SY_PHASE_VERIFYING,
	SY_PHASE_CUTTING_OVER,
	SY_PHASE_COMPLETED,
	SY_PHASE_PAUSED,
	SY_PHASE_ROLLED_BACK,
	SY_PHASE_FINISHED,
	SY_PHASES,
};

#define SY_REASON_MAX 256

struct sy_cutover_state {
	uint8_t phase;	     /* enum sy_phase */
	uint8_t paused_from; /* the phase resume returns to */
	uint32_t step;	     /* index into plan.steps_bp */
	uint64_t phase_started_unix_ms;
	uint64_t bake_until_unix_ms; /* wall clock: a restart does not extend the bake */
	uint64_t changed_unix_ms;
	bool ready; /* manual plan: the step baked with passing gates */
	char reason[SY_REASON_MAX];
};

/* "cutting-over", "rolled-back", … */
const char *sy_phase_name(int phase);

/* Whether writes must be mirrored both ways whatever the ratio (mirror: auto): from the
 * backfill on, through a rollback (legacy must get every write made on target) and
 * after completion, until the operator finishes. */
static inline bool sy_phase_mirrors(int phase)
{
	return phase >= SY_PHASE_BACKFILLING && phase <= SY_PHASE_ROLLED_BACK;
}

#endif
