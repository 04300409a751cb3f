/* SPDX-License-Identifier: BSD-2-Clause */
/* A server that upgrades itself in place (refserver --upgrade-socket, the
 * handover protocol): 20 self-upgrades under the counting load client lose
 * no request and change the serving pid 20 times; a successor that cannot
 * take over leaves the old process serving. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define PORT 8080

struct up {
	char dir[64], sock[96], notify[96];
	int nfd;
	pid_t pid;       /* the process serving now */
};

/* Waits for READY=1 from a process other than NOT; returns its pid. */
static pid_t wait_ready(struct up *u, pid_t not, int timeout_ms)
{
	long long end = time(NULL) * 1000LL + timeout_ms;

	while (time(NULL) * 1000LL < end) {
		struct pollfd p = { .fd = u->nfd, .events = POLLIN };
		struct baton_notify_msg m;

		if (poll(&p, 1, 100) <= 0)
			continue;
		while (baton_notify_recv(u->nfd, &m) == 0)
			if (m.ready && m.pid > 0 && m.pid != not)
				return m.pid;
	}
	return -1;
}

/* Waits for PID (our child, or reparented to us) to exit; its status. */
static int wait_exit(pid_t pid, int timeout_s)
{
	int status, i;

	for (i = 0; i < timeout_s * 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(10000);
	}
	return -1;
}

static void up_start(struct up *u)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");

	bt_need_netns();
	/* the old processes' successors are reparented to us when they exit,
	 * so we can wait for each generation */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		FAIL("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	snprintf(u->dir, sizeof(u->dir), "/tmp/baton-up-XXXXXX");
	if (!mkdtemp(u->dir))
		FAIL("mkdtemp: %s", strerror(errno));
	snprintf(u->sock, sizeof(u->sock), "%s/upgrade", u->dir);
	snprintf(u->notify, sizeof(u->notify), "%s/notify", u->dir);
	u->nfd = baton_notify_open(u->notify);
	ASSERT_OK(u->nfd);
	u->pid = fork();
	if (u->pid == 0) {
		char *argv[] = { (char *)ref, "-q", "--listen", "127.0.0.1:8080", "--upgrade-socket", u->sock,
				 "--grace-ms", "5000", NULL };

		setenv("NOTIFY_SOCKET", u->notify, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	if (wait_ready(u, 0, 5000) != u->pid)
		FAIL("refserver %d did not say READY=1 within 5 s", (int)u->pid);
}

/* An answer from the server; its pid. */
static pid_t get_pid(void)
{
	char buf[512];
	int fd = bt_connect(PORT);
	ssize_t n;
	size_t got = 0;
	const char *p;
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

	ASSERT_EQ(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	p = strstr(buf, "pid=");
	if (!p)
		FAIL("no pid in the answer: %s", buf);
	return (pid_t)atoi(p + 4);
}

static void upgrades_under_load(const char *mode)
{
	pid_t pids[21], next;
	const char *report;
	struct bt_load load;
	struct stat st;
	struct up u;
	int i, j, st_exit;

	up_start(&u);
	pids[0] = u.pid;
	load = bt_load_start(PORT, mode, "600", 16);
	for (i = 1; i <= 20; i++) {
		ASSERT_EQ(kill(u.pid, SIGUSR2), 0);
		next = wait_ready(&u, u.pid, 5000);
		if (next < 0) {
			bt_load_stop(&load, 20);
			FAIL("upgrade %d: no successor of pid %d said READY=1 within 5 s", i, (int)u.pid);
		}
		st_exit = wait_exit(u.pid, 10);
		if (st_exit != 0) {
			bt_load_stop(&load, 20);
			FAIL("upgrade %d: the old process %d %s", i, (int)u.pid,
			     st_exit < 0 ? "did not exit within 10 s" : "exited with an error");
		}
		for (j = 0; j < i; j++)
			ASSERT_NE(next, pids[j]);
		pids[i] = u.pid = next;
		usleep(50000);
	}
	usleep(200000);
	report = bt_load_stop(&load, 20);
	bt_log("load: %s", report);
	ASSERT_EQ(get_pid(), u.pid);	/* the last one serves */
	ASSERT_GT(bt_json_get(report, "answered"), 500);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	/* every generation answered requests, not only said it was ready */
	ASSERT_EQ(bt_json_get(report, "distinct_pids"), 21);
	/* a request on a keep-alive connection that an old process closed as
	 * idle is retried by the client (closed_idle); only the race of a
	 * request on the wire in that microsecond may do it */
	ASSERT_LE(bt_json_get(report, "closed_idle"), 8);
	ASSERT_EQ(kill(u.pid, SIGTERM), 0);
	ASSERT_EQ(wait_exit(u.pid, 10), 0);
	ASSERT_NE(stat(u.sock, &st), 0);	/* the last offer was removed */
	close(u.nfd);
}

TEST_TIMEOUT(refserver_20_self_upgrades_under_connection_per_request_load_lose_nothing, 90)
{
	upgrades_under_load("conn");
}

TEST_TIMEOUT(refserver_20_self_upgrades_under_keepalive_load_lose_nothing, 90)
{
	upgrades_under_load("keepalive");
}

TEST_TIMEOUT(refserver_successor_that_cannot_take_over_leaves_the_old_one_serving, 30)
{
	struct up u;
	int i;

	up_start(&u);
	ASSERT_EQ(get_pid(), u.pid);
	/* the successor finds no offer to take from and exits 1 */
	ASSERT_EQ(unlink(u.sock), 0);
	ASSERT_EQ(kill(u.pid, SIGUSR2), 0);
	ASSERT_EQ(wait_ready(&u, u.pid, 1000), -1);
	for (i = 0; i < 10; i++)
		ASSERT_EQ(get_pid(), u.pid);
	ASSERT_EQ(waitpid(u.pid, NULL, WNOHANG), 0);	/* still running */
	ASSERT_EQ(kill(u.pid, SIGTERM), 0);
	ASSERT_EQ(wait_exit(u.pid, 10), 0);
	close(u.nfd);
}
