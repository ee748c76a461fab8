// SPDX-License-Identifier: Apache-2.0
/* fsutil.h — small filesystem helpers shared by the daemon's parts, and its one
 * atomic file writer: a file is replaced by writing a temporary file, fsync-ing it and
 * renaming it over the old one, so a reader (or a restart after a crash) sees the old
 * content or the new, never half. Errors are negative errnos for the caller to log. */
#ifndef SY_FSUTIL_H
#define SY_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: parents 0755, the last component `mode`. 0 or a negative errno. */
int sy_mkdir_p(const char *path, mode_t mode);

/* Writes `len` bytes to `tmp` (created with `mode`, truncated) and fsyncs it. On
 * failure `tmp` is removed. The first half of a two-phase replace. */
int sy_file_write_synced(const char *tmp, const void *buf, size_t len, mode_t mode);
/* Renames `tmp` over `final` (removing `tmp` on failure); with sync_dir, the folder
 * is fsynced too, so the rename itself is on disk when this returns. */
int sy_file_rename(const char *tmp, const char *final, int sync_dir);
/* Both halves: `path` replaced through "path.tmp". The folder is not fsynced: for
 * progress marks, where losing the last rename in a crash only means going on from
 * the mark before. */
int sy_file_replace(const char *path, const void *buf, size_t len, mode_t mode);

#endif
