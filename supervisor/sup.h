/* SPDX-License-Identifier: BSD-2-Clause */
/* The supervisor behind `baton run`: generations of one command, each with
 * its own member sockets in steered groups, readiness, switch, drain,
 * rollback and crash restart; and the control socket that `baton reload`,
 * `status` and `stop` talk to. Uses lib/ only; knows nothing of the CLI. */
#ifndef BATON_SUP_H
#define BATON_SUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "baton.h"

#define SUP_MAX_LISTENERS 4096   /* each is a steered group: a program and 4 maps */
#define SUP_PROTO "baton/1"
#define SUP_REQUEST_MAX 256
#define SUP_MAX_DRAINING 14      /* the generation table, less the active and the new one */
#define BATON_STR_(x) #x
#define BATON_STR(x) BATON_STR_(x)
/* `baton/1 reload-with N` is followed by N item lines ("arg X", "env K=V",
 * "unset K", X percent-escaped): at most this many, in this many bytes */
#define SUP_ITEMS_MAX 4096
#define SUP_REQUEST_BIG (256 * 1024)

/* LISTEN: libbaton-preload reports the server's first listen() on a member */
enum sup_ready { SUP_READY_AUTO, SUP_READY_NOTIFY, SUP_READY_DELAY, SUP_READY_LISTEN };

/* How a command that binds its own socket gets into the group (--bind-mode).
 * NONE: --no-preload, the sockets only as LISTEN_FDS. */
enum sup_bind_mode { SUP_BIND_AUTO, SUP_BIND_SHIM, SUP_BIND_CGROUP, SUP_BIND_NONE };

struct sup_config {
	char name[BATON_NAME_MAX + 1];
	struct baton_spec *listen;   /* nlisten of them (the caller owns the array) */
	struct baton_spec_flows *flows; /* UDP flow options, nlisten of them; NULL: the defaults */
	int nlisten;
	enum sup_ready ready;
	long long ready_delay_ms;    /* DELAY: ready this long after start; AUTO: if silent */
	long long ready_timeout_ms;  /* no readiness by then: rollback */
	long long grace_ms;          /* a stopping generation's time before SIGKILL */
	int stop_signal;
	char **argv;                 /* the command, NULL-terminated */
	int verbose;
	bool no_preload;             /* do not inject libbaton-preload.so */
	bool stop_when_idle;         /* fence the old generation, signal it once it holds no connection */
	bool no_watch;               /* no health watch of the active generation */
	long long hang_ms;           /* its queue hung this long: replaced (default 1 s; stretched by its own pace) */
	bool allow_foreign;          /* join a group that holds sockets baton did not create */
	char **self_argv;            /* baton's own command line: `baton upgrade` re-executes it */
	enum sup_bind_mode bind_mode; /* auto: cgroup for static or Go executables, else shim */
	pid_t *takeover;             /* --takeover PIDs (ntakeover of them): generation 0 */
	int ntakeover;
	int takeover_signal;         /* how generation 0 is told to stop; 0: stop_signal */
	bool takeover_reuseport;     /* a taken socket without SO_REUSEPORT gets it and is steered, not shared */
	int max_draining;            /* refuse a reload while this many drain (0: the generation table decides) */
	const char *metrics_listen;  /* --metrics-listen ADDR: GET /metrics over HTTP; NULL: off */
};

/* Fills defaults: ready auto (READY=1, or 2 s of silence), ready timeout
 * 30 s, grace 30 s, SIGTERM. */
void sup_config_init(struct sup_config *cfg);

/* Runs generation 1 and supervises until stopped. Returns the exit code for
 * `baton run`: 0 after a clean stop, 1 if it could not start. */
int sup_run(const struct sup_config *cfg);

/* Where the state of supervisor NAME is kept (NAME.state in the runtime
 * directory), for `baton run` resuming after a supervisor that died. */
int sup_state_path(const char *name, char *buf, size_t len);

/* Where the control socket of supervisor NAME lives:
 * $BATON_RUNTIME_DIR, else /run/baton for root, else $XDG_RUNTIME_DIR/baton.
 * Returns 0 or -errno (-ENOENT: no runtime directory can be found). */
int sup_runtime_dir(char *buf, size_t len);
int sup_socket_path(const char *name, const char *suffix, char *buf, size_t len);

/* NULL if TEXT can be a reload's argument or environment entry, else what
 * it holds that cannot be ("the control character 0x01 at byte 3"): a
 * control character other than tab and newline. */
const char *sup_item_check(const char *text);
/* TEXT percent-escaped (%XX for space, control characters and %), as the
 * control protocol and the state file carry it. */
void sup_escape(FILE *f, const char *text);
/* The decoded copy of TEXT (free it), or NULL with *WHY set: a raw space
 * or control character, a bad %XX, %00, or what sup_item_check refuses. */
char *sup_unescape(const char *text, const char **why);

/* --metrics-listen's ADDR (HOST:PORT, [V6]:PORT, :PORT) as a socket
 * address; -EINVAL with ERR saying what it wants. */
struct sockaddr_storage;
int sup_metrics_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen);

/* Parses "250ms", "2s", "1.5s", "1m" or bare seconds. -EINVAL if bad. */
int sup_parse_duration(const char *text, long long *ms);
/* Parses "TERM", "SIGTERM" or a number. -EINVAL if bad. */
int sup_parse_signal(const char *text, int *sig);

/* Another supervisor as its NAME.state says (supervisor/peers.c). */
#define SUP_PEER_GENS 16
#define SUP_PEER_MEMBERS 64
struct sup_peer {
	char name[BATON_NAME_MAX + 2];
	pid_t pid;                   /* the supervisor that wrote it ... */
	bool running;                /* ... still runs as a baton */
	int ngens;                   /* its generations whose process still runs */
	struct { int id; pid_t pid; char state[16]; } gen[SUP_PEER_GENS];
	int nmembers;
	int member_gen[SUP_PEER_MEMBERS];
	unsigned long long member_ino[SUP_PEER_MEMBERS];
	char listeners[512];         /* its listener specs, ", "-separated */
};
/* Reads the state file PATH. 0, or -errno (-EINVAL: not a state file). */
int sup_peer_read(const char *path, struct sup_peer *p);
/* The supervisor, other than SELF, in the runtime directory whose member
 * socket has inode INO, or whose pid or a live generation's pid is one of
 * PIDS. 0 (found, in *P) or -ENOENT. */
int sup_peer_find(unsigned long long ino, const pid_t *pids, int npids, const char *self, struct sup_peer *p);

#endif
