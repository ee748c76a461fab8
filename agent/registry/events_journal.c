// SPDX-License-Identifier: Apache-2.0
/* events_journal.c — see events_journal.h.
 *
 * Records: a 4-byte little-endian length, then a serialized switchyard.v1.Event. A
 * record that does not parse (a torn last write after a crash, a foreign file) ends
 * the reading of that file: what came before is kept. */
#include "registry/events_journal.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "switchyard/v1/events.pb-c.h"

#define JOURNAL	   "events.journal"
#define MAX_RECORD (64 * 1024)

struct sy_events_journal {
	char path[PATH_MAX], old[PATH_MAX];
	int fd;
	size_t bytes, max_bytes;
	bool failed; /* a write failed: said once, then events are only in memory */
};

struct loaded {
	Switchyard__V1__Event **e;
	size_t n, cap;
};

static void load_file(struct loaded *l, const char *path)
{
	FILE *f = fopen(path, "re");
	uint8_t hdr[4], *buf;

	if (!f)
		return;
	buf = malloc(MAX_RECORD);
	while (buf && fread(hdr, 1, 4, f) == 4) {
		uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
			       (uint32_t)hdr[3] << 24;
		Switchyard__V1__Event *pe;

		if (len > MAX_RECORD || fread(buf, 1, len, f) != len)
			break;
		pe = switchyard__v1__event__unpack(NULL, len, buf);
		if (!pe)
			break;
		if (l->n == l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 256;
			Switchyard__V1__Event **ne = realloc(l->e, cap * sizeof(*ne));

			if (!ne) {
				switchyard__v1__event__free_unpacked(pe, NULL);
				break;
			}
			l->e = ne;
			l->cap = cap;
		}
		l->e[l->n++] = pe;
	}
	free(buf);
	fclose(f);
}

/* Restores the events of both files; the last one keeps its seq, so the new run goes
 * on from it. */
static size_t replay(struct sy_events *ev, const char *old, const char *cur)
{
	struct loaded l = {0};
	size_t from;

	load_file(&l, old);
	load_file(&l, cur);
	from = l.n > SY_EVENTS_HISTORY ? l.n - SY_EVENTS_HISTORY : 0;
	if (l.n && l.e[l.n - 1]->seq >= l.n - from)
		sy_events_rebase(ev, l.e[l.n - 1]->seq + 1 - (l.n - from));
	for (size_t i = 0; i < l.n; i++) {
		Switchyard__V1__Event *pe = l.e[i];
		struct sy_event_attr attrs[SY_EVENT_MAX_ATTRS];
		struct sy_event e = {0};

		if (i >= from) {
			e.unix_ms = pe->unix_ms;
			e.migration = pe->migration;
			e.kind = pe->kind;
			e.message = pe->message;
			for (size_t k = 0; k < pe->n_attributes && k < SY_EVENT_MAX_ATTRS; k++) {
				attrs[k].key = pe->attributes[k]->key;
				attrs[k].value = pe->attributes[k]->value;
				e.n_attrs++;
			}
			e.attrs = attrs;
			sy_events_restore(ev, &e);
		}
		switchyard__v1__event__free_unpacked(pe, NULL);
	}
	free(l.e);
	return l.n - from;
}

static void rotate(struct sy_events_journal *j)
{
	close(j->fd);
	if (rename(j->path, j->old) < 0)
		sy_warn("events", "rotate journal %s: %s", j->path, strerror(errno));
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	j->bytes = 0;
}

static void sink(const struct sy_event *e, void *arg)
{
	struct sy_events_journal *j = arg;
	Switchyard__V1__Event pe = SWITCHYARD__V1__EVENT__INIT;
	Switchyard__V1__Event__AttributesEntry ents[SY_EVENT_MAX_ATTRS], *entp[SY_EVENT_MAX_ATTRS];
	uint8_t *buf;
	size_t len;

	if (j->fd < 0 || j->failed)
		return;
	pe.seq = e->seq;
	pe.unix_ms = e->unix_ms;
	pe.migration = (char *)e->migration;
	pe.kind = (char *)e->kind;
	pe.message = (char *)e->message;
	for (size_t i = 0; i < e->n_attrs && i < SY_EVENT_MAX_ATTRS; i++) {
		switchyard__v1__event__attributes_entry__init(&ents[i]);
		ents[i].key = (char *)e->attrs[i].key;
		ents[i].value = (char *)e->attrs[i].value;
		entp[i] = &ents[i];
		pe.n_attributes++;
	}
	pe.attributes = entp;
	len = switchyard__v1__event__get_packed_size(&pe);
	if (len > MAX_RECORD)
		return;
	buf = malloc(len + 4);
	if (!buf)
		return;
	buf[0] = (uint8_t)len;
	buf[1] = (uint8_t)(len >> 8);
	buf[2] = (uint8_t)(len >> 16);
	buf[3] = (uint8_t)(len >> 24);
	switchyard__v1__event__pack(&pe, buf + 4);
	/* one write per record: a crash leaves at most the last one torn */
	if (write(j->fd, buf, len + 4) != (ssize_t)(len + 4)) {
		j->failed = true;
		sy_error("events", "append to %s: %s; events from now on are kept in memory only", j->path,
			 strerror(errno));
	} else if ((j->bytes += len + 4) >= j->max_bytes) {
		rotate(j);
	}
	free(buf);
}

struct sy_events_journal *sy_events_journal_open(struct sy_events *ev, const char *state_dir,
						 size_t max_bytes)
{
	struct sy_events_journal *j = calloc(1, sizeof(*j));
	struct stat st;
	size_t n;

	if (!j)
		return NULL;
	j->max_bytes = max_bytes;
	snprintf(j->path, sizeof(j->path), "%s/%s", state_dir, JOURNAL);
	snprintf(j->old, sizeof(j->old), "%s/%s.1", state_dir, JOURNAL);
	n = replay(ev, j->old, j->path);
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		sy_error("events", "open journal %s: %s; events are kept in memory only", j->path,
			 strerror(errno));
		free(j);
		return NULL;
	}
	if (fstat(j->fd, &st) == 0)
		j->bytes = (size_t)st.st_size;
	if (n)
		sy_info("events", "%zu event(s) of earlier runs restored from %s", n, j->path);
	sy_events_set_sink(ev, sink, j);
	return j;
}

void sy_events_journal_close(struct sy_events *ev, struct sy_events_journal *j)
{
	if (!j)
		return;
	if (ev)
		sy_events_set_sink(ev, NULL, NULL);
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}
