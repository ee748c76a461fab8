// SPDX-License-Identifier: Apache-2.0
/* secret.h — owns reading a secret from a file (a password mounted from a Kubernetes
 * Secret, a file written by a provisioning tool): the file must be readable by its
 * owner only, its content is kept in the caller's buffer and nowhere else, and no
 * message ever contains it. The caller wipes the buffer (sy_secret_wipe) once used. */
#ifndef SY_SECRET_H
#define SY_SECRET_H

#include <stddef.h>

/* Longest secret accepted, in bytes (one trailing newline not counted). */
#define SY_SECRET_MAX 4096

/* Reads path into buf (NUL-terminated, one trailing "\n" or "\r\n" dropped), *len its
 * length. 0, or a negative errno with why filled ("mode 0644: readable by group or
 * others", "No such file or directory"): never the content. -EPERM for a mode with any
 * group or other bit, -EFBIG past SY_SECRET_MAX, -ENODATA for an empty secret. */
int sy_secret_read(const char *path, char buf[SY_SECRET_MAX + 1], size_t *len, char *why, size_t wn);
/* The same checks, the content read and wiped at once: for validators. */
int sy_secret_check(const char *path, char *why, size_t wn);
/* Zeroes n bytes in a way the compiler cannot drop. */
void sy_secret_wipe(void *p, size_t n);

#endif
