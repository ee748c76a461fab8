// SPDX-License-Identifier: Apache-2.0
/* store_file.c — see store_file.h. */
#include "registry/store_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"

#define SY_STATE_MAX (64u << 20)

static int paths(const char *dir, char *final, char *tmp)
{
	if (snprintf(final, PATH_MAX, "%s/%s", dir, SY_STATE_FILE) >= PATH_MAX ||
	    snprintf(tmp, PATH_MAX, "%s/.%s.tmp", dir, SY_STATE_FILE) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int sy_state_read(const char *dir, Switchyard__V1__State **out)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	uint8_t *buf;
	ssize_t got;
	size_t off = 0;
	int fd, err;

	*out = NULL;
	if ((err = paths(dir, final, tmp)))
		return err;
	fd = open(final, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)SY_STATE_MAX) {
		err = st.st_size > (off_t)SY_STATE_MAX ? -EFBIG : -errno;
		close(fd);
		return err;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		got = read(fd, buf + off, (size_t)st.st_size - off);
		if (got <= 0) {
			err = got < 0 ? -errno : -EIO;
			free(buf);
			close(fd);
			return err;
		}
		off += (size_t)got;
	}
	close(fd);
	if (off == 0) {
		/* not a valid state either, but say so: "Protocol error" would hide it */
		free(buf);
		return -ENODATA;
	}
	*out = switchyard__v1__state__unpack(NULL, off, buf);
	free(buf);
	if (!*out)
		return -EBADMSG;
	if (!SY_STATE_FORMAT_OK((*out)->format)) {
		switchyard__v1__state__free_unpacked(*out, NULL);
		*out = NULL;
		return -EPROTO;
	}
	return 0;
}

int sy_state_prepare(const char *dir, const Switchyard__V1__State *st)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	size_t len = switchyard__v1__state__get_packed_size(st);
	uint8_t *buf;
	int err;

	if ((err = paths(dir, final, tmp)))
		return err;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	switchyard__v1__state__pack(st, buf);
	err = sy_file_write_synced(tmp, buf, len, 0600);
	free(buf);
	return err;
}

int sy_state_commit(const char *dir)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	int err;

	if ((err = paths(dir, final, tmp)))
		return err;
	/* the rename itself must reach the disk before we answer "done" */
	return sy_file_rename(tmp, final, 1);
}

void sy_state_abort(const char *dir)
{
	char final[PATH_MAX], tmp[PATH_MAX];

	if (paths(dir, final, tmp) == 0)
		unlink(tmp);
}

/* ---- the store ------------------------------------------------------------------ */

struct file_store {
	struct sy_store s; /* first: the interface */
	char dir[PATH_MAX];
};

static int fs_load(struct sy_store *s, Switchyard__V1__State **out)
{
	struct file_store *f = (struct file_store *)s;
	int e = sy_state_read(f->dir, out);

	if (!e)
		s->revision = *out ? (*out)->generation : 0;
	return e;
}

static int fs_commit(struct sy_store *s, const Switchyard__V1__State *st, int (*apply)(void *arg), void *arg)
{
	struct file_store *f = (struct file_store *)s;
	int e;

	if (st->generation != s->revision + 1)
		return -ESTALE;
	if ((e = sy_state_prepare(f->dir, st)))
		return e;
	if (apply && (e = apply(arg))) {
		sy_state_abort(f->dir);
		return e;
	}
	if ((e = sy_state_commit(f->dir)))
		return e;
	s->revision = st->generation;
	return 0;
}

static int fs_watch(struct sy_store *s, sy_store_watch_fn fn, void *ctx)
{
	/* the daemon holds the state dir's lock: nobody else writes here */
	(void)s;
	(void)fn;
	(void)ctx;
	return 0;
}

static void fs_close(struct sy_store *s)
{
	free(s);
}

static const struct sy_store_ops file_ops = {
	.load = fs_load,
	.commit = fs_commit,
	.watch = fs_watch,
	.close = fs_close,
};

int sy_store_file_open(const char *dir, struct sy_store **out)
{
	char final[PATH_MAX], tmp[PATH_MAX];
	struct file_store *f;
	int e;

	*out = NULL;
	if ((e = paths(dir, final, tmp)))
		return e;
	/* a commit killed between prepare and rename left its temp file: never renamed,
	 * so never the state; it only takes room */
	if (unlink(tmp) == 0)
		sy_info("state", "removed %s left by an interrupted commit", tmp);
	else if (errno != ENOENT)
		return -errno;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->s.ops = &file_ops;
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	snprintf(f->s.where, sizeof(f->s.where), "%s", final);
	*out = &f->s;
	return 0;
}
