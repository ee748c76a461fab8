// SPDX-License-Identifier: Apache-2.0
/* switchyardd_opts.h — the daemon's command line: what each option sets and the checks
 * that need no other part of the daemon (values, ranges, combinations). What needs the
 * running parts (the TLS files, the HTTP listener) is checked where they start. */
#ifndef SY_SWITCHYARDD_OPTS_H
#define SY_SWITCHYARDD_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "api/tls_setup.h"
#include "telemetry/exporters.h"

#define DEFAULT_BPFFS	  "/sys/fs/bpf/switchyard"
#define DEFAULT_STATE_DIR "/var/lib/switchyard"
#define DEFAULT_LISTEN	  "unix:/run/switchyard/switchyard.sock"
#define MAX_LISTEN	  8
/* The control API's messages are kilobytes: a request past this is refused before it
 * is buffered (--rpc-max-message raises it). */
#define DEFAULT_RPC_MAX_MSG (1u << 20)

struct opts {
	const char *config;
	const char *state_dir;
	const char *bpffs;
	const char *cgroup;
	const char *listen[MAX_LISTEN];
	int n_listen;
	uint32_t health_interval_ms;
	uint32_t health_timeout_ms;
	size_t rpc_max_msg;
	const char *http;	 /* --http ADDR:PORT (dashboard, /api/v1, /metrics) */
	const char *http_token;	 /* --http-token-file: who may act over http */
	const char *http_js_dir; /* --http-js-dir: Debian's libjs-* packages (the charts) */
	unsigned http_per_ip;	 /* --http-max-conns-per-ip */
	int http_per_ip_given;
	int uninstall;
	int check_config;
	const char *store; /* etcd://…: a fleet's shared store (docs/fleet.md) */
	const char *node;
	uint32_t node_ttl_ms;
	struct sy_tls_cfg tls; /* TLS and read-only access (api/tls_setup.h) */
};

/* Parses argv into o (and the exporters' options into exp). Returns 0, -1 after
 * --help/--version were printed (exit 0), or 2 after a usage error was printed on
 * stderr (exit 2). */
int sy_daemon_parse_opts(int argc, char **argv, struct opts *o, struct sy_exporters_cfg *exp);

#endif
