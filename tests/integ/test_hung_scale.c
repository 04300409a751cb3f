/* SPDX-License-Identifier: BSD-2-Clause */
/* A supervisor of many listeners makes its steering changes in few commits
 * of its one steering set: a large set has few policy banks, and a commit
 * made listener by listener waits for a kernel grace period each (seconds
 * at 1,024 listeners). Start and a hung generation's replacement, at 256. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define NL 256
#define PORT0 21000

static char out[65536], err[4096];

/* Generation 1 says it is ready and never accepts; later ones answer every
 * connection on any listener with "fresh" and close it. */
static const char server_py[] =
	"import os, selectors, socket, sys, time\n"
	"s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
	"s.connect(os.environ['NOTIFY_SOCKET'])\n"
	"s.send(b'READY=1')\n"
	"if os.environ['BATON_GENERATION'] == '1':\n"
	"    time.sleep(120)\n"
	"    sys.exit(0)\n"
	"sel = selectors.DefaultSelector()\n"
	"for i in range(int(os.environ['LISTEN_FDS'])):\n"
	"    l = socket.socket(fileno=3 + i)\n"
	"    l.setblocking(False)\n"
	"    sel.register(l, selectors.EVENT_READ)\n"
	"while True:\n"
	"    for k, _ in sel.select():\n"
	"        try:\n"
	"            c, _ = k.fileobj.accept()\n"
	"        except BlockingIOError:\n"
	"            continue\n"
	"        c.setblocking(True)\n"
	"        c.sendall(b'fresh\\n')\n"
	"        c.close()\n";

/* Counter KEY of the steering set in status document TEXT. */
static long long set_count(const char *text, const char *key)
{
	return bt_json_get(bt_json_at(text, "steering_set"), key);
}

/* 1 if client FD read the fresh generation's answer (FD is closed). */
static int answered(int fd)
{
	struct timeval tv = { .tv_sec = 20 };
	char buf[16] = "";
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	return n > 0 && !strncmp(buf, "fresh", 5);
}

TEST_ALONE(hung_generation_of_256_listeners_is_replaced_in_few_steering_commits_and_every_queued_client_answered,
	   120)
{
	static char specs[NL][40], *argv[2 * NL + 32], status[65536];
	const char *py = bt_need_server("python3", "python3");
	char dir[128], log[192], script[192];
	long long commits0, waits0, commits1;
	int n = 0, fds[NL], ok = 0, i;
	pid_t sup;

	bt_need_run_sandbox();
	bt_need_ebpf();
	bt_runtime_tmpdir_log(dir, sizeof(dir), "hungscale", log, sizeof(log));
	bt_write_file(dir, "server.py", server_py);
	snprintf(script, sizeof(script), "%s/server.py", dir);
	n = bt_argv_add(argv, n, (int)(sizeof(argv) / sizeof(argv[0])), bt_baton_bin(), "run", "--name", "web",
			"--ready", "notify", "--hang-threshold", "1s", "--grace", "2s", NULL);
	for (i = 0; i < NL; i++) {
		snprintf(specs[i], sizeof(specs[i]), "tcp://127.0.0.1:%d", PORT0 + i);
		n = bt_argv_add(argv, n, (int)(sizeof(argv) / sizeof(argv[0])), "--listen", specs[i], NULL);
	}
	bt_argv_add(argv, n, (int)(sizeof(argv) / sizeof(argv[0])), "--", py, script, NULL);
	sup = bt_supervisor_start(argv, "web", log, NULL, NULL, 60, status, sizeof(status));

	/* every listener's first member in one commit, not one each */
	commits0 = set_count(status, "commits");
	waits0 = set_count(status, "bank_waits");
	bt_log("at start: %lld commits, %lld waited for a bank, %lld banks", commits0, waits0,
	       set_count(status, "banks"));
	ASSERT_LE(commits0, 4);
	ASSERT_EQ(waits0, 0);

	/* a client queued on every listener of the hung generation */
	for (i = 0; i < NL; i++)
		ASSERT_TRUE((fds[i] = bt_connect((uint16_t)(PORT0 + i))) >= 0);
	for (i = 0; i < 600; i++) {
		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		if (bt_json_get(out, "restarts") >= 1 && strstr(out, "\"state\":\"active\"") &&
		    bt_json_get(bt_gen_json(out, 2), "pid") > 0 && strstr(bt_gen_json(out, 2), "\"state\":\"active\""))
			break;
		usleep(50000);
	}
	ASSERT_TRUE(i < 600);
	for (i = 0; i < NL; i++)
		ok += answered(fds[i]);
	bt_log("%d of %d queued clients answered by the fresh generation", ok, NL);
	ASSERT_EQ(ok, NL);

	/* the replacement's changes (every listener's member steered down and
	 * fenced, the new one switched to) in a few commits, not one per listener */
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	commits1 = set_count(out, "commits");
	bt_log("replacement: %lld commits, %lld waited for a bank in all", commits1 - commits0,
	       set_count(out, "bank_waits"));
	ASSERT_TRUE(commits1 - commits0 < NL / 8);
	bt_supervisor_stop(&sup, 20);
}
