// SPDX-License-Identifier: Apache-2.0
/* keymap.c — see keymap.h. */
#include "model/keymap.h"

#include <stdio.h>
#include <string.h>

size_t sy_key_map(const struct sy_migration_spec *s, int from, const char *k, size_t len, char *buf,
		  size_t cap, const char **out)
{
	*out = k;
	for (uint32_t i = 0; i < s->n_rewrite; i++) {
		const char *a = from == SY_SIDE_LEGACY ? s->rewrite[i].from : s->rewrite[i].to;
		const char *b = from == SY_SIDE_LEGACY ? s->rewrite[i].to : s->rewrite[i].from;
		size_t al = strlen(a), bl = strlen(b);

		if (len >= al && memcmp(k, a, al) == 0 && bl + len - al <= cap) {
			memcpy(buf, b, bl);
			memcpy(buf + bl, k + al, len - al);
			*out = buf;
			return bl + len - al;
		}
	}
	return len;
}

bool sy_key_in_scope(const struct sy_migration_spec *s, int from, const char *k, size_t len)
{
	char buf[SY_KEY_MAX + SY_PREFIX_MAX];
	size_t n = len;

	if (!s->n_scope)
		return true;
	if (from == SY_SIDE_TARGET && s->n_rewrite) {
		/* only the first bytes matter: a scope prefix is at most SY_PREFIX_MAX long */
		size_t head = len < SY_PREFIX_MAX * 2 ? len : SY_PREFIX_MAX * 2;

		n = sy_key_map(s, SY_SIDE_TARGET, k, head, buf, sizeof(buf), &k);
	}
	for (uint32_t i = 0; i < s->n_scope; i++) {
		size_t pl = strnlen(s->scope[i], SY_PREFIX_MAX);

		if (n >= pl && memcmp(k, s->scope[i], pl) == 0)
			return true;
	}
	return false;
}

const char *sy_scope_describe(uint32_t n_scope, uint64_t outside, bool outside_known, char *buf, size_t n)
{
	if (!n_scope)
		snprintf(buf, n, "every key");
	else if (!outside_known)
		snprintf(buf, n,
			 "%u prefix%s; keys on legacy outside the scope not counted yet (run an audit)",
			 n_scope, n_scope == 1 ? "" : "es");
	else
		snprintf(buf, n, "%u prefix%s; %llu keys on legacy outside the scope", n_scope,
			 n_scope == 1 ? "" : "es", (unsigned long long)outside);
	return buf;
}
