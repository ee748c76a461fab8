// SPDX-License-Identifier: Apache-2.0
/* test_rpc.c — the gRPC transport end to end, in one process: our server and our client
 * on one event loop over a unix socket in a temp folder (TCP for the listener tests),
 * plus a bare nghttp2 client ("raw") for the requests our client never sends (wrong
 * content-type, a 2 GiB prefix, gzip bombs, tiny windows, bad encodings). Each test
 * checks the status code and message, what the handler saw (cancel callbacks), and
 * that the server freed every stream (stats.calls back to 0); ASan's leak check runs
 * over all of it.
 *
 * Test methods take a grpc.health.v1.HealthCheckRequest whose `service` string carries
 * the parameter, and most reply with the same message type (a string is the easiest
 * payload of any size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#include "api/control_plane.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc/grpc_frame.h"
#include "rpc/rpc.h"

#define MAX_RECV (256u << 10) /* the fixture's request limit: small, to test it cheaply */

typedef Grpc__Health__V1__HealthCheckRequest Req;
typedef Grpc__Health__V1__HealthCheckResponse Resp;
#define REQ_DESC  (&grpc__health__v1__health_check_request__descriptor)
#define RESP_DESC (&grpc__health__v1__health_check_response__descriptor)

static struct {
	struct sy_loop *loop;
	struct sy_rpc_server *srv;
	char dir[64];
	char sock[128];
	char target[140];
	/* What the handlers saw. */
	int cancels;
	int handled;
	struct sy_rpc_call *held; /* a call a handler keeps for later */
	int shutdown_with_held;	  /* the drain ended while a call was still unanswered */
	size_t pending_seen;
	int shutdown_done;
} T;

/* ---- loop helpers ------------------------------------------------------------------- */

static int timed_out;

static void on_guard(struct sy_loop *l, void *arg)
{
	(void)arg;
	timed_out = 1;
	sy_loop_stop(l);
}

/* Runs the loop until *flag >= want (callbacks stop the loop when they change a flag)
 * or ms pass. Returns 1 when the flag got there. */
static int run_until(int *flag, int want, uint64_t ms)
{
	uint64_t g;

	timed_out = 0;
	g = sy_loop_add_timer(T.loop, ms, on_guard, NULL);
	while ((!flag || *flag < want) && !timed_out)
		sy_loop_run(T.loop);
	sy_loop_cancel_timer(T.loop, g);
	return !flag || *flag >= want;
}

static void run_for(uint64_t ms)
{
	run_until(NULL, 0, ms);
}

static size_t live_calls(void)
{
	struct sy_rpc_server_stats st;

	sy_rpc_server_get_stats(T.srv, &st);
	return st.calls;
}

/* Lets the loop turn until the server has freed every stream (or 2 s). */
static void expect_no_calls(void)
{
	uint64_t end = sy_now_ms() + 2000;

	while (live_calls() && sy_now_ms() < end)
		run_for(5);
	assert_int_equal(live_calls(), 0);
	{
		struct sy_rpc_server_stats st;

		/* every buffered request byte was given back with its stream */
		sy_rpc_server_get_stats(T.srv, &st);
		assert_int_equal(st.req_buffered, 0);
	}
}

/* ---- test methods ------------------------------------------------------------------- */

static void on_cancel(struct sy_rpc_call *call, void *arg)
{
	(void)arg;
	if (call == T.held)
		T.held = NULL;
	T.cancels++;
	sy_loop_stop(T.loop);
}

static void reply_text(struct sy_rpc_call *call, const char *s)
{
	Req r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	r.service = (char *)s;
	sy_rpc_reply(call, &r.base);
}

static void m_echo(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	(void)arg;
	T.handled++;
	reply_text(call, ((const Req *)req)->service);
}

/* Replies with a string of N bytes. */
static void m_big(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	size_t n = strtoul(((const Req *)req)->service, NULL, 10);
	char *s = malloc(n + 1);

	(void)arg;
	memset(s, 'x', n);
	s[n] = '\0';
	reply_text(call, s);
	free(s);
}

/* "CODE message": fails with that status. */
static void m_fail(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	const char *s = ((const Req *)req)->service;
	char *rest;
	long code = strtol(s, &rest, 10);

	(void)arg;
	sy_rpc_finish(call, (enum sy_grpc_code)code, "%s", *rest ? rest + 1 : "");
}

/* Holds the call: it ends only by cancel (deadline, client reset, shutdown). */
static void m_never(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	(void)req;
	(void)arg;
	T.handled++;
	T.held = call;
	sy_rpc_call_set_cancel(call, on_cancel, NULL);
	sy_loop_stop(T.loop);
}

/* Replies after N ms from a timer. */
static void later_fire(struct sy_loop *l, void *arg)
{
	(void)l;
	(void)arg;
	if (T.held) {
		struct sy_rpc_call *c = T.held;

		T.held = NULL;
		reply_text(c, "late");
	}
}

static void m_later(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	(void)arg;
	T.held = call;
	sy_rpc_call_set_cancel(call, on_cancel, NULL);
	sy_loop_add_timer(T.loop, strtoul(((const Req *)req)->service, NULL, 10), later_fire, NULL);
}

/* Streaming: "N SIZE" queues N messages of SIZE bytes at once, then ends OK. */
static void m_flood(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	unsigned n = 0, size = 0;
	Req r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	char *s;

	(void)arg;
	sscanf(((const Req *)req)->service, "%u %u", &n, &size);
	s = malloc(size + 1);
	r.service = s;
	for (unsigned i = 0; i < n; i++) {
		memset(s, 'a' + (int)(i % 26), size);
		s[size] = '\0';
		assert_int_equal(sy_rpc_send(call, &r.base), 0);
	}
	free(s);
	T.pending_seen = sy_rpc_call_pending(call);
	sy_rpc_finish(call, SY_GRPC_OK, NULL);
}

/* Streaming: one message now, then nothing until cancelled. */
static void m_forever(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	Req r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	(void)req;
	(void)arg;
	r.service = "first";
	T.handled++;
	T.held = call;
	sy_rpc_call_set_cancel(call, on_cancel, NULL);
	sy_rpc_send(call, &r.base);
}

static struct sy_rpc_server *make_server(struct sy_loop *loop, size_t max_recv)
{
	struct sy_rpc_server_opts o = {.max_recv_msg = max_recv};
	struct sy_rpc_server *srv = sy_rpc_server_new(loop, &o);

	assert_non_null(srv);
	assert_int_equal(sy_health_svc_register(srv), 0);
	assert_int_equal(sy_rpc_server_add_unary(srv, "/test.T/Echo", REQ_DESC, m_echo, NULL), 0);
	assert_int_equal(sy_rpc_server_add_unary(srv, "/test.T/Big", REQ_DESC, m_big, NULL), 0);
	assert_int_equal(sy_rpc_server_add_unary(srv, "/test.T/Fail", REQ_DESC, m_fail, NULL), 0);
	assert_int_equal(sy_rpc_server_add_unary(srv, "/test.T/Never", REQ_DESC, m_never, NULL), 0);
	assert_int_equal(sy_rpc_server_add_unary(srv, "/test.T/Later", REQ_DESC, m_later, NULL), 0);
	assert_int_equal(sy_rpc_server_add_stream(srv, "/test.T/Flood", REQ_DESC, m_flood, NULL), 0);
	assert_int_equal(sy_rpc_server_add_stream(srv, "/test.T/Forever", REQ_DESC, m_forever, NULL), 0);
	assert_int_equal(sy_rpc_server_add_unary(srv, "/test.T/Echo", REQ_DESC, m_echo, NULL), -EEXIST);
	return srv;
}

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	strcpy(T.dir, "/tmp/sy-rpc-XXXXXX");
	assert_non_null(mkdtemp(T.dir));
	snprintf(T.sock, sizeof(T.sock), "%s/s.sock", T.dir);
	snprintf(T.target, sizeof(T.target), "unix:%s", T.sock);
	T.loop = sy_loop_new();
	T.srv = make_server(T.loop, MAX_RECV);
	assert_int_equal(sy_rpc_server_listen(T.srv, T.target), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	sy_health_svc_set_serving(T.srv, true);
	sy_rpc_server_free(T.srv);
	sy_loop_free(T.loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", T.dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ---- our client's side -------------------------------------------------------------- */

struct result {
	int done;
	int nmsg;
	size_t bytes;
	char first[64];
	char *last; /* the last message's string, owned */
	int in_order;
	struct sy_rpc_status st;
};

static void result_free(struct result *r)
{
	free(r->last);
	r->last = NULL;
}

static void on_result(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct result *r = arg;

	if (msg) {
		const char *s = "";

		if (msg->descriptor == REQ_DESC)
			s = ((const Req *)msg)->service;
		else
			snprintf(r->first, sizeof(r->first), "status=%d", ((const Resp *)msg)->status);
		if (r->nmsg == 0 && msg->descriptor == REQ_DESC)
			snprintf(r->first, sizeof(r->first), "%.63s", s);
		if (r->nmsg && r->last && s[0] && r->last[0] && s[0] != 'a' + (r->nmsg % 26))
			r->in_order = 0;
		r->nmsg++;
		r->bytes += strlen(s);
		free(r->last);
		r->last = strdup(s);
		sy_loop_stop(T.loop);
		return;
	}
	r->st = *st;
	r->done = 1;
	sy_loop_stop(T.loop);
}

static void call(struct sy_rpc_client *c, const char *path, const char *arg, uint64_t timeout_ms,
		 struct result *r)
{
	Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	memset(r, 0, sizeof(*r));
	r->in_order = 1;
	q.service = (char *)arg;
	assert_int_equal(sy_rpc_client_call(c, path, &q.base, REQ_DESC, timeout_ms, on_result, r), 0);
}

static void call_and_wait(const char *path, const char *arg, uint64_t timeout_ms, int gzip, struct result *r)
{
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, gzip);

	call(c, path, arg, timeout_ms, r);
	assert_true(run_until(&r->done, 1, 5000));
	sy_rpc_client_free(c);
}

/* ---- raw HTTP/2 client (nghttp2) ------------------------------------------------------ */

struct raw {
	int fd;
	nghttp2_session *s;
	int32_t sid;
	const uint8_t *body;
	size_t body_len, body_off;
	int end; /* END_STREAM after the body */
	char status[8];
	int grpc_status;
	char grpc_message[600];
	char encoding[32];
	char accept[64];
	uint8_t *data;
	size_t data_len;
	size_t max_data_frame;
	int data_frames;
	int closed;
	uint32_t close_code;
	int got_rst;
	int goaway;
	int eof;
};

static ssize_t raw_send_cb(nghttp2_session *s, const uint8_t *d, size_t n, int flags, void *ud)
{
	struct raw *r = ud;
	ssize_t w = send(r->fd, d, n, MSG_NOSIGNAL);

	(void)s;
	(void)flags;
	if (w < 0 && errno == EAGAIN)
		return NGHTTP2_ERR_WOULDBLOCK;
	return w < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : w;
}

static int raw_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
		      const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct raw *r = ud;

	(void)s;
	(void)f;
	(void)flags;
	if (nl == 7 && !memcmp(name, ":status", 7))
		snprintf(r->status, sizeof(r->status), "%.*s", (int)vl, value);
	else if (nl == 11 && !memcmp(name, "grpc-status", 11))
		r->grpc_status = atoi((const char *)value);
	else if (nl == 12 && !memcmp(name, "grpc-message", 12))
		sy_grpc_percent_decode((const char *)value, vl, r->grpc_message, sizeof(r->grpc_message));
	else if (nl == 13 && !memcmp(name, "grpc-encoding", 13))
		snprintf(r->encoding, sizeof(r->encoding), "%.*s", (int)vl, value);
	else if (nl == 20 && !memcmp(name, "grpc-accept-encoding", 20))
		snprintf(r->accept, sizeof(r->accept), "%.*s", (int)vl, value);
	return 0;
}

static int raw_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n, void *ud)
{
	struct raw *r = ud;

	(void)s;
	(void)flags;
	(void)id;
	r->data = realloc(r->data, r->data_len + n + 1);
	memcpy(r->data + r->data_len, d, n);
	r->data_len += n;
	return 0;
}

static int raw_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct raw *r = ud;

	(void)s;
	if (f->hd.type == NGHTTP2_DATA && f->hd.length) {
		r->data_frames++;
		if (f->hd.length > r->max_data_frame)
			r->max_data_frame = f->hd.length;
	}
	if (f->hd.type == NGHTTP2_RST_STREAM)
		r->got_rst = 1;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		r->goaway = 1;
		sy_loop_stop(T.loop);
	}
	return 0;
}

static int raw_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct raw *r = ud;

	(void)s;
	if (id == r->sid) {
		r->closed = 1;
		r->close_code = code;
		sy_loop_stop(T.loop);
	}
	return 0;
}

static ssize_t raw_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			nghttp2_data_source *src, void *ud)
{
	struct raw *r = ud;
	size_t n = r->body_len - r->body_off;

	(void)s;
	(void)id;
	(void)src;
	if (n > len)
		n = len;
	memcpy(buf, r->body + r->body_off, n);
	r->body_off += n;
	if (r->body_off == r->body_len) {
		if (r->end)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		else if (!n)
			return NGHTTP2_ERR_DEFERRED; /* keep the stream open */
	}
	return (ssize_t)n;
}

static void raw_io(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct raw *r = arg;
	uint8_t buf[16384];

	(void)l;
	if (ev & SY_EV_READ) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			r->eof = 1;
			sy_loop_del_fd(T.loop, fd);
			sy_loop_stop(T.loop);
			return;
		}
		if (n > 0)
			assert_true(nghttp2_session_mem_recv(r->s, buf, (size_t)n) >= 0);
	}
	nghttp2_session_send(r->s);
	sy_loop_mod_fd(T.loop, fd, SY_EV_READ | (nghttp2_session_want_write(r->s) ? SY_EV_WRITE : 0));
}

static int raw_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, T.sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static void raw_open(struct raw *r, uint32_t window)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};

	memset(r, 0, sizeof(*r));
	r->grpc_status = -1;
	r->fd = raw_connect();
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_send_callback(cb, raw_send_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, raw_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, raw_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, raw_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, raw_close);
	nghttp2_session_client_new(&r->s, cb, r);
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(r->s, NGHTTP2_FLAG_NONE, set, window ? 1 : 0);
	sy_loop_add_fd(T.loop, r->fd, SY_EV_READ | SY_EV_WRITE, raw_io, r);
}

#define H(n, v)                                                                                              \
	{                                                                                                    \
		(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                   \
	}

/* A request with extra headers ("name", "value", … NULL) and a raw body. */
static void raw_request(struct raw *r, const char *path, const uint8_t *body, size_t n, int end, ...)
{
	nghttp2_nv nv[16] = {
		H(":method", "POST"),	      H(":scheme", "http"), H(":path", path),
		H(":authority", "localhost"), H("te", "trailers"),
	};
	size_t k = 5;
	int has_ct = 0;
	va_list ap;
	nghttp2_data_provider dp = {.read_callback = raw_body};

	va_start(ap, end);
	for (const char *name; (name = va_arg(ap, const char *));) {
		const char *value = va_arg(ap, const char *);

		has_ct |= !strcmp(name, "content-type");
		nv[k++] = (nghttp2_nv)H(name, value);
	}
	va_end(ap);
	if (!has_ct)
		nv[k++] = (nghttp2_nv)H("content-type", "application/grpc");
	r->body = body;
	r->body_len = n;
	r->end = end;
	r->sid = nghttp2_submit_request(r->s, NULL, nv, k, &dp, NULL);
	assert_true(r->sid > 0);
	raw_io(T.loop, r->fd, SY_EV_WRITE, r);
}

static void raw_close_conn(struct raw *r)
{
	sy_loop_del_fd(T.loop, r->fd);
	close(r->fd);
	nghttp2_session_del(r->s);
	free(r->data);
}

/* A framed HealthCheckRequest{service = s}. */
static size_t framed_req(const char *s, int gzip, uint8_t **out)
{
	Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	size_t n, fl;
	uint8_t *b;

	q.service = (char *)s;
	n = protobuf_c_message_get_packed_size(&q.base);
	b = malloc(n + 1);
	protobuf_c_message_pack(&q.base, b);
	assert_int_equal(sy_grpc_frame(b, n, gzip, out, &fl), 0);
	free(b);
	return fl;
}

/* ---- tests: calls ------------------------------------------------------------------- */

static void unary_ok_and_health(void **state)
{
	struct result r;

	(void)state;
	call_and_wait("/test.T/Echo", "hello", 0, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_int_equal(r.nmsg, 1);
	assert_string_equal(r.first, "hello");
	result_free(&r);

	/* Health Check decodes as HealthCheckResponse: use the sync-style result. */
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0);
	Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	memset(&r, 0, sizeof(r));
	q.service = "";
	assert_int_equal(sy_rpc_client_call(c, "/grpc.health.v1.Health/Check", &q.base, RESP_DESC, 1000,
					    on_result, &r),
			 0);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_string_equal(r.first, "status=1"); /* SERVING */
	result_free(&r);

	memset(&r, 0, sizeof(r));
	q.service = "switchyard.v1.Control";
	sy_rpc_client_call(c, "/grpc.health.v1.Health/Check", &q.base, RESP_DESC, 1000, on_result, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_string_equal(r.first, "status=1");
	result_free(&r);

	memset(&r, 0, sizeof(r));
	q.service = "no.such.Service";
	sy_rpc_client_call(c, "/grpc.health.v1.Health/Check", &q.base, RESP_DESC, 1000, on_result, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_NOT_FOUND);
	assert_non_null(strstr(r.st.message, "no.such.Service"));
	assert_int_equal(r.nmsg, 0);
	sy_rpc_client_free(c);
	expect_no_calls();
}

static void status_and_percent_encoded_message(void **state)
{
	struct result r;

	(void)state;
	call_and_wait("/test.T/Fail", "9 ratio: 100% \xc3\xa9\n\x01 done", 0, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_FAILED_PRECONDITION);
	assert_string_equal(r.st.message, "ratio: 100% \xc3\xa9\n\x01 done");
	assert_int_equal(r.nmsg, 0);

	/* On the wire it is percent-encoded, in a trailers-only response. */
	struct raw w;
	uint8_t *b;
	size_t n = framed_req("5 a%b\n", 0, &b);

	raw_open(&w, 0);
	raw_request(&w, "/test.T/Fail", b, n, 1, NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_string_equal(w.status, "200");
	assert_int_equal(w.grpc_status, SY_GRPC_NOT_FOUND);
	assert_string_equal(w.grpc_message, "a%b\n");
	assert_int_equal(w.data_len, 0);
	raw_close_conn(&w);
	free(b);
	expect_no_calls();
}

static void unknown_method_is_unimplemented(void **state)
{
	struct result r;

	(void)state;
	call_and_wait("/test.T/NoSuch", "x", 0, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_UNIMPLEMENTED);
	assert_non_null(strstr(r.st.message, "/test.T/NoSuch"));
	call_and_wait("/no.such.Service/Method", "x", 0, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_UNIMPLEMENTED);
	assert_int_equal(T.handled, 0);
	expect_no_calls();
}

static void undecodable_request_is_invalid_argument(void **state)
{
	/* Field 1, length-delimited, length far past the end. */
	static const uint8_t bad[] = {0, 0, 0, 0, 6, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
	struct raw w;

	(void)state;
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", bad, sizeof(bad), 1, NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_INVALID_ARGUMENT);
	assert_non_null(strstr(w.grpc_message, "HealthCheckRequest"));
	assert_int_equal(T.handled, 0);
	raw_close_conn(&w);

	/* A request that stops inside its message. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", bad, 7, 1, NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_INVALID_ARGUMENT);
	raw_close_conn(&w);

	/* No message at all. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", bad, 0, 1, NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_INVALID_ARGUMENT);
	raw_close_conn(&w);
	expect_no_calls();
}

static void wrong_content_type_is_415(void **state)
{
	struct raw w;
	uint8_t *b;
	size_t n = framed_req("x", 0, &b);

	(void)state;
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", b, n, 1, "content-type", "application/json", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_string_equal(w.status, "415");
	assert_true(w.grpc_status > 0);
	assert_int_equal(T.handled, 0);
	raw_close_conn(&w);

	/* application/grpc+proto is gRPC too. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", b, n, 1, "content-type", "application/grpc+proto", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_string_equal(w.status, "200");
	assert_int_equal(w.grpc_status, 0);
	raw_close_conn(&w);
	free(b);
	expect_no_calls();
}

static void size_limits(void **state)
{
	struct result r;
	char *big = malloc(MAX_RECV + 100);

	(void)state;
	/* A request over the server's limit. */
	memset(big, 'q', MAX_RECV + 99);
	big[MAX_RECV + 99] = '\0';
	call_and_wait("/test.T/Echo", big, 0, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(T.handled, 0);
	free(big);

	/* A reply over the send limit (4 MiB default). */
	call_and_wait("/test.T/Big", "5000000", 0, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(r.st.message, "send limit"));

	/* A prefix claiming 2 GiB, the stream left open: refused at once, stream reset
	 * after the trailers since the client is still sending. */
	static const uint8_t huge[] = {0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4};
	struct raw w;

	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", huge, sizeof(huge), 0, NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(w.close_code, NGHTTP2_NO_ERROR);
	assert_true(w.got_rst);
	raw_close_conn(&w);
	expect_no_calls();
}

static void large_reply_crosses_flow_control_windows(void **state)
{
	struct result r;

	(void)state;
	/* 3 MiB: three times the client's stream window, many WINDOW_UPDATEs. */
	call_and_wait("/test.T/Big", "3145728", 0, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_int_equal(r.nmsg, 1);
	assert_int_equal(r.bytes, 3145728);
	result_free(&r);
	expect_no_calls();
}

static void tiny_window_paces_the_reply(void **state)
{
	struct raw w;
	uint8_t *b;
	size_t n = framed_req("200", 0, &b);

	(void)state;
	raw_open(&w, 16); /* 16 bytes of window: the reply needs many updates */
	raw_request(&w, "/test.T/Big", b, n, 1, NULL);
	assert_true(run_until(&w.closed, 1, 5000));
	assert_int_equal(w.grpc_status, 0);
	assert_true(w.max_data_frame <= 16);
	assert_true(w.data_frames >= 13);
	assert_int_equal(w.data_len, 5 + 3 + 200); /* prefix + tag/len + string */
	assert_int_equal(w.data[0], 0);
	raw_close_conn(&w);
	free(b);
	expect_no_calls();
}

static void streaming_queue_and_order(void **state)
{
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0);
	struct result r;

	(void)state;
	/* 200 × 64 KiB queued at once: far over every window; flow control paces it. */
	call(c, "/test.T/Flood", "200 65536", 0, &r);
	assert_true(run_until(&r.done, 1, 10000));
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_int_equal(r.nmsg, 200);
	assert_int_equal(r.bytes, 200u * 65536);
	assert_true(r.in_order);
	assert_true(T.pending_seen > 100u * 65536); /* most of it was still queued */
	result_free(&r);
	sy_rpc_client_free(c);
	expect_no_calls();
}

static void gzip_both_ways(void **state)
{
	struct result r;
	char *s = malloc(100001);

	(void)state;
	for (int i = 0; i < 100000; i++)
		s[i] = "gzip!"[i % 5];
	s[100000] = '\0';
	call_and_wait("/test.T/Echo", s, 0, 1, &r);
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_string_equal(r.last, s);
	result_free(&r);

	/* On the wire: the reply is gzip too, flagged per message. */
	struct raw w;
	uint8_t *b, *plain;
	size_t n = framed_req(s, 1, &b), pl;

	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", b, n, 1, "grpc-encoding", "gzip", "grpc-accept-encoding",
		    "identity, gzip", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, 0);
	assert_string_equal(w.encoding, "gzip");
	assert_true(w.data_len > 5 && w.data_len < 2000);
	assert_int_equal(w.data[0], 1);
	assert_int_equal(sy_gzip_decompress(w.data + 5, w.data_len - 5, 1 << 20, &plain, &pl), 0);
	assert_true(pl > 100000);
	free(plain);
	raw_close_conn(&w);

	/* A client that does not accept gzip gets identity even if it sent gzip. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", b, n, 1, "grpc-encoding", "gzip", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, 0);
	assert_int_equal(w.data[0], 0);
	raw_close_conn(&w);
	free(b);
	free(s);
	expect_no_calls();
}

static void gzip_errors(void **state)
{
	struct raw w;
	uint8_t *b;
	size_t n = framed_req("x", 1, &b);

	(void)state;
	/* Unknown encoding: UNIMPLEMENTED, with the encodings we do accept. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", b, n, 1, "grpc-encoding", "br", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_UNIMPLEMENTED);
	assert_non_null(strstr(w.accept, "gzip"));
	raw_close_conn(&w);

	/* Compressed flag without grpc-encoding: INTERNAL, as the spec says. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", b, n, 1, NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_INTERNAL);
	raw_close_conn(&w);
	free(b);

	/* A zip bomb: 64 MiB of zeros in ~64 KiB, decompression stops at the limit. */
	size_t big = 64u << 20, zl;
	uint8_t *zeros = calloc(1, big), *z, *f;

	assert_int_equal(sy_gzip_compress(zeros, big, &z, &zl), 0);
	free(zeros);
	f = malloc(zl + 5);
	f[0] = 1;
	f[1] = (uint8_t)(zl >> 24);
	f[2] = (uint8_t)(zl >> 16);
	f[3] = (uint8_t)(zl >> 8);
	f[4] = (uint8_t)zl;
	memcpy(f + 5, z, zl);
	free(z);
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", f, zl + 5, 1, "grpc-encoding", "gzip", NULL);
	assert_true(run_until(&w.closed, 1, 5000));
	assert_int_equal(w.grpc_status, SY_GRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(w.grpc_message, "decompressed"));
	raw_close_conn(&w);

	/* Not gzip at all. */
	memcpy(f + 5, "garbage!", 8);
	f[4] = 8;
	f[1] = f[2] = f[3] = 0;
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", f, 13, 1, "grpc-encoding", "gzip", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_INVALID_ARGUMENT);
	raw_close_conn(&w);
	free(f);
	assert_int_equal(T.handled, 0);
	expect_no_calls();
}

/* ---- tests: deadlines and cancellation ---------------------------------------------- */

static void client_deadline(void **state)
{
	struct result r;
	uint64_t t0 = sy_now_ms();

	(void)state;
	call_and_wait("/test.T/Never", "", 100, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_DEADLINE_EXCEEDED);
	assert_true(sy_now_ms() - t0 >= 100);
	assert_true(sy_now_ms() - t0 < 1000);
	/* The server heard it too (its own timer or our RST): cancel ran once. */
	assert_true(run_until(&T.cancels, 1, 1000));
	assert_int_equal(T.cancels, 1);
	assert_null(T.held);
	expect_no_calls();
}

static void server_deadline(void **state)
{
	struct raw w;
	uint8_t *b;
	size_t n = framed_req("", 0, &b);
	uint64_t t0 = sy_now_ms();

	(void)state;
	/* The client never gives up by itself: only grpc-timeout ends it. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Never", b, n, 1, "grpc-timeout", "50m", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_true(sy_now_ms() - t0 >= 50);
	assert_int_equal(w.grpc_status, SY_GRPC_DEADLINE_EXCEEDED);
	assert_int_equal(T.cancels, 1);
	raw_close_conn(&w);

	/* A streaming call past its deadline: the message sent, then the status. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Forever", b, n, 1, "grpc-timeout", "100000u", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_DEADLINE_EXCEEDED);
	assert_int_equal(w.data_len, 5 + 7); /* "first" */
	assert_int_equal(T.cancels, 2);
	raw_close_conn(&w);

	/* A malformed grpc-timeout is refused, not ignored. */
	raw_open(&w, 0);
	raw_request(&w, "/test.T/Echo", b, n, 1, "grpc-timeout", "soon", NULL);
	assert_true(run_until(&w.closed, 1, 2000));
	assert_int_equal(w.grpc_status, SY_GRPC_INVALID_ARGUMENT);
	raw_close_conn(&w);
	free(b);
	expect_no_calls();
}

static void client_cancel_mid_stream(void **state)
{
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0);
	struct sy_rpc_client_call *k;
	Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct result r = {0};

	(void)state;
	q.service = "";
	assert_int_equal(sy_rpc_client_start(c, "/test.T/Forever", &q.base, REQ_DESC, 0, on_result, &r, &k),
			 0);
	assert_true(run_until(&r.nmsg, 1, 2000));
	assert_string_equal(r.first, "first");
	assert_int_equal(live_calls(), 1);
	sy_rpc_client_cancel(k); /* cb runs now */
	assert_int_equal(r.done, 1);
	assert_int_equal(r.st.code, SY_GRPC_CANCELLED);
	assert_true(run_until(&T.cancels, 1, 2000));
	assert_null(T.held);
	expect_no_calls();
	/* The connection is still good for more calls. */
	result_free(&r);
	call(c, "/test.T/Echo", "again", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_OK);
	result_free(&r);
	sy_rpc_client_free(c);
}

static void connection_loss_cancels_handlers(void **state)
{
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0);
	struct result r;

	(void)state;
	call(c, "/test.T/Never", "", 0, &r);
	call(c, "/test.T/Never", "", 0, &r);
	assert_true(run_until(&T.handled, 2, 2000));
	sy_rpc_client_free(c); /* the socket closes under two live calls */
	assert_true(run_until(&T.cancels, 2, 2000));
	expect_no_calls();
}

/* ---- tests: concurrency ------------------------------------------------------------- */

static void hundred_concurrent_calls_and_many_connections(void **state)
{
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0), *cs[20];
	static struct result r[100], q[100];
	char arg[100][24];
	int ok = 0;

	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(arg[i], sizeof(arg[i]), "call-%d", i);
		call(c, "/test.T/Echo", arg[i], 5000, &r[i]);
	}
	for (int i = 0; i < 20; i++) {
		cs[i] = sy_rpc_client_new(T.loop, T.target, i & 1);
		for (int j = 0; j < 5; j++)
			call(cs[i], "/test.T/Echo", arg[i * 5 + j], 5000, &q[i * 5 + j]);
	}
	for (uint64_t end = sy_now_ms() + 5000; ok < 200 && sy_now_ms() < end;) {
		run_for(5);
		ok = 0;
		for (int i = 0; i < 100; i++)
			ok += r[i].done + q[i].done;
	}
	for (int i = 0; i < 100; i++) {
		assert_int_equal(r[i].st.code, SY_GRPC_OK);
		assert_string_equal(r[i].first, arg[i]);
		assert_int_equal(q[i].st.code, SY_GRPC_OK);
		assert_string_equal(q[i].first, arg[i]);
		result_free(&r[i]);
		result_free(&q[i]);
	}
	assert_int_equal(T.handled, 200);
	sy_rpc_client_free(c);
	for (int i = 0; i < 20; i++)
		sy_rpc_client_free(cs[i]);
	expect_no_calls();
}

/* ---- tests: health Watch ------------------------------------------------------------ */

static void health_watch_streams_changes(void **state)
{
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0);
	struct sy_rpc_client_call *k;
	Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct result r = {0};

	(void)state;
	q.service = "";
	assert_int_equal(sy_rpc_client_start(c, "/grpc.health.v1.Health/Watch", &q.base, RESP_DESC, 0,
					     on_result, &r, &k),
			 0);
	assert_true(run_until(&r.nmsg, 1, 2000));
	assert_string_equal(r.first, "status=1"); /* SERVING */
	sy_health_svc_set_serving(T.srv, false);
	assert_true(run_until(&r.nmsg, 2, 2000));
	assert_string_equal(r.first, "status=2"); /* NOT_SERVING */
	sy_health_svc_set_serving(T.srv, false);  /* no change, no message */
	sy_health_svc_set_serving(T.srv, true);
	assert_true(run_until(&r.nmsg, 3, 2000));
	assert_string_equal(r.first, "status=1");
	assert_int_equal(r.nmsg, 3);
	sy_rpc_client_cancel(k);
	expect_no_calls();
	/* The watcher is gone: a change now reaches nobody (and nothing crashes). */
	sy_health_svc_set_serving(T.srv, false);
	run_for(20);
	assert_int_equal(r.nmsg, 3);

	/* An unknown service: SERVICE_UNKNOWN, and the stream stays open. */
	result_free(&r);
	memset(&r, 0, sizeof(r));
	q.service = "nope";
	sy_rpc_client_start(c, "/grpc.health.v1.Health/Watch", &q.base, RESP_DESC, 0, on_result, &r, &k);
	assert_true(run_until(&r.nmsg, 1, 2000));
	assert_string_equal(r.first, "status=3");
	assert_int_equal(r.done, 0);
	sy_rpc_client_cancel(k);
	result_free(&r);
	sy_rpc_client_free(c);
	expect_no_calls();
}

/* ---- tests: connections, shutdown --------------------------------------------------- */

struct sink {
	uint8_t buf[4096];
	size_t n;
	int eof;
};

static void sink_io(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct sink *s = arg;
	ssize_t n;

	(void)ev;
	n = recv(fd, s->buf + s->n, sizeof(s->buf) - s->n, 0);
	if (n > 0) {
		s->n += (size_t)n;
		return;
	}
	if (n < 0 && errno == EAGAIN)
		return;
	s->eof = 1;
	sy_loop_del_fd(l, fd);
	sy_loop_stop(l);
}

/* Sends bytes on a fresh connection; returns what the server said before closing. */
static void send_raw_bytes(const void *bytes, size_t n, struct sink *s)
{
	int fd = raw_connect();

	memset(s, 0, sizeof(*s));
	assert_int_equal(send(fd, bytes, n, MSG_NOSIGNAL), (ssize_t)n);
	sy_loop_add_fd(T.loop, fd, SY_EV_READ, sink_io, s);
	assert_true(run_until(&s->eof, 1, 2000));
	close(fd);
}

/* True when the bytes hold a GOAWAY frame (type 7) at a frame boundary after the
 * server's SETTINGS. */
static int has_goaway(const struct sink *s)
{
	for (size_t off = 0; off + 9 <= s->n;) {
		size_t len = (size_t)s->buf[off] << 16 | (size_t)s->buf[off + 1] << 8 | s->buf[off + 2];

		if (s->buf[off + 3] == 7)
			return 1;
		off += 9 + len;
	}
	return 0;
}

static void malformed_http2_closes_only_that_connection(void **state)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	uint8_t bad[64];
	struct sink s;
	struct result r;
	struct sy_rpc_server_stats st;

	(void)state;
	/* A client that stays connected across the bad ones. */
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0);

	call(c, "/test.T/Echo", "before", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	result_free(&r);

	/* HTTP/1.1 instead of the preface. */
	send_raw_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, &s);
	assert_null(memmem(s.buf, s.n, "HTTP/1.1", 8));

	/* The preface, then a SETTINGS frame of 5 bytes (must be a multiple of 6). */
	memcpy(bad, preface, 24);
	memcpy(bad + 24,
	       "\x00\x00\x05\x04\x00\x00\x00\x00\x00"
	       "abcde",
	       14);
	send_raw_bytes(bad, 38, &s);
	assert_true(has_goaway(&s));

	/* A DATA frame on stream 0. */
	memcpy(bad + 24,
	       "\x00\x00\x01\x00\x00\x00\x00\x00\x00"
	       "z",
	       10);
	send_raw_bytes(bad, 34, &s);
	assert_true(has_goaway(&s));

	/* The old connection and new ones still work. */
	call(c, "/test.T/Echo", "after", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_string_equal(r.first, "after");
	result_free(&r);
	call_and_wait("/test.T/Echo", "new", 0, 0, &r);
	assert_int_equal(r.st.code, SY_GRPC_OK);
	result_free(&r);
	sy_rpc_client_free(c);
	run_for(20);
	sy_rpc_server_get_stats(T.srv, &st);
	assert_int_equal(st.conns, 0);
	assert_true(st.proto_errors >= 1);
}

static void on_shutdown_done(void *arg)
{
	(void)arg;
	T.shutdown_done = 1;
	T.shutdown_with_held = T.held != NULL;
	sy_loop_stop(T.loop);
}

static void graceful_shutdown(void **state)
{
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0);
	struct result late, never, after;
	struct sy_rpc_server_stats st;
	uint64_t t0;

	(void)state;
	call(c, "/test.T/Later", "100", 0, &late);
	run_for(20);
	assert_non_null(T.held);
	t0 = sy_now_ms();
	sy_rpc_server_shutdown(T.srv, 400, on_shutdown_done, NULL);
	/* Listener closed at once, its socket file removed. */
	assert_int_equal(access(T.sock, F_OK), -1);
	assert_int_equal(T.shutdown_done, 0);
	/* The call in flight finishes normally during the drain, and the drain ends only
	 * after it was answered (the client may read the answer after the drain ended). */
	assert_true(run_until(&late.done, 1, 2000));
	assert_int_equal(late.st.code, SY_GRPC_OK);
	assert_string_equal(late.first, "late");
	assert_true(run_until(&T.shutdown_done, 1, 2000));
	assert_int_equal(T.shutdown_with_held, 0);
	assert_true(sy_now_ms() - t0 < 400); /* nothing left to wait for */
	/* The client got GOAWAY: a new call needs a new connection, which is refused. */
	call(c, "/test.T/Echo", "x", 1000, &after);
	assert_true(run_until(&after.done, 1, 2000));
	assert_int_equal(after.st.code, SY_GRPC_UNAVAILABLE);
	assert_non_null(strstr(after.st.message, "No such file"));
	sy_rpc_server_get_stats(T.srv, &st);
	assert_int_equal(st.conns, 0);
	result_free(&late);
	sy_rpc_client_free(c);

	/* A second server whose call never ends: after the grace it is cancelled and the
	 * client hears UNAVAILABLE. */
	sy_rpc_server_free(T.srv);
	T.srv = make_server(T.loop, MAX_RECV);
	assert_int_equal(sy_rpc_server_listen(T.srv, T.target), 0);
	c = sy_rpc_client_new(T.loop, T.target, 0);
	call(c, "/test.T/Never", "", 0, &never);
	assert_true(run_until(&T.handled, 1, 2000));
	T.shutdown_done = 0;
	T.cancels = 0;
	t0 = sy_now_ms();
	sy_rpc_server_shutdown(T.srv, 150, on_shutdown_done, NULL);
	assert_true(run_until(&T.shutdown_done, 1, 2000));
	assert_true(sy_now_ms() - t0 >= 150);
	assert_int_equal(T.cancels, 1);
	assert_true(run_until(&never.done, 1, 2000));
	assert_int_equal(never.st.code, SY_GRPC_UNAVAILABLE);
	sy_rpc_client_free(c);
	expect_no_calls();
}

static void client_reconnects_after_server_restart(void **state)
{
	struct sy_rpc_client *c = sy_rpc_client_new(T.loop, T.target, 0);
	struct result r;

	(void)state;
	call(c, "/test.T/Echo", "one", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_OK);
	result_free(&r);
	sy_rpc_server_free(T.srv); /* connection dropped without GOAWAY */
	T.srv = make_server(T.loop, MAX_RECV);
	assert_int_equal(sy_rpc_server_listen(T.srv, T.target), 0);
	run_for(20); /* the client sees the close */
	call(c, "/test.T/Echo", "two", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_string_equal(r.first, "two");
	result_free(&r);
	sy_rpc_client_free(c);
}

static void connect_failures_are_unavailable(void **state)
{
	struct sy_rpc_client *c;
	struct result r;

	(void)state;
	c = sy_rpc_client_new(T.loop, "unix:/nonexistent/dir/x.sock", 0);
	call(c, "/test.T/Echo", "x", 0, &r);
	assert_int_equal(r.done, 0); /* reported from the loop, not from inside the call */
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_UNAVAILABLE);
	assert_non_null(strstr(r.st.message, "No such file or directory"));
	sy_rpc_client_free(c);

	c = sy_rpc_client_new(T.loop, "127.0.0.1:1", 0);
	call(c, "/test.T/Echo", "x", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_UNAVAILABLE);
	assert_non_null(strstr(r.st.message, "Connection refused"));
	sy_rpc_client_free(c);

	c = sy_rpc_client_new(T.loop, "not an address", 0);
	call(c, "/test.T/Echo", "x", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_UNAVAILABLE);
	assert_non_null(strstr(r.st.message, "bad server address"));
	sy_rpc_client_free(c);
}

/* ---- tests: listeners --------------------------------------------------------------- */

static void unix_listener_modes_and_stale_files(void **state)
{
	struct sy_rpc_server *other;
	char path[256], spec[300];
	struct stat st;
	int fd;

	(void)state;
	/* The fixture's socket: 0600. */
	assert_int_equal(stat(T.sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	/* Missing parents are created 0755, whatever the umask. */
	mode_t old = umask(077);

	snprintf(path, sizeof(path), "%s/a/b/s.sock", T.dir);
	snprintf(spec, sizeof(spec), "unix://%s", path);
	other = sy_rpc_server_new(T.loop, NULL);
	assert_int_equal(sy_rpc_server_listen(other, spec), 0);
	umask(old);
	snprintf(path, sizeof(path), "%s/a/b", T.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	snprintf(path, sizeof(path), "%s/a/b/s.sock", T.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A live socket is not stolen. */
	struct sy_rpc_server *thief = sy_rpc_server_new(T.loop, NULL);

	assert_int_equal(sy_rpc_server_listen(thief, spec), -EADDRINUSE);
	sy_rpc_server_free(thief);
	sy_rpc_server_free(other);
	assert_int_equal(access(path, F_OK), -1); /* removed on close */

	/* A stale socket (bound, never unlinked) is replaced. */
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	other = sy_rpc_server_new(T.loop, NULL);
	assert_int_equal(sy_rpc_server_listen(other, spec), 0);
	sy_rpc_server_free(other);

	/* A regular file is never removed. */
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	other = sy_rpc_server_new(T.loop, NULL);
	assert_int_equal(sy_rpc_server_listen(other, spec), -EEXIST);
	sy_rpc_server_free(other);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 4);
}

static void bad_listen_specs(void **state)
{
	struct sy_rpc_server *s = sy_rpc_server_new(T.loop, NULL);

	(void)state;
	assert_int_equal(sy_rpc_server_listen(s, "localhost:notaport"), -EINVAL);
	assert_int_equal(sy_rpc_server_listen(s, "127.0.0.1:70000"), -EINVAL);
	assert_int_equal(sy_rpc_server_listen(s, "example.com:80"), -EINVAL);
	assert_int_equal(sy_rpc_server_listen(s, "unix:"), -EINVAL);
	assert_int_equal(sy_rpc_server_listen(s, "unix://host/x.sock"), -EINVAL);
	assert_int_equal(sy_rpc_server_listen(s, "[::1:80"), -EINVAL);
	sy_rpc_server_free(s);
}

static void tcp_listeners_v4_and_v6(void **state)
{
	struct sy_rpc_client *c;
	struct result r;
	char tgt[64];
	int port;

	(void)state;
	assert_int_equal(sy_rpc_server_listen(T.srv, "127.0.0.1:0"), 0);
	port = sy_rpc_server_port(T.srv);
	assert_true(port > 0);
	snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", port);
	c = sy_rpc_client_new(T.loop, tgt, 0);
	call(c, "/test.T/Echo", "v4", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_string_equal(r.first, "v4");
	result_free(&r);
	sy_rpc_client_free(c);

	int e = sy_rpc_server_listen(T.srv, "[::1]:0");

	if (e == -EADDRNOTAVAIL || e == -EAFNOSUPPORT) {
		print_message("no IPv6 loopback here: v6 part skipped\n");
		return;
	}
	assert_int_equal(e, 0);
	assert_int_not_equal(sy_rpc_server_port(T.srv), port);
	snprintf(tgt, sizeof(tgt), "[::1]:%d", sy_rpc_server_port(T.srv));
	c = sy_rpc_client_new(T.loop, tgt, 1);
	call(c, "/test.T/Echo", "v6", 0, &r);
	assert_true(run_until(&r.done, 1, 2000));
	assert_int_equal(r.st.code, SY_GRPC_OK);
	assert_string_equal(r.first, "v6");
	result_free(&r);
	sy_rpc_client_free(c);
}

/* ---- tests: the blocking wrapper ---------------------------------------------------- */

struct bg {
	struct sy_loop *loop;
	int stop_fd[2];
};

static void bg_stop(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	sy_loop_stop(l);
}

static void *bg_run(void *arg)
{
	struct bg *b = arg;

	sy_loop_run(b->loop);
	return NULL;
}

static void sync_call_against_a_server_thread(void **state)
{
	struct bg b;
	struct sy_rpc_server *srv;
	struct sy_rpc_status st;
	ProtobufCMessage *resp;
	Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	char spec[200];
	pthread_t th;

	(void)state;
	/* A server on its own loop in a thread: sy_rpc_call_sync blocks this one. */
	b.loop = sy_loop_new();
	assert_int_equal(pipe(b.stop_fd), 0);
	sy_loop_add_fd(b.loop, b.stop_fd[0], SY_EV_READ, bg_stop, NULL);
	srv = make_server(b.loop, 0);
	snprintf(spec, sizeof(spec), "unix://%s/sync.sock", T.dir);
	assert_int_equal(sy_rpc_server_listen(srv, spec), 0);
	assert_int_equal(pthread_create(&th, NULL, bg_run, &b), 0);

	q.service = "";
	assert_int_equal(sy_rpc_call_sync(spec, "/grpc.health.v1.Health/Check", &q.base, RESP_DESC, 2000, 0,
					  &resp, &st),
			 0);
	assert_int_equal(st.code, SY_GRPC_OK);
	assert_non_null(resp);
	assert_int_equal(((Resp *)resp)->status,
			 GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	protobuf_c_message_free_unpacked(resp, NULL);

	q.service = "gzip me";
	assert_int_equal(sy_rpc_call_sync(spec, "/test.T/Echo", &q.base, REQ_DESC, 2000, 1, &resp, &st), 0);
	assert_int_equal(st.code, SY_GRPC_OK);
	assert_string_equal(((Req *)resp)->service, "gzip me");
	protobuf_c_message_free_unpacked(resp, NULL);

	assert_int_equal(sy_rpc_call_sync(spec, "/test.T/Never", &q.base, REQ_DESC, 100, 0, &resp, &st), 0);
	assert_int_equal(st.code, SY_GRPC_DEADLINE_EXCEEDED);
	assert_null(resp);

	q.service = "7 no";
	assert_int_equal(sy_rpc_call_sync(spec, "/test.T/Fail", &q.base, REQ_DESC, 2000, 0, &resp, &st), 0);
	assert_int_equal(st.code, SY_GRPC_PERMISSION_DENIED);
	assert_string_equal(st.message, "no");
	assert_null(resp);

	assert_int_equal(write(b.stop_fd[1], "x", 1), 1);
	pthread_join(th, NULL);
	sy_rpc_server_free(srv);
	sy_loop_free(b.loop);
	close(b.stop_fd[0]);
	close(b.stop_fd[1]);

	assert_int_equal(sy_rpc_call_sync(spec, "/test.T/Echo", &q.base, REQ_DESC, 2000, 0, &resp, &st), 0);
	assert_int_equal(st.code, SY_GRPC_UNAVAILABLE);
	assert_null(resp);
}

static void feed_raw_runs_a_request(void **state)
{
	/* A full h2 request as bytes, produced by a raw client session into memory. */
	nghttp2_session_callbacks *cb;
	nghttp2_session *s;
	struct sy_rpc_server_stats st;
	uint8_t wire[4096], *b;
	size_t n = 0, bl = framed_req("x", 0, &b);
	const uint8_t *d;
	ssize_t k;
	struct raw r = {.body = b, .body_len = bl, .end = 1};
	nghttp2_data_provider dp = {.read_callback = raw_body};
	nghttp2_nv nv[] = {H(":method", "POST"), H(":scheme", "http"), H(":path", "/test.T/Echo"),
			   H(":authority", "x"), H("content-type", "application/grpc")};

	(void)state;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_client_new(&s, cb, &r);
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
	nghttp2_submit_request(s, NULL, nv, 5, &dp, NULL);
	while ((k = nghttp2_session_mem_send(s, &d)) > 0) {
		memcpy(wire + n, d, (size_t)k);
		n += (size_t)k;
	}
	nghttp2_session_del(s);
	free(b);
	assert_int_equal(sy_rpc_server_feed_raw(T.srv, wire, n), 0);
	assert_int_equal(T.handled, 1);
	sy_rpc_server_get_stats(T.srv, &st);
	assert_int_equal(st.conns, 0);
	assert_int_equal(st.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(unary_ok_and_health, setup, teardown),
		cmocka_unit_test_setup_teardown(status_and_percent_encoded_message, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_method_is_unimplemented, setup, teardown),
		cmocka_unit_test_setup_teardown(undecodable_request_is_invalid_argument, setup, teardown),
		cmocka_unit_test_setup_teardown(wrong_content_type_is_415, setup, teardown),
		cmocka_unit_test_setup_teardown(size_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(large_reply_crosses_flow_control_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(tiny_window_paces_the_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(streaming_queue_and_order, setup, teardown),
		cmocka_unit_test_setup_teardown(gzip_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(gzip_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(client_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(server_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(client_cancel_mid_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(connection_loss_cancels_handlers, setup, teardown),
		cmocka_unit_test_setup_teardown(hundred_concurrent_calls_and_many_connections, setup,
						teardown),
		cmocka_unit_test_setup_teardown(health_watch_streams_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_http2_closes_only_that_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(graceful_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(client_reconnects_after_server_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_failures_are_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(unix_listener_modes_and_stale_files, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_listen_specs, setup, teardown),
		cmocka_unit_test_setup_teardown(tcp_listeners_v4_and_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(sync_call_against_a_server_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(feed_raw_runs_a_request, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
