// SPDX-License-Identifier: Apache-2.0
/* diff.c — see diff.h. */
#include "registry/diff.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/pbjson.h"
#include "model/spec_pb.h"

/* ---- one spec field alone ------------------------------------------------------------ */

/* What fd takes in its message: a pointer for a repeated field. */
static size_t storage_size(const ProtobufCFieldDescriptor *fd)
{
	return fd->label == PROTOBUF_C_LABEL_REPEATED ? sizeof(void *) : sy_pb_value_size(fd);
}

/* A message holding only field fd of m (shallow: its data is m's; free() it). */
static ProtobufCMessage *field_alone(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char *tmp = calloc(1, d->sizeof_message);

	if (!tmp)
		return NULL;
	protobuf_c_message_init(d, tmp);
	memcpy(tmp + fd->offset, (const char *)m + fd->offset, storage_size(fd));
	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		memcpy(tmp + fd->quantifier_offset, (const char *)m + fd->quantifier_offset, sizeof(size_t));
	else if (fd->quantifier_offset)
		memcpy(tmp + fd->quantifier_offset, (const char *)m + fd->quantifier_offset,
		       sizeof(uint32_t));
	return (ProtobufCMessage *)tmp;
}

/* Field fd of m alone, packed: *out is malloc'd. */
static int field_packed(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, uint8_t **out,
			size_t *len)
{
	ProtobufCMessage *tmp = field_alone(m, fd);

	*out = NULL;
	if (!tmp)
		return -1;
	*len = protobuf_c_message_get_packed_size(tmp);
	*out = malloc(*len ? *len : 1);
	if (*out)
		protobuf_c_message_pack(tmp, *out);
	free(tmp);
	return *out ? 0 : -1;
}

/* Field fd of m as text: a repeated field as "a, b", an absent message as "". */
static void field_text(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, char *out, size_t n)
{
	const char *base = (const char *)m + fd->offset;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	out[0] = '\0';
	if (!f)
		return;
	if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t k = *(const size_t *)((const char *)m + fd->quantifier_offset);
		const char *arr = *(char *const *)base;
		size_t sz = sy_pb_value_size(fd);

		for (size_t i = 0; i < k; i++) {
			if (i)
				fputs(", ", f);
			sy_pb_value_print(f, fd, arr + i * sz, false);
		}
	} else {
		sy_pb_value_print(f, fd, base, false);
	}
	fclose(f);
	if (buf && snprintf(out, n, "%s", buf) >= (int)n && n > 4)
		strcpy(out + n - 4, "...");
	free(buf);
}

static bool skipped(const ProtobufCFieldDescriptor *fd)
{
	return strcmp(fd->name, "name") == 0 || strcmp(fd->name, "ratio_bp") == 0 ||
	       strcmp(fd->name, "pins") == 0;
}

/* Calls fn for every spec field (other than name, ratio_bp, pins) that differs. */
static int each_changed(const struct sy_migration_spec *a, const struct sy_migration_spec *b,
			int (*fn)(void *arg, const ProtobufCMessage *pa, const ProtobufCMessage *pb,
				  const ProtobufCFieldDescriptor *fd),
			void *arg)
{
	Switchyard__V1__MigrationSpec pa, pb;
	int e = 0;

	if (sy_spec_to_pb(a, &pa))
		return -ENOMEM;
	if (sy_spec_to_pb(b, &pb)) {
		sy_spec_pb_free(&pa);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < pa.base.descriptor->n_fields && !e; i++) {
		const ProtobufCFieldDescriptor *fd = &pa.base.descriptor->fields[i];
		uint8_t *x = NULL, *y = NULL;
		size_t nx = 0, ny = 0;

		if (skipped(fd))
			continue;
		if (field_packed(&pa.base, fd, &x, &nx) || field_packed(&pb.base, fd, &y, &ny))
			e = -ENOMEM;
		else if (nx != ny || memcmp(x, y, nx) != 0)
			e = fn(arg, &pa.base, &pb.base, fd);
		free(x);
		free(y);
	}
	sy_spec_pb_free(&pa);
	sy_spec_pb_free(&pb);
	return e;
}

struct names {
	char *out;
	size_t len, off;
};

static int add_name(void *arg, const ProtobufCMessage *pa, const ProtobufCMessage *pb,
		    const ProtobufCFieldDescriptor *fd)
{
	struct names *n = arg;

	(void)pa;
	(void)pb;
	if (n->off < n->len)
		n->off += (size_t)snprintf(n->out + n->off, n->len - n->off, "%s%s", n->off ? "," : "",
					   fd->name);
	return 0;
}

void sy_spec_changed_fields(const struct sy_migration_spec *a, const struct sy_migration_spec *b, char *out,
			    size_t len)
{
	struct names n = {.out = out, .len = len};

	out[0] = '\0';
	each_changed(a, b, add_name, &n);
}

/* ---- a set's diff -------------------------------------------------------------------- */

/* Appends a zeroed element of `size` bytes to the array whose pointer is at arrp (n
 * elements); returns it, or NULL when out of memory (the array unchanged). */
static void *append(void *arrp, size_t *n, size_t size)
{
	char *arr, *grown;

	memcpy(&arr, arrp, sizeof(arr)); /* any element type: the pointer is read as bytes */
	if (!(grown = realloc(arr, (*n + 1) * size)))
		return NULL;
	memcpy(arrp, &grown, sizeof(grown));
	memset(grown + *n * size, 0, size);
	return grown + (*n)++ * size;
}

static struct sy_field_change *add_field(struct sy_mig_diff *m, const char *field)
{
	struct sy_field_change *f = append(&m->fields, &m->n_fields, sizeof(*f));

	if (f)
		snprintf(f->field, sizeof(f->field), "%s", field);
	return f;
}

static int add_spec_field(void *arg, const ProtobufCMessage *pa, const ProtobufCMessage *pb,
			  const ProtobufCFieldDescriptor *fd)
{
	struct sy_mig_diff *m = arg;
	struct sy_field_change *f = add_field(m, fd->name);

	if (!f)
		return -ENOMEM;
	field_text(pa, fd, f->old_v, sizeof(f->old_v));
	field_text(pb, fd, f->new_v, sizeof(f->new_v));
	if (strcmp(fd->name, "legacy") == 0 || strcmp(fd->name, "target") == 0 ||
	    strcmp(fd->name, "client") == 0)
		m->moves_clients = true;
	return 0;
}

static const char *pin_side(const struct sy_migration_spec *s, const char *cgroup)
{
	for (size_t i = 0; s && i < s->n_pins; i++)
		if (strcmp(s->pins[i].cgroup, cgroup) == 0)
			return s->pins[i].side == SY_SIDE_TARGET ? "target" : "legacy";
	return "";
}

static int pin_change(struct sy_mig_diff *m, const struct sy_migration_spec *o,
		      const struct sy_migration_spec *n, const char *cgroup)
{
	const char *a = pin_side(o, cgroup), *b = pin_side(n, cgroup);
	char field[PATH_MAX + 8];
	struct sy_field_change *f;

	if (strcmp(a, b) == 0)
		return 0;
	snprintf(field, sizeof(field), "pins[%s]", cgroup);
	if (!(f = add_field(m, field)))
		return -ENOMEM;
	snprintf(f->old_v, sizeof(f->old_v), "%s", a);
	snprintf(f->new_v, sizeof(f->new_v), "%s", b);
	m->moves_clients = true;
	return 0;
}

static int diff_one(struct sy_mig_diff *m, const struct sy_migration_spec *o,
		    const struct sy_migration_spec *n)
{
	int e;

	if ((e = each_changed(o, n, add_spec_field, m)))
		return e;
	if (o->ratio_bp != n->ratio_bp) {
		struct sy_field_change *f = add_field(m, "ratio_bp");

		if (!f)
			return -ENOMEM;
		sy_ratio_format(o->ratio_bp, f->old_v, sizeof(f->old_v));
		sy_ratio_format(n->ratio_bp, f->new_v, sizeof(f->new_v));
		m->moves_clients = true;
	}
	for (size_t i = 0; i < n->n_pins; i++)
		if ((e = pin_change(m, o, n, n->pins[i].cgroup)))
			return e;
	for (size_t i = 0; i < o->n_pins; i++)
		if (!pin_side(n, o->pins[i].cgroup)[0] && (e = pin_change(m, o, n, o->pins[i].cgroup)))
			return e;
	return 0;
}

static struct sy_mig_diff *add_mig(struct sy_diff *d, const char *name, const char *change)
{
	struct sy_mig_diff *m = append(&d->migs, &d->n, sizeof(*m));

	if (m) {
		snprintf(m->name, sizeof(m->name), "%s", name);
		m->change = change;
	}
	return m;
}

int sy_mset_diff(const struct sy_migration_state *before, size_t n_before,
		 const struct sy_migration_state *after, size_t n_after, struct sy_diff *d)
{
	int e = 0;

	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < n_after && !e; i++) {
		const struct sy_migration_state *o = sy_mset_find(before, n_before, after[i].spec.name);
		struct sy_mig_diff *m = add_mig(d, after[i].spec.name, o ? "updated" : "created");

		if (!m) {
			e = -ENOMEM;
		} else if (!o) {
			struct sy_field_change *f = add_field(m, "migration");

			if (!f)
				e = -ENOMEM;
			else
				snprintf(f->new_v, sizeof(f->new_v), "created");
			m->moves_clients = true;
		} else if ((e = diff_one(m, &o->spec, &after[i].spec)) == 0 && !m->n_fields) {
			d->n--; /* unchanged */
		}
	}
	for (size_t i = 0; i < n_before && !e; i++) {
		struct sy_mig_diff *m;
		struct sy_field_change *f;

		if (sy_mset_find(after, n_after, before[i].spec.name))
			continue;
		if (!(m = add_mig(d, before[i].spec.name, "deleted")) || !(f = add_field(m, "migration"))) {
			e = -ENOMEM;
			break;
		}
		snprintf(f->old_v, sizeof(f->old_v), "present");
		m->moves_clients = true;
	}
	for (size_t i = 0; i < d->n; i++)
		d->moves_clients |= d->migs[i].moves_clients;
	if (e)
		sy_diff_free(d);
	return e;
}

void sy_diff_free(struct sy_diff *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->migs[i].fields);
	free(d->migs);
	memset(d, 0, sizeof(*d));
}

void sy_diff_summary(const struct sy_diff *d, char *buf, size_t n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->n && off < n; i++) {
		const struct sy_mig_diff *m = &d->migs[i];

		off += (size_t)snprintf(buf + off, n - off, "%s%s: ", i ? "; " : "", m->name);
		if (strcmp(m->change, "updated") != 0) {
			if (off < n)
				off += (size_t)snprintf(buf + off, n - off, "%s", m->change);
			continue;
		}
		for (size_t j = 0; j < m->n_fields && off < n; j++)
			off += (size_t)snprintf(buf + off, n - off, "%s%s", j ? "," : "", m->fields[j].field);
	}
}
