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
#include "registry/registry.h"
#include "shadow/verify.h"

#define RETRY_MS 500

static const char *const kind_name[SY_JOBREQ_KINDS] = {"audit", "backfill"};

struct sy_job_requests {
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_verify *verify;
	char node[64];
	bool leader;
	uint64_t timer;
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

/* Takes the first pending request: one commit per turn, since a commit replaces the
 * registry's set; the next turn comes from that commit. */
static void take(struct sy_loop *l, void *arg)
{
	struct sy_job_requests *jr = arg;

	jr->timer = 0;
	if (!jr->leader)
		return;
	for (size_t i = 0; i < sy_registry_count(jr->reg); i++) {
		const struct sy_migration_state *m = sy_registry_at(jr->reg, i);

		for (int k = 0; k < SY_JOBREQ_KINDS; k++) {
			struct sy_job_request q = m->job_req[k];
			struct sy_spec_err err = {{0}};
			char name[SY_NAME_MAX];

			if (!sy_job_request_pending(&q))
				continue;
			snprintf(name, sizeof(name), "%s", m->spec.name);
			q.started_unix_ms = start(jr, m, k, &q);
			snprintf(q.taken_by, sizeof(q.taken_by), "%s", jr->node);
			if (sy_registry_set_job_request(jr->reg, name, k, &q, &err)) {
				/* a concurrent change (or etcd away): the job runs; record it later */
				sy_warn("verify", "%s: record the %s as taken: %s", name, kind_name[k],
					err.msg);
				jr->timer = sy_loop_add_timer(l, RETRY_MS, take, jr);
			}
			return;
		}
	}
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
					    const char *node)
{
	struct sy_job_requests *jr = calloc(1, sizeof(*jr));

	if (!jr)
		return NULL;
	jr->loop = l;
	jr->reg = reg;
	jr->verify = v;
	snprintf(jr->node, sizeof(jr->node), "%s", node);
	if (sy_registry_subscribe(reg, "job-requests", on_commit, jr)) {
		free(jr);
		return NULL;
	}
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
	free(jr);
}
