// SPDX-License-Identifier: Apache-2.0
/* store.h — where the registry's state lives, behind one interface: load it, commit a
 * new one (all or nothing, at the next revision), and watch for changes made
 * elsewhere. The registry knows only this interface. Two implementations: the state
 * file (store_file.h, the default) and a fleet's etcd (store_etcd.h), whose watch hands
 * the registry other agents' commits, which the registry applies as SY_COMMIT_REMOTE.
 *
 * The state is a switchyard.v1.State message; its `generation` is the revision.
 * Errors: negative errno.
 */
#ifndef SY_STORE_H
#define SY_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "switchyard/v1/state.pb-c.h"

struct sy_store;

/* A change made elsewhere, at revision st->generation (st lives during the call). */
typedef void (*sy_store_watch_fn)(void *ctx, const Switchyard__V1__State *st);

struct sy_store_ops {
	/* *out is NULL (and 0 returned) when nothing was ever stored; -ENODATA: the
	 * stored state is empty, -EBADMSG: not a state, -EPROTO: another format. Free
	 * with switchyard__v1__state__free_unpacked(*out, NULL). */
	int (*load)(struct sy_store *s, Switchyard__V1__State **out);
	/* Makes st the stored state; st->generation must be the store's revision + 1
	 * (-ESTALE otherwise: someone else committed first). apply (may be NULL) runs
	 * once the new state is durable but before it is visible; if it fails, nothing is
	 * committed and its error is returned. A failure after apply succeeded is
	 * returned too: the caller undoes what apply did. */
	int (*commit)(struct sy_store *s, const Switchyard__V1__State *st, int (*apply)(void *arg),
		      void *arg);
	/* Calls fn for every change made elsewhere, from the event loop, until close. */
	int (*watch)(struct sy_store *s, sy_store_watch_fn fn, void *ctx);
	void (*close)(struct sy_store *s);
};

struct sy_store {
	const struct sy_store_ops *ops;
	uint64_t revision;	   /* of the last state loaded or committed */
	bool shared;		   /* other agents commit too: node-local fields (a pin's cgroup id)
				    * are resolved again on this node when a state is read */
	char where[PATH_MAX + 16]; /* for messages: "DIR/state.pb" */
};

static inline int sy_store_load(struct sy_store *s, Switchyard__V1__State **out)
{
	return s->ops->load(s, out);
}

static inline int sy_store_commit(struct sy_store *s, const Switchyard__V1__State *st,
				  int (*apply)(void *arg), void *arg)
{
	return s->ops->commit(s, st, apply, arg);
}

static inline int sy_store_watch(struct sy_store *s, sy_store_watch_fn fn, void *ctx)
{
	return s->ops->watch(s, fn, ctx);
}

static inline void sy_store_close(struct sy_store *s)
{
	if (s)
		s->ops->close(s);
}

/* The format of the State message every store holds (a file, an etcd key). 2: `prefixes`
 * only count, `scope` limits what is migrated. Format 1 is still read: its prefixes also
 * scoped, so they are copied to scope at load (registry_pb.c). */
#define SY_STATE_FORMAT	      2
#define SY_STATE_FORMAT_MIN   1
#define SY_STATE_FORMAT_OK(f) ((f) >= SY_STATE_FORMAT_MIN && (f) <= SY_STATE_FORMAT)

#endif
