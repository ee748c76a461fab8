// SPDX-License-Identifier: Apache-2.0
/* hostname.h — endpoints written as host names ("redis-legacy.svc:6379"): telling them
 * from numeric ones, resolving them (getaddrinfo, A and AAAA, blocking: the daemon
 * calls it at apply, and off its loop for the periodic re-resolution, see
 * registry/resolver.h), and placing a name's addresses into a spec's endpoint array
 * (struct sy_host_spec, spec.h). Resolution goes through the system's resolver as
 * configured (nsswitch: /etc/hosts, then DNS): there is no test-only path.
 */
#ifndef SY_HOSTNAME_H
#define SY_HOSTNAME_H

#include <stddef.h>
#include <stdint.h>

#include "model/spec.h"

/* Whether s is "host:port" with a DNS host name (letters, digits, '-', '.', '_'; labels
 * of 1..63, at most SY_HOST_MAX; not all digits and dots). 0 with host and port (host
 * order) filled; -EINVAL with why in err otherwise. */
int sy_hostport_parse(const char *s, char host[SY_HOST_MAX + 1], uint16_t *port, char *err, size_t errlen);

/* "redis-legacy.svc:6379". */
void sy_host_format(const struct sy_host_spec *h, char *buf, size_t n);

/* Resolves host (blocking) into at most max endpoints with this port: IPv4 and IPv6,
 * deduplicated, sorted (so that the same answer compares equal whatever order the
 * resolver gave it in). Returns how many (>= 1), or -ENOENT (no address: err says the
 * resolver's reason), -ENOSPC (more than max addresses; the first max are kept). */
int sy_host_resolve(const char *host, uint16_t port, struct sy_endpoint *out, size_t max, char *err,
		    size_t errlen);

/* Makes `eps` (n of them) the addresses of m->hosts[side][h], moving the side's other
 * endpoints around them. -ENOSPC when the side would have more than SY_MAX_ENDPOINTS
 * (nothing changed). Clears the host's stale flag. */
int sy_spec_host_set(struct sy_migration_spec *m, int side, size_t h, const struct sy_endpoint *eps,
		     size_t n);

/* Whether two address lists are the same set (both sorted as sy_host_resolve sorts). */
int sy_host_addrs_equal(const struct sy_endpoint *a, size_t na, const struct sy_endpoint *b, size_t nb);

/* Resolves every host name of one migration now (blocking) and places the addresses.
 * file NULL (the API): messages name the field ("legacy[1]: \"x:6379\": does not
 * resolve: …"); else "FILE:LINE: legacy[1]: …". 0 or -EINVAL. */
int sy_migration_spec_resolve(struct sy_migration_spec *m, const char *file, struct sy_spec_err *err);
/* The same for every migration of a file. */
int sy_spec_resolve(struct sy_spec *s, const char *file, struct sy_spec_err *err);

/* The names not resolved yet on one side (their n == 0). */
uint32_t sy_spec_hosts_unresolved(const struct sy_migration_spec *m, int side);

#endif
