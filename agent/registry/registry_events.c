/* registry_events.c — see registry_events.h. Migrations are matched by name. Spec
 * fields other than ratio and pins are compared in their protobuf form one field at a
 * time (a message holding only that field, packed), so a field added to the spec is
 * reported by its proto name without being listed here. */
#include "registry/registry_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "model/endpoint.h"
#include "registry/events.h"
#include "registry/migration.h"
#include "model/spec_pb.h"

static const char *side_name(uint8_t side)
{
	return side == SY_SIDE_TARGET ? "target" : "legacy";
}

static const char *ratio_str(uint32_t bp, char *buf, size_t n)
{
	return sy_ratio_format(bp, buf, n);
}

static const char *eps_str(const struct sy_endpoint *eps, uint32_t n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < n && off < len; i++) {
		char one[SY_EP_STRLEN];

		sy_endpoint_format(&eps[i], one, sizeof(one));
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", one);
	}
	return buf;
}

/* ---- spec fields ------------------------------------------------------------------- */

static size_t storage_size(const ProtobufCFieldDescriptor *fd)
{
	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		return sizeof(void *);
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

/* Field fd of m alone, packed: *out is malloc'd. */
static int field_packed(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, uint8_t **out,
			size_t *len)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char *tmp = calloc(1, d->sizeof_message);

	if (!tmp)
		return -1;
	protobuf_c_message_init(d, tmp);
	memcpy(tmp + fd->offset, (const char *)m + fd->offset, storage_size(fd));
	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		memcpy(tmp + fd->quantifier_offset, (const char *)m + fd->quantifier_offset, sizeof(size_t));
	else if (fd->quantifier_offset)
		memcpy(tmp + fd->quantifier_offset, (const char *)m + fd->quantifier_offset,
		       sizeof(uint32_t));
	*len = protobuf_c_message_get_packed_size((ProtobufCMessage *)tmp);
	*out = malloc(*len ? *len : 1);
	if (*out)
		protobuf_c_message_pack((ProtobufCMessage *)tmp, *out);
	free(tmp); /* shallow: the field's data is m's */
	return *out ? 0 : -1;
}

/* Comma-separated proto names of the fields that differ, other than name, ratio_bp
 * and pins (reported as their own events). */
static void changed_fields(const struct sy_migration_spec *a, const struct sy_migration_spec *b, char *out,
			   size_t len)
{
	Switchyard__V1__MigrationSpec pa, pb;
	size_t off = 0;

	out[0] = '\0';
	if (sy_spec_to_pb(a, &pa))
		return;
	if (sy_spec_to_pb(b, &pb)) {
		sy_spec_pb_free(&pa);
		return;
	}
	for (unsigned i = 0; i < pa.base.descriptor->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &pa.base.descriptor->fields[i];
		uint8_t *x = NULL, *y = NULL;
		size_t nx = 0, ny = 0;

		if (strcmp(fd->name, "name") == 0 || strcmp(fd->name, "ratio_bp") == 0 ||
		    strcmp(fd->name, "pins") == 0)
			continue;
		if (field_packed(&pa.base, fd, &x, &nx) == 0 && field_packed(&pb.base, fd, &y, &ny) == 0 &&
		    (nx != ny || memcmp(x, y, nx) != 0) && off < len)
			off += (size_t)snprintf(out + off, len - off, "%s%s", off ? "," : "", fd->name);
		free(x);
		free(y);
	}
	sy_spec_pb_free(&pa);
	sy_spec_pb_free(&pb);
}

/* ---- events ------------------------------------------------------------------------ */

static void created(struct sy_events *ev, const struct sy_migration_state *m)
{
	char legacy[512], target[512], ratio[16], bp[16], pins[16];

	eps_str(m->spec.legacy, m->spec.n_legacy, legacy, sizeof(legacy));
	eps_str(m->spec.target, m->spec.n_target, target, sizeof(target));
	snprintf(bp, sizeof(bp), "%u", m->spec.ratio_bp);
	snprintf(pins, sizeof(pins), "%zu", m->spec.n_pins);
	sy_events_emit(ev, m->spec.name, "migration.created",
		       SY_EVENT_ATTRS({"origin", m->origin}, {"ratio_bp", bp},
				      {"client",
				       m->spec.client_mode == SY_CLIENT_CONNECTION ? "connection" : "cgroup"},
				      {"legacy", legacy}, {"target", target}, {"pins", pins}),
		       "created from %s: legacy %s, target %s, ratio %s", m->origin, legacy, target,
		       ratio_str(m->spec.ratio_bp, ratio, sizeof(ratio)));
}

static void pins_changed(struct sy_events *ev, const struct sy_migration_state *o,
			 const struct sy_migration_state *m)
{
	const char *name = m->spec.name;

	for (size_t i = 0; i < m->spec.n_pins; i++) {
		const struct sy_pin_spec *p = &m->spec.pins[i];
		const struct sy_pin_spec *was = NULL;

		for (size_t j = 0; j < o->spec.n_pins && !was; j++)
			if (strcmp(o->spec.pins[j].cgroup, p->cgroup) == 0)
				was = &o->spec.pins[j];
		if (!was)
			sy_events_emit(ev, name, "migration.pinned",
				       SY_EVENT_ATTRS({"cgroup", p->cgroup}, {"side", side_name(p->side)}),
				       "pinned %s to %s", p->cgroup, side_name(p->side));
		else if (was->side != p->side)
			sy_events_emit(ev, name, "migration.pinned",
				       SY_EVENT_ATTRS({"cgroup", p->cgroup}, {"side", side_name(p->side)},
						      {"old_side", side_name(was->side)}),
				       "pinned %s to %s (was %s)", p->cgroup, side_name(p->side),
				       side_name(was->side));
	}
	for (size_t j = 0; j < o->spec.n_pins; j++) {
		const struct sy_pin_spec *p = &o->spec.pins[j];
		int kept = 0;

		for (size_t i = 0; i < m->spec.n_pins && !kept; i++)
			kept = strcmp(m->spec.pins[i].cgroup, p->cgroup) == 0;
		if (!kept)
			sy_events_emit(ev, name, "migration.unpinned",
				       SY_EVENT_ATTRS({"cgroup", p->cgroup}, {"side", side_name(p->side)}),
				       "unpinned %s (was %s)", p->cgroup, side_name(p->side));
	}
}

static void changed(struct sy_events *ev, const struct sy_migration_state *o,
		    const struct sy_migration_state *m)
{
	char fields[256], a[16], b[16], ra[16], rb[16];

	changed_fields(&o->spec, &m->spec, fields, sizeof(fields));
	if (fields[0])
		sy_events_emit(ev, m->spec.name, "migration.updated",
			       SY_EVENT_ATTRS({"origin", m->origin}, {"changed", fields}),
			       "updated %s (from %s)", fields, m->origin);
	if (o->spec.ratio_bp != m->spec.ratio_bp) {
		snprintf(a, sizeof(a), "%u", o->spec.ratio_bp);
		snprintf(b, sizeof(b), "%u", m->spec.ratio_bp);
		sy_events_emit(
			ev, m->spec.name, "migration.ratio_changed",
			SY_EVENT_ATTRS({"origin", m->origin}, {"old_ratio_bp", a}, {"new_ratio_bp", b}),
			"ratio %s -> %s", ratio_str(o->spec.ratio_bp, ra, sizeof(ra)),
			ratio_str(m->spec.ratio_bp, rb, sizeof(rb)));
	}
	pins_changed(ev, o, m);
}

static const struct sy_migration_state *find(const struct sy_migration_state *s, size_t n, const char *name)
{
	return sy_mset_find(s, n, name);
}

void sy_migration_events_commit(struct sy_events *ev, const struct sy_migration_state *before,
				size_t n_before, const struct sy_migration_state *after, size_t n_after)
{
	if (!ev)
		return;
	for (size_t i = 0; i < n_after; i++) {
		const struct sy_migration_state *o = find(before, n_before, after[i].spec.name);

		if (o)
			changed(ev, o, &after[i]);
		else
			created(ev, &after[i]);
	}
	for (size_t i = 0; i < n_before; i++)
		if (!find(after, n_after, before[i].spec.name))
			sy_events_emit(ev, before[i].spec.name, "migration.deleted",
				       SY_EVENT_ATTRS({"origin", before[i].origin}), "deleted (was from %s)",
				       before[i].origin);
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
		sy_migration_events_commit(ev, c->before, c->n_before, c->after, c->n_after);
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
