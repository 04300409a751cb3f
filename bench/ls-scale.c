/* SPDX-License-Identifier: BSD-2-Clause */
/* How long `baton ls --json` takes with many listening sockets: opens N TCP
 * listeners (default 10,000) in a private network namespace, runs baton ls
 * several times and, as a baseline in the same run, `ss -ltn`, and prints
 * min/median/max wall time and the ratio of the medians. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs ARGV with its output thrown away; returns the wall time in ms, or
 * -1 if it did not exit 0. */
static double timed(char *const argv[])
{
	double start = now_ms();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null < 0 || dup2(null, 1) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	return now_ms() - start;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -1;
	strcpy(ifr.ifr_name, "lo");
	r = ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (!r)
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return r;
}

/* Runs CMD RUNS times; fills T with the sorted times. */
static int measure(char *const argv[], double *t, int runs)
{
	int i;

	for (i = 0; i < runs; i++) {
		t[i] = timed(argv);
		if (t[i] < 0)
			return -1;
	}
	qsort(t, (size_t)runs, sizeof(*t), cmp_double);
	return 0;
}

int main(int argc, char **argv)
{
	int nsocks = 10000, runs = 7, i, opened = 0;
	char self[PATH_MAX], baton[PATH_MAX + 16];
	double tb[64], ts[64];
	struct rlimit rl;
	ssize_t len;
	bool have_ss;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sockets") && i + 1 < argc)
			nsocks = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: ls-scale [--sockets N] [--runs R]   (R <= 64)\n");
			return 2;
		}
	}
	if (runs < 1 || runs > 64 || nsocks < 1 || nsocks > 50000) {
		fprintf(stderr, "ls-scale: --runs 1..64, --sockets 1..50000\n");
		return 2;
	}
	/* baton is build/baton, next to build/bench/ */
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0)
		return perror("readlink"), 1;
	self[len] = '\0';
	snprintf(baton, sizeof(baton), "%s/../baton", dirname(self));
	if (access(baton, X_OK)) {
		fprintf(stderr, "ls-scale: %s: %s\n", baton, strerror(errno));
		return 1;
	}
	if (unshare(CLONE_NEWNET) || lo_up()) {
		fprintf(stderr, "ls-scale: needs a private network namespace (root): %s\n", strerror(errno));
		return 1;
	}
	rl.rlim_cur = rl.rlim_max = (rlim_t)nsocks + 256;
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		fprintf(stderr, "ls-scale: RLIMIT_NOFILE %d: %s\n", nsocks + 256, strerror(errno));
		return 1;
	}
	for (i = 0; i < nsocks; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			break;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 128)) {
			close(fd);
			break;
		}
		opened++;
	}
	if (opened < nsocks) {
		fprintf(stderr, "ls-scale: opened only %d of %d listeners: %s\n", opened, nsocks, strerror(errno));
		return 1;
	}
	have_ss = access("/usr/bin/ss", X_OK) == 0 || access("/bin/ss", X_OK) == 0;
	{
		char *bargv[] = { baton, "ls", "--json", NULL };
		char *sargv[] = { "ss", "-ltn", NULL };

		if (measure(bargv, tb, runs)) {
			fprintf(stderr, "ls-scale: baton ls --json failed\n");
			return 1;
		}
		if (have_ss && measure(sargv, ts, runs))
			have_ss = false;
	}
	printf("%d listening sockets, %d runs each (wall time, ms)\n", opened, runs);
	printf("%-16s %8s %8s %8s\n", "command", "min", "median", "max");
	printf("%-16s %8.1f %8.1f %8.1f\n", "baton ls --json", tb[0], tb[runs / 2], tb[runs - 1]);
	if (have_ss) {
		printf("%-16s %8.1f %8.1f %8.1f\n", "ss -ltn", ts[0], ts[runs / 2], ts[runs - 1]);
		printf("ratio of medians baton/ss: %.1f\n", tb[runs / 2] / ts[runs / 2]);
	} else {
		printf("ss not found: no baseline\n");
	}
	return 0;
}
