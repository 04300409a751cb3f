/* SPDX-License-Identifier: BSD-2-Clause */
/* Members the supervisor makes itself (baton_group_add_made): the group
 * takes the socket as it is, without the checks and the copy a socket from
 * outside gets, but the first member, which sets the group's address, is
 * still checked, and a refused socket is closed, not leaked. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"
#include "util.h"

TEST(group_add_made_takes_the_socket_and_still_checks_the_first_member)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_CBPF, .log = bt_lib_collect, .log_ctx = NULL);
	char log[1024] = "";
	struct baton_group *g;
	int fds[2], idle, plain;

	o.log_ctx = log;
	bt_netns();
	g = baton_group_new(&o);
	if (!g)
		FAIL("cBPF group: %s", strerror(errno));

	/* first member: checked like any socket, and closed when refused */
	idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(idle, SOL_SOCKET, SO_REUSEPORT, &(int){ 1 }, sizeof(int));
	ASSERT_EQ(baton_group_add_made(g, idle, 1), -EINVAL);
	ASSERT_CONTAINS(log, "is a TCP socket that is not listening");
	ASSERT_TRUE(fcntl(idle, F_GETFD) < 0 && errno == EBADF);
	ASSERT_EQ(baton_group_size(g), 0);

	bt_listeners(fds, 2, false);
	ASSERT_EQ(ASSERT_OK(baton_group_add_made(g, fds[0], 1)), 0);
	ASSERT_EQ(baton_group_fd(g, 0), fds[0]);	/* the socket itself, no copy */
	ASSERT_EQ(ASSERT_OK(baton_group_add_made(g, fds[1], 0)), 1);
	ASSERT_EQ(baton_group_fd(g, 1), fds[1]);
	ASSERT_EQ(baton_group_size(g), 2);

	/* a socket from outside still gets every check */
	plain = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(baton_group_add(g, plain, 1), -EINVAL);
	ASSERT_CONTAINS(log, "does not have SO_REUSEPORT");
	ASSERT_EQ(fcntl(plain, F_GETFD), FD_CLOEXEC);	/* the caller's: left open */
	close(plain);
	ASSERT_EQ(baton_group_size(g), 2);
	baton_group_free(g);
	ASSERT_TRUE(fcntl(fds[0], F_GETFD) < 0 && errno == EBADF);	/* the group's, closed with it */
}
