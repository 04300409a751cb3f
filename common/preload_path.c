/* SPDX-License-Identifier: BSD-2-Clause */
/* Finds the preload shim: $BATON_PRELOAD_LIB, next to the executable, then
 * the directory compiled in by the Makefile from LIBDIR (see preload_path.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload_path.h"

#ifndef BATON_PRELOAD_DIR
#define BATON_PRELOAD_DIR "/usr/local/lib/baton"
#endif
#define SHIM "libbaton-preload.so"

static int put(char *buf, size_t len, const char *dir, const char *sep, const char *file)
{
	int n = snprintf(buf, len, "%s%s%s", dir, sep, file);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return access(buf, R_OK) ? -errno : 0;
}

int preload_path_find(char *buf, size_t len)
{
	const char *env = getenv("BATON_PRELOAD_LIB");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (!len)
		return -EINVAL;
	buf[0] = '\0';
	if (env && *env)
		return put(buf, len, env, "", "");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if (!put(buf, len, exe, "/", SHIM))
				return 0;
		}
	}
	return put(buf, len, BATON_PRELOAD_DIR, "/", SHIM);
}
