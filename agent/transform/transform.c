// SPDX-License-Identifier: Apache-2.0
/* transform.c — see transform.h and docs/transforms.md: the Lua state of one
 * migration's script, its sandbox and limits, and the four calls. */
#include "transform/transform.h"

#include <errno.h>
#include <fcntl.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "transform/transform_int.h"

#define HOOK_EVERY	  1000	    /* VM instructions between two budget checks */
#define SCRIPT_MAX	  (1 << 20) /* bytes of script source */
#define LOG_LINES_PER_SEC 20

static const char *const FN_NAMES[SY_TF_FNS] = {"forward_key", "forward_write", "reverse_key",
						"reverse_write"};

static struct sy_transform *self(lua_State *L)
{
	return *(struct sy_transform **)lua_getextraspace(L);
}

/* ---- limits --------------------------------------------------------------------------- */

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct sy_transform *t = ud;
	size_t old = ptr ? osize : 0;
	void *p;

	if (nsize == 0) {
		t->mem -= old;
		free(ptr);
		return NULL;
	}
	if (nsize > old && t->mem + (nsize - old) > t->cap) {
		t->why = -ENOMEM;
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	t->mem = t->mem - old + nsize;
	return p;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	struct sy_transform *t = self(L);

	(void)ar;
	t->count += HOOK_EVERY;
	if (t->count > t->budget) {
		t->why = -ETIME;
		luaL_error(L, "instruction budget exceeded (%I instructions)", (lua_Integer)t->budget);
	}
}

/* ---- the sandbox ----------------------------------------------------------------------- */

static int l_log(lua_State *L)
{
	struct sy_transform *t = self(L);
	size_t n;
	const char *s = luaL_tolstring(L, 1, &n);
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (now - t->log_window_ms >= 1000) {
		if (t->log_lines > LOG_LINES_PER_SEC)
			sy_warn("transform", "%s: %u script log lines dropped", t->label,
				t->log_lines - LOG_LINES_PER_SEC);
		t->log_window_ms = now;
		t->log_lines = 0;
	}
	if (t->log_lines++ < LOG_LINES_PER_SEC)
		sy_info("transform", "%s: %.*s", t->label, (int)(n > 1000 ? 1000 : n), s);
	return 0;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction f)
{
	luaL_requiref(L, name, f, 1);
	lua_pop(L, 1);
}

static void nil_field(lua_State *L, int tab, const char *name)
{
	tab = lua_absindex(L, tab);
	lua_pushnil(L);
	lua_setfield(L, tab, name);
}

/* Only what a pure function of its input needs: no io, os, package, debug; no way to
 * load code (text or bytecode) or to stop the collector. */
static int open_sandbox(lua_State *L)
{
	static const char *const no_base[] = {"dofile", "loadfile", "load", "collectgarbage", "print"};

	open_lib(L, LUA_GNAME, luaopen_base);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
	lua_pushglobaltable(L);
	for (size_t i = 0; i < sizeof(no_base) / sizeof(no_base[0]); i++)
		nil_field(L, -1, no_base[i]);
	lua_getfield(L, -1, LUA_STRLIBNAME);
	nil_field(L, -1, "dump");
	lua_pop(L, 1);
	lua_createtable(L, 0, 2);
	sy_tjson_push(L);
	lua_setfield(L, -2, "json");
	lua_pushcfunction(L, l_log);
	lua_setfield(L, -2, "log");
	lua_setfield(L, -2, "switchyard");
	lua_pop(L, 1);
	return 0;
}

/* ---- load ------------------------------------------------------------------------------ */

static void set_err(char *err, size_t n, const char *fmt, const char *a, const char *b)
{
	if (err && n)
		snprintf(err, n, fmt, a, b);
}

/* The chunk's name in Lua's messages: short, since Lua cuts long names ("..."), and
 * put back as the whole path in ours. */
#define CHUNK "script"

/* A Lua message as the caller shows it: one line, the script named by its path. */
static void lua_err(struct sy_transform *t, char *err, size_t n)
{
	lua_State *L = t->L;
	const char *m = lua_tostring(L, -1);

	if (err && n) {
		if (m && strncmp(m, CHUNK ":", sizeof(CHUNK)) == 0)
			snprintf(err, n, "%s:%s", t->path, m + sizeof(CHUNK));
		else
			snprintf(err, n, "%s", m ? m : "error object is not a string");
		for (char *p = err; *p; p++)
			if (*p == '\n' || *p == '\t')
				*p = ' ';
	}
	lua_pop(L, 1);
}

static int begin(struct sy_transform *t)
{
	t->count = 0;
	t->why = 0;
	return lua_gettop(t->L);
}

static int failed(struct sy_transform *t, int rc, int top, char *err, size_t n)
{
	int e = t->why ? t->why : rc == LUA_ERRMEM ? -ENOMEM : -EINVAL;

	lua_err(t, err, n);
	lua_settop(t->L, top);
	if (e == -ENOMEM)
		lua_gc(t->L, LUA_GCCOLLECT);
	t->why = 0;
	return e;
}

int sy_transform_load_buf(const char *path, const char *label, const char *src, size_t len,
			  const struct sy_transform_limits *lim, struct sy_transform **out, char *err,
			  size_t errlen)
{
	struct sy_transform *t = calloc(1, sizeof(*t));
	char chunk[PATH_MAX + 1];
	int rc, top;

	if (!t)
		return -ENOMEM;
	snprintf(t->path, sizeof(t->path), "%s", path);
	snprintf(t->label, sizeof(t->label), "%s", label ? label : "");
	t->cap = lim && lim->mem_bytes ? lim->mem_bytes : SY_TRANSFORM_MEM_DEFAULT;
	t->budget = lim && lim->insns ? lim->insns : SY_TRANSFORM_INSNS_DEFAULT;
	for (int i = 0; i < SY_TF_FNS; i++)
		t->ref[i] = LUA_NOREF;
	t->L = lua_newstate(capped_alloc, t);
	if (!t->L) {
		free(t);
		set_err(err, errlen, "%s: %s", path, "cannot create a Lua state");
		return -ENOMEM;
	}
	*(struct sy_transform **)lua_getextraspace(t->L) = t;
	lua_sethook(t->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
	top = begin(t);
	lua_pushcfunction(t->L, open_sandbox);
	rc = lua_pcall(t->L, 0, 0, 0);
	if (rc == LUA_OK) {
		snprintf(chunk, sizeof(chunk), "=%s", CHUNK);
		/* "t": text only, a precompiled chunk is refused */
		rc = luaL_loadbufferx(t->L, src, len, chunk, "t");
		if (rc == LUA_OK)
			rc = lua_pcall(t->L, 0, 0, 0);
	}
	if (rc != LUA_OK) {
		rc = failed(t, rc, top, err, errlen);
		sy_transform_free(t);
		return rc;
	}
	for (int i = 0; i < SY_TF_FNS; i++) {
		lua_Debug ar;
		int ty = lua_getglobal(t->L, FN_NAMES[i]);

		if (ty == LUA_TNIL) {
			lua_pop(t->L, 1);
			continue;
		}
		if (ty != LUA_TFUNCTION) {
			lua_pop(t->L, 1);
			set_err(err, errlen, "%s: %s is not a function", path, FN_NAMES[i]);
			sy_transform_free(t);
			return -EINVAL;
		}
		lua_pushvalue(t->L, -1);
		lua_getinfo(t->L, ">S", &ar);
		t->line[i] = ar.linedefined;
		t->ref[i] = luaL_ref(t->L, LUA_REGISTRYINDEX);
	}
	if (t->ref[SY_TF_FORWARD_KEY] == LUA_NOREF) {
		set_err(err, errlen, "%s:1: %s", path, "the script defines no forward_key(k)");
		sy_transform_free(t);
		return -EINVAL;
	}
	lua_gc(t->L, LUA_GCCOLLECT);
	/* generational: what a call builds (argv tables, decoded documents) dies young,
	 * and minor collections cost less than the incremental collector's full cycles */
	lua_gc(t->L, LUA_GCGEN, 0, 0);
	*out = t;
	return 0;
}

int sy_transform_load(const char *path, const char *label, const struct sy_transform_limits *lim,
		      struct sy_transform **out, char *err, size_t errlen)
{
	struct stat st;
	char *src;
	ssize_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > SCRIPT_MAX) {
		close(fd);
		set_err(err, errlen, "%s: %s", path, "not a regular file of at most 1 MiB");
		return -EINVAL;
	}
	src = malloc((size_t)st.st_size + 1);
	if (!src) {
		close(fd);
		return -ENOMEM;
	}
	while (got < st.st_size) {
		ssize_t r = read(fd, src + got, (size_t)(st.st_size - got));

		if (r <= 0)
			break;
		got += r;
	}
	close(fd);
	rc = sy_transform_load_buf(path, label, src, (size_t)got, lim, out, err, errlen);
	free(src);
	return rc;
}

void sy_transform_free(struct sy_transform *t)
{
	if (!t)
		return;
	if (t->L)
		lua_close(t->L);
	free(t);
}

const char *sy_transform_path(const struct sy_transform *t)
{
	return t->path;
}

bool sy_transform_has(const struct sy_transform *t, enum sy_tfn fn)
{
	return t && fn < SY_TF_FNS && t->ref[fn] != LUA_NOREF;
}

int sy_transform_line(const struct sy_transform *t, enum sy_tfn fn)
{
	return sy_transform_has(t, fn) ? t->line[fn] : 0;
}

size_t sy_transform_mem(const struct sy_transform *t)
{
	return t->mem;
}

/* ---- calls ----------------------------------------------------------------------------- */

struct call {
	struct sy_transform *t;
	int fn;
	const struct sy_tkey *key; /* or argv: */
	int argc;
	const char *const *argv;
	const size_t *lens;
	struct sy_tkeys *keys;
	struct sy_targvs *argvs;
	int rc;
	char *err;
	size_t errlen;
};

/* Runs inside lua_pcall: pushes the argument, calls the script, reads its result. */
static int protected_call(lua_State *L)
{
	struct call *c = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX, c->t->ref[c->fn]);
	if (c->key)
		sy_tkey_push(L, c->key);
	else
		sy_argv_push(L, c->argc, c->argv, c->lens);
	lua_call(L, 1, 1);
	if (c->keys)
		c->rc = sy_tkeys_read(L, -1, c->keys, c->err, c->errlen);
	else if (lua_isnil(L, -1))
		c->rc = 1;
	else
		c->rc = sy_targvs_read(L, -1, c->argvs, c->err, c->errlen);
	return 0;
}

/* The result list of a call: emptied before it runs, freed when it failed. */
static void result_reset(struct call *c, bool free_it)
{
	if (c->keys && free_it)
		sy_tkeys_free(c->keys);
	else if (c->keys)
		memset(c->keys, 0, sizeof(*c->keys));
	if (c->argvs && free_it)
		sy_targvs_free(c->argvs);
	else if (c->argvs)
		memset(c->argvs, 0, sizeof(*c->argvs));
}

/* Calls script function fn with c's argument into c's result list. */
static int run(struct sy_transform *t, enum sy_tfn fn, struct call *c, char *err, size_t errlen)
{
	int top, rc;

	c->t = t;
	c->fn = fn;
	c->err = err;
	c->errlen = errlen;
	result_reset(c, false);
	if (!sy_transform_has(t, c->fn)) {
		set_err(c->err, c->errlen, "%s: %s is not defined", t->path, FN_NAMES[c->fn]);
		return -ENOSYS;
	}
	top = begin(t);
	lua_pushcfunction(t->L, protected_call);
	lua_pushlightuserdata(t->L, c);
	rc = lua_pcall(t->L, 1, 0, 0);
	if (rc != LUA_OK) {
		result_reset(c, true);
		return failed(t, rc, top, c->err, c->errlen);
	}
	lua_settop(t->L, top);
	if (c->rc < 0)
		result_reset(c, true);
	return c->rc;
}

int sy_transform_key(struct sy_transform *t, bool reverse, const struct sy_tkey *in, struct sy_tkeys *out,
		     char *err, size_t errlen)
{
	struct call c = {.key = in, .keys = out};

	return run(t, reverse ? SY_TF_REVERSE_KEY : SY_TF_FORWARD_KEY, &c, err, errlen);
}

int sy_transform_write(struct sy_transform *t, bool reverse, int argc, const char *const *argv,
		       const size_t *lens, struct sy_targvs *out, char *err, size_t errlen)
{
	struct call c = {.argc = argc, .argv = argv, .lens = lens, .argvs = out};

	return run(t, reverse ? SY_TF_REVERSE_WRITE : SY_TF_FORWARD_WRITE, &c, err, errlen);
}
