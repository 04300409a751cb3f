/* SPDX-License-Identifier: BSD-2-Clause */
/* Formats a message and hands it to the caller's log callback; the library
 * itself never writes to stdout or stderr. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

void baton_logf(baton_log_fn fn, void *ctx, enum baton_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(ctx, level, msg);
}
