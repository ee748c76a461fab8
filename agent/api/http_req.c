// SPDX-License-Identifier: Apache-2.0
/* http_req.c — see http_req.h. json-c parses (strict mode, whole buffer); the walk
 * below accepts only the fields and types of the contract. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "api/http_req.h"
#include "model/spec.h"
#include "switchyard/v1/cutover.pb-c.h"

static const char *const actions[] = {
	[SWITCHYARD__V1__CUTOVER_ACTION__ACTION_START] = "start",
	[SWITCHYARD__V1__CUTOVER_ACTION__ACTION_PROMOTE] = "promote",
	[SWITCHYARD__V1__CUTOVER_ACTION__ACTION_PAUSE] = "pause",
	[SWITCHYARD__V1__CUTOVER_ACTION__ACTION_RESUME] = "resume",
	[SWITCHYARD__V1__CUTOVER_ACTION__ACTION_ROLLBACK] = "rollback",
	[SWITCHYARD__V1__CUTOVER_ACTION__ACTION_FINISH] = "finish",
};

const char *sy_http_action_name(int action)
{
	if (action < 0 || (size_t)action >= sizeof(actions) / sizeof(actions[0]))
		return "ratio";
	return actions[action];
}

static int bad(char *err, size_t n, const char *fmt, const char *what)
{
	snprintf(err, n, fmt, what);
	return -EINVAL;
}

/* json-c keeps strings with NULs intact; a C string would silently be cut there. */
static const char *string_of(struct json_object *v)
{
	const char *s = json_object_get_string(v);

	return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

static int walk(struct json_object *root, struct sy_http_cutover *out, char *err, size_t n)
{
	bool has_ratio = false, has_drain = false, has_reason = false;

	if (!json_object_is_type(root, json_type_object))
		return bad(err, n, "%s", "body: a JSON object is required");
	json_object_object_foreach(root, key, v)
	{
		const char *s;

		if (strcmp(key, "action") == 0) {
			size_t i;

			if (!json_object_is_type(v, json_type_string) || !(s = string_of(v)))
				return bad(err, n, "%s", "action: a string is required");
			for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
				if (strcmp(s, actions[i]) == 0)
					break;
			if (i == sizeof(actions) / sizeof(actions[0]))
				return bad(err, n,
					   "action: \"%.64s\" is not one of start, promote, pause, resume, "
					   "rollback, finish",
					   s);
			out->has_action = true;
			out->action = (int)i;
		} else if (strcmp(key, "drain") == 0) {
			if (!json_object_is_type(v, json_type_boolean))
				return bad(err, n, "%s", "drain: true or false is required");
			out->drain = json_object_get_boolean(v);
			has_drain = true;
		} else if (strcmp(key, "reason") == 0) {
			if (!json_object_is_type(v, json_type_string) || !(s = string_of(v)))
				return bad(err, n, "%s", "reason: a string without NUL bytes is required");
			if (strlen(s) >= sizeof(out->reason))
				return bad(err, n, "reason: longer than %s characters", "255");
			snprintf(out->reason, sizeof(out->reason), "%s", s);
			has_reason = true;
		} else if (strcmp(key, "ratio") == 0) {
			if (!json_object_is_type(v, json_type_string) || !(s = string_of(v)))
				return bad(err, n, "%s", "ratio: a string like \"25%\" is required");
			if (sy_ratio_parse(s, &out->ratio_bp))
				return bad(err, n, "ratio: \"%.64s\" is not a ratio (25%, 12.5%, 2500bp)", s);
			has_ratio = true;
		} else {
			return bad(err, n, "%.64s: unknown field (action, drain, reason, ratio)", key);
		}
	}
	if (out->has_action == has_ratio)
		return bad(err, n, "%s", "body: exactly one of action and ratio is required");
	if (has_ratio && (has_drain || has_reason))
		return bad(err, n, "%s", "drain, reason: only with an action");
	return 0;
}

int sy_http_cutover_parse(const char *body, size_t len, struct sy_http_cutover *out, char *err, size_t n)
{
	struct json_tokener *tok;
	struct json_object *root;
	size_t end;
	int e;

	memset(out, 0, sizeof(*out));
	out->action = -1;
	if (len > SY_HTTP_MAX_BODY)
		return bad(err, n, "%s", "body: too large");
	tok = json_tokener_new();
	if (!tok)
		return bad(err, n, "%s", "body: out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, body, (int)len);
	/* the whole body must be the one value: trailing bytes but white space are an error */
	end = root ? json_tokener_get_parse_end(tok) : 0;
	while (end < len && (body[end] == ' ' || body[end] == '\n' || body[end] == '\r' || body[end] == '\t'))
		end++;
	if (!root || json_tokener_get_error(tok) != json_tokener_success || end != len) {
		enum json_tokener_error je = json_tokener_get_error(tok);

		/* continue: the bytes end inside a value (or in a bare literal, which needs
		 * a terminator; no bare literal is a valid body anyway) */
		snprintf(err, n, "body: not valid JSON (%s)",
			 root			       ? "trailing bytes after the object"
			 : je == json_tokener_continue ? "incomplete; a JSON object is required"
						       : json_tokener_error_desc(je));
		json_object_put(root);
		json_tokener_free(tok);
		return -EINVAL;
	}
	json_tokener_free(tok);
	e = walk(root, out, err, n);
	json_object_put(root);
	return e;
}

const char *sy_grpc_code_name(enum sy_grpc_code c)
{
	static const char *const names[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};

	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "UNKNOWN";
}

unsigned sy_http_status_of(enum sy_grpc_code c)
{
	switch (c) {
	case SY_GRPC_OK:
		return 200;
	case SY_GRPC_INVALID_ARGUMENT:
	case SY_GRPC_OUT_OF_RANGE:
		return 400;
	case SY_GRPC_UNAUTHENTICATED:
		return 401;
	case SY_GRPC_PERMISSION_DENIED:
		return 403;
	case SY_GRPC_NOT_FOUND:
		return 404;
	case SY_GRPC_ALREADY_EXISTS:
	case SY_GRPC_ABORTED:
	case SY_GRPC_FAILED_PRECONDITION:
		return 409;
	case SY_GRPC_RESOURCE_EXHAUSTED:
		return 429;
	case SY_GRPC_CANCELLED:
		return 499;
	case SY_GRPC_UNIMPLEMENTED:
		return 501;
	case SY_GRPC_UNAVAILABLE:
		return 503;
	case SY_GRPC_DEADLINE_EXCEEDED:
		return 504;
	default:
		return 500;
	}
}
