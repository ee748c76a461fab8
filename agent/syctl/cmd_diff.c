// SPDX-License-Identifier: Apache-2.0
/* cmd_diff.c — previews and ownership: `syctl diff -f FILE` (what a daemon reload of
 * FILE would change), `syctl apply -f FILE --dry-run` (what applying it through the API
 * would change), both answered by the daemon's Control.Diff, which runs the registry's
 * own rule and commits nothing; and the views of who set a ratio or a pin (syctl get)
 * and who made an event (syctl events). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syctl/syctl.h"

#include "model/spec.h"
#include "model/spec_pb.h"

/* ---- previews ------------------------------------------------------------------------ */

static void print_diff(const Switchyard__V1__DiffResponse *d, const char *what)
{
	if (!d->n_migrations) {
		printf("%s: no change\n", what);
		return;
	}
	for (size_t i = 0; i < d->n_migrations; i++) {
		const Switchyard__V1__MigrationDiff *m = d->migrations[i];

		printf("%s %s%s\n", m->change, m->name, m->moves_clients ? "  (moves clients)" : "");
		for (size_t j = 0; j < m->n_fields; j++) {
			const Switchyard__V1__FieldChange *f = m->fields[j];

			if (strcmp(f->field, "migration") == 0)
				continue;
			printf("  %-24s %s -> %s\n", f->field, f->old_value[0] ? f->old_value : "(none)",
			       f->new_value[0] ? f->new_value : "(none)");
		}
	}
}

/* Sends FILE's migrations to Control.Diff: as a reload of `reload_as` (a path) or, with
 * NULL, as ApplyMigration would take them. */
static int preview(const char *cmd, const char *file, const char *reload_as)
{
	Switchyard__V1__DiffRequest req = SWITCHYARD__V1__DIFF_REQUEST__INIT;
	Switchyard__V1__MigrationSpec *pb = NULL, **pbp = NULL;
	struct sy_spec spec;
	struct sy_spec_err err;
	ProtobufCMessage *resp = NULL;
	size_t built = 0;
	int rc = EX_REFUSED;

	(void)cmd;
	if (sy_spec_load_file(file, &spec, &err)) {
		fprintf(stderr, "syctl: %s\n", err.msg);
		return EX_USAGE;
	}
	pb = calloc(spec.n + 1, sizeof(*pb));
	pbp = calloc(spec.n + 1, sizeof(*pbp));
	if (!pb || !pbp)
		goto out;
	for (; built < spec.n; built++) {
		if (sy_spec_to_pb(&spec.migs[built], &pb[built]))
			goto out;
		pbp[built] = &pb[built];
	}
	req.specs = pbp;
	req.n_specs = spec.n;
	req.file = (char *)(reload_as ? reload_as : "");
	if ((rc = call("/switchyard.v1.Control/Diff", &req.base, &switchyard__v1__diff_response__descriptor,
		       &resp)))
		goto out;
	if (json)
		print_json(resp);
	else
		print_diff((const void *)resp, file);
	protobuf_c_message_free_unpacked(resp, NULL);
out:
	for (size_t i = 0; i < built; i++)
		sy_spec_pb_free(&pb[i]);
	free(pb);
	free(pbp);
	sy_spec_free(&spec);
	return rc;
}

int cmd_diff(int argc, char **argv)
{
	const char *file = NULL;
	char abs[PATH_MAX];

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--file") == 0) && i + 1 < argc)
			file = argv[++i];
		else
			return usage_err("diff", "unexpected argument \"%s\"", argv[i]);
	}
	if (!file)
		return usage_err("diff", "-f FILE is required");
	/* the daemon names a config file's migrations "file:PATH" by the path it was given */
	if (!realpath(file, abs)) {
		fprintf(stderr, "syctl: %s: cannot resolve the path\n", file);
		return EX_USAGE;
	}
	return preview("diff", abs, abs);
}

int apply_dry_run(const char *file)
{
	return preview("apply", file, NULL);
}

/* ---- ownership ----------------------------------------------------------------------- */

static void by(const char *set_by, const char *reason, char *buf, size_t n)
{
	snprintf(buf, n, "set by %s%s%s", set_by[0] ? set_by : "(unknown)", reason[0] ? ": " : "", reason);
}

void print_ratio_owner(const Switchyard__V1__Migration *m)
{
	const Switchyard__V1__Ownership *w = m->ownership;
	char b[PATH_MAX + 300], f[SY_RATIO_STRLEN];

	if (!w)
		return;
	by(w->ratio_set_by, w->ratio_reason, b, sizeof(b));
	printf(" (%s", b);
	if (w->file_declared && w->file_ratio_bp != m->spec->ratio_bp)
		printf("; the file says %s", sy_ratio_format(w->file_ratio_bp, f, sizeof(f)));
	printf(")");
}

void print_pins_owned(const Switchyard__V1__Migration *m)
{
	const Switchyard__V1__Ownership *w = m->ownership;
	char b[PATH_MAX + 300];

	if (!w) {
		for (size_t i = 0; i < m->spec->n_pins; i++)
			printf("pin:       %s -> %s\n", m->spec->pins[i]->cgroup,
			       m->spec->pins[i]->side == SWITCHYARD__V1__SIDE__SIDE_TARGET ? "target"
											   : "legacy");
		return;
	}
	for (size_t i = 0; i < w->n_pins; i++) {
		const Switchyard__V1__PinOwnership *p = w->pins[i];

		if (!p->side[0]) {
			printf("pin:       %s -> (none) (the file says %s)\n", p->cgroup, p->file_side);
			continue;
		}
		by(p->set_by, p->reason, b, sizeof(b));
		printf("pin:       %s -> %s (%s", p->cgroup, p->side, b);
		if (w->file_declared && strcmp(p->file_side, p->side) != 0)
			printf("; %s%s", p->file_side[0] ? "the file says " : "not in the file",
			       p->file_side);
		printf(")\n");
	}
}

/* ---- events -------------------------------------------------------------------------- */

static const char *attr(const Switchyard__V1__Event *e, const char *key)
{
	for (size_t i = 0; i < e->n_attributes; i++)
		if (strcmp(e->attributes[i]->key, key) == 0)
			return e->attributes[i]->value;
	return "";
}

const char *event_who(const Switchyard__V1__Event *e, char *buf, size_t n)
{
	const char *origin = attr(e, "origin"), *peer = attr(e, "peer"), *reason = attr(e, "reason");

	buf[0] = '\0';
	if (origin[0] && strncmp(e->kind, "migration.", 10) == 0)
		snprintf(buf, n, "  [by %s%s%s%s%s]", origin, peer[0] ? " " : "", peer, reason[0] ? ": " : "",
			 reason);
	return buf;
}
