/* SPDX-License-Identifier: BSD-2-Clause */
/* What one policy commit costs with policy banks (lib/steer_banks.c): N
 * set_weights on one eBPF group of two listeners, back to back and then
 * paced by --gap-us, with the median/p99/max time of each, how often the
 * writer waited for a free bank, and the grace periods the reclaim thread
 * saw (median/p99). Needs root (eBPF); binds 127.0.0.1 on a kernel port. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "baton.h"
#include "benchlib.h"
#include "steer_int.h"

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(*port) };
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

/* N commits, GAP_US apart; prints one row. */
static int run(struct baton_group *g, int n, int gap_us, uint32_t *ns)
{
	struct steer_banks_info *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	int i, r = 0;

	if (!a || !b)
		return -ENOMEM;
	steer_banks_info(g, a);
	for (i = 0; i < n && !r; i++) {
		static const uint32_t p1[] = { 1, 0 }, p2[] = { 0, 1 };
		long long t0 = now_ns();

		r = baton_group_set_weights(g, i % 2 ? p2 : p1, 2);
		ns[i] = (uint32_t)(now_ns() - t0);
		if (gap_us)
			usleep((useconds_t)gap_us);
	}
	steer_banks_info(g, b);
	qsort(ns, (size_t)i, sizeof(*ns), cmp_u32);
	qsort(b->gp_us, b->ngp_us, sizeof(b->gp_us[0]), cmp_u32);
	printf("%-12d %8d %10.1f %10.1f %10.1f %8llu %6llu %10.1f %10.1f\n", gap_us, i, ns[i / 2] / 1e3,
	       ns[i * 99 / 100] / 1e3, ns[i - 1] / 1e3, (unsigned long long)(b->waits - a->waits),
	       (unsigned long long)(b->gps - a->gps), b->ngp_us ? b->gp_us[b->ngp_us / 2] / 1e3 : 0.0,
	       b->ngp_us ? b->gp_us[b->ngp_us * 99 / 100] / 1e3 : 0.0);
	free(a);
	free(b);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "commits", required_argument, NULL, 'n' },
					      { "gap-us", required_argument, NULL, 'g' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF);
	int n = 10000, gap = 1000, c, fds[2], r;
	struct baton_group *g;
	uint16_t port = 0;
	uint32_t *ns;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n' && (n = atoi(optarg)) > 0 && n <= 1000000)
			continue;
		if (c == 'g' && (gap = atoi(optarg)) >= 0 && gap <= 1000000)
			continue;
		if (c == 'h') {
			printf("usage: %s [--commits N (10000)] [--gap-us U (1000)]\n"
			       "N policy commits on one eBPF group back to back, then U microseconds apart:\n"
			       "time of each (median/p99/max, us), writer waits, grace periods (median/p99, ms).\n",
			       argv[0]);
			return 0;
		}
		if (c == 'n' || c == 'g') {
			fprintf(stderr, "%s: --%s %s: want %s\n", argv[0], c == 'n' ? "commits" : "gap-us", optarg,
				c == 'n' ? "1 to 1000000" : "0 to 1000000");
			return 2;
		}
		return bench_opt_error(argv[0], c, argv);
	}
	if ((r = bench_extra_args(argv[0], argc, argv)))
		return r;
	ns = calloc((size_t)n, sizeof(*ns));
	fds[0] = listener(&port);
	fds[1] = listener(&port);
	if (!ns || fds[0] < 0 || fds[1] < 0) {
		fprintf(stderr, "%s: cannot listen on 127.0.0.1: %s\n", argv[0], strerror(errno));
		return 1;
	}
	g = baton_group_new(&o);
	if (!g || baton_group_add(g, fds[0], 1) < 0 || baton_group_add(g, fds[1], 0) < 0) {
		fprintf(stderr, "%s: cannot make an eBPF group: %s (needs root)\n", argv[0], strerror(errno));
		return 1;
	}
	printf("%-12s %8s %10s %10s %10s %8s %6s %10s %10s\n", "gap_us", "commits", "median_us", "p99_us",
	       "max_us", "waits", "gps", "gp_med_ms", "gp_p99_ms");
	r = run(g, n, 0, ns);
	if (!r && gap)
		r = run(g, n, gap, ns);
	baton_group_free(g);
	free(ns);
	if (r)
		fprintf(stderr, "%s: set_weights: %s\n", argv[0], strerror(-r));
	return r ? 1 : 0;
}
