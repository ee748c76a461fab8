// SPDX-License-Identifier: Apache-2.0
/* clients.h — what the mirror follows of each client connection that writes through a
 * migration: the database it selected and the transaction it has open (the commands
 * between MULTI and EXEC, kept until EXEC replays them as one unit).
 *
 * Contract: sockets never say they closed, so the table (SY_CLIENT_SLOTS entries) takes
 * over the least recently active of a few candidates for a new connection; when the
 * one it forgets had a database selected or a transaction open (and was active within
 * a minute) the caller is told, since that client's next writes would be replayed
 * wrongly. Zeroed memory is an empty table and an idle client. */
#ifndef SY_CLIENTS_H
#define SY_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct sy_argv;

#define SY_CLIENT_SLOTS 16384 /* client connections followed at once (power of two) */

/* One command of an open transaction, with its own copy of the arguments. */
struct sy_txcmd {
	STAILQ_ENTRY(sy_txcmd) link;
	int argc;
	char **argv;
	size_t *lens;
	int nkeys;
	int *keys; /* argv indexes */
};

struct sy_client {
	uint64_t cookie; /* 0: free */
	uint64_t last_ms;
	int db;
	bool in_multi;
	bool txn_bad;		     /* the transaction cannot be replayed exactly: repair its keys */
	bool watched;		     /* WATCH since the last EXEC/DISCARD/UNWATCH: EXEC may abort */
	STAILQ_HEAD(, sy_txcmd) txn; /* the open transaction's commands, in order */
	size_t txn_n;
};

struct sy_clients {
	struct sy_client *tab; /* SY_CLIENT_SLOTS, allocated on first use */
};

/* The state of client connection `cookie` (NULL: out of memory). *lost is set when a
 * forgotten client's SELECT/MULTI state was still in use (see above). */
struct sy_client *sy_clients_get(struct sy_clients *t, uint64_t cookie, bool *lost);
void sy_clients_free(struct sy_clients *t);
/* Keeps one command of the open transaction (its arguments copied). */
int sy_client_txn_add(struct sy_client *s, const struct sy_argv *a, const int *keys, int nkeys);
/* Forgets the transaction: no MULTI open any more. */
void sy_client_txn_clear(struct sy_client *s);

#endif
