// SPDX-License-Identifier: Apache-2.0
/* restart.c — see restart.h. */
#include "cutover/restart.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "cutover/cutover.h"
#include "model/endpoint.h"
#include "registry/events.h"
#include "registry/registry.h"
#include "shadow/mirror.h"
#include "shadow/verify.h"

/* The side of m the endpoint is on, or -1. */
static int side_of(const struct sy_migration_state *m, const struct sy_endpoint *ep)
{
	for (uint32_t j = 0; j < m->spec.n_legacy; j++)
		if (sy_endpoint_equal(&m->spec.legacy[j], ep))
			return SY_SIDE_LEGACY;
	for (uint32_t j = 0; j < m->spec.n_target; j++)
		if (sy_endpoint_equal(&m->spec.target[j], ep))
			return SY_SIDE_TARGET;
	return -1;
}

static void one(const struct sy_restart_env *env, const struct sy_migration_state *m, int side,
		const char *epname, const char *old_id, const char *new_id)
{
	char name[SY_NAME_MAX], why[96], refill[160];
	const char *sname = side == SY_SIDE_LEGACY ? "legacy" : "target";
	int e;

	/* m may move with the commits below: keep what is needed */
	snprintf(name, sizeof(name), "%s", m->spec.name);
	snprintf(why, sizeof(why), "%s restarted (run_id %.8s… → %.8s…)", sname, old_id, new_id);
	sy_mirror_flag_audit(env->mirror, m->id, why);
	if (!m->spec.auto_repair)
		snprintf(refill, sizeof(refill), "not refilled (auto_repair is off)");
	else if (side == SY_SIDE_LEGACY)
		/* the backfill copies legacy → target only; the audit (repair) is the way back */
		snprintf(refill, sizeof(refill),
			 "not refilled: the backfill copies legacy to target only; audit with repair");
	else if ((e = sy_verify_start_backfill(env->verify, name, 0, 0)) == 0)
		snprintf(refill, sizeof(refill), "backfill started");
	else
		snprintf(refill, sizeof(refill), "backfill not started: %s",
			 e == -EBUSY ? "one is running" : strerror(-e));
	sy_events_emit(env->events, name, "endpoint.restarted",
		       SY_EVENT_ATTRS({"endpoint", epname}, {"side", sname}, {"old_run_id", old_id},
				      {"new_run_id", new_id}, {"refill", refill}),
		       "%s; needs audit; %s", why, refill);
	sy_cutover_restart_gate(env->cutover, name, why);
}

void sy_endpoint_restarted(const struct sy_restart_env *env, const struct sy_endpoint *ep, const char *old_id,
			   const char *new_id)
{
	char epname[SY_EP_STRLEN];
	char names[SY_MAX_MIGRATIONS][SY_NAME_MAX];
	size_t n = 0;

	sy_endpoint_format(ep, epname, sizeof(epname));
	/* names first: the gate's commits change the registry being walked */
	for (size_t i = 0; i < sy_registry_count(env->reg) && n < SY_MAX_MIGRATIONS; i++)
		if (side_of(sy_registry_at(env->reg, i), ep) >= 0)
			snprintf(names[n++], SY_NAME_MAX, "%s", sy_registry_at(env->reg, i)->spec.name);
	for (size_t i = 0; i < n; i++) {
		const struct sy_migration_state *m = sy_registry_find(env->reg, names[i]);

		if (m)
			one(env, m, side_of(m, ep), epname, old_id, new_id);
	}
}
