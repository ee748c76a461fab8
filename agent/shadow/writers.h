// SPDX-License-Identifier: Apache-2.0
/* writers.h — the mirror's table of recent writers, per migration: for each key
 * written lately (named as legacy names it), who wrote it last (side, client
 * connection), when, and until when it is "hot".
 *
 * Contract: a key written from both sides, or by two client connections, within
 * SY_CONFLICT_MS is a conflict: replays of different connections travel on different
 * destination connections and may land in another order, so the caller re-copies such
 * keys once they settle. A hot key (a recent conflict, a copy in progress) makes every
 * write to it a conflict until it cools down. The table is 4-way set-associative: an
 * entry is only reused for another key once it is the oldest of its set, so a hash
 * collision never hides a key written now. Lookups are lossy only under heavy churn.
 *
 * An entry is 16 bytes (a set of four is one cache line), so two things are hashed:
 * - the key: 45 bits of its fingerprint (14 pick the set, 31 are kept). Two keys that
 *   agree on them share an entry; that can only add conflicts (an extra copy) and make
 *   a key look written more recently, never hide a conflict: every change of writer
 *   within the window makes the entry hot.
 * - the writer: a 32-bit hash of the client connection's cookie with the side in it.
 *   One connection's two sides always differ; two connections of one key written
 *   within SY_CONFLICT_MS look like one writer with probability 2^-32, and only then
 *   is a conflict missed (the key is not re-copied: drift the audit finds).
 * Times are 32-bit ms after a base that moves up before they wrap (writers.c). */
#ifndef SY_WRITERS_H
#define SY_WRITERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sy_migration_spec;
struct sy_writer;

#define SY_CONFLICT_MS 1000 /* writes to one key from two writers this close: conflict */

/* Zeroed is empty; the table is allocated on first write. */
struct sy_writers {
	struct sy_writer *tab;
	uint64_t base_ms; /* entries' times are ms after this (sy_coarse_ms clock) */
};

void sy_writers_free(struct sy_writers *w);
/* Records a write of key k (named as `side` names it, mapped through spec) by client
 * connection `cookie` at now_ms; true when it is a conflict (see above). The table
 * keeps sy_coarse_ms's clock (a few ms behind sy_now_ms, 5 ns a read instead of 27,
 * one per mirrored write): every time given here must come from it, as a time from a
 * clock running ahead would make later coarse times look earlier. */
bool sy_writers_conflict_at(struct sy_writers *w, const struct sy_migration_spec *spec, int side,
			    uint64_t cookie, int db, const char *k, size_t len, uint64_t now_ms);
/* The two halves of sy_writers_conflict_at, for a caller with other work to do between
 * them: a lookup is one memory miss (the table is 1 MiB), which touch starts (a
 * prefetch of the key's set) and conflict_fp, given touch's fingerprint, pays for
 * only what is left of it. */
uint64_t sy_writers_touch(const struct sy_writers *w, const struct sy_migration_spec *spec, int side, int db,
			  const char *k, size_t len);
bool sy_writers_conflict_fp(struct sy_writers *w, int side, uint64_t cookie, uint64_t fp, uint64_t now_ms);
/* Makes a key hot for 2 * SY_CONFLICT_MS: a copy of it is under way, and a write landing
 * meanwhile could be overwritten by the older copy. Returns 1 when the key was written
 * within that time before (a replay may still land on top of the copy), 0 when not,
 * -ENOMEM. */
int sy_writers_mark_hot(struct sy_writers *w, const struct sy_migration_spec *spec, int side, int db,
			const char *k, size_t len);
int sy_writers_mark_hot_at(struct sy_writers *w, const struct sy_migration_spec *spec, int side, int db,
			   const char *k, size_t len, uint64_t now_ms);
/* When the key (legacy-side name) was last written (sy_coarse_ms, so never later than
 * sy_now_ms), 0 when unknown. */
uint64_t sy_writers_last_ms(const struct sy_writers *w, int db, const char *k, size_t len);

#endif
