// SPDX-License-Identifier: Apache-2.0
/* fleet.c — see fleet.h. Small tables: tens of nodes, SY_MAX_MIGRATIONS migrations. */
#include "registry/fleet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "model/job.h"
#include "switchyard/v1/fleet.pb-c.h"

#define MAX_NODES 1024

struct node {
	struct sy_fleet_node pub;
	bool seen;     /* put during the current full read */
	bool bad_said; /* a bad value was logged */
};

struct acc {
	char name[SY_NAME_MAX];
	struct sy_fleet_counters c;
};

struct sy_fleet {
	char self[SY_FLEET_NODE_MAX];
	bool active;
	struct node **nodes; /* sorted by name */
	size_t n_nodes;
	struct acc acc[SY_MAX_MIGRATIONS];
	size_t n_acc;
	struct sy_fleet_mig local[SY_MAX_MIGRATIONS];
	size_t n_local;
	void (*on_change)(void *ctx, const char *node, bool joined);
	void *ctx;
	void (*on_local)(void *ctx);
	void *local_ctx;
};

static uint64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct sy_fleet *sy_fleet_new(const char *self)
{
	struct sy_fleet *f = calloc(1, sizeof(*f));

	if (f)
		strncpy(f->self, self ? self : "", sizeof(f->self) - 1);
	return f;
}

static void node_free(struct node *n)
{
	if (n) {
		free(n->pub.mig);
		free(n);
	}
}

void sy_fleet_free(struct sy_fleet *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_nodes; i++)
		node_free(f->nodes[i]);
	free(f->nodes);
	free(f);
}

void sy_fleet_on_change(struct sy_fleet *f, void (*fn)(void *ctx, const char *node, bool joined), void *ctx)
{
	f->on_change = fn;
	f->ctx = ctx;
}

void sy_fleet_set_local(struct sy_fleet *f, const struct sy_fleet_mig *m, size_t n)
{
	f->n_local = n < SY_MAX_MIGRATIONS ? n : SY_MAX_MIGRATIONS;
	memcpy(f->local, m, f->n_local * sizeof(*m));
	if (f->on_local)
		f->on_local(f->local_ctx);
}

void sy_fleet_on_local(struct sy_fleet *f, void (*fn)(void *ctx), void *ctx)
{
	f->on_local = fn;
	f->local_ctx = ctx;
}

size_t sy_fleet_local(const struct sy_fleet *f, const struct sy_fleet_mig **out)
{
	*out = f->local;
	return f->n_local;
}

bool sy_fleet_active(const struct sy_fleet *f)
{
	return f && f->active;
}

void sy_fleet_set_active(struct sy_fleet *f, bool on)
{
	f->active = on;
}

/* The node called name; made (alive = false, no counters) when add and absent. */
static struct node *find(struct sy_fleet *f, const char *name, bool add)
{
	size_t lo = 0, hi = f->n_nodes;
	struct node *n, **grown;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(f->nodes[mid]->pub.name, name);

		if (c == 0)
			return f->nodes[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!add || f->n_nodes >= MAX_NODES || strlen(name) >= SY_FLEET_NODE_MAX)
		return NULL;
	if (!(n = calloc(1, sizeof(*n))) || !(grown = realloc(f->nodes, (f->n_nodes + 1) * sizeof(*grown)))) {
		free(n);
		return NULL;
	}
	f->nodes = grown;
	memmove(&f->nodes[lo + 1], &f->nodes[lo], (f->n_nodes - lo) * sizeof(*grown));
	f->nodes[lo] = n;
	f->n_nodes++;
	strcpy(n->pub.name, name);
	return n;
}

static struct acc *acc_of(struct sy_fleet *f, const char *name)
{
	for (size_t i = 0; i < f->n_acc; i++)
		if (strcmp(f->acc[i].name, name) == 0)
			return &f->acc[i];
	if (f->n_acc == SY_MAX_MIGRATIONS) {
		/* drop a migration no live node reports any more */
		for (size_t i = 0; i < f->n_acc; i++) {
			uint32_t nodes = 0;
			struct sy_fleet_counters c;

			if (sy_fleet_sum(f, f->acc[i].name, &c, &nodes) == -ENOENT) {
				f->acc[i] = f->acc[--f->n_acc];
				break;
			}
		}
		if (f->n_acc == SY_MAX_MIGRATIONS)
			return NULL;
	}
	memset(&f->acc[f->n_acc], 0, sizeof(f->acc[0]));
	strcpy(f->acc[f->n_acc].name, name);
	return &f->acc[f->n_acc++];
}

static uint64_t grew(uint64_t now, uint64_t before, bool reset)
{
	return reset ? now : now > before ? now - before : 0;
}

/* Adds what grew from prev (NULL: a baseline, nothing grew) to now into the sum. */
static void add_growth(struct sy_fleet *f, const struct sy_fleet_mig *now, const struct sy_fleet_mig *prev)
{
	struct acc *a;
	bool reset;

	if (!prev || !(a = acc_of(f, now->name)))
		return;
	reset = now->c.req[0] < prev->c.req[0] || now->c.req[1] < prev->c.req[1];
	for (int s = 0; s < 2; s++) {
		a->c.req[s] += grew(now->c.req[s], prev->c.req[s], reset);
		a->c.err[s] += grew(now->c.err[s], prev->c.err[s], reset);
		for (int i = 0; i < SY_LAT_BUCKETS; i++)
			a->c.lat[s][i] += grew(now->c.lat[s][i], prev->c.lat[s][i], reset);
	}
	a->c.drift += grew(now->c.drift, prev->c.drift, now->c.drift < prev->c.drift);
}

static void side_from(struct sy_fleet_counters *c, int s, const Switchyard__V1__NodeSideCounters *p)
{
	if (!p)
		return;
	c->req[s] = p->requests;
	c->err[s] = p->errors;
	for (size_t i = 0; i < p->n_latency_log2_us && i < SY_LAT_BUCKETS; i++)
		c->lat[s][i] = p->latency_log2_us[i];
}

static void job_from(struct sy_fleet_job *j, const Switchyard__V1__NodeJob *p)
{
	int st;

	if (!p)
		return;
	st = sy_job_state_parse(p->state);
	j->state = st < 0 ? SY_JOB_IDLE : (uint8_t)st;
	j->scanned = p->scanned;
	j->total = p->total;
	j->copied = p->copied;
	j->found = p->found;
	j->repaired = p->repaired;
	for (size_t k = 0; k < p->n_differences && k < 5; k++)
		j->diff[k] = p->differences[k];
	j->started_unix_ms = p->started_unix_ms;
	j->finished_unix_ms = p->finished_unix_ms;
	strncpy(j->error, p->error, sizeof(j->error) - 1);
}

int sy_fleet_node_put(struct sy_fleet *f, const char *node, const uint8_t *v, size_t len)
{
	Switchyard__V1__NodeStatus *st = switchyard__v1__node_status__unpack(NULL, len, v);
	struct node *n = find(f, node, true);
	struct sy_fleet_mig *mig;
	bool joined;

	if (!n) {
		if (st)
			switchyard__v1__node_status__free_unpacked(st, NULL);
		return -ENOMEM;
	}
	n->seen = true;
	if (!st || st->n_migrations > SY_MAX_MIGRATIONS) {
		if (!n->bad_said)
			sy_warn("fleet", "node %s: its key is not a switchyard.v1.NodeStatus: ignored", node);
		n->bad_said = true;
		if (st)
			switchyard__v1__node_status__free_unpacked(st, NULL);
		return -EBADMSG;
	}
	mig = calloc(st->n_migrations ? st->n_migrations : 1, sizeof(*mig));
	if (!mig) {
		switchyard__v1__node_status__free_unpacked(st, NULL);
		return -ENOMEM;
	}
	for (size_t i = 0; i < st->n_migrations; i++) {
		const Switchyard__V1__NodeMigrationCounters *m = st->migrations[i];
		const struct sy_fleet_mig *prev = NULL;

		strncpy(mig[i].name, m->name, SY_NAME_MAX - 1);
		mig[i].ratio_bp = m->ratio_bp;
		side_from(&mig[i].c, SY_SIDE_LEGACY, m->legacy);
		side_from(&mig[i].c, SY_SIDE_TARGET, m->target);
		mig[i].c.drift = m->drift;
		mig[i].c.conns[SY_SIDE_LEGACY] = m->connections_legacy;
		mig[i].c.conns[SY_SIDE_TARGET] = m->connections_target;
		job_from(&mig[i].audit, m->audit);
		job_from(&mig[i].backfill, m->backfill);
		/* a node that was gone starts again from a baseline */
		for (size_t k = 0; n->pub.alive && k < n->pub.n_mig; k++)
			if (strcmp(n->pub.mig[k].name, mig[i].name) == 0)
				prev = &n->pub.mig[k];
		add_growth(f, &mig[i], prev);
	}
	joined = !n->pub.alive;
	free(n->pub.mig);
	n->pub.mig = mig;
	n->pub.n_mig = st->n_migrations;
	n->pub.alive = true;
	n->pub.last_seen_unix_ms = unix_ms();
	n->pub.applied_revision = st->applied_revision;
	strncpy(n->pub.version, st->version, sizeof(n->pub.version) - 1);
	n->bad_said = false;
	switchyard__v1__node_status__free_unpacked(st, NULL);
	if (joined) {
		sy_info("fleet", "node %s joined (%u live)", node, sy_fleet_alive(f));
		if (f->on_change)
			f->on_change(f->ctx, node, true);
	}
	return 0;
}

static void gone(struct sy_fleet *f, struct node *n)
{
	if (!n || !n->pub.alive)
		return;
	n->pub.alive = false;
	sy_info("fleet", "node %s left (%u live)", n->pub.name, sy_fleet_alive(f));
	if (f->on_change)
		f->on_change(f->ctx, n->pub.name, false);
}

void sy_fleet_node_gone(struct sy_fleet *f, const char *node)
{
	gone(f, find(f, node, false));
}

void sy_fleet_sync_begin(struct sy_fleet *f)
{
	for (size_t i = 0; i < f->n_nodes; i++)
		f->nodes[i]->seen = false;
}

void sy_fleet_sync_end(struct sy_fleet *f)
{
	for (size_t i = 0; i < f->n_nodes; i++)
		if (!f->nodes[i]->seen)
			gone(f, f->nodes[i]);
}

int sy_fleet_sum(const struct sy_fleet *f, const char *name, struct sy_fleet_counters *out, uint32_t *nodes)
{
	const struct acc *a = NULL;

	*nodes = 0;
	for (size_t i = 0; i < f->n_acc; i++)
		if (strcmp(f->acc[i].name, name) == 0)
			a = &f->acc[i];
	for (size_t i = 0; i < f->n_nodes; i++) {
		const struct sy_fleet_node *n = &f->nodes[i]->pub;

		for (size_t k = 0; n->alive && k < n->n_mig; k++)
			if (strcmp(n->mig[k].name, name) == 0)
				(*nodes)++;
	}
	if (a)
		*out = a->c;
	else
		memset(out, 0, sizeof(*out));
	return *nodes ? 0 : -ENOENT;
}

uint32_t sy_fleet_alive(const struct sy_fleet *f)
{
	uint32_t n = 0;

	for (size_t i = 0; i < f->n_nodes; i++)
		n += f->nodes[i]->pub.alive;
	return n;
}

size_t sy_fleet_count(const struct sy_fleet *f)
{
	return f->n_nodes;
}

const struct sy_fleet_node *sy_fleet_at(const struct sy_fleet *f, size_t i)
{
	return i < f->n_nodes ? &f->nodes[i]->pub : NULL;
}

const char *sy_fleet_self(const struct sy_fleet *f)
{
	return f->self;
}

const struct sy_fleet_mig *sy_fleet_find(const struct sy_fleet *f, const char *node, const char *name)
{
	const struct node *n = find((struct sy_fleet *)f, node, false);

	for (size_t k = 0; n && n->pub.alive && k < n->pub.n_mig; k++)
		if (strcmp(n->pub.mig[k].name, name) == 0)
			return &n->pub.mig[k];
	return NULL;
}
