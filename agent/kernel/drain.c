// SPDX-License-Identifier: Apache-2.0
/* drain.c — see drain.h.
 *
 * The program is loaded for each drain and closed after it rather than kept loaded:
 * drains are rare (a rollback), a load costs milliseconds, and nothing is left in the
 * kernel for the loader to adopt or uninstall. Its sy_socks is the pinned map itself
 * (bpf_map__reuse_fd), so it reads the storage the steering programs wrote.
 */
#include "kernel/drain.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drain.skel.h"
#include "core/log.h"
#include "switchyard/abi.h"

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Reads the iterator to its end: each read() runs the program over the next batch of
 * sockets. The program prints nothing, so a read returns 0 once the walk is over. */
static int run_iter(int iter_fd)
{
	char buf[512];

	for (;;) {
		ssize_t n = read(iter_fd, buf, sizeof(buf));

		if (n == 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int sy_drain_side(int socks_map_fd, int conns_map_fd, uint32_t mig_id, uint8_t side, uint32_t flags,
		  struct sy_drain_result *out)
{
	struct drain_bpf *skel = NULL;
	struct bpf_link *link = NULL;
	uint64_t t0 = mono_us(), t_walk;
	int iter_fd = -1, err;

	memset(out, 0, sizeof(*out));
	if (socks_map_fd < 0 || conns_map_fd < 0 || mig_id == 0 || mig_id >= SY_MAX_MIGRATIONS ||
	    (side != SY_SIDE_LEGACY && side != SY_SIDE_TARGET) || (flags & ~SY_DRAIN_DIRECT)) {
		sy_error("drain", "migration %u side %u: invalid arguments (map fd %d, flags %#x)", mig_id,
			 side, socks_map_fd, flags);
		return -EINVAL;
	}
	skel = drain_bpf__open();
	if (!skel) {
		err = -errno;
		sy_error("drain", "open BPF object: %s", strerror(-err));
		return err;
	}
	skel->rodata->drain_mig = mig_id;
	skel->rodata->drain_side = side;
	skel->rodata->drain_direct = (flags & SY_DRAIN_DIRECT) != 0;
	err = bpf_map__reuse_fd(skel->maps.sy_socks, socks_map_fd);
	if (err) {
		sy_error("drain", "reuse sy_socks map (fd %d): %s", socks_map_fd, strerror(-err));
		goto out;
	}
	err = bpf_map__reuse_fd(skel->maps.sy_conns, conns_map_fd);
	if (err) {
		sy_error("drain", "reuse sy_conns map (fd %d): %s", conns_map_fd, strerror(-err));
		goto out;
	}
	err = drain_bpf__load(skel);
	if (err) {
		/* ENOENT/EINVAL here usually means no bpf_sock_destroy kfunc (kernel < 6.5) */
		sy_error("drain", "load iter/tcp program: %s (needs kernel >= 6.5 with BTF)", strerror(-err));
		goto out;
	}
	link = bpf_program__attach_iter(skel->progs.sy_drain, NULL);
	if (!link) {
		err = -errno;
		sy_error("drain", "attach iter/tcp program: %s", strerror(-err));
		goto out;
	}
	iter_fd = bpf_iter_create(bpf_link__fd(link));
	if (iter_fd < 0) {
		err = -errno;
		sy_error("drain", "create iterator: %s", strerror(-err));
		goto out;
	}
	t_walk = mono_us();
	err = run_iter(iter_fd);
	out->walk_us = mono_us() - t_walk;
	/* The counts are exact even after a failed read: they cover the sockets walked. */
	out->examined = skel->bss->examined;
	out->matched = skel->bss->matched;
	out->destroyed = skel->bss->destroyed;
	out->failed = skel->bss->failed;
	out->last_err = skel->bss->last_err;
	if (err)
		sy_error("drain", "walk TCP sockets: %s (%llu of them aborted before)", strerror(-err),
			 (unsigned long long)out->destroyed);
out:
	if (iter_fd >= 0)
		close(iter_fd);
	bpf_link__destroy(link);
	drain_bpf__destroy(skel);
	out->elapsed_us = mono_us() - t0;
	if (!err && out->failed)
		sy_warn("drain", "migration %u: %llu of %llu sockets could not be aborted: %s", mig_id,
			(unsigned long long)out->failed, (unsigned long long)out->matched,
			strerror(-out->last_err));
	return err;
}
