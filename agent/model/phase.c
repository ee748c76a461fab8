// SPDX-License-Identifier: Apache-2.0
/* phase.c — see phase.h. */
#include "model/phase.h"

static const char *const phase_names[SY_PHASES] = {
	"none",		"pending",   "backfilling", "shadowing",   "verifying",
	"cutting-over", "completed", "paused",	    "rolled-back", "finished",
};

const char *sy_phase_name(int phase)
{
	return phase >= 0 && phase < SY_PHASES ? phase_names[phase] : "?";
}
