/* SPDX-License-Identifier: BSD-2-Clause */
/* The state of a staged reload (a canary or a probation), kept in struct
 * sup; what is done with it is in canary.h. */
#ifndef BATON_SUP_STAGE_H
#define BATON_SUP_STAGE_H

#include <stdbool.h>
#include <stddef.h>
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

#endif
