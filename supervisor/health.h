/* SPDX-License-Identifier: BSD-2-Clause */
/* The health watch (health.c): drains, frozen or hung generations,
 * --stop-when-idle. */
#ifndef BATON_SUP_HEALTH_H
#define BATON_SUP_HEALTH_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

bool stop_when_idle(struct sup *s, struct gen *g);
void idle_check(struct sup *s, struct gen *g, long long now);
void watch_drain(struct sup *s, struct gen *g, long long now);
void health_tick(struct sup *s, long long now);
void children_stopped(struct sup *s);

#endif
