/* SPDX-License-Identifier: BSD-2-Clause */
/* baton_listen_fds, the LISTEN_FDS side for servers: counts what was passed
 * to this pid and marks it close-on-exec; an fd that is not open is -EBADF,
 * not a socket; the variables go when asked, whatever the outcome. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "baton.h"
#include "harness.h"

/* The lowest fd from 3 up that is not open (the runner's pipe may be one
 * of those below it). */
static int first_closed_fd(void)
{
	int fd = 3;

	while (fcntl(fd, F_GETFD) >= 0)
		fd++;
	return fd;
}

static void set_env(pid_t pid, int n)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", (int)pid);
	setenv("LISTEN_PID", buf, 1);
	snprintf(buf, sizeof(buf), "%d", n);
	setenv("LISTEN_FDS", buf, 1);
	setenv("LISTEN_FDNAMES", "http", 1);
}

TEST(listen_fds_counts_ours_and_marks_them_cloexec)
{
	int fd = first_closed_fd(), s = socket(AF_INET, SOCK_STREAM, 0);	/* no CLOEXEC: as inherited */

	ASSERT_GE(s, 0);
	if (s != fd) {
		ASSERT_EQ(dup2(s, fd), fd);
		close(s);
	}
	ASSERT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	set_env(getpid(), fd - 3 + 1);
	ASSERT_EQ(baton_listen_fds(false), fd - 3 + 1);
	ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ASSERT_TRUE(getenv("LISTEN_FDS") != NULL);	/* kept: not asked to unset */
	ASSERT_EQ(baton_listen_fds(true), fd - 3 + 1);
	ASSERT_TRUE(getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL && getenv("LISTEN_FDNAMES") == NULL);
	ASSERT_EQ(baton_listen_fds(true), 0);	/* nothing passed (any more) */
}

TEST(listen_fds_of_another_pid_are_not_ours)
{
	set_env(getpid() + 1, 1);
	ASSERT_EQ(baton_listen_fds(true), 0);
	ASSERT_TRUE(getenv("LISTEN_FDS") == NULL);
}

TEST(listen_fds_bad_count_is_einval)
{
	set_env(getpid(), 0);
	setenv("LISTEN_FDS", "2x", 1);
	ASSERT_EQ(baton_listen_fds(false), -EINVAL);
	setenv("LISTEN_FDS", "-1", 1);
	ASSERT_EQ(baton_listen_fds(false), -EINVAL);
	setenv("LISTEN_FDS", "1025", 1);
	ASSERT_EQ(baton_listen_fds(true), -EINVAL);
	ASSERT_TRUE(getenv("LISTEN_FDS") == NULL);
}

/* A count that covers an fd that is not open is a broken hand-over: the
 * caller must not take fd N as a socket (fcntl's errno, not a count). */
TEST(listen_fds_not_open_is_ebadf_and_still_unsets)
{
	int fd = first_closed_fd();

	set_env(getpid(), fd - 3 + 1);
	ASSERT_EQ(baton_listen_fds(false), -EBADF);
	ASSERT_TRUE(getenv("LISTEN_FDS") != NULL);
	ASSERT_EQ(baton_listen_fds(true), -EBADF);
	ASSERT_TRUE(getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL && getenv("LISTEN_FDNAMES") == NULL);
}
