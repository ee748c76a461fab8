// SPDX-License-Identifier: Apache-2.0
/* replay_rec.h — what a replay needs besides its connection, without an allocation per
 * command: the record of a replay awaiting its answer (what to repair if it fails),
 * reused from a pool, and the RESP of a raw replay, rebuilt in one kept buffer.
 * One calloc, two reallocs, a malloc for the RESP and their frees per replayed command
 * were a tenth of the agent's time at -P 4 (docs/performance.md, "Mirror"). Used by
 * mirror.c only; single-threaded like the loop. */
#ifndef SY_REPLAY_REC_H
#define SY_REPLAY_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SY_PENDING_KEYS	  2  /* keys held inline */
#define SY_PENDING_KBYTES 96 /* their bytes held inline */

struct dir;

/* One replayed command (or transaction) awaiting its reply. */
struct sy_pending {
	struct dir *d; /* the mirror's direction (mirror_state.h) */
	uint64_t ts_ns;
	int db;
	int nkeys;
	uint32_t parts; /* replies still expected (a transaction: MULTI, cmds, EXEC) */
	bool failed;
	size_t *klen;
	char *kdata; /* the keys (source-side names), one after the other */
	size_t kbytes;
	struct sy_pending *next_free;
	size_t klen_s[SY_PENDING_KEYS];
	char kdata_s[SY_PENDING_KBYTES];
};

struct sy_pending_pool {
	struct sy_pending *free; /* answered records, for reuse */
	unsigned n_free;
	char *raw; /* the last raw replay's RESP (hiredis copies it) */
	size_t raw_cap;
};

struct sy_pending *sy_pending_new(struct sy_pending_pool *pool, struct dir *d, uint64_t ts, int db);
void sy_pending_free(struct sy_pending_pool *pool, struct sy_pending *p);
/* Appends the keys argv[idx[i]] (those below argc). 0 or -ENOMEM. */
int sy_pending_keys(struct sy_pending *p, int argc, const char *const *argv, const size_t *lens,
		    const int *idx, int n);
/* "*argc\r\n$nl\r\nNAME\r\n" and the captured body into pool->raw; its length, 0 out of
 * memory. */
size_t sy_replay_raw(struct sy_pending_pool *pool, uint32_t argc, const char *name, size_t nl,
		     const uint8_t *body, size_t len);
void sy_pending_pool_free(struct sy_pending_pool *pool);

#endif
