// SPDX-License-Identifier: Apache-2.0
/* events_svc.c — switchyard.v1.Telemetry/Events: per stream, a cursor into the event
 * history (events.h). The stream first replays the retained events after since_seq,
 * then, with follow, sends each new one as it is emitted.
 *
 * The client sets the pace: while more than MAX_PENDING bytes of a stream wait unsent,
 * the stream stops reading the history and looks again every RETRY_MS. The history is
 * the only buffer, so a slow client costs the daemon no memory and never delays it. A
 * client so slow that events it has not read leave the history gets an events.gap
 * marker (seq 0, attributes first_seq and last_seq) and goes on from the oldest event
 * still retained: it learns what it lost instead of being cut off.
 *
 * Requests: a migration name that is not valid syntax is INVALID_ARGUMENT; a name that
 * no migration has and no retained event names is NOT_FOUND with the existing names (a
 * mistyped name would otherwise look like a quiet migration). A deleted migration's
 * events stay readable by name while the history keeps them. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/control_plane.h"
#include "registry/events.h"
#include "model/spec.h"
#include "switchyard/v1/events.pb-c.h"

#define MAX_PENDING (64u << 10)
#define RETRY_MS    20

struct stream {
	struct sy_control_ctx *ctx;
	struct sy_rpc_call *call;
	struct sy_events_sub *sub; /* while following */
	char filter[SY_NAME_MAX];  /* "" = every event */
	uint64_t cursor;	   /* the last seq looked at */
	uint64_t end;		   /* without follow: the replay stops before this seq */
	uint64_t timer;
	bool follow;
	bool busy; /* inside pump(): a cancel only marks the stream dead */
	bool dead; /* the call is gone (cancelled) */
};

static void stream_free(struct stream *s)
{
	sy_loop_cancel_timer(s->ctx->loop, s->timer);
	if (s->sub)
		sy_events_unsubscribe(s->ctx->events, s->sub);
	free(s);
}

static int send_event(struct stream *s, const struct sy_event *e)
{
	Switchyard__V1__Event pb = SWITCHYARD__V1__EVENT__INIT;
	Switchyard__V1__Event__AttributesEntry kv[SY_EVENT_MAX_ATTRS], *kvp[SY_EVENT_MAX_ATTRS];
	size_t n = e->n_attrs < SY_EVENT_MAX_ATTRS ? e->n_attrs : SY_EVENT_MAX_ATTRS;

	pb.seq = e->seq;
	pb.unix_ms = e->unix_ms;
	pb.migration = (char *)e->migration;
	pb.kind = (char *)e->kind;
	pb.message = (char *)e->message;
	for (size_t i = 0; i < n; i++) {
		switchyard__v1__event__attributes_entry__init(&kv[i]);
		kv[i].key = (char *)e->attrs[i].key;
		kv[i].value = (char *)e->attrs[i].value;
		kvp[i] = &kv[i];
	}
	pb.attributes = kvp;
	pb.n_attributes = n;
	return sy_rpc_send(s->call, &pb.base);
}

/* The marker for seqs [first, last], which this stream will never see. */
static int send_gap(struct stream *s, uint64_t first, uint64_t last)
{
	char a[24], b[24], msg[96];
	struct sy_event e = {.migration = "", .kind = "events.gap", .message = msg};
	struct sy_event_attr attrs[] = {{"first_seq", a}, {"last_seq", b}};

	snprintf(a, sizeof(a), "%llu", (unsigned long long)first);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)last);
	snprintf(msg, sizeof(msg), "events %s to %s are no longer retained", a, b);
	e.attrs = attrs;
	e.n_attrs = 2;
	return send_event(s, &e);
}

static void tick(struct sy_loop *l, void *arg);

static void schedule(struct stream *s, uint64_t after_ms)
{
	if (!s->timer)
		s->timer = sy_loop_add_timer(s->ctx->loop, after_ms, tick, s);
}

/* Sends what the client can take now; ends a stream without follow once replayed. */
static void pump(struct stream *s)
{
	struct sy_events *ev = s->ctx->events;
	uint64_t oldest = sy_events_oldest(ev), next = sy_events_next(ev);
	uint64_t stop = s->follow ? next : (s->end < next ? s->end : next);
	int e = 0;

	s->busy = true;
	if (s->cursor + 1 < oldest) {
		uint64_t last = (oldest < stop ? oldest : stop) - 1;

		e = send_gap(s, s->cursor + 1, last);
		s->cursor = last;
	}
	while (!e && !s->dead && s->cursor + 1 < stop) {
		const struct sy_event *ev1;

		if (sy_rpc_call_pending(s->call) > MAX_PENDING) {
			schedule(s, RETRY_MS);
			break;
		}
		ev1 = sy_events_get(ev, ++s->cursor);
		if (ev1 && (!s->filter[0] || strcmp(ev1->migration, s->filter) == 0))
			e = send_event(s, ev1);
	}
	s->busy = false;
	if (s->dead) {
		stream_free(s);
		return;
	}
	if (e) {
		/* The transport already ended the call; this only releases it. */
		sy_rpc_finish(s->call, SY_GRPC_INTERNAL, "send failed");
		stream_free(s);
		return;
	}
	if (!s->follow && s->cursor + 1 >= stop && !s->timer) {
		sy_rpc_finish(s->call, SY_GRPC_OK, NULL);
		stream_free(s);
	}
}

static void tick(struct sy_loop *l, void *arg)
{
	struct stream *s = arg;

	(void)l;
	s->timer = 0;
	pump(s);
}

/* A new event: read it from a fresh loop turn, not from inside the emitter. */
static void on_event(void *arg)
{
	schedule(arg, 0);
}

static void on_cancel(struct sy_rpc_call *call, void *arg)
{
	struct stream *s = arg;

	(void)call;
	s->call = NULL;
	s->dead = true;
	if (!s->busy)
		stream_free(s);
}

/* Whether some retained event names this migration (it was deleted, or renamed). */
static bool in_history(const struct sy_events *ev, const char *name)
{
	for (uint64_t seq = sy_events_oldest(ev); seq < sy_events_next(ev); seq++) {
		const struct sy_event *e = sy_events_get(ev, seq);

		if (e && strcmp(e->migration, name) == 0)
			return true;
	}
	return false;
}

static void events(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const Switchyard__V1__EventsRequest *r = (const void *)req;
	struct sy_control_ctx *ctx = arg;
	struct sy_events *ev = ctx->events;
	uint64_t oldest, next;
	struct stream *s;

	if (r->migration && *r->migration && !sy_spec_name_ok(r->migration)) {
		sy_rpc_finish(call, SY_GRPC_INVALID_ARGUMENT,
			      "migration: \"%s\" is not a migration name (1-%d characters of a-z, 0-9, "
			      "'.', '_', '-', starting with a letter or digit)",
			      r->migration, SY_NAME_MAX - 1);
		return;
	}
	if (!ev) {
		sy_rpc_finish(call, SY_GRPC_UNAVAILABLE, "no event history");
		return;
	}
	if (r->migration && *r->migration && !sy_registry_find(ctx->reg, r->migration) &&
	    !in_history(ev, r->migration)) {
		sy_api_not_found(call, ctx, r->migration);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		sy_rpc_finish(call, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	s->ctx = ctx;
	s->call = call;
	s->follow = r->follow;
	snprintf(s->filter, sizeof(s->filter), "%s", r->migration ? r->migration : "");
	oldest = sy_events_oldest(ev);
	next = sy_events_next(ev);
	s->end = next;
	/* 0: the whole history; past the latest: only new events; else resume after it. */
	if (r->since_seq == 0)
		s->cursor = oldest - 1;
	else if (r->since_seq >= next - 1)
		s->cursor = next - 1;
	else
		s->cursor = r->since_seq;
	if (s->follow) {
		s->sub = sy_events_subscribe(ev, on_event, s);
		if (!s->sub) {
			free(s);
			sy_rpc_finish(call, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
	}
	sy_rpc_call_set_cancel(call, on_cancel, s);
	pump(s);
}

int sy_events_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx)
{
	return sy_rpc_server_add_stream(srv, "/switchyard.v1.Telemetry/Events",
					&switchyard__v1__events_request__descriptor, events, ctx);
}
