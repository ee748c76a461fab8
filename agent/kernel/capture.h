// SPDX-License-Identifier: Apache-2.0
/* capture.h — the agent end of the kernel's ring buffer (sy_events): drains it on a
 * short timer (the kernel submits without waking us, see observe.bpf.c), puts the
 * fragments of each captured write command back together per socket, splits batch
 * records (SY_EVF_BATCH: several whole commands of one packet) into commands, and hands
 * complete commands and sampled read keys to their consumers (the mirror and the
 * dual reads). Bounded: a fixed number of half-assembled commands, each at most its
 * migration's capture_bytes; what does not fit is dropped and counted. */
#ifndef SY_CAPTURE_H
#define SY_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "switchyard/abi.h"

struct sy_loop;

struct sy_command;

/* A complete write command, or a sampled read key (body = the key). */
struct sy_captured {
	uint8_t type; /* enum sy_ev_type */
	uint8_t side;
	bool truncated; /* body holds the first bytes only; `total` is the full length */
	bool aborted;	/* the kernel lost the command: only its name (if any) is known */
	bool is_inline; /* body is the rest of an inline command's line */
	uint32_t mig_id;
	uint32_t rule;
	uint64_t cookie;
	uint32_t cmd_seq;
	uint32_t argc;
	uint64_t ts_ns;
	char name[SY_CMD_NAME_MAX + 1];
	const struct sy_command *cmd; /* name's entry in the command table, NULL if none */
	const uint8_t *body;	      /* RESP arguments after the name, from the '$' of argv[1] */
	size_t len;
	size_t total;
};

typedef void (*sy_capture_cb)(const struct sy_captured *c, void *arg);

struct sy_capture_stats {
	uint64_t writes;    /* complete write commands delivered */
	uint64_t truncated; /* of those, truncated */
	uint64_t aborted;
	uint64_t read_keys;
	uint64_t bytes;	  /* body bytes delivered */
	uint64_t dropped; /* fragments that did not fit (table full, out of order), and
			   * batch records that were not whole RESP commands as announced */
	uint64_t records; /* ring-buffer records read (a batch record is one) */
};

struct sy_capture;

/* Starts draining ring-buffer map `events_fd` every `drain_ms` (and whenever the
 * kernel wakes us past its fill threshold). */
int sy_capture_new(struct sy_loop *l, int events_fd, unsigned drain_ms, sy_capture_cb cb, void *arg,
		   struct sy_capture **out);
void sy_capture_free(struct sy_capture *c);
/* Reads everything in the ring buffer now; returns records read or a negative errno. */
int sy_capture_drain(struct sy_capture *c);
/* Totals, and per migration (mig_id < SY_MAX_MIGRATIONS). */
void sy_capture_stats(const struct sy_capture *c, uint32_t mig_id, struct sy_capture_stats *out);
/* Forgets a migration's totals (its slot was freed). */
void sy_capture_reset(struct sy_capture *c, uint32_t mig_id);

/* The reassembly alone, without a ring buffer (tests, fuzzing): feed one record. */
struct sy_reasm;
struct sy_reasm *sy_reasm_new(size_t max_pending, sy_capture_cb cb, void *arg);
void sy_reasm_free(struct sy_reasm *r);
int sy_reasm_feed(struct sy_reasm *r, const void *rec, size_t size, struct sy_capture_stats *per_mig);

#endif
