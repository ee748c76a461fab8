// SPDX-License-Identifier: Apache-2.0
/* endpoint.c — see endpoint.h. Numeric addresses only: host names are hostname.h's,
 * resolved by the daemon into these, with an event when their addresses change. */
#include "model/endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/quote.h"

static int parse_port(const char *p, __u16 *out)
{
	char *end;
	unsigned long v;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || *end || v == 0 || v > 65535)
		return -EINVAL;
	*out = htons((unsigned short)v);
	return 0;
}

int sy_endpoint_parse(const char *s, struct sy_endpoint *ep, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1], q[SY_QUOTE_BUF];
	const char *colon;
	size_t hl;

	memset(ep, 0, sizeof(*ep));
	if (!s || !*s) {
		snprintf(err, errlen, "empty endpoint (expected ip:port or [ipv6]:port)");
		return -EINVAL;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "\"%s\": expected [ipv6]:port", sy_quote(q, s));
			return -EINVAL;
		}
		hl = (size_t)(close - s - 1);
		colon = close + 1;
		if (hl == 0 || hl >= sizeof(host)) {
			snprintf(err, errlen, "\"%s\": not a numeric IPv6 address", sy_quote(q, s));
			return -EINVAL;
		}
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, ep->addr) != 1) {
			snprintf(err, errlen, "\"%s\": not a numeric IPv6 address", sy_quote(q, s));
			return -EINVAL;
		}
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		ep->family = memcmp(ep->addr, mapped, 12) == 0 ? SY_AF_INET : SY_AF_INET6;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			snprintf(err, errlen, "\"%s\": missing port (expected ip:port)", sy_quote(q, s));
			return -EINVAL;
		}
		if (strchr(s, ':') != colon) {
			snprintf(err, errlen, "\"%s\": IPv6 addresses need brackets: [addr]:port",
				 sy_quote(q, s));
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= sizeof(host)) {
			snprintf(err, errlen, "\"%s\": not a numeric IPv4 or [IPv6] address", sy_quote(q, s));
			return -EINVAL;
		}
		memcpy(host, s, hl);
		host[hl] = '\0';
		ep->addr[10] = 0xff;
		ep->addr[11] = 0xff;
		if (inet_pton(AF_INET, host, &ep->addr[12]) != 1) {
			memset(ep, 0, sizeof(*ep));
			snprintf(err, errlen, "\"%s\": not a numeric IPv4 or [IPv6] address", sy_quote(q, s));
			return -EINVAL;
		}
		ep->family = SY_AF_INET;
	}
	if (parse_port(colon + 1, &ep->port)) {
		memset(ep, 0, sizeof(*ep));
		snprintf(err, errlen, "\"%s\": port must be 1..65535", sy_quote(q, s));
		return -EINVAL;
	}
	return 0;
}

void sy_endpoint_format(const struct sy_endpoint *ep, char *buf, size_t len)
{
	char h[INET6_ADDRSTRLEN];

	if (ep->family == SY_AF_INET) {
		inet_ntop(AF_INET, &ep->addr[12], h, sizeof(h));
		snprintf(buf, len, "%s:%u", h, ntohs(ep->port));
	} else {
		inet_ntop(AF_INET6, ep->addr, h, sizeof(h));
		snprintf(buf, len, "[%s]:%u", h, ntohs(ep->port));
	}
}

const char *sy_endpoints_format(const struct sy_endpoint *eps, size_t n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++) {
		char one[SY_EP_STRLEN];

		sy_endpoint_format(&eps[i], one, sizeof(one));
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", one);
	}
	return buf;
}

socklen_t sy_endpoint_to_sockaddr(const struct sy_endpoint *ep, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ep->family == SY_AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = ep->port;
		memcpy(&a->sin_addr, &ep->addr[12], 4);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	a6->sin6_family = AF_INET6;
	a6->sin6_port = ep->port;
	memcpy(&a6->sin6_addr, ep->addr, 16);
	return sizeof(*a6);
}

int sy_endpoint_equal(const struct sy_endpoint *a, const struct sy_endpoint *b)
{
	return memcmp(a->addr, b->addr, sizeof(a->addr)) == 0 && a->port == b->port;
}
