// SPDX-License-Identifier: Apache-2.0
/* test_redis_conn.c — the agent's Redis connection on the wire, against a peer in this
 * process that answers what each test scripts: replies in order, pipelining, a large
 * command written in several parts, and the failures — malformed replies, a server that
 * closes mid-reply, a refused connect, a connection freed from inside its own callback.
 * The happy path against real redis-servers is covered by the system tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "redis/redis_conn.h"

/* ---- the peer: accepts one connection, collects what it reads, answers a script ----- */

struct peer {
	struct sy_loop *l;
	int lfd, fd;
	char *in; /* everything read */
	size_t nin, capin;
	const char *answer; /* written once `want` bytes were read */
	size_t answer_len, want;
	bool close_after; /* close once the answer is written */
	bool answered;
};

static void peer_read(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct peer *p = arg;
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof(buf));

	(void)ev;
	if (n <= 0) {
		sy_loop_close_fd(l, &p->fd);
		return;
	}
	if (p->nin + (size_t)n > p->capin) {
		p->capin = (p->nin + (size_t)n) * 2;
		p->in = realloc(p->in, p->capin);
		assert_non_null(p->in);
	}
	memcpy(p->in + p->nin, buf, (size_t)n);
	p->nin += (size_t)n;
	if (!p->answered && p->answer && p->nin >= p->want) {
		p->answered = true;
		assert_int_equal(write(fd, p->answer, p->answer_len), (ssize_t)p->answer_len);
		if (p->close_after)
			sy_loop_close_fd(l, &p->fd);
	}
}

static void peer_accept(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	struct peer *p = arg;

	(void)ev;
	p->fd = accept(fd, NULL, NULL);
	assert_true(p->fd >= 0);
	assert_int_equal(sy_loop_add_fd(l, p->fd, SY_EV_READ, peer_read, p), 0);
}

static struct sy_endpoint peer_start(struct peer *p, struct sy_loop *l)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	struct sy_endpoint ep = {.family = SY_AF_INET};

	memset(p, 0, sizeof(*p));
	p->l = l;
	p->fd = -1;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(sy_loop_add_fd(l, p->lfd, SY_EV_READ, peer_accept, p), 0);
	ep.addr[10] = ep.addr[11] = 0xff;
	memcpy(ep.addr + 12, &a.sin_addr, 4);
	ep.port = a.sin_port;
	return ep;
}

static void peer_stop(struct peer *p)
{
	sy_loop_close_fd(p->l, &p->fd);
	sy_loop_close_fd(p->l, &p->lfd);
	free(p->in);
}

/* ---- the client side's record of what it heard -------------------------------------- */

struct heard {
	struct sy_redis *c;
	int up, down;
	char why[200];
	int nreplies, nnull;
	long long ints[256];
	int free_at; /* reply number at which the callback frees the connection (0: never) */
};

static struct heard H;

static void on_state(struct sy_redis *c, bool up, const char *why, void *arg)
{
	(void)c;
	(void)arg;
	if (up) {
		H.up++;
		return;
	}
	H.down++;
	snprintf(H.why, sizeof(H.why), "%s", why ? why : "");
}

static void on_reply(struct sy_redis *c, redisReply *r, void *priv)
{
	(void)priv;
	if (!r) {
		H.nnull++;
		return;
	}
	if (H.nreplies < 256)
		H.ints[H.nreplies] = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	H.nreplies++;
	if (H.free_at && H.nreplies == H.free_at) {
		sy_redis_free(c);
		H.c = NULL;
		/* c is still valid until this callback returns, but dead */
		assert_int_equal(sy_redis_send(c, "*1\r\n$4\r\nPING\r\n", 14, on_reply, NULL), -ENOTCONN);
	}
}

static void stop_cb(struct sy_loop *l, void *arg)
{
	(void)arg;
	sy_loop_stop(l);
}

static void run_for(struct sy_loop *l, uint64_t ms)
{
	sy_loop_add_timer(l, ms, stop_cb, NULL);
	assert_int_equal(sy_loop_run(l), 0);
}

static const char *incr[2] = {"INCR", "k"};
static const size_t incr_len[2] = {4, 1};
#define INCR_BYTES 21 /* "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n" */

/* A connection with n INCRs queued, to a peer that answers `answer` once it read them
 * all (closing after when asked), run for 300 ms; free_at: see struct heard. */
static struct sy_loop *incrs_against(struct peer *p, int n, const char *answer, bool close_after, int free_at)
{
	struct sy_loop *l = sy_loop_new();
	struct sy_endpoint ep = peer_start(p, l);

	memset(&H, 0, sizeof(H));
	p->answer = answer;
	p->answer_len = strlen(answer);
	p->want = (size_t)n * INCR_BYTES;
	p->close_after = close_after;
	H.free_at = free_at;
	H.c = sy_redis_connect(l, &ep, NULL, on_state, NULL);
	assert_non_null(H.c);
	/* queued before the connect completes: sent once it does */
	for (int i = 0; i < n; i++)
		assert_int_equal(sy_redis_sendv(H.c, 2, incr, incr_len, on_reply, NULL), 0);
	assert_int_equal(sy_redis_inflight(H.c), (size_t)n);
	run_for(l, 300);
	return l;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void pipelined_replies_reach_their_callbacks_in_order(void **state)
{
	struct peer p;
	char ans[100 * 8];
	size_t n = 0;
	struct sy_loop *l;

	(void)state;
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(ans + n, sizeof(ans) - n, ":%d\r\n", i + 1);
	l = incrs_against(&p, 100, ans, false, 0);
	assert_int_equal(H.up, 1);
	assert_int_equal(H.nreplies, 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(H.ints[i], i + 1);
	assert_int_equal(sy_redis_inflight(H.c), 0);
	/* the peer read exactly the 100 commands, formatted as RESP */
	assert_int_equal(p.nin, p.want);
	assert_memory_equal(p.in, "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n", INCR_BYTES);
	sy_redis_free(H.c);
	peer_stop(&p);
	sy_loop_free(l);
}

static void a_command_larger_than_the_socket_buffer_arrives_whole(void **state)
{
	struct sy_loop *l = sy_loop_new();
	struct peer p;
	struct sy_endpoint ep = peer_start(&p, l);
	size_t big = 8u << 20;
	char *v = malloc(big);
	const char *argv[3] = {"SET", "big", v};
	size_t lens[3] = {3, 3, big};
	char hdr[64];
	int hl;

	(void)state;
	memset(&H, 0, sizeof(H));
	memset(v, 'x', big);
	hl = snprintf(hdr, sizeof(hdr), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", big);
	p.answer = "+OK\r\n";
	p.answer_len = 5;
	p.want = (size_t)hl + big + 2;
	H.c = sy_redis_connect(l, &ep, NULL, on_state, NULL);
	assert_non_null(H.c);
	assert_int_equal(sy_redis_sendv(H.c, 3, argv, lens, on_reply, NULL), 0);
	run_for(l, 1500);
	assert_int_equal(H.nreplies, 1);
	assert_int_equal(p.nin, p.want);
	assert_memory_equal(p.in, hdr, (size_t)hl);
	assert_memory_equal(p.in + hl + big, "\r\n", 2);
	free(v);
	sy_redis_free(H.c);
	peer_stop(&p);
	sy_loop_free(l);
}

/* Malformed bytes on the wire: the connection says so once, every pending command is
 * answered NULL (outcome unknown) and nothing more is accepted. */
static void a_malformed_reply_fails_the_connection_cleanly(void **state)
{
	struct peer p;
	struct sy_loop *l = incrs_against(&p, 3, ":1\r\n?garbage\r\n", false, 0);

	(void)state;
	assert_int_equal(H.nreplies, 1);
	assert_int_equal(H.nnull, 2);
	assert_int_equal(H.down, 1);
	assert_non_null(strstr(H.why, "protocol error"));
	assert_false(sy_redis_alive(H.c));
	assert_int_equal(sy_redis_sendv(H.c, 2, incr, incr_len, on_reply, NULL), -ENOTCONN);
	assert_int_equal(sy_redis_inflight(H.c), 0);
	sy_redis_free(H.c);
	peer_stop(&p);
	sy_loop_free(l);
}

static void a_server_closing_mid_reply_answers_the_rest_null(void **state)
{
	struct peer p;
	/* the second reply cut short */
	struct sy_loop *l = incrs_against(&p, 3, ":1\r\n$10\r\nhal", true, 0);

	(void)state;
	assert_int_equal(H.nreplies, 1);
	assert_int_equal(H.nnull, 2);
	assert_int_equal(H.down, 1);
	assert_string_equal(H.why, "Server closed the connection");
	sy_redis_free(H.c);
	peer_stop(&p);
	sy_loop_free(l);
}

static void a_refused_connect_is_reported_once(void **state)
{
	struct sy_loop *l = sy_loop_new();
	struct peer p;
	struct sy_endpoint ep = peer_start(&p, l);

	(void)state;
	memset(&H, 0, sizeof(H));
	peer_stop(&p); /* nobody listens on that port any more */
	H.c = sy_redis_connect(l, &ep, NULL, on_state, NULL);
	if (H.c) { /* Linux reports it later, through SO_ERROR; connect() itself may too */
		assert_int_equal(sy_redis_sendv(H.c, 2, incr, incr_len, on_reply, NULL), 0);
		run_for(l, 300);
		assert_int_equal(H.down, 1);
		assert_int_equal(H.nnull, 1);
		assert_non_null(strstr(H.why, "connect: Connection refused"));
		sy_redis_free(H.c);
	}
	sy_loop_free(l);
}

/* An owner may drop a connection from one of its reply callbacks: the rest of the
 * pipeline is answered NULL when that callback returns, and nothing is touched after. */
static void freeing_from_inside_a_reply_callback_is_safe(void **state)
{
	struct peer p;
	struct sy_loop *l = incrs_against(&p, 4, ":1\r\n:2\r\n:3\r\n:4\r\n", false, 2);

	(void)state;
	assert_null(H.c);
	assert_int_equal(H.nreplies, 2);
	assert_int_equal(H.nnull, 2);
	assert_int_equal(H.down, 0); /* no state callback for a close the owner asked for */
	peer_stop(&p);
	sy_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pipelined_replies_reach_their_callbacks_in_order),
		cmocka_unit_test(a_command_larger_than_the_socket_buffer_arrives_whole),
		cmocka_unit_test(a_malformed_reply_fails_the_connection_cleanly),
		cmocka_unit_test(a_server_closing_mid_reply_answers_the_rest_null),
		cmocka_unit_test(a_refused_connect_is_reported_once),
		cmocka_unit_test(freeing_from_inside_a_reply_callback_is_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
