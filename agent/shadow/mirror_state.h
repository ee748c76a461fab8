// SPDX-License-Identifier: Apache-2.0
/* mirror_state.h — the mirror's state (mirror.c's, shared with nothing else): per
 * migration, its two directions, each with its destination connections, its source
 * connection for repair reads, its repair engine and counters. Kept apart so that
 * mirror.c holds the behaviour (capture callback, replay) and stays readable. */
#ifndef SY_MIRROR_STATE_H
#define SY_MIRROR_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "registry/registry.h"
#include "shadow/clients.h"
#include "shadow/mirror.h"
#include "shadow/repair.h"
#include "shadow/replay_rec.h"
#include "shadow/writers.h"

struct sy_xf;
struct sy_bpf;

struct dir;

struct dconn {
	struct dir *d;
	bool is_src;
	struct sy_redis *r;
	int db; /* selected on this connection */
	uint64_t retry_timer;
};

struct dir {
	struct mig *mig;
	int dir;
	struct dconn dst; /* replays and copies, in order: one per direction (mirror.md, Replay) */
	struct dconn src; /* reads for repair (DUMP) */
	uint64_t inflight;
	/* keys to copy and copies under way (repair.c), set up on first use */
	struct sy_repair rep;
	struct sy_mirror_stats st;
	uint64_t lag_cur_ms, lag_prev_ms, lag_epoch_ms; /* the largest recent lag, two 2 s windows */
};

struct mig {
	struct sy_mirror *m;
	uint32_t id;
	bool active;
	char name[SY_NAME_MAX];
	uint64_t created_ms, updated_ms;
	uint64_t ev_lost;	       /* the kernel's count when last looked at */
	struct sy_migration_spec spec; /* copy, pins dropped */
	uint8_t mirror;		       /* effective mode (auto resolved): SY_CAPTURE_* bits */
	struct dir d[2];
	struct sy_clients clients; /* per client connection: db, open transaction (clients.c) */
	struct sy_writers writers; /* recent writers per key, for conflicts (writers.c) */
	struct sy_xf *xf;	   /* the spec's transform (transform_copy.c), or NULL */
};

struct sy_mirror {
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_bpf *bpf; /* the capture statistics: lost records */
	/* each slot's migration as of the registry's last commit (pins dropped: the copy
	 * owns nothing); id 0 = no migration in the slot */
	struct sy_migration_state seen[SY_MAX_MIGRATIONS];
	struct mig migs[SY_MAX_MIGRATIONS];
	uint64_t check_timer;
	sy_mirror_audit_fn on_audit; /* told when a direction becomes needs-audit */
	void *on_audit_arg;
	struct sy_pending_pool pool; /* replays' records and their RESP (replay_rec.c) */
};

#endif
