// SPDX-License-Identifier: Apache-2.0
/* store_etcd_watch.c — the long-lived side of the etcd store, on the daemon's loop: a
 * full read of PREFIX/ (the state, every node key), then a Watch of PREFIX/ from the
 * read's revision; other agents' commits reach the registry, node keys reach the
 * fleet table (registry/fleet.h). A broken watch (etcd down, compaction, reconnect)
 * goes down — fail-static, commits refused — and starts again with a full read after a
 * backoff, on the next endpoint. The last state applied is kept in STATE_DIR/fleet so
 * that a restart can stand on it while etcd is out of reach. See store_etcd_int.h.
 *
 * The long-lived client is freed and made again on every restart of the watch (its
 * calls end without callbacks), so no callback of an old connection reaches the new.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "registry/fleet.h"
#include "registry/store_etcd_int.h"
#include "registry/store_file.h"
#include "rpc/rpc.h"

/* The last state this node applied, kept so that it can start again (fail-static)
 * while etcd is out of reach. */
void etcd_cache_write(struct etcd_store *e, const Switchyard__V1__State *st)
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
	etcd_cache_write(e, st);
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

void etcd_node_event(struct etcd_store *e, const ProtobufCBinaryData *key, const ProtobufCBinaryData *v)
{
	size_t pl = strlen(e->nodes_key);
	char name[64];

	if (!e->fleet || key->len <= pl || key->len - pl >= sizeof(name) ||
	    memcmp(key->data, e->nodes_key, pl) != 0)
		return;
	memcpy(name, key->data + pl, key->len - pl);
	name[key->len - pl] = 0;
	if (strchr(name, '/'))
		return;
	if (v)
		sy_fleet_node_put(e->fleet, name, v->data, v->len);
	else
		sy_fleet_node_gone(e->fleet, name);
}

static int is_node_key(const struct etcd_store *e, const ProtobufCBinaryData *k)
{
	size_t pl = strlen(e->nodes_key);

	return k->len > pl && memcmp(k->data, e->nodes_key, pl) == 0;
}

static void on_watch(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct etcd_store *e = arg;

	if (!msg) {
		etcd_go_down(e, st->message[0] ? st->message : "watch ended", 1);
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
		etcd_keepalive(e); /* a lease that expired meanwhile is granted again */
		etcd_campaign(e);
		if (e->put_dirty)
			etcd_node_put(e);
	}
	if (r->canceled || r->compact_revision) {
		char why[300];

		snprintf(why, sizeof(why), "watch cancelled (compacted at %lld: %s)",
			 (long long)r->compact_revision, r->cancel_reason);
		etcd_go_down(e, why, 0);
		return;
	}
	for (size_t i = 0; i < r->n_events; i++) {
		const Mvccpb__Event *ev = r->events[i];
		int del = ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE;

		if (!ev->kv)
			continue;
		if (etcd_bin_is(&ev->kv->key, e->leader_key)) {
			etcd_leader_event(e, ev);
			continue;
		}
		if (is_node_key(e, &ev->kv->key)) {
			etcd_node_event(e, &ev->kv->key, del ? NULL : &ev->kv->value);
			continue;
		}
		if (!etcd_bin_is(&ev->kv->key, e->state_key) || ev->kv->mod_revision <= e->mod_rev)
			continue; /* another key, or seen (our own commit) */
		if (del)
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

	cr.key = etcd_bin(e->watch_key);
	cr.range_end = etcd_bin(e->watch_end);
	cr.start_revision = e->sync_rev + 1;
	wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	wr.create_request = &cr;
	/* Watch is bidirectional; the one create request is sent and the stream half-closed:
	 * etcd keeps the watch running until the stream ends. */
	r = sy_rpc_client_call(e->cl, P_WATCH, &wr.base, &etcdserverpb__watch_response__descriptor, 0,
			       on_watch, e);
	if (r)
		etcd_go_down(e, strerror(-r), 1);
}

static void on_range(const ProtobufCMessage *msg, const struct sy_rpc_status *st, void *arg)
{
	struct etcd_store *e = arg;

	if (msg) {
		const Etcdserverpb__RangeResponse *r = (const void *)msg;
		const Mvccpb__KeyValue *state = NULL;

		e->sync_got = 1;
		e->sync_rev = r->header ? r->header->revision : 0;
		if (e->fleet)
			sy_fleet_sync_begin(e->fleet);
		for (size_t i = 0; i < r->n_kvs; i++) {
			if (etcd_bin_is(&r->kvs[i]->key, e->state_key))
				state = r->kvs[i];
			else if (is_node_key(e, &r->kvs[i]->key))
				etcd_node_event(e, &r->kvs[i]->key, &r->kvs[i]->value);
		}
		if (e->fleet)
			sy_fleet_sync_end(e->fleet);
		/* a full read: whatever differs from what this agent applied is news, unless
		 * the read is older than this agent's own last commit (one made while the
		 * start's read was in flight): the watch from the read's revision brings the
		 * rest, and skips that commit as seen */
		if (e->sync_rev < e->mod_rev)
			return;
		if (state && state->mod_revision != e->mod_rev)
			take_state(e, &state->value, state->mod_revision);
		else if (!state && e->mod_rev)
			take_delete(e);
		return;
	}
	if (st->code != SY_GRPC_OK || !e->sync_got) {
		etcd_go_down(e, st->message[0] ? st->message : "no answer", 1);
		return;
	}
	start_watch(e);
}

/* A full read of PREFIX/ (the state and the node keys), then the watch from the
 * read's revision. */
void etcd_start_sync(struct etcd_store *e)
{
	Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
	int r;

	req.key = etcd_bin(e->watch_key);
	req.range_end = etcd_bin(e->watch_end);
	e->sync_got = 0;
	r = sy_rpc_client_call(e->cl, P_RANGE, &req.base, &etcdserverpb__range_response__descriptor,
			       SYNC_TMO_MS, on_range, e);
	if (r)
		etcd_go_down(e, strerror(-r), 1);
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
		etcd_go_down(e, "out of memory", 1);
		return;
	}
	etcd_start_sync(e);
}

/* The watch is broken: fail-static (commits refused) until a full read and a new watch
 * succeed, after a backoff, on the next endpoint. */
void etcd_go_down(struct etcd_store *e, const char *why, int unreachable)
{
	if (e->up || !e->retry_timer) {
		if (e->up && unreachable)
			sy_warn("etcd",
				"%s unreachable (%s): fail-static on generation %llu; changes refused until "
				"it is back",
				e->ep[e->cur], why, (unsigned long long)e->s.revision);
		else if (e->up)
			sy_info("etcd", "%s: %s; reading %s again", e->ep[e->cur], why, e->state_key);
		else
			sy_debug("etcd", "%s: %s", e->ep[e->cur], why);
	}
	e->up = e->watching = 0;
	/* out of reach, this node cannot know its lease still holds: it stops leading. What
	 * it knew of the others stays as it was (last seen tells its age) until the full
	 * read after reconnecting says who left meanwhile. */
	if (e->is_leader || e->leader[0])
		etcd_set_leader(e, NULL, 0);
	if (e->retry_timer)
		return;
	if (unreachable)
		e->cur = (e->cur + 1) % e->n_ep;
	e->retry_timer = sy_loop_add_timer(e->loop, unreachable ? e->backoff_ms : 0, reconnect, e);
	if (unreachable)
		e->backoff_ms = e->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : e->backoff_ms * 2;
}
