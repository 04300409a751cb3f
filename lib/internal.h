/* Helpers shared inside the library; nothing here is exported (see
 * lib/libbaton.map). */
#ifndef BATON_INTERNAL_H
#define BATON_INTERNAL_H

#include "baton.h"

#define BATON_HIDDEN __attribute__((visibility("hidden")))

BATON_HIDDEN void baton_logf(baton_log_fn fn, void *ctx, enum baton_log_level level,
			     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
