// SPDX-License-Identifier: Apache-2.0
/* syctl.h — what syctl's files share: the exit codes scripts rely on, the global
 * options (server, timeout, -o json), one unary call with its failure printed, and the
 * printers of output.c. Each command lives in a cmd_*.c file; main.c has the table.
 * syctl reaches the daemon only through the API: it includes model/, rpc/ and core/. */
#ifndef SY_SYCTL_H
#define SY_SYCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/loop.h"
#include "rpc/rpc.h"
#include "switchyard/v1/control.pb-c.h"
#include "switchyard/v1/events.pb-c.h"
#include "switchyard/v1/telemetry.pb-c.h"
#include "switchyard/v1/verify.pb-c.h"

/* Exit codes (scripts rely on them; docs/json.md and the man page list them): 0 done;
 * 1 the server said no (its message on stderr) or what was checked is not so (verify
 * found drift, a waited-for cutover paused or rolled back); 2 usage error (bad arguments
 * or a bad spec file); 3 the server cannot be reached; 4 a wait ran out of time. */
#define EX_OK	       0
#define EX_REFUSED     1
#define EX_USAGE       2
#define EX_UNREACHABLE 3
#define EX_TIMEOUT     4

struct sy_tls;
extern const char *server;
/* TLS to a HOST:PORT server (--tls-ca, --tls-cert, --tls-key or $SYCTL_TLS_*), NULL
 * for h2c and for unix sockets. */
extern struct sy_tls *client_tls;
extern uint64_t timeout_ms;
extern int json;
/* Appended to a FAILED_PRECONDITION refusal's line: the command's way past it. */
extern const char *refusal_hint;

/* "syctl: why (see syctl CMD --help)" on stderr; returns EX_USAGE. */
int usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A duration option, read as the daemon reads them (core/duration.h): 0 and *ms;
 * EX_USAGE after saying that a number needs a unit ("--timeout 5" is refused: seconds
 * or milliseconds?); -EINVAL for the caller to say its own range. */
int duration_arg(const char *cmd, const char *opt, const char *s, uint64_t *ms);
/* One call; prints the failure and returns the exit code, or 0 with *resp. */
int call(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
	 ProtobufCMessage **resp);
/* The same without a word on failure: for optional parts of a view. */
int call_quiet(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
	       ProtobufCMessage **resp);
/* One call, its answer printed as JSON (-o json) or by text(); returns the exit code. */
int call_show(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
	      void (*text)(const ProtobufCMessage *resp));
/* call_show for a command that takes no operand (`syctl list`, `syctl nodes`). */
int call_show_bare(const char *cmd, int argc, char **argv, const char *method, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *rd, void (*text)(const ProtobufCMessage *resp));

/* output.c */
void print_json(const ProtobufCMessage *m);
const char *ago(uint64_t unix_ms, char *buf, size_t n);
/* us as "-", "850us", "1.2ms" or "3.04s" into buf; returns buf. */
const char *fmt_us(uint64_t us, char *buf, size_t n);
void fmt_ms(uint64_t ms, char *buf, size_t n);
void print_migration(const Switchyard__V1__Migration *m);
void print_scope(const Switchyard__V1__Migration *m, const char *lead);
void print_cutover(const Switchyard__V1__Migration *m);
void fmt_gate(const char *gate, double v, char *buf, size_t n);
void print_plan_line(const Switchyard__V1__Migration *m);
void print_sides(const Switchyard__V1__Migration *m);
void print_snapshot(const Switchyard__V1__Snapshot *s, int tty);
void print_event_header(void);
void print_event(const Switchyard__V1__Event *e);
void print_audit(const Switchyard__V1__AuditStatus *a);
void print_backfill(const Switchyard__V1__BackfillStatus *b, bool bar);
/* A call answered by one Migration, printed (table or JSON). */
int one_migration(const char *method, const ProtobufCMessage *req);

/* cmd_wait.c: the Cutover call, then its progress until the plan settles; the exit
 * code (0 completed or baked for promote, 1 paused or rolled back, 4 past limit_ms,
 * 0 = no limit). */
int cutover_wait(const Switchyard__V1__CutoverRequest *action, uint64_t limit_ms);

/* The commands: argv[0] is the command's name. */
int cmd_status(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_nodes(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_cutover(int argc, char **argv);
int cmd_pin(int argc, char **argv);
int cmd_unpin(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_backfill(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_diff(int argc, char **argv);

/* cmd_diff.c: previews, and who set what */
int apply_dry_run(const char *file);
void print_ratio_owner(const Switchyard__V1__Migration *m);
void print_pins_owned(const Switchyard__V1__Migration *m);
const char *event_who(const Switchyard__V1__Event *e, char *buf, size_t n);

#endif
