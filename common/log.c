/* SPDX-License-Identifier: BSD-2-Clause */
/* Levelled messages on stderr; see log.h. Whether stderr is the journal is
 * decided once, from $JOURNAL_STREAM ("DEV:INODE" of the stream that
 * systemd connected), as sd_journal_stream_fd(3) documents. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static bool to_journal(void)
{
	static int known = -1;
	const char *env;
	unsigned long long dev, ino;
	struct stat st;

	if (known >= 0)
		return known;
	env = getenv("JOURNAL_STREAM");
	known = env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 && !fstat(STDERR_FILENO, &st) &&
		(unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	return known;
}

void vblog(enum blog_level level, const char *who, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (to_journal())
		fprintf(stderr, "<%d>%s: %s\n", (int)level, who, msg);
	else
		fprintf(stderr, "%s: %s%s\n", who,
			level <= BLOG_ERR ? "error: " : level == BLOG_WARN ? "warning: " : "", msg);
}

void blog(enum blog_level level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vblog(level, who, fmt, ap);
	va_end(ap);
}
