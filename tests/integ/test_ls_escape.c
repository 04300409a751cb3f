/* SPDX-License-Identifier: BSD-2-Clause */
/* The attack of issue 19.7: user nobody names its process with terminal
 * escape sequences (clear the screen, set the window title) and listens;
 * root runs baton ls. The text table must show the name escaped and hold
 * no control byte. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[1 << 16], err[8192];

TEST(ls_text_escapes_a_hostile_process_name_of_another_user)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char *argv[] = { (char *)bt_baton_bin(), "ls", NULL, NULL };
	char filter[16], want[96];
	struct passwd *pw;
	uint16_t port = 0;
	int p[2];
	size_t i;
	pid_t child, parent = getpid();

	bt_need_netns();
	if (geteuid() != 0)
		SKIP("needs root to run a listener as another user (nobody)");
	pw = getpwnam("nobody");
	if (!pw)
		SKIP("no user nobody on this system");
	child = bt_fork_pipe(p);
	if (child == 0) {
		socklen_t len = sizeof(sin);
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid))
			_exit(1);
		/* 12 bytes, within the 15 of a comm: ESC ] 0 ; pwn BEL ESC [ 2 J */
		prctl(PR_SET_NAME, "\033]0;pwn\007\033[2J");
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 8) ||
		    getsockname(fd, (struct sockaddr *)&sin, &len))
			_exit(1);
		port = ntohs(sin.sin_port);
		if (write(p[1], &port, sizeof(port)) != sizeof(port))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &port, sizeof(port)) != sizeof(port))
		FAIL("the listener as nobody did not start");
	close(p[0]);
	snprintf(filter, sizeof(filter), "%u", port);
	argv[2] = filter;
	ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 30), 0);
	for (i = 0; out[i]; i++)
		if ((unsigned char)out[i] < 0x20 && out[i] != '\n')
			FAIL("control byte 0x%02x at %zu of baton ls:\n%s", (unsigned char)out[i], i, out);
	snprintf(want, sizeof(want), "\\x1b]0;pwn\\x07\\x1b[2J[%d] fd ", (int)child);
	ASSERT_CONTAINS(out, want);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}
