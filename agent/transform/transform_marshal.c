// SPDX-License-Identifier: Apache-2.0
/* transform_marshal.c — typed keys and captured commands between C and Lua (see
 * transform.h for the shapes), and the bump arena results live in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transform/transform_int.h"

/* ---- arena ------------------------------------------------------------------------------ */

struct blk {
	struct blk *next;
	size_t used, cap;
	_Alignas(16) char data[];
};

#define BLK_SIZE 4096

/* One freed block of BLK_SIZE kept for the next result: most results fit in one, and
 * a malloc/free pair per call was a visible share of the mirror's forward_write path.
 * Per thread, though only the agent's loop thread calls transforms. */
static _Thread_local struct blk *spare;

void *sy_arena_alloc(void **arena, size_t n)
{
	struct blk *b = *arena;

	n = (n + 15) & ~(size_t)15;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > BLK_SIZE ? n : BLK_SIZE;
		struct blk *nb = spare && cap == BLK_SIZE ? spare : malloc(sizeof(*nb) + cap);

		if (!nb)
			return NULL;
		if (nb == spare)
			spare = NULL;
		nb->next = b;
		nb->used = 0;
		nb->cap = cap;
		*arena = b = nb;
	}
	b->used += n;
	return b->data + b->used - n;
}

char *sy_arena_dup(void **arena, const char *p, size_t n)
{
	char *d = sy_arena_alloc(arena, n + 1);

	if (d) {
		if (n)
			memcpy(d, p, n);
		d[n] = 0;
	}
	return d;
}

void sy_arena_free(void **arena)
{
	for (struct blk *b = *arena, *nx; b; b = nx) {
		nx = b->next;
		if (!spare && b->cap == BLK_SIZE)
			spare = b;
		else
			free(b);
	}
	*arena = NULL;
}

void sy_tkeys_free(struct sy_tkeys *k)
{
	sy_arena_free(&k->mem);
	k->v = NULL;
	k->n = 0;
}

void sy_targvs_free(struct sy_targvs *a)
{
	sy_arena_free(&a->mem);
	a->v = NULL;
	a->n = 0;
}

/* ---- types ------------------------------------------------------------------------------ */

static const char *const KT_NAMES[SY_KT_TYPES] = {"none", "string", "hash", "list", "set", "zset", "stream"};

const char *sy_ktype_name(int t)
{
	return t >= 0 && t < SY_KT_TYPES ? KT_NAMES[t] : "?";
}

int sy_ktype_parse(const char *s, size_t n)
{
	for (int i = 0; i < SY_KT_TYPES; i++)
		if (strlen(KT_NAMES[i]) == n && memcmp(KT_NAMES[i], s, n) == 0)
			return i;
	return -1;
}

/* ---- C → Lua ------------------------------------------------------------------------------ */

void sy_tkey_push(lua_State *L, const struct sy_tkey *k)
{
	const struct sy_tval *it = k->items;

	lua_createtable(L, 0, 4);
	lua_pushlstring(L, k->key, k->klen);
	lua_setfield(L, -2, "key");
	lua_pushstring(L, sy_ktype_name(k->type));
	lua_setfield(L, -2, "type");
	if (k->ttl_ms >= 0) {
		lua_pushinteger(L, k->ttl_ms);
		lua_setfield(L, -2, "ttl_ms");
	}
	switch (k->type) {
	case SY_KT_STRING:
		if (k->n < 1)
			return;
		lua_pushlstring(L, it[0].p, it[0].n);
		break;
	case SY_KT_HASH:
		lua_createtable(L, 0, (int)(k->n / 2));
		for (size_t i = 0; i + 1 < k->n; i += 2) {
			lua_pushlstring(L, it[i].p, it[i].n);
			lua_pushlstring(L, it[i + 1].p, it[i + 1].n);
			lua_rawset(L, -3);
		}
		break;
	case SY_KT_LIST:
	case SY_KT_SET:
		lua_createtable(L, (int)k->n, 0);
		for (size_t i = 0; i < k->n; i++) {
			lua_pushlstring(L, it[i].p, it[i].n);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	case SY_KT_ZSET:
		lua_createtable(L, 0, (int)(k->n / 2));
		for (size_t i = 0; i + 1 < k->n; i += 2) {
			char num[64];

			snprintf(num, sizeof(num), "%.*s", (int)(it[i + 1].n < 63 ? it[i + 1].n : 63),
				 it[i + 1].p);
			lua_pushlstring(L, it[i].p, it[i].n);
			lua_pushnumber(L, strtod(num, NULL)); /* "inf" and "-inf" too */
			lua_rawset(L, -3);
		}
		break;
	default:
		return; /* none, stream: no value */
	}
	lua_setfield(L, -2, "value");
}

void sy_argv_push(lua_State *L, int argc, const char *const *argv, const size_t *lens)
{
	lua_createtable(L, argc, 0);
	for (int i = 0; i < argc; i++) {
		lua_pushlstring(L, argv[i], lens[i]);
		lua_rawseti(L, -2, i + 1);
	}
}

/* ---- Lua → C ------------------------------------------------------------------------------ */

/* The string or number at idx, copied into the arena; NULL when it is neither. */
static const char *text_at(lua_State *L, int idx, void **arena, size_t *n)
{
	char b[40];
	int k;

	if (lua_type(L, idx) == LUA_TSTRING) {
		const char *s = lua_tolstring(L, idx, n);

		return sy_arena_dup(arena, s, *n);
	}
	if (lua_type(L, idx) != LUA_TNUMBER)
		return NULL;
	/* formatted here, not by lua_tolstring: converting a number in place would change
	 * a table key under lua_next */
	if (lua_isinteger(L, idx))
		k = snprintf(b, sizeof(b), "%lld", (long long)lua_tointeger(L, idx));
	else
		k = snprintf(b, sizeof(b), "%.17g", lua_tonumber(L, idx));
	*n = (size_t)k;
	return sy_arena_dup(arena, b, *n);
}

#define FAIL(...)                                                                                            \
	do {                                                                                                 \
		snprintf(err, errlen, __VA_ARGS__);                                                          \
		return -EINVAL;                                                                              \
	} while (0)

static int grow_items(void **arena, struct sy_tkey *k, size_t *cap)
{
	if (k->n < *cap)
		return 0;
	{
		size_t nc = *cap ? *cap * 2 : 8;
		struct sy_tval *ni = sy_arena_alloc(arena, nc * sizeof(*ni));

		if (!ni)
			return -ENOMEM;
		if (k->n)
			memcpy(ni, k->items, k->n * sizeof(*ni));
		k->items = ni;
		*cap = nc;
	}
	return 0;
}

static int add_item(void **arena, struct sy_tkey *k, size_t *cap, const char *p, size_t n)
{
	if (grow_items(arena, k, cap))
		return -ENOMEM;
	k->items[k->n].p = p;
	k->items[k->n].n = n;
	k->n++;
	return 0;
}

/* The value (at the top of the stack) of a key of type k->type. */
static int read_value(lua_State *L, void **arena, struct sy_tkey *k, char *err, size_t errlen)
{
	size_t cap = 0, n;
	const char *s;
	int v = lua_gettop(L);

	if (k->type == SY_KT_STRING) {
		if (!(s = text_at(L, v, arena, &n)))
			FAIL("a string key's value must be a string");
		return add_item(arena, k, &cap, s, n);
	}
	if (k->type == SY_KT_NONE || lua_isnil(L, v))
		return 0;
	if (!lua_istable(L, v))
		FAIL("a %s key's value must be a table", sy_ktype_name(k->type));
	if (k->type == SY_KT_LIST || k->type == SY_KT_SET) {
		lua_Integer len = luaL_len(L, v);

		for (lua_Integer i = 1; i <= len; i++) {
			lua_rawgeti(L, v, i);
			if (!(s = text_at(L, -1, arena, &n)))
				FAIL("%s element %lld is not a string", sy_ktype_name(k->type), (long long)i);
			lua_pop(L, 1);
			if (add_item(arena, k, &cap, s, n))
				return -ENOMEM;
		}
		return 0;
	}
	lua_pushnil(L);
	while (lua_next(L, v)) {
		const char *f, *val;
		size_t fn, vn;

		if (!(f = text_at(L, -2, arena, &fn)))
			FAIL("a %s field is not a string", sy_ktype_name(k->type));
		if (k->type == SY_KT_ZSET && lua_type(L, -1) != LUA_TNUMBER)
			FAIL("zset member %.*s: its score is not a number", (int)(fn > 64 ? 64 : fn), f);
		if (!(val = text_at(L, -1, arena, &vn)))
			FAIL("hash field %.*s: its value is not a string", (int)(fn > 64 ? 64 : fn), f);
		lua_pop(L, 1);
		if (add_item(arena, k, &cap, f, fn) || add_item(arena, k, &cap, val, vn))
			return -ENOMEM;
	}
	return 0;
}

static int read_key(lua_State *L, int idx, void **arena, struct sy_tkey *k, char *err, size_t errlen)
{
	const char *s;
	size_t n;
	int top = lua_gettop(L), rc;

	if (!lua_istable(L, idx))
		FAIL("not a key table {key=, type=, value=, ttl_ms=}");
	lua_getfield(L, idx, "key");
	if (lua_type(L, -1) != LUA_TSTRING || !(s = text_at(L, -1, arena, &n)) || n == 0)
		FAIL("key: a non-empty string is needed");
	k->key = s;
	k->klen = n;
	lua_getfield(L, idx, "type");
	lua_getfield(L, idx, "value");
	if (lua_isnil(L, -2)) {
		if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
			FAIL("%s: type is needed unless the value is a string", k->key);
		k->type = SY_KT_STRING;
	} else {
		int t;

		s = lua_tolstring(L, -2, &n);
		t = s ? sy_ktype_parse(s, n) : -1;
		if (t < 0 || t == SY_KT_STREAM)
			FAIL("%s: type must be none, string, hash, list, set or zset", k->key);
		k->type = (uint8_t)t;
	}
	rc = read_value(L, arena, k, err, errlen);
	if (rc)
		return rc;
	lua_settop(L, top);
	lua_getfield(L, idx, "ttl_ms");
	k->ttl_ms = -1;
	if (lua_type(L, -1) == LUA_TNUMBER) {
		lua_Number ms = lua_tonumber(L, -1);

		if (ms > 0)
			k->ttl_ms = ms > 9e15 ? (long long)9e15 : (long long)ms;
	} else if (!lua_isnil(L, -1)) {
		FAIL("%s: ttl_ms must be a number", k->key);
	}
	lua_settop(L, top);
	return 0;
}

/* One entry of a list, on top of the stack: the i-th (from 1), read into elem. */
typedef int (*entry_fn)(lua_State *L, lua_Integer i, void **arena, void *elem, char *err, size_t errlen);

/* Reads the Lua list at idx (at most 100000 entries) into zeroed entries of `size` bytes
 * from arena, at *v, each by one(); *n counts those read. `what` and `noun` name the list
 * in the errors. */
static int list_read(lua_State *L, int idx, void **arena, size_t size, const char *what, const char *noun,
		     entry_fn one, void **v, size_t *n, char *err, size_t errlen)
{
	lua_Integer len;
	size_t bytes;
	int rc;

	idx = lua_absindex(L, idx);
	if (!lua_istable(L, idx))
		FAIL("must return %s", what);
	len = luaL_len(L, idx);
	if (len < 0 || len > 100000)
		FAIL("returned %lld %s", (long long)len, noun);
	bytes = (size_t)(len ? len : 1) * size;
	if (!(*v = sy_arena_alloc(arena, bytes)))
		return -ENOMEM;
	memset(*v, 0, bytes);
	for (lua_Integer i = 1; i <= len; i++) {
		lua_rawgeti(L, idx, i);
		rc = one(L, i, arena, (char *)*v + (size_t)(i - 1) * size, err, errlen);
		lua_pop(L, 1);
		if (rc)
			return rc;
		(*n)++;
	}
	return 0;
}

static int key_entry(lua_State *L, lua_Integer i, void **arena, void *elem, char *err, size_t errlen)
{
	char why[SY_TRANSFORM_ERR_MAX];
	int rc = read_key(L, lua_gettop(L), arena, elem, why, sizeof(why));

	if (rc)
		snprintf(err, errlen, "result %lld: %s", (long long)i, why);
	return rc;
}

int sy_tkeys_read(lua_State *L, int idx, struct sy_tkeys *out, char *err, size_t errlen)
{
	void *v = NULL;
	int rc;

	if (lua_isnil(L, idx))
		return 0; /* nothing on the other side */
	rc = list_read(L, idx, &out->mem, sizeof(*out->v), "a list of keys", "keys", key_entry, &v, &out->n,
		       err, errlen);
	out->v = v;
	return rc;
}

static int command_entry(lua_State *L, lua_Integer i, void **arena, void *elem, char *err, size_t errlen)
{
	struct sy_targv *a = elem;
	lua_Integer argc;

	if (!lua_istable(L, -1) || (argc = luaL_len(L, -1)) < 1 || argc > 1000000)
		FAIL("command %lld: not a non-empty list of strings", (long long)i);
	a->argc = (int)argc;
	a->argv = sy_arena_alloc(arena, (size_t)argc * sizeof(*a->argv));
	a->lens = sy_arena_alloc(arena, (size_t)argc * sizeof(*a->lens));
	if (!a->argv || !a->lens)
		return -ENOMEM;
	for (lua_Integer j = 1; j <= argc; j++) {
		lua_rawgeti(L, -1, j);
		if (!(a->argv[j - 1] = text_at(L, -1, arena, &a->lens[j - 1])))
			FAIL("command %lld, argument %lld: not a string", (long long)i, (long long)j);
		lua_pop(L, 1);
	}
	return 0;
}

int sy_targvs_read(lua_State *L, int idx, struct sy_targvs *out, char *err, size_t errlen)
{
	void *v = NULL;
	int rc;

	rc = list_read(L, idx, &out->mem, sizeof(*out->v),
		       "a list of commands (each a list of strings) or nil", "commands", command_entry, &v,
		       &out->n, err, errlen);
	out->v = v;
	return rc;
}

void sy_tkey_age(struct sy_tkey *k, uint64_t aged_ms)
{
	if (k->ttl_ms < 0)
		return;
	k->ttl_ms = aged_ms >= (uint64_t)k->ttl_ms ? 0 : k->ttl_ms - (long long)aged_ms;
	if (k->ttl_ms == 0) {
		/* what forward_key gets for a deleted key: the target keys it names are deleted */
		k->type = SY_KT_NONE;
		k->ttl_ms = -1;
		k->items = NULL;
		k->n = 0;
	}
}
