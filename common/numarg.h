/* SPDX-License-Identifier: BSD-2-Clause */
/* One number given on a command line, checked whole and in range: shared by
 * the benches and the example server, which each say the error their way.
 * Header-only, so that the example server still builds from its own files. */
#ifndef BATON_NUMARG_H
#define BATON_NUMARG_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* TEXT as one number from LO to HI (a base-10 integer when WHOLE, so "1e3"
 * and "0x10" are refused there): 0 with it in *OUT, else -1 and *OUT left
 * alone. Nothing but the number may stand in TEXT; overflow is refused. */
static inline int numarg_parse(const char *text, double lo, double hi, bool whole, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = whole ? (double)strtoll(text, &end, 10) : strtod(text, &end);
	if (errno || end == text || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

#endif
