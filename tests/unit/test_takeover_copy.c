/* SPDX-License-Identifier: BSD-2-Clause */
/* --takeover copies the fds its scan found only while they still are what
 * the scan found: the same process (start time) and the same socket
 * (inode). Driven on this test's own process and a child: no privilege. */
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "../../supervisor/core.h"
#include "../../supervisor/gen.h"
#include "../../supervisor/takeover.h"
#include "util.h"

static unsigned long long ino_of(int fd)
{
	struct stat st;

	ASSERT_EQ(fstat(fd, &st), 0);
	return st.st_ino;
}

TEST(takeover_copy_takes_the_scanned_socket_and_refuses_a_replaced_one)
{
	struct baton_proc_stat me;
	char why[512] = "";
	int a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), b, copy;
	unsigned long long ino;

	ASSERT_GE(a, 0);
	ASSERT_EQ(baton_proc_stat(getpid(), -1, &me), 0);
	ino = ino_of(a);
	copy = takeover_copy_fd(getpid(), me.start, a, ino, why, sizeof(why));
	if (copy == -ENOSYS)
		SKIP("pidfd_getfd is not available here (Linux 5.6)");
	ASSERT_GE(copy, 0);
	ASSERT_EQ(ino_of(copy), ino);
	close(copy);
	/* the server closed it and another socket took its number */
	b = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(b, 0);
	ASSERT_EQ(dup3(b, a, O_CLOEXEC), a);
	close(b);
	copy = takeover_copy_fd(getpid(), me.start, a, ino, why, sizeof(why));
	ASSERT_EQ(copy, -ESTALE);
	ASSERT_CONTAINS(why, "no longer the listening socket that was scanned");
	ASSERT_CONTAINS(why, "nothing was taken");
	close(a);
}

TEST(takeover_copy_refuses_a_pid_that_is_another_process_now)
{
	struct baton_proc_stat me;
	char why[512] = "";
	int a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;
	pid_t child;

	ASSERT_GE(a, 0);
	ASSERT_EQ(baton_proc_stat(getpid(), -1, &me), 0);
	/* the scan saw a process that started at another time: the pid was
	 * reused by the one there now */
	r = takeover_copy_fd(getpid(), me.start + 1, a, ino_of(a), why, sizeof(why));
	if (r == -ENOSYS)
		SKIP("pidfd_open is not available here (Linux 5.3)");
	ASSERT_EQ(r, -ESRCH);
	ASSERT_CONTAINS(why, "is no longer the process that was scanned");
	/* and a process that is gone */
	child = fork();
	if (child == 0)
		_exit(0);
	ASSERT_EQ(waitpid(child, NULL, 0), child);
	r = takeover_copy_fd(child, 0, a, ino_of(a), why, sizeof(why));
	ASSERT_EQ(r, -ESRCH);
	ASSERT_CONTAINS(why, "gone");
	close(a);
}

/* ---- signals by pidfd (supervisor/gen.c) ---------------------------------- */

static int nraw;

static int raw_kill(pid_t pid, int sig)
{
	(void)pid, (void)sig;
	nraw++;
	return 0;
}

static int real_pidfd_signal(int pidfd, int sig)
{
	return syscall(424 /* pidfd_send_signal */, pidfd, sig, NULL, 0) ? -errno : 0;
}

/* A generation is signalled through its pidfd: once its process is gone
 * (reaped, its pid free for anyone), neither its stop signal nor the
 * grace's SIGKILL reaches whatever has that pid; without a pidfd, the
 * start time decides. Raw kill() is never used for it. */
TEST(signals_go_by_pidfd_and_never_reach_a_reused_pid)
{
	static struct sup s;
	static const struct sup_ops ops = { .kill = raw_kill, .pidfd_signal = real_pidfd_signal };
	struct gen g = { .pidfd = -1 };
	struct baton_proc_stat st;
	int status;
	pid_t child = fork();

	if (child == 0) {
		pause();
		_exit(0);
	}
	ASSERT_GT(child, 0);
	s.ops = &ops;
	g.pid = child;
	g.pidfd = baton_pidfd_open(child);
	if (g.pidfd < 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		SKIP("pidfd_open is not available here (Linux 5.3)");
	}
	ASSERT_EQ(baton_proc_stat(child, -1, &st), 0);
	g.start_ticks = st.start;
	ASSERT_EQ(gen_signal(&s, &g, SIGTERM), 0);
	ASSERT_EQ(waitpid(child, &status, 0), child);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	/* reaped: the pid may be anyone's now */
	ASSERT_EQ(gen_signal(&s, &g, SIGKILL), -ESRCH);
	gen_kill_all(&s, &g);
	ASSERT_EQ(nraw, 0);
	close(g.pidfd);
	/* no pidfd: a start time that is not the process's is not it */
	g.pidfd = -1;
	g.pid = getpid();
	ASSERT_EQ(baton_proc_stat(getpid(), -1, &st), 0);
	g.start_ticks = st.start + 1;
	ASSERT_EQ(gen_signal(&s, &g, SIGKILL), -ESRCH);
	ASSERT_EQ(nraw, 0);
}
