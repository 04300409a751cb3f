/* SPDX-License-Identifier: BSD-2-Clause */
/* Spare members (spare.c): the next generation's member sockets, made
 * while nothing happens, so a reload's start only hands them over. */
#ifndef BATON_SUP_SPARE_H
#define BATON_SUP_SPARE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

void spare_arm(struct sup *s);
void spare_arm_after(struct sup *s);
void spare_tick(struct sup *s, long long now);
int spare_wait_ms(const struct sup *s, long long now);
int spare_take(struct sup *s, struct gen *g, int l);
void spare_started(struct sup *s, int gi);
void spare_drop_all(struct sup *s);
void spare_closed(struct sup *s, bool clean);
void spare_fini(struct sup *s);
int spare_count(const struct sup *s);

#endif
