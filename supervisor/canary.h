/* SPDX-License-Identifier: BSD-2-Clause */
/* Staged reloads (canary.c): a canary that takes a share of new connections
 * beside the active generation, a probation that keeps the old generation
 * alive without traffic, checks that reach the new generation alone, and
 * the one-update flip back when the new one fails. */
#ifndef BATON_SUP_CANARY_H
#define BATON_SUP_CANARY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define STAGE_CHECK_PORTS 16	/* reserved source ports of the probes */
#define STAGE_CHECK_LO 1008	/* below every ephemeral range: no client comes from there */

enum stage_kind { STAGE_NONE, STAGE_CANARY, STAGE_PROBATION };

/* What a reload request asks for (baton reload --canary ...). */
struct stage_opts {
	int canary_pct;          /* 1 .. 99; 0: a full switch */
	long long step_ms;       /* canary: add canary_pct every step_ms up to 100 % (0: by hand) */
	long long probation_ms;  /* full switch, the old one stays this long */
	char check_path[128];    /* --check http://HOST/PATH: "/PATH"; "" none */
	char check_host[64];
	char check_cmd[200];     /* --check-cmd; "" none */
	long long check_ms;      /* probe interval */
};

struct baton_watch;

struct stage {
	enum stage_kind kind;
	struct stage_opts want;  /* of the reload request being started */
	struct stage_opts o;     /* of the reload under way */
	int new_gi, old_gi;
	int new_id, old_id;
	int pct;                 /* share asked of the new generation */
	/* CLOCK_MONOTONIC (baton_mono_ms), absolute: one clock for every
	 * process of a boot, so the state file keeps them as they are */
	long long since_ms, next_step_ms, until_ms;
	/* the check in flight: an HTTP probe (fd) or a command (pid) */
	long long next_check_ms, check_deadline;
	int check_fd;
	pid_t check_pid;
	bool check_sent;
	char check_buf[64];
	size_t check_len;
	int check_port;          /* next source port to use */
	int checks_ok, checks_failed;	/* of this stage only: stage_begin zeroes them */
	char check_last[160];
	bool pinned;
	/* resumed by a new supervisor with a check: no step and no promotion
	 * until a check made after the resume passed */
	bool resumed_unchecked;
	bool counts_dirty;       /* a verdict since the state was last written */
	long long saved_ms;      /* when the state was last written */
	struct baton_watch **watch; /* over the new generation's members */
	char last[320];          /* how the last stage ended, for status */
};

struct sup;
struct gen;

/* Hooks of the generation state machine (gen.c, health.c, sup.c, state.c,
 * control.c); each does nothing when no stage is under way. */
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

#endif
