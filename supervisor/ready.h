/* SPDX-License-Identifier: BSD-2-Clause */
/* Readiness (ready.c): sd_notify messages from the generations and the
 * shim's LISTEN reports. */
#ifndef BATON_SUP_READY_H
#define BATON_SUP_READY_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

bool notify_from(const struct gen *g, const struct baton_notify_msg *m);
bool listen_is_ready(const struct sup *s, const struct baton_notify_msg *m);
void read_notify(struct sup *s);

#endif
