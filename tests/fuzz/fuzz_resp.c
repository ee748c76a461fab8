/* fuzz_resp.c — the RESP request machine (resp.h, as the kernel drives it through
 * resp_scan.c) against two oracles:
 *   1. itself: the same input fed whole, byte by byte and in chunks derived from the
 *      input, with and without the header fast paths, gives the same commands;
 *   2. hiredis's reader (an independent, well-kept RESP parser): for the leading run
 *      of replies hiredis reads as arrays of bulk strings, the machine reports the
 *      same commands, argument counts, names and first keys, in order.
 * Any difference aborts. */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "resp_scan.h"

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
};

struct list {
	int n;
	struct cmd c[MAX_CMDS];
};

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
}

static void run(const uint8_t *d, size_t n, size_t chunk, int fast, struct list *l, uint64_t *unparsed)
{
	struct sy_resp_scan s;

	l->n = 0;
	sy_resp_scan_init(&s, fast, add, l);
	for (size_t i = 0; i < n; i += chunk)
		sy_resp_scan_feed(&s, d + i, n - i < chunk ? n - i : chunk);
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

static void against_hiredis(const uint8_t *d, size_t n, const struct list *ours)
{
	redisReader *rd = redisReaderCreate();
	void *reply = NULL;
	int k = 0;

	if (!rd)
		return;
	redisReaderFeed(rd, (const char *)d, n);
	while (k < ours->n + 1 && redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
		redisReply *r = reply;
		char want[SY_CMD_NAME_MAX + 1] = {0};
		const struct cmd *c;
		const struct sy_command *sc;
		struct sy_cmd_info ki;
		size_t nl;
		int ok = r->type == REDIS_REPLY_ARRAY;

		for (size_t i = 0; ok && i < r->elements; i++)
			ok = r->element[i]->type == REDIS_REPLY_STRING;
		if (!ok) {
			freeReplyObject(reply);
			break; /* not a request the server would read: stop comparing */
		}
		if (r->elements == 0) { /* "*0": nothing, for Redis and for us */
			freeReplyObject(reply);
			continue;
		}
		if (k >= ours->n)
			abort(); /* hiredis read a command we did not */
		c = &ours->c[k++];
		if (c->is_inline || c->argc != r->elements)
			abort();
		nl = r->element[0]->len;
		if (c->name_len != (nl < SY_CMD_NAME_MAX ? nl : SY_CMD_NAME_MAX) && !(nl > SY_CMD_NAME_MAX))
			abort();
		upper(want, r->element[0]->str, nl < SY_CMD_NAME_MAX ? nl : SY_CMD_NAME_MAX);
		if (memcmp(want, c->name, nl < SY_CMD_NAME_MAX ? nl : SY_CMD_NAME_MAX) != 0)
			abort();
		/* the first key, as the kernel's table says (a NUL ends a name, as in the kernel) */
		sc = nl <= SY_CMD_NAME_MAX ? sy_command_find(want, strnlen(want, nl)) : NULL;
		if (sc && sy_command_kernel_info(sc, &ki) == 0 && ki.first_key && ki.first_key < r->elements) {
			const redisReply *key = r->element[ki.first_key];
			size_t kl = key->len < SY_KEY_MAX ? key->len : SY_KEY_MAX;

			if (!c->has_key || c->key_len != kl || c->key_trunc != (key->len > SY_KEY_MAX) ||
			    memcmp(c->key, key->str, kl) != 0)
				abort();
		} else if (c->has_key) {
			abort();
		}
		freeReplyObject(reply);
	}
	redisReaderFree(rd);
}

/* hiredis allocates an array's slots when it reads the count: a count of millions is
 * an out-of-memory in the oracle, not a finding. */
static int counts_are_small(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i + 1;

		if (d[i] != '*')
			continue;
		while (j < n && d[j] >= '0' && d[j] <= '9')
			j++;
		if (j - i - 1 > 4)
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct list whole, other;
	uint64_t u1, u2;
	size_t chunk;

	if (size > 1 << 16)
		return 0;
	run(data, size, size ? size : 1, 1, &whole, &u1);
	run(data, size, 1, 0, &other, &u2);
	same(&whole, &other);
	if (u1 != u2)
		abort();
	chunk = size ? (size_t)data[0] % 17 + 1 : 1;
	run(data, size, chunk, 1, &other, &u2);
	same(&whole, &other);
	if (u1 != u2)
		abort();
	if (counts_are_small(data, size))
		against_hiredis(data, size, &whole);
	return 0;
}
