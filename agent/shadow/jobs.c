// SPDX-License-Identifier: Apache-2.0
/* jobs.c — see jobs.h. */
#include "shadow/jobs.h"

#include <string.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "model/keymap.h"
#include "model/spec.h"

/* SCAN's MATCH pattern for scope prefix i on a side: the prefix, glob characters escaped. */
static void pattern_of(const struct sy_migration_spec *spec, int side, uint32_t i, char *out, size_t cap)
{
	char buf[SY_PREFIX_MAX * 2 + 2];
	const char *p = spec->scope[i];
	size_t n = 0;

	if (side == SY_SIDE_TARGET) {
		const char *mapped;
		size_t ml = sy_key_map(spec, SY_SIDE_LEGACY, p, strlen(p), buf, sizeof(buf) - 1, &mapped);

		memmove(buf, mapped, ml);
		buf[ml] = 0;
		p = buf;
	}
	for (; *p && n + 3 < cap; p++) {
		if (strchr("*?[]\\", *p))
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n++] = '*';
	out[n] = 0;
}

int sy_job_scan(struct sy_redis *c, const struct sy_migration_spec *spec, int side, uint32_t pattern,
		const char *cursor, const char *count, sy_redis_reply_cb cb, void *priv)
{
	char pat[SY_PREFIX_MAX * 2 + 4];
	const char *argv[6] = {"SCAN", cursor};
	size_t lens[6] = {4, strlen(cursor)};
	int argc = 2;

	if (spec->n_scope && pattern < spec->n_scope) {
		pattern_of(spec, side, pattern, pat, sizeof(pat));
		argv[argc] = "MATCH";
		lens[argc++] = 5;
		argv[argc] = pat;
		lens[argc++] = strlen(pat);
	}
	argv[argc] = "COUNT";
	lens[argc++] = 5;
	argv[argc] = count;
	lens[argc++] = strlen(count);
	return sy_redis_sendv(c, argc, argv, lens, cb, priv);
}

static void on_dbsize(struct sy_redis *c, redisReply *r, void *priv)
{
	(void)c;
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
		*(uint64_t *)priv += (uint64_t)r->integer;
}

void sy_job_dbsize(struct sy_redis *c, uint64_t *total)
{
	const char *argv[1] = {"DBSIZE"};
	size_t lens[1] = {6};

	sy_redis_sendv(c, 1, argv, lens, on_dbsize, total);
}

void sy_job_save(const char *mig, const char *what, const char *path, const char *line, int *last_err)
{
	/* a crash leaves the old place or the new, never half */
	int e = sy_file_replace(path, line, strlen(line), 0644);

	if (e && e != *last_err)
		sy_warn("verify", "%s: cannot save the %s's place in %s: %s", mig, what,
			path[0] ? path : "(state dir)", strerror(-e));
	*last_err = e;
}
