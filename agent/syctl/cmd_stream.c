/* cmd_stream.c — the streaming commands: watch (telemetry snapshots) and events
 * (the history, then new ones with --follow), each on its own event loop until the
 * stream ends or Ctrl-C. */
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

static void on_event(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	if (!msg) {
		stream_ended(arg, st);
		return;
	}
	if (json)
		print_json(msg);
	else
		print_event((const void *)msg);
	fflush(stdout);
}

int cmd_events(int argc, char **argv)
{
	Switchyard__V1__EventsRequest req = SWITCHYARD__V1__EVENTS_REQUEST__INIT;
	struct watch_ctx w = {.rc = EX_UNREACHABLE};

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			req.follow = 1;
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			char *end;

			errno = 0;
			req.since_seq = strtoull(argv[++i], &end, 10);
			if (errno || end == argv[i] || *end || argv[i][0] == '-')
				return usage_err("events", "--since: \"%s\" is not an event seq", argv[i]);
		} else if (argv[i][0] != '-' && !*req.migration) {
			req.migration = argv[i];
		} else {
			return usage_err("events", "unexpected argument \"%s\"", argv[i]);
		}
	}
	/* A replay ends by itself: it gets the usual deadline; a follow runs until Ctrl-C. */
	return run_stream("/switchyard.v1.Telemetry/Events", &req.base, &switchyard__v1__event__descriptor,
			  req.follow ? 0 : timeout_ms, on_event, &w);
}
