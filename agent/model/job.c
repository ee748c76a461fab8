// SPDX-License-Identifier: Apache-2.0
/* job.c — see job.h. */
#include "model/job.h"

#include <errno.h>
#include <string.h>

static const char *const names[] = {
	[SY_JOB_IDLE] = "idle",	    [SY_JOB_RUNNING] = "running",     [SY_JOB_DONE] = "done",
	[SY_JOB_FAILED] = "failed", [SY_JOB_REQUESTED] = "requested",
};

const char *sy_job_state_name(enum sy_job_state s)
{
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int sy_job_state_parse(const char *name)
{
	for (unsigned i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}
