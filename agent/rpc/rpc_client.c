// SPDX-License-Identifier: Apache-2.0
/* rpc_client.c — gRPC client over HTTP/2 (h2c, prior knowledge) on nghttp2, driven by
 * the agent's event loop. One client = one target; many concurrent calls share its
 * connection. Every call ends exactly once through its callback with msg == NULL and
 * the final status, whatever happens (reply, error status, reset, deadline, connection
 * lost, cancel). syctl uses the blocking wrapper sy_rpc_call_sync, which runs a
 * private loop.
 *
 * Connections. The first call opens one; when it fails or the server sends GOAWAY,
 * calls on it end (UNAVAILABLE, or they finish if the server still serves them) and
 * the next call opens a fresh one, while the old one drains. Connections and calls are
 * only ever freed from nghttp2's stream-close callback or from a timer of our own
 * (reap), never under a user callback that may still hold them.
 */
#include "rpc/rpc.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc/grpc_frame.h"
#include "rpc/h2_out.h"
#include "rpc/rpc_listen.h"
#include "rpc/tls.h"

#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW   (4 << 20)
#define USER_AGENT    "grpc-c-switchyard/1"

struct cconn {
	struct sy_rpc_client *cl;
	int fd;
	struct sy_tls_conn *tls; /* the client has TLS: on fd, handshake first */
	int handshaking;
	nghttp2_session *s;
	struct sy_h2_out out;
	unsigned events;
	int connected;
	int dead; /* no more I/O: its calls end at the next reap */
	int hold; /* inside mem_recv: mem_send must wait */
	char why[320];
	size_t ncalls;
	struct cconn *next; /* in cl->conns */
};

struct sy_rpc_client_call {
	struct cconn *cn;
	int32_t id;
	uint8_t *body;
	size_t len, off;
	const ProtobufCMessageDescriptor *resp_desc;
	sy_rpc_client_cb cb;
	void *arg;
	struct sy_grpc_reader rd;
	struct sy_rpc_status st;
	int have_status;
	int http_status;
	int ct_ok;
	int gzip_in;
	int bad_encoding;
	int done; /* the callback saw the end: nothing more is delivered */
	uint64_t timer;
	LIST_ENTRY(sy_rpc_client_call) link; /* in cl->calls */
};

struct sy_rpc_client {
	struct sy_loop *loop;
	char target[256];
	char authority[128];
	struct sy_rpc_addr addr;
	int bad_target;
	int gzip;
	struct sy_tls *tls;    /* not owned; NULL = h2c */
	char server_name[256]; /* the host as written in the target: checked against the cert */
	struct cconn *conns;   /* the first one takes new calls, unless it is dead */
	LIST_HEAD(, sy_rpc_client_call) calls;
	uint64_t reap_timer;
};

static void cflush(struct cconn *cn);
static void conn_fail(struct cconn *cn, const char *why);
static void schedule_reap(struct sy_rpc_client *cl);

/* ---- calls -------------------------------------------------------------------------- */

static void call_end(struct sy_rpc_client_call *k, enum sy_grpc_code code, const char *msg)
{
	if (k->done)
		return;
	k->done = 1;
	sy_loop_cancel_timer(k->cn->cl->loop, k->timer);
	k->timer = 0;
	if (msg) {
		k->st.code = code;
		snprintf(k->st.message, sizeof(k->st.message), "%s", msg);
	}
	k->cb(NULL, &k->st, k->arg);
}

static void call_free(struct sy_rpc_client_call *k)
{
	struct sy_rpc_client *cl = k->cn->cl;

	LIST_REMOVE(k, link);
	if (--k->cn->ncalls == 0 && k->cn != cl->conns)
		schedule_reap(cl); /* a connection draining after GOAWAY is now idle */
	sy_loop_cancel_timer(cl->loop, k->timer);
	sy_grpc_reader_free(&k->rd);
	free(k->body);
	free(k);
}

/* Ends a call on the client's initiative: RST_STREAM so the server stops too. */
static void call_abort(struct sy_rpc_client_call *k, enum sy_grpc_code code, const char *msg)
{
	struct cconn *cn = k->cn;

	if (!cn->dead && k->id > 0)
		nghttp2_submit_rst_stream(cn->s, NGHTTP2_FLAG_NONE, k->id, NGHTTP2_CANCEL);
	call_end(k, code, msg);
}

/* ---- nghttp2 callbacks -------------------------------------------------------------- */

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct sy_rpc_client_call *k = src->ptr;
	size_t n = k->len - k->off;

	(void)s;
	(void)id;
	(void)ud;
	if (n > len)
		n = len;
	memcpy(buf, k->body + k->off, n);
	k->off += n;
	if (k->off == k->len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		free(k->body); /* sent: no need to keep it */
		k->body = NULL;
	}
	return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct sy_rpc_client_call *k = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	const char *v = (const char *)value;

	(void)flags;
	(void)ud;
	if (!k || f->hd.type != NGHTTP2_HEADERS)
		return 0;
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
	if (IS(":status")) {
		k->http_status = vlen == 3 ? (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0') : 0;
	} else if (IS("content-type")) {
		k->ct_ok = sy_grpc_content_type_ok(v, vlen);
	} else if (IS("grpc-status")) {
		int code = sy_grpc_status_parse(v, vlen);

		k->st.code = code < 0 ? SY_GRPC_UNKNOWN : (enum sy_grpc_code)code;
		k->have_status = 1;
	} else if (IS("grpc-message")) {
		sy_grpc_percent_decode(v, vlen, k->st.message, sizeof(k->st.message));
	} else if (IS("grpc-encoding")) {
		k->gzip_in = vlen == 4 && memcmp(value, "gzip", 4) == 0;
		k->bad_encoding = !k->gzip_in && !(vlen == 8 && memcmp(value, "identity", 8) == 0);
	}
#undef IS
	return 0;
}

static int response_message(struct sy_rpc_client_call *k, uint8_t *msg, size_t mlen, int comp)
{
	ProtobufCMessage *m;
	int e;

	if (comp && !k->gzip_in) {
		free(msg);
		call_abort(k, SY_GRPC_INTERNAL,
			   k->bad_encoding ? "response uses an unsupported grpc-encoding"
					   : "compressed response message without grpc-encoding");
		return -1;
	}
	if (comp && (e = sy_grpc_gunzip(&msg, &mlen, SY_RPC_DEFAULT_MAX_MSG))) {
		call_abort(k, e == -EBADMSG ? SY_GRPC_INTERNAL : SY_GRPC_RESOURCE_EXHAUSTED,
			   e == -EBADMSG ? "response message is not valid gzip"
					 : "response message too large once decompressed");
		return -1;
	}
	m = protobuf_c_message_unpack(k->resp_desc, NULL, mlen, msg);
	free(msg);
	if (!m) {
		char why[300];

		snprintf(why, sizeof(why), "response is not a valid %s", k->resp_desc->name);
		call_abort(k, SY_GRPC_INTERNAL, why);
		return -1;
	}
	k->st.code = SY_GRPC_OK;
	k->cb(m, &k->st, k->arg);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
	struct sy_rpc_client_call *k = nghttp2_session_get_stream_user_data(s, id);

	(void)flags;
	(void)ud;
	/* Not a gRPC response (HTTP error page, wrong content-type): judged at close. */
	if (!k || k->http_status != 200 || !k->ct_ok)
		return 0;
	while (!k->done && len) {
		uint8_t *msg;
		size_t mlen;
		int comp, r = sy_grpc_reader_feed(&k->rd, &data, &len, &msg, &mlen, &comp);

		if (r < 0) {
			call_abort(k, SY_GRPC_RESOURCE_EXHAUSTED,
				   r == -EMSGSIZE ? "response message larger than the limit"
						  : "out of memory");
			return 0;
		}
		if (r == 0 || response_message(k, msg, mlen, comp) < 0)
			break;
	}
	return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct sy_rpc_client_call *k = nghttp2_session_get_stream_user_data(s, id);
	char why[160];

	(void)ud;
	if (!k)
		return 0;
	if (k->done) {
	} else if (k->have_status) {
		if (k->st.code != SY_GRPC_OK || sy_grpc_reader_idle(&k->rd))
			call_end(k, k->st.code, NULL);
		else
			call_end(k, SY_GRPC_INTERNAL, "response ends inside a message");
	} else if (k->http_status && k->http_status != 200) {
		snprintf(why, sizeof(why), "HTTP status %d without grpc-status", k->http_status);
		call_end(k, sy_grpc_code_from_http(k->http_status), why);
	} else if (k->http_status == 200 && !k->ct_ok) {
		call_end(k, SY_GRPC_UNKNOWN, "response content-type is not application/grpc");
	} else if (code == NGHTTP2_REFUSED_STREAM) {
		/* Never processed (GOAWAY, stream limit): safe to try again. */
		call_end(k, SY_GRPC_UNAVAILABLE, "stream refused by the server");
	} else if (code == NGHTTP2_CANCEL) {
		call_end(k, SY_GRPC_CANCELLED, "stream cancelled by the server");
	} else {
		snprintf(why, sizeof(why), "stream closed without a status (%s)",
			 nghttp2_http2_strerror(code));
		call_end(k, SY_GRPC_INTERNAL, why);
	}
	call_free(k);
	return 0;
}

/* ---- connections -------------------------------------------------------------------- */

static void conn_free(struct cconn *cn)
{
	sy_tls_conn_free(cn->tls);
	sy_loop_close_fd(cn->cl->loop, &cn->fd);
	nghttp2_session_del(cn->s);
	free(cn->out.buf);
	free(cn);
}

/* Frees dead connections (ending their calls with the reason) and drained ones. User
 * callbacks run in here and may start or cancel calls, so the lists are re-read after
 * every callback instead of being walked with saved pointers. */
static void reap(struct sy_loop *l, void *arg)
{
	struct sy_rpc_client *cl = arg;
	struct cconn *gone = NULL;

	(void)l;
	cl->reap_timer = 0;
	for (struct cconn **pp = &cl->conns; *pp;) {
		struct cconn *cn = *pp;

		if (cn->dead || (cn != cl->conns && cn->ncalls == 0)) {
			*pp = cn->next;
			cn->next = gone;
			gone = cn;
			continue;
		}
		pp = &cn->next;
	}
	while (gone) {
		struct cconn *cn = gone;
		struct sy_rpc_client_call *k = LIST_FIRST(&cl->calls);

		while (k && k->cn != cn)
			k = LIST_NEXT(k, link);
		if (k) {
			call_end(k, SY_GRPC_UNAVAILABLE, cn->why[0] ? cn->why : "connection closed");
			call_free(k);
			continue;
		}
		gone = cn->next;
		conn_free(cn);
	}
}

static void schedule_reap(struct sy_rpc_client *cl)
{
	if (!cl->reap_timer)
		cl->reap_timer = sy_loop_add_timer(cl->loop, 0, reap, cl);
}

static void conn_fail(struct cconn *cn, const char *why)
{
	if (cn->dead)
		return;
	cn->dead = 1;
	snprintf(cn->why, sizeof(cn->why), "%s", why);
	sy_tls_conn_free(cn->tls);
	cn->tls = NULL;
	sy_loop_close_fd(cn->cl->loop, &cn->fd);
	schedule_reap(cn->cl);
}

static void set_events(struct cconn *cn, unsigned ev)
{
	if (ev != cn->events && cn->fd >= 0) {
		cn->events = ev;
		sy_loop_mod_fd(cn->cl->loop, cn->fd, ev);
	}
}

static ssize_t csend(struct cconn *cn, const uint8_t *d, size_t n)
{
	return cn->tls ? sy_tls_write(cn->tls, d, n) : send(cn->fd, d, n, MSG_NOSIGNAL);
}

static ssize_t crecv(struct cconn *cn, uint8_t *buf, size_t n)
{
	return cn->tls ? sy_tls_read(cn->tls, buf, n) : recv(cn->fd, buf, n, 0);
}

static ssize_t csend_cb(void *arg, const uint8_t *d, size_t n)
{
	return csend(arg, d, n);
}

static void cflush(struct cconn *cn)
{
	const char *why;

	if (cn->dead || !cn->connected || cn->hold || cn->handshaking)
		return;
	if (sy_h2_flush(cn->s, &cn->out, csend_cb, cn, &why)) {
		conn_fail(cn, why);
		return;
	}
	set_events(cn, SY_EV_READ | (sy_h2_out_pending(&cn->out) ? SY_EV_WRITE : 0));
}

static void cio(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct cconn *cn = arg;
	uint8_t buf[16384];
	char why[400];

	(void)l;
	if (!cn->connected) {
		int err = 0;
		socklen_t sl = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
			err = errno;
		if (err) {
			snprintf(why, sizeof(why), "connect %s: %s", cn->cl->target, strerror(err));
			conn_fail(cn, why);
			return;
		}
		cn->connected = 1;
	}
	if (cn->handshaking) {
		int r = sy_tls_handshake(cn->tls, why + 200, 200);

		if (r < 0) {
			char msg[400];

			snprintf(msg, sizeof(msg), "TLS with %.150s: %s", cn->cl->target, why + 200);
			conn_fail(cn, msg);
			return;
		}
		if (r == 0) {
			set_events(cn,
				   sy_tls_conn_want(cn->tls) & SY_TLS_WANT_WRITE ? SY_EV_WRITE : SY_EV_READ);
			return;
		}
		cn->handshaking = 0;
		ev |= SY_EV_READ;
	}
	if (ev & SY_EV_READ) {
		for (int i = 0; i < 8 || (cn->tls && sy_tls_conn_pending(cn->tls)); i++) {
			ssize_t n = crecv(cn, buf, sizeof(buf)), r;

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				snprintf(why, sizeof(why), "%s: %s", cn->cl->target,
					 n == 0			      ? "connection closed by the server"
					 : cn->tls && errno == EPROTO ? sy_tls_conn_error(cn->tls)
								      : strerror(errno));
				conn_fail(cn, why);
				return;
			}
			cn->hold++;
			r = nghttp2_session_mem_recv(cn->s, buf, (size_t)n);
			cn->hold--;
			if (r < 0) {
				snprintf(why, sizeof(why), "%s: HTTP/2: %s", cn->cl->target,
					 nghttp2_strerror((int)r));
				conn_fail(cn, why);
				return;
			}
			if ((size_t)n < sizeof(buf) && !(cn->tls && sy_tls_conn_pending(cn->tls)))
				break;
		}
	}
	cflush(cn);
	if (!cn->dead && !nghttp2_session_want_read(cn->s) && !nghttp2_session_want_write(cn->s)) {
		snprintf(why, sizeof(why), "%s: connection closed (GOAWAY)", cn->cl->target);
		conn_fail(cn, why); /* GOAWAY received and every stream done */
	}
}

static struct cconn *conn_open(struct sy_rpc_client *cl)
{
	nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
	};
	nghttp2_session_callbacks *cbs;
	struct cconn *cn = calloc(1, sizeof(*cn));
	int fd;

	if (!cn)
		return NULL;
	cn->cl = cl;
	cn->fd = -1;
	if (nghttp2_session_callbacks_new(&cbs)) {
		free(cn);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	fd = nghttp2_session_client_new(&cn->s, cbs, cn);
	nghttp2_session_callbacks_del(cbs);
	if (fd) {
		free(cn);
		return NULL;
	}
	nghttp2_submit_settings(cn->s, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0]));
	nghttp2_session_set_local_window_size(cn->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
	cn->next = cl->conns;
	cl->conns = cn;
	if (cl->bad_target) {
		snprintf(cn->why, sizeof(cn->why),
			 "bad server address \"%.200s\" (unix:///PATH or HOST:PORT)", cl->target);
		cn->dead = 1;
		schedule_reap(cl);
		return cn;
	}
	fd = sy_rpc_connect(&cl->addr);
	if (fd < 0) {
		/* Reported through the calls' callbacks, from the loop, like any failure. */
		snprintf(cn->why, sizeof(cn->why), "connect %s: %s", cl->target, strerror(-fd));
		cn->dead = 1;
		schedule_reap(cl);
		return cn;
	}
	cn->fd = fd;
	if (cl->tls) {
		cn->tls = sy_tls_conn_new(cl->tls, fd, cl->server_name);
		cn->handshaking = 1;
		if (!cn->tls) {
			conn_fail(cn, "TLS: out of memory");
			return cn;
		}
	}
	cn->events = SY_EV_READ | SY_EV_WRITE;
	if (sy_loop_add_fd(cl->loop, fd, cn->events, cio, cn) < 0)
		conn_fail(cn, "event loop refused the socket");
	return cn;
}

/* The connection new calls go on: the current one while it can take streams. */
static struct cconn *usable_conn(struct sy_rpc_client *cl)
{
	struct cconn *cn = cl->conns;

	if (cn && !cn->dead && nghttp2_session_check_request_allowed(cn->s))
		return cn;
	if (cn)
		schedule_reap(cl); /* the old one goes once drained */
	return conn_open(cl);
}

/* ---- API ---------------------------------------------------------------------------- */

struct sy_rpc_client *sy_rpc_client_new(struct sy_loop *loop, const char *target, int gzip)
{
	struct sy_rpc_client *cl = calloc(1, sizeof(*cl));

	if (!cl)
		return NULL;
	cl->loop = loop;
	cl->gzip = gzip;
	snprintf(cl->target, sizeof(cl->target), "%s", target);
	cl->bad_target = strlen(target) >= sizeof(cl->target) || sy_rpc_addr_parse(target, &cl->addr) != 0;
	/* :authority: the address for TCP; for unix sockets grpc's own choice, localhost. */
	snprintf(cl->authority, sizeof(cl->authority), "%s",
		 cl->bad_target || cl->addr.ss.ss_family == AF_UNIX ? "localhost" : target);
	return cl;
}

void sy_rpc_client_set_tls(struct sy_rpc_client *c, struct sy_tls *tls, const char *as_written)
{
	const char *t = as_written ? as_written : c->target, *end;

	c->tls = tls;
	/* the host as written: "[::1]:443" → "::1", "etcd.local:2379" → "etcd.local" */
	if (t[0] == '[') {
		t++;
		end = strchr(t, ']');
	} else {
		end = strrchr(t, ':');
	}
	if (!end)
		end = t + strlen(t);
	snprintf(c->server_name, sizeof(c->server_name), "%.*s", (int)(end - t), t);
}

void sy_rpc_client_free(struct sy_rpc_client *c)
{
	if (!c)
		return;
	while (!LIST_EMPTY(&c->calls))
		call_free(LIST_FIRST(&c->calls));
	while (c->conns) {
		struct cconn *cn = c->conns;

		c->conns = cn->next;
		conn_free(cn);
	}
	sy_loop_cancel_timer(c->loop, c->reap_timer);
	free(c);
}

static void on_call_deadline(struct sy_loop *l, void *arg)
{
	struct sy_rpc_client_call *k = arg;
	struct cconn *cn = k->cn;

	(void)l;
	k->timer = 0;
	call_abort(k, SY_GRPC_DEADLINE_EXCEEDED,
		   cn->connected ? "deadline exceeded" : "deadline exceeded while connecting");
	cflush(cn); /* may close the stream and free k */
}

void sy_rpc_client_cancel(struct sy_rpc_client_call *k)
{
	struct cconn *cn = k->cn;

	if (k->done)
		return;
	call_abort(k, SY_GRPC_CANCELLED, "cancelled by the client");
	cflush(cn);
}

/* Starts a call whose framed request is body (taken over, freed on every path). */
static int start_body(struct sy_rpc_client *c, const char *path, uint8_t *body, size_t len,
		      const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, sy_rpc_client_cb cb,
		      void *arg, struct sy_rpc_client_call **out)
{
	struct sy_rpc_client_call *k;
	struct cconn *cn;
	char tmo[32];

	cn = usable_conn(c);
	k = calloc(1, sizeof(*k));
	if (!cn || !k) {
		free(k);
		free(body);
		return -ENOMEM;
	}
	k->body = body;
	k->len = len;
	k->cn = cn;
	k->resp_desc = resp_desc;
	k->cb = cb;
	k->arg = arg;
	sy_grpc_reader_init(&k->rd, SY_RPC_DEFAULT_MAX_MSG);
	LIST_INSERT_HEAD(&c->calls, k, link);
	cn->ncalls++;
	if (out)
		*out = k;
	if (cn->dead)
		return 0; /* ends with cn->why at the reap already scheduled */

	nghttp2_nv hdr[10] = {
		{(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
		{(uint8_t *)":scheme", (uint8_t *)(c->tls ? "https" : "http"), 7, c->tls ? 5 : 4, 0},
		{(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
		{(uint8_t *)":authority", (uint8_t *)c->authority, 10, strlen(c->authority), 0},
		{(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
		{(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
		{(uint8_t *)"user-agent", (uint8_t *)USER_AGENT, 10, sizeof(USER_AGENT) - 1, 0},
		{(uint8_t *)"grpc-accept-encoding", (uint8_t *)"identity,gzip", 20, 13, 0},
	};
	size_t nh = 8;

	if (c->gzip)
		hdr[nh++] = (nghttp2_nv){(uint8_t *)"grpc-encoding", (uint8_t *)"gzip", 13, 4, 0};
	if (timeout_ms) {
		sy_grpc_timeout_format(timeout_ms, tmo, sizeof(tmo));
		hdr[nh++] = (nghttp2_nv){(uint8_t *)"grpc-timeout", (uint8_t *)tmo, 12, strlen(tmo), 0};
	}
	nghttp2_data_provider dp = {.source.ptr = k, .read_callback = body_read};

	k->id = nghttp2_submit_request(cn->s, NULL, hdr, nh, &dp, k);
	if (k->id < 0) {
		if (out)
			*out = NULL;
		call_free(k);
		return -EIO;
	}
	if (timeout_ms)
		k->timer = sy_loop_add_timer(c->loop, timeout_ms, on_call_deadline, k);
	cflush(cn);
	return 0;
}

int sy_rpc_client_start(struct sy_rpc_client *c, const char *path, const ProtobufCMessage *req,
			const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, sy_rpc_client_cb cb,
			void *arg, struct sy_rpc_client_call **out)
{
	size_t len;
	uint8_t *body;
	int e;

	if (!path || path[0] != '/' || !resp_desc || !cb || !req)
		return -EINVAL;
	if ((e = sy_grpc_pack(req, SY_RPC_DEFAULT_MAX_MSG, c->gzip, &body, &len)))
		return e;
	return start_body(c, path, body, len, resp_desc, timeout_ms, cb, arg, out);
}

int sy_rpc_client_start_framed(struct sy_rpc_client *c, const char *path, const uint8_t *framed, size_t len,
			       const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms,
			       sy_rpc_client_cb cb, void *arg, struct sy_rpc_client_call **out)
{
	uint8_t *body;

	if (!path || path[0] != '/' || !resp_desc || !cb || len < 5)
		return -EINVAL;
	if (len - 5 > SY_RPC_DEFAULT_MAX_MSG)
		return -EMSGSIZE;
	body = malloc(len);
	if (!body)
		return -ENOMEM;
	memcpy(body, framed, len);
	return start_body(c, path, body, len, resp_desc, timeout_ms, cb, arg, out);
}

int sy_rpc_client_call(struct sy_rpc_client *c, const char *path, const ProtobufCMessage *req,
		       const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, sy_rpc_client_cb cb,
		       void *arg)
{
	return sy_rpc_client_start(c, path, req, resp_desc, timeout_ms, cb, arg, NULL);
}

/* ---- blocking wrapper --------------------------------------------------------------- */

struct sync_ctx {
	struct sy_loop *loop;
	ProtobufCMessage **resp;
	struct sy_rpc_status *st;
	int done;
};

static void sync_cb(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct sync_ctx *s = arg;

	if (msg) {
		/* Keep a copy: the transport frees msg after this returns. */
		size_t n = protobuf_c_message_get_packed_size(msg);
		uint8_t *buf = malloc(n ? n : 1);

		if (!buf)
			return;
		protobuf_c_message_pack(msg, buf);
		if (*s->resp)
			protobuf_c_message_free_unpacked(*s->resp, NULL);
		*s->resp = protobuf_c_message_unpack(msg->descriptor, NULL, n, buf);
		free(buf);
		return;
	}
	*s->st = *st;
	s->done = 1;
	sy_loop_stop(s->loop);
}

int sy_rpc_call_sync(const char *target, const char *path, const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, int gzip,
		     ProtobufCMessage **resp, struct sy_rpc_status *st)
{
	return sy_rpc_call_sync_tls(target, NULL, path, req, resp_desc, timeout_ms, gzip, resp, st);
}

int sy_rpc_call_sync_tls(const char *target, struct sy_tls *tls, const char *path,
			 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
			 uint64_t timeout_ms, int gzip, ProtobufCMessage **resp, struct sy_rpc_status *st)
{
	struct sy_loop *loop;
	struct sy_rpc_client *c;
	struct sync_ctx s = {.resp = resp, .st = st};
	int e;

	*resp = NULL;
	memset(st, 0, sizeof(*st));
	loop = sy_loop_new();
	if (!loop)
		return -ENOMEM;
	s.loop = loop;
	c = sy_rpc_client_new(loop, target, gzip);
	if (!c) {
		sy_loop_free(loop);
		return -ENOMEM;
	}
	if (tls)
		sy_rpc_client_set_tls(c, tls, NULL);
	e = sy_rpc_client_call(c, path, req, resp_desc, timeout_ms, sync_cb, &s);
	while (e == 0 && !s.done)
		if ((e = sy_loop_run(loop)) < 0)
			break;
	sy_rpc_client_free(c);
	sy_loop_free(loop);
	if (e)
		return e;
	if (st->code != SY_GRPC_OK && *resp) {
		protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
	}
	if (st->code == SY_GRPC_OK && !*resp) {
		st->code = SY_GRPC_INTERNAL;
		snprintf(st->message, sizeof(st->message), "the server sent no response message");
	}
	return 0;
}
