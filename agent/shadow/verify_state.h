// SPDX-License-Identifier: Apache-2.0
/* verify_state.h — verify's state (verify.c's, shared with nothing else): per
 * migration its two connections, its audit, the waiting queue of dual-read and
 * re-check comparisons, its backfill. Kept apart so that verify.c holds the behaviour
 * (comparing, scanning, resuming) and stays readable. */
#ifndef SY_VERIFY_STATE_H
#define SY_VERIFY_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "registry/registry.h"
#include "shadow/backfill.h"
#include "shadow/compare.h"
#include "shadow/jobs.h"
#include "shadow/transform_audit.h"
#include "shadow/verify.h"

struct vmig;

enum purpose { P_AUDIT_LEGACY, P_AUDIT_TARGET, P_DUAL };

/* One key compared on both sides; re-queued once for the re-check. */
struct cmp {
	STAILQ_ENTRY(cmp) link; /* recheck / first-look queue */
	struct vmig *g;
	uint8_t purpose;
	uint8_t attempt;
	uint8_t got;
	uint8_t db; /* the database the key is in (0 for dual reads) */
	uint64_t due_ms;
	struct sy_look look[2];
	/* an extra target key with a transform: the legacy key whose repair removes it
	 * (transform_audit.h; malloc'd), or NULL: delete the key itself */
	char *via;
	size_t via_len;
	size_t len;
	char key[]; /* legacy-side name */
};

struct audit {
	enum sy_job_state state;
	bool repair;
	uint32_t rate;
	int phase;		   /* 0: legacy keys, 1: target keys, 2: scans done (of database db) */
	int db;			   /* the database being scanned */
	struct sy_job_keyspace ks; /* INFO keyspace of both sides: keys, and databases with keys */
	uint32_t pattern;	   /* SY_JOB_WHOLE: the whole keyspace, every key counted */
	char cursor[32];
	bool scan_pending;
	uint64_t scanned, total, started_ms, finished_ms, t0_mono;
	/* keys the scans skipped, outside `scope:` (the whole keyspace is scanned when a
	 * scope is set, to count them): on legacy, and on both sides */
	uint64_t outside_legacy, outside;
	uint64_t counts[SY_DRIFT_KINDS];
	uint64_t repaired;
	struct sy_drift_entry *drift;
	size_t n_drift;
	uint32_t inflight;
	char error[160];
	int save_err;		     /* the last save's error, so a failing disk is logged once */
	struct sy_versions versions; /* target keys per version_field value */
};

struct vmig {
	struct sy_verify *v;
	bool active;
	uint32_t id;
	char name[SY_NAME_MAX];
	uint64_t created_ms;
	struct sy_migration_spec spec; /* copy, pins dropped */
	struct sy_xf *xf;	       /* its transform (transform_copy.h), or NULL */
	struct sy_redis *conn[2];      /* legacy, target */
	int conn_db[2];		       /* the database each has SELECTed */
	uint64_t reconnect_timer;
	struct audit a;
	STAILQ_HEAD(, cmp) q; /* waiting: first looks and re-checks, in due order */
	size_t q_len;
	uint64_t q_timer;
	uint64_t dual_checked, dual_drift, dual_rechecked;
	uint64_t unsettled; /* differences on keys that never stopped changing */
	uint64_t dual_repaired;
	/* every audit of this migration together: an audit's own counts restart with it,
	 * metrics need sums that only grow */
	uint64_t audit_checked, audit_found, audit_repaired;
	uint64_t step_timer;
	/* legacy keys outside the scope, as the last audit that ended counted them */
	uint64_t outside_last;
	bool outside_last_ok;
	struct sy_backfill b; /* bound on use (bf_of) */
	uint64_t again_timer; /* the next continuous audit */
};

struct sy_verify {
	char state_dir[PATH_MAX];
	struct sy_loop *loop;
	struct sy_registry *reg;
	struct sy_mirror *mirror;
	/* each slot's migration as of the registry's last commit (pins dropped: the copy
	 * owns nothing); id 0 = no migration in the slot */
	struct sy_migration_state seen[SY_MAX_MIGRATIONS];
	struct vmig migs[SY_MAX_MIGRATIONS];
	bool follower; /* a fleet's follower: the leader runs the continuous audits */
};

#endif
