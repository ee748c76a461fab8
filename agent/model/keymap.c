/* keymap.c — see keymap.h. */
#include "model/keymap.h"

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
