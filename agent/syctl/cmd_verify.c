// SPDX-License-Identifier: Apache-2.0
/* cmd_verify.c — verify (audits, --report of the drifted keys) and backfill (copy
 * legacy's keys to target, with a progress bar on a terminal). verify's exit status is
 * the audit's verdict, for scripts: 0 no drift; 1 drift found, the audit failed, or no
 * audit has run (a report of nothing must not read as a clean one). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/job.h"
#include "syctl/syctl.h"

/* The most keys a second syctl lets a job be asked to go. */
#define MAX_KEYS_PER_S 10000000ULL

/* A rate argument: a decimal in 1..max (strtoull alone reads "-1" as a huge number). */
static bool parse_rate(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	*out = strtoull(s, &end, 10);
	return !*end && s[0] != '-' && *out != 0 && *out <= max;
}

/* The one positional argument of verify and backfill, NAME: arg is the next one that
 * is not an option, or NULL once all are read (NAME must have come by then). */
static int name_arg(const char *cmd, char *arg, char **name)
{
	if (!arg)
		return *name ? 0 : usage_err(cmd, "expected NAME");
	if (arg[0] == '-' || *name)
		return usage_err(cmd, "unexpected argument \"%s\"", arg);
	*name = arg;
	return 0;
}

/* A job not ended yet: running, or (fleet mode) asked of the leader and not started. */
static bool busy(const char *state)
{
	int s = sy_job_state_parse(state);

	return s == SY_JOB_RUNNING || s == SY_JOB_REQUESTED;
}

/* The exit status an audit's result gives, with why on stderr when it is not 0. */
static int audit_verdict(const Switchyard__V1__AuditStatus *a)
{
	uint64_t drift = a->missing + a->extra + a->type + a->value + a->ttl;

	if (strcmp(a->state, "idle") == 0) {
		fprintf(stderr, "syctl: %s: no audit has run yet; start one with `syctl verify %s`\n",
			a->migration, a->migration);
		return EX_REFUSED;
	}
	if (strcmp(a->state, "failed") == 0) {
		fprintf(stderr, "syctl: %s: the audit failed: %s\n", a->migration,
			a->error && a->error[0] ? a->error : "no reason given");
		return EX_REFUSED;
	}
	if (drift) {
		/* repaired or not, drift was found: a second audit says whether it is gone */
		fprintf(stderr, "syctl: %s: drift found in %llu key(s)%s%s%s\n", a->migration,
			(unsigned long long)drift,
			a->repaired ? " (sent to repair; audit again to confirm)" : "; `syctl verify ",
			a->repaired ? "" : a->migration, a->repaired ? "" : " --report` lists them");
		return EX_REFUSED;
	}
	return EX_OK;
}

/* A job followed by polling its status: whether to go on while it runs, and how often
 * it was shown. */
struct follow {
	bool follow, tty;
	unsigned polls;
};

/* Starts a job with start_method (NULL: it runs already), then asks status_method until
 * polled() says it is done, period_ms apart; *resp is the last status. */
static int follow_job(const char *start_method, const ProtobufCMessage *start, const char *status_method,
		      const ProtobufCMessage *get, const ProtobufCMessageDescriptor *rd, unsigned period_ms,
		      bool (*polled)(const ProtobufCMessage *status, struct follow *pl), struct follow *pl,
		      ProtobufCMessage **resp)
{
	int rc;

	if (start_method) {
		if ((rc = call(start_method, start, rd, resp)))
			return rc;
		protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
	}
	for (;;) {
		if ((rc = call(status_method, get, rd, resp)))
			return rc;
		if (polled(*resp, pl))
			return 0;
		protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
		usleep(period_ms * 1000);
	}
}

/* An audit's progress on stderr (a terminal's); true once it is not running. */
static bool audit_polled(const ProtobufCMessage *status, struct follow *pl)
{
	const Switchyard__V1__AuditStatus *a = (const void *)status;

	if (!pl->follow || !busy(a->state))
		return true;
	if (!json && isatty(STDERR_FILENO))
		fprintf(stderr, "\r%s: scanned %llu/%llu, eta %.0fs   ", a->migration,
			(unsigned long long)a->scanned, (unsigned long long)a->total, a->eta_s);
	return false;
}

/* A backfill's progress: a bar redrawn in place on a terminal; in a log, one plain line a
 * second. True once it is not running. */
static bool backfill_polled(const ProtobufCMessage *status, struct follow *pl)
{
	const Switchyard__V1__BackfillStatus *b = (const void *)status;

	if (!pl->follow || !busy(b->state))
		return true;
	if (!json && (pl->tty || pl->polls % 4 == 0))
		print_backfill(b, pl->tty);
	pl->polls++;
	return false;
}

int cmd_verify(int argc, char **argv)
{
	Switchyard__V1__StartAuditRequest start = SWITCHYARD__V1__START_AUDIT_REQUEST__INIT;
	Switchyard__V1__GetAuditRequest get = SWITCHYARD__V1__GET_AUDIT_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	bool report = false, no_wait = false;
	char *name = NULL; /* protobuf-c's INIT leaves strings "", not NULL */
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--repair") == 0) {
			start.repair = true;
		} else if (strcmp(argv[i], "--report") == 0) {
			report = true;
		} else if (strcmp(argv[i], "--no-wait") == 0) {
			no_wait = true;
		} else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
			unsigned long long v;

			if (!parse_rate(argv[++i], MAX_KEYS_PER_S, &v))
				return usage_err(
					"verify",
					"--rate: \"%s\" is not a number of keys per second (1..10000000)",
					argv[i]);
			start.keys_per_s = (uint32_t)v;
		} else if ((rc = name_arg("verify", argv[i], &name))) {
			return rc;
		}
	}
	if ((rc = name_arg("verify", NULL, &name)))
		return rc;
	start.migration = get.migration = name;
	get.report = report;
	if (!report) {
		/* a new audit, then its progress until it ends */
		struct follow pl = {.follow = !no_wait};

		if ((rc = follow_job("/switchyard.v1.Verify/StartAudit", &start.base,
				     "/switchyard.v1.Verify/GetAudit", &get.base,
				     &switchyard__v1__audit_status__descriptor, 200, audit_polled, &pl,
				     &resp)))
			return rc;
		if (!json && isatty(STDERR_FILENO))
			fprintf(stderr, "\n");
	} else if ((rc = call("/switchyard.v1.Verify/GetAudit", &get.base,
			      &switchyard__v1__audit_status__descriptor, &resp))) {
		return rc;
	}
	rc = audit_verdict((void *)resp);
	if (json)
		print_json(resp);
	else if (rc == EX_OK || strcmp(((Switchyard__V1__AuditStatus *)resp)->state, "idle") != 0)
		print_audit((void *)resp);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int cmd_backfill(int argc, char **argv)
{
	Switchyard__V1__StartBackfillRequest start = SWITCHYARD__V1__START_BACKFILL_REQUEST__INIT;
	Switchyard__V1__GetBackfillRequest get = SWITCHYARD__V1__GET_BACKFILL_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	bool status = false;
	struct follow pl = {.tty = isatty(STDOUT_FILENO)};
	char *name = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			pl.follow = true;
		} else if (strcmp(argv[i], "--status") == 0) {
			status = true;
		} else if ((strcmp(argv[i], "--rate") == 0 || strcmp(argv[i], "--bytes-rate") == 0) &&
			   i + 1 < argc) {
			bool keys = strcmp(argv[i], "--rate") == 0;
			unsigned long long v;

			if (!parse_rate(argv[++i], keys ? MAX_KEYS_PER_S : ULLONG_MAX, &v))
				return usage_err("backfill", "%s: \"%s\" is not a positive rate", argv[i - 1],
						 argv[i]);
			if (keys)
				start.keys_per_s = (uint32_t)v;
			else
				start.bytes_per_s = v;
		} else if ((rc = name_arg("backfill", argv[i], &name))) {
			return rc;
		}
	}
	if ((rc = name_arg("backfill", NULL, &name)))
		return rc;
	start.migration = get.migration = name;
	if ((rc = follow_job(status ? NULL : "/switchyard.v1.Verify/StartBackfill", &start.base,
			     "/switchyard.v1.Verify/GetBackfill", &get.base,
			     &switchyard__v1__backfill_status__descriptor, 250, backfill_polled, &pl, &resp)))
		return rc;
	if (json) {
		print_json(resp);
	} else {
		if (pl.follow && pl.tty && pl.polls)
			printf("\n");
		print_backfill((void *)resp, false);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return EX_OK;
}
