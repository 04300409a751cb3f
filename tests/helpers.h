/* SPDX-License-Identifier: BSD-2-Clause */
/* Helpers for tests that run real sockets: a private network namespace,
 * listeners on one loopback port, and "which listener took it". */
#ifndef BATON_TEST_HELPERS_H
#define BATON_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "baton.h"

/* Moves this test into a fresh network namespace with lo up (ports and
 * sysctls are then the test's own; it disappears with the test). Returns
 * false, staying in the current one, without the privilege. */
bool bt_netns(void);
/* Enters a private netns or skips the test, naming why. */
void bt_need_netns(void);
/* Gives this test (and its children) a private mount namespace with a
 * fresh bpffs at /sys/fs/bpf, so pins never outlive or leak from it; skips
 * without the privilege. */
void bt_need_private_bpffs(void);
/* Skips the test unless the eBPF steering program loads here. */
void bt_need_ebpf(void);
/* What a test of `baton run` needs: the baton binary, root, a private
 * network namespace and a private bpffs; skips naming what is missing. */
void bt_need_run_sandbox(void);

/* A log callback that prints library messages under the test's output. */
void bt_lib_log(void *ctx, enum baton_log_level level, const char *msg);
/* Collects library messages into the char[1024] given as ctx. */
void bt_lib_collect(void *ctx, enum baton_log_level level, const char *msg);

/* N TCP (or UDP) sockets with SO_REUSEPORT on one 127.0.0.1 port (picked by
 * the kernel), in the order they joined the kernel's group; returns the port. */
uint16_t bt_listeners(int *fds, int n, bool udp);

int bt_connect(uint16_t port);           /* blocking TCP connect to 127.0.0.1 */
/* Waits for a connection on one of FDS and accepts it; returns the index,
 * or -1 after TIMEOUT_MS. The accepted socket goes to *conn if given, else
 * it is closed. */
int bt_accept_which(const int *fds, int n, int timeout_ms, int *conn);
void bt_close_rst(int fd);               /* close without TIME_WAIT */
/* One connection: connect, see which of FDS accepts it, close both. */
int bt_which_takes(uint16_t port, const int *fds, int n);
int bt_count_fds(void);



/* Runs ARGV (argv[0] a path), capturing stdout and stderr (each cut to its
 * buffer). Returns the exit status, or -1 if it did not exit normally
 * within TIMEOUT_S. */
int bt_run(char *const argv[], char *out, size_t outlen, char *err, size_t errlen, int timeout_s);
/* bt_run, with CHILD(CTX) called in the child just before exec (to place
 * descriptors or set the environment). */
int bt_run_with(char *const argv[], void (*child)(void *ctx), void *ctx, char *out, size_t outlen, char *err,
		size_t errlen, int timeout_s);
/* The baton binary under test (BATON_BIN), or skip. */
const char *bt_baton_bin(void);
/* Points BATON_BIN at a copy in a 0755 directory of its own, for tests that
 * run baton as user nobody (a checkout may sit where nobody cannot enter);
 * bt_unshare_baton_bin removes it and points BATON_BIN back. */
void bt_share_baton_bin(void);
void bt_unshare_baton_bin(void);
/* Integer value of "KEY": N inside the JSON object that follows "OBJ": in
 * TEXT (enough for baton's flat outputs); fails the test if absent. */
long long bt_json_int(const char *text, const char *obj, const char *key);
/* Integer value of the first "KEY": N (with or without a space) in TEXT;
 * fails the test if absent. */
long long bt_json_get(const char *text, const char *key);
/* Shows the first 4 KiB of file PATH under the test's output (a log). */
void bt_quote_file(const char *path);
/* Starts ARGV (argv[0] a path) in the background with stdout and stderr
 * to the file LOG (appended to, or truncated first); the pid, or the test
 * fails if LOG cannot be opened or fork fails. */
pid_t bt_spawn_logged(char *const argv[], const char *log, bool append);
/* Starts ARGV (`baton run --name NAME ...`, argv[0] the baton binary) in
 * the background with stdout and stderr to the file LOG, CHILD(CTX) first in
 * the child (NULL: nothing); waits up to TIMEOUT_S for `baton status NAME
 * --json` to show an active generation, copying that document to STATUS.
 * Returns the pid; quotes LOG and fails the test if it exits or never serves. */
pid_t bt_supervisor_start(char *const argv[], const char *name, const char *log, void (*child)(void *ctx),
			  void *ctx, int timeout_s, char *status, size_t len);
/* SIGTERM to the supervisor *PID: it must exit 0 within TIMEOUT_S. */
void bt_supervisor_stop(pid_t *pid, int timeout_s);

/* The counting load client (BATON_LOADGEN) against 127.0.0.1:PORT in the
 * background: MODE conn or keepalive, for SECONDS; bt_load_finish waits for
 * it and returns its JSON report (counts of every outcome). */
struct bt_load {
	pid_t pid;
	int fd;
};
struct bt_load bt_load_start(uint16_t port, const char *mode, const char *seconds, int concurrency);
const char *bt_load_finish(struct bt_load *l, int timeout_s);
/* Stops it (SIGTERM: it reports what it counted) and returns the report. */
const char *bt_load_stop(struct bt_load *l, int timeout_s);
/* The load client's REPORT, logged: more than 100 answers, not one failed. */
void bt_assert_load_ok(const char *report);

/* ---- the fixture: what most integration tests start from ---------------- */

/* The program named by environment variable VAR (set by make check), or
 * skip naming WHAT. */
const char *bt_need_env(const char *var, const char *what);
/* The installed server NAME (Debian package PACKAGE) found in the usual
 * bin directories, or skip (fail under BATON_REQUIRE_SERVERS=1). */
const char *bt_need_server(const char *name, const char *package);
/* A fresh directory /tmp/baton-TAG-XXXXXX (0700) into DIR, or fail. */
void bt_tmpdir(char *dir, size_t len, const char *tag);
/* bt_tmpdir, also the runtime directory (BATON_RUNTIME_DIR). */
void bt_runtime_tmpdir(char *dir, size_t len, const char *tag);
/* bt_runtime_tmpdir, and DIR/log (the supervisor's output) into LOG. */
void bt_runtime_tmpdir_log(char *dir, size_t len, const char *tag, char *log, size_t loglen);
/* bt_tmpdir made 0755 (server workers may run as another user), with
 * BATON_RUNTIME_DIR pointed at DIR/run (baton's own, made 0700 by it). */
void bt_sv_tmpdir(char *dir, size_t len, const char *tag);
/* Writes TEXT to DIR/NAME (DIR NULL: NAME is the path), or fails. */
void bt_write_file(const char *dir, const char *name, const char *text);
/* `baton ARG...` (the arguments up to the first NULL) with its stdout and
 * stderr captured into OUT and ERR; the exit status, or -1 if it did not
 * exit within TIMEOUT_S. */
int bt_baton_into(char *out, size_t outlen, char *err, size_t errlen, int timeout_s, ...);
/* bt_baton_into the calling file's `out` and `err` arrays, within 60 s
 * (bt_baton_within: TIMEOUT_S). */
#define bt_baton(...) bt_baton_into(out, sizeof(out), err, sizeof(err), 60, __VA_ARGS__, (const char *)NULL)
#define bt_baton_within(timeout_s, ...) \
	bt_baton_into(out, sizeof(out), err, sizeof(err), timeout_s, __VA_ARGS__, (const char *)NULL)

/* ---- the supervisor under test (tests/sv.c) ---------------------------------- */

/* One supervisor under test, `baton run --name web ...`, in a fresh
 * directory of its own. The command line is kept, so that the very same
 * one can be started again after the supervisor was killed (it resumes). */
struct bt_sv {
	pid_t pid;
	uint16_t port;		/* the first listener's, from the status */
	int runs;		/* starts so far */
	int timeout_s;		/* how long a start may take to serve; 0: 10 s */
	char dir[64], log[96];	/* the directory; the supervisor's output (bt_sv_restart) */
	char mode[96];		/* DIR/mode: a command's `$(cat MODE)` reads it per generation */
	char listen[128];	/* the --listen it was started with */
	char cmd[600];		/* the shell command (bt_sv_start); set it after bt_sv_init */
	char *argv[48];
	void (*child)(void *ctx);
};
/* A fresh /tmp/baton-test-XXXXXX as BATON_RUNTIME_DIR, DIR/log for the
 * output, with an empty mode file. */
void bt_sv_init(struct bt_sv *s);
/* For real servers whose workers may run as another user: a fresh
 * directory from bt_sv_tmpdir(TAG), DIR/baton.log for the output. */
void bt_sv_init_server(struct bt_sv *s, const char *tag);
/* `baton run --name web --listen LISTEN --grace GRACE OPTS... -- /bin/sh -c
 * CMD` with the options OPTS (NULL-terminated, or NULL) and CHILD (see
 * bt_supervisor_start; or NULL), through bt_sv_restart. */
void bt_sv_start(struct bt_sv *s, const char *listen, const char *grace, const char *const *opts,
		 void (*child)(void *ctx), char *status, size_t len);
/* The reference server (BATON_REFSERVER) as bt_sv_start's command on a
 * fresh S (bt_sv_init): `exec REFSERVER -q --tag gen $(cat MODE)`, so that
 * one generation can misbehave. Skips without it, a network namespace or
 * eBPF, and, OWN_BPFFS, a private bpffs for the supervisor's pins. */
void bt_sv_refserver(struct bt_sv *s, bool own_bpffs, const char *listen, const char *grace,
		     const char *const *opts, char *status, size_t len);
/* `baton run --name web --listen LISTEN --hang-threshold 2s ARGV...` (ARGV:
 * more options, "--", the command, NULL; kept, as LISTEN is) with CHILD,
 * through bt_sv_restart. The health watch is not under test: a stall of a
 * loaded server must not start a reload of its own. */
void bt_sv_run_web(struct bt_sv *s, const char *listen, char *const argv[], void (*child)(void *ctx), char *status,
		   size_t len);
/* The same command line again (after a kill: it resumes), logging to
 * s->log: waits up to s->timeout_s until it serves (bt_supervisor_start),
 * copying the status document to STATUS, and sets s->port. */
void bt_sv_restart(struct bt_sv *s, char *status, size_t len);
/* kill -9 of the supervisor, reaped; s->pid is 0 after. */
void bt_sv_kill(struct bt_sv *s);
/* Writes ARGS (and a newline) to the mode file. */
void bt_sv_set_mode(struct bt_sv *s, const char *args);
/* Shows the file DIR/NAME (a log) under the test's output. */
void bt_sv_quote(const struct bt_sv *s, const char *name);

/* An nginx for the tests: 2 workers under a master in the foreground, its
 * pid, error log (DIR/error.log) and temp paths in DIR, one server that
 * answers "ok" on 127.0.0.1:PORT. */
struct bt_nginx_opts {
	uint16_t port;
	const char *listen;	/* after the address, e.g. " reuseport"; NULL: none */
	const char *http;	/* more lines of the http block; NULL: none */
};
/* Writes DIR/nginx.conf and puts its path in CONFPATH. */
void bt_nginx_conf(const char *dir, const struct bt_nginx_opts *o, char *confpath, size_t len);

/* RELOADS `baton reload web` under the counting load client (connection per
 * request, 16 at once, on PORT), 100 ms apart: each must succeed and say
 * every string of SAYS; then `baton status web` must count them all done
 * and none failed, STOP(CTX) stops the supervisor, and the client must have
 * counted more than 500 answers and not one failure. CHECK(CTX), if given,
 * runs before the first and after the last reload. DIR/baton.log and
 * DIR/LOGNAME (if given) are quoted when it fails. */
struct bt_reload_load {
	uint16_t port;
	int reloads;
	int warmup_ms;			/* more than bt_load_start's own, before the first */
	const char *dir, *logname;
	const char *says[4];		/* NULL-terminated */
	void (*check)(void *ctx);
	void (*stop)(void *ctx);
	void *ctx;
};
void bt_reload_under_load(const struct bt_reload_load *r);
/* RELOADS `baton reload NAME`, 100 ms apart, under the running load L:
 * each must succeed and say every string of SAYS (NULL-terminated). On a
 * failed one the files LOGS (NULL-terminated, or NULL) are quoted, L is
 * stopped and the test fails. */
void bt_reloads(const char *name, int reloads, const char *const *says, struct bt_load *l,
		const char *const *logs);

/* Prometheus's own checker on TEXT (written to DIR/metrics.txt); skips
 * without it. */
void bt_promtool(const char *dir, const char *text);
/* The pid of the active generation in the status document STATUS. */
long long bt_active_pid(const char *status);

/* One TCP connection from SRC (a sockaddr_in or sockaddr_in6; bound only
 * if its port is not 0) to DST, of the same family: which of the N FDS
 * accepts it within 2 s (-1: none); both ends are closed with RST. */
int bt_which_takes_from(const void *src, const void *dst, const int *fds, int n);

/* ---- small pieces many tests share ------------------------------------------ */

/* Appends the strings up to the first NULL to ARGV from index N, keeps it
 * NULL-terminated and returns the new count; fails the test past CAP. */
int bt_argv_add(char **argv, int n, int cap, ...);
/* Counter NAME of protocol PROTO ("Tcp", "TcpExt", "Udp"...) in this
 * network namespace, from /proc/net/snmp or /proc/net/netstat (a line of
 * names, then a line of values); -1 if neither has it. */
long long bt_net_counter(const char *proto, const char *name);
/* `baton run --name web` with N listeners tcp://127.0.0.1:PORT0+i, the
 * first with FIRST appended ("" for none; the texts in LISTEN), then OPT
 * (NULL for none), `--ready delay:50ms --grace 1s -- /bin/sleep 600`:
 * a supervisor of many listeners whose generation only waits. Into ARGV,
 * of CAP entries; returns the count. */
int bt_many_listeners_argv(char **argv, int cap, char (*listen)[64], int n, int port0, const char *first,
			   const char *opt);
/* bt_argv_add on an array ARGV whose count is the variable N. */
#define bt_args(argv, n, ...) \
	((n) = bt_argv_add((argv), (n), (int)(sizeof(argv) / sizeof((argv)[0])), __VA_ARGS__, (const char *)NULL))
/* Where the value of the first "KEY": in TEXT starts (spaces skipped);
 * fails the test if absent. */
const char *bt_json_at(const char *text, const char *key);
/* Generation ID's object {"id":ID,... in a status document; fails if absent. */
const char *bt_gen_json(const char *status, int id);
/* Reads file PATH into BUF (cut to LEN - 1 bytes, NUL-terminated); the
 * length, or fails the test if it cannot be opened. */
size_t bt_read_file(const char *path, char *buf, size_t len);
/* `baton status NAME --json`, which must exit 0: the document, in a
 * buffer of its own (until the next call). */
const char *bt_status_json(const char *name);
/* The object "OBJ":{...} in it; fails the test if absent. */
const char *bt_status_object(const char *name, const char *obj);
/* The pid of its active generation. */
pid_t bt_status_active_pid(const char *name);
/* Polls `baton status NAME --json` into the calling file's `out`, TRIES
 * times US microseconds apart, until the expression COND (of `out`) holds. */
#define bt_status_wait(name, cond, tries, us)                                    \
	do {                                                                     \
		for (int wait_i_ = 0; wait_i_ < (tries); wait_i_++) {            \
			ASSERT_EQ(bt_baton("status", (name), "--json"), 0);      \
			if (cond)                                                \
				break;                                           \
			usleep(us);                                              \
		}                                                                \
	} while (0)
/* `baton status NAME --json` into the calling file's `out`: it counts
 * DONE reloads done and FAILED failed. */
#define bt_assert_reloads(name, done, failed)                                    \
	do {                                                                     \
		ASSERT_EQ(bt_baton("status", (name), "--json"), 0);              \
		ASSERT_EQ(bt_json_get(out, "reloads_done"), (done));             \
		ASSERT_EQ(bt_json_get(out, "reloads_failed"), (failed));         \
	} while (0)
/* One `baton ARGS...` of a table: how it must exit and what it must say
 * (on stderr, or on stdout when STATUS is 0). */
struct bt_cli_case {
	const char *args[8];	/* NULL-terminated */
	int status;
	const char *says;
};
/* Runs each of the N cases, failing with the case's words on the first
 * that exits otherwise or does not say it. */
void bt_cli_cases(const struct bt_cli_case *cases, size_t n);
#define BT_CLI_CASES(cases) bt_cli_cases((cases), sizeof(cases) / sizeof((cases)[0]))
/* baton_group_new(O), or fails the test naming why. */
struct baton_group *bt_group_new(const struct baton_group_opts *o);
/* N connections to 127.0.0.1:PORT into FDS, REQ written on each. */
void bt_connect_send(uint16_t port, int *fds, int n, const char *req);
/* SO_COOKIE of socket FD, or fails the test. */
uint64_t bt_cookie(int fd);
/* Sends LEN bytes of REQ on a new connection to the unix socket PATH and
 * reads the reply (until the peer closes) into REPLY. */
void bt_unix_request(const char *path, const void *req, size_t len, char *reply, size_t rlen);
/* fork() with a pipe P (O_CLOEXEC) made first; fails the test on error. */
pid_t bt_fork_pipe(int p[2]);

#endif
