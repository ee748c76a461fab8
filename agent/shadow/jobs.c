// SPDX-License-Identifier: Apache-2.0
/* jobs.c — see jobs.h. */
#include "shadow/jobs.h"

#include <stdio.h>
#include <stdlib.h>
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

/* "# Keyspace\r\ndb0:keys=120,expires=0,avg_ttl=0\r\ndb3:keys=2,…" */
static void on_keyspace(struct sy_redis *c, redisReply *r, void *priv)
{
	struct sy_job_keyspace *ks = priv;
	const char *p;

	(void)c;
	if (!r || r->type != REDIS_REPLY_STRING)
		return;
	for (p = r->str; p && (p = strstr(p, "db")); p += 2) {
		char *end;
		unsigned long db, keys;

		if (p != r->str && p[-1] != '\n')
			continue;
		db = strtoul(p + 2, &end, 10);
		if (end == p + 2 || strncmp(end, ":keys=", 6) != 0 || db >= 64)
			continue;
		keys = strtoul(end + 6, NULL, 10);
		ks->keys += keys;
		if (keys)
			ks->dbs |= 1ull << db;
	}
}

void sy_job_keyspace(struct sy_redis *c, struct sy_job_keyspace *ks)
{
	const char *argv[2] = {"INFO", "keyspace"};
	size_t lens[2] = {4, 8};

	sy_redis_sendv(c, 2, argv, lens, on_keyspace, ks);
}

static void ignore_reply(struct sy_redis *c, redisReply *r, void *priv)
{
	(void)c;
	(void)r;
	(void)priv;
}

int sy_job_select(struct sy_redis *c, int *cur, int db)
{
	char n[8];
	const char *argv[2] = {"SELECT", n};
	size_t lens[2] = {6, 0};
	int e;

	if (*cur == db)
		return 0;
	lens[1] = (size_t)snprintf(n, sizeof(n), "%d", db);
	if ((e = sy_redis_sendv(c, 2, argv, lens, ignore_reply, NULL)) == 0)
		*cur = db;
	return e;
}

int sy_job_del(struct sy_redis *c, int *cur, int db, const char *key, size_t len)
{
	const char *argv[2] = {"DEL", key};
	size_t lens[2] = {3, len};
	int e = sy_job_select(c, cur, db);

	return e ? e : sy_redis_sendv(c, 2, argv, lens, ignore_reply, NULL);
}

int sy_job_next_db(uint64_t dbs, int db)
{
	for (int n = db + 1; n < 64; n++)
		if (dbs & (1ull << n))
			return n;
	return -1;
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
