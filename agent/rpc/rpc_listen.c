// SPDX-License-Identifier: Apache-2.0
/* rpc_listen.c — see rpc_listen.h. The control socket is the daemon's front door and
 * it runs as root, so the unix listener is careful: it never deletes a file that is
 * not a socket, never steals a socket a live server still answers on, and never lets
 * the socket exist with a mode wider than 0600, not even between bind() and chmod(). */
#include "rpc/rpc_listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/decimal.h"

#define BACKLOG 512

static int parse_port(const char *s, int *port)
{
	int64_t p = sy_decimal(s, strlen(s), 5);

	if (p < 0 || p > 65535)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

int sy_rpc_addr_parse(const char *spec, struct sy_rpc_addr *a)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *path = NULL, *port;
	size_t hl;

	memset(a, 0, sizeof(*a));
	if (strncmp(spec, "unix:", 5) == 0) {
		path = spec + 5;
		if (strncmp(path, "//", 2) == 0) {
			/* URI form: only an empty authority ("unix:///abs") is meaningful. */
			if (path[2] != '/')
				return -EINVAL;
			path += 2;
		}
		struct sockaddr_un *u = (struct sockaddr_un *)&a->ss;

		if (!*path)
			return -EINVAL;
		if (strlen(path) >= sizeof(u->sun_path))
			return -ENAMETOOLONG;
		u->sun_family = AF_UNIX;
		strcpy(u->sun_path, path);
		strcpy(a->path, path);
		a->len = (socklen_t)sizeof(*u);
		return 0;
	}
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

		if (!close || close[1] != ':')
			return -EINVAL;
		hl = (size_t)(close - spec - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec + 1, hl);
		host[hl] = '\0';
		port = close + 2;
		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1 || parse_port(port, &a->port))
			return -EINVAL;
		s6->sin6_port = htons((uint16_t)a->port);
		a->len = (socklen_t)sizeof(*s6);
		return 0;
	}
	const char *colon = strrchr(spec, ':');
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;

	if (!colon)
		return -EINVAL;
	hl = (size_t)(colon - spec);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	s4->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1 || parse_port(colon + 1, &a->port))
		return -EINVAL;
	s4->sin_port = htons((uint16_t)a->port);
	a->len = (socklen_t)sizeof(*s4);
	return 0;
}

/* mkdir -p of the socket's folder. Folders we create get 0755 whatever the umask: the
 * socket's own mode (0600) is what keeps other users out, and a folder that hides it
 * would only make that harder to see and to test. */
static int make_parents(const char *path)
{
	char d[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(d, sizeof(d), "%s", path);
	slash = strrchr(d, '/');
	if (!slash || slash == d)
		return 0;
	*slash = '\0';
	for (char *p = d + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(d, 0755) == 0) {
			chmod(d, 0755);
		} else if (errno != EEXIST) {
			return -errno;
		}
		*p = c;
		if (!c)
			break;
	}
	return 0;
}

/* An existing file at the socket path: removed only if it is a socket with no live
 * server behind it (a crashed daemon's leftover). */
static int clear_stale(const struct sy_rpc_addr *a)
{
	struct stat st;
	int fd, rc;

	if (lstat(a->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
	/* EAGAIN: a full backlog, so somebody is listening. */
	if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	if (unlink(a->path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int listen_unix(const struct sy_rpc_addr *a)
{
	mode_t old;
	int fd, e;

	if ((e = make_parents(a->path)) || (e = clear_stale(a)))
		return e;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The agent is single-threaded, so flipping the process umask around bind() races
	 * with nobody. */
	old = umask(0177);
	e = bind(fd, (const struct sockaddr *)&a->ss, a->len);
	umask(old);
	if (e < 0 || chmod(a->path, 0600) < 0 || listen(fd, BACKLOG) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int listen_tcp(const struct sy_rpc_addr *a, int *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, one = 1, e;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

int sy_rpc_listen_on(const struct sy_rpc_addr *a, int *port)
{
	if (a->ss.ss_family == AF_UNIX)
		return listen_unix(a);
	return listen_tcp(a, port);
}

int sy_rpc_connect(const struct sy_rpc_addr *a)
{
	int fd, one = 1, e;

	if (a->ss.ss_family != AF_UNIX && a->port == 0)
		return -EINVAL;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (a->ss.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}
