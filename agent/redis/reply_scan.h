// SPDX-License-Identifier: Apache-2.0
/* reply_scan.h — the host driver of the RESP reply machine (include/switchyard/
 * resp_reply.h): feeds a reply stream in any chunking, the way the kernel's ingress
 * program does (skipped bulk stretches, the line and header fast path, bytes), and counts replies and errors
 * by class as the kernel does. Used only by tests and fuzzers, to prove the kernel's parser on the host. */
#ifndef SY_REPLY_SCAN_H
#define SY_REPLY_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "switchyard/abi.h"

struct sy_reply_info {
	uint8_t type;	/* first byte of the reply */
	bool is_error;	/* '-' or RESP3 '!' */
	int err_class;	/* enum sy_reply_err, when is_error */
	uint64_t bytes; /* the reply's length on the wire */
};

typedef void (*sy_reply_cb)(const struct sy_reply_info *ri, void *arg);

struct sy_reply_scan {
	struct sy_reply r;
	bool fast;    /* use the fast path, as the kernel does */
	uint64_t pos; /* bytes fed so far */
	uint64_t reply_start;
	uint64_t replies; /* top-level replies begun, pushes excluded (as the kernel counts) */
	uint64_t pushes;  /* RESP3 out-of-band pushes begun */
	uint64_t errors;  /* replies that are errors, counted at their end */
	uint64_t err_class[8];
	uint64_t unparsed;   /* protocol errors: the machine resynchronised */
	uint64_t byte_steps; /* sy_reply_byte calls (tests check that bulks are skipped) */
	sy_reply_cb cb;
	void *arg;
};

void sy_reply_scan_init(struct sy_reply_scan *s, bool fast, sy_reply_cb cb, void *arg);
void sy_reply_scan_feed(struct sy_reply_scan *s, const uint8_t *p, size_t n);

#endif
