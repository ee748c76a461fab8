/* commands.h — the host view of the one command table (include/switchyard/commands.def):
 * lookup by name, the kernel's view of each command (loaded into the sy_cmds map), and
 * every key position of a command line (mirror key rewriting, repairs). */
#ifndef SY_COMMANDS_H
#define SY_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "switchyard/abi.h"

struct sy_command {
	const char *name; /* upper case */
	uint8_t class;	  /* enum sy_class */
	int first;	  /* see commands.def */
	int last;
	int step;
	uint16_t flags; /* SY_CMDF_* */
};

/* Case-insensitive; NULL for an unknown command. */
const struct sy_command *sy_command_find(const char *name, size_t len);
size_t sy_command_count(void);
const struct sy_command *sy_command_at(size_t i);
/* The kernel's view: class, first key index as the parser sees it, flags. */
int sy_command_kernel_info(const struct sy_command *c, struct sy_cmd_info *out);
/* Indexes of every key of argv (argv[0] is the name); at most `max`. Returns the
 * number of keys, or -EINVAL for an argument list the command cannot have. */
int sy_command_keys(const struct sy_command *c, int argc, const char *const *argv, const size_t *lens, int *idx,
		    int max);

#endif
