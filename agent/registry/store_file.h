/* store_file.h — the daemon's state file, STATE_DIR/state.pb (a switchyard.v1.State
 * message). Written atomically: a temp file in the same folder, fsync, rename, fsync
 * of the folder; a reader never sees half a file, and a crash leaves the old or the
 * new state, nothing between. */
#ifndef SY_STATE_H
#define SY_STATE_H

#include "switchyard/v1/state.pb-c.h"

#define SY_STATE_FILE	"state.pb"
#define SY_STATE_FORMAT 1

/* *out is NULL (and 0 returned) when there is no state file yet. Free with
 * switchyard__v1__state__free_unpacked(*out, NULL). */
int sy_state_read(const char *dir, Switchyard__V1__State **out);

/* Two-phase write, so the registry can apply the kernel maps between them: prepare
 * writes and syncs the temp file; commit renames it into place; abort removes it. */
int sy_state_prepare(const char *dir, const Switchyard__V1__State *st);
int sy_state_commit(const char *dir);
void sy_state_abort(const char *dir);

#endif
