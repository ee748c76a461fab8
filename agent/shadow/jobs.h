// SPDX-License-Identifier: Apache-2.0
/* jobs.h — what verify's background jobs (the audit, the backfill) share: a SCAN over
 * one side of a migration, of the whole keyspace or per scope prefix (`scope:`, the
 * prefix as a MATCH pattern, glob characters escaped, named as that side names it), database by
 * database; INFO keyspace answers summed into a progress total and the set of databases to visit; and saving
 * a job's place (one line, replaced atomically through core/fsutil) so that a restarted agent goes on, with a
 * failing save logged once until a save works again. */
#ifndef SY_JOBS_H
#define SY_JOBS_H

#include <stdint.h>

#include "redis/redis_conn.h"

struct sy_migration_spec;

/* SCAN cursor [MATCH pattern of scope prefix `pattern`] COUNT count on `side`: no
 * MATCH when the migration has no scope or `pattern` is SY_JOB_WHOLE (the counting
 * prefixes never narrow a scan). */
#define SY_JOB_WHOLE 1000u
int sy_job_scan(struct sy_redis *c, const struct sy_migration_spec *spec, int side, uint32_t pattern,
		const char *cursor, const char *count, sy_redis_reply_cb cb, void *priv);
/* INFO keyspace on c, added up into *ks (which must outlive the replies): the keys of
 * every database, and which databases hold keys (bit n: database n; n < 64). */
struct sy_job_keyspace {
	uint64_t keys;
	uint64_t dbs;
};
void sy_job_keyspace(struct sy_redis *c, struct sy_job_keyspace *ks);
/* The lowest database of `dbs` above `db`, or -1. */
int sy_job_next_db(uint64_t dbs, int db);
/* SELECT db on c unless *cur (the database c has selected, shared by everyone sending
 * on c) already is db; commands sent after it read that database. 0 or the send's error. */
int sy_job_select(struct sy_redis *c, int *cur, int db);
/* DEL key on c, in database db (as sy_job_select), its answer not awaited. 0 or the
 * send's error. */
int sy_job_del(struct sy_redis *c, int *cur, int db, const char *key, size_t len);
/* Replaces the place file `path` with `line`; logs (for migration `mig`, job `what`) a
 * failure unless it is the same as *last_err, the last save's result. */
void sy_job_save(const char *mig, const char *what, const char *path, const char *line, int *last_err);

#endif
