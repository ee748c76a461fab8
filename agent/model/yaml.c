// SPDX-License-Identifier: Apache-2.0
/* yaml.c — see yaml.h. */
#include "model/yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/quote.h"

static void syntax_error(const char *name, const yaml_parser_t *p, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%zu: YAML: %s%s%s", name, p->problem_mark.line + 1,
		 p->problem ? p->problem : "syntax error", p->context ? " " : "",
		 p->context ? p->context : "");
}

/* The event pass: libyaml's parser stops as soon as the nesting or a scalar is refused,
 * so neither the rest of the text nor a document is ever built for a hostile file. */
static int check_events(const char *name, const char *buf, size_t len, char *err, size_t errlen)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, e = 0, done = 0;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!e && !done) {
		if (!yaml_parser_parse(&p, &ev)) {
			syntax_error(name, &p, err, errlen);
			e = -EINVAL;
			break;
		}
		switch (ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > SY_YAML_MAX_DEPTH) {
				snprintf(err, errlen, "%s:%zu: nesting deeper than %d", name,
					 ev.start_mark.line + 1, SY_YAML_MAX_DEPTH);
				e = -EINVAL;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SCALAR_EVENT:
			if (memchr(ev.data.scalar.value, 0, ev.data.scalar.length)) {
				char q[SY_QUOTE_BUF];

				snprintf(err, errlen, "%s:%zu: \"%s\": a NUL byte in a string", name,
					 ev.start_mark.line + 1,
					 sy_quote_n(q, (const char *)ev.data.scalar.value,
						    ev.data.scalar.length));
				e = -EINVAL;
			}
			break;
		case YAML_DOCUMENT_END_EVENT: /* the loader reads the first document only */
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return e;
}

int sy_yaml_load_buf(struct sy_yaml *y, const char *name, const char *buf, size_t len, char *err,
		     size_t errlen)
{
	yaml_parser_t parser;
	int e;

	memset(y, 0, sizeof(*y));
	err[0] = '\0';
	if (len > SY_YAML_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than %u bytes", name, SY_YAML_MAX_BYTES);
		return -EFBIG;
	}
	if ((e = check_events(name, buf, len, err, errlen)))
		return e;
	y->file = strdup(name);
	if (!y->file || !yaml_parser_initialize(&parser)) {
		free(y->file);
		y->file = NULL;
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &y->doc)) {
		syntax_error(name, &parser, err, errlen);
		yaml_parser_delete(&parser);
		free(y->file);
		y->file = NULL;
		return -EINVAL;
	}
	yaml_parser_delete(&parser);
	y->loaded = 1;
	return 0;
}

int sy_yaml_load_file(struct sy_yaml *y, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	int e;

	memset(y, 0, sizeof(*y));
	if (!f) {
		e = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-e));
		return e;
	}
	buf = malloc(SY_YAML_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	n = fread(buf, 1, SY_YAML_MAX_BYTES + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		e = -EIO;
	} else {
		e = sy_yaml_load_buf(y, path, buf, n, err, errlen);
	}
	fclose(f);
	free(buf);
	return e;
}

void sy_yaml_free(struct sy_yaml *y)
{
	if (y->loaded)
		yaml_document_delete(&y->doc);
	free(y->file);
	memset(y, 0, sizeof(*y));
}

yaml_node_t *sy_yaml_root(struct sy_yaml *y)
{
	yaml_node_t *r = y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;

	if (r && r->type == YAML_SCALAR_NODE && r->data.scalar.length == 0)
		return NULL;
	return r;
}

yaml_node_t *sy_yaml_node(struct sy_yaml *y, int id)
{
	return yaml_document_get_node(&y->doc, id);
}

yaml_node_t *sy_yaml_get(struct sy_yaml *y, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *k = sy_yaml_scalar(sy_yaml_node(y, p->key));

		if (k && strcmp(k, key) == 0)
			return sy_yaml_node(y, p->value);
	}
	return NULL;
}

int sy_yaml_line(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

const char *sy_yaml_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

const char *sy_yaml_kind(const yaml_node_t *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

int sy_yaml_is_null(const yaml_node_t *n)
{
	const char *s = sy_yaml_scalar(n);

	return s && (!*s || strcmp(s, "null") == 0 || strcmp(s, "~") == 0);
}

int sy_yaml_vfail(const struct sy_yaml *y, const yaml_node_t *n, char *err, size_t errlen, const char *prefix,
		  const char *fmt, va_list ap)
{
	int k = snprintf(err, errlen, "%s:%d: %s", y->file ? y->file : "?", n ? sy_yaml_line(n) : 1, prefix);

	if (k >= 0 && (size_t)k < errlen)
		vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
	return -EINVAL;
}

int sy_yaml_fail(const struct sy_yaml *y, const yaml_node_t *n, char *err, size_t errlen, const char *fmt,
		 ...)
{
	va_list ap;

	va_start(ap, fmt);
	sy_yaml_vfail(y, n, err, errlen, "", fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int sy_yaml_fields(struct sy_yaml *y, yaml_node_t *map, const char *prefix, const char *what,
		   const char *const *fields, yaml_node_t **found, char *err, size_t errlen)
{
	char expected[256] = "", q[SY_QUOTE_BUF];
	size_t nf = 0;

	for (; fields[nf]; nf++) {
		found[nf] = NULL;
		snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), "%s%s",
			 nf ? ", " : "", fields[nf]);
	}
	if (map->type != YAML_MAPPING_NODE)
		return sy_yaml_fail(y, map, err, errlen, "%s%s must be a mapping, not %s", prefix, what,
				    sy_yaml_kind(map));
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = sy_yaml_node(y, p->key);
		const char *key = sy_yaml_scalar(k);
		size_t i;

		if (!key)
			return sy_yaml_fail(y, k, err, errlen, "%s%s: keys must be plain words", prefix,
					    what);
		for (i = 0; i < nf && strcmp(fields[i], key) != 0; i++)
			;
		if (i == nf)
			return sy_yaml_fail(y, k, err, errlen, "%sunknown field \"%s\" (expected one of: %s)",
					    prefix, sy_quote(q, key), expected);
		if (found[i])
			return sy_yaml_fail(y, k, err, errlen, "%sfield \"%s\" is given twice", prefix,
					    sy_quote(q, key));
		found[i] = sy_yaml_node(y, p->value);
	}
	return 0;
}
