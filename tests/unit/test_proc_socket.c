/* SPDX-License-Identifier: BSD-2-Clause */
/* baton_proc_socket_fd, which the health watch, the bind mode and the
 * resume use to find which descriptor of a process holds a socket. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

TEST(proc_socket_fd_names_the_descriptor_holding_the_inode)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct stat st;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	ASSERT_EQ(baton_proc_socket_fd(getpid(), 65536, st.st_ino), fd);
	/* an inode no socket of ours has */
	ASSERT_EQ(baton_proc_socket_fd(getpid(), 65536, st.st_ino + 1000000), -ENOENT);
	close(fd);
	ASSERT_EQ(baton_proc_socket_fd(getpid(), 65536, st.st_ino), -ENOENT);
}
