// SPDX-License-Identifier: Apache-2.0
/* rpc_local.c — in-process calls (rpc.h: sy_rpc_server_invoke): a registered handler run
 * without a connection, its messages and final status handed to a sink. The HTTP door
 * (api/http*.c) is their user: one implementation of each method, two transports.
 * Loop thread only, like every handler. */
#include <errno.h>
#include <stdlib.h>

#include "rpc/rpc_server_int.h"

static void local_end(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg)
{
	if (!call->cancelled)
		call->sink->end(call->sink_arg, code, msg ? msg : "");
	free(call);
}

int rpcs_local_send(struct sy_rpc_call *call, const ProtobufCMessage *msg)
{
	return call->cancelled ? -EPIPE : call->sink->msg(call->sink_arg, msg);
}

int rpcs_local_reply(struct sy_rpc_call *call, const ProtobufCMessage *resp)
{
	int e = call->cancelled ? -EPIPE : call->sink->msg(call->sink_arg, resp);

	local_end(call, e ? SY_GRPC_INTERNAL : SY_GRPC_OK, e ? "response not delivered" : NULL);
	return e;
}

void rpcs_local_finish(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg)
{
	local_end(call, code, msg);
}

int sy_rpc_server_invoke(struct sy_rpc_server *srv, const char *path, const ProtobufCMessage *req,
			 const struct sy_rpc_sink *sink, void *arg, struct sy_rpc_call **out)
{
	const struct method *m = rpcs_find_method(srv, path);
	struct sy_rpc_call *call;

	*out = NULL;
	if (!m || m->desc != req->descriptor)
		return -ENOENT;
	call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	call->sink = sink;
	call->sink_arg = arg;
	call->m = m;
	call->dispatched = 1;
	if (m->streaming)
		*out = call; /* valid until sink->end: the caller may cancel it */
	m->h(call, req, m->arg);
	return 0;
}

void sy_rpc_local_cancel(struct sy_rpc_call *call)
{
	call->cancelled = 1;
	if (!call->cancel)
		return; /* a handler without a cancel callback finishes the call itself */
	call->cancel(call, call->cancel_arg);
	free(call);
}
