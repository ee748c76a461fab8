// SPDX-License-Identifier: Apache-2.0
/* http_int.h — what the two halves of the HTTP listener share: http.c (the listener,
 * routing, the token) and http_call.c (a request's call: its hand-over to the loop,
 * the sink that collects its output, the reply or the SSE stream). Nothing else
 * includes it. */
#ifndef SY_HTTP_INT_H
#define SY_HTTP_INT_H

#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>

#include "api/http.h"

/* A connection silent for IDLE_TIMEOUT_S is closed (the connection limits are in
 * http.h). A stream is never silent that long: it sends a comment line every
 * HEARTBEAT_MS. */
#define IDLE_TIMEOUT_S 3
#define HEARTBEAT_MS   1500
#define CALL_WAIT_S    10 /* a unary call the loop has not answered by then is 503 */
#define TOKEN_MAX      256

struct job;

struct sy_http {
	struct sy_loop *loop;
	struct sy_rpc_server *rpc;
	struct sy_control_ctx *ctx;
	struct sy_prom *prom;
	struct MHD_Daemon *mhd;
	int listen_fd, efd, port;
	char token_file[PATH_MAX];
	pthread_mutex_t mu; /* the queue and the token */
	struct job *head, *tail;
	char token[TOKEN_MAX];
	size_t token_len; /* 0: actions disabled */
	int stopping;
	char *tls_cert, *tls_key; /* PEM for MHD (HTTPS), held while it runs; NULL = HTTP */
	size_t tls_key_len;
};

/* One request's call. Two owners: the connection's thread and the loop; freed by the
 * last to let go. Everything below mu is shared. */
struct job {
	struct sy_http *h;
	struct sy_control_ctx *ctx;
	const char *path;
	ProtobufCMessage *req;
	int stream;
	int cancel;				     /* queued again to cancel the running stream */
	char remote[64], action[16], migration[128]; /* action != "": an event names it */
	struct job *next;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs, started, ended, gone;
	enum sy_grpc_code code;
	char msg[512];
	char *out; /* unary: the reply's JSON; stream: SSE bytes not yet read */
	size_t out_len, out_off, out_cap;
	struct sy_rpc_call *call; /* a running stream (loop thread only) */
};

struct job *http_job_new(struct sy_http *h, const char *path, ProtobufCMessage *req, int stream);
void http_job_unref(struct job *j);
/* Loop thread: runs what the connection threads queued. */
void http_on_wake(struct sy_loop *l, int fd, unsigned ev, void *arg);
/* Connection threads: queue j, wait, answer (a unary call's JSON or error; a stream's
 * SSE response, or the error the handler answered at once). They take j's reference. */
enum MHD_Result http_run_unary(struct sy_http *h, struct MHD_Connection *c, struct job *j);
enum MHD_Result http_run_stream(struct sy_http *h, struct MHD_Connection *c, struct job *j);
enum MHD_Result http_send_buf(struct MHD_Connection *c, unsigned status, const char *type, const void *body,
			      size_t len, enum MHD_ResponseMemoryMode mode, const char *allow);
/* {"code": "NOT_FOUND", "message": "…"}; status 0 = the code's own (sy_http_status_of). */
enum MHD_Result http_send_error(struct MHD_Connection *c, unsigned status, enum sy_grpc_code code,
				const char *msg, const char *allow);

#endif
