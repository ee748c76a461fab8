// SPDX-License-Identifier: Apache-2.0
/* redis_conn.c — see redis_conn.h. The connection does its own I/O and keeps its own
 * queue of callbacks; hiredis parses the replies (its redisReader) and nothing else.
 * hiredis's async layer cost two allocations per command (its callback node, and our
 * call record it carried), freed and regrew its output buffer after every write (a 16
 * KiB malloc that made glibc consolidate its fast bins each time) and re-parsed every
 * formatted command's name: a quarter of the agent's CPU while it mirrors. Here a
 * command is appended to an output buffer that is kept, its callback to a ring, and
 * everything queued while the loop handles one batch of events leaves in one write()
 * just before the loop waits again (sy_loop_defer). */
#include "redis/redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "model/endpoint.h"
#include "redis/auth.h"

/* Reply objects. hiredis allocates every reply and its string and frees both after the
 * callback, two malloc/free pairs per replayed command. A top-level reply that is not an
 * array (+OK, :N, -ERR, nil, a short bulk) — what replays and most other commands get
 * back — is built in the connection's scratch object instead: the callback has it only
 * while it runs, which is all hiredis promises anyway. Arrays and their elements are
 * allocated as hiredis does and freed by freeReplyObject. */
#define SCRATCH_STR 256
/* A scratch object says so in its `element`, which non-array replies do not use. */
static redisReply *scratch_mark[1];

#define OBUF_START 16384
/* An output buffer grown past this by a burst is given back once it has been written. */
#define OBUF_KEEP (1u << 20)
/* Reads per readable event before the loop serves others. */
#define READS_PER_EVENT 4
#define RBUF		16384

/* A command sent and not yet answered. auth: the AUTH that opens the connection. */
struct call {
	sy_redis_reply_cb cb;
	void *priv;
	bool auth;
};

struct sy_redis {
	struct sy_loop *loop;
	int fd;		   /* -1 once gone */
	unsigned reg_mask; /* what epoll watches */
	bool tcp_up;	   /* the TCP connect completed */
	bool auth_wait;	   /* AUTH sent, its answer not yet in */
	bool gone;	   /* closed or failed: nothing more is sent */
	bool free_pending; /* freed from inside one of its callbacks: done on the way out */
	int depth;	   /* callbacks of this connection running */
	char auth_err[200];
	char user[SY_AUTH_USER_MAX]; /* who AUTH logs in as ("" = default), for messages */
	uint64_t fail_timer;	     /* reports a connection that could not even start */
	size_t inflight;
	uint64_t read_ns; /* when the last read returned */
	unsigned flags;	  /* sy_redis_flags: the callers' */
	sy_redis_state_cb cb;
	void *arg;
	char name[SY_EP_STRLEN];
	redisReader *reader;
	char *obuf; /* [osent, olen) still to write */
	size_t olen, osent, ocap;
	size_t auth_end; /* the AUTH's bytes at the head of obuf, wiped once written */
	struct call *q;	 /* ring of unanswered commands, oldest at qhead */
	size_t qhead, qlen, qcap;
	struct sy_defer flush;
	redisReply scratch;
	char scratch_str[SCRATCH_STR];
};

/* The object a reply of `type` is built in, linked into its parent array if any. The
 * type is the reply's, not the task's: a nil comes as a bulk or array task. */
static redisReply *reply_obj(const redisReadTask *task, int type, size_t str_len)
{
	struct sy_redis *c = task->privdata;
	bool has_str = type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS || type == REDIS_REPLY_ERROR;
	redisReply *r;

	if (!task->parent && type != REDIS_REPLY_ARRAY && str_len < SCRATCH_STR) {
		r = &c->scratch;
		memset(r, 0, sizeof(*r));
		r->element = scratch_mark;
		if (has_str)
			r->str = c->scratch_str;
	} else {
		r = calloc(1, sizeof(*r));
		if (!r)
			return NULL;
		if (has_str && !(r->str = malloc(str_len + 1))) {
			free(r);
			return NULL;
		}
		if (task->parent)
			((redisReply *)task->parent->obj)->element[task->idx] = r;
	}
	r->type = type;
	return r;
}

static void *reply_string(const redisReadTask *task, char *str, size_t len)
{
	redisReply *r = reply_obj(task, task->type, len);

	if (r) {
		memcpy(r->str, str, len);
		r->str[len] = 0;
		r->len = len;
	}
	return r;
}

static void *reply_array(const redisReadTask *task, int elements)
{
	redisReply *r = reply_obj(task, REDIS_REPLY_ARRAY, 0);

	if (r && elements > 0 && !(r->element = calloc((size_t)elements, sizeof(*r->element)))) {
		if (task->parent)
			((redisReply *)task->parent->obj)->element[task->idx] = NULL;
		free(r);
		return NULL;
	}
	if (r)
		r->elements = elements > 0 ? (size_t)elements : 0;
	return r;
}

static void *reply_integer(const redisReadTask *task, long long value)
{
	redisReply *r = reply_obj(task, REDIS_REPLY_INTEGER, 0);

	if (r)
		r->integer = value;
	return r;
}

static void *reply_nil(const redisReadTask *task)
{
	return reply_obj(task, REDIS_REPLY_NIL, 0);
}

static void reply_free(void *p)
{
	redisReply *r = p;

	if (r && r->element != scratch_mark)
		freeReplyObject(r);
}

static redisReplyObjectFunctions reply_fns = {
	.createString = reply_string,
	.createArray = reply_array,
	.createInteger = reply_integer,
	.createNil = reply_nil,
	.freeObject = reply_free,
};

/* ---- lifetime: a connection freed from inside its own callbacks goes on the way out - */

static void destroy(struct sy_redis *c);

static void enter(struct sy_redis *c)
{
	c->depth++;
}

/* c may be gone after this. */
static void leave(struct sy_redis *c)
{
	if (--c->depth == 0 && c->free_pending)
		destroy(c);
}

static void watch(struct sy_redis *c, unsigned mask)
{
	if (c->fd >= 0 && mask != c->reg_mask && sy_loop_mod_fd(c->loop, c->fd, mask) == 0)
		c->reg_mask = mask;
}

static bool pop_call(struct sy_redis *c, struct call *k)
{
	if (!c->qlen)
		return false;
	*k = c->q[c->qhead];
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qlen--;
	if (!k->auth)
		c->inflight--;
	return true;
}

/* Answers every unanswered command with NULL (outcome unknown). Its callbacks may queue
 * more: c is gone by then, so they are refused. */
static void answer_all_null(struct sy_redis *c)
{
	struct call k;

	while (pop_call(c, &k))
		if (!k.auth && k.cb)
			k.cb(c, NULL, k.priv);
}

static void close_fd(struct sy_redis *c)
{
	sy_loop_undefer(&c->flush);
	if (c->fd >= 0)
		sy_loop_close_fd(c->loop, &c->fd);
	c->reg_mask = 0;
}

/* The connection is lost: callers hear of it once, pending commands first. */
static void fail(struct sy_redis *c, const char *why)
{
	char w[200];

	if (c->gone)
		return;
	snprintf(w, sizeof(w), "%s", c->auth_err[0] ? c->auth_err : why);
	c->gone = true;
	close_fd(c);
	enter(c);
	answer_all_null(c);
	if (c->cb && !c->free_pending)
		c->cb(c, false, w, c->arg);
	leave(c);
}

static void fail_errno(struct sy_redis *c, const char *what, int err)
{
	char why[160];

	snprintf(why, sizeof(why), "%s%s%s", what ? what : "", what ? ": " : "", strerror(err));
	fail(c, why);
}

/* ---- writing --------------------------------------------------------------------------- */

static void flush(struct sy_redis *c)
{
	while (c->osent < c->olen) {
		ssize_t n = write(c->fd, c->obuf + c->osent, c->olen - c->osent);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			fail_errno(c, NULL, errno);
			return;
		}
		c->osent += (size_t)n;
		if (c->auth_end && c->osent >= c->auth_end) {
			/* the password has left: no copy of it stays in memory */
			sy_secret_wipe(c->obuf, c->auth_end);
			c->auth_end = 0;
		}
	}
	if (c->osent == c->olen) {
		c->olen = c->osent = 0;
		if (c->ocap > OBUF_KEEP) {
			free(c->obuf);
			c->obuf = NULL;
			c->ocap = 0;
		}
	}
	watch(c, SY_EV_READ | (c->osent < c->olen ? SY_EV_WRITE : 0));
}

static void on_flush(struct sy_loop *l, void *arg)
{
	struct sy_redis *c = arg;

	(void)l;
	enter(c);
	if (!c->gone && c->tcp_up && !(c->reg_mask & SY_EV_WRITE))
		flush(c);
	leave(c);
}

/* Room for n more bytes at the end of obuf. */
static char *obuf_room(struct sy_redis *c, size_t n)
{
	if (c->osent && c->osent == c->olen)
		c->olen = c->osent = 0;
	if (c->olen + n > c->ocap && c->osent && c->auth_end == 0) {
		/* what was written makes room at the head */
		memmove(c->obuf, c->obuf + c->osent, c->olen - c->osent);
		c->olen -= c->osent;
		c->osent = 0;
	}
	if (c->olen + n > c->ocap) {
		size_t cap = c->ocap ? c->ocap : OBUF_START;
		char *b;

		while (cap < c->olen + n)
			cap *= 2;
		if (!(b = realloc(c->obuf, cap)))
			return NULL;
		c->obuf = b;
		c->ocap = cap;
	}
	return c->obuf + c->olen;
}

/* The next command's callback: at the ring's tail. */
static int push_call(struct sy_redis *c, sy_redis_reply_cb cb, void *priv, bool auth)
{
	if (c->qlen == c->qcap) {
		size_t cap = c->qcap ? c->qcap * 2 : 64;
		struct call *q = malloc(cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		for (size_t i = 0; i < c->qlen; i++)
			q[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = q;
		c->qhead = 0;
		c->qcap = cap;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = (struct call){.cb = cb, .priv = priv, .auth = auth};
	c->qlen++;
	if (!auth)
		c->inflight++;
	if (c->tcp_up)
		sy_loop_defer(c->loop, &c->flush);
	return 0;
}

static char *put_num(char *p, char type, size_t n)
{
	char d[24];
	int i = 0;

	*p++ = type;
	do
		d[i++] = (char)('0' + n % 10);
	while ((n /= 10));
	while (i)
		*p++ = d[--i];
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

/* Appends one command in RESP form. */
static int append_argv(struct sy_redis *c, int argc, const char **argv, const size_t *lens)
{
	size_t n = 24;
	char *p;

	for (int i = 0; i < argc; i++)
		n += 1 + 20 + 2 + lens[i] + 2;
	if (!(p = obuf_room(c, n)))
		return -ENOMEM;
	p = put_num(p, '*', (size_t)argc);
	for (int i = 0; i < argc; i++) {
		p = put_num(p, '$', lens[i]);
		memcpy(p, argv[i], lens[i]);
		p += lens[i];
		*p++ = '\r';
		*p++ = '\n';
	}
	c->olen = (size_t)(p - c->obuf);
	return 0;
}

static bool can_send(const struct sy_redis *c)
{
	return !c->gone && !c->free_pending;
}

int sy_redis_send(struct sy_redis *c, const char *resp, size_t len, sy_redis_reply_cb cb, void *priv)
{
	char *p;

	if (!can_send(c))
		return -ENOTCONN;
	if (!(p = obuf_room(c, len)))
		return -ENOMEM;
	memcpy(p, resp, len);
	if (push_call(c, cb, priv, false))
		return -ENOMEM; /* nothing was committed: olen is unchanged */
	c->olen += len;
	return 0;
}

int sy_redis_sendv(struct sy_redis *c, int argc, const char **argv, const size_t *lens, sy_redis_reply_cb cb,
		   void *priv)
{
	size_t olen;

	if (!can_send(c))
		return -ENOTCONN;
	if (argc <= 0)
		return -EINVAL;
	olen = c->olen;
	if (append_argv(c, argc, argv, lens))
		return -ENOMEM;
	if (push_call(c, cb, priv, false)) {
		c->olen = olen;
		return -ENOMEM;
	}
	return 0;
}

/* ---- reading --------------------------------------------------------------------------- */

static void on_auth(struct sy_redis *c, redisReply *reply)
{
	c->auth_wait = false;
	if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0) {
		if (c->cb)
			c->cb(c, true, NULL, c->arg);
		return;
	}
	/* what was queued behind it gets NULL, never the server's NOAUTH answers */
	if (reply->type == REDIS_REPLY_ERROR && reply->str)
		sy_redis_auth_refused(c->user, reply->str, reply->len, c->auth_err, sizeof(c->auth_err));
	else
		sy_redis_auth_refused(c->user, "an answer that is not OK", 24, c->auth_err,
				      sizeof(c->auth_err));
	fail(c, c->auth_err); /* the owner hears why from its state callback, and logs it */
}

/* Hands every complete reply to its command's callback. */
static void dispatch(struct sy_redis *c)
{
	while (!c->gone && !c->free_pending) {
		void *r = NULL;
		struct call k;

		if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
			char why[160];

			snprintf(why, sizeof(why), "protocol error: %s", c->reader->errstr);
			fail(c, why);
			return;
		}
		if (!r)
			return;
		if (!pop_call(c, &k)) {
			reply_free(r);
			fail(c, "protocol error: a reply to no command");
			return;
		}
		if (k.auth)
			on_auth(c, r);
		else if (k.cb)
			k.cb(c, r, k.priv);
		reply_free(r);
	}
}

static void do_read(struct sy_redis *c)
{
	char buf[RBUF];
	struct timespec ts;

	for (int i = 0; i < READS_PER_EVENT && !c->gone && !c->free_pending; i++) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n == 0) {
			fail(c, "Server closed the connection");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fail_errno(c, NULL, errno);
			return;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		c->read_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
			fail(c, "out of memory for a reply");
			return;
		}
		dispatch(c);
		if ((size_t)n < sizeof(buf))
			return;
	}
}

/* ---- connecting ------------------------------------------------------------------------ */

static void tcp_connected(struct sy_redis *c)
{
	c->tcp_up = true;
	if (!c->auth_wait && c->cb)
		c->cb(c, true, NULL, c->arg);
	if (!c->gone && !c->free_pending)
		flush(c);
}

static void on_fd(struct sy_loop *l, int fd, unsigned events, void *arg)
{
	struct sy_redis *c = arg;

	(void)l;
	(void)fd;
	enter(c);
	if (!c->tcp_up) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err)
			fail_errno(c, "connect", err);
		else if (events & (SY_EV_WRITE | SY_EV_READ))
			tcp_connected(c);
	} else {
		if (events & (SY_EV_READ | SY_EV_ERROR))
			do_read(c);
		if ((events & SY_EV_WRITE) && !c->gone && !c->free_pending)
			flush(c);
	}
	leave(c);
}

/* A connection that could not start (its password file unreadable): reported from a
 * timer, as the owner may not take a "gone" from inside its own connect call. */
static void report_failed(struct sy_loop *l, void *arg)
{
	struct sy_redis *c = arg;

	(void)l;
	c->fail_timer = 0;
	enter(c);
	if (c->cb && !c->free_pending)
		c->cb(c, false, c->auth_err, c->arg);
	leave(c);
}

/* Queues AUTH ahead of anything else. 0, or -1 with c->auth_err set. */
static int queue_auth(struct sy_redis *c, const struct sy_auth_spec *auth)
{
	char pw[SY_SECRET_MAX + 1];
	const char *argv[3];
	size_t lens[3];
	int argc = sy_redis_auth_argv(auth, pw, argv, lens, c->auth_err, sizeof(c->auth_err));

	if (argc < 0)
		return -1;
	snprintf(c->user, sizeof(c->user), "%s", auth->user);
	if (append_argv(c, argc, argv, lens) || push_call(c, NULL, NULL, true)) {
		snprintf(c->auth_err, sizeof(c->auth_err), "AUTH could not be queued");
		argc = -1;
	} else {
		c->auth_wait = true;
		c->auth_end = c->olen;
	}
	sy_secret_wipe(pw, sizeof(pw));
	return argc < 0 ? -1 : 0;
}

/* Starts a non-blocking connect: 0, or a negative errno. */
static int start_connect(struct sy_redis *c, const struct sy_endpoint *ep)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int one = 1;

	if (ep->family == SY_AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = ep->port;
		memcpy(&a->sin_addr, ep->addr + 12, 4);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = ep->port;
		memcpy(&a->sin6_addr, ep->addr, 16);
		sl = sizeof(*a);
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	/* replays are small and pipelined: they must not wait for Nagle */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
		return -errno;
	c->reg_mask = SY_EV_READ | SY_EV_WRITE; /* the connect completes on writable */
	return sy_loop_add_fd(c->loop, c->fd, c->reg_mask, on_fd, c);
}

struct sy_redis *sy_redis_connect(struct sy_loop *l, const struct sy_endpoint *ep,
				  const struct sy_auth_spec *auth, sy_redis_state_cb cb, void *arg)
{
	struct sy_redis *c = calloc(1, sizeof(*c));
	int e;

	if (!c)
		return NULL;
	c->loop = l;
	c->cb = cb;
	c->arg = arg;
	c->fd = -1;
	c->flush = (struct sy_defer){.cb = on_flush, .arg = c};
	sy_endpoint_format(ep, c->name, sizeof(c->name));
	c->reader = redisReaderCreateWithFunctions(&reply_fns);
	if (!c->reader) {
		free(c);
		return NULL;
	}
	c->reader->privdata = c;
	if (sy_redis_auth_wanted(auth) && queue_auth(c, auth)) {
		c->gone = true; /* dead from the start: nothing can be queued */
		c->fail_timer = sy_loop_add_timer(l, 0, report_failed, c);
		return c;
	}
	if ((e = start_connect(c, ep)) < 0) {
		sy_warn("redis", "connect %s: %s", c->name, strerror(-e));
		c->cb = NULL;
		destroy(c);
		return NULL;
	}
	return c;
}

/* ---- the rest of the API --------------------------------------------------------------- */

unsigned *sy_redis_flags(struct sy_redis *c)
{
	return &c->flags;
}

bool sy_redis_up(const struct sy_redis *c)
{
	/* connected, and authenticated when asked (a refused AUTH makes it gone) */
	return c && c->tcp_up && !c->auth_wait && !c->gone;
}

bool sy_redis_alive(const struct sy_redis *c)
{
	return c && can_send(c);
}

uint64_t sy_redis_read_ns(const struct sy_redis *c)
{
	return c->read_ns;
}

size_t sy_redis_inflight(const struct sy_redis *c)
{
	return c ? c->inflight : 0;
}

static void destroy(struct sy_redis *c)
{
	c->cb = NULL; /* no state callback for a close we asked for */
	sy_loop_cancel_timer(c->loop, c->fail_timer);
	c->gone = true;
	close_fd(c);
	c->depth++; /* a callback freeing c again is a no-op now */
	answer_all_null(c);
	if (c->auth_end)
		sy_secret_wipe(c->obuf, c->auth_end);
	redisReaderFree(c->reader);
	free(c->obuf);
	free(c->q);
	free(c);
}

void sy_redis_free(struct sy_redis *c)
{
	if (!c)
		return;
	if (c->depth) { /* also while destroy() answers the pending commands: a no-op then */
		c->free_pending = true;
		c->cb = NULL;
		return;
	}
	destroy(c);
}
