/* spec.c — see spec.h. The YAML is read with libyaml's document API (nodes carry
 * their line), turned into struct sy_spec, then checked by the one validator that the
 * Control API uses too. Every error is one line naming where and what. */
#include "model/spec.h"

#include <errno.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <yaml.h>

#include "core/duration.h"
#include "model/endpoint.h"

#define SY_SPEC_MAX_BYTES (4u << 20)
#define SY_SPEC_MAX_PINS  4096

void sy_spec_err_set(struct sy_spec_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* ---- mirror ---------------------------------------------------------------------- */

static const char *const mirror_names[] = {"off", "forward", "reverse", "both", "auto"};

int sy_mirror_parse(const char *s, uint8_t *out)
{
	for (uint8_t i = 0; i < 5; i++)
		if (s && strcmp(s, mirror_names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

static const char *const gate_names[SY_GATES] = {"drift_rate", "error_rate", "error_ratio", "p99_ratio"};

const char *sy_gate_name(int g)
{
	return g >= 0 && g < SY_GATES ? gate_names[g] : "?";
}

const char *sy_mirror_name(uint8_t m)
{
	return m < 5 ? mirror_names[m] : NULL;
}

uint8_t sy_mirror_effective(const struct sy_migration_spec *m)
{
	if (m->mirror != SY_MIRROR_AUTO)
		return m->mirror;
	if (m->mirror_hint)
		return m->mirror_hint > 0 ? SY_MIRROR_BOTH : SY_MIRROR_OFF;
	if (m->ratio_bp > 0)
		return SY_MIRROR_BOTH;
	for (size_t i = 0; i < m->n_pins; i++)
		if (m->pins[i].side == SY_SIDE_TARGET)
			return SY_MIRROR_BOTH;
	return SY_MIRROR_OFF;
}

/* ---- key rewrite ----------------------------------------------------------------- */

size_t sy_key_map(const struct sy_migration_spec *s, int from, const char *k, size_t len, char *buf,
		  size_t cap, const char **out)
{
	*out = k;
	for (uint32_t i = 0; i < s->n_rewrite; i++) {
		const char *a = from == SY_SIDE_LEGACY ? s->rewrite[i].from : s->rewrite[i].to;
		const char *b = from == SY_SIDE_LEGACY ? s->rewrite[i].to : s->rewrite[i].from;
		size_t al = strlen(a), bl = strlen(b);

		if (len >= al && memcmp(k, a, al) == 0 && bl + len - al <= cap) {
			memcpy(buf, b, bl);
			memcpy(buf + bl, k + al, len - al);
			*out = buf;
			return bl + len - al;
		}
	}
	return len;
}

/* ---- ratio ----------------------------------------------------------------------- */

int sy_ratio_parse(const char *s, uint32_t *bp)
{
	size_t n = strlen(s);
	uint64_t whole = 0, frac = 0;
	int fdigits = 0;
	const char *p = s;

	if (n == 0)
		return -EINVAL;
	if (n > 2 && strcmp(s + n - 2, "bp") == 0) {
		if (n - 2 > 6)
			return -ERANGE;
		for (size_t i = 0; i < n - 2; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
			whole = whole * 10 + (uint64_t)(s[i] - '0');
		}
		if (whole > SY_RATIO_MAX)
			return -ERANGE;
		*bp = (uint32_t)whole;
		return 0;
	}
	if (strcmp(s, "0") == 0) {
		*bp = 0;
		return 0;
	}
	if (s[n - 1] != '%')
		return -EINVAL;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		whole = whole * 10 + (uint64_t)(*p++ - '0');
		if (whole > 1000)
			return -ERANGE;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (++fdigits > 2)
				return -EINVAL; /* 1 bp = 0.01 %: finer is not representable */
			frac = frac * 10 + (uint64_t)(*p++ - '0');
		}
		if (fdigits == 1)
			frac *= 10;
	}
	if (*p != '%' || p[1] != '\0')
		return -EINVAL;
	whole = whole * 100 + frac;
	if (whole > SY_RATIO_MAX)
		return -ERANGE;
	*bp = (uint32_t)whole;
	return 0;
}

/* ---- copies ---------------------------------------------------------------------- */

void sy_migration_spec_free(struct sy_migration_spec *m)
{
	free(m->pins);
	m->pins = NULL;
	m->n_pins = 0;
}

int sy_migration_spec_copy(struct sy_migration_spec *dst, const struct sy_migration_spec *src)
{
	*dst = *src;
	dst->pins = NULL;
	if (src->n_pins) {
		dst->pins = malloc(src->n_pins * sizeof(*dst->pins));
		if (!dst->pins) {
			dst->n_pins = 0;
			return -ENOMEM;
		}
		memcpy(dst->pins, src->pins, src->n_pins * sizeof(*dst->pins));
	}
	return 0;
}

void sy_spec_free(struct sy_spec *s)
{
	for (size_t i = 0; i < s->n; i++)
		sy_migration_spec_free(&s->migs[i]);
	free(s->migs);
	s->migs = NULL;
	s->n = 0;
}

/* ---- the validator --------------------------------------------------------------- */

static int name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= SY_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return 0;
	}
	return 1;
}

int sy_spec_name_ok(const char *s)
{
	return name_ok(s);
}

/* Checks one migration alone. On error, *line is the most precise source line known
 * and err->msg starts with the field path ("legacy[1]: …"). */
static int check_plan(const struct sy_plan_spec *p, struct sy_spec_err *err)
{
	if (p->n_steps > SY_PLAN_MAX_STEPS) {
		sy_spec_err_set(err, "plan.steps: at most %d", SY_PLAN_MAX_STEPS);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < p->n_steps; i++) {
		if (p->steps_bp[i] == 0 || p->steps_bp[i] > SY_RATIO_MAX ||
		    (i && p->steps_bp[i] <= p->steps_bp[i - 1])) {
			sy_spec_err_set(
				err, "plan.steps[%u]: %u bp; steps must rise strictly within 0.01%%..100%%",
				i, p->steps_bp[i]);
			return -EINVAL;
		}
		if (p->bake_ms[i] > 7 * 86400 * 1000u) {
			sy_spec_err_set(err, "plan.bake[%u]: longer than a week", i);
			return -EINVAL;
		}
	}
	if (p->steps_bp[p->n_steps - 1] != SY_RATIO_MAX) {
		sy_spec_err_set(err, "plan.steps: the last step must be 100%%, not %u bp",
				p->steps_bp[p->n_steps - 1]);
		return -EINVAL;
	}
	if (p->interval_ms < 100 || p->interval_ms > 3600000) {
		sy_spec_err_set(err, "plan.interval: %u ms is out of range 100ms..1h", p->interval_ms);
		return -EINVAL;
	}
	if (p->window_ms < p->interval_ms || p->window_ms > 3600000) {
		sy_spec_err_set(err,
				"plan.window: %u ms must be at least the interval (%u ms) and at most 1h",
				p->window_ms, p->interval_ms);
		return -EINVAL;
	}
	if (p->shadow_ms > 7 * 86400 * 1000u) {
		sy_spec_err_set(err, "plan.shadow: longer than a week");
		return -EINVAL;
	}
	for (int g = 0; g < SY_GATES; g++) {
		const struct sy_gate_spec *gs = &p->gates[g];

		if (!gs->enabled)
			continue;
		if (!(gs->max >= 0) || gs->max > 1e9 || (g == SY_GATE_ERROR_RATE && gs->max > 1)) {
			sy_spec_err_set(err, "plan.gates.%s: %g is out of range (%s)", gate_names[g], gs->max,
					g == SY_GATE_ERROR_RATE ? "0..100%" : "0 or more");
			return -EINVAL;
		}
		if (gs->on_breach > SY_BREACH_PAUSE) {
			sy_spec_err_set(err, "plan.gates.%s.on_breach: must be rollback or pause",
					gate_names[g]);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_one(const struct sy_migration_spec *m, struct sy_spec_err *err, int *line)
{
	char a[SY_EP_STRLEN];
	int e;

	*line = m->line;
	if (!name_ok(m->name)) {
		sy_spec_err_set(
			err,
			"name: \"%s\" must be 1-%d characters of a-z, 0-9, '.', '_', '-', starting with a "
			"letter or digit",
			m->name, SY_NAME_MAX - 1);
		return -EINVAL;
	}
	if (m->n_legacy == 0 || m->n_legacy > SY_MAX_ENDPOINTS) {
		sy_spec_err_set(err, "legacy: needs 1 to %d endpoints, has %u", SY_MAX_ENDPOINTS,
				m->n_legacy);
		return -EINVAL;
	}
	if (m->n_target == 0 || m->n_target > SY_MAX_ENDPOINTS) {
		sy_spec_err_set(err, "target: needs 1 to %d endpoints, has %u", SY_MAX_ENDPOINTS,
				m->n_target);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_legacy; i++) {
		for (uint32_t j = 0; j < i; j++)
			if (sy_endpoint_equal(&m->legacy[i], &m->legacy[j])) {
				sy_endpoint_format(&m->legacy[i], a, sizeof(a));
				sy_spec_err_set(err, "legacy[%u]: %s is listed twice", i, a);
				return -EINVAL;
			}
		for (uint32_t j = 0; j < m->n_target; j++)
			if (sy_endpoint_equal(&m->legacy[i], &m->target[j])) {
				sy_endpoint_format(&m->legacy[i], a, sizeof(a));
				sy_spec_err_set(err, "target[%u]: %s is also a legacy endpoint", j, a);
				return -EINVAL;
			}
	}
	for (uint32_t i = 0; i < m->n_target; i++)
		for (uint32_t j = 0; j < i; j++)
			if (sy_endpoint_equal(&m->target[i], &m->target[j])) {
				sy_endpoint_format(&m->target[i], a, sizeof(a));
				sy_spec_err_set(err, "target[%u]: %s is listed twice", i, a);
				return -EINVAL;
			}
	if (m->client_mode > SY_CLIENT_CONNECTION) {
		sy_spec_err_set(err, "client: must be cgroup or connection");
		return -EINVAL;
	}
	if (m->ratio_bp > SY_RATIO_MAX) {
		sy_spec_err_set(err, "ratio_bp: %u is out of range 0..%u", m->ratio_bp, SY_RATIO_MAX);
		return -EINVAL;
	}
	if (m->n_prefixes > SY_SPEC_MAX_PREFIXES) {
		sy_spec_err_set(err, "prefixes: at most %d", SY_SPEC_MAX_PREFIXES);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_prefixes; i++) {
		size_t len = strnlen(m->prefixes[i], sizeof(m->prefixes[i]));

		if (len == 0 || len > SY_PREFIX_MAX) {
			sy_spec_err_set(err, "prefixes[%u]: must be 1 to %d bytes", i, SY_PREFIX_MAX);
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(m->prefixes[i], m->prefixes[j]) == 0) {
				sy_spec_err_set(err, "prefixes[%u]: \"%s\" is listed twice", i,
						m->prefixes[i]);
				return -EINVAL;
			}
	}
	if (m->sample_reads > SY_SAMPLE_MAX) {
		sy_spec_err_set(err, "sample_reads: %u is out of range 0..%u", m->sample_reads,
				SY_SAMPLE_MAX);
		return -EINVAL;
	}
	if (m->mirror > SY_MIRROR_AUTO) {
		sy_spec_err_set(err, "mirror: must be auto, off, forward, reverse or both");
		return -EINVAL;
	}
	if (m->capture_bytes && (m->capture_bytes < SY_CAPTURE_MIN || m->capture_bytes > SY_CAPTURE_MAX)) {
		sy_spec_err_set(err, "capture_bytes: %u is out of range %u..%u", m->capture_bytes,
				SY_CAPTURE_MIN, SY_CAPTURE_MAX);
		return -EINVAL;
	}
	if (m->n_rewrite > SY_SPEC_MAX_REWRITES) {
		sy_spec_err_set(err, "rewrite: at most %d prefixes", SY_SPEC_MAX_REWRITES);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_rewrite; i++) {
		const struct sy_rewrite_spec *w = &m->rewrite[i];
		size_t fl = strnlen(w->from, sizeof(w->from)), tl = strnlen(w->to, sizeof(w->to));

		if (fl == 0 || fl > SY_PREFIX_MAX || tl == 0 || tl > SY_PREFIX_MAX) {
			sy_spec_err_set(err, "rewrite[%u]: prefixes must be 1 to %d bytes", i, SY_PREFIX_MAX);
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			const struct sy_rewrite_spec *o = &m->rewrite[j];

			/* one key must map one way, both ways: no prefix of another */
			if (strncmp(w->from, o->from, fl < strlen(o->from) ? fl : strlen(o->from)) == 0 ||
			    strncmp(w->to, o->to, tl < strlen(o->to) ? tl : strlen(o->to)) == 0) {
				sy_spec_err_set(err,
						"rewrite[%u]: \"%s\" -> \"%s\" overlaps \"%s\" -> \"%s\"", i,
						w->from, w->to, o->from, o->to);
				return -EINVAL;
			}
		}
	}
	if (m->audit_every > 86400 * 7) {
		sy_spec_err_set(err, "audit_every: %u is over a week (604800 s)", m->audit_every);
		return -EINVAL;
	}
	if (m->plan.n_steps && (e = check_plan(&m->plan, err)))
		return e;
	if (m->mirror_queue > SY_MIRROR_QUEUE_MAX) {
		sy_spec_err_set(err, "mirror_queue: %u is out of range 1..%u", m->mirror_queue,
				SY_MIRROR_QUEUE_MAX);
		return -EINVAL;
	}
	if (m->n_pins > SY_SPEC_MAX_PINS) {
		sy_spec_err_set(err, "pins: at most %d", SY_SPEC_MAX_PINS);
		return -EINVAL;
	}
	for (size_t i = 0; i < m->n_pins; i++) {
		const struct sy_pin_spec *p = &m->pins[i];
		struct stat st;
		struct statfs fs;

		if (p->line)
			*line = p->line;
		if (p->side > SY_SIDE_TARGET) {
			sy_spec_err_set(err, "pins[%zu].side: must be legacy or target", i);
			return -EINVAL;
		}
		if (p->cgroup[0] != '/') {
			sy_spec_err_set(err, "pins[%zu].cgroup: \"%s\" must be an absolute path", i,
					p->cgroup);
			return -EINVAL;
		}
		if (stat(p->cgroup, &st) < 0) {
			sy_spec_err_set(err, "pins[%zu].cgroup: %s: %s", i, p->cgroup, strerror(errno));
			return -EINVAL;
		}
		if (!S_ISDIR(st.st_mode) || statfs(p->cgroup, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
			sy_spec_err_set(err, "pins[%zu].cgroup: %s is not a cgroup v2 directory", i,
					p->cgroup);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->pins[j].cgroup, p->cgroup) == 0) {
				sy_spec_err_set(err, "pins[%zu].cgroup: %s is pinned twice", i, p->cgroup);
				return -EINVAL;
			}
	}
	*line = m->line;
	return 0;
}

int sy_migration_spec_validate(const struct sy_migration_spec *m, struct sy_spec_err *err)
{
	int line;

	return check_one(m, err, &line);
}

/* Cross-migration rules: a legacy endpoint belongs to one migration, and no endpoint is
 * one migration's legacy and another's target (steering would chain). */
static int check_against(const struct sy_migration_spec *m, const struct sy_migration_spec *o,
			 struct sy_spec_err *err)
{
	char a[SY_EP_STRLEN], where[64] = "";

	if (o->line)
		snprintf(where, sizeof(where), " (line %d)", o->line);
	if (strcmp(m->name, o->name) == 0) {
		sy_spec_err_set(err, "name: migration \"%s\" is defined twice%s", m->name, where);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_legacy; i++) {
		sy_endpoint_format(&m->legacy[i], a, sizeof(a));
		for (uint32_t j = 0; j < o->n_legacy; j++)
			if (sy_endpoint_equal(&m->legacy[i], &o->legacy[j])) {
				sy_spec_err_set(
					err,
					"legacy[%u]: legacy endpoint %s is already in migration \"%s\"%s", i,
					a, o->name, where);
				return -EINVAL;
			}
		for (uint32_t j = 0; j < o->n_target; j++)
			if (sy_endpoint_equal(&m->legacy[i], &o->target[j])) {
				sy_spec_err_set(err, "legacy[%u]: %s is a target of migration \"%s\"%s", i, a,
						o->name, where);
				return -EINVAL;
			}
	}
	for (uint32_t i = 0; i < m->n_target; i++)
		for (uint32_t j = 0; j < o->n_legacy; j++)
			if (sy_endpoint_equal(&m->target[i], &o->legacy[j])) {
				sy_endpoint_format(&m->target[i], a, sizeof(a));
				sy_spec_err_set(err,
						"target[%u]: %s is a legacy endpoint of migration \"%s\"%s",
						i, a, o->name, where);
				return -EINVAL;
			}
	return 0;
}

int sy_spec_validate_against(const struct sy_migration_spec *m, const struct sy_migration_spec *others,
			     size_t n_others, struct sy_spec_err *err)
{
	int e, line;

	if ((e = check_one(m, err, &line)))
		return e;
	for (size_t i = 0; i < n_others; i++)
		if ((e = check_against(m, &others[i], err)))
			return e;
	return 0;
}

int sy_spec_validate(const struct sy_spec *s, const char *file, struct sy_spec_err *err)
{
	char msg[sizeof(err->msg)];
	int e, line;

	for (size_t i = 0; i < s->n; i++) {
		e = check_one(&s->migs[i], err, &line);
		for (size_t j = 0; !e && j < i; j++) {
			e = check_against(&s->migs[i], &s->migs[j], err);
			line = s->migs[i].line;
		}
		if (!e)
			continue;
		snprintf(msg, sizeof(msg), "%s", err->msg);
		if (file)
			sy_spec_err_set(err, "%s:%d: %s", file, line, msg);
		else
			sy_spec_err_set(err, "migrations[%zu].%s", i, msg);
		return e;
	}
	return 0;
}

/* ---- YAML ------------------------------------------------------------------------ */

struct yctx {
	yaml_document_t doc;
	const char *file;
	struct sy_spec_err *err;
};

static int yline(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static int yfail(struct yctx *c, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int yfail(struct yctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sy_spec_err_set(c->err, "%s:%d: %s", c->file, n ? yline(n) : 1, msg);
	return -EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *kind(const yaml_node_t *n)
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

/* Walks a mapping's pairs; refuses keys that are not scalars, unknown keys and
 * duplicates. `fields` is NULL-terminated; found[i] receives the value node. */
static int map_fields(struct yctx *c, yaml_node_t *map, const char *what, const char *const *fields,
		      yaml_node_t **found)
{
	char expected[256] = "";
	size_t nf = 0;

	for (; fields[nf]; nf++) {
		found[nf] = NULL;
		snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), "%s%s",
			 nf ? ", " : "", fields[nf]);
	}
	if (map->type != YAML_MAPPING_NODE)
		return yfail(c, map, "%s must be a mapping, not %s", what, kind(map));
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&c->doc, p->value);
		const char *key = scalar(k);
		size_t i;

		if (!key)
			return yfail(c, k, "%s: keys must be plain words", what);
		for (i = 0; i < nf && strcmp(fields[i], key) != 0; i++)
			;
		if (i == nf)
			return yfail(c, k, "unknown field \"%s\" (expected one of: %s)", key, expected);
		if (found[i])
			return yfail(c, k, "field \"%s\" is given twice", key);
		found[i] = v;
	}
	return 0;
}

static int endpoints(struct yctx *c, yaml_node_t *n, const char *field, struct sy_endpoint *out,
		     uint32_t *count)
{
	uint32_t k = 0;

	if (n->type != YAML_SEQUENCE_NODE)
		return yfail(c, n, "%s: must be a list of \"ip:port\", not %s", field, kind(n));
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(&c->doc, *it);
		const char *s = scalar(e);
		char why[200];

		if (!s)
			return yfail(c, e, "%s[%u]: must be \"ip:port\", not %s", field, k, kind(e));
		if (k == SY_MAX_ENDPOINTS)
			return yfail(c, e, "%s: at most %d endpoints", field, SY_MAX_ENDPOINTS);
		if (sy_endpoint_parse(s, &out[k], why, sizeof(why)))
			return yfail(c, e, "%s[%u]: %s", field, k, why);
		k++;
	}
	*count = k;
	return 0;
}

static int pins(struct yctx *c, yaml_node_t *n, struct sy_migration_spec *m)
{
	static const char *const fields[] = {"cgroup", "side", NULL};
	size_t count;

	if (n->type != YAML_SEQUENCE_NODE)
		return yfail(c, n, "pins: must be a list of {cgroup: PATH, side: legacy|target}, not %s",
			     kind(n));
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > SY_SPEC_MAX_PINS)
		return yfail(c, n, "pins: at most %d", SY_SPEC_MAX_PINS);
	m->pins = calloc(count ? count : 1, sizeof(*m->pins));
	if (!m->pins)
		return -ENOMEM;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *p = yaml_document_get_node(&c->doc, *it);
		struct sy_pin_spec *ps = &m->pins[m->n_pins];
		yaml_node_t *f[2];
		char what[32];
		const char *cg, *side;
		int e;

		snprintf(what, sizeof(what), "pins[%zu]", m->n_pins);
		if ((e = map_fields(c, p, what, fields, f)))
			return e;
		cg = scalar(f[0]);
		side = scalar(f[1]);
		if (!cg)
			return yfail(c, f[0] ? f[0] : p, "%s.cgroup: required, a cgroup v2 path", what);
		if (!side)
			return yfail(c, f[1] ? f[1] : p, "%s.side: required, legacy or target", what);
		if (strlen(cg) >= sizeof(ps->cgroup))
			return yfail(c, f[0], "%s.cgroup: path too long", what);
		strcpy(ps->cgroup, cg);
		if (strcmp(side, "legacy") == 0)
			ps->side = SY_SIDE_LEGACY;
		else if (strcmp(side, "target") == 0)
			ps->side = SY_SIDE_TARGET;
		else
			return yfail(c, f[1], "%s.side: \"%s\" is not legacy or target", what, side);
		ps->line = yline(p);
		m->n_pins++;
	}
	return 0;
}

static int prefixes(struct yctx *c, yaml_node_t *n, struct sy_migration_spec *m)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE)
		return yfail(c, n, "prefixes: must be a list of key prefixes (\"user:\"), not %s", kind(n));
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *p = yaml_document_get_node(&c->doc, *it);
		const char *s = scalar(p);
		size_t i = m->n_prefixes;

		if (i >= SY_SPEC_MAX_PREFIXES)
			return yfail(c, p, "prefixes: at most %d", SY_SPEC_MAX_PREFIXES);
		if (!s || !s[0] || strlen(s) > SY_PREFIX_MAX)
			return yfail(c, p, "prefixes[%zu]: must be a string of 1 to %d bytes", i,
				     SY_PREFIX_MAX);
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->prefixes[j], s) == 0)
				return yfail(c, p, "prefixes[%zu]: \"%s\" is listed twice", i, s);
		strcpy(m->prefixes[i], s);
		m->n_prefixes++;
	}
	return 0;
}

static int rewrites(struct yctx *c, yaml_node_t *n, struct sy_migration_spec *m)
{
	yaml_node_pair_t *p;

	if (n->type != YAML_MAPPING_NODE)
		return yfail(c, n,
			     "rewrite: must be a mapping of key prefixes ({\"user:\": \"u2:\"}), not %s",
			     kind(n));
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->doc, p->key),
			    *v = yaml_document_get_node(&c->doc, p->value);
		const char *from = scalar(k), *to = scalar(v);
		struct sy_rewrite_spec *w;

		if (m->n_rewrite >= SY_SPEC_MAX_REWRITES)
			return yfail(c, k, "rewrite: at most %d prefixes", SY_SPEC_MAX_REWRITES);
		if (!from || !from[0] || strlen(from) > SY_PREFIX_MAX || !to || !to[0] ||
		    strlen(to) > SY_PREFIX_MAX)
			return yfail(c, k, "rewrite: prefixes must be strings of 1 to %d bytes",
				     SY_PREFIX_MAX);
		w = &m->rewrite[m->n_rewrite++];
		strcpy(w->from, from);
		strcpy(w->to, to);
	}
	return 0;
}

static int uint_field(struct yctx *c, yaml_node_t *n, const char *field, uint32_t min, uint32_t max,
		      uint32_t *out)
{
	const char *s = scalar(n);
	char *end;
	unsigned long v;

	errno = 0;
	v = s && s[0] >= '0' && s[0] <= '9' ? strtoul(s, &end, 10) : 0;
	if (!s || s[0] < '0' || s[0] > '9' || *end || errno || v < min || v > max)
		return yfail(c, n, "%s: \"%s\" must be a whole number in %u..%u", field, s ? s : kind(n), min,
			     max);
	*out = (uint32_t)v;
	return 0;
}

/* "250ms", "2s", "5m", "1h", or "0": a unit is required, a bare number is too easy to
 * misread in a plan. */
static int dur_field(struct yctx *c, yaml_node_t *n, const char *field, uint32_t max_ms, uint32_t *out)
{
	const char *s = scalar(n);
	uint64_t v;
	int e;

	if (!s || !*s)
		return yfail(c, n, "%s: must be a duration (250ms, 2s, 5m, 1h), not %s", field, kind(n));
	e = sy_duration_ms(s, &v);
	if (e == -EINVAL)
		return yfail(c, n, "%s: \"%s\" is not a duration (250ms, 2s, 5m, 1h)", field, s);
	if (v && s[strlen(s) - 1] >= '0' && s[strlen(s) - 1] <= '9')
		return yfail(c, n, "%s: \"%s\" needs a unit: ms, s, m or h", field, s);
	if (e || v > max_ms)
		return yfail(c, n, "%s: \"%s\" is over the limit of %u ms", field, s, max_ms);
	*out = (uint32_t)v;
	return 0;
}

static int bool_field(struct yctx *c, yaml_node_t *n, const char *field, bool *out)
{
	const char *s = scalar(n);

	if (s && strcmp(s, "true") == 0)
		*out = true;
	else if (s && strcmp(s, "false") == 0)
		*out = false;
	else
		return yfail(c, n, "%s: \"%s\" is not true or false", field, s ? s : kind(n));
	return 0;
}

static int breach_field(struct yctx *c, yaml_node_t *n, const char *field, uint8_t *out)
{
	const char *s = scalar(n);

	if (s && strcmp(s, "rollback") == 0)
		*out = SY_BREACH_ROLLBACK;
	else if (s && strcmp(s, "pause") == 0)
		*out = SY_BREACH_PAUSE;
	else
		return yfail(c, n, "%s: \"%s\" is not rollback or pause", field, s ? s : kind(n));
	return 0;
}

/* A gate's maximum: a number, or a percentage ("1%" = 0.01). */
static int gate_max(struct yctx *c, yaml_node_t *n, const char *field, double *out)
{
	const char *s = scalar(n);
	char *end;
	double v;

	errno = 0;
	v = s ? strtod(s, &end) : 0;
	if (!s || end == s || errno || s[0] == '-' || (*end && strcmp(end, "%") != 0) || !(v >= 0) || v > 1e9)
		return yfail(c, n, "%s: \"%s\" is not a number of 0 or more (or a percentage: 1%%)", field,
			     s ? s : kind(n));
	*out = *end == '%' ? v / 100 : v;
	return 0;
}

/* breach: the plan's on_breach, for gates that do not give their own. */
static int plan_gates(struct yctx *c, yaml_node_t *n, struct sy_plan_spec *p, uint8_t breach)
{
	static const char *const gfields[] = {"max", "on_breach", NULL};
	const char *fields[SY_GATES + 1];
	yaml_node_t *g[SY_GATES];
	char what[64];
	int e;

	for (int i = 0; i < SY_GATES; i++)
		fields[i] = gate_names[i];
	fields[SY_GATES] = NULL;
	if ((e = map_fields(c, n, "plan.gates", fields, g)))
		return e;
	for (int i = 0; i < SY_GATES; i++) {
		struct sy_gate_spec *gs = &p->gates[i];

		if (!g[i])
			continue;
		snprintf(what, sizeof(what), "plan.gates.%s", gate_names[i]);
		gs->enabled = true;
		gs->on_breach = breach;
		if (g[i]->type == YAML_MAPPING_NODE) {
			yaml_node_t *f[2];

			if ((e = map_fields(c, g[i], what, gfields, f)))
				return e;
			if (!f[0])
				return yfail(c, g[i], "%s.max: required", what);
			if ((e = gate_max(c, f[0], what, &gs->max)))
				return e;
			if (f[1] && (e = breach_field(c, f[1], "on_breach", &gs->on_breach)))
				return e;
		} else if ((e = gate_max(c, g[i], what, &gs->max))) {
			return e;
		}
	}
	return 0;
}

static int plan(struct yctx *c, yaml_node_t *n, struct sy_plan_spec *p)
{
	static const char *const fields[] = {"steps",	    "bake",	 "advance",  "interval", "window",
					     "min_samples", "min_p99",	 "backfill", "shadow",	 "verify",
					     "drain",	    "on_breach", "gates",    NULL};
	enum {
		F_STEPS,
		F_BAKE,
		F_ADV,
		F_INT,
		F_WIN,
		F_MINS,
		F_MINP,
		F_BF,
		F_SH,
		F_VER,
		F_DRAIN,
		F_BREACH,
		F_GATES
	};
	yaml_node_t *f[13];
	uint8_t breach = SY_BREACH_ROLLBACK;
	uint32_t bake = SY_PLAN_BAKE_DEFAULT;
	const char *s;
	int e;

	memset(p, 0, sizeof(*p));
	p->interval_ms = SY_PLAN_INTERVAL_DEFAULT;
	p->window_ms = SY_PLAN_WINDOW_DEFAULT;
	p->min_samples = 100;
	p->min_p99_us = SY_PLAN_MIN_P99_DEFAULT;
	if ((e = map_fields(c, n, "plan", fields, f)))
		return e;
	if (!f[F_STEPS] || f[F_STEPS]->type != YAML_SEQUENCE_NODE)
		return yfail(c, f[F_STEPS] ? f[F_STEPS] : n,
			     "plan.steps: required, a list of ratios ([1%%, 25%%, 100%%])");
	for (yaml_node_item_t *it = f[F_STEPS]->data.sequence.items.start;
	     it < f[F_STEPS]->data.sequence.items.top; it++) {
		yaml_node_t *v = yaml_document_get_node(&c->doc, *it);

		if (p->n_steps == SY_PLAN_MAX_STEPS)
			return yfail(c, v, "plan.steps: at most %d", SY_PLAN_MAX_STEPS);
		s = scalar(v);
		if (!s || sy_ratio_parse(s, &p->steps_bp[p->n_steps]))
			return yfail(c, v, "plan.steps[%u]: \"%s\" is not a ratio (25%%, 12.5%%, 2500bp)",
				     p->n_steps, s ? s : kind(v));
		p->n_steps++;
	}
	if (!p->n_steps)
		return yfail(c, f[F_STEPS], "plan.steps: at least one step");
	if (f[F_BAKE] && f[F_BAKE]->type == YAML_SEQUENCE_NODE) {
		uint32_t k = 0;

		for (yaml_node_item_t *it = f[F_BAKE]->data.sequence.items.start;
		     it < f[F_BAKE]->data.sequence.items.top; it++, k++) {
			if (k == p->n_steps)
				return yfail(c, f[F_BAKE], "plan.bake: %u bake times for %u steps", k + 1,
					     p->n_steps);
			if ((e = dur_field(c, yaml_document_get_node(&c->doc, *it), "plan.bake",
					   7 * 86400000u, &p->bake_ms[k])))
				return e;
		}
		if (k != p->n_steps)
			return yfail(c, f[F_BAKE], "plan.bake: %u bake times for %u steps", k, p->n_steps);
	} else {
		if (f[F_BAKE] && (e = dur_field(c, f[F_BAKE], "plan.bake", 7 * 86400000u, &bake)))
			return e;
		for (uint32_t i = 0; i < p->n_steps; i++)
			p->bake_ms[i] = bake;
	}
	if (f[F_ADV]) {
		s = scalar(f[F_ADV]);
		if (s && strcmp(s, "auto") == 0)
			p->manual = false;
		else if (s && strcmp(s, "manual") == 0)
			p->manual = true;
		else
			return yfail(c, f[F_ADV], "plan.advance: \"%s\" is not auto or manual",
				     s ? s : kind(f[F_ADV]));
	}
	if ((f[F_INT] && (e = dur_field(c, f[F_INT], "plan.interval", 3600000, &p->interval_ms))) ||
	    (f[F_WIN] && (e = dur_field(c, f[F_WIN], "plan.window", 3600000, &p->window_ms))) ||
	    (f[F_SH] && (e = dur_field(c, f[F_SH], "plan.shadow", 7 * 86400000u, &p->shadow_ms))) ||
	    (f[F_MINS] &&
	     (e = uint_field(c, f[F_MINS], "plan.min_samples", 0, 100000000, &p->min_samples))) ||
	    (f[F_BF] && (e = bool_field(c, f[F_BF], "plan.backfill", &p->backfill))) ||
	    (f[F_VER] && (e = bool_field(c, f[F_VER], "plan.verify", &p->verify))) ||
	    (f[F_DRAIN] && (e = bool_field(c, f[F_DRAIN], "plan.drain", &p->drain))) ||
	    (f[F_BREACH] && (e = breach_field(c, f[F_BREACH], "plan.on_breach", &breach))))
		return e;
	if (f[F_MINP]) {
		uint32_t ms;

		/* microsecond precision matters here: accept "500us" too */
		s = scalar(f[F_MINP]);
		if (s && strlen(s) > 2 && strcmp(s + strlen(s) - 2, "us") == 0) {
			char *end;
			unsigned long v = strtoul(s, &end, 10);

			if (end == s || strcmp(end, "us") != 0 || v > 3600000000ul)
				return yfail(c, f[F_MINP], "plan.min_p99: \"%s\" is not a duration", s);
			p->min_p99_us = (uint32_t)v;
		} else {
			if ((e = dur_field(c, f[F_MINP], "plan.min_p99", 3600000, &ms)))
				return e;
			p->min_p99_us = ms * 1000;
		}
	}
	return f[F_GATES] ? plan_gates(c, f[F_GATES], p, breach) : 0;
}

static int migration(struct yctx *c, yaml_node_t *n, size_t idx, struct sy_migration_spec *m)
{
	static const char *const fields[] = {"name",	    "legacy",	     "target",	 "client",
					     "ratio",	    "pins",	     "prefixes", "sample_reads",
					     "mirror",	    "capture_bytes", "rewrite",	 "mirror_queue",
					     "auto_repair", "audit_every",   "plan",	 NULL};
	enum {
		F_NAME,
		F_LEGACY,
		F_TARGET,
		F_CLIENT,
		F_RATIO,
		F_PINS,
		F_PREFIXES,
		F_SAMPLE,
		F_MIRROR,
		F_CAPTURE,
		F_REWRITE,
		F_QUEUE,
		F_AUTO_REPAIR,
		F_AUDIT_EVERY,
		F_PLAN
	};
	yaml_node_t *f[15];
	char what[32];
	const char *s;
	int e;

	snprintf(what, sizeof(what), "migrations[%zu]", idx);
	memset(m, 0, sizeof(*m));
	m->mirror = SY_MIRROR_AUTO;
	m->line = yline(n);
	if ((e = map_fields(c, n, what, fields, f)))
		return e;
	s = scalar(f[F_NAME]);
	if (!s)
		return yfail(c, f[F_NAME] ? f[F_NAME] : n, "name: required");
	if (strlen(s) >= sizeof(m->name) || !name_ok(s))
		return yfail(c, f[F_NAME],
			     "name: \"%s\" must be 1-%d characters of a-z, 0-9, '.', '_', '-', starting with "
			     "a letter "
			     "or digit",
			     s, SY_NAME_MAX - 1);
	strcpy(m->name, s);
	if (!f[F_LEGACY])
		return yfail(c, n, "legacy: required (a list of \"ip:port\")");
	if ((e = endpoints(c, f[F_LEGACY], "legacy", m->legacy, &m->n_legacy)))
		return e;
	if (!f[F_TARGET])
		return yfail(c, n, "target: required (a list of \"ip:port\")");
	if ((e = endpoints(c, f[F_TARGET], "target", m->target, &m->n_target)))
		return e;
	if (f[F_CLIENT]) {
		s = scalar(f[F_CLIENT]);
		if (s && strcmp(s, "cgroup") == 0)
			m->client_mode = SY_CLIENT_CGROUP;
		else if (s && strcmp(s, "connection") == 0)
			m->client_mode = SY_CLIENT_CONNECTION;
		else
			return yfail(c, f[F_CLIENT], "client: \"%s\" is not cgroup or connection",
				     s ? s : kind(f[F_CLIENT]));
	}
	if (f[F_RATIO]) {
		s = scalar(f[F_RATIO]);
		if (!s)
			return yfail(c, f[F_RATIO],
				     "ratio: must be a percentage (25%%) or basis points (2500bp)");
		e = sy_ratio_parse(s, &m->ratio_bp);
		if (e == -ERANGE)
			return yfail(c, f[F_RATIO], "ratio: \"%s\" is out of range 0%%..100%% (0bp..10000bp)",
				     s);
		if (e)
			return yfail(
				c, f[F_RATIO],
				"ratio: \"%s\" is not a percentage with at most 2 decimals (12.5%%) or basis "
				"points (1250bp)",
				s);
	}
	if (f[F_PINS] && (e = pins(c, f[F_PINS], m)))
		return e;
	if (f[F_PREFIXES] && (e = prefixes(c, f[F_PREFIXES], m)))
		return e;
	if (f[F_SAMPLE] &&
	    (e = uint_field(c, f[F_SAMPLE], "sample_reads", 0, SY_SAMPLE_MAX, &m->sample_reads)))
		return e;
	if (f[F_CAPTURE] && (e = uint_field(c, f[F_CAPTURE], "capture_bytes", SY_CAPTURE_MIN, SY_CAPTURE_MAX,
					    &m->capture_bytes)))
		return e;
	if (f[F_QUEUE] &&
	    (e = uint_field(c, f[F_QUEUE], "mirror_queue", 1, SY_MIRROR_QUEUE_MAX, &m->mirror_queue)))
		return e;
	if (f[F_REWRITE] && (e = rewrites(c, f[F_REWRITE], m)))
		return e;
	if (f[F_AUDIT_EVERY] &&
	    (e = uint_field(c, f[F_AUDIT_EVERY], "audit_every", 0, 86400 * 7, &m->audit_every)))
		return e;
	if (f[F_AUTO_REPAIR]) {
		s = scalar(f[F_AUTO_REPAIR]);
		if (s && strcmp(s, "true") == 0)
			m->auto_repair = true;
		else if (s && strcmp(s, "false") == 0)
			m->auto_repair = false;
		else
			return yfail(c, f[F_AUTO_REPAIR], "auto_repair: \"%s\" is not true or false",
				     s ? s : kind(f[F_AUTO_REPAIR]));
	}
	if (f[F_PLAN] && (e = plan(c, f[F_PLAN], &m->plan)))
		return e;
	if (f[F_MIRROR]) {
		s = scalar(f[F_MIRROR]);
		if (sy_mirror_parse(s, &m->mirror))
			return yfail(c, f[F_MIRROR],
				     "mirror: \"%s\" is not auto, off, forward, reverse or both",
				     s ? s : kind(f[F_MIRROR]));
	}
	return 0;
}

int sy_spec_load_buf(const char *name, const char *buf, size_t len, struct sy_spec *out,
		     struct sy_spec_err *err)
{
	static const char *const top[] = {"migrations", "telemetry", NULL}; /* telemetry: exporters.c */
	yaml_parser_t parser;
	struct yctx c = {.file = name, .err = err};
	yaml_node_t *root, *f[2];
	size_t count;
	int e = 0;

	memset(out, 0, sizeof(*out));
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &c.doc)) {
		sy_spec_err_set(err, "%s:%zu: YAML: %s%s%s", name, parser.problem_mark.line + 1,
				parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
				parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	yaml_parser_delete(&parser);
	root = yaml_document_get_root_node(&c.doc);
	if (!root || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
		sy_spec_err_set(err, "%s:1: empty spec (expected a mapping with \"migrations:\")", name);
		e = -EINVAL;
		goto out;
	}
	if ((e = map_fields(&c, root, "the spec", top, f)))
		goto out;
	if (!f[0]) {
		e = yfail(&c, root, "migrations: required");
		goto out;
	}
	if (f[0]->type == YAML_SCALAR_NODE &&
	    (f[0]->data.scalar.length == 0 || strcmp(scalar(f[0]), "null") == 0 ||
	     strcmp(scalar(f[0]), "~") == 0))
		goto out; /* "migrations:" with nothing: no migrations */
	if (f[0]->type != YAML_SEQUENCE_NODE) {
		e = yfail(&c, f[0], "migrations: must be a list, not %s", kind(f[0]));
		goto out;
	}
	count = (size_t)(f[0]->data.sequence.items.top - f[0]->data.sequence.items.start);
	if (count >= SY_MAX_MIGRATIONS) {
		e = yfail(&c, f[0], "migrations: at most %d", SY_MAX_MIGRATIONS - 1);
		goto out;
	}
	out->migs = calloc(count ? count : 1, sizeof(*out->migs));
	if (!out->migs) {
		e = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *n = yaml_document_get_node(&c.doc, f[0]->data.sequence.items.start[i]);

		e = migration(&c, n, i, &out->migs[i]);
		out->n = i + 1;
		if (e)
			goto out;
	}
	e = sy_spec_validate(out, name, err);
out:
	yaml_document_delete(&c.doc);
	if (e) {
		if (e == -ENOMEM)
			sy_spec_err_set(err, "%s: out of memory", name);
		sy_spec_free(out);
	}
	return e;
}

int sy_spec_load_file(const char *path, struct sy_spec *out, struct sy_spec_err *err)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	int e;

	memset(out, 0, sizeof(*out));
	if (!f) {
		sy_spec_err_set(err, "%s: %s", path, strerror(errno));
		return -errno;
	}
	buf = malloc(SY_SPEC_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, SY_SPEC_MAX_BYTES + 1, f);
	if (ferror(f)) {
		sy_spec_err_set(err, "%s: read error", path);
		e = -EIO;
	} else if (n > SY_SPEC_MAX_BYTES) {
		sy_spec_err_set(err, "%s: larger than %u bytes", path, SY_SPEC_MAX_BYTES);
		e = -EFBIG;
	} else {
		e = sy_spec_load_buf(path, buf, n, out, err);
	}
	fclose(f);
	free(buf);
	return e;
}
