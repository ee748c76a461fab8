// SPDX-License-Identifier: Apache-2.0
/* loader.c — see loader.h.
 *
 * Each BPF object is opened from its skeleton's embedded ELF through the generic
 * bpf_object API, so adding a program file means adding one line to `objects[]`.
 * Every map gets a pin path before load: libbpf then reuses a pinned map of the same
 * name, which is how maps are shared between objects and kept across restarts.
 * Programs are attached through bpf_link and the links pinned: a link lives as long
 * as its pin, whatever happens to the process that made it.
 */
#include "kernel/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "redis/commands.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "observe.skel.h"
#include "steer.skel.h"
#include "switchyard/abi.h"

struct bpf_obj_def {
	const char *name;
	const void *(*elf)(size_t *sz);
};

static const struct bpf_obj_def objects[] = {
	{"steer", steer_bpf__elf_bytes},
	{"observe", observe_bpf__elf_bytes},
};

/* Programs that must be attached (and pinned as links) for an installation to be
 * complete; adoption requires every one of them. */
static const char *const required_links[] = {
	"sy_connect4", "sy_connect6", "sy_getpeername4", "sy_getpeername6", "sy_egress", "sy_ingress",
};

int sy_cgroup2_root(char *buf, size_t len)
{
	FILE *f = fopen("/proc/mounts", "re");
	char dev[256], dir[PATH_MAX], type[64];
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2") == 0) {
			if (strlen(dir) >= len) {
				err = -ENAMETOOLONG;
				break;
			}
			strcpy(buf, dir);
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

static int pin_path(char *buf, size_t len, const char *bpffs, const char *kind, const char *name)
{
	if (snprintf(buf, len, "%s/%s/%s", bpffs, kind, name) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

static int get_pinned(const char *bpffs, const char *kind, const char *name)
{
	char p[PATH_MAX];
	int fd;

	if (pin_path(p, sizeof(p), bpffs, kind, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(p);
	return fd < 0 ? -errno : fd;
}

static int cgroup_id_of(const char *path, __u64 *id)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*id = st.st_ino;
	return 0;
}

/* How much of an installation is pinned: 0 none, 1 partial, 2 all required links. */
static int pinned_links(const char *bpffs)
{
	size_t found = 0;
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(required_links) / sizeof(required_links[0]); i++) {
		if (pin_path(p, sizeof(p), bpffs, "links", required_links[i]) == 0 && access(p, F_OK) == 0)
			found++;
	}
	if (found == 0)
		return 0;
	return found == sizeof(required_links) / sizeof(required_links[0]) ? 2 : 1;
}

static int open_maps(struct sy_bpf *b)
{
	struct {
		const char *name;
		int *fd;
	} maps[] = {
		{"sy_routes", &b->routes_fd},
		{"sy_migrations", &b->migrations_fd},
		{"sy_pins", &b->pins_fd},
		{"sy_steer_counters", &b->steer_counters_fd},
		{"sy_config_map", &b->config_fd},
		{"sy_side_stats", &b->side_stats_fd},
		{"sy_cmds", &b->cmds_fd},
		{"sy_prefixes", &b->prefixes_fd},
		{"sy_rule_stats", &b->rule_stats_fd},
		{"sy_events", &b->events_fd},
		{"sy_socks", &b->socks_fd},
		{"sy_conns", &b->conns_fd},
	};

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		int fd = get_pinned(b->bpffs, "maps", maps[i].name);

		if (fd < 0) {
			sy_error("loader", "open pinned map %s/maps/%s: %s", b->bpffs, maps[i].name,
				 strerror(-fd));
			return fd;
		}
		*maps[i].fd = fd;
	}
	return 0;
}

/* Checks that the pinned links are attached to the cgroup we were asked for. */
static int check_link_cgroup(const char *bpffs, __u64 want)
{
	for (size_t i = 0; i < sizeof(required_links) / sizeof(required_links[0]); i++) {
		struct bpf_link_info info;
		__u32 len = sizeof(info);
		int fd = get_pinned(bpffs, "links", required_links[i]);

		if (fd < 0)
			return fd;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
		close(fd);
		if (info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != want)
			return -EXDEV;
	}
	return 0;
}

static int config_update(struct sy_bpf *b, int check_abi)
{
	__u32 zero = 0;
	struct sy_config cfg = {0};

	if (bpf_map_lookup_elem(b->config_fd, &zero, &cfg) < 0)
		return -errno;
	if (check_abi && cfg.abi_version != SY_ABI_VERSION) {
		sy_error("loader",
			 "adopt %s: pinned maps have ABI version %u, this daemon speaks %u; run "
			 "switchyardd --uninstall first",
			 b->bpffs, cfg.abi_version, SY_ABI_VERSION);
		return -EPROTO;
	}
	cfg.abi_version = SY_ABI_VERSION;
	cfg.agent_tgid = (__u32)getpid();
	cfg.generation++;
	if (bpf_map_update_elem(b->config_fd, &zero, &cfg, BPF_ANY) < 0)
		return -errno;
	return 0;
}

/* Loads the command table into the kernel's map, on every start: an upgraded agent
 * brings its table to adopted programs too. Entries are only added or replaced. */
static int fill_commands(struct sy_bpf *b)
{
	for (size_t i = 0; i < sy_command_count(); i++) {
		const struct sy_command *c = sy_command_at(i);
		struct sy_cmd_key k;
		struct sy_cmd_info v;

		memset(&k, 0, sizeof(k));
		memcpy(k.name, c->name, strnlen(c->name, sizeof(k.name)));
		sy_command_kernel_info(c, &v);
		if (bpf_map_update_elem(b->cmds_fd, &k, &v, BPF_ANY) < 0) {
			int err = -errno;

			sy_error("loader", "fill command table (%s): %s", c->name, strerror(-err));
			return err;
		}
	}
	return 0;
}

static int load_object(const struct bpf_obj_def *def, struct sy_bpf *b, int cgfd)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = def->name);
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map;
	const void *elf;
	size_t sz;
	char p[PATH_MAX];
	int err;

	elf = def->elf(&sz);
	obj = bpf_object__open_mem(elf, sz, &opts);
	if (!obj) {
		err = -errno;
		sy_error("loader", "open BPF object %s: %s", def->name, strerror(-err));
		return err;
	}
	bpf_object__for_each_map(map, obj)
	{
		const char *name = bpf_map__name(map);

		if (name[0] == '.')
			continue; /* .rodata/.bss: private to the object */
		if ((err = pin_path(p, sizeof(p), b->bpffs, "maps", name)) ||
		    (err = bpf_map__set_pin_path(map, p))) {
			sy_error("loader", "pin path for map %s: %s", name, strerror(-err));
			goto out;
		}
	}
	err = bpf_object__load(obj);
	if (err) {
		sy_error("loader", "load BPF object %s: %s", def->name, strerror(-err));
		goto out;
	}
	bpf_object__for_each_program(prog, obj)
	{
		const char *name = bpf_program__name(prog);
		struct bpf_link *link;

		if ((err = pin_path(p, sizeof(p), b->bpffs, "progs", name)))
			goto out;
		unlink(p);
		if ((err = bpf_program__pin(prog, p))) {
			sy_error("loader", "pin program %s at %s: %s", name, p, strerror(-err));
			goto out;
		}
		link = bpf_program__attach_cgroup(prog, cgfd);
		if (!link) {
			err = -errno;
			sy_error("loader", "attach %s to cgroup %s: %s", name, b->cgroup, strerror(-err));
			goto out;
		}
		if ((err = pin_path(p, sizeof(p), b->bpffs, "links", name)) == 0) {
			unlink(p);
			err = bpf_link__pin(link, p);
		}
		/* Destroying our handle leaves the pinned link attached. */
		bpf_link__destroy(link);
		if (err) {
			sy_error("loader", "pin link %s at %s: %s", name, p, strerror(-err));
			goto out;
		}
	}
out:
	bpf_object__close(obj);
	return err;
}

static int install(struct sy_bpf *b)
{
	int cgfd, err = 0;
	static const char *const kinds[] = {"maps", "progs", "links"};

	for (size_t i = 0; i < 3; i++) {
		char p[PATH_MAX];

		if (pin_path(p, sizeof(p), b->bpffs, kinds[i], "") || (err = sy_mkdir_p(p, 0700))) {
			sy_error("loader", "create %s/%s: %s", b->bpffs, kinds[i],
				 strerror(err ? -err : ENAMETOOLONG));
			return err ? err : -ENAMETOOLONG;
		}
	}
	cgfd = open(b->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		err = -errno;
		sy_error("loader", "open cgroup %s: %s", b->cgroup, strerror(-err));
		return err;
	}
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]) && !err; i++)
		err = load_object(&objects[i], b, cgfd);
	close(cgfd);
	return err;
}

/* ---- who owns the pins ---------------------------------------------------------------
 *
 * The state-dir lock keeps two daemons off one state dir, not off one set of pins: a
 * second daemon with another --state-dir would adopt the same maps and write them too.
 * So the bpffs folder is locked as well (bpffs holds no regular files: the lock is an
 * flock on the folder itself, held for the daemon's life), and beside the pins a
 * one-entry array map records which state dir made them and the pid now using them.
 * Adoption goes only to that state dir: another one would apply its own registry over
 * maps that mirror someone else's. */

#define OWNER_PIN "owner"

static int remove_pins(const char *bpffs, int keep_dir);

struct pin_owner {
	__u32 pid;
	__u32 pad;
	char state_dir[PATH_MAX];
};

static int owner_path(const char *bpffs, char p[PATH_MAX])
{
	return snprintf(p, PATH_MAX, "%s/" OWNER_PIN, bpffs) >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* The pinned owner map's fd, made and pinned first when create; -errno otherwise. */
static int owner_fd(const char *bpffs, bool create)
{
	char p[PATH_MAX];
	int fd, err;

	if ((err = owner_path(bpffs, p)))
		return err;
	fd = bpf_obj_get(p);
	if (fd >= 0 || !create)
		return fd < 0 ? -errno : fd;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sy_owner", sizeof(__u32), sizeof(struct pin_owner), 1, NULL);
	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, p) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int owner_read(const char *bpffs, struct pin_owner *o)
{
	__u32 zero = 0;
	int fd = owner_fd(bpffs, false), err = 0;

	if (fd < 0)
		return fd;
	memset(o, 0, sizeof(*o));
	if (bpf_map_lookup_elem(fd, &zero, o) < 0)
		err = -errno;
	close(fd);
	o->state_dir[sizeof(o->state_dir) - 1] = '\0';
	return err ? err : (o->state_dir[0] ? 0 : -ENOENT);
}

static int owner_write(const char *bpffs, const struct pin_owner *o)
{
	__u32 zero = 0;
	int fd = owner_fd(bpffs, true), err = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, &zero, o, BPF_ANY) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* Locks BPFFS for this daemon (the fd is kept in b->lock_fd). -EBUSY when another
 * daemon holds it, logged with who that is. */
static int lock_pins(struct sy_bpf *b)
{
	struct pin_owner o;
	int err, fd;

	if ((err = sy_mkdir_p(b->bpffs, 0700))) {
		sy_error("loader", "create %s: %s", b->bpffs, strerror(-err));
		return err;
	}
	fd = open(b->bpffs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		sy_error("loader", "open %s: %s", b->bpffs, strerror(-err));
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		if (err != -EBUSY)
			sy_error("loader", "lock %s: %s", b->bpffs, strerror(-err));
		else if (owner_read(b->bpffs, &o) == 0)
			sy_error("loader", "%s is in use by switchyardd pid %u (state dir %s)", b->bpffs,
				 o.pid, o.state_dir);
		else
			sy_error("loader", "%s is in use by another switchyardd", b->bpffs);
		return err;
	}
	b->lock_fd = fd;
	return 0;
}

/* Pins made by another state dir are not ours to adopt. Pins from a version that
 * recorded no owner are adopted (and recorded from now on). */
static int check_owner(const struct sy_bpf *b, const char *state_dir)
{
	struct pin_owner o;

	if (owner_read(b->bpffs, &o) != 0 || strcmp(o.state_dir, state_dir) == 0)
		return 0;
	sy_error("loader",
		 "adopt %s: its pins were made by the switchyardd with state dir %s (pid %u, stopped), "
		 "not %s; start with --state-dir %s, or run switchyardd --uninstall --bpffs %s first",
		 b->bpffs, o.state_dir, o.pid, state_dir, o.state_dir, b->bpffs);
	return -EEXIST;
}

int sy_bpf_open(const char *bpffs, const char *cgroup, const char *state_dir, struct sy_bpf **out)
{
	struct sy_bpf *b = calloc(1, sizeof(*b));
	struct pin_owner me = {.pid = (__u32)getpid()};
	__u64 cgid = 0;
	int err, state;

	if (!b)
		return -ENOMEM;
	b->routes_fd = b->migrations_fd = b->pins_fd = b->steer_counters_fd = b->config_fd =
		b->side_stats_fd = b->cmds_fd = b->prefixes_fd = b->rule_stats_fd = b->events_fd =
			b->socks_fd = b->conns_fd = b->lock_fd = -1;
	if (!realpath(state_dir, me.state_dir))
		snprintf(me.state_dir, sizeof(me.state_dir), "%s", state_dir);
	if (snprintf(b->bpffs, sizeof(b->bpffs), "%s", bpffs) >= (int)sizeof(b->bpffs) ||
	    snprintf(b->cgroup, sizeof(b->cgroup), "%s", cgroup) >= (int)sizeof(b->cgroup)) {
		free(b);
		return -ENAMETOOLONG;
	}
	err = cgroup_id_of(cgroup, &cgid);
	if (err) {
		sy_error("loader", "cgroup %s: %s", cgroup, strerror(-err));
		free(b);
		return err;
	}

	if ((err = lock_pins(b))) {
		sy_bpf_close(b);
		return err;
	}
	state = pinned_links(bpffs);
	if (state == 2) {
		err = check_link_cgroup(bpffs, cgid);
		if (err == -EXDEV)
			sy_error("loader",
				 "adopt %s: its programs are attached to another cgroup than %s; run "
				 "switchyardd --uninstall --bpffs %s first",
				 bpffs, cgroup, bpffs);
		else if (err)
			sy_error("loader", "adopt %s: read pinned links: %s", bpffs, strerror(-err));
		if (err)
			goto refused;
	}
	if (state != 0 && (err = check_owner(b, me.state_dir)))
		goto refused;
	if (state == 1) {
		/* A half-made installation (killed during install): nothing complete is
		 * steering yet, so start over rather than guess. The folder stays: it is
		 * what we hold locked. */
		sy_warn("loader", "%s holds an incomplete installation: removing it", bpffs);
		remove_pins(bpffs, 1);
		state = 0;
	}
	if ((err = owner_write(bpffs, &me))) {
		sy_error("loader", "record the owner of %s: %s", bpffs, strerror(-err));
		goto fail;
	}
	if (state == 2) {
		b->adopted = true;
		sy_info("loader", "adopting pinned programs in %s (attached to %s)", bpffs, cgroup);
	} else {
		err = install(b);
		if (err)
			goto fail;
		sy_info("loader", "loaded and attached programs to %s, pinned in %s", cgroup, bpffs);
	}
	err = open_maps(b);
	if (err)
		goto fail;
	err = fill_commands(b);
	if (err)
		goto fail;
	err = config_update(b, b->adopted);
	if (err) {
		if (err != -EPROTO)
			sy_error("loader", "update config map: %s", strerror(-err));
		goto fail;
	}
	*out = b;
	return 0;
fail:
	if (!b->adopted && state != 2)
		remove_pins(bpffs, 0);
refused: /* nothing of what is pinned was touched */
	sy_bpf_close(b);
	return err;
}

void sy_bpf_close(struct sy_bpf *b)
{
	int *fds[] = {&b->routes_fd,	 &b->migrations_fd, &b->pins_fd,  &b->steer_counters_fd,
		      &b->config_fd,	 &b->side_stats_fd, &b->cmds_fd,  &b->prefixes_fd,
		      &b->rule_stats_fd, &b->events_fd,	    &b->socks_fd, &b->conns_fd};

	if (!b)
		return;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	if (b->lock_fd >= 0)
		close(b->lock_fd); /* last: the pins are free for the next daemon */
	free(b);
}

static int remove_dir_entries(const char *dir, int *removed)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char p[PATH_MAX];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p))
			continue;
		if (unlink(p) < 0) {
			err = -errno;
			sy_error("loader", "remove %s: %s", p, strerror(errno));
		} else {
			(*removed)++;
		}
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT && !err)
		err = -errno;
	return err;
}

/* keep_dir: the BPFFS folder itself stays (its flock is held by the caller). */
static int remove_pins(const char *bpffs, int keep_dir)
{
	/* Links first: once their pins are gone the programs detach; maps last. */
	static const char *const kinds[] = {"links", "progs", "maps"};
	int err = 0, removed = 0;

	for (size_t i = 0; i < 3; i++) {
		char p[PATH_MAX];
		int e;

		if (pin_path(p, sizeof(p), bpffs, kinds[i], ""))
			return -ENAMETOOLONG;
		p[strlen(p) - 1] = '\0';
		e = remove_dir_entries(p, &removed);
		if (e && !err)
			err = e;
	}
	{
		char p[PATH_MAX];

		if (snprintf(p, sizeof(p), "%s/" OWNER_PIN, bpffs) < (int)sizeof(p) && unlink(p) == 0)
			removed++;
	}
	if (!keep_dir && rmdir(bpffs) < 0 && errno != ENOENT && !err)
		err = -errno;
	if (!err)
		sy_info("loader", "uninstalled %s (%d pins removed)", bpffs, removed);
	return err;
}

int sy_bpf_uninstall(const char *bpffs)
{
	return remove_pins(bpffs, 0);
}
