// SPDX-License-Identifier: Apache-2.0
/* sy_xfbench — the mirror's transform stage alone, on one thread: what the agent's
 * loop spends on one captured write between the ring buffer and the socket, with and
 * without a transform (docs/transforms.md, bench/transform.sh).
 *
 *   sy_xfbench --script FILE [--n N] [--rounds R] [--fields F]
 *
 * It captures N `SET user:I <JSON object of F fields>` as the kernel hands them over
 * (name + RESP body), then times R passes of each path over them:
 *   plain  — sy_argv_parse, then the RESP hiredis formats for the replay;
 *   write  — sy_argv_parse, forward_write, then the RESP of every command it returned
 *            (with MULTI/EXEC around several), as sy_targvs_send queues them;
 *   key    — forward_key of the same documents as typed string keys (backfill, repair).
 * Prints one JSON line: {"n":, "plain":, "write":, "key":, "fallback":} in calls per
 * second of the thread's CPU time (the best pass of each); fallback counts the
 * forward_write answers that were nil. No network and no server: the end-to-end
 * figures are bench/transform.sh's. Exit 1 when the script fails to load or a call
 * fails, 2 on bad usage. */
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis/resp_argv.h"
#include "transform/transform.h"

struct cap {
	char *body;
	size_t len;
};

/* The thread's CPU time, not the wall clock: the machine is shared, and the goal is
 * what one thread of the agent can do when it has its core. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: sy_xfbench --script FILE [--n N] [--rounds R] [--fields F]\n");
	return 2;
}

/* The bytes of the replay: what hiredis's async send (redisAsyncCommandArgv) formats
 * before it queues them. */
static size_t format(int argc, const char **argv, const size_t *lens)
{
	sds cmd = NULL;
	int n = redisFormatSdsCommandArgv(&cmd, argc, argv, lens);

	redisFreeSdsCommand(cmd);
	return n > 0 ? (size_t)n : 0;
}

static char *json_doc(int i, int fields, size_t *len)
{
	static const char *const names[] = {"name", "email", "city", "age", "plan", "team", "since", "score"};
	char buf[1024];
	size_t n = 0;

	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{");
	for (int f = 0; f < fields && f < 8; f++) {
		if (f == 3 || f == 6 || f == 7)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%s\":%d", f ? "," : "", names[f],
					      (i * 7 + f) % 1000);
		else
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%s\":\"%s-%d\"", f ? "," : "",
					      names[f], names[f], i);
	}
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "}");
	*len = n;
	return strndup(buf, n);
}

/* One captured SET: the body after the name, as the kernel cuts it. */
static struct cap capture(int i, int fields)
{
	struct cap c;
	char key[32];
	size_t dl, kl = (size_t)snprintf(key, sizeof(key), "user:%d", i);
	char *doc = json_doc(i, fields, &dl);

	c.body = malloc(kl + dl + 64);
	c.len = (size_t)sprintf(c.body, "$%zu\r\n%s\r\n$%zu\r\n%s\r\n", kl, key, dl, doc);
	free(doc);
	return c;
}

static int pass_plain(const struct cap *caps, int n, size_t *bytes)
{
	for (int i = 0; i < n; i++) {
		struct sy_argv a;

		if (sy_argv_parse(&a, "SET", 3, (const uint8_t *)caps[i].body, caps[i].len, 3, false)) {
			sy_argv_free(&a);
			return -1;
		}
		*bytes += format(a.argc, a.argv, a.lens);
		sy_argv_free(&a);
	}
	return 0;
}

static int pass_write(struct sy_transform *t, const struct cap *caps, int n, size_t *bytes, long *nil)
{
	static const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
	static const size_t ml[1] = {5}, el[1] = {4};
	char err[SY_TRANSFORM_ERR_MAX];

	for (int i = 0; i < n; i++) {
		struct sy_argv a;
		struct sy_targvs out;
		int e;

		if (sy_argv_parse(&a, "SET", 3, (const uint8_t *)caps[i].body, caps[i].len, 3, false)) {
			sy_argv_free(&a);
			return -1;
		}
		e = sy_transform_write(t, false, a.argc, a.argv, a.lens, &out, err, sizeof(err));
		sy_argv_free(&a);
		if (e < 0) {
			fprintf(stderr, "sy_xfbench: forward_write: %s\n", err);
			return -1;
		}
		if (e == 1) {
			(*nil)++;
			continue;
		}
		if (out.n > 1)
			*bytes += format(1, multi, ml);
		for (size_t j = 0; j < out.n; j++)
			*bytes += format(out.v[j].argc, out.v[j].argv, out.v[j].lens);
		if (out.n > 1)
			*bytes += format(1, exec, el);
		sy_targvs_free(&out);
	}
	return 0;
}

static int pass_key(struct sy_transform *t, const struct cap *caps, int n, size_t *bytes)
{
	char err[SY_TRANSFORM_ERR_MAX];

	for (int i = 0; i < n; i++) {
		struct sy_argv a;
		struct sy_tval v;
		struct sy_tkey in = {.type = SY_KT_STRING, .ttl_ms = -1, .items = &v, .n = 1};
		struct sy_tkeys out;

		if (sy_argv_parse(&a, "SET", 3, (const uint8_t *)caps[i].body, caps[i].len, 3, false)) {
			sy_argv_free(&a);
			return -1;
		}
		in.key = a.argv[1];
		in.klen = a.lens[1];
		v.p = a.argv[2];
		v.n = a.lens[2];
		if (sy_transform_key(t, false, &in, &out, err, sizeof(err))) {
			sy_argv_free(&a);
			fprintf(stderr, "sy_xfbench: forward_key: %s\n", err);
			return -1;
		}
		for (size_t j = 0; j < out.n; j++)
			*bytes += out.v[j].n;
		sy_tkeys_free(&out);
		sy_argv_free(&a);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"script", required_argument, NULL, 's'},
					     {"n", required_argument, NULL, 'n'},
					     {"rounds", required_argument, NULL, 'r'},
					     {"fields", required_argument, NULL, 'f'},
					     {0}};
	const char *script = NULL;
	int n = 100000, rounds = 5, fields = 5, o;
	double best[3] = {0};
	long nil = 0;
	size_t bytes = 0;
	struct sy_transform *t;
	struct cap *caps;
	char err[SY_TRANSFORM_ERR_MAX];

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			script = optarg;
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'f':
			fields = atoi(optarg);
			break;
		default:
			return usage();
		}
	}
	if (!script || n < 1 || rounds < 1 || fields < 1 || fields > 8)
		return usage();
	if (sy_transform_load(script, "bench", NULL, &t, err, sizeof(err))) {
		fprintf(stderr, "sy_xfbench: %s\n", err);
		return 1;
	}
	caps = calloc((size_t)n, sizeof(*caps));
	if (!caps)
		return 1;
	for (int i = 0; i < n; i++)
		caps[i] = capture(i, fields);
	/* interleaved passes, the best of each: the machine is shared */
	for (int r = 0; r < rounds; r++) {
		double t0, rate;
		long nl = 0;

		t0 = now_s();
		if (pass_plain(caps, n, &bytes))
			return 1;
		rate = n / (now_s() - t0);
		best[0] = rate > best[0] ? rate : best[0];
		t0 = now_s();
		if (pass_write(t, caps, n, &bytes, &nl))
			return 1;
		rate = n / (now_s() - t0);
		best[1] = rate > best[1] ? rate : best[1];
		nil = nl;
		if (sy_transform_has(t, SY_TF_FORWARD_KEY)) {
			t0 = now_s();
			if (pass_key(t, caps, n, &bytes))
				return 1;
			rate = n / (now_s() - t0);
			best[2] = rate > best[2] ? rate : best[2];
		}
	}
	printf("{\"n\": %d, \"fields\": %d, \"plain\": %.0f, \"write\": %.0f, \"key\": %.0f, \"fallback\": "
	       "%ld, "
	       "\"bytes\": %zu}\n",
	       n, fields, best[0], best[1], best[2], nil, bytes);
	for (int i = 0; i < n; i++)
		free(caps[i].body);
	free(caps);
	sy_transform_free(t);
	return 0;
}
