// SPDX-License-Identifier: Apache-2.0
/* notify.h — the systemd notification protocol (sd_notify), sent without ever
 * blocking the event loop: a datagram to $NOTIFY_SOCKET on a non-blocking socket, and
 * when the receiver's queue is full the message is dropped, not waited for. systemd
 * reads its socket promptly; a manager that does not must not stall the daemon. */
#ifndef SY_NOTIFY_H
#define SY_NOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1\nSTATUS=…") to $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace). Returns 1 sent, 0 when there is no NOTIFY_SOCKET, -EAGAIN when
 * the receiver is full (dropped), or another negative errno. */
int sy_notify(const char *state);
int sy_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Messages dropped so far because the receiver was full. */
uint64_t sy_notify_dropped(void);

#endif
