// SPDX-License-Identifier: Apache-2.0
/* keymap.h — owns how a key is named on the other side: the migration's rewrite rules
 * (`rewrite: {"user:": "u2:"}`) applied to one key; and whether a key is in the
 * migration's scope (`scope:`). On the mirror's and the verifier's
 * hot path (shadow/mirror.c, shadow/verify.c): no allocation, no validation (the
 * validator already refused overlapping rules). */
#ifndef SY_KEYMAP_H
#define SY_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/spec.h"

/* Key `k` of side `from` (enum sy_side) as the other side names it, by the rewrite
 * rules: the new name in buf (*out = buf), or k itself when no rule applies (*out = k).
 * Returns the length of *out. */
size_t sy_key_map(const struct sy_migration_spec *s, int from, const char *k, size_t len, char *buf,
		  size_t cap, const char **out);

/* Whether key `k` of side `from` is in the migration's scope (spec.h: `scope:`, legacy's
 * names; a target key is named back first). True when the spec has no scope. */
bool sy_key_in_scope(const struct sy_migration_spec *s, int from, const char *k, size_t len);

/* The one way a scope is shown (syctl get/status, the plan's verify step): "every key",
 * or "2 prefixes; 1001 keys on legacy outside the scope" (outside_known false: "… not
 * counted yet: run an audit"). Returns buf. */
const char *sy_scope_describe(uint32_t n_scope, uint64_t outside, bool outside_known, char *buf, size_t n);

#endif
