// SPDX-License-Identifier: Apache-2.0
/* store_etcd.c — see store_etcd.h.
 *
 * Two clients: the blocking one of sy_rpc_call_sync for load, commit and the lease's
 * first grant and last revoke (a private loop each time), and one long-lived client on
 * the daemon's loop for the watch, the lease keep-alive and the node key. The long-lived
 * client is freed and made again on every restart of the watch (its calls end without
 * callbacks), so no callback of an old connection ever reaches the new one.
 */
#include "registry/store_etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "etcd/rpc.pb-c.h"
#include "model/endpoint.h"
#include "registry/registry.h"
#include "registry/store_file.h"
#include "rpc/rpc.h"

#define MAX_EP	       8
#define SYNC_TMO_MS    2000
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 3000
#define NODE_VAL_MAX   8192

#define P_RANGE	    "/etcdserverpb.KV/Range"
#define P_PUT	    "/etcdserverpb.KV/Put"
#define P_TXN	    "/etcdserverpb.KV/Txn"
#define P_WATCH	    "/etcdserverpb.Watch/Watch"
#define P_GRANT	    "/etcdserverpb.Lease/LeaseGrant"
#define P_REVOKE    "/etcdserverpb.Lease/LeaseRevoke"
#define P_KEEPALIVE "/etcdserverpb.Lease/LeaseKeepAlive"

struct etcd_store {
	struct sy_store s; /* first: the interface */
	struct sy_loop *loop;
	char ep[MAX_EP][128];
	size_t n_ep, cur;
	char prefix[256];
	char state_key[300], watch_key[300], watch_end[300], node_key[400], leader_key[300];
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
	uint64_t retry_timer, ka_timer;
	uint32_t backoff_ms;
	int ka_busy, put_busy, put_dirty, grant_busy;
	int64_t lease;
	uint64_t applied_rev;
	char node_val[NODE_VAL_MAX];
	char why[700];

	char leader[64]; /* who holds PREFIX/leader ("" unknown or nobody) */
	int is_leader;	 /* this node, on its current lease, while etcd is reachable */
	int campaign_busy;
	int64_t leader_rev; /* etcd revision of what `leader` was learnt from */
	void (*on_leader)(void *ctx, int is_leader, const char *leader);
	void *leader_ctx;
};

static void campaign(struct etcd_store *e);
static void set_leader(struct etcd_store *e, const ProtobufCBinaryData *name, int64_t lease);

static ProtobufCBinaryData bin(const char *s)
{
	return (ProtobufCBinaryData){.len = strlen(s), .data = (uint8_t *)s};
}

static int bin_is(const ProtobufCBinaryData *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

int sy_store_is_etcd_url(const char *s)
{
	return s && strncmp(s, "etcd://", 7) == 0;
}

/* etcd://HOST:PORT[,HOST:PORT…]/PREFIX */
static int parse_url(struct etcd_store *e, const char *url)
{
	const char *p = url + 7, *slash = strchr(p, '/');
	char hosts[1024];
	size_t hl = slash ? (size_t)(slash - p) : strlen(p);

	if (!sy_store_is_etcd_url(url) || hl == 0 || hl >= sizeof(hosts))
		return -EINVAL;
	memcpy(hosts, p, hl);
	hosts[hl] = 0;
	for (char *save = NULL, *h = strtok_r(hosts, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		if (e->n_ep == MAX_EP || strlen(h) >= sizeof(e->ep[0]) || !strchr(h, ':'))
			return -EINVAL;
		snprintf(e->ep[e->n_ep++], sizeof(e->ep[0]), "%s", h);
	}
	if (!e->n_ep)
		return -EINVAL;
	/* the prefix: "/" + what follows the hosts, without a trailing slash */
	snprintf(e->prefix, sizeof(e->prefix), "/%s", slash && slash[1] ? slash + 1 : "switchyard");
	while (strlen(e->prefix) > 1 && e->prefix[strlen(e->prefix) - 1] == '/')
		e->prefix[strlen(e->prefix) - 1] = 0;
	if (strlen(e->prefix) < 2 || strlen(slash ? slash : "") >= sizeof(e->prefix))
		return -EINVAL;
	snprintf(e->state_key, sizeof(e->state_key), "%s/state", e->prefix);
	/* the watch covers PREFIX/…: [PREFIX/, PREFIX0) ('0' is '/' + 1) */
	snprintf(e->watch_key, sizeof(e->watch_key), "%s/", e->prefix);
	snprintf(e->watch_end, sizeof(e->watch_end), "%s0", e->prefix);
	return 0;
}

/* ---- blocking calls ------------------------------------------------------------- */

/* Tries each endpoint from the current one. -ENOTCONN: none answered; -EIO: one
 * answered with an error (logged). */
static int sync_call(struct etcd_store *e, const char *path, const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *desc, uint64_t tmo_ms, ProtobufCMessage **resp)
{
	struct sy_rpc_status st;

	for (size_t i = 0; i < e->n_ep; i++) {
		size_t k = (e->cur + i) % e->n_ep;
		int r = sy_rpc_call_sync_tls(e->ep[k], e->tls, path, req, desc, tmo_ms, 0, resp, &st);

		if (r)
			return r;
		if (st.code == SY_GRPC_OK) {
			e->cur = k;
			return 0;
		}
		snprintf(e->why, sizeof(e->why), "%s: %s", e->ep[k], st.message);
		if (st.code != SY_GRPC_UNAVAILABLE && st.code != SY_GRPC_DEADLINE_EXCEEDED) {
			sy_error("etcd", "%s %s: %s (gRPC status %d)", e->ep[k], path, st.message, st.code);
			return -EIO;
		}
	}
	return -ENOTCONN;
}

/* ---- the node key --------------------------------------------------------------- */

static void on_put(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg);

static void node_put(struct etcd_store *e)
{
	Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;

	if (!e->up || !e->cl || !e->lease || e->put_busy) {
		e->put_dirty = 1;
		return;
	}
	req.key = bin(e->node_key);
	req.value = bin(e->node_val);
	req.lease = e->lease;
	e->put_dirty = 0;
	if (sy_rpc_client_call(e->cl, P_PUT, &req.base, &etcdserverpb__put_response__descriptor, SYNC_TMO_MS,
			       on_put, e) == 0)
		e->put_busy = 1;
}

static void on_put(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct etcd_store *e = arg;

	if (msg)
		return;
	e->put_busy = 0;
	if (st->code != SY_GRPC_OK) {
		sy_warn("etcd", "write %s: %s", e->node_key, st->message);
		e->put_dirty = 1; /* again once the watch is back */
		return;
	}
	if (e->put_dirty)
		node_put(e);
}

/* The node key's value: what an operator (or etcdctl) reads about this agent. */
static void node_value(struct etcd_store *e, const struct sy_migration_state *m, size_t n)
{
	char *p = e->node_val, *end = e->node_val + sizeof(e->node_val);
	int first = 1;

	p += snprintf(
		p, (size_t)(end - p),
		"{\"node\":\"%s\",\"version\":\"%s\",\"pid\":%d,\"applied_revision\":%llu,\"targets\":[",
		e->node, e->version, (int)getpid(), (unsigned long long)e->applied_rev);
	for (size_t i = 0; i < n && p < end - 160; i++) {
		for (uint32_t t = 0; t < m[i].spec.n_target && p < end - 160; t++) {
			char ep[SY_EP_STRLEN];

			sy_endpoint_format(&m[i].spec.target[t], ep, sizeof(ep));
			p += snprintf(p, (size_t)(end - p),
				      "%s{\"migration\":\"%s\",\"endpoint\":\"%s\",\"healthy\":%s}",
				      first ? "" : ",", m[i].spec.name, ep,
				      (m[i].healthy_mask >> t) & 1 ? "true" : "false");
			first = 0;
		}
	}
	if (p < end)
		snprintf(p, (size_t)(end - p), "]}");
}

static void on_commit(void *ctx, const struct sy_commit *c)
{
	struct etcd_store *e = ctx;
	char old[NODE_VAL_MAX];

	memcpy(old, e->node_val, sizeof(old));
	e->applied_rev = c->revision;
	node_value(e, c->after, c->n_after);
	if (strcmp(old, e->node_val) != 0)
		node_put(e);
}

int sy_store_etcd_follow(struct sy_store *s, struct sy_registry *r)
{
	return sy_registry_subscribe(r, "fleet", on_commit, s);
}

/* ---- the lease ------------------------------------------------------------------ */

static void go_down(struct etcd_store *e, const char *why, int unreachable);

static void on_grant(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct etcd_store *e = arg;

	if (msg) {
		const Etcdserverpb__LeaseGrantResponse *r = (const void *)msg;

		if (r->id && !r->error[0]) {
			e->lease = r->id;
			sy_info("etcd", "node %s: new lease %llx (TTL %llds)", e->node,
				(unsigned long long)r->id, (long long)r->ttl);
		}
		return;
	}
	e->grant_busy = 0;
	if (st->code != SY_GRPC_OK) {
		go_down(e, st->message, 1);
	} else if (e->lease) {
		node_put(e);
		campaign(e);
	}
}

static void grant(struct etcd_store *e)
{
	Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;

	if (e->grant_busy)
		return;
	req.ttl = e->ttl_s;
	if (sy_rpc_client_call(e->cl, P_GRANT, &req.base, &etcdserverpb__lease_grant_response__descriptor,
			       SYNC_TMO_MS, on_grant, e) == 0)
		e->grant_busy = 1;
}

static void on_keepalive(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct etcd_store *e = arg;

	if (msg) {
		const Etcdserverpb__LeaseKeepAliveResponse *r = (const void *)msg;

		if (r->ttl <= 0) {
			/* expired while etcd was out of reach: the node key went with it */
			sy_warn("etcd", "node %s: lease %llx expired; granting a new one", e->node,
				(unsigned long long)e->lease);
			e->lease = 0;
			set_leader(e, NULL, 0);
		}
		return;
	}
	e->ka_busy = 0;
	if (st->code != SY_GRPC_OK)
		go_down(e, st->message, 1);
	else if (!e->lease)
		grant(e);
}

/* LeaseKeepAlive is a bidirectional stream; one request per stream (sent, then
 * half-closed) gets one answer and an OK status, which is all a renewal needs. */
static void keepalive(struct etcd_store *e)
{
	Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;

	if (!e->up || e->ka_busy)
		return;
	if (!e->lease) {
		grant(e);
		return;
	}
	req.id = e->lease;
	if (sy_rpc_client_call(e->cl, P_KEEPALIVE, &req.base,
			       &etcdserverpb__lease_keep_alive_response__descriptor, SYNC_TMO_MS,
			       on_keepalive, e) == 0)
		e->ka_busy = 1;
}

static void ka_tick(struct sy_loop *l, void *arg)
{
	struct etcd_store *e = arg;

	(void)l;
	e->ka_timer = sy_loop_add_timer(e->loop, e->ttl_s * 1000 / 3, ka_tick, e);
	keepalive(e);
	/* nobody known to lead (a campaign's answer overtaken by a deletion): try again */
	if (!e->leader[0])
		campaign(e);
}

/* ---- the watch ------------------------------------------------------------------ */

/* The last state this node applied, kept so that it can start again (fail-static)
 * while etcd is out of reach. */
static void cache_write(struct etcd_store *e, const Switchyard__V1__State *st)
{
	int rc;

	if (!e->cache[0])
		return;
	if ((rc = sy_state_prepare(e->cache, st)) || (rc = sy_state_commit(e->cache)))
		sy_warn("etcd", "keep a copy of generation %llu in %s: %s",
			(unsigned long long)st->generation, e->cache, strerror(-rc));
}

static void deliver(struct etcd_store *e, const Switchyard__V1__State *st)
{
	cache_write(e, st);
	e->s.revision = st->generation;
	if (e->fn)
		e->fn(e->ctx, st);
}

/* PREFIX/state as read or watched at mod_revision mod. */
static void take_state(struct etcd_store *e, const ProtobufCBinaryData *v, int64_t mod)
{
	Switchyard__V1__State *st = switchyard__v1__state__unpack(NULL, v->len, v->data);

	e->mod_rev = mod;
	if (!st || !SY_STATE_FORMAT_OK(st->format)) {
		sy_error("etcd", "%s at revision %lld is not a switchyard state (format %d to %d): ignored",
			 e->state_key, (long long)mod, SY_STATE_FORMAT_MIN, SY_STATE_FORMAT);
		if (st)
			switchyard__v1__state__free_unpacked(st, NULL);
		return;
	}
	sy_info("etcd", "%s: generation %llu from elsewhere (etcd revision %lld)", e->state_key,
		(unsigned long long)st->generation, (long long)mod);
	deliver(e, st);
	switchyard__v1__state__free_unpacked(st, NULL);
}

/* PREFIX/state deleted (by an operator): an empty set, one generation on. */
static void take_delete(struct etcd_store *e)
{
	Switchyard__V1__State st = SWITCHYARD__V1__STATE__INIT;

	e->mod_rev = 0;
	st.format = SY_STATE_FORMAT;
	st.generation = e->s.revision + 1;
	sy_warn("etcd", "%s was deleted: no migrations", e->state_key);
	deliver(e, &st);
}

/* ---- the leader ----------------------------------------------------------------- */

/* Who leads now: a key's value (the node's name) and lease; "" when nobody does. */
static void set_leader(struct etcd_store *e, const ProtobufCBinaryData *name, int64_t lease)
{
	char who[64] = "";
	int mine;

	if (name && name->len < sizeof(who)) {
		memcpy(who, name->data, name->len);
		who[name->len] = 0;
	}
	mine = e->up && e->lease && lease == e->lease && strcmp(who, e->node) == 0;
	if (mine == e->is_leader && strcmp(who, e->leader) == 0)
		return;
	if (mine != e->is_leader)
		sy_info("etcd", "node %s %s", e->node,
			mine ? "is the leader: runs what runs once (cutover plans)" : "follows");
	snprintf(e->leader, sizeof(e->leader), "%s", who);
	e->is_leader = mine;
	if (e->on_leader)
		e->on_leader(e->leader_ctx, mine, e->leader);
}

static void on_campaign(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct etcd_store *e = arg;

	if (msg) {
		const Etcdserverpb__TxnResponse *r = (const void *)msg;
		const Etcdserverpb__ResponseOp *op = r->n_responses ? r->responses[0] : NULL;

		/* the watch may already have told something newer (the key deleted since) */
		if (r->header && r->header->revision < e->leader_rev)
			return;
		if (r->header)
			e->leader_rev = r->header->revision;
		if (r->succeeded) {
			ProtobufCBinaryData me = bin(e->node);

			set_leader(e, &me, e->lease);
		} else if (op && op->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE &&
			   op->response_range->n_kvs) {
			const Mvccpb__KeyValue *kv = op->response_range->kvs[0];

			set_leader(e, &kv->value, kv->lease);
		}
		return;
	}
	e->campaign_busy = 0;
	if (st->code != SY_GRPC_OK)
		go_down(e, st->message, 1);
}

/* One Txn: PREFIX/leader created with this node's lease if nobody holds it, else read
 * who does. The key goes with its holder's lease: revoked at a clean stop, expired
 * after the TTL when the holder died or lost etcd; the DELETE starts a new campaign. */
static void campaign(struct etcd_store *e)
{
	Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT, *cmps[1] = {&cmp};
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RequestOp ok = ETCDSERVERPB__REQUEST_OP__INIT, *oks[1] = {&ok};
	Etcdserverpb__RequestOp ko = ETCDSERVERPB__REQUEST_OP__INIT, *kos[1] = {&ko};
	Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;

	if (!e->up || !e->cl || !e->lease || e->campaign_busy)
		return;
	cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
	cmp.key = bin(e->leader_key);
	cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
	cmp.create_revision = 0; /* the key does not exist */
	put.key = bin(e->leader_key);
	put.value = bin(e->node);
	put.lease = e->lease;
	ok.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	ok.request_put = &put;
	get.key = bin(e->leader_key);
	ko.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	ko.request_range = &get;
	txn.n_compare = 1;
	txn.compare = cmps;
	txn.n_success = 1;
	txn.success = oks;
	txn.n_failure = 1;
	txn.failure = kos;
	if (sy_rpc_client_call(e->cl, P_TXN, &txn.base, &etcdserverpb__txn_response__descriptor, SYNC_TMO_MS,
			       on_campaign, e) == 0)
		e->campaign_busy = 1;
}

static void leader_event(struct etcd_store *e, const Mvccpb__Event *ev)
{
	e->leader_rev = ev->kv->mod_revision;
	if (ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE) {
		set_leader(e, NULL, 0);
		campaign(e);
	} else {
		set_leader(e, &ev->kv->value, ev->kv->lease);
	}
}

void sy_store_etcd_on_leader(struct sy_store *s, void (*fn)(void *ctx, int is_leader, const char *leader),
			     void *ctx)
{
	struct etcd_store *e = (struct etcd_store *)s;

	e->on_leader = fn;
	e->leader_ctx = ctx;
}

const char *sy_store_etcd_leader(const struct sy_store *s)
{
	return ((const struct etcd_store *)s)->leader;
}

static void on_watch(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct etcd_store *e = arg;

	if (!msg) {
		go_down(e, st->message[0] ? st->message : "watch ended", 1);
		return;
	}
	const Etcdserverpb__WatchResponse *r = (const void *)msg;

	if (r->created && !e->watching) {
		e->up = e->watching = 1;
		e->backoff_ms = BACKOFF_MIN_MS;
		sy_info("etcd", "%s %s: watching %s from revision %lld",
			e->ever_up ? "back on" : "connected to", e->ep[e->cur], e->watch_key,
			(long long)e->sync_rev + 1);
		e->ever_up = 1;
		keepalive(e); /* a lease that expired meanwhile is granted again */
		campaign(e);
		if (e->put_dirty)
			node_put(e);
	}
	if (r->canceled || r->compact_revision) {
		char why[300];

		snprintf(why, sizeof(why), "watch cancelled (compacted at %lld: %s)",
			 (long long)r->compact_revision, r->cancel_reason);
		go_down(e, why, 0);
		return;
	}
	for (size_t i = 0; i < r->n_events; i++) {
		const Mvccpb__Event *ev = r->events[i];

		if (ev->kv && bin_is(&ev->kv->key, e->leader_key)) {
			leader_event(e, ev);
			continue;
		}
		if (!ev->kv || !bin_is(&ev->kv->key, e->state_key) || ev->kv->mod_revision <= e->mod_rev)
			continue; /* another key, or seen (our own commit) */
		if (ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE)
			take_delete(e);
		else
			take_state(e, &ev->kv->value, ev->kv->mod_revision);
	}
}

static void start_watch(struct etcd_store *e)
{
	Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
	int r;

	cr.key = bin(e->watch_key);
	cr.range_end = bin(e->watch_end);
	cr.start_revision = e->sync_rev + 1;
	wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	wr.create_request = &cr;
	/* Watch is bidirectional; the one create request is sent and the stream half-closed:
	 * etcd keeps the watch running until the stream ends. */
	r = sy_rpc_client_call(e->cl, P_WATCH, &wr.base, &etcdserverpb__watch_response__descriptor, 0,
			       on_watch, e);
	if (r)
		go_down(e, strerror(-r), 1);
}

static void on_range(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct etcd_store *e = arg;

	if (msg) {
		const Etcdserverpb__RangeResponse *r = (const void *)msg;

		e->sync_got = 1;
		e->sync_rev = r->header ? r->header->revision : 0;
		/* a full read: whatever differs from what this agent applied is news */
		if (r->n_kvs && r->kvs[0]->mod_revision != e->mod_rev)
			take_state(e, &r->kvs[0]->value, r->kvs[0]->mod_revision);
		else if (!r->n_kvs && e->mod_rev)
			take_delete(e);
		return;
	}
	if (st->code != SY_GRPC_OK || !e->sync_got) {
		go_down(e, st->message[0] ? st->message : "no answer", 1);
		return;
	}
	start_watch(e);
}

/* A full read of PREFIX/state, then the watch from the read's revision. */
static void start_sync(struct etcd_store *e)
{
	Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
	int r;

	req.key = bin(e->state_key);
	e->sync_got = 0;
	r = sy_rpc_client_call(e->cl, P_RANGE, &req.base, &etcdserverpb__range_response__descriptor,
			       SYNC_TMO_MS, on_range, e);
	if (r)
		go_down(e, strerror(-r), 1);
}

static void reconnect(struct sy_loop *l, void *arg)
{
	struct etcd_store *e = arg;

	(void)l;
	e->retry_timer = 0;
	/* never from inside one of its callbacks: this runs from a timer */
	sy_rpc_client_free(e->cl);
	e->ka_busy = e->put_busy = e->grant_busy = e->campaign_busy = 0;
	e->cl = sy_rpc_client_new(e->loop, e->ep[e->cur], 0);
	if (e->cl && e->tls)
		sy_rpc_client_set_tls(e->cl, e->tls, NULL);
	if (!e->cl) {
		go_down(e, "out of memory", 1);
		return;
	}
	start_sync(e);
}

/* The watch is broken: fail-static (commits refused) until a full read and a new watch
 * succeed, after a backoff, on the next endpoint. */
static void go_down(struct etcd_store *e, const char *why, int unreachable)
{
	if (e->up || !e->retry_timer) {
		if (e->up && unreachable)
			sy_warn("etcd",
				"%s unreachable (%s): fail-static on generation %llu; changes refused until "
				"it "
				"is back",
				e->ep[e->cur], why, (unsigned long long)e->s.revision);
		else if (e->up)
			sy_info("etcd", "%s: %s; reading %s again", e->ep[e->cur], why, e->state_key);
		else
			sy_debug("etcd", "%s: %s", e->ep[e->cur], why);
	}
	e->up = e->watching = 0;
	/* out of reach, this node cannot know its lease still holds: it stops leading */
	if (e->is_leader || e->leader[0])
		set_leader(e, NULL, 0);
	if (e->retry_timer)
		return;
	if (unreachable)
		e->cur = (e->cur + 1) % e->n_ep;
	e->retry_timer = sy_loop_add_timer(e->loop, unreachable ? e->backoff_ms : 0, reconnect, e);
	if (unreachable)
		e->backoff_ms = e->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : e->backoff_ms * 2;
}

/* ---- the store ------------------------------------------------------------------ */

static int es_load(struct sy_store *s, Switchyard__V1__State **out)
{
	struct etcd_store *e = (struct etcd_store *)s;
	Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *r = NULL;
	int rc;

	*out = NULL;
	req.key = bin(e->state_key);
	rc = e->offline ? -ENOTCONN
			: sync_call(e, P_RANGE, &req.base, &etcdserverpb__range_response__descriptor,
				    SYNC_TMO_MS, (ProtobufCMessage **)&r);
	if (rc == -ENOTCONN && e->cache[0]) {
		/* fail-static across a restart: what this node applied last; the watch's first
		 * full read (mod_revision unknown: 0) brings whatever changed meanwhile */
		e->offline = 1;
		if ((rc = sy_state_read(e->cache, out)) == 0 && *out)
			s->revision = (*out)->generation;
		else if (rc == 0)
			rc = -ENOTCONN; /* nothing cached: nothing to stand on */
		if (rc == 0)
			sy_warn("etcd",
				"%s unreachable (%s): starting from generation %llu kept in %s; changes "
				"refused "
				"until it is back",
				e->ep[e->cur], e->why, (unsigned long long)s->revision, e->cache);
		else
			sy_error("etcd", "unreachable: %s", e->why); /* the reason: refused, TLS, … */
		return rc;
	}
	if (rc)
		return rc;
	e->sync_rev = r->header ? r->header->revision : 0;
	if (r->n_kvs) {
		*out = switchyard__v1__state__unpack(NULL, r->kvs[0]->value.len, r->kvs[0]->value.data);
		rc = !*out ? -EBADMSG : !SY_STATE_FORMAT_OK((*out)->format) ? -EPROTO : 0;
		if (rc && *out) {
			switchyard__v1__state__free_unpacked(*out, NULL);
			*out = NULL;
		}
		if (!rc) {
			e->mod_rev = r->kvs[0]->mod_revision;
			s->revision = (*out)->generation;
			cache_write(e, *out);
		}
	} else {
		e->mod_rev = 0;
		s->revision = 0;
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}

/* apply runs first, then the Txn: etcd makes a change durable and visible to the fleet
 * in one step, and a failed Txn hands the caller its maps to undo. */
static int es_commit(struct sy_store *s, const Switchyard__V1__State *st, int (*apply)(void *arg), void *arg)
{
	struct etcd_store *e = (struct etcd_store *)s;
	Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT, *cmps[1] = {&cmp};
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT, *ops[1] = {&op};
	Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__TxnResponse *r = NULL;
	size_t len;
	uint8_t *buf;
	int rc;

	if (e->fn && !e->up)
		return -ENOTCONN; /* fail-static: what this agent has not seen, it must not overwrite */
	if (st->generation != s->revision + 1)
		return -ESTALE;
	if (apply && (rc = apply(arg)))
		return rc;
	len = switchyard__v1__state__get_packed_size(st);
	if (!(buf = malloc(len ? len : 1)))
		return -ENOMEM;
	switchyard__v1__state__pack(st, buf);
	cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
	cmp.key = bin(e->state_key);
	cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
	cmp.mod_revision = e->mod_rev; /* 0 matches a key that does not exist yet */
	put.key = bin(e->state_key);
	put.value = (ProtobufCBinaryData){.len = len, .data = buf};
	op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op.request_put = &put;
	txn.n_compare = 1;
	txn.compare = cmps;
	txn.n_success = 1;
	txn.success = ops;
	rc = sync_call(e, P_TXN, &txn.base, &etcdserverpb__txn_response__descriptor, SYNC_TMO_MS,
		       (ProtobufCMessage **)&r);
	free(buf);
	if (rc == -ENOTCONN && e->fn) {
		/* the Txn may or may not have landed: the watch's full read will tell */
		go_down(e, e->why, 1);
	}
	if (rc)
		return rc;
	if (!r->succeeded) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return -ESTALE;
	}
	e->mod_rev = r->header ? r->header->revision : e->mod_rev;
	s->revision = st->generation;
	cache_write(e, st);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static int es_watch(struct sy_store *s, sy_store_watch_fn fn, void *ctx)
{
	struct etcd_store *e = (struct etcd_store *)s;

	e->fn = fn;
	e->ctx = ctx;
	e->cl = sy_rpc_client_new(e->loop, e->ep[e->cur], 0);
	if (!e->cl)
		return -ENOMEM;
	if (e->tls)
		sy_rpc_client_set_tls(e->cl, e->tls, NULL);
	/* up until a call says otherwise (the watch's first answer confirms it), unless
	 * this start could not reach etcd at all */
	e->up = !e->offline;
	start_sync(e);
	e->ka_timer = sy_loop_add_timer(e->loop, e->ttl_s * 1000 / 3, ka_tick, e);
	return 0;
}

static void es_close(struct sy_store *s)
{
	struct etcd_store *e = (struct etcd_store *)s;

	sy_loop_cancel_timer(e->loop, e->retry_timer);
	sy_loop_cancel_timer(e->loop, e->ka_timer);
	sy_rpc_client_free(e->cl);
	if (e->lease) {
		/* the node key goes with its lease now, not after the TTL */
		Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
		ProtobufCMessage *r = NULL;

		req.id = e->lease;
		if (sync_call(e, P_REVOKE, &req.base, &etcdserverpb__lease_revoke_response__descriptor, 1000,
			      &r) == 0)
			protobuf_c_message_free_unpacked(r, NULL);
		else
			sy_warn("etcd", "revoke lease of node %s: %s; its key goes after %us", e->node,
				e->why, e->ttl_s);
	}
	free(e);
}

static const struct sy_store_ops etcd_ops = {
	.load = es_load,
	.commit = es_commit,
	.watch = es_watch,
	.close = es_close,
};

int sy_store_etcd_up(const struct sy_store *s)
{
	return ((const struct etcd_store *)s)->up;
}

const char *sy_store_etcd_node(const struct sy_store *s)
{
	return ((const struct etcd_store *)s)->node;
}

int sy_store_etcd_open(struct sy_loop *loop, const struct sy_store_etcd_opts *o, struct sy_store **out)
{
	Etcdserverpb__LeaseGrantRequest greq = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	Etcdserverpb__LeaseGrantResponse *g = NULL;
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	ProtobufCMessage *pr = NULL;
	struct etcd_store *e;
	int rc;

	*out = NULL;
	if (!(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	e->s.ops = &etcd_ops;
	e->s.shared = true;
	e->loop = loop;
	e->backoff_ms = BACKOFF_MIN_MS;
	e->ttl_s = o->ttl_s ? o->ttl_s : 10;
	e->tls = o->tls;
	if (parse_url(e, o->url) || !o->node || !o->node[0] || strlen(o->node) >= sizeof(e->node) ||
	    strchr(o->node, '/')) {
		sy_error("etcd",
			 "--store \"%s\" --node \"%s\": expected etcd://HOST:PORT[,HOST:PORT…]/PREFIX and a "
			 "node name without '/'",
			 o->url, o->node ? o->node : "");
		free(e);
		return -EINVAL;
	}
	snprintf(e->node, sizeof(e->node), "%s", o->node);
	snprintf(e->version, sizeof(e->version), "%s", o->version ? o->version : "");
	snprintf(e->node_key, sizeof(e->node_key), "%s/nodes/%s", e->prefix, e->node);
	snprintf(e->leader_key, sizeof(e->leader_key), "%s/leader", e->prefix);
	snprintf(e->s.where, sizeof(e->s.where), "etcd://%s%s", e->ep[0], e->state_key);
	if (o->cache_dir &&
	    snprintf(e->cache, sizeof(e->cache), "%s/fleet", o->cache_dir) < (int)sizeof(e->cache)) {
		if (mkdir(e->cache, 0700) < 0 && errno != EEXIST)
			e->cache[0] = 0;
	} else {
		e->cache[0] = 0;
	}
	node_value(e, NULL, 0);

	greq.ttl = e->ttl_s;
	if ((rc = sync_call(e, P_GRANT, &greq.base, &etcdserverpb__lease_grant_response__descriptor,
			    SYNC_TMO_MS, (ProtobufCMessage **)&g))) {
		if (rc == -ENOTCONN && e->cache[0]) {
			/* load decides: a copy of the last state to stand on, or no start */
			e->offline = 1;
			*out = &e->s;
			return 0;
		}
		goto fail;
	}
	e->lease = g->id;
	protobuf_c_message_free_unpacked(&g->base, NULL);
	put.key = bin(e->node_key);
	put.value = bin(e->node_val);
	put.lease = e->lease;
	if ((rc = sync_call(e, P_PUT, &put.base, &etcdserverpb__put_response__descriptor, SYNC_TMO_MS, &pr)))
		goto fail;
	protobuf_c_message_free_unpacked(pr, NULL);
	sy_info("etcd", "node %s on %s (prefix %s, lease %llx, TTL %us)", e->node, e->ep[e->cur], e->prefix,
		(unsigned long long)e->lease, e->ttl_s);
	*out = &e->s;
	return 0;
fail:
	sy_error("etcd", "open %s: %s", o->url, rc == -ENOTCONN ? e->why : strerror(-rc));
	free(e);
	return rc;
}
