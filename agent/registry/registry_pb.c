// SPDX-License-Identifier: Apache-2.0
/* registry_pb.c — see registry_pb.h. */
#include "registry/registry_pb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/spec_pb.h"
#include "registry/store_file.h"

/* A SetBy borrowing b's strings; NULL when nobody is recorded (out of memory too). */
static Switchyard__V1__SetBy *set_by_pb(const struct sy_set_by *b)
{
	Switchyard__V1__SetBy *x;

	if (!b || !b->origin[0] || !(x = calloc(1, sizeof(*x))))
		return NULL;
	switchyard__v1__set_by__init(x);
	x->origin = (char *)b->origin;
	x->reason = (char *)b->reason;
	return x;
}

static void set_by_from_pb(struct sy_set_by *b, const Switchyard__V1__SetBy *x)
{
	snprintf(b->origin, sizeof(b->origin), "%s", x && x->origin ? x->origin : "");
	snprintf(b->reason, sizeof(b->reason), "%s", x && x->reason ? x->reason : "");
}

/* A JobRequest borrowing q's strings; NULL when none was asked (absent from the state,
 * so a state without requests reads as before), and out of memory too. */
static Switchyard__V1__JobRequest *job_req_pb(const struct sy_job_request *q)
{
	Switchyard__V1__JobRequest *x;

	if (!q->nonce || !(x = calloc(1, sizeof(*x))))
		return NULL;
	switchyard__v1__job_request__init(x);
	x->nonce = q->nonce;
	x->node = (char *)q->node;
	x->requested_unix_ms = q->requested_unix_ms;
	x->repair = q->repair;
	x->keys_per_s = q->keys_per_s;
	x->bytes_per_s = q->bytes_per_s;
	x->taken_by = (char *)q->taken_by;
	x->started_unix_ms = q->started_unix_ms;
	x->finished_unix_ms = q->finished_unix_ms;
	return x;
}

static void job_req_from_pb(struct sy_job_request *q, const Switchyard__V1__JobRequest *x)
{
	memset(q, 0, sizeof(*q));
	if (!x)
		return;
	q->nonce = x->nonce;
	snprintf(q->node, sizeof(q->node), "%s", x->node ? x->node : "");
	q->requested_unix_ms = x->requested_unix_ms;
	q->repair = x->repair;
	q->keys_per_s = x->keys_per_s;
	q->bytes_per_s = x->bytes_per_s;
	snprintf(q->taken_by, sizeof(q->taken_by), "%s", x->taken_by ? x->taken_by : "");
	q->started_unix_ms = x->started_unix_ms;
	q->finished_unix_ms = x->finished_unix_ms;
}

void sy_mset_pb_free(Switchyard__V1__State *st)
{
	for (size_t i = 0; i < st->n_migrations; i++) {
		Switchyard__V1__MigrationState *ms = st->migrations[i];

		if (!ms)
			continue;
		if (ms->spec) {
			sy_spec_pb_free(ms->spec);
			free(ms->spec);
		}
		for (size_t j = 0; j < ms->n_pins; j++) {
			if (ms->pins[j])
				free(ms->pins[j]->set_by);
			free(ms->pins[j]);
		}
		free(ms->pins);
		free(ms->cutover);
		if (ms->file_spec) {
			sy_spec_pb_free(ms->file_spec);
			free(ms->file_spec);
		}
		free(ms->ratio_set_by);
		free(ms->audit_request);
		free(ms->backfill_request);
		free(ms);
	}
	free(st->migrations);
}

int sy_mset_to_pb(const struct sy_migration_state *s, size_t n, uint64_t revision, Switchyard__V1__State *st)
{
	switchyard__v1__state__init(st);
	st->format = SY_STATE_FORMAT;
	st->generation = revision;
	st->migrations = calloc(n ? n : 1, sizeof(*st->migrations));
	if (!st->migrations)
		return -ENOMEM;
	st->n_migrations = n;
	for (size_t i = 0; i < n; i++) {
		Switchyard__V1__MigrationState *ms = calloc(1, sizeof(*ms));

		if (!ms)
			return -ENOMEM;
		st->migrations[i] = ms;
		switchyard__v1__migration_state__init(ms);
		ms->spec = calloc(1, sizeof(*ms->spec));
		if (!ms->spec || sy_spec_to_pb(&s[i].spec, ms->spec))
			return -ENOMEM;
		ms->id = s[i].id;
		ms->salt = s[i].salt;
		ms->created_unix_ms = s[i].created_unix_ms;
		ms->updated_unix_ms = s[i].updated_unix_ms;
		ms->origin = (char *)s[i].origin;
		ms->cutover = calloc(1, sizeof(*ms->cutover));
		if (!ms->cutover)
			return -ENOMEM;
		switchyard__v1__cutover_state__init(ms->cutover);
		ms->cutover->phase = (Switchyard__V1__CutoverPhase)s[i].co.phase;
		ms->cutover->paused_from = (Switchyard__V1__CutoverPhase)s[i].co.paused_from;
		ms->cutover->step = s[i].co.step;
		ms->cutover->phase_started_unix_ms = s[i].co.phase_started_unix_ms;
		ms->cutover->bake_until_unix_ms = s[i].co.bake_until_unix_ms;
		ms->cutover->changed_unix_ms = s[i].co.changed_unix_ms;
		ms->cutover->ready = s[i].co.ready;
		ms->cutover->reason = (char *)s[i].co.reason;
		ms->pins = calloc(s[i].spec.n_pins ? s[i].spec.n_pins : 1, sizeof(*ms->pins));
		if (!ms->pins)
			return -ENOMEM;
		ms->n_pins = s[i].spec.n_pins;
		for (size_t j = 0; j < s[i].spec.n_pins; j++) {
			Switchyard__V1__PinState *ps = calloc(1, sizeof(*ps));

			if (!ps)
				return -ENOMEM;
			switchyard__v1__pin_state__init(ps);
			ps->cgroup_id = s[i].pin_cgroup_ids[j];
			ps->set_by = set_by_pb(s[i].pin_by ? &s[i].pin_by[j] : NULL);
			ms->pins[j] = ps; /* the spec inside carries cgroup and side */
		}
		ms->ratio_set_by = set_by_pb(&s[i].ratio_by);
		ms->audit_request = job_req_pb(&s[i].job_req[SY_JOBREQ_AUDIT]);
		ms->backfill_request = job_req_pb(&s[i].job_req[SY_JOBREQ_BACKFILL]);
		if (s[i].file_spec) {
			ms->file_spec = calloc(1, sizeof(*ms->file_spec));
			if (!ms->file_spec || sy_spec_to_pb(s[i].file_spec, ms->file_spec))
				return -ENOMEM;
		}
	}
	return 0;
}

int sy_mset_from_pb(const Switchyard__V1__State *st, struct sy_migration_state **out, size_t *n,
		    struct sy_spec_err *err)
{
	struct sy_migration_state *s = calloc(st->n_migrations + 1, sizeof(*s));
	int e = 0;

	*out = NULL;
	*n = 0;
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < st->n_migrations; i++) {
		Switchyard__V1__MigrationState *ms = st->migrations[i];

		if (!ms->spec || (e = sy_spec_from_pb(ms->spec, &s[i].spec, err)) ||
		    ms->n_pins != s[i].spec.n_pins || ms->id == 0 || ms->id >= SY_MAX_MIGRATIONS) {
			if (!e)
				sy_spec_err_set(err, "state file: migration %zu is inconsistent", i);
			sy_mset_free(s, i + 1);
			return -EBADMSG;
		}
		if (st->format < 2 && s[i].spec.n_prefixes && !s[i].spec.n_scope) {
			/* format 1: prefixes also limited what was mirrored, backfilled and
			 * audited; a running migration keeps doing exactly that */
			for (uint32_t j = 0; j < s[i].spec.n_prefixes; j++)
				strcpy(s[i].spec.scope[j], s[i].spec.prefixes[j]);
			s[i].spec.n_scope = s[i].spec.n_prefixes;
			s[i].scope_upgraded = true;
		}
		s[i].id = ms->id;
		s[i].salt = ms->salt;
		s[i].created_unix_ms = ms->created_unix_ms;
		s[i].updated_unix_ms = ms->updated_unix_ms;
		snprintf(s[i].origin, sizeof(s[i].origin), "%s", ms->origin ? ms->origin : "api");
		s[i].pin_cgroup_ids = calloc(ms->n_pins ? ms->n_pins : 1, sizeof(uint64_t));
		if (!s[i].pin_cgroup_ids) {
			sy_mset_free(s, i + 1);
			return -ENOMEM;
		}
		s[i].pin_by = calloc(ms->n_pins ? ms->n_pins : 1, sizeof(*s[i].pin_by));
		if (!s[i].pin_by) {
			sy_mset_free(s, i + 1);
			return -ENOMEM;
		}
		for (size_t j = 0; j < ms->n_pins; j++) {
			s[i].pin_cgroup_ids[j] = ms->pins[j]->cgroup_id;
			set_by_from_pb(&s[i].pin_by[j], ms->pins[j]->set_by);
		}
		set_by_from_pb(&s[i].ratio_by, ms->ratio_set_by);
		job_req_from_pb(&s[i].job_req[SY_JOBREQ_AUDIT], ms->audit_request);
		job_req_from_pb(&s[i].job_req[SY_JOBREQ_BACKFILL], ms->backfill_request);
		if (ms->file_spec) {
			s[i].file_spec = calloc(1, sizeof(*s[i].file_spec));
			if (!s[i].file_spec || sy_spec_from_pb(ms->file_spec, s[i].file_spec, err)) {
				free(s[i].file_spec);
				s[i].file_spec = NULL;
				sy_mset_free(s, i + 1);
				return -EBADMSG;
			}
		}
		if (ms->cutover && (unsigned)ms->cutover->phase < SY_PHASES &&
		    (unsigned)ms->cutover->paused_from < SY_PHASES) {
			s[i].co.phase = (uint8_t)ms->cutover->phase;
			s[i].co.paused_from = (uint8_t)ms->cutover->paused_from;
			s[i].co.step = ms->cutover->step;
			s[i].co.phase_started_unix_ms = ms->cutover->phase_started_unix_ms;
			s[i].co.bake_until_unix_ms = ms->cutover->bake_until_unix_ms;
			s[i].co.changed_unix_ms = ms->cutover->changed_unix_ms;
			s[i].co.ready = ms->cutover->ready;
			snprintf(s[i].co.reason, sizeof(s[i].co.reason), "%s",
				 ms->cutover->reason ? ms->cutover->reason : "");
		}
	}
	*out = s;
	*n = st->n_migrations;
	return 0;
}
