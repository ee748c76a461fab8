// SPDX-License-Identifier: Apache-2.0
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

#include "rpc/rpc_listen.h"
#include "rpc/tls.h"
#include "syctl/syctl.h"
#include <getopt.h>

#include "core/daemon.h"
#include "core/duration.h"

#define DEFAULT_SERVER "unix:///run/switchyard/switchyard.sock"

const char *server;
struct sy_tls *client_tls;
uint64_t timeout_ms = 5000;
int json;
const char *refusal_hint;

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
	int e = sy_rpc_call_sync_tls(server, client_tls, method, req, rd, timeout_ms, 0, resp, &st);

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
	fprintf(stderr, "syctl: %s", st.message[0] ? st.message : "request refused");
	if (refusal_hint && st.code == SY_GRPC_FAILED_PRECONDITION)
		fprintf(stderr, " (%s)", refusal_hint);
	fputc('\n', stderr);
	return EX_REFUSED;
}

/* The same without a word on failure: for optional parts of a view. */
int call_quiet(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
	       ProtobufCMessage **resp)
{
	struct sy_rpc_status st;
	int e = sy_rpc_call_sync_tls(server, client_tls, method, req, rd, timeout_ms, 0, resp, &st);

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

int call_show(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
	      void (*text)(const ProtobufCMessage *resp))
{
	ProtobufCMessage *resp;
	int rc = call(method, req, rd, &resp);

	if (rc)
		return rc;
	if (json)
		print_json(resp);
	else
		text(resp);
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}

int call_show_bare(const char *cmd, int argc, char **argv, const char *method, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *rd, void (*text)(const ProtobufCMessage *resp))
{
	if (argc > 1)
		return usage_err(cmd, "unexpected argument \"%s\"", argv[1]);
	return call_show(method, req, rd, text);
}

struct cmd {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);
	const char *more; /* options and examples, for `syctl help CMD` */
};

static int cmd_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{"status", "[NAME]",
	 "daemon version, attachment, endpoint health; with NAME: the plan's step, bake left, gates",
	 cmd_status, "examples:\n  syctl status\n  syctl -o json status users\n"},
	{"apply", "-f FILE [--dry-run]",
	 "create or update the migrations of a spec file; --dry-run: show what would change", cmd_apply,
	 "examples:\n  syctl apply -f /etc/switchyard/switchyard.yaml --dry-run\n"
	 "  syctl apply -f /etc/switchyard/switchyard.yaml\n"},
	{"diff", "-f FILE", "what a daemon reload of this config file would change, field by field", cmd_diff,
	 "examples:\n  syctl diff -f /etc/switchyard/switchyard.yaml\n"},
	{"get", "NAME",
	 "one migration: ratio, endpoints, pins, the plan, per side totals (requests, latency, "
	 "errors), mirror",
	 cmd_get,
	 "The counters are totals since the migration was created; `syctl watch NAME` shows rates.\n"
	 "examples:\n  syctl get users\n  syctl -o json get users | jq .spec.ratioBp\n"},
	{"list", "", "all migrations", cmd_list, NULL},
	{"nodes", "",
	 "the agents sharing this daemon's store (fleet mode): leader, alive, version, last seen, "
	 "each migration's ratio, requests and errors there",
	 cmd_nodes,
	 "Without --store on the daemon: the one agent, its own leader.\n"
	 "examples:\n  syctl nodes\n  syctl -o json nodes | jq '.nodes[] | select(.leader) | .name'\n"},
	{"delete", "NAME [--force]",
	 "delete a migration (refused while clients are on target, unless forced)", cmd_delete,
	 "examples:\n  syctl cutover users 0%\n  syctl delete users\n  syctl delete users --force\n"},
	{"cutover",
	 "NAME start|promote|pause|resume|rollback [--drain]|finish [--reason TEXT] [--wait "
	 "[--timeout D]] | NAME RATIO [--reason TEXT]",
	 "drive the plan; a RATIO (25%, 2500bp) set by hand pauses it", cmd_cutover,
	 "  --wait         after start, promote or resume: wait until the plan completes (exit 0),\n"
	 "                 pauses or rolls back (exit 1, the reason on stderr); a manual plan\n"
	 "                 also ends the wait when a step is baked and waits for promote (exit 0)\n"
	 "  --timeout D    give up waiting after D (10m, 1h): exit 4\n"
	 "examples:\n  syctl cutover users start --wait --timeout 30m\n"
	 "  syctl cutover users rollback --drain --reason 'p99 too high'\n  syctl cutover users 25%\n"},
	{"pin", "NAME --cgroup PATH --side target|legacy [--reason TEXT]",
	 "force one client (cgroup) to a side", cmd_pin,
	 "examples:\n  syctl pin users --cgroup /sys/fs/cgroup/app.slice/api.service --side target\n"},
	{"unpin", "NAME --cgroup PATH [--reason TEXT]", "remove a pin", cmd_unpin, NULL},
	{"watch", "[NAME] [--interval 1s] [--count N]",
	 "live per-side telemetry: requests/s, latency, errors, mirror, gates (-o json: one line per "
	 "snapshot)",
	 cmd_watch, "examples:\n  syctl watch users\n  syctl -o json watch --count 1 users\n"},
	{"events", "[NAME] [-f|--follow] [--since SEQ|DURATION] [--kind KIND,...] [-v]",
	 "state changes: the history, then new ones with -f (-o json: one line each)", cmd_events,
	 "  --since SEQ|D  after that event seq, or newer than a duration (10m, 1h)\n"
	 "  --kind K,...   only these kinds (repeatable; a kind ending in '.' is a prefix: cutover.)\n"
	 "  -v             also the per-evaluation cutover.evaluated events the table hides\n"
	 "examples:\n  syctl events users --since 10m\n  syctl events --kind migration.ratio_changed -f\n"},
	{"health", "[SERVICE]", "grpc.health.v1 check of the daemon (exit 0 when SERVING)", cmd_health, NULL},
	{"backfill", "NAME [--rate KEYS/S] [--bytes-rate B/S] [-f|--follow] | NAME --status",
	 "copy legacy's keys to target (resumable); --follow shows progress", cmd_backfill,
	 "A progress bar on a terminal, one plain line a second otherwise.\n"
	 "examples:\n  syctl backfill users --rate 5000 --follow\n  syctl backfill users --status\n"},
	{"verify", "NAME [--repair] [--rate N] [--no-wait] | NAME --report",
	 "audit both sides (missing, extra, type, value, ttl); --report lists the drifted keys", cmd_verify,
	 "exit status: 0 no drift; 1 drift found, the audit failed, or (--report) no audit has run\n"
	 "examples:\n  syctl verify users || syctl verify users --report\n"
	 "  syctl verify users --repair --rate 2000\n"},
	{"version", "", "syctl's version and the daemon's", cmd_version, NULL},
	{"help", "[COMMAND]", "this list, or one command's options and examples", cmd_help, NULL},
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: syctl [--server unix:///PATH|HOST:PORT] [--tls-ca FILE [--tls-cert FILE --tls-key "
		   "FILE]]\n"
		   "             [--timeout DURATION] [-o table|json] COMMAND [ARGS]\n\ncommands (syctl help "
		   "COMMAND: its arguments, options and examples):\n");
	for (size_t i = 0; i < N_CMDS; i++)
		fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f,
		"\noptions:\n"
		"  --server S       unix:///PATH or HOST:PORT (else $SYCTL_SERVER, else " DEFAULT_SERVER ")\n"
		"  --tls-ca FILE    TLS to a HOST:PORT server: the CA its certificate is checked against\n"
		"                   (its name or IP address, as written in --server); else $SYCTL_TLS_CA\n"
		"  --tls-cert FILE  a client certificate for mTLS, with --tls-key FILE (mode 0600);\n"
		"                   else $SYCTL_TLS_CERT and $SYCTL_TLS_KEY\n"
		"  --timeout D      each call's deadline, with a unit: 5s, 500ms (default 5s)\n"
		"  -o table|json    human tables, or JSON (docs/json.md: one shape per command)\n"
		"  -h, --help       this help; syctl help COMMAND or syctl COMMAND --help for one\n"
		"  --version        syctl's version (syctl version also asks the daemon)\n"
		"\nexit codes: 0 done, 1 refused by the server or a check failed (verify: drift), 2 usage "
		"error,\n3 server unreachable, 4 cutover --wait timed out\n");
}

static void cmd_usage(const struct cmd *c)
{
	printf("usage: syctl %s %s\n  %s\n", c->name, c->args, c->help);
	if (c->more)
		printf("\n%s", c->more);
}

/* Levenshtein distance, for "did you mean": commands are short. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[33];

	if (la > 32 || lb > 32)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static int unknown_cmd(const char *name)
{
	const struct cmd *best = NULL;
	size_t bd = 3; /* more than two edits away is no suggestion */

	for (size_t i = 0; i < N_CMDS; i++) {
		size_t d = distance(name, cmds[i].name);

		if (d < bd) {
			bd = d;
			best = &cmds[i];
		}
	}
	if (best)
		return usage_err(NULL, "unknown command \"%s\"; did you mean \"%s\"?", name, best->name);
	return usage_err(NULL, "unknown command \"%s\"", name);
}

static int cmd_help(int argc, char **argv)
{
	const struct cmd *c;

	if (argc == 1) {
		usage(stdout);
		return EX_OK;
	}
	if (argc > 2)
		return usage_err("help", "unexpected argument \"%s\"", argv[2]);
	if (!(c = find_cmd(argv[1])))
		return unknown_cmd(argv[1]);
	cmd_usage(c);
	return EX_OK;
}

/* TLS for a HOST:PORT server. Flags aimed at a unix socket are a mistake (2); the
 * environment's are ignored there (a shell may export them for every call). */
static int setup_tls(int tcp, int flag, const char *ca, const char *cert, const char *key)
{
	char why[600];

	if (!ca && !cert && !key)
		return 0;
	if (!tcp) {
		if (flag)
			return usage_err(NULL, "--tls-*: TLS is for a HOST:PORT --server, not a unix socket");
		return 0;
	}
	if (!!cert != !!key)
		return usage_err(NULL, "--tls-cert and --tls-key go together");
	if (sy_tls_new(SY_TLS_CLIENT, &(struct sy_tls_files){.cert = cert, .key = key, .ca = ca}, &client_tls,
		       why, sizeof(why)))
		return usage_err(NULL, "TLS: %s", why);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", required_argument, 0, 's'},
		{"timeout", required_argument, 0, 't'},
		{"output", required_argument, 0, 'o'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},
		{"tls-ca", required_argument, 0, 'A'},
		{"tls-cert", required_argument, 0, 'C'},
		{"tls-key", required_argument, 0, 'K'},
		{0, 0, 0, 0},
	};
	const char *tls_ca = getenv("SYCTL_TLS_CA"), *tls_cert = getenv("SYCTL_TLS_CERT"),
		   *tls_key = getenv("SYCTL_TLS_KEY");
	int c, tls_flag = 0;

	server = getenv("SYCTL_SERVER") ? getenv("SYCTL_SERVER") : DEFAULT_SERVER;
	opterr = 0;
	/* "+": stop at the command; its own options are parsed by the command. */
	while ((c = getopt_long(argc, argv, "+o:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			server = optarg;
			break;
		case 'A':
		case 'C':
		case 'K':
			*(c == 'A' ? &tls_ca : c == 'C' ? &tls_cert : &tls_key) = optarg;
			tls_flag = 1;
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
	/* A malformed address is the caller's mistake (2), not an unreachable server (3). */
	struct sy_rpc_addr addr;

	if (sy_rpc_addr_parse(server, &addr))
		return usage_err(NULL, "--server: \"%s\" is not unix:///PATH or HOST:PORT", server);
	if ((c = setup_tls(addr.ss.ss_family != AF_UNIX, tls_flag, tls_ca, tls_cert, tls_key)))
		return c;
	const struct cmd *cmd = find_cmd(argv[optind]);

	if (!cmd)
		return unknown_cmd(argv[optind]);
	/* Options may also follow the command: -o json and --help anywhere. */
	int n = 0;
	char **rest = calloc((size_t)(argc - optind + 1), sizeof(char *));

	if (!rest)
		return EX_REFUSED;
	for (int j = optind; j < argc; j++) {
		if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
			cmd_usage(cmd);
			free(rest);
			return EX_OK;
		}
		if (strcmp(argv[j], "-o") == 0 && j + 1 < argc) {
			if (strcmp(argv[j + 1], "json") != 0 && strcmp(argv[j + 1], "table") != 0) {
				free(rest);
				return usage_err(cmd->name, "-o: \"%s\" is not table or json", argv[j + 1]);
			}
			json = strcmp(argv[++j], "json") == 0;
			continue;
		}
		rest[n++] = argv[j];
	}
	int rc = cmd->run(n, rest);

	free(rest);
	return rc;
}
