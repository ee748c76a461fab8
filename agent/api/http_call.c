// SPDX-License-Identifier: Apache-2.0
/* http_call.c — one HTTP request's call on the loop (see http_int.h, http.h): the
 * connection thread queues a job and waits; the loop runs the gRPC method in process
 * (sy_rpc_server_invoke) with a sink that renders each message as proto3 JSON; the
 * connection thread answers with it, or streams it as Server-Sent Events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/http_int.h"
#include "api/http_req.h"
#include "model/pbjson.h"
#include "switchyard/v1/events.pb-c.h"

/* ---- jobs -------------------------------------------------------------------------------- */

struct job *http_job_new(struct sy_http *h, const char *path, ProtobufCMessage *req, int stream)
{
	struct job *j = calloc(1, sizeof(*j));
	pthread_condattr_t ca;

	if (!j)
		return NULL;
	j->h = h;
	j->ctx = h->ctx;
	j->path = path;
	j->req = req;
	j->stream = stream;
	j->refs = 2;
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	return j;
}

void http_job_unref(struct job *j)
{
	int left;

	pthread_mutex_lock(&j->mu);
	left = --j->refs;
	pthread_mutex_unlock(&j->mu);
	if (left)
		return;
	if (j->req)
		protobuf_c_message_free_unpacked(j->req, NULL);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j->out);
	free(j);
}

/* Any thread: hands the job to the loop. */
static void job_queue(struct job *j)
{
	struct sy_http *h = j->h;
	uint64_t one = 1;

	pthread_mutex_lock(&h->mu);
	j->next = NULL;
	if (h->tail)
		h->tail->next = j;
	else
		h->head = j;
	h->tail = j;
	pthread_mutex_unlock(&h->mu);
	if (write(h->efd, &one, sizeof(one)) < 0) {
		/* an eventfd counter does not overflow at these rates */
	}
}

static int out_append(struct job *j, const char *s, size_t n)
{
	if (j->out_off && j->out_off == j->out_len)
		j->out_off = j->out_len = 0;
	if (j->out_len + n + 1 > j->out_cap) {
		size_t cap = j->out_cap ? j->out_cap : 4096;
		char *p;

		while (cap < j->out_len + n + 1)
			cap *= 2;
		if (!(p = realloc(j->out, cap)))
			return -ENOMEM;
		j->out = p;
		j->out_cap = cap;
	}
	memcpy(j->out + j->out_len, s, n);
	j->out_len += n;
	j->out[j->out_len] = '\0';
	return 0;
}

/* ---- the sink: loop thread ------------------------------------------------------------------ */

static int sink_msg(void *arg, const ProtobufCMessage *m)
{
	struct job *j = arg;
	char *json = NULL, head[48] = "";
	size_t len = 0;
	FILE *f = open_memstream(&json, &len);
	int e = 0;

	if (!f)
		return -ENOMEM;
	sy_pbjson_print(f, m);
	if (fclose(f) || !json) {
		free(json);
		return -ENOMEM;
	}
	/* an event's seq is its SSE id, so Last-Event-ID resumes exactly after it */
	if (j->stream && m->descriptor == &switchyard__v1__event__descriptor &&
	    ((const Switchyard__V1__Event *)m)->seq)
		snprintf(head, sizeof(head), "id: %llu\n",
			 (unsigned long long)((const Switchyard__V1__Event *)m)->seq);
	pthread_mutex_lock(&j->mu);
	if (j->stream)
		e = out_append(j, head, strlen(head)) || out_append(j, "data: ", 6) ||
				    out_append(j, json, len) || out_append(j, "\n\n", 2)
			    ? -ENOMEM
			    : 0;
	else
		e = out_append(j, json, len);
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	free(json);
	return e;
}

static void sink_end(void *arg, enum sy_grpc_code code, const char *message)
{
	struct job *j = arg;
	int started;

	if (j->action[0])
		sy_events_emit(j->ctx->events, j->migration, "http.action",
			       SY_EVENT_ATTRS({"source", "http"}, {"remote", j->remote},
					      {"action", j->action}, {"result", sy_grpc_code_name(code)}),
			       "%s of %s over http from %s: %s%s%s", j->action, j->migration, j->remote,
			       sy_grpc_code_name(code), *message ? ": " : "", message);
	pthread_mutex_lock(&j->mu);
	j->ended = 1;
	j->code = code;
	snprintf(j->msg, sizeof(j->msg), "%s", message);
	j->call = NULL;
	started = j->started;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (started) /* else the loop's reference goes when invoke returns */
		http_job_unref(j);
}

static size_t sink_pending(void *arg)
{
	struct job *j = arg;
	size_t n;

	pthread_mutex_lock(&j->mu);
	n = j->out_len - j->out_off;
	pthread_mutex_unlock(&j->mu);
	return n;
}

static const struct sy_rpc_sink sink = {sink_msg, sink_end, sink_pending};

static void run_job(struct job *j)
{
	struct sy_rpc_call *call = NULL;
	int gone, ended, e;

	if (j->cancel) {
		/* sink_end has not run (else the loop's reference is gone already): it never
		 * will now, so the loop lets go here; then the cancel's own reference */
		pthread_mutex_lock(&j->mu);
		ended = j->ended;
		j->ended = 1;
		pthread_mutex_unlock(&j->mu);
		if (!ended) {
			if (j->call)
				sy_rpc_local_cancel(j->call);
			j->call = NULL;
			http_job_unref(j);
		}
		http_job_unref(j);
		return;
	}
	pthread_mutex_lock(&j->mu);
	gone = j->gone;
	pthread_mutex_unlock(&j->mu);
	if (gone) { /* the client gave up before the loop got here */
		http_job_unref(j);
		return;
	}
	e = sy_rpc_server_invoke(j->h->rpc, j->path, j->req, &sink, j, &call);
	pthread_mutex_lock(&j->mu);
	if (e) {
		j->ended = 1;
		j->code = SY_GRPC_UNIMPLEMENTED;
		snprintf(j->msg, sizeof(j->msg), "%s is not served here", j->path);
	}
	j->started = 1;
	ended = j->ended;
	if (!ended)
		j->call = call;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (ended)
		http_job_unref(j);
}

void http_on_wake(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct sy_http *h = arg;
	struct job *j;
	uint64_t n;

	(void)l;
	(void)ev;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		j = h->head;
		if (j) {
			h->head = j->next;
			if (!h->head)
				h->tail = NULL;
		}
		pthread_mutex_unlock(&h->mu);
		if (!j)
			break;
		run_job(j);
	}
}

/* ---- replies: connection threads ------------------------------------------------------------- */

enum MHD_Result http_send_buf(struct MHD_Connection *c, unsigned status, const char *type, const void *body,
			      size_t len, enum MHD_ResponseMemoryMode mode, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* {"code": "NOT_FOUND", "message": "…"} */
enum MHD_Result http_send_error(struct MHD_Connection *c, unsigned status, enum sy_grpc_code code,
				const char *msg, const char *allow)
{
	char *json = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&json, &len);

	if (!f)
		return MHD_NO;
	fprintf(f, "{\"code\":\"%s\",\"message\":", sy_grpc_code_name(code));
	sy_json_string(f, msg);
	fputs("}\n", f);
	if (fclose(f) || !json) {
		free(json);
		return MHD_NO;
	}
	return http_send_buf(c, status ? status : sy_http_status_of(code), "application/json", json, len,
			     MHD_RESPMEM_MUST_FREE, allow);
}

static int stopping(struct sy_http *h)
{
	int s;

	pthread_mutex_lock(&h->mu);
	s = h->stopping;
	pthread_mutex_unlock(&h->mu);
	return s;
}

/* Waits on j->cv (j->mu held) for at most slice_ms: a stopping listener waits for no
 * loop turn (the loop is the one stopping it). */
static void wait_slice(struct job *j, long slice_ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += slice_ms / 1000;
	t.tv_nsec += (slice_ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&j->cv, &j->mu, &t);
}

/* With j->mu held, waits in slices of 100 ms (at most `slices`; -1: no limit) until *flag
 * is set or the server stops. */
static void wait_flag(struct sy_http *h, struct job *j, const int *flag, int slices)
{
	while (!*flag && (slices < 0 || slices-- > 0)) {
		pthread_mutex_unlock(&j->mu);
		if (stopping(h)) {
			pthread_mutex_lock(&j->mu);
			break;
		}
		pthread_mutex_lock(&j->mu);
		if (!*flag)
			wait_slice(j, 100);
	}
}

/* Waits for a unary call's end and answers with its JSON or its status. */
enum MHD_Result http_run_unary(struct sy_http *h, struct MHD_Connection *c, struct job *j)
{
	enum MHD_Result ret;

	job_queue(j);
	pthread_mutex_lock(&j->mu);
	wait_flag(h, j, &j->ended, CALL_WAIT_S * 10);
	if (!j->ended) {
		j->gone = 1;
		pthread_mutex_unlock(&j->mu);
		http_job_unref(j);
		return http_send_error(c, 0, SY_GRPC_UNAVAILABLE, "the agent did not answer in time", NULL);
	}
	pthread_mutex_unlock(&j->mu);
	if (j->code != SY_GRPC_OK)
		ret = http_send_error(c, 0, j->code, j->msg, NULL);
	else
		ret = http_send_buf(c, 200, "application/json", j->out ? j->out : "{}",
				    j->out ? j->out_len : 2, MHD_RESPMEM_MUST_COPY, NULL);
	http_job_unref(j);
	return ret;
}

/* SSE: what the stream has produced, or a heartbeat comment, or the end. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct job *j = cls;
	int stop = stopping(j->h);
	ssize_t n;

	(void)pos;
	pthread_mutex_lock(&j->mu);
	if (j->out_len == j->out_off && !j->ended && !stop)
		wait_slice(j, HEARTBEAT_MS);
	if (j->out_len > j->out_off) {
		n = (ssize_t)(j->out_len - j->out_off < max ? j->out_len - j->out_off : max);
		memcpy(buf, j->out + j->out_off, (size_t)n);
		j->out_off += (size_t)n;
	} else if (j->ended || stop) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		n = max >= 3 ? 3 : 0;
		memcpy(buf, ":\n\n", (size_t)n);
	}
	pthread_mutex_unlock(&j->mu);
	return n;
}

/* The connection is gone (or the stream ended): stop the call on the loop. */
static void sse_free(void *cls)
{
	struct job *j = cls;
	int live;

	pthread_mutex_lock(&j->mu);
	j->gone = 1;
	live = j->started && !j->ended;
	if (live)
		j->refs++; /* the cancel's, until the loop has run it */
	pthread_mutex_unlock(&j->mu);
	if (live) {
		pthread_mutex_lock(&j->h->mu);
		j->cancel = 1;
		pthread_mutex_unlock(&j->h->mu);
		job_queue(j); /* the loop's run_job cancels and lets go */
	}
	http_job_unref(j);
}

enum MHD_Result http_run_stream(struct sy_http *h, struct MHD_Connection *c, struct job *j)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	job_queue(j);
	/* the handler validates its request at once: an error is an HTTP status, not a stream */
	pthread_mutex_lock(&j->mu);
	wait_flag(h, j, &j->started, -1);
	if (!j->started || (j->ended && j->code != SY_GRPC_OK && j->out_len == 0)) {
		enum sy_grpc_code code = j->started ? j->code : SY_GRPC_UNAVAILABLE;
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", j->started ? j->msg : "shutting down");
		j->gone = 1;
		pthread_mutex_unlock(&j->mu);
		http_job_unref(j);
		return http_send_error(c, 0, code, msg, NULL);
	}
	pthread_mutex_unlock(&j->mu);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, j, sse_free);
	if (!r) {
		sse_free(j);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}
