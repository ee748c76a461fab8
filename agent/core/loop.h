// SPDX-License-Identifier: Apache-2.0
/* loop.h — the agent's only event loop: epoll for file descriptors, one-shot timers on
 * the monotonic clock, and signals through a signalfd. Single-threaded; callbacks run
 * to completion and must not block. Modelled on Redis's ae.c. */
#ifndef SY_LOOP_H
#define SY_LOOP_H

#include <stdint.h>

#define SY_EV_READ  1u
#define SY_EV_WRITE 2u
#define SY_EV_ERROR 4u /* EPOLLERR / EPOLLHUP, delivered with READ */

struct sy_loop;

typedef void (*sy_fd_cb)(struct sy_loop *l, int fd, unsigned events, void *arg);
typedef void (*sy_timer_cb)(struct sy_loop *l, void *arg);
typedef void (*sy_signal_cb)(struct sy_loop *l, int signo, void *arg);

struct sy_loop *sy_loop_new(void);
void sy_loop_free(struct sy_loop *l);

/* Watches fd for events (SY_EV_READ | SY_EV_WRITE). One registration per fd. */
int sy_loop_add_fd(struct sy_loop *l, int fd, unsigned events, sy_fd_cb cb, void *arg);
int sy_loop_mod_fd(struct sy_loop *l, int fd, unsigned events);
void sy_loop_del_fd(struct sy_loop *l, int fd);
/* sy_loop_del_fd, then closes *fd and sets it to -1; nothing when *fd < 0. */
void sy_loop_close_fd(struct sy_loop *l, int *fd);

/* One-shot timer, after_ms from now. Returns an id > 0, or 0 on allocation failure. */
uint64_t sy_loop_add_timer(struct sy_loop *l, uint64_t after_ms, sy_timer_cb cb, void *arg);
/* Cancelling an id that already fired (or 0) is a no-op. */
void sy_loop_cancel_timer(struct sy_loop *l, uint64_t id);

/* Blocks signo for the process and delivers it through the loop. */
int sy_loop_add_signal(struct sy_loop *l, int signo, sy_signal_cb cb, void *arg);

/* Work put off until the loop is about to wait: a connection's writes, so that every
 * command queued while the loop handles one batch of events leaves in one write().
 * The owner embeds the node (no allocation) and must sy_loop_undefer() it before
 * freeing it. Deferring a queued node again is a no-op. */
struct sy_defer {
	struct sy_defer *next, **prev; /* prev == NULL: not queued */
	void (*cb)(struct sy_loop *l, void *arg);
	void *arg;
};
void sy_loop_defer(struct sy_loop *l, struct sy_defer *d);
void sy_loop_undefer(struct sy_defer *d);

/* Runs until sy_loop_stop(). Returns 0, or a negative errno if epoll itself fails. */
int sy_loop_run(struct sy_loop *l);
void sy_loop_stop(struct sy_loop *l);

/* Monotonic milliseconds. */
uint64_t sy_now_ms(void);
/* The same clock read at the kernel's tick (1-4 ms behind sy_now_ms, about 5 ns a read
 * instead of 27 here): for per-command bookkeeping whose windows are tens of ms or more
 * (conflict windows, client idleness), never for timers. */
uint64_t sy_coarse_ms(void);
/* Wall-clock milliseconds since the epoch (for timestamps people read). */
uint64_t sy_unix_ms(void);

#endif
