/* registry.c — see registry.h.
 *
 * Every change builds a candidate set (a deep copy with the change), validates it,
 * writes the state file's temp copy, writes the kernel maps, then renames the file
 * into place. If the maps or the rename fail, the maps are written back from the old
 * set and the temp file removed: callers see all or nothing.
 *
 * Map write order keeps connect() consistent at every instant: migration entries and
 * pins are written before the routes that lead to them, and stale routes are removed
 * before the migration slots they pointed to are cleared.
 */
#include "registry/registry.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "model/endpoint.h"
#include "core/fnv.h"
#include "kernel/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "registry/registry_events.h"
#include "model/spec_pb.h"
#include "registry/store_file.h"

struct sy_registry {
	struct sy_bpf *bpf;
	char state_dir[PATH_MAX];
	struct sy_migration_state *migs;
	size_t n;
	uint64_t generation;
	void (*on_change)(struct sy_registry *r, void *arg);
	void *on_change_arg;
	struct sy_events *events;
};

void sy_registry_set_events(struct sy_registry *r, struct sy_events *ev)
{
	r->events = ev;
}

void sy_registry_on_change(struct sy_registry *r, void (*cb)(struct sy_registry *r, void *arg), void *arg)
{
	r->on_change = cb;
	r->on_change_arg = arg;
}

static void set_err(struct sy_spec_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct sy_spec_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* The salt is derived from the name (FNV-1a): a migration re-created under the same
 * name, or declared on another host, splits clients the same way. */
static uint64_t salt_of(const char *name)
{
	return sy_fnv1a(name, strlen(name), SY_FNV_OFFSET);
}

/* What the phase implies for the rest of the migration's state: mirror: auto follows
 * the plan (both from the backfill on, off once finished), and a plan added or removed
 * by an update starts pending or ends. */
static void derive(struct sy_migration_state *m)
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
static bool plan_running(const struct sy_migration_state *m)
{
	return m->co.phase >= SY_PHASE_BACKFILLING && m->co.phase <= SY_PHASE_ROLLED_BACK;
}

/* ---- deep copies of sets -------------------------------------------------------- */

static void mstate_free(struct sy_migration_state *m)
{
	sy_migration_spec_free(&m->spec);
	free(m->pin_cgroup_ids);
	m->pin_cgroup_ids = NULL;
}

static int mstate_copy(struct sy_migration_state *dst, const struct sy_migration_state *src)
{
	*dst = *src;
	dst->spec.pins = NULL;
	dst->spec.n_pins = 0;
	dst->pin_cgroup_ids = NULL;
	if (sy_migration_spec_copy(&dst->spec, &src->spec))
		return -ENOMEM;
	if (src->spec.n_pins) {
		dst->pin_cgroup_ids = calloc(src->spec.n_pins, sizeof(uint64_t));
		if (!dst->pin_cgroup_ids) {
			sy_migration_spec_free(&dst->spec);
			return -ENOMEM;
		}
		memcpy(dst->pin_cgroup_ids, src->pin_cgroup_ids, src->spec.n_pins * sizeof(uint64_t));
	}
	return 0;
}

static void set_free(struct sy_migration_state *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mstate_free(&s[i]);
	free(s);
}

/* A copy of the current set with room for one more. */
static int set_clone(const struct sy_registry *r, struct sy_migration_state **out)
{
	struct sy_migration_state *s = calloc(r->n + 1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		if (mstate_copy(&s[i], &r->migs[i])) {
			set_free(s, i);
			return -ENOMEM;
		}
	}
	*out = s;
	return 0;
}

static ssize_t set_find(const struct sy_migration_state *s, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].spec.name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* ---- kernel maps ---------------------------------------------------------------- */

static void to_kernel(const struct sy_migration_state *m, struct sy_migration *km)
{
	memset(km, 0, sizeof(*km));
	km->salt = m->salt;
	km->ratio_bp = m->spec.ratio_bp;
	km->active = 1;
	km->client_mode = m->spec.client_mode;
	km->n_targets = (uint8_t)m->spec.n_target;
	km->healthy_mask = m->healthy_mask;
	memcpy(km->targets, m->spec.target, m->spec.n_target * sizeof(struct sy_endpoint));
	km->capture = sy_mirror_effective(&m->spec);
	km->n_rules = (uint8_t)m->spec.n_prefixes;
	km->sample_n = m->spec.sample_reads;
	km->capture_max = m->spec.capture_bytes ? m->spec.capture_bytes : SY_CAPTURE_DEFAULT;
}

static void prefix_key(uint32_t id, const char *prefix, struct sy_prefix_key *k)
{
	size_t len = strnlen(prefix, SY_PREFIX_MAX);

	memset(k, 0, sizeof(*k));
	k->prefixlen = (uint32_t)(32 + 8 * len);
	k->mig_id = id;
	memcpy(k->bytes, prefix, len);
}

static int prefix_wanted(const struct sy_migration_state *s, size_t n, const void *key)
{
	const struct sy_prefix_key *k = key;
	struct sy_prefix_key w;

	for (size_t i = 0; i < n; i++) {
		if (s[i].id != k->mig_id)
			continue;
		for (uint32_t j = 0; j < s[i].spec.n_prefixes; j++) {
			prefix_key(s[i].id, s[i].spec.prefixes[j], &w);
			if (memcmp(&w, k, sizeof(w)) == 0)
				return 1;
		}
	}
	return 0;
}

static int route_wanted(const struct sy_migration_state *s, size_t n, const struct sy_endpoint *ep)
{
	for (size_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < s[i].spec.n_legacy; j++)
			if (memcmp(&s[i].spec.legacy[j], ep, sizeof(*ep)) == 0)
				return 1;
		for (uint32_t j = 0; j < s[i].spec.n_target; j++)
			if (memcmp(&s[i].spec.target[j], ep, sizeof(*ep)) == 0)
				return 1;
	}
	return 0;
}

static int pin_wanted(const struct sy_migration_state *s, size_t n, const struct sy_pin_key *k)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i].id != k->mig_id)
			continue;
		for (size_t j = 0; j < s[i].spec.n_pins; j++)
			if (s[i].pin_cgroup_ids[j] == k->cgroup_id)
				return 1;
	}
	return 0;
}

static int slot_wanted(const struct sy_migration_state *s, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].id == id)
			return 1;
	return 0;
}

/* Deletes every key of map `fd` for which keep() says no. */
static int prune(int fd, size_t key_size,
		 int (*keep)(const struct sy_migration_state *, size_t, const void *),
		 const struct sy_migration_state *s, size_t n)
{
	unsigned char key[128], next[128];
	void *prev = NULL;
	int err = 0;

	if (key_size > sizeof(key))
		return -EINVAL;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		if (!keep(s, n, key)) {
			if (bpf_map_delete_elem(fd, key) < 0 && errno != ENOENT)
				err = -errno;
			/* The deleted key cannot anchor the walk: restart it. */
			prev = NULL;
			if (err)
				return err;
		}
	}
	return 0;
}

static int keep_route(const struct sy_migration_state *s, size_t n, const void *k)
{
	return route_wanted(s, n, k);
}

static int keep_pin(const struct sy_migration_state *s, size_t n, const void *k)
{
	return pin_wanted(s, n, k);
}

/* A freed slot's observe statistics restart from zero for its next migration. */
static void zero_stats(struct sy_bpf *b, uint32_t id)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t sz = sizeof(struct sy_side_stats) > sizeof(struct sy_rule_stats)
			    ? sizeof(struct sy_side_stats)
			    : sizeof(struct sy_rule_stats);
	void *zero = ncpu > 0 ? calloc((size_t)ncpu, sz) : NULL;

	if (!zero)
		return;
	for (uint32_t side = 0; side < 2; side++) {
		uint32_t k = id * 2 + side;

		bpf_map_update_elem(b->side_stats_fd, &k, zero, BPF_ANY);
		for (uint32_t rule = 0; rule < SY_MAX_RULES; rule++) {
			k = (id * SY_MAX_RULES + rule) * 2 + side;
			bpf_map_update_elem(b->rule_stats_fd, &k, zero, BPF_ANY);
		}
	}
	free(zero);
}

static int sync_maps(struct sy_registry *r, const struct sy_migration_state *s, size_t n)
{
	struct sy_bpf *b = r->bpf;
	int err;

	/* Rules first: a migration never points at prefixes not yet in the trie. */
	for (size_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < s[i].spec.n_prefixes; j++) {
			struct sy_prefix_key pk;
			struct sy_prefix_rule pr = {.rule = j + 1};

			prefix_key(s[i].id, s[i].spec.prefixes[j], &pk);
			if (bpf_map_update_elem(b->prefixes_fd, &pk, &pr, BPF_ANY) < 0)
				return -errno;
		}
	for (size_t i = 0; i < n; i++) {
		struct sy_migration km;

		to_kernel(&s[i], &km);
		if (bpf_map_update_elem(b->migrations_fd, &s[i].id, &km, BPF_ANY) < 0)
			return -errno;
		for (size_t j = 0; j < s[i].spec.n_pins; j++) {
			struct sy_pin_key pk = {.cgroup_id = s[i].pin_cgroup_ids[j], .mig_id = s[i].id};
			struct sy_pin pv = {.side = s[i].spec.pins[j].side};

			if (bpf_map_update_elem(b->pins_fd, &pk, &pv, BPF_ANY) < 0)
				return -errno;
		}
	}
	for (size_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < s[i].spec.n_legacy; j++) {
			struct sy_route rv = {.mig_id = s[i].id, .role = SY_ROLE_LEGACY};

			if (bpf_map_update_elem(b->routes_fd, &s[i].spec.legacy[j], &rv, BPF_ANY) < 0)
				return -errno;
		}
		for (uint32_t j = 0; j < s[i].spec.n_target; j++) {
			struct sy_route rv = {.mig_id = s[i].id, .role = SY_ROLE_TARGET};

			if (bpf_map_update_elem(b->routes_fd, &s[i].spec.target[j], &rv, BPF_ANY) < 0)
				return -errno;
		}
	}
	if ((err = prune(b->routes_fd, sizeof(struct sy_endpoint), keep_route, s, n)))
		return err;
	if ((err = prune(b->pins_fd, sizeof(struct sy_pin_key), keep_pin, s, n)))
		return err;
	if ((err = prune(b->prefixes_fd, sizeof(struct sy_prefix_key), prefix_wanted, s, n)))
		return err;
	for (uint32_t id = 1; id < SY_MAX_MIGRATIONS; id++) {
		struct sy_migration km;

		if (slot_wanted(s, n, id))
			continue;
		if (bpf_map_lookup_elem(b->migrations_fd, &id, &km) == 0 && km.active) {
			memset(&km, 0, sizeof(km));
			if (bpf_map_update_elem(b->migrations_fd, &id, &km, BPF_ANY) < 0)
				return -errno;
			/* Counters restart from zero for the next migration in this slot. */
			int ncpu = libbpf_num_possible_cpus();
			struct sy_steer_counters *zero =
				ncpu > 0 ? calloc((size_t)ncpu, sizeof(*zero)) : NULL;

			if (zero) {
				bpf_map_update_elem(b->steer_counters_fd, &id, zero, BPF_ANY);
				free(zero);
			}
			zero_stats(b, id);
		}
	}
	return 0;
}

/* ---- state file ----------------------------------------------------------------- */

static void pb_free_state(Switchyard__V1__State *st)
{
	for (size_t i = 0; i < st->n_migrations; i++) {
		Switchyard__V1__MigrationState *ms = st->migrations[i];

		if (!ms)
			continue;
		if (ms->spec) {
			sy_spec_pb_free(ms->spec);
			free(ms->spec);
		}
		for (size_t j = 0; j < ms->n_pins; j++)
			free(ms->pins[j]);
		free(ms->pins);
		free(ms->cutover);
		free(ms);
	}
	free(st->migrations);
}

static int pb_build_state(const struct sy_migration_state *s, size_t n, uint64_t gen,
			  Switchyard__V1__State *st)
{
	switchyard__v1__state__init(st);
	st->format = SY_STATE_FORMAT;
	st->generation = gen;
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
			ms->pins[j] = ps; /* the spec inside carries cgroup and side */
		}
	}
	return 0;
}

/* Makes `cand` the registry's set: file prepared, maps written, file committed. */
static int commit_set(struct sy_registry *r, struct sy_migration_state *cand, size_t ncand,
		      struct sy_spec_err *err)
{
	Switchyard__V1__State st;
	int e;

	e = pb_build_state(cand, ncand, r->generation + 1, &st);
	if (!e)
		e = sy_state_prepare(r->state_dir, &st);
	pb_free_state(&st);
	if (e) {
		set_err(err, "persist state in %s: %s", r->state_dir, strerror(-e));
		set_free(cand, ncand);
		return -EIO;
	}
	e = sync_maps(r, cand, ncand);
	if (e) {
		set_err(err, "update kernel maps: %s", strerror(-e));
		sy_state_abort(r->state_dir);
		sync_maps(r, r->migs, r->n);
		set_free(cand, ncand);
		return -EIO;
	}
	e = sy_state_commit(r->state_dir);
	if (e) {
		set_err(err, "persist state in %s: %s", r->state_dir, strerror(-e));
		sync_maps(r, r->migs, r->n);
		set_free(cand, ncand);
		return -EIO;
	}
	sy_migration_events_commit(r->events, r->migs, r->n, cand, ncand);
	set_free(r->migs, r->n);
	r->migs = cand;
	r->n = ncand;
	r->generation++;
	if (r->on_change)
		r->on_change(r, r->on_change_arg);
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------ */

struct sy_registry *sy_registry_new(struct sy_bpf *bpf, const char *state_dir)
{
	struct sy_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->bpf = bpf;
	snprintf(r->state_dir, sizeof(r->state_dir), "%s", state_dir);
	return r;
}

void sy_registry_free(struct sy_registry *r)
{
	if (!r)
		return;
	set_free(r->migs, r->n);
	free(r);
}

static int resolve_pins(struct sy_migration_state *m, struct sy_spec_err *err)
{
	free(m->pin_cgroup_ids);
	m->pin_cgroup_ids = calloc(m->spec.n_pins ? m->spec.n_pins : 1, sizeof(uint64_t));
	if (!m->pin_cgroup_ids)
		return -ENOMEM;
	for (size_t i = 0; i < m->spec.n_pins; i++) {
		struct stat st;

		if (stat(m->spec.pins[i].cgroup, &st) < 0) {
			set_err(err, "pins[%zu].cgroup: %s: %s", i, m->spec.pins[i].cgroup, strerror(errno));
			return -EINVAL;
		}
		m->pin_cgroup_ids[i] = st.st_ino; /* cgroup v2: the id is the directory's inode */
	}
	return 0;
}

/* The kernel's current healthy mask for a slot, if it holds the same targets: a
 * restarted daemon keeps steering exactly as before until its first health check. */
static uint8_t kernel_mask(struct sy_registry *r, const struct sy_migration_state *m)
{
	struct sy_migration km;

	if (bpf_map_lookup_elem(r->bpf->migrations_fd, &m->id, &km) < 0 || !km.active ||
	    km.n_targets != m->spec.n_target ||
	    memcmp(km.targets, m->spec.target, m->spec.n_target * sizeof(struct sy_endpoint)) != 0)
		return 0;
	return km.healthy_mask;
}

int sy_registry_load(struct sy_registry *r, struct sy_spec_err *err)
{
	Switchyard__V1__State *st = NULL;
	struct sy_migration_state *s;
	int e = sy_state_read(r->state_dir, &st);

	if (e) {
		set_err(err, "read state %s/%s: %s", r->state_dir, SY_STATE_FILE,
			e == -EBADMSG ? "not a valid state file" : strerror(-e));
		return e;
	}
	if (!st)
		return sync_maps(r, NULL, 0) ? -EIO : 0;
	s = calloc(st->n_migrations + 1, sizeof(*s));
	if (!s) {
		switchyard__v1__state__free_unpacked(st, NULL);
		return -ENOMEM;
	}
	for (size_t i = 0; i < st->n_migrations; i++) {
		Switchyard__V1__MigrationState *ms = st->migrations[i];

		if (!ms->spec || (e = sy_spec_from_pb(ms->spec, &s[i].spec, err)) ||
		    ms->n_pins != s[i].spec.n_pins || ms->id == 0 || ms->id >= SY_MAX_MIGRATIONS) {
			if (!e)
				set_err(err, "state file: migration %zu is inconsistent", i);
			set_free(s, i + 1);
			switchyard__v1__state__free_unpacked(st, NULL);
			return -EBADMSG;
		}
		s[i].id = ms->id;
		s[i].salt = ms->salt;
		s[i].created_unix_ms = ms->created_unix_ms;
		s[i].updated_unix_ms = ms->updated_unix_ms;
		snprintf(s[i].origin, sizeof(s[i].origin), "%s", ms->origin ? ms->origin : "api");
		s[i].pin_cgroup_ids = calloc(ms->n_pins ? ms->n_pins : 1, sizeof(uint64_t));
		if (!s[i].pin_cgroup_ids) {
			set_free(s, i + 1);
			switchyard__v1__state__free_unpacked(st, NULL);
			return -ENOMEM;
		}
		for (size_t j = 0; j < ms->n_pins; j++)
			s[i].pin_cgroup_ids[j] = ms->pins[j]->cgroup_id;
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
		derive(&s[i]);
		s[i].healthy_mask = kernel_mask(r, &s[i]);
	}
	r->generation = st->generation;
	e = sync_maps(r, s, st->n_migrations);
	if (e) {
		set_err(err, "update kernel maps: %s", strerror(-e));
		set_free(s, st->n_migrations);
		switchyard__v1__state__free_unpacked(st, NULL);
		return -EIO;
	}
	r->migs = s;
	r->n = st->n_migrations;
	switchyard__v1__state__free_unpacked(st, NULL);
	return 0;
}

/* ---- changes -------------------------------------------------------------------- */

static uint32_t free_slot(const struct sy_migration_state *s, size_t n)
{
	for (uint32_t id = 1; id < SY_MAX_MIGRATIONS; id++)
		if (!slot_wanted(s, n, id))
			return id;
	return 0;
}

static int has_target_clients(const struct sy_migration_state *m)
{
	if (m->spec.ratio_bp > 0)
		return 1;
	for (size_t i = 0; i < m->spec.n_pins; i++)
		if (m->spec.pins[i].side == SY_SIDE_TARGET)
			return 1;
	return 0;
}

/* Puts spec m into cand (at an existing index or appended at cand[*n]). */
static int upsert(struct sy_migration_state *cand, size_t *n, const struct sy_migration_spec *m,
		  const char *origin, struct sy_spec_err *err)
{
	ssize_t at = set_find(cand, *n, m->name);
	struct sy_migration_state nm = {0};
	int e;

	if ((e = sy_migration_spec_copy(&nm.spec, m)))
		return e;
	if ((e = resolve_pins(&nm, err))) {
		mstate_free(&nm);
		return e;
	}
	nm.updated_unix_ms = sy_unix_ms();
	if (at >= 0) {
		struct sy_migration_state *old = &cand[at];

		nm.id = old->id;
		nm.salt = old->salt;
		nm.created_unix_ms = old->created_unix_ms;
		/* A target endpoint kept across the update keeps its health. */
		for (uint32_t i = 0; i < nm.spec.n_target; i++)
			for (uint32_t j = 0; j < old->spec.n_target; j++)
				if (sy_endpoint_equal(&nm.spec.target[i], &old->spec.target[j]) &&
				    (old->healthy_mask & (1u << j)))
					nm.healthy_mask |= (uint8_t)(1u << i);
		snprintf(nm.origin, sizeof(nm.origin), "%s", origin ? origin : old->origin);
		nm.co = old->co;
		if (plan_running(old))
			nm.spec.ratio_bp = old->spec.ratio_bp; /* the controller owns it */
		derive(&nm);
		mstate_free(old);
		*old = nm;
		return 0;
	}
	nm.id = free_slot(cand, *n);
	if (nm.id == 0) {
		set_err(err, "no free migration slot (at most %d migrations)", SY_MAX_MIGRATIONS - 1);
		mstate_free(&nm);
		return -ENOSPC;
	}
	nm.salt = salt_of(m->name);
	nm.created_unix_ms = nm.updated_unix_ms;
	snprintf(nm.origin, sizeof(nm.origin), "%s", origin ? origin : "api");
	derive(&nm);
	cand[(*n)++] = nm;
	return 0;
}

/* Validates one spec against every other migration of the current set. */
static int validate_one(struct sy_registry *r, const struct sy_migration_spec *m, struct sy_spec_err *err)
{
	struct sy_migration_spec *others = calloc(r->n + 1, sizeof(*others));
	size_t n = 0;
	int e;

	if (!others)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->migs[i].spec.name, m->name) != 0)
			others[n++] = r->migs[i].spec; /* shallow: read only */
	e = sy_spec_validate_against(m, others, n, err);
	free(others);
	return e;
}

int sy_registry_apply(struct sy_registry *r, const struct sy_migration_spec *m, struct sy_spec_err *err)
{
	struct sy_migration_state *cand;
	size_t n = r->n;
	int e;

	if ((e = validate_one(r, m, err)))
		return e;
	if ((e = set_clone(r, &cand)))
		return e;
	if ((e = upsert(cand, &n, m, NULL, err))) {
		set_free(cand, n);
		return e;
	}
	return commit_set(r, cand, n, err);
}

int sy_registry_apply_file(struct sy_registry *r, const struct sy_spec *s, const char *file,
			   struct sy_spec_err *err)
{
	struct sy_migration_state *cand, *next;
	char origin[PATH_MAX + 8];
	size_t n = r->n, m = 0;
	int e;

	snprintf(origin, sizeof(origin), "file:%s", file);
	if ((e = sy_spec_validate(s, file, err)))
		return e;
	/* Migrations made through the API are not the file's to delete, but they must not
	 * conflict with it either. */
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->migs[i].origin, origin) == 0)
			continue;
		for (size_t j = 0; j < s->n; j++) {
			if (strcmp(r->migs[i].spec.name, s->migs[j].name) == 0)
				continue;
			e = sy_spec_validate_against(&s->migs[j], &r->migs[i].spec, 1, err);
			if (e) {
				char msg[sizeof(err->msg)];

				snprintf(msg, sizeof(msg), "%s", err->msg);
				set_err(err, "%s:%d: %s (migration \"%s\" was made through the API)", file,
					s->migs[j].line, msg, r->migs[i].spec.name);
				return e;
			}
		}
	}
	if ((e = set_clone(r, &cand)))
		return e;
	next = realloc(cand, (r->n + s->n + 1) * sizeof(*cand));
	if (!next) {
		set_free(cand, n);
		return -ENOMEM;
	}
	cand = next;
	for (size_t j = 0; j < s->n; j++) {
		if ((e = upsert(cand, &n, &s->migs[j], origin, err))) {
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			set_err(err, "%s:%d: %s", file, s->migs[j].line, msg);
			set_free(cand, n);
			return e;
		}
	}
	/* Drop this file's migrations that it no longer names. */
	for (size_t i = 0; i < n; i++) {
		int named = 0;

		for (size_t j = 0; j < s->n && !named; j++)
			named = strcmp(cand[i].spec.name, s->migs[j].name) == 0;
		if (named || strcmp(cand[i].origin, origin) != 0) {
			cand[m++] = cand[i];
			continue;
		}
		if (has_target_clients(&cand[i])) {
			set_err(err,
				"%s: migration \"%s\" is no longer in the file but still sends clients to "
				"its target; set its ratio to 0%% and remove its target pins first, or "
				"delete "
				"it with syctl delete --force",
				file, cand[i].spec.name);
			for (size_t k = i; k < n; k++)
				cand[m++] = cand[k];
			set_free(cand, m);
			return -EBUSY;
		}
		mstate_free(&cand[i]);
	}
	return commit_set(r, cand, m, err);
}

int sy_registry_delete(struct sy_registry *r, const char *name, bool force, struct sy_spec_err *err)
{
	struct sy_migration_state *cand;
	ssize_t at = set_find(r->migs, r->n, name);
	size_t n = r->n;
	int e;

	if (at < 0) {
		set_err(err, "migration \"%s\" not found", name);
		return -ENOENT;
	}
	if (!force && has_target_clients(&r->migs[at])) {
		char ratio[SY_RATIO_STRLEN];

		set_err(err,
			"migration \"%s\" still sends clients to its target (ratio %s%s); set the "
			"ratio to 0%% first, or force",
			name, sy_ratio_format(r->migs[at].spec.ratio_bp, ratio, sizeof(ratio)),
			r->migs[at].spec.ratio_bp ? "" : ", pins to target");
		return -EBUSY;
	}
	if ((e = set_clone(r, &cand)))
		return e;
	mstate_free(&cand[at]);
	memmove(&cand[at], &cand[at + 1], (n - (size_t)at - 1) * sizeof(*cand));
	n--;
	return commit_set(r, cand, n, err);
}

/* Clones the set, lets `change` edit the named migration, commits. */
static int edit(struct sy_registry *r, const char *name, struct sy_spec_err *err,
		int (*change)(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err),
		const void *arg)
{
	struct sy_migration_state *cand;
	ssize_t at = set_find(r->migs, r->n, name);
	int e;

	if (at < 0) {
		set_err(err, "migration \"%s\" not found", name);
		return -ENOENT;
	}
	if ((e = set_clone(r, &cand)))
		return e;
	if ((e = change(&cand[at], arg, err))) {
		set_free(cand, r->n);
		return e;
	}
	cand[at].updated_unix_ms = sy_unix_ms();
	return commit_set(r, cand, r->n, err);
}

static int change_ratio(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err)
{
	uint32_t bp = *(const uint32_t *)arg;

	if (bp > SY_RATIO_MAX) {
		set_err(err, "ratio_bp: %u is out of range 0..%u", bp, SY_RATIO_MAX);
		return -EINVAL;
	}
	m->spec.ratio_bp = bp;
	return 0;
}

int sy_registry_set_ratio(struct sy_registry *r, const char *name, uint32_t ratio_bp, struct sy_spec_err *err)
{
	return edit(r, name, err, change_ratio, &ratio_bp);
}

struct cutover_arg {
	const struct sy_cutover_state *co;
	int64_t ratio_bp;
};

static int change_cutover(struct sy_migration_state *m, const void *arg, struct sy_spec_err *err)
{
	const struct cutover_arg *ca = arg;

	if (ca->ratio_bp > SY_RATIO_MAX) {
		set_err(err, "ratio_bp: %lld is out of range 0..%u", (long long)ca->ratio_bp, SY_RATIO_MAX);
		return -EINVAL;
	}
	if (ca->ratio_bp >= 0)
		m->spec.ratio_bp = (uint32_t)ca->ratio_bp;
	m->co = *ca->co;
	derive(m);
	return 0;
}

int sy_registry_set_cutover(struct sy_registry *r, const char *name, const struct sy_cutover_state *co,
			    int64_t ratio_bp, struct sy_spec_err *err)
{
	struct cutover_arg ca = {.co = co, .ratio_bp = ratio_bp};

	return edit(r, name, err, change_cutover, &ca);
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
		set_err(err, "cgroup: %s is not pinned in migration \"%s\"", pa->cgroup, m->spec.name);
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
			set_err(err, "cgroup: path too long");
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
		return resolve_pins(m, err);
	}
	sy_migration_spec_free(&next);
	return e;
}

int sy_registry_pin(struct sy_registry *r, const char *name, const char *cgroup, uint8_t side,
		    struct sy_spec_err *err)
{
	struct pin_arg pa = {.cgroup = cgroup, .side = side};

	if (side > SY_SIDE_TARGET) {
		set_err(err, "side: must be legacy or target");
		return -EINVAL;
	}
	return edit(r, name, err, change_pin, &pa);
}

int sy_registry_unpin(struct sy_registry *r, const char *name, const char *cgroup, struct sy_spec_err *err)
{
	struct pin_arg pa = {.cgroup = cgroup, .remove = true};

	return edit(r, name, err, change_pin, &pa);
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
	ssize_t at = set_find(r->migs, r->n, name);

	return at < 0 ? NULL : &r->migs[at];
}

const struct sy_migration_state *sy_registry_by_id(const struct sy_registry *r, uint32_t id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->migs[i].id == id)
			return &r->migs[i];
	return NULL;
}

int sy_registry_counters(const struct sy_registry *r, const char *name, struct sy_steer_counters *out)
{
	const struct sy_migration_state *m = sy_registry_find(r, name);
	int ncpu = libbpf_num_possible_cpus();
	struct sy_steer_counters *per;
	int e = 0;

	memset(out, 0, sizeof(*out));
	if (!m)
		return -ENOENT;
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(r->bpf->steer_counters_fd, &m->id, per) < 0) {
		e = -errno;
	} else {
		for (int c = 0; c < ncpu; c++)
			for (int d = 0; d < SY_DEC_MAX; d++)
				out->decisions[d] += per[c].decisions[d];
	}
	free(per);
	return e;
}

int sy_registry_side_stats(const struct sy_registry *r, const char *name, uint8_t side,
			   struct sy_side_stats *out)
{
	const struct sy_migration_state *m = sy_registry_find(r, name);
	int ncpu = libbpf_num_possible_cpus();
	struct sy_side_stats *per;
	__u32 idx;
	int e = 0;

	memset(out, 0, sizeof(*out));
	if (!m)
		return -ENOENT;
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	idx = m->id * 2 + (side & 1);
	if (bpf_map_lookup_elem(r->bpf->side_stats_fd, &idx, per) < 0) {
		e = -errno;
	} else {
		for (int c = 0; c < ncpu; c++) {
			out->bytes_out += per[c].bytes_out;
			out->bytes_in += per[c].bytes_in;
			out->exchanges += per[c].exchanges;
			out->errors += per[c].errors;
			out->sockets += per[c].sockets;
			out->unparsed += per[c].unparsed;
			out->outside += per[c].outside;
			out->captured += per[c].captured;
			out->truncated += per[c].truncated;
			out->sampled += per[c].sampled;
			out->ev_lost += per[c].ev_lost;
			for (int b = 0; b < SY_LAT_BUCKETS; b++)
				out->lat[b] += per[c].lat[b];
		}
	}
	free(per);
	return e;
}

int sy_registry_rule_stats(const struct sy_registry *r, const char *name, uint32_t rule, uint8_t side,
			   struct sy_rule_stats *out)
{
	const struct sy_migration_state *m = sy_registry_find(r, name);
	int ncpu = libbpf_num_possible_cpus();
	struct sy_rule_stats *per;
	__u32 idx;
	int e = 0;

	memset(out, 0, sizeof(*out));
	if (!m)
		return -ENOENT;
	if (rule >= SY_MAX_RULES)
		return -EINVAL;
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	idx = (m->id * SY_MAX_RULES + rule) * 2 + (side & 1);
	if (bpf_map_lookup_elem(r->bpf->rule_stats_fd, &idx, per) < 0) {
		e = -errno;
	} else {
		for (int c = 0; c < ncpu; c++)
			for (int k = 0; k < SY_CLASS_MAX; k++) {
				out->cmds[k] += per[c].cmds[k];
				out->bytes[k] += per[c].bytes[k];
			}
	}
	free(per);
	return e;
}

int sy_registry_side_classes(const struct sy_registry *r, const char *name, uint8_t side,
			     struct sy_rule_stats *out)
{
	struct sy_rule_stats one;
	int e;

	memset(out, 0, sizeof(*out));
	for (uint32_t rule = 0; rule < SY_MAX_RULES; rule++) {
		if ((e = sy_registry_rule_stats(r, name, rule, side, &one)))
			return e;
		for (int k = 0; k < SY_CLASS_MAX; k++) {
			out->cmds[k] += one.cmds[k];
			out->bytes[k] += one.bytes[k];
		}
	}
	return 0;
}

void sy_registry_set_target_health(struct sy_registry *r, const struct sy_endpoint *ep, bool healthy,
				   const char *why)
{
	for (size_t i = 0; i < r->n; i++) {
		struct sy_migration_state *m = &r->migs[i];
		uint8_t mask = m->healthy_mask;

		for (uint32_t t = 0; t < m->spec.n_target; t++) {
			if (!sy_endpoint_equal(&m->spec.target[t], ep))
				continue;
			if (healthy)
				mask |= (uint8_t)(1u << t);
			else
				mask &= (uint8_t) ~(1u << t);
		}
		if (mask == m->healthy_mask)
			continue;
		uint8_t flipped = mask ^ m->healthy_mask;

		m->healthy_mask = mask;
		for (uint32_t t = 0; t < m->spec.n_target; t++)
			if (flipped & (1u << t))
				sy_migration_events_health(r->events, m, t, healthy, why);
		struct sy_migration km;

		to_kernel(m, &km);
		if (bpf_map_update_elem(r->bpf->migrations_fd, &m->id, &km, BPF_ANY) < 0)
			sy_error("migrations", "%s: update healthy mask: %s", m->spec.name, strerror(errno));
	}
}
