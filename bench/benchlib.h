/* SPDX-License-Identifier: BSD-2-Clause */
/* What the benchmark programs share: the words of a command-line error, so
 * that each says a bad option the same way. Built into every bench/ program
 * by the Makefile's bench rule; libc only. */
#ifndef BATON_BENCHLIB_H
#define BATON_BENCHLIB_H

/* getopt_long's answer C that is no option of PROG (':' a value missing,
 * anything else unknown), said on stderr naming the word; returns 2. */
int bench_opt_error(const char *prog, int c, char **argv);
/* An argument left after the options (OPTIND < ARGC), said on stderr;
 * returns 2, or 0 when there is none. */
int bench_extra_args(const char *prog, int argc, char **argv);

#endif
