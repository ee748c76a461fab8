// SPDX-License-Identifier: Apache-2.0
/* cmd_stream.c — the streaming commands: watch (telemetry snapshots) and events
 * (the history, then new ones with --follow; syctl's own filters by time and kind), each
 * on its own event loop until the stream ends or Ctrl-C. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syctl/syctl.h"
#include <signal.h>

#include "core/duration.h"

struct watch_ctx {
	struct sy_loop *loop;
	struct sy_rpc_client_call *call;
	long count, seen;
	int tty;
	int rc;
	int stopping;
};

/* The final status of a streaming call: the exit code, the message printed once. */
static void stream_ended(struct watch_ctx *w, const struct sy_rpc_status *st)
{
	w->call = NULL;
	if (!w->stopping) {
		if (st->code == SY_GRPC_OK || st->code == SY_GRPC_CANCELLED) {
			w->rc = EX_OK;
		} else if (st->code == SY_GRPC_UNAVAILABLE || (st->code == SY_GRPC_DEADLINE_EXCEEDED &&
							       strstr(st->message, "while connecting"))) {
			fprintf(stderr, "syctl: cannot reach switchyardd at %s: %s\n", server, st->message);
			w->rc = EX_UNREACHABLE;
		} else {
			fprintf(stderr, "syctl: %s\n", st->message);
			w->rc = EX_REFUSED;
		}
	}
	sy_loop_stop(w->loop);
}

static void on_snapshot(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct watch_ctx *w = arg;

	if (msg) {
		if (json)
			print_json(msg);
		else
			print_snapshot((const void *)msg, w->tty);
		fflush(stdout);
		if (w->count && ++w->seen >= w->count && !w->stopping) {
			w->stopping = 1;
			w->rc = EX_OK;
			sy_loop_stop(w->loop);
		}
		return;
	}
	stream_ended(w, st);
}

static void on_interrupt(struct sy_loop *l, int signo, void *arg)
{
	struct watch_ctx *w = arg;

	(void)signo;
	w->stopping = 1;
	w->rc = EX_OK;
	sy_loop_stop(l);
}

/* Runs one streaming call until it ends, Ctrl-C, or cb stops the loop. */
static int run_stream(const char *path, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
		      uint64_t deadline_ms, sy_rpc_client_cb cb, struct watch_ctx *w)
{
	struct sy_rpc_client *c;

	w->loop = sy_loop_new();
	if (!w->loop)
		return EX_REFUSED;
	c = sy_rpc_client_new(w->loop, server, 0);
	if (c && client_tls)
		sy_rpc_client_set_tls(c, client_tls, NULL);
	if (!c || sy_rpc_client_start(c, path, req, rd, deadline_ms, cb, w, &w->call)) {
		fprintf(stderr, "syctl: %s: cannot start the call\n", path);
		sy_rpc_client_free(c);
		sy_loop_free(w->loop);
		return EX_UNREACHABLE;
	}
	sy_loop_add_signal(w->loop, SIGINT, on_interrupt, w);
	sy_loop_add_signal(w->loop, SIGTERM, on_interrupt, w);
	sy_loop_run(w->loop);
	if (w->call) {
		w->stopping = 1;
		sy_rpc_client_cancel(w->call);
	}
	sy_rpc_client_free(c);
	sy_loop_free(w->loop);
	return w->rc;
}

int cmd_watch(int argc, char **argv)
{
	Switchyard__V1__WatchRequest req = SWITCHYARD__V1__WATCH_REQUEST__INIT;
	struct watch_ctx w = {.rc = EX_UNREACHABLE, .tty = isatty(STDOUT_FILENO)};
	uint64_t ms;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			int e = duration_arg("watch", "--interval", argv[++i], &ms);

			if (e == EX_USAGE)
				return e;
			if (e || ms < 10 || ms > 3600000)
				return usage_err("watch",
						 "--interval: \"%s\" is not a duration from 10ms to 1h",
						 argv[i]);
			req.interval_ms = (uint32_t)ms;
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			char *end;

			w.count = strtol(argv[++i], &end, 10);
			if (*end || w.count <= 0)
				return usage_err("watch", "--count: \"%s\" is not a positive number",
						 argv[i]);
		} else if (argv[i][0] != '-' && !*req.migration) {
			req.migration = argv[i];
		} else {
			return usage_err("watch", "unexpected argument \"%s\"", argv[i]);
		}
	}
	return run_stream("/switchyard.v1.Telemetry/Watch", &req.base, &switchyard__v1__snapshot__descriptor,
			  0, on_snapshot, &w);
}

#define MAX_KINDS 16

/* What `events` shows of the stream: the daemon filters by migration and seq, syctl by
 * time and kind (the API has neither: they are views, not cursors). */
struct event_view {
	struct watch_ctx w;
	uint64_t since_unix_ms;	      /* --since DURATION: older events are not shown */
	const char *kinds[MAX_KINDS]; /* --kind: a trailing '.' is a prefix */
	size_t n_kinds;
	bool all;    /* -v: also the kinds the table hides */
	bool header; /* printed */
};

/* Emitted each gate evaluation (many a minute): noise in a table unless asked for. */
static bool hidden_kind(const char *kind)
{
	return strcmp(kind, "cutover.evaluated") == 0;
}

static bool kind_wanted(const struct event_view *v, const char *kind)
{
	if (strcmp(kind, "events.gap") == 0)
		return true; /* a loss is always worth knowing */
	if (!v->n_kinds)
		return json || v->all || !hidden_kind(kind);
	for (size_t i = 0; i < v->n_kinds; i++) {
		size_t n = strlen(v->kinds[i]);

		if (n && v->kinds[i][n - 1] == '.' ? strncmp(kind, v->kinds[i], n) == 0
						   : strcmp(kind, v->kinds[i]) == 0)
			return true;
	}
	return false;
}

static void on_event(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct event_view *v = arg;
	const Switchyard__V1__Event *e = (const void *)msg;

	if (!msg) {
		stream_ended(&v->w, st);
		return;
	}
	if (e->seq && e->unix_ms < v->since_unix_ms)
		return;
	if (!kind_wanted(v, e->kind))
		return;
	if (json) {
		print_json(msg);
	} else {
		if (!v->header)
			print_event_header();
		v->header = true;
		print_event(e);
	}
	fflush(stdout);
}

/* --kind a,b --kind c: each name kept (argv outlives the stream). */
static int add_kinds(struct event_view *v, char *list)
{
	for (char *save = NULL, *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		if (v->n_kinds == MAX_KINDS)
			return usage_err("events", "--kind: at most %d kinds", MAX_KINDS);
		v->kinds[v->n_kinds++] = k;
	}
	return EX_OK;
}

/* --since: a seq (digits) or a duration back from now. */
static int since_arg(const char *s, Switchyard__V1__EventsRequest *req, struct event_view *v)
{
	uint64_t ms;
	char *end;
	int e;

	if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		req->since_seq = strtoull(s, &end, 10);
		if (errno)
			return usage_err("events", "--since: \"%s\" is not an event seq", s);
		return EX_OK;
	}
	e = sy_duration_ms(s, &ms);
	if (e || ms == 0)
		return usage_err("events", "--since: \"%s\" is neither an event seq nor a duration (10m, 1h)",
				 s);
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	v->since_unix_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 - ms;
	return EX_OK;
}

int cmd_events(int argc, char **argv)
{
	Switchyard__V1__EventsRequest req = SWITCHYARD__V1__EVENTS_REQUEST__INIT;
	struct event_view v = {.w = {.rc = EX_UNREACHABLE}};
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			req.follow = 1;
		} else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
			v.all = true;
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			if ((rc = since_arg(argv[++i], &req, &v)))
				return rc;
		} else if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
			if ((rc = add_kinds(&v, argv[++i])))
				return rc;
		} else if (argv[i][0] != '-' && !*req.migration) {
			req.migration = argv[i];
		} else {
			return usage_err("events", "unexpected argument \"%s\"", argv[i]);
		}
	}
	/* A replay ends by itself: it gets the usual deadline; a follow runs until Ctrl-C. */
	rc = run_stream("/switchyard.v1.Telemetry/Events", &req.base, &switchyard__v1__event__descriptor,
			req.follow ? 0 : timeout_ms, on_event, &v.w);
	/* an empty table still says what its columns would have been */
	if (rc == EX_OK && !json && !v.header)
		print_event_header();
	return rc;
}
