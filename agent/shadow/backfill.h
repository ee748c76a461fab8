// SPDX-License-Identifier: Apache-2.0
/* backfill.h — the backfill of one migration: copies legacy's existing keys (per scope
 * prefix, or all when the migration has no `scope:`) to target through the mirror's repair path
 * (DUMP/RESTORE, so it is safe to repeat), before shadowing alone is trusted; every
 * database with keys (INFO keyspace), each in turn. A copier, not a check: verify
 * only hosts it, next to the audit.
 *
 * Contract: keys are scanned in batches at most rate_keys keys/s and rate_bytes bytes/s
 * (0 = unbounded); each key is first noted to the mirror (a write racing the copy is
 * copied again once it settles). The place (pattern, cursor, copied, rates) is saved
 * in STATE_DIR/backfill-NAME.state before each batch, once the previous batch's copies
 * landed (or after 2 s), so a restarted agent re-copies at most about one batch; it
 * goes on with sy_backfill_resume. State and progress are read with
 * sy_backfill_status (the API's BackfillStatus). */
#ifndef SY_BACKFILL_H
#define SY_BACKFILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/job.h"
#include "shadow/jobs.h"

struct sy_loop;
struct sy_mirror;
struct sy_redis;
struct sy_migration_spec;
struct sy_backfill_status;

/* What a backfill works with: its migration's, owned by the caller (verify). */
struct sy_backfill_env {
	struct sy_loop *loop;
	struct sy_mirror *mirror;
	const char *state_dir;
	const char *name;
	uint32_t id;
	const struct sy_migration_spec *spec;
	struct sy_redis *const *legacy; /* the migration's legacy connection, may change */
	int *legacy_db;			/* the database it has SELECTed (shared with verify) */
	const bool *active;		/* false: the migration is gone, stop */
};

struct sy_backfill {
	struct sy_backfill_env env;
	enum sy_job_state state;
	uint32_t rate_keys;
	uint64_t rate_bytes;
	uint32_t pattern;	   /* scope prefix being scanned; UINT32_MAX: all scanned */
	int db;			   /* the database being scanned: every one with keys on legacy, in turn */
	struct sy_job_keyspace ks; /* INFO keyspace of legacy: its keys, and those databases */
	char cursor[32];
	bool scan_pending;
	uint64_t scanned, copied, bytes0, total, started_ms, finished_ms, t0_mono, t1_mono, copied0;
	uint32_t resumed;
	char error[160];
	uint64_t batch_ms; /* when the last batch was sent to repair */
	int save_err;	   /* the last save's error (a failing disk is logged once) */
	uint64_t timer;
};

/* (Re)binds a backfill to its migration; zeroed memory bound this way is idle. */
void sy_backfill_bind(struct sy_backfill *b, const struct sy_backfill_env *env);
/* -EBUSY when one runs. */
int sy_backfill_start(struct sy_backfill *b, uint32_t keys_per_s, uint64_t bytes_per_s);
/* Goes on from the saved place if the backfill was running when the agent stopped. */
void sy_backfill_resume(struct sy_backfill *b);
void sy_backfill_status(const struct sy_backfill *b, struct sy_backfill_status *out);
/* Stops its timer (a SCAN in flight is dropped when the migration is inactive). */
void sy_backfill_stop(struct sy_backfill *b);
/* STATE_DIR/backfill-NAME.state; "" when it does not fit. */
void sy_backfill_path(const char *state_dir, const char *name, char *p, size_t n);

#endif
