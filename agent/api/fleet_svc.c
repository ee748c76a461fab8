// SPDX-License-Identifier: Apache-2.0
/* fleet_svc.c — switchyard.v1.Control/ListNodes: the agents sharing this agent's store
 * (docs/fleet.md), as this agent knows them from their node keys; this agent itself
 * from its live counters. Without a store: one node, this host, self and leader.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/control_plane.h"
#include "core/loop.h"
#include "kernel/mapsync.h"
#include "registry/fleet.h"
#include "switchyard/v1/control.pb-c.h"

struct reply {
	Switchyard__V1__ListNodesResponse resp;
	Switchyard__V1__Node *nodes, **nodep;
	Switchyard__V1__NodeMigration *mig, **migp;
	size_t n_mig;
};

/* This agent's migrations from its own kernel counters. */
static void self_migrations(struct sy_control_ctx *ctx, struct reply *r, Switchyard__V1__Node *n)
{
	n->migrations = &r->migp[r->n_mig];
	for (size_t i = 0; i < sy_registry_count(ctx->reg); i++) {
		const struct sy_migration_state *m = sy_registry_at(ctx->reg, i);
		Switchyard__V1__NodeMigration *x = &r->mig[r->n_mig];
		struct sy_side_stats st;

		switchyard__v1__node_migration__init(x);
		x->name = (char *)m->spec.name;
		x->ratio_bp = m->spec.ratio_bp;
		for (uint8_t side = 0; side < 2; side++) {
			if (sy_mapsync_side_stats(sy_registry_bpf(ctx->reg), m->id, side, &st) == 0) {
				x->requests += st.exchanges;
				x->errors += st.errors;
				*(side ? &x->connections_target : &x->connections_legacy) = st.sockets;
			}
		}
		r->migp[r->n_mig++] = x;
		n->n_migrations++;
	}
}

static void other_migrations(const struct sy_fleet_node *fn, struct reply *r, Switchyard__V1__Node *n)
{
	n->migrations = &r->migp[r->n_mig];
	for (size_t i = 0; i < fn->n_mig; i++) {
		Switchyard__V1__NodeMigration *x = &r->mig[r->n_mig];

		switchyard__v1__node_migration__init(x);
		x->name = (char *)fn->mig[i].name;
		x->ratio_bp = fn->mig[i].ratio_bp;
		x->requests = fn->mig[i].c.req[0] + fn->mig[i].c.req[1];
		x->errors = fn->mig[i].c.err[0] + fn->mig[i].c.err[1];
		x->connections_legacy = fn->mig[i].c.conns[SY_SIDE_LEGACY];
		x->connections_target = fn->mig[i].c.conns[SY_SIDE_TARGET];
		r->migp[r->n_mig++] = x;
		n->n_migrations++;
	}
}

static void list_nodes(struct sy_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
	struct sy_control_ctx *ctx = arg;
	struct sy_fleet *f = ctx->fleet;
	size_t known = f ? sy_fleet_count(f) : 0, cap_nodes = known + 1,
	       cap_mig = sy_registry_count(ctx->reg);
	const char *self = f ? sy_fleet_self(f) : ctx->info->node;
	char host[256] = "";
	struct reply r = {.resp = SWITCHYARD__V1__LIST_NODES_RESPONSE__INIT};
	bool self_done = false;

	(void)req;
	for (size_t i = 0; i < known; i++)
		cap_mig += sy_fleet_at(f, i)->n_mig;
	r.nodes = calloc(cap_nodes, sizeof(*r.nodes));
	r.nodep = calloc(cap_nodes, sizeof(*r.nodep));
	r.mig = calloc(cap_mig ? cap_mig : 1, sizeof(*r.mig));
	r.migp = calloc(cap_mig ? cap_mig : 1, sizeof(*r.migp));
	if (!r.nodes || !r.nodep || !r.mig || !r.migp) {
		sy_rpc_finish(call, SY_GRPC_INTERNAL, "out of memory");
		goto out;
	}
	if (!self || !self[0]) {
		gethostname(host, sizeof(host) - 1);
		self = host;
	}
	for (size_t i = 0; i <= known; i++) {
		const struct sy_fleet_node *fn = i < known ? sy_fleet_at(f, i) : NULL;
		Switchyard__V1__Node *n = &r.nodes[r.resp.n_nodes];
		bool mine = fn ? strcmp(fn->name, self) == 0 : !self_done;

		if (!fn && self_done)
			break;
		/* sorted by name: this agent goes in its place, even when etcd never saw it */
		if (fn && !self_done && strcmp(fn->name, self) > 0) {
			i--;
			fn = NULL;
			mine = true;
		}
		switchyard__v1__node__init(n);
		n->self = mine;
		if (mine) {
			self_done = true;
			n->name = (char *)self;
			n->version = (char *)ctx->info->version;
			n->alive = true;
			n->last_seen_unix_ms = sy_unix_ms();
			n->leader = f ? strcmp(self, ctx->info->leader) == 0 : true;
			self_migrations(ctx, &r, n);
		} else {
			n->name = (char *)fn->name;
			n->version = (char *)fn->version;
			n->alive = fn->alive;
			n->last_seen_unix_ms = fn->last_seen_unix_ms;
			n->leader = fn->alive && strcmp(fn->name, ctx->info->leader) == 0;
			other_migrations(fn, &r, n);
		}
		r.nodep[r.resp.n_nodes++] = n;
	}
	r.resp.nodes = r.nodep;
	sy_rpc_reply(call, &r.resp.base);
out:
	free(r.nodes);
	free(r.nodep);
	free(r.mig);
	free(r.migp);
}

int sy_fleet_svc_register(struct sy_rpc_server *srv, struct sy_control_ctx *ctx)
{
	return sy_rpc_server_add_unary(srv, "/switchyard.v1.Control/ListNodes",
				       &switchyard__v1__list_nodes_request__descriptor, list_nodes, ctx);
}
