/* SPDX-License-Identifier: BSD-2-Clause */
/* Between the state's files: state.c (the file, written and read), resume.c
 * (a dead supervisor's generations taken back) and orphans.c (those no
 * state names). The rest of the supervisor uses state.h. */
#ifndef BATON_SUP_RESUME_H
#define BATON_SUP_RESUME_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"
#include "stateparse.h"

/* -ENOENT if there is none; -EBADMSG, said with the line (escaped), if it
 * is not one this supervisor wrote or not a file of ours. */
int state_read(struct sup *s, const char *path, struct state *st);
/* G->alive: the process is still the one the state names (G->pidfd then) */
void check_alive(struct st_gen *g);
/* Puts the members of adopted generation SG (slot GI) back into the groups;
 * what cannot be taken back is added to LOST, and *STORED counts those the
 * fd store gave back. */
void adopt_members(struct sup *s, struct state *st, struct st_gen *sg, int gi, bool serving, char *lost,
		   size_t lostlen, int *stored);
/* The steering groups, one per listener; RESUME: the pins are kept. */
int make_groups(struct sup *s, bool resume);
void resume_said(const struct sup *s, int skip, bool ours, char *said, size_t len);
void resume_lost(struct sup *s, const char *lost);

#endif
