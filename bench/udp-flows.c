/* SPDX-License-Identifier: BSD-2-Clause */
/* What the UDP flow table costs: datagrams per second through a UDP echo on
 * loopback, steered by a baton group with per-datagram steering (flows=off)
 * and with the flow table (flows=on), the two interleaved in every round so
 * drift in machine load hits both alike; the ratio is the figure. With the
 * kernel's BPF run-time statistics (BPF_ENABLE_STATS, held only while it
 * runs) it also reports what the program itself costs per datagram, a
 * figure that a busy machine does not blur. */
#include <errno.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "baton.h"

enum config { CFG_OFF, CFG_ON, NCFG };
static const char *const cfg_name[NCFG] = { "off", "flows" };

#define MAX_ROUNDS 200
#define MAX_FLOWS 4096
#define BATCH 32
#define WARMUP_S 0.05

struct run {
	int member[2];		/* the group's members; slot 0 takes traffic */
	struct sockaddr_in to;
	int stop;		/* __atomic */
	uint64_t echoed;	/* __atomic, server side */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Echoes whatever arrives on either member, in batches. */
static void *server(void *arg)
{
	struct run *r = arg;
	struct pollfd p[2] = { { .fd = r->member[0], .events = POLLIN }, { .fd = r->member[1], .events = POLLIN } };

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		if (poll(p, 2, 50) <= 0)
			continue;
		for (int k = 0; k < 2; k++) {
			struct mmsghdr m[BATCH];
			struct sockaddr_in from[BATCH];
			struct iovec iv[BATCH];
			char buf[BATCH][64];
			int got;

			if (!(p[k].revents & POLLIN))
				continue;
			for (int i = 0; i < BATCH; i++) {
				iv[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
				m[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof(from[i]),
								 .msg_iov = &iv[i], .msg_iovlen = 1 };
			}
			got = recvmmsg(p[k].fd, m, BATCH, MSG_DONTWAIT, NULL);
			if (got <= 0)
				continue;
			for (int i = 0; i < got; i++)
				iv[i].iov_len = m[i].msg_len;
			sendmmsg(p[k].fd, m, (unsigned)got, MSG_DONTWAIT);
			__atomic_add_fetch(&r->echoed, (uint64_t)got, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static struct baton_group *make_group(enum config c, struct run *r, int nflows)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .flows = c == CFG_ON ? BATON_FLOWS_ON : BATON_FLOWS_OFF,
		   .flow_table = (uint32_t)nflows * 4);
	struct baton_group *g = baton_group_new(&o);
	struct baton_spec spec;
	socklen_t len = sizeof(r->to);

	if (!g)
		return NULL;
	baton_spec_parse("udp://127.0.0.1:0", &spec, NULL, 0);
	r->member[0] = baton_listener_open(&spec);
	r->member[1] = r->member[0] >= 0 ? baton_listener_open_like(r->member[0], 0) : -1;
	if (r->member[1] < 0 || baton_group_add(g, r->member[0], 1) < 0 || baton_group_add(g, r->member[1], 0) < 0 ||
	    getsockname(r->member[0], (struct sockaddr *)&r->to, &len)) {
		baton_group_free(g);
		return NULL;
	}
	return g;
}

/* The steering program's own time per decision so far, in ns; -1 unknown. */
static double prog_ns(const struct baton_group *g)
{
	struct bpf_prog_info info;
	uint32_t id, len = sizeof(info);
	double ns = -1;
	int fd;

	if (baton_group_prog_id(g, &id) || (fd = bpf_prog_get_fd_by_id(id)) < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.run_cnt)
		ns = (double)info.run_time_ns / (double)info.run_cnt;
	close(fd);
	return ns;
}

/* Both configurations live for the whole run, each with its group, port,
 * echo thread and client sockets (one flow each, one datagram in flight);
 * a round points the load at one, then the other. */
struct bench {
	struct run r[NCFG];
	struct baton_group *g[NCFG];
	pthread_t th[NCFG];
	bool started[NCFG];
	int *cli[NCFG];
	int ep[NCFG];
	int nflows;
};

static int bench_setup(struct bench *b, int nflows)
{
	b->nflows = nflows;
	for (int c = 0; c < NCFG; c++) {
		b->r[c] = (struct run){ .member = { -1, -1 } };
		b->ep[c] = epoll_create1(EPOLL_CLOEXEC);
		b->cli[c] = calloc((size_t)nflows, sizeof(int));
		b->g[c] = make_group((enum config)c, &b->r[c], nflows);
		if (!b->g[c] || b->ep[c] < 0 || !b->cli[c]) {
			fprintf(stderr, "udp-flows: setup (%s): %s\n", cfg_name[c], strerror(errno));
			return -1;
		}
		for (int i = 0; i < nflows; i++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

			b->cli[c][i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (b->cli[c][i] < 0 || epoll_ctl(b->ep[c], EPOLL_CTL_ADD, b->cli[c][i], &ev)) {
				fprintf(stderr, "udp-flows: client socket: %s\n", strerror(errno));
				return -1;
			}
		}
		if (pthread_create(&b->th[c], NULL, server, &b->r[c])) {
			fprintf(stderr, "udp-flows: thread: %s\n", strerror(errno));
			return -1;
		}
		b->started[c] = true;
		for (int i = 0; i < nflows; i++)
			sendto(b->cli[c][i], "x", 1, 0, (struct sockaddr *)&b->r[c].to, sizeof(b->r[c].to));
	}
	return 0;
}

static void bench_free(struct bench *b)
{
	for (int c = 0; c < NCFG; c++) {
		__atomic_store_n(&b->r[c].stop, 1, __ATOMIC_RELAXED);
		if (b->started[c])
			pthread_join(b->th[c], NULL);
		for (int i = 0; b->cli[c] && i < b->nflows; i++)
			if (b->cli[c][i] > 0)
				close(b->cli[c][i]);
		free(b->cli[c]);
		if (b->ep[c] >= 0)
			close(b->ep[c]);
		baton_group_free(b->g[c]);
		for (int k = 0; k < 2; k++)
			if (b->r[c].member[k] >= 0)
				close(b->r[c].member[k]);
	}
}

/* Echoes through configuration C for SECONDS after a short warm-up. */
static int measure(struct bench *b, enum config c, double seconds, double *rate)
{
	int *cli = b->cli[c];
	struct sockaddr_in *to = &b->r[c].to;
	uint64_t at_start = 0, got = 0;
	double t0 = now_s(), start = 0;

	*rate = 0;
	for (;;) {
		struct epoll_event evs[256];
		double t = now_s();
		int n;

		if (!start && t - t0 >= WARMUP_S) {
			start = t;
			at_start = got;
		}
		if (start && t - start >= seconds) {
			*rate = (double)(got - at_start) / (t - start);
			return 0;
		}
		if (t - t0 > seconds + 10) {
			fprintf(stderr, "udp-flows: %s: stalled\n", cfg_name[c]);
			return -1;
		}
		n = epoll_wait(b->ep[c], evs, 256, 50);
		for (int k = 0; k < n; k++) {
			int fd = cli[evs[k].data.u32];
			char buf[64];

			while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
				got++;
				sendto(fd, "x", 1, 0, (struct sockaddr *)to, sizeof(*to));
			}
		}
		if (n == 0)	/* a datagram lost to a full buffer: put one back in flight */
			for (int i = 0; i < b->nflows; i++)
				sendto(cli[i], "x", 1, 0, (struct sockaddr *)to, sizeof(*to));
	}
}

static int enter_netns(void)
{
	struct ifreq ifr = { 0 };
	int fd, r;

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "udp-flows: cannot enter a private network namespace (%s); using the host loopback\n",
			strerror(errno));
		return 0;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	r = ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	r = r ? r : ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	if (r)
		fprintf(stderr, "udp-flows: cannot bring lo up: %s\n", strerror(errno));
	return r;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: udp-flows [--rounds N] [--seconds S] [--flows N] [--json]\n"
		   "Datagrams per second through a UDP echo on loopback, steered by a baton\n"
		   "group without (off) and with (flows) the flow table, alternating in each\n"
		   "round; needs the privilege to load eBPF, and a private network namespace\n"
		   "when it can.\n"
		   "  --rounds N    rounds (1..200, default 60)\n"
		   "  --seconds S   measured window of each run after a 0.05 s warm-up (0.05..10, default 0.1)\n"
		   "  --flows N     client sockets, one flow each, one datagram in flight (1..4096, default 256)\n"
		   "  --json        one JSON object instead of the table\n"
		   "Exit status: 0 after measuring (whatever the ratio), 1 on a setup error, 2 on a bad option.\n");
}

int main(int argc, char **argv)
{
	double rate[NCFG][MAX_ROUNDS], ns[NCFG], ratio[MAX_ROUNDS], seconds = 0.1, best[NCFG] = { 0 };
	struct bench b;
	int rounds = 60, nflows = 256, json = 0, i, c, stats_fd;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--rounds") && v && (rounds = (int)strtol(v, &end, 10), *end == '\0') &&
			   rounds >= 1 && rounds <= MAX_ROUNDS) {
			i++;
		} else if (!strcmp(a, "--seconds") && v && (seconds = strtod(v, &end), *end == '\0') && seconds >= 0.05 &&
			   seconds <= 10) {
			i++;
		} else if (!strcmp(a, "--flows") && v && (nflows = (int)strtol(v, &end, 10), *end == '\0') &&
			   nflows >= 1 && nflows <= MAX_FLOWS) {
			i++;
		} else {
			fprintf(stderr, "udp-flows: bad option or value '%s'\ntry 'udp-flows --help'\n", a);
			return 2;
		}
	}
	if (enter_netns())
		return 1;
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);	/* off again when we exit */
	if (bench_setup(&b, nflows)) {
		fprintf(stderr, "udp-flows: loading eBPF needs CAP_BPF and CAP_NET_ADMIN, or root\n");
		bench_free(&b);
		return 1;
	}
	for (i = 0; i < rounds; i++) {
		/* alternate which goes first, so neither always runs on a warm cache */
		for (int k = 0; k < NCFG; k++) {
			c = i % 2 ? NCFG - 1 - k : k;
			if (measure(&b, (enum config)c, seconds, &rate[c][i])) {
				bench_free(&b);
				return 1;
			}
		}
		ratio[i] = rate[CFG_ON][i] / rate[CFG_OFF][i];
		for (c = 0; c < NCFG; c++)
			best[c] = fmax(best[c], rate[c][i]);
	}
	for (c = 0; c < NCFG; c++)
		ns[c] = prog_ns(b.g[c]);
	{
		struct baton_flow_stats st;

		/* the measured path must be the table's: every flow known */
		if (baton_group_flows(b.g[CFG_ON], &st, sizeof(st)) > 0 && st.live < (uint32_t)nflows)
			fprintf(stderr, "udp-flows: only %u of %d flows in the table\n", st.live, nflows);
	}
	bench_free(&b);
	if (json) {
		printf("{\"rounds\":%d,\"seconds\":%g,\"flows\":%d,\"off_median\":%.0f,\"flows_median\":%.0f,"
		       "\"ratio_flows_off\":%.4f,\"ratio_best\":%.4f,\"prog_ns_off\":%.1f,\"prog_ns_flows\":%.1f}\n",
		       rounds, seconds, nflows, median(rate[CFG_OFF], rounds), median(rate[CFG_ON], rounds),
		       median(ratio, rounds), best[CFG_ON] / best[CFG_OFF], stats_fd >= 0 ? ns[CFG_OFF] : -1,
		       stats_fd >= 0 ? ns[CFG_ON] : -1);
		return 0;
	}
	printf("udp-flows: echoed datagrams per second on loopback, %d flows, %d round%s of %g s\n", nflows, rounds,
	       rounds == 1 ? "" : "s", seconds);
	printf("%-8s %-10s %-10s %-10s\n", "config", "min", "median", "max");
	for (c = 0; c < NCFG; c++) {
		double lo = rate[c][0], hi = rate[c][0];

		for (i = 1; i < rounds; i++) {
			lo = fmin(lo, rate[c][i]);
			hi = fmax(hi, rate[c][i]);
		}
		printf("%-8s %-10.0f %-10.0f %-10.0f\n", cfg_name[c], lo, median(rate[c], rounds), hi);
	}
	printf("ratio flows/off (median of per-round ratios): %.3f  (goal >= 0.97)\n", median(ratio, rounds));
	printf("ratio flows/off (best round of each): %.3f\n", best[CFG_ON] / best[CFG_OFF]);
	if (stats_fd >= 0) {
		double off = ns[CFG_OFF], on = ns[CFG_ON];

		/* the program's cost against the time a datagram takes end to end
		 * in the least disturbed round: what the table costs at best */
		printf("steering program per datagram: off %.0f ns, flows %.0f ns; at the best round's %.0f "
		       "datagrams/s that is a ratio of %.3f\n", off, on, best[CFG_OFF],
		       1.0 / (1.0 + (on - off) * 1e-9 * best[CFG_OFF]));
	} else {
		printf("steering program per datagram: unknown (BPF_ENABLE_STATS: %s)\n", strerror(errno));
	}
	return 0;
}
