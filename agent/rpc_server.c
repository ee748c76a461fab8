/* rpc_server.c — gRPC server over HTTP/2 (h2c, prior knowledge) on nghttp2, driven by
 * the event loop. nghttp2 does HTTP/2 (framing, HPACK, flow control, PING, SETTINGS);
 * this file does gRPC on top: routing by :path, the message framing, deadlines,
 * status trailers, gzip, and the lifetime of calls.
 *
 * A call's handle lives until the handler finishes it (sy_rpc_reply / sy_rpc_finish)
 * or its cancel callback has run (RST_STREAM, deadline, connection gone); the stream
 * itself lives until nghttp2 closes it. Responses queue in memory and go out through
 * a deferred data provider, so HTTP/2 flow control decides the pace.
 */
#include "rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "grpc_frame.h"
#include "log.h"

#define MAX_LISTENERS 8
#define MAX_CONNS 1024
#define CONN_OUTBUF_HIGH (1u << 20)

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
	char path[256];
	int content_type_ok;
	int method_post;
	int gzip_in;     /* request messages are gzip (grpc-encoding) */
	int bad_encoding;
	int gzip_out;    /* compress responses */
	uint64_t deadline; /* loop ms */
	uint64_t timer;
	struct sy_grpc_reader rd;
	uint8_t *req;
	size_t req_len;
	int have_req;
	struct method *m;
	int headers_sent;
	int handler_done;  /* finished by the handler: it holds no reference */
	int dispatched;
	int cancelled;     /* cancel callback ran: the handler holds no reference */
	int closed;        /* nghttp2 closed the stream */
	int ending;        /* status set; trailers go after the queue */
	int rst_after;     /* reset the stream once our END_STREAM is out: the request's
			    * remaining bytes are of no use */
	enum sy_grpc_code code;
	char msg[512];
	struct chunk *head, *tail;
	size_t pending;
	sy_rpc_cancel_cb cancel;
	void *cancel_arg;
	struct sy_rpc_call *next; /* in conn->calls */
};

struct conn {
	struct sy_rpc_server *srv;
	int fd;
	nghttp2_session *s;
	uint8_t *out;
	size_t out_len, out_off;
	struct sy_rpc_call *calls;
	int closing;
	int in_recv; /* inside nghttp2_session_mem_recv: sending must wait until it returns */
	struct conn *next;
};

struct sy_rpc_server {
	struct sy_loop *loop;
	size_t max_recv, max_send;
	int lfd[MAX_LISTENERS];
	char lpath[MAX_LISTENERS][108];
	int nl;
	int port;
	struct method *methods;
	struct conn *conns;
	int nconns;
	int shutting_down;
	uint64_t shutdown_deadline;
	void (*done)(void *);
	void *done_arg;
};

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);

/* ---- call lifetime ----------------------------------------------------------------- */

static void call_free(struct sy_rpc_call *call)
{
	struct conn *c = call->c;
	struct sy_rpc_call **pp;

	for (pp = &c->calls; *pp; pp = &(*pp)->next) {
		if (*pp == call) {
			*pp = call->next;
			break;
		}
	}
	sy_loop_cancel_timer(c->srv->loop, call->timer);
	while (call->head) {
		struct chunk *n = call->head->next;

		free(call->head->data);
		free(call->head);
		call->head = n;
	}
	sy_grpc_reader_free(&call->rd);
	free(call->req);
	free(call);
}

/* Runs the cancel callback once, if the handler still holds the call. */
static void call_cancel(struct sy_rpc_call *call)
{
	if (call->dispatched && !call->handler_done && !call->cancelled) {
		call->cancelled = 1;
		if (call->cancel)
			call->cancel(call, call->cancel_arg);
	}
	call->cancelled = 1;
}

/* ---- responses ---------------------------------------------------------------------- */

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct sy_rpc_call *call = src->ptr;
	size_t n = 0;

	(void)s;
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
		nghttp2_nv tr[2];
		size_t ntr = 1;

		snprintf(code, sizeof(code), "%d", call->code);
		tr[0] = (nghttp2_nv){(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE};
		if (call->msg[0]) {
			sy_grpc_percent_encode(call->msg, msg, sizeof(msg));
			tr[1] = (nghttp2_nv){(uint8_t *)"grpc-message", (uint8_t *)msg, 12, strlen(msg),
					     NGHTTP2_NV_FLAG_NONE};
			ntr = 2;
		}
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		nghttp2_submit_trailer(call->c->s, call->id, tr, ntr);
		return (ssize_t)n;
	}
	if (n == 0)
		return NGHTTP2_ERR_DEFERRED;
	return (ssize_t)n;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

static int send_headers(struct sy_rpc_call *call)
{
	nghttp2_data_provider dp = {.source.ptr = call, .read_callback = data_read};
	nghttp2_nv hdr[] = {
		NV(":status", "200"),
		NV("content-type", "application/grpc"),
		NV("grpc-accept-encoding", "identity,gzip"),
		NV("grpc-encoding", call->gzip_out ? "gzip" : "identity"),
	};

	call->headers_sent = 1;
	return nghttp2_submit_response(call->c->s, call->id, hdr, sizeof(hdr) / sizeof(hdr[0]), &dp);
}

/* Ends a call that has sent nothing yet with a trailers-only response. */
static void trailers_only(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg, const char *http)
{
	char cs[16], enc[sizeof(call->msg) * 3 + 1];
	nghttp2_nv hdr[4] = {
		NV(":status", http),
		NV("content-type", "application/grpc"),
	};
	size_t n = 2;

	snprintf(cs, sizeof(cs), "%d", code);
	hdr[n++] = (nghttp2_nv)NV("grpc-status", cs);
	if (msg && *msg) {
		sy_grpc_percent_encode(msg, enc, sizeof(enc));
		hdr[n++] = (nghttp2_nv)NV("grpc-message", enc);
	}
	call->headers_sent = 1;
	call->ending = 1;
	nghttp2_submit_response(call->c->s, call->id, hdr, n, NULL);
}

static void end_call(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg)
{
	sy_loop_cancel_timer(call->c->srv->loop, call->timer);
	call->timer = 0;
	if (call->ending || call->closed)
		return;
	if (!call->headers_sent) {
		trailers_only(call, code, msg, "200");
	} else {
		call->code = code;
		snprintf(call->msg, sizeof(call->msg), "%s", msg ? msg : "");
		call->ending = 1;
		nghttp2_session_resume_data(call->c->s, call->id);
	}
	/* Whatever the client still sends is of no use now; resetting before our response
	 * is out would drop the response, so wait for it (on_frame_send). */
	if (!call->have_req || code != SY_GRPC_OK)
		call->rst_after = 1;
	conn_flush(call->c);
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
	if (!call->headers_sent)
		send_headers(call);
	else
		nghttp2_session_resume_data(call->c->s, call->id);
	return 0;
}

int sy_rpc_send(struct sy_rpc_call *call, const ProtobufCMessage *msg)
{
	int e;

	if (call->ending || call->closed)
		return -EPIPE;
	e = queue(call, msg);
	if (e == -EMSGSIZE) {
		end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, "response larger than the send limit");
		return e;
	}
	conn_flush(call->c);
	return e;
}

int sy_rpc_reply(struct sy_rpc_call *call, const ProtobufCMessage *resp)
{
	int e = queue(call, resp);

	call->handler_done = 1;
	if (e)
		end_call(call, e == -EMSGSIZE ? SY_GRPC_RESOURCE_EXHAUSTED : SY_GRPC_INTERNAL,
			 e == -EMSGSIZE ? "response larger than the send limit" : "out of memory");
	else
		end_call(call, SY_GRPC_OK, NULL);
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
	call->handler_done = 1;
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
	call_cancel(call);
	end_call(call, SY_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

static struct method *find_method(struct sy_rpc_server *srv, const char *path)
{
	for (struct method *m = srv->methods; m; m = m->next)
		if (strcmp(m->path, path) == 0)
			return m;
	return NULL;
}

static void dispatch(struct sy_rpc_call *call)
{
	ProtobufCMessage *req;

	if (!call->have_req) {
		end_call(call, SY_GRPC_INVALID_ARGUMENT, "request message missing");
		return;
	}
	req = protobuf_c_message_unpack(call->m->desc, NULL, call->req_len, call->req);
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
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	call->c = c;
	call->id = f->hd.stream_id;
	call->code = SY_GRPC_OK;
	sy_grpc_reader_init(&call->rd, c->srv->max_recv);
	call->next = c->calls;
	c->calls = call;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, call);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct sy_rpc_call *call = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	(void)flags;
	(void)ud;
	if (!call || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
	if (IS(":path")) {
		size_t n = vlen < sizeof(call->path) - 1 ? vlen : sizeof(call->path) - 1;

		memcpy(call->path, value, n);
		call->path[n] = '\0';
	} else if (IS(":method")) {
		call->method_post = vlen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (IS("content-type")) {
		call->content_type_ok = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
					(vlen == 16 || value[16] == '+' || value[16] == ';');
	} else if (IS("grpc-encoding")) {
		if (vlen == 4 && memcmp(value, "gzip", 4) == 0)
			call->gzip_in = call->gzip_out = 1;
		else if (!(vlen == 8 && memcmp(value, "identity", 8) == 0))
			call->bad_encoding = 1;
	} else if (IS("grpc-timeout")) {
		int64_t ms = sy_grpc_timeout_parse((const char *)value, vlen);

		if (ms >= 0)
			call->deadline = sy_now_ms() + (uint64_t)ms;
	}
#undef IS
	return 0;
}

static void headers_done(struct sy_rpc_call *call)
{
	struct sy_rpc_server *srv = call->c->srv;

	if (!call->method_post || !call->content_type_ok) {
		trailers_only(call, SY_GRPC_UNKNOWN, "content-type must be application/grpc", "415");
		call->rst_after = 1;
		return;
	}
	call->m = find_method(srv, call->path);
	if (!call->m) {
		end_call(call, SY_GRPC_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (call->bad_encoding) {
		end_call(call, SY_GRPC_UNIMPLEMENTED, "unsupported grpc-encoding (identity, gzip)");
		return;
	}
	if (call->deadline) {
		uint64_t now = sy_now_ms();

		call->timer = sy_loop_add_timer(srv->loop, call->deadline > now ? call->deadline - now : 0, on_deadline,
						call);
	}
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

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
	struct sy_rpc_call *call = nghttp2_session_get_stream_user_data(s, id);

	(void)flags;
	(void)ud;
	if (!call || call->ending || !call->m)
		return 0;
	while (len) {
		uint8_t *msg;
		size_t mlen;
		int comp, r = sy_grpc_reader_feed(&call->rd, &data, &len, &msg, &mlen, &comp);

		if (r == -EMSGSIZE) {
			char why[100];

			snprintf(why, sizeof(why), "request message larger than %zu bytes", call->c->srv->max_recv);
			end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, why);
			return 0;
		}
		if (r < 0) {
			end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, "out of memory");
			return 0;
		}
		if (r == 0)
			break;
		if (call->have_req) {
			free(msg);
			end_call(call, SY_GRPC_INVALID_ARGUMENT, "more than one request message");
			return 0;
		}
		if (comp) {
			uint8_t *plain;
			size_t plen;
			int e;

			if (!call->gzip_in) {
				free(msg);
				end_call(call, SY_GRPC_INTERNAL, "compressed message without grpc-encoding");
				return 0;
			}
			e = sy_gzip_decompress(msg, mlen, call->c->srv->max_recv, &plain, &plen);
			free(msg);
			if (e) {
				end_call(call, e == -EMSGSIZE ? SY_GRPC_RESOURCE_EXHAUSTED : SY_GRPC_INVALID_ARGUMENT,
					 e == -EMSGSIZE ? "request message larger than the limit once decompressed"
							: "request message is not valid gzip");
				return 0;
			}
			msg = plain;
			mlen = plen;
		}
		call->req = msg;
		call->req_len = mlen;
		call->have_req = 1;
	}
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sy_rpc_call *call;

	(void)ud;
	if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	call = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (call && call->rst_after) {
		call->rst_after = 0;
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
	}
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct sy_rpc_call *call = nghttp2_session_get_stream_user_data(s, id);

	(void)code;
	(void)ud;
	if (!call)
		return 0;
	call->closed = 1;
	call_cancel(call);
	call_free(call);
	return 0;
}

/* ---- connections -------------------------------------------------------------------- */

static void conn_io(struct sy_loop *l, int fd, unsigned ev, void *arg);

static void conn_flush(struct conn *c)
{
	if (c->closing || c->in_recv)
		return;
	for (;;) {
		if (c->out_off < c->out_len) {
			ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				c->closing = 1;
				return;
			}
			c->out_off += (size_t)w;
			continue;
		}
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->s, &data);

		if (n < 0) {
			c->closing = 1;
			return;
		}
		if (n == 0)
			break;
		if ((size_t)n > 0) {
			uint8_t *nb = realloc(c->out, (size_t)n);

			if (!nb) {
				c->closing = 1;
				return;
			}
			c->out = nb;
			memcpy(c->out, data, (size_t)n);
			c->out_len = (size_t)n;
			c->out_off = 0;
		}
	}
	sy_loop_mod_fd(c->srv->loop, c->fd, SY_EV_READ | (c->out_off < c->out_len ? SY_EV_WRITE : 0));
}

static int conn_done(struct conn *c)
{
	return c->closing ||
	       (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s) && c->out_off >= c->out_len);
}

static void conn_close(struct conn *c)
{
	struct sy_rpc_server *srv = c->srv;
	struct conn **pp;

	/* Handlers still holding calls learn the connection is gone. */
	for (struct sy_rpc_call *call = c->calls; call; call = call->next)
		call_cancel(call);
	while (c->calls) {
		c->calls->closed = 1;
		call_free(c->calls);
	}
	nghttp2_session_del(c->s);
	sy_loop_del_fd(srv->loop, c->fd);
	close(c->fd);
	free(c->out);
	for (pp = &srv->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	srv->nconns--;
	free(c);
}

static void conn_io(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct conn *c = arg;
	uint8_t buf[16384];

	(void)l;
	if (ev & SY_EV_READ) {
		for (;;) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				c->closing = 1;
				break;
			}
			c->in_recv = 1;
			ssize_t r = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
			c->in_recv = 0;

			if (r < 0) {
				/* Bad bytes: say GOAWAY with the reason, then close this one connection. */
				sy_debug("rpc", "connection: %s", nghttp2_strerror((int)r));
				nghttp2_session_terminate_session(c->s, NGHTTP2_PROTOCOL_ERROR);
				conn_flush(c);
				c->closing = 1;
				break;
			}
			if ((size_t)n < sizeof(buf))
				break;
		}
	}
	conn_flush(c);
	if (conn_done(c))
		conn_close(c);
}

static int conn_new(struct sy_rpc_server *srv, int fd)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384},
	};
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		return -ENOMEM;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = srv;
	c->fd = fd;
	if (nghttp2_session_callbacks_new(&cbs) != 0) {
		free(c);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	if (nghttp2_session_server_new(&c->s, cbs, c) != 0) {
		nghttp2_session_callbacks_del(cbs);
		free(c);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_del(cbs);
	nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0]));
	if (sy_loop_add_fd(srv->loop, fd, SY_EV_READ, conn_io, c) < 0) {
		nghttp2_session_del(c->s);
		free(c);
		return -ENOMEM;
	}
	c->next = srv->conns;
	srv->conns = c;
	srv->nconns++;
	conn_flush(c);
	return 0;
}

static void on_accept(struct sy_loop *l, int lfd, unsigned ev, void *arg)
{
	struct sy_rpc_server *srv = arg;

	(void)l;
	(void)ev;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (srv->shutting_down || srv->nconns >= MAX_CONNS || conn_new(srv, fd) < 0)
			close(fd);
	}
}

/* ---- server ------------------------------------------------------------------------- */

struct sy_rpc_server *sy_rpc_server_new(struct sy_loop *loop, const struct sy_rpc_server_opts *opts)
{
	struct sy_rpc_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->loop = loop;
	srv->max_recv = opts && opts->max_recv_msg ? opts->max_recv_msg : SY_RPC_DEFAULT_MAX_MSG;
	srv->max_send = opts && opts->max_send_msg ? opts->max_send_msg : SY_RPC_DEFAULT_MAX_MSG;
	return srv;
}

static int mkdir_parent(const char *path)
{
	char d[108];
	char *slash;

	snprintf(d, sizeof(d), "%s", path);
	slash = strrchr(d, '/');
	if (!slash || slash == d)
		return 0;
	*slash = '\0';
	for (char *p = d + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(d, 0755);
			*p = '/';
		}
	}
	if (mkdir(d, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int listen_unix(struct sy_rpc_server *srv, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if ((e = mkdir_parent(path)))
		return e;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST; /* never remove something that is not a socket */
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Created 0600 from the first instant: no window where others could connect. */
	old = umask(0177);
	e = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (e < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	srv->lfd[srv->nl] = fd;
	snprintf(srv->lpath[srv->nl], sizeof(srv->lpath[0]), "%s", path);
	return fd;
}

static int listen_tcp(struct sy_rpc_server *srv, const char *spec)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	char host[64];
	const char *colon;
	int fd, one = 1, port;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		colon = close + 1;
		a->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		a->sin_family = AF_INET;
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		sl = sizeof(*a);
	}
	char *end;
	long p = strtol(colon + 1, &end, 10);

	if (*end || p < 0 || p > 65535 || end == colon + 1)
		return -EINVAL;
	port = (int)p;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons((unsigned short)port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((unsigned short)port);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	srv->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	srv->lfd[srv->nl] = fd;
	srv->lpath[srv->nl][0] = '\0';
	return fd;
}

int sy_rpc_server_listen(struct sy_rpc_server *srv, const char *spec)
{
	int fd;

	if (srv->nl == MAX_LISTENERS)
		return -ENOSPC;
	if (strncmp(spec, "unix://", 7) == 0)
		fd = listen_unix(srv, spec + 7);
	else if (strncmp(spec, "unix:", 5) == 0)
		fd = listen_unix(srv, spec + 5);
	else
		fd = listen_tcp(srv, spec);
	if (fd < 0)
		return fd;
	if (sy_loop_add_fd(srv->loop, fd, SY_EV_READ, on_accept, srv) < 0) {
		close(fd);
		return -ENOMEM;
	}
	srv->nl++;
	return 0;
}

int sy_rpc_server_port(struct sy_rpc_server *srv)
{
	return srv->port;
}

static int add_method(struct sy_rpc_server *srv, const char *path, const ProtobufCMessageDescriptor *d,
		      sy_rpc_handler h, void *arg, int streaming)
{
	struct method *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->path = strdup(path);
	if (!m->path) {
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

int sy_rpc_server_add_unary(struct sy_rpc_server *srv, const char *path, const ProtobufCMessageDescriptor *req_desc,
			    sy_rpc_handler h, void *arg)
{
	return add_method(srv, path, req_desc, h, arg, 0);
}

int sy_rpc_server_add_stream(struct sy_rpc_server *srv, const char *path, const ProtobufCMessageDescriptor *req_desc,
			     sy_rpc_handler h, void *arg)
{
	return add_method(srv, path, req_desc, h, arg, 1);
}

static void close_listeners(struct sy_rpc_server *srv)
{
	for (int i = 0; i < srv->nl; i++) {
		sy_loop_del_fd(srv->loop, srv->lfd[i]);
		close(srv->lfd[i]);
		if (srv->lpath[i][0])
			unlink(srv->lpath[i]);
	}
	srv->nl = 0;
}

static void shutdown_tick(struct sy_loop *l, void *arg)
{
	struct sy_rpc_server *srv = arg;
	int force = sy_now_ms() >= srv->shutdown_deadline;

	for (struct conn *c = srv->conns, *n; c; c = n) {
		n = c->next;
		if (!c->calls || force)
			conn_close(c);
	}
	if (srv->conns) {
		sy_loop_add_timer(l, 20, shutdown_tick, srv);
		return;
	}
	if (srv->done)
		srv->done(srv->done_arg);
}

void sy_rpc_server_shutdown(struct sy_rpc_server *srv, uint64_t grace_ms, void (*done)(void *), void *arg)
{
	srv->shutting_down = 1;
	srv->done = done;
	srv->done_arg = arg;
	srv->shutdown_deadline = sy_now_ms() + grace_ms;
	close_listeners(srv);
	for (struct conn *c = srv->conns; c; c = c->next) {
		nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->s),
				      NGHTTP2_NO_ERROR, NULL, 0);
		conn_flush(c);
	}
	sy_loop_add_timer(srv->loop, 0, shutdown_tick, srv);
}

void sy_rpc_server_free(struct sy_rpc_server *srv)
{
	if (!srv)
		return;
	close_listeners(srv);
	while (srv->conns)
		conn_close(srv->conns);
	while (srv->methods) {
		struct method *n = srv->methods->next;

		free(srv->methods->path);
		free(srv->methods);
		srv->methods = n;
	}
	free(srv);
}

/* For fuzzing: feeds bytes into a server session as one connection would (through a
 * socketpair, so the real read path runs), then lets the connection finish. */
int sy_rpc_server_feed_raw(struct sy_rpc_server *srv, const uint8_t *data, size_t len)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	if (len > 200000)
		len = 200000; /* the socket buffer bounds what one feed can carry */
	if (write(sv[1], data, len) < 0) {
		/* a short write only shortens the input */
	}
	shutdown(sv[1], SHUT_WR);
	if (conn_new(srv, sv[0]) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	for (int i = 0; i < 64 && srv->conns && srv->conns->fd == sv[0]; i++)
		conn_io(srv->loop, sv[0], SY_EV_READ, srv->conns);
	while (srv->conns && srv->conns->fd == sv[0])
		conn_close(srv->conns);
	close(sv[1]);
	return 0;
}
