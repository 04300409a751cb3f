/* SPDX-License-Identifier: BSD-2-Clause */
/* Staged reloads (canary.c): a canary that takes a share of new connections
 * beside the active generation, a probation that keeps the old generation
 * alive without traffic, checks that reach the new generation alone, and
 * the one-update flip back when the new one fails. */
#ifndef BATON_SUP_CANARY_H
#define BATON_SUP_CANARY_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "core.h"

/* The stage's hooks (its row in feature.c) and what control.c and health.c
 * call; each does nothing when no stage is under way. */
struct client;
int stage_request(struct sup *s, int ci, const char *cmd, char *args);
/* The staged options of a reload request (ARGS: key=value tokens) for the
 * next start_reload: 0, or -EINVAL said to C. */
int stage_want(struct sup *s, struct client *c, char *args);
void stage_want_clear(struct sup *s);
/* Says why start_reload returned R if a stage or --max-draining refused it. */
bool stage_refused(struct sup *s, struct client *c, int r);
int stage_admit(struct sup *s);
void stage_started(struct sup *s, int gi);
bool stage_ready(struct sup *s, int gi);
bool stage_keep_old(struct sup *s, int old, int gi);
bool stage_gen_exited(struct sup *s, int gi, const char *how);
void stage_reaped(struct sup *s, pid_t pid, int status);
void stage_reload_finished(struct sup *s);
/* true: the health watch stands aside (the stage watches the new one) */
bool stage_tick(struct sup *s, long long now);
bool stage_busy(const struct sup *s);
void stage_fini(struct sup *s);
void stage_save(struct sup *s, FILE *f);
bool stage_load_line(struct sup *s, const char *line);
void stage_resume(struct sup *s);
/* The state names gen ID as a canary: the resume keeps it, neither
 * completing nor rolling back its reload. */
bool stage_resuming(int id);
/* Decides a promotion or rollback now (the control socket's promote and
 * rollback, and tests): 0, or -ENOENT when no stage is under way. */
int stage_promote(struct sup *s, const char *why);
int stage_rollback(struct sup *s, const char *why);
/* Sets the share of the canary (tests, and each --step). */
int stage_set_share(struct sup *s, int pct);
/* The new generation failed (exited, frozen, hung, or a check): flip. */
void stage_fail(struct sup *s, const char *why);

/* Between the feature's files: canary.c (the stage), canary_check.c (its
 * checks and watch), canary_resume.c (across a supervisor restart). */
static const char *const kind_name[] = { "none", "canary", "probation" };
void stage_begin(struct sup *s, enum stage_kind kind, int old, int nw);
void check_tick(struct sup *s, long long now);
bool watch_tick(struct sup *s, long long now);	/* true: the new generation failed, flipped */

#endif
