/* SPDX-License-Identifier: BSD-2-Clause */
/* Copies of file descriptors that other processes hold (pidfd_open and
 * pidfd_getfd, Linux 5.6): how baton adopts listening sockets it did not
 * create. One place for the raw system calls, which glibc 2.36 does not wrap. */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "baton.h"
#include "util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int baton_pidfd_open(pid_t pid)
{
	/* pidfds are always close-on-exec */
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -errno : fd;
}

int baton_pidfd_getfd(int pidfd, int fd)
{
	/* the copy is always close-on-exec */
	int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);

	return copy < 0 ? -errno : copy;
}

int baton_fd_adopt(pid_t pid, int fd)
{
	int pidfd, copy;

	if (pid <= 0 || fd < 0)
		return -EINVAL;
	pidfd = baton_pidfd_open(pid);
	if (pidfd < 0)
		return pidfd;
	copy = baton_pidfd_getfd(pidfd, fd);
	close(pidfd);
	return copy;
}
