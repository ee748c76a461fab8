// SPDX-License-Identifier: Apache-2.0
/* fuzz_grpc_server.c — bytes from a hostile client into our gRPC server: one input is
 * everything a client sends on one connection, fed through sy_rpc_server_feed_raw
 * (nghttp2's server session, our framing, routing, gzip, request decoding, handlers,
 * replies under flow control, cancellation when the connection ends).
 *
 * Registered: grpc.health.v1 (Check, Watch) and a few methods that reach the paths a
 * real service would: an echo, a big reply (flow control deferral), a stream of
 * messages, a call held until cancelled, one that flips health (Watch updates). After
 * every input the server must hold no connection, no call, and no handler may still
 * hold a call: nothing leaks, nothing dangles. Seeds: tests/fuzz/gen_grpc_seeds.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/control_plane.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc/rpc.h"

typedef Grpc__Health__V1__HealthCheckRequest Req;
#define REQ_DESC (&grpc__health__v1__health_check_request__descriptor)

static int held; /* calls a handler keeps; the transport must cancel each one */
static bool serving = true;
static struct sy_rpc_server *srv;

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
	size_t n = strtoul(((const Req *)req)->service, NULL, 10) % 100000;
	char *s = malloc(n + 1);

	(void)arg;
	memset(s, 'b', n);
	s[n] = '\0';
	reply_text(call, s);
	free(s);
}

static void stream(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	Req r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	unsigned n = 0, size = 0;
	char buf[4097];

	(void)arg;
	sscanf(((const Req *)req)->service, "%u %u", &n, &size);
	n %= 17;
	size %= 4097;
	memset(buf, 's', size);
	buf[size] = '\0';
	r.service = buf;
	for (unsigned i = 0; i < n; i++)
		if (sy_rpc_send(call, &r.base) < 0)
			break;
	sy_rpc_finish(call, n & 1 ? SY_GRPC_OK : SY_GRPC_ABORTED, "after %u messages", n);
}

static void unhold(struct sy_rpc_call *call, void *arg)
{
	(void)call;
	(void)arg;
	held--;
}

static void hold(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	(void)req;
	(void)arg;
	held++;
	sy_rpc_call_set_cancel(call, unhold, NULL);
}

static void flip(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	(void)req;
	(void)arg;
	serving = !serving;
	sy_health_svc_set_serving(srv, serving);
	reply_text(call, serving ? "serving" : "not serving");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sy_loop *loop;
	struct sy_rpc_server_stats st;

	if (!loop) {
		struct sy_rpc_server_opts o = {.max_recv_msg = 64 << 10, .max_send_msg = 256 << 10};

		loop = sy_loop_new();
		srv = sy_rpc_server_new(loop, &o);
		if (!srv || sy_health_svc_register(srv) ||
		    sy_rpc_server_add_unary(srv, "/fuzz.F/Echo", REQ_DESC, echo, NULL) ||
		    sy_rpc_server_add_unary(srv, "/fuzz.F/Big", REQ_DESC, big, NULL) ||
		    sy_rpc_server_add_stream(srv, "/fuzz.F/Stream", REQ_DESC, stream, NULL) ||
		    sy_rpc_server_add_unary(srv, "/fuzz.F/Hold", REQ_DESC, hold, NULL) ||
		    sy_rpc_server_add_unary(srv, "/fuzz.F/Flip", REQ_DESC, flip, NULL))
			abort();
	}
	if (sy_rpc_server_feed_raw(srv, data, size) < 0)
		abort();
	sy_rpc_server_get_stats(srv, &st);
	if (st.conns || st.calls || st.req_buffered || held) {
		fprintf(stderr, "after the connection: %zu conns, %zu calls, %zu bytes buffered, %d held\n",
			st.conns, st.calls, st.req_buffered, held);
		abort();
	}
	return 0;
}
