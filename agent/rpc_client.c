/* rpc_client.c — gRPC client over HTTP/2 (h2c) on nghttp2, on the event loop. One
 * connection per client, many concurrent calls; each call ends exactly once through
 * its callback with msg == NULL and the final status. syctl uses the blocking wrapper
 * sy_rpc_call_sync, which runs a private loop. */
#include "rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "grpc_frame.h"

struct ccall {
	struct sy_rpc_client *c;
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
	int gzip_in;
	int done;
	uint64_t timer;
	struct ccall *next;
};

struct sy_rpc_client {
	struct sy_loop *loop;
	int fd;
	int connected;
	int failed;
	char fail_msg[512];
	int gzip;
	nghttp2_session *s;
	uint8_t *out;
	size_t out_len, out_off;
	struct ccall *calls;
	int in_recv;
};

static void cflush(struct sy_rpc_client *c);

static void call_end(struct ccall *k, enum sy_grpc_code code, const char *msg)
{
	struct sy_rpc_client *c = k->c;

	if (k->done)
		return;
	k->done = 1;
	sy_loop_cancel_timer(c->loop, k->timer);
	if (msg) {
		k->st.code = code;
		snprintf(k->st.message, sizeof(k->st.message), "%s", msg);
	}
	k->cb(NULL, &k->st, k->arg);
}

static void call_free(struct ccall *k)
{
	struct sy_rpc_client *c = k->c;

	for (struct ccall **pp = &c->calls; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	sy_loop_cancel_timer(c->loop, k->timer);
	sy_grpc_reader_free(&k->rd);
	free(k->body);
	free(k);
}

static void fail_all(struct sy_rpc_client *c, const char *why)
{
	c->failed = 1;
	snprintf(c->fail_msg, sizeof(c->fail_msg), "%s", why);
	for (struct ccall *k = c->calls; k; k = k->next)
		call_end(k, SY_GRPC_UNAVAILABLE, why);
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct ccall *k = src->ptr;
	size_t n = k->len - k->off;

	(void)s;
	(void)id;
	(void)ud;
	if (n > len)
		n = len;
	memcpy(buf, k->body + k->off, n);
	k->off += n;
	if (k->off == k->len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct ccall *k = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	(void)flags;
	(void)ud;
	if (!k)
		return 0;
	if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
		k->http_status = atoi((const char *)value);
	} else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		char v[16];

		snprintf(v, sizeof(v), "%.*s", (int)(vlen < 15 ? vlen : 15), value);
		k->st.code = (enum sy_grpc_code)atoi(v);
		k->have_status = 1;
	} else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		sy_grpc_percent_decode((const char *)value, vlen, k->st.message, sizeof(k->st.message));
	} else if (nlen == 13 && memcmp(name, "grpc-encoding", 13) == 0) {
		k->gzip_in = vlen == 4 && memcmp(value, "gzip", 4) == 0;
	}
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
	struct ccall *k = nghttp2_session_get_stream_user_data(s, id);

	(void)flags;
	(void)ud;
	while (k && !k->done && len) {
		uint8_t *msg, *plain = NULL;
		size_t mlen, plen;
		int comp, r = sy_grpc_reader_feed(&k->rd, &data, &len, &msg, &mlen, &comp);
		ProtobufCMessage *m;

		if (r < 0) {
			call_end(k, SY_GRPC_RESOURCE_EXHAUSTED, "response message too large");
			nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
			return 0;
		}
		if (r == 0)
			break;
		if (comp) {
			if (sy_gzip_decompress(msg, mlen, SY_RPC_DEFAULT_MAX_MSG, &plain, &plen)) {
				free(msg);
				call_end(k, SY_GRPC_INTERNAL, "response is not valid gzip");
				nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
				return 0;
			}
			free(msg);
			msg = plain;
			mlen = plen;
		}
		m = protobuf_c_message_unpack(k->resp_desc, NULL, mlen, msg);
		free(msg);
		if (!m) {
			call_end(k, SY_GRPC_INTERNAL, "response is not a valid message");
			nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
			return 0;
		}
		k->st.code = SY_GRPC_OK;
		k->cb(m, &k->st, k->arg);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct ccall *k = nghttp2_session_get_stream_user_data(s, id);
	char why[96];

	(void)ud;
	if (!k)
		return 0;
	if (!k->done) {
		if (k->have_status) {
			call_end(k, k->st.code, NULL);
		} else if (k->http_status && k->http_status != 200) {
			snprintf(why, sizeof(why), "HTTP status %d without grpc-status", k->http_status);
			call_end(k, SY_GRPC_UNKNOWN, why);
		} else {
			snprintf(why, sizeof(why), "stream closed without status (%s)", nghttp2_http2_strerror(code));
			call_end(k, code == NGHTTP2_REFUSED_STREAM ? SY_GRPC_UNAVAILABLE : SY_GRPC_INTERNAL, why);
		}
	}
	call_free(k);
	return 0;
}

static void cflush(struct sy_rpc_client *c)
{
	if (c->failed || !c->connected || c->in_recv)
		return;
	for (;;) {
		if (c->out_off < c->out_len) {
			ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				fail_all(c, strerror(errno));
				return;
			}
			c->out_off += (size_t)w;
			continue;
		}
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(c->s, &d);

		if (n <= 0)
			break;
		uint8_t *nb = realloc(c->out, (size_t)n);

		if (!nb) {
			fail_all(c, "out of memory");
			return;
		}
		c->out = nb;
		memcpy(c->out, d, (size_t)n);
		c->out_len = (size_t)n;
		c->out_off = 0;
	}
	sy_loop_mod_fd(c->loop, c->fd, SY_EV_READ | (c->out_off < c->out_len ? SY_EV_WRITE : 0));
}

static void cio(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct sy_rpc_client *c = arg;
	uint8_t buf[16384];
	char why[300];

	(void)l;
	if (!c->connected) {
		int err = 0;
		socklen_t sl = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (err) {
			snprintf(why, sizeof(why), "connect: %s", strerror(err));
			sy_loop_del_fd(c->loop, fd);
			fail_all(c, why);
			return;
		}
		c->connected = 1;
	}
	if (ev & SY_EV_READ) {
		for (;;) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				sy_loop_del_fd(c->loop, fd);
				fail_all(c, n == 0 ? "connection closed by the server" : strerror(errno));
				return;
			}
			c->in_recv = 1;
			ssize_t r = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
			c->in_recv = 0;
			if (r < 0) {
				sy_loop_del_fd(c->loop, fd);
				snprintf(why, sizeof(why), "HTTP/2: %s", nghttp2_strerror((int)r));
				fail_all(c, why);
				return;
			}
		}
	}
	cflush(c);
}

static int split_target(const char *t, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64];
	const char *colon, *path = NULL;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(t, "unix:///", 8) == 0)
		path = t + 7;
	else if (strncmp(t, "unix://", 7) == 0)
		path = t + 7;
	else if (strncmp(t, "unix:", 5) == 0)
		path = t + 5;
	if (path) {
		struct sockaddr_un *u = (struct sockaddr_un *)ss;

		if (strlen(path) >= sizeof(u->sun_path) || !*path)
			return -EINVAL;
		u->sun_family = AF_UNIX;
		strcpy(u->sun_path, path);
		*sl = sizeof(*u);
		return 0;
	}
	if (t[0] == '[') {
		const char *close = strchr(t, ']');
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (!close || close[1] != ':' || (size_t)(close - t - 1) >= sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(close - t - 1), t + 1);
		colon = close + 1;
		a->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_port = htons((unsigned short)atoi(colon + 1));
		*sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		colon = strrchr(t, ':');
		if (!colon || (size_t)(colon - t) >= sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - t), t);
		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		a->sin_family = AF_INET;
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		a->sin_port = htons((unsigned short)atoi(colon + 1));
		*sl = sizeof(*a);
	}
	if (atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
		return -EINVAL;
	return 0;
}

struct sy_rpc_client *sy_rpc_client_new(struct sy_loop *loop, const char *target, int gzip)
{
	struct sy_rpc_client *c = calloc(1, sizeof(*c));
	nghttp2_session_callbacks *cbs;
	struct sockaddr_storage ss;
	socklen_t sl;
	char why[300];

	if (!c)
		return NULL;
	c->loop = loop;
	c->gzip = gzip;
	c->fd = -1;
	if (nghttp2_session_callbacks_new(&cbs)) {
		free(c);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	if (nghttp2_session_client_new(&c->s, cbs, c)) {
		nghttp2_session_callbacks_del(cbs);
		free(c);
		return NULL;
	}
	nghttp2_session_callbacks_del(cbs);
	nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, NULL, 0);
	if (split_target(target, &ss, &sl)) {
		snprintf(why, sizeof(why), "bad server address \"%.200s\" (unix:///PATH or HOST:PORT)", target);
		c->failed = 1;
		snprintf(c->fail_msg, sizeof(c->fail_msg), "%s", why);
		return c;
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)) {
		snprintf(c->fail_msg, sizeof(c->fail_msg), "connect %s: %s", target, strerror(errno));
		c->failed = 1;
		return c;
	}
	if (ss.ss_family != AF_UNIX) {
		int one = 1;

		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	sy_loop_add_fd(loop, c->fd, SY_EV_READ | SY_EV_WRITE, cio, c);
	return c;
}

void sy_rpc_client_free(struct sy_rpc_client *c)
{
	if (!c)
		return;
	while (c->calls) {
		c->calls->done = 1;
		call_free(c->calls);
	}
	if (c->fd >= 0) {
		sy_loop_del_fd(c->loop, c->fd);
		close(c->fd);
	}
	nghttp2_session_del(c->s);
	free(c->out);
	free(c);
}

static void on_call_deadline(struct sy_loop *l, void *arg)
{
	struct ccall *k = arg;

	(void)l;
	k->timer = 0;
	nghttp2_submit_rst_stream(k->c->s, NGHTTP2_FLAG_NONE, k->id, NGHTTP2_CANCEL);
	call_end(k, SY_GRPC_DEADLINE_EXCEEDED,
		 k->c->connected ? "deadline exceeded" : "deadline exceeded while connecting");
	cflush(k->c);
}

static void fail_later(struct sy_loop *l, void *arg)
{
	struct ccall *k = arg;

	(void)l;
	k->timer = 0;
	call_end(k, SY_GRPC_UNAVAILABLE, k->c->fail_msg);
	call_free(k);
}

int sy_rpc_client_call(struct sy_rpc_client *c, const char *path, const ProtobufCMessage *req,
		       const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, sy_rpc_client_cb cb, void *arg)
{
	struct ccall *k = calloc(1, sizeof(*k));
	size_t n = protobuf_c_message_get_packed_size(req);
	uint8_t *plain;
	char tmo[32];
	int e;

	if (!k)
		return -ENOMEM;
	k->c = c;
	k->resp_desc = resp_desc;
	k->cb = cb;
	k->arg = arg;
	sy_grpc_reader_init(&k->rd, SY_RPC_DEFAULT_MAX_MSG);
	k->next = c->calls;
	c->calls = k;
	if (c->failed) {
		/* Report through the callback, from the loop, like any other failure. */
		k->timer = sy_loop_add_timer(c->loop, 0, fail_later, k);
		return 0;
	}
	plain = malloc(n ? n : 1);
	if (!plain) {
		call_free(k);
		return -ENOMEM;
	}
	protobuf_c_message_pack(req, plain);
	e = sy_grpc_frame(plain, n, c->gzip, &k->body, &k->len);
	free(plain);
	if (e) {
		call_free(k);
		return e;
	}
	nghttp2_nv hdr[9] = {
		{(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
		{(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		{(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
		{(uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0},
		{(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
		{(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
		{(uint8_t *)"grpc-accept-encoding", (uint8_t *)"identity,gzip", 20, 13, 0},
	};
	size_t nh = 7;

	if (c->gzip)
		hdr[nh++] = (nghttp2_nv){(uint8_t *)"grpc-encoding", (uint8_t *)"gzip", 13, 4, 0};
	if (timeout_ms) {
		sy_grpc_timeout_format(timeout_ms, tmo, sizeof(tmo));
		hdr[nh++] = (nghttp2_nv){(uint8_t *)"grpc-timeout", (uint8_t *)tmo, 12, strlen(tmo), 0};
	}
	nghttp2_data_provider dp = {.source.ptr = k, .read_callback = body_read};

	k->id = nghttp2_submit_request(c->s, NULL, hdr, nh, &dp, k);
	if (k->id < 0) {
		call_free(k);
		return -EIO;
	}
	if (timeout_ms)
		k->timer = sy_loop_add_timer(c->loop, timeout_ms, on_call_deadline, k);
	cflush(c);
	return 0;
}

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

		if (buf) {
			protobuf_c_message_pack(msg, buf);
			if (*s->resp)
				protobuf_c_message_free_unpacked(*s->resp, NULL);
			*s->resp = protobuf_c_message_unpack(msg->descriptor, NULL, n, buf);
			free(buf);
		}
		return;
	}
	*s->st = *st;
	s->done = 1;
	sy_loop_stop(s->loop);
}

int sy_rpc_call_sync(const char *target, const char *path, const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *resp_desc, uint64_t timeout_ms, int gzip, ProtobufCMessage **resp,
		     struct sy_rpc_status *st)
{
	struct sy_loop *loop = sy_loop_new();
	struct sy_rpc_client *c;
	struct sync_ctx s = {.loop = loop, .resp = resp, .st = st};
	int e;

	*resp = NULL;
	memset(st, 0, sizeof(*st));
	if (!loop)
		return -ENOMEM;
	c = sy_rpc_client_new(loop, target, gzip);
	if (!c) {
		sy_loop_free(loop);
		return -ENOMEM;
	}
	e = sy_rpc_client_call(c, path, req, resp_desc, timeout_ms, sync_cb, &s);
	if (e == 0 && !s.done)
		sy_loop_run(loop);
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
