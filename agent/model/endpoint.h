// SPDX-License-Identifier: Apache-2.0
/* endpoint.h — parsing and printing `ip:port` endpoints ("127.0.0.1:7000",
 * "[::1]:7001") into the ABI's struct sy_endpoint, and turning them into sockaddrs. */
#ifndef SY_ENDPOINT_H
#define SY_ENDPOINT_H

#include <stddef.h>
#include <sys/socket.h>

#include "switchyard/abi.h"

#define SY_EP_STRLEN 64 /* enough for "[ffff:…:ffff]:65535" */

/* Parses s. On error returns -EINVAL and writes why into err (no "FILE:LINE" prefix,
 * e.g. `"localhost:7000": not a numeric IPv4 or [IPv6] address`). Port 0 is refused. */
int sy_endpoint_parse(const char *s, struct sy_endpoint *ep, char *err, size_t errlen);

/* "127.0.0.1:7000" for IPv4 (also mapped), "[::1]:7001" for IPv6. */
void sy_endpoint_format(const struct sy_endpoint *ep, char *buf, size_t len);

/* The n endpoints comma-separated ("10.0.0.1:6379,[::1]:6380"), cut at len; returns buf. */
const char *sy_endpoints_format(const struct sy_endpoint *eps, size_t n, char *buf, size_t len);

/* sockaddr_in for SY_AF_INET, sockaddr_in6 otherwise. Returns the length. */
socklen_t sy_endpoint_to_sockaddr(const struct sy_endpoint *ep, struct sockaddr_storage *ss);

int sy_endpoint_equal(const struct sy_endpoint *a, const struct sy_endpoint *b);

#endif
