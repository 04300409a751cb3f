/* SPDX-License-Identifier: BSD-2-Clause */
/* baton's own messages on stderr, with a level: under the journal (stderr
 * is $JOURNAL_STREAM) as sd-daemon "<N>" prefixes, on a terminal or file
 * as "warning: " and "error: " before the text. Used by cli/ and supervisor/. */
#ifndef BATON_COMMON_LOG_H
#define BATON_COMMON_LOG_H

#include <stdarg.h>

/* syslog's numbers, as sd-daemon(3) wants them */
enum blog_level { BLOG_ERR = 3, BLOG_WARN = 4, BLOG_NOTICE = 5, BLOG_INFO = 6, BLOG_DEBUG = 7 };

/* WHO prefixes the line, e.g. "baton run" or "baton[web]". */
void blog(enum blog_level level, const char *who, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vblog(enum blog_level level, const char *who, const char *fmt, va_list ap);

#endif
