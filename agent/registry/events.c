// SPDX-License-Identifier: Apache-2.0
/* events.c — see events.h. The history is a ring indexed by seq: event `seq` lives in
 * slot (seq - first) % capacity, and the retained seqs are always one range
 * [oldest, next). Each event is one allocation (its attribute array, then its strings),
 * sized by what it holds, so max_bytes bounds the history's memory as well as
 * capacity does. Strings are cut to their limits on a UTF-8 boundary and invalid UTF-8
 * bytes become '?': protobuf strings must be valid UTF-8, and clients refuse the
 * message otherwise. */
#include "registry/events.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/loop.h"

struct slot {
	struct sy_event e;
	void *mem;
	size_t bytes;
};

struct sy_events_sub {
	void (*fn)(void *arg);
	void *arg;
	struct sy_events_sub *next;
};

struct sy_events {
	struct slot *ring;
	size_t cap, max_bytes, bytes;
	uint64_t first, oldest, next;
	struct sy_events_sub *subs;
	void (*sink)(const struct sy_event *e, void *arg);
	void *sink_arg;
};

void sy_events_set_sink(struct sy_events *ev, void (*fn)(const struct sy_event *e, void *arg), void *arg)
{
	ev->sink = fn;
	ev->sink_arg = arg;
}

struct sy_events *sy_events_new(size_t capacity, size_t max_bytes, uint64_t first_seq)
{
	struct sy_events *ev;

	if (!capacity || !first_seq)
		return NULL;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return NULL;
	ev->ring = calloc(capacity, sizeof(*ev->ring));
	if (!ev->ring) {
		free(ev);
		return NULL;
	}
	ev->cap = capacity;
	ev->max_bytes = max_bytes;
	ev->first = ev->oldest = ev->next = first_seq;
	return ev;
}

static struct slot *slot_of(const struct sy_events *ev, uint64_t seq)
{
	return &ev->ring[(seq - ev->first) % ev->cap];
}

static void drop_oldest(struct sy_events *ev)
{
	struct slot *s = slot_of(ev, ev->oldest);

	ev->bytes -= s->bytes;
	free(s->mem);
	memset(s, 0, sizeof(*s));
	ev->oldest++;
}

void sy_events_free(struct sy_events *ev)
{
	if (!ev)
		return;
	while (ev->oldest < ev->next)
		drop_oldest(ev);
	while (ev->subs) {
		struct sy_events_sub *s = ev->subs;

		ev->subs = s->next;
		free(s);
	}
	free(ev->ring);
	free(ev);
}

/* Length of the next UTF-8 sequence at p (at most `left` bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) || (p[0] == 0xf0 && p[1] < 0x90) ||
	    (p[0] == 0xf4 && p[1] > 0x8f))
		return 0; /* overlong, surrogate, or past U+10FFFF */
	return n;
}

/* Copies s into dst (NULL: only measures), at most max - 1 bytes, whole characters
 * only, invalid bytes as '?'. Returns the bytes written, NUL included. */
static size_t put_str(char *dst, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p), o = 0;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(p + i, len - i);

		if (o + (n ? n : 1) > max - 1)
			break;
		if (dst) {
			if (n)
				memcpy(dst + o, p + i, n);
			else
				dst[o] = '?';
		}
		o += n ? n : 1;
		i += n ? n : 1;
	}
	if (dst)
		dst[o] = '\0';
	return o + 1;
}

/* Lays the event out in one block: attributes, then strings. Measures when mem is NULL. */
static size_t layout(void *mem, struct sy_event *e, const char *migration, const char *kind, const char *msg,
		     const struct sy_event_attr *attrs, size_t n)
{
	struct sy_event_attr *a = mem;
	size_t off = n * sizeof(*a);
	char *base = mem;

#define PUT(dst, src, max)                                                                                   \
	do {                                                                                                 \
		if (mem)                                                                                     \
			(dst) = base + off;                                                                  \
		off += put_str(mem ? base + off : NULL, (src), (max));                                       \
	} while (0)

	PUT(e->migration, migration, SY_EVENT_KIND_MAX);
	PUT(e->kind, kind, SY_EVENT_KIND_MAX);
	PUT(e->message, msg, SY_EVENT_MSG_MAX);
	for (size_t i = 0; i < n; i++) {
		PUT(a[i].key, attrs[i].key, SY_EVENT_KIND_MAX);
		PUT(a[i].value, attrs[i].value, SY_EVENT_VALUE_MAX);
	}
#undef PUT
	if (mem) {
		e->attrs = a;
		e->n_attrs = n;
	}
	return off;
}

/* Appends one event; `restored`: from the journal of an earlier run (its own time, no
 * log line, no sink: it is already there). */
static uint64_t store(struct sy_events *ev, const char *migration, const char *kind, const char *msg,
		      const struct sy_event_attr *attrs, size_t n_attrs, uint64_t unix_ms, bool restored)
{
	struct sy_event e = {0};
	struct slot *s;
	size_t size;
	void *mem;

	if (n_attrs > SY_EVENT_MAX_ATTRS)
		n_attrs = SY_EVENT_MAX_ATTRS;
	size = layout(NULL, &e, migration, kind, msg, attrs, n_attrs);
	mem = malloc(size);
	if (!mem) {
		sy_error("events", "%s: out of memory; event not recorded", kind);
		return 0;
	}
	layout(mem, &e, migration, kind, msg, attrs, n_attrs);
	while (ev->oldest < ev->next &&
	       (ev->next - ev->oldest >= ev->cap || ev->bytes + size > ev->max_bytes))
		drop_oldest(ev);
	e.seq = ev->next++;
	e.unix_ms = unix_ms;
	s = slot_of(ev, e.seq);
	s->e = e;
	s->mem = mem;
	s->bytes = size;
	ev->bytes += size;
	if (!restored) {
		sy_info("event", "%s%s%s: %s", e.migration, *e.migration ? ": " : "", e.kind, e.message);
		if (ev->sink)
			ev->sink(&s->e, ev->sink_arg);
	}
	for (struct sy_events_sub *sub = ev->subs; sub; sub = sub->next)
		sub->fn(sub->arg);
	return e.seq;
}

uint64_t sy_events_emit(struct sy_events *ev, const char *migration, const char *kind,
			const struct sy_event_attr *attrs, size_t n_attrs, const char *fmt, ...)
{
	char msg[SY_EVENT_MSG_MAX];
	va_list ap;

	if (!ev)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return store(ev, migration, kind, msg, attrs, n_attrs, sy_unix_ms(), false);
}

int sy_events_rebase(struct sy_events *ev, uint64_t first_seq)
{
	if (!ev || ev->next != ev->oldest || !first_seq)
		return -1;
	ev->first = ev->oldest = ev->next = first_seq;
	return 0;
}

uint64_t sy_events_restore(struct sy_events *ev, const struct sy_event *e)
{
	return ev ? store(ev, e->migration, e->kind, e->message, e->attrs, e->n_attrs, e->unix_ms, true) : 0;
}

uint64_t sy_events_oldest(const struct sy_events *ev)
{
	return ev->oldest;
}

uint64_t sy_events_next(const struct sy_events *ev)
{
	return ev->next;
}

const struct sy_event *sy_events_get(const struct sy_events *ev, uint64_t seq)
{
	if (seq < ev->oldest || seq >= ev->next)
		return NULL;
	return &slot_of(ev, seq)->e;
}

const char *sy_event_attr(const struct sy_event *e, const char *key)
{
	for (size_t i = 0; i < e->n_attrs; i++)
		if (strcmp(e->attrs[i].key, key) == 0)
			return e->attrs[i].value;
	return NULL;
}

struct sy_events_sub *sy_events_subscribe(struct sy_events *ev, void (*fn)(void *arg), void *arg)
{
	struct sy_events_sub *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fn = fn;
	s->arg = arg;
	s->next = ev->subs;
	ev->subs = s;
	return s;
}

void sy_events_unsubscribe(struct sy_events *ev, struct sy_events_sub *s)
{
	for (struct sy_events_sub **pp = &ev->subs; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			free(s);
			return;
		}
	}
}
