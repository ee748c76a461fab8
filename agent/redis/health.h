// SPDX-License-Identifier: Apache-2.0
/* health.h — health checks of datastore endpoints: a non-blocking TCP connect, the
 * endpoint's AUTH when it has credentials (redis/auth.h), and "PING" every interval;
 * healthy only on "+PONG" to the authenticated PING before the timeout. Each change of a
 * target's health is reported through the callback (the registry flips the kernel's
 * healthy mask). With the PING goes "INFO server": a run_id other than the one seen
 * before means the server restarted (and may have come back empty), reported through
 * the restart callback. Runs on the event loop; never blocks. */
#ifndef SY_HEALTH_H
#define SY_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "switchyard/abi.h"

struct sy_health;
struct sy_auth_spec;

struct sy_endpoint_health {
	bool healthy;
	bool checked; /* at least one check finished */
	uint64_t last_check_unix_ms;
	uint64_t last_rtt_us; /* of the last successful PING */
	uint32_t consecutive_failures;
	char last_error[200]; /* "connect: Connection refused", "AUTH as x refused: WRONGPASS …" */
	char run_id[41];      /* INFO server's, as last seen ("" before, or without INFO) */
	uint32_t restarts;    /* run_id changes seen */
};

typedef void (*sy_health_cb)(const struct sy_endpoint *ep, bool healthy, void *arg);

struct sy_health *sy_health_new(struct sy_loop *loop, uint32_t interval_ms, uint32_t timeout_ms,
				sy_health_cb cb, void *arg);
void sy_health_free(struct sy_health *h);
/* A server answering with a new run_id: old_id → new_id (40 hex digits each). */
typedef void (*sy_health_restart_cb)(const struct sy_endpoint *ep, const char *old_id, const char *new_id,
				     void *arg);
void sy_health_on_restart(struct sy_health *h, sy_health_restart_cb cb, void *arg);

/* Replaces the set of endpoints checked; keeps the state of those still present.
 * auths (NULL, or n entries that may be NULL): each endpoint's credentials, copied. */
int sy_health_set_endpoints(struct sy_health *h, const struct sy_endpoint *eps,
			    const struct sy_auth_spec *const *auths, size_t n);
/* 0 and *out, or -ENOENT if ep is not checked. */
int sy_health_get(const struct sy_health *h, const struct sy_endpoint *ep, struct sy_endpoint_health *out);
/* Whether every endpoint has finished at least one check (readiness). */
bool sy_health_all_checked(const struct sy_health *h);

#endif
