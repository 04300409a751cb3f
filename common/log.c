/* SPDX-License-Identifier: BSD-2-Clause */
/* Levelled messages on stderr; see log.h. Whether stderr is the journal is
 * decided once, from $JOURNAL_STREAM ("DEV:INODE" of the stream that
 * systemd connected), as sd_journal_stream_fd(3) documents. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static enum blog_format chosen = BLOG_FMT_AUTO;

int blog_format_parse(const char *text)
{
	if (!text)
		return -1;
	if (!strcmp(text, "plain"))
		return BLOG_FMT_PLAIN;
	if (!strcmp(text, "level"))
		return BLOG_FMT_LEVEL;
	if (!strcmp(text, "journal"))
		return BLOG_FMT_JOURNAL;
	return -1;
}

void blog_set_format(enum blog_format fmt)
{
	chosen = fmt;
}

static enum blog_format format(void)
{
	static int from_env = -2;	/* -2: not read yet */
	const char *env;

	if (chosen != BLOG_FMT_AUTO)
		return chosen;
	if (from_env == -2) {
		env = getenv("BATON_LOG_FORMAT");
		from_env = env && *env ? blog_format_parse(env) : BLOG_FMT_AUTO;
		if (from_env < 0)
			fprintf(stderr, "baton: warning: BATON_LOG_FORMAT=\"%.64s\" is none of plain, level, journal; "
					"ignored\n", env);
	}
	if (from_env > BLOG_FMT_AUTO)
		return (enum blog_format)from_env;
	return to_journal() ? BLOG_FMT_JOURNAL : BLOG_FMT_PLAIN;
}

static const char *level_word(enum blog_level level)
{
	switch (level) {
	case BLOG_ERR: return "error";
	case BLOG_WARN: return "warning";
	case BLOG_NOTICE: return "notice";
	case BLOG_INFO: return "info";
	case BLOG_DEBUG: return "debug";
	}
	return level < BLOG_ERR ? "error" : "debug";
}

void vblog(enum blog_level level, const char *who, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	switch (format()) {
	case BLOG_FMT_JOURNAL:
		/* journald puts its own "baton[PID]:" before the line: ours
		 * would say it twice. A subcommand ("baton steer") stays. */
		if (!strncmp(who, "baton ", 6))
			fprintf(stderr, "<%d>%s: %s\n", (int)level, who + 6, msg);
		else
			fprintf(stderr, "<%d>%s\n", (int)level, msg);
		break;
	case BLOG_FMT_LEVEL:
		fprintf(stderr, "%s: %s: %s\n", who, level_word(level), msg);
		break;
	default:
		fprintf(stderr, "%s: %s%s\n", who,
			level <= BLOG_ERR ? "error: " : level == BLOG_WARN ? "warning: " : "", msg);
	}
}

void blog(enum blog_level level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vblog(level, who, fmt, ap);
	va_end(ap);
}
