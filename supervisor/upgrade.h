/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton upgrade` (upgrade.c): this binary re-executed in place. */
#ifndef BATON_SUP_UPGRADE_H
#define BATON_SUP_UPGRADE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

/* upgrade.c: `baton upgrade` re-executes this binary in place */
int upgrade_start(struct sup *s, int client);
/* After an exec by upgrade_start: takes the inherited control, notify and
 * client sockets back. Returns true if this process is such an upgrade. */
bool upgrade_inherit(struct sup *s);
void upgrade_finish(struct sup *s);

#endif
