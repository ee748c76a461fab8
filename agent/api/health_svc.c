// SPDX-License-Identifier: Apache-2.0
/* health_svc.c — grpc.health.v1.Health: Check and Watch for "" (the daemon) and
 * "switchyard.v1.Control". Watchers get the current status at once, then every change;
 * the daemon flips to NOT_SERVING when it starts shutting down. One registry per
 * process (the daemon serves one server). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/control_plane.h"
#include "grpc/health/v1/health.pb-c.h"

struct watcher {
	struct sy_rpc_call *call;
	struct watcher *next;
};

static struct {
	bool serving;
	struct watcher *watchers;
} hs = {.serving = true};

static int known(const char *svc)
{
	return !svc || !*svc || strcmp(svc, "switchyard.v1.Control") == 0 ||
	       strcmp(svc, "grpc.health.v1.Health") == 0;
}

static Grpc__Health__V1__HealthCheckResponse__ServingStatus status_of(const char *svc)
{
	if (!known(svc))
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	return hs.serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
			  : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void check(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	(void)arg;
	if (!known(r->service)) {
		sy_rpc_finish(call, SY_GRPC_NOT_FOUND, "unknown service \"%s\"", r->service);
		return;
	}
	resp.status = status_of(r->service);
	sy_rpc_reply(call, &resp.base);
}

static void unwatch(struct sy_rpc_call *call, void *arg)
{
	(void)arg;
	for (struct watcher **pp = &hs.watchers; *pp; pp = &(*pp)->next) {
		if ((*pp)->call == call) {
			struct watcher *w = *pp;

			*pp = w->next;
			free(w);
			return;
		}
	}
}

static void watch(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	struct watcher *w;

	(void)arg;
	resp.status = status_of(r->service);
	if (sy_rpc_send(call, &resp.base) < 0)
		return;
	if (!known(r->service))
		return; /* stays open with SERVICE_UNKNOWN, as the protocol asks; no updates */
	w = calloc(1, sizeof(*w));
	if (!w) {
		sy_rpc_finish(call, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	w->call = call;
	w->next = hs.watchers;
	hs.watchers = w;
	sy_rpc_call_set_cancel(call, unwatch, NULL);
}

int sy_health_svc_register(struct sy_rpc_server *srv)
{
	int e;

	hs.serving = true;
	if ((e = sy_rpc_server_add_unary(srv, "/grpc.health.v1.Health/Check",
					 &grpc__health__v1__health_check_request__descriptor, check, NULL)))
		return e;
	return sy_rpc_server_add_stream(srv, "/grpc.health.v1.Health/Watch",
					&grpc__health__v1__health_check_request__descriptor, watch, NULL);
}

void sy_health_svc_set_serving(struct sy_rpc_server *srv, bool serving)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	(void)srv;
	if (hs.serving == serving)
		return;
	hs.serving = serving;
	resp.status = status_of("");
	for (struct watcher *w = hs.watchers, *n; w; w = n) {
		n = w->next; /* a failed send ends the call; its watcher goes at the cancel */
		sy_rpc_send(w->call, &resp.base);
	}
}
