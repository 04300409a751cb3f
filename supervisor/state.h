/* SPDX-License-Identifier: BSD-2-Clause */
/* What outlives the supervisor (state.c, resume.c): the state file, the
 * pins, and the resume or adoption of what a dead supervisor left. */
#ifndef BATON_SUP_STATE_H
#define BATON_SUP_STATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

/* state.c: what outlives this process */
void state_save(struct sup *s);
void state_retry(struct sup *s, long long now);	/* a failed write again, after its back-off */
void state_repin(struct sup *s);	/* pins removed while running, made again (at each reload) */
/* Reads the state a dead supervisor (or this one, before an exec) left and
 * adopts its generations. 1: resumed, 0: no state to resume, -errno: a
 * state that cannot be resumed (said why). */
int state_resume(struct sup *s);
void state_remove(struct sup *s);
int state_pin_root(struct sup *s);
/* pinwatch.c: whether state_repin must look (an inotify watch on the pins) */
void pinwatch_arm(struct sup *s);
bool pinwatch_changed(struct sup *s);
void pinwatch_close(struct sup *s);
int sup_make_groups(struct sup *s);
/* Generations of this supervisor serving on its listeners that no state
 * names (it could not be written): adopted, in groups it makes on the
 * pins they are in. 1: some, 0: none (no groups made), -errno. */
int state_adopt_orphans(struct sup *s);

#endif
