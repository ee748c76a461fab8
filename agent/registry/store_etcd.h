// SPDX-License-Identifier: Apache-2.0
/* store_etcd.h — the shared store (store.h) of a fleet: etcd v3, spoken over the
 * project's own gRPC client (rpc.h) with the etcdserverpb subset in proto/etcd/.
 *
 * Keys under PREFIX (docs/fleet.md):
 *   PREFIX/state        the whole switchyard.v1.State, as the file store writes it. A
 *                       commit is one Txn that compares the key's mod_revision with
 *                       the one this agent last saw: a lost update is impossible, a
 *                       conflict is -ESTALE.
 *   PREFIX/leader       the leader's node name, on its lease: created by a Txn only
 *                       when absent; a follower campaigns again when it is deleted.
 *   PREFIX/nodes/NODE   this agent's switchyard.v1.NodeStatus (version, applied
 *                       revision, target health, cumulative per-migration counters),
 *                       on its own lease: kept alive while the agent runs, revoked when
 *                       it stops, gone after the TTL when it dies. Written when it
 *                       changed, at most once a second, at least every TTL/3.
 *
 * The watch runs on the daemon's loop: a full read of PREFIX/, then a Watch of
 * PREFIX/ from the read's revision; other agents' commits reach the registry as
 * SY_COMMIT_REMOTE, node keys the fleet table (fleet.h) whose sums the leader's gates
 * read. A broken watch (etcd down, compaction, reconnect) starts again
 * with a full read, after a backoff, trying the endpoints in turn. While etcd cannot
 * be reached the agent is fail-static: the kernel maps keep what was applied last,
 * commits are refused at once with -ENOTCONN, reads are served from the registry.
 *
 * load and commit are blocking calls on a private loop: load at start (2 s per
 * endpoint), commit within 400 ms for every endpoint together, so a stalled etcd holds
 * the daemon's loop (its API, its health checks) that long at most; a commit that got
 * no answer takes the store down (fail-static, later commits refused at once) until a
 * full read shows what landed.
 */
#ifndef SY_STORE_ETCD_H
#define SY_STORE_ETCD_H

#include <stdint.h>

#include "registry/store.h"

struct sy_loop;
struct sy_registry;
struct sy_tls;

struct sy_store_etcd_opts {
	const char *url;       /* etcd://HOST:PORT[,HOST:PORT…]/PREFIX */
	const char *node;      /* this agent's name in PREFIX/nodes/ */
	const char *version;   /* written into the node key */
	uint32_t ttl_s;	       /* the node lease's TTL; 0 = 10 s */
	const char *cache_dir; /* the state dir: DIR/fleet/state.pb keeps the last state
				* applied, so the agent can start while etcd is out of reach */
	struct sy_tls *tls;    /* TLS to etcd (rpc/tls.h; not owned), NULL = h2c */
};

/* Parses the URL, grants the node lease and writes the node key. -EINVAL: a bad URL
 * (message logged), -ENOTCONN: no endpoint answered and no cache_dir. With a cache_dir
 * and etcd out of reach, the store opens offline: load reads the cached state (-ENOTCONN
 * when there is none), commits are refused, and the watch connects when etcd is back.
 * Close with sy_store_close (which revokes the lease: the node key goes at once). */
int sy_store_etcd_open(struct sy_loop *loop, const struct sy_store_etcd_opts *o, struct sy_store **out);

/* Keeps the node key in step with the registry (applied revision, target health). */
int sy_store_etcd_follow(struct sy_store *s, struct sy_registry *r);

/* For status: whether the watch is up (etcd reachable), the node's name, and who
 * leads ("" when unknown: nobody, or etcd out of reach). */
int sy_store_etcd_up(const struct sy_store *s);
const char *sy_store_etcd_node(const struct sy_store *s);
const char *sy_store_etcd_leader(const struct sy_store *s);

/* The fleet table this store feeds (every node's status, the summed counters). */
struct sy_fleet *sy_store_etcd_fleet(struct sy_store *s);

/* fn(ctx, is_leader, leader) whenever this node starts or stops leading, or the leader
 * changes. The leader holds PREFIX/leader on its lease and runs what must run once. */
void sy_store_etcd_on_leader(struct sy_store *s, void (*fn)(void *ctx, int is_leader, const char *leader),
			     void *ctx);

/* "etcd://…" names this store. */
int sy_store_is_etcd_url(const char *s);

#endif
