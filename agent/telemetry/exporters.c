// SPDX-License-Identifier: Apache-2.0
/* exporters.c — settings of the metrics exporters (command line and the config file's
 * `telemetry:` section, one validator for both) and their start. See exporters.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/exporters.h"

#include "core/duration.h"
#include "core/quote.h"
#include "core/log.h"
#include "telemetry/otlp.h"
#include "telemetry/prom.h"
#include "model/yaml.h"
#include "rpc/rpc_listen.h"

#define DEFAULT_INTERVAL_MS 10000

/* A value inside a message: escaped, cut when long (core/quote.h). */
#define Q(s) sy_quote((char[SY_QUOTE_BUF]){0}, (s))

/* ---- values, one validator for the command line and the file --------------------------- */

/* HOST:PORT where HOST is numeric, [V6], localhost, or (OTLP only) a name resolved at start. */
static int check_addr(const char *s, bool name_ok, bool port0_ok, char *why, size_t n)
{
	struct sy_rpc_addr a;
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (sy_rpc_addr_parse(s, &a) == 0) {
		if (a.ss.ss_family == AF_UNIX) {
			snprintf(why, n, "\"%s\": a unix socket is not supported here (HOST:PORT)", Q(s));
			return -EINVAL;
		}
		if (!port0_ok && a.port == 0) {
			snprintf(why, n, "\"%s\": port 0", Q(s));
			return -EINVAL;
		}
		return 0;
	}
	if (name_ok && colon && colon != s && s[0] != '[') {
		size_t i;

		errno = 0;
		port = strtol(colon + 1, &end, 10);
		for (i = 0; s + i < colon; i++)
			if (!(s[i] == '-' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
			      (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
				break;
		if (!errno && *end == '\0' && end != colon + 1 && port > 0 && port < 65536 && s + i == colon)
			return 0;
	}
	snprintf(why, n, "\"%s\" is not HOST:PORT (%s, [IPv6]:PORT or localhost:PORT)", Q(s),
		 name_ok ? "a numeric IPv4 address or host name" : "a numeric IPv4 address");
	return -EINVAL;
}

static int check_interval(const char *s, uint32_t *out, char *why, size_t n)
{
	uint64_t v;
	int e = sy_duration_ms(s, &v);

	if (e == -EDOM) {
		snprintf(why, n, "\"%s\" %s", Q(s), sy_duration_strerror(e));
		return -EINVAL;
	}
	if (e || v < 100 || v > 3600000) {
		snprintf(why, n, "\"%s\" is not a duration from 100ms to 1h (e.g. 500ms, 10s, 1m)", Q(s));
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int check_bool(const char *s, bool *out, char *why, size_t n)
{
	if (strcmp(s, "on") == 0 || strcmp(s, "true") == 0)
		*out = true;
	else if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0)
		*out = false;
	else {
		snprintf(why, n, "\"%s\" is not on or off", Q(s));
		return -EINVAL;
	}
	return 0;
}

/* One resource attribute; a key given again replaces its value. */
static int add_resource(struct sy_exporters_cfg *c, const char *k, size_t klen, const char *v, char *why,
			size_t n)
{
	size_t i;

	if (klen == 0 || klen >= sizeof(c->res_key[0]) || strlen(v) >= sizeof(c->res_val[0])) {
		char qk[SY_QUOTE_BUF];

		snprintf(why, n, "\"%s=%s\": the key must be 1 to %zu bytes, the value at most %zu",
			 sy_quote_n(qk, k, klen), Q(v), sizeof(c->res_key[0]) - 1, sizeof(c->res_val[0]) - 1);
		return -EINVAL;
	}
	for (i = 0; i < c->n_res; i++)
		if (strlen(c->res_key[i]) == klen && memcmp(c->res_key[i], k, klen) == 0)
			break;
	if (i == c->n_res) {
		if (c->n_res == SY_EXP_RESOURCE_MAX) {
			snprintf(why, n, "at most %d resource attributes", SY_EXP_RESOURCE_MAX);
			return -EINVAL;
		}
		snprintf(c->res_key[c->n_res++], sizeof(c->res_key[0]), "%.*s", (int)klen, k);
	}
	snprintf(c->res_val[i], sizeof(c->res_val[0]), "%s", v);
	return 0;
}

static int check_resource_kv(struct sy_exporters_cfg *c, const char *s, char *why, size_t n)
{
	const char *eq = strchr(s, '=');

	if (!eq) {
		snprintf(why, n, "\"%s\" is not KEY=VALUE", Q(s));
		return -EINVAL;
	}
	return add_resource(c, s, (size_t)(eq - s), eq + 1, why, n);
}

/* ---- command line (options of the daemon's getopt_long table) --------------------------- */

static const char *const opt_names[SY_EXP_OPTS] = {"metrics", "otlp-endpoint", "otlp-interval",
						   "otlp-resource", "otlp-gzip"};

void sy_exporters_defaults(struct sy_exporters_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->otlp_interval_ms = DEFAULT_INTERVAL_MS;
	c->otlp_gzip = true;
}

const char *sy_exporters_opt_name(int val)
{
	return val >= SY_EXP_OPT_BASE && val < SY_EXP_OPT_BASE + SY_EXP_OPTS
		       ? opt_names[val - SY_EXP_OPT_BASE]
		       : NULL;
}

static int take(struct sy_exporters_cfg *c, int o, const char *v, char *why, size_t n)
{
	switch (o) {
	case SY_EXP_OPT_METRICS:
		c->cli_metrics = true;
		if (check_addr(v, false, true, why, n))
			return -EINVAL;
		snprintf(c->metrics, sizeof(c->metrics), "%s", v);
		return 0;
	case SY_EXP_OPT_ENDPOINT:
		c->cli_endpoint = true;
		if (strlen(v) >= sizeof(c->otlp_endpoint) || check_addr(v, true, false, why, n))
			return -EINVAL;
		snprintf(c->otlp_endpoint, sizeof(c->otlp_endpoint), "%s", v);
		return 0;
	case SY_EXP_OPT_INTERVAL:
		c->cli_interval = true;
		return check_interval(v, &c->otlp_interval_ms, why, n);
	case SY_EXP_OPT_RESOURCE:
		return check_resource_kv(c, v, why, n);
	case SY_EXP_OPT_GZIP:
		c->cli_gzip = true;
		return check_bool(v, &c->otlp_gzip, why, n);
	}
	return -EINVAL;
}

int sy_exporters_opt(struct sy_exporters_cfg *cfg, int val, const char *arg)
{
	char why[256] = "";
	const char *name = sy_exporters_opt_name(val);

	if (!name)
		return 2;
	if (!arg) {
		fprintf(stderr, "switchyardd: --%s: missing value (see --help)\n", name);
		return 2;
	}
	if (take(cfg, val, arg, why, sizeof(why))) {
		fprintf(stderr, "switchyardd: --%s: %s\n", name, why[0] ? why : "bad value");
		return 2;
	}
	return 0;
}

void sy_exporters_usage(FILE *f)
{
	fprintf(f, "  --metrics ADDR:PORT     serve Prometheus /metrics there (e.g. 127.0.0.1:9464): the\n"
		   "                          HTTP listener of --http, of which it is an alias\n"
		   "  --otlp-endpoint H:PORT  export OTLP/gRPC metrics to a collector (e.g. 127.0.0.1:4317)\n"
		   "  --otlp-interval DUR     export interval (default 10s)\n"
		   "  --otlp-resource K=V     an extra resource attribute; repeatable\n"
		   "  --otlp-gzip on|off      compress export requests (default on)\n");
}

/* ---- the config file's telemetry: section (a document model/yaml.h parsed) ---------------- */

struct ydoc {
	struct sy_yaml *y;
	char *err;
	size_t errlen;
};

static int yerr(struct ydoc *y, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int yerr(struct ydoc *y, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sy_yaml_vfail(y->y, n, y->err, y->errlen, "telemetry: ", fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Called for each key of a mapping. */
typedef int (*field_fn)(struct ydoc *y, struct sy_exporters_cfg *c, const char *key, yaml_node_t *k,
			yaml_node_t *v);

static int each_field(struct ydoc *y, struct sy_exporters_cfg *c, yaml_node_t *map, const char *what,
		      field_fn fn)
{
	if (map->type != YAML_MAPPING_NODE)
		return yerr(y, map, "%s must be a mapping", what);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = sy_yaml_node(y->y, p->key), *v = sy_yaml_node(y->y, p->value);
		const char *key = sy_yaml_scalar(k);
		int e;

		if (!key)
			return yerr(y, k, "%s: keys must be plain words", what);
		if ((e = fn(y, c, key, k, v)))
			return e;
	}
	return 0;
}

static int scalar_of(struct ydoc *y, yaml_node_t *v, const char *key, const char **out)
{
	*out = sy_yaml_scalar(v);
	if (!*out)
		return yerr(y, v, "%s: expected a single value", key);
	return 0;
}

static int resource_field(struct ydoc *y, struct sy_exporters_cfg *c, const char *key, yaml_node_t *k,
			  yaml_node_t *v)
{
	char why[256];
	const char *s;

	(void)k;
	if (scalar_of(y, v, key, &s))
		return -EINVAL;
	if (add_resource(c, key, strlen(key), s, why, sizeof(why)))
		return yerr(y, v, "otlp.resource: %s", why);
	return 0;
}

static int otlp_field(struct ydoc *y, struct sy_exporters_cfg *c, const char *key, yaml_node_t *k,
		      yaml_node_t *v)
{
	char why[256];
	const char *s;
	int e = 0;

	if (strcmp(key, "resource") == 0) {
		/* the command line's attributes are added after the file's: they win */
		struct sy_exporters_cfg file = *c;

		file.n_res = 0;
		if ((e = each_field(y, &file, v, "otlp.resource", resource_field)))
			return e;
		for (size_t i = 0; i < c->n_res; i++)
			if (add_resource(&file, c->res_key[i], strlen(c->res_key[i]), c->res_val[i], why,
					 sizeof(why)))
				return yerr(y, v, "otlp.resource: %s", why);
		c->n_res = file.n_res;
		memcpy(c->res_key, file.res_key, sizeof(c->res_key));
		memcpy(c->res_val, file.res_val, sizeof(c->res_val));
		return 0;
	}
	if (scalar_of(y, v, key, &s))
		return -EINVAL;
	if (strcmp(key, "endpoint") == 0) {
		if (strlen(s) >= sizeof(c->otlp_endpoint) || check_addr(s, true, false, why, sizeof(why)))
			return yerr(y, v, "otlp.endpoint: %s", why);
		if (!c->cli_endpoint)
			snprintf(c->otlp_endpoint, sizeof(c->otlp_endpoint), "%s", s);
	} else if (strcmp(key, "interval") == 0) {
		uint32_t ms;

		if (check_interval(s, &ms, why, sizeof(why)))
			return yerr(y, v, "otlp.interval: %s", why);
		if (!c->cli_interval)
			c->otlp_interval_ms = ms;
	} else if (strcmp(key, "gzip") == 0) {
		bool on;

		if (check_bool(s, &on, why, sizeof(why)))
			return yerr(y, v, "otlp.gzip: %s", why);
		if (!c->cli_gzip)
			c->otlp_gzip = on;
	} else {
		return yerr(
			y, k,
			"otlp: unknown field \"%s\" (expected one of: endpoint, interval, gzip, resource)",
			Q(key));
	}
	return 0;
}

static int telemetry_field(struct ydoc *y, struct sy_exporters_cfg *c, const char *key, yaml_node_t *k,
			   yaml_node_t *v)
{
	char why[256];
	const char *s;

	if (strcmp(key, "otlp") == 0)
		return each_field(y, c, v, "otlp", otlp_field);
	if (strcmp(key, "metrics") == 0) {
		if (scalar_of(y, v, key, &s))
			return -EINVAL;
		if (check_addr(s, false, true, why, sizeof(why)))
			return yerr(y, v, "metrics: %s", why);
		if (!c->cli_metrics)
			snprintf(c->metrics, sizeof(c->metrics), "%s", s);
		return 0;
	}
	return yerr(y, k, "unknown field \"%s\" (expected one of: metrics, otlp)", Q(key));
}

int sy_exporters_from_yaml(struct sy_yaml *doc, struct sy_exporters_cfg *cfg, char *err, size_t errlen)
{
	struct ydoc y = {.y = doc, .err = err, .errlen = errlen};
	yaml_node_t *v = sy_yaml_get(doc, sy_yaml_root(doc), "telemetry");

	err[0] = '\0';
	if (!v || (sy_yaml_scalar(v) && (!*sy_yaml_scalar(v) || strcmp(sy_yaml_scalar(v), "null") == 0)))
		return 0; /* no section, or "telemetry:" with nothing under it */
	return each_field(&y, cfg, v, "the telemetry section", telemetry_field);
}

int sy_exporters_load_buf(const char *name, const char *buf, size_t len, struct sy_exporters_cfg *cfg,
			  char *err, size_t errlen)
{
	struct sy_yaml y;
	int e = sy_yaml_load_buf(&y, name, buf, len, err, errlen);

	if (e)
		return e;
	e = sy_exporters_from_yaml(&y, cfg, err, errlen);
	sy_yaml_free(&y);
	return e;
}

/* ---- start ----------------------------------------------------------------------------- */

struct sy_exporters {
	struct sy_prom *prom;
	struct sy_otlp *otlp;
};

static int otlp_stats(void *arg, struct sy_exporter_stats *out)
{
	struct sy_exporters *x = arg;

	if (!x->otlp)
		return 0;
	sy_otlp_stats(x->otlp, out);
	return 1;
}

/* A host name becomes a numeric address once, here at start: the loop never waits on
 * DNS. */
static int resolve(const char *spec, char *out, size_t n)
{
	struct sy_rpc_addr a;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	const char *colon = strrchr(spec, ':');
	char host[256], ip[INET6_ADDRSTRLEN];
	int e;

	if (sy_rpc_addr_parse(spec, &a) == 0) {
		snprintf(out, n, "%s", spec);
		return 0;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	e = getaddrinfo(host, colon + 1, &hints, &res);
	if (e || !res) {
		sy_error("otlp", "resolve %s: %s", spec, e ? gai_strerror(e) : "no address");
		return -EHOSTUNREACH;
	}
	if (res->ai_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip, sizeof(ip));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof(ip));
	snprintf(out, n, res->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", ip, colon + 1);
	freeaddrinfo(res);
	sy_info("otlp", "%s is %s (resolved once, at start)", spec, out);
	return 0;
}

int sy_exporters_start(struct sy_loop *l, const struct sy_exporters_cfg *cfg,
		       const struct sy_metrics_src *src, uint64_t start_unix_ms, struct sy_exporters **out)
{
	struct sy_exporters *x = calloc(1, sizeof(*x));
	int e = 0;

	*out = NULL;
	if (!x)
		return -ENOMEM;
	if (cfg->otlp_endpoint[0]) {
		const char *keys[SY_EXP_RESOURCE_MAX], *vals[SY_EXP_RESOURCE_MAX];
		char ep[300];
		struct sy_otlp_opts o = {.endpoint = ep,
					 .interval_ms = cfg->otlp_interval_ms,
					 .gzip = cfg->otlp_gzip,
					 .resource = {keys, vals, cfg->n_res},
					 .tls = cfg->otlp_tls,
					 .tls_name = cfg->otlp_endpoint};

		for (size_t i = 0; i < cfg->n_res; i++) {
			keys[i] = cfg->res_key[i];
			vals[i] = cfg->res_val[i];
		}
		if ((e = resolve(cfg->otlp_endpoint, ep, sizeof(ep))) ||
		    (e = sy_otlp_start(l, &o, src, start_unix_ms, &x->otlp)))
			goto fail;
	}
	/* the figures only: the daemon's HTTP listener (api/http.h) serves them */
	if (cfg->metrics[0] && (e = sy_prom_start(l, src, start_unix_ms, otlp_stats, x, &x->prom)))
		goto fail;
	*out = x;
	return 0;
fail:
	sy_exporters_free(x);
	return e;
}

struct sy_prom *sy_exporters_prom(const struct sy_exporters *x)
{
	return x ? x->prom : NULL;
}

void sy_exporters_free(struct sy_exporters *x)
{
	if (!x)
		return;
	sy_prom_free(x->prom); /* the HTTP listener, which asks it for figures, is stopped */
	sy_otlp_free(x->otlp);
	free(x);
}
