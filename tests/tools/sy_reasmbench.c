// SPDX-License-Identifier: Apache-2.0
/* sy_reasmbench — the agent's reading of ring-buffer records alone (kernel/capture.c,
 * sy_reasm_feed), on one thread: what a captured write costs between the ring buffer
 * and the mirror when it comes in its own record, and when it comes in a batch record
 * (SY_EVF_BATCH) that the agent splits with the kernel's RESP machine.
 *
 *   sy_reasmbench [--batch B] [--value V] [--rounds R]
 *
 * Builds 4096 `SET key:I <V bytes>` both ways (per-command records; batch records of B
 * commands), feeds each set R times and prints one JSON line: {"batch":, "value":,
 * "single_ns":, "batched_ns":} in ns of the thread's CPU time per command (the best
 * round of each). No ring buffer, no consumer work: the callback only counts. Exit 1
 * when a record is refused, 2 on bad usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel/capture.h"

#define N 4096

static uint64_t delivered;

static void count(const struct sy_captured *c, void *arg)
{
	(void)arg;
	delivered += !c->aborted;
}

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Appends one record: header then bytes. */
static size_t put(uint8_t *out, uint8_t flags, uint32_t seq, uint32_t total, const char *name, uint32_t argc,
		  const void *bytes, size_t len)
{
	struct sy_ev_hdr h = {.type = SY_EVT_WRITE,
			      .flags = flags,
			      .mig_id = 1,
			      .cookie = 42,
			      .cmd_seq = seq,
			      .argc = argc,
			      .len = (uint32_t)len,
			      .total = total};

	if (name) /* one of ours: short */
		memcpy(h.name, name, (h.name_len = (uint8_t)strlen(name)));
	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), bytes, len);
	return sizeof(h) + len;
}

/* Feeds every record of buf (sizes in sz) R times; the best round, in ns per command. */
static double run(struct sy_reasm *r, const uint8_t *buf, const size_t *sz, int nrec, int rounds)
{
	static struct sy_capture_stats per[SY_MAX_MIGRATIONS];
	double best = 1e18;

	for (int k = 0; k < rounds; k++) {
		double t0 = cpu_ns(), dt;
		const uint8_t *p = buf;

		delivered = 0;
		for (int i = 0; i < nrec; i++) {
			if (sy_reasm_feed(r, p, sz[i], per) != 0)
				exit(1);
			p += sz[i];
		}
		dt = cpu_ns() - t0;
		if (delivered != N)
			exit(1);
		if (dt < best)
			best = dt;
	}
	return best / N;
}

int main(int argc, char **argv)
{
	int batch = 16, value = 16, rounds = 50, o;
	static const struct option opts[] = {
		{"batch", 1, 0, 'b'}, {"value", 1, 0, 'v'}, {"rounds", 1, 0, 'r'}, {0, 0, 0, 0}};
	uint8_t *single, *batched, cmd[1024], *p, *bp, run_bytes[64 * sizeof(cmd)];
	size_t *ssz, *bsz, cl, bl = 0;
	int nb = 0;
	struct sy_reasm *r;
	char val[600];

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'b')
			batch = atoi(optarg);
		else if (o == 'v')
			value = atoi(optarg);
		else if (o == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	if (batch < 1 || batch > 64 || value < 1 || value > 512 || rounds < 1)
		return 2;
	memset(val, 'v', (size_t)value);
	val[value] = 0;
	single = malloc((size_t)N * (sizeof(struct sy_ev_hdr) + sizeof(cmd)));
	batched = malloc((size_t)N * (sizeof(struct sy_ev_hdr) + sizeof(cmd)));
	ssz = calloc(N, sizeof(*ssz));
	bsz = calloc(N, sizeof(*bsz));
	r = sy_reasm_new(64, count, NULL);
	if (!single || !batched || !ssz || !bsz || !r)
		return 1;
	p = single;
	bp = batched;

	for (int i = 0; i < N; i++) {
		char key[32];
		int kl = snprintf(key, sizeof(key), "key:%d", i);

		cl = (size_t)snprintf((char *)cmd, sizeof(cmd),
				      "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", kl, key, value, val);
		/* a per-command record carries the body after the name */
		ssz[i] = put(p, SY_EVF_FIRST | SY_EVF_LAST, (uint32_t)i, (uint32_t)(cl - 13), "SET", 3,
			     cmd + 13, cl - 13);
		p += ssz[i];
		memcpy(run_bytes + bl, cmd, cl);
		bl += cl;
		if (bl > SY_EV_FRAG_MAX) {
			fprintf(stderr, "sy_reasmbench: a batch of %d is more than one record holds\n",
				batch);
			return 2;
		}
		if ((i + 1) % batch == 0 || i == N - 1) {
			uint32_t n = (uint32_t)((i % batch) + 1);

			bsz[nb] = put(bp, SY_EVF_FIRST | SY_EVF_LAST | SY_EVF_BATCH,
				      (uint32_t)(i + 1 - (int)n), n, NULL, 0, run_bytes, bl);
			bp += bsz[nb++];
			bl = 0;
		}
	}
	printf("{\"batch\": %d, \"value\": %d, \"single_ns\": %.1f, \"batched_ns\": %.1f}\n", batch, value,
	       run(r, single, ssz, N, rounds), run(r, batched, bsz, nb, rounds));
	sy_reasm_free(r);
	free(single);
	free(batched);
	free(ssz);
	free(bsz);
	return 0;
}
