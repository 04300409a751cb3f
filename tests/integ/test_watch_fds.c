/* SPDX-License-Identifier: BSD-2-Clause */
/* The health watch's files do not grow with listeners or reloads: a 64-listener
 * `baton run` reloaded 20 times keeps at most its member sockets plus a small
 * constant of files that are not eBPF objects (one /proc stat file per watched
 * process, not one per listener), and the count does not grow. Through the
 * library: two watches share one stat file for their common owner, and both
 * still see it gone once it exits. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define LISTENERS 64
#define RELOADS 20
/* the member sockets the supervisor holds: each listener's serving one and
 * its spare for the next generation (supervisor/spare.c) */
#define MEMBERS (2 * LISTENERS)
#define SLACK 24	/* control, notify, signal, epoll, inotify, log... sockets and files */

static char out[65536], err[16384];

struct fdcount {
	int all, bpf, proc;	/* every fd; eBPF maps, programs, links, BTF; /proc files */
};

/* This process's open files that are /proc/PID/stat. */
static int stat_files_of(pid_t pid)
{
	char want[64], path[300], link[128];
	struct dirent *e;
	int n = 0;
	DIR *d = opendir("/proc/self/fd");

	ASSERT_TRUE(d != NULL);
	snprintf(want, sizeof(want), "/proc/%d/stat", (int)pid);
	while ((e = readdir(d))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if (e->d_name[0] != '.' && (len = readlink(path, link, sizeof(link) - 1)) > 0) {
			link[len] = '\0';
			n += !strcmp(link, want);
		}
	}
	closedir(d);
	return n;
}

TEST_TIMEOUT(watch_fds_one_stat_file_per_process_for_every_watch, 30)
{
	BATON_OPTS(baton_group_opts, go, .mode = BATON_MODE_EBPF, .log = bt_lib_log);
	BATON_OPTS(baton_watch_opts, wo, .hang_ms = 100, .no_fence = true, .log = bt_lib_log);
	struct baton_group *g[2];
	struct baton_watch *w[2];
	int fds[2][2];
	pid_t a;

	bt_need_netns();
	bt_need_ebpf();
	a = fork();
	ASSERT_TRUE(a >= 0);
	if (a == 0) {
		pause();
		_exit(0);
	}
	for (int i = 0; i < 2; i++) {
		ASSERT_TRUE((g[i] = baton_group_new(&go)) != NULL);
		bt_listeners(fds[i], 2, false);
		ASSERT_EQ(ASSERT_OK(baton_group_add(g[i], fds[i][0], 1)), 0);
		ASSERT_EQ(ASSERT_OK(baton_group_add(g[i], fds[i][1], 0)), 1);
		ASSERT_TRUE((w[i] = baton_watch_new(g[i], &wo)) != NULL);
		ASSERT_OK(baton_watch_set_owner(w[i], 0, a));
		ASSERT_OK(baton_watch_set_owner(w[i], 0, a));	/* again: no second reference */
	}
	ASSERT_EQ(stat_files_of(a), 1);
	/* it exits and is reaped: the shared file tells both watches, which
	 * remove their member, and the last one to let go closes it */
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	for (int i = 0; i < 2; i++) {
		for (int t = 0; t < 400 && baton_group_size(g[i]) > 1; t++) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ASSERT_OK(baton_watch_tick(w[i], (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000));
			usleep(5000);
		}
		ASSERT_EQ(baton_group_size(g[i]), 1);
		/* the first watch let go: the second still holds it; then none */
		ASSERT_EQ(stat_files_of(a), i == 0 ? 1 : 0);
	}
	for (int i = 0; i < 2; i++) {
		baton_watch_free(w[i]);
		baton_group_free(g[i]);
	}
}

static struct fdcount count_fds(pid_t pid)
{
	struct fdcount c = { 0 };
	char dir[64], path[384], link[256];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	ASSERT_TRUE((d = opendir(dir)) != NULL);
	while ((e = readdir(d))) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) < 0)
			continue;	/* closed meanwhile */
		link[n] = '\0';
		c.all++;
		if (!strncmp(link, "anon_inode:bpf", 14) || !strcmp(link, "anon_inode:btf"))
			c.bpf++;
		else if (!strncmp(link, "/proc/", 6))
			c.proc++;
	}
	closedir(d);
	return c;
}

/* Files besides eBPF objects once the old generation's members are closed
 * (it exits on the reload's SIGTERM): polled up to 5 s, until no more than
 * MEMBERS + SLACK of them and, given FIRST (> 0), no more than FIRST + 4
 * in all (a loaded machine handles the old generation's exit late); the
 * last count. */
static struct fdcount settled(pid_t pid, int first)
{
	struct fdcount c = count_fds(pid);

	for (int i = 0; i < 100 && (c.all - c.bpf > MEMBERS + SLACK || (first > 0 && c.all > first + 4)); i++) {
		usleep(50000);
		c = count_fds(pid);
	}
	return c;
}

TEST_TIMEOUT(watch_fds_stay_flat_over_reloads_of_64_listeners, 240)
{
	char dir[64], log[128], status[8192];
	char *argv[2 * LISTENERS + 16];
	static char listen[LISTENERS][64];
	struct fdcount first, c;
	pid_t sup;

	bt_need_run_sandbox();
	bt_runtime_tmpdir(dir, sizeof(dir), "wfds");
	snprintf(log, sizeof(log), "%s/web.log", dir);
	bt_many_listeners_argv(argv, (int)(sizeof(argv) / sizeof(argv[0])), listen, LISTENERS, 21000, "", NULL);
	sup = bt_supervisor_start(argv, "web", log, NULL, NULL, 30, status, sizeof(status));

	usleep(300000);	/* the spares are made in the loop's next turns */
	first = settled(sup, 0);
	bt_log("at start: %d fds, %d eBPF, %d /proc", first.all, first.bpf, first.proc);
	for (int r = 1; r <= RELOADS; r++) {
		ASSERT_EQ(bt_baton("reload", "web"), 0);
		c = settled(sup, first.all);
		if (r == 1 || r == RELOADS || c.all - c.bpf > MEMBERS + SLACK || c.all > first.all + 4)
			bt_log("after reload %d: %d fds, %d eBPF, %d /proc", r, c.all, c.bpf, c.proc);
		/* one stat file per watched process, not per listener */
		ASSERT_LE(c.proc, 4);
		ASSERT_LE(c.all - c.bpf, MEMBERS + SLACK);
		/* nothing piles up across reloads, eBPF objects included */
		ASSERT_LE(c.all, first.all + 4);
	}
	bt_supervisor_stop(&sup, 20);
}
