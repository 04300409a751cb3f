/* SPDX-License-Identifier: BSD-2-Clause */
/* scripts/check-includes, CI's check that a file's includes say what it
 * uses: it names an #include "x.h" of which nothing is used, passes one that
 * is used, and the tree outside supervisor/ (restructured apart) passes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

/* scripts/check-includes ARGS... in the source tree: its exit status. */
static int check(const char *const *args)
{
	const char *src = getenv("BATON_SRCDIR");
	char script[4096];
	char *argv[16] = { "/usr/bin/python3", script };
	int n = 2;

	if (!src || !*src)
		SKIP("BATON_SRCDIR does not name the source tree (run through make check)");
	if (access("/usr/bin/python3", X_OK))
		SKIP("/usr/bin/python3 is not installed (Debian package python3)");
	snprintf(script, sizeof(script), "%s/scripts/check-includes", src);
	while (*args && n < 15)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	return bt_run(argv, out, sizeof(out), err, sizeof(err), 120);
}

TEST(checkincludes_names_an_include_of_which_nothing_is_used)
{
	char dir[] = "/tmp/baton-inc-XXXXXX", path[64], want[160];

	if (!mkdtemp(dir))
		FAIL("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/only_util.c", dir);
	/* baton.h declares baton_version; only util.h's baton_mono_ms is used */
	bt_write_file(NULL, path, "#include \"baton.h\"\n#include \"util.h\"\n"
			 "/* baton_version() named in a comment is no use */\n"
			 "int f(void);\nint f(void) { return baton_mono_ms() > 0; }\n");
	ASSERT_EQ(check((const char *[]){ path, NULL }), 1);
	snprintf(want, sizeof(want), "%s:1: includes \"baton.h\" but uses nothing it declares", path);
	ASSERT_CONTAINS(out, want);
	ASSERT_TRUE(strstr(out, "\"util.h\"") == NULL);
	ASSERT_CONTAINS(err, "1 include(s) above are not used");
	/* using one thing it declares is enough */
	bt_write_file(NULL, path, "#include \"baton.h\"\n#include \"util.h\"\n"
			 "int f(void);\nint f(void) { return baton_mono_ms() > 0 && baton_version(); }\n");
	ASSERT_EQ(check((const char *[]){ path, NULL }), 0);
	ASSERT_STREQ(out, "");
	unlink(path);
	rmdir(dir);
}

TEST_TIMEOUT(checkincludes_tree_outside_the_supervisor_uses_what_it_includes, 120)
{
	if (check((const char *[]){ "bench/", "bpf/", "cli/", "common/", "examples/", "fuzz/", "include/", "lib/",
				    "preload/", "tests/", NULL }))
		FAIL("scripts/check-includes found unused includes:\n%s%s", out, err);
}
