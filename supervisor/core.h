/* SPDX-License-Identifier: BSD-2-Clause */
/* The supervisor's core: the generation and supervisor structs, the
 * constants of the loop, and what sup.c offers every role (saying, the
 * degraded state, setup). Each role has its own header beside this one. */
#ifndef BATON_SUP_CORE_H
#define BATON_SUP_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "log.h"
#include "sup.h"
#include "stage.h"

#define MAX_GENS 16
_Static_assert(SUP_MAX_DRAINING == MAX_GENS - 2, "--max-draining leaves room for the active and the new generation");
#define MAX_CLIENTS 64
#define STALL_MS 20           /* a draining queue that does not shrink this long is moved */
#define DRAIN_HELD_MS 500     /* ... or this long, while its process still holds the listener (health.c) */
#define CLIENT_IDLE_MS 2000   /* a control client must send its request by then */
#define TICK_MS 10
#define TICK_LISTENERS 64     /* listeners a tick looks at: all of them, or a round-robin share */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 10000       /* a generation up this long resets the back-off */

/* CANARY: a reload's new generation taking a share beside the active one;
 * STANDBY: the old one kept alive, without traffic, during a probation */
enum gen_state { GEN_FREE, GEN_STARTING, GEN_READY, GEN_ACTIVE, GEN_DRAINING, GEN_EXITED, GEN_CANARY, GEN_STANDBY,
		 GEN_NSTATES };

static const char *const state_name[] = { "free", "starting", "ready", "active", "draining", "exited", "canary",
					  "standby" };

/* A generation's connection counters on one listener. The eBPF counters
 * are per slot and a slot outlives its member (and is reused): BASE is the
 * slot's count when the member joined, ACC what its members counted before
 * they left the group. */
enum { CNT_STEERED, CNT_MIGRATED_IN, CNT_MIGRATED_OUT, CNT_N };
struct gen_count {
	uint64_t base[CNT_N];
	uint64_t acc[CNT_N];
	bool based;	/* base read when its socket was made (a spare, spare.c), not when it joined */
};

struct gen {
	enum gen_state state;
	int id;
	pid_t pid;                      /* 0 once reaped */
	int pidfd;                      /* -1: none; tells its exit even when it is not our child */
	unsigned long long start_ticks; /* /proc/PID/stat start time: the pid names this process only */
	bool adopted;                   /* left by a supervisor that died: not our child */
	long long start_wall_ms, stop_ms;
	long long start_us, ready_us;    /* monotonic; 0.1 ms for reload timings; ready_us 0: not yet */
	bool heard;                     /* sent any sd_notify message */
	bool assumed;                   /* ready only by --ready-delay, never said so */
	bool killed;
	int status;                     /* wait status once reaped (-1: unknown, not our child) */
	char why[160];                  /* why it ended, for status */
	bool idle_wait;                 /* --stop-when-idle: fenced, not yet signalled */
	bool unit_wait;                 /* accepts what waits in systemd's socket first (sdnotify.c) */
	bool flow_wait;                 /* holds UDP flows: signalled once it holds none (flows.c) */
	char health[96];                /* why the health watch replaced it, for status */
	/* per listener, nlisten entries each (allocated once, kept across reuse) */
	int *slot;                      /* -1: none */
	uint32_t *last_len;
	long long *stall_since;
	ino_t *member_ino;              /* its member sockets, to find them again in /proc/PID/fd */
	struct gen_count *count;        /* its connection counters (metrics.c) */
	bool drain_kept;                /* cBPF: said that its queue waits for it to accept (health.c) */
	long long stopped_since;        /* cBPF: the watch first saw it stopped at (health.c), 0: not */
	long long accept_look_ms;       /* draining: when may_still_accept last looked (health.c), 0: never */
	bool accept_may;                /* what it saw: a process of it held the listener, not stopped */
};

/* takeover.c: a member of generation 0 beyond the first per listener
 * (nginx with reuseport has one socket per worker) */
struct tk_member {
	int gi, l, slot;
	ino_t ino;
	uint32_t last_len;
	long long stall_since;
};

/* Who asked for a reload. A takeover is not counted as a reload (it
 * brings the server under baton); the health watch's replacement of a
 * frozen or hung generation is a restart, and skips --max-draining. */
enum reload_origin { RELOAD_NONE, RELOAD_CONTROL, RELOAD_SIGHUP, RELOAD_HEALTH, RELOAD_TAKEOVER };

/* What the state machine does to processes, behind a seam so that it can
 * be driven in tests without forking real servers. */
struct sup;

struct sup_ops {
	pid_t (*spawn)(struct sup *s, int id, const int *fds, int *err);
	int (*kill)(pid_t pid, int sig);
	/* by pidfd (pidfd_send_signal); NULL: every signal goes through kill */
	int (*pidfd_signal)(int pidfd, int sig);
};

extern const struct sup_ops sup_default_ops;

enum client_role { CL_FREE, CL_READING, CL_RELOAD, CL_STOP };

struct client {
	enum client_role role;
	int fd;
	size_t len;
	long long deadline;
	char buf[SUP_REQUEST_MAX + 1];
	char *big;                  /* reload-with: the request and its items */
	int items;                  /* item lines that follow its first line */
};

struct sup {
	const struct sup_config *cfg;
	const struct sup_ops *ops;
	char name[BATON_NAME_MAX + 1];
	int nl;                     /* listeners */
	struct baton_spec *spec;    /* with the port actually bound */
	char *fdnames;              /* LISTEN_FDNAMES */
	struct baton_group **grp;
	struct baton_steerset *set; /* eBPF: one program and map set for every listener */
	struct baton_watch **watch;
	struct gen gen[MAX_GENS];
	int next_id;
	int active;                 /* index into gen, -1 none */
	int reload;                 /* index of the generation being started by a reload, -1 none */
	int reload_client;          /* client waiting for it, -1 for SIGHUP */
	long long reload_start_us;       /* monotonic; 0: no reload */
	int restart_from;           /* crashed active generation awaiting restart, -1 none */
	long long restart_at;
	long long backoff_ms;
	int reloads_done, reloads_failed, restarts;
	char last_reload[320];
	bool stopping;
	int exit_code;
	int epfd, sigfd, notifyfd, ctlfd;
	char ctl_path[108], notify_path[108];
	struct client cl[MAX_CLIENTS];
	long long start_wall_ms;
	char preload_lib[4096];     /* "" without the shim */
	char *preload_env;          /* BATON_PRELOAD for it */
	int preload_memfd;          /* -1, or the map when too large for the environment (spawn.c) */
	char state_path[4096];      /* the state that outlives this process */
	char pin_root[4096];        /* bpffs directory of the groups' pins, "" in cBPF mode */
	bool resumed;               /* adopted what a dead supervisor left, or re-executed */
	enum reload_origin reload_origin; /* who asked for the reload running (or the last one) */
	char degraded[256];         /* "": healthy; else why the service is degraded */
	long long retry_at;         /* degraded: when to try a replacement again */
	long long retry_ms;         /* its back-off */
	int upgrade_client;         /* client waiting for `baton upgrade` across the exec, -1 none */
	char **argv;                /* this process's own command line, for baton upgrade */
	int watched;                /* generation whose pid the watches know, -1 none */
	struct sup_flows *flows;    /* flows.c: the flow tables' last reading */
	struct handoff *handoff;    /* idle-connection handoff (handoff.c), NULL: no listener asks for it */
	char **cmd;                 /* what generations run; NULL: cfg->argv (cmd.c) */
	char **env;                 /* "K=V" set, "K" unset in every generation */
	char **next_cmd, **next_env; /* a reload's, in force once it serves */
	bool spawn_next;            /* the generation being started is that reload's */
	/* systemd, both ways (sdnotify.c) */
	struct sdn *sd;             /* the manager's NOTIFY_SOCKET and what LISTEN_FDS passed */
	int *shared;                /* per listener: -1 steered, else the one socket every generation gets */
	ino_t *shared_ino;
	int *first;                 /* per listener: a passed SO_REUSEPORT socket, the next fresh generation's member; -1 */
	/* --takeover (takeover.c): generation 0 is the server baton did not start */
	struct tk_member *tkm;
	int ntkm;
	pid_t *tk_pids;             /* every --takeover PID, signalled with generation 0 */
	int *tk_pidfds;             /* their pidfds (-1: none), opened when they were named */
	int ntk_pids;
	int batch_lo, batch_n;      /* the listeners this tick looks at (see in_batch) */
	struct bindmode *bm;        /* --bind-mode state (bindmode.c) */
	struct stage stage;         /* canary.c: a canary or probation under way */
	bool stop_events;           /* tried baton_watch_events on listener 0's watch */
	struct health_ev *hev;      /* health.c: which queues the watch looks at, woken by what, and when */
	struct sup_metrics *mx;     /* metrics.c: reload outcomes, totals of forgotten generations */
	struct mhttp *mhttp;        /* mhttp.c: --metrics-listen, NULL without it */
	char steer_why[160];        /* why eBPF steering could not load (the library's reason), said once */
	char pin_warn[512];         /* why the groups are not pinned: said in eBPF mode only (pins need it anyway) */
	/* rundir.c: the runtime directory and the name's locks */
	int rundir;                 /* O_PATH-like fd of the checked runtime directory, -1 */
	int lockfd;                 /* NAME.lock, flocked for the supervisor's life, -1 */
	int pinlockfd;              /* the pin directory, flocked, -1 */
	bool pins_ours;             /* the pins under pin_root may be cleared by this supervisor */
	int pinwatch;               /* pinwatch.c: inotify on the pin folders, -1: check every pin */
	/* state.c: a state file that cannot be written degrades the service
	 * until a retry succeeds */
	char state_err[256];        /* "": written; else why not */
	long long state_retry_at, state_retry_ms;
	char members_err[256];      /* "": every member held; else which a restart could not take back */
	char ctl_err[256];          /* "": control and notify sockets bound; else why not (control.c) */
	long long ctl_retry_at, ctl_retry_ms;
	struct spares *spares;      /* spare.c: members made for the next generation, NULL: none yet */
};

enum { EV_SIGNAL = 1000, EV_NOTIFY, EV_CONTROL, EV_BINDHOOK = 1500, EV_PIDFD = 2000 /* + generation index */,
       EV_STOPS = 3000 /* stop signals (health.c): only wakes the loop, whose tick reads them */,
       EV_QUEUE = 0x10000 /* + listener: its active member's queue is no longer empty (health.c) */ };
enum { EV_HANDOFF = 1100 };

void say_at(struct sup *s, enum blog_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* steps and transitions; say_warn: rollbacks, degraded, a generation
 * killed; say_err: something failed that the user must fix */
#define say(s, ...) say_at((s), BLOG_INFO, __VA_ARGS__)
#define say_warn(s, ...) say_at((s), BLOG_WARN, __VA_ARGS__)
#define say_err(s, ...) say_at((s), BLOG_ERR, __VA_ARGS__)
void lib_log(void *ctx, enum baton_log_level level, const char *msg);
bool busy(const struct sup *s);
/* NULL: healthy again; else why the service is degraded (for status). */
void sup_set_degraded(struct sup *s, const char *why);
/* Every reason the service is degraded ("" none): the health watch's, a
 * state file that cannot be written, members a restart could not take back. */
const char *sup_degraded_text(const struct sup *s);

/* Sets up S for CFG (per-listener arrays; no sockets, no processes) and
 * releases it again: the loop's own start and end, and a test's. */
int sup_init(struct sup *s, const struct sup_config *cfg, const struct sup_ops *ops);
void sup_fini(struct sup *s);

/* Whether listener L is among those this tick looks at. A supervisor of
 * 1,024 listeners cannot read 1,024 queues and owners every 10 ms without
 * spending a core on it: each tick takes the next TICK_LISTENERS of them. */
static inline bool in_batch(const struct sup *s, int l)
{
	return (l - s->batch_lo + s->nl) % s->nl < s->batch_n;
}

#endif
