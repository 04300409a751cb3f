/* SPDX-License-Identifier: BSD-2-Clause */
/* The baton command as a user meets it: --help everywhere, errors that name
 * the bad input, and the demo's measured outcome. */
#include <stdio.h>

#include "harness.h"
#include "helpers.h"

static char out[16384], err[4096];

static int baton(const char *a1, const char *a2, const char *a3)
{
	char *argv[] = { (char *)bt_baton_bin(), (char *)a1, (char *)a2, (char *)a3, NULL };

	return bt_run(argv, out, sizeof(out), err, sizeof(err), 60);
}

TEST(cli_help_lists_commands)
{
	ASSERT_EQ(baton("--help", NULL, NULL), 0);
	ASSERT_CONTAINS(out, "usage: baton COMMAND");
	ASSERT_CONTAINS(out, "demo");
	ASSERT_EQ(baton("demo", "--help", NULL), 0);
	ASSERT_CONTAINS(out, "usage: baton demo");
	ASSERT_EQ(baton("help", "demo", NULL), 0);
	ASSERT_CONTAINS(out, "--json");
	ASSERT_EQ(baton("--version", NULL, NULL), 0);
	ASSERT_CONTAINS(out, "baton " BATON_VERSION);
}

TEST(cli_errors_name_the_bad_input)
{
	ASSERT_EQ(baton("frobnicate", NULL, NULL), 2);
	ASSERT_CONTAINS(err, "unknown command \"frobnicate\"");
	ASSERT_EQ(baton("demo", "--colour", NULL), 2);
	ASSERT_CONTAINS(err, "unknown option \"--colour\"");
	ASSERT_EQ(baton("demo", "extra", NULL), 2);
	ASSERT_CONTAINS(err, "unexpected argument \"extra\"");
	ASSERT_EQ(baton(NULL, NULL, NULL), 2);
	ASSERT_CONTAINS(err, "usage: baton");
}

TEST_TIMEOUT(cli_demo_shows_problem_and_answer, 90)
{
	long long plain_failed;

	ASSERT_EQ(baton("demo", "--json", NULL), 0);
	if (!strstr(out, "\"mode\": \"ebpf\""))
		SKIP("the demo ran without eBPF (needs CAP_BPF and CAP_NET_ADMIN, or root): %s", out);
	plain_failed = bt_json_int(out, "plain", "failed");
	ASSERT_EQ(bt_json_int(out, "plain", "worked") + plain_failed, 100);
	/* about half hash onto the frozen server; 5 sigma of a fair coin is 25 */
	ASSERT_GE(plain_failed, 25);
	ASSERT_LE(plain_failed, 75);
	ASSERT_EQ(bt_json_int(out, "baton", "worked"), 100);
	ASSERT_EQ(bt_json_int(out, "baton", "failed"), 0);
	ASSERT_EQ(bt_json_int(out, "switch", "failed"), 0);
	ASSERT_GT(bt_json_int(out, "switch", "worked"), 100);
	ASSERT_GT(bt_json_int(out, "switch", "migrated"), 0);
}
