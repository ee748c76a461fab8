// SPDX-License-Identifier: Apache-2.0
/* job_request.c — see job_request.h. */
#include "shadow/job_request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "model/spec.h"
#include "registry/fleet.h"
#include "registry/registry.h"
#include "shadow/verify.h"

#define RETRY_MS 500
#define WATCH_MS 1000 /* how often a taken request's job is looked at */

static const char *const kind_name[SY_JOBREQ_KINDS] = {"audit", "backfill"};

struct sy_job_requests {
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_verify *verify;
	const struct sy_fleet *fleet;
	char node[64];
	bool leader;
	uint64_t timer, watch_timer;
	/* per slot and kind: the request this leader started, so that a take whose commit
	 * failed is committed again without running the job a second time */
	struct {
		uint64_t nonce, started_unix_ms;
	} started[SY_MAX_MIGRATIONS][SY_JOBREQ_KINDS];
};

int sy_job_request_ask(struct sy_registry *reg, const char *name, int kind, const char *node, bool repair,
		       uint32_t keys_per_s, uint64_t bytes_per_s, struct sy_spec_err *err)
{
	struct sy_job_request q = {.requested_unix_ms = sy_unix_ms(),
				   .repair = repair,
				   .keys_per_s = keys_per_s,
				   .bytes_per_s = bytes_per_s};

	if (getrandom(&q.nonce, sizeof(q.nonce), 0) != sizeof(q.nonce))
		q.nonce = q.requested_unix_ms ^ ((uint64_t)getpid() << 32);
	q.nonce |= 1; /* 0 is "none asked" */
	snprintf(q.node, sizeof(q.node), "%s", node);
	return sy_registry_set_job_request(reg, name, kind, &q, err);
}

/* Starts the job q asks for (unless this leader started it already) and returns its
 * start time: the one that answers q. A job of that kind already running answers it. */
static uint64_t start(struct sy_job_requests *jr, const struct sy_migration_state *m, int kind,
		      const struct sy_job_request *q)
{
	struct sy_audit_status a;
	struct sy_backfill_status b;
	const char *name = m->spec.name;
	int e;

	if (jr->started[m->id][kind].nonce == q->nonce)
		return jr->started[m->id][kind].started_unix_ms;
	if (kind == SY_JOBREQ_AUDIT)
		e = sy_verify_start_audit(jr->verify, name, q->repair, q->keys_per_s);
	else
		e = sy_verify_start_backfill(jr->verify, name, q->keys_per_s, q->bytes_per_s);
	if (e && e != -EBUSY)
		sy_error("verify", "%s: the %s asked through node %s: %s", name, kind_name[kind], q->node,
			 strerror(-e));
	else
		sy_info("verify", "%s: the %s asked through node %s runs here%s", name, kind_name[kind],
			q->node, e ? " (one was running: it answers)" : "");
	jr->started[m->id][kind].nonce = q->nonce;
	jr->started[m->id][kind].started_unix_ms =
		kind == SY_JOBREQ_AUDIT
			? (sy_verify_status(jr->verify, name, &a) ? 0 : a.started_unix_ms)
			: (sy_verify_backfill_status(jr->verify, name, &b) ? 0 : b.started_unix_ms);
	return jr->started[m->id][kind].started_unix_ms;
}

/* Where the job that answers a request taken here stands, from this agent's own job. */
enum mine { MINE_RUNNING, MINE_ENDED, MINE_GONE };

static enum mine my_job(struct sy_job_requests *jr, const char *name, int kind,
			const struct sy_job_request *q, uint64_t *finished_unix_ms)
{
	struct sy_audit_status a;
	struct sy_backfill_status b;
	uint64_t started, finished;
	int state;

	if (kind == SY_JOBREQ_AUDIT ? sy_verify_status(jr->verify, name, &a)
				    : sy_verify_backfill_status(jr->verify, name, &b))
		return MINE_GONE;
	started = kind == SY_JOBREQ_AUDIT ? a.started_unix_ms : b.started_unix_ms;
	finished = kind == SY_JOBREQ_AUDIT ? a.finished_unix_ms : b.finished_unix_ms;
	state = kind == SY_JOBREQ_AUDIT ? (int)a.state : (int)b.state;
	if (started == q->started_unix_ms) {
		*finished_unix_ms = finished ? finished : sy_unix_ms();
		return state == SY_JOB_RUNNING ? MINE_RUNNING : MINE_ENDED;
	}
	/* a later job of that kind ran here: the one that answered q ended before it */
	*finished_unix_ms = started;
	return started > q->started_unix_ms ? MINE_ENDED : MINE_GONE;
}

static bool node_alive(const struct sy_fleet *f, const char *node)
{
	for (size_t i = 0; f && i < sy_fleet_count(f); i++) {
		const struct sy_fleet_node *n = sy_fleet_at(f, i);

		if (strcmp(n->name, node) == 0)
			return n->alive;
	}
	return false;
}

/*
 * What request q of kind k asks of this node now, as the request to commit in its
 * place (false: nothing). Pending: the leader takes it. Taken here: its end is
 * recorded once the job ended; a job this agent no longer has (it restarted) is run
 * again by a leader and handed back by a follower. Taken by a node gone from the
 * fleet and not ended: the leader runs it again — the taker's progress died with it.
 */
static bool next_of(struct sy_job_requests *jr, const struct sy_migration_state *m, int k,
		    struct sy_job_request *q)
{
	const char *name = m->spec.name;
	uint64_t finished = 0;

	if (!q->nonce || q->finished_unix_ms)
		return false;
	if (sy_job_request_pending(q)) {
		if (!jr->leader)
			return false;
	} else if (strcmp(q->taken_by, jr->node) == 0) {
		switch (my_job(jr, name, k, q, &finished)) {
		case MINE_RUNNING:
			return false;
		case MINE_ENDED:
			q->finished_unix_ms = finished;
			return true;
		case MINE_GONE:
			sy_warn("verify",
				"%s: the %s asked through node %s and taken here is no longer running: %s",
				name, kind_name[k], q->node,
				jr->leader ? "it runs again" : "handed back to the leader");
			jr->started[m->id][k].nonce = 0;
			if (!jr->leader) {
				q->taken_by[0] = 0;
				q->started_unix_ms = 0;
				return true;
			}
			break;
		}
	} else if (jr->leader && !node_alive(jr->fleet, q->taken_by)) {
		sy_warn("verify",
			"%s: the %s asked through node %s was taken by node %s, which left the fleet "
			"before it ended: it runs again here",
			name, kind_name[k], q->node, q->taken_by);
		jr->started[m->id][k].nonce = 0;
	} else {
		return false;
	}
	q->started_unix_ms = start(jr, m, k, q);
	snprintf(q->taken_by, sizeof(q->taken_by), "%s", jr->node);
	return true;
}

/* Commits what the first request that asks something needs: one commit per turn, since
 * a commit replaces the registry's set; the next turn comes from that commit. */
static void take(struct sy_loop *l, void *arg)
{
	struct sy_job_requests *jr = arg;

	jr->timer = 0;
	for (size_t i = 0; i < sy_registry_count(jr->reg); i++) {
		const struct sy_migration_state *m = sy_registry_at(jr->reg, i);

		for (int k = 0; k < SY_JOBREQ_KINDS; k++) {
			struct sy_job_request q = m->job_req[k];
			struct sy_spec_err err = {{0}};
			char name[SY_NAME_MAX];

			snprintf(name, sizeof(name), "%s", m->spec.name);
			if (!next_of(jr, m, k, &q))
				continue;
			if (sy_registry_set_job_request(jr->reg, name, k, &q, &err)) {
				/* a concurrent change (or etcd away): the job runs; record it later */
				sy_warn("verify", "%s: record the %s request (%s): %s", name, kind_name[k],
					q.finished_unix_ms ? "ended"
					: q.taken_by[0]	   ? "taken"
							   : "handed back",
					err.msg);
				jr->timer = sy_loop_add_timer(l, RETRY_MS, take, jr);
			}
			return;
		}
	}
}

/* Taken requests change without a commit (a job ends, a node leaves): looked at each
 * WATCH_MS, on every node, since a follower may hold one taken while it led. */
static void watch(struct sy_loop *l, void *arg)
{
	struct sy_job_requests *jr = arg;

	jr->watch_timer = sy_loop_add_timer(l, WATCH_MS, watch, jr);
	if (!jr->timer)
		take(l, jr);
}

static void schedule(struct sy_job_requests *jr, const struct sy_migration_state *s, size_t n)
{
	if (!jr->leader || jr->timer)
		return;
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < SY_JOBREQ_KINDS; k++)
			if (sy_job_request_pending(&s[i].job_req[k])) {
				/* not from inside the commit: the registry cannot change while it reports */
				jr->timer = sy_loop_add_timer(jr->loop, 0, take, jr);
				return;
			}
}

static void on_commit(void *ctx, const struct sy_commit *c)
{
	schedule(ctx, c->after, c->n_after);
}

struct sy_job_requests *sy_job_requests_new(struct sy_loop *l, struct sy_registry *reg, struct sy_verify *v,
					    const struct sy_fleet *fleet, const char *node)
{
	struct sy_job_requests *jr = calloc(1, sizeof(*jr));

	if (!jr)
		return NULL;
	jr->loop = l;
	jr->reg = reg;
	jr->verify = v;
	jr->fleet = fleet;
	snprintf(jr->node, sizeof(jr->node), "%s", node);
	if (sy_registry_subscribe(reg, "job-requests", on_commit, jr)) {
		free(jr);
		return NULL;
	}
	jr->watch_timer = sy_loop_add_timer(l, WATCH_MS, watch, jr);
	return jr;
}

void sy_job_requests_set_leader(struct sy_job_requests *jr, bool leader)
{
	if (!jr)
		return;
	jr->leader = leader;
	if (!leader && jr->timer) {
		sy_loop_cancel_timer(jr->loop, jr->timer);
		jr->timer = 0;
	}
	if (leader) {
		/* what the set holds now: the registry's own array, between commits */
		for (size_t i = 0; i < sy_registry_count(jr->reg); i++)
			schedule(jr, sy_registry_at(jr->reg, i), 1);
	}
}

void sy_job_requests_free(struct sy_job_requests *jr)
{
	if (!jr)
		return;
	sy_registry_unsubscribe(jr->reg, on_commit, jr);
	if (jr->timer)
		sy_loop_cancel_timer(jr->loop, jr->timer);
	if (jr->watch_timer)
		sy_loop_cancel_timer(jr->loop, jr->watch_timer);
	free(jr);
}
