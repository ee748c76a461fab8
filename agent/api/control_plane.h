// SPDX-License-Identifier: Apache-2.0
/* control_plane.h — the gRPC services the daemon serves, registered on one server. */
#ifndef SY_CONTROL_PLANE_H
#define SY_CONTROL_PLANE_H

#include "kernel/capture.h"
#include "cutover/cutover.h"
#include "shadow/mirror.h"
#include "shadow/verify.h"
#include "core/daemon.h"
#include "registry/events.h"
#include "redis/health.h"
#include "registry/registry.h"
#include "rpc/rpc.h"
#include "switchyard/v1/cutover.pb-c.h"

struct sy_tls_set;

struct sy_control_ctx {
	struct sy_registry *reg;
	struct sy_health *health;
	const struct sy_daemon_info *info;
	struct sy_loop *loop;
	struct sy_events *events;   /* state changes (events.h) */
	struct sy_capture *capture; /* ring-buffer consumer (may be NULL) */
	struct sy_mirror *mirror;   /* shadow writes (may be NULL) */
	struct sy_verify *verify;   /* audits and dual reads (may be NULL) */
	struct sy_cutover *cutover; /* the plan controller (may be NULL) */
	struct sy_fleet *fleet;	    /* fleet mode: the nodes sharing the store (NULL: one host) */

	/* TLS of the daemon, for Status (tls_setup.h; may be NULL) */
	const struct sy_tls_set *tls;
};

/* Ends a call naming a migration that does not exist: NOT_FOUND, with the names that
 * do (sy_registry_not_found). control_svc.c. */
void sy_api_not_found(struct sy_rpc_call *call, struct sy_control_ctx *ctx, const char *name);

/* Ends a call with a registry change's error (e < 0, err's message): ABORTED for a
 * fleet's conflict, UNAVAILABLE for its store away, … control_svc.c. */
void sy_api_fail(struct sy_rpc_call *call, int e, const struct sy_spec_err *err);

/* The enabled gates of migration m, from its cutover status st, as GateStatus messages
 * in gs[] listed in gp[] (the reply points into both); returns how many. control_svc.c. */
size_t sy_api_gates_pb(const struct sy_migration_state *m, const struct sy_cutover_status *st,
		       Switchyard__V1__GateStatus gs[SY_GATES], Switchyard__V1__GateStatus *gp[SY_GATES]);

/* switchyard.v1.Control (control_svc.c). */
int sy_control_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx);
/* switchyard.v1.Control/ListNodes (fleet_svc.c). */
int sy_fleet_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx);
/* switchyard.v1.Telemetry (telemetry_svc.c). */
int sy_telemetry_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx);
/* switchyard.v1.Telemetry/Events (events_svc.c): the stream of state changes. */
int sy_events_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx);
/* switchyard.v1.Verify (verify_svc.c). */
int sy_verify_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx);
/* grpc.health.v1.Health (health_svc.c): "" and "switchyard.v1.Control" are SERVING
 * while the daemon runs; NOT_SERVING once it begins shutting down. */
int sy_health_svc_register(struct sy_rpc_server *srv);
void sy_health_svc_set_serving(struct sy_rpc_server *srv, bool serving);

#endif
