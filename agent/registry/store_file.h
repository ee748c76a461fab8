// SPDX-License-Identifier: Apache-2.0
/* store_file.h — the file store (store.h): the daemon's state file, STATE_DIR/state.pb
 * (a switchyard.v1.State message). Written atomically: a temp file in the same folder,
 * fsync, rename, fsync of the folder; a reader never sees half a file, and a crash
 * leaves the old or the new state, nothing between (a temp file left by a crash is
 * removed when the store is opened). Only this daemon writes the folder (it holds its
 * lock), so the file store's watch never reports anything. */
#ifndef SY_STATE_H
#define SY_STATE_H

#include "registry/store.h"
#include "switchyard/v1/state.pb-c.h"

#define SY_STATE_FILE "state.pb"

/* The store over DIR; removes a temp file left by a crash. Close with sy_store_close. */
int sy_store_file_open(const char *dir, struct sy_store **out);

/* The steps the store is made of, for tests. */

/* *out is NULL (and 0 returned) when there is no state file yet; -ENODATA: the file is
 * empty. Free with switchyard__v1__state__free_unpacked(*out, NULL). */
int sy_state_read(const char *dir, Switchyard__V1__State **out);

/* Two-phase write, so a commit can apply the kernel maps between them: prepare writes
 * and syncs the temp file; commit renames it into place; abort removes it. */
int sy_state_prepare(const char *dir, const Switchyard__V1__State *st);
int sy_state_commit(const char *dir);
void sy_state_abort(const char *dir);

#endif
