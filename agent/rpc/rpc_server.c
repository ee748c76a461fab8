// SPDX-License-Identifier: Apache-2.0
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
 *
 * Bounds. What a client can make us hold is bounded whatever it does: connections
 * (max_conns) and streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS), a message
 * size (max_recv, checked on the prefix before anything is stored), and the request
 * bytes buffered in partial messages — per connection (conn_budget) and for the whole
 * server (total_budget). Windows are not refilled automatically: a DATA byte is
 * credited back (nghttp2_session_consume) only while both budgets have room, so a peer
 * past them can send no more than its open window until something is freed. A fresh
 * connection still has its initial window: a small call (syctl status) gets through
 * while others hold the budget. A request not complete 10 s after its headers ends
 * (RESOURCE_EXHAUSTED), so stalled streams cannot hold the budget for good. Buffers are
 * freed with their stream, and after a connection that held much closes the heap is
 * trimmed, so the memory goes back.
 */
#include "rpc/rpc.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
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

static void conn_close(struct conn *c);
static void conn_fail(struct conn *c);

/* ---- request buffering budget --------------------------------------------------------- */

static int over_budget(const struct conn *c)
{
	return c->held >= c->srv->conn_budget || c->srv->held >= c->srv->total_budget;
}

static void repay_all(struct sy_loop *l, void *arg);

/* Something was freed: peers held back may be credited again (from a fresh loop turn,
 * never from inside nghttp2's callbacks, whose session we would re-enter). */
static void want_repay(struct sy_rpc_server *srv)
{
	if (srv->owed && !srv->repay_timer)
		srv->repay_timer = sy_loop_add_timer(srv->loop, 0, repay_all, srv);
}

/* Brings the call's share of the budgets up to date with what it holds now. */
void rpcs_account(struct sy_rpc_call *call)
{
	struct conn *c = call->c;
	size_t now = call->rd.cap + (call->req ? call->req_len : 0);

	c->held = c->held - call->held + now;
	c->srv->held = c->srv->held - call->held + now;
	if (now < call->held)
		want_repay(c->srv);
	call->held = now;
	if (c->held > c->peak)
		c->peak = c->held;
}

/* n DATA bytes of stream id arrived: rpcs_credit them back now, or owe them. */
void rpcs_credit(struct conn *c, struct sy_rpc_call *call, int32_t id, size_t n)
{
	if (!n)
		return;
	if (!over_budget(c)) {
		nghttp2_session_consume(c->s, id, n);
		return;
	}
	if (call)
		call->owed += n;
	else
		c->owed += n;
	c->srv->owed += n;
}

static void conn_repay(struct conn *c)
{
	struct sy_rpc_server *srv = c->srv;

	for (struct sy_rpc_call *call = LIST_FIRST(&c->calls); call && !over_budget(c);
	     call = LIST_NEXT(call, link)) {
		if (!call->owed)
			continue;
		nghttp2_session_consume(c->s, call->id, call->owed);
		srv->owed -= call->owed;
		call->owed = 0;
	}
	if (c->owed && !over_budget(c)) {
		nghttp2_session_consume_connection(c->s, c->owed);
		srv->owed -= c->owed;
		c->owed = 0;
	}
}

static void repay_all(struct sy_loop *l, void *arg)
{
	struct sy_rpc_server *srv = arg;

	(void)l;
	srv->repay_timer = 0;
	for (struct conn *c = LIST_FIRST(&srv->conns); c && srv->owed && srv->held < srv->total_budget;
	     c = LIST_NEXT(c, link)) {
		if (c->closing || c->hold)
			continue;
		conn_repay(c);
		rpcs_conn_flush(c); /* the WINDOW_UPDATEs */
	}
}

/* glibc keeps freed heap memory for reuse; after a connection that held megabytes of
 * requests it is given back, once per loop turn however many closed. */
static void trim(struct sy_loop *l, void *arg)
{
	struct sy_rpc_server *srv = arg;

	(void)l;
	srv->trim_timer = 0;
	malloc_trim(0);
}

/* Every SWEEP_MS while requests are incomplete or TLS handshakes unfinished: requests
 * older than REQUEST_TIMEOUT_MS end (trailers, then the stream is reset), which frees
 * what they held; a handshake not done HANDSHAKE_TIMEOUT_MS after the accept closes
 * its connection. One timer for the server rather than one per stream: the loop
 * cancels timers by a linear scan. */
void rpcs_sweep(struct sy_loop *l, void *arg)
{
	struct sy_rpc_server *srv = arg;
	uint64_t now = sy_now_ms();
	int waiting = 0;
	char why[80];

	srv->sweep_timer = 0;
	snprintf(why, sizeof(why), "request not received within %d s", REQUEST_TIMEOUT_MS / 1000);
	for (struct conn *c = LIST_FIRST(&srv->conns), *n; c; c = n) {
		n = LIST_NEXT(c, link); /* flushing below never closes a connection at once */
		if (c->handshaking && c->fd >= 0 && !c->closing) {
			if (now - c->accepted < HANDSHAKE_TIMEOUT_MS) {
				waiting = 1;
				continue;
			}
			srv->st.tls_refused++;
			sy_info("rpc", "TLS client closed: no handshake within %d s",
				HANDSHAKE_TIMEOUT_MS / 1000);
			conn_close(c);
			continue;
		}
		if (c->closing)
			continue;
		c->hold++;
		for (struct sy_rpc_call *call = LIST_FIRST(&c->calls); call; call = LIST_NEXT(call, link)) {
			if (call->dispatched || call->ending)
				continue;
			if (now - call->started >= REQUEST_TIMEOUT_MS)
				rpcs_end_call(call, SY_GRPC_RESOURCE_EXHAUSTED, why);
			else
				waiting = 1;
		}
		c->hold--;
		rpcs_conn_flush(c);
	}
	if (waiting)
		srv->sweep_timer = sy_loop_add_timer(l, SWEEP_MS, rpcs_sweep, srv);
}

/* ---- connections -------------------------------------------------------------------- */

/* The socket's bytes, through TLS when the connection has it: recv/send semantics. */
static ssize_t conn_recv(struct conn *c, uint8_t *buf, size_t n)
{
	return c->tls ? sy_tls_read(c->tls, buf, n) : recv(c->fd, buf, n, 0);
}

static ssize_t conn_send(struct conn *c, const uint8_t *d, size_t n)
{
	ssize_t w;

	if (!c->tls)
		return send(c->fd, d, n, MSG_NOSIGNAL);
	w = sy_tls_write(c->tls, d, n);
	if (c->fd < 0) { /* a fuzzed memory connection: the records go nowhere */
		uint8_t sink[4096];

		while (sy_tls_conn_take(c->tls, sink, sizeof(sink)))
			;
	}
	return w;
}

static void conn_set_events(struct conn *c, unsigned ev)
{
	if (c->fd < 0 || ev == c->events)
		return;
	c->events = ev;
	sy_loop_mod_fd(c->srv->loop, c->fd, ev);
}

static ssize_t conn_send_cb(void *arg, const uint8_t *d, size_t n)
{
	struct conn *c = arg;

	if (c->fd < 0 && !c->tls)
		return (ssize_t)n; /* raw connection: the output goes nowhere */
	return conn_send(c, d, n);
}

/* Writes what nghttp2 has, until it has nothing or the socket is full. */
void rpcs_conn_flush(struct conn *c)
{
	const char *why;

	if (c->closing || c->hold || c->handshaking)
		return;
	if (sy_h2_flush(c->s, &c->out, conn_send_cb, c, &why)) {
		conn_fail(c);
		return;
	}
	/* Blocked on output: stop reading until it drains (back-pressure to the peer),
	 * unless TLS needs the peer's bytes before it can write. */
	if (sy_h2_out_pending(&c->out) && !(c->tls && sy_tls_conn_want(c->tls) == SY_TLS_WANT_READ))
		conn_set_events(c, SY_EV_WRITE);
	else
		conn_set_events(c, SY_EV_READ);
}

static void reap(struct sy_loop *l, void *arg)
{
	struct sy_rpc_server *srv = arg;

	(void)l;
	srv->reap_timer = 0;
	for (struct conn *c = LIST_FIRST(&srv->conns), *n; c; c = n) {
		n = LIST_NEXT(c, link);
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
			      !sy_h2_out_pending(&c->out));
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
		rpcs_conn_flush(c);
		c->closing = 1;
	}
}

static void conn_close(struct conn *c)
{
	struct sy_rpc_server *srv = c->srv;

	c->closing = 1; /* cancel callbacks below must not write to this connection */
	for (struct sy_rpc_call *call = LIST_FIRST(&c->calls); call; call = LIST_NEXT(call, link))
		rpcs_call_cancel(call);
	while (!LIST_EMPTY(&c->calls))
		rpcs_call_free(LIST_FIRST(&c->calls));
	srv->owed -= c->owed;
	if (c->peak >= TRIM_AFTER && !srv->trim_timer && c->fd >= 0)
		srv->trim_timer = sy_loop_add_timer(srv->loop, 0, trim, srv);
	nghttp2_session_del(c->s);
	sy_tls_conn_free(c->tls);
	sy_loop_close_fd(srv->loop, &c->fd);
	free(c->out.buf);
	LIST_REMOVE(c, link);
	srv->st.conns--;
	free(c);
}

/* TLS: 1 when the handshake is done, 0 while it goes on, -1 when it failed (counted,
 * logged with the peer's address; the caller closes). */
static int conn_handshake(struct conn *c)
{
	char why[300];
	int r = sy_tls_handshake(c->tls, why, sizeof(why));

	if (r == 0) {
		conn_set_events(c, sy_tls_conn_want(c->tls) & SY_TLS_WANT_WRITE ? SY_EV_WRITE : SY_EV_READ);
		return 0;
	}
	if (r < 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char ip[INET6_ADDRSTRLEN] = "?";

		if (c->fd >= 0 && getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0)
			inet_ntop(ss.ss_family,
				  ss.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
							  : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr,
				  ip, sizeof(ip));
		c->srv->st.tls_refused++;
		sy_info("rpc", "TLS client %s refused: %s", ip, why);
		return -1;
	}
	c->handshaking = 0;
	c->readonly = sy_tls_conn_readonly(c->tls);
	return 1;
}

static void conn_io(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct conn *c = arg;
	uint8_t buf[16384];

	(void)l;
	(void)fd;
	if (c->handshaking) {
		int r = conn_handshake(c);

		if (r < 0)
			conn_close(c);
		if (r <= 0)
			return;
		ev |= SY_EV_READ; /* the client's first bytes may already be in */
	}
	if (ev & SY_EV_READ) {
		/* Past the budget only while TLS holds decrypted bytes the socket will not
		 * signal again (the rest of one record at most). */
		for (int i = 0; !c->closing && (i < READ_BUDGET || (c->tls && sy_tls_conn_pending(c->tls)));
		     i++) {
			ssize_t n = conn_recv(c, buf, sizeof(buf));

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				c->closing = 1; /* peer gone: its calls are cancelled below */
				break;
			}
			conn_input(c, buf, (size_t)n);
			if ((size_t)n < sizeof(buf) && !(c->tls && sy_tls_conn_pending(c->tls)))
				break;
		}
	}
	rpcs_conn_flush(c);
	if (conn_done(c))
		conn_close(c);
}

static struct conn *conn_new(struct sy_rpc_server *srv, int fd, struct sy_tls_conn *tls)
{
	nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv->max_streams},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->fd = fd;
	c->tls = tls;
	c->handshaking = tls != NULL;
	if (nghttp2_session_server_new2(&c->s, srv->cbs, c, srv->h2opt) != 0) {
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
	LIST_INSERT_HEAD(&srv->conns, c, link);
	srv->st.conns++;
	srv->st.conns_total++;
	rpcs_conn_flush(c); /* our SETTINGS go first */
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
		if (srv->shutting_down || srv->st.conns >= srv->max_conns) {
			close(fd);
			continue;
		}
		struct sy_tls_conn *tls = NULL;
		int one = 1;

		/* Replies leave in several writes (headers, data, trailers; TLS records): with
		 * Nagle's algorithm and the peer's delayed ACK each call would wait ~40 ms. */
		if (li->tcp)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (li->tcp && srv->tls && !(tls = sy_tls_conn_new(srv->tls, fd, NULL))) {
			close(fd);
			continue;
		}
		struct conn *c = conn_new(srv, fd, tls);

		if (!c) {
			sy_tls_conn_free(tls);
			close(fd);
		} else if (tls) {
			c->accepted = sy_now_ms();
			if (!srv->sweep_timer) /* it also ends handshakes that never finish */
				srv->sweep_timer = sy_loop_add_timer(l, SWEEP_MS, rpcs_sweep, srv);
		}
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
	*li = (struct listener){.srv = srv, .fd = fd, .tcp = a.ss.ss_family != AF_UNIX};
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

void sy_rpc_server_set_tls(struct sy_rpc_server *srv, struct sy_tls *tls)
{
	srv->tls = tls;
}

int sy_rpc_server_allow_readonly(struct sy_rpc_server *srv, const char *path)
{
	struct method *m = (struct method *)rpcs_find_method(srv, path);

	if (!m)
		return -ENOENT;
	m->readonly_ok = 1;
	return 0;
}

const char *sy_rpc_call_tls_peer(const struct sy_rpc_call *call)
{
	return call->c && call->c->tls && !call->c->handshaking ? sy_tls_conn_peer(call->c->tls) : "";
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
	if (nghttp2_option_new(&srv->h2opt) != 0) {
		nghttp2_session_callbacks_del(cbs);
		free(srv);
		return NULL;
	}
	/* Windows are refilled by rpcs_credit(), within the budgets. */
	nghttp2_option_set_no_auto_window_update(srv->h2opt, 1);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, rpcs_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, rpcs_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, rpcs_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, rpcs_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, rpcs_on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, rpcs_on_frame_send);
	srv->cbs = cbs;
	srv->loop = loop;
	srv->max_recv = opts && opts->max_recv_msg ? opts->max_recv_msg : SY_RPC_DEFAULT_MAX_MSG;
	srv->max_send = opts && opts->max_send_msg ? opts->max_send_msg : SY_RPC_DEFAULT_MAX_MSG;
	srv->max_conns = opts && opts->max_conns ? opts->max_conns : MAX_CONNS;
	srv->max_streams = opts && opts->max_streams ? opts->max_streams : MAX_STREAMS;
	/* Room for a whole message of the largest size, or none could ever complete. */
	srv->conn_budget = CONN_BUDGET > 2 * srv->max_recv ? CONN_BUDGET : 2 * srv->max_recv;
	srv->total_budget = TOTAL_BUDGET > 4 * srv->max_recv ? TOTAL_BUDGET : 4 * srv->max_recv;
	return srv;
}

static int add_method(struct sy_rpc_server *srv, const char *path, const ProtobufCMessageDescriptor *d,
		      sy_rpc_handler h, void *arg, int streaming)
{
	struct method *m;

	if (!path || path[0] != '/' || !d || !h)
		return -EINVAL;
	if (rpcs_find_method(srv, path))
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
	for (struct conn *c = LIST_FIRST(&srv->conns), *n; c; c = n) {
		n = LIST_NEXT(c, link);
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
			for (struct sy_rpc_call *call = LIST_FIRST(&c->calls); call;
			     call = LIST_NEXT(call, link))
				rpcs_abort_call(call, SY_GRPC_UNAVAILABLE, "server is shutting down");
			c->hold--;
		}
		rpcs_conn_flush(c);
		if (force || conn_done(c))
			conn_close(c);
	}
	if (!LIST_EMPTY(&srv->conns)) {
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
	for (struct conn *c = LIST_FIRST(&srv->conns); c; c = LIST_NEXT(c, link)) {
		nghttp2_submit_shutdown_notice(c->s);
		rpcs_conn_flush(c);
	}
	srv->shutdown_timer = sy_loop_add_timer(srv->loop, !LIST_EMPTY(&srv->conns) ? GOAWAY_NOTICE_MS : 0,
						shutdown_tick, srv);
}

void sy_rpc_server_free(struct sy_rpc_server *srv)
{
	if (!srv)
		return;
	sy_loop_cancel_timer(srv->loop, srv->shutdown_timer);
	sy_loop_cancel_timer(srv->loop, srv->reap_timer);
	close_listeners(srv);
	while (!LIST_EMPTY(&srv->conns))
		conn_close(LIST_FIRST(&srv->conns));
	/* after the connections: closing them may have armed these */
	sy_loop_cancel_timer(srv->loop, srv->repay_timer);
	sy_loop_cancel_timer(srv->loop, srv->trim_timer);
	sy_loop_cancel_timer(srv->loop, srv->sweep_timer);
	while (srv->methods) {
		struct method *n = srv->methods->next;

		free(srv->methods->path);
		free(srv->methods);
		srv->methods = n;
	}
	nghttp2_session_callbacks_del(srv->cbs);
	nghttp2_option_del(srv->h2opt);
	free(srv);
}

void sy_rpc_server_get_stats(const struct sy_rpc_server *srv, struct sy_rpc_server_stats *st)
{
	*st = srv->st;
	st->req_buffered = srv->held;
}

/* For fuzzing: the bytes arrive as one client connection would send them, in pieces
 * (so partial frames and the replies in between are exercised), with the server's
 * output generated and thrown away; then every armed deadline expires, and the
 * connection closes as if the peer hung up. No socket, no loop iteration:
 * deterministic and fast. */
int sy_rpc_server_feed_raw(struct sy_rpc_server *srv, const uint8_t *data, size_t len)
{
	struct conn *c = conn_new(srv, -1, NULL);
	size_t off = 0;

	if (!c)
		return -ENOMEM;
	while (off < len && !conn_done(c)) {
		size_t n = len - off < 997 ? len - off : 997; /* odd size: frames straddle pieces */

		conn_input(c, data + off, n);
		rpcs_conn_flush(c);
		off += n;
	}
	c->hold++;
	for (struct sy_rpc_call *call = LIST_FIRST(&c->calls); call; call = LIST_NEXT(call, link)) {
		if (call->timer) {
			sy_loop_cancel_timer(srv->loop, call->timer);
			rpcs_on_deadline(srv->loop, call);
		}
	}
	c->hold--;
	rpcs_conn_flush(c);
	conn_close(c);
	return 0;
}

/* For fuzzing the TLS record layer: a memory connection of srv's TLS context completes
 * its handshake with client (a memory connection of a client context that trusts it),
 * then data reaches the server either as records the client encrypted (encrypt != 0:
 * the decrypted bytes go on to HTTP/2) or as raw bytes after the handshake (the record
 * layer's own parsing). -EPROTO when the handshake itself failed. */
int sy_rpc_server_feed_tls(struct sy_rpc_server *srv, struct sy_tls_conn *client, const uint8_t *data,
			   size_t len, int encrypt)
{
	struct sy_tls_conn *tls = srv->tls ? sy_tls_conn_new(srv->tls, -1, NULL) : NULL;
	struct conn *c = tls ? conn_new(srv, -1, tls) : NULL;
	uint8_t buf[16384];
	char why[300];
	size_t n, off = 0;
	int cdone = 0, e = 0;

	if (!c) {
		sy_tls_conn_free(tls);
		return -ENOMEM;
	}
	for (int round = 0; round < 16 && (c->handshaking || !cdone); round++) {
		int r = sy_tls_handshake(client, why, sizeof(why));

		if (r < 0)
			break;
		cdone = r == 1;
		while ((n = sy_tls_conn_take(client, buf, sizeof(buf))))
			sy_tls_conn_feed(tls, buf, n);
		if (c->handshaking && conn_handshake(c) < 0)
			break;
		while ((n = sy_tls_conn_take(tls, buf, sizeof(buf))))
			sy_tls_conn_feed(client, buf, n);
	}
	if (c->handshaking || !cdone) {
		e = -EPROTO;
		goto out;
	}
	rpcs_conn_flush(c); /* our SETTINGS, held back by the handshake */
	while (off < len && !conn_done(c)) {
		size_t piece = len - off < 997 ? len - off : 997;

		if (encrypt) {
			if (sy_tls_write(client, data + off, piece) < 0)
				break;
			while ((n = sy_tls_conn_take(client, buf, sizeof(buf))))
				sy_tls_conn_feed(tls, buf, n);
		} else {
			sy_tls_conn_feed(tls, data + off, piece);
		}
		off += piece;
		for (;;) {
			ssize_t r = sy_tls_read(tls, buf, sizeof(buf));

			if (r <= 0) {
				if (!(r < 0 && errno == EAGAIN))
					c->closing = 1;
				break;
			}
			conn_input(c, buf, (size_t)r);
		}
		rpcs_conn_flush(c);
		while (sy_tls_conn_take(client, buf, sizeof(buf)))
			;
		if (c->closing)
			break;
	}
out:
	conn_close(c);
	return e;
}
