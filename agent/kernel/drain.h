// SPDX-License-Identifier: Apache-2.0
/* drain.h — terminate the client connections of one side of a migration (rollback
 * with --drain): each established client socket that connect() steering placed on
 * that side is aborted in the kernel (bpf/drain.bpf.c, iter/tcp + bpf_sock_destroy),
 * so its client reconnects and is steered again by the current ratio, pins and
 * health. Set those first (a rollback sets the ratio to 0), then drain: otherwise
 * the clients reconnect to the side just drained.
 *
 * Synchronous, on the caller's thread: one load of a small program and one walk of
 * the TCP sockets, about a few milliseconds for hundreds of sockets. Only sockets
 * of the caller's network namespace are seen (see docs/steering.md, "Drain").
 */
#ifndef SY_DRAIN_H
#define SY_DRAIN_H

#include <stdint.h>

/* sy_drain_side flags */
#define SY_DRAIN_DIRECT                                                                                      \
	0x1 /* also sockets that dialled a target endpoint themselves,                                       \
	     * which would reconnect to it: off for a rollback */

struct sy_drain_result {
	uint64_t examined;   /* TCP sockets walked */
	uint64_t matched;    /* of those, client sockets of the migration on that side */
	uint64_t destroyed;  /* aborted: the peer got a RST, the client gets ECONNABORTED */
	uint64_t failed;     /* the kernel refused to abort them */
	int32_t last_err;    /* the last refusal (negative errno), 0 if none */
	uint64_t walk_us;    /* of that, the walk (and the aborts) alone */
	uint64_t elapsed_us; /* load, walk and teardown */
};

/* Aborts the client connections of migration MIG_ID on SIDE (enum sy_side).
 * SOCKS_MAP_FD and CONNS_MAP_FD are the pinned sy_socks and sy_conns maps (struct
 * sy_bpf.socks_fd and conns_fd, or bpf_obj_get of BPFFS/maps/NAME); not closed. Returns 0 when the walk
 * completed — even if some sockets could not be aborted (out->failed) — or a negative errno, logged as
 * "drain: <what failed>: <why>", when it could not run; OUT is filled either way. */
int sy_drain_side(int socks_map_fd, int conns_map_fd, uint32_t mig_id, uint8_t side, uint32_t flags,
		  struct sy_drain_result *out);

#endif
