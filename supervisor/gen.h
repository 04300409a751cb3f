/* SPDX-License-Identifier: BSD-2-Clause */
/* The generation state machine (gen.c): start, readiness, switch, rollback,
 * stop, exit and the reload that drives them. Features are called from it
 * only through the hook table (feature.h). */
#ifndef BATON_SUP_GEN_H
#define BATON_SUP_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "core.h"

void step_at(struct sup *s, enum blog_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define step(s, ...) step_at((s), BLOG_INFO, __VA_ARGS__)
void reload_finish(struct sup *s, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void release_members(struct sup *s, struct gen *g);
int live_gens(const struct sup *s);
int alloc_gen(struct sup *s);
int start_gen(struct sup *s, int from, uint32_t weight);
bool gen_makes_member(struct sup *s, int l);
void stop_gen(struct sup *s, struct gen *g);
/* SIG to G's process by its pidfd (never a reused pid); 0 or -errno. */
int gen_signal(struct sup *s, struct gen *g, int sig);
/* The grace's end: SIGKILL to G's process group while G lives, and to G. */
void gen_kill_all(struct sup *s, struct gen *g);
void describe_exit(int status, char *buf, size_t len);
void gen_ready(struct sup *s, int gi, bool assumed);
/* The switch of a reload: GI takes every new connection, the old one stops. */
void gen_switch(struct sup *s, int gi);
void rollback(struct sup *s, const char *why);
void begin_stop(struct sup *s, const char *why);
void gen_exited(struct sup *s, int gi, int status);
void reap(struct sup *s);
void gen_tick(struct sup *s, long long now);	/* starting ones judged by the clock, draining ones past the grace */
int start_reload(struct sup *s, int client, enum reload_origin origin);
/* The same, said in the log as WORDS ("reload requested (WORDS)"); NULL:
 * the origin's own words. */
int start_reload_said(struct sup *s, int client, enum reload_origin origin, const char *words);
void gen_reset(struct sup *s, struct gen *g);
/* The one writer of a generation's state: GI goes to TO, for WHY (said with
 * -vv). 0, or -EINVAL for a transition the table does not allow (an
 * internal error, said; the state stays). Staying is allowed. */
int gen_set_state(struct sup *s, int gi, enum gen_state to, const char *why);
bool gen_transition_legal(enum gen_state from, enum gen_state to);
int gen_watch_pid(struct sup *s, int gi);
int draining_gens(const struct sup *s);
void undark(struct sup *s);
void pid_ended(struct sup *s, int gi);

#endif
