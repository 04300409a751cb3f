/* SPDX-License-Identifier: BSD-2-Clause */
/* Starting a generation's process (spawn.c): the preload shim's map and
 * the clone and exec with LISTEN_FDS. Not named spawn.h: with -Isupervisor
 * that would hide the C library's <spawn.h>. */
#ifndef BATON_SUP_GENSPAWN_H
#define BATON_SUP_GENSPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

int preload_setup(struct sup *s);      /* -1: the shim cannot carry the listeners (said why) */
struct envb;
int preload_apply(struct sup *s, struct envb *e);
pid_t spawn(struct sup *s, int id, const int *fds, int *err);
int spawn_fd_after_map(const struct sup *s);	/* a shim generation's first fd past its listeners and map */

#endif
