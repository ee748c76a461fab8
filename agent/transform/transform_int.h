// SPDX-License-Identifier: Apache-2.0
/* transform_int.h — what the transform's files share (transform.c: the state, the
 * sandbox, the calls; transform_json.c: switchyard.json; transform_marshal.c: typed
 * keys and argv between C and Lua). Not for use outside agent/transform/. */
#ifndef SY_TRANSFORM_INT_H
#define SY_TRANSFORM_INT_H

#include <lauxlib.h>
#include <limits.h>
#include <lua.h>

#include "transform/transform.h"

struct sy_transform {
	lua_State *L;
	char path[PATH_MAX];
	char label[64];
	size_t mem, cap; /* bytes held by the state, and its cap */
	uint64_t budget, count;
	int why; /* the errno of the limit that stopped the last call, 0 */
	int ref[SY_TF_FNS];
	int line[SY_TF_FNS];
	uint64_t log_window_ms;
	uint32_t log_lines;
};

/* Pushes the switchyard.json table (decode, encode, null). */
void sy_tjson_push(lua_State *L);

/* Pushes k as {key=, type=, ttl_ms=, value=}; may raise a Lua error (memory). */
void sy_tkey_push(lua_State *L, const struct sy_tkey *k);
/* Pushes argv as an array of strings. */
void sy_argv_push(lua_State *L, int argc, const char *const *argv, const size_t *lens);
/* Reads the list of keys at idx (an array of key tables) into out. 0 or -EINVAL with
 * err; only called from inside a protected call (may raise). */
int sy_tkeys_read(lua_State *L, int idx, struct sy_tkeys *out, char *err, size_t n);
/* Reads a list of argv (array of arrays of strings) at idx. */
int sy_targvs_read(lua_State *L, int idx, struct sy_targvs *out, char *err, size_t n);

#endif
