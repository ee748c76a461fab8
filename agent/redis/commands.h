// SPDX-License-Identifier: Apache-2.0
/* commands.h — the host view of the one command table (include/switchyard/commands.def):
 * lookup by name, the kernel's view of each command (loaded into the sy_cmds map), and
 * every key position of a command line (mirror key rewriting, repairs). */
#ifndef SY_COMMANDS_H
#define SY_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "switchyard/abi.h"

struct sy_command {
	const char *name;    /* upper case, at most SY_CMD_NAME_MAX bytes */
	enum sy_class class; /* READ, WRITE or OTHER */
	int first;	     /* see commands.def: first key, or the numkeys argument */
	int last;	     /* last key; negative counts from the end */
	int step;	     /* distance between keys */
	uint16_t flags;	     /* SY_CMDF_* */
};

/* Case-insensitive, exact length (a NUL in the name matches nothing); NULL for an
 * unknown command. */
const struct sy_command *sy_command_find(const char *name, size_t len);
/* The table in name order, for the loader that fills the kernel's map. */
size_t sy_command_count(void);
const struct sy_command *sy_command_at(size_t i);
/* The kernel's view: class, first key index as the parser sees it (NUMKEYS: the
 * argument after numkeys, or 1 with DEST1; STREAMS: 0, none), flags. 0 or -EINVAL. */
int sy_command_kernel_info(const struct sy_command *c, struct sy_cmd_info *out);
/* Indexes of every key of argv (argv[0] is the name) in idx[0..max). Returns the
 * number of keys, -EINVAL for an argument list the command cannot have (too short,
 * bad numkeys, keys and values not in pairs, no STREAMS ids), -E2BIG past `max`. */
int sy_command_keys(const struct sy_command *c, int argc, const char *const *argv, const size_t *lens,
		    int *idx, int max);

#endif
