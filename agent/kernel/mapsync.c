// SPDX-License-Identifier: Apache-2.0
/* mapsync.c — see mapsync.h. */
#include "kernel/mapsync.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/loader.h"
#include "switchyard/index.h"

static void to_kernel(const struct sy_map_mig *m, struct sy_migration *km)
{
	const struct sy_migration_spec *s = m->spec;

	memset(km, 0, sizeof(*km));
	km->salt = m->salt;
	km->ratio_bp = s->ratio_bp;
	km->active = 1;
	km->client_mode = s->client_mode;
	km->n_targets = (uint8_t)s->n_target;
	km->healthy_mask = m->healthy_mask;
	memcpy(km->targets, s->target, s->n_target * sizeof(struct sy_endpoint));
	km->capture = sy_mirror_effective(s);
	km->n_rules = (uint8_t)s->n_prefixes;
	km->sample_n = s->sample_reads;
	km->capture_max = s->capture_bytes ? s->capture_bytes : SY_CAPTURE_DEFAULT;
}

static void prefix_key(uint32_t id, const char *prefix, struct sy_prefix_key *k)
{
	size_t len = strnlen(prefix, SY_PREFIX_MAX);

	memset(k, 0, sizeof(*k));
	k->prefixlen = (uint32_t)(32 + 8 * len);
	k->mig_id = id;
	memcpy(k->bytes, prefix, len);
}

static int keep_prefix(const struct sy_map_mig *s, size_t n, const void *key)
{
	const struct sy_prefix_key *k = key;
	struct sy_prefix_key w;

	for (size_t i = 0; i < n; i++) {
		if (s[i].id != k->mig_id)
			continue;
		for (uint32_t j = 0; j < s[i].spec->n_prefixes; j++) {
			prefix_key(s[i].id, s[i].spec->prefixes[j], &w);
			if (memcmp(&w, k, sizeof(w)) == 0)
				return 1;
		}
	}
	return 0;
}

static int keep_route(const struct sy_map_mig *s, size_t n, const void *key)
{
	const struct sy_endpoint *ep = key;

	for (size_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < s[i].spec->n_legacy; j++)
			if (memcmp(&s[i].spec->legacy[j], ep, sizeof(*ep)) == 0)
				return 1;
		for (uint32_t j = 0; j < s[i].spec->n_target; j++)
			if (memcmp(&s[i].spec->target[j], ep, sizeof(*ep)) == 0)
				return 1;
	}
	return 0;
}

static int keep_pin(const struct sy_map_mig *s, size_t n, const void *key)
{
	const struct sy_pin_key *k = key;

	for (size_t i = 0; i < n; i++) {
		if (s[i].id != k->mig_id)
			continue;
		for (size_t j = 0; j < s[i].spec->n_pins; j++)
			if (s[i].pin_cgroup_ids[j] == k->cgroup_id)
				return 1;
	}
	return 0;
}

static int slot_wanted(const struct sy_map_mig *s, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].id == id)
			return 1;
	return 0;
}

/* Deletes every key of map `fd` for which keep() says no. */
static int prune(int fd, size_t key_size, int (*keep)(const struct sy_map_mig *, size_t, const void *),
		 const struct sy_map_mig *s, size_t n)
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

/* Writes zeroes into every CPU's copy of entry `key` of a per-CPU array. */
static void percpu_zero(int fd, uint32_t key, size_t size)
{
	int ncpu = libbpf_num_possible_cpus();
	void *zero = ncpu > 0 ? calloc((size_t)ncpu, size) : NULL;

	if (!zero)
		return;
	bpf_map_update_elem(fd, &key, zero, BPF_ANY);
	free(zero);
}

/* A freed slot's counters and statistics restart from zero for its next migration. */
static void zero_stats(struct sy_bpf *b, uint32_t id)
{
	percpu_zero(b->steer_counters_fd, id, sizeof(struct sy_steer_counters));
	for (uint32_t side = 0; side < 2; side++) {
		percpu_zero(b->side_stats_fd, sy_side_index(id, side), sizeof(struct sy_side_stats));
		for (uint32_t rule = 0; rule < SY_MAX_RULES; rule++)
			percpu_zero(b->rule_stats_fd, sy_rule_index(id, rule, side),
				    sizeof(struct sy_rule_stats));
	}
}

int sy_mapsync_write(struct sy_bpf *b, const struct sy_map_mig *s, size_t n)
{
	int err;

	if (!b)
		return -ENODEV;
	/* Rules first: a migration never points at prefixes not yet in the trie. */
	for (size_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < s[i].spec->n_prefixes; j++) {
			struct sy_prefix_key pk;
			struct sy_prefix_rule pr = {.rule = j + 1};

			prefix_key(s[i].id, s[i].spec->prefixes[j], &pk);
			if (bpf_map_update_elem(b->prefixes_fd, &pk, &pr, BPF_ANY) < 0)
				return -errno;
		}
	for (size_t i = 0; i < n; i++) {
		if ((err = sy_mapsync_write_one(b, &s[i])))
			return err;
		for (size_t j = 0; j < s[i].spec->n_pins; j++) {
			struct sy_pin_key pk = {.cgroup_id = s[i].pin_cgroup_ids[j], .mig_id = s[i].id};
			struct sy_pin pv = {.side = s[i].spec->pins[j].side};

			if (bpf_map_update_elem(b->pins_fd, &pk, &pv, BPF_ANY) < 0)
				return -errno;
		}
	}
	for (size_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < s[i].spec->n_legacy; j++) {
			struct sy_route rv = {.mig_id = s[i].id, .role = SY_ROLE_LEGACY};

			if (bpf_map_update_elem(b->routes_fd, &s[i].spec->legacy[j], &rv, BPF_ANY) < 0)
				return -errno;
		}
		for (uint32_t j = 0; j < s[i].spec->n_target; j++) {
			struct sy_route rv = {.mig_id = s[i].id, .role = SY_ROLE_TARGET};

			if (bpf_map_update_elem(b->routes_fd, &s[i].spec->target[j], &rv, BPF_ANY) < 0)
				return -errno;
		}
	}
	if ((err = prune(b->routes_fd, sizeof(struct sy_endpoint), keep_route, s, n)))
		return err;
	if ((err = prune(b->pins_fd, sizeof(struct sy_pin_key), keep_pin, s, n)))
		return err;
	if ((err = prune(b->prefixes_fd, sizeof(struct sy_prefix_key), keep_prefix, s, n)))
		return err;
	for (uint32_t id = 1; id < SY_MAX_MIGRATIONS; id++) {
		struct sy_migration km;

		if (slot_wanted(s, n, id))
			continue;
		if (bpf_map_lookup_elem(b->migrations_fd, &id, &km) == 0 && km.active) {
			memset(&km, 0, sizeof(km));
			if (bpf_map_update_elem(b->migrations_fd, &id, &km, BPF_ANY) < 0)
				return -errno;
			zero_stats(b, id);
		}
	}
	return 0;
}

int sy_mapsync_write_one(struct sy_bpf *b, const struct sy_map_mig *m)
{
	struct sy_migration km;

	if (!b)
		return -ENODEV;
	to_kernel(m, &km);
	if (bpf_map_update_elem(b->migrations_fd, &m->id, &km, BPF_ANY) < 0)
		return -errno;
	return 0;
}

uint8_t sy_mapsync_healthy_mask(struct sy_bpf *b, const struct sy_map_mig *m)
{
	struct sy_migration km;

	if (!b || bpf_map_lookup_elem(b->migrations_fd, &m->id, &km) < 0 || !km.active ||
	    km.n_targets != m->spec->n_target ||
	    memcmp(km.targets, m->spec->target, m->spec->n_target * sizeof(struct sy_endpoint)) != 0)
		return 0;
	return km.healthy_mask;
}

/* ---- per-CPU readers ------------------------------------------------------------ */

/* Entry `key` of a per-CPU array whose values are all __u64 counters, summed over CPUs
 * into out (size bytes). */
static int percpu_sum(int fd, uint32_t key, void *out, size_t size)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *per, *sum = out;
	size_t words = size / sizeof(__u64);
	int e = 0;

	memset(out, 0, size);
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc((size_t)ncpu, size);
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, per) < 0) {
		e = -errno;
	} else {
		for (int c = 0; c < ncpu; c++)
			for (size_t w = 0; w < words; w++)
				sum[w] += per[(size_t)c * words + w];
	}
	free(per);
	return e;
}

/* percpu_sum adds the values word by word: they must be __u64 counters only. */
_Static_assert(sizeof(struct sy_steer_counters) % sizeof(__u64) == 0, "u64 counters");
_Static_assert(sizeof(struct sy_side_stats) % sizeof(__u64) == 0, "u64 counters");
_Static_assert(sizeof(struct sy_rule_stats) % sizeof(__u64) == 0, "u64 counters");

int sy_mapsync_counters(struct sy_bpf *b, uint32_t id, struct sy_steer_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (!b)
		return -ENODEV;
	return percpu_sum(b->steer_counters_fd, id, out, sizeof(*out));
}

int sy_mapsync_side_stats(struct sy_bpf *b, uint32_t id, uint8_t side, struct sy_side_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!b)
		return -ENODEV;
	return percpu_sum(b->side_stats_fd, sy_side_index(id, side), out, sizeof(*out));
}

int sy_mapsync_rule_stats(struct sy_bpf *b, uint32_t id, uint32_t rule, uint8_t side,
			  struct sy_rule_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!b)
		return -ENODEV;
	if (rule >= SY_MAX_RULES)
		return -EINVAL;
	return percpu_sum(b->rule_stats_fd, sy_rule_index(id, rule, side), out, sizeof(*out));
}

int sy_mapsync_side_classes(struct sy_bpf *b, uint32_t id, uint8_t side, struct sy_rule_stats *out)
{
	struct sy_rule_stats one;
	int e;

	memset(out, 0, sizeof(*out));
	for (uint32_t rule = 0; rule < SY_MAX_RULES; rule++) {
		if ((e = sy_mapsync_rule_stats(b, id, rule, side, &one)))
			return e;
		for (int k = 0; k < SY_CLASS_MAX; k++) {
			out->cmds[k] += one.cmds[k];
			out->bytes[k] += one.bytes[k];
		}
	}
	return 0;
}
