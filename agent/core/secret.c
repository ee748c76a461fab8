// SPDX-License-Identifier: Apache-2.0
/* secret.c — see secret.h. The mode is checked on the opened file (fstat), not on the
 * path, so a file swapped between the check and the read is still the one checked;
 * symbolic links are followed, as Kubernetes mounts Secrets through them. */
#include "core/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sy_secret_wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

int sy_secret_read(const char *path, char buf[SY_SECRET_MAX + 1], size_t *len, char *why, size_t wn)
{
	/* the longest secret, its "\r\n", and one byte to tell a longer file */
	char raw[SY_SECRET_MAX + 3];
	struct stat st;
	size_t n = 0;
	int fd, e = 0;

	*len = 0;
	buf[0] = '\0';
	/* O_NONBLOCK: a FIFO named by mistake (or by an API caller) must not hang the
	 * daemon's one thread in open(); it is refused below as not a regular file */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = -errno;
		snprintf(why, wn, "%s", strerror(-e));
		return e;
	}
	if (fstat(fd, &st) < 0) {
		e = -errno;
		snprintf(why, wn, "%s", strerror(-e));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		e = -EINVAL;
		snprintf(why, wn, "not a regular file");
		goto out;
	}
	if (st.st_mode & 077) {
		e = -EPERM;
		snprintf(why, wn,
			 "mode %04o: readable by group or others; the file must be its owner's only "
			 "(0600 or 0400)",
			 (unsigned)(st.st_mode & 07777));
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, raw + n, sizeof(raw) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = -errno;
			snprintf(why, wn, "%s", strerror(-e));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == sizeof(raw)) {
			e = -EFBIG;
			snprintf(why, wn, "longer than %d bytes", SY_SECRET_MAX);
			goto out;
		}
	}
	if (n && raw[n - 1] == '\n' && --n && raw[n - 1] == '\r')
		n--;
	if (n > SY_SECRET_MAX) {
		e = -EFBIG;
		snprintf(why, wn, "longer than %d bytes", SY_SECRET_MAX);
		goto out;
	}
	if (n == 0) {
		e = -ENODATA;
		snprintf(why, wn, "empty");
		goto out;
	}
	memcpy(buf, raw, n);
	buf[n] = '\0';
	*len = n;
out:
	close(fd);
	sy_secret_wipe(raw, sizeof(raw));
	if (e)
		sy_secret_wipe(buf, SY_SECRET_MAX + 1);
	return e;
}

int sy_secret_check(const char *path, char *why, size_t wn)
{
	char buf[SY_SECRET_MAX + 1];
	size_t len;
	int e = sy_secret_read(path, buf, &len, why, wn);

	sy_secret_wipe(buf, sizeof(buf));
	return e;
}
