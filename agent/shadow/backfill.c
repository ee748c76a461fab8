// SPDX-License-Identifier: Apache-2.0
/* backfill.c — see backfill.h and docs/verify.md (backfill). */
#include "shadow/backfill.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "model/spec.h"
#include "redis/redis_conn.h"
#include "shadow/jobs.h"
#include "shadow/mirror.h"
#include "shadow/verify.h"

#define PATH_CAP (PATH_MAX + SY_NAME_MAX + 32)

void sy_backfill_path(const char *state_dir, const char *name, char *p, size_t n)
{
	/* a state dir too long for PATH_MAX was refused at start: truncation cannot happen */
	if (snprintf(p, n, "%s/backfill-%s.state", state_dir, name) >= (int)n)
		p[0] = 0;
}

/* One line: state pattern cursor copied started_ms rate_keys rate_bytes db dbs. */
static void save(struct sy_backfill *b)
{
	char p[PATH_CAP], line[256];

	sy_backfill_path(b->env.state_dir, b->env.name, p, sizeof(p));
	snprintf(line, sizeof(line), "%s %u %s %llu %llu %u %llu %d %llu\n", sy_job_state_name(b->state),
		 b->pattern, b->cursor, (unsigned long long)b->copied, (unsigned long long)b->started_ms,
		 b->rate_keys, (unsigned long long)b->rate_bytes, b->db, (unsigned long long)b->ks.dbs);
	sy_job_save(b->env.name, "backfill", p, line, &b->save_err);
}

static void finish(struct sy_backfill *b, enum sy_job_state state)
{
	b->state = state;
	b->finished_ms = sy_unix_ms();
	b->t1_mono = sy_now_ms();
	save(b);
	sy_info("verify", "%s: backfill %s: %llu keys copied", b->env.name, sy_job_state_name(state),
		(unsigned long long)b->copied);
}

static void step(struct sy_loop *l, void *arg);

static void on_scan(struct sy_redis *c, redisReply *r, void *priv)
{
	struct sy_backfill *b = priv;
	const struct sy_backfill_env *e = &b->env;
	redisReply *keys;

	(void)c;
	b->scan_pending = false;
	if (!*e->active || b->state != SY_JOB_RUNNING)
		return;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
		/* the connection dropped: the saved place is still right, try again */
		b->timer = sy_loop_add_timer(e->loop, 200, step, b);
		return;
	}
	keys = r->element[1];
	b->batch_ms = sy_now_ms();
	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *k = keys->element[i];

		if (k->type != REDIS_REPLY_STRING)
			continue;
		b->scanned++;
		/* marked first: a write to it from now on is copied again after it settles */
		sy_mirror_note_copy(e->mirror, e->id, b->db, k->str, k->len);
		if (sy_mirror_repair_key(e->mirror, e->id, SY_DIR_FORWARD, b->db, k->str, k->len) == 0)
			b->copied++;
	}
	snprintf(b->cursor, sizeof(b->cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
	if (strcmp(b->cursor, "0") == 0 && !(e->spec->n_scope && ++b->pattern < e->spec->n_scope)) {
		/* every pattern of this database scanned: the next database, or done once the
		 * copies land */
		int next = sy_job_next_db(b->ks.dbs, b->db);

		b->pattern = next >= 0 ? 0 : UINT32_MAX;
		if (next >= 0)
			b->db = next;
	}
	b->timer = sy_loop_add_timer(e->loop, 0, step, b);
}

static void step(struct sy_loop *l, void *arg)
{
	struct sy_backfill *b = arg;
	const struct sy_backfill_env *e = &b->env;
	struct sy_mirror_stats ms;
	uint64_t elapsed, wait = 0;

	(void)l;
	b->timer = 0;
	if (!*e->active || b->state != SY_JOB_RUNNING || b->scan_pending)
		return;
	sy_mirror_stats(e->mirror, e->id, SY_DIR_FORWARD, &ms);
	if (ms.dirty && sy_now_ms() - b->batch_ms < 2000) {
		/* the last batch is still being copied: its place is saved once it is done.
		 * Writers that keep other keys dirty (two connections on one key) would stall
		 * the backfill for good: after 2 s it goes on, and a crash in that window is
		 * covered by needs-audit (the mirror's clean-stop marker) */
		b->timer = sy_loop_add_timer(e->loop, 1, step, b);
		return;
	}
	if (b->pattern == UINT32_MAX) {
		finish(b, SY_JOB_DONE);
		return;
	}
	save(b);
	elapsed = sy_now_ms() - b->t0_mono;
	if (b->rate_keys && b->copied - b->copied0 > elapsed * b->rate_keys / 1000)
		wait = (b->copied - b->copied0) * 1000 / b->rate_keys - elapsed;
	if (b->rate_bytes && ms.repaired_bytes - b->bytes0 > elapsed * b->rate_bytes / 1000) {
		uint64_t w = (ms.repaired_bytes - b->bytes0) * 1000 / b->rate_bytes - elapsed;

		wait = w > wait ? w : wait;
	}
	if (wait || !sy_redis_alive(*e->legacy)) {
		b->timer = sy_loop_add_timer(e->loop, wait ? wait : 200, step, b);
		return;
	}
	/* small batches when slow: the pace stays smooth and a restart re-copies little;
	 * large ones at full speed, where the wait between batches would dominate */
	if (sy_job_select(*e->legacy, e->legacy_db, b->db) == 0 &&
	    sy_job_scan(*e->legacy, e->spec, SY_SIDE_LEGACY, b->pattern, b->cursor,
			!b->rate_keys	      ? "1000"
			: b->rate_keys < 1000 ? "10"
					      : "100",
			on_scan, b) == 0)
		b->scan_pending = true;
	else
		b->timer = sy_loop_add_timer(e->loop, 200, step, b);
}

static void begin(struct sy_backfill *b)
{
	struct sy_mirror_stats ms;

	sy_mirror_stats(b->env.mirror, b->env.id, SY_DIR_FORWARD, &ms);
	b->bytes0 = ms.repaired_bytes;
	b->copied0 = b->copied;
	b->t0_mono = sy_now_ms();
	/* INFO keyspace: the databases with keys, and every key (with a scope the total
	 * is unknown until done). Its answer comes before the first SCAN's. */
	if (sy_redis_alive(*b->env.legacy))
		sy_job_keyspace(*b->env.legacy, &b->ks);
	b->timer = sy_loop_add_timer(b->env.loop, 0, step, b);
}

/* Forgets the last job, keeps the binding. */
static void reset(struct sy_backfill *b)
{
	struct sy_backfill_env env = b->env;

	memset(b, 0, sizeof(*b));
	b->env = env;
}

void sy_backfill_bind(struct sy_backfill *b, const struct sy_backfill_env *env)
{
	b->env = *env;
}

int sy_backfill_start(struct sy_backfill *b, uint32_t keys_per_s, uint64_t bytes_per_s)
{
	if (b->state == SY_JOB_RUNNING)
		return -EBUSY;
	reset(b);
	b->state = SY_JOB_RUNNING;
	b->rate_keys = keys_per_s;
	b->rate_bytes = bytes_per_s;
	strcpy(b->cursor, "0");
	b->ks.dbs = 1; /* database 0 always; INFO keyspace adds the others */
	b->started_ms = sy_unix_ms();
	sy_info("verify", "%s: backfill started (%u keys/s, %llu bytes/s; 0 = unbounded)", b->env.name,
		keys_per_s, (unsigned long long)bytes_per_s);
	begin(b);
	return 0;
}

void sy_backfill_resume(struct sy_backfill *b)
{
	char p[PATH_CAP], state[16], cursor[32];
	unsigned long long copied, started, rb, dbs = 1;
	int db = 0;
	unsigned pattern, rk;
	FILE *f;
	int n;

	sy_backfill_path(b->env.state_dir, b->env.name, p, sizeof(p));
	if (!(f = fopen(p, "r")))
		return;
	n = fscanf(f, "%15s %u %31s %llu %llu %u %llu %d %llu", state, &pattern, cursor, &copied, &started,
		   &rk, &rb, &db, &dbs);
	fclose(f);
	/* 7 fields: saved before every database was backfilled (database 0 only) */
	if ((n != 7 && n != 9) || sy_job_state_parse(state) != SY_JOB_RUNNING || db < 0 || db >= 64)
		return;
	reset(b);
	b->state = SY_JOB_RUNNING;
	b->pattern = pattern;
	b->db = n == 9 ? db : 0;
	b->ks.dbs = (n == 9 ? dbs : 0) | 1ull << b->db;
	snprintf(b->cursor, sizeof(b->cursor), "%s", cursor);
	b->copied = copied;
	b->started_ms = started;
	b->rate_keys = rk;
	b->rate_bytes = rb;
	b->resumed = 1;
	sy_info("verify", "%s: resuming the backfill at cursor %s (%llu keys copied before)", b->env.name,
		cursor, copied);
	begin(b);
}

void sy_backfill_status(const struct sy_backfill *b, struct sy_backfill_status *out)
{
	struct sy_mirror_stats st;
	double secs;

	out->state = b->state;
	out->scanned = b->scanned;
	out->copied = b->copied;
	sy_mirror_stats(b->env.mirror, b->env.id, SY_DIR_FORWARD, &st);
	out->bytes = st.repaired_bytes >= b->bytes0 ? st.repaired_bytes - b->bytes0 : 0;
	out->total = b->ks.keys > b->copied ? b->ks.keys : b->copied;
	/* with a scope, INFO's count of every key is no total: unknown while it runs, the
	 * copied keys once done */
	if (b->env.spec && b->env.spec->n_scope)
		out->total = b->state == SY_JOB_RUNNING ? 0 : b->copied;
	secs = b->t0_mono ? (double)((b->t1_mono ? b->t1_mono : sy_now_ms()) - b->t0_mono) / 1000.0 : 0;
	out->keys_per_s = secs > 0 ? (double)(b->copied - b->copied0) / secs : 0;
	out->bytes_per_s = secs > 0 ? (double)out->bytes / secs : 0;
	out->eta_s = out->state == SY_JOB_RUNNING && out->keys_per_s > 0 && out->total
			     ? (double)(out->total - out->copied) / out->keys_per_s
			     : 0;
	out->rate_keys = b->rate_keys;
	out->rate_bytes = (uint32_t)b->rate_bytes;
	out->started_unix_ms = b->started_ms;
	out->finished_unix_ms = b->finished_ms;
	out->resumed = b->resumed;
	out->error = b->error;
}

void sy_backfill_stop(struct sy_backfill *b)
{
	if (b->env.loop)
		sy_loop_cancel_timer(b->env.loop, b->timer);
	b->timer = 0;
}
