// SPDX-License-Identifier: Apache-2.0
/* rpc_call.c — one gRPC call on the server: nghttp2's stream callbacks (headers,
 * data, close), the request's framing, decompression and decoding, dispatch to the
 * method's handler, and the response: framed messages queued for a deferred data
 * provider, then trailers (or trailers-only). See rpc_server.c for lifetimes and bounds. */
#include "rpc/rpc.h"
#include <errno.h>
#include <malloc.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include "rpc/grpc_frame.h"
#include "rpc/pb_strings.h"
#include "core/log.h"
#include "rpc/rpc_listen.h"
#include "rpc/rpc_server_int.h"

/* ---- call lifetime ----------------------------------------------------------------- */

static void drop_queue(struct sy_rpc_call *call, int keep_started)
{
	struct chunk *keep = STAILQ_FIRST(&call->chunks), *ch;

	if (!keep_started || (keep && !keep->off))
		keep = NULL;
	while ((ch = keep ? STAILQ_NEXT(keep, link) : STAILQ_FIRST(&call->chunks))) {
		if (keep)
			STAILQ_REMOVE(&call->chunks, ch, chunk, link);
		else
			STAILQ_REMOVE_HEAD(&call->chunks, link);
		call->pending -= ch->len - ch->off;
		free(ch->data);
		free(ch);
	}
}

void rpcs_call_free(struct sy_rpc_call *call)
{
	struct conn *c = call->c;

	LIST_REMOVE(call, link);
	sy_loop_cancel_timer(c->srv->loop, call->timer);
	drop_queue(call, 0);
	sy_grpc_reader_free(&call->rd);
	free(call->req);
	call->req = NULL;
	rpcs_account(call);
	c->owed += call->owed; /* the stream is gone; the connection window still owes them */
	c->srv->st.calls--;
	free(call);
}

/* Tells the handler, once, that it must let go of the call. */
void rpcs_call_cancel(struct sy_rpc_call *call)
{
	if (!call->dispatched || call->handler_done || call->cancelled)
		return;
	call->cancelled = 1;
	if (call->cancel)
		call->cancel(call, call->cancel_arg);
}

/* ---- responses ---------------------------------------------------------------------- */

#define NV(n, v)                                                                                             \
	{                                                                                                    \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE               \
	}

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct sy_rpc_call *call = src->ptr;
	size_t n = 0;

	(void)id;
	(void)ud;
	while (n < len && !STAILQ_EMPTY(&call->chunks)) {
		struct chunk *ch = STAILQ_FIRST(&call->chunks);
		size_t take = ch->len - ch->off;

		if (take > len - n)
			take = len - n;
		memcpy(buf + n, ch->data + ch->off, take);
		ch->off += take;
		n += take;
		call->pending -= take;
		if (ch->off == ch->len) {
			STAILQ_REMOVE_HEAD(&call->chunks, link);
			free(ch->data);
			free(ch);
		}
	}
	if (STAILQ_EMPTY(&call->chunks) && call->ending) {
		char code[16], msg[sizeof(call->msg) * 3 + 1];
		int fmt = snprintf(code, sizeof(code), "%d", (int)call->code);
		nghttp2_nv tr[2] = {NV("grpc-status", code)};
		size_t ntr = 1;

		(void)fmt;
		if (call->msg[0]) {
			sy_grpc_percent_encode(call->msg, msg, sizeof(msg));
			tr[ntr++] = (nghttp2_nv)NV("grpc-message", msg);
		}
		/* The stream ends with the trailers, not with this DATA frame. */
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(s, call->id, tr, ntr) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
		return (ssize_t)n;
	}
	return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

static int send_headers(struct sy_rpc_call *call)
{
	nghttp2_data_provider dp = {.source.ptr = call, .read_callback = data_read};
	nghttp2_nv hdr[] = {
		NV(":status", "200"),
		NV("content-type", "application/grpc"),
		NV("grpc-accept-encoding", "identity,gzip"),
		NV("grpc-encoding", "gzip"),
	};

	call->headers_sent = 1;
	return nghttp2_submit_response(call->c->s, call->id, hdr,
				       sizeof(hdr) / sizeof(hdr[0]) - !call->gzip_out, &dp);
}

/* A call that has sent nothing yet ends with one HEADERS frame (trailers-only). */
static void trailers_only(struct sy_rpc_call *call, const char *http, enum sy_grpc_code code, const char *msg)
{
	char cs[16], enc[sizeof(call->msg) * 3 + 1];
	int fmt = snprintf(cs, sizeof(cs), "%d", (int)code);
	nghttp2_nv hdr[5] = {
		NV(":status", http),
		NV("content-type", "application/grpc"),
		NV("grpc-accept-encoding", "identity,gzip"),
		NV("grpc-status", cs),
	};
	size_t n = 4;

	(void)fmt;
	if (msg && *msg) {
		sy_grpc_percent_encode(msg, enc, sizeof(enc));
		hdr[n++] = (nghttp2_nv)NV("grpc-message", enc);
	}
	call->headers_sent = 1;
	call->ending = 1;
	call->code = code;
	if (nghttp2_submit_response(call->c->s, call->id, hdr, n, NULL) != 0)
		nghttp2_submit_rst_stream(call->c->s, NGHTTP2_FLAG_NONE, call->id, NGHTTP2_INTERNAL_ERROR);
}

/* Decides the final status: trailers go out after what is queued. */
static void end_call_http(struct sy_rpc_call *call, const char *http, enum sy_grpc_code code, const char *msg)
{
	sy_loop_cancel_timer(call->c->srv->loop, call->timer);
	call->timer = 0;
	if (call->ending)
		return;
	if (!call->headers_sent) {
		trailers_only(call, http, code, msg);
	} else {
		call->code = code;
		snprintf(call->msg, sizeof(call->msg), "%s", msg ? msg : "");
		call->ending = 1;
		nghttp2_session_resume_data(call->c->s, call->id);
	}
	rpcs_conn_flush(call->c);
}

void rpcs_end_call(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg)
{
	end_call_http(call, "200", code, msg);
}

/* Ends a call now, for a reason of the transport's (deadline, shutdown): messages not
 * yet started are dropped; one already half-sent cannot be cut without breaking the
 * framing, so then the stream is reset instead. */
void rpcs_abort_call(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg)
{
	rpcs_call_cancel(call);
	if (call->ending)
		return;
	drop_queue(call, 1);
	if (!STAILQ_EMPTY(&call->chunks)) {
		call->ending = 1;
		call->code = code;
		nghttp2_submit_rst_stream(call->c->s, NGHTTP2_FLAG_NONE, call->id, NGHTTP2_CANCEL);
		rpcs_conn_flush(call->c);
		return;
	}
	rpcs_end_call(call, code, msg);
}

static int queue(struct sy_rpc_call *call, const ProtobufCMessage *m)
{
	uint8_t *framed;
	size_t flen;
	struct chunk *ch;
	int e;

	if ((e = sy_grpc_pack(m, call->c->srv->max_send, call->gzip_out, &framed, &flen)))
		return e;
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		free(framed);
		return -ENOMEM;
	}
	ch->data = framed;
	ch->len = flen;
	STAILQ_INSERT_TAIL(&call->chunks, ch, link);
	call->pending += flen;
	if (!call->headers_sent) {
		if (send_headers(call) != 0)
			return -EPIPE;
	} else {
		nghttp2_session_resume_data(call->c->s, call->id);
	}
	return 0;
}

static const char *why_not_queued(int e)
{
	return e == -EMSGSIZE ? "response larger than the send limit" : "out of memory";
}

int sy_rpc_send(struct sy_rpc_call *call, const ProtobufCMessage *msg)
{
	int e;

	if (call->sink)
		return rpcs_local_send(call, msg);
	if (call->ending || call->cancelled)
		return -EPIPE;
	e = queue(call, msg);
	if (e) {
		rpcs_end_call(call, e == -EMSGSIZE ? SY_GRPC_RESOURCE_EXHAUSTED : SY_GRPC_INTERNAL,
			      why_not_queued(e));
		return e;
	}
	rpcs_conn_flush(call->c);
	return 0;
}

int sy_rpc_reply(struct sy_rpc_call *call, const ProtobufCMessage *resp)
{
	int e;

	if (call->sink)
		return rpcs_local_reply(call, resp);
	call->handler_done = 1;
	if (call->ending || call->cancelled)
		return -EPIPE;
	e = queue(call, resp);
	if (e)
		rpcs_end_call(call, e == -EMSGSIZE ? SY_GRPC_RESOURCE_EXHAUSTED : SY_GRPC_INTERNAL,
			      why_not_queued(e));
	else
		rpcs_end_call(call, SY_GRPC_OK, NULL);
	return e;
}

int sy_rpc_finish(struct sy_rpc_call *call, enum sy_grpc_code code, const char *fmt, ...)
{
	char msg[512] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	if (call->sink) {
		rpcs_local_finish(call, code, msg);
		return 0;
	}
	call->handler_done = 1;
	if (call->ending || call->cancelled)
		return -EPIPE;
	rpcs_end_call(call, code, msg);
	return 0;
}

size_t sy_rpc_call_pending(const struct sy_rpc_call *call)
{
	if (call->sink)
		return call->sink->pending ? call->sink->pending(call->sink_arg) : 0;
	return call->pending;
}

void sy_rpc_call_set_cancel(struct sy_rpc_call *call, sy_rpc_cancel_cb cb, void *arg)
{
	call->cancel = cb;
	call->cancel_arg = arg;
}

int sy_rpc_call_fd(const struct sy_rpc_call *call)
{
	return call->c ? call->c->fd : -1;
}

uint64_t sy_rpc_call_deadline(const struct sy_rpc_call *call)
{
	return call->deadline;
}

/* ---- requests ----------------------------------------------------------------------- */

void rpcs_on_deadline(struct sy_loop *l, void *arg)
{
	struct sy_rpc_call *call = arg;

	(void)l;
	call->timer = 0;
	rpcs_abort_call(call, SY_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

const struct method *rpcs_find_method(const struct sy_rpc_server *srv, const char *path)
{
	for (const struct method *m = srv->methods; m; m = m->next)
		if (strcmp(m->path, path) == 0)
			return m;
	return NULL;
}

static void dispatch(struct sy_rpc_call *call)
{
	ProtobufCMessage *req;
	char field[256];

	if (!call->have_req) {
		rpcs_end_call(call, SY_GRPC_INVALID_ARGUMENT, "request message missing");
		return;
	}
	if (sy_pb_strings_check(call->m->desc, call->req, call->req_len, field, sizeof(field))) {
		/* protobuf-c would cut the string at the NUL without a trace (pb_strings.h) */
		char why[400];

		free(call->req);
		call->req = NULL;
		snprintf(why, sizeof(why), "%s: a string must not contain a NUL byte", field);
		rpcs_end_call(call, SY_GRPC_INVALID_ARGUMENT, why);
		return;
	}
	req = protobuf_c_message_unpack(call->m->desc, NULL, call->req_len, call->req);
	free(call->req); /* decoded: the bytes are of no further use */
	call->req = NULL;
	rpcs_account(call);
	if (!req) {
		char why[300];

		snprintf(why, sizeof(why), "request is not a valid %s", call->m->desc->name);
		rpcs_end_call(call, SY_GRPC_INVALID_ARGUMENT, why);
		return;
	}
	call->dispatched = 1;
	call->m->h(call, req, call->m->arg);
	protobuf_c_message_free_unpacked(req, NULL);
}

int rpcs_on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct conn *c = ud;
	struct sy_rpc_call *call;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	call = calloc(1, sizeof(*call));
	if (!call)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* refuses this stream only */
	call->c = c;
	call->id = f->hd.stream_id;
	STAILQ_INIT(&call->chunks);
	sy_grpc_reader_init(&call->rd, c->srv->max_recv);
	LIST_INSERT_HEAD(&c->calls, call, link);
	c->srv->st.calls++;
	c->srv->st.calls_total++;
	call->started = sy_now_ms();
	if (!c->srv->sweep_timer && c->fd >= 0)
		c->srv->sweep_timer = sy_loop_add_timer(c->srv->loop, SWEEP_MS, rpcs_sweep, c->srv);
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, call);
	return 0;
}

int rpcs_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		   const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct sy_rpc_call *call = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	const char *v = (const char *)value;

	(void)flags;
	(void)ud;
	if (!call || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers of the request carry nothing we use */
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
	if (IS(":path")) {
		call->path_long = vlen >= sizeof(call->path);
		if (!call->path_long) {
			memcpy(call->path, value, vlen);
			call->path[vlen] = '\0';
		}
	} else if (IS(":method")) {
		call->method_post = vlen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (IS("content-type")) {
		call->ct_ok = sy_grpc_content_type_ok(v, vlen);
	} else if (IS("grpc-encoding")) {
		call->gzip_in = vlen == 4 && memcmp(value, "gzip", 4) == 0;
		if (!call->gzip_in && !(vlen == 8 && memcmp(value, "identity", 8) == 0)) {
			call->bad_encoding = 1;
			snprintf(call->encoding, sizeof(call->encoding), "%.*s", (int)(vlen < 31 ? vlen : 31),
				 v);
		}
	} else if (IS("grpc-accept-encoding")) {
		call->accept_gzip = sy_grpc_list_has(v, vlen, "gzip");
	} else if (IS("grpc-timeout")) {
		int64_t ms = sy_grpc_timeout_parse(v, vlen);

		call->bad_timeout = ms < 0;
		if (ms >= 0)
			call->deadline = sy_now_ms() + (uint64_t)ms;
	}
#undef IS
	return 0;
}

/* The request's headers are complete: route it, or answer at once. */
static void headers_done(struct sy_rpc_call *call)
{
	struct sy_rpc_server *srv = call->c->srv;
	char why[400];

	if (!call->method_post) {
		end_call_http(call, "405", SY_GRPC_UNIMPLEMENTED, "gRPC requests use POST");
		return;
	}
	if (!call->ct_ok) {
		end_call_http(call, "415", SY_GRPC_UNKNOWN, "content-type must be application/grpc");
		return;
	}
	call->m = call->path_long ? NULL : rpcs_find_method(srv, call->path);
	if (!call->m) {
		snprintf(why, sizeof(why), "unknown method %s",
			 call->path_long ? "(path too long)" : call->path);
		rpcs_end_call(call, SY_GRPC_UNIMPLEMENTED, why);
		return;
	}
	if (call->c->readonly && !call->m->readonly_ok) {
		/* refused on its headers: no byte of the request is read, nothing changes */
		srv->st.readonly_denied++;
		snprintf(why, sizeof(why), "%s: the read-only identity %s may not call this method",
			 call->m->path, sy_tls_conn_peer(call->c->tls));
		rpcs_end_call(call, SY_GRPC_PERMISSION_DENIED, why);
		return;
	}
	if (call->bad_encoding) {
		snprintf(why, sizeof(why), "grpc-encoding \"%s\" is not supported (identity, gzip)",
			 call->encoding);
		rpcs_end_call(call, SY_GRPC_UNIMPLEMENTED, why);
		return;
	}
	if (call->bad_timeout) {
		rpcs_end_call(call, SY_GRPC_INVALID_ARGUMENT, "malformed grpc-timeout");
		return;
	}
	call->gzip_out = call->gzip_in && call->accept_gzip;
	if (call->deadline) {
		uint64_t now = sy_now_ms();

		call->timer = sy_loop_add_timer(srv->loop, call->deadline > now ? call->deadline - now : 0,
						rpcs_on_deadline, call);
	}
}

static void request_message(struct sy_rpc_call *call, uint8_t *msg, size_t mlen, int comp)
{
	size_t max = call->c->srv->max_recv;
	char why[120];
	int e = 0;

	if (call->have_req) {
		free(msg);
		rpcs_end_call(call, SY_GRPC_INVALID_ARGUMENT, "more than one request message");
		return;
	}
	if (comp && !call->gzip_in) {
		free(msg);
		/* The spec's answer to a compressed flag without an encoding. */
		rpcs_end_call(call, SY_GRPC_INTERNAL, "compressed message without grpc-encoding");
		return;
	}
	if (comp && (e = sy_grpc_gunzip(&msg, &mlen, max)) == -EMSGSIZE) {
		snprintf(why, sizeof(why), "request message larger than %zu bytes once decompressed", max);
		rpcs_end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, why);
		return;
	}
	if (comp && e) {
		rpcs_end_call(call, e == -ENOMEM ? SY_GRPC_RESOURCE_EXHAUSTED : SY_GRPC_INVALID_ARGUMENT,
			      e == -ENOMEM ? "out of memory" : "request message is not valid gzip");
		return;
	}
	call->req = msg;
	call->req_len = mlen;
	call->have_req = 1;
}

int rpcs_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
	struct sy_rpc_call *call = nghttp2_session_get_stream_user_data(s, id);
	struct conn *c = ud;
	size_t n = len;
	char why[100];

	(void)flags;
	/* Bytes of a call already answered are dropped (and credited back like the rest). */
	while (call && !call->ending && call->m && len) {
		uint8_t *msg;
		size_t mlen;
		int comp, r = sy_grpc_reader_feed(&call->rd, &data, &len, &msg, &mlen, &comp);

		if (r == -EMSGSIZE) {
			snprintf(why, sizeof(why), "request message larger than %zu bytes",
				 call->c->srv->max_recv);
			rpcs_end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, why);
		} else if (r < 0) {
			rpcs_end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory");
		} else if (r == 1) {
			request_message(call, msg, mlen, comp);
		}
	}
	if (call)
		rpcs_account(call);
	rpcs_credit(c, call, id, n);
	return 0;
}

int rpcs_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sy_rpc_call *call;

	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	call = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!call)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		headers_done(call);
	if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && !call->ending && !call->dispatched) {
		if (!sy_grpc_reader_idle(&call->rd))
			rpcs_end_call(call, SY_GRPC_INVALID_ARGUMENT, "request ends inside a message");
		else
			dispatch(call);
	}
	return 0;
}

int rpcs_on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	(void)ud;
	/* Our side of the stream is over while the client's is not (an early error, a
	 * deadline): what it would still send is of no use, so reset — only now, since
	 * a reset before the trailers would lose them. */
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    nghttp2_session_get_stream_remote_close(s, f->hd.stream_id) == 0)
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

int rpcs_on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct sy_rpc_call *call = nghttp2_session_get_stream_user_data(s, id);

	(void)code;
	(void)ud;
	if (!call)
		return 0;
	rpcs_call_cancel(call); /* RST_STREAM from the client, or a reset of ours */
	rpcs_call_free(call);
	return 0;
}
