/* SPDX-License-Identifier: BSD-2-Clause */
/* What the supervisor's files share: the generation, client and supervisor
 * structs, and the functions each role offers the others. Not a public
 * interface: cli/ uses sup.h. */
#ifndef BATON_SUP_INTERNAL_H
#define BATON_SUP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "log.h"
#include "sup.h"
#include "util.h"
#include "canary.h"

#define MAX_GENS 16
_Static_assert(SUP_MAX_DRAINING == MAX_GENS - 2, "--max-draining leaves room for the active and the new generation");
#define MAX_CLIENTS 64
#define STALL_MS 20           /* a draining queue that does not shrink this long is moved */
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
	/* state.c: a state file that cannot be written degrades the service
	 * until a retry succeeds */
	char state_err[256];        /* "": written; else why not */
	long long state_retry_at, state_retry_ms;
	char members_err[256];      /* "": every member held; else which a restart could not take back */
	char ctl_err[256];          /* "": control and notify sockets bound; else why not (control.c) */
	long long ctl_retry_at, ctl_retry_ms;
};

enum { EV_SIGNAL = 1000, EV_NOTIFY, EV_CONTROL, EV_BINDHOOK = 1500, EV_PIDFD = 2000 /* + generation index */,
       EV_STOPS = 3000 /* stop signals (health.c): only wakes the loop, whose tick reads them */,
       EV_QUEUE = 0x10000 /* + listener: its active member's queue is no longer empty (health.c) */ };
enum { EV_HANDOFF = 1100 };


int preload_setup(struct sup *s);      /* -1: the shim cannot carry the listeners (said why) */
void preload_apply(struct sup *s);
pid_t spawn(struct sup *s, int id, const int *fds, int *err);
void step_at(struct sup *s, enum blog_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define step(s, ...) step_at((s), BLOG_INFO, __VA_ARGS__)
void reload_finish(struct sup *s, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void release_members(struct sup *s, struct gen *g);
int live_gens(const struct sup *s);
int alloc_gen(struct sup *s);
int start_gen(struct sup *s, int from, uint32_t weight);
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
void client_send(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void client_close(struct sup *s, struct client *c);
void handle_request(struct sup *s, int ci);
void accept_client(struct sup *s);
void read_client(struct sup *s, int ci);
int open_control(struct sup *s);
void control_retry(struct sup *s, long long now);	/* sockets a read-only directory refused, again */
void say_at(struct sup *s, enum blog_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* steps and transitions; say_warn: rollbacks, degraded, a generation
 * killed; say_err: something failed that the user must fix */
#define say(s, ...) say_at((s), BLOG_INFO, __VA_ARGS__)
#define say_warn(s, ...) say_at((s), BLOG_WARN, __VA_ARGS__)
#define say_err(s, ...) say_at((s), BLOG_ERR, __VA_ARGS__)
void lib_log(void *ctx, enum baton_log_level level, const char *msg);
bool busy(const struct sup *s);
bool stop_when_idle(struct sup *s, struct gen *g);
void idle_check(struct sup *s, struct gen *g, long long now);
void watch_drain(struct sup *s, struct gen *g, long long now);
void health_tick(struct sup *s, long long now);
int health_wait_ms(const struct sup *s, long long now); /* the watch's next look, -1: only on events */
void health_event(struct sup *s, uint32_t tag);          /* EV_STOPS or EV_QUEUE + listener */
void health_fini(struct sup *s);
void children_stopped(struct sup *s);
void write_status(struct sup *s, FILE *f, bool json);
bool notify_from(const struct gen *g, const struct baton_notify_msg *m);
bool listen_is_ready(const struct sup *s, const struct baton_notify_msg *m);
void read_notify(struct sup *s);

const char *fmt_duration(long long ms);
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
/* NULL: healthy again; else why the service is degraded (for status). */
void sup_set_degraded(struct sup *s, const char *why);
/* Every reason the service is degraded ("" none): the health watch's, a
 * state file that cannot be written, members a restart could not take back. */
const char *sup_degraded_text(const struct sup *s);

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
int sup_make_groups(struct sup *s);
/* Generations of this supervisor serving on its listeners that no state
 * names (it could not be written): adopted, in groups it makes on the
 * pins they are in. 1: some, 0: none (no groups made), -errno. */
int state_adopt_orphans(struct sup *s);

/* upgrade.c: `baton upgrade` re-executes this binary in place */
int upgrade_start(struct sup *s, int client);
/* After an exec by upgrade_start: takes the inherited control, notify and
 * client sockets back. Returns true if this process is such an upgrade. */
bool upgrade_inherit(struct sup *s);
void upgrade_finish(struct sup *s);

/* handoff.c: idle keep-alive connections from a stopping generation to
 * the serving one (?handoff=idle). Every hook does nothing without one. */
int handoff_open(struct sup *s);
void handoff_close(struct sup *s, bool clean);
void handoff_read(struct sup *s, uint32_t tag);	/* tag: EV_HANDOFF + the generation's slot */
void handoff_tick(struct sup *s, long long now);
bool handoff_busy(const struct sup *s);
void handoff_gen_start(struct sup *s, int gi);
void handoff_gen_stop(struct sup *s, struct gen *g);
int handoff_child_lift(struct sup *s, int top);	/* in spawn's child: 0, 2 or 3 fds to place */
int handoff_child_place(struct sup *s, int base);
/* cmd.c: the command and environment in force, and a reload's */
size_t strv_len(char *const *v);
void strv_free(char **v);
int strv_push(char ***v, char *text);
char **strv_dup(char *const *v);
bool strv_eq(char *const *a, char *const *b);
char **env_merge(char *const *cur, char *const *changes);
void env_apply(char *const *env);
char *const *cmd_argv(const struct sup *s);
char *const *cmd_env(const struct sup *s);
void cmd_commit(struct sup *s);
void cmd_drop(struct sup *s);
void cmd_free(struct sup *s);
int cmd_reload_request(struct sup *s, int ci, char *items, int n);

/* metrics.c: per-generation counters, and `baton status --metrics` */
void count_join(struct sup *s, struct gen *g, int l);
void count_leave(struct sup *s, struct gen *g, int l);
/* What G's members on listener L counted, left or still in the group;
 * false in classic BPF mode (no counters). */
bool gen_counts(struct sup *s, const struct gen *g, int l, uint64_t out[CNT_N]);
void write_metrics(struct sup *s, FILE *f);
int metrics_init(struct sup *s);                 /* 0 or -ENOMEM */
void metrics_fini(struct sup *s);
/* A reload ended: OK or rolled back, after TOOK_US (-1: unknown, not timed) */
void metrics_reload(struct sup *s, bool ok, long long took_us);
void metrics_forget(struct sup *s, struct gen *g);  /* G's table entry is reused: its counts go to the totals */
void metrics_save(struct sup *s, FILE *f);       /* state file lines */
bool metrics_load_line(struct sup *s, const char *line);
void metrics_resume(struct sup *s);              /* the loaded lines take effect (a resume, not a fresh start) */
/* mhttp.c: --metrics-listen, GET /metrics over HTTP (nothing without it) */
#define MHTTP_CLIENTS 8       /* at once; a new one takes the place of the oldest that sent nothing yet */
#define MHTTP_READ_MS 2000    /* a client must send its request head by then */
#define MHTTP_WRITE_MS 5000   /* and take the answer by then */
enum { EV_MHTTP = 1200 /* the listener; + 1 + client index: its clients */ };
int mhttp_open(struct sup *s);        /* -errno said: the address cannot be served */
void mhttp_close(struct sup *s);
void mhttp_event(struct sup *s, uint32_t which);
void mhttp_tick(struct sup *s, long long now);
bool mhttp_busy(const struct sup *s);
void mhttp_exec(struct sup *s, bool going);     /* the listener crosses baton upgrade's exec (or not, after all) */
/* sdnotify.c: baton as a systemd service. Without NOTIFY_SOCKET nothing
 * is sent; without LISTEN_FDS every listener binds as usual. */
int sdn_init(struct sup *s);          /* LISTEN_FDS intake, before anything binds; -errno said */
void sdn_free(struct sup *s);
void sdn_ready(struct sup *s);        /* gen 1 ready, or generations adopted */
void sdn_reloading(struct sup *s);
void sdn_reload_end(struct sup *s);
void sdn_stopping(struct sup *s);
void sdn_status(struct sup *s);       /* STATUS= if the line changed */
void sdn_store(struct sup *s, int l, int fd);    /* FDSTORE=1 a member or shared socket */
void sdn_unstore(struct sup *s, int l, ino_t ino);
bool sdn_passed(const struct sup *s, int l);     /* listener L came from LISTEN_FDS (or a takeover) */
/* The .socket unit's own sockets are systemd's: never shut down, parked
 * without weight when their generation retires, steered to at stop. */
bool sdn_is_unit(const struct sup *s, ino_t ino);
void sdn_mark_foreign(struct sup *s);
bool sdn_park_unit(struct sup *s, struct gen *g, int l);
void sdn_stop_to_unit(struct sup *s);
void sdn_release_unit(struct sup *s);
void sdn_upgrade_pass(struct sup *s, bool pass);  /* baton upgrade: they cross the exec */
bool sdn_unit_hold(struct sup *s, struct gen *g);
void sdn_unit_wait_check(struct sup *s, struct gen *g, long long now);
bool sdn_ours(const struct sup *s, unsigned long long ino); /* a socket passed to us, not foreign */
int sdn_dup_ino(struct sup *s, unsigned long long ino);     /* a copy of a passed/stored socket, or -ENOENT */
int sdn_member_fd(struct sup *s, int l);         /* takes listener L's passed first member, -1 none */
const char *listener_mode(const struct sup *s, int l);      /* "steered" or "shared" */

/* takeover.c */
int takeover_collect(struct sup *s);   /* generation 0 from --takeover PIDs; -errno said */
void takeover_pids_free(struct sup *s);
void takeover_abandon(struct sup *s);  /* gives generation 0 back untouched */
void takeover_release(struct sup *s, struct gen *g, bool fence);
void takeover_drain(struct sup *s, struct gen *g, long long now);
void takeover_signal(struct sup *s, struct gen *g);
int takeover_add_member(struct sup *s, int gi, int l, int slot, ino_t ino);
/* A copy of fd FD of PID, which must still be the process that started at
 * START (clock ticks; 0: not checked) and FD still the socket of inode INO
 * found by the scan. The copy, or -errno with WHY said. */
int takeover_copy_fd(pid_t pid, unsigned long long start, int fd, unsigned long long ino, char *why, size_t len);
void sdn_mark_ours(struct sup *s, ino_t ino);   /* a taken socket: not foreign */

/* rundir.c: the runtime directory (ours alone, used through its fd) and
 * one supervisor per name */
int rundir_open(struct sup *s);
void rundir_reopen(struct sup *s);
int rundir_lock(struct sup *s);
int rundir_lock_pins(struct sup *s);
pid_t rundir_lock_holder(int fd);
int rundir_open_file(struct sup *s, const char *name, const char *what);
int rundir_bind(struct sup *s, int fd, const char *name);
void rundir_unlink(struct sup *s, const char *name);

/* foreign.c: sockets on a listener's address that baton did not create */
int foreign_check(struct sup *s);
struct baton_sock;
bool sock_on_spec(const struct baton_spec *sp, const struct baton_sock *k);	/* K listens on SP's address */

/* flows.c: UDP flows through reloads (see the file) */
struct baton_group_opts;
enum baton_flows sup_flows_mode(const struct sup *s, int l);
void flows_group_opts(const struct sup *s, int l, struct baton_group_opts *o);
void flows_gen_start(struct sup *s, struct gen *g);
void flows_env(const struct sup *s, int id);
bool flows_hold(struct sup *s, struct gen *g);
void flows_check(struct sup *s, struct gen *g, long long now);
void flows_fini(struct sup *s);

/* bindmode.c: --bind-mode shim|cgroup|auto. Setup picks the mode (and sets
 * up the shim or the cgroups and bind hook); -1: cannot (said why). */
struct baton_bind_event;
int bindmode_setup(struct sup *s);
bool bindmode_cgroup(const struct sup *s);   /* new generations bind their own sockets */
const char *bindmode_mode_name(enum sup_bind_mode m);
const char *bindmode_name(const struct sup *s, int gi);
int bindmode_gen_start(struct sup *s, int gi);  /* before its spawn: its cgroup */
int bindmode_procs_fd(struct sup *s, int id);   /* its cgroup.procs for the child, or -errno */
void bindmode_gen_end(struct sup *s, int gi);   /* its process ended */
bool bindmode_hold_ready(struct sup *s, int gi); /* ready, but not listening yet */
void bindmode_event(void *ctx, const struct baton_bind_event *e);
void bindmode_events(struct sup *s);
void bindmode_tick(struct sup *s, long long now);
void bindmode_fini(struct sup *s, bool clean_stop);

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
