// SPDX-License-Identifier: Apache-2.0
/* peer.c — a stand-in for switchyardd in the gRPC interop checks (not built by the
 * Makefile; see README.md here). Two modes, both on our transport:
 *
 *   peer serve LISTEN...   health (grpc.health.v1) plus the methods below, until
 *                          SIGTERM (→ NOT_SERVING, GOAWAY, 2 s drain, exit 0). Prints
 *                          "ready PORT" once listening (PORT: last TCP listener or 0),
 *                          and one line per event worth checking ("cancel /x.Y/Z").
 *   peer call TARGET PATH ARG [--gzip] [--timeout MS] [--health]
 *                          one call with our client (unary or streaming alike);
 *                          prints one JSON line {"code":…, "message":…, "msgs":[…]}.
 *
 * Methods, request/reply both grpc.health.v1.HealthCheckRequest (`service` = text):
 *   /interop.T/Echo     the request back
 *   /interop.T/Big      a reply of N bytes
 *   /interop.T/Stream   N messages "i", one every 10 ms, then OK
 *   /interop.T/Never    never answers (deadlines, cancel)
 *   /interop.T/Fail     "CODE message" → that status
 *   /interop.T/Flip     toggles health serving (Watch updates), replies the new state
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/control_plane.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc/rpc.h"

typedef Grpc__Health__V1__HealthCheckRequest Req;
#define REQ_DESC  (&grpc__health__v1__health_check_request__descriptor)
#define RESP_DESC (&grpc__health__v1__health_check_response__descriptor)

static struct sy_loop *loop;
static struct sy_rpc_server *srv;
static bool serving = true;

static void reply_text(struct sy_rpc_call *call, const char *s)
{
	Req r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	r.service = (char *)s;
	sy_rpc_reply(call, &r.base);
}

static void echo(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	(void)arg;
	reply_text(call, ((const Req *)req)->service);
}

static void big(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	size_t n = strtoul(((const Req *)req)->service, NULL, 10);
	char *s = malloc(n + 1);

	(void)arg;
	memset(s, 'x', n);
	s[n] = '\0';
	reply_text(call, s);
	free(s);
}

static void fail(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	char *rest;
	long code = strtol(((const Req *)req)->service, &rest, 10);

	(void)arg;
	sy_rpc_finish(call, (enum sy_grpc_code)code, "%s", *rest ? rest + 1 : "");
}

static void on_cancel(struct sy_rpc_call *call, void *arg)
{
	(void)call;
	printf("cancel %s\n", (const char *)arg);
	fflush(stdout);
}

static void never(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	(void)req;
	(void)arg;
	sy_rpc_call_set_cancel(call, on_cancel, "/interop.T/Never");
}

struct ticker {
	struct sy_rpc_call *call;
	unsigned i, n;
	uint64_t timer;
};

static void tick(struct sy_loop *l, void *arg)
{
	struct ticker *t = arg;
	Req r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	char buf[32];

	t->timer = 0;
	if (t->i == t->n) {
		sy_rpc_finish(t->call, SY_GRPC_OK, NULL);
		free(t);
		return;
	}
	snprintf(buf, sizeof(buf), "%u", t->i++);
	r.service = buf;
	sy_rpc_send(t->call, &r.base);
	t->timer = sy_loop_add_timer(l, 10, tick, t);
}

static void stream_cancel(struct sy_rpc_call *call, void *arg)
{
	struct ticker *t = arg;

	(void)call;
	sy_loop_cancel_timer(loop, t->timer);
	printf("cancel /interop.T/Stream after %u\n", t->i);
	fflush(stdout);
	free(t);
}

static void stream(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	struct ticker *t = calloc(1, sizeof(*t));

	(void)arg;
	t->call = call;
	t->n = (unsigned)strtoul(((const Req *)req)->service, NULL, 10);
	sy_rpc_call_set_cancel(call, stream_cancel, t);
	t->timer = sy_loop_add_timer(loop, 0, tick, t);
}

static void flip(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	(void)req;
	(void)arg;
	serving = !serving;
	sy_health_svc_set_serving(srv, serving);
	reply_text(call, serving ? "SERVING" : "NOT_SERVING");
}

static void stopped(void *arg)
{
	(void)arg;
	sy_loop_stop(loop);
}

static void on_term(struct sy_loop *l, int signo, void *arg)
{
	(void)l;
	(void)signo;
	(void)arg;
	sy_health_svc_set_serving(srv, false);
	sy_rpc_server_shutdown(srv, 2000, stopped, NULL);
}

static int serve(int argc, char **argv)
{
	struct {
		const char *path;
		sy_rpc_handler h;
		int stream;
	} m[] = {
		{"/interop.T/Echo", echo, 0}, {"/interop.T/Big", big, 0},
		{"/interop.T/Fail", fail, 0}, {"/interop.T/Never", never, 0},
		{"/interop.T/Flip", flip, 0}, {"/interop.T/Stream", stream, 1},
	};
	int e;

	srv = sy_rpc_server_new(loop, NULL);
	if (!srv || sy_health_svc_register(srv))
		return 1;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		e = m[i].stream ? sy_rpc_server_add_stream(srv, m[i].path, REQ_DESC, m[i].h, NULL)
				: sy_rpc_server_add_unary(srv, m[i].path, REQ_DESC, m[i].h, NULL);
		if (e)
			return 1;
	}
	for (int i = 0; i < argc; i++) {
		if ((e = sy_rpc_server_listen(srv, argv[i]))) {
			fprintf(stderr, "peer: listen %s: %s\n", argv[i], strerror(-e));
			return 1;
		}
	}
	sy_loop_add_signal(loop, SIGTERM, on_term, NULL);
	sy_loop_add_signal(loop, SIGINT, on_term, NULL);
	printf("ready %d\n", sy_rpc_server_port(srv));
	fflush(stdout);
	sy_loop_run(loop);
	sy_rpc_server_free(srv);
	return 0;
}

/* ---- client mode -------------------------------------------------------------------- */

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int nmsg;

static void on_msg(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	(void)arg;
	if (msg) {
		if (nmsg++)
			putchar(',');
		if (msg->descriptor == RESP_DESC) {
			const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
				&grpc__health__v1__health_check_response__serving_status__descriptor,
				((const Grpc__Health__V1__HealthCheckResponse *)msg)->status);

			json_str(v ? v->name : "?");
		} else {
			const char *s = ((const Req *)msg)->service;

			if (strlen(s) > 64)
				printf("{\"len\":%zu}", strlen(s));
			else
				json_str(s);
		}
		return;
	}
	printf("],\"code\":%d,\"message\":", st->code);
	json_str(st->message);
	printf("}\n");
	sy_loop_stop(loop);
}

static int call(int argc, char **argv)
{
	Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	uint64_t timeout = 0;
	int gzip = 0, health = 0;
	struct sy_rpc_client *c;

	if (argc < 3)
		return 2;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--gzip"))
			gzip = 1;
		else if (!strcmp(argv[i], "--health"))
			health = 1;
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = strtoull(argv[++i], NULL, 10);
		else
			return 2;
	}
	q.service = argv[2];
	c = sy_rpc_client_new(loop, argv[0], gzip);
	printf("{\"msgs\":[");
	if (sy_rpc_client_call(c, argv[1], &q.base, health ? RESP_DESC : REQ_DESC, timeout, on_msg, NULL))
		return 1;
	sy_loop_run(loop);
	sy_rpc_client_free(c);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;

	loop = sy_loop_new();
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		rc = serve(argc - 2, argv + 2);
	else if (argc >= 2 && !strcmp(argv[1], "call"))
		rc = call(argc - 2, argv + 2);
	if (rc == 2)
		fprintf(stderr,
			"usage: peer serve LISTEN... | peer call TARGET PATH ARG [--gzip] [--timeout MS] "
			"[--health]\n");
	sy_loop_free(loop);
	return rc;
}
