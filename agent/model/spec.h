// SPDX-License-Identifier: Apache-2.0
/* spec.h — the migration spec: the one model of what an operator asks for, whether it
 * comes from the YAML file (--config, SIGHUP) or from the Control API, and the one
 * validator both go through. spec.c holds the small pieces (names, ratios, copies),
 * spec_validate.c the validator, spec_yaml.c the file reader (on model/yaml.h);
 * the key mapper of the rewrite rules is keymap.h.
 *
 * File format (YAML, parsed with libyaml):
 *   migrations:
 *     - name: users
 *       legacy: ["127.0.0.1:7000"]
 *       target: ["127.0.0.1:7001"]
 *       client: cgroup          # or: connection
 *       ratio: 0%               # also "2500bp", "12.5%"
 *       pins: [{cgroup: /sys/fs/cgroup/unified/app-a, side: target}]
 *       prefixes: ["user:", "cart:"]  # counted per key prefix (the kernel's per-rule
 *                               # counters); never limits what is migrated
 *       scope: ["user:", "cart:"]     # what is migrated (mirror, backfill, audit, dual
 *                               # reads): keys with one of these prefixes, as legacy
 *                               # names them; absent = every key (docs/mirror.md)
 *       sample_reads: 100       # 1 in N read commands has its key sampled; 0 = off
 *       mirror: auto            # off | forward | reverse | both; auto = both once a
 *                               # client can be on target, else off
 *       capture_bytes: 65536    # bytes of one write command captured, 64..1 MiB
 *       rewrite: {"user:": "u2:"}  # key prefixes renamed on target (mirror, repair)
 *       mirror_queue: 10000     # mirrored commands in flight per direction before drops
 *       auto_repair: false      # repair drift as soon as an audit or a dual read finds it
 *       audit_every: 0          # seconds between continuous audits (0: only on demand)
 *       resolve_interval: 30s   # host names in legacy/target re-resolved this often
 *       transform: {script: /etc/switchyard/users-v2.lua}  # Lua (docs/transforms.md)
 *       version_field: _v       # hash field / JSON attribute with the document version
 *       auth:                   # the agent's own connections (docs/operations.md)
 *         legacy: {password_file: /etc/switchyard/secrets/legacy}        # requirepass
 *         target: {user: switchyard, password_file: /etc/switchyard/secrets/target}
 *       plan:                   # the cutover plan (docs/cutover.md)
 *         steps: [1%, 5%, 25%, 50%, 100%]
 *         bake: 5m              # every step; or a list, one per step
 *         advance: auto         # or manual: each step waits for `syctl cutover NAME promote`
 *         interval: 1s          # gate evaluation interval
 *         window: 10s           # gates look at the last `window` of the step
 *         min_samples: 100      # target requests in the window before a gate may pass
 *         min_p99: 1ms          # the p99 ratio breaches only above this target p99
 *         backfill: true        # copy legacy's keys first
 *         shadow: 10s           # mirror writes this long with no client on target
 *         verify: true          # audit both sides before the first step
 *         drain: false          # a rollback also ends established target connections
 *         on_breach: rollback   # or pause: the default for every gate
 *         gates:                # each: a maximum, or {max: X, on_breach: pause}
 *           drift_rate: 0       # drifted keys per second
 *           error_rate: 1%      # target error replies / replies
 *           error_ratio: 3      # target error rate / legacy error rate
 *           p99_ratio: 2        # target p99 / legacy p99
 *         server_restart: pause # an endpoint restarted (new run_id): pause | rollback | off
 */
#ifndef SY_SPEC_H
#define SY_SPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "switchyard/abi.h"

#define SY_NAME_MAX		64 /* migration names: [a-z0-9][a-z0-9._-]{0,62} */
#define SY_SPEC_MAX_PREFIXES	(SY_MAX_RULES - 1)
#define SY_SAMPLE_MAX		1000000
#define SY_CAPTURE_DEFAULT	65536
#define SY_CAPTURE_MIN		64
#define SY_CAPTURE_MAX		(1u << 20)
#define SY_SPEC_MAX_REWRITES	8
#define SY_MIRROR_QUEUE_DEFAULT 10000
#define SY_MIRROR_QUEUE_MAX	1000000
#define SY_SPEC_MAX_PINS	4096
#define SY_SPEC_MAX_SCOPE	16

/* A key-prefix rewrite: keys starting with `from` on legacy are `to` on target. */
struct sy_rewrite_spec {
	char from[SY_PREFIX_MAX + 1];
	char to[SY_PREFIX_MAX + 1];
};

/* Which writes are mirrored: bits are SY_CAPTURE_LEGACY (forward: writes made on
 * legacy go to target) and SY_CAPTURE_TARGET (reverse). */
enum sy_mirror_mode {
	SY_MIRROR_OFF = 0,
	SY_MIRROR_FORWARD = SY_CAPTURE_LEGACY,
	SY_MIRROR_REVERSE = SY_CAPTURE_TARGET,
	SY_MIRROR_BOTH = SY_CAPTURE_LEGACY | SY_CAPTURE_TARGET,
	SY_MIRROR_AUTO = 4, /* the default: off while every client is on legacy, both once
			     * any client can be on target (ratio > 0 or a target pin) */
};

/* The cutover plan (cutover.c walks it). Gates are breached when the value measured
 * over the window is above `max`. */
#define SY_PLAN_MAX_STEPS 16

enum sy_gate {
	SY_GATE_DRIFT_RATE,  /* drifted keys per second (dual reads and audits) */
	SY_GATE_ERROR_RATE,  /* error replies / replies, target */
	SY_GATE_ERROR_RATIO, /* target error rate / legacy error rate */
	SY_GATE_P99_RATIO,   /* target p99 / legacy p99 */
	SY_GATES,
};

enum sy_breach {
	SY_BREACH_ROLLBACK = 0,
	SY_BREACH_PAUSE = 1,
};

/* plan.server_restart: what a running plan does when one of its endpoints restarts
 * (a new run_id: it may have come back empty). Pause is the default (zero). */
enum sy_restart_gate {
	SY_RESTART_PAUSE = 0,
	SY_RESTART_ROLLBACK = 1,
	SY_RESTART_OFF = 2,
};

struct sy_gate_spec {
	bool enabled;
	double max;
	uint8_t on_breach; /* enum sy_breach */
};

struct sy_plan_spec {
	uint32_t n_steps; /* 0: no plan, the ratio is set by hand */
	uint32_t steps_bp[SY_PLAN_MAX_STEPS];
	uint32_t bake_ms[SY_PLAN_MAX_STEPS];
	bool manual;	      /* advance only on promote */
	uint32_t interval_ms; /* gate evaluation interval */
	uint32_t window_ms;   /* how much of the step's recent past the gates look at */
	uint32_t min_samples; /* target requests a window needs before a gate may pass */
	uint32_t min_p99_us;  /* the p99 ratio only breaches above this target p99 */
	bool backfill;
	uint32_t shadow_ms;
	bool verify;
	bool drain; /* a rollback ends established target connections */
	struct sy_gate_spec gates[SY_GATES];
	uint8_t server_restart; /* enum sy_restart_gate */
};

#define SY_PLAN_INTERVAL_DEFAULT 1000
#define SY_PLAN_WINDOW_DEFAULT	 10000
#define SY_PLAN_BAKE_DEFAULT	 300000
#define SY_PLAN_MIN_P99_DEFAULT	 1000

/* "drift_rate", … ↔ enum sy_gate. */
const char *sy_gate_name(int g);
/* "pause", "rollback", "off" ↔ enum sy_restart_gate. */
const char *sy_restart_gate_name(int v);

/* transform: {script: FILE} — the migration's Lua transform (docs/transforms.md):
 * what a legacy key becomes on target and back. "" = none: keys are copied as they are. */
#define SY_VERSION_FIELD_MAX 64

struct sy_transform_spec {
	char script[PATH_MAX]; /* absolute; "" = no transform */
	int line;	       /* source line in the file, 0 when from the API */
};

/* Credentials of the agent's own connections to one side: who, and the file that holds
 * the password (mode 0600 or 0400; read at every connection the agent opens). The
 * password itself is never part of the spec, so it never reaches the API, the state
 * file or a message. No password_file: no AUTH. */
#define SY_AUTH_USER_MAX 128

struct sy_auth_spec {
	char user[SY_AUTH_USER_MAX];  /* "" = the default user (AUTH password, requirepass) */
	char password_file[PATH_MAX]; /* absolute; "" = no AUTH */
	int line;		      /* source line in the file, 0 when from the API */
};

/* Whether two sides' credentials are the same (user and file). */
bool sy_auth_spec_equal(const struct sy_auth_spec *a, const struct sy_auth_spec *b);

struct sy_pin_spec {
	char cgroup[PATH_MAX]; /* absolute path under the cgroup2 mount */
	uint8_t side;	       /* enum sy_side */
	int line;	       /* source line in the file, 0 when from the API */
};

/* An endpoint written as a host name ("redis-legacy.svc:6379", model/hostname.h): the
 * daemon resolves it (A and AAAA) at apply and every resolve_interval; its addresses
 * fill the side's endpoint array at [first, first + n), so the kernel, health checks
 * and the agent's own connections see plain endpoints. n == 0: not resolved yet (a
 * spec just read from a file or the API; the validator counts it as one endpoint). */
#define SY_HOST_MAX	      253 /* a DNS name's longest text form */
#define SY_SPEC_MAX_HOSTS     4	  /* host names per side */
#define SY_RESOLVE_DEFAULT_MS 30000
#define SY_RESOLVE_MIN_MS     1000
#define SY_RESOLVE_MAX_MS     86400000

struct sy_host_spec {
	char host[SY_HOST_MAX + 1];
	uint16_t port; /* host byte order */
	uint8_t pos;   /* its place in the list as written (legacy[pos] in messages) */
	uint8_t first; /* its addresses: legacy/target[first .. first + n) */
	uint8_t n;
	bool stale; /* its last resolution failed: the addresses are the last it had */
	int line;   /* source line in the file, 0 when from the API */
};

struct sy_migration_spec {
	char name[SY_NAME_MAX];
	struct sy_endpoint legacy[SY_MAX_ENDPOINTS];
	uint32_t n_legacy;
	struct sy_endpoint target[SY_MAX_ENDPOINTS];
	uint32_t n_target;
	struct sy_host_spec hosts[2][SY_SPEC_MAX_HOSTS]; /* by side: the names among them */
	uint32_t n_hosts[2];
	uint32_t resolve_interval_ms; /* 0 = SY_RESOLVE_DEFAULT_MS */
	uint8_t client_mode;	      /* enum sy_client_mode */
	uint32_t ratio_bp;	      /* 0..SY_RATIO_MAX */
	struct sy_pin_spec *pins;
	size_t n_pins;
	char prefixes[SY_SPEC_MAX_PREFIXES][SY_PREFIX_MAX + 1]; /* rule i + 1 */
	uint32_t n_prefixes;
	/* What is migrated: keys starting with one of these (legacy's names); none = every
	 * key. A command is in scope when its first key is. */
	char scope[SY_SPEC_MAX_SCOPE][SY_PREFIX_MAX + 1];
	uint32_t n_scope;
	uint32_t sample_reads;	/* 0..SY_SAMPLE_MAX */
	uint8_t mirror;		/* enum sy_mirror_mode */
	uint32_t capture_bytes; /* 0 = SY_CAPTURE_DEFAULT */
	struct sy_rewrite_spec rewrite[SY_SPEC_MAX_REWRITES];
	uint32_t n_rewrite;
	uint32_t mirror_queue; /* commands in flight per direction; 0 = SY_MIRROR_QUEUE_DEFAULT */
	bool auto_repair;      /* drift found by audits and dual reads is repaired at once */
	uint32_t audit_every;  /* seconds between the end of an audit and the next; 0 = on demand */
	struct sy_plan_spec plan;
	struct sy_auth_spec auth[2]; /* by side (enum sy_side) */
	struct sy_transform_spec transform;
	/* hash field or JSON attribute that holds a document's schema version; "" = none
	 * (the audit's version histogram) */
	char version_field[SY_VERSION_FIELD_MAX];
	/* Not part of the spec: set by the registry from the cutover phase. > 0: mirror:
	 * auto means both whatever the ratio; < 0: off (the migration is finished). */
	int8_t mirror_hint;
	int line; /* line of the "- name:" item in the file, 0 when from the API */
};

struct sy_spec {
	struct sy_migration_spec *migs;
	size_t n;
};

/* Where an error was found, for one-line messages. file == NULL for the API:
 * then the message names the field ("migrations[1].ratio: …"). */
struct sy_spec_err {
	char msg[512]; /* "FILE:LINE: what is wrong" or "FIELD: what is wrong" */
};

/* Fills err->msg (printf style); err may be NULL. */
void sy_spec_err_set(struct sy_spec_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sy_spec_err_set, then -EINVAL: `return sy_spec_fail(err, …)` rejects a spec in one line. */
int sy_spec_fail(struct sy_spec_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses and validates a YAML file (spec_yaml.c; spec_yaml.h takes a document already
 * parsed). 0, or a negative errno with err->msg filled. */
int sy_spec_load_file(const char *path, struct sy_spec *out, struct sy_spec_err *err);
/* Same for a buffer; `name` is used in place of FILE in messages. */
int sy_spec_load_buf(const char *name, const char *buf, size_t len, struct sy_spec *out,
		     struct sy_spec_err *err);

/* The one validator: every field's range and format, no duplicate names, no legacy
 * endpoint in two migrations (nor one migration's legacy another's target), no
 * endpoint both legacy and target, pins naming existing cgroup directories.
 * `file` (may be NULL) prefixes messages with FILE:LINE using the specs' lines. */
int sy_spec_validate(const struct sy_spec *s, const char *file, struct sy_spec_err *err);

/* transform: and version_field: of one migration (spec_transform.c, part of the
 * validator): the script compiles, a reverse mirror has reverse_key. *line is set to
 * the transform's line when it has one. */
int sy_spec_check_transform(const struct sy_migration_spec *m, struct sy_spec_err *err, int *line);

/* One migration alone (the API path): messages name the field ("legacy[1]: …"). */
int sy_migration_spec_validate(const struct sy_migration_spec *m, struct sy_spec_err *err);
/* One migration against others (an update excludes its own old version). */
int sy_spec_validate_against(const struct sy_migration_spec *m, const struct sy_migration_spec *others,
			     size_t n_others, struct sy_spec_err *err);

/* "off", "forward", "reverse", "both" ↔ enum sy_mirror_mode; -EINVAL / NULL otherwise. */
int sy_mirror_parse(const char *s, uint8_t *out);
const char *sy_mirror_name(uint8_t m);
/* What `mirror:` means for this spec now (auto resolved): SY_CAPTURE_* bits. */
uint8_t sy_mirror_effective(const struct sy_migration_spec *m);

/* Whether s is a valid migration name (see SY_NAME_MAX). */
int sy_spec_name_ok(const char *s);

/* Ratio strings: "25%", "12.5%", "2500bp", "0". Returns 0 and *bp, or -EINVAL. */
int sy_ratio_parse(const char *s, uint32_t *bp);
/* The one way a ratio is shown: "12.50%" (always two decimals). buf of at least
 * SY_RATIO_STRLEN bytes; returns buf. */
#define SY_RATIO_STRLEN 16
const char *sy_ratio_format(uint32_t bp, char *buf, size_t n);

void sy_spec_free(struct sy_spec *s);
/* Deep copy of one migration (pins included). */
int sy_migration_spec_copy(struct sy_migration_spec *dst, const struct sy_migration_spec *src);
void sy_migration_spec_free(struct sy_migration_spec *m);

#endif
