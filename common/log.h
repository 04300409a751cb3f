/* SPDX-License-Identifier: BSD-2-Clause */
/* baton's own messages on stderr, with a level: under the journal (stderr
 * is $JOURNAL_STREAM) as sd-daemon "<N>" prefixes, on a terminal or file
 * as "warning: " and "error: " before the text, or as BATON_LOG_FORMAT
 * says. Used by cli/ and supervisor/. */
#ifndef BATON_COMMON_LOG_H
#define BATON_COMMON_LOG_H

#include <stdarg.h>

/* syslog's numbers, as sd-daemon(3) wants them */
enum blog_level { BLOG_ERR = 3, BLOG_WARN = 4, BLOG_NOTICE = 5, BLOG_INFO = 6, BLOG_DEBUG = 7 };

/* How lines look (BATON_LOG_FORMAT, baton run --log-format):
 * PLAIN   "WHO: error: text" (no word for info), the default elsewhere;
 * LEVEL   "WHO: info: text", a level word on every line, for log drivers
 *         and runit/s6 filters that see only text;
 * JOURNAL "<6>text" (sd-daemon prefixes, no WHO: the journal names the
 *         process itself), the default when stderr is $JOURNAL_STREAM, and
 *         for systemd-cat, which parses the prefixes. */
enum blog_format { BLOG_FMT_AUTO, BLOG_FMT_PLAIN, BLOG_FMT_LEVEL, BLOG_FMT_JOURNAL };

/* Parses "plain", "level" or "journal"; -1 if none. */
int blog_format_parse(const char *text);
/* Overrides BATON_LOG_FORMAT and the journal detection (AUTO: back to them). */
void blog_set_format(enum blog_format fmt);

/* WHO prefixes the line, e.g. "baton run" or "baton[web]". */
void blog(enum blog_level level, const char *who, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vblog(enum blog_level level, const char *who, const char *fmt, va_list ap);

#endif
