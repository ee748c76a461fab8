// SPDX-License-Identifier: Apache-2.0
/* compare.h — what "the same key on both sides" means for verify: one look per side (a
 * small Lua script returns the type, the PTTL and the whole value in one round trip),
 * reduced to a digest that does not depend on encoding or order where the type has
 * none (sets, hashes), and two looks classified like a database diff tool: missing,
 * extra, type, value or ttl (TTLs within SY_TTL_TOLERANCE_MS). Streams are compared
 * flattened (ids, fields, values). */
#ifndef SY_COMPARE_H
#define SY_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis/redis_conn.h"

#define SY_TTL_TOLERANCE_MS 1000

struct sy_look {
	char type[8]; /* "none" when absent */
	long long ttl;
	uint64_t digest;
	bool ok; /* false: no (usable) answer */
};

/* Sends the look of `key` on c; cb gets the reply for sy_look_of. The script is run
 * by EVALSHA, loaded once per connection (SCRIPT LOAD); a NOSCRIPT answer sends it
 * again by EVAL. */
int sy_look_send(struct sy_redis *c, const char *key, size_t len, sy_redis_reply_cb cb, void *priv);
/* The looks of n keys in one round trip (one script call): cb gets an array of n
 * replies, each one key's look, in order (or the error, or NULL). */
int sy_looks_send(struct sy_redis *c, size_t n, const char *const *keys, const size_t *lens,
		  sy_redis_reply_cb cb, void *priv);
/* The look in a reply (NULL or an unexpected reply: out->ok false). The reply's arrays
 * are sorted in place. */
void sy_look_of(redisReply *r, struct sy_look *out);
/* The SY_DRIFT_* of a key by its presence alone (legacy_none: absent on legacy), or -1
 * when it is on both sides and the rest of it is to be compared. */
int sy_drift_presence(bool legacy_none, bool target_none);
/* Whether two PTTLs (negative: no expiry) differ by more than SY_TTL_TOLERANCE_MS. */
bool sy_drift_ttl(long long legacy_ms, long long target_ms);
/* SY_DRIFT_* of a legacy look against a target look (both ok). */
int sy_look_classify(const struct sy_look *legacy, const struct sy_look *target);

#endif
