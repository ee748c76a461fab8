// SPDX-License-Identifier: Apache-2.0
/* compare.c — see compare.h and docs/verify.md. */
#include "shadow/compare.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fnv.h"
#include "shadow/verify.h"

/* One round trip per side for any number of keys: for each, type, PTTL and the whole
 * value. Streams are flattened. */
static const char SCRIPT[] = "local out = {}\n"
			     "for i, k in ipairs(KEYS) do\n"
			     "  local t = redis.call('TYPE', k)['ok']\n"
			     "  local ttl = redis.call('PTTL', k)\n"
			     "  local v = {}\n"
			     "  if t == 'string' then v = {redis.call('GET', k)}\n"
			     "  elseif t == 'hash' then v = redis.call('HGETALL', k)\n"
			     "  elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)\n"
			     "  elseif t == 'set' then v = redis.call('SMEMBERS', k)\n"
			     "  elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')\n"
			     "  elseif t == 'stream' then\n"
			     "    for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do\n"
			     "      table.insert(v, e[1])\n"
			     "      for _, f in ipairs(e[2]) do table.insert(v, f) end\n"
			     "    end\n"
			     "  end\n"
			     "  out[i] = {t, ttl, v}\n"
			     "end\n"
			     "return out\n";

/* sy_redis_flags of a connection */
#define LOOK_LOADED 1u /* SCRIPT LOAD sent */
#define LOOK_EVAL   2u /* EVALSHA refused (an ACL without it): EVAL only */

const char *sy_drift_name(int kind)
{
	static const char *const n[] = {"none", "missing", "extra", "type", "value", "ttl"};

	return kind >= 0 && kind < SY_DRIFT_KINDS ? n[kind] : "?";
}

/* ---- type-aware digests -------------------------------------------------------------- */

static int by_bytes(const void *a, const void *b)
{
	const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->str, y->str, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Pairs (field, value) sorted by field: compare the first of two. */
static int by_field(const void *a, const void *b)
{
	return by_bytes(a, b);
}

static uint64_t digest_items(redisReply **items, size_t n, size_t stride)
{
	uint64_t h = SY_FNV_OFFSET;

	for (size_t i = 0; i < n; i += stride)
		for (size_t j = 0; j < stride && i + j < n; j++) {
			uint64_t len = items[i + j]->type == REDIS_REPLY_STRING ? items[i + j]->len : 0;

			h = sy_fnv1a(&len, sizeof(len),
				     h); /* length-prefixed: no two lists collide by joining */
			if (len)
				h = sy_fnv1a(items[i + j]->str, len, h);
		}
	return h;
}

void sy_look_of(redisReply *r, struct sy_look *out)
{
	redisReply *v;

	memset(out, 0, sizeof(*out));
	/* a Lua string comes back as a bulk string */
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    (r->element[0]->type != REDIS_REPLY_STATUS && r->element[0]->type != REDIS_REPLY_STRING) ||
	    r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_ARRAY)
		return;
	snprintf(out->type, sizeof(out->type), "%s", r->element[0]->str);
	out->ttl = r->element[1]->integer;
	v = r->element[2];
	if (strcmp(out->type, "set") == 0) {
		qsort(v->element, v->elements, sizeof(*v->element), by_bytes);
		out->digest = digest_items(v->element, v->elements, 1);
	} else if (strcmp(out->type, "hash") == 0) {
		/* sort the pairs as units: (field, value) → qsort over pair starts */
		size_t np = v->elements / 2;
		redisReply **pairs = malloc((np ? np : 1) * 2 * sizeof(*pairs));

		if (!pairs)
			return;
		for (size_t i = 0; i < np; i++) {
			pairs[2 * i] = v->element[2 * i];
			pairs[2 * i + 1] = v->element[2 * i + 1];
		}
		/* sort indexes of fields, then lay pairs out in that order */
		{
			redisReply **fields = malloc((np ? np : 1) * sizeof(*fields));

			if (!fields) {
				free(pairs);
				return;
			}
			for (size_t i = 0; i < np; i++)
				fields[i] = v->element[2 * i];
			qsort(fields, np, sizeof(*fields), by_field);
			for (size_t i = 0; i < np; i++) {
				/* fields are unique in a hash: find its value */
				for (size_t j = 0; j < np; j++)
					if (v->element[2 * j] == fields[i]) {
						pairs[2 * i] = v->element[2 * j];
						pairs[2 * i + 1] = v->element[2 * j + 1];
						break;
					}
			}
			free(fields);
		}
		out->digest = digest_items(pairs, np * 2, 2);
		free(pairs);
	} else {
		out->digest = digest_items(v->element, v->elements, 1);
	}
	out->ok = true;
}

/* The script's SHA1 in hex, for EVALSHA (Redis names a script by it). */
static const char *script_sha(void)
{
	static char hex[41];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (hex[0])
		return hex;
	if (!EVP_Digest(SCRIPT, sizeof(SCRIPT) - 1, md, &n, EVP_sha1(), NULL) || n != 20)
		return NULL;
	for (unsigned i = 0; i < n; i++)
		snprintf(&hex[2 * i], 3, "%02x", md[i]);
	return hex;
}

/* Looks in flight: what a refused EVALSHA needs to send them again by EVAL. */
struct looks {
	sy_redis_reply_cb cb;
	void *priv;
	bool one;  /* sy_look_send: the caller gets the key's look, not a list of one */
	bool eval; /* sent by EVAL already */
	size_t n;
	size_t *lens;
	char *keys; /* the keys, one after the other */
};

static int looks_send(struct sy_redis *c, struct looks *l);

static void on_looks(struct sy_redis *c, redisReply *r, void *priv)
{
	struct looks *l = priv;

	/* NOSCRIPT: the server lost its scripts (SCRIPT FLUSH, a SCRIPT LOAD refused), and
	 * EVAL caches it again; NOPERM: an ACL that allows EVAL only, as docs/operations.md
	 * listed before EVALSHA was used: this connection stays with EVAL */
	bool noscript = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
	bool noperm = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0 &&
		      strstr(r->str, "'evalsha'");

	if (!l->eval && (noscript || noperm)) {
		if (noperm)
			*sy_redis_flags(c) |= LOOK_EVAL;
		l->eval = true;
		if (looks_send(c, l) == 0)
			return;
		r = NULL;
	}
	if (l->one && r && r->type == REDIS_REPLY_ARRAY)
		r = r->elements == 1 ? r->element[0] : NULL;
	l->cb(c, r, l->priv);
	free(l);
}

static int looks_send(struct sy_redis *c, struct looks *l)
{
	unsigned *flags = sy_redis_flags(c);
	const char *sha = l->eval || (*flags & LOOK_EVAL) ? NULL : script_sha();
	const char *stack_argv[3 + 32], **argv = stack_argv;
	size_t stack_lens[3 + 32], *lens = stack_lens, off = 0;
	char nk[24];
	int e;

	if (l->n > 32) {
		argv = malloc((3 + l->n) * sizeof(*argv));
		lens = malloc((3 + l->n) * sizeof(*lens));
		if (!argv || !lens) {
			e = -ENOMEM;
			goto out;
		}
	}
	if (sha && !(*flags & LOOK_LOADED)) {
		const char *load[3] = {"SCRIPT", "LOAD", SCRIPT};
		size_t ll[3] = {6, 4, sizeof(SCRIPT) - 1};

		/* answered before the EVALSHA behind it; if refused, NOSCRIPT or NOPERM
		 * says so */
		if ((e = sy_redis_sendv(c, 3, load, ll, NULL, NULL)))
			goto out;
		*flags |= LOOK_LOADED;
	}
	argv[0] = sha ? "EVALSHA" : "EVAL";
	lens[0] = sha ? 7 : 4;
	argv[1] = sha ? sha : SCRIPT;
	lens[1] = sha ? 40 : sizeof(SCRIPT) - 1;
	argv[2] = nk;
	lens[2] = (size_t)snprintf(nk, sizeof(nk), "%zu", l->n);
	for (size_t i = 0; i < l->n; i++) {
		argv[3 + i] = l->keys + off;
		lens[3 + i] = l->lens[i];
		off += l->lens[i];
	}
	e = sy_redis_sendv(c, (int)(3 + l->n), argv, lens, on_looks, l);
out:
	if (argv != stack_argv)
		free(argv);
	if (lens != stack_lens)
		free(lens);
	return e;
}

int sy_looks_send(struct sy_redis *c, size_t n, const char *const *keys, const size_t *lens,
		  sy_redis_reply_cb cb, void *priv)
{
	size_t bytes = 0;
	struct looks *l;
	int e;

	for (size_t i = 0; i < n; i++)
		bytes += lens[i];
	l = malloc(sizeof(*l) + n * sizeof(size_t) + bytes);
	if (!l)
		return -ENOMEM;
	*l = (struct looks){.cb = cb, .priv = priv, .n = n, .lens = (size_t *)(l + 1)};
	l->keys = (char *)(l->lens + n);
	bytes = 0;
	for (size_t i = 0; i < n; i++) {
		l->lens[i] = lens[i];
		memcpy(l->keys + bytes, keys[i], lens[i]);
		bytes += lens[i];
	}
	if ((e = looks_send(c, l)))
		free(l);
	return e;
}

int sy_look_send(struct sy_redis *c, const char *key, size_t len, sy_redis_reply_cb cb, void *priv)
{
	struct looks *l = malloc(sizeof(*l) + sizeof(size_t) + len);
	int e;

	if (!l)
		return -ENOMEM;
	*l = (struct looks){.cb = cb, .priv = priv, .one = true, .n = 1, .lens = (size_t *)(l + 1)};
	l->keys = (char *)(l->lens + 1);
	l->lens[0] = len;
	memcpy(l->keys, key, len);
	if ((e = looks_send(c, l)))
		free(l);
	return e;
}

int sy_drift_presence(bool legacy_none, bool target_none)
{
	if (legacy_none && target_none)
		return SY_DRIFT_NONE;
	if (target_none)
		return SY_DRIFT_MISSING;
	if (legacy_none)
		return SY_DRIFT_EXTRA;
	return -1;
}

bool sy_drift_ttl(long long legacy_ms, long long target_ms)
{
	return (legacy_ms < 0) != (target_ms < 0) ||
	       (legacy_ms >= 0 && llabs(legacy_ms - target_ms) > SY_TTL_TOLERANCE_MS);
}

int sy_look_classify(const struct sy_look *l, const struct sy_look *t)
{
	int kind = sy_drift_presence(strcmp(l->type, "none") == 0, strcmp(t->type, "none") == 0);

	if (kind >= 0)
		return kind;
	if (strcmp(l->type, t->type) != 0)
		return SY_DRIFT_TYPE;
	if (l->digest != t->digest)
		return SY_DRIFT_VALUE;
	return sy_drift_ttl(l->ttl, t->ttl) ? SY_DRIFT_TTL : SY_DRIFT_NONE;
}
