// SPDX-License-Identifier: Apache-2.0
/* transform_copy.h — the shadow components' side of a migration's transform
 * (transform/transform.h, docs/transforms.md): which script each migration runs, the
 * typed copy that replaces DUMP/RESTORE when it has one, the mirror's forward_write
 * fast path, and the audit's compare through forward_key.
 *
 * Contract: sy_xf_of returns a handle that stays valid while the agent runs; the
 * script behind it is swapped whole by sy_xf_reload_all (SIGHUP) only when the new
 * version compiles, between two events of the loop, so a call in flight always
 * finishes with the version it started with. Every failed call is counted per
 * migration (budget, memory, error) and logged at most once per burst (10 s) with
 * its key and line. Without a transform none of this is reached: a NULL handle. */
#ifndef SY_TRANSFORM_COPY_H
#define SY_TRANSFORM_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis/redis_conn.h"
#include "transform/transform.h"

struct sy_migration_spec;

struct sy_xf_stats {
	uint64_t calls;	 /* transform calls (keys and writes) */
	uint64_t failed; /* of which failed: the three below */
	uint64_t budget, memory, errors;
	uint64_t fallback; /* forward_write returned nil: keys copied through forward_key */
	uint64_t reloads;  /* scripts swapped by SIGHUP */
	char last_error[SY_TRANSFORM_ERR_MAX];
};

struct sy_xf;

/* The transform of a migration (by name), loaded on first use and again when its
 * script path changes; NULL when the spec has none. A script that no longer
 * compiles leaves a handle without a state: every call fails (counted). */
struct sy_xf *sy_xf_of(const struct sy_migration_spec *spec);
/* Re-reads every loaded script (SIGHUP); a version that does not compile is logged
 * and the old one kept. */
void sy_xf_reload_all(void);
void sy_xf_free_all(void);
/* Counters of a migration's transform; false when it has none loaded. */
bool sy_xf_stats(const char *name, struct sy_xf_stats *out);

/* forward_key / reverse_key (counted, logged per burst); 0 or a negative errno. */
int sy_xf_key(struct sy_xf *x, bool reverse, const struct sy_tkey *in, struct sy_tkeys *out);
/* forward_write / reverse_write: 0 with out, 1 = copy the keys instead (nil, or no
 * such function), a negative errno when the script failed (counted). */
int sy_xf_write(struct sy_xf *x, bool reverse, int argc, const char *const *argv, const size_t *lens,
		struct sy_targvs *out);
/* Whether the script (loaded and compiling) defines fn. */
bool sy_xf_has(const struct sy_xf *x, enum sy_tfn fn);
/* Counts a forward_write fallback. */
void sy_xf_fell_back(struct sy_xf *x);
/* The mirror's replay of one captured write through forward_write (reverse_write):
 * 0 when its commands were sent to c (*parts replies will reach cb; 0 parts: the
 * script asked for nothing), 1 when the touched keys must be copied through
 * forward_key instead (nil, no such function, or the script failed: counted), or a
 * negative errno when sending failed after *parts commands. */
int sy_xf_replay(struct sy_xf *x, bool reverse, int argc, const char *const *argv, const size_t *lens,
		 struct sy_redis *c, sy_redis_reply_cb cb, void *priv, uint32_t *parts);

/* A typed key from the reply of the look script (compare.c: [type, pttl, values]);
 * its bytes stay in the reply. false when the reply is not one. */
bool sy_tkey_of_reply(redisReply *r, struct sy_tkey *k, const char *key, size_t len, void **arena);
/* A digest of a typed key independent of order where its type has none (set, hash,
 * zset by member with its score as a number). */
uint64_t sy_tkey_digest(const struct sy_tkey *k);

/* Sends a write's commands to c (several: in MULTI … EXEC); *parts as above. */
int sy_targvs_send(struct sy_redis *c, const struct sy_targvs *a, sy_redis_reply_cb cb, void *priv,
		   uint32_t *parts);

#endif
