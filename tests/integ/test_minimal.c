/* SPDX-License-Identifier: BSD-2-Clause */
/* examples/minimal.c, the newcomer's server, does what `baton run` needs:
 * under a load client that counts every request, two reloads (each waiting
 * for the new generation's READY=1) and a stop lose nothing. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

/* build/minimal sits next to the baton under test (build/ or build/san/). */
static void minimal_path(char *buf, size_t len)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s", bt_baton_bin());
	snprintf(buf, len, "%s/minimal", dirname(dir));
	if (access(buf, X_OK))
		SKIP("%s: %s (run through make check)", buf, strerror(errno));
}

TEST_TIMEOUT(minimal_example_reloads_twice_under_load_lose_nothing, 90)
{
	char mini[4096], dir[64], logpath[96], *argv[16];
	const char *report;
	struct bt_load l;
	pid_t sup;
	uint16_t port;
	int i, n = 0;

	minimal_path(mini, sizeof(mini));
	bt_need_netns();
	bt_need_ebpf();
	bt_runtime_tmpdir_log(dir, sizeof(dir), "test", logpath, sizeof(logpath));
	/* a reload succeeds only on READY=1 from the example, not on a guess;
	 * the health watch is not under test: a stall on a loaded machine
	 * would start a reload of its own */
	bt_args(argv, n, bt_baton_bin(), "run", "--name", "mini", "--listen", "tcp://127.0.0.1:0?backlog=1024&name=http",
		"--ready", "notify", "--hang-threshold", "2s", "--", mini);
	sup = bt_supervisor_start(argv, "mini", logpath, NULL, NULL, 10, out, sizeof(out));
	port = (uint16_t)bt_json_get(out, "port");
	l = bt_load_start(port, "conn", "4", 16);
	usleep(500000);
	for (i = 0; i < 2; i++) {
		char *reload[] = { (char *)bt_baton_bin(), "reload", "mini", NULL };

		if (bt_run(reload, out, sizeof(out), err, sizeof(err), 60) != 0) {
			bt_quote_file(logpath);
			FAIL("reload %d failed: %s%s", i + 1, out, err);
		}
		ASSERT_CONTAINS(out, "serves");
		usleep(500000);
	}
	report = bt_load_finish(&l, 30);
	bt_log("load: %s", report);
	ASSERT_GT(bt_json_get(report, "answered"), 100);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	{
		char *status[] = { (char *)bt_baton_bin(), "status", "mini", "--json", NULL };

		ASSERT_EQ(bt_run(status, out, sizeof(out), err, sizeof(err), 30), 0);
	}
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 2);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), 0);
	ASSERT_EQ(bt_json_get(out, "id"), 3);	/* newest generation first */
	/* SIGTERM: the example drains and exits, the supervisor exits 0 */
	bt_supervisor_stop(&sup, 10);
}
