/* SPDX-License-Identifier: BSD-2-Clause */
/* What eBPF steering costs on the accept path: new loopback connections per
 * second through one listener, two under the kernel's reuseport hash, and two
 * steered by a baton group, interleaved so drift in machine load hits all alike. */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "baton.h"

enum config { CFG_ONE, CFG_HASH, CFG_EBPF, NCFG };
static const char *const cfg_name[NCFG] = { "one", "hash", "ebpf" };

#define MAX_ROUNDS 50
#define WARMUP_S   0.1
#define POLL_MS    50
/* A hard stop for every thread, well past the end of the window, in case the
 * stop flag is never seen (the main thread died in a syscall, say). */
#define GRACE_S    5.0
/* Far above any loopback rate, so it only matters if time stops working. */
#define CONN_CAP   50000000ull

struct run;

struct server {
	int fd;
	struct run *run;
	uint64_t accepted;	/* its thread writes, main reads: __atomic */
	uint64_t errors;
	int first_err;
};

struct run {
	struct sockaddr_in addr;
	int stop;		/* __atomic */
	double deadline;	/* CLOCK_MONOTONIC seconds */
	uint64_t failed;	/* connects the client could not make */
	int first_err;
	struct server srv[2];
	int nsrv;
};

struct result {
	double rate[MAX_ROUNDS];
	uint64_t failed;
	int first_err;		/* of the first failed connect, for the report */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts;
	int i;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	/* EINTR is the only reason to go round again; a few tries are plenty */
	for (i = 0; i < 100 && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR; i++)
		;
}

static int stopped(struct run *r)
{
	return __atomic_load_n(&r->stop, __ATOMIC_RELAXED) || now() > r->deadline;
}

/* One thread accepts for every listener, so the run has two busy threads
 * (this one and the client) on a two-core machine in every configuration;
 * a thread per listener made the scheduler, not steering, the largest term. */
static void *serve(void *arg)
{
	struct run *r = arg;
	struct linger rst = { 1, 0 };
	struct pollfd p[2];
	uint64_t i;
	int k;

	for (k = 0; k < r->nsrv; k++)
		p[k] = (struct pollfd){ .fd = r->srv[k].fd, .events = POLLIN };
	for (i = 0; i < CONN_CAP && !stopped(r); i++) {
		int n = poll(p, (nfds_t)r->nsrv, POLL_MS);

		if (n < 0 && errno != EINTR) {
			r->srv[0].first_err = errno;
			r->srv[0].errors++;
			break;
		}
		for (k = 0; k < r->nsrv; k++) {
			struct server *s = &r->srv[k];
			int burst;

			if (p[k].revents & (POLLERR | POLLNVAL)) {
				s->first_err = EBADF;
				s->errors++;
				return NULL;
			}
			if (!(p[k].revents & POLLIN))
				continue;
			for (burst = 0; burst < 64; burst++) {
				int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);

				if (c < 0) {
					if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED &&
					    !s->errors++)
						s->first_err = errno;
					break;
				}
				/* RST instead of FIN: no TIME_WAIT piling up on either side */
				setsockopt(c, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
				close(c);
				__atomic_store_n(&s->accepted, s->accepted + 1, __ATOMIC_RELAXED);
			}
		}
	}
	return NULL;
}

static void *client(void *arg)
{
	struct run *r = arg;
	struct linger rst = { 1, 0 };
	/* connect honours SO_SNDTIMEO, so a lost SYN cannot hold the run up */
	struct timeval tmo = { .tv_sec = 1 };
	uint64_t i;

	for (i = 0; i < CONN_CAP && !stopped(r); i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		/* ECONNRESET is not a failure: a reset before the handshake ends
		 * reads as ECONNREFUSED, so this one was established, and the
		 * server accepted it and sent its RST before this thread got
		 * back from connect */
		if (fd >= 0 && !setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo)) &&
		    !setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst)) &&
		    (!connect(fd, (const struct sockaddr *)&r->addr, sizeof(r->addr)) || errno == ECONNRESET)) {
			close(fd);
			continue;
		}
		if (!r->failed++)
			r->first_err = errno;
		if (fd >= 0)
			close(fd);
		usleep(1000);	/* a refusing port would otherwise be hammered */
	}
	return NULL;
}

static void log_cb(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)ctx;
	if (level <= BATON_LOG_WARN)
		fprintf(stderr, "accept-rate: baton: %s\n", msg);
}

static struct baton_group *ebpf_group(void)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = log_cb);

	return baton_group_new(&o);
}

static int open_listener(uint16_t port)
{
	struct baton_spec spec;
	char text[64], err[128];
	int fd;

	snprintf(text, sizeof(text), "tcp://127.0.0.1:%u", (unsigned)port);
	if (baton_spec_parse(text, &spec, err, sizeof(err))) {
		fprintf(stderr, "accept-rate: %s\n", err);
		return -1;
	}
	fd = baton_listener_open(&spec);
	if (fd < 0) {
		fprintf(stderr, "accept-rate: cannot open %s: %s\n", text, strerror(-fd));
		return -1;
	}
	return fd;
}

static uint64_t accepted(struct run *r)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < r->nsrv; i++)
		n += __atomic_load_n(&r->srv[i].accepted, __ATOMIC_RELAXED);
	return n;
}

/* Client and server each on a CPU of their own (when there are two), so
 * that where the scheduler puts them is not a variable between rows. */
static void pin(pthread_t t, int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(t, sizeof(set), &set);
}

/* One timed run of configuration C on fresh listeners. Returns 0, or -1 on a
 * setup error (already reported). */
static int run_once(enum config c, double seconds, double *rate, struct result *res)
{
	struct run r = { .nsrv = c == CFG_ONE ? 1 : 2 };
	struct baton_group *g = NULL;
	pthread_t tid[2];
	socklen_t alen = sizeof(r.addr);
	int i, started = 0, ret = -1;
	uint64_t c0, c1 = 0;
	double t0, t1;

	for (i = 0; i < 2; i++)
		r.srv[i].fd = -1;
	r.srv[0].fd = open_listener(0);
	if (r.srv[0].fd < 0)
		goto out;
	if (getsockname(r.srv[0].fd, (struct sockaddr *)&r.addr, &alen)) {
		fprintf(stderr, "accept-rate: getsockname: %s\n", strerror(errno));
		goto out;
	}
	if (r.nsrv == 2 && (r.srv[1].fd = open_listener(ntohs(r.addr.sin_port))) < 0)
		goto out;
	for (i = 0; i < r.nsrv; i++) {
		r.srv[i].run = &r;
		/* the accept loop drains each listener until EAGAIN */
		if (fcntl(r.srv[i].fd, F_SETFL, O_NONBLOCK)) {
			fprintf(stderr, "accept-rate: O_NONBLOCK: %s\n", strerror(errno));
			goto out;
		}
	}
	if (c == CFG_EBPF) {
		g = ebpf_group();
		if (!g) {
			fprintf(stderr, "accept-rate: baton_group_new: %s\n", strerror(errno));
			goto out;
		}
		for (i = 0; i < 2; i++) {
			int slot = baton_group_add(g, r.srv[i].fd, 1);

			if (slot < 0) {
				fprintf(stderr, "accept-rate: baton_group_add: %s\n", strerror(-slot));
				goto out;
			}
		}
	}

	r.deadline = now() + WARMUP_S + seconds + GRACE_S;
	if ((errno = pthread_create(&tid[started], NULL, serve, &r))) {
		fprintf(stderr, "accept-rate: pthread_create: %s\n", strerror(errno));
		goto join;
	}
	started++;
	if ((errno = pthread_create(&tid[started], NULL, client, &r))) {
		fprintf(stderr, "accept-rate: pthread_create: %s\n", strerror(errno));
		goto join;
	}
	started++;
	pin(tid[0], 1);
	pin(tid[1], 0);

	sleep_until(now() + WARMUP_S);
	t0 = now();
	c0 = accepted(&r);
	sleep_until(t0 + seconds);
	c1 = accepted(&r);
	t1 = now();
	*rate = (double)(c1 - c0) / (t1 - t0);
	ret = 0;
join:
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	/* the client goes last in tid[], but the servers must outlive its last
	 * connect, so join it first */
	for (i = started - 1; i >= 0; i--)
		pthread_join(tid[i], NULL);
	if (ret == 0) {
		if (r.failed && !res->failed)
			res->first_err = r.first_err;
		res->failed += r.failed;
		for (i = 0; i < r.nsrv; i++)
			if (r.srv[i].errors)
				fprintf(stderr, "accept-rate: %s: %llu accept errors on listener %d (first: %s)\n",
					cfg_name[c], (unsigned long long)r.srv[i].errors, i,
					strerror(r.srv[i].first_err));
	}
	if (ret == 0 && g) {
		struct baton_slot_stats st;
		uint64_t picked = 0;

		/* a row labelled ebpf that the program never saw would be a lie */
		for (i = 0; i < 2; i++)
			if (!baton_group_stats(g, i, &st))
				picked += st.selected;
		if (picked < c1 / 2)
			fprintf(stderr, "accept-rate: ebpf: the steering program picked only %llu of %llu "
				"connections\n", (unsigned long long)picked, (unsigned long long)c1);
	}
out:
	baton_group_free(g);
	for (i = 0; i < 2; i++)
		if (r.srv[i].fd >= 0)
			close(r.srv[i].fd);
	return ret;
}

/* Its own loopback, so the bench neither sees nor disturbs the host's
 * traffic and port space. */
static int enter_netns(void)
{
	struct ifreq ifr;
	int fd;

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "accept-rate: cannot enter a private network namespace (%s); "
			"using the host loopback\n", strerror(errno));
		return 0;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "accept-rate: socket: %s\n", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		fprintf(stderr, "accept-rate: SIOCGIFFLAGS lo: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr)) {
		fprintf(stderr, "accept-rate: cannot bring lo up: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void summarize(const double *rate, int n, double *min, double *med, double *max)
{
	double s[MAX_ROUNDS];

	memcpy(s, rate, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	*min = s[0];
	*max = s[n - 1];
	*med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* 1.0, 0.25, 2.0: short, and always a JSON number with a point */
static const char *fmt_seconds(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%g", v);
	if (!strpbrk(buf, ".e"))
		snprintf(buf, len, "%.1f", v);
	return buf;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: accept-rate [--rounds N] [--seconds S] [--json]\n"
		"Measures new TCP connections per second accepted on loopback through one\n"
		"listener (one), two under the kernel's SO_REUSEPORT hash (hash), and two\n"
		"steered 1:1 by a baton eBPF group (ebpf). Runs in a private network\n"
		"namespace when it can.\n"
		"  --rounds N    rounds, each timing every configuration once (1..50, default 5)\n"
		"  --seconds S   measured window of each run, after a 0.1 s warm-up\n"
		"                (0.1..10, default 1.0)\n"
		"  --json        print one JSON object instead of the table\n"
		"  --help        this text\n"
		"Exit status: 0 after measuring (whether or not ebpf meets its goal of\n"
		"0.98 of hash), 1 on a setup error, 2 on a bad option.\n");
}

static int bad_option(const char *fmt, const char *what)
{
	fprintf(stderr, "accept-rate: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\ntry 'accept-rate --help'\n");
	return 2;
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, int *rounds, double *seconds, int *json)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		char *end;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--json")) {
			*json = 1;
			continue;
		}
		if ((nlen == 8 && !strncmp(a, "--rounds", nlen)) ||
		    (nlen == 9 && !strncmp(a, "--seconds", nlen))) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return bad_option("option '%s' needs a value", a);
		} else {
			return bad_option("unknown option '%s'", a);
		}
		errno = 0;
		if (nlen == 8) {
			long v = strtol(val, &end, 10);

			if (errno || end == val || *end || v < 1 || v > MAX_ROUNDS)
				return bad_option("bad --rounds '%s' (want an integer 1..50)", val);
			*rounds = (int)v;
		} else {
			double v = strtod(val, &end);

			if (errno || end == val || *end || !isfinite(v) || v < 0.1 || v > 10)
				return bad_option("bad --seconds '%s' (want a number 0.1..10)", val);
			*seconds = v;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct result res[NCFG];
	double seconds = 1.0, st[NCFG][3], ratio = 0;
	int rounds = 5, json = 0, ebpf_ok, round, c, r;
	char ebpf_why[128] = "", sbuf[32];
	struct baton_group *probe;

	r = parse_args(argc, argv, &rounds, &seconds, &json);
	if (r >= 0)
		return r;
	if (enter_netns())
		return 1;

	/* decide once, up front, so every round has the same rows */
	probe = ebpf_group();
	ebpf_ok = probe != NULL;
	if (!ebpf_ok)
		snprintf(ebpf_why, sizeof(ebpf_why), "cannot load the eBPF steering program: %s",
			 strerror(errno));
	baton_group_free(probe);

	memset(res, 0, sizeof(res));
	for (round = 0; round < rounds; round++)
		for (c = 0; c < NCFG; c++) {
			if (c == CFG_EBPF && !ebpf_ok)
				continue;
			if (run_once((enum config)c, seconds, &res[c].rate[round], &res[c]))
				return 1;
		}

	for (c = 0; c < NCFG; c++) {
		if (c == CFG_EBPF && !ebpf_ok)
			continue;
		summarize(res[c].rate, rounds, &st[c][0], &st[c][1], &st[c][2]);
		if (res[c].failed)
			fprintf(stderr, "accept-rate: %s: %llu connects failed (first: %s)\n", cfg_name[c],
				(unsigned long long)res[c].failed, strerror(res[c].first_err));
	}
	/* Each round runs hash and ebpf back to back, so the median of the
	 * per-round ratios cancels drift between rounds that the ratio of
	 * medians would keep. */
	if (ebpf_ok) {
		double pair[MAX_ROUNDS], lo, hi;
		int n = 0;

		for (round = 0; round < rounds; round++)
			if (res[CFG_HASH].rate[round] > 0)
				pair[n++] = res[CFG_EBPF].rate[round] / res[CFG_HASH].rate[round];
		if (n)
			summarize(pair, n, &lo, &ratio, &hi);
	}

	if (json) {
		if (!ebpf_ok)
			fprintf(stderr, "accept-rate: ebpf skipped: %s\n", ebpf_why);
		printf("{\"rounds\":%d,\"seconds\":%s,\"configs\":{", rounds,
		       fmt_seconds(seconds, sbuf, sizeof(sbuf)));
		for (c = 0; c < NCFG; c++) {
			printf("%s\"%s\":", c ? "," : "", cfg_name[c]);
			if (c == CFG_EBPF && !ebpf_ok) {
				printf("null");
				continue;
			}
			printf("{\"min\":%.0f,\"median\":%.0f,\"max\":%.0f,\"failed\":%llu,\"runs\":[",
			       st[c][0], st[c][1], st[c][2], (unsigned long long)res[c].failed);
			for (round = 0; round < rounds; round++)
				printf("%s%.0f", round ? "," : "", res[c].rate[round]);
			printf("]}");
		}
		if (ebpf_ok && ratio > 0)
			printf("},\"ratio_ebpf_hash\":%.4f}\n", ratio);
		else
			printf("},\"ratio_ebpf_hash\":null}\n");
		return 0;
	}

	printf("accept-rate: new TCP connections per second on loopback, %d round%s of %s s each\n",
	       rounds, rounds == 1 ? "" : "s", fmt_seconds(seconds, sbuf, sizeof(sbuf)));
	printf("%-8s %-8s %-8s %-8s %s\n", "config", "min", "median", "max", "failed");
	for (c = 0; c < NCFG; c++) {
		if (c == CFG_EBPF && !ebpf_ok) {
			printf("%-8s skipped: %s\n", cfg_name[c], ebpf_why);
			continue;
		}
		printf("%-8s %-8.0f %-8.0f %-8.0f %llu\n", cfg_name[c], st[c][0], st[c][1], st[c][2],
		       (unsigned long long)res[c].failed);
	}
	if (!ebpf_ok)
		printf("ratio ebpf/hash (median): n/a  (ebpf skipped)\n");
	else if (ratio > 0)
		printf("ratio ebpf/hash (median of per-round ratios): %.3f  (goal >= 0.98)\n", ratio);
	else
		printf("ratio ebpf/hash (median): n/a  (hash accepted nothing)\n");
	return 0;
}
