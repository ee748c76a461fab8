// SPDX-License-Identifier: Apache-2.0
/* rpc_peer.c — who is at the other end of a call, for the record of who changed what:
 * the unix socket's peer credentials (the socket is root-only, so the uid says little;
 * the pid names the process), or the TCP peer's address with, over TLS, the subject of
 * its client certificate (who it is, not only where it calls from). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "rpc/rpc.h"

const char *sy_rpc_call_peer(const struct sy_rpc_call *call, char *buf, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = sy_rpc_call_fd(call);
	char ip[INET6_ADDRSTRLEN];

	buf[0] = '\0';
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return buf;
	if (ss.ss_family == AF_UNIX) {
		struct ucred uc;
		socklen_t ul = sizeof(uc);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0)
			snprintf(buf, n, "uid=%u pid=%d", (unsigned)uc.uid, (int)uc.pid);
		return buf;
	}
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return buf;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(buf, n, "%s:%u", ip, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(buf, n, "[%s]:%u", ip, ntohs(a->sin6_port));
	}
	const char *subj = sy_rpc_call_tls_peer(call);
	size_t l = strlen(buf);

	if (*subj && l < n)
		snprintf(buf + l, n - l, " %s", subj);
	return buf;
}
