/* keymap.h — owns how a key is named on the other side: the migration's rewrite rules
 * (`rewrite: {"user:": "u2:"}`) applied to one key. On the mirror's and the verifier's
 * hot path (shadow/mirror.c, shadow/verify.c): no allocation, no validation (the
 * validator already refused overlapping rules). */
#ifndef SY_KEYMAP_H
#define SY_KEYMAP_H

#include <stddef.h>

#include "model/spec.h"

/* Key `k` of side `from` (enum sy_side) as the other side names it, by the rewrite
 * rules: the new name in buf (*out = buf), or k itself when no rule applies (*out = k).
 * Returns the length of *out. */
size_t sy_key_map(const struct sy_migration_spec *s, int from, const char *k, size_t len, char *buf,
		  size_t cap, const char **out);

#endif
