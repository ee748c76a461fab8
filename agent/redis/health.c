// SPDX-License-Identifier: Apache-2.0
/* health.c — see health.h. One check per endpoint at a time: connect (non-blocking),
 * send AUTH (when the endpoint has credentials) and PING in one write, read their
 * lines. Only "+OK" then "+PONG" is healthy: a server that wants a password we do not
 * give ("-NOAUTH"), or refuses the one we give ("-WRONGPASS"), cannot be mirrored to
 * nor audited, so no client is sent there. Anything else, a refused connect, or no
 * answer within the timeout is unhealthy, with the reason kept for `syctl status`.
 * A change is reported at once: the first failed check takes a target out of
 * rotation, the first good one puts it back.
 *
 * INFO server is pipelined after the PING: its run_id (a few hundred bytes in) tells a
 * restarted server from the one seen before, however short the restart was. */
#include "redis/health.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "redis/info.h"
#include "core/log.h"
#include "core/loop.h"
#include "model/endpoint.h"
#include "redis/auth.h"

enum stage { IDLE, CONNECTING, WAIT_AUTH, WAIT_REPLY };

struct hep {
	struct sy_endpoint ep;
	int fd;
	enum stage stage;
	uint64_t timeout_timer;
	uint64_t started_ms;
	struct timespec started;
	char buf[2048]; /* +PONG, then INFO server up to its run_id line */
	size_t blen;
	struct sy_auth_spec auth; /* no password_file: no AUTH */
	struct sy_endpoint_health st;
	struct sy_health *h;
};

struct sy_health {
	struct sy_loop *loop;
	uint32_t interval_ms, timeout_ms;
	sy_health_cb cb;
	void *arg;
	sy_health_restart_cb restart_cb;
	void *restart_arg;
	struct hep **eps;
	size_t n;
	uint64_t tick_timer;
};

static void stop_check(struct hep *e)
{
	sy_loop_close_fd(e->h->loop, &e->fd);
	sy_loop_cancel_timer(e->h->loop, e->timeout_timer);
	e->timeout_timer = 0;
	e->stage = IDLE;
	e->blen = 0;
}

/* A new run_id where another was seen: the server restarted (and may have lost data). */
static void note_run_id(struct hep *e, const char *id)
{
	char old[sizeof(e->st.run_id)], name[SY_EP_STRLEN];

	if (!id[0] || strcmp(id, e->st.run_id) == 0)
		return;
	snprintf(old, sizeof(old), "%s", e->st.run_id);
	snprintf(e->st.run_id, sizeof(e->st.run_id), "%s", id);
	if (!old[0])
		return; /* the first one seen: nothing to compare with */
	e->st.restarts++;
	sy_endpoint_format(&e->ep, name, sizeof(name));
	sy_warn("health", "%s restarted: run_id %.8s… → %.8s…", name, old, id);
	if (e->h->restart_cb)
		e->h->restart_cb(&e->ep, old, id, e->h->restart_arg);
}

static void finish(struct hep *e, bool ok, const char *why)
{
	bool was = e->st.healthy, first = !e->st.checked;
	char name[SY_EP_STRLEN];

	stop_check(e);
	e->st.checked = true;
	e->st.last_check_unix_ms = sy_unix_ms();
	e->st.healthy = ok;
	if (ok) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		e->st.last_rtt_us = (uint64_t)(now.tv_sec - e->started.tv_sec) * 1000000 +
				    (uint64_t)(now.tv_nsec - e->started.tv_nsec) / 1000;
		e->st.consecutive_failures = 0;
		e->st.last_error[0] = '\0';
	} else {
		e->st.consecutive_failures++;
		snprintf(e->st.last_error, sizeof(e->st.last_error), "%s", why);
	}
	if (first || was != ok) {
		sy_endpoint_format(&e->ep, name, sizeof(name));
		if (ok)
			sy_info("health", "%s is healthy", name);
		else
			sy_warn("health", "%s is unhealthy: %s", name, why);
		if (e->h->cb)
			e->h->cb(&e->ep, ok, e->h->arg);
	}
}

static void on_timeout(struct sy_loop *l, void *arg)
{
	struct hep *e = arg;
	char why[64];

	(void)l;
	e->timeout_timer = 0;
	snprintf(why, sizeof(why), "no answer within %u ms", e->h->timeout_ms);
	finish(e, false, why);
}

/* AUTH (with the password read from its file now), PING and INFO server in one write. 0, or -1
 * with why. */
static int send_request(struct hep *e, char *why, size_t wn)
{
	static const char ping[] = "PING\r\nINFO server\r\n";
	char pw[SY_SECRET_MAX + 1], *cmd = NULL;
	const char *argv[3];
	size_t lens[3];
	int len = 0, argc;
	bool with_auth = false;
	ssize_t sent;
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};

	e->stage = WAIT_REPLY;
	if (sy_redis_auth_wanted(&e->auth)) {
		argc = sy_redis_auth_argv(&e->auth, pw, argv, lens, why, wn);
		if (argc < 0)
			return -1;
		len = redisFormatCommandArgv(&cmd, argc, argv, lens);
		sy_secret_wipe(pw, sizeof(pw));
		if (len < 0 || !cmd) {
			snprintf(why, wn, "AUTH: out of memory");
			return -1;
		}
		e->stage = WAIT_AUTH;
		with_auth = true;
	}
	iov[0] = (struct iovec){cmd, (size_t)len};
	iov[1] = (struct iovec){(void *)ping, sizeof(ping) - 1};
	sent = sendmsg(e->fd, &msg, MSG_NOSIGNAL);
	if (cmd) {
		sy_secret_wipe(cmd, (size_t)len);
		redisFreeCommand(cmd);
	}
	if (sent != (ssize_t)(len + sizeof(ping) - 1)) {
		snprintf(why, wn, "send %s: %s", with_auth ? "AUTH, PING and INFO" : "PING and INFO",
			 sent < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

/* The run_id from INFO's reply starting at `r` (the rest of buf): > 0 and id, 0 when
 * the reply has none (an error, INFO renamed, a buffer too short), -EAGAIN when more of
 * it must be read first. */
static int info_run_id(struct hep *e, const char *r, char *id, size_t cap)
{
	size_t have = (size_t)(e->buf + e->blen - r);
	const char *body = strstr(r, "\r\n");
	int k;

	if (!body)
		return e->blen < sizeof(e->buf) - 1 ? -EAGAIN : 0;
	if (r[0] != '$')
		return 0;
	body += 2;
	k = sy_info_field(body, have - (size_t)(body - r), "run_id", id, cap);
	if (k == -ENOENT && (size_t)atol(r + 1) > have - (size_t)(body - r) && e->blen < sizeof(e->buf) - 1)
		return -EAGAIN;
	return k > 0 ? k : 0;
}

static void on_io(struct sy_loop *l, int fd, unsigned events, void *arg)
{
	struct hep *e = arg;
	char why[200];

	(void)events;
	if (e->stage == CONNECTING) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			snprintf(why, sizeof(why), "connect: %s", strerror(soerr));
			finish(e, false, why);
			return;
		}
		if (send_request(e, why, sizeof(why))) {
			finish(e, false, why);
			return;
		}
		sy_loop_mod_fd(l, fd, SY_EV_READ);
		return;
	}
	for (;;) {
		ssize_t n = recv(fd, e->buf + e->blen, sizeof(e->buf) - 1 - e->blen, 0);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			snprintf(why, sizeof(why), "%s",
				 n == 0 ? "connection closed before the reply" : strerror(errno));
			finish(e, false, why);
			return;
		}
		e->blen += (size_t)n;
		e->buf[e->blen] = '\0';
		while (e->stage == WAIT_AUTH || e->stage == WAIT_REPLY) {
			char *eol = strstr(e->buf, "\r\n");
			size_t ll;

			if (!eol) {
				if (e->blen == sizeof(e->buf) - 1)
					finish(e, false, "reply line too long");
				break;
			}
			*eol = '\0';
			ll = (size_t)(eol - e->buf);
			if (e->stage == WAIT_AUTH) {
				if (strcmp(e->buf, "+OK") != 0) {
					sy_redis_auth_refused(e->auth.user, e->buf + (e->buf[0] == '-'),
							      ll - (e->buf[0] == '-'), why, sizeof(why));
					finish(e, false, why);
					return;
				}
				e->stage = WAIT_REPLY;
				memmove(e->buf, eol + 2, e->blen - ll - 2 + 1);
				e->blen -= ll + 2;
				continue;
			}
			if (strcmp(e->buf, "+PONG") == 0) {
				char id[sizeof(e->st.run_id)];
				int k = info_run_id(e, eol + 2, id, sizeof(id));

				if (k == -EAGAIN) {
					*eol = '\r'; /* whole again: the next read appends */
					break;
				}
				finish(e, true, NULL);
				if (k > 0)
					note_run_id(e, id);
				return;
			}
			if (strncmp(e->buf, "-NOAUTH", 7) == 0)
				snprintf(why, sizeof(why),
					 "the server wants a password (auth: in the migration): %.100s",
					 e->buf + 1);
			else
				snprintf(why, sizeof(why), "PING answered \"%.100s\"", e->buf);
			finish(e, false, why);
			return;
		}
		if (e->stage != WAIT_AUTH && e->stage != WAIT_REPLY)
			return;
	}
}

static void start_check(struct hep *e)
{
	struct sockaddr_storage ss;
	socklen_t len = sy_endpoint_to_sockaddr(&e->ep, &ss);
	char why[160];
	int one = 1;

	if (e->stage != IDLE)
		return;
	clock_gettime(CLOCK_MONOTONIC, &e->started);
	e->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (e->fd < 0) {
		snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		finish(e, false, why);
		return;
	}
	setsockopt(e->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(e->fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		finish(e, false, why);
		return;
	}
	e->stage = CONNECTING;
	if (sy_loop_add_fd(e->h->loop, e->fd, SY_EV_WRITE, on_io, e) < 0) {
		finish(e, false, "event loop registration failed");
		return;
	}
	e->timeout_timer = sy_loop_add_timer(e->h->loop, e->h->timeout_ms, on_timeout, e);
}

static void on_tick(struct sy_loop *l, void *arg)
{
	struct sy_health *h = arg;

	for (size_t i = 0; i < h->n; i++)
		start_check(h->eps[i]);
	h->tick_timer = sy_loop_add_timer(l, h->interval_ms, on_tick, h);
}

struct sy_health *sy_health_new(struct sy_loop *loop, uint32_t interval_ms, uint32_t timeout_ms,
				sy_health_cb cb, void *arg)
{
	struct sy_health *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->loop = loop;
	h->interval_ms = interval_ms ? interval_ms : 1000;
	h->timeout_ms = timeout_ms ? timeout_ms : 500;
	h->cb = cb;
	h->arg = arg;
	h->tick_timer = sy_loop_add_timer(loop, h->interval_ms, on_tick, h);
	return h;
}

void sy_health_free(struct sy_health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		stop_check(h->eps[i]);
		free(h->eps[i]);
	}
	free(h->eps);
	sy_loop_cancel_timer(h->loop, h->tick_timer);
	free(h);
}

int sy_health_set_endpoints(struct sy_health *h, const struct sy_endpoint *eps,
			    const struct sy_auth_spec *const *auths, size_t n)
{
	struct hep **next = calloc(n ? n : 1, sizeof(*next));
	size_t k = 0;

	if (!next)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct hep *keep = NULL;

		for (size_t j = 0; j < k; j++)
			if (sy_endpoint_equal(&next[j]->ep, &eps[i]))
				keep = next[j]; /* listed twice */
		if (keep)
			continue;
		for (size_t j = 0; j < h->n && !keep; j++) {
			if (h->eps[j] && sy_endpoint_equal(&h->eps[j]->ep, &eps[i])) {
				keep = h->eps[j];
				h->eps[j] = NULL;
			}
		}
		if (!keep) {
			keep = calloc(1, sizeof(*keep));
			if (!keep) {
				for (size_t j = 0; j < k; j++)
					free(next[j]);
				free(next);
				return -ENOMEM;
			}
			keep->ep = eps[i];
			keep->fd = -1;
			keep->h = h;
		}
		/* new credentials apply from the next check on */
		if (auths && auths[i])
			keep->auth = *auths[i];
		else
			memset(&keep->auth, 0, sizeof(keep->auth));
		next[k++] = keep;
	}
	for (size_t j = 0; j < h->n; j++) {
		if (h->eps[j]) {
			stop_check(h->eps[j]);
			free(h->eps[j]);
		}
	}
	free(h->eps);
	h->eps = next;
	h->n = k;
	/* New endpoints are checked now, not one interval later. */
	for (size_t i = 0; i < h->n; i++)
		if (!h->eps[i]->st.checked)
			start_check(h->eps[i]);
	return 0;
}

void sy_health_on_restart(struct sy_health *h, sy_health_restart_cb cb, void *arg)
{
	h->restart_cb = cb;
	h->restart_arg = arg;
}

int sy_health_get(const struct sy_health *h, const struct sy_endpoint *ep, struct sy_endpoint_health *out)
{
	for (size_t i = 0; i < h->n; i++) {
		if (sy_endpoint_equal(&h->eps[i]->ep, ep)) {
			*out = h->eps[i]->st;
			return 0;
		}
	}
	return -ENOENT;
}

bool sy_health_all_checked(const struct sy_health *h)
{
	for (size_t i = 0; i < h->n; i++)
		if (!h->eps[i]->st.checked)
			return false;
	return true;
}
