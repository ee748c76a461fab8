// SPDX-License-Identifier: Apache-2.0
/* resp_argv.c — see resp_argv.h. */
#include "redis/resp_argv.h"

#include <errno.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "model/keymap.h"

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

/* argv with every key renamed for the other side; `store` holds the new names. */
int sy_argv_rewrite(const struct sy_migration_spec *spec, int from_side, const struct sy_argv *a,
		    const int *keys, int nkeys, const char ***argv_out, size_t **lens_out, char **store)
{
	size_t total = 0, off = 0;
	const char **argv = malloc((size_t)a->argc * sizeof(*argv));
	size_t *lens = malloc((size_t)a->argc * sizeof(*lens));

	for (int i = 0; i < nkeys; i++)
		total += a->lens[keys[i]] + SY_PREFIX_MAX;
	*store = malloc(total + 1);
	if (!argv || !lens || !*store) {
		free(argv);
		free(lens);
		free(*store);
		*store = NULL;
		return -ENOMEM;
	}
	memcpy(argv, a->argv, (size_t)a->argc * sizeof(*argv));
	memcpy(lens, a->lens, (size_t)a->argc * sizeof(*lens));
	for (int i = 0; i < nkeys; i++) {
		size_t cap = a->lens[keys[i]] + SY_PREFIX_MAX;

		lens[keys[i]] = sy_key_map(spec, from_side, a->argv[keys[i]], a->lens[keys[i]], *store + off,
					   cap, &argv[keys[i]]);
		off += cap;
	}
	*argv_out = argv;
	*lens_out = lens;
	return 0;
}

/* See resp_argv.h. */
bool sy_argv_relative_ttl(const struct sy_argv *a)
{
	static const char *const always[] = {"EXPIRE", "PEXPIRE", "SETEX", "PSETEX"};
	const char *n = a->argv[0];

	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		if (a->lens[0] == strlen(always[i]) && strncasecmp(n, always[i], a->lens[0]) == 0)
			return true;
	if ((a->lens[0] == 3 && strncasecmp(n, "SET", 3) == 0) ||
	    (a->lens[0] == 5 && strncasecmp(n, "GETEX", 5) == 0))
		for (int i = 2; i < a->argc; i++)
			if (a->lens[i] == 2 &&
			    (strncasecmp(a->argv[i], "EX", 2) == 0 || strncasecmp(a->argv[i], "PX", 2) == 0))
				return true;
	return false;
}
