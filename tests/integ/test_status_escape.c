/* SPDX-License-Identifier: BSD-2-Clause */
/* End to end: what a reload sets comes back through the control socket and
 * `baton status` to the terminal escaped, never as a sequence. baton reload
 * refuses ASCII control characters in what it passes; an 8-bit CSI (U+009B,
 * a control sequence for many terminals) and a bidi override pass it, and
 * must come out escaped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

TEST_TIMEOUT(status_text_of_a_live_supervisor_is_escaped, 60)
{
	const char *ref = getenv("BATON_REFSERVER");
	char dir[64], cmd[512], logpath[96];
	char *run[] = { (char *)bt_baton_bin(), "run", "--name", "esc", "--listen", "tcp://127.0.0.1:0", "--",
			"/bin/sh", "-c", cmd, NULL };
	char *reload_esc[] = { (char *)bt_baton_bin(), "reload", "esc", "--env", "BANNER=\033[2J", NULL };
	char *reload[] = { (char *)bt_baton_bin(), "reload", "esc", "--env",
			   "BANNER=\xc2\x9b" "31mred \xe2\x80\xae" "txt.exe", NULL };
	char *status[] = { (char *)bt_baton_bin(), "status", "esc", NULL };
	pid_t pid;
	size_t i;

	if (!ref)
		SKIP("BATON_REFSERVER is not set (make check sets it)");
	bt_need_netns();
	bt_need_ebpf();
	bt_runtime_tmpdir_log(dir, sizeof(dir), "test", logpath, sizeof(logpath));
	snprintf(cmd, sizeof(cmd), "exec %s -q", ref);
	pid = bt_supervisor_start(run, "esc", logpath, NULL, NULL, 10, out, sizeof(out));
	ASSERT_EQ(bt_run(reload_esc, out, sizeof(out), err, sizeof(err), 30), 2);
	ASSERT_CONTAINS(err, "holds the control character 0x1b");
	if (bt_run(reload, out, sizeof(out), err, sizeof(err), 30) != 0)
		FAIL("baton reload: %s%s", out, err);
	ASSERT_EQ(bt_run(status, out, sizeof(out), err, sizeof(err), 30), 0);
	for (i = 0; out[i]; i++)
		if (((unsigned char)out[i] < 0x20 && out[i] != '\n') || out[i] == 0x7f)
			FAIL("control byte 0x%02x at %zu of baton status:\n%s", (unsigned char)out[i], i, out);
	if (strstr(out, "\xc2\x9b") || strstr(out, "\xe2\x80\xae"))
		FAIL("a C1 control or bidi override reached the terminal:\n%s", out);
	ASSERT_CONTAINS(out, "; environment: BANNER=\\xc2\\x9b31mred \\xe2\\x80\\xaetxt.exe\n");

	/* a raw control client (the owner, past baton reload's own check): the
	 * supervisor refuses a CR LF in --check's HOST too, on one line */
	{
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		const char req[] = "baton/1 reload canary=10 check=http://a%0D%0AX-Evil:%201/h\n";
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ssize_t n;

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/esc.sock", dir);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
			FAIL("connect %s: %s", sun.sun_path, strerror(errno));
		ASSERT_EQ(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
		n = recv(fd, out, sizeof(out) - 1, MSG_WAITALL);
		out[n > 0 ? n : 0] = '\0';
		close(fd);
		ASSERT_CONTAINS(out, "error bad --check \"http://a\\x0d\\x0aX-Evil: 1/h\": want http://PATH");
		ASSERT_TRUE(strchr(out, '\r') == NULL);
		ASSERT_TRUE(strchr(out, '\n') == out + strlen(out) - 1);	/* one line */
	}
	bt_supervisor_stop(&pid, 10);
}
