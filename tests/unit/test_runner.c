/* SPDX-License-Identifier: BSD-2-Clause */
/* The runner itself: what a test leaves behind does not outlive it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

/* A generation runs in a session of its own, out of the process group the
 * runner kills at a test's end: a failed attempt's generation kept serving
 * on its port beside the retry. build/runner-fixture's one test leaves a
 * session leader and its child behind and passes; once that runner has
 * exited, neither may run (nor wait, a zombie, for a reaper). */
TEST_ENV(runner_ends_the_processes_a_test_leaves_in_a_session_of_their_own)
{
	const char *fixture = bt_need_env("BATON_RUNNER_FIXTURE", "the runner's fixture (build/runner-fixture)");
	static char out[8192], err[8192];
	char dir[128], path[160], text[64] = "";
	char *argv[] = { (char *)fixture, NULL };
	int pid[2] = { 0, 0 }, alive = 0;

	bt_tmpdir(dir, sizeof(dir), "runner");
	snprintf(path, sizeof(path), "%s/pids", dir);
	setenv("BATON_LEFTOVER_PIDFILE", path, 1);
	ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 10), 0);
	ASSERT_CONTAINS(out, "1 passed, 0 failed, 0 skipped");
	bt_read_file(path, text, sizeof(text));
	ASSERT_EQ(sscanf(text, "%d %d", &pid[0], &pid[1]), 2);
	for (int i = 0; i < 2; i++)
		if (pid[i] > 0 && !kill(pid[i], 0)) {
			kill(pid[i], SIGKILL);	/* ours to end: the fixture made it */
			alive++;
		}
	unlink(path);
	rmdir(dir);
	if (alive)
		FAIL("%d of the 2 processes the test left (pids %d %d) still there after its runner exited", alive,
		     pid[0], pid[1]);
}
