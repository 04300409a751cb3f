/* SPDX-License-Identifier: BSD-2-Clause */
/* Idle keep-alive connections from a stopping generation to the serving
 * one (handoff.c, ?handoff=idle). Every hook does nothing without one. */
#ifndef BATON_SUP_HANDOFF_H
#define BATON_SUP_HANDOFF_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.h"

/* handoff.c: idle keep-alive connections from a stopping generation to
 * the serving one (?handoff=idle). Every hook does nothing without one. */
int handoff_open(struct sup *s);
void handoff_close(struct sup *s, bool clean);
void handoff_read(struct sup *s, uint32_t tag);	/* tag: EV_HANDOFF + the generation's slot */
void handoff_tick(struct sup *s, long long now);
bool handoff_busy(const struct sup *s);
void handoff_gen_start(struct sup *s, int gi);
void handoff_gen_stop(struct sup *s, struct gen *g);
struct envb;
int handoff_spawn_fds(const struct sup *s, int fd[3]);	/* 0, 2 or 3 fds the generation inherits */
int handoff_env(const struct sup *s, struct envb *e, int base);

#endif
