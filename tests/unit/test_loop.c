// SPDX-License-Identifier: Apache-2.0
/* test_loop.c — the event loop: timer order and cancel, fd readiness, signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/loop.h"

static int order[16];
static int norder;

static void record(struct sy_loop *l, void *arg)
{
	(void)l;
	order[norder++] = (int)(intptr_t)arg;
}

static void stop_cb(struct sy_loop *l, void *arg)
{
	(void)arg;
	sy_loop_stop(l);
}

static void timers_fire_in_due_order(void **state)
{
	struct sy_loop *l = sy_loop_new();
	uint64_t t0 = sy_now_ms();

	(void)state;
	norder = 0;
	sy_loop_add_timer(l, 30, record, (void *)3);
	sy_loop_add_timer(l, 10, record, (void *)1);
	sy_loop_add_timer(l, 20, record, (void *)2);
	sy_loop_add_timer(l, 40, stop_cb, NULL);
	assert_int_equal(sy_loop_run(l), 0);
	assert_int_equal(norder, 3);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 3);
	assert_true(sy_now_ms() - t0 >= 40);
	sy_loop_free(l);
}

static void cancelled_timer_never_fires(void **state)
{
	struct sy_loop *l = sy_loop_new();
	uint64_t id;

	(void)state;
	norder = 0;
	id = sy_loop_add_timer(l, 5, record, (void *)9);
	sy_loop_add_timer(l, 1, record, (void *)1);
	sy_loop_cancel_timer(l, id);
	sy_loop_cancel_timer(l, 0);
	sy_loop_add_timer(l, 20, stop_cb, NULL);
	sy_loop_run(l);
	assert_int_equal(norder, 1);
	assert_int_equal(order[0], 1);
	sy_loop_free(l);
}

static int got_fd;

static void on_read(struct sy_loop *l, int fd, unsigned ev, void *arg)
{
	char buf[8];

	(void)arg;
	assert_true(ev & SY_EV_READ);
	assert_int_equal(read(fd, buf, sizeof(buf)), 2);
	got_fd = fd;
	sy_loop_del_fd(l, fd);
	sy_loop_stop(l);
}

static void fd_readiness_is_delivered(void **state)
{
	struct sy_loop *l = sy_loop_new();
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(sy_loop_add_fd(l, p[0], SY_EV_READ, on_read, NULL), 0);
	assert_int_equal(sy_loop_add_fd(l, p[0], SY_EV_READ, on_read, NULL), -EEXIST);
	assert_int_equal(write(p[1], "hi", 2), 2);
	sy_loop_run(l);
	assert_int_equal(got_fd, p[0]);
	close(p[0]);
	close(p[1]);
	sy_loop_free(l);
}

static int got_sig;

static void on_sig(struct sy_loop *l, int signo, void *arg)
{
	(void)arg;
	got_sig = signo;
	sy_loop_stop(l);
}

static void signals_arrive_through_the_loop(void **state)
{
	struct sy_loop *l = sy_loop_new();

	(void)state;
	assert_int_equal(sy_loop_add_signal(l, SIGUSR1, on_sig, NULL), 0);
	kill(getpid(), SIGUSR1);
	sy_loop_run(l);
	assert_int_equal(got_sig, SIGUSR1);
	sy_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(timers_fire_in_due_order),
		cmocka_unit_test(cancelled_timer_never_fires),
		cmocka_unit_test(fd_readiness_is_delivered),
		cmocka_unit_test(signals_arrive_through_the_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
