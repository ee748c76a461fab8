// SPDX-License-Identifier: Apache-2.0
/* switchyardd.c — the daemon's main: options, the state-dir lock, the kernel side
 * (loader), the registry, health checks, the gRPC control plane, signals.
 *
 *   SIGHUP          re-read --config; a bad file keeps the running configuration
 *   SIGTERM/SIGINT  stop; the pinned programs keep steering (fail-static)
 * Readiness is reported with sy_notify (READY=1) once the first health checks ended,
 * so systemd (Type=notify) and the tests know when steering reflects the config.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/control_plane.h"
#include "api/tls_setup.h"
#include "core/daemon.h"
#include "kernel/drain.h"
#include "core/duration.h"
#include "registry/events.h"
#include "registry/events_journal.h"
#include "telemetry/exporters.h"
#include "redis/health.h"
#include "registry/resolver.h"
#include "cutover/cutover.h"
#include "cutover/restart.h"
#include "kernel/loader.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/loop.h"
#include "telemetry/metrics.h"
#include "api/http.h"
#include "api/http_vendor.h"
#include "registry/registry.h"
#include "registry/registry_events.h"
#include "cutover/publish.h"
#include "registry/fleet.h"
#include "shadow/job_request.h"
#include "registry/store_etcd.h"
#include "registry/store_file.h"
#include "rpc/rpc.h"
#include "model/hostname.h"
#include "model/spec.h"
#include "model/spec_yaml.h"
#include "model/yaml.h"
#include "shadow/transform_copy.h"
#include "switchyardd_opts.h"

struct daemon {
	struct opts o;
	struct sy_loop *loop;
	struct sy_bpf *bpf;
	struct sy_store *store;
	struct sy_publish *publish;	/* fleet mode: this node's counters into its node key */
	struct sy_job_requests *jobreq; /* fleet mode: jobs asked of a follower, run by the leader */
	struct sy_registry *reg;
	struct sy_health *health;
	struct sy_rpc_server *rpc;
	struct sy_events *events;
	struct sy_resolver *resolver;
	struct sy_events_journal *journal;
	struct sy_capture *capture;
	struct sy_mirror *mirror;
	struct sy_verify *verify;
	struct sy_cutover *cutover;
	struct sy_http *http;
	struct sy_tls_set tls; /* the contexts of d.o.tls, rotated on SIGHUP */
	struct sy_daemon_info info;
	struct sy_control_ctx ctl;
	uint64_t ready_deadline;
	int stopping;
};

/* One daemon per state dir: two would fight over the same maps and file. */
static int lock_state_dir(const char *dir)
{
	char p[PATH_MAX];
	int fd;

	if (snprintf(p, sizeof(p), "%s/switchyardd.lock", dir) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return err;
	}
	return fd; /* held until exit */
}

/* ---- figures the metrics read through accessors (telemetry/metrics.h) ---------- */

static void ops_gates(void *arg, const char *name, double value[SY_GATES], bool have[SY_GATES])
{
	struct daemon *d = arg;
	struct sy_cutover_status st;

	if (!d->cutover || sy_cutover_status(d->cutover, name, &st))
		return;
	for (int g = 0; g < SY_GATES; g++) {
		have[g] = st.gates[g].verdict == SY_VERDICT_PASS || st.gates[g].verdict == SY_VERDICT_BREACH;
		value[g] = st.gates[g].value;
	}
}

static int ops_endpoint_health(void *arg, const struct sy_endpoint *ep)
{
	struct daemon *d = arg;
	struct sy_endpoint_health h;

	if (sy_health_get(d->health, ep, &h) || !h.checked)
		return -1;
	return h.healthy ? 1 : 0;
}

static void ops_resolver(void *arg, uint64_t out[3])
{
	struct daemon *d = arg;
	struct sy_resolver_stats st;

	sy_resolver_stats(d->resolver, &st);
	out[0] = st.lookups;
	out[1] = st.failures;
	out[2] = st.changes;
}

static bool ops_tls(void *arg, struct sy_metrics_tls *out)
{
	static const char *const roles[] = {"server", "otlp", "store"};
	struct daemon *d = arg;
	struct sy_tls_status_buf tb;

	if (!d->tls.server && !d->tls.otlp && !d->tls.store)
		return false;
	sy_tls_status(&d->tls, &tb);
	out->handshakes_refused = tb.st.handshakes_refused;
	out->readonly_denied = tb.st.readonly_denied;
	out->n_certs = 0;
	for (size_t i = 0; i < tb.st.n_certificates && out->n_certs < SY_METRICS_TLS_CERTS; i++) {
		const char *ctx = tb.st.certificates[i]->context;

		out->cert[out->n_certs].role = strcmp(ctx, "control plane") == 0 ? roles[0]
					       : strcmp(ctx, "otlp") == 0	 ? roles[1]
										 : roles[2];
		out->cert[out->n_certs++].not_after_unix_s = tb.st.certificates[i]->not_after_unix_ms / 1000;
	}
	return true;
}

/* The mirror flagged a migration needs-audit: an event with the reason (the metric
 * switchyard_mirror_needs_audit says that it is, the event why). */
static void on_needs_audit(void *arg, const char *mig, const char *dir, const char *why)
{
	struct daemon *d = arg;

	sy_events_emit(d->events, mig, "mirror.needs_audit",
		       SY_EVENT_ATTRS({"direction", dir}, {"reason", why}),
		       "%s mirror needs an audit: %s (run syctl verify %s)", dir, why, mig);
}

/* Registry subscriber: health checks follow the endpoints of the set. */
static void refresh_health(void *arg, const struct sy_commit *c)
{
	struct daemon *d = arg;
	struct sy_endpoint eps[SY_MAX_MIGRATIONS * SY_MAX_ENDPOINTS * 2];
	const struct sy_auth_spec *auths[SY_MAX_MIGRATIONS * SY_MAX_ENDPOINTS * 2];
	size_t n = 0;

	if (c->kind == SY_COMMIT_HEALTH)
		return; /* its own verdicts: the endpoints did not change */
	for (size_t i = 0; i < c->n_after; i++) {
		const struct sy_migration_state *m = &c->after[i];

		for (uint32_t j = 0; j < m->spec.n_legacy; j++) {
			auths[n] = &m->spec.auth[SY_SIDE_LEGACY];
			eps[n++] = m->spec.legacy[j];
		}
		for (uint32_t j = 0; j < m->spec.n_target; j++) {
			auths[n] = &m->spec.auth[SY_SIDE_TARGET];
			eps[n++] = m->spec.target[j];
		}
	}
	if (sy_health_set_endpoints(d->health, eps, auths, n) < 0)
		sy_error("health", "update checked endpoints: out of memory");
	if (d->verify)
		sy_verify_tick(d->verify); /* continuous audits asked for by the new spec */
}

static void on_health(const struct sy_endpoint *ep, bool healthy, void *arg)
{
	struct daemon *d = arg;
	struct sy_endpoint_health st = {0};

	sy_health_get(d->health, ep, &st);
	sy_registry_set_target_health(d->reg, ep, healthy, st.last_error);
}

/* A server that restarted may have come back empty: see cutover/restart.h. */
static void on_restart(const struct sy_endpoint *ep, const char *old_id, const char *new_id, void *arg)
{
	struct daemon *d = arg;
	struct sy_restart_env env = {.reg = d->reg,
				     .mirror = d->mirror,
				     .verify = d->verify,
				     .cutover = d->cutover,
				     .events = d->events};

	if (d->mirror && d->verify && d->cutover)
		sy_endpoint_restarted(&env, ep, old_id, new_id);
}

static void notify_ready_when_checked(struct sy_loop *l, void *arg)
{
	struct daemon *d = arg;

	if (!sy_health_all_checked(d->health) && sy_now_ms() < d->ready_deadline) {
		sy_loop_add_timer(l, 10, notify_ready_when_checked, d);
		return;
	}
	sy_notifyf("READY=1\nSTATUS=steering %zu migration(s)", sy_registry_count(d->reg));
}

static void expect_ready(struct daemon *d)
{
	d->ready_deadline = sy_now_ms() + d->o.health_timeout_ms + 200;
	sy_loop_add_timer(d->loop, 0, notify_ready_when_checked, d);
}

/* Applies the spec of --config: the one parsed at start, or (SIGHUP) the file read again.
 * d (may be NULL) gets what the file changed, previewed by the registry's own rule. */
static int load_config(struct daemon *d, struct sy_spec *parsed, struct sy_diff *diff,
		       struct sy_spec_err *err)
{
	struct sy_spec spec = {0};
	int e;

	if (parsed) {
		spec = *parsed;
		*parsed = (struct sy_spec){0};
	} else if ((e = sy_spec_load_file(d->o.config, &spec, err))) {
		return e;
	}
	/* host names are resolved at every apply of the file (start and SIGHUP) */
	if ((e = sy_spec_resolve(&spec, d->o.config, err))) {
		sy_spec_free(&spec);
		return e;
	}
	e = diff ? sy_registry_preview_file(d->reg, &spec, d->o.config, diff, err) : 0;
	if (!e)
		e = sy_registry_apply_file(d->reg, &spec, d->o.config, err);
	if (e && diff)
		sy_diff_free(diff);
	sy_spec_free(&spec);
	return e;
}

/* The config file, read and parsed once at start: the exporters' telemetry: section
 * and the spec both come from this one document. 0, or 1 after printing why. */
static int read_config(const char *path, struct sy_exporters_cfg *exp, struct sy_spec *spec)
{
	struct sy_spec_err err = {{0}};
	struct sy_yaml y;
	int e;

	if (sy_yaml_load_file(&y, path, err.msg, sizeof(err.msg))) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	e = sy_exporters_from_yaml(&y, exp, err.msg, sizeof(err.msg)) || sy_spec_from_yaml(&y, spec, &err);
	sy_yaml_free(&y);
	if (e)
		fprintf(stderr, "%s\n", err.msg);
	return e ? 1 : 0;
}

static void on_hup(struct sy_loop *l, int signo, void *arg)
{
	struct daemon *d = arg;
	struct sy_spec_err err = {{0}};
	struct sy_diff diff = {0};
	char n[24], changed[SY_EVENT_VALUE_MAX];

	(void)l;
	(void)signo;
	if (d->http)
		sy_http_reload_token(d->http);
	sy_tls_reload_all(&d->tls, d->events);
	if (!d->o.config) {
		sy_info("config", "SIGHUP: no --config file to re-read");
		return;
	}
	sy_notify("RELOADING=1");
	if (load_config(d, NULL, &diff, &err)) {
		sy_events_emit(d->events, "", "daemon.reload_failed",
			       SY_EVENT_ATTRS({"file", d->o.config}, {"error", err.msg}),
			       "reload of %s refused, running configuration kept: %s", d->o.config, err.msg);
		/* last: the one line that says why, for whoever reads the log's tail */
		sy_error("config", "reload refused, running configuration kept: %s", err.msg);
		sy_notifyf("READY=1\nSTATUS=reload refused: %s", err.msg);
		return;
	}
	sy_xf_reload_all(); /* transform scripts: re-read whole (the file validated them) */
	/* what the file changed, field by field; a change that moves clients is said loudly */
	sy_diff_summary(&diff, changed, sizeof(changed));
	for (size_t i = 0; i < diff.n; i++)
		for (size_t j = 0; j < diff.migs[i].n_fields; j++)
			sy_info("config", "reload: %s: %s: %s -> %s", diff.migs[i].name,
				diff.migs[i].fields[j].field,
				diff.migs[i].fields[j].old_v[0] ? diff.migs[i].fields[j].old_v : "(none)",
				diff.migs[i].fields[j].new_v[0] ? diff.migs[i].fields[j].new_v : "(none)");
	snprintf(n, sizeof(n), "%zu", sy_registry_count(d->reg));
	sy_events_emit(d->events, "", "daemon.reloaded",
		       SY_EVENT_ATTRS({"file", d->o.config}, {"migrations", n}, {"changed", changed},
				      {"moves_clients", diff.moves_clients ? "true" : "false"}),
		       "reloaded %s: %zu migration(s)%s%s%s", d->o.config, sy_registry_count(d->reg),
		       changed[0] ? "; changed " : ", nothing changed", changed,
		       diff.moves_clients ? " (moves clients)" : "");
	sy_diff_free(&diff);
	expect_ready(d);
}

static void stopped(void *arg)
{
	struct daemon *d = arg;

	sy_loop_stop(d->loop);
}

static void on_term(struct sy_loop *l, int signo, void *arg)
{
	struct daemon *d = arg;

	(void)l;
	if (d->stopping)
		return;
	d->stopping = 1;
	sy_info("daemon", "%s: stopping; pinned programs keep steering", strsignal(signo));
	sy_notify("STOPPING=1");
	if (d->rpc) {
		sy_health_svc_set_serving(d->rpc, false);
		sy_rpc_server_shutdown(d->rpc, 2000, stopped, d);
	} else {
		sy_loop_stop(d->loop);
	}
}

/* rollback --drain: the established client connections of one side end, so their
 * clients reconnect and are steered again (by then the ratio is 0). */
static int64_t drain_side(void *arg, uint32_t mig_id, uint8_t side)
{
	struct daemon *d = arg;
	struct sy_drain_result r;
	int e = sy_drain_side(d->bpf->socks_fd, d->bpf->conns_fd, mig_id, side, 0, &r);

	if (e)
		return e;
	if (r.failed)
		sy_warn("cutover", "drain: %llu of %llu connection(s) could not be ended: %s",
			(unsigned long long)r.failed, (unsigned long long)r.matched, strerror(-r.last_err));
	sy_info("cutover", "drain: ended %llu connection(s) in %llu us (%llu sockets walked)",
		(unsigned long long)r.destroyed, (unsigned long long)r.elapsed_us,
		(unsigned long long)r.examined);
	return (int64_t)r.destroyed;
}

/* What the kernel hands over: writes to the mirror, sampled read keys to dual reads. */
static void on_captured(const struct sy_captured *c, void *arg)
{
	struct daemon *d = arg;

	if (c->type == SY_EVT_WRITE)
		sy_mirror_on_captured(c, d->mirror);
	else
		sy_verify_on_captured(c, d->verify);
}

/* The mirror's clean-stop marker: present only between a stop with nothing in flight
 * and the next start. Missing at start (kill -9, crash, a stop with a backlog) means
 * replays may have been lost: repair cannot know their keys, so the migrations that
 * were mirroring are flagged needs-audit. */
static void clean_marker(const struct daemon *d, char *p, size_t n)
{
	snprintf(p, n, "%s/mirror.clean", d->o.state_dir);
}

static void check_clean_stop(struct daemon *d, size_t restored)
{
	char p[PATH_MAX];
	bool clean;

	clean_marker(d, p, sizeof(p));
	clean = access(p, F_OK) == 0;
	unlink(p);
	if (clean || !restored)
		return;
	for (size_t i = 0; i < sy_registry_count(d->reg); i++) {
		const struct sy_migration_state *m = sy_registry_at(d->reg, i);

		if (sy_mirror_effective(&m->spec))
			sy_mirror_flag_audit(
				d->mirror, m->id,
				"the previous agent stopped without draining its mirror (killed?)");
	}
}

static void mark_clean_stop(const struct daemon *d)
{
	char p[PATH_MAX];
	int fd;

	clean_marker(d, p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

static int start_rpc(struct daemon *d)
{
	int e;

	d->rpc = sy_rpc_server_new(d->loop, &(struct sy_rpc_server_opts){.max_recv_msg = d->o.rpc_max_msg});
	if (!d->rpc)
		return -ENOMEM;
	d->ctl = (struct sy_control_ctx){.reg = d->reg,
					 .health = d->health,
					 .info = &d->info,
					 .loop = d->loop,
					 .capture = d->capture,
					 .mirror = d->mirror,
					 .verify = d->verify,
					 .cutover = d->cutover};
	d->ctl.events = d->events;
	d->ctl.fleet = d->o.store ? sy_store_etcd_fleet(d->store) : NULL;
	d->ctl.tls = &d->tls;
	if ((e = sy_health_svc_register(d->rpc)) || (e = sy_control_svc_register(d->rpc, &d->ctl)) ||
	    (e = sy_fleet_svc_register(d->rpc, &d->ctl)) ||
	    (e = sy_telemetry_svc_register(d->rpc, &d->ctl)) ||
	    (e = sy_verify_svc_register(d->rpc, &d->ctl)) || (e = sy_events_svc_register(d->rpc, &d->ctl)) ||
	    (e = sy_tls_setup_server(d->rpc, &d->o.tls, &d->tls, d->o.listen, d->o.n_listen)))
		return e;
	for (int i = 0; i < d->o.n_listen; i++) {
		e = sy_rpc_server_listen(d->rpc, d->o.listen[i]);
		if (e) {
			sy_error("rpc", "listen on %s: %s", d->o.listen[i], strerror(-e));
			return e;
		}
		sy_info("rpc", "listening on %s", d->o.listen[i]);
	}
	return 0;
}

/* Fleet mode: the leader walks the cutover plans; everyone reports who leads. */
static void on_leader(void *arg, int is_leader, const char *leader)
{
	struct daemon *d = arg;

	snprintf(d->info.leader, sizeof(d->info.leader), "%s", leader);
	sy_cutover_set_leader(d->cutover, is_leader);
	sy_verify_set_leader(d->verify, is_leader);
	sy_job_requests_set_leader(d->jobreq, is_leader);
}

/* Fleet mode: a node's key appeared or went. */
static void on_node(void *arg, const char *node, bool joined)
{
	struct daemon *d = arg;
	char live[12];

	snprintf(live, sizeof(live), "%u", sy_fleet_alive(sy_store_etcd_fleet(d->store)));
	sy_events_emit(d->events, "", joined ? "fleet.node_joined" : "fleet.node_left",
		       SY_EVENT_ATTRS({"node", node}, {"alive", live}), "node %s %s the fleet (%s live)",
		       node, joined ? "joined" : "left", live);
}

int main(int argc, char **argv)
{
	struct daemon d = {0};
	struct sy_spec_err err = {{0}};
	struct timespec ts;
	char cgroot[PATH_MAX];
	char nmig[24];
	int e, lockfd, rc = 1;
	size_t restored = 0;
	/* metrics exporters (exporters.h): their options, then the file's telemetry: */
	struct sy_exporters_cfg expcfg;
	struct sy_exporters *exporters = NULL;
	struct sy_spec spec = {0}; /* --config as parsed at start, applied once the registry is up */

	e = sy_daemon_parse_opts(argc, argv, &d.o, &expcfg);
	if (e)
		return e < 0 ? 0 : e; /* -1: --help or --version answered */
	/* A bad config must fail before anything is touched. */
	if (d.o.config && read_config(d.o.config, &expcfg, &spec))
		return 1;
	/* TLS: a TCP listener without it refuses to start (2); unreadable files fail (1) */
	if ((e = sy_tls_check(&d.o.tls, d.o.listen, d.o.n_listen, expcfg.otlp_endpoint[0] != '\0')) ||
	    (e = sy_tls_open(&d.o.tls, &d.tls))) {
		sy_spec_free(&spec);
		return e;
	}
	signal(SIGPIPE, SIG_IGN);

	if (d.o.check_config) {
		printf("%s: %zu migration(s), valid\n", d.o.config, spec.n);
		sy_spec_free(&spec);
		return 0;
	}
	if (d.o.uninstall) {
		sy_spec_free(&spec);
		e = sy_bpf_uninstall(d.o.bpffs);
		if (e) {
			fprintf(stderr, "switchyardd: uninstall %s: %s\n", d.o.bpffs, strerror(-e));
			return 1;
		}
		return 0;
	}
	if (!d.o.cgroup) {
		e = sy_cgroup2_root(cgroot, sizeof(cgroot));
		if (e) {
			fprintf(stderr, "switchyardd: no cgroup2 mount in /proc/mounts (%s); pass --cgroup\n",
				strerror(-e));
			return 1;
		}
		d.o.cgroup = cgroot;
	}
	if ((e = sy_mkdir_p(d.o.state_dir, 0700))) {
		fprintf(stderr, "switchyardd: create state dir %s: %s\n", d.o.state_dir, strerror(-e));
		return 1;
	}
	lockfd = lock_state_dir(d.o.state_dir);
	if (lockfd < 0) {
		fprintf(stderr, "switchyardd: lock %s/switchyardd.lock: %s\n", d.o.state_dir,
			lockfd == -EBUSY ? "another switchyardd uses this state dir" : strerror(-lockfd));
		return 1;
	}

	d.loop = sy_loop_new();
	if (!d.loop)
		goto out;
	if ((e = sy_bpf_open(d.o.bpffs, d.o.cgroup, d.o.state_dir, &d.bpf)))
		goto out;
	if (d.o.store) {
		static char host[64]; /* d.o.node points here */

		if (!d.o.node && gethostname(host, sizeof(host) - 1) == 0)
			d.o.node = host;
		e = sy_store_etcd_open(d.loop,
				       &(struct sy_store_etcd_opts){.url = d.o.store,
								    .node = d.o.node,
								    .version = SY_VERSION,
								    .ttl_s = d.o.node_ttl_ms / 1000,
								    .cache_dir = d.o.state_dir,
								    .tls = d.tls.store},
				       &d.store);
		if (e)
			goto out;
	} else if ((e = sy_store_file_open(d.o.state_dir, &d.store))) {
		sy_error("state", "open state in %s: %s", d.o.state_dir, strerror(-e));
		goto out;
	}
	d.reg = sy_registry_new(d.bpf, d.store);
	d.health = sy_health_new(d.loop, d.o.health_interval_ms, d.o.health_timeout_ms, on_health, &d);
	/* Seqs start at the start time in microseconds (never repeated across restarts),
	 * unless the journal's history, restored below, goes on from its own. */
	clock_gettime(CLOCK_REALTIME, &ts);
	d.events = sy_events_new(SY_EVENTS_HISTORY, SY_EVENTS_MAX_BYTES,
				 (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
	if (!d.reg || !d.health || !d.events)
		goto out;
	/* the history of earlier runs first: a restarted agent still shows how it got here */
	d.journal = sy_events_journal_open(d.events, d.o.state_dir, SY_EVENTS_JOURNAL_BYTES);
	/* subscribers in the order they must hear a commit: events, health checks, then
	 * the components (mirror, verify, cutover subscribe as they are made) */
	if (sy_registry_subscribe(d.reg, "events", sy_migration_events_on_commit, d.events))
		goto out;
	if ((e = sy_registry_load(d.reg, &err))) {
		sy_error("state", "%s", err.msg);
		goto out;
	}
	restored = sy_registry_count(d.reg);
	if (d.o.store && sy_store_etcd_follow(d.store, d.reg))
		goto out;
	if (d.o.config && (e = load_config(&d, &spec, NULL, &err))) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	if (sy_registry_subscribe(d.reg, "health", refresh_health, &d))
		goto out;
	d.mirror = sy_mirror_new(d.loop, d.reg);
	if (!d.mirror)
		goto out;
	sy_mirror_on_audit_flag(d.mirror, on_needs_audit, &d);
	check_clean_stop(&d, restored);
	d.verify = sy_verify_new(d.loop, d.reg, d.mirror, d.o.state_dir);
	if (!d.verify)
		goto out;
	if ((e = sy_capture_new(d.loop, d.bpf->events_fd, 5, on_captured, &d, &d.capture)))
		goto out;
	sy_verify_resume(d.verify);
	if (d.o.store) /* a follower until the election says otherwise: no continuous audits */
		sy_verify_set_leader(d.verify, false);
	sy_verify_tick(d.verify);
	d.cutover = sy_cutover_new(d.loop, d.reg, d.verify, d.events);
	if (!d.cutover)
		goto out;
	sy_cutover_set_drain(d.cutover, drain_side, &d);
	if (d.o.store) {
		/* a follower until the election says otherwise */
		sy_cutover_set_leader(d.cutover, false);
		if (!(d.jobreq = sy_job_requests_new(d.loop, d.reg, d.verify, sy_store_etcd_fleet(d.store),
						     sy_store_etcd_node(d.store))))
			goto out;
		sy_store_etcd_on_leader(d.store, on_leader, &d);
		sy_cutover_set_fleet(d.cutover, sy_store_etcd_fleet(d.store));
		if (!(d.publish = sy_publish_new(d.loop, d.reg, d.verify, sy_store_etcd_fleet(d.store))))
			goto out;
		sy_fleet_on_change(sy_store_etcd_fleet(d.store), on_node, &d);
		snprintf(d.info.store, sizeof(d.info.store), "%s", d.store->where);
		snprintf(d.info.node, sizeof(d.info.node), "%s", sy_store_etcd_node(d.store));
	}
	sy_health_on_restart(d.health, on_restart, &d);
	if (!(d.resolver = sy_resolver_new(d.loop, d.reg, d.events)))
		goto out;
	sy_metrics_set_cutover_source(sy_cutover_metrics, d.cutover);
	sy_metrics_set_ops_source(&(struct sy_metrics_ops_src){.arg = &d,
							       .gates = ops_gates,
							       .endpoint_health = ops_endpoint_health,
							       .resolver = ops_resolver,
							       .tls = ops_tls});

	d.info.version = SY_VERSION;
	snprintf(d.info.cgroup, sizeof(d.info.cgroup), "%s", d.o.cgroup);
	snprintf(d.info.bpffs, sizeof(d.info.bpffs), "%s", d.o.bpffs);
	snprintf(d.info.state_dir, sizeof(d.info.state_dir), "%s", d.o.state_dir);
	d.info.adopted = d.bpf->adopted;
	clock_gettime(CLOCK_REALTIME, &ts);
	d.info.started_unix_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;

	if ((e = start_rpc(&d)))
		goto out;
	/* One HTTP listener: --metrics (or the file's telemetry.metrics) is an alias of --http. */
	if (d.o.http && expcfg.metrics[0] && strcmp(d.o.http, expcfg.metrics) != 0) {
		sy_error("http", "--http %s and metrics %s: one listener serves both; give one address",
			 d.o.http, expcfg.metrics);
		goto out;
	}
	if (d.o.http)
		snprintf(expcfg.metrics, sizeof(expcfg.metrics), "%s", d.o.http);
	if (d.o.http_per_ip_given && !expcfg.metrics[0]) {
		sy_error("http",
			 "--http-max-conns-per-ip: there is no HTTP listener (give --http ADDR:PORT)");
		goto out;
	}
	expcfg.otlp_tls = d.tls.otlp;
	if ((e = sy_exporters_start(
		     d.loop, &expcfg,
		     &(struct sy_metrics_src){.reg = d.reg,
					      .mirror = d.mirror,
					      .verify = d.verify,
					      .fleet = d.o.store ? sy_store_etcd_fleet(d.store) : NULL},
		     d.info.started_unix_ms, &exporters)))
		goto out;
	if (expcfg.metrics[0] && (e = sy_http_vendor_dir(d.o.http_js_dir)))
		goto out;
	if (expcfg.metrics[0] &&
	    (e = sy_http_start(d.loop, expcfg.metrics, d.rpc, &d.ctl, sy_exporters_prom(exporters),
			       d.o.http_token, d.o.http_per_ip, d.o.tls.cert, d.o.tls.key, &d.http)))
		goto out;
	if (sy_loop_add_signal(d.loop, SIGHUP, on_hup, &d) ||
	    sy_loop_add_signal(d.loop, SIGTERM, on_term, &d) ||
	    sy_loop_add_signal(d.loop, SIGINT, on_term, &d))
		goto out;
	snprintf(nmig, sizeof(nmig), "%zu", sy_registry_count(d.reg));
	sy_events_emit(d.events, "", "daemon.started",
		       SY_EVENT_ATTRS({"version", SY_VERSION}, {"migrations", nmig}, {"cgroup", d.o.cgroup},
				      {"adopted", d.bpf->adopted ? "true" : "false"}),
		       "switchyardd %s running: %zu migration(s), cgroup %s, %s", SY_VERSION,
		       sy_registry_count(d.reg), d.o.cgroup,
		       d.bpf->adopted ? "adopted pinned programs" : "fresh install");
	expect_ready(&d);
	if ((e = sy_loop_run(d.loop)) == 0)
		rc = 0;
	if (rc == 0 && d.mirror) {
		/* what the kernel captured before we stopped is still in the pinned ring
		 * buffer for the next agent; what we had in flight is not */
		if (sy_mirror_backlog(d.mirror) == 0)
			mark_clean_stop(&d);
		else
			sy_warn("mirror",
				"stopping with %llu mirrored writes or repairs in flight: the next start "
				"flags mirrored migrations needs-audit",
				(unsigned long long)sy_mirror_backlog(d.mirror));
	}
out:
	sy_spec_free(&spec);
	sy_http_free(d.http); /* first: its threads wait on the loop's figures and calls */
	sy_exporters_free(exporters);
	if (d.rpc)
		sy_rpc_server_free(d.rpc);
	sy_capture_free(d.capture);
	sy_publish_free(d.publish);
	sy_job_requests_free(d.jobreq);
	sy_cutover_free(d.cutover);
	sy_verify_free(d.verify);
	sy_mirror_free(d.mirror);
	sy_metrics_set_ops_source(NULL);
	sy_resolver_free(d.resolver);
	sy_xf_free_all();
	sy_health_free(d.health);
	sy_registry_free(d.reg);
	sy_store_close(d.store);
	sy_tls_close(&d.tls); /* after every connection that used it */
	if (d.bpf)
		sy_bpf_close(d.bpf);
	sy_loop_free(d.loop);
	sy_events_journal_close(d.events, d.journal);
	sy_events_free(d.events);
	close(lockfd);
	return rc;
}
