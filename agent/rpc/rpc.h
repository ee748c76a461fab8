// SPDX-License-Identifier: Apache-2.0
/* rpc.h — gRPC over HTTP/2 (nghttp2) with protobuf-c messages, server and client, both
 * driven by the agent's event loop (loop.h): non-blocking, no threads.
 *
 * Server: register methods by full path ("/switchyard.v1.Control/Status") with their
 * request descriptor; the transport decodes the request (INVALID_ARGUMENT when it
 * cannot), enforces deadlines (grpc-timeout), size limits, gzip, flow control, and
 * hands the handler a decoded message. A handler answers now or later through the
 * call handle; a streaming handler sends any number of messages, then ends.
 */
#ifndef SY_RPC_H
#define SY_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

/* gRPC status codes. */
enum sy_grpc_code {
	SY_GRPC_OK = 0,
	SY_GRPC_CANCELLED = 1,
	SY_GRPC_UNKNOWN = 2,
	SY_GRPC_INVALID_ARGUMENT = 3,
	SY_GRPC_DEADLINE_EXCEEDED = 4,
	SY_GRPC_NOT_FOUND = 5,
	SY_GRPC_ALREADY_EXISTS = 6,
	SY_GRPC_PERMISSION_DENIED = 7,
	SY_GRPC_RESOURCE_EXHAUSTED = 8,
	SY_GRPC_FAILED_PRECONDITION = 9,
	SY_GRPC_ABORTED = 10,
	SY_GRPC_OUT_OF_RANGE = 11,
	SY_GRPC_UNIMPLEMENTED = 12,
	SY_GRPC_INTERNAL = 13,
	SY_GRPC_UNAVAILABLE = 14,
	SY_GRPC_DATA_LOSS = 15,
	SY_GRPC_UNAUTHENTICATED = 16,
};

#define SY_RPC_DEFAULT_MAX_MSG (4u << 20)

/* ---- server ---------------------------------------------------------------------- */

struct sy_rpc_server;
struct sy_rpc_call; /* one stream; valid until it is finished or cancelled */

typedef void (*sy_rpc_handler)(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg);
/* Called once if the peer cancels (RST_STREAM), the deadline expires or the connection
 * closes before the handler finished the call. The call is freed after it returns. */
typedef void (*sy_rpc_cancel_cb)(struct sy_rpc_call *call, void *arg);

/* Limits against hostile or broken clients; 0 = the default. Request bytes buffered in
 * partial messages are bounded per connection and server-wide (rpc_server.c): past
 * them a peer's flow-control window is not refilled until something is freed. */
struct sy_rpc_server_opts {
	size_t max_recv_msg;  /* 0 = SY_RPC_DEFAULT_MAX_MSG */
	size_t max_send_msg;  /* 0 = SY_RPC_DEFAULT_MAX_MSG */
	size_t max_conns;     /* open connections (default 128); more are closed at accept */
	uint32_t max_streams; /* concurrent streams per connection (default 100) */
};

struct sy_rpc_server *sy_rpc_server_new(struct sy_loop *loop, const struct sy_rpc_server_opts *opts);
/* "unix:/run/switchyard/switchyard.sock" (created mode 0600, a stale file replaced),
 * "127.0.0.1:PORT", "[::1]:PORT" (port 0 = any; see sy_rpc_server_port). Several
 * listeners may be added. */
int sy_rpc_server_listen(struct sy_rpc_server *srv, const char *spec);
int sy_rpc_server_port(struct sy_rpc_server *srv); /* TCP port of the last TCP listener */

int sy_rpc_server_add_unary(struct sy_rpc_server *srv, const char *path,
			    const ProtobufCMessageDescriptor *req_desc, sy_rpc_handler h, void *arg);
int sy_rpc_server_add_stream(struct sy_rpc_server *srv, const char *path,
			     const ProtobufCMessageDescriptor *req_desc, sy_rpc_handler h, void *arg);

/* GOAWAY to every connection, lets in-flight calls finish (or cancels them after
 * grace_ms), closes listeners, then calls done. */
void sy_rpc_server_shutdown(struct sy_rpc_server *srv, uint64_t grace_ms, void (*done)(void *), void *arg);
void sy_rpc_server_free(struct sy_rpc_server *srv);
/* Fuzzing hook: runs bytes through a fresh connection of srv (see rpc_server.c). */
int sy_rpc_server_feed_raw(struct sy_rpc_server *srv, const uint8_t *data, size_t len);

/* TLS (tls.h): every connection accepted on a TCP listener speaks TLS with tls (not
 * owned; sy_tls_reload on it rotates the certificate for the next connections). Unix
 * listeners stay plain: their 0600 mode is their access control. */
struct sy_tls;
struct sy_tls_conn;
void sy_rpc_server_set_tls(struct sy_rpc_server *srv, struct sy_tls *tls);
/* Marks a registered method as one a read-only identity (a client certificate with the
 * read-only OU, tls.h) may call. Every other method answers such a caller
 * PERMISSION_DENIED before its request is decoded. -ENOENT: no such method. */
int sy_rpc_server_allow_readonly(struct sy_rpc_server *srv, const char *path);
/* Fuzzing hook for the TLS record layer (see rpc_server.c). */
int sy_rpc_server_feed_tls(struct sy_rpc_server *srv, struct sy_tls_conn *client, const uint8_t *data,
			   size_t len, int encrypt);

/* Live counts, for tests (a cancelled or finished stream must leave calls at 0) and
 * for the daemon's own metrics. */
struct sy_rpc_server_stats {
	size_t conns;		  /* open connections */
	size_t calls;		  /* streams with a call object still allocated */
	uint64_t calls_total;	  /* streams ever started */
	uint64_t conns_total;	  /* connections ever accepted */
	uint64_t proto_errors;	  /* connections closed for malformed HTTP/2 */
	size_t req_buffered;	  /* request bytes held in unfinished messages, server-wide */
	uint64_t tls_refused;	  /* TLS handshakes that failed (no or a wrong certificate, …) */
	uint64_t readonly_denied; /* calls refused to a read-only identity */
};
void sy_rpc_server_get_stats(const struct sy_rpc_server *srv, struct sy_rpc_server_stats *st);

/* Unary: reply with a message (status OK) … */
int sy_rpc_reply(struct sy_rpc_call *call, const ProtobufCMessage *resp);
/* … or fail with a status and message (percent-encoded by the transport). Also ends a
 * stream. After either, the call handle must not be used. */
int sy_rpc_finish(struct sy_rpc_call *call, enum sy_grpc_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Streaming: queue one message. -EAGAIN never happens: messages queue in memory; use
 * sy_rpc_call_pending() to apply back-pressure (skip a tick when it is high). */
int sy_rpc_send(struct sy_rpc_call *call, const ProtobufCMessage *msg);
size_t sy_rpc_call_pending(const struct sy_rpc_call *call); /* bytes queued, unsent */
void sy_rpc_call_set_cancel(struct sy_rpc_call *call, sy_rpc_cancel_cb cb, void *arg);
/* Who called (rpc_peer.c): "uid=0 pid=42" on a unix socket (SO_PEERCRED),
 * "127.0.0.1:5000" / "[::1]:5000" over TCP, "" when unknown (a fuzzed connection).
 * Returns buf. */
const char *sy_rpc_call_peer(const struct sy_rpc_call *call, char *buf, size_t n);
/* The TLS peer certificate's subject ("CN=ops OU=viewers"), "" without TLS or one. */
const char *sy_rpc_call_tls_peer(const struct sy_rpc_call *call);
/* The connection's socket, -1 for none (rpc_peer.c's only way in). */
int sy_rpc_call_fd(const struct sy_rpc_call *call);
/* Deadline of the call in loop ms (sy_now_ms), 0 = none. */
uint64_t sy_rpc_call_deadline(const struct sy_rpc_call *call);

/* In-process calls: the HTTP door (api/http*.c) runs the very handlers a gRPC client
 * reaches, with their output handed to a sink instead of a stream. On the loop thread.
 * msg: one reply or stream message (0, or a negative errno that fails the send);
 * end: the final status, once, after which the call is gone; pending: bytes the sink
 * holds unsent, the handler's back-pressure (NULL = 0). */
struct sy_rpc_sink {
	int (*msg)(void *arg, const ProtobufCMessage *m);
	void (*end)(void *arg, enum sy_grpc_code code, const char *message);
	size_t (*pending)(void *arg);
};
/* Runs the method at path with req (its request type). A unary handler may end the
 * call before this returns. For a streaming method *out is the call, valid until
 * sink->end, for sy_rpc_local_cancel. -ENOENT: no such method or not its request type. */
int sy_rpc_server_invoke(struct sy_rpc_server *srv, const char *path, const ProtobufCMessage *req,
			 const struct sy_rpc_sink *sink, void *arg, struct sy_rpc_call **out);
/* The consumer went away: the handler's cancel callback runs (sink->end never does)
 * and the call is freed. */
void sy_rpc_local_cancel(struct sy_rpc_call *call);

/* ---- client ---------------------------------------------------------------------- */

struct sy_rpc_client;

struct sy_rpc_status {
	enum sy_grpc_code code;
	char message[512];
};

/* Connects to "unix:/path", "unix:///path", "HOST:PORT" or "[v6]:PORT" (numeric).
 * The connection is opened by the first call, and opened again by the next call after
 * it failed or the server sent GOAWAY: a long-lived client survives server restarts.
 * gzip != 0 compresses every request and asks for gzip replies. */
struct sy_rpc_client *sy_rpc_client_new(struct sy_loop *loop, const char *target, int gzip);
/* Calls still running end without their callback. Not from inside a callback. */
void sy_rpc_client_free(struct sy_rpc_client *c);
/* Speak TLS (tls.h, a client context; not owned) on the connections opened from now on:
 * ALPN h2, :scheme https, the server's certificate checked against the host of
 * as_written ("HOST:PORT" as the user wrote it, before any name was resolved; NULL =
 * the target): a DNS name or an IP address. A failed handshake ends the calls with
 * UNAVAILABLE and the reason ("TLS with HOST:PORT: certificate verify failed: …"). */
void sy_rpc_client_set_tls(struct sy_rpc_client *c, struct sy_tls *tls, const char *as_written);

/* msg == NULL signals the end of the call; then *st holds the final status. For a
 * unary call, on_msg is called once with the reply (then once with NULL). The
 * message is freed after the callback returns. */
typedef void (*sy_rpc_client_cb)(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg);

/* Starts a call; timeout_ms 0 = no deadline. Returns 0 or a negative errno; errors
 * reaching the server are reported through cb with UNAVAILABLE. */
int sy_rpc_client_call(struct sy_rpc_client *c, const char *path, const ProtobufCMessage *req,
		       const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, sy_rpc_client_cb cb,
		       void *arg);

/* The same, with a handle that sy_rpc_client_cancel accepts (a streaming call the
 * caller wants to stop, like `syctl watch` on Ctrl-C). The handle is valid until cb has
 * been called with msg == NULL. */
struct sy_rpc_client_call;
int sy_rpc_client_start(struct sy_rpc_client *c, const char *path, const ProtobufCMessage *req,
			const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, sy_rpc_client_cb cb,
			void *arg, struct sy_rpc_client_call **out);
/* The same with the request already framed by sy_grpc_frame (grpc_frame.h), compressed
 * exactly when the client was made with gzip: a caller that queues requests packs and
 * compresses each once, however often it is sent again. The bytes are copied. */
int sy_rpc_client_start_framed(struct sy_rpc_client *c, const char *path, const uint8_t *framed, size_t len,
			       const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms,
			       sy_rpc_client_cb cb, void *arg, struct sy_rpc_client_call **out);
/* Sends RST_STREAM(CANCEL) and ends the call at once: cb runs, before this returns,
 * with msg == NULL and CANCELLED. */
void sy_rpc_client_cancel(struct sy_rpc_client_call *k);

/* Blocking convenience for the CLI: runs a private loop until the unary call ends.
 * *resp is the reply (free with protobuf_c_message_free_unpacked) when code is OK. */
int sy_rpc_call_sync(const char *target, const char *path, const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, int gzip,
		     ProtobufCMessage **resp, struct sy_rpc_status *st);
/* The same over TLS (tls NULL: h2c). */
int sy_rpc_call_sync_tls(const char *target, struct sy_tls *tls, const char *path,
			 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
			 uint64_t timeout_ms, int gzip, ProtobufCMessage **resp, struct sy_rpc_status *st);

#endif
