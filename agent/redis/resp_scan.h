// SPDX-License-Identifier: Apache-2.0
/* resp_scan.h — the host driver of the RESP request machine (include/switchyard/
 * resp.h): feeds a byte stream in any chunking, the way the kernel's egress program
 * does (skips, header fast paths, bytes), and reports each command with its class
 * and first key from the one command table, with where it starts and where its
 * arguments after the name begin. Tests and fuzzers use it to prove the kernel's
 * parser on the host; the agent uses it to split a batch record (SY_EVF_BATCH,
 * kernel/capture.c) into its commands with the same machine the kernel ran, so both
 * ends agree on where each command and its body start. */
#ifndef SY_RESP_SCAN_H
#define SY_RESP_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "switchyard/abi.h"

struct sy_resp_cmd {
	char name[SY_CMD_NAME_MAX + 1]; /* upper case; at most SY_CMD_NAME_MAX bytes kept */
	size_t name_len;
	bool name_truncated;
	enum sy_class class; /* unknown names are SY_CLASS_OTHER */
	uint8_t first_key;   /* argv index of the first key as the kernel sees it, 0 = none */
	uint16_t cmd_flags;  /* SY_CMDF_* of the table's entry */
	uint32_t argc;	     /* 0 for inline commands */
	bool is_inline;
	bool has_key;	    /* the command's first key was read */
	const uint8_t *key; /* valid during the callback */
	size_t key_len;
	bool key_truncated; /* the key is longer than SY_KEY_MAX */
	uint64_t bytes;	    /* the command's length on the wire */
	uint64_t start;	    /* offset in the stream of its first byte */
	uint64_t args_at;   /* offset just past the name's argument ("\r\n" included): argv[1]'s '$',
			     * or the command's end when argc is 1; 0 for inline commands; not
			     * kept with names_only (a fast step runs on past the name) */
};

typedef void (*sy_resp_cmd_cb)(const struct sy_resp_cmd *c, void *arg);

struct sy_resp_scan {
	struct sy_resp r;
	bool fast;	 /* use the header fast paths, as the kernel does */
	bool names_only; /* as the kernel for a migration with no prefix rules and no
			  * sampling (captured or not): first keys are not read, and a
			  * short command may be taken in one fast step */
	bool no_table;	 /* names are not looked up: no class, flags or key, only where
			  * commands and their arguments are (the kernel reads no key of a
			  * write either when a migration has no prefix rules) */
	uint64_t pos;	 /* bytes fed so far */
	uint64_t cmd_start;
	uint64_t name_end; /* where the current command's name argument ended */
	uint64_t commands;
	uint64_t unparsed;   /* protocol errors: the machine resynchronised */
	uint64_t byte_steps; /* sy_resp_byte calls (tests check that values are skipped) */
	uint64_t fast_steps; /* sy_resp_fast steps that consumed bytes */
	sy_resp_cmd_cb cb;
	void *arg;
};

void sy_resp_scan_init(struct sy_resp_scan *s, bool fast, sy_resp_cmd_cb cb, void *arg);
void sy_resp_scan_feed(struct sy_resp_scan *s, const uint8_t *p, size_t n);
/* The bytes fed so far end between commands (none is half read). */
bool sy_resp_scan_between(const struct sy_resp_scan *s);

#endif
