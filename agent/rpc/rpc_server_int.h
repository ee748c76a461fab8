// SPDX-License-Identifier: Apache-2.0
/* rpc_server_int.h — what the two halves of the gRPC server share, and nothing else
 * includes: the structs of a server, its connections, calls and methods, and the
 * functions one half calls in the other. rpc_server.c owns connections, listeners,
 * the request budget and the server's life; rpc_call.c owns a call: its request
 * (nghttp2's stream callbacks, framing, dispatch) and its response (queue, trailers).
 * See rpc_server.c's first comment for lifetimes, I/O and bounds. */
#ifndef SY_RPC_SERVER_INT_H
#define SY_RPC_SERVER_INT_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "rpc/grpc_frame.h"
#include "rpc/h2_out.h"
#include "rpc/rpc.h"
#include "rpc/tls.h"
#define MAX_LISTENERS 8
#define MAX_CONNS     128
#define MAX_STREAMS   100	  /* per connection; nghttp2 refuses the rest */
#define STREAM_WINDOW (256 << 10) /* request bytes in flight per stream */
#define CONN_WINDOW   (512 << 10) /* … and per connection: what a stalled peer may still send */
#define CONN_BUDGET   (4u << 20)  /* request bytes buffered per connection, at least 2 messages */
#define TOTAL_BUDGET  (32u << 20) /* … and by the whole server, at least 4 messages */
#define TRIM_AFTER    (1u << 20)  /* a closed connection that held this much trims the heap */
/* A request must be complete (its END_STREAM seen) this long after its headers: the
 * control API's messages are kilobytes, and a stream that never completes would hold
 * its share of the budgets for as long as its connection lives. */
#define REQUEST_TIMEOUT_MS 10000
#define SWEEP_MS	   1000
/* A TLS client must finish its handshake this long after it connected: a connection
 * that never speaks would otherwise hold one of max_conns for good. */
#define HANDSHAKE_TIMEOUT_MS 10000
#define MAX_HEADER_LIST	     16384
#define GOAWAY_NOTICE_MS     50 /* shutdown notice → final GOAWAY: covers requests in flight */
#define SHUTDOWN_TICK_MS     20
#define ACCEPT_BACKOFF_MS    100 /* out of file descriptors: stop accepting for a moment */
#define READ_BUDGET	     8	 /* reads per wakeup, so one busy peer cannot starve others */

struct method {
	char *path;
	const ProtobufCMessageDescriptor *desc;
	sy_rpc_handler h;
	void *arg;
	int streaming;
	int readonly_ok; /* a read-only identity may call it (sy_rpc_server_allow_readonly) */
	struct method *next;
};

struct chunk {
	uint8_t *data;
	size_t len, off;
	STAILQ_ENTRY(chunk) link;
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

	STAILQ_HEAD(, chunk) chunks; /* framed messages waiting for nghttp2, in order */
	size_t pending;

	uint64_t started; /* loop ms of its first HEADERS */
	size_t held;	  /* request bytes buffered (reader + undecoded message), in the budgets */
	size_t owed;	  /* DATA bytes received but not yet credited back to the peer */

	sy_rpc_cancel_cb cancel;
	void *cancel_arg;
	LIST_ENTRY(sy_rpc_call) link; /* in conn->calls */

	/* An in-process call (rpc_local.c): no connection; its output goes to the sink. */
	const struct sy_rpc_sink *sink;
	void *sink_arg;
};

struct conn {
	struct sy_rpc_server *srv;
	int fd;			 /* -1: a raw connection fed by sy_rpc_server_feed_raw, output discarded */
	struct sy_tls_conn *tls; /* TLS (a TCP listener of a server with sy_rpc_server_set_tls) */
	int handshaking;	 /* TLS: no HTTP/2 byte moves until the handshake is done */
	int readonly;		 /* TLS: the client certificate is a read-only identity */
	uint64_t accepted;	 /* loop ms it was accepted (the handshake's deadline) */
	nghttp2_session *s;
	struct sy_h2_out out; /* what the socket did not take yet */
	LIST_HEAD(, sy_rpc_call) calls;
	unsigned events; /* interest registered with the loop */
	int closing;	 /* fatal: close at the next chance */
	int hold;	 /* inside mem_recv, or a batch of aborts: mem_send must wait,
			  * since it may close streams (and free calls) under our feet */
	int goaway_final;
	size_t held, peak;     /* request bytes buffered by its calls, now and at most */
	size_t owed;	       /* not credited back, of streams already closed */
	LIST_ENTRY(conn) link; /* in srv->conns */
};

struct listener {
	struct sy_rpc_server *srv;
	int fd;
	int tcp;
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
	LIST_HEAD(, conn) conns;
	struct sy_rpc_server_stats st;
	size_t max_conns, conn_budget, total_budget;
	uint32_t max_streams;
	size_t held, owed; /* request bytes buffered, and not credited back, server-wide */
	uint64_t repay_timer, trim_timer, sweep_timer;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *h2opt;
	struct sy_tls *tls;  /* not owned: every TCP connection speaks TLS with it */
	uint64_t reap_timer; /* closes connections that failed outside their I/O callback */
	int shutting_down;
	uint64_t shutdown_deadline, shutdown_timer;
	void (*done)(void *);
	void *done_arg;
};

void rpcs_call_free(struct sy_rpc_call *call);
void rpcs_call_cancel(struct sy_rpc_call *call);
void rpcs_end_call(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg);
void rpcs_abort_call(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg);
void rpcs_on_deadline(struct sy_loop *l, void *arg);
const struct method *rpcs_find_method(const struct sy_rpc_server *srv, const char *path);
/* rpc_local.c: the response side of an in-process call (call->sink set). */
int rpcs_local_send(struct sy_rpc_call *call, const ProtobufCMessage *msg);
int rpcs_local_reply(struct sy_rpc_call *call, const ProtobufCMessage *resp);
void rpcs_local_finish(struct sy_rpc_call *call, enum sy_grpc_code code, const char *msg);
int rpcs_on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int rpcs_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		   const uint8_t *value, size_t vlen, uint8_t flags, void *ud);
int rpcs_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud);
int rpcs_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int rpcs_on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int rpcs_on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud);
void rpcs_account(struct sy_rpc_call *call);
void rpcs_credit(struct conn *c, struct sy_rpc_call *call, int32_t id, size_t n);
void rpcs_sweep(struct sy_loop *l, void *arg);
void rpcs_conn_flush(struct conn *c);

#endif
