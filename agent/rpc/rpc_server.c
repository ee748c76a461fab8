/* rpc_server.c — gRPC server over HTTP/2 (h2c, prior knowledge) on nghttp2, driven by
 * the agent's event loop. nghttp2 does HTTP/2 (framing, HPACK, flow control, PING,
 * SETTINGS, stream limits, protocol errors → GOAWAY); this file does gRPC on top:
 * routing by :path, the 5-byte message framing, gzip, deadlines, status trailers, and
 * the lifetime of calls.
 *
 * Lifetimes. A connection owns its calls; a call is the transport's object for one
 * stream and lives until nghttp2 closes the stream (or the connection goes). The
 * handler's view is shorter: from dispatch until it calls sy_rpc_reply/sy_rpc_finish,
 * or until its cancel callback ran (client RST_STREAM, deadline, connection closed,
 * shutdown grace over) — after either, it must drop the handle.
 *
 * I/O. Each connection is driven with nghttp2_session_mem_recv / mem_send. While the
 * socket cannot take our output we stop reading from it, so a peer that sends without
 * reading only fills its own buffers. Replies queue per call and leave through a
 * deferred data provider: HTTP/2 flow control decides the pace, and the provider is
 * resumed when a message is queued or the call ends.
 */
#include "rpc/rpc.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc/grpc_frame.h"
#include "rpc/pb_strings.h"
#include "core/log.h"
#include "rpc/rpc_listen.h"

#define MAX_LISTENERS	  8
#define MAX_CONNS	  1024
#define MAX_STREAMS	  1000	    /* per connection; nghttp2 refuses the rest */
#define STREAM_WINDOW	  (1 << 20) /* request bytes in flight per stream */
#define CONN_WINDOW	  (4 << 20) /* … and per connection */
#define MAX_HEADER_LIST	  16384
#define GOAWAY_NOTICE_MS  50 /* shutdown notice → final GOAWAY: covers requests in flight */
#define SHUTDOWN_TICK_MS  20
#define ACCEPT_BACKOFF_MS 100 /* out of file descriptors: stop accepting for a moment */
#define READ_BUDGET	  8   /* reads per wakeup, so one busy peer cannot starve others */

struct method {
	char *path;
	const ProtobufCMessageDescriptor *desc;
	sy_rpc_handler h;
	void *arg;
	int streaming;
	struct method *next;
};

struct chunk {
	uint8_t *data;
	size_t len, off;
	struct chunk *next;
};

struct conn;

struct sy_rpc_call {
	struct conn *c;
	int32_t id;

	/* Request headers, as judged while they arrive. */
	char path[256];
	unsigned path_long : 1, method_post : 1, ct_ok : 1, gzip_in : 1, accept_gzip : 1, bad_encoding : 1,
		bad_timeout : 1;
	char encoding[32]; /* an unsupported grpc-encoding, for the error message */
	uint64_t deadline; /* loop ms, 0 = none */
	uint64_t timer;

	struct sy_grpc_reader rd;
	uint8_t *req;
	size_t req_len;
	int have_req;
	const struct method *m;

	/* Progress. */
	int headers_sent; /* response HEADERS submitted (with the data provider) */
	int dispatched;	  /* the handler was called … */
	int handler_done; /* … and has finished the call: it holds no handle */
	int cancelled;	  /* … or was told to drop it through the cancel callback */
	int ending;	  /* final status decided: trailers follow the queued messages */
	int gzip_out;
	enum sy_grpc_code code;
	char msg[512];

	struct chunk *head, *tail;
	size_t pending;

	sy_rpc_cancel_cb cancel;
	void *cancel_arg;
	struct sy_rpc_call *prev, *next; /* in conn->calls */
};

struct conn {
	struct sy_rpc_server *srv;
	int fd; /* -1: a raw connection fed by sy_rpc_server_feed_raw, output discarded */
	nghttp2_session *s;
	uint8_t *out; /* what the socket did not take yet */
	size_t out_len, out_off, out_cap;
	struct sy_rpc_call *calls;
	unsigned events; /* interest registered with the loop */
	int closing;	 /* fatal: close at the next chance */
	int hold;	 /* inside mem_recv, or a batch of aborts: mem_send must wait,
			  * since it may close streams (and free calls) under our feet */
	int goaway_final;
	struct conn *prev, *next;
};

struct listener {
	struct sy_rpc_server *srv;
	int fd;
	char path[108]; /* unix socket file to remove on close, or "" */
	uint64_t backoff;
};

struct sy_rpc_server {
	struct sy_loop *loop;
	size_t max_recv, max_send;
	struct listener lis[MAX_LISTENERS];
	int nl;
	int port;
	struct method *methods;
	struct conn *conns;
	struct sy_rpc_server_stats st;
	nghttp2_session_callbacks *cbs;
	uint64_t reap_timer; /* closes connections that failed outside their I/O callback */
	int shutting_down;
	uint64_t shutdown_deadline, shutdown_timer;
	void (*done)(void *);
	void *done_arg;
};

static void conn_flush(struct conn *c);
static void conn_close(struct conn *c);
static void conn_fail(struct conn *c);

/* ---- call lifetime ----------------------------------------------------------------- */

static void drop_queue(struct sy_rpc_call *call, int keep_started)
{
	struct chunk **pp = &call->head;

	if (keep_started && *pp && (*pp)->off)
		pp = &(*pp)->next;
	while (*pp) {
		struct chunk *ch = *pp;

		*pp = ch->next;
		call->pending -= ch->len - ch->off;
		free(ch->data);
		free(ch);
	}
	call->tail = NULL;
	for (struct chunk *ch = call->head; ch; ch = ch->next)
		call->tail = ch;
}

static void call_free(struct sy_rpc_call *call)
{
	struct conn *c = call->c;

	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	sy_loop_cancel_timer(c->srv->loop, call->timer);
	drop_queue(call, 0);
	sy_grpc_reader_free(&call->rd);
	free(call->req);
	c->srv->st.calls--;
	free(call);
}

/* Tells the handler, once, that it must let go of the call. */
static void call_cancel(struct sy_rpc_call *call)
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
	while (n < len && call->head) {
		struct chunk *ch = call->head;
		size_t take = ch->len - ch->off;

		if (take > len - n)
			take = len - n;
		memcpy(buf + n, ch->data + ch->off, take);
		ch->off += take;
		n += take;
		call->pending -= take;
		if (ch->off == ch->len) {
			call->head = ch->next;
			if (!call->head)
				call->tail = NULL;
			free(ch->data);
			free(ch);
		}
	}
	if (!call->head && call->ending) {
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
	conn_flush(call->c);
}

static void end_call(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg)
{
	end_call_http(call, "200", code, msg);
}

/* Ends a call now, for a reason of the transport's (deadline, shutdown): messages not
 * yet started are dropped; one already half-sent cannot be cut without breaking the
 * framing, so then the stream is reset instead. */
static void abort_call(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg)
{
	call_cancel(call);
	if (call->ending)
		return;
	drop_queue(call, 1);
	if (call->head) {
		call->ending = 1;
		call->code = code;
		nghttp2_submit_rst_stream(call->c->s, NGHTTP2_FLAG_NONE, call->id, NGHTTP2_CANCEL);
		conn_flush(call->c);
		return;
	}
	end_call(call, code, msg);
}

static int queue(struct sy_rpc_call *call, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *body, *framed;
	size_t flen;
	struct chunk *ch;
	int e;

	if (n > call->c->srv->max_send)
		return -EMSGSIZE;
	body = malloc(n ? n : 1);
	if (!body)
		return -ENOMEM;
	protobuf_c_message_pack(m, body);
	e = sy_grpc_frame(body, n, call->gzip_out, &framed, &flen);
	free(body);
	if (e)
		return e;
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		free(framed);
		return -ENOMEM;
	}
	ch->data = framed;
	ch->len = flen;
	if (call->tail)
		call->tail->next = ch;
	else
		call->head = ch;
	call->tail = ch;
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

	if (call->ending || call->cancelled)
		return -EPIPE;
	e = queue(call, msg);
	if (e) {
		end_call(call, e == -EMSGSIZE ? SY_GRPC_RESOURCE_EXHAUSTED : SY_GRPC_INTERNAL,
			 why_not_queued(e));
		return e;
	}
	conn_flush(call->c);
	return 0;
}

int sy_rpc_reply(struct sy_rpc_call *call, const ProtobufCMessage *resp)
{
	int e;

	call->handler_done = 1;
	if (call->ending || call->cancelled)
		return -EPIPE;
	e = queue(call, resp);
	if (e)
		end_call(call, e == -EMSGSIZE ? SY_GRPC_RESOURCE_EXHAUSTED : SY_GRPC_INTERNAL,
			 why_not_queued(e));
	else
		end_call(call, SY_GRPC_OK, NULL);
	return e;
}

int sy_rpc_finish(struct sy_rpc_call *call, enum sy_grpc_code code, const char *fmt, ...)
{
	char msg[512] = "";
	va_list ap;

	call->handler_done = 1;
	if (call->ending || call->cancelled)
		return -EPIPE;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	end_call(call, code, msg);
	return 0;
}

size_t sy_rpc_call_pending(const struct sy_rpc_call *call)
{
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

static void on_deadline(struct sy_loop *l, void *arg)
{
	struct sy_rpc_call *call = arg;

	(void)l;
	call->timer = 0;
	abort_call(call, SY_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

static const struct method *find_method(const struct sy_rpc_server *srv, const char *path)
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
		end_call(call, SY_GRPC_INVALID_ARGUMENT, "request message missing");
		return;
	}
	if (sy_pb_strings_check(call->m->desc, call->req, call->req_len, field, sizeof(field))) {
		/* protobuf-c would cut the string at the NUL without a trace (pb_strings.h) */
		char why[400];

		free(call->req);
		call->req = NULL;
		snprintf(why, sizeof(why), "%s: a string must not contain a NUL byte", field);
		end_call(call, SY_GRPC_INVALID_ARGUMENT, why);
		return;
	}
	req = protobuf_c_message_unpack(call->m->desc, NULL, call->req_len, call->req);
	free(call->req); /* decoded: the bytes are of no further use */
	call->req = NULL;
	if (!req) {
		char why[300];

		snprintf(why, sizeof(why), "request is not a valid %s", call->m->desc->name);
		end_call(call, SY_GRPC_INVALID_ARGUMENT, why);
		return;
	}
	call->dispatched = 1;
	call->m->h(call, req, call->m->arg);
	protobuf_c_message_free_unpacked(req, NULL);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
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
	sy_grpc_reader_init(&call->rd, c->srv->max_recv);
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	c->srv->st.calls++;
	c->srv->st.calls_total++;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, call);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
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
	call->m = call->path_long ? NULL : find_method(srv, call->path);
	if (!call->m) {
		snprintf(why, sizeof(why), "unknown method %s",
			 call->path_long ? "(path too long)" : call->path);
		end_call(call, SY_GRPC_UNIMPLEMENTED, why);
		return;
	}
	if (call->bad_encoding) {
		snprintf(why, sizeof(why), "grpc-encoding \"%s\" is not supported (identity, gzip)",
			 call->encoding);
		end_call(call, SY_GRPC_UNIMPLEMENTED, why);
		return;
	}
	if (call->bad_timeout) {
		end_call(call, SY_GRPC_INVALID_ARGUMENT, "malformed grpc-timeout");
		return;
	}
	call->gzip_out = call->gzip_in && call->accept_gzip;
	if (call->deadline) {
		uint64_t now = sy_now_ms();

		call->timer = sy_loop_add_timer(srv->loop, call->deadline > now ? call->deadline - now : 0,
						on_deadline, call);
	}
}

static void request_message(struct sy_rpc_call *call, uint8_t *msg, size_t mlen, int comp)
{
	size_t max = call->c->srv->max_recv;
	char why[120];

	if (call->have_req) {
		free(msg);
		end_call(call, SY_GRPC_INVALID_ARGUMENT, "more than one request message");
		return;
	}
	if (comp) {
		uint8_t *plain;
		size_t plen;
		int e;

		if (!call->gzip_in) {
			free(msg);
			/* The spec's answer to a compressed flag without an encoding. */
			end_call(call, SY_GRPC_INTERNAL, "compressed message without grpc-encoding");
			return;
		}
		e = sy_gzip_decompress(msg, mlen, max, &plain, &plen);
		free(msg);
		if (e == -EMSGSIZE) {
			snprintf(why, sizeof(why), "request message larger than %zu bytes once decompressed",
				 max);
			end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, why);
			return;
		}
		if (e) {
			end_call(call, e == -ENOMEM ? SY_GRPC_RESOURCE_EXHAUSTED : SY_GRPC_INVALID_ARGUMENT,
				 e == -ENOMEM ? "out of memory" : "request message is not valid gzip");
			return;
		}
		msg = plain;
		mlen = plen;
	}
	call->req = msg;
	call->req_len = mlen;
	call->have_req = 1;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
	struct sy_rpc_call *call = nghttp2_session_get_stream_user_data(s, id);
	char why[100];

	(void)flags;
	(void)ud;
	/* Bytes of a call already answered are dropped (nghttp2 still credits the window). */
	while (call && !call->ending && call->m && len) {
		uint8_t *msg;
		size_t mlen;
		int comp, r = sy_grpc_reader_feed(&call->rd, &data, &len, &msg, &mlen, &comp);

		if (r == -EMSGSIZE) {
			snprintf(why, sizeof(why), "request message larger than %zu bytes",
				 call->c->srv->max_recv);
			end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, why);
		} else if (r < 0) {
			end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory");
		} else if (r == 1) {
			request_message(call, msg, mlen, comp);
		}
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
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
			end_call(call, SY_GRPC_INVALID_ARGUMENT, "request ends inside a message");
		else
			dispatch(call);
	}
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
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

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct sy_rpc_call *call = nghttp2_session_get_stream_user_data(s, id);

	(void)code;
	(void)ud;
	if (!call)
		return 0;
	call_cancel(call); /* RST_STREAM from the client, or a reset of ours */
	call_free(call);
	return 0;
}

/* ---- connections -------------------------------------------------------------------- */

static void conn_set_events(struct conn *c, unsigned ev)
{
	if (c->fd < 0 || ev == c->events)
		return;
	c->events = ev;
	sy_loop_mod_fd(c->srv->loop, c->fd, ev);
}

static int out_keep(struct conn *c, const uint8_t *d, size_t n)
{
	if (n > c->out_cap) {
		uint8_t *nb = realloc(c->out, n);

		if (!nb)
			return -ENOMEM;
		c->out = nb;
		c->out_cap = n;
	}
	memcpy(c->out, d, n);
	c->out_len = n;
	c->out_off = 0;
	return 0;
}

/* Writes what nghttp2 has, until it has nothing or the socket is full. */
static void conn_flush(struct conn *c)
{
	if (c->closing || c->hold)
		return;
	for (;;) {
		const uint8_t *d;
		ssize_t n, w;

		if (c->out_off < c->out_len) {
			w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
			if (w < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (w < 0) {
				conn_fail(c);
				return;
			}
			c->out_off += (size_t)w;
			continue;
		}
		n = nghttp2_session_mem_send(c->s, &d);
		if (n < 0) {
			conn_fail(c);
			return;
		}
		if (n == 0)
			break;
		if (c->fd < 0)
			continue; /* raw connection: the output goes nowhere */
		/* Straight from nghttp2's buffer; only what the socket refuses is copied. */
		w = send(c->fd, d, (size_t)n, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			conn_fail(c);
			return;
		}
		if (w < 0)
			w = 0;
		if (w < n && out_keep(c, d + w, (size_t)(n - w)) < 0) {
			conn_fail(c);
			return;
		}
	}
	/* Blocked on output: stop reading until it drains (back-pressure to the peer). */
	conn_set_events(c, c->out_off < c->out_len ? SY_EV_WRITE : SY_EV_READ);
}

static void reap(struct sy_loop *l, void *arg)
{
	struct sy_rpc_server *srv = arg;

	(void)l;
	srv->reap_timer = 0;
	for (struct conn *c = srv->conns, *n; c; c = n) {
		n = c->next;
		if (c->closing && c->fd >= 0)
			conn_close(c);
	}
}

/* A write failed (peer gone, or out of memory): the connection is closed from a fresh
 * loop turn, never from under the handler or timer that was writing. */
static void conn_fail(struct conn *c)
{
	c->closing = 1;
	if (c->fd >= 0 && !c->srv->reap_timer)
		c->srv->reap_timer = sy_loop_add_timer(c->srv->loop, 0, reap, c->srv);
}

static int conn_done(struct conn *c)
{
	return c->closing || (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s) &&
			      c->out_off >= c->out_len);
}

/* Runs bytes from the peer through nghttp2. */
static void conn_input(struct conn *c, const uint8_t *data, size_t n)
{
	ssize_t r;

	c->hold++;
	r = nghttp2_session_mem_recv(c->s, data, n);
	c->hold--;
	if (r < 0) {
		/* nghttp2 answers most protocol errors itself (GOAWAY, then want_read is
		 * 0); what reaches here is fatal for this connection only. */
		sy_debug("rpc", "connection closed: %s", nghttp2_strerror((int)r));
		c->srv->st.proto_errors++;
		if (r != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
			nghttp2_session_terminate_session(c->s, NGHTTP2_PROTOCOL_ERROR);
		conn_flush(c);
		c->closing = 1;
	}
}

static void conn_close(struct conn *c)
{
	struct sy_rpc_server *srv = c->srv;

	c->closing = 1; /* cancel callbacks below must not write to this connection */
	for (struct sy_rpc_call *call = c->calls; call; call = call->next)
		call_cancel(call);
	while (c->calls)
		call_free(c->calls);
	nghttp2_session_del(c->s);
	if (c->fd >= 0) {
		sy_loop_del_fd(srv->loop, c->fd);
		close(c->fd);
	}
	free(c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->st.conns--;
	free(c);
}

static void conn_io(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct conn *c = arg;
	uint8_t buf[16384];

	(void)l;
	if (ev & SY_EV_READ) {
		for (int i = 0; i < READ_BUDGET && !c->closing; i++) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				c->closing = 1; /* peer gone: its calls are cancelled below */
				break;
			}
			conn_input(c, buf, (size_t)n);
			if ((size_t)n < sizeof(buf))
				break;
		}
	}
	conn_flush(c);
	if (conn_done(c))
		conn_close(c);
}

static struct conn *conn_new(struct sy_rpc_server *srv, int fd)
{
	nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->fd = fd;
	if (nghttp2_session_server_new(&c->s, srv->cbs, c) != 0) {
		free(c);
		return NULL;
	}
	if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, settings,
				    sizeof(settings) / sizeof(settings[0])) ||
	    nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) ||
	    (fd >= 0 && sy_loop_add_fd(srv->loop, fd, SY_EV_READ, conn_io, c) < 0)) {
		nghttp2_session_del(c->s);
		free(c);
		return NULL;
	}
	c->events = SY_EV_READ;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->st.conns++;
	srv->st.conns_total++;
	conn_flush(c); /* our SETTINGS go first */
	return c;
}

/* ---- listeners ---------------------------------------------------------------------- */

static void on_accept(struct sy_loop *l, int lfd, unsigned ev, void *arg);

static void accept_again(struct sy_loop *l, void *arg)
{
	struct listener *li = arg;

	li->backoff = 0;
	sy_loop_mod_fd(l, li->fd, SY_EV_READ);
}

static void on_accept(struct sy_loop *l, int lfd, unsigned ev, void *arg)
{
	struct listener *li = arg;
	struct sy_rpc_server *srv = li->srv;

	(void)ev;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			/* EMFILE and friends: the socket stays readable, so without a pause the
			 * loop would spin on it. */
			sy_warn("rpc", "accept: %s; pausing for %d ms", strerror(errno), ACCEPT_BACKOFF_MS);
			sy_loop_mod_fd(l, lfd, 0);
			li->backoff = sy_loop_add_timer(l, ACCEPT_BACKOFF_MS, accept_again, li);
			return;
		}
		if (srv->shutting_down || srv->st.conns >= MAX_CONNS || !conn_new(srv, fd))
			close(fd);
	}
}

static void close_listeners(struct sy_rpc_server *srv)
{
	for (int i = 0; i < srv->nl; i++) {
		struct listener *li = &srv->lis[i];

		sy_loop_cancel_timer(srv->loop, li->backoff);
		sy_loop_del_fd(srv->loop, li->fd);
		close(li->fd);
		if (li->path[0])
			unlink(li->path);
	}
	srv->nl = 0;
}

int sy_rpc_server_listen(struct sy_rpc_server *srv, const char *spec)
{
	struct sy_rpc_addr a;
	struct listener *li;
	int fd, port = 0, e;

	if (srv->nl == MAX_LISTENERS)
		return -ENOSPC;
	if (srv->shutting_down)
		return -ESHUTDOWN;
	if ((e = sy_rpc_addr_parse(spec, &a)))
		return e;
	fd = sy_rpc_listen_on(&a, &port);
	if (fd < 0)
		return fd;
	li = &srv->lis[srv->nl];
	*li = (struct listener){.srv = srv, .fd = fd};
	snprintf(li->path, sizeof(li->path), "%s", a.path);
	if ((e = sy_loop_add_fd(srv->loop, fd, SY_EV_READ, on_accept, li)) < 0) {
		close(fd);
		if (a.path[0])
			unlink(a.path);
		return e;
	}
	if (a.ss.ss_family != AF_UNIX)
		srv->port = port;
	srv->nl++;
	return 0;
}

int sy_rpc_server_port(struct sy_rpc_server *srv)
{
	return srv->port;
}

/* ---- server ------------------------------------------------------------------------- */

struct sy_rpc_server *sy_rpc_server_new(struct sy_loop *loop, const struct sy_rpc_server_opts *opts)
{
	struct sy_rpc_server *srv = calloc(1, sizeof(*srv));
	nghttp2_session_callbacks *cbs;

	if (!srv || nghttp2_session_callbacks_new(&cbs) != 0) {
		free(srv);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	srv->cbs = cbs;
	srv->loop = loop;
	srv->max_recv = opts && opts->max_recv_msg ? opts->max_recv_msg : SY_RPC_DEFAULT_MAX_MSG;
	srv->max_send = opts && opts->max_send_msg ? opts->max_send_msg : SY_RPC_DEFAULT_MAX_MSG;
	return srv;
}

static int add_method(struct sy_rpc_server *srv, const char *path, const ProtobufCMessageDescriptor *d,
		      sy_rpc_handler h, void *arg, int streaming)
{
	struct method *m;

	if (!path || path[0] != '/' || !d || !h)
		return -EINVAL;
	if (find_method(srv, path))
		return -EEXIST;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return -ENOMEM;
	}
	m->desc = d;
	m->h = h;
	m->arg = arg;
	m->streaming = streaming;
	m->next = srv->methods;
	srv->methods = m;
	return 0;
}

int sy_rpc_server_add_unary(struct sy_rpc_server *srv, const char *path,
			    const ProtobufCMessageDescriptor *req_desc, sy_rpc_handler h, void *arg)
{
	return add_method(srv, path, req_desc, h, arg, 0);
}

int sy_rpc_server_add_stream(struct sy_rpc_server *srv, const char *path,
			     const ProtobufCMessageDescriptor *req_desc, sy_rpc_handler h, void *arg)
{
	return add_method(srv, path, req_desc, h, arg, 1);
}

/* Shutdown, every SHUTDOWN_TICK_MS: connections whose streams are all done close; at
 * the end of the grace period the calls still running are told UNAVAILABLE (their
 * handlers get the cancel callback) and every connection closes. */
static void shutdown_tick(struct sy_loop *l, void *arg)
{
	struct sy_rpc_server *srv = arg;
	int force = sy_now_ms() >= srv->shutdown_deadline;

	srv->shutdown_timer = 0;
	for (struct conn *c = srv->conns, *n; c; c = n) {
		n = c->next;
		if (!c->goaway_final) {
			/* Every stream the client opened before it saw the notice is now known:
			 * they finish, later ones are refused (grpc clients retry those). */
			nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE,
					      nghttp2_session_get_last_proc_stream_id(c->s), NGHTTP2_NO_ERROR,
					      NULL, 0);
			c->goaway_final = 1;
		}
		if (force) {
			c->hold++;
			for (struct sy_rpc_call *call = c->calls; call; call = call->next)
				abort_call(call, SY_GRPC_UNAVAILABLE, "server is shutting down");
			c->hold--;
		}
		conn_flush(c);
		if (force || conn_done(c))
			conn_close(c);
	}
	if (srv->conns) {
		srv->shutdown_timer = sy_loop_add_timer(l, SHUTDOWN_TICK_MS, shutdown_tick, srv);
		return;
	}
	if (srv->done) {
		void (*done)(void *) = srv->done;

		srv->done = NULL;
		done(srv->done_arg); /* last: it may free the server */
	}
}

void sy_rpc_server_shutdown(struct sy_rpc_server *srv, uint64_t grace_ms, void (*done)(void *), void *arg)
{
	srv->done = done;
	srv->done_arg = arg;
	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	srv->shutdown_deadline = sy_now_ms() + grace_ms;
	close_listeners(srv);
	/* The two-step GOAWAY: a notice (last stream id 2^31-1) stops new streams without
	 * racing the ones already on the wire; the final GOAWAY follows on the first tick. */
	for (struct conn *c = srv->conns; c; c = c->next) {
		nghttp2_submit_shutdown_notice(c->s);
		conn_flush(c);
	}
	srv->shutdown_timer =
		sy_loop_add_timer(srv->loop, srv->conns ? GOAWAY_NOTICE_MS : 0, shutdown_tick, srv);
}

void sy_rpc_server_free(struct sy_rpc_server *srv)
{
	if (!srv)
		return;
	sy_loop_cancel_timer(srv->loop, srv->shutdown_timer);
	sy_loop_cancel_timer(srv->loop, srv->reap_timer);
	close_listeners(srv);
	while (srv->conns)
		conn_close(srv->conns);
	while (srv->methods) {
		struct method *n = srv->methods->next;

		free(srv->methods->path);
		free(srv->methods);
		srv->methods = n;
	}
	nghttp2_session_callbacks_del(srv->cbs);
	free(srv);
}

void sy_rpc_server_get_stats(const struct sy_rpc_server *srv, struct sy_rpc_server_stats *st)
{
	*st = srv->st;
}

/* For fuzzing: the bytes arrive as one client connection would send them, in pieces
 * (so partial frames and the replies in between are exercised), with the server's
 * output generated and thrown away; then every armed deadline expires, and the
 * connection closes as if the peer hung up. No socket, no loop iteration:
 * deterministic and fast. */
int sy_rpc_server_feed_raw(struct sy_rpc_server *srv, const uint8_t *data, size_t len)
{
	struct conn *c = conn_new(srv, -1);
	size_t off = 0;

	if (!c)
		return -ENOMEM;
	while (off < len && !conn_done(c)) {
		size_t n = len - off < 997 ? len - off : 997; /* odd size: frames straddle pieces */

		conn_input(c, data + off, n);
		conn_flush(c);
		off += n;
	}
	c->hold++;
	for (struct sy_rpc_call *call = c->calls; call; call = call->next) {
		if (call->timer) {
			sy_loop_cancel_timer(srv->loop, call->timer);
			on_deadline(srv->loop, call);
		}
	}
	c->hold--;
	conn_flush(c);
	conn_close(c);
	return 0;
}
