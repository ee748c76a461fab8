// SPDX-License-Identifier: Apache-2.0
/* transform_audit.h — verify's side of transforms and document versions
 * (docs/transforms.md):
 *
 * - the compare through a transform: legacy's key read typed (one round trip), run
 *   through forward_key, and each resulting key compared with what target holds
 *   (type, value independent of order, TTL within SY_TTL_TOLERANCE_MS), the worst
 *   difference being the key's verdict; a key the script fails on is counted by the
 *   transform (transform_copy.h), never called drift;
 * - the target scan's search for extra keys, when the script has reverse_key: a target
 *   key is extra when no legacy key that reverse_key names for it exists and maps
 *   forward (forward_key) to it; its repair goes through the absent legacy key whose
 *   forward_key of "none" deletes it, or else deletes it on target;
 * - the version histogram: target keys per value of `version_field:` (a hash field or
 *   a JSON string's attribute), at most SY_VERSIONS_MAX distinct values, the rest in
 *   `other`, keys without one in `none`. */
#ifndef SY_TRANSFORM_AUDIT_H
#define SY_TRANSFORM_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "redis/redis_conn.h"
#include "shadow/compare.h"

struct sy_xf;

#define SY_VERSIONS_MAX 16

struct sy_versions {
	struct {
		char version[32];
		uint64_t keys;
	} v[SY_VERSIONS_MAX];
	size_t n;
	uint64_t none, other;
};

/* Counts the document in a look reply (compare.c's [type, pttl, values]). */
void sy_versions_add(struct sy_versions *h, redisReply *look, const char *field);

/* cb gets the verdict as two looks for sy_look_classify (both ok), or ok false when a
 * side did not answer. */
typedef void (*sy_tcmp_cb)(void *priv, const struct sy_look *legacy, const struct sy_look *target);

/* Compares legacy's `key` through the transform with target. 0, or a negative errno
 * when nothing was sent (cb is not called then). */
int sy_tcmp_send(struct sy_xf *xf, struct sy_redis *legacy, struct sy_redis *target, const char *key,
		 size_t len, sy_tcmp_cb cb, void *priv);

/* Whether target's `key` is extra (above). cb gets looks for sy_look_classify (extra or
 * none; not ok when a side did not answer) and, for an extra, the legacy key whose
 * repair removes it (NULL: delete it on target). A script failure is counted by the
 * transform and is not an extra. The target look is counted in `versions` by
 * `version_field` unless that is NULL. 0, or a negative errno (cb not called). */
typedef void (*sy_textra_cb)(void *priv, const struct sy_look *legacy, const struct sy_look *target,
			     const char *via, size_t via_len);
int sy_textra_send(struct sy_xf *xf, struct sy_redis *legacy, struct sy_redis *target, const char *key,
		   size_t len, const char *version_field, struct sy_versions *versions, sy_textra_cb cb,
		   void *priv);

#endif
