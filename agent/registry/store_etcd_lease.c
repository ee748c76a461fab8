// SPDX-License-Identifier: Apache-2.0
/* store_etcd_lease.c — the node's lease (granted, kept alive every TTL/3, granted
 * again after it expired), its key PREFIX/nodes/NODE on that lease (a NodeStatus:
 * version, applied generation, targets' health, cumulative counters; written when it
 * changed, at most once a second, and at least every TTL/3), and the leader election
 * on PREFIX/leader. See store_etcd_int.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "model/endpoint.h"
#include "model/job.h"
#include "registry/fleet.h"
#include "registry/registry.h"
#include "registry/store_etcd_int.h"
#include "rpc/rpc.h"
#include "switchyard/v1/fleet.pb-c.h"

/* ---- the node key --------------------------------------------------------------- */

static void on_put(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg);

/* The NodeStatus, packed into a new buffer (free it); published_unix_ms as given. */
static uint8_t *pack_status(struct etcd_store *e, uint64_t ts, size_t *len)
{
	Switchyard__V1__NodeStatus ns = SWITCHYARD__V1__NODE_STATUS__INIT;
	Switchyard__V1__NodeTarget tg[SY_MAX_MIGRATIONS * 4], *tgp[SY_MAX_MIGRATIONS * 4];
	Switchyard__V1__NodeMigrationCounters mc[SY_MAX_MIGRATIONS], *mcp[SY_MAX_MIGRATIONS];
	Switchyard__V1__NodeSideCounters sc[SY_MAX_MIGRATIONS][2];
	Switchyard__V1__NodeJob jobs[SY_MAX_MIGRATIONS][2];
	const struct sy_fleet_mig *local;
	size_t n_local = e->fleet ? sy_fleet_local(e->fleet, &local) : 0;
	uint8_t *buf;

	ns.node = e->node;
	ns.version = e->version;
	ns.pid = (int32_t)getpid();
	ns.applied_revision = e->applied_rev;
	ns.published_unix_ms = ts;
	for (size_t i = 0; i < e->n_targets && i < SY_MAX_MIGRATIONS * 4; i++) {
		switchyard__v1__node_target__init(&tg[i]);
		tg[i].migration = e->targets[i].migration;
		tg[i].endpoint = e->targets[i].endpoint;
		tg[i].healthy = e->targets[i].healthy;
		tgp[ns.n_targets++] = &tg[i];
	}
	ns.targets = tgp;
	for (size_t i = 0; i < n_local; i++) {
		switchyard__v1__node_migration_counters__init(&mc[i]);
		mc[i].name = (char *)local[i].name;
		mc[i].ratio_bp = local[i].ratio_bp;
		mc[i].drift = local[i].c.drift;
		mc[i].connections_legacy = local[i].c.conns[SY_SIDE_LEGACY];
		mc[i].connections_target = local[i].c.conns[SY_SIDE_TARGET];
		for (int s = 0; s < 2; s++) {
			switchyard__v1__node_side_counters__init(&sc[i][s]);
			sc[i][s].requests = local[i].c.req[s];
			sc[i][s].errors = local[i].c.err[s];
			sc[i][s].n_latency_log2_us = SY_LAT_BUCKETS;
			sc[i][s].latency_log2_us = (uint64_t *)local[i].c.lat[s];
		}
		for (int k = 0; k < 2; k++) {
			const struct sy_fleet_job *j = k ? &local[i].backfill : &local[i].audit;

			if (j->state == SY_JOB_IDLE)
				continue;
			switchyard__v1__node_job__init(&jobs[i][k]);
			jobs[i][k].state = (char *)sy_job_state_name(j->state);
			jobs[i][k].scanned = j->scanned;
			jobs[i][k].total = j->total;
			jobs[i][k].copied = j->copied;
			jobs[i][k].found = j->found;
			jobs[i][k].repaired = j->repaired;
			jobs[i][k].started_unix_ms = j->started_unix_ms;
			jobs[i][k].finished_unix_ms = j->finished_unix_ms;
			jobs[i][k].error = (char *)j->error;
			jobs[i][k].n_differences = k ? 0 : 5;
			jobs[i][k].differences = (uint64_t *)j->diff;
			if (k)
				mc[i].backfill = &jobs[i][k];
			else
				mc[i].audit = &jobs[i][k];
		}
		mc[i].legacy = &sc[i][SY_SIDE_LEGACY];
		mc[i].target = &sc[i][SY_SIDE_TARGET];
		mcp[ns.n_migrations++] = &mc[i];
	}
	ns.migrations = mcp;
	*len = switchyard__v1__node_status__get_packed_size(&ns);
	if ((buf = malloc(*len ? *len : 1)))
		switchyard__v1__node_status__pack(&ns, buf);
	return buf;
}

int etcd_node_value(struct etcd_store *e)
{
	size_t len;
	uint8_t *buf = pack_status(e, 0, &len);

	if (!buf)
		return 0;
	if (e->node_val && len == e->node_len && memcmp(buf, e->node_val, len) == 0) {
		free(buf);
		return 0;
	}
	free(e->node_val);
	e->node_val = buf;
	e->node_len = len;
	return 1;
}

void etcd_node_put(struct etcd_store *e)
{
	Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
	uint8_t *buf;
	size_t len;

	if (!e->up || !e->cl || !e->lease || e->put_busy) {
		e->put_dirty = 1;
		return;
	}
	e->put_unix_ms = sy_unix_ms();
	if (!(buf = pack_status(e, e->put_unix_ms, &len)))
		return;
	req.key = etcd_bin(e->node_key);
	req.value = (ProtobufCBinaryData){.len = len, .data = buf};
	req.lease = e->lease;
	e->put_dirty = 0;
	if (sy_rpc_client_call(e->cl, P_PUT, &req.base, &etcdserverpb__put_response__descriptor, SYNC_TMO_MS,
			       on_put, e) == 0)
		e->put_busy = 1;
	free(buf);
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
		etcd_node_put(e);
}

/* New local counters (each second, fleet.h): the key is written when the status
 * changed (counters grew, a job moved). */
void etcd_local_changed(void *arg)
{
	struct etcd_store *e = arg;

	if (etcd_node_value(e))
		etcd_node_put(e);
}

/* Each second: a write that waited, and at least every TTL/3 so that the others see
 * this node alive even when nothing changed. */
void etcd_pub_tick(struct sy_loop *l, void *arg)
{
	struct etcd_store *e = arg;

	(void)l;
	e->pub_timer = sy_loop_add_timer(e->loop, PUBLISH_MS, etcd_pub_tick, e);
	if (etcd_node_value(e) || e->put_dirty || sy_unix_ms() - e->put_unix_ms >= e->ttl_s * 1000 / 3)
		etcd_node_put(e);
}

static void on_commit(void *ctx, const struct sy_commit *c)
{
	struct etcd_store *e = ctx;
	size_t n = 0;

	e->applied_rev = c->revision;
	for (size_t i = 0; i < c->n_after; i++)
		n += c->after[i].spec.n_target;
	free(e->targets);
	e->targets = calloc(n ? n : 1, sizeof(*e->targets));
	e->n_targets = 0;
	for (size_t i = 0; e->targets && i < c->n_after; i++) {
		const struct sy_migration_state *m = &c->after[i];

		for (uint32_t t = 0; t < m->spec.n_target; t++) {
			struct etcd_target *x = &e->targets[e->n_targets++];
			char ep[SY_EP_STRLEN];

			sy_endpoint_format(&m->spec.target[t], ep, sizeof(ep));
			snprintf(x->migration, sizeof(x->migration), "%s", m->spec.name);
			snprintf(x->endpoint, sizeof(x->endpoint), "%s", ep);
			x->healthy = (m->healthy_mask >> t) & 1;
		}
	}
	if (etcd_node_value(e))
		etcd_node_put(e);
}

int sy_store_etcd_follow(struct sy_store *s, struct sy_registry *r)
{
	return sy_registry_subscribe(r, "fleet", on_commit, s);
}

/* ---- the lease ------------------------------------------------------------------ */

static void grant(struct etcd_store *e);

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
		etcd_go_down(e, st->message, 1);
	} else if (e->lease) {
		etcd_node_put(e);
		etcd_campaign(e);
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
			etcd_set_leader(e, NULL, 0);
		}
		return;
	}
	e->ka_busy = 0;
	if (st->code != SY_GRPC_OK)
		etcd_go_down(e, st->message, 1);
	else if (!e->lease)
		grant(e);
}

/* LeaseKeepAlive is a bidirectional stream; one request per stream (sent, then
 * half-closed) gets one answer and an OK status, which is all a renewal needs. */
void etcd_keepalive(struct etcd_store *e)
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

void etcd_ka_tick(struct sy_loop *l, void *arg)
{
	struct etcd_store *e = arg;

	(void)l;
	e->ka_timer = sy_loop_add_timer(e->loop, e->ttl_s * 1000 / 3, etcd_ka_tick, e);
	etcd_keepalive(e);
	/* nobody known to lead (a campaign's answer overtaken by a deletion): try again */
	if (!e->leader[0])
		etcd_campaign(e);
}

/* ---- the leader ----------------------------------------------------------------- */

/* Who leads now: a key's value (the node's name) and lease; "" when nobody does. */
void etcd_set_leader(struct etcd_store *e, const ProtobufCBinaryData *name, int64_t lease)
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
			mine ? "is the leader: runs what runs once (cutover plans, backfills, audits)"
			     : "follows");
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
			ProtobufCBinaryData me = etcd_bin(e->node);

			etcd_set_leader(e, &me, e->lease);
		} else if (op && op->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE &&
			   op->response_range->n_kvs) {
			const Mvccpb__KeyValue *kv = op->response_range->kvs[0];

			etcd_set_leader(e, &kv->value, kv->lease);
		}
		return;
	}
	e->campaign_busy = 0;
	if (st->code != SY_GRPC_OK)
		etcd_go_down(e, st->message, 1);
}

/* One Txn: PREFIX/leader created with this node's lease if nobody holds it, else read
 * who does. The key goes with its holder's lease: revoked at a clean stop, expired
 * after the TTL when the holder died or lost etcd; the DELETE starts a new campaign. */
void etcd_campaign(struct etcd_store *e)
{
	struct etcd_txn t;

	if (!e->up || !e->cl || !e->lease || e->campaign_busy)
		return;
	/* create revision 0: the key does not exist; when it does, read who holds it */
	etcd_txn_put_if(&t, e->leader_key, 1, 0, etcd_bin(e->node), e->lease, 1);
	if (sy_rpc_client_call(e->cl, P_TXN, &t.txn.base, &etcdserverpb__txn_response__descriptor,
			       SYNC_TMO_MS, on_campaign, e) == 0)
		e->campaign_busy = 1;
}

void etcd_leader_event(struct etcd_store *e, const Mvccpb__Event *ev)
{
	e->leader_rev = ev->kv->mod_revision;
	if (ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE) {
		etcd_set_leader(e, NULL, 0);
		etcd_campaign(e);
	} else {
		etcd_set_leader(e, &ev->kv->value, ev->kv->lease);
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
