// SPDX-License-Identifier: Apache-2.0
/* auth.h — owns the AUTH command that opens every connection the agent makes to a
 * datastore (redis_conn.c for the mirror, repairs, backfill, audits and dual reads;
 * health.c for health checks). The password file (core/secret.h) is read anew at each
 * connection, so a rotated Secret is used from the next connection on, without a
 * signal; the password lives in the caller's buffer for the length of one handshake,
 * then is wiped. No message built here contains it. */
#ifndef SY_REDIS_AUTH_H
#define SY_REDIS_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/secret.h"
#include "model/spec.h"

/* Whether a connection with these credentials (NULL: none) starts with AUTH. */
bool sy_redis_auth_wanted(const struct sy_auth_spec *a);

/* The AUTH command's arguments: "AUTH password", or "AUTH user password" for an ACL
 * user; argv points into a and into pw (which receives the password). Returns argc
 * (2 or 3), or a negative errno with why ("password file /x: mode 0644: …"). The
 * caller wipes pw (sy_secret_wipe) once the command is formatted. */
int sy_redis_auth_argv(const struct sy_auth_spec *a, char pw[SY_SECRET_MAX + 1], const char *argv[3],
		       size_t lens[3], char *why, size_t wn);

/* What a refused AUTH is reported as: the server's error (which names no password)
 * and the user, e.g. "AUTH as switchyard refused: WRONGPASS invalid username-…". */
void sy_redis_auth_refused(const char *user, const char *reply, size_t len, char *why, size_t wn);

#endif
