// SPDX-License-Identifier: Apache-2.0
/* transform_json.c — switchyard.json for scripts, on json-c: decode(s) → Lua values
 * (objects and arrays as tables, null as switchyard.json.null), encode(v) → text with
 * object keys sorted, so one document always encodes to the same bytes (the audit
 * compares bytes). Depth is bounded both ways; a json-c object under construction is
 * held by a userdata with __gc, so a Lua error (memory cap) cannot leak it. */
#include <json-c/json.h>
#include <math.h>
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

static void push_json(lua_State *L, struct json_object *o, int depth)
{
	luaL_checkstack(L, 4, "json too deep");
	switch (json_object_get_type(o)) {
	case json_type_null:
		lua_pushlightuserdata(L, null_value());
		break;
	case json_type_boolean:
		lua_pushboolean(L, json_object_get_boolean(o));
		break;
	case json_type_int:
		lua_pushinteger(L, (lua_Integer)json_object_get_int64(o));
		break;
	case json_type_double:
		lua_pushnumber(L, json_object_get_double(o));
		break;
	case json_type_string:
		lua_pushlstring(L, json_object_get_string(o), (size_t)json_object_get_string_len(o));
		break;
	case json_type_array: {
		size_t n = json_object_array_length(o);

		lua_createtable(L, (int)n, 0);
		for (size_t i = 0; i < n; i++) {
			push_json(L, json_object_array_get_idx(o, i), depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	}
	case json_type_object:
		lua_createtable(L, 0, json_object_object_length(o));
		json_object_object_foreach(o, k, v)
		{
			lua_pushstring(L, k);
			push_json(L, v, depth + 1);
			lua_rawset(L, -3);
		}
		break;
	}
}

static int l_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	struct json_object **b = box_new(L);
	struct json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
	enum json_tokener_error e;
	size_t end;

	if (!tok)
		return luaL_error(L, "json.decode: out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	if (strspn(s, " \t\r\n") == n) {
		json_tokener_free(tok);
		return luaL_error(L, "json.decode: empty input");
	}
	*b = json_tokener_parse_ex(tok, s, (int)n + 1); /* with its NUL: a bare 7 or null ends */
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (end > n)
		end = n;
	json_tokener_free(tok);
	if (e != json_tokener_success)
		return luaL_error(L, "json.decode: %s",
				  e == json_tokener_continue ? "unexpected end of input"
							     : json_tokener_error_desc(e));
	if (strspn(s + end, " \t\r\n") != n - end)
		return luaL_error(L, "json.decode: trailing bytes at offset %d", (int)end);
	if (!*b)
		lua_pushlightuserdata(L, null_value()); /* the document is null */
	else
		push_json(L, *b, 0);
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
