// SPDX-License-Identifier: Apache-2.0
/* redis_conn.h — a Redis client on the agent's event loop: non-blocking connect,
 * pipelined commands (what is queued in one pass of the loop leaves in one write),
 * replies parsed by hiredis's reader (Debian libhiredis) and handed to callbacks.
 * The agent's own connections are never steered nor observed by the kernel (its tgid
 * is skipped), so what it writes is never captured again: no mirror loops.
 * With credentials, AUTH is the connection's first command, queued before any other
 * (redis/auth.h): every caller gets an authenticated connection without asking. A
 * refused AUTH, or a password file that cannot be read, makes the connection "gone"
 * with the reason; what was queued behind the AUTH gets NULL replies, never the
 * server's NOAUTH answers. */
#ifndef SY_REDIS_CONN_H
#define SY_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "switchyard/abi.h"

struct sy_loop;
struct sy_redis;
struct sy_auth_spec;

/* up: connected and authenticated (true) or gone (false, with why). After a "gone" the handle is dead:
 * the owner calls sy_redis_free() (not from inside a reply callback) and may connect
 * again. Pending commands' callbacks have already run with a NULL reply. */
typedef void (*sy_redis_state_cb)(struct sy_redis *c, bool up, const char *why, void *arg);
/* reply == NULL: the connection was lost before the reply (outcome unknown). */
typedef void (*sy_redis_reply_cb)(struct sy_redis *c, redisReply *reply, void *priv);

/* auth: the side's credentials (model/spec.h), or NULL for none; read here, not kept. */
struct sy_redis *sy_redis_connect(struct sy_loop *l, const struct sy_endpoint *ep,
				  const struct sy_auth_spec *auth, sy_redis_state_cb cb, void *arg);
/* Queues a command already in RESP form. -ENOTCONN when the connection is gone. A
 * NULL cb: the reply is not wanted. */
int sy_redis_send(struct sy_redis *c, const char *resp, size_t len, sy_redis_reply_cb cb, void *priv);
int sy_redis_sendv(struct sy_redis *c, int argc, const char **argv, const size_t *lens, sy_redis_reply_cb cb,
		   void *priv);
/* Bits the callers keep per connection (a new connection starts with none): what was
 * set up once on it, like a SCRIPT LOAD. Each caller owns its bits (shadow/compare.c:
 * 1 and 2). */
unsigned *sy_redis_flags(struct sy_redis *c);
bool sy_redis_up(const struct sy_redis *c);
/* Connected or still connecting: commands may be queued (sent once connected; if the
 * connect fails their callbacks run with NULL). */
bool sy_redis_alive(const struct sy_redis *c);
/* When the last read of replies returned (CLOCK_MONOTONIC ns): inside a reply
 * callback, when its reply arrived, without a clock read per reply. */
uint64_t sy_redis_read_ns(const struct sy_redis *c);
/* Commands sent and not yet answered. */
size_t sy_redis_inflight(const struct sy_redis *c);
/* Closes (callbacks of pending commands run with NULL) and frees. From inside one of
 * c's own callbacks, the free happens when that callback returns. */
void sy_redis_free(struct sy_redis *c);

#endif
