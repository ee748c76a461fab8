// SPDX-License-Identifier: Apache-2.0
/* loop.c — see loop.h. Timers live in a binary min-heap keyed by due time; cancel
 * finds the entry by a linear scan (timers number in the tens) and re-heaps. */
#include "core/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

struct fd_reg {
	sy_fd_cb cb;
	void *arg;
	unsigned events;
	int used;
};

struct timer {
	uint64_t due;
	uint64_t id;
	sy_timer_cb cb;
	void *arg;
};

struct sig_reg {
	sy_signal_cb cb;
	void *arg;
};

struct sy_loop {
	int epfd;
	int sigfd;
	sigset_t sigs;
	struct fd_reg *fds;
	int nfds;
	struct timer *heap;
	size_t nheap, capheap;
	uint64_t next_id;
	struct sig_reg sig[65];
	int stop;
	struct sy_defer *deferred; /* run before the next wait, newest first */
};

uint64_t sy_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t sy_coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct sy_loop *sy_loop_new(void)
{
	struct sy_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->sigfd = -1;
	sigemptyset(&l->sigs);
	l->next_id = 1;
	return l;
}

void sy_loop_free(struct sy_loop *l)
{
	if (!l)
		return;
	if (l->sigfd >= 0)
		close(l->sigfd);
	close(l->epfd);
	free(l->fds);
	free(l->heap);
	free(l);
}

static uint32_t to_epoll(unsigned ev)
{
	return (ev & SY_EV_READ ? EPOLLIN : 0) | (ev & SY_EV_WRITE ? EPOLLOUT : 0);
}

static int grow_fds(struct sy_loop *l, int fd)
{
	int n;
	struct fd_reg *nf;

	if (fd < l->nfds)
		return 0;
	n = l->nfds ? l->nfds : 64;
	while (n <= fd)
		n *= 2;
	nf = realloc(l->fds, (size_t)n * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	memset(nf + l->nfds, 0, (size_t)(n - l->nfds) * sizeof(*nf));
	l->fds = nf;
	l->nfds = n;
	return 0;
}

int sy_loop_add_fd(struct sy_loop *l, int fd, unsigned events, sy_fd_cb cb, void *arg)
{
	struct epoll_event ee = {.events = to_epoll(events), .data.fd = fd};
	int err;

	if (fd < 0 || !cb)
		return -EINVAL;
	err = grow_fds(l, fd);
	if (err)
		return err;
	if (l->fds[fd].used)
		return -EEXIST;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
		return -errno;
	l->fds[fd] = (struct fd_reg){.cb = cb, .arg = arg, .events = events, .used = 1};
	return 0;
}

int sy_loop_mod_fd(struct sy_loop *l, int fd, unsigned events)
{
	struct epoll_event ee = {.events = to_epoll(events), .data.fd = fd};

	if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
		return -ENOENT;
	if (l->fds[fd].events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ee) < 0)
		return -errno;
	l->fds[fd].events = events;
	return 0;
}

void sy_loop_del_fd(struct sy_loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
}

void sy_loop_close_fd(struct sy_loop *l, int *fd)
{
	if (*fd < 0)
		return;
	sy_loop_del_fd(l, *fd);
	close(*fd);
	*fd = -1;
}

static void heap_swap(struct timer *a, struct timer *b)
{
	struct timer t = *a;

	*a = *b;
	*b = t;
}

static void heap_up(struct sy_loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (l->heap[p].due <= l->heap[i].due)
			break;
		heap_swap(&l->heap[p], &l->heap[i]);
		i = p;
	}
}

static void heap_down(struct sy_loop *l, size_t i)
{
	for (;;) {
		size_t a = 2 * i + 1, b = a + 1, m = i;

		if (a < l->nheap && l->heap[a].due < l->heap[m].due)
			m = a;
		if (b < l->nheap && l->heap[b].due < l->heap[m].due)
			m = b;
		if (m == i)
			break;
		heap_swap(&l->heap[m], &l->heap[i]);
		i = m;
	}
}

uint64_t sy_loop_add_timer(struct sy_loop *l, uint64_t after_ms, sy_timer_cb cb, void *arg)
{
	if (l->nheap == l->capheap) {
		size_t n = l->capheap ? l->capheap * 2 : 16;
		struct timer *nh = realloc(l->heap, n * sizeof(*nh));

		if (!nh)
			return 0;
		l->heap = nh;
		l->capheap = n;
	}
	l->heap[l->nheap] =
		(struct timer){.due = sy_now_ms() + after_ms, .id = l->next_id++, .cb = cb, .arg = arg};
	heap_up(l, l->nheap);
	l->nheap++;
	return l->next_id - 1;
}

void sy_loop_cancel_timer(struct sy_loop *l, uint64_t id)
{
	if (id == 0)
		return;
	for (size_t i = 0; i < l->nheap; i++) {
		if (l->heap[i].id == id) {
			/* Remove in place: replace with the last and restore the heap. */
			l->heap[i] = l->heap[--l->nheap];
			if (i < l->nheap) {
				heap_up(l, i);
				heap_down(l, i);
			}
			break;
		}
	}
}

int sy_loop_add_signal(struct sy_loop *l, int signo, sy_signal_cb cb, void *arg)
{
	sigset_t add;

	if (signo <= 0 || signo > 64)
		return -EINVAL;
	sigemptyset(&add);
	sigaddset(&add, signo);
	if (sigprocmask(SIG_BLOCK, &add, NULL) < 0)
		return -errno;
	sigaddset(&l->sigs, signo);
	l->sig[signo] = (struct sig_reg){.cb = cb, .arg = arg};
	if (l->sigfd < 0) {
		l->sigfd = signalfd(-1, &l->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
		if (l->sigfd < 0)
			return -errno;
		struct epoll_event ee = {.events = EPOLLIN, .data.fd = -1};
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ee) < 0)
			return -errno;
	} else if (signalfd(l->sigfd, &l->sigs, 0) < 0) {
		return -errno;
	}
	return 0;
}

static void drain_signals(struct sy_loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int s = (int)si.ssi_signo;

		if (s > 0 && s <= 64 && l->sig[s].cb)
			l->sig[s].cb(l, s, l->sig[s].arg);
	}
}

/* Runs the timers due now that existed when the pass began: a timer a callback adds with
 * 0 ms runs after the next pass over the descriptors, never in this one, so that a
 * component that re-arms itself at once while busy (the capture drain) cannot keep the
 * loop from its I/O. */
static int run_timers(struct sy_loop *l)
{
	uint64_t now = sy_now_ms(), first_new = l->next_id;

	while (l->nheap && l->heap[0].due <= now && l->heap[0].id < first_new) {
		struct timer t = l->heap[0];

		l->heap[0] = l->heap[--l->nheap];
		if (l->nheap)
			heap_down(l, 0);
		t.cb(l, t.arg);
		if (l->stop)
			return 0;
	}
	if (!l->nheap)
		return -1;
	return l->heap[0].due <= now ? 0 : (int)(l->heap[0].due - now);
}

void sy_loop_defer(struct sy_loop *l, struct sy_defer *d)
{
	if (d->prev)
		return;
	d->next = l->deferred;
	if (d->next)
		d->next->prev = &d->next;
	d->prev = &l->deferred;
	l->deferred = d;
}

void sy_loop_undefer(struct sy_defer *d)
{
	if (!d->prev)
		return;
	*d->prev = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->next = NULL;
	d->prev = NULL;
}

/* Runs the deferred work, including what it defers in turn (a write that fails runs
 * callbacks that may queue on other connections). */
static void run_deferred(struct sy_loop *l)
{
	struct sy_defer *d;

	while ((d = l->deferred) && !l->stop) {
		sy_loop_undefer(d);
		d->cb(l, d->arg);
	}
}

int sy_loop_run(struct sy_loop *l)
{
	struct epoll_event evs[64];

	l->stop = 0;
	while (!l->stop) {
		int timeout = run_timers(l);
		int n;

		run_deferred(l);
		if (l->stop)
			break;
		if (l->deferred)
			timeout = 0;
		n = epoll_wait(l->epfd, evs, 64, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			int fd = evs[i].data.fd;
			unsigned ev = 0;

			if (fd == -1) {
				drain_signals(l);
				continue;
			}
			if (fd >= l->nfds || !l->fds[fd].used)
				continue; /* removed by an earlier callback in this batch */
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				ev |= SY_EV_READ;
			if (evs[i].events & EPOLLOUT)
				ev |= SY_EV_WRITE;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				ev |= SY_EV_ERROR;
			l->fds[fd].cb(l, fd, ev, l->fds[fd].arg);
		}
	}
	return 0;
}

void sy_loop_stop(struct sy_loop *l)
{
	l->stop = 1;
}

uint64_t sy_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
