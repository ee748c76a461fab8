// SPDX-License-Identifier: Apache-2.0
/* store_etcd.c — see store_etcd.h: the store interface itself (the URL, the blocking
 * calls of sy_rpc_call_sync — each on a private loop — for load, commit and the
 * lease's first grant and last revoke). The watch is store_etcd_watch.c, the lease,
 * the node key and the election store_etcd_lease.c (store_etcd_int.h).
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
#include "registry/fleet.h"
#include "registry/store_etcd_int.h"
#include "registry/store_file.h"
#include "rpc/rpc.h"

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

/* Tries each endpoint from the current one, within tmo_ms for them all (the daemon's
 * loop waits meanwhile). -ENOTCONN: none answered in time; -EIO: one answered with an
 * error (logged). */
int etcd_sync_call(struct etcd_store *e, const char *path, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc, uint64_t tmo_ms, ProtobufCMessage **resp)
{
	uint64_t deadline = sy_now_ms() + tmo_ms;
	struct sy_rpc_status st;

	for (size_t i = 0; i < e->n_ep; i++) {
		size_t k = (e->cur + i) % e->n_ep;
		uint64_t now = sy_now_ms();
		int r;

		if (now + 20 > deadline) {
			snprintf(e->why, sizeof(e->why), "no answer within %llums",
				 (unsigned long long)tmo_ms);
			break;
		}
		r = sy_rpc_call_sync_tls(e->ep[k], e->tls, path, req, desc, deadline - now, 0, resp, &st);
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

/* ---- the store ------------------------------------------------------------------ */

static int es_load(struct sy_store *s, Switchyard__V1__State **out)
{
	struct etcd_store *e = (struct etcd_store *)s;
	Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *r = NULL;
	int rc;

	*out = NULL;
	req.key = etcd_bin(e->state_key);
	rc = e->offline ? -ENOTCONN
			: etcd_sync_call(e, P_RANGE, &req.base, &etcdserverpb__range_response__descriptor,
					 SYNC_TMO_MS * e->n_ep, (ProtobufCMessage **)&r);
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
				"refused until it is back",
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
			etcd_cache_write(e, *out);
		}
	} else {
		e->mod_rev = 0;
		s->revision = 0;
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}

void etcd_txn_put_if(struct etcd_txn *t, const char *key, int create, int64_t rev, ProtobufCBinaryData value,
		     int64_t lease, int read_on_fail)
{
	etcdserverpb__compare__init(&t->cmp);
	etcdserverpb__put_request__init(&t->put);
	etcdserverpb__range_request__init(&t->get);
	etcdserverpb__request_op__init(&t->ok);
	etcdserverpb__request_op__init(&t->ko);
	etcdserverpb__txn_request__init(&t->txn);
	t->cmps[0] = &t->cmp;
	t->oks[0] = &t->ok;
	t->kos[0] = &t->ko;
	t->cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	t->cmp.key = etcd_bin(key);
	if (create) {
		t->cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
		t->cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
		t->cmp.create_revision = rev;
	} else {
		t->cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
		t->cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		t->cmp.mod_revision = rev;
	}
	t->put.key = etcd_bin(key);
	t->put.value = value;
	t->put.lease = lease;
	t->ok.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	t->ok.request_put = &t->put;
	t->txn.n_compare = 1;
	t->txn.compare = t->cmps;
	t->txn.n_success = 1;
	t->txn.success = t->oks;
	if (read_on_fail) {
		t->get.key = etcd_bin(key);
		t->ko.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
		t->ko.request_range = &t->get;
		t->txn.n_failure = 1;
		t->txn.failure = t->kos;
	}
}

/* apply runs first, then the Txn: etcd makes a change durable and visible to the fleet
 * in one step, and a failed Txn hands the caller its maps to undo. */
static int es_commit(struct sy_store *s, const Switchyard__V1__State *st, int (*apply)(void *arg), void *arg)
{
	struct etcd_store *e = (struct etcd_store *)s;
	struct etcd_txn t;
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
	/* mod revision 0 matches a key that does not exist yet */
	etcd_txn_put_if(&t, e->state_key, 0, e->mod_rev, (ProtobufCBinaryData){.len = len, .data = buf}, 0,
			0);
	/* bounded small: a stalled etcd must not stall this agent's loop (its API, its
	 * health checks) for long; a Txn whose answer did not come in time may still land,
	 * and the full read after going down tells */
	rc = etcd_sync_call(e, P_TXN, &t.txn.base, &etcdserverpb__txn_response__descriptor, COMMIT_TMO_MS,
			    (ProtobufCMessage **)&r);
	free(buf);
	if (rc == -ENOTCONN && e->fn) {
		/* the Txn may or may not have landed: the watch's full read will tell */
		etcd_go_down(e, e->why, 1);
	}
	if (rc)
		return rc;
	if (!r->succeeded) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return -ESTALE;
	}
	e->mod_rev = r->header ? r->header->revision : e->mod_rev;
	s->revision = st->generation;
	etcd_cache_write(e, st);
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
	etcd_start_sync(e);
	e->ka_timer = sy_loop_add_timer(e->loop, e->ttl_s * 1000 / 3, etcd_ka_tick, e);
	e->pub_timer = sy_loop_add_timer(e->loop, PUBLISH_MS, etcd_pub_tick, e);
	return 0;
}

static void free_store(struct etcd_store *e)
{
	sy_fleet_free(e->fleet);
	free(e->node_val);
	free(e->targets);
	free(e);
}

static void es_close(struct sy_store *s)
{
	struct etcd_store *e = (struct etcd_store *)s;

	sy_loop_cancel_timer(e->loop, e->retry_timer);
	sy_loop_cancel_timer(e->loop, e->ka_timer);
	sy_loop_cancel_timer(e->loop, e->pub_timer);
	sy_rpc_client_free(e->cl);
	if (e->lease) {
		/* the node key goes with its lease now, not after the TTL */
		Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
		ProtobufCMessage *r = NULL;

		req.id = e->lease;
		if (etcd_sync_call(e, P_REVOKE, &req.base, &etcdserverpb__lease_revoke_response__descriptor,
				   1000, &r) == 0)
			protobuf_c_message_free_unpacked(r, NULL);
		else
			sy_warn("etcd", "revoke lease of node %s: %s; its key goes after %us", e->node,
				e->why, e->ttl_s);
	}
	free_store(e);
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

struct sy_fleet *sy_store_etcd_fleet(struct sy_store *s)
{
	return ((struct etcd_store *)s)->fleet;
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
		free_store(e);
		return -EINVAL;
	}
	snprintf(e->node, sizeof(e->node), "%s", o->node);
	snprintf(e->version, sizeof(e->version), "%s", o->version ? o->version : "");
	snprintf(e->node_key, sizeof(e->node_key), "%s/nodes/%s", e->prefix, e->node);
	snprintf(e->leader_key, sizeof(e->leader_key), "%s/leader", e->prefix);
	snprintf(e->nodes_key, sizeof(e->nodes_key), "%s/nodes/", e->prefix);
	snprintf(e->s.where, sizeof(e->s.where), "etcd://%s%s", e->ep[0], e->state_key);
	if (o->cache_dir &&
	    snprintf(e->cache, sizeof(e->cache), "%s/fleet", o->cache_dir) < (int)sizeof(e->cache)) {
		if (mkdir(e->cache, 0700) < 0 && errno != EEXIST)
			e->cache[0] = 0;
	} else {
		e->cache[0] = 0;
	}
	if (!(e->fleet = sy_fleet_new(e->node))) {
		free_store(e);
		return -ENOMEM;
	}
	sy_fleet_set_active(e->fleet, true);
	sy_fleet_on_local(e->fleet, etcd_local_changed, e);
	etcd_node_value(e);

	greq.ttl = e->ttl_s;
	if ((rc = etcd_sync_call(e, P_GRANT, &greq.base, &etcdserverpb__lease_grant_response__descriptor,
				 SYNC_TMO_MS * e->n_ep, (ProtobufCMessage **)&g))) {
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
	put.key = etcd_bin(e->node_key);
	put.value = (ProtobufCBinaryData){.len = e->node_len, .data = e->node_val};
	put.lease = e->lease;
	if ((rc = etcd_sync_call(e, P_PUT, &put.base, &etcdserverpb__put_response__descriptor,
				 SYNC_TMO_MS * e->n_ep, &pr)))
		goto fail;
	protobuf_c_message_free_unpacked(pr, NULL);
	sy_info("etcd", "node %s on %s (prefix %s, lease %llx, TTL %us)", e->node, e->ep[e->cur], e->prefix,
		(unsigned long long)e->lease, e->ttl_s);
	*out = &e->s;
	return 0;
fail:
	sy_error("etcd", "open %s: %s", o->url, rc == -ENOTCONN ? e->why : strerror(-rc));
	free_store(e);
	return rc;
}
