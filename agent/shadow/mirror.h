// SPDX-License-Identifier: Apache-2.0
/* mirror.h — shadow writes: every write command the kernel captured on one side of a
 * migration is replayed on the other side, so both sides hold every write while
 * clients are split, and a rollback loses nothing.
 *
 * Order: commands of one client connection are replayed in order on one destination
 * connection (chosen by the source socket), following its SELECT and replaying its
 * MULTI … EXEC as one unit. Anything that cannot be replayed exactly — a truncated or
 * lost capture, a non-deterministic command, a failed or unanswered replay, a drop
 * under overload — sends its keys to repair: the value is copied from the side where
 * the write happened (DUMP + PTTL → RESTORE … REPLACE, or DEL), which is always safe
 * to retry. Keys written on both sides within a window are re-copied from the
 * authoritative side (legacy), so concurrent writers converge. See docs/mirror.md.
 *
 * Nothing here is on the client's path: the kernel captured the bytes after they were
 * sent; overload drops (counted) and marks keys dirty; an overflowing dirty set flags
 * the migration needs-audit. */
#ifndef SY_MIRROR_H
#define SY_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/capture.h"
#include "switchyard/abi.h"

struct sy_loop;
struct sy_registry;
struct sy_mirror;

enum sy_mirror_dir {
	SY_DIR_FORWARD = 0, /* writes made on legacy, replayed on target */
	SY_DIR_REVERSE = 1, /* writes made on target, replayed on legacy */
};

struct sy_mirror_stats {
	uint64_t mirrored;	/* replayed and acknowledged */
	uint64_t failed;	/* replays answered with an error, or unanswered (repaired) */
	uint64_t repaired;	/* keys copied by repair */
	uint64_t repair_failed; /* repair attempts that failed (retried) */
	uint64_t dropped;	/* commands not replayed for overload (their keys repaired) */
	uint64_t conflicts;	/* keys written on both sides within the window */
	uint64_t out_of_scope;	/* writes not mirrored: their key is outside `scope:` */
	uint64_t queued;	/* commands in flight now */
	uint64_t dirty;		/* keys waiting for repair now */
	bool needs_audit;	/* something may be missed that repair cannot know about */
	char audit_reason[96];
	uint64_t repaired_bytes;      /* DUMP payloads copied by repair */
	uint64_t lag[SY_LAT_BUCKETS]; /* capture → acknowledged, log2 microseconds */
};

/* Dirty keys kept per migration and direction before needs-audit. */
#define SY_MIRROR_DIRTY_MAX 100000

/* Subscribes to reg and follows its commits (a slot's migration, its spec, its
 * deletion); free it before the registry. */
struct sy_mirror *sy_mirror_new(struct sy_loop *l, struct sy_registry *reg);
void sy_mirror_free(struct sy_mirror *m);
/* The capture callback (capture.h): complete captured commands in, replays out. */
void sy_mirror_on_captured(const struct sy_captured *c, void *arg);
void sy_mirror_stats(const struct sy_mirror *m, uint32_t mig_id, int dir, struct sy_mirror_stats *out);
/* Marks a migration needs-audit (events lost in the kernel, an unclean restart). */
void sy_mirror_flag_audit(struct sy_mirror *m, uint32_t mig_id, const char *why);
/* Told once each time a direction of a migration becomes needs-audit, with why (the
 * daemon makes it a `mirror.needs_audit` event). fn NULL: nobody. */
typedef void (*sy_mirror_audit_fn)(void *arg, const char *migration, const char *direction, const char *why);
void sy_mirror_on_audit_flag(struct sy_mirror *m, sy_mirror_audit_fn fn, void *arg);
/* Sends a key to repair: copied from the source side of `dir` to the other (named as
 * the source side names it). The one repair path, shared with the audit. */
int sy_mirror_repair_key(struct sy_mirror *m, uint32_t mig_id, int dir, int db, const char *key, size_t len);
/* A key (legacy-side name) is about to be copied by someone else (the backfill): any
 * write to it captured from now on, for a while, makes the mirror copy it again once
 * it settles, so the copy can never be the last word over a newer write. */
void sy_mirror_note_copy(struct sy_mirror *m, uint32_t mig_id, int db, const char *key, size_t len);
/* Whether a key (legacy-side name) is still settling: written through the mirror within
 * `window_ms`, or waiting for (or in) repair. The audit and dual reads do not call a
 * difference on such a key drift. */
bool sy_mirror_key_busy(struct sy_mirror *m, uint32_t mig_id, int db, const char *key, size_t len,
			uint64_t window_ms);
/* Commands in flight plus dirty keys, every migration: 0 when the mirror is idle. */
uint64_t sy_mirror_backlog(const struct sy_mirror *m);

#endif
