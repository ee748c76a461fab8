// SPDX-License-Identifier: Apache-2.0
/* cmd_nodes.c — `syctl nodes`: the agents sharing the daemon's store (ListNodes), one
 * line per node and one per migration under it; -o json is the ListNodesResponse, as
 * GET /api/v1/nodes serves it. Without a store: the one agent. */
#include <stdio.h>
#include <string.h>

#include "model/spec.h"
#include "syctl.h"

static void print_nodes(const ProtobufCMessage *resp)
{
	const Switchyard__V1__ListNodesResponse *r = (const void *)resp;

	printf("%-24s %-7s %-6s %-12s %s\n", "NODE", "LEADER", "ALIVE", "VERSION", "LAST SEEN");
	for (size_t i = 0; i < r->n_nodes; i++) {
		const Switchyard__V1__Node *n = r->nodes[i];
		char seen[32], name[80];

		snprintf(name, sizeof(name), "%s%s", n->name, n->self ? " (this)" : "");
		printf("%-24s %-7s %-6s %-12s %s\n", name, n->leader ? "yes" : "no", n->alive ? "yes" : "no",
		       n->version[0] ? n->version : "-", ago(n->last_seen_unix_ms, seen, sizeof(seen)));
		for (size_t k = 0; k < n->n_migrations; k++) {
			const Switchyard__V1__NodeMigration *m = n->migrations[k];
			char ratio[SY_RATIO_STRLEN];

			if (m->ratio_bp % 100)
				sy_ratio_format(m->ratio_bp, ratio, sizeof(ratio));
			else
				snprintf(ratio, sizeof(ratio), "%u%%", m->ratio_bp / 100);
			printf("  %-22s ratio %-8s requests %llu  errors %llu  connections %llu/%llu\n",
			       m->name, ratio, (unsigned long long)m->requests, (unsigned long long)m->errors,
			       (unsigned long long)m->connections_legacy,
			       (unsigned long long)m->connections_target);
		}
	}
}

int cmd_nodes(int argc, char **argv)
{
	Switchyard__V1__ListNodesRequest req = SWITCHYARD__V1__LIST_NODES_REQUEST__INIT;

	return call_show_bare("nodes", argc, argv, "/switchyard.v1.Control/ListNodes", &req.base,
			      &switchyard__v1__list_nodes_response__descriptor, print_nodes);
}
