// SPDX-License-Identifier: Apache-2.0
/* resp_argv.h — splits one captured command into its arguments (argv, lens) pointing
 * into the captured bytes, for replaying it and finding its keys.
 *
 * Not resp.h's machine: that one is a streaming byte machine built for the kernel,
 * which keeps only a command's name and first key and skips the values; here the
 * input is one command the kernel already cut out (its name apart, its body holding
 * the arguments from argv[1], or the rest of an inline line) and every argument is
 * wanted, in place, without copies. */
#ifndef SY_RESP_ARGV_H
#define SY_RESP_ARGV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SY_ARGV_INLINE 64	 /* arguments held without an allocation */
#define SY_ARGV_MAX    (1 << 20) /* more is refused */

/* A command's arguments. It holds pointers into itself: parse into it in place, do
 * not copy it while it is in use, and free it with sy_argv_free. */
struct sy_argv {
	int argc;
	const char **argv;
	size_t *lens;
	const char *argv_s[SY_ARGV_INLINE];
	size_t lens_s[SY_ARGV_INLINE];
};

/* name (argv[0]) + body → argv. A RESP body holds `argc` - 1 bulk strings; an inline
 * body is split at blanks up to the end of its line. -EINVAL when the body is not
 * what it should be (a truncated one included: then a->argc says how many arguments
 * were complete), -ENOMEM. a is to be freed whatever the result. */
int sy_argv_parse(struct sy_argv *a, const char *name, size_t name_len, const uint8_t *body, size_t len,
		  uint32_t argc, bool is_inline);
/* As many leading arguments as a truncated body holds (for its keys): 0 when at least
 * one argument after the name was complete, else -EINVAL (a freed). */
int sy_argv_parse_prefix(struct sy_argv *a, const char *name, size_t name_len, const uint8_t *body,
			 size_t len, uint32_t argc, bool is_inline);
void sy_argv_free(struct sy_argv *a);

struct sy_migration_spec;

/* argv with every key (argv[keys[i]]) renamed for the other side by the migration's
 * rewrite (model/keymap.h); `store` holds the new names. Free argv, lens and store. */
int sy_argv_rewrite(const struct sy_migration_spec *spec, int from_side, const struct sy_argv *a,
		    const int *keys, int nkeys, const char ***argv_out, size_t **lens_out, char **store);
/* The command sets a relative expiry (EXPIRE 10, SET … EX 10): replayed late, it would
 * expire late, so a late replay copies the key instead (the copy carries the PTTL). */
bool sy_argv_relative_ttl(const struct sy_argv *a);

#endif
