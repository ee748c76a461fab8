// SPDX-License-Identifier: Apache-2.0
/* cmd_wait.c — `syctl cutover NAME start|promote|resume --wait`: the action, then the
 * plan's progress until it settles, for scripts that must know how it ended. Exit 0
 * when the plan completed (or a manual plan's step is baked and waits for promote),
 * 1 when it paused or rolled back (the reason on stderr), 4 past --timeout. Progress:
 * one line redrawn on a terminal, a plain line per change otherwise. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syctl/syctl.h"

#include "model/spec.h"

#define POLL_MS 250

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* How the wait ends at this status: -1 not yet, else the exit code. */
static int settled(const Switchyard__V1__CutoverStatus *c, const char *name)
{
	switch (c->phase) {
	case SWITCHYARD__V1__CUTOVER_PHASE__PHASE_COMPLETED:
	case SWITCHYARD__V1__CUTOVER_PHASE__PHASE_FINISHED:
		return EX_OK;
	case SWITCHYARD__V1__CUTOVER_PHASE__PHASE_PAUSED:
	case SWITCHYARD__V1__CUTOVER_PHASE__PHASE_ROLLED_BACK:
		fprintf(stderr, "syctl: %s: %s%s%s\n", name, c->phase_name, c->reason[0] ? ": " : "",
			c->reason);
		return EX_REFUSED;
	case SWITCHYARD__V1__CUTOVER_PHASE__PHASE_NONE:
		fprintf(stderr, "syctl: %s: has no plan to wait for\n", name);
		return EX_REFUSED;
	case SWITCHYARD__V1__CUTOVER_PHASE__PHASE_CUTTING_OVER:
		return c->ready ? EX_OK : -1;
	default:
		return -1;
	}
}

static void progress(const Switchyard__V1__CutoverStatus *c, const char *name, bool tty, char *last, size_t n)
{
	char line[160], ratio[SY_RATIO_STRLEN], bake[32] = "";

	if (c->phase == SWITCHYARD__V1__CUTOVER_PHASE__PHASE_CUTTING_OVER) {
		if (tty) {
			fmt_ms(c->bake_left_ms, bake, sizeof(bake));
			snprintf(line, sizeof(line), "%s: %s, step %u of %u (%s), bake %s left", name,
				 c->phase_name, c->step, c->steps,
				 sy_ratio_format(c->step_ratio_bp, ratio, sizeof(ratio)), bake);
		} else {
			snprintf(line, sizeof(line), "%s: %s, step %u of %u (%s)", name, c->phase_name,
				 c->step, c->steps, sy_ratio_format(c->step_ratio_bp, ratio, sizeof(ratio)));
		}
	} else {
		snprintf(line, sizeof(line), "%s: %s", name, c->phase_name);
	}
	if (tty) {
		fprintf(stderr, "\r%-78s", line);
	} else if (strcmp(line, last) != 0) {
		fprintf(stderr, "%s\n", line);
		snprintf(last, n, "%s", line);
	}
}

int cutover_wait(const Switchyard__V1__CutoverRequest *action, uint64_t limit_ms)
{
	Switchyard__V1__GetMigrationRequest get = SWITCHYARD__V1__GET_MIGRATION_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	bool tty = !json && isatty(STDERR_FILENO);
	uint64_t until = limit_ms ? now_ms() + limit_ms : 0;
	char last[160] = "";
	int rc;

	if ((rc = call("/switchyard.v1.Control/Cutover", &action->base,
		       &switchyard__v1__migration__descriptor, &resp)))
		return rc;
	get.name = action->name;
	for (;;) {
		const Switchyard__V1__Migration *m = (const void *)resp;

		if (m->cutover && (rc = settled(m->cutover, action->name)) >= 0)
			break;
		if (m->cutover && !json)
			progress(m->cutover, action->name, tty, last, sizeof(last));
		if (until && now_ms() >= until) {
			if (tty)
				fputc('\n', stderr);
			fprintf(stderr, "syctl: %s: still %s after --timeout\n", action->name,
				m->cutover ? m->cutover->phase_name : "waiting");
			protobuf_c_message_free_unpacked(resp, NULL);
			return EX_TIMEOUT;
		}
		protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
		usleep(POLL_MS * 1000);
		if ((rc = call("/switchyard.v1.Control/GetMigration", &get.base,
			       &switchyard__v1__migration__descriptor, &resp)))
			return rc;
	}
	if (tty)
		fputc('\n', stderr);
	if (json) {
		print_json(resp);
	} else {
		const Switchyard__V1__CutoverStatus *c = ((Switchyard__V1__Migration *)resp)->cutover;

		if (rc == EX_OK && c->phase == SWITCHYARD__V1__CUTOVER_PHASE__PHASE_CUTTING_OVER)
			printf("%s: step %u of %u baked, waiting for `syctl cutover %s promote`\n",
			       action->name, c->step, c->steps, action->name);
		else if (rc == EX_OK)
			printf("%s: %s\n", action->name, c->phase_name);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
