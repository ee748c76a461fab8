// SPDX-License-Identifier: Apache-2.0
/* http_req.h — the JSON bodies the HTTP door accepts, parsed into what the gRPC
 * request carries (pure: no I/O, no state; fuzzed by tests/fuzz/fuzz_http_req.c).
 *
 * POST /api/v1/migrations/NAME/cutover takes exactly one of
 *   {"action": "start|promote|pause|resume|rollback|finish", "drain": bool, "reason": "…"}
 *   {"ratio": "25%"}   (the syntax of sy_ratio_parse)
 * Anything else — not JSON, not an object, an unknown field, a wrong type, both or
 * neither of action and ratio — is refused with a message naming the field. */
#ifndef SY_HTTP_REQ_H
#define SY_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

#define SY_HTTP_MAX_BODY   (64u << 10) /* larger bodies are 413 before they are parsed */
#define SY_HTTP_REASON_MAX 256

struct sy_http_cutover {
	bool has_action; /* else a ratio */
	int action;	 /* SWITCHYARD__V1__CUTOVER_ACTION__ACTION_* */
	bool drain;
	char reason[SY_HTTP_REASON_MAX];
	uint32_t ratio_bp;
};

/* 0, or -EINVAL with a one-line reason in err. */
int sy_http_cutover_parse(const char *body, size_t len, struct sy_http_cutover *out, char *err, size_t n);
/* The gRPC status as HTTP: INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED
 * 403, NOT_FOUND 404, FAILED_PRECONDITION/ALREADY_EXISTS/ABORTED 409, RESOURCE_EXHAUSTED
 * 429, UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, the rest 500. */
unsigned sy_http_status_of(enum sy_grpc_code c);
/* "NOT_FOUND": the name an error body carries. */
const char *sy_grpc_code_name(enum sy_grpc_code c);
/* "promote" for an action value; "ratio" for none. */
const char *sy_http_action_name(int action);

#endif
