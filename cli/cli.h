/* SPDX-License-Identifier: BSD-2-Clause */
/* What the subcommands of `baton` share: the command table entry, and the
 * log callback that prints library messages on stderr. */
#ifndef BATON_CLI_H
#define BATON_CLI_H

#include <stdio.h>

#include "baton.h"

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);   /* argv[0] is the command name */
	void (*usage)(FILE *out);
};

/* exit codes */
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 3   /* the client stopped waiting; the request goes on */

/* main()'s argv: `baton run` re-executes it for `baton upgrade` */
extern char **cli_self_argv;

void cli_log(void *ctx, enum baton_log_level level, const char *msg);

int cmd_demo(int argc, char **argv);
void usage_demo(FILE *out);
int cmd_run(int argc, char **argv);
void usage_run(FILE *out);
int cmd_reload(int argc, char **argv);
void usage_reload(FILE *out);
int cmd_promote(int argc, char **argv);
void usage_promote(FILE *out);
int cmd_rollback(int argc, char **argv);
void usage_rollback(FILE *out);
int cmd_status(int argc, char **argv);
void usage_status(FILE *out);
int cmd_stop(int argc, char **argv);
int cmd_upgrade(int argc, char **argv);
void usage_upgrade(FILE *out);
void usage_stop(FILE *out);
int cmd_ls(int argc, char **argv);
void usage_ls(FILE *out);
int cmd_steer(int argc, char **argv);
void usage_steer(FILE *out);

#endif
