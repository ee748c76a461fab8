// SPDX-License-Identifier: Apache-2.0
/* job.h — the states of a background job (an audit, a backfill): one enum for the
 * agent, the controller and syctl, and the one spelling of each state that the API,
 * syctl's output and the state files use ("idle", "running", "done", "failed", "requested"). */
#ifndef SY_JOB_H
#define SY_JOB_H

enum sy_job_state {
	SY_JOB_IDLE = 0, /* never started (zeroed memory is idle) */
	SY_JOB_RUNNING,
	SY_JOB_DONE,
	SY_JOB_FAILED,
	SY_JOB_REQUESTED, /* fleet mode: asked of the leader, not started there yet */
};

/* "idle", "running", "done", "failed"; "?" for anything else. */
const char *sy_job_state_name(enum sy_job_state s);
/* The state a name spells (as the API and the state files write it), or -EINVAL. */
int sy_job_state_parse(const char *name);

#endif
