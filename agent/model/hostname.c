// SPDX-License-Identifier: Apache-2.0
/* hostname.c — see hostname.h. */
#include "model/hostname.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/quote.h"
#include "model/endpoint.h"

static int host_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.';
}

int sy_hostport_parse(const char *s, char host[SY_HOST_MAX + 1], uint16_t *port, char *err, size_t errlen)
{
	char q[SY_QUOTE_BUF];
	const char *colon = s ? strrchr(s, ':') : NULL;
	size_t hl, label = 0;
	int alpha = 0;
	char *end;
	unsigned long v;

	if (!colon || strchr(s, ':') != colon || s[0] == '[') {
		snprintf(err, errlen, "\"%s\": not a host name with a port (host:port)",
			 sy_quote(q, s ? s : ""));
		return -EINVAL;
	}
	hl = (size_t)(colon - s);
	if (hl == 0 || hl > SY_HOST_MAX) {
		snprintf(err, errlen, "\"%s\": a host name has 1 to %d characters", sy_quote(q, s),
			 SY_HOST_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < hl; i++) {
		if (!host_char(s[i])) {
			snprintf(err, errlen,
				 "\"%s\": not a numeric IPv4 or [IPv6] address, nor a host name (letters, "
				 "digits, '-', '.')",
				 sy_quote(q, s));
			return -EINVAL;
		}
		if (s[i] == '.') {
			if (label == 0) {
				snprintf(err, errlen, "\"%s\": empty label in host name", sy_quote(q, s));
				return -EINVAL;
			}
			label = 0;
			continue;
		}
		if (++label > 63) {
			snprintf(err, errlen, "\"%s\": a host name's label has at most 63 characters",
				 sy_quote(q, s));
			return -EINVAL;
		}
		if (!(s[i] >= '0' && s[i] <= '9'))
			alpha = 1;
	}
	if (!alpha) {
		snprintf(err, errlen, "\"%s\": not a numeric IPv4 or [IPv6] address", sy_quote(q, s));
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || errno || *end || v == 0 || v > 65535) {
		snprintf(err, errlen, "\"%s\": port must be 1..65535", sy_quote(q, s));
		return -EINVAL;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	*port = (uint16_t)v;
	return 0;
}

void sy_host_format(const struct sy_host_spec *h, char *buf, size_t n)
{
	snprintf(buf, n, "%s:%u", h->host, h->port);
}

static int ep_cmp(const void *pa, const void *pb)
{
	const struct sy_endpoint *a = pa, *b = pb;

	if (a->family != b->family)
		return a->family == SY_AF_INET ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

int sy_host_resolve(const char *host, uint16_t port, struct sy_endpoint *out, size_t max, char *err,
		    size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	struct sy_endpoint all[64];
	size_t n = 0;
	int g;

	g = getaddrinfo(host, NULL, &hints, &res);
	if (g) {
		char eb[128] = "";

		/* strerror_r: the resolver thread calls this too */
		if (g == EAI_SYSTEM)
			snprintf(err, errlen, "%s", strerror_r(errno, eb, sizeof(eb)));
		else
			snprintf(err, errlen, "%s", gai_strerror(g));
		return -ENOENT;
	}
	for (struct addrinfo *ai = res; ai && n < sizeof(all) / sizeof(all[0]); ai = ai->ai_next) {
		struct sy_endpoint ep = {0};

		if (ai->ai_family == AF_INET) {
			ep.addr[10] = ep.addr[11] = 0xff;
			memcpy(&ep.addr[12], &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
			ep.family = SY_AF_INET;
		} else if (ai->ai_family == AF_INET6) {
			memcpy(ep.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
			ep.family = SY_AF_INET6;
		} else {
			continue;
		}
		ep.port = htons(port);
		all[n++] = ep;
	}
	freeaddrinfo(res);
	qsort(all, n, sizeof(all[0]), ep_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || !sy_endpoint_equal(&all[i], &all[k - 1]))
			all[k++] = all[i];
	if (k == 0) {
		snprintf(err, errlen, "no IPv4 or IPv6 address");
		return -ENOENT;
	}
	memcpy(out, all, (k < max ? k : max) * sizeof(*out));
	if (k > max) {
		snprintf(err, errlen, "%zu addresses, at most %zu per side", k, max);
		return -ENOSPC;
	}
	return (int)k;
}

static struct sy_endpoint *side_eps(struct sy_migration_spec *m, int side, uint32_t **n)
{
	*n = side == SY_SIDE_TARGET ? &m->n_target : &m->n_legacy;
	return side == SY_SIDE_TARGET ? m->target : m->legacy;
}

int sy_spec_host_set(struct sy_migration_spec *m, int side, size_t h, const struct sy_endpoint *eps, size_t n)
{
	struct sy_host_spec *hs = &m->hosts[side][h];
	uint32_t *count;
	struct sy_endpoint *arr = side_eps(m, side, &count);
	long delta = (long)n - (long)hs->n;

	if ((long)*count + delta > SY_MAX_ENDPOINTS || hs->first + hs->n > *count)
		return -ENOSPC;
	memmove(&arr[hs->first + n], &arr[hs->first + hs->n], (*count - hs->first - hs->n) * sizeof(*arr));
	memcpy(&arr[hs->first], eps, n * sizeof(*arr));
	*count = (uint32_t)((long)*count + delta);
	if (*count < SY_MAX_ENDPOINTS)
		memset(&arr[*count], 0, (SY_MAX_ENDPOINTS - *count) * sizeof(*arr));
	for (size_t j = h + 1; j < m->n_hosts[side]; j++)
		m->hosts[side][j].first = (uint8_t)(m->hosts[side][j].first + delta);
	hs->n = (uint8_t)n;
	hs->stale = false;
	return 0;
}

int sy_host_addrs_equal(const struct sy_endpoint *a, size_t na, const struct sy_endpoint *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (!sy_endpoint_equal(&a[i], &b[i]))
			return 0;
	return 1;
}

int sy_migration_spec_resolve(struct sy_migration_spec *m, const char *file, struct sy_spec_err *err)
{
	static const char *const side_name[2] = {"legacy", "target"};

	for (int side = 0; side < 2; side++)
		for (size_t h = 0; h < m->n_hosts[side]; h++) {
			struct sy_host_spec *hs = &m->hosts[side][h];
			struct sy_endpoint eps[SY_MAX_ENDPOINTS];
			char why[200], name[SY_HOST_MAX + 8], where[PATH_MAX + 32] = "";
			int k = sy_host_resolve(hs->host, hs->port, eps, SY_MAX_ENDPOINTS, why, sizeof(why));

			sy_host_format(hs, name, sizeof(name));
			if (file)
				snprintf(where, sizeof(where), "%s:%d: ", file,
					 hs->line ? hs->line : m->line);
			if (k == -ENOSPC || (k > 0 && sy_spec_host_set(m, side, h, eps, (size_t)k)))
				return sy_spec_fail(err,
						    "%s%s[%u]: \"%s\": resolves to more addresses than fit "
						    "(at most %d endpoints per side)",
						    where, side_name[side], hs->pos, name, SY_MAX_ENDPOINTS);
			if (k < 0)
				return sy_spec_fail(err, "%s%s[%u]: \"%s\": does not resolve: %s", where,
						    side_name[side], hs->pos, name, why);
		}
	return 0;
}

int sy_spec_resolve(struct sy_spec *s, const char *file, struct sy_spec_err *err)
{
	int e;

	for (size_t i = 0; i < s->n; i++)
		if ((e = sy_migration_spec_resolve(&s->migs[i], file, err)))
			return e;
	return 0;
}

uint32_t sy_spec_hosts_unresolved(const struct sy_migration_spec *m, int side)
{
	uint32_t k = 0;

	for (size_t h = 0; h < m->n_hosts[side]; h++)
		k += m->hosts[side][h].n == 0;
	return k;
}
