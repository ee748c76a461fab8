// SPDX-License-Identifier: Apache-2.0
/* spec_validate.c — the one validator of migration specs (spec.h), for the file and
 * the Control API alike: ranges, formats, the cross-migration rules. Messages name the
 * field ("legacy[1]: …"); sy_spec_validate prefixes FILE:LINE. Values from the user are
 * escaped (core/quote.h) so every message stays one line. */
#include "model/spec.h"

#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "core/quote.h"
#include "core/secret.h"
#include "model/endpoint.h"
#include "model/hostname.h"

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
	if (p->n_steps > SY_PLAN_MAX_STEPS)
		return sy_spec_fail(err, "plan.steps: at most %d", SY_PLAN_MAX_STEPS);
	for (uint32_t i = 0; i < p->n_steps; i++) {
		if (p->steps_bp[i] == 0 || p->steps_bp[i] > SY_RATIO_MAX ||
		    (i && p->steps_bp[i] <= p->steps_bp[i - 1]))
			return sy_spec_fail(
				err, "plan.steps[%u]: %u bp; steps must rise strictly within 0.01%%..100%%",
				i, p->steps_bp[i]);
		if (p->bake_ms[i] > 7 * 86400 * 1000u)
			return sy_spec_fail(err, "plan.bake[%u]: longer than a week", i);
	}
	if (p->steps_bp[p->n_steps - 1] != SY_RATIO_MAX)
		return sy_spec_fail(err, "plan.steps: the last step must be 100%%, not %u bp",
				    p->steps_bp[p->n_steps - 1]);
	if (p->interval_ms < 100 || p->interval_ms > 3600000)
		return sy_spec_fail(err, "plan.interval: %u ms is out of range 100ms..1h", p->interval_ms);
	if (p->window_ms < p->interval_ms || p->window_ms > 3600000)
		return sy_spec_fail(err,
				    "plan.window: %u ms must be at least the interval (%u ms) and at most 1h",
				    p->window_ms, p->interval_ms);
	if (p->shadow_ms > 7 * 86400 * 1000u)
		return sy_spec_fail(err, "plan.shadow: longer than a week");
	if (p->server_restart > SY_RESTART_OFF)
		return sy_spec_fail(err, "plan.server_restart: must be pause, rollback or off");
	for (int g = 0; g < SY_GATES; g++) {
		const struct sy_gate_spec *gs = &p->gates[g];

		if (!gs->enabled)
			continue;
		if (!(gs->max >= 0) || gs->max > 1e9 || (g == SY_GATE_ERROR_RATE && gs->max > 1))
			return sy_spec_fail(err, "plan.gates.%s: %g is out of range (%s)", sy_gate_name(g),
					    gs->max, g == SY_GATE_ERROR_RATE ? "0..100%" : "0 or more");
		if (gs->on_breach > SY_BREACH_PAUSE)
			return sy_spec_fail(err, "plan.gates.%s.on_breach: must be rollback or pause",
					    sy_gate_name(g));
	}
	return 0;
}

/* The credentials of one side: the file must exist now, be readable, and be its
 * owner's only, so a mistake is found at apply time and not at the first connection. */
static int check_auth(const struct sy_auth_spec *a, const char *side, struct sy_spec_err *err, int *line)
{
	char q[SY_QUOTE_BUF], why[160];

	if (a->line)
		*line = a->line;
	if (!a->password_file[0]) {
		if (a->user[0])
			return sy_spec_fail(err, "auth.%s.password_file: required with a user", side);
		return 0;
	}
	if (strnlen(a->user, sizeof(a->user)) >= sizeof(a->user))
		return sy_spec_fail(err, "auth.%s.user: longer than %d bytes", side, SY_AUTH_USER_MAX - 1);
	for (const char *c = a->user; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			return sy_spec_fail(err, "auth.%s.user: \"%s\" must be printable, without spaces",
					    side, sy_quote(q, a->user));
	if (a->password_file[0] != '/')
		return sy_spec_fail(err, "auth.%s.password_file: \"%s\" must be an absolute path", side,
				    sy_quote(q, a->password_file));
	if (sy_secret_check(a->password_file, why, sizeof(why)))
		return sy_spec_fail(err, "auth.%s.password_file: %s: %s", side, sy_quote(q, a->password_file),
				    why);
	return 0;
}

/* A list of key prefixes (prefixes:, scope:): at most max, each 1 to SY_PREFIX_MAX bytes,
 * none twice; with `nested`, none the start of another either (the longer means nothing). */
static int check_prefixes(const char *field, const char (*v)[SY_PREFIX_MAX + 1], uint32_t n, uint32_t max,
			  bool nested, struct sy_spec_err *err)
{
	char q[SY_QUOTE_BUF], q2[SY_QUOTE_BUF];

	if (n > max)
		return sy_spec_fail(err, "%s: at most %u", field, max);
	for (uint32_t i = 0; i < n; i++) {
		size_t len = strnlen(v[i], sizeof(v[i]));

		if (len == 0 || len > SY_PREFIX_MAX)
			return sy_spec_fail(err, "%s[%u]: must be 1 to %d bytes", field, i, SY_PREFIX_MAX);
		for (uint32_t j = 0; j < i; j++)
			if (!nested && strcmp(v[i], v[j]) == 0)
				return sy_spec_fail(err, "%s[%u]: \"%s\" is listed twice", field, i,
						    sy_quote(q, v[i]));
			else if (nested &&
				 (strncmp(v[i], v[j], strlen(v[j])) == 0 || strncmp(v[j], v[i], len) == 0))
				return sy_spec_fail(
					err,
					"%s[%u]: \"%s\" overlaps %s[%u] \"%s\": list only the shorter one",
					field, i, sy_quote(q, v[i]), field, j, sy_quote(q2, v[j]));
	}
	return 0;
}

static int check_one(const struct sy_migration_spec *m, struct sy_spec_err *err, int *line)
{
	char a[SY_EP_STRLEN], q[SY_QUOTE_BUF], q2[SY_QUOTE_BUF], q3[SY_QUOTE_BUF], q4[SY_QUOTE_BUF];
	int e;

	*line = m->line;
	if (!name_ok(m->name))
		return sy_spec_fail(err,
				    "name: \"%s\" must be 1-%d characters of a-z, 0-9, '.', '_', '-', "
				    "starting with a letter or digit",
				    sy_quote(q, m->name), SY_NAME_MAX - 1);
	/* A host name not resolved yet (a spec just read) counts as one endpoint. */
	uint32_t nl = m->n_legacy + sy_spec_hosts_unresolved(m, SY_SIDE_LEGACY);
	uint32_t nt = m->n_target + sy_spec_hosts_unresolved(m, SY_SIDE_TARGET);

	if (nl == 0 || nl > SY_MAX_ENDPOINTS)
		return sy_spec_fail(err, "legacy: needs 1 to %d endpoints, has %u", SY_MAX_ENDPOINTS, nl);
	if (nt == 0 || nt > SY_MAX_ENDPOINTS)
		return sy_spec_fail(err, "target: needs 1 to %d endpoints, has %u", SY_MAX_ENDPOINTS, nt);
	for (int side = 0; side < 2; side++) {
		if (m->n_hosts[side] > SY_SPEC_MAX_HOSTS)
			return sy_spec_fail(err, "%s: at most %d host names", side ? "target" : "legacy",
					    SY_SPEC_MAX_HOSTS);
		for (uint32_t h = 0; h < m->n_hosts[side]; h++) {
			const struct sy_host_spec *hs = &m->hosts[side][h];
			char hb[SY_HOST_MAX + 1], why[200], name[SY_HOST_MAX + 8];
			uint16_t port;

			sy_host_format(hs, name, sizeof(name));
			if (sy_hostport_parse(name, hb, &port, why, sizeof(why)) ||
			    hs->first + hs->n > (side ? m->n_target : m->n_legacy) ||
			    (h > 0 && hs->first < m->hosts[side][h - 1].first + m->hosts[side][h - 1].n))
				return sy_spec_fail(err, "%s[%u]: %s", side ? "target" : "legacy", hs->pos,
						    sy_hostport_parse(name, hb, &port, why, sizeof(why))
							    ? why
							    : "host name's addresses out of place");
		}
	}
	if (m->resolve_interval_ms &&
	    (m->resolve_interval_ms < SY_RESOLVE_MIN_MS || m->resolve_interval_ms > SY_RESOLVE_MAX_MS))
		return sy_spec_fail(err, "resolve_interval: %u ms is out of range 1s..24h",
				    m->resolve_interval_ms);
	for (uint32_t i = 0; i < m->n_legacy; i++) {
		for (uint32_t j = 0; j < i; j++)
			if (sy_endpoint_equal(&m->legacy[i], &m->legacy[j])) {
				sy_endpoint_format(&m->legacy[i], a, sizeof(a));
				return sy_spec_fail(err, "legacy[%u]: %s is listed twice", i, a);
			}
		for (uint32_t j = 0; j < m->n_target; j++)
			if (sy_endpoint_equal(&m->legacy[i], &m->target[j])) {
				sy_endpoint_format(&m->legacy[i], a, sizeof(a));
				return sy_spec_fail(err, "target[%u]: %s is also a legacy endpoint", j, a);
			}
	}
	for (uint32_t i = 0; i < m->n_target; i++)
		for (uint32_t j = 0; j < i; j++)
			if (sy_endpoint_equal(&m->target[i], &m->target[j])) {
				sy_endpoint_format(&m->target[i], a, sizeof(a));
				return sy_spec_fail(err, "target[%u]: %s is listed twice", i, a);
			}
	if (m->client_mode > SY_CLIENT_CONNECTION)
		return sy_spec_fail(err, "client: must be cgroup or connection");
	if (m->ratio_bp > SY_RATIO_MAX)
		return sy_spec_fail(err, "ratio_bp: %u is out of range 0..%u", m->ratio_bp, SY_RATIO_MAX);
	if ((e = check_prefixes("prefixes", m->prefixes, m->n_prefixes, SY_SPEC_MAX_PREFIXES, false, err)) ||
	    (e = check_prefixes("scope", m->scope, m->n_scope, SY_SPEC_MAX_SCOPE, true, err)))
		return e;
	if (m->sample_reads > SY_SAMPLE_MAX)
		return sy_spec_fail(err, "sample_reads: %u is out of range 0..%u", m->sample_reads,
				    SY_SAMPLE_MAX);
	if (m->mirror > SY_MIRROR_AUTO)
		return sy_spec_fail(err, "mirror: must be auto, off, forward, reverse or both");
	if (m->capture_bytes && (m->capture_bytes < SY_CAPTURE_MIN || m->capture_bytes > SY_CAPTURE_MAX))
		return sy_spec_fail(err, "capture_bytes: %u is out of range %u..%u", m->capture_bytes,
				    SY_CAPTURE_MIN, SY_CAPTURE_MAX);
	if (m->n_rewrite > SY_SPEC_MAX_REWRITES)
		return sy_spec_fail(err, "rewrite: at most %d prefixes", SY_SPEC_MAX_REWRITES);
	for (uint32_t i = 0; i < m->n_rewrite; i++) {
		const struct sy_rewrite_spec *w = &m->rewrite[i];
		size_t fl = strnlen(w->from, sizeof(w->from)), tl = strnlen(w->to, sizeof(w->to));

		if (fl == 0 || fl > SY_PREFIX_MAX || tl == 0 || tl > SY_PREFIX_MAX)
			return sy_spec_fail(err, "rewrite[%u]: prefixes must be 1 to %d bytes", i,
					    SY_PREFIX_MAX);
		for (uint32_t j = 0; j < i; j++) {
			const struct sy_rewrite_spec *o = &m->rewrite[j];

			/* one key must map one way, both ways: no prefix of another */
			if (strncmp(w->from, o->from, fl < strlen(o->from) ? fl : strlen(o->from)) == 0 ||
			    strncmp(w->to, o->to, tl < strlen(o->to) ? tl : strlen(o->to)) == 0)
				return sy_spec_fail(err,
						    "rewrite[%u]: \"%s\" -> \"%s\" overlaps \"%s\" -> \"%s\"",
						    i, sy_quote(q, w->from), sy_quote(q2, w->to),
						    sy_quote(q3, o->from), sy_quote(q4, o->to));
		}
	}
	if (m->audit_every > 86400 * 7)
		return sy_spec_fail(err, "audit_every: %u is over a week (604800 s)", m->audit_every);
	if (m->plan.n_steps && (e = check_plan(&m->plan, err)))
		return e;
	if ((e = check_auth(&m->auth[SY_SIDE_LEGACY], "legacy", err, line)) ||
	    (e = check_auth(&m->auth[SY_SIDE_TARGET], "target", err, line)))
		return e;
	*line = m->line;
	if ((e = sy_spec_check_transform(m, err, line)))
		return e;
	*line = m->line;
	if (m->mirror_queue > SY_MIRROR_QUEUE_MAX)
		return sy_spec_fail(err, "mirror_queue: %u is out of range 1..%u", m->mirror_queue,
				    SY_MIRROR_QUEUE_MAX);
	if (m->n_pins > SY_SPEC_MAX_PINS)
		return sy_spec_fail(err, "pins: at most %d", SY_SPEC_MAX_PINS);
	for (size_t i = 0; i < m->n_pins; i++) {
		const struct sy_pin_spec *p = &m->pins[i];
		struct stat st;
		struct statfs fs;

		if (p->line)
			*line = p->line;
		if (p->side > SY_SIDE_TARGET)
			return sy_spec_fail(err, "pins[%zu].side: must be legacy or target", i);
		if (p->cgroup[0] != '/')
			return sy_spec_fail(err, "pins[%zu].cgroup: \"%s\" must be an absolute path", i,
					    sy_quote(q, p->cgroup));
		if (stat(p->cgroup, &st) < 0) {
			int en = errno;

			return sy_spec_fail(err, "pins[%zu].cgroup: %s: %s", i, sy_quote(q, p->cgroup),
					    strerror(en));
		}
		if (!S_ISDIR(st.st_mode) || statfs(p->cgroup, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
			return sy_spec_fail(err, "pins[%zu].cgroup: %s is not a cgroup v2 directory", i,
					    sy_quote(q, p->cgroup));
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->pins[j].cgroup, p->cgroup) == 0)
				return sy_spec_fail(err, "pins[%zu].cgroup: %s is pinned twice", i,
						    sy_quote(q, p->cgroup));
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
	char a[SY_EP_STRLEN], where[64] = "", q[SY_QUOTE_BUF];

	if (o->line)
		snprintf(where, sizeof(where), " (line %d)", o->line);
	if (strcmp(m->name, o->name) == 0)
		return sy_spec_fail(err, "name: migration \"%s\" is defined twice%s", sy_quote(q, m->name),
				    where);
	for (uint32_t i = 0; i < m->n_legacy; i++) {
		sy_endpoint_format(&m->legacy[i], a, sizeof(a));
		for (uint32_t j = 0; j < o->n_legacy; j++)
			if (sy_endpoint_equal(&m->legacy[i], &o->legacy[j]))
				return sy_spec_fail(
					err,
					"legacy[%u]: legacy endpoint %s is already in migration \"%s\"%s", i,
					a, sy_quote(q, o->name), where);
		for (uint32_t j = 0; j < o->n_target; j++)
			if (sy_endpoint_equal(&m->legacy[i], &o->target[j]))
				return sy_spec_fail(err, "legacy[%u]: %s is a target of migration \"%s\"%s",
						    i, a, sy_quote(q, o->name), where);
	}
	for (uint32_t i = 0; i < m->n_target; i++) {
		for (uint32_t j = 0; j < o->n_legacy; j++)
			if (sy_endpoint_equal(&m->target[i], &o->legacy[j])) {
				sy_endpoint_format(&m->target[i], a, sizeof(a));
				return sy_spec_fail(
					err, "target[%u]: %s is a legacy endpoint of migration \"%s\"%s", i,
					a, sy_quote(q, o->name), where);
			}
		/* one server, one login: the health check of a shared target is one */
		for (uint32_t j = 0; j < o->n_target; j++)
			if (sy_endpoint_equal(&m->target[i], &o->target[j]) &&
			    !sy_auth_spec_equal(&m->auth[SY_SIDE_TARGET], &o->auth[SY_SIDE_TARGET])) {
				sy_endpoint_format(&m->target[i], a, sizeof(a));
				return sy_spec_fail(err,
						    "auth.target: %s is also a target of migration \"%s\"%s, "
						    "with other credentials",
						    a, sy_quote(q, o->name), where);
			}
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
