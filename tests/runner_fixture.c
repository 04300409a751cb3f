/* SPDX-License-Identifier: BSD-2-Clause */
/* Linked with the runner into build/runner-fixture, never into the suite:
 * one test that leaves two processes behind in a session of their own, as
 * a generation does (setsid), and writes their pids to the file named by
 * BATON_LEFTOVER_PIDFILE. tests/unit/test_runner.c runs it and asserts the
 * runner ended both. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TEST(leaves_two_processes_in_a_session_of_their_own)
{
	const char *path = getenv("BATON_LEFTOVER_PIDFILE");
	char line[64];
	int p[2], fd;
	ssize_t n;
	pid_t pid;

	if (!path)
		FAIL("BATON_LEFTOVER_PIDFILE is not set (tests/unit/test_runner.c sets it)");
	ASSERT_EQ(pipe(p), 0);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		/* a session leader and its child: the runner ends the one,
		 * then the other once it comes to it */
		pid_t child;

		close(p[0]);
		setsid();
		/* not holding the output its caller reads to the end */
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(1);
		child = fork();
		if (child == 0)
			for (;;)
				pause();
		snprintf(line, sizeof(line), "%d %d\n", (int)getpid(), (int)child);
		if (write(p[1], line, strlen(line)) < 0)
			_exit(1);
		close(p[1]);
		for (;;)
			pause();
	}
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	ASSERT_TRUE(n > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		FAIL("%s: %s", path, strerror(errno));
	ASSERT_EQ(write(fd, line, (size_t)n), n);
	close(fd);
}
