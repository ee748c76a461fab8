// SPDX-License-Identifier: Apache-2.0
/* fuzz_resp.c — the RESP request machine (resp.h, as the kernel drives it through
 * resp_scan.c) against two oracles:
 *   1. itself: the same input fed whole, byte by byte and in chunks whose sizes come
 *      from the input, with and without the header fast paths, gives the same
 *      commands (names, keys, byte lengths) and the same error count; and so does
 *      the names-only mode (whole commands in one fast step) against its own byte
 *      path and against the full mode's names and lengths; where each command and
 *      its arguments after the name start (what the agent splits batch records by)
 *      is the same in every chunking, and without the command table;
 *   2. hiredis's reader (an independent, well-kept RESP parser): for the leading run
 *      of replies hiredis reads as arrays of bulk strings, the machine reports the
 *      same commands, argument counts, names and first keys, in order, and no
 *      more commands when that run is the whole input.
 * Any difference aborts. */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis/commands.h"
#include "redis/resp_scan.h"

#define MAX_CMDS 512

struct cmd {
	char name[SY_CMD_NAME_MAX + 1];
	size_t name_len;
	uint32_t argc;
	int is_inline;
	int has_key, key_trunc;
	uint8_t key[SY_KEY_MAX];
	size_t key_len;
	uint64_t bytes;
	uint64_t start, args_at; /* args_at: 0 with names_only (not kept) */
};

struct list {
	int n;
	struct cmd c[MAX_CMDS];
};

static int names_only; /* as the kernel for a keyless, capture-free migration */
static int no_table;   /* as the agent splitting a batch record: positions only */

static void add(const struct sy_resp_cmd *c, void *arg)
{
	struct list *l = arg;
	struct cmd *o;

	if (l->n >= MAX_CMDS)
		return;
	o = &l->c[l->n++];
	memset(o, 0, sizeof(*o));
	memcpy(o->name, c->name, c->name_len < SY_CMD_NAME_MAX ? c->name_len : SY_CMD_NAME_MAX);
	o->name_len = c->name_len;
	o->argc = c->argc;
	o->is_inline = c->is_inline;
	o->has_key = c->has_key;
	o->key_trunc = c->key_truncated;
	o->key_len = c->key_len;
	memcpy(o->key, c->key, c->key_len);
	o->bytes = c->bytes;
	o->start = c->start;
	o->args_at = names_only ? 0 : c->args_at;
	if (o->args_at && (o->args_at <= o->start || o->args_at > o->start + o->bytes))
		abort();
}

/* Feeds d[0..n): in chunks of `chunk` bytes, or (chunk 0) in chunks whose sizes come
 * from the input's first bytes, so the fuzzer also explores segment boundaries. */
static void run(const uint8_t *d, size_t n, size_t chunk, int fast, struct list *l, uint64_t *unparsed)
{
	struct sy_resp_scan s;
	size_t m = n < 8 ? n : 8, k = 0;

	l->n = 0;
	sy_resp_scan_init(&s, fast, add, l);
	s.names_only = names_only;
	s.no_table = no_table;
	for (size_t i = 0, c; i < n; i += c, k++) {
		c = chunk ? chunk : 1 + (size_t)(d[k % m] * 31u + k) % 67;
		if (c > n - i)
			c = n - i;
		sy_resp_scan_feed(&s, d + i, c);
	}
	*unparsed = s.unparsed;
}

static void same(const struct list *a, const struct list *b)
{
	if (a->n != b->n)
		abort();
	for (int i = 0; i < a->n; i++)
		if (memcmp(&a->c[i], &b->c[i], sizeof(a->c[i])) != 0)
			abort();
}

static void upper(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? (char)(src[i] - 32) : src[i];
}

/* hiredis allocates an array's slots when it reads the count: refuse counts no input
 * of this size can complete (hiredis then reports an error and comparing stops), so
 * "*1000000000" is not an out-of-memory in the oracle. */
#if HIREDIS_MAJOR >= 1
typedef size_t elements_t;
#else
typedef int elements_t;
#endif
static void *(*default_array)(const redisReadTask *, elements_t);
static size_t array_cap;

static void *capped_array(const redisReadTask *t, elements_t elements)
{
	if ((long long)elements < 0 || (size_t)elements > array_cap)
		return NULL;
	return default_array(t, elements);
}

/* One reply of hiredis against our k-th command; 0 when it is no request (stop). */
static int compare(const redisReply *r, const struct cmd *c)
{
	char want[SY_CMD_NAME_MAX + 1] = {0};
	const struct sy_command *sc;
	struct sy_cmd_info ki;
	size_t nl = r->element[0]->len, kept = nl < SY_CMD_NAME_MAX ? nl : SY_CMD_NAME_MAX, len = kept;

	if (c->is_inline || c->argc != r->elements)
		return -1;
	upper(want, r->element[0]->str, kept);
	if (c->name_len != kept || memcmp(want, c->name, kept) != 0)
		return -1;
	/* the table entry as the kernel finds it: its map key is the zero-padded name
	 * (trailing NULs are padding; an inner NUL or a longer name is no entry) */
	while (len && want[len - 1] == '\0')
		len--;
	sc = nl <= SY_CMD_NAME_MAX ? sy_command_find(want, len) : NULL;
	if (sc && sy_command_kernel_info(sc, &ki) == 0 && ki.first_key && ki.first_key < r->elements) {
		const redisReply *key = r->element[ki.first_key];
		size_t kl = key->len < SY_KEY_MAX ? key->len : SY_KEY_MAX;

		if (!c->has_key || c->key_len != kl || c->key_trunc != (key->len > SY_KEY_MAX) ||
		    memcmp(c->key, key->str, kl) != 0)
			return -1;
	} else if (c->has_key) {
		return -1;
	}
	return 0;
}

static void against_hiredis(const uint8_t *d, size_t n, const struct list *ours)
{
	static redisReplyObjectFunctions fns;
	redisReader *rd = redisReaderCreate();
	void *reply = NULL;
	int k = 0, more = 1;

	if (!rd)
		return;
	fns = *rd->fn;
	default_array = fns.createArray;
	fns.createArray = capped_array;
	rd->fn = &fns;
	array_cap = n;
	redisReaderFeed(rd, (const char *)d, n);
	while (more) {
		redisReply *r;
		int ok;

		if (redisReaderGetReply(rd, &reply) != REDIS_OK)
			break; /* hiredis rejects the rest: stop comparing */
		if (!reply) {
			/* hiredis read the whole input as requests, ending on a reply's
			 * boundary: we must not have found more commands in it */
			if (rd->ridx == -1 && rd->pos == rd->len && k != ours->n)
				abort();
			break;
		}
		r = reply;
		ok = r->type == REDIS_REPLY_ARRAY;
		for (size_t i = 0; ok && i < r->elements; i++)
			ok = r->element[i]->type == REDIS_REPLY_STRING;
		if (!ok) {
			more = 0;	  /* not a request the server would read: stop comparing */
		} else if (r->elements) { /* "*0" is nothing, for Redis and for us */
			if (k >= ours->n || compare(r, &ours->c[k++]) != 0)
				abort();
		}
		freeReplyObject(reply);
	}
	redisReaderFree(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct list whole, other;
	uint64_t u1, u2;

	if (size > 1 << 16)
		return 0;
	run(data, size, size ? size : 1, 1, &whole, &u1);
	run(data, size, 1, 0, &other, &u2);
	same(&whole, &other);
	if (u1 != u2)
		abort();
	for (int fast = 0; fast < 2; fast++) {
		run(data, size, 0, fast, &other, &u2);
		same(&whole, &other);
		if (u1 != u2)
			abort();
	}
	against_hiredis(data, size, &whole);
	/* without the command table (no keys read): the same commands at the same places */
	no_table = 1;
	run(data, size, 0, 1, &other, &u2);
	no_table = 0;
	if (other.n != whole.n || u1 != u2)
		abort();
	for (int i = 0; i < whole.n; i++)
		if (other.c[i].bytes != whole.c[i].bytes || other.c[i].start != whole.c[i].start ||
		    other.c[i].args_at != whole.c[i].args_at || other.c[i].argc != whole.c[i].argc ||
		    memcmp(other.c[i].name, whole.c[i].name, sizeof(whole.c[i].name)) != 0)
			abort();
	/* names only (whole short commands in one fast step): the same commands, of
	 * the same lengths, whatever the chunking, as the byte path finds them */
	names_only = 1;
	run(data, size, 1, 0, &other, &u2);
	if (other.n != whole.n || u1 != u2)
		abort();
	for (int i = 0; i < whole.n; i++)
		if (other.c[i].bytes != whole.c[i].bytes || other.c[i].argc != whole.c[i].argc ||
		    memcmp(other.c[i].name, whole.c[i].name, sizeof(whole.c[i].name)) != 0)
			abort();
	run(data, size, size ? size : 1, 1, &whole, &u1);
	same(&whole, &other);
	run(data, size, 0, 1, &whole, &u1);
	same(&whole, &other);
	names_only = 0;
	return 0;
}
