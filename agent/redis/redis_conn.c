/* redis_conn.c — see redis_conn.h. The event hooks follow hiredis's own adapters
 * (adapters/ae.h): hiredis says when it wants to read or write, we keep the epoll
 * registration in step. */
#include "redis/redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/endpoint.h"
#include "core/log.h"
#include "core/loop.h"

struct sy_redis {
	struct sy_loop *loop;
	redisAsyncContext *ac; /* NULL once gone */
	int fd;
	unsigned mask;
	unsigned reg_mask; /* what epoll has: hiredis asks again for every command */
	bool registered;
	bool connected;
	size_t inflight;
	sy_redis_state_cb cb;
	void *arg;
	char name[SY_EP_STRLEN];
};

struct call {
	struct sy_redis *c;
	sy_redis_reply_cb cb;
	void *priv;
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

static void add_read(void *p)
{
	struct sy_redis *c = p;

	c->mask |= SY_EV_READ;
	update(c);
}

static void del_read(void *p)
{
	struct sy_redis *c = p;

	c->mask &= ~SY_EV_READ;
	update(c);
}

static void add_write(void *p)
{
	struct sy_redis *c = p;

	c->mask |= SY_EV_WRITE;
	update(c);
}

static void del_write(void *p)
{
	struct sy_redis *c = p;

	c->mask &= ~SY_EV_WRITE;
	update(c);
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
	c->connected = true;
	if (c->cb)
		c->cb(c, true, NULL, c->arg);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sy_redis *c = ac->data;
	char why[160];

	snprintf(why, sizeof(why), "%s", status == REDIS_OK ? "closed" : (ac->errstr ? ac->errstr : "error"));
	/* hiredis frees the context after this returns */
	c->ac = NULL;
	c->connected = false;
	if (c->cb)
		c->cb(c, false, why, c->arg);
}

struct sy_redis *sy_redis_connect(struct sy_loop *l, const struct sy_endpoint *ep, sy_redis_state_cb cb,
				  void *arg)
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
	c->fd = c->ac->c.fd;
	c->ac->ev.data = c;
	c->ac->ev.addRead = add_read;
	c->ac->ev.delRead = del_read;
	c->ac->ev.addWrite = add_write;
	c->ac->ev.delWrite = del_write;
	c->ac->ev.cleanup = cleanup;
	redisAsyncSetConnectCallback(c->ac, on_connect);
	redisAsyncSetDisconnectCallback(c->ac, on_disconnect);
	add_write(c); /* the connect completes on the first writable event */
	return c;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct call *k = priv;

	(void)ac;
	k->c->inflight--;
	k->cb(k->c, r, k->priv);
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

int sy_redis_send(struct sy_redis *c, const char *resp, size_t len, sy_redis_reply_cb cb, void *priv)
{
	struct call *k;

	if (!c->ac || (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
		return -ENOTCONN;
	k = new_call(c, cb, priv);
	if (!k)
		return -ENOMEM;
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

	if (!c->ac || (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
		return -ENOTCONN;
	k = new_call(c, cb, priv);
	if (!k)
		return -ENOMEM;
	if (redisAsyncCommandArgv(c->ac, on_reply, k, argc, argv, lens) != REDIS_OK) {
		free(k);
		return -EIO;
	}
	c->inflight++;
	return 0;
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
