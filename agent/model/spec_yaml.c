// SPDX-License-Identifier: Apache-2.0
/* spec_yaml.c — the YAML → spec reader: walks the document that model/yaml.c built
 * (nodes carry their line), fills struct sy_spec, then hands it to the one validator
 * that the Control API uses too. Every error is one line naming where and what. */
#include "model/spec_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/duration.h"
#include "core/quote.h"
#include "model/endpoint.h"
#include "model/hostname.h"

/* A value from the file inside a message: escaped, cut when long (core/quote.h). */
#define Q(s) sy_quote((char[SY_QUOTE_BUF]){0}, (s))

struct yctx {
	struct sy_yaml *y;
	struct sy_spec_err *err;
};

static int yfail(struct yctx *c, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int yfail(struct yctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sy_yaml_vfail(c->y, n, c->err ? c->err->msg : NULL, c->err ? sizeof(c->err->msg) : 0, "", fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
	return sy_yaml_scalar(n);
}

static const char *kind(const yaml_node_t *n)
{
	return sy_yaml_kind(n);
}

static int map_fields(struct yctx *c, yaml_node_t *map, const char *what, const char *const *fields,
		      yaml_node_t **found)
{
	struct sy_spec_err scratch;
	struct sy_spec_err *err = c->err ? c->err : &scratch;

	return sy_yaml_fields(c->y, map, "", what, fields, found, err->msg, sizeof(err->msg));
}

/* A list of endpoints: numeric ones go to the side's array; host names (hostname.h)
 * are recorded, unresolved, at their place in the list (the daemon resolves them). */
static int endpoints(struct yctx *c, yaml_node_t *n, const char *field, struct sy_migration_spec *m, int side)
{
	struct sy_endpoint *out = side == SY_SIDE_TARGET ? m->target : m->legacy;
	uint32_t k = 0, n_eps = 0;

	if (n->type != YAML_SEQUENCE_NODE)
		return yfail(c, n, "%s: must be a list of \"ip:port\" or \"host:port\", not %s", field,
			     kind(n));
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = sy_yaml_node(c->y, *it);
		const char *s = scalar(e);
		char why[200], why2[200];

		if (!s)
			return yfail(c, e, "%s[%u]: must be \"ip:port\" or \"host:port\", not %s", field, k,
				     kind(e));
		if (k == SY_MAX_ENDPOINTS)
			return yfail(c, e, "%s: at most %d endpoints", field, SY_MAX_ENDPOINTS);
		if (sy_endpoint_parse(s, &out[n_eps], why, sizeof(why)) == 0) {
			n_eps++;
		} else {
			struct sy_host_spec *h = &m->hosts[side][m->n_hosts[side]];

			/* Counted before h is written: the slot past the last is the next side's. */
			if (m->n_hosts[side] == SY_SPEC_MAX_HOSTS)
				return yfail(c, e, "%s: at most %d host names", field, SY_SPEC_MAX_HOSTS);
			if (sy_hostport_parse(s, h->host, &h->port, why2, sizeof(why2)))
				return yfail(c, e, "%s[%u]: %s", field, k,
					     strstr(why, "numeric") ? why2 : why);
			h->pos = (uint8_t)k;
			h->first = (uint8_t)n_eps;
			h->line = sy_yaml_line(e);
			m->n_hosts[side]++;
		}
		k++;
	}
	if (side == SY_SIDE_TARGET)
		m->n_target = n_eps;
	else
		m->n_legacy = n_eps;
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
		yaml_node_t *p = sy_yaml_node(c->y, *it);
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
			return yfail(c, f[1], "%s.side: \"%s\" is not legacy or target", what, Q(side));
		ps->line = sy_yaml_line(p);
		m->n_pins++;
	}
	return 0;
}

/* A list of key prefixes (`prefixes:` or `scope:`). In a scope, none may be inside
 * another: the longer one would mean nothing. */
static int prefix_list(struct yctx *c, yaml_node_t *n, const char *what, char (*out)[SY_PREFIX_MAX + 1],
		       uint32_t *n_out, uint32_t max, bool nested_ok)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE)
		return yfail(c, n, "%s: must be a list of key prefixes (\"user:\"), not %s", what, kind(n));
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *p = sy_yaml_node(c->y, *it);
		const char *s = scalar(p);
		size_t i = *n_out;

		if (i >= max)
			return yfail(c, p, "%s: at most %u", what, max);
		if (!s || !s[0] || strlen(s) > SY_PREFIX_MAX)
			return yfail(c, p, "%s[%zu]: must be a string of 1 to %d bytes", what, i,
				     SY_PREFIX_MAX);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(out[j], s) == 0)
				return yfail(c, p, "%s[%zu]: \"%s\" is listed twice", what, i, Q(s));
			if (!nested_ok &&
			    (strncmp(s, out[j], strlen(out[j])) == 0 || strncmp(out[j], s, strlen(s)) == 0))
				return yfail(
					c, p,
					"%s[%zu]: \"%s\" overlaps %s[%zu] \"%s\": list only the shorter one",
					what, i, Q(s), what, j, Q(out[j]));
		}
		strcpy(out[i], s);
		(*n_out)++;
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
		yaml_node_t *k = sy_yaml_node(c->y, p->key), *v = sy_yaml_node(c->y, p->value);
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

/* auth: {legacy: {user, password_file}, target: {…}}. A password written in the file
 * itself is refused without being repeated: it would sit in the config, the history
 * of whoever edits it, and the messages about it. */
static int auth_side(struct yctx *c, yaml_node_t *n, const char *what, struct sy_auth_spec *a)
{
	static const char *const fields[] = {"user", "password_file", "password", NULL};
	yaml_node_t *f[3];
	const char *s;
	int e;

	if (n->type == YAML_MAPPING_NODE)
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			const char *k = scalar(sy_yaml_node(c->y, p->key));

			if (k && strcmp(k, "password") == 0)
				return yfail(
					c, sy_yaml_node(c->y, p->key),
					"%s.password: a password is never written in the spec: put it in a "
					"file (mode 0600) and name it with password_file",
					what);
		}
	if ((e = map_fields(c, n, what, fields, f)))
		return e;
	a->line = sy_yaml_line(n);
	if (f[0]) {
		s = scalar(f[0]);
		if (!s || strlen(s) >= sizeof(a->user))
			return yfail(c, f[0], "%s.user: must be an ACL user name of 1 to %d bytes", what,
				     SY_AUTH_USER_MAX - 1);
		strcpy(a->user, s);
	}
	if (!f[1])
		return yfail(c, n, "%s.password_file: required, the file that holds the password", what);
	s = scalar(f[1]);
	if (!s || !s[0] || strlen(s) >= sizeof(a->password_file))
		return yfail(c, f[1], "%s.password_file: must be a path", what);
	strcpy(a->password_file, s);
	a->line = sy_yaml_line(f[1]);
	return 0;
}

static int auth(struct yctx *c, yaml_node_t *n, struct sy_migration_spec *m)
{
	static const char *const fields[] = {"legacy", "target", NULL};
	yaml_node_t *f[2];
	int e;

	if ((e = map_fields(c, n, "auth", fields, f)))
		return e;
	if (f[0] && (e = auth_side(c, f[0], "auth.legacy", &m->auth[SY_SIDE_LEGACY])))
		return e;
	if (f[1] && (e = auth_side(c, f[1], "auth.target", &m->auth[SY_SIDE_TARGET])))
		return e;
	return 0;
}

/* transform: {script: FILE}; compiled by the validator (spec_transform.c). */
static int transform(struct yctx *c, yaml_node_t *n, struct sy_migration_spec *m)
{
	static const char *const fields[] = {"script", NULL};
	yaml_node_t *f[1];
	const char *s;
	int e;

	if ((e = map_fields(c, n, "transform", fields, f)))
		return e;
	s = f[0] ? scalar(f[0]) : NULL;
	if (!s || !*s)
		return yfail(c, f[0] ? f[0] : n, "transform.script: required (the path of a Lua script)");
	if (strlen(s) >= sizeof(m->transform.script))
		return yfail(c, f[0], "transform.script: longer than %zu bytes",
			     sizeof(m->transform.script) - 1);
	strcpy(m->transform.script, s);
	m->transform.line = sy_yaml_line(f[0]);
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
		return yfail(c, n, "%s: \"%s\" must be a whole number in %u..%u", field, Q(s ? s : kind(n)),
			     min, max);
	*out = (uint32_t)v;
	return 0;
}

/* "250ms", "2s", "5m", "1h", or "0" (core/duration.h: a unit is required). */
static int dur_field(struct yctx *c, yaml_node_t *n, const char *field, uint32_t max_ms, uint32_t *out)
{
	const char *s = scalar(n);
	uint64_t v;
	int e;

	if (!s || !*s)
		return yfail(c, n, "%s: must be a duration (250ms, 2s, 5m, 1h), not %s", field, kind(n));
	e = sy_duration_ms(s, &v);
	if (e == -EINVAL)
		return yfail(c, n, "%s: \"%s\" is not a duration (250ms, 2s, 5m, 1h)", field, Q(s));
	if (e == -EDOM)
		return yfail(c, n, "%s: \"%s\" needs a unit: ms, s, m or h", field, Q(s));
	if (e || v > max_ms)
		return yfail(c, n, "%s: \"%s\" is over the limit of %u ms", field, Q(s), max_ms);
	*out = (uint32_t)v;
	return 0;
}

/* A field that is one of two words: *out 0 for w0, 1 for w1. */
static int word_field(struct yctx *c, yaml_node_t *n, const char *field, const char *w0, const char *w1,
		      int *out)
{
	const char *s = scalar(n);

	if (s && (strcmp(s, w0) == 0 || strcmp(s, w1) == 0))
		*out = strcmp(s, w1) == 0;
	else
		return yfail(c, n, "%s: \"%s\" is not %s or %s", field, Q(s ? s : kind(n)), w0, w1);
	return 0;
}

static int bool_field(struct yctx *c, yaml_node_t *n, const char *field, bool *out)
{
	int w, e = word_field(c, n, field, "true", "false", &w);

	if (!e)
		*out = w == 0;
	return e;
}

static int breach_field(struct yctx *c, yaml_node_t *n, const char *field, uint8_t *out)
{
	int w, e = word_field(c, n, field, "rollback", "pause", &w);

	if (!e)
		*out = w ? SY_BREACH_PAUSE : SY_BREACH_ROLLBACK;
	return e;
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
			     Q(s ? s : kind(n)));
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
		fields[i] = sy_gate_name(i);
	fields[SY_GATES] = NULL;
	if ((e = map_fields(c, n, "plan.gates", fields, g)))
		return e;
	for (int i = 0; i < SY_GATES; i++) {
		struct sy_gate_spec *gs = &p->gates[i];

		if (!g[i])
			continue;
		snprintf(what, sizeof(what), "plan.gates.%s", sy_gate_name(i));
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
	static const char *const fields[] = {
		"steps",  "bake",   "advance", "interval",  "window", "min_samples",	"min_p99", "backfill",
		"shadow", "verify", "drain",   "on_breach", "gates",  "server_restart", NULL};
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
		F_GATES,
		F_RESTART
	};
	yaml_node_t *f[14];
	uint8_t breach = SY_BREACH_ROLLBACK;
	uint32_t bake = SY_PLAN_BAKE_DEFAULT;
	const char *s;
	int e, w;

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
		yaml_node_t *v = sy_yaml_node(c->y, *it);

		if (p->n_steps == SY_PLAN_MAX_STEPS)
			return yfail(c, v, "plan.steps: at most %d", SY_PLAN_MAX_STEPS);
		s = scalar(v);
		if (!s || sy_ratio_parse(s, &p->steps_bp[p->n_steps]))
			return yfail(c, v, "plan.steps[%u]: \"%s\" is not a ratio (25%%, 12.5%%, 2500bp)",
				     p->n_steps, Q(s ? s : kind(v)));
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
			if ((e = dur_field(c, sy_yaml_node(c->y, *it), "plan.bake", 7 * 86400000u,
					   &p->bake_ms[k])))
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
		if ((e = word_field(c, f[F_ADV], "plan.advance", "auto", "manual", &w)))
			return e;
		p->manual = w;
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
				return yfail(c, f[F_MINP], "plan.min_p99: \"%s\" is not a duration", Q(s));
			p->min_p99_us = (uint32_t)v;
		} else {
			if ((e = dur_field(c, f[F_MINP], "plan.min_p99", 3600000, &ms)))
				return e;
			p->min_p99_us = ms * 1000;
		}
	}
	if (f[F_RESTART]) {
		s = scalar(f[F_RESTART]);
		for (p->server_restart = 0; p->server_restart <= SY_RESTART_OFF; p->server_restart++)
			if (s && strcmp(s, sy_restart_gate_name(p->server_restart)) == 0)
				break;
		if (p->server_restart > SY_RESTART_OFF)
			return yfail(c, f[F_RESTART],
				     "plan.server_restart: \"%s\" is not pause, rollback or off",
				     Q(s ? s : kind(f[F_RESTART])));
	}
	return f[F_GATES] ? plan_gates(c, f[F_GATES], p, breach) : 0;
}

static int migration(struct yctx *c, yaml_node_t *n, size_t idx, struct sy_migration_spec *m)
{
	static const char *const fields[] = {
		"name",	       "legacy",	"target", "client",	   "ratio",   "pins",
		"prefixes",    "sample_reads",	"mirror", "capture_bytes", "rewrite", "mirror_queue",
		"auto_repair", "audit_every",	"plan",	  "auth",	   "scope",   "resolve_interval",
		"transform",   "version_field", NULL};
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
		F_PLAN,
		F_AUTH,
		F_SCOPE,
		F_RESOLVE,
		F_TRANSFORM,
		F_VERSION_FIELD
	};
	yaml_node_t *f[F_VERSION_FIELD + 1];
	char what[32];
	const char *s;
	int e, w;

	snprintf(what, sizeof(what), "migrations[%zu]", idx);
	memset(m, 0, sizeof(*m));
	m->mirror = SY_MIRROR_AUTO;
	m->line = sy_yaml_line(n);
	if ((e = map_fields(c, n, what, fields, f)))
		return e;
	s = scalar(f[F_NAME]);
	if (!s)
		return yfail(c, f[F_NAME] ? f[F_NAME] : n, "name: required");
	if (strlen(s) >= sizeof(m->name) || !sy_spec_name_ok(s))
		return yfail(c, f[F_NAME],
			     "name: \"%s\" must be 1-%d characters of a-z, 0-9, '.', '_', '-', starting with "
			     "a letter "
			     "or digit",
			     Q(s), SY_NAME_MAX - 1);
	strcpy(m->name, s);
	if (!f[F_LEGACY])
		return yfail(c, n, "legacy: required (a list of \"ip:port\")");
	if ((e = endpoints(c, f[F_LEGACY], "legacy", m, SY_SIDE_LEGACY)))
		return e;
	if (!f[F_TARGET])
		return yfail(c, n, "target: required (a list of \"ip:port\")");
	if ((e = endpoints(c, f[F_TARGET], "target", m, SY_SIDE_TARGET)))
		return e;
	if (f[F_CLIENT]) {
		if ((e = word_field(c, f[F_CLIENT], "client", "cgroup", "connection", &w)))
			return e;
		m->client_mode = w ? SY_CLIENT_CONNECTION : SY_CLIENT_CGROUP;
	}
	if (f[F_RATIO]) {
		s = scalar(f[F_RATIO]);
		if (!s)
			return yfail(c, f[F_RATIO],
				     "ratio: must be a percentage (25%%) or basis points (2500bp)");
		e = sy_ratio_parse(s, &m->ratio_bp);
		if (e == -ERANGE)
			return yfail(c, f[F_RATIO], "ratio: \"%s\" is out of range 0%%..100%% (0bp..10000bp)",
				     Q(s));
		if (e)
			return yfail(
				c, f[F_RATIO],
				"ratio: \"%s\" is not a percentage with at most 2 decimals (12.5%%) or basis "
				"points (1250bp)",
				Q(s));
	}
	if (f[F_PINS] && (e = pins(c, f[F_PINS], m)))
		return e;
	if (f[F_PREFIXES] && (e = prefix_list(c, f[F_PREFIXES], "prefixes", m->prefixes, &m->n_prefixes,
					      SY_SPEC_MAX_PREFIXES, true)))
		return e;
	if (f[F_SCOPE] &&
	    (e = prefix_list(c, f[F_SCOPE], "scope", m->scope, &m->n_scope, SY_SPEC_MAX_SCOPE, false)))
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
	if (f[F_RESOLVE] &&
	    (e = dur_field(c, f[F_RESOLVE], "resolve_interval", SY_RESOLVE_MAX_MS, &m->resolve_interval_ms)))
		return e;
	if (f[F_RESOLVE] && m->resolve_interval_ms < SY_RESOLVE_MIN_MS)
		return yfail(c, f[F_RESOLVE], "resolve_interval: at least 1s");
	if (f[F_AUTO_REPAIR] && (e = bool_field(c, f[F_AUTO_REPAIR], "auto_repair", &m->auto_repair)))
		return e;
	if (f[F_PLAN] && (e = plan(c, f[F_PLAN], &m->plan)))
		return e;
	if (f[F_AUTH] && (e = auth(c, f[F_AUTH], m)))
		return e;
	if (f[F_TRANSFORM] && (e = transform(c, f[F_TRANSFORM], m)))
		return e;
	if (f[F_VERSION_FIELD]) {
		s = scalar(f[F_VERSION_FIELD]);
		if (!s || !*s || strlen(s) >= sizeof(m->version_field))
			return yfail(c, f[F_VERSION_FIELD],
				     "version_field: must be a field name of 1 to %d bytes",
				     SY_VERSION_FIELD_MAX - 1);
		strcpy(m->version_field, s);
	}
	if (f[F_MIRROR]) {
		s = scalar(f[F_MIRROR]);
		if (sy_mirror_parse(s, &m->mirror))
			return yfail(c, f[F_MIRROR],
				     "mirror: \"%s\" is not auto, off, forward, reverse or both",
				     Q(s ? s : kind(f[F_MIRROR])));
	}
	return 0;
}

int sy_spec_from_yaml(struct sy_yaml *y, struct sy_spec *out, struct sy_spec_err *err)
{
	static const char *const top[] = {"migrations", "telemetry", NULL}; /* telemetry: exporters.c */
	struct yctx c = {.y = y, .err = err};
	yaml_node_t *root, *f[2];
	size_t count;
	int e = 0;

	memset(out, 0, sizeof(*out));
	root = sy_yaml_root(y);
	if (!root)
		return sy_spec_fail(err, "%s:1: empty spec (expected a mapping with \"migrations:\")",
				    y->file);
	if ((e = map_fields(&c, root, "the spec", top, f)))
		return e;
	if (!f[0])
		return yfail(&c, root, "migrations: required");
	if (f[0]->type == YAML_SCALAR_NODE && sy_yaml_is_null(f[0]))
		return 0; /* "migrations:" with nothing: no migrations */
	if (f[0]->type != YAML_SEQUENCE_NODE)
		return yfail(&c, f[0], "migrations: must be a list, not %s", kind(f[0]));
	count = (size_t)(f[0]->data.sequence.items.top - f[0]->data.sequence.items.start);
	if (count >= SY_MAX_MIGRATIONS)
		return yfail(&c, f[0], "migrations: at most %d", SY_MAX_MIGRATIONS - 1);
	out->migs = calloc(count ? count : 1, sizeof(*out->migs));
	if (!out->migs) {
		e = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *n = sy_yaml_node(y, f[0]->data.sequence.items.start[i]);

		e = migration(&c, n, i, &out->migs[i]);
		out->n = i + 1;
		if (e)
			goto out;
	}
	e = sy_spec_validate(out, y->file, err);
out:
	if (e) {
		if (e == -ENOMEM)
			sy_spec_err_set(err, "%s: out of memory", y->file);
		sy_spec_free(out);
	}
	return e;
}

/* Parse, then read: the messages of both are one line into err. */
static int load(struct sy_yaml *y, int parsed, struct sy_spec *out, struct sy_spec_err *err)
{
	int e;

	memset(out, 0, sizeof(*out));
	if (parsed) {
		if (err && !err->msg[0])
			sy_spec_err_set(err, "YAML: cannot be read");
		return parsed;
	}
	e = sy_spec_from_yaml(y, out, err);
	sy_yaml_free(y);
	return e;
}

int sy_spec_load_buf(const char *name, const char *buf, size_t len, struct sy_spec *out,
		     struct sy_spec_err *err)
{
	struct sy_spec_err scratch;
	struct sy_yaml y;

	if (!err)
		err = &scratch;
	err->msg[0] = '\0';
	return load(&y, sy_yaml_load_buf(&y, name, buf, len, err->msg, sizeof(err->msg)), out, err);
}

int sy_spec_load_file(const char *path, struct sy_spec *out, struct sy_spec_err *err)
{
	struct sy_spec_err scratch;
	struct sy_yaml y;

	if (!err)
		err = &scratch;
	err->msg[0] = '\0';
	return load(&y, sy_yaml_load_file(&y, path, err->msg, sizeof(err->msg)), out, err);
}
