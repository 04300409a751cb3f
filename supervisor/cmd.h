/* SPDX-License-Identifier: BSD-2-Clause */
/* The command and environment in force, and a reload's (cmd.c). */
#ifndef BATON_SUP_CMD_H
#define BATON_SUP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core.h"

/* cmd.c: the command and environment in force, and a reload's */
char **env_merge(char *const *cur, char *const *changes);
struct envb;
int env_apply(struct envb *e, char *const *env);
char *const *cmd_argv(const struct sup *s);
char *const *cmd_env(const struct sup *s);
void cmd_commit(struct sup *s);
void cmd_drop(struct sup *s);
void cmd_free(struct sup *s);
int cmd_reload_request(struct sup *s, int ci, char *items, int n);

#endif
