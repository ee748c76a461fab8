// SPDX-License-Identifier: Apache-2.0
/* registry.c — see registry.h. The commit path, the edits of one migration (ratio,
 * pins, plan progress), deletion, reads and health; the changes that declare
 * migrations (ApplyMigration, a config file) and their previews are registry_apply.c.
 *
 * Every change builds a candidate set (a deep copy with the change) and validates it;
 * the commit then hands the store the new state, which calls back to write the kernel
 * maps between making it durable and making it visible. If the maps or the store
 * fail, the maps are written back from the old set: callers see all or nothing. Only
 * then is the candidate swapped in and the subscribers told, in the order they
 * subscribed.
 *
 * The kernel maps are a step of the commit, not a subscriber: a subscriber cannot fail
 * a commit, and the maps must never hold a set the store does not.
 */
#include "registry/registry.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/fnv.h"
#include "core/log.h"
#include "core/loop.h"
#include "model/hostname.h"
#include "kernel/mapsync.h"
#include "model/endpoint.h"
#include "registry/diff.h"
#include "registry/ownership.h"
#include "registry/registry_impl.h"
#include "registry/registry_pb.h"
#include "registry/store.h"

/* The salt is derived from the name (FNV-1a): a migration re-created under the same
 * name, or declared on another host, splits clients the same way. */
uint64_t sy_reg_salt(const char *name)
{
	return sy_fnv1a(name, strlen(name), SY_FNV_OFFSET);
}

/* What the phase implies for the rest of the migration's state: mirror: auto follows
 * the plan (both from the backfill on, off once finished), and a plan added or removed
 * by an update starts pending or ends. */
void sy_reg_derive(struct sy_migration_state *m)
{
	if (!m->spec.plan.n_steps) {
		memset(&m->co, 0, sizeof(m->co));
	} else {
		if (m->co.phase == SY_PHASE_NONE) {
			memset(&m->co, 0, sizeof(m->co));
			m->co.phase = SY_PHASE_PENDING;
			m->co.changed_unix_ms = sy_unix_ms();
		}
		if (m->co.step >= m->spec.plan.n_steps)
			m->co.step = m->spec.plan.n_steps - 1;
	}
	m->spec.mirror_hint = sy_phase_mirrors(m->co.phase) ? 1 : m->co.phase == SY_PHASE_FINISHED ? -1 : 0;
}

/* Whether the controller owns the ratio: an update of the spec keeps the live one. */
bool sy_reg_plan_running(const struct sy_migration_state *m)
{
	return m->co.phase >= SY_PHASE_BACKFILLING && m->co.phase <= SY_PHASE_ROLLED_BACK;
}

/* A copy of the current set with room for one more. */
int sy_reg_clone(const struct sy_registry *r, struct sy_migration_state **out)
{
	struct sy_migration_state *s = calloc(r->n + 1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		if (sy_mstate_copy(&s[i], &r->migs[i])) {
			sy_mset_free(s, i);
			return -ENOMEM;
		}
	}
	*out = s;
	return 0;
}

ssize_t sy_reg_find(const struct sy_migration_state *s, size_t n, const char *name)
{
	const struct sy_migration_state *m = sy_mset_find(s, n, name);

	return m ? m - s : -1;
}

/* ---- kernel maps ---------------------------------------------------------------- */

static void map_view(const struct sy_migration_state *m, struct sy_map_mig *v)
{
	v->id = m->id;
	v->salt = m->salt;
	v->healthy_mask = m->healthy_mask;
	v->spec = &m->spec;
	v->pin_cgroup_ids = m->pin_cgroup_ids;
}

/* Makes the maps hold s; without a kernel (bpf NULL) there are no maps to write. */
static int write_maps(struct sy_registry *r, const struct sy_migration_state *s, size_t n)
{
	struct sy_map_mig v[SY_MAX_MIGRATIONS];

	if (!r->bpf)
		return 0;
	if (n > SY_MAX_MIGRATIONS)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		map_view(&s[i], &v[i]);
	return sy_mapsync_write(r->bpf, v, n);
}

/* ---- the commit path ------------------------------------------------------------ */

/* Swaps s in as the registry's set and tells every subscriber, in order. */
static void publish(struct sy_registry *r, enum sy_commit_kind kind, struct sy_migration_state *s, size_t n,
		    const char *why, const struct sy_who *who)
{
	struct sy_migration_state *old = r->migs;
	size_t n_old = r->n;
	struct sy_commit c = {
		.kind = kind,
		.revision = r->store ? r->store->revision : 0,
		.before = old,
		.n_before = n_old,
		.after = s,
		.n_after = n,
		.why = why,
		.origin = who ? who->origin : NULL,
		.peer = who ? who->peer : NULL,
		.reason = who ? who->reason : NULL,
	};

	r->migs = s;
	r->n = n;
	r->notifying = true;
	for (size_t i = 0; i < r->n_subs; i++)
		r->subs[i].fn(r->subs[i].ctx, &c);
	r->notifying = false;
	sy_mset_free(old, n_old);
}

struct apply_arg {
	struct sy_registry *r;
	const struct sy_migration_state *s;
	size_t n;
	bool ran;
	int e;
};

static int apply_maps(void *arg)
{
	struct apply_arg *a = arg;

	a->ran = true;
	a->e = write_maps(a->r, a->s, a->n);
	return a->e;
}

/* Who makes the change being built: what the caller said (sy_registry_set_who), else
 * dflt ("api" for a change through the registry's API, "plan" for the controller's). */
struct sy_who sy_reg_who(const struct sy_registry *r, const char *dflt)
{
	struct sy_who w = r->who;

	if (!w.origin[0])
		snprintf(w.origin, sizeof(w.origin), "%s", dflt);
	return w;
}

/* What the operator hears when the store refused commit e: a conflict (-ESTALE: a shared
 * store where another agent or operator committed first) and an outage (-ENOTCONN) name
 * the store and the generation this agent holds, and are returned as they are; anything
 * else is -EIO. */
static int store_refused(const struct sy_registry *r, int e, struct sy_spec_err *err)
{
	if (e != -ESTALE && e != -ENOTCONN) {
		sy_reg_err(err, "persist state in %s: %s", r->store->where, strerror(-e));
		return -EIO;
	}
	sy_reg_err(err,
		   e == -ESTALE ? "changed elsewhere since this agent read it (%s is past generation %llu): "
				  "nothing changed; read it again and retry"
				: "store %s unreachable: this agent keeps steering on generation %llu and "
				  "refuses changes until it is back",
		   r->store->where, (unsigned long long)r->store->revision);
	return e;
}

/* Makes `cand` the registry's set: stored, maps written, subscribers told. Takes cand. */
int sy_reg_commit(struct sy_registry *r, struct sy_migration_state *cand, size_t ncand,
		  const struct sy_who *who, struct sy_spec_err *err)
{
	struct apply_arg a = {.r = r, .s = cand, .n = ncand};
	Switchyard__V1__State st;
	int e;

	if (r->notifying) {
		/* the subscribers being called hold the old and new sets */
		sy_reg_err(err, "the registry cannot change while it reports a change");
		sy_mset_free(cand, ncand);
		return -EDEADLK;
	}
	if ((e = sy_ownership_stamp(cand, ncand, r->migs, r->n, who))) {
		sy_mset_free(cand, ncand);
		return e;
	}
	e = sy_mset_to_pb(cand, ncand, r->store->revision + 1, &st);
	if (!e)
		e = sy_store_commit(r->store, &st, apply_maps, &a);
	sy_mset_pb_free(&st);
	if (e) {
		int ret = -EIO;

		if (a.ran && a.e)
			sy_reg_err(err, "update kernel maps: %s", strerror(-a.e));
		else
			ret = store_refused(r, e, err);
		if (a.ran)
			write_maps(r, r->migs, r->n);
		sy_mset_free(cand, ncand);
		return ret;
	}
	publish(r, SY_COMMIT_CHANGE, cand, ncand, NULL, who);
	return 0;
}

void sy_registry_set_who(struct sy_registry *r, const char *origin, const char *peer, const char *reason)
{
	snprintf(r->who.origin, sizeof(r->who.origin), "%s", origin ? origin : "");
	snprintf(r->who.peer, sizeof(r->who.peer), "%s", peer ? peer : "");
	snprintf(r->who.reason, sizeof(r->who.reason), "%s", reason ? reason : "");
}

int sy_registry_subscribe(struct sy_registry *r, const char *name, sy_registry_sub_fn fn, void *ctx)
{
	struct sy_commit c = {.kind = SY_COMMIT_LOAD, .after = r->migs, .n_after = r->n};

	if (r->n_subs == MAX_SUBS || r->notifying)
		return r->notifying ? -EDEADLK : -ENOSPC;
	snprintf(r->subs[r->n_subs].name, sizeof(r->subs[0].name), "%s", name);
	r->subs[r->n_subs].fn = fn;
	r->subs[r->n_subs].ctx = ctx;
	r->n_subs++;
	c.revision = r->store ? r->store->revision : 0;
	r->notifying = true;
	fn(ctx, &c); /* catch up: the set it starts from */
	r->notifying = false;
	return 0;
}

void sy_registry_unsubscribe(struct sy_registry *r, sy_registry_sub_fn fn, void *ctx)
{
	for (size_t i = 0; r && i < r->n_subs; i++) {
		if (r->subs[i].fn != fn || r->subs[i].ctx != ctx)
			continue;
		memmove(&r->subs[i], &r->subs[i + 1], (r->n_subs - i - 1) * sizeof(r->subs[0]));
		r->n_subs--;
		return;
	}
}

/* ---- lifecycle ------------------------------------------------------------------ */

struct sy_registry *sy_registry_new(struct sy_bpf *bpf, struct sy_store *store)
{
	struct sy_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->bpf = bpf;
	r->store = store;
	return r;
}

void sy_registry_free(struct sy_registry *r)
{
	if (!r)
		return;
	sy_mset_free(r->migs, r->n);
	free(r);
}

struct sy_bpf *sy_registry_bpf(const struct sy_registry *r)
{
	return r->bpf;
}

/* The cgroup ids of m's pins. kept (may be NULL): the running migration, whose pins the
 * file rule kept as they run — one whose cgroup is gone keeps its id (the reload moves
 * nothing; unpin it by hand) rather than failing the whole file. */
int sy_reg_resolve_pins(struct sy_migration_state *m, const struct sy_migration_state *kept,
			struct sy_spec_err *err)
{
	free(m->pin_cgroup_ids);
	m->pin_cgroup_ids = calloc(m->spec.n_pins ? m->spec.n_pins : 1, sizeof(uint64_t));
	if (!m->pin_cgroup_ids)
		return -ENOMEM;
	for (size_t i = 0; i < m->spec.n_pins; i++) {
		struct stat st;

		if (stat(m->spec.pins[i].cgroup, &st) < 0) {
			size_t k = kept ? kept->spec.n_pins : 0;

			for (size_t j = 0; kept && j < kept->spec.n_pins; j++)
				if (strcmp(kept->spec.pins[j].cgroup, m->spec.pins[i].cgroup) == 0 &&
				    kept->spec.pins[j].side == m->spec.pins[i].side)
					k = j;
			if (kept && k < kept->spec.n_pins) {
				m->pin_cgroup_ids[i] = kept->pin_cgroup_ids[k];
				continue;
			}
			sy_reg_err(err, "pins[%zu].cgroup: %s: %s", i, m->spec.pins[i].cgroup,
				   strerror(errno));
			return -EINVAL;
		}
		m->pin_cgroup_ids[i] = st.st_ino; /* cgroup v2: the id is the directory's inode */
	}
	return 0;
}

/* A shared store holds the cgroup ids of the node that applied a pin; this node's own
 * cgroup of that path has another id. A path this node does not have pins nothing
 * here (id 0 matches no cgroup). */
static void resolve_pins_here(struct sy_migration_state *m)
{
	for (size_t i = 0; i < m->spec.n_pins; i++) {
		struct stat st;

		if (stat(m->spec.pins[i].cgroup, &st) == 0) {
			m->pin_cgroup_ids[i] = st.st_ino;
		} else {
			if (m->pin_cgroup_ids[i])
				sy_warn("state", "%s: pin of %s: no such cgroup on this node", m->spec.name,
					m->spec.pins[i].cgroup);
			m->pin_cgroup_ids[i] = 0;
		}
	}
}

/* Completes a set read from the store: derived fields, and the kernel's health (a
 * restarted daemon keeps steering exactly as before until its first health check). */
static void settle_loaded(struct sy_registry *r, struct sy_migration_state *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sy_map_mig v;

		if (r->store && r->store->shared)
			resolve_pins_here(&s[i]);
		sy_reg_derive(&s[i]);
		map_view(&s[i], &v);
		s[i].healthy_mask = r->bpf ? sy_mapsync_healthy_mask(r->bpf, &v) : 0;
	}
}

/* A change made elsewhere: the maps follow it; if they cannot, the agent stays on what
 * it applied last (fail static) and says so. */
static void on_remote(void *ctx, const Switchyard__V1__State *st)
{
	struct sy_registry *r = ctx;
	struct sy_spec_err err = {{0}};
	struct sy_migration_state *s;
	size_t n;
	int e;

	if (r->notifying) {
		sy_error("state", "a stored change arrived while a change is reported: ignored");
		return;
	}
	if ((e = sy_mset_from_pb(st, &s, &n, &err))) {
		sy_error("state", "stored change at revision %llu refused: %s",
			 (unsigned long long)st->generation, err.msg);
		return;
	}
	settle_loaded(r, s, n);
	if ((e = write_maps(r, s, n))) {
		sy_error("state", "stored change at revision %llu: update kernel maps: %s",
			 (unsigned long long)st->generation, strerror(-e));
		write_maps(r, r->migs, r->n);
		sy_mset_free(s, n);
		return;
	}
	publish(r, SY_COMMIT_REMOTE, s, n, NULL, NULL);
}

static const char *load_error(int e)
{
	switch (e) {
	case -EBADMSG:
		return "not a valid state file";
	case -ENODATA:
		return "empty state file";
	case -ENOTCONN:
		return "unreachable, and this node keeps no copy of a state to start from";
	default:
		return strerror(-e);
	}
}

int sy_registry_load(struct sy_registry *r, struct sy_spec_err *err)
{
	Switchyard__V1__State *st = NULL;
	struct sy_migration_state *s;
	size_t n = 0;
	int e = sy_store_load(r->store, &st);

	if (e) {
		sy_reg_err(err, "read state %s: %s", r->store->where, load_error(e));
		return e;
	}
	if (st) {
		e = sy_mset_from_pb(st, &s, &n, err);
		switchyard__v1__state__free_unpacked(st, NULL);
		if (e)
			return e;
	} else if (!(s = calloc(1, sizeof(*s)))) {
		return -ENOMEM;
	}
	settle_loaded(r, s, n);
	if ((e = write_maps(r, s, n))) {
		sy_reg_err(err, "update kernel maps: %s", strerror(-e));
		sy_mset_free(s, n);
		return -EIO;
	}
	publish(r, SY_COMMIT_LOAD, s, n, NULL, NULL);
	if ((e = sy_store_watch(r->store, on_remote, r))) {
		sy_reg_err(err, "watch state %s: %s", r->store->where, strerror(-e));
		return e;
	}
	return 0;
}

/* ---- changes -------------------------------------------------------------------- */

int sy_reg_has_target_clients(const struct sy_migration_state *m)
{
	if (m->spec.ratio_bp > 0)
		return 1;
	for (size_t i = 0; i < m->spec.n_pins; i++)
		if (m->spec.pins[i].side == SY_SIDE_TARGET)
			return 1;
	return 0;
}

int sy_registry_delete(struct sy_registry *r, const char *name, bool force, struct sy_spec_err *err)
{
	struct sy_migration_state *cand;
	ssize_t at = sy_reg_find(r->migs, r->n, name);
	size_t n = r->n;
	struct sy_who who;
	int e;

	if (at < 0)
		return sy_registry_not_found(r, name, err);
	if (!force && sy_reg_has_target_clients(&r->migs[at])) {
		char ratio[SY_RATIO_STRLEN];

		sy_reg_err(err,
			   "migration \"%s\" still sends clients to its target (ratio %s%s); set the "
			   "ratio to 0%% first, or force",
			   name, sy_ratio_format(r->migs[at].spec.ratio_bp, ratio, sizeof(ratio)),
			   r->migs[at].spec.ratio_bp ? "" : ", pins to target");
		return -EBUSY;
	}
	if ((e = sy_reg_clone(r, &cand)))
		return e;
	sy_mstate_free(&cand[at]);
	memmove(&cand[at], &cand[at + 1], (n - (size_t)at - 1) * sizeof(*cand));
	n--;
	who = sy_reg_who(r, "api");
	return sy_reg_commit(r, cand, n, &who, err);
}

/* Clones the set, lets `change` edit the named migration, commits. dflt: who makes it
 * when the caller said nothing (sy_registry_set_who). */
static int edit(struct sy_registry *r, const char *name, const char *dflt, struct sy_spec_err *err,
		int (*change)(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err),
		const void *arg)
{
	struct sy_migration_state *cand;
	ssize_t at = sy_reg_find(r->migs, r->n, name);
	struct sy_who who = sy_reg_who(r, dflt);
	int e;

	if (at < 0)
		return sy_registry_not_found(r, name, err);
	if ((e = sy_reg_clone(r, &cand)))
		return e;
	if ((e = change(&cand[at], arg, err))) {
		sy_mset_free(cand, r->n);
		return e;
	}
	cand[at].updated_unix_ms = sy_unix_ms();
	return sy_reg_commit(r, cand, r->n, &who, err);
}

static int change_ratio(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err)
{
	uint32_t bp = *(const uint32_t *)arg;

	if (bp > SY_RATIO_MAX) {
		sy_reg_err(err, "ratio_bp: %u is out of range 0..%u", bp, SY_RATIO_MAX);
		return -EINVAL;
	}
	m->spec.ratio_bp = bp;
	return 0;
}

int sy_registry_set_ratio(struct sy_registry *r, const char *name, uint32_t ratio_bp, struct sy_spec_err *err)
{
	return edit(r, name, "api", err, change_ratio, &ratio_bp);
}

struct cutover_arg {
	const struct sy_cutover_state *co;
	int64_t ratio_bp;
};

static int change_cutover(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err)
{
	const struct cutover_arg *ca = arg;

	if (ca->ratio_bp > SY_RATIO_MAX) {
		sy_reg_err(err, "ratio_bp: %lld is out of range 0..%u", (long long)ca->ratio_bp,
			   SY_RATIO_MAX);
		return -EINVAL;
	}
	if (ca->ratio_bp >= 0)
		m->spec.ratio_bp = (uint32_t)ca->ratio_bp;
	m->co = *ca->co;
	sy_reg_derive(m);
	return 0;
}

int sy_registry_set_cutover(struct sy_registry *r, const char *name, const struct sy_cutover_state *co,
			    int64_t ratio_bp, struct sy_spec_err *err)
{
	struct cutover_arg ca = {.co = co, .ratio_bp = ratio_bp};

	return edit(r, name, "plan", err, change_cutover, &ca);
}

struct job_req_arg {
	int kind;
	const struct sy_job_request *q;
};

static int change_job_req(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err)
{
	const struct job_req_arg *ja = arg;

	(void)err;
	m->job_req[ja->kind] = *ja->q;
	return 0;
}

int sy_registry_set_job_request(struct sy_registry *r, const char *name, int kind,
				const struct sy_job_request *q, struct sy_spec_err *err)
{
	struct job_req_arg ja = {.kind = kind, .q = q};

	if (kind < 0 || kind >= SY_JOBREQ_KINDS)
		return -EINVAL;
	return edit(r, name, "api", err, change_job_req, &ja);
}

struct pin_arg {
	const char *cgroup;
	uint8_t side;
	bool remove;
};

static int change_pin(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err)
{
	const struct pin_arg *pa = arg;
	struct sy_migration_spec next;
	size_t at = m->spec.n_pins;
	int e;

	for (size_t i = 0; i < m->spec.n_pins; i++)
		if (strcmp(m->spec.pins[i].cgroup, pa->cgroup) == 0)
			at = i;
	if (pa->remove && at == m->spec.n_pins) {
		sy_reg_err(err, "cgroup: %s is not pinned in migration \"%s\"", pa->cgroup, m->spec.name);
		return -ENOENT;
	}
	if ((e = sy_migration_spec_copy(&next, &m->spec)))
		return e;
	if (pa->remove) {
		memmove(&next.pins[at], &next.pins[at + 1], (next.n_pins - at - 1) * sizeof(next.pins[0]));
		next.n_pins--;
	} else if (at < next.n_pins) {
		next.pins[at].side = pa->side;
	} else {
		struct sy_pin_spec *np = realloc(next.pins, (next.n_pins + 1) * sizeof(*np));

		if (!np) {
			sy_migration_spec_free(&next);
			return -ENOMEM;
		}
		next.pins = np;
		memset(&np[next.n_pins], 0, sizeof(np[0]));
		if (snprintf(np[next.n_pins].cgroup, sizeof(np[0].cgroup), "%s", pa->cgroup) >=
		    (int)sizeof(np[0].cgroup)) {
			sy_reg_err(err, "cgroup: path too long");
			next.n_pins++;
			sy_migration_spec_free(&next);
			return -EINVAL;
		}
		np[next.n_pins].side = pa->side;
		next.n_pins++;
	}
	if ((e = sy_migration_spec_validate(&next, err)) == 0) {
		sy_migration_spec_free(&m->spec);
		m->spec = next;
		return sy_reg_resolve_pins(m, NULL, err);
	}
	sy_migration_spec_free(&next);
	return e;
}

int sy_registry_pin(struct sy_registry *r, const char *name, const char *cgroup, uint8_t side,
		    struct sy_spec_err *err)
{
	struct pin_arg pa = {.cgroup = cgroup, .side = side};

	int e;

	if (side > SY_SIDE_TARGET) {
		sy_reg_err(err, "side: must be legacy or target");
		return -EINVAL;
	}
	e = edit(r, name, "api", err, change_pin, &pa);
	/* The validator names the spec's field, "pins[2].cgroup"; the caller of Pin gave
	 * one cgroup and knows no index: its field is "cgroup". */
	if (e == -EINVAL && err && strncmp(err->msg, "pins[", 5) == 0) {
		const char *dot = strstr(err->msg, "].");

		if (dot)
			memmove(err->msg, dot + 2, strlen(dot + 2) + 1);
	}
	return e;
}

int sy_registry_unpin(struct sy_registry *r, const char *name, const char *cgroup, struct sy_spec_err *err)
{
	struct pin_arg pa = {.cgroup = cgroup, .remove = true};

	return edit(r, name, "api", err, change_pin, &pa);
}

struct host_arg {
	int side;
	const char *host;
	uint16_t port;
	const struct sy_endpoint *eps;
	size_t n;
	bool stale;
};

static int change_host(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err)
{
	const struct host_arg *ha = arg;
	struct sy_migration_spec next;
	int e;

	for (size_t h = 0; h < m->spec.n_hosts[ha->side]; h++) {
		struct sy_host_spec *hs = &m->spec.hosts[ha->side][h];

		if (strcmp(hs->host, ha->host) != 0 || hs->port != ha->port)
			continue;
		if ((e = sy_migration_spec_copy(&next, &m->spec)))
			return e;
		if (ha->stale) {
			next.hosts[ha->side][h].stale = true;
		} else if (sy_spec_host_set(&next, ha->side, h, ha->eps, ha->n)) {
			sy_reg_err(err, "%s:%u: %zu addresses do not fit (at most %d endpoints per side)",
				   ha->host, ha->port, ha->n, SY_MAX_ENDPOINTS);
			sy_migration_spec_free(&next);
			return -EINVAL;
		}
		if ((e = sy_migration_spec_validate(&next, err))) {
			sy_migration_spec_free(&next);
			return e;
		}
		sy_migration_spec_free(&m->spec);
		m->spec = next;
		return sy_reg_resolve_pins(m, NULL, err);
	}
	sy_reg_err(err, "migration \"%s\" has no host name %s:%u", m->spec.name, ha->host, ha->port);
	return -ENOENT;
}

int sy_registry_set_host(struct sy_registry *r, const char *name, int side, const char *host, uint16_t port,
			 const struct sy_endpoint *eps, size_t n, bool stale, struct sy_spec_err *err)
{
	struct host_arg ha = {.side = side ? SY_SIDE_TARGET : SY_SIDE_LEGACY,
			      .host = host,
			      .port = port,
			      .eps = eps,
			      .n = n,
			      .stale = stale};

	return edit(r, name, "dns", err, change_host, &ha);
}

/* ---- reads ---------------------------------------------------------------------- */

size_t sy_registry_count(const struct sy_registry *r)
{
	return r->n;
}

const struct sy_migration_state *sy_registry_at(const struct sy_registry *r, size_t i)
{
	return i < r->n ? &r->migs[i] : NULL;
}

const struct sy_migration_state *sy_registry_find(const struct sy_registry *r, const char *name)
{
	return sy_mset_find(r->migs, r->n, name);
}

int sy_registry_not_found(const struct sy_registry *r, const char *name, struct sy_spec_err *err)
{
	size_t len;

	sy_reg_err(err, "migration \"%s\" not found; %s", name,
		   r->n ? "the migrations are:" : "there are no migrations");
	if (!err)
		return -ENOENT;
	len = strlen(err->msg);
	for (size_t i = 0; i < r->n && len < sizeof(err->msg); i++) {
		int k = snprintf(err->msg + len, sizeof(err->msg) - len, "%s %s", i ? "," : "",
				 r->migs[i].spec.name);

		/* a message cut short is still a message: the list is a hint */
		len += k > 0 ? (size_t)k : 0;
	}
	return -ENOENT;
}

const struct sy_migration_state *sy_registry_by_id(const struct sy_registry *r, uint32_t id)
{
	return sy_mset_by_id(r->migs, r->n, id);
}

/* ---- target health -------------------------------------------------------------- */

static uint8_t mask_with(const struct sy_migration_state *m, const struct sy_endpoint *ep, bool healthy)
{
	uint8_t mask = m->healthy_mask;

	for (uint32_t t = 0; t < m->spec.n_target; t++) {
		if (!sy_endpoint_equal(&m->spec.target[t], ep))
			continue;
		if (healthy)
			mask |= (uint8_t)(1u << t);
		else
			mask &= (uint8_t) ~(1u << t);
	}
	return mask;
}

/* A health flip is a commit of its own (SY_COMMIT_HEALTH): only the flipped
 * migrations' entries are rewritten and nothing is persisted (health is measured
 * again after a restart). A map that refuses the new mask is logged, not undone: the
 * check runs again and the kernel keeps its last mask meanwhile. */
void sy_registry_set_target_health(struct sy_registry *r, const struct sy_endpoint *ep, bool healthy,
				   const char *why)
{
	struct sy_migration_state *cand;
	bool flipped = false;

	for (size_t i = 0; i < r->n && !flipped; i++)
		flipped = mask_with(&r->migs[i], ep, healthy) != r->migs[i].healthy_mask;
	if (!flipped)
		return;
	if (r->notifying) {
		sy_error("migrations", "a health flip arrived while a change is reported: ignored");
		return;
	}
	if (sy_reg_clone(r, &cand)) {
		sy_error("migrations", "health flip: out of memory");
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		struct sy_migration_state *m = &cand[i];
		uint8_t mask = mask_with(m, ep, healthy);
		struct sy_map_mig v;
		int e;

		if (mask == m->healthy_mask)
			continue;
		m->healthy_mask = mask;
		map_view(m, &v);
		if (r->bpf && (e = sy_mapsync_write_one(r->bpf, &v)))
			sy_error("migrations", "%s: update healthy mask: %s", m->spec.name, strerror(-e));
	}
	publish(r, SY_COMMIT_HEALTH, cand, r->n, why, NULL);
}
