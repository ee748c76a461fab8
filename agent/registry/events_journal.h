// SPDX-License-Identifier: Apache-2.0
/* events_journal.h — the event history survives restarts: every emitted event is
 * appended to STATE_DIR/events.journal (rotated to events.journal.1 past max_bytes),
 * and a starting daemon restores both files into its history before its first event,
 * so `syctl events NAME` after a crash or an upgrade still shows how a cutover got
 * where it is. Appends are plain writes (no fsync): they survive the agent dying, not
 * the host losing power. */
#ifndef SY_EVENTS_JOURNAL_H
#define SY_EVENTS_JOURNAL_H

#include <stddef.h>

#include "registry/events.h"

#define SY_EVENTS_JOURNAL_BYTES (4u << 20)

struct sy_events_journal;

/* Restores, then records. NULL when the journal cannot be opened (logged): the
 * daemon goes on with its history in memory only. */
struct sy_events_journal *sy_events_journal_open(struct sy_events *ev, const char *state_dir,
						 size_t max_bytes);
void sy_events_journal_close(struct sy_events *ev, struct sy_events_journal *j);

#endif
