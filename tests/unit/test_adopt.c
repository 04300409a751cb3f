/* SPDX-License-Identifier: BSD-2-Clause */
/* baton_fd_adopt: a copy of another process's socket is the same socket;
 * a process that is gone or an fd it does not have gives a clear errno. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "baton.h"
#include "helpers.h"
#include "harness.h"


TEST(adopt_copies_another_process_socket)
{
	int sv[2], copy, r;
	char go;
	pid_t child;

	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	child = fork();
	if (child == 0) {
		/* holds sv[1] and waits to be ended */
		if (read(sv[0], &go, 1) < 0)
			_exit(1);
		_exit(0);
	}
	copy = baton_fd_adopt(child, sv[1]);
	if (copy == -EPERM)
		SKIP("pidfd_getfd is not allowed here (needs ptrace access to the child)");
	ASSERT_OK(copy);
	ASSERT_EQ(bt_cookie(copy), bt_cookie(sv[1]));
	ASSERT_TRUE(fcntl(copy, F_GETFD) & FD_CLOEXEC);
	close(copy);
	ASSERT_EQ(baton_fd_adopt(child, 987), -EBADF);
	ASSERT_EQ(baton_fd_adopt(0, sv[1]), -EINVAL);
	kill(child, SIGKILL);
	ASSERT_EQ(waitpid(child, NULL, 0), child);
	r = baton_fd_adopt(child, sv[1]);	/* reaped: the pid is gone */
	ASSERT_EQ(r, -ESRCH);
}
