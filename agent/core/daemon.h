// SPDX-License-Identifier: Apache-2.0
/* daemon.h — what the running daemon is, for Status and logs. */
#ifndef SY_DAEMON_H
#define SY_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define SY_VERSION "0.1.0"

struct sy_daemon_info {
	const char *version;
	char cgroup[PATH_MAX]; /* where the programs are attached */
	char bpffs[PATH_MAX];  /* where programs, maps and links are pinned */
	char state_dir[PATH_MAX];
	bool adopted; /* started by adopting pinned programs (fail-static restart) */
	uint64_t started_unix_ms;
	/* fleet mode (docs/fleet.md): all empty for a single agent */
	char store[PATH_MAX + 16];
	char node[64];
	char leader[64]; /* "" unknown */
};

#endif
