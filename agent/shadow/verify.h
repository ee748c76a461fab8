// SPDX-License-Identifier: Apache-2.0
/* verify.h — does the target hold what legacy holds? Two instruments:
 *
 * - the audit: a scan of both sides at a bounded pace (SCAN of the whole keyspace;
 *   keys outside the migration's `scope:` are counted, not compared), every in-scope
 *   legacy key compared with its target counterpart, every target key checked to
 *   exist on legacy; differences classified like a database diff tool (missing,
 *   extra, type, value, ttl), re-checked once after a settle delay so that writes
 *   in flight through the mirror are not reported; optionally repaired through the
 *   mirror's repair path;
 * - dual reads: the kernel's 1-in-N sampled read keys, compared on both sides after a
 *   settle delay and re-checked before being called drift.
 *
 * Values are compared type-aware and independent of encoding (a small Lua script
 * returns type, PTTL and the value; sets and hashes are compared order-free), TTLs
 * within a tolerance (compare.c). Only database 0 is audited. It also hosts each
 * migration's backfill (backfill.c), a copier rather than a check, which shares the
 * audit's connections and scans. See docs/verify.md. */
#ifndef SY_VERIFY_H
#define SY_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/capture.h"
#include "model/job.h"
#include "shadow/transform_audit.h"
#include "shadow/transform_copy.h"

struct sy_loop;
struct sy_registry;
struct sy_mirror;
struct sy_verify;

enum sy_drift_kind {
	SY_DRIFT_NONE = 0,
	SY_DRIFT_MISSING, /* on legacy, not on target */
	SY_DRIFT_EXTRA,	  /* on target, not on legacy */
	SY_DRIFT_TYPE,
	SY_DRIFT_VALUE,
	SY_DRIFT_TTL,
	SY_DRIFT_KINDS,
};

#define SY_AUDIT_REPORT_MAX 10000

struct sy_drift_entry {
	uint8_t kind;
	uint8_t db; /* the database the key is in */
	size_t len;
	char *key;
};

struct sy_audit_status {
	enum sy_job_state state;
	uint64_t scanned, total; /* in-scope keys; total 0 = unknown yet (a scope, no key seen) */
	double eta_s, keys_per_s;
	uint64_t outside_scope;	     /* legacy keys this audit skipped: outside `scope:` */
	uint64_t outside_scope_last; /* the same, of the last audit that ended (if _ok) */
	bool outside_scope_last_ok;
	uint64_t counts[SY_DRIFT_KINDS];
	uint64_t repaired;
	uint64_t started_unix_ms, finished_unix_ms;
	const char *error;
	const struct sy_drift_entry *drift; /* valid until the next call into verify */
	size_t n_drift;
	uint64_t dual_checked, dual_drift, dual_rechecked;
	uint64_t unsettled;	/* differences on keys that kept changing: no verdict */
	uint64_t dual_repaired; /* drift found by dual reads and repaired (auto_repair) */
	/* every audit since the migration was created (or the agent started): keys
	 * scanned, drift found, keys repaired; unlike the fields above, never reset */
	uint64_t audit_checked, audit_found, audit_repaired;
	/* target keys per version (version_field:), this audit's; NULL without one */
	const struct sy_versions *versions;
	/* the migration's transform, when it has one: calls and failures */
	bool has_transform;
	const char *transform_script;
	struct sy_xf_stats transform;
};

struct sy_backfill_status {
	enum sy_job_state state;
	uint64_t scanned, copied, bytes, total; /* total 0 = unknown (a scoped backfill runs) */
	double eta_s, keys_per_s, bytes_per_s;
	uint32_t rate_keys, rate_bytes;
	uint64_t started_unix_ms, finished_unix_ms;
	uint32_t resumed; /* times it went on after an agent restart */
	const char *error;
};

/* state_dir: where backfill cursors are kept, so a restarted agent goes on. Subscribes
 * to reg and follows its commits; free it before the registry. */
struct sy_verify *sy_verify_new(struct sy_loop *l, struct sy_registry *reg, struct sy_mirror *mirror,
				const char *state_dir);
/* Copies legacy's keys (in `scope:`, or all) to target through the mirror's repair path, at
 * most keys_per_s and bytes_per_s (0 = unbounded). -EBUSY if one runs. */
int sy_verify_start_backfill(struct sy_verify *v, const char *name, uint32_t keys_per_s,
			     uint64_t bytes_per_s);
int sy_verify_backfill_status(struct sy_verify *v, const char *name, struct sy_backfill_status *out);
/* Starts continuous audits (audit_every) that are not going yet; called on every
 * configuration change and at start. */
void sy_verify_tick(struct sy_verify *v);
/* In a fleet only the leader runs the continuous audits (a plan's backfill and audit
 * are started by the leader's controller); a single agent is its own leader (the
 * default). Becoming the leader starts the continuous audits that are due. */
void sy_verify_set_leader(struct sy_verify *v, bool leader);
/* Resumes every backfill a previous agent left running. */
void sy_verify_resume(struct sy_verify *v);
void sy_verify_free(struct sy_verify *v);
/* Starts an audit of a migration; -EBUSY if one runs, -ENOENT no such migration. */
int sy_verify_start_audit(struct sy_verify *v, const char *name, bool repair, uint32_t keys_per_s);
int sy_verify_status(struct sy_verify *v, const char *name, struct sy_audit_status *out);
/* The capture callback for sampled read keys (dual reads). */
void sy_verify_on_captured(const struct sy_captured *c, void *arg);
const char *sy_drift_name(int kind);

#endif
