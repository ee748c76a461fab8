// SPDX-License-Identifier: Apache-2.0
/* events.h — the daemon's stream of state changes: a bounded in-memory history of
 * events (the last `capacity` ones, and at most `max_bytes` of them) numbered by a
 * sequence that only grows, and subscribers told when new ones arrive. Every event is
 * also logged once ("switchyard: event: users: migration.ratio_changed: …").
 *
 * The component that makes a change emits the event after the change is committed
 * (the registry for migrations, pins and target health; the daemon for start and
 * reload). Kinds are "subject.what" ("migration.ratio_changed"); events.proto lists
 * them with their attributes.
 *
 * A subscriber is a cursor: it reads the history from the seq it has reached, at its
 * own pace (sy_events_get). The history is the only buffer, so a slow reader costs no
 * memory; one that falls behind the oldest retained event has lost the ones between,
 * and says so to its client (Telemetry.Events sends an events.gap marker).
 */
#ifndef SY_EVENTS_H
#define SY_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define SY_EVENTS_HISTORY   4096
#define SY_EVENTS_MAX_BYTES (4u << 20)
#define SY_EVENT_MAX_ATTRS  16
#define SY_EVENT_KIND_MAX   64	 /* longer kinds, keys, values, messages are cut */
#define SY_EVENT_VALUE_MAX  1024 /* a cgroup path may be long; the history stays bounded */
#define SY_EVENT_MSG_MAX    512

struct sy_event_attr {
	const char *key;
	const char *value;
};

struct sy_event {
	uint64_t seq;
	uint64_t unix_ms;
	const char *migration; /* "" for daemon-wide events */
	const char *kind;
	const char *message;
	size_t n_attrs;
	const struct sy_event_attr *attrs;
};

/* Attribute lists written in place:
 *   sy_events_emit(ev, name, "migration.deleted", SY_EVENT_ATTRS({"origin", o}), "deleted"); */
#define SY_EVENT_ATTRS(...)                                                                                  \
	((const struct sy_event_attr[]){__VA_ARGS__}),                                                       \
		(sizeof((const struct sy_event_attr[]){__VA_ARGS__}) / sizeof(struct sy_event_attr))

struct sy_events;
struct sy_events_sub;

/* first_seq: the seq of the first event (> 0). The daemon passes its start time in
 * microseconds, so seqs never repeat across restarts even without a journal; with one
 * (events_journal.h) the history is renumbered to go on from the last seq it held. */
struct sy_events *sy_events_new(size_t capacity, size_t max_bytes, uint64_t first_seq);
void sy_events_free(struct sy_events *ev);

/* Appends one event (evicting the oldest when full), logs it, notifies subscribers.
 * Returns its seq, or 0 when ev is NULL (no history: a registry in a unit test) or out
 * of memory. */
uint64_t sy_events_emit(struct sy_events *ev, const char *migration, const char *kind,
			const struct sy_event_attr *attrs, size_t n_attrs, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Called with every emitted event after it is stored (the journal, events_journal.h). */
void sy_events_set_sink(struct sy_events *ev, void (*fn)(const struct sy_event *e, void *arg), void *arg);
/* Renumbers an empty history to start at first_seq (-1 if not empty): restored events
 * end at the seq they had, so a client resuming from it misses nothing. */
int sy_events_rebase(struct sy_events *ev, uint64_t first_seq);
/* Appends an event of an earlier run (its time kept, a new seq; not logged again, not
 * sent to the sink). */
uint64_t sy_events_restore(struct sy_events *ev, const struct sy_event *e);

/* The retained history is the seqs [oldest, next): oldest == next when it is empty. */
uint64_t sy_events_oldest(const struct sy_events *ev);
uint64_t sy_events_next(const struct sy_events *ev);
/* The event with this seq, or NULL if it is not retained. Valid until the next emit. */
const struct sy_event *sy_events_get(const struct sy_events *ev, uint64_t seq);
/* Value of an attribute, NULL if absent. */
const char *sy_event_attr(const struct sy_event *e, const char *key);

/* fn runs inside sy_events_emit, after the event is stored: it should only note that
 * there is more to read (the events service schedules a read). It must not emit,
 * subscribe or unsubscribe. */
struct sy_events_sub *sy_events_subscribe(struct sy_events *ev, void (*fn)(void *arg), void *arg);
void sy_events_unsubscribe(struct sy_events *ev, struct sy_events_sub *s);

#endif
