/* SPDX-License-Identifier: BSD-2-Clause */
/* The name lock after a supervisor was killed: a child it forked an
 * instant before still holds a copy of the lock's descriptor until its
 * exec. The same command started again waits for that instead of saying
 * that a supervisor runs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char rtdir[128];

static void in_rtdir(void *ctx)
{
	(void)ctx;
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
}

/* A process takes the lock of NAME as a supervisor does and forks a child
 * that keeps the descriptor for HOLD_MS; the process itself exits at once,
 * as a supervisor killed right after a fork would. */
static void orphan_lock(const char *name, int hold_ms)
{
	char path[256];
	pid_t p;
	int st;

	snprintf(path, sizeof(path), "%s/%s.lock", rtdir, name);
	p = fork();
	ASSERT_TRUE(p >= 0);
	if (p == 0) {
		int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB))
			_exit(2);
		if (fork() == 0) {
			usleep((useconds_t)hold_ms * 1000);
			_exit(0);
		}
		_exit(0);
	}
	ASSERT_EQ(waitpid(p, &st, 0), p);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* the lock is still held, by the child */
	{
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		ASSERT_TRUE(fd >= 0);
		ASSERT_TRUE(flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK);
		close(fd);
	}
}

static char *argv_run[] = { NULL, "run", "--name", "web", "--ready=delay:50ms", "--listen",
			     "tcp://127.0.0.1:8080", "--", "/bin/sh", "-c", "exec sleep 60", NULL };

TEST_TIMEOUT(rundir_lock_left_to_a_dying_supervisors_child_does_not_refuse_the_restart, 60)
{
	char log[256], logdir[128], text[16384] = "";
	int st = 0, fd;
	pid_t sup;
	FILE *f;

	bt_need_netns();
	bt_tmpdir(rtdir, sizeof(rtdir), "rl");
	ASSERT_EQ(chmod(rtdir, 0700), 0);
	orphan_lock("web", 400);
	bt_tmpdir(logdir, sizeof(logdir), "rlog");
	snprintf(log, sizeof(log), "%s/baton.log", logdir);
	argv_run[0] = (char *)bt_baton_bin();
	sup = fork();
	ASSERT_TRUE(sup >= 0);
	if (sup == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		in_rtdir(NULL);
		execv(argv_run[0], argv_run);
		_exit(127);
	}
	/* refused, it would exit 1 at once; started, it serves until stopped */
	for (int i = 0; i < 150 && waitpid(sup, &st, WNOHANG) == 0; i++)
		usleep(20000);
	if (waitpid(sup, &st, WNOHANG) == 0) {
		kill(sup, SIGTERM);
		ASSERT_EQ(waitpid(sup, &st, 0), sup);
		st = -1;	/* it ran */
	}
	if ((f = fopen(log, "r"))) {
		size_t n = fread(text, 1, sizeof(text) - 1, f);

		text[n] = 0;
		fclose(f);
	}
	bt_log("%s", text);
	ASSERT_TRUE(strstr(text, "already runs") == NULL);
	ASSERT_EQ(st, -1);
}

TEST_TIMEOUT(rundir_lock_of_a_live_holder_still_refuses_at_once, 60)
{
	static char out[4096], err[16384];
	char path[256], want[64];
	int fd, r;

	bt_need_netns();
	bt_tmpdir(rtdir, sizeof(rtdir), "rl");
	ASSERT_EQ(chmod(rtdir, 0700), 0);
	snprintf(path, sizeof(path), "%s/web.lock", rtdir);
	fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
	argv_run[0] = (char *)bt_baton_bin();
	r = bt_run_with(argv_run, in_rtdir, NULL, out, sizeof(out), err, sizeof(err), 20);
	bt_log("exit %d; %s", r, err);
	ASSERT_EQ(r, 1);
	snprintf(want, sizeof(want), "already runs (pid %d)", (int)getpid());
	ASSERT_CONTAINS(err, want);
	close(fd);
}

/* `baton stop web && baton run --name web ...`: the stop answers only once
 * the supervisor let go of the name, so the next start is never refused. */
TEST_TIMEOUT(rundir_stop_then_start_of_the_same_name_is_never_refused, 120)
{
	static char out[16384], err[16384];
	char log[256], logdir[128], lock[256];
	pid_t prev = -1;
	int st, lockfd;

	bt_need_netns();
	bt_tmpdir(rtdir, sizeof(rtdir), "rl");
	ASSERT_EQ(chmod(rtdir, 0700), 0);
	in_rtdir(NULL);
	bt_tmpdir(logdir, sizeof(logdir), "rlog");
	snprintf(log, sizeof(log), "%s/baton.log", logdir);
	argv_run[0] = (char *)bt_baton_bin();
	snprintf(lock, sizeof(lock), "%s/web.lock", rtdir);
	for (int round = 0; round < 10; round++) {
		pid_t sup = bt_spawn_logged(argv_run, log, true);
		int ok = 0;

		for (int i = 0; i < 250 && !ok; i++) {
			if (waitpid(sup, &st, WNOHANG) == sup) {
				bt_quote_file(log);
				FAIL("round %d: the start after a stop exited (status %d)", round, st);
			}
			ok = bt_baton("status", "web") == 0 && strstr(out, "active");
			if (!ok)
				usleep(20000);
		}
		ASSERT_TRUE(ok);
		if (prev > 0)
			ASSERT_EQ(waitpid(prev, &st, 0), prev);
		/* the next round starts at once, reaping this one only after */
		ASSERT_EQ(bt_baton("stop", "web"), 0);
		/* and the name is free the moment the stop answered */
		lockfd = open(lock, O_RDONLY | O_CLOEXEC);
		if (lockfd >= 0) {
			if (flock(lockfd, LOCK_EX | LOCK_NB))
				FAIL("round %d: baton stop answered while the supervisor still held %s", round, lock);
			close(lockfd);
		}
		prev = sup;
	}
	ASSERT_EQ(waitpid(prev, &st, 0), prev);
}
