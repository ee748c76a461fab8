// SPDX-License-Identifier: Apache-2.0
/* switchyardd_opts.c — see switchyardd_opts.h. */
#include "switchyardd_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "core/daemon.h"
#include "core/duration.h"
#include "core/log.h"
#include "registry/store_etcd.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: switchyardd [OPTIONS]\n"
		   "  --config FILE           migration spec (YAML); re-read on SIGHUP\n"
		   "  --state-dir DIR         persisted state (default " DEFAULT_STATE_DIR ")\n"
		   "  --bpffs DIR             pins of programs, maps, links (default " DEFAULT_BPFFS ")\n"
		   "  --cgroup PATH           cgroup v2 to attach to (default: the cgroup2 root)\n"
		   "  --listen SPEC           gRPC listener: unix:PATH (default " DEFAULT_LISTEN "),\n"
		   "                          127.0.0.1:PORT or [::1]:PORT; repeatable\n"
		   "  --health-interval DUR   target health check interval (default 1s)\n"
		   "  --health-timeout DUR    health check timeout (default 500ms)\n"
		   "  --rpc-max-message SIZE  largest gRPC request accepted (default 1MiB; KiB, MiB)\n"
		   "  --store etcd://HOST:PORT[,HOST:PORT...]/PREFIX\n"
		   "                          share migrations with a fleet through etcd v3\n"
		   "                          (default: the state file in --state-dir)\n"
		   "  --node NAME             this agent's name in the fleet (default: host name)\n"
		   "  --node-ttl DUR          lease of the node's key (default 10s)\n"
		   "  --http ADDR:PORT        dashboard, JSON API (/api/v1) and /metrics (docs/http.md)\n"
		   "  --http-token-file FILE  bearer token that actions over http need (mode 0600;\n"
		   "                          re-read on SIGHUP); without it they are refused\n"
		   "  --http-js-dir DIR       where the dashboard's charting library is installed\n"
		   "                          (default /usr/share/javascript, libjs-chart.js)\n"
		   "  --http-max-conns-per-ip N\n"
		   "                          connections one client address may hold on --http\n"
		   "                          (default 64, at most 512; a dashboard holds 2-4)\n"
		   "  --log-level LEVEL       debug, info, warning, error (default info)\n"
		   "  --check-config          validate --config and exit\n"
		   "  --uninstall             detach the programs and remove every pin, then exit\n"
		   "  --version, --help\n");
	sy_exporters_usage(f);
	sy_tls_usage(f);
}

/* A duration from 1 ms to 1 h ("250ms", "2s", "1m"; a unit is required). */
static int parse_duration_ms(const char *s, uint32_t *out)
{
	uint64_t v;
	int e = sy_duration_ms(s, &v);

	if (e == -EDOM)
		return e;
	if (e || v == 0 || v > 3600000)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* A size from 4 KiB to 64 MiB: bytes, or with a KiB/MiB (K/M) suffix. */
static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (strcmp(end, "KiB") == 0 || strcmp(end, "K") == 0)
		v <<= 10;
	else if (strcmp(end, "MiB") == 0 || strcmp(end, "M") == 0)
		v <<= 20;
	else if (*end)
		return -EINVAL;
	if (v < (4u << 10) || v > (64u << 20))
		return -ERANGE;
	*out = (size_t)v;
	return 0;
}

int sy_daemon_parse_opts(int argc, char **argv, struct opts *o, struct sy_exporters_cfg *exp)
{
	enum {
		O_CONFIG = 256,
		O_STATE,
		O_BPFFS,
		O_CGROUP,
		O_LISTEN,
		O_HI,
		O_HT,
		O_RPCMAX,
		O_LOG,
		O_CHECK,
		O_UNINST,
		O_VER,
		O_STORE,
		O_NODE,
		O_NODE_TTL,
		O_HTTP,
		O_HTTP_TOKEN,
		O_HTTP_PER_IP,
		O_HTTP_JS_DIR
	};
	static const struct option lo[] = {
		{"config", required_argument, 0, O_CONFIG},
		{"state-dir", required_argument, 0, O_STATE},
		{"bpffs", required_argument, 0, O_BPFFS},
		{"cgroup", required_argument, 0, O_CGROUP},
		{"listen", required_argument, 0, O_LISTEN},
		{"health-interval", required_argument, 0, O_HI},
		{"health-timeout", required_argument, 0, O_HT},
		{"rpc-max-message", required_argument, 0, O_RPCMAX},
		{"log-level", required_argument, 0, O_LOG},
		{"check-config", no_argument, 0, O_CHECK},
		{"uninstall", no_argument, 0, O_UNINST},
		{"version", no_argument, 0, O_VER},
		{"store", required_argument, 0, O_STORE},
		{"node", required_argument, 0, O_NODE},
		{"node-ttl", required_argument, 0, O_NODE_TTL},
		{"http", required_argument, 0, O_HTTP},
		{"http-token-file", required_argument, 0, O_HTTP_TOKEN},
		{"http-max-conns-per-ip", required_argument, 0, O_HTTP_PER_IP},
		{"http-js-dir", required_argument, 0, O_HTTP_JS_DIR},
		{"help", no_argument, 0, 'h'},
		SY_EXPORTERS_LONGOPTS,
		SY_TLS_LONGOPTS,
		{0, 0, 0, 0},
	};
	int c, e;

	o->state_dir = DEFAULT_STATE_DIR;
	o->bpffs = DEFAULT_BPFFS;
	o->health_interval_ms = 1000;
	o->health_timeout_ms = 500;
	sy_exporters_defaults(exp);
	o->rpc_max_msg = DEFAULT_RPC_MAX_MSG;
	o->http_per_ip = SY_HTTP_PER_IP_DEFAULT;
	opterr = 0;
	/* ":": a missing value is told apart from an unknown option */
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (sy_exporters_opt_name(c)) {
			if ((e = sy_exporters_opt(exp, c, optarg)))
				return e;
			continue;
		}
		if (sy_tls_opt_is(c)) {
			if ((e = sy_tls_opt(&o->tls, c, optarg)))
				return e;
			continue;
		}
		switch (c) {
		case O_CONFIG:
			o->config = optarg;
			break;
		case O_STATE:
			o->state_dir = optarg;
			break;
		case O_BPFFS:
			o->bpffs = optarg;
			break;
		case O_CGROUP:
			o->cgroup = optarg;
			break;
		case O_HTTP:
			o->http = optarg;
			break;
		case O_HTTP_TOKEN:
			o->http_token = optarg;
			break;
		case O_HTTP_JS_DIR:
			o->http_js_dir = optarg;
			break;
		case O_HTTP_PER_IP: {
			char *end = NULL;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || *optarg == '-' || v < 1 ||
			    v > SY_HTTP_MAX_CONNS) {
				fprintf(stderr,
					"switchyardd: --http-max-conns-per-ip: \"%s\" is not a number from 1 "
					"to "
					"%d\n",
					optarg, SY_HTTP_MAX_CONNS);
				return 2;
			}
			o->http_per_ip = (unsigned)v;
			o->http_per_ip_given = 1;
			break;
		}
		case O_LISTEN:
			if (o->n_listen == MAX_LISTEN) {
				fprintf(stderr, "switchyardd: --listen: at most %d listeners\n", MAX_LISTEN);
				return 2;
			}
			o->listen[o->n_listen++] = optarg;
			break;
		case O_HI:
		case O_HT:
			e = parse_duration_ms(optarg,
					      c == O_HI ? &o->health_interval_ms : &o->health_timeout_ms);
			if (e == -EDOM) {
				fprintf(stderr, "switchyardd: --%s: \"%s\" %s\n",
					c == O_HI ? "health-interval" : "health-timeout", optarg,
					sy_duration_strerror(e));
				return 2;
			}
			if (e) {
				fprintf(stderr,
					"switchyardd: --%s: \"%s\" is not a duration from 1ms to 1h "
					"(e.g. 500ms, 2s)\n",
					c == O_HI ? "health-interval" : "health-timeout", optarg);
				return 2;
			}
			break;
		case O_RPCMAX:
			if (parse_size(optarg, &o->rpc_max_msg)) {
				fprintf(stderr,
					"switchyardd: --rpc-max-message: \"%s\" is not a size from 4KiB to "
					"64MiB\n",
					optarg);
				return 2;
			}
			break;
		case O_LOG:
			if (strcmp(optarg, "debug") == 0)
				sy_log_set_level(SY_LOG_DEBUG);
			else if (strcmp(optarg, "info") == 0)
				sy_log_set_level(SY_LOG_INFO);
			else if (strcmp(optarg, "warning") == 0)
				sy_log_set_level(SY_LOG_WARN);
			else if (strcmp(optarg, "error") == 0)
				sy_log_set_level(SY_LOG_ERROR);
			else {
				fprintf(stderr,
					"switchyardd: --log-level: \"%s\" is not one of debug, info, "
					"warning, error\n",
					optarg);
				return 2;
			}
			break;
		case O_CHECK:
			o->check_config = 1;
			break;
		case O_STORE:
			if (!sy_store_is_etcd_url(optarg)) {
				fprintf(stderr,
					"switchyardd: --store: \"%s\" is not etcd://HOST:PORT[,...]/PREFIX\n",
					optarg);
				return 2;
			}
			o->store = optarg;
			break;
		case O_NODE:
			o->node = optarg;
			break;
		case O_NODE_TTL:
			if (parse_duration_ms(optarg, &o->node_ttl_ms) || o->node_ttl_ms < 2000) {
				fprintf(stderr,
					"switchyardd: --node-ttl: \"%s\" is not a duration from 2s to 1h\n",
					optarg);
				return 2;
			}
			break;
		case O_UNINST:
			o->uninstall = 1;
			break;
		case O_VER:
			printf("switchyardd %s\n", SY_VERSION);
			return -1;
		case 'h':
			usage(stdout);
			return -1;
		case ':':
			if (sy_exporters_opt_name(optopt))
				return sy_exporters_opt(exp, optopt, NULL);
			if (sy_tls_opt_is(optopt))
				return sy_tls_opt(&o->tls, optopt, NULL);
			/* fall through */
		default:
			fprintf(stderr, "switchyardd: %s: unknown option or missing value (see --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "switchyardd: unexpected argument \"%s\" (see --help)\n", argv[optind]);
		return 2;
	}
	if (o->check_config && !o->config) {
		fprintf(stderr, "switchyardd: --check-config needs --config FILE\n");
		return 2;
	}
	if (o->health_timeout_ms > o->health_interval_ms) {
		fprintf(stderr, "switchyardd: --health-timeout must not exceed --health-interval\n");
		return 2;
	}
	if (o->n_listen == 0)
		o->listen[o->n_listen++] = DEFAULT_LISTEN;
	return 0;
}
