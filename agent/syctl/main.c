/* main.c — syctl, the operator's CLI for switchyardd, over gRPC: global options, the
 * command table, one unary call. Human tables by default, `-o json` for one JSON
 * document on stdout; exit codes in syctl.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syctl/syctl.h"
#include <getopt.h>

#include "core/daemon.h"
#include "core/duration.h"

#define DEFAULT_SERVER "unix:///run/switchyard/switchyard.sock"

const char *server;
uint64_t timeout_ms = 5000;
int json;

int usage_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("syctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see syctl %s%s--help)\n", cmd ? cmd : "", cmd ? " " : "");
	return EX_USAGE;
}

int duration_arg(const char *cmd, const char *opt, const char *s, uint64_t *ms)
{
	int e = sy_duration_ms(s, ms);

	if (e == -EDOM)
		return usage_err(cmd, "%s: \"%s\" %s", opt, s, sy_duration_strerror(e));
	return e ? -EINVAL : 0;
}

/* One call; prints the failure and returns the exit code, or 0 with *resp. */
int call(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
	 ProtobufCMessage **resp)
{
	struct sy_rpc_status st;
	int e = sy_rpc_call_sync(server, method, req, rd, timeout_ms, 0, resp, &st);

	if (e) {
		fprintf(stderr, "syctl: %s: %s\n", method, strerror(-e));
		return EX_UNREACHABLE;
	}
	if (st.code == SY_GRPC_OK)
		return EX_OK;
	if (st.code == SY_GRPC_UNAVAILABLE && strncmp(st.message, "store ", 6) == 0) {
		/* the daemon answered: its fleet's store is what it cannot reach */
		fprintf(stderr, "syctl: %s\n", st.message);
		return EX_UNREACHABLE;
	}
	if (st.code == SY_GRPC_UNAVAILABLE ||
	    (st.code == SY_GRPC_DEADLINE_EXCEEDED && strstr(st.message, "while connecting"))) {
		fprintf(stderr, "syctl: cannot reach switchyardd at %s: %s\n", server, st.message);
		return EX_UNREACHABLE;
	}
	fprintf(stderr, "syctl: %s\n", st.message[0] ? st.message : "request refused");
	return EX_REFUSED;
}

/* The same without a word on failure: for optional parts of a view. */
int call_quiet(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
	       ProtobufCMessage **resp)
{
	struct sy_rpc_status st;
	int e = sy_rpc_call_sync(server, method, req, rd, timeout_ms, 0, resp, &st);

	if (e)
		return e;
	if (st.code != SY_GRPC_OK) {
		if (*resp)
			protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
		return -EIO;
	}
	return 0;
}

struct cmd {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);
};

static const struct cmd cmds[] = {
	{"status", "[NAME]",
	 "daemon version, attachment, endpoint health; with NAME: the plan's step, bake left, gates",
	 cmd_status},
	{"apply", "-f FILE [--dry-run]",
	 "create or update the migrations of a spec file; --dry-run: show what would change", cmd_apply},
	{"diff", "-f FILE", "what a daemon reload of this config file would change, field by field",
	 cmd_diff},
	{"get", "NAME", "one migration: ratio, endpoints, pins, steering decisions", cmd_get},
	{"list", "", "all migrations", cmd_list},
	{"delete", "NAME [--force]",
	 "delete a migration (refused while clients are on target, unless forced)", cmd_delete},
	{"cutover",
	 "NAME start|promote|pause|resume|rollback [--drain]|finish [--reason TEXT] | NAME RATIO [--reason "
	 "TEXT]",
	 "drive the plan; a RATIO (25%, 2500bp) set by hand pauses it", cmd_cutover},
	{"pin", "NAME --cgroup PATH --side target|legacy [--reason TEXT]",
	 "force one client (cgroup) to a side", cmd_pin},
	{"unpin", "NAME --cgroup PATH [--reason TEXT]", "remove a pin", cmd_unpin},
	{"watch", "[NAME] [--interval 1s] [--count N]",
	 "live per-side telemetry (-o json: one line per snapshot)", cmd_watch},
	{"events", "[NAME] [-f|--follow] [--since SEQ]",
	 "state changes: the history, then new ones with -f (-o json: one line each)", cmd_events},
	{"health", "[SERVICE]", "grpc.health.v1 check of the daemon (exit 0 when SERVING)", cmd_health},
	{"backfill", "NAME [--rate KEYS/S] [--bytes-rate B/S] [-f|--follow] | NAME --status",
	 "copy legacy's keys to target (resumable); --follow shows a progress bar", cmd_backfill},
	{"verify", "NAME [--repair] [--rate N] [--no-wait] | NAME --report",
	 "audit both sides (missing, extra, type, value, ttl); --report lists the drifted keys", cmd_verify},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: syctl [--server unix:///PATH|HOST:PORT] [--timeout DURATION] [-o table|json] COMMAND "
		"[ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %-40s %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
	fprintf(f, "\nexit codes: 0 done, 1 refused by the server, 2 usage error, 3 server unreachable\n"
		   "server: --server, else $SYCTL_SERVER, else " DEFAULT_SERVER "\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", required_argument, 0, 's'}, {"timeout", required_argument, 0, 't'},
		{"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
	};
	int c;

	server = getenv("SYCTL_SERVER") ? getenv("SYCTL_SERVER") : DEFAULT_SERVER;
	opterr = 0;
	/* "+": stop at the command; its own options are parsed by the command. */
	while ((c = getopt_long(argc, argv, "+o:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			server = optarg;
			break;
		case 't': {
			uint64_t ms;
			int e = duration_arg(NULL, "--timeout", optarg, &ms);

			if (e == EX_USAGE)
				return e;
			if (e || ms == 0)
				return usage_err(NULL, "--timeout: \"%s\" is not a duration (5s, 500ms)",
						 optarg);
			timeout_ms = ms;
			break;
		}
		case 'o':
			if (strcmp(optarg, "json") == 0)
				json = 1;
			else if (strcmp(optarg, "table") == 0)
				json = 0;
			else
				return usage_err(NULL, "-o: \"%s\" is not table or json", optarg);
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("syctl %s\n", SY_VERSION);
			return EX_OK;
		default:
			return usage_err(NULL, "%s: unknown option or missing value", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, argv[optind]) != 0)
			continue;
		/* Options may also follow the command: -o json and --help anywhere. */
		int n = 0;
		char **rest = calloc((size_t)(argc - optind + 1), sizeof(char *));

		if (!rest)
			return EX_REFUSED;
		for (int j = optind; j < argc; j++) {
			if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
				printf("usage: syctl %s %s\n  %s\n", cmds[i].name, cmds[i].args,
				       cmds[i].help);
				free(rest);
				return EX_OK;
			}
			if (strcmp(argv[j], "-o") == 0 && j + 1 < argc) {
				if (strcmp(argv[j + 1], "json") != 0 && strcmp(argv[j + 1], "table") != 0) {
					free(rest);
					return usage_err(cmds[i].name, "-o: \"%s\" is not table or json",
							 argv[j + 1]);
				}
				json = strcmp(argv[++j], "json") == 0;
				continue;
			}
			rest[n++] = argv[j];
		}
		int rc = cmds[i].run(n, rest);

		free(rest);
		return rc;
	}
	return usage_err(NULL, "unknown command \"%s\"", argv[optind]);
}
