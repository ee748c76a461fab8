// SPDX-License-Identifier: Apache-2.0
/* loader.h — the kernel side's lifecycle: load the BPF objects, pin programs, maps and
 * links under a bpffs folder, attach to a cgroup v2, and on restart adopt what is
 * pinned instead of loading again (fail-static: steering never stops while the
 * daemon is down or restarting). `--uninstall` is the only way to detach.
 *
 * Layout under BPFFS: maps/<map>, progs/<prog>, links/<prog>, and owner: a one-entry
 * map naming the state dir that made the pins and the pid using them. The pins have
 * one owner: a daemon holds an flock on the BPFFS folder for its life, and adopts only
 * pins its own state dir made.
 */
#ifndef SY_LOADER_H
#define SY_LOADER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct sy_bpf {
	int routes_fd;
	int migrations_fd;
	int pins_fd;
	int steer_counters_fd;
	int config_fd;
	int side_stats_fd; /* per migration and side: bytes, latency, errors */
	int cmds_fd;	   /* the command table, for the kernel parser */
	int prefixes_fd;   /* key-prefix rules (LPM trie) */
	int rule_stats_fd; /* per migration, rule and side: commands and bytes by class */
	int events_fd;	   /* ring buffer: captured writes, sampled read keys */
	int socks_fd;	   /* per-socket storage of migration client sockets (drain) */
	int conns_fd;	   /* sy_conns: migration sockets that sent nothing yet (drain) */
	int lock_fd;	   /* flock on the BPFFS folder, held while open */
	bool adopted;	   /* links were pinned: nothing was loaded or attached */
	char bpffs[PATH_MAX];
	char cgroup[PATH_MAX];
};

/* Finds the cgroup2 mount point in /proc/mounts. */
int sy_cgroup2_root(char *buf, size_t len);

/* Locks BPFFS (-EBUSY while another daemon has it, logged with its pid and state dir),
 * then adopts the pinned programs if BPFFS holds a complete, compatible installation
 * attached to CGROUP and made by STATE_DIR (-EEXIST when another state dir made it);
 * otherwise loads, pins and attaches. Writes the agent's tgid into the config map
 * either way (its own sockets are never steered). */
int sy_bpf_open(const char *bpffs, const char *cgroup, const char *state_dir, struct sy_bpf **out);
/* Closes the daemon's fds. Pins stay: the programs remain attached. */
void sy_bpf_close(struct sy_bpf *b);

/* Detaches every program and removes every pin under BPFFS. 0 if there was nothing. */
int sy_bpf_uninstall(const char *bpffs);

#endif
