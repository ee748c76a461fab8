// SPDX-License-Identifier: Apache-2.0
/* publish.c — see publish.h. */
#include "cutover/publish.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "kernel/mapsync.h"
#include "registry/fleet.h"
#include "registry/registry.h"
#include "shadow/verify.h"

#define PUBLISH_MS 1000

struct sy_publish {
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_verify *verify;
	struct sy_fleet *fleet;
	uint64_t timer;
	struct sy_fleet_mig mig[SY_MAX_MIGRATIONS];
};

int sy_fleet_local_counters(struct sy_registry *reg, struct sy_verify *v, const struct sy_migration_state *m,
			    struct sy_fleet_counters *out)
{
	struct sy_side_stats st;
	struct sy_audit_status a;

	memset(out, 0, sizeof(*out));
	for (uint8_t side = 0; side < 2; side++) {
		if (sy_mapsync_side_stats(sy_registry_bpf(reg), m->id, side, &st))
			return -EIO;
		out->req[side] = st.exchanges;
		out->err[side] = st.errors;
		out->conns[side] = st.sockets;
		memcpy(out->lat[side], st.lat, sizeof(st.lat));
	}
	if (v && sy_verify_status(v, m->spec.name, &a) == 0)
		out->drift = a.dual_drift + a.audit_found; /* both only grow */
	return 0;
}

/* The jobs this node runs (the leader's, in a fleet), for the others to show. */
static void jobs(struct sy_verify *v, const char *name, struct sy_fleet_mig *out)
{
	struct sy_audit_status a;
	struct sy_backfill_status b;

	if (v && sy_verify_status(v, name, &a) == 0) {
		struct sy_fleet_job *j = &out->audit;

		j->state = (uint8_t)a.state;
		j->scanned = a.scanned;
		j->total = a.total;
		for (int k = 1; k < SY_DRIFT_KINDS; k++) {
			j->found += a.counts[k];
			if (k <= 5)
				j->diff[k - 1] = a.counts[k];
		}
		j->repaired = a.repaired;
		j->started_unix_ms = a.started_unix_ms;
		j->finished_unix_ms = a.finished_unix_ms;
		snprintf(j->error, sizeof(j->error), "%s", a.error ? a.error : "");
	}
	if (v && sy_verify_backfill_status(v, name, &b) == 0) {
		struct sy_fleet_job *j = &out->backfill;

		j->state = (uint8_t)b.state;
		j->scanned = b.scanned;
		j->total = b.total;
		j->copied = b.copied;
		j->started_unix_ms = b.started_unix_ms;
		j->finished_unix_ms = b.finished_unix_ms;
		snprintf(j->error, sizeof(j->error), "%s", b.error ? b.error : "");
	}
}

static void tick(struct sy_loop *l, void *arg)
{
	struct sy_publish *p = arg;
	size_t n = 0;

	p->timer = sy_loop_add_timer(l, PUBLISH_MS, tick, p);
	for (size_t i = 0; i < sy_registry_count(p->reg) && n < SY_MAX_MIGRATIONS; i++) {
		const struct sy_migration_state *m = sy_registry_at(p->reg, i);
		struct sy_fleet_mig *x = &p->mig[n];

		memset(x, 0, sizeof(*x));
		if (sy_fleet_local_counters(p->reg, p->verify, m, &x->c))
			continue;
		jobs(p->verify, m->spec.name, x);
		snprintf(x->name, sizeof(x->name), "%s", m->spec.name);
		x->ratio_bp = m->spec.ratio_bp;
		n++;
	}
	sy_fleet_set_local(p->fleet, p->mig, n);
}

struct sy_publish *sy_publish_new(struct sy_loop *l, struct sy_registry *reg, struct sy_verify *v,
				  struct sy_fleet *f)
{
	struct sy_publish *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	*p = (struct sy_publish){.loop = l, .reg = reg, .verify = v, .fleet = f};
	p->timer = sy_loop_add_timer(l, 0, tick, p);
	return p;
}

void sy_publish_free(struct sy_publish *p)
{
	if (!p)
		return;
	sy_loop_cancel_timer(p->loop, p->timer);
	free(p);
}
