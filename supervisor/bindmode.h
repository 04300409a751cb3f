/* SPDX-License-Identifier: BSD-2-Clause */
/* --bind-mode shim|cgroup|auto (bindmode.c): how a command that binds its
 * own socket gets into the group. */
#ifndef BATON_SUP_BINDMODE_H
#define BATON_SUP_BINDMODE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

/* bindmode.c: --bind-mode shim|cgroup|auto. Setup picks the mode (and sets
 * up the shim or the cgroups and bind hook); -1: cannot (said why). */
struct baton_bind_event;
int bindmode_setup(struct sup *s);
bool bindmode_cgroup(const struct sup *s);   /* new generations bind their own sockets */
const char *bindmode_mode_name(enum sup_bind_mode m);
const char *bindmode_name(const struct sup *s, int gi);
int bindmode_gen_start(struct sup *s, int gi);  /* before its spawn: its cgroup */
int bindmode_procs_fd(struct sup *s, int id);   /* its cgroup.procs for the child, or -errno */
void bindmode_gen_end(struct sup *s, int gi);   /* its process ended */
bool bindmode_hold_ready(struct sup *s, int gi); /* ready, but not listening yet */
void bindmode_event(void *ctx, const struct baton_bind_event *e);
void bindmode_events(struct sup *s);
void bindmode_tick(struct sup *s, long long now);
void bindmode_fini(struct sup *s, bool clean_stop);

#endif
