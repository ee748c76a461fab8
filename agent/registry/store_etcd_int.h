// SPDX-License-Identifier: Apache-2.0
/* store_etcd_int.h — what the etcd store's three files share (not for other callers):
 *   store_etcd.c        the store interface: URL, blocking calls, load, commit, open/close
 *   store_etcd_watch.c  the full read, the watch, reconnecting, the fail-static cache
 *   store_etcd_lease.c  the node's lease, its key (NodeStatus, published each second
 *                       when it changed), and the leader election
 */
#ifndef SY_STORE_ETCD_INT_H
#define SY_STORE_ETCD_INT_H

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "etcd/rpc.pb-c.h"
#include "registry/store_etcd.h"

#define MAX_EP	       8
#define SYNC_TMO_MS    2000
#define COMMIT_TMO_MS  400 /* the whole commit, every endpoint: the daemon's loop waits */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 3000
#define PUBLISH_MS     1000

#define P_RANGE	    "/etcdserverpb.KV/Range"
#define P_PUT	    "/etcdserverpb.KV/Put"
#define P_TXN	    "/etcdserverpb.KV/Txn"
#define P_WATCH	    "/etcdserverpb.Watch/Watch"
#define P_GRANT	    "/etcdserverpb.Lease/LeaseGrant"
#define P_REVOKE    "/etcdserverpb.Lease/LeaseRevoke"
#define P_KEEPALIVE "/etcdserverpb.Lease/LeaseKeepAlive"

struct sy_fleet;

struct etcd_target {
	char migration[64], endpoint[64];
	int healthy;
};

struct etcd_store {
	struct sy_store s; /* first: the interface */
	struct sy_loop *loop;
	char ep[MAX_EP][128];
	size_t n_ep, cur;
	char prefix[256];
	char state_key[300], watch_key[300], watch_end[300], node_key[400], leader_key[300];
	char nodes_key[300]; /* PREFIX/nodes/ */
	char node[64], version[32];
	char cache[PATH_MAX]; /* STATE_DIR/fleet: the last state applied, for a start without etcd */
	struct sy_tls *tls;   /* TLS to etcd (not owned), NULL = h2c */
	int offline;	      /* started from the cache: down until the watch runs */
	uint32_t ttl_s;

	int64_t mod_rev;  /* PREFIX/state's mod_revision as last seen; 0: absent */
	int64_t sync_rev; /* the full read's revision: the watch starts after it */
	int sync_got;
	int up;	      /* etcd is reachable: commits go ahead */
	int watching; /* the watch confirmed it runs */
	int ever_up;
	sy_store_watch_fn fn;
	void *ctx;

	struct sy_rpc_client *cl; /* on the daemon's loop */
	uint64_t retry_timer, ka_timer, pub_timer;
	uint32_t backoff_ms;
	int ka_busy, put_busy, put_dirty, grant_busy;
	int64_t lease;
	uint64_t applied_rev;
	struct etcd_target *targets;
	size_t n_targets;
	uint8_t *node_val; /* the NodeStatus last put (published_unix_ms 0) */
	size_t node_len;
	uint64_t put_unix_ms;
	char why[700];

	struct sy_fleet *fleet; /* every node's status and the fleet's sums */

	char leader[64]; /* who holds PREFIX/leader ("" unknown or nobody) */
	int is_leader;	 /* this node, on its current lease, while etcd is reachable */
	int campaign_busy;
	int64_t leader_rev; /* etcd revision of what `leader` was learnt from */
	void (*on_leader)(void *ctx, int is_leader, const char *leader);
	void *leader_ctx;
};

static inline ProtobufCBinaryData etcd_bin(const char *s)
{
	return (ProtobufCBinaryData){.len = strlen(s), .data = (uint8_t *)s};
}

static inline int etcd_bin_is(const ProtobufCBinaryData *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

/* A Txn that PUTs key = value (under lease; 0: none) when the key's revision (its mod
 * revision, or with `create` its create revision) is rev, and otherwise reads the key
 * when read_on_fail. &t->txn is the request; it points into t, which must stay put. */
struct etcd_txn {
	Etcdserverpb__Compare cmp, *cmps[1];
	Etcdserverpb__PutRequest put;
	Etcdserverpb__RangeRequest get;
	Etcdserverpb__RequestOp ok, *oks[1], ko, *kos[1];
	Etcdserverpb__TxnRequest txn;
};

/* store_etcd.c */
void etcd_txn_put_if(struct etcd_txn *t, const char *key, int create, int64_t rev, ProtobufCBinaryData value,
		     int64_t lease, int read_on_fail);
int etcd_sync_call(struct etcd_store *e, const char *path, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc, uint64_t tmo_ms, ProtobufCMessage **resp);

/* store_etcd_watch.c */
void etcd_go_down(struct etcd_store *e, const char *why, int unreachable);
void etcd_start_sync(struct etcd_store *e);
void etcd_cache_write(struct etcd_store *e, const Switchyard__V1__State *st);
/* a node key read or watched: PREFIX/nodes/NODE's value, or its deletion (v NULL) */
void etcd_node_event(struct etcd_store *e, const ProtobufCBinaryData *key, const ProtobufCBinaryData *v);

/* store_etcd_lease.c */
void etcd_node_put(struct etcd_store *e);
int etcd_node_value(struct etcd_store *e); /* builds node_val; 1 when it changed */
void etcd_keepalive(struct etcd_store *e);
void etcd_ka_tick(struct sy_loop *l, void *arg);
void etcd_pub_tick(struct sy_loop *l, void *arg);
void etcd_local_changed(void *arg); /* sy_fleet_on_local */
void etcd_campaign(struct etcd_store *e);
void etcd_set_leader(struct etcd_store *e, const ProtobufCBinaryData *name, int64_t lease);
void etcd_leader_event(struct etcd_store *e, const Mvccpb__Event *ev);

#endif
