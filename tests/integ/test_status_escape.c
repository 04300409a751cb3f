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
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

TEST_TIMEOUT(status_text_of_a_live_supervisor_is_escaped, 60)
{
	const char *ref = getenv("BATON_REFSERVER");
	char dir[] = "/tmp/baton-test-XXXXXX", cmd[512], logpath[96];
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
	if (!mkdtemp(dir))
		FAIL("mkdtemp: %s", strerror(errno));
	setenv("BATON_RUNTIME_DIR", dir, 1);
	snprintf(cmd, sizeof(cmd), "exec %s -q", ref);
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
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
	bt_supervisor_stop(&pid, 10);
}
