// SPDX-License-Identifier: Apache-2.0
/* resolver.c — see resolver.h. One worker thread takes lookups from a queue and puts
 * answers on another; both queues are under one mutex, and the loop is woken by an
 * eventfd. Everything else (the list of names, what an answer means, the commit, the
 * events) runs on the loop. */
#include "registry/resolver.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "model/endpoint.h"
#include "model/hostname.h"
#include "registry/events.h"
#include "registry/registry.h"

#define TICK_MS 250

/* One name of one migration's side. */
struct entry {
	char mig[SY_NAME_MAX];
	int side;
	char host[SY_HOST_MAX + 1];
	uint16_t port;
	uint32_t interval_ms;
	uint64_t due_ms;
	bool in_flight;
};

/* A lookup, then its answer. */
struct job {
	struct job *next;
	char mig[SY_NAME_MAX];
	int side;
	char host[SY_HOST_MAX + 1];
	uint16_t port;
	int n; /* addresses, or a negative errno */
	struct sy_endpoint eps[SY_MAX_ENDPOINTS];
	char why[200];
};

struct sy_resolver {
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_events *ev;
	struct entry *ents;
	size_t n_ents;
	uint64_t timer;
	int efd;
	pthread_t th;
	bool th_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo, *done; /* LIFO is fine: each name has one lookup in flight */
	bool stop;
	struct sy_resolver_stats st;
};

static const char *side_name(int side)
{
	return side == SY_SIDE_TARGET ? "target" : "legacy";
}

static void *worker(void *arg)
{
	struct sy_resolver *res = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&res->mu);
	for (;;) {
		struct job *j;

		while (!res->stop && !res->todo)
			pthread_cond_wait(&res->cv, &res->mu);
		if (res->stop)
			break;
		j = res->todo;
		res->todo = j->next;
		pthread_mutex_unlock(&res->mu);
		j->n = sy_host_resolve(j->host, j->port, j->eps, SY_MAX_ENDPOINTS, j->why, sizeof(j->why));
		pthread_mutex_lock(&res->mu);
		j->next = res->done;
		res->done = j;
		if (write(res->efd, &one, sizeof(one)) < 0) {
			/* the counter is far from overflowing; nothing else can fail here */
		}
	}
	pthread_mutex_unlock(&res->mu);
	return NULL;
}

static struct entry *find_entry(struct sy_resolver *res, const char *mig, int side, const char *host,
				uint16_t port)
{
	for (size_t i = 0; i < res->n_ents; i++) {
		struct entry *e = &res->ents[i];

		if (e->side == side && e->port == port && strcmp(e->mig, mig) == 0 &&
		    strcmp(e->host, host) == 0)
			return e;
	}
	return NULL;
}

static const struct sy_host_spec *find_host(const struct sy_migration_state *m, int side, const char *host,
					    uint16_t port)
{
	for (size_t h = 0; m && h < m->spec.n_hosts[side]; h++)
		if (m->spec.hosts[side][h].port == port && strcmp(m->spec.hosts[side][h].host, host) == 0)
			return &m->spec.hosts[side][h];
	return NULL;
}

/* What one answer means, on the loop. */
static void answer(struct sy_resolver *res, const struct job *j)
{
	const struct sy_migration_state *m = sy_registry_find(res->reg, j->mig);
	const struct sy_host_spec *hs = find_host(m, j->side, j->host, j->port);
	struct sy_spec_err err = {{0}};
	char name[SY_HOST_MAX + 8], old_s[SY_EVENT_VALUE_MAX], new_s[SY_EVENT_VALUE_MAX];
	const struct sy_endpoint *cur;

	res->st.lookups++;
	if (!hs)
		return; /* the name went away while it was looked up */
	snprintf(name, sizeof(name), "%s:%u", j->host, j->port);
	cur = (j->side == SY_SIDE_TARGET ? m->spec.target : m->spec.legacy) + hs->first;
	sy_endpoints_format(cur, hs->n, old_s, sizeof(old_s));
	if (j->n <= 0) {
		bool was_stale = hs->stale;

		res->st.failures++;
		if (was_stale)
			return; /* said at the start of this failure streak */
		if (sy_registry_set_host(res->reg, j->mig, j->side, j->host, j->port, NULL, 0, true, &err))
			sy_warn("resolve", "%s: %s: flag stale: %s", j->mig, name, err.msg);
		sy_events_emit(res->ev, j->mig, "endpoint.resolve_failed",
			       SY_EVENT_ATTRS({"side", side_name(j->side)}, {"name", name}, {"error", j->why},
					      {"addresses", old_s}),
			       "%s %s no longer resolves (%s); its last addresses are kept: %s",
			       side_name(j->side), name, j->why, old_s);
		return;
	}
	if (sy_host_addrs_equal(cur, hs->n, j->eps, (size_t)j->n) && !hs->stale)
		return;
	sy_endpoints_format(j->eps, (size_t)j->n, new_s, sizeof(new_s));
	bool was_stale = hs->stale, same = sy_host_addrs_equal(cur, hs->n, j->eps, (size_t)j->n);

	/* m and hs belong to the set this commit replaces: nothing of them is read after */
	int e = sy_registry_set_host(res->reg, j->mig, j->side, j->host, j->port, j->eps, (size_t)j->n, false,
				     &err);

	/* a fleet's store moved on: another agent committed first (most likely the same
	 * addresses); the next lookup compares with what it committed */
	if (e == -ESTALE)
		return;
	if (e) {
		res->st.refused++;
		sy_events_emit(res->ev, j->mig, "endpoint.resolve_failed",
			       SY_EVENT_ATTRS({"side", side_name(j->side)}, {"name", name},
					      {"error", err.msg}, {"addresses", old_s},
					      {"new_addresses", new_s}),
			       "%s %s now resolves to %s, refused (%s); its last addresses are kept: %s",
			       side_name(j->side), name, new_s, err.msg, old_s);
		return;
	}
	if (!same)
		res->st.changes++;
	sy_events_emit(res->ev, j->mig, "endpoint.resolved",
		       SY_EVENT_ATTRS({"side", side_name(j->side)}, {"name", name}, {"old_addresses", old_s},
				      {"addresses", new_s}),
		       "%s %s %s: %s -> %s", side_name(j->side), name,
		       same && was_stale ? "resolves again" : "resolves to new addresses", old_s, new_s);
}

static void on_done(struct sy_loop *l, int fd, unsigned events, void *arg)
{
	struct sy_resolver *res = arg;
	struct job *list;
	uint64_t v;

	(void)l;
	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		sy_warn("resolve", "read eventfd: %s", strerror(errno));
	pthread_mutex_lock(&res->mu);
	list = res->done;
	res->done = NULL;
	pthread_mutex_unlock(&res->mu);
	while (list) {
		struct job *j = list;
		struct entry *e = find_entry(res, j->mig, j->side, j->host, j->port);

		list = j->next;
		if (e)
			e->in_flight = false;
		answer(res, j);
		free(j);
	}
}

static void tick(struct sy_loop *l, void *arg)
{
	struct sy_resolver *res = arg;
	uint64_t now = sy_now_ms();
	bool queued = false;

	res->timer = sy_loop_add_timer(l, TICK_MS, tick, res);
	for (size_t i = 0; i < res->n_ents; i++) {
		struct entry *e = &res->ents[i];
		struct job *j;

		if (e->in_flight || now < e->due_ms)
			continue;
		if (!(j = calloc(1, sizeof(*j))))
			return;
		snprintf(j->mig, sizeof(j->mig), "%s", e->mig);
		snprintf(j->host, sizeof(j->host), "%s", e->host);
		j->side = e->side;
		j->port = e->port;
		e->in_flight = true;
		e->due_ms = now + e->interval_ms;
		pthread_mutex_lock(&res->mu);
		j->next = res->todo;
		res->todo = j;
		pthread_mutex_unlock(&res->mu);
		queued = true;
	}
	if (queued)
		pthread_cond_signal(&res->cv);
}

/* The names follow the set: kept ones keep their schedule, new ones are due one
 * interval after they were resolved at apply (at once when loaded from the state). */
static void on_commit(void *ctx, const struct sy_commit *c)
{
	struct sy_resolver *res = ctx;
	struct entry *next = NULL;
	size_t n = 0, cap = 0;
	uint64_t now = sy_now_ms();

	if (c->kind == SY_COMMIT_HEALTH)
		return;
	for (size_t i = 0; i < c->n_after; i++) {
		const struct sy_migration_spec *s = &c->after[i].spec;

		for (int side = 0; side < 2; side++)
			for (size_t h = 0; h < s->n_hosts[side]; h++) {
				const struct sy_host_spec *hs = &s->hosts[side][h];
				struct entry *old = find_entry(res, s->name, side, hs->host, hs->port);
				uint32_t iv = s->resolve_interval_ms ? s->resolve_interval_ms
								     : SY_RESOLVE_DEFAULT_MS;

				if (n == cap) {
					struct entry *g =
						realloc(next, (cap = cap ? cap * 2 : 8) * sizeof(*g));

					if (!g) {
						sy_error("resolve", "follow host names: out of memory");
						free(next);
						return;
					}
					next = g;
				}
				memset(&next[n], 0, sizeof(next[n]));
				snprintf(next[n].mig, sizeof(next[n].mig), "%s", s->name);
				snprintf(next[n].host, sizeof(next[n].host), "%s", hs->host);
				next[n].side = side;
				next[n].port = hs->port;
				next[n].interval_ms = iv;
				if (old) {
					next[n].in_flight = old->in_flight;
					next[n].due_ms = old->due_ms;
					if (old->interval_ms != iv && old->due_ms > now + iv)
						next[n].due_ms = now + iv;
				} else {
					next[n].due_ms = c->kind == SY_COMMIT_LOAD ? now : now + iv;
				}
				n++;
			}
	}
	free(res->ents);
	res->ents = next;
	res->n_ents = n;
}

struct sy_resolver *sy_resolver_new(struct sy_loop *l, struct sy_registry *r, struct sy_events *ev)
{
	struct sy_resolver *res = calloc(1, sizeof(*res));
	int e;

	if (!res)
		return NULL;
	res->loop = l;
	res->reg = r;
	res->ev = ev;
	pthread_mutex_init(&res->mu, NULL);
	pthread_cond_init(&res->cv, NULL);
	res->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (res->efd < 0 || sy_loop_add_fd(l, res->efd, SY_EV_READ, on_done, res)) {
		sy_error("resolve", "eventfd: %s", strerror(errno));
		goto fail;
	}
	/* the worker takes no signals: the loop's signalfd does (a SIGHUP delivered to
	 * this thread would end the process) */
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(&res->th, NULL, worker, res);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		sy_error("resolve", "start the resolver thread: %s", strerror(e));
		goto fail;
	}
	res->th_started = true;
	if (sy_registry_subscribe(r, "resolver", on_commit, res)) {
		sy_error("resolve", "subscribe to the registry: too many subscribers");
		goto fail;
	}
	res->timer = sy_loop_add_timer(l, TICK_MS, tick, res);
	return res;
fail:
	sy_resolver_free(res);
	return NULL;
}

void sy_resolver_free(struct sy_resolver *res)
{
	if (!res)
		return;
	sy_registry_unsubscribe(res->reg, on_commit, res);
	sy_loop_cancel_timer(res->loop, res->timer);
	if (res->th_started) {
		pthread_mutex_lock(&res->mu);
		res->stop = true;
		pthread_cond_broadcast(&res->cv);
		pthread_mutex_unlock(&res->mu);
		pthread_join(res->th, NULL);
	}
	for (struct job *lists[2] = {res->todo, res->done}, **p = lists; p < lists + 2; p++)
		while (*p) {
			struct job *j = *p;

			*p = j->next;
			free(j);
		}
	sy_loop_close_fd(res->loop, &res->efd);
	pthread_cond_destroy(&res->cv);
	pthread_mutex_destroy(&res->mu);
	free(res->ents);
	free(res);
}

void sy_resolver_stats(const struct sy_resolver *res, struct sy_resolver_stats *out)
{
	*out = res ? res->st : (struct sy_resolver_stats){0};
}
