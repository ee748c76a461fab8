// SPDX-License-Identifier: Apache-2.0
/* yaml.h — the one YAML reader of the config file (libyaml), shared by the spec reader
 * (spec_yaml.c: `migrations:`) and the exporters (`telemetry:`): the daemon reads and
 * parses the file once and hands the document to both.
 *
 * Before a document is built, the text is streamed through libyaml's event parser,
 * which stops at the first problem: nesting deeper than SY_YAML_MAX_DEPTH (a file of
 * "[[[[…" would otherwise cost seconds, and a SIGHUP reload runs on the one event
 * loop) and a NUL byte inside a scalar ("m\0x": the model's strings are C strings, so
 * it would be cut silently). Files are capped at SY_YAML_MAX_BYTES.
 *
 * Errors are one line: "FILE:LINE: what is wrong", values escaped (core/quote.h). */
#ifndef SY_YAML_H
#define SY_YAML_H

#include <stdarg.h>
#include <stddef.h>
#include <yaml.h>

#define SY_YAML_MAX_DEPTH 32
#define SY_YAML_MAX_BYTES (4u << 20)

struct sy_yaml {
	yaml_document_t doc;
	char *file; /* the name used in messages */
	int loaded;
};

/* Parses text (name stands for FILE in messages). 0, or a negative errno with the
 * message in err. An empty text is a document without a root (sy_yaml_root: NULL). */
int sy_yaml_load_buf(struct sy_yaml *y, const char *name, const char *buf, size_t len, char *err,
		     size_t errlen);
/* Reads (at most SY_YAML_MAX_BYTES) and parses a file. */
int sy_yaml_load_file(struct sy_yaml *y, const char *path, char *err, size_t errlen);
void sy_yaml_free(struct sy_yaml *y);

/* The root node; NULL when the document is empty (nothing, or a bare empty scalar). */
yaml_node_t *sy_yaml_root(struct sy_yaml *y);
yaml_node_t *sy_yaml_node(struct sy_yaml *y, int id);
/* The value under `key` in a mapping, or NULL (also when map is not a mapping). */
yaml_node_t *sy_yaml_get(struct sy_yaml *y, yaml_node_t *map, const char *key);
int sy_yaml_line(const yaml_node_t *n);
/* The text of a scalar, NULL for anything else. */
const char *sy_yaml_scalar(const yaml_node_t *n);
/* "a scalar", "a list", "a mapping", "nothing": for "must be X, not Y" messages. */
const char *sy_yaml_kind(const yaml_node_t *n);
/* A scalar that says nothing: "", "~" or "null" ("telemetry:" with nothing under it). */
int sy_yaml_is_null(const yaml_node_t *n);

/* "FILE:LINE: " + the message into err (n == NULL: line 1). Returns -EINVAL. */
int sy_yaml_fail(const struct sy_yaml *y, const yaml_node_t *n, char *err, size_t errlen, const char *fmt,
		 ...) __attribute__((format(printf, 5, 6)));
/* sy_yaml_fail with its arguments in ap, the message after `prefix` (err may be NULL, errlen 0). */
int sy_yaml_vfail(const struct sy_yaml *y, const yaml_node_t *n, char *err, size_t errlen, const char *prefix,
		  const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* Walks a mapping's pairs; refuses keys that are not scalars, unknown keys and
 * duplicates, with messages prefixed by `prefix` (after FILE:LINE:). `fields` is
 * NULL-terminated; found[i] receives the value node or NULL. */
int sy_yaml_fields(struct sy_yaml *y, yaml_node_t *map, const char *prefix, const char *what,
		   const char *const *fields, yaml_node_t **found, char *err, size_t errlen);

#endif
