/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/failover: two refservers share a port with SO_REUSEPORT; the active
 * one is frozen with SIGSTOP while a probe client opens a connection every
 * 2 ms. Per trial: time from SIGSTOP to the first answer from the standby,
 * and probes not answered within the client's timeout. Plain SO_REUSEPORT,
 * `baton steer --watch --no-events` (polling /proc every 10 ms) and `baton
 * steer --watch` (stop signals reported by eBPF as they are delivered, and
 * the kernel's own failover, bpf/sigdown.h) side by side, in one run, in a
 * private netns; the last row again with two busy processes competing for
 * the cores (bounded: killed by the bench, and by their own alarm). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROBES 1024
#define PROBE_EVERY_US 2000
#define BEFORE_MS 100     /* probing before the freeze */
#define AFTER_MS 300      /* probing after it */
#define TIMEOUT_MS 500    /* a probe not answered by then failed (the client gave up) */

struct probe {
	int fd;
	long long start_us, done_us;
	bool answered, failed;
	char by;	/* 'A' or 'B' */
	char buf[256];
	size_t got;
};

static const char *refserver, *baton;

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int netns(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS))
		return -errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		return -errno;
	close(fd);
	return 0;
}

static pid_t spawn(char *const argv[], int out_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		dup2(out_fd >= 0 ? out_fd : null, 2);	/* why baton steer did not start, if it does not */
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

#define BUSY_PROCS 2
#define BUSY_MAX_S 600	/* a busy process ends by itself after this, should the bench die */

/* A process that only burns CPU, until killed (or BUSY_MAX_S). */
static pid_t busy_start(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		volatile unsigned long x = 0;

		alarm(BUSY_MAX_S);
		for (;;)
			x++;
	}
	return pid;
}

static void end(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGCONT);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static bool port_up(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void probe_start(struct probe *p, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };

	memset(p, 0, sizeof(*p));
	p->start_us = now_us();
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* on loopback the handshake completes at once, even into a frozen
	 * server's queue; the request waits in the socket until accepted */
	if (connect(p->fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) {
		p->failed = true;
		close(p->fd);
		p->fd = -1;
		return;
	}
	usleep(0);
	if (send(p->fd, "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL) != 18) {
		struct pollfd w = { .fd = p->fd, .events = POLLOUT };

		poll(&w, 1, 50);
		if (send(p->fd, "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL) != 18) {
			p->failed = true;
			close(p->fd);
			p->fd = -1;
		}
	}
}

/* Waits up to WAIT_US for answers (woken by the first that arrives, so an
 * answer is timed when it comes, not at the next probe), and reads each
 * one to its end in one go. */
static void probe_poll(struct probe *p, int n, long long wait_us)
{
	struct timespec ts = { .tv_sec = wait_us / 1000000, .tv_nsec = (wait_us % 1000000) * 1000 };
	struct pollfd pf[MAX_PROBES];
	int idx[MAX_PROBES], k = 0;

	for (int i = 0; i < n; i++)
		if (p[i].fd >= 0) {
			pf[k] = (struct pollfd){ .fd = p[i].fd, .events = POLLIN };
			idx[k++] = i;
		}
	if (!k) {
		nanosleep(&ts, NULL);
		goto timeouts;
	}
	if (ppoll(pf, (nfds_t)k, &ts, NULL) <= 0)
		goto timeouts;
	for (int j = 0; j < k; j++) {
		struct probe *q = &p[idx[j]];
		ssize_t r;

		if (!pf[j].revents)
			continue;
		if (!q->done_us)
			q->done_us = now_us();	/* the answer's arrival */
		while ((r = read(q->fd, q->buf + q->got, sizeof(q->buf) - 1 - q->got)) > 0) {
			q->got += (size_t)r;
			q->buf[q->got] = '\0';
		}
		if (r < 0 && errno == EAGAIN)
			continue;	/* the rest comes later */
		q->answered = r == 0 && !strncmp(q->buf, "HTTP/1.1 200", 12) && strstr(q->buf, "tag=");
		q->failed = !q->answered;
		if (q->answered)
			q->by = strstr(q->buf, "tag=B") ? 'B' : 'A';
		close(q->fd);
		q->fd = -1;
	}
timeouts:
	for (int i = 0; i < n; i++)
		if (p[i].fd >= 0 && now_us() - p[i].start_us > TIMEOUT_MS * 1000LL) {
			p[i].failed = true;
			close(p[i].fd);
			p[i].fd = -1;
		}
}

struct result {
	double failover_ms;	/* -1: the standby never answered */
	int probes, failed;
};

static int trial(int mode, int port, struct result *res)
{
	static struct probe p[MAX_PROBES];
	char listen[32], spec[48], pa[16], pin[64];
	pid_t a, b, s = 0;
	long long t0 = 0, first_b = -1, start;
	int n = 0, pipefd[2] = { -1, -1 }, r = 0;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	a = spawn((char *[]){ (char *)refserver, "-q", "--reuseport", "--listen", listen, "--tag", "A", NULL }, -1);
	b = spawn((char *[]){ (char *)refserver, "-q", "--reuseport", "--listen", listen, "--tag", "B", NULL }, -1);
	for (int i = 0; i < 300 && !port_up(port); i++)
		usleep(5000);
	usleep(20000);
	if (mode) {
		char buf[512] = "";
		size_t got = 0;

		snprintf(spec, sizeof(spec), "tcp://%s", listen);
		snprintf(pa, sizeof(pa), "%d", (int)a);
		snprintf(pin, sizeof(pin), "/sys/fs/bpf/bench-failover-%d", port);
		if (pipe2(pipefd, O_CLOEXEC))
			return -errno;
		s = spawn((char *[]){ (char *)baton, "steer", spec, "--primary", pa, "--watch", "--interval", "10ms",
				      "--pin", pin, mode == 1 ? "--no-events" : NULL, NULL }, pipefd[1]);
		close(pipefd[1]);
		for (int i = 0; i < 2000 && !strstr(buf, "steering"); i++) {	/* 20 s: a loaded machine */
			struct pollfd pf = { .fd = pipefd[0], .events = POLLIN };
			ssize_t k;

			if (poll(&pf, 1, 10) == 1 && (k = read(pipefd[0], buf + got, sizeof(buf) - 1 - got)) > 0) {
				got += (size_t)k;
				buf[got] = '\0';
			}
		}
		if (!strstr(buf, "steering")) {
			fprintf(stderr, "failover: baton steer did not start: %s\n", buf);
			r = -1;
			goto out;
		}
	}
	start = now_us();
	for (long long i = 0, next = start; i < 1000000 && n < MAX_PROBES; i++) {
		long long now = now_us();

		if (!t0 && now - start >= BEFORE_MS * 1000LL) {
			kill(a, SIGSTOP);
			t0 = now_us();
			next = t0;	/* the first probe goes right after the freeze */
		}
		if (now >= next) {
			if (!t0 || now - t0 < AFTER_MS * 1000LL)
				probe_start(&p[n++], port);
			next += PROBE_EVERY_US;
			if (next < now)
				next = now + PROBE_EVERY_US;
		}
		if (t0 && now - t0 > (AFTER_MS + TIMEOUT_MS + 50) * 1000LL)
			break;
		probe_poll(p, n, next > now_us() ? next - now_us() : 0);
	}
	res->probes = n;
	res->failed = 0;
	for (int i = 0; i < n; i++) {
		if (p[i].fd >= 0)
			close(p[i].fd);
		res->failed += p[i].failed;
		if (p[i].answered && p[i].by == 'B' && p[i].start_us >= t0 &&
		    (first_b < 0 || p[i].done_us < first_b))
			first_b = p[i].done_us;
	}
	res->failover_ms = first_b < 0 ? -1 : (first_b - t0) / 1000.0;
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	end(s);
	end(a);
	end(b);
	return r;
}

static int cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static double pct(double *v, int n, int p)
{
	int i = (n * p + 99) / 100 - 1;

	return n ? v[i < 0 ? 0 : i] : -1;
}

static const char *const row_name[] = { "plain SO_REUSEPORT", "... --no-events (poll)", "baton steer --watch",
					"... + 2 busy processes" };

int main(int argc, char **argv)
{
	int trials = 20, r;

	refserver = getenv("BATON_REFSERVER") ? getenv("BATON_REFSERVER") : "build/refserver";
	baton = getenv("BATON_BIN") ? getenv("BATON_BIN") : "build/baton";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--trials") && i + 1 < argc)
			trials = atoi(argv[++i]);
		else {
			fprintf(stdout, "usage: failover [--trials N]   (N >= 1, default 20; needs root)\n");
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	if (trials < 1 || trials > 1000)
		return 2;
	if ((r = netns())) {
		fprintf(stderr, "failover: cannot make a private netns and bpffs: %s (needs root)\n", strerror(-r));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	printf("failover: %d trials each; SIGSTOP of the active member; probe every %d ms, "
	       "failed = not answered within %d ms\n",
	       trials, PROBE_EVERY_US / 1000, TIMEOUT_MS);
	printf("%-26s %6s %7s %7s %12s %12s %9s\n", "config", "trials", "probes", "failed", "failover50",
	       "failover99", "never");
	for (int mode = 0; mode < 4; mode++) {
		double *t = calloc((size_t)trials, sizeof(*t));
		int nt = 0, probes = 0, failed = 0, never = 0;
		pid_t busy[BUSY_PROCS] = { 0 };

		for (int k = 0; mode == 3 && k < BUSY_PROCS; k++)
			busy[k] = busy_start();

		for (int i = 0; i < trials; i++) {
			struct result res;

			if (trial(mode, 20000 + mode * 1000 + i, &res)) {
				for (int k = 0; k < BUSY_PROCS; k++)
					end(busy[k]);
				return 1;
			}
			probes += res.probes;
			failed += res.failed;
			if (res.failover_ms < 0)
				never++;
			else
				t[nt++] = res.failover_ms;
		}
		for (int k = 0; k < BUSY_PROCS; k++)
			end(busy[k]);
		qsort(t, (size_t)nt, sizeof(*t), cmp_d);
		printf("%-26s %6d %7d %7d %10.2fms %10.2fms %9d\n", row_name[mode], trials, probes, failed,
		       pct(t, nt, 50), pct(t, nt, 99), never);
		free(t);
	}
	printf("failover = SIGSTOP to the first answer from the standby to a probe sent after it.\n"
	       "plain SO_REUSEPORT has no standby: the hash keeps sending about half the probes to\n"
	       "the frozen member, which is where its failures come from. The last row runs\n"
	       "baton steer --watch while %d processes spin on the cores (goal: failover99 <= 1 ms).\n",
	       BUSY_PROCS);
	return 0;
}
