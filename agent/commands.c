/* commands.c — see commands.h. The table is generated from commands.def by the
 * preprocessor and sorted once at first use, so lookups are a binary search. */
#include "commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define R SY_CLASS_READ
#define W SY_CLASS_WRITE
#define O SY_CLASS_OTHER
static struct sy_command table[] = {
#define SY_CMD(NAME, CLASS, FIRST, LAST, STEP, FLAGS) {#NAME, CLASS, FIRST, LAST, STEP, FLAGS},
#include "switchyard/commands.def"
#undef SY_CMD
};
#undef R
#undef W
#undef O

#define N_COMMANDS (sizeof(table) / sizeof(table[0]))

static int sorted;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct sy_command *)a)->name, ((const struct sy_command *)b)->name);
}

static void sort_once(void)
{
	if (!sorted) {
		qsort(table, N_COMMANDS, sizeof(table[0]), by_name);
		sorted = 1;
	}
}

const struct sy_command *sy_command_find(const char *name, size_t len)
{
	char up[SY_CMD_NAME_MAX + 1];
	size_t lo = 0, hi;

	if (len == 0 || len > SY_CMD_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '\0')
			return NULL;
		up[i] = (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 32) : name[i];
	}
	up[len] = '\0';
	sort_once();
	hi = N_COMMANDS;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(up, table[mid].name);

		if (c == 0)
			return &table[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t sy_command_count(void)
{
	return N_COMMANDS;
}

const struct sy_command *sy_command_at(size_t i)
{
	sort_once();
	return i < N_COMMANDS ? &table[i] : NULL;
}

int sy_command_kernel_info(const struct sy_command *c, struct sy_cmd_info *out)
{
	memset(out, 0, sizeof(*out));
	out->class = c->class;
	out->flags = c->flags;
	if (c->flags & SY_CMDF_STREAMS)
		out->first_key = 0;
	else if (c->flags & SY_CMDF_DEST1)
		out->first_key = 1;
	else if (c->flags & SY_CMDF_NUMKEYS)
		out->first_key = (uint8_t)(c->first + 1);
	else
		out->first_key = (uint8_t)c->first;
	return 0;
}

static int push(int *idx, int n, int max, int i)
{
	if (n >= max)
		return -E2BIG;
	idx[n] = i;
	return n + 1;
}

/* Parses a non-negative decimal argument. */
static int small_uint(const char *s, size_t len, long *out)
{
	long v = 0;

	if (len == 0 || len > 9)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int sy_command_keys(const struct sy_command *c, int argc, const char *const *argv, const size_t *lens, int *idx,
		    int max)
{
	int n = 0;

	if (argc < 1)
		return -EINVAL;
	if (c->flags & SY_CMDF_STREAMS) {
		for (int i = 1; i < argc; i++) {
			if (lens[i] == 7 && strncasecmp(argv[i], "STREAMS", 7) == 0) {
				int rest = argc - i - 1;

				if (rest <= 0 || rest % 2)
					return -EINVAL;
				for (int k = 0; k < rest / 2; k++)
					if ((n = push(idx, n, max, i + 1 + k)) < 0)
						return n;
				return n;
			}
		}
		return -EINVAL;
	}
	if (c->flags & SY_CMDF_NUMKEYS) {
		long nk;

		if (c->flags & SY_CMDF_DEST1) {
			if (argc < 2)
				return -EINVAL;
			n = push(idx, n, max, 1);
		}
		if (c->first >= argc || small_uint(argv[c->first], lens[c->first], &nk) ||
		    nk > argc - c->first - 1)
			return -EINVAL;
		for (long k = 0; k < nk; k++)
			if ((n = push(idx, n, max, c->first + 1 + (int)k)) < 0)
				return n;
		return n;
	}
	if (c->first == 0)
		return 0;
	if (c->first >= argc)
		return -EINVAL;
	{
		int last = c->last < 0 ? argc + c->last : c->last;

		if (last < c->first || last >= argc)
			return -EINVAL;
		for (int i = c->first; i <= last; i += c->step > 0 ? c->step : 1)
			if ((n = push(idx, n, max, i)) < 0)
				return n;
	}
	return n;
}
