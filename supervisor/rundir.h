/* SPDX-License-Identifier: BSD-2-Clause */
/* The runtime directory (rundir.c): ours alone, used through its fd, and
 * one supervisor per name. */
#ifndef BATON_SUP_RUNDIR_H
#define BATON_SUP_RUNDIR_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

/* rundir.c: the runtime directory (ours alone, used through its fd) and
 * one supervisor per name */
int rundir_open(struct sup *s);
void rundir_reopen(struct sup *s);
int rundir_lock(struct sup *s);
int rundir_lock_pins(struct sup *s);
pid_t rundir_lock_holder(int fd);
int rundir_open_file(struct sup *s, const char *name, const char *what);
int rundir_bind(struct sup *s, int fd, const char *name);
void rundir_unlink(struct sup *s, const char *name);

#endif
