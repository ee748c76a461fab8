// SPDX-License-Identifier: Apache-2.0
/* restart.h — what follows a datastore endpoint's restart (the health check saw a new
 * INFO run_id: the server may have come back empty, or from an old snapshot). For every
 * migration with the endpoint on a side: the mirror is flagged needs-audit with the
 * reason at once; an "endpoint.restarted" event is emitted; a running plan meets its
 * server_restart gate (cutover.c); and with auto_repair the side that restarted is
 * refilled — a target by a backfill (legacy → target). A legacy cannot be refilled that
 * way (the backfill copies one way only): the reason says so and the audit must do it. */
#ifndef SY_RESTART_H
#define SY_RESTART_H

struct sy_endpoint;
struct sy_registry;
struct sy_mirror;
struct sy_verify;
struct sy_cutover;
struct sy_events;

struct sy_restart_env {
	struct sy_registry *reg;
	struct sy_mirror *mirror;
	struct sy_verify *verify;
	struct sy_cutover *cutover;
	struct sy_events *events;
};

/* old_id and new_id: the run_ids before and after (40 hex digits). */
void sy_endpoint_restarted(const struct sy_restart_env *env, const struct sy_endpoint *ep, const char *old_id,
			   const char *new_id);

#endif
