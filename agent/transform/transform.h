// SPDX-License-Identifier: Apache-2.0
/* transform.h — a migration's Lua 5.4 transform: the script that says how a legacy key
 * becomes target keys (forward_key), how a captured write becomes target writes
 * (forward_write), and the reverse of both for a rollback (docs/transforms.md).
 *
 * Contract: sy_transform_load compiles the script as text only (never bytecode) in a
 * sandbox — base (without dofile, loadfile, load), string (without dump), table, math,
 * utf8, plus `switchyard.json` (json-c) and `switchyard.log`; no io, os, require or
 * debug — and runs its top level once. Errors name the script as "FILE:LINE: what".
 * Every call runs under an instruction budget (lua_sethook) and the state under a
 * memory cap (its own allocator); a call that exceeds either, or raises an error,
 * returns a negative errno (-ETIME, -ENOMEM, -EINVAL) with the message, and the state
 * stays usable for the next call. Nothing here logs: the caller counts and logs. One
 * state per migration; single-threaded like the agent. */
#ifndef SY_TRANSFORM_H
#define SY_TRANSFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SY_TRANSFORM_MEM_DEFAULT   (64u << 20) /* bytes per migration's state */
#define SY_TRANSFORM_INSNS_DEFAULT 10000000u   /* VM instructions per call */
#define SY_TRANSFORM_ERR_MAX	   256

/* The key types a transform sees (Redis's TYPE names). NONE: the key is absent; as an
 * output, "delete this key". */
enum sy_ktype {
	SY_KT_NONE = 0,
	SY_KT_STRING,
	SY_KT_HASH,
	SY_KT_LIST,
	SY_KT_SET,
	SY_KT_ZSET,
	SY_KT_STREAM,
	SY_KT_TYPES,
};

/* "none", "string", … ↔ enum sy_ktype; -1 when unknown. */
const char *sy_ktype_name(int t);
int sy_ktype_parse(const char *s, size_t n);

struct sy_tval {
	const char *p;
	size_t n;
};

/* A typed key. items: string → 1 (the value); hash → field, value pairs; list and set
 * → elements; zset → member, score pairs (score as text); stream → not transformed.
 * ttl_ms < 0: no expiry. */
struct sy_tkey {
	const char *key;
	size_t klen;
	uint8_t type; /* enum sy_ktype */
	long long ttl_ms;
	struct sy_tval *items;
	size_t n;
};

/* Keys a call returned; every byte is owned by the list (sy_tkeys_free). */
struct sy_tkeys {
	struct sy_tkey *v;
	size_t n;
	void *mem; /* the bytes, in one arena */
};

/* Commands a write call returned, each argc strings; owned by the list. */
struct sy_targv {
	int argc;
	const char **argv;
	size_t *lens;
};
struct sy_targvs {
	struct sy_targv *v;
	size_t n;
	void *mem;
};

/* The script's entry points. */
enum sy_tfn {
	SY_TF_FORWARD_KEY = 0,
	SY_TF_FORWARD_WRITE,
	SY_TF_REVERSE_KEY,
	SY_TF_REVERSE_WRITE,
	SY_TF_FNS,
};

struct sy_transform_limits {
	size_t mem_bytes; /* 0: SY_TRANSFORM_MEM_DEFAULT */
	uint64_t insns;	  /* 0: SY_TRANSFORM_INSNS_DEFAULT */
};

struct sy_transform;

/* Reads, compiles and runs the script's top level; `label` names the migration in
 * switchyard.log lines. 0 and *out, or a negative errno with "FILE:LINE: why" (or
 * "FILE: why") in err. A script without forward_key is refused. */
int sy_transform_load(const char *path, const char *label, const struct sy_transform_limits *lim,
		      struct sy_transform **out, char *err, size_t errlen);
/* The same from a buffer; `path` names it in messages. */
int sy_transform_load_buf(const char *path, const char *label, const char *src, size_t len,
			  const struct sy_transform_limits *lim, struct sy_transform **out, char *err,
			  size_t errlen);
void sy_transform_free(struct sy_transform *t);
const char *sy_transform_path(const struct sy_transform *t);
/* Whether the script defines fn. */
bool sy_transform_has(const struct sy_transform *t, enum sy_tfn fn);
/* The line where fn is defined (0 when not). */
int sy_transform_line(const struct sy_transform *t, enum sy_tfn fn);
/* Bytes the state holds now. */
size_t sy_transform_mem(const struct sy_transform *t);

/* forward_key (reverse false) or reverse_key of `in`: 0 and out filled (the caller
 * frees it), or -EINVAL (script error or a malformed result), -ETIME (instruction
 * budget), -ENOMEM (memory cap), -ENOSYS (not defined); err says which key and line. */
int sy_transform_key(struct sy_transform *t, bool reverse, const struct sy_tkey *in, struct sy_tkeys *out,
		     char *err, size_t errlen);
/* forward_write / reverse_write of one captured command: 0 with out filled, 1 when
 * the script returned nil (copy the touched keys through forward_key instead), or a
 * negative errno as above (-ENOSYS: not defined, the caller falls back). */
int sy_transform_write(struct sy_transform *t, bool reverse, int argc, const char *const *argv,
		       const size_t *lens, struct sy_targvs *out, char *err, size_t errlen);

void sy_tkeys_free(struct sy_tkeys *k);
/* A bump arena (NULL = empty): what a result holds is freed at once. */
void *sy_arena_alloc(void **arena, size_t n);
char *sy_arena_dup(void **arena, const char *p, size_t n);
void sy_arena_free(void **arena);
void sy_targvs_free(struct sy_targvs *a);

/* The key as it stands `aged_ms` after it was read: its TTL less that; a key whose TTL
 * has run out meanwhile (or was 0) is absent (type none, no value). No expiry stays. */
void sy_tkey_age(struct sy_tkey *k, uint64_t aged_ms);

/* Version of a document (the value of `field` in a hash, or the attribute of a JSON
 * object in a string) into buf; false when it has none. */
bool sy_tkey_version(const struct sy_tkey *k, const char *field, char *buf, size_t n);

#endif
