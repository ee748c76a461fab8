// SPDX-License-Identifier: Apache-2.0
/* resp_argv.c — see resp_argv.h. */
#include "redis/resp_argv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sy_argv_free(struct sy_argv *a)
{
	if (a->argv && a->argv != a->argv_s) {
		free(a->argv);
		free(a->lens);
	}
	a->argv = NULL;
	a->lens = NULL;
	a->argc = 0;
}

static int push(struct sy_argv *a, size_t *cap, const char *p, size_t n)
{
	if ((size_t)a->argc == *cap) {
		size_t nc = *cap * 2;
		const char **v = malloc(nc * sizeof(*v));
		size_t *l = malloc(nc * sizeof(*l));

		if (!v || !l || nc > SY_ARGV_MAX) {
			free(v);
			free(l);
			return -ENOMEM;
		}
		memcpy(v, a->argv, (size_t)a->argc * sizeof(*v));
		memcpy(l, a->lens, (size_t)a->argc * sizeof(*l));
		sy_argv_free(a);
		a->argv = v;
		a->lens = l;
		a->argc = (int)(*cap);
		*cap = nc;
	}
	a->argv[a->argc] = p;
	a->lens[a->argc++] = n;
	return 0;
}

int sy_argv_parse(struct sy_argv *a, const char *name, size_t name_len, const uint8_t *body, size_t len,
		  uint32_t argc, bool is_inline)
{
	size_t cap = SY_ARGV_INLINE, pos = 0;
	const char *b = (const char *)body;

	memset(a, 0, sizeof(*a) - sizeof(a->argv_s) - sizeof(a->lens_s));
	a->argv = a->argv_s;
	a->lens = a->lens_s;
	if (push(a, &cap, name, name_len))
		return -ENOMEM;
	if (is_inline) {
		size_t i = 0;

		while (i < len && b[i] != '\r' && b[i] != '\n') {
			size_t st;

			while (i < len && (b[i] == ' ' || b[i] == '\t'))
				i++;
			if (i >= len || b[i] == '\r' || b[i] == '\n')
				break;
			st = i;
			while (i < len && b[i] != ' ' && b[i] != '\t' && b[i] != '\r' && b[i] != '\n')
				i++;
			if (push(a, &cap, b + st, i - st))
				return -ENOMEM;
		}
		return 0;
	}
	if (argc > SY_ARGV_MAX)
		return -EINVAL;
	while ((uint32_t)a->argc < argc) {
		size_t n = 0, digits = 0;

		if (pos >= len || b[pos] != '$')
			return -EINVAL;
		pos++;
		while (pos < len && b[pos] >= '0' && b[pos] <= '9' && digits < 10) {
			n = n * 10 + (size_t)(b[pos++] - '0');
			digits++;
		}
		if (!digits || pos + 2 > len || b[pos] != '\r' || b[pos + 1] != '\n')
			return -EINVAL;
		pos += 2;
		if (n > len - pos || len - pos - n < 2)
			return -EINVAL;
		if (push(a, &cap, b + pos, n))
			return -ENOMEM;
		pos += n + 2;
	}
	return 0;
}

int sy_argv_parse_prefix(struct sy_argv *a, const char *name, size_t name_len, const uint8_t *body,
			 size_t len, uint32_t argc, bool is_inline)
{
	/* parse what is complete: stop at the first argument that runs past the end */
	int e = sy_argv_parse(a, name, name_len, body, len, argc, is_inline);

	if (e != -EINVAL)
		return e;
	if (a->argc > 1)
		return 0;
	sy_argv_free(a);
	return -EINVAL;
}
