// SPDX-License-Identifier: Apache-2.0
/* redis_conn.c — see redis_conn.h. The event hooks follow hiredis's own adapters
 * (adapters/ae.h): hiredis says when it wants to read or write, we keep the epoll
 * registration in step. */
#include "redis/redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* hiredis empties its output buffer after each write and grows it again command by
 * command (a realloc at every doubling); a batch of replays starts it at this size. */
#define OBUF_START 16384

struct sy_redis {
	struct sy_loop *loop;
	redisAsyncContext *ac; /* NULL once gone */
	int fd;
	unsigned mask;
	unsigned reg_mask; /* what epoll has: hiredis asks again for every command */
	bool registered;
	bool connected;	  /* up: TCP connected, and authenticated when asked */
	bool tcp_up;	  /* the TCP connect completed */
	bool auth_wait;	  /* AUTH sent, its answer not yet in */
	bool auth_failed; /* AUTH refused: the replies queued behind it are NOAUTHs */
	char auth_err[200];
	char user[SY_AUTH_USER_MAX]; /* who AUTH logs in as ("" = default), for messages */
	uint64_t fail_timer;	     /* reports a connection that could not even start */
	size_t inflight;
	unsigned flags; /* sy_redis_flags: the callers' */
	sy_redis_state_cb cb;
	void *arg;
	char name[SY_EP_STRLEN];
	redisReply scratch;
	char scratch_str[SCRATCH_STR];
};

struct call {
	struct sy_redis *c;
	sy_redis_reply_cb cb;
	void *priv;
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

static void on_fd(struct sy_loop *l, int fd, unsigned events, void *arg)
{
	struct sy_redis *c = arg;

	(void)l;
	(void)fd;
	if ((events & (SY_EV_READ | SY_EV_ERROR)) && c->ac)
		redisAsyncHandleRead(c->ac);
	if ((events & SY_EV_WRITE) && c->ac)
		redisAsyncHandleWrite(c->ac);
}

static void update(struct sy_redis *c)
{
	if (c->fd < 0)
		return;
	if (!c->registered) {
		if (sy_loop_add_fd(c->loop, c->fd, c->mask, on_fd, c) == 0) {
			c->registered = true;
			c->reg_mask = c->mask;
		}
		return;
	}
	if (c->mask != c->reg_mask && sy_loop_mod_fd(c->loop, c->fd, c->mask) == 0)
		c->reg_mask = c->mask;
}

/* hiredis's event hooks: each turns one interest on or off. */
static void want(void *p, unsigned ev, bool on)
{
	struct sy_redis *c = p;

	c->mask = on ? c->mask | ev : c->mask & ~ev;
	update(c);
}

static void add_read(void *p)
{
	want(p, SY_EV_READ, true);
}

static void del_read(void *p)
{
	want(p, SY_EV_READ, false);
}

static void add_write(void *p)
{
	want(p, SY_EV_WRITE, true);
}

static void del_write(void *p)
{
	want(p, SY_EV_WRITE, false);
}

static void cleanup(void *p)
{
	struct sy_redis *c = p;

	if (c->registered)
		sy_loop_del_fd(c->loop, c->fd);
	c->registered = false;
	c->fd = -1;
	c->mask = 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct sy_redis *c = ac->data;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns, without on_disconnect (that
		 * is only for connections that were up) */
		char why[160];

		snprintf(why, sizeof(why), "connect: %s", ac->errstr ? ac->errstr : "error");
		c->ac = NULL;
		c->connected = false;
		if (c->cb)
			c->cb(c, false, why, c->arg);
		return;
	}
	c->tcp_up = true;
	if (c->auth_wait)
		return; /* up once the AUTH is answered */
	c->connected = true;
	if (c->cb)
		c->cb(c, true, NULL, c->arg);
}

static void on_auth(redisAsyncContext *ac, void *r, void *priv)
{
	struct sy_redis *c = priv;
	redisReply *reply = r;
	c->auth_wait = false;
	if (!reply)
		return; /* lost before the answer: on_disconnect says so */
	if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0) {
		if (c->tcp_up && c->ac && !(c->ac->c.flags & REDIS_DISCONNECTING)) {
			c->connected = true;
			if (c->cb)
				c->cb(c, true, NULL, c->arg);
		}
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR && reply->str)
		sy_redis_auth_refused(c->user, reply->str, reply->len, c->auth_err, sizeof(c->auth_err));
	else
		sy_redis_auth_refused(c->user, "an answer that is not OK", 24, c->auth_err,
				      sizeof(c->auth_err));
	c->auth_failed = true;
	redisAsyncDisconnect(ac); /* the owner hears why from its state callback, and logs it */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sy_redis *c = ac->data;
	char why[200];

	snprintf(why, sizeof(why), "%s",
		 c->auth_err[0]	      ? c->auth_err
		 : status == REDIS_OK ? "closed"
				      : (ac->errstr ? ac->errstr : "error"));
	/* hiredis frees the context after this returns */
	c->ac = NULL;
	c->connected = false;
	if (c->cb)
		c->cb(c, false, why, c->arg);
}

/* A connection that could not start (its password file unreadable): reported from a
 * timer, as the owner may not take a "gone" from inside its own connect call. */
static void report_failed(struct sy_loop *l, void *arg)
{
	struct sy_redis *c = arg;

	(void)l;
	c->fail_timer = 0;
	if (c->cb)
		c->cb(c, false, c->auth_err, c->arg);
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
	if (redisAsyncCommandArgv(c->ac, on_auth, c, argc, argv, lens) != REDIS_OK) {
		snprintf(c->auth_err, sizeof(c->auth_err), "AUTH could not be queued");
		argc = -1;
	} else {
		c->auth_wait = true;
	}
	/* hiredis keeps its formatted copy until written; ours goes now */
	sy_secret_wipe(pw, sizeof(pw));
	return argc < 0 ? -1 : 0;
}

struct sy_redis *sy_redis_connect(struct sy_loop *l, const struct sy_endpoint *ep,
				  const struct sy_auth_spec *auth, sy_redis_state_cb cb, void *arg)
{
	struct sy_redis *c = calloc(1, sizeof(*c));
	char ip[INET6_ADDRSTRLEN];
	int port = ntohs(ep->port);

	if (!c)
		return NULL;
	c->loop = l;
	c->cb = cb;
	c->arg = arg;
	c->fd = -1;
	sy_endpoint_format(ep, c->name, sizeof(c->name));
	if (ep->family == SY_AF_INET)
		inet_ntop(AF_INET, ep->addr + 12, ip, sizeof(ip));
	else
		inet_ntop(AF_INET6, ep->addr, ip, sizeof(ip));
	c->ac = redisAsyncConnect(ip, port);
	if (!c->ac || c->ac->err) {
		sy_warn("redis", "connect %s: %s", c->name, c->ac ? c->ac->errstr : "out of memory");
		if (c->ac)
			redisAsyncFree(c->ac);
		free(c);
		return NULL;
	}
	c->ac->data = c;
	c->ac->c.reader->fn = &reply_fns;
	c->ac->c.reader->privdata = c;
	c->fd = c->ac->c.fd;
	c->ac->ev.data = c;
	c->ac->ev.addRead = add_read;
	c->ac->ev.delRead = del_read;
	c->ac->ev.addWrite = add_write;
	c->ac->ev.delWrite = del_write;
	c->ac->ev.cleanup = cleanup;
	redisAsyncSetConnectCallback(c->ac, on_connect);
	redisAsyncSetDisconnectCallback(c->ac, on_disconnect);
	if (sy_redis_auth_wanted(auth) && queue_auth(c, auth)) {
		redisAsyncContext *ac = c->ac;

		c->ac = NULL;
		ac->onConnect = NULL;
		ac->onDisconnect = NULL;
		redisAsyncFree(ac);
		c->fail_timer = sy_loop_add_timer(l, 0, report_failed, c);
		return c;
	}
	add_write(c); /* the connect completes on the first writable event */
	return c;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct call *k = priv;

	(void)ac;
	k->c->inflight--;
	/* behind a refused AUTH, the server's answers are NOAUTHs: not executed */
	if (k->cb)
		k->cb(k->c, k->c->auth_failed ? NULL : r, k->priv);
	free(k);
}

static struct call *new_call(struct sy_redis *c, sy_redis_reply_cb cb, void *priv)
{
	struct call *k = malloc(sizeof(*k));

	if (k) {
		k->c = c;
		k->cb = cb;
		k->priv = priv;
	}
	return k;
}

/* A call record for a command about to be sent: -ENOTCONN when the connection is
 * going, -ENOMEM. */
static int open_call(struct sy_redis *c, sy_redis_reply_cb cb, void *priv, struct call **k)
{
	if (!c->ac || (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
		return -ENOTCONN;
	*k = new_call(c, cb, priv);
	return *k ? 0 : -ENOMEM;
}

static void obuf_start(struct sy_redis *c)
{
	sds o = c->ac->c.obuf;

	if (o && sdslen(o) == 0 && sdsavail(o) < OBUF_START && (o = sdsMakeRoomFor(o, OBUF_START)))
		c->ac->c.obuf = o;
}

int sy_redis_send(struct sy_redis *c, const char *resp, size_t len, sy_redis_reply_cb cb, void *priv)
{
	struct call *k;
	int e;

	if ((e = open_call(c, cb, priv, &k)))
		return e;
	obuf_start(c);
	if (redisAsyncFormattedCommand(c->ac, on_reply, k, resp, len) != REDIS_OK) {
		free(k);
		return -EIO;
	}
	c->inflight++;
	return 0;
}

int sy_redis_sendv(struct sy_redis *c, int argc, const char **argv, const size_t *lens, sy_redis_reply_cb cb,
		   void *priv)
{
	struct call *k;
	int e;

	if ((e = open_call(c, cb, priv, &k)))
		return e;
	obuf_start(c);
	if (redisAsyncCommandArgv(c->ac, on_reply, k, argc, argv, lens) != REDIS_OK) {
		free(k);
		return -EIO;
	}
	c->inflight++;
	return 0;
}

unsigned *sy_redis_flags(struct sy_redis *c)
{
	return &c->flags;
}

bool sy_redis_up(const struct sy_redis *c)
{
	return c && c->ac && c->connected;
}

bool sy_redis_alive(const struct sy_redis *c)
{
	return c && c->ac && !(c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

size_t sy_redis_inflight(const struct sy_redis *c)
{
	return c ? c->inflight : 0;
}

void sy_redis_free(struct sy_redis *c)
{
	if (!c)
		return;
	sy_loop_cancel_timer(c->loop, c->fail_timer);
	if (c->ac) {
		redisAsyncContext *ac = c->ac;

		/* no state callback for a close we asked for */
		c->cb = NULL;
		ac->onDisconnect = NULL;
		c->ac = NULL;
		redisAsyncFree(ac); /* runs pending callbacks with NULL, then cleanup */
	}
	free(c);
}
