// SPDX-License-Identifier: Apache-2.0
/* sy_drain — runs one drain (agent/kernel/drain.h) against an installation pinned under
 * BPFFS and prints its counts as one JSON line: the system tests and bench/drain.sh
 * drive sy_drain_side through it, the daemon calls the function itself.
 *
 *   sy_drain --bpffs DIR (--mig ID | --endpoint IP:PORT) [--side target|legacy] [--direct]
 *
 * --endpoint names the migration by any of its endpoints (looked up in the pinned
 * routes map), so a caller needs no migration id. Exit 0 when the walk completed,
 * 1 when the drain failed, 2 on bad usage.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/drain.h"
#include "model/endpoint.h"
#include "switchyard/abi.h"

static int usage(void)
{
	fprintf(stderr, "usage: sy_drain --bpffs DIR (--mig ID | --endpoint IP:PORT) [--side target|legacy] "
			"[--direct]\n");
	return 2;
}

static int open_pinned(const char *bpffs, const char *map)
{
	char p[PATH_MAX];
	int fd;

	if (snprintf(p, sizeof(p), "%s/maps/%s", bpffs, map) >= (int)sizeof(p)) {
		fprintf(stderr, "sy_drain: %s/maps/%s: path too long\n", bpffs, map);
		return -1;
	}
	fd = bpf_obj_get(p);
	if (fd < 0)
		fprintf(stderr, "sy_drain: open %s: %s\n", p, strerror(errno));
	return fd;
}

static int mig_of_endpoint(const char *bpffs, const char *s, uint32_t *mig)
{
	struct sy_endpoint ep;
	struct sy_route r;
	char why[128];
	int fd, err = 0;

	if (sy_endpoint_parse(s, &ep, why, sizeof(why)) < 0) {
		fprintf(stderr, "sy_drain: --endpoint %s\n", why);
		return -1;
	}
	fd = open_pinned(bpffs, "sy_routes");
	if (fd < 0)
		return -1;
	if (bpf_map_lookup_elem(fd, &ep, &r) < 0) {
		fprintf(stderr, "sy_drain: %s is no migration's endpoint: %s\n", s, strerror(errno));
		err = -1;
	} else {
		*mig = r.mig_id;
	}
	close(fd);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bpffs", required_argument, NULL, 'b'},    {"mig", required_argument, NULL, 'm'},
		{"endpoint", required_argument, NULL, 'e'}, {"side", required_argument, NULL, 's'},
		{"direct", no_argument, NULL, 'd'},	    {NULL, 0, NULL, 0},
	};
	const char *bpffs = NULL, *endpoint = NULL;
	struct sy_drain_result res;
	uint32_t mig = 0, flags = 0;
	uint8_t side = SY_SIDE_TARGET;
	char *end;
	int c, fd, cfd, err;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bpffs = optarg;
			break;
		case 'm':
			mig = (uint32_t)strtoul(optarg, &end, 10);
			if (*end || !*optarg)
				return usage();
			break;
		case 'e':
			endpoint = optarg;
			break;
		case 's':
			if (strcmp(optarg, "target") == 0)
				side = SY_SIDE_TARGET;
			else if (strcmp(optarg, "legacy") == 0)
				side = SY_SIDE_LEGACY;
			else
				return usage();
			break;
		case 'd':
			flags |= SY_DRAIN_DIRECT;
			break;
		default:
			return usage();
		}
	}
	if (!bpffs || optind != argc || (!mig) == (!endpoint))
		return usage();
	if (endpoint && mig_of_endpoint(bpffs, endpoint, &mig) < 0)
		return 1;
	fd = open_pinned(bpffs, "sy_socks");
	if (fd < 0)
		return 1;
	cfd = open_pinned(bpffs, "sy_conns");
	if (cfd < 0) {
		close(fd);
		return 1;
	}
	err = sy_drain_side(fd, cfd, mig, side, flags, &res);
	close(cfd);
	close(fd);
	printf("{\"mig\": %u, \"side\": \"%s\", \"ok\": %s, \"error\": %d, \"examined\": %llu, \"matched\": "
	       "%llu, "
	       "\"destroyed\": %llu, \"failed\": %llu, \"last_err\": %d, \"walk_us\": %llu, \"elapsed_us\": "
	       "%llu}\n",
	       mig, side == SY_SIDE_TARGET ? "target" : "legacy", err ? "false" : "true", err,
	       (unsigned long long)res.examined, (unsigned long long)res.matched,
	       (unsigned long long)res.destroyed, (unsigned long long)res.failed, res.last_err,
	       (unsigned long long)res.walk_us, (unsigned long long)res.elapsed_us);
	return err ? 1 : 0;
}
