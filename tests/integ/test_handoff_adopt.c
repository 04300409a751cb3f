/* SPDX-License-Identifier: BSD-2-Clause */
/* A supervisor that resumes after a crash takes back each generation's
 * keep-alive handoff channel (?handoff=idle) from the generation, by the
 * fd numbers the map of channels records. With many listeners the shim's
 * map no longer fits in the environment and comes as a memfd right after
 * the listeners, so the channel sits one fd further: the record must say
 * so, or the channel is lost at the first supervisor crash. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define LISTENERS 600	/* a map of more than 8 KiB: in a memfd */

static char out[65536], err[16384], status[8192], text[1 << 20];	/* 600 listeners say a lot */

static pid_t start(char **argv, const char *logpath)
{
	return bt_supervisor_start(argv, "web", logpath, NULL, NULL, 60, status, sizeof(status));
}

TEST_TIMEOUT(handoff_channel_is_taken_back_after_a_supervisor_crash_with_the_map_in_a_memfd, 120)
{
	static char listen[LISTENERS][64];
	char *argv[2 * LISTENERS + 16];
	char dir[64], log1[128], log2[128];
	pid_t sup;

	bt_need_run_sandbox();
	if (!getenv("BATON_PRELOAD_LIB"))
		SKIP("BATON_PRELOAD_LIB does not name the preload shim (run through make check)");
	bt_runtime_tmpdir(dir, sizeof(dir), "hoad");
	snprintf(log1, sizeof(log1), "%s/web.log", dir);
	snprintf(log2, sizeof(log2), "%s/web2.log", dir);
	/* --verbose: says where the shim's map is */
	bt_many_listeners_argv(argv, (int)(sizeof(argv) / sizeof(argv[0])), listen, LISTENERS, 22000, "?handoff=idle",
			       "--verbose");
	sup = start(argv, log1);
	bt_read_file(log1, text, sizeof(text));
	ASSERT_CONTAINS(text, "(the map in an inherited memfd)");

	ASSERT_EQ(kill(sup, SIGKILL), 0);
	waitpid(sup, NULL, 0);
	sup = start(argv, log2);
	bt_read_file(log2, text, sizeof(text));
	ASSERT_CONTAINS(text, "adopted gen 1");
	if (strstr(text, "could not take back the channel"))
		bt_log("%.400s", strstr(text, "handoff: could not"));
	ASSERT_TRUE(strstr(text, "could not take back the channel") == NULL);
	ASSERT_EQ(bt_baton("stop", "web"), 0);
	waitpid(sup, NULL, 0);
}
