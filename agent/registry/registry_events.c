// SPDX-License-Identifier: Apache-2.0
/* registry_events.c — see registry_events.h. Migrations are matched by name; the spec
 * fields that changed are found by diff.h. Every event of a change names who made it:
 * origin (the commit's, else the migration's own), peer and reason when known. */
#include "registry/registry_events.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "model/endpoint.h"
#include "registry/diff.h"
#include "registry/events.h"
#include "registry/migration.h"

static const char *side_name(uint8_t side)
{
	return side == SY_SIDE_TARGET ? "target" : "legacy";
}

static const char *ratio_str(uint32_t bp, char *buf, size_t n)
{
	return sy_ratio_format(bp, buf, n);
}

/* ---- events ------------------------------------------------------------------------ */

/* Messages are cut at the event's limit anyway (events.h). */
static void msgf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msgf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

/* Who made a change: the commit's origin, or (no commit: a direct call) the
 * migration's. The attribute lists below end with these three. */
struct who {
	const char *origin, *peer, *reason;
};

static struct who who_of(const struct sy_commit *c, const struct sy_migration_state *m)
{
	struct who w = {m->origin, "", ""};

	if (c && c->origin && c->origin[0])
		w.origin = c->origin;
	if (c && c->peer)
		w.peer = c->peer;
	if (c && c->reason)
		w.reason = c->reason;
	return w;
}

/* The attributes a..., then origin, and peer and reason when they are known. */
#define WHO_ATTRS(w)                                                                                         \
	{"origin", (w).origin}, {"peer", (w).peer},                                                          \
	{                                                                                                    \
		"reason", (w).reason                                                                         \
	}

static uint64_t emit(struct sy_events *ev, const char *name, const char *kind, struct sy_event_attr *attrs,
		     size_t n, const char *msg)
{
	size_t k = 0;

	/* peer and reason only when set: an event without them reads as before */
	for (size_t i = 0; i < n; i++)
		if (!((strcmp(attrs[i].key, "peer") == 0 || strcmp(attrs[i].key, "reason") == 0) &&
		      !attrs[i].value[0]))
			attrs[k++] = attrs[i];
	return sy_events_emit(ev, name, kind, attrs, k, "%s", msg);
}

#define EMIT(ev, name, kind, msg, ...)                                                                       \
	emit(ev, name, kind, (struct sy_event_attr[]){__VA_ARGS__},                                          \
	     sizeof((struct sy_event_attr[]){__VA_ARGS__}) / sizeof(struct sy_event_attr), msg)

static void created(struct sy_events *ev, const struct sy_migration_state *m, const struct who *w)
{
	char legacy[512], target[512], ratio[16], bp[16], pins[16], msg[SY_EVENT_MSG_MAX];

	sy_endpoints_format(m->spec.legacy, m->spec.n_legacy, legacy, sizeof(legacy));
	sy_endpoints_format(m->spec.target, m->spec.n_target, target, sizeof(target));
	snprintf(bp, sizeof(bp), "%u", m->spec.ratio_bp);
	snprintf(pins, sizeof(pins), "%zu", m->spec.n_pins);
	msgf(msg, sizeof(msg), "created from %s: legacy %s, target %s, ratio %s", w->origin, legacy, target,
	     ratio_str(m->spec.ratio_bp, ratio, sizeof(ratio)));
	EMIT(ev, m->spec.name, "migration.created", msg, {"ratio_bp", bp},
	     {"client", m->spec.client_mode == SY_CLIENT_CONNECTION ? "connection" : "cgroup"},
	     {"legacy", legacy}, {"target", target}, {"pins", pins}, WHO_ATTRS(*w));
}

static void pins_changed(struct sy_events *ev, const struct sy_migration_state *o,
			 const struct sy_migration_state *m, const struct who *w)
{
	const char *name = m->spec.name;
	char msg[SY_EVENT_MSG_MAX];

	for (size_t i = 0; i < m->spec.n_pins; i++) {
		const struct sy_pin_spec *p = &m->spec.pins[i];
		const struct sy_pin_spec *was = NULL;

		for (size_t j = 0; j < o->spec.n_pins && !was; j++)
			if (strcmp(o->spec.pins[j].cgroup, p->cgroup) == 0)
				was = &o->spec.pins[j];
		if (!was) {
			msgf(msg, sizeof(msg), "pinned %s to %s", p->cgroup, side_name(p->side));
			EMIT(ev, name, "migration.pinned", msg, {"cgroup", p->cgroup},
			     {"side", side_name(p->side)}, WHO_ATTRS(*w));
		} else if (was->side != p->side) {
			msgf(msg, sizeof(msg), "pinned %s to %s (was %s)", p->cgroup, side_name(p->side),
			     side_name(was->side));
			EMIT(ev, name, "migration.pinned", msg, {"cgroup", p->cgroup},
			     {"side", side_name(p->side)}, {"old_side", side_name(was->side)}, WHO_ATTRS(*w));
		}
	}
	for (size_t j = 0; j < o->spec.n_pins; j++) {
		const struct sy_pin_spec *p = &o->spec.pins[j];
		int kept = 0;

		for (size_t i = 0; i < m->spec.n_pins && !kept; i++)
			kept = strcmp(m->spec.pins[i].cgroup, p->cgroup) == 0;
		if (!kept) {
			msgf(msg, sizeof(msg), "unpinned %s (was %s)", p->cgroup, side_name(p->side));
			EMIT(ev, name, "migration.unpinned", msg, {"cgroup", p->cgroup},
			     {"side", side_name(p->side)}, WHO_ATTRS(*w));
		}
	}
}

static void changed(struct sy_events *ev, const struct sy_migration_state *o,
		    const struct sy_migration_state *m, const struct who *w)
{
	char fields[256], a[16], b[16], ra[16], rb[16], msg[SY_EVENT_MSG_MAX];

	sy_spec_changed_fields(&o->spec, &m->spec, fields, sizeof(fields));
	if (fields[0]) {
		msgf(msg, sizeof(msg), "updated %s (from %s)", fields, w->origin);
		EMIT(ev, m->spec.name, "migration.updated", msg, {"changed", fields}, WHO_ATTRS(*w));
	}
	if (o->spec.ratio_bp != m->spec.ratio_bp) {
		snprintf(a, sizeof(a), "%u", o->spec.ratio_bp);
		snprintf(b, sizeof(b), "%u", m->spec.ratio_bp);
		msgf(msg, sizeof(msg), "ratio %s -> %s", ratio_str(o->spec.ratio_bp, ra, sizeof(ra)),
		     ratio_str(m->spec.ratio_bp, rb, sizeof(rb)));
		EMIT(ev, m->spec.name, "migration.ratio_changed", msg, {"old_ratio_bp", a},
		     {"new_ratio_bp", b}, WHO_ATTRS(*w));
	}
	pins_changed(ev, o, m, w);
}

static const struct sy_migration_state *find(const struct sy_migration_state *s, size_t n, const char *name)
{
	return sy_mset_find(s, n, name);
}

static void commit_events(struct sy_events *ev, const struct sy_commit *c,
			  const struct sy_migration_state *before, size_t n_before,
			  const struct sy_migration_state *after, size_t n_after)
{
	if (!ev)
		return;
	for (size_t i = 0; i < n_after; i++) {
		const struct sy_migration_state *o = find(before, n_before, after[i].spec.name);
		struct who w = who_of(c, &after[i]);

		if (o)
			changed(ev, o, &after[i], &w);
		else
			created(ev, &after[i], &w);
	}
	for (size_t i = 0; i < n_before; i++) {
		struct who w = who_of(c, &before[i]);
		char msg[SY_EVENT_MSG_MAX];

		if (find(after, n_after, before[i].spec.name))
			continue;
		msgf(msg, sizeof(msg), "deleted (was from %s)", before[i].origin);
		EMIT(ev, before[i].spec.name, "migration.deleted", msg, WHO_ATTRS(w));
	}
}

void sy_migration_events_commit(struct sy_events *ev, const struct sy_migration_state *before,
				size_t n_before, const struct sy_migration_state *after, size_t n_after)
{
	commit_events(ev, NULL, before, n_before, after, n_after);
}

void sy_migration_events_health(struct sy_events *ev, const struct sy_migration_state *m, uint32_t t,
				bool healthy, const char *why)
{
	char ep[SY_EP_STRLEN], count[32];

	if (!ev || t >= m->spec.n_target)
		return;
	sy_endpoint_format(&m->spec.target[t], ep, sizeof(ep));
	snprintf(count, sizeof(count), "%d/%u", __builtin_popcount(m->healthy_mask), m->spec.n_target);
	sy_events_emit(ev, m->spec.name, "target.health_changed",
		       SY_EVENT_ATTRS({"endpoint", ep}, {"healthy", healthy ? "true" : "false"},
				      {"healthy_targets", count}, {"error", !healthy && why ? why : ""}),
		       "target %s is %s%s%s (%s targets healthy)", ep, healthy ? "healthy" : "unhealthy",
		       !healthy && why && *why ? ": " : "", !healthy && why ? why : "", count);
}

void sy_migration_events_scope_upgraded(struct sy_events *ev, const struct sy_migration_state *m)
{
	char list[SY_SPEC_MAX_SCOPE * (SY_PREFIX_MAX + 4) + 1] = "";

	for (uint32_t i = 0; i < m->spec.n_scope; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "," : "",
			 m->spec.scope[i]);
	sy_warn("state",
		"%s: state of format 1: its prefixes also limited what is migrated; kept as scope: [%s] "
		"(prefixes now only count; docs/mirror.md)",
		m->spec.name, list);
	sy_events_emit(ev, m->spec.name, "migration.scope_upgraded", SY_EVENT_ATTRS({"scope", list}),
		       "prefixes of a format-1 state kept as the scope: %s (%u prefixes); keys outside it "
		       "are not migrated",
		       list, m->spec.n_scope);
}

void sy_migration_events_on_commit(void *ctx, const struct sy_commit *c)
{
	struct sy_events *ev = ctx;

	switch (c->kind) {
	case SY_COMMIT_LOAD:
		/* restored, not changed: the journal already has how it got here; except a
		 * state of the previous format whose prefixes became the scope */
		for (size_t i = 0; i < c->n_after; i++)
			if (c->after[i].scope_upgraded)
				sy_migration_events_scope_upgraded(ev, &c->after[i]);
		return;
	case SY_COMMIT_CHANGE:
	case SY_COMMIT_REMOTE:
		commit_events(ev, c, c->before, c->n_before, c->after, c->n_after);
		return;
	case SY_COMMIT_HEALTH:
		for (size_t i = 0; i < c->n_after; i++) {
			const struct sy_migration_state *m = &c->after[i];
			const struct sy_migration_state *o = sy_mset_by_id(c->before, c->n_before, m->id);
			uint8_t flipped = o ? (uint8_t)(m->healthy_mask ^ o->healthy_mask) : 0;

			for (uint32_t t = 0; t < m->spec.n_target; t++)
				if (flipped & (1u << t))
					sy_migration_events_health(ev, m, t, m->healthy_mask & (1u << t),
								   c->why);
		}
		return;
	}
}
