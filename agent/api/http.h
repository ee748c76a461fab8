// SPDX-License-Identifier: Apache-2.0
/* http.h — the daemon's one HTTP listener (libmicrohttpd): the dashboard at / (files
 * embedded in the binary, agent/web/), /metrics (telemetry/prom.h) and the JSON API
 * under /api/v1 — the gRPC API's own messages in the proto3 JSON mapping (model/pbjson.h),
 * produced by the very handlers gRPC clients reach (sy_rpc_server_invoke), streams as
 * Server-Sent Events. See docs/http.md.
 *
 * Threads: libmicrohttpd runs a thread per connection; those threads only parse, check
 * the token and wait. Every call runs on the loop thread, handed over through an
 * eventfd, and its output comes back under a per-request mutex.
 *
 * Who may act: reads are open; a POST needs "Authorization: Bearer TOKEN" with the token
 * of token_file (no group/other permission bits; re-read by sy_http_reload_token). No
 * file, or none readable: actions are 403; a missing or wrong token: 401. */
#ifndef SY_HTTP_H
#define SY_HTTP_H

#include "api/control_plane.h"

struct sy_http;
struct sy_prom;

/* Connections the listener holds at once, in all and from one client address
 * (--http-max-conns-per-ip, from 1 to SY_HTTP_MAX_CONNS). An open dashboard holds two
 * (its two streams) plus one per request in flight. */
#define SY_HTTP_MAX_CONNS      512
#define SY_HTTP_PER_IP_DEFAULT 64

/* spec: "127.0.0.1:8080", "[::1]:8080". prom may be NULL (then /metrics is 404),
 * token_file NULL (actions disabled); per_ip: 1..SY_HTTP_MAX_CONNS. tls_cert and
 * tls_key (PEM files, both or neither): serve HTTPS (libmicrohttpd's GnuTLS) with the
 * control plane's certificate, read at start. Returns 0 or a negative errno (logged). */
int sy_http_start(struct sy_loop *l, const char *spec, struct sy_rpc_server *rpc, struct sy_control_ctx *ctx,
		  struct sy_prom *prom, const char *token_file, unsigned per_ip, const char *tls_cert,
		  const char *tls_key, struct sy_http **out);
int sy_http_port(const struct sy_http *h);
/* Reads the token file again (SIGHUP). Loop thread. */
void sy_http_reload_token(struct sy_http *h);
/* Ends the listener and every stream it runs. Loop thread, before the rpc server. */
void sy_http_free(struct sy_http *h);

#endif
