// SPDX-License-Identifier: Apache-2.0
/* fuzz_resp_reply.c — the RESP reply machine (resp_reply.h, as the kernel drives it
 * through reply_scan.c) against two oracles:
 *   1. itself: the same input fed whole, byte by byte and in chunks whose sizes come
 *      from the input, with and without the fast path, gives the same replies (types, lengths, error classes)
 * and the same error counts;
 *   2. hiredis's reader (an independent, well-kept RESP parser): over the leading run
 *      of replies that hiredis reads and that are written as Redis writes them
 *      (re-encoding hiredis's reply gives back the input's bytes), the machine finds
 *      the same replies, of the same lengths, the same errors of the same classes,
 *      and no protocol error; when hiredis waits for more there, so does the machine.
 * Any difference aborts. */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/reply_scan.h"
#include "switchyard/resp_reply.h"

#define MAX_REPLIES 1024

struct rep {
	uint8_t type;
	int err_class; /* -1: no error */
	uint64_t bytes;
};

struct list {
	int n;
	struct rep r[MAX_REPLIES];
	uint64_t replies, errors, unparsed, pending;
};

static void add(const struct sy_reply_info *ri, void *arg)
{
	struct list *l = arg;
	struct rep *o;

	if (l->n >= MAX_REPLIES)
		return;
	o = &l->r[l->n++];
	memset(o, 0, sizeof(*o));
	o->type = ri->type;
	o->err_class = ri->is_error ? ri->err_class : -1;
	o->bytes = ri->bytes;
}

/* Feeds d[0..n): in chunks of `chunk` bytes, or (chunk 0) in chunks whose sizes come
 * from the input's first bytes, so the fuzzer also explores segment boundaries. */
static void run(const uint8_t *d, size_t n, size_t chunk, bool fast, struct list *l)
{
	struct sy_reply_scan s;
	size_t m = n < 8 ? n : 8, k = 0;

	memset(l, 0, sizeof(*l));
	sy_reply_scan_init(&s, fast, add, l);
	for (size_t i = 0, c; i < n; i += c, k++) {
		c = chunk ? chunk : 1 + (size_t)(d[k % m] * 31u + k) % 67;
		if (c > n - i)
			c = n - i;
		sy_reply_scan_feed(&s, d + i, c);
	}
	l->replies = s.replies;
	l->errors = s.errors;
	l->unparsed = s.unparsed;
	l->pending = s.r.pending;
}

static void same(const struct list *a, const struct list *b)
{
	if (a->n != b->n || a->replies != b->replies || a->errors != b->errors ||
	    a->unparsed != b->unparsed || a->pending != b->pending)
		abort();
	for (int i = 0; i < a->n; i++)
		if (memcmp(&a->r[i], &b->r[i], sizeof(a->r[i])) != 0)
			abort();
}

/* The class of an error by its first word, written independently of resp_reply.h. */
static int classify(const char *s, size_t len)
{
	static const struct {
		const char *w;
		int cls;
	} words[] = {{"ERR", SY_ERR_ERR},	   {"MOVED", SY_ERR_MOVED},   {"ASK", SY_ERR_MOVED},
		     {"OOM", SY_ERR_OOM},	   {"NOAUTH", SY_ERR_NOAUTH}, {"WRONGPASS", SY_ERR_NOAUTH},
		     {"READONLY", SY_ERR_READONLY}};
	size_t n = 0;

	while (n < len && s[n] != ' ' && s[n] != '\r')
		n++;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].w) == n && memcmp(words[i].w, s, n) == 0)
			return words[i].cls;
	return SY_ERR_OTHER;
}

/* How many bytes of d[0..n) Redis would write for reply r, if d holds exactly that;
 * -1 when it does not (hiredis is lenient: "$+3", "$03", "*-5" read too). */
static long canonical(const redisReply *r, const uint8_t *d, size_t n)
{
	char head[64];
	size_t h, total;
	long k;

	switch (r->type) {
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_ERROR:
		h = 1 + r->len + 2;
		if (h > n || d[0] != (r->type == REDIS_REPLY_ERROR ? '-' : '+') ||
		    memcmp(d + 1, r->str, r->len) != 0 || d[h - 2] != '\r' || d[h - 1] != '\n')
			return -1;
		return (long)h;
	case REDIS_REPLY_INTEGER:
		h = (size_t)snprintf(head, sizeof(head), ":%lld\r\n", r->integer);
		return h <= n && memcmp(d, head, h) == 0 ? (long)h : -1;
	case REDIS_REPLY_NIL:
		if (n >= 5 && (memcmp(d, "$-1\r\n", 5) == 0 || memcmp(d, "*-1\r\n", 5) == 0))
			return 5;
		return -1;
	case REDIS_REPLY_STRING:
		h = (size_t)snprintf(head, sizeof(head), "$%zu\r\n", (size_t)r->len);
		total = h + r->len + 2;
		if (total > n || memcmp(d, head, h) != 0 || memcmp(d + h, r->str, r->len) != 0 ||
		    d[total - 2] != '\r' || d[total - 1] != '\n')
			return -1;
		return (long)total;
	case REDIS_REPLY_ARRAY:
		h = (size_t)snprintf(head, sizeof(head), "*%zu\r\n", (size_t)r->elements);
		if (h > n || memcmp(d, head, h) != 0)
			return -1;
		total = h;
		for (size_t i = 0; i < r->elements; i++) {
			k = canonical(r->element[i], d + total, n - total);
			if (k < 0)
				return -1;
			total += (size_t)k;
		}
		return (long)total;
	default:
		return -1;
	}
}

/* hiredis allocates an array's slots when it reads the count: refuse counts no input
 * of this size can complete (hiredis then reports an error and comparing stops). */
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

static void against_hiredis(const uint8_t *d, size_t n, const struct list *whole)
{
	static redisReplyObjectFunctions fns;
	static struct list want, got;
	redisReader *rd = redisReaderCreate();
	size_t pos = 0;
	int waiting = 0;

	if (!rd)
		return;
	fns = *rd->fn;
	default_array = fns.createArray;
	fns.createArray = capped_array;
	rd->fn = &fns;
	array_cap = n;
	memset(&want, 0, sizeof(want));
	redisReaderFeed(rd, (const char *)d, n);
	while (want.n < MAX_REPLIES) {
		void *reply = NULL;
		redisReply *r;
		struct rep *o;
		long k;

		if (redisReaderGetReply(rd, &reply) != REDIS_OK)
			break; /* hiredis rejects the rest: stop comparing */
		if (!reply) {
			waiting = 1;
			break;
		}
		r = reply;
		k = canonical(r, d + pos, n - pos);
		if (k < 0) {
			freeReplyObject(reply);
			break; /* not as Redis writes it: stop comparing */
		}
		o = &want.r[want.n++];
		o->type = d[pos];
		o->err_class = r->type == REDIS_REPLY_ERROR ? classify(r->str, r->len) : -1;
		o->bytes = (uint64_t)k;
		want.replies++;
		want.errors += r->type == REDIS_REPLY_ERROR;
		pos += (size_t)k;
		freeReplyObject(reply);
	}
	redisReaderFree(rd);
	/* the leading run of well-formed replies: exactly the same, ending on a boundary */
	run(d, pos, pos ? pos : 1, true, &got);
	if (got.unparsed || got.pending)
		abort();
	same(&got, &want);
	/* hiredis waits for more after that run, with nothing it rejected: so do we,
	 * unless the machine found a protocol error there (it is stricter about lengths
	 * and restarts at the next line, where hiredis still reads the same reply) */
	if (waiting && !whole->unparsed && whole->n != want.n)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct list whole, other;

	if (size > 1 << 16)
		return 0;
	run(data, size, size ? size : 1, true, &whole);
	run(data, size, 1, false, &other);
	same(&whole, &other);
	for (int fast = 0; fast < 2; fast++) {
		run(data, size, 0, fast, &other);
		same(&whole, &other);
	}
	against_hiredis(data, size, &whole);
	return 0;
}
