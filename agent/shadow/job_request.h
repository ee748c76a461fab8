// SPDX-License-Identifier: Apache-2.0
/* job_request.h — fleet mode: an audit or a backfill asked of any node runs once, on
 * the leader (docs/fleet.md "Backfills and audits run once").
 *
 * A follower asked by an operator does not scan legacy: it commits a request (a fresh
 * nonce, what was asked) into the migration's state in the store. Every node sees it
 * through its watch; the leader's copy of this component starts the job and commits
 * the request taken (its name, the job's start time), so a later leader does not run it
 * again and every node knows which of the leader's jobs answers it — that job's
 * progress reaches them in the leader's node key. The taker commits the job's end;
 * until then, a leader that finds the taker gone from the fleet (killed mid-job) runs
 * the job again and takes the request.
 */
#ifndef SY_JOB_REQUEST_H
#define SY_JOB_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "registry/migration.h"

struct sy_loop;
struct sy_registry;
struct sy_verify;
struct sy_fleet;
struct sy_spec_err;
struct sy_job_requests;

/* node: this node's name (what a request taken here records); fleet: who is alive (a
 * taker gone before its job ended has the job run again by the leader). Subscribes to
 * reg. */
struct sy_job_requests *sy_job_requests_new(struct sy_loop *l, struct sy_registry *reg, struct sy_verify *v,
					    const struct sy_fleet *fleet, const char *node);
void sy_job_requests_free(struct sy_job_requests *jr);
/* Only the leader takes requests; becoming the leader takes those still pending. */
void sy_job_requests_set_leader(struct sy_job_requests *jr, bool leader);

/* A follower's ask: commits a request of kind SY_JOBREQ_* for migration name (node:
 * who asks). 0, or the registry's error (-ENOENT, -ESTALE, -ENOTCONN…) with err set. */
int sy_job_request_ask(struct sy_registry *reg, const char *name, int kind, const char *node, bool repair,
		       uint32_t keys_per_s, uint64_t bytes_per_s, struct sy_spec_err *err);

/* Whether q was asked and no leader has started it yet. */
static inline bool sy_job_request_pending(const struct sy_job_request *q)
{
	return q->nonce && !q->taken_by[0];
}

#endif
