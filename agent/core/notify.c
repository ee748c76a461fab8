// SPDX-License-Identifier: Apache-2.0
/* notify.c — see notify.h. */
#include "core/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

static uint64_t dropped;

uint64_t sy_notify_dropped(void)
{
	return dropped;
}

int sy_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t plen;
	socklen_t salen;
	ssize_t w;
	int fd, err;

	if (!path || !*path)
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
		return -EAFNOSUPPORT; /* vsock and friends: not spoken here */
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: the name is exactly plen bytes, no NUL */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	err = w < 0 ? -errno : 1;
	close(fd);
	if (err == -EAGAIN) {
		/* the first drop is worth a line; a manager that stopped reading would
		 * otherwise fill the log with one per state change */
		if (dropped++ == 0)
			sy_warn("notify", "%s is not read (queue full): notifications dropped", path);
	} else if (err < 0) {
		sy_debug("notify", "send to %s: %s", path, strerror(-err));
	}
	return err;
}

int sy_notifyf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return sy_notify(buf);
}
