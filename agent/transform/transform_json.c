// SPDX-License-Identifier: Apache-2.0
/* transform_json.c — switchyard.json for scripts: decode(s) → Lua values (objects and
 * arrays as tables, null as switchyard.json.null) by a parser of its own that builds
 * them directly; encode(v) → text, on json-c, with object keys sorted, so one document
 * always encodes to the same bytes (the audit compares bytes). Depth is bounded both
 * ways; a json-c object under construction is held by a userdata with __gc, so a Lua
 * error (memory cap) cannot leak it. */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "transform/transform_int.h"

#define JSON_DEPTH 64
#define BOX_META   "switchyard.json.box"

static int box_gc(lua_State *L)
{
	struct json_object **b = luaL_checkudata(L, 1, BOX_META);

	json_object_put(*b);
	*b = NULL;
	return 0;
}

/* A userdata that owns a json-c object until collected. */
static struct json_object **box_new(lua_State *L)
{
	struct json_object **b = lua_newuserdatauv(L, sizeof(*b), 0);

	*b = NULL;
	luaL_setmetatable(L, BOX_META);
	return b;
}

/* The null sentinel: a light userdata that is no pointer of ours. */
static void *null_value(void)
{
	static char n;

	return &n;
}

/* ---- decode: JSON text straight onto the Lua stack ------------------------------------------
 * Not through json-c: building its object tree (an object and a hash table per JSON
 * object, a tokener per call) and then copying it into Lua tables cost the mirror's
 * forward_write path more than the script itself (bench/transform.sh, sy_xfbench). The
 * grammar is RFC 8259's, as strict as json-c's JSON_TOKENER_STRICT: no comments, no
 * trailing commas, no leading zeros, no raw control characters in strings. */

struct jdec {
	lua_State *L;
	const char *s, *p, *end;
};

static int jfail(struct jdec *d, const char *what)
{
	if (d->p >= d->end)
		return luaL_error(d->L, "json.decode: unexpected end of input");
	return luaL_error(d->L, "json.decode: %s at offset %d", what, (int)(d->p - d->s));
}

static void jspace(struct jdec *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\r' || *d->p == '\n'))
		d->p++;
}

/* Steps over ch when it is next: the separators and closers of arrays and objects. */
static bool jeat(struct jdec *d, char ch)
{
	if (d->p >= d->end || *d->p != ch)
		return false;
	d->p++;
	return true;
}

static int jhex4(struct jdec *d)
{
	int v = 0;

	if (d->end - d->p < 4)
		jfail(d, "a short \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = *d->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v |= (c | 0x20) - 'a' + 10;
		else
			jfail(d, "a bad \\u escape");
	}
	return v;
}

static void jutf8(luaL_Buffer *b, unsigned cp)
{
	char u[4];
	int n;

	if (cp < 0x80)
		u[0] = (char)cp, n = 1;
	else if (cp < 0x800)
		u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	else if (cp < 0x10000)
		u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
		u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	else
		u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	luaL_addlstring(b, u, (size_t)n);
}

/* The byte a one-letter escape stands for (RFC 8259 section 7), or -1 ('u' is not one). */
static int jescape(char c)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *at = c ? strchr(from, c) : NULL;

	return at ? to[at - from] : -1;
}

/* A string after its opening quote. Without escapes (the usual case) it is pushed
 * as it stands, without a buffer. */
static void jstring(struct jdec *d)
{
	const char *q = d->p;
	luaL_Buffer b;

	while (q < d->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
		q++;
	if (q < d->end && *q == '"') {
		lua_pushlstring(d->L, d->p, (size_t)(q - d->p));
		d->p = q + 1;
		return;
	}
	luaL_buffinit(d->L, &b);
	for (;;) {
		unsigned cp;
		char c;
		int e;

		if (d->p >= d->end)
			jfail(d, "an unterminated string");
		c = *d->p++;
		if (c == '"')
			break;
		if ((unsigned char)c < 0x20)
			d->p--, jfail(d, "a control character in a string");
		if (c != '\\') {
			luaL_addchar(&b, c);
			continue;
		}
		if (d->p >= d->end)
			jfail(d, "an unterminated string");
		c = *d->p++;
		if ((e = jescape(c)) >= 0) {
			luaL_addchar(&b, (char)e);
			continue;
		}
		if (c != 'u')
			d->p--, jfail(d, "a bad escape");
		cp = (unsigned)jhex4(d);
		if (cp >= 0xd800 && cp < 0xdc00 && d->end - d->p >= 6 && d->p[0] == '\\' && d->p[1] == 'u') {
			const char *at = d->p;
			unsigned lo;

			d->p += 2;
			lo = (unsigned)jhex4(d);
			if (lo >= 0xdc00 && lo < 0xe000)
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			else
				d->p = at; /* not a pair: the high half alone */
		}
		jutf8(&b, cp >= 0xd800 && cp < 0xe000 ? 0xfffd : cp); /* a lone half */
	}
	luaL_pushresult(&b);
}

static void jnumber(struct jdec *d)
{
	const char *a = d->p;
	bool integral = true;
	char buf[64], *e;

	if (d->p < d->end && *d->p == '-')
		d->p++;
	if (d->p < d->end && *d->p == '0')
		d->p++;
	else if (d->p < d->end && *d->p >= '1' && *d->p <= '9')
		while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
			d->p++;
	else
		jfail(d, "a bad number");
	if (d->p < d->end && *d->p == '.') {
		integral = false;
		if (++d->p >= d->end || *d->p < '0' || *d->p > '9')
			jfail(d, "a bad number");
		while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
			d->p++;
	}
	if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
		integral = false;
		if (++d->p < d->end && (*d->p == '+' || *d->p == '-'))
			d->p++;
		if (d->p >= d->end || *d->p < '0' || *d->p > '9')
			jfail(d, "a bad number");
		while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
			d->p++;
	}
	if (d->p - a >= (long)sizeof(buf))
		jfail(d, "a number too long");
	memcpy(buf, a, (size_t)(d->p - a));
	buf[d->p - a] = 0;
	if (integral) {
		long long v;

		errno = 0;
		v = strtoll(buf, &e, 10);
		if (errno == 0) {
			lua_pushinteger(d->L, (lua_Integer)v);
			return;
		}
	}
	lua_pushnumber(d->L, strtod(buf, &e)); /* past int64: a float, as json-c reads it */
}

static bool jword(struct jdec *d, const char *w, size_t n)
{
	if ((size_t)(d->end - d->p) < n || memcmp(d->p, w, n) != 0)
		return false;
	d->p += n;
	return true;
}

static void jvalue(struct jdec *d, int depth);

/* An object (close '}') or an array (close ']') from its opening bracket: one loop for
 * both, as they differ only in an object's "key": before each value. */
static void jmembers(struct jdec *d, int depth, char close)
{
	lua_State *L = d->L;
	bool object = close == '}';
	lua_Integer i = 0;

	d->p++;
	lua_createtable(L, object ? 0 : 4, object ? 4 : 0);
	jspace(d);
	if (jeat(d, close))
		return;
	for (;;) {
		if (object) {
			jspace(d);
			if (!jeat(d, '"'))
				jfail(d, "an object key expected");
			jstring(d);
			jspace(d);
			if (!jeat(d, ':'))
				jfail(d, "':' expected");
		}
		jvalue(d, depth + 1);
		if (object)
			lua_rawset(L, -3);
		else
			lua_rawseti(L, -2, ++i);
		jspace(d);
		if (jeat(d, ','))
			continue;
		if (jeat(d, close))
			return;
		jfail(d, object ? "',' or '}' expected" : "',' or ']' expected");
	}
}

static void jvalue(struct jdec *d, int depth)
{
	lua_State *L = d->L;

	if (depth > JSON_DEPTH)
		jfail(d, "nesting too deep");
	luaL_checkstack(L, 4, "json too deep");
	jspace(d);
	if (d->p >= d->end)
		jfail(d, "a value expected");
	switch (*d->p) {
	case '{':
		jmembers(d, depth, '}');
		return;
	case '[':
		jmembers(d, depth, ']');
		return;
	case '"':
		d->p++;
		jstring(d);
		return;
	case 't':
		if (!jword(d, "true", 4))
			break;
		lua_pushboolean(L, 1);
		return;
	case 'f':
		if (!jword(d, "false", 5))
			break;
		lua_pushboolean(L, 0);
		return;
	case 'n':
		if (!jword(d, "null", 4))
			break;
		lua_pushlightuserdata(L, null_value());
		return;
	default:
		if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) {
			jnumber(d);
			return;
		}
	}
	jfail(d, "unexpected character");
}

static int l_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	struct jdec d = {L, s, s, s + n};

	jspace(&d);
	if (d.p == d.end)
		return luaL_error(L, "json.decode: empty input");
	jvalue(&d, 0);
	jspace(&d);
	if (d.p != d.end)
		return luaL_error(L, "json.decode: trailing bytes at offset %d", (int)(d.p - s));
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static struct json_object *to_json(lua_State *L, int idx, int depth);

static struct json_object *table_json(lua_State *L, int idx, int depth)
{
	lua_Integer len = (lua_Integer)lua_rawlen(L, idx), count = 0;
	struct json_object *o;

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		count++;
		lua_pop(L, 1);
	}
	if (len > 0 && count == len) { /* an array: 1..n and nothing else */
		o = json_object_new_array_ext((int)len);
		/* owned by a box while filled */
		*box_new(L) = o;
		for (lua_Integer i = 1; i <= len; i++) {
			lua_rawgeti(L, idx, i);
			json_object_array_add(o, to_json(L, lua_gettop(L), depth + 1));
			lua_pop(L, 1);
		}
	} else {
		const char **keys;
		lua_Integer k = 0;

		o = json_object_new_object();
		*box_new(L) = o;
		keys = lua_newuserdatauv(L, (size_t)(count ? count : 1) * sizeof(*keys), 0);
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			lua_pop(L, 1);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "json.encode: an object key must be a string");
			keys[k++] = lua_tostring(L, -1); /* anchored by the table */
		}
		qsort(keys, (size_t)k, sizeof(*keys), cmp_str);
		for (lua_Integer i = 0; i < k; i++) {
			lua_getfield(L, idx, keys[i]);
			json_object_object_add(o, keys[i], to_json(L, lua_gettop(L), depth + 1));
			lua_pop(L, 1);
		}
		lua_pop(L, 1); /* keys */
	}
	/* hand the object out of its box */
	*(struct json_object **)lua_touserdata(L, -1) = NULL;
	lua_pop(L, 1);
	return o;
}

static struct json_object *to_json(lua_State *L, int idx, int depth)
{
	if (depth > JSON_DEPTH)
		luaL_error(L, "json.encode: nested deeper than %d (a cycle?)", JSON_DEPTH);
	luaL_checkstack(L, 6, "json too deep");
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return NULL;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == null_value())
			return NULL;
		break;
	case LUA_TBOOLEAN:
		return json_object_new_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_object_new_int64((int64_t)lua_tointeger(L, idx));
		if (!isfinite(lua_tonumber(L, idx)))
			luaL_error(L, "json.encode: %s is not a JSON number", lua_tostring(L, idx));
		return json_object_new_double(lua_tonumber(L, idx));
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);

		return json_object_new_string_len(s, (int)n);
	}
	case LUA_TTABLE:
		return table_json(L, idx, depth);
	}
	luaL_error(L, "json.encode: a %s has no JSON form", luaL_typename(L, idx));
	return NULL;
}

static int l_encode(lua_State *L)
{
	struct json_object **b;

	luaL_checkany(L, 1);
	b = box_new(L);
	*b = to_json(L, 1, 0);
	lua_pushstring(L, json_object_to_json_string_ext(*b, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE));
	return 1;
}

void sy_tjson_push(lua_State *L)
{
	if (luaL_newmetatable(L, BOX_META)) {
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	lua_createtable(L, 0, 3);
	lua_pushcfunction(L, l_decode);
	lua_setfield(L, -2, "decode");
	lua_pushcfunction(L, l_encode);
	lua_setfield(L, -2, "encode");
	lua_pushlightuserdata(L, null_value());
	lua_setfield(L, -2, "null");
}

/* ---- document versions ------------------------------------------------------------------ */

bool sy_tkey_version(const struct sy_tkey *k, const char *field, char *buf, size_t n)
{
	size_t fl = strlen(field);

	if (!field[0] || n == 0)
		return false;
	if (k->type == SY_KT_HASH) {
		for (size_t i = 0; i + 1 < k->n; i += 2)
			if (k->items[i].n == fl && memcmp(k->items[i].p, field, fl) == 0) {
				size_t m = k->items[i + 1].n < n - 1 ? k->items[i + 1].n : n - 1;

				memcpy(buf, k->items[i + 1].p, m);
				buf[m] = 0;
				return true;
			}
		return false;
	}
	if (k->type == SY_KT_STRING && k->n == 1 && k->items[0].n > 1) {
		struct json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
		struct json_object *o, *v;
		bool ok = false;

		if (!tok)
			return false;
		o = json_tokener_parse_ex(tok, k->items[0].p, (int)k->items[0].n);
		json_tokener_free(tok);
		if (o && json_object_is_type(o, json_type_object) &&
		    json_object_object_get_ex(o, field, &v) && v && !json_object_is_type(v, json_type_null)) {
			const char *s = json_object_is_type(v, json_type_string)
						? json_object_get_string(v)
						: json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);

			snprintf(buf, n, "%s", s);
			ok = true;
		}
		json_object_put(o);
		return ok;
	}
	return false;
}
