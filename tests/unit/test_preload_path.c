/* SPDX-License-Identifier: BSD-2-Clause */
/* Where baton run finds the preload shim: the variable the user set wins,
 * a build tree finds its own shim next to the executable. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "preload_path.h"

TEST(preload_path_takes_the_variable_as_given)
{
	char buf[PATH_MAX];

	setenv("BATON_PRELOAD_LIB", "/proc/self/exe", 1);
	ASSERT_EQ(preload_path_find(buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "/proc/self/exe");
	/* a named shim that is missing is an error, not a fallback elsewhere */
	setenv("BATON_PRELOAD_LIB", "/nonexistent/libbaton-preload.so", 1);
	ASSERT_EQ(preload_path_find(buf, sizeof(buf)), -ENOENT);
	ASSERT_STREQ(buf, "/nonexistent/libbaton-preload.so");
	ASSERT_EQ(preload_path_find(buf, 8), -ENAMETOOLONG);
}

TEST_ENV(preload_path_finds_the_shim_next_to_the_executable)
{
	char exe[PATH_MAX], want[PATH_MAX + 32], buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	ASSERT_GT(n, 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(want, sizeof(want), "%s/libbaton-preload.so", exe);
	if (access(want, R_OK))
		SKIP("no shim next to the test binary at %s (run through make check)", want);
	unsetenv("BATON_PRELOAD_LIB");
	ASSERT_EQ(preload_path_find(buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, want);
	setenv("BATON_PRELOAD_LIB", "", 1);	/* empty means unset */
	ASSERT_EQ(preload_path_find(buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, want);
}
