// SPDX-License-Identifier: Apache-2.0
/* registry.h — the registry of migrations and their live state: the only writer of
 * the steering maps (through kernel/mapsync.h) and of the store (store.h). Every change
 * is validated (spec.c) and committed: stored, written to the kernel maps, and only
 * then reported to the subscribers; a change that fails at any step leaves maps and
 * store as they were and reports nothing.
 *
 * One commit path: a change through the API or a config file, a target's health flip,
 * the set loaded at start and a change arriving from the store are all commits
 * (struct sy_commit, migration.h), delivered to the subscribers in the order they
 * subscribed. Components follow the registry by subscribing, never by polling it.
 *
 * Errors: -EINVAL (invalid input), -ENOENT (no such migration), -EBUSY (refused: clients
 * on target), -ENOSPC (no free slot), -EIO (persisting or the maps failed),
 * -EDEADLK (a subscriber tried to change the registry), -ESTALE (a shared store moved on:
 * someone else committed first), -ENOTCONN (a shared store is unreachable: changes are
 * refused, the maps keep what was applied); err->msg says why.
 */
#ifndef SY_MIGRATIONS_H
#define SY_MIGRATIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "registry/diff.h"
#include "registry/migration.h"

struct sy_bpf;
struct sy_store;
struct sy_registry;

/* bpf NULL: no kernel maps (unit tests); the daemon always passes its maps. The store
 * is the caller's, and must outlive the registry. */
struct sy_registry *sy_registry_new(struct sy_bpf *bpf, struct sy_store *store);
void sy_registry_free(struct sy_registry *r);
/* The kernel maps the registry writes (for the per-CPU readers of mapsync.h). */
struct sy_bpf *sy_registry_bpf(const struct sy_registry *r);

/* A subscriber: called after every commit with what it changed. It must not change
 * the registry from inside (-EDEADLK); reading it is fine (it already holds c->after). */
typedef void (*sy_registry_sub_fn)(void *ctx, const struct sy_commit *c);
/* Adds fn after the subscribers already there, and calls it at once with the current
 * set (SY_COMMIT_LOAD, before empty), so it needs no other way to learn where it
 * starts. -ENOSPC: too many subscribers. */
int sy_registry_subscribe(struct sy_registry *r, const char *name, sy_registry_sub_fn fn, void *ctx);
void sy_registry_unsubscribe(struct sy_registry *r, sy_registry_sub_fn fn, void *ctx);

/* Loads the store's state (nothing stored = empty) into the maps, reports it to the
 * subscribers as SY_COMMIT_LOAD, and watches the store for changes made elsewhere. */
int sy_registry_load(struct sy_registry *r, struct sy_spec_err *err);

/* Who makes the changes from now on, until said otherwise: origin "api" (peer: the
 * caller, "uid=0 pid=42" or "ADDR:PORT"), reason the operator's words; each may be
 * NULL or "". Recorded with the fields a commit changes (ownership.h) and handed to the
 * subscribers (struct sy_commit). Unset (origin ""), a change is the API's, one of
 * sy_registry_set_cutover the plan's; a config file's is always "file:PATH". The API
 * sets it around each call and clears it after (all NULL). */
void sy_registry_set_who(struct sy_registry *r, const char *origin, const char *peer, const char *reason);

/* Creates or updates one migration (the API's ApplyMigration): every field as given. */
int sy_registry_apply(struct sy_registry *r, const struct sy_migration_spec *m, struct sy_spec_err *err);
/* Makes the set of migrations named in a config file exactly s (create, update, and
 * delete those no longer named), all or nothing, by the file rule (ownership.h): the
 * running ratio and pins stay unless the file changed them. `file` prefixes error
 * messages and names the origin ("file:FILE"). */
int sy_registry_apply_file(struct sy_registry *r, const struct sy_spec *s, const char *file,
			   struct sy_spec_err *err);
/* Previews: what sy_registry_apply of m[0..k) in turn, or sy_registry_apply_file,
 * would change — built and validated by the same code, nothing committed. 0 with *d
 * (free with sy_diff_free), or the error the change would get. */
int sy_registry_preview_apply(struct sy_registry *r, const struct sy_migration_spec *m, size_t k,
			      struct sy_diff *d, struct sy_spec_err *err);
int sy_registry_preview_file(struct sy_registry *r, const struct sy_spec *s, const char *file,
			     struct sy_diff *d, struct sy_spec_err *err);
int sy_registry_delete(struct sy_registry *r, const char *name, bool force, struct sy_spec_err *err);
int sy_registry_set_ratio(struct sy_registry *r, const char *name, uint32_t ratio_bp,
			  struct sy_spec_err *err);
/* Commits the plan's progress and, when ratio_bp >= 0, a new ratio with it (one
 * persisted change, so a restart never sees one without the other). */
int sy_registry_set_cutover(struct sy_registry *r, const char *name, const struct sy_cutover_state *co,
			    int64_t ratio_bp, struct sy_spec_err *err);
/* Fleet mode: records an audit or backfill request (SY_JOBREQ_*) in the migration's
 * state, for the leader to run (job_request.h). */
int sy_registry_set_job_request(struct sy_registry *r, const char *name, int kind,
				const struct sy_job_request *q, struct sy_spec_err *err);
int sy_registry_pin(struct sy_registry *r, const char *name, const char *cgroup, uint8_t side,
		    struct sy_spec_err *err);
int sy_registry_unpin(struct sy_registry *r, const char *name, const char *cgroup, struct sy_spec_err *err);

/* A host name's addresses (registry/resolver.h, origin "dns"): the addresses of
 * `host:port` on `side` become eps[0..n), or, stale, they stay and only the flag says
 * the name no longer resolves. Validated like any change (a new address that is
 * another migration's endpoint is refused). */
int sy_registry_set_host(struct sy_registry *r, const char *name, int side, const char *host, uint16_t port,
			 const struct sy_endpoint *eps, size_t n, bool stale, struct sy_spec_err *err);

/* The current set, for the API's reads. A pointer is valid until the next commit. */
size_t sy_registry_count(const struct sy_registry *r);
const struct sy_migration_state *sy_registry_at(const struct sy_registry *r, size_t i);
const struct sy_migration_state *sy_registry_find(const struct sy_registry *r, const char *name);
/* The one message for a name no migration has, naming those that exist (people mistype
 * names; the list is the fix). Fills err; returns -ENOENT. */
int sy_registry_not_found(const struct sy_registry *r, const char *name, struct sy_spec_err *err);
/* The migration in kernel slot `id`, or NULL. */
const struct sy_migration_state *sy_registry_by_id(const struct sy_registry *r, uint32_t id);

/* Health of a target endpoint, from health.c: a SY_COMMIT_HEALTH commit when a
 * migration's healthy mask flips (the kernel's mask is rewritten, nothing persisted).
 * why: the failed check's error (for the event), or NULL. */
void sy_registry_set_target_health(struct sy_registry *r, const struct sy_endpoint *ep, bool healthy,
				   const char *why);

#endif
