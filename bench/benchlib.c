/* SPDX-License-Identifier: BSD-2-Clause */
/* What the benchmark programs share (see benchlib.h): the errors of their
 * command lines, one wording for all. */
#include <getopt.h>
#include <stdio.h>

#include "benchlib.h"

int bench_opt_error(const char *prog, int c, char **argv)
{
	if (c == ':')
		fprintf(stderr, "%s: option \"%s\" needs a value (see %s --help)\n", prog, argv[optind - 1], prog);
	else
		fprintf(stderr, "%s: unknown option \"%s\" (see %s --help)\n", prog, argv[optind - 1], prog);
	return 2;
}

int bench_extra_args(const char *prog, int argc, char **argv)
{
	if (optind >= argc)
		return 0;
	fprintf(stderr, "%s: unexpected argument \"%s\" (see %s --help)\n", prog, argv[optind], prog);
	return 2;
}
