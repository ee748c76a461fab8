// SPDX-License-Identifier: Apache-2.0
/* connect_bench.c — cost of connect()+close() on loopback, for bench/steer.sh.
 * usage: connect_bench HOST PORT N [CGROUP]
 * Joins CGROUP first (so the steering programs run), then times N blocking
 * connect()+close() pairs; SO_LINGER 0 closes with RST so no TIME_WAIT piles up.
 * Prints the median of 5 rounds in ns per pair. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	double rounds[5];
	long n;

	if (argc < 4) {
		fprintf(stderr, "usage: %s HOST PORT N [CGROUP]\n", argv[0]);
		return 2;
	}
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	n = atol(argv[3]);
	if (argc > 4) {
		char p[4096];
		FILE *f;

		snprintf(p, sizeof(p), "%s/cgroup.procs", argv[4]);
		f = fopen(p, "w");
		if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f) != 0) {
			perror(p);
			return 1;
		}
	}
	for (int r = 0; r < 5; r++) {
		double t0 = now_ns();

		for (long i = 0; i < n; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);

			if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
				perror("connect");
				return 1;
			}
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
		}
		rounds[r] = (now_ns() - t0) / (double)n;
	}
	qsort(rounds, 5, sizeof(rounds[0]), cmp);
	printf("%.0f\n", rounds[2]);
	return 0;
}
