// SPDX-License-Identifier: Apache-2.0
/* auth.c — see auth.h. */
#include "redis/auth.h"

#include <stdio.h>
#include <string.h>

#include "core/quote.h"

bool sy_redis_auth_wanted(const struct sy_auth_spec *a)
{
	return a && a->password_file[0];
}

int sy_redis_auth_argv(const struct sy_auth_spec *a, char pw[SY_SECRET_MAX + 1], const char *argv[3],
		       size_t lens[3], char *why, size_t wn)
{
	char q[SY_QUOTE_BUF], r[160];
	size_t len;
	int argc = 0, e;

	if ((e = sy_secret_read(a->password_file, pw, &len, r, sizeof(r)))) {
		snprintf(why, wn, "password file %s: %s", sy_quote(q, a->password_file), r);
		return e;
	}
	argv[argc] = "AUTH";
	lens[argc++] = 4;
	if (a->user[0]) {
		argv[argc] = a->user;
		lens[argc++] = strlen(a->user);
	}
	argv[argc] = pw;
	lens[argc++] = len;
	return argc;
}

void sy_redis_auth_refused(const char *user, const char *reply, size_t len, char *why, size_t wn)
{
	char q[SY_QUOTE_BUF];

	/* the server's message is its own words (WRONGPASS, NOPERM, "called without any
	 * password configured"): quoted so it stays one line */
	if (len > 100)
		len = 100;
	snprintf(why, wn, "AUTH as %s refused: %s", user[0] ? user : "the default user",
		 sy_quote_n(q, reply ? reply : "", reply ? len : 0));
}
