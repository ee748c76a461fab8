// SPDX-License-Identifier: Apache-2.0
/* rpc_listen.h — the sockets under the gRPC transport, for rpc_server.c and
 * rpc_client.c only: one parser for every address form either side accepts, the unix
 * and TCP listeners, and the non-blocking connect.
 *
 * Address forms (numeric only: the agent never waits on DNS inside its event loop):
 *   unix:/abs/path   unix:relative/path   unix:///abs/path
 *   127.0.0.1:PORT   [::1]:PORT           localhost:PORT (= 127.0.0.1)
 */
#ifndef SY_RPC_LISTEN_H
#define SY_RPC_LISTEN_H

#include <sys/socket.h>
#include <sys/un.h>

struct sy_rpc_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix sockets: the file */
	int port;						/* TCP: as written, 0 allowed */
};

/* 0, -EINVAL (not one of the forms above), -ENAMETOOLONG (unix path too long). */
int sy_rpc_addr_parse(const char *spec, struct sy_rpc_addr *a);

/* A listening, non-blocking, close-on-exec socket for a, or a negative errno.
 * Unix: missing parent folders are created 0755; the socket file is 0600 from the
 * moment it exists (bound under umask 0177, then chmod); an existing file at the path
 * is replaced only when it is a socket nobody listens on (-EEXIST when it is not a
 * socket, -EADDRINUSE when a live server owns it). TCP: *port gets the bound port
 * (useful with port 0). */
int sy_rpc_listen_on(const struct sy_rpc_addr *a, int *port);

/* A non-blocking socket with connect() started (EINPROGRESS is success), or a
 * negative errno when the connect failed at once (ENOENT, ECONNREFUSED, …). */
int sy_rpc_connect(const struct sy_rpc_addr *a);

#endif
