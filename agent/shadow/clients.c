// SPDX-License-Identifier: Apache-2.0
/* clients.c — see clients.h. */
#include "shadow/clients.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "redis/resp_argv.h"

#define WAYS 8 /* candidates for a new connection's entry */

void sy_client_txn_clear(struct sy_client *s)
{
	struct sy_txcmd *t;

	while ((t = STAILQ_FIRST(&s->txn))) {
		STAILQ_REMOVE_HEAD(&s->txn, link);
		free(t->argv);
		free(t->lens);
		free(t->keys);
		free(t);
	}
	STAILQ_INIT(&s->txn);
	s->txn_n = 0;
	s->in_multi = false;
	s->txn_bad = false;
}

struct sy_client *sy_clients_get(struct sy_clients *t, uint64_t cookie, bool *lost)
{
	size_t h = (size_t)(cookie * 0x9e3779b97f4a7c15ull >> 40);
	struct sy_client *s, *victim = NULL;
	uint64_t now = sy_coarse_ms();

	*lost = false;
	if (!t->tab && !(t->tab = calloc(SY_CLIENT_SLOTS, sizeof(*t->tab))))
		return NULL;
	for (size_t k = 0; k < WAYS; k++) {
		s = &t->tab[(h + k) & (SY_CLIENT_SLOTS - 1)];
		if (s->cookie == cookie) {
			s->last_ms = now;
			return s;
		}
		if (!s->cookie) {
			victim = s;
			break;
		}
		if (!victim || s->last_ms < victim->last_ms)
			victim = s;
	}
	*lost = victim->cookie && (victim->in_multi || victim->db != 0) && now - victim->last_ms < 60000;
	sy_client_txn_clear(victim);
	memset(victim, 0, sizeof(*victim));
	victim->cookie = cookie;
	victim->last_ms = now;
	return victim;
}

void sy_clients_free(struct sy_clients *t)
{
	if (t->tab)
		for (size_t i = 0; i < SY_CLIENT_SLOTS; i++)
			sy_client_txn_clear(&t->tab[i]);
	free(t->tab);
	t->tab = NULL;
}

int sy_client_txn_add(struct sy_client *s, const struct sy_argv *a, const int *keys, int nkeys)
{
	struct sy_txcmd *t = calloc(1, sizeof(*t));
	char *copy;
	size_t total = 0;

	if (!t)
		return -ENOMEM;
	for (int i = 0; i < a->argc; i++)
		total += a->lens[i];
	/* own copies: the captured bytes a points into are gone after the callback */
	t->argv = malloc((size_t)a->argc * sizeof(char *) + total + 1);
	t->lens = malloc((size_t)a->argc * sizeof(size_t));
	t->keys = malloc((size_t)(nkeys ? nkeys : 1) * sizeof(int));
	if (!t->argv || !t->lens || !t->keys) {
		free(t->argv);
		free(t->lens);
		free(t->keys);
		free(t);
		return -ENOMEM;
	}
	copy = (char *)(t->argv + a->argc);
	for (int i = 0; i < a->argc; i++) {
		memcpy(copy, a->argv[i], a->lens[i]);
		t->argv[i] = copy;
		t->lens[i] = a->lens[i];
		copy += a->lens[i];
	}
	t->argc = a->argc;
	memcpy(t->keys, keys, (size_t)nkeys * sizeof(int));
	t->nkeys = nkeys;
	if (STAILQ_EMPTY(&s->txn))
		STAILQ_INIT(&s->txn); /* a zeroed (new) client's queue */
	STAILQ_INSERT_TAIL(&s->txn, t, link);
	s->txn_n++;
	return 0;
}
