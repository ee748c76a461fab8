// SPDX-License-Identifier: Apache-2.0
/* repair.h — the mirror's repair engine, one per migration and direction: the keys
 * waiting to be copied (the dirty-key set) and the copies in flight.
 *
 * Contract: a key marked dirty is copied from the source side to the destination once
 * it is due — DUMP + PTTL read in one MULTI on the source connection, then RESTORE …
 * REPLACE with that TTL (or DEL when the key is gone) on the destination — which is
 * idempotent, so anything doubtful is simply marked again. The set is deduplicated
 * (marking a dirty key again only pushes its due time later) and kept in marking
 * order; it holds at most SY_MIRROR_DIRTY_MAX keys, past which the owner is told the
 * migration needs an audit. At most SY_REPAIR_INFLIGHT copies run at once; a failed
 * copy is marked again after SY_REPAIR_RETRY_MS. The connections belong to the owner
 * (the mirror): the engine only borrows them.
 *
 * With a transform (xf set by the owner), copies go by batches of up to SY_REPAIR_BATCH
 * due keys: one round trip reads them all typed (the audit's look), forward_key
 * (reverse_key for the reverse direction) runs on each, and their resulting keys are
 * written with their TTLs in one MULTI … EXEC per destination connection
 * (transform_copy.c). Each key has its own outcome: a key the script fails on is
 * counted there, not retried, and the migration flagged needs-audit with the reason;
 * the others of its batch are copied all the same. */
#ifndef SY_REPAIR_H
#define SY_REPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shadow/dirty.h"

struct sy_loop;
struct sy_redis;
struct sy_mirror_stats;

#define SY_REPAIR_INFLIGHT 256
#define SY_REPAIR_BATCH	   32  /* typed copies looked at in one round trip */
#define SY_REPAIR_RETRY_MS 500 /* a failed repair is tried again */

/* What the engine asks of its owner. */
struct sy_repair_ops {
	/* The destination connection for `key` (a source-side name), brought to `db`,
	 * with the key's destination-side name in *dkey / *dlen (buf may hold it); NULL
	 * when it cannot take a command now. */
	struct sy_redis *(*dest)(void *owner, int db, const char *key, size_t len, char *buf, size_t cap,
				 const char **dkey, size_t *dlen);
	/* A copy of `key` starts: a write landing between its DUMP and RESTORE would be
	 * overwritten by the older value. */
	void (*copying)(void *owner, int db, const char *key, size_t len);
	/* Something was lost that repair cannot know about (the set is full). */
	void (*flag_audit)(void *owner, const char *why);
};

struct sy_xf;

struct sy_repair {
	/* set by sy_repair_init */
	struct sy_loop *loop;
	const struct sy_repair_ops *ops;
	void *owner;
	struct sy_redis *const *source; /* the owner's source connection (DUMP), may change */
	int *source_db;			/* the database it is on; the owner sets 0 at connect */
	const bool *active;		/* the owner's: no copy starts while false */
	struct sy_mirror_stats *st;	/* repaired, repair_failed, repaired_bytes, dirty */
	struct sy_dirty *tab;		/* the dirty-key set (dirty.h), made at the first mark */
	uint32_t inflight;		/* copies under way */
	struct sy_xf *xf;		/* the migration's transform, NULL: DUMP/RESTORE */
	bool reverse;			/* copies go target → legacy (reverse_key) */
	uint64_t timer;
};

/* Zeroed memory is a stopped, empty engine; init may be called again with the same
 * arguments (it keeps the set). */
void sy_repair_init(struct sy_repair *r, struct sy_loop *l, const struct sy_repair_ops *ops, void *owner,
		    struct sy_redis *const *source, int *source_db, const bool *active,
		    struct sy_mirror_stats *st);
/* Brings the source connection to `db` (a SELECT only when it is on another). */
int sy_repair_select(struct sy_repair *r, struct sy_redis *src, int db);
/* Marks a key (source-side name) for a copy in `delay_ms` at the earliest. */
void sy_repair_mark(struct sy_repair *r, int db, const char *key, size_t len, uint64_t delay_ms);
/* Whether a key (source-side name) waits in the set. */
bool sy_repair_has(const struct sy_repair *r, int db, const char *key, size_t len);
/* Keys waiting plus copies under way. */
static inline uint64_t sy_repair_backlog(const struct sy_repair *r)
{
	return sy_dirty_count(r->tab) + r->inflight;
}
/* A typed copy ended (transform_copy.c): 0 copied, -EAGAIN retry later, another
 * negative errno: the script failed on it (counted, flagged, not retried). */
void sy_repair_typed_done(struct sy_repair *r, int db, const char *key, size_t len, int outcome);
/* Starts the typed copies of n keys (source-side names, at most SY_REPAIR_BATCH) of
 * one database through r->xf: one look for all of them, then each key's writes in
 * one MULTI … EXEC per destination connection (transform_copy.c). Each key ends in
 * sy_repair_typed_done, unless this fails (a negative errno: none started). */
int sy_repair_typed_batch(struct sy_repair *r, int db, size_t n, const char *const *keys, const size_t *lens);

/* Stops the timer (copies in flight finish with their connections). */
void sy_repair_stop(struct sy_repair *r);
/* Stops and forgets every key; counts restart. */
void sy_repair_free(struct sy_repair *r);

#endif
