/* exporters.c — settings of the metrics exporters (command line and the config file's
 * `telemetry:` section, one validator for both) and their start. See exporters.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "telemetry/exporters.h"

#include "core/duration.h"
#include "core/log.h"
#include "telemetry/otlp.h"
#include "telemetry/prom.h"
#include "rpc/rpc_listen.h"

#define DEFAULT_INTERVAL_MS 10000

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
			snprintf(why, n, "\"%s\": a unix socket is not supported here (HOST:PORT)", s);
			return -EINVAL;
		}
		if (!port0_ok && a.port == 0) {
			snprintf(why, n, "\"%s\": port 0", s);
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
	snprintf(why, n, "\"%s\" is not HOST:PORT (%s, [IPv6]:PORT or localhost:PORT)", s,
		 name_ok ? "a numeric IPv4 address or host name" : "a numeric IPv4 address");
	return -EINVAL;
}

static int check_interval(const char *s, uint32_t *out, char *why, size_t n)
{
	uint64_t v;

	if (sy_duration_ms(s, &v) || v < 100 || v > 3600000) {
		snprintf(why, n, "\"%s\" is not a duration from 100ms to 1h (e.g. 500ms, 10s, 1m)", s);
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
		snprintf(why, n, "\"%s\" is not on or off", s);
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
		snprintf(why, n, "\"%.*s=%.40s\": the key must be 1 to %zu bytes, the value at most %zu",
			 (int)klen, k, v, sizeof(c->res_key[0]) - 1, sizeof(c->res_val[0]) - 1);
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
		snprintf(why, n, "\"%s\" is not KEY=VALUE", s);
		return -EINVAL;
	}
	return add_resource(c, s, (size_t)(eq - s), eq + 1, why, n);
}

/* ---- command line ------------------------------------------------------------------------ */

enum { O_METRICS, O_ENDPOINT, O_INTERVAL, O_RESOURCE, O_GZIP, O_N };
static const char *const opt_names[O_N] = {"metrics", "otlp-endpoint", "otlp-interval", "otlp-resource",
					   "otlp-gzip"};

static void defaults(struct sy_exporters_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->otlp_interval_ms = DEFAULT_INTERVAL_MS;
	c->otlp_gzip = true;
}

static int take(struct sy_exporters_cfg *c, int o, const char *v, char *why, size_t n)
{
	switch (o) {
	case O_METRICS:
		c->cli_metrics = true;
		if (check_addr(v, false, true, why, n))
			return -EINVAL;
		snprintf(c->metrics, sizeof(c->metrics), "%s", v);
		return 0;
	case O_ENDPOINT:
		c->cli_endpoint = true;
		if (strlen(v) >= sizeof(c->otlp_endpoint) || check_addr(v, true, false, why, n))
			return -EINVAL;
		snprintf(c->otlp_endpoint, sizeof(c->otlp_endpoint), "%s", v);
		return 0;
	case O_INTERVAL:
		c->cli_interval = true;
		return check_interval(v, &c->otlp_interval_ms, why, n);
	case O_RESOURCE:
		return check_resource_kv(c, v, why, n);
	case O_GZIP:
		c->cli_gzip = true;
		return check_bool(v, &c->otlp_gzip, why, n);
	}
	return -EINVAL;
}

int sy_exporters_args(int *argc, char **argv, struct sy_exporters_cfg *cfg)
{
	int out = 1;

	defaults(cfg);
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i], *v = NULL;
		char why[256] = "";
		int o;

		if (strcmp(a, "--") == 0) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		for (o = 0; o < O_N; o++) {
			size_t l = strlen(opt_names[o]);

			if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, opt_names[o], l) == 0 &&
			    (a[2 + l] == '\0' || a[2 + l] == '='))
				break;
		}
		if (o == O_N) {
			argv[out++] = argv[i];
			continue;
		}
		v = strchr(a, '=') ? strchr(a, '=') + 1 : (i + 1 < *argc ? argv[++i] : NULL);
		if (!v) {
			fprintf(stderr, "switchyardd: --%s: missing value (see --help)\n", opt_names[o]);
			return 2;
		}
		if (take(cfg, o, v, why, sizeof(why))) {
			fprintf(stderr, "switchyardd: --%s: %s\n", opt_names[o], why[0] ? why : "bad value");
			return 2;
		}
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

void sy_exporters_usage(FILE *f)
{
	fprintf(f, "  --metrics ADDR:PORT     serve Prometheus /metrics there (e.g. 127.0.0.1:9464)\n"
		   "  --otlp-endpoint H:PORT  export OTLP/gRPC metrics to a collector (e.g. 127.0.0.1:4317)\n"
		   "  --otlp-interval DUR     export interval (default 10s)\n"
		   "  --otlp-resource K=V     an extra resource attribute; repeatable\n"
		   "  --otlp-gzip on|off      compress export requests (default on)\n");
}

/* ---- the config file's telemetry: section ------------------------------------------------ */

struct ydoc {
	yaml_document_t doc;
	const char *name;
	char *err;
	size_t errlen;
};

static int yerr(struct ydoc *y, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int yerr(struct ydoc *y, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(y->err, y->errlen, "%s:%zu: telemetry: ", y->name, n ? n->start_mark.line + 1 : 1);

	va_start(ap, fmt);
	if (k >= 0 && (size_t)k < y->errlen)
		vsnprintf(y->err + k, y->errlen - (size_t)k, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *yscalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
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
		yaml_node_t *k = yaml_document_get_node(&y->doc, p->key),
			    *v = yaml_document_get_node(&y->doc, p->value);
		const char *key = yscalar(k);
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
	*out = yscalar(v);
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
			key);
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
	return yerr(y, k, "unknown field \"%s\" (expected one of: metrics, otlp)", key);
}

int sy_exporters_load_buf(const char *name, const char *buf, size_t len, struct sy_exporters_cfg *cfg,
			  char *err, size_t errlen)
{
	struct ydoc y = {.name = name, .err = err, .errlen = errlen};
	yaml_parser_t parser;
	yaml_node_t *root;
	int e = 0;

	err[0] = '\0';
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &y.doc)) {
		/* spec.c reports the file's syntax; here it only means no telemetry section */
		yaml_parser_delete(&parser);
		snprintf(err, errlen, "%s:%zu: YAML: %s", name, parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "syntax error");
		return -EINVAL;
	}
	yaml_parser_delete(&parser);
	root = yaml_document_get_root_node(&y.doc);
	if (root && root->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
		     p++) {
			yaml_node_t *k = yaml_document_get_node(&y.doc, p->key),
				    *v = yaml_document_get_node(&y.doc, p->value);
			const char *key = yscalar(k);

			if (!key || strcmp(key, "telemetry") != 0)
				continue;
			if (v->type == YAML_SCALAR_NODE && (!*yscalar(v) || strcmp(yscalar(v), "null") == 0))
				continue; /* "telemetry:" with nothing under it */
			if ((e = each_field(&y, cfg, v, "the telemetry section", telemetry_field)))
				break;
		}
	}
	yaml_document_delete(&y.doc);
	return e;
}

int sy_exporters_load_file(const char *file, struct sy_exporters_cfg *cfg)
{
	char err[512];
	FILE *f = fopen(file, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0;
	int e;

	if (!f) {
		fprintf(stderr, "switchyardd: %s: %s\n", file, strerror(errno));
		return -errno;
	}
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap ? cap * 2 : 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		size_t r = fread(buf + len, 1, cap - len, f);

		len += r;
		if (r == 0)
			break;
	}
	fclose(f);
	e = sy_exporters_load_buf(file, buf, len, cfg, err, sizeof(err));
	free(buf);
	if (e)
		fprintf(stderr, "%s\n", err);
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
					 .resource = {keys, vals, cfg->n_res}};

		for (size_t i = 0; i < cfg->n_res; i++) {
			keys[i] = cfg->res_key[i];
			vals[i] = cfg->res_val[i];
		}
		if ((e = resolve(cfg->otlp_endpoint, ep, sizeof(ep))) ||
		    (e = sy_otlp_start(l, &o, src, start_unix_ms, &x->otlp)))
			goto fail;
	}
	if (cfg->metrics[0] &&
	    (e = sy_prom_start(l, cfg->metrics, src, start_unix_ms, otlp_stats, x, &x->prom)))
		goto fail;
	*out = x;
	return 0;
fail:
	sy_exporters_free(x);
	return e;
}

void sy_exporters_free(struct sy_exporters *x)
{
	if (!x)
		return;
	sy_prom_free(x->prom); /* first: its HTTP thread may be asking for figures */
	sy_otlp_free(x->otlp);
	free(x);
}
