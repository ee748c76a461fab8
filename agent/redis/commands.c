// SPDX-License-Identifier: Apache-2.0
/* commands.c — see commands.h. The table is generated from commands.def by the
 * preprocessor; a copy sorted by name is made once, so lookups are a binary search. */
#include "redis/commands.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/decimal.h"

/* Checked when this file compiles: every name fits the kernel's map key, and no name
 * is listed twice (a second enumerator of the same name does not compile). */
#define SY_CMD(NAME, CLASS, FIRST, LAST, STEP, FLAGS)                                                        \
	_Static_assert(sizeof(#NAME) - 1 <= SY_CMD_NAME_MAX, #NAME " is longer than SY_CMD_NAME_MAX");
#include "switchyard/commands.def"
#undef SY_CMD

/* A command that may carry a credential is "other" and has no key: nothing in the
 * kernel then captures its bytes or reads one of its arguments. */
#define SY_CAPTURED_FLAGS (SY_CMDF_SELECT | SY_CMDF_TXN_MULTI | SY_CMDF_TXN_EXEC | SY_CMDF_TXN_DISCARD)
#define R		  0
#define W		  0
#define O		  1
#define SY_CMD(NAME, CLASS, FIRST, LAST, STEP, FLAGS)                                                        \
	_Static_assert(!((FLAGS)&SY_CMDF_SECRET) ||                                                          \
			       ((CLASS) && (FIRST) == 0 && !((FLAGS)&SY_CAPTURED_FLAGS)),                    \
		       #NAME " is SECRET: it must be class O, with no key and nothing captured");
#include "switchyard/commands.def"
#undef SY_CMD
#undef R
#undef W
#undef O

enum {
#define SY_CMD(NAME, CLASS, FIRST, LAST, STEP, FLAGS) SY_CMD_ONCE_##NAME,
#include "switchyard/commands.def"
#undef SY_CMD
	N_COMMANDS
};

#define R SY_CLASS_READ
#define W SY_CLASS_WRITE
#define O SY_CLASS_OTHER
static const struct sy_command table[N_COMMANDS] = {
#define SY_CMD(NAME, CLASS, FIRST, LAST, STEP, FLAGS) {#NAME, CLASS, FIRST, LAST, STEP, FLAGS},
#include "switchyard/commands.def"
#undef SY_CMD
};
#undef R
#undef W
#undef O

static struct sy_command sorted[N_COMMANDS];
static pthread_once_t sorted_once = PTHREAD_ONCE_INIT;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct sy_command *)a)->name, ((const struct sy_command *)b)->name);
}

static void sort_table(void)
{
	memcpy(sorted, table, sizeof(table));
	qsort(sorted, N_COMMANDS, sizeof(sorted[0]), by_name);
}

const struct sy_command *sy_command_find(const char *name, size_t len)
{
	char up[SY_CMD_NAME_MAX + 1];
	size_t lo = 0, hi = N_COMMANDS;

	if (len == 0 || len > SY_CMD_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '\0')
			return NULL;
		up[i] = (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 32) : name[i];
	}
	up[len] = '\0';
	pthread_once(&sorted_once, sort_table);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(up, sorted[mid].name);

		if (c == 0)
			return &sorted[mid];
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
	pthread_once(&sorted_once, sort_table);
	return i < N_COMMANDS ? &sorted[i] : NULL;
}

int sy_command_kernel_info(const struct sy_command *c, struct sy_cmd_info *out)
{
	int first;

	memset(out, 0, sizeof(*out));
	if (c->flags & SY_CMDF_STREAMS)
		first = 0; /* the keys' place depends on the arguments: none for the kernel */
	else if (c->flags & SY_CMDF_DEST1)
		first = 1;
	else if (c->flags & SY_CMDF_NUMKEYS)
		first = c->first + 1;
	else
		first = c->first;
	if (first < 0 || first > UINT8_MAX)
		return -EINVAL;
	out->class = (uint8_t)c->class;
	out->first_key = (uint8_t)first;
	out->flags = c->flags;
	if (c->flags & SY_CMDF_SECRET) {
		/* the table says so already (checked above); the kernel's view says it again */
		out->class = SY_CLASS_OTHER;
		out->first_key = 0;
		out->flags &= ~SY_CAPTURED_FLAGS;
	}
	return 0;
}

static int push(int *idx, int n, int max, int i)
{
	if (n >= max)
		return -E2BIG;
	idx[n] = i;
	return n + 1;
}

/* A non-negative decimal argument (numkeys). */
static int small_uint(const char *s, size_t len, int *out)
{
	int64_t v = sy_decimal(s, len, 9);

	if (v < 0)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int word_is(const char *s, size_t len, const char *w)
{
	return len == strlen(w) && strncasecmp(s, w, len) == 0;
}

/* XREAD / XREADGROUP: the options before STREAMS are skipped with their values (a
 * group or consumer may be called "streams"), then the keys are the first half of
 * what follows, the ids the second. */
static int stream_keys(int argc, const char *const *argv, const size_t *lens, int *idx, int max)
{
	int i = 1, n = 0;

	while (i < argc) {
		if (word_is(argv[i], lens[i], "STREAMS"))
			break;
		if (word_is(argv[i], lens[i], "GROUP"))
			i += 3;
		else if (word_is(argv[i], lens[i], "COUNT") || word_is(argv[i], lens[i], "BLOCK"))
			i += 2;
		else
			i++; /* NOACK, or an option newer than this table */
	}
	if (i >= argc)
		return -EINVAL;
	int rest = argc - i - 1;

	if (rest <= 0 || rest % 2)
		return -EINVAL;
	for (int k = 0; k < rest / 2 && n >= 0; k++)
		n = push(idx, n, max, i + 1 + k);
	return n;
}

/* EVAL, ZUNIONSTORE…: argv[first] is numkeys, the keys follow (after argv[1], the
 * destination, with DEST1). */
static int numkeys_keys(const struct sy_command *c, int argc, const char *const *argv, const size_t *lens,
			int *idx, int max)
{
	int n = 0, nk;

	if (c->first < 1 || c->first >= argc || small_uint(argv[c->first], lens[c->first], &nk) ||
	    nk > argc - c->first - 1)
		return -EINVAL;
	if ((c->flags & SY_CMDF_DEST1) && c->first > 1)
		n = push(idx, n, max, 1);
	for (int k = 0; k < nk && n >= 0; k++)
		n = push(idx, n, max, c->first + 1 + k);
	return n;
}

int sy_command_keys(const struct sy_command *c, int argc, const char *const *argv, const size_t *lens,
		    int *idx, int max)
{
	int n = 0, last, step = c->step > 0 ? c->step : 1;

	if (argc < 1 || !argv || !lens)
		return -EINVAL;
	if (c->flags & SY_CMDF_STREAMS)
		return stream_keys(argc, argv, lens, idx, max);
	if (c->flags & SY_CMDF_NUMKEYS)
		return numkeys_keys(c, argc, argv, lens, idx, max);
	if (c->first == 0)
		return 0;
	if (c->first >= argc)
		return -EINVAL;
	last = c->last < 0 ? argc + c->last : c->last;
	/* step 2 (MSET k v …): whole key-value groups only */
	if (last < c->first || last >= argc || (last - c->first + 1) % step)
		return -EINVAL;
	for (int i = c->first; i <= last && n >= 0; i += step)
		n = push(idx, n, max, i);
	return n;
}
