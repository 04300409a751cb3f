/* SPDX-License-Identifier: BSD-2-Clause */
/* Small helpers that the library, the supervisor and the CLI all need: the
 * monotonic clock, /proc/PID/stat and /proc/PID/fd, JSON strings. Hidden in
 * libbaton.so (not part of the API); the baton binary links libbaton.a. */
#ifndef BATON_UTIL_H
#define BATON_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#define BATON_HIDDEN __attribute__((visibility("hidden")))

BATON_HIDDEN long long baton_mono_us(void);
BATON_HIDDEN long long baton_mono_ms(void);
BATON_HIDDEN long long baton_wall_ms(void);

/* What /proc/PID/stat says of a process. */
struct baton_proc_stat {
	char state;                  /* R, S, D, T, t, Z, X... */
	pid_t ppid;
	unsigned long long start;    /* start time in clock ticks since boot: with
				      * the pid, it names one process for good */
};

/* Parses the text of /proc/PID/stat (the command name may hold spaces and
 * parentheses). Returns 0 or -EINVAL. */
BATON_HIDDEN int baton_proc_stat_parse(const char *text, struct baton_proc_stat *st);
/* Reads /proc/PID/stat (PID 0: FD, an open stat file, read at offset 0).
 * Returns 0, or -ESRCH once the process is gone or reaped. */
BATON_HIDDEN int baton_proc_stat(pid_t pid, int fd, struct baton_proc_stat *st);

/* The pids of PID's children (its main thread's, from
 * /proc/PID/task/PID/children), at most MAX into OUT. Returns the count, or
 * -errno if the list cannot be read. */
BATON_HIDDEN int baton_proc_children(pid_t pid, pid_t *out, int max);

/* Calls FN(CTX, FD, INODE) for each socket in PID's fd table, at most BUDGET
 * entries read. FN returning non-zero stops the scan with that value.
 * Returns 0, FN's value, or -errno if the table cannot be read. */
typedef int (*baton_proc_socket_fn)(void *ctx, int fd, unsigned long long inode);
BATON_HIDDEN int baton_proc_sockets(pid_t pid, unsigned budget, baton_proc_socket_fn fn, void *ctx);
/* The fd number under which PID holds socket INODE (at most BUDGET entries
 * read), -ENOENT if it holds none, or -errno if its table cannot be read. */
BATON_HIDDEN int baton_proc_socket_fd(pid_t pid, unsigned budget, unsigned long long inode);

/* pidfd_open / pidfd_getfd: the fd or -errno (lib/adopt.c) */
BATON_HIDDEN int baton_pidfd_open(pid_t pid);
BATON_HIDDEN int baton_pidfd_getfd(int pidfd, int fd);

/* FNV-1a of STR: a short, stable tag for names built from paths. */
struct sockaddr_un;
/* A unix socket address from PATH: a file path, or "@name" for the abstract
 * namespace (as systemd writes NOTIFY_SOCKET). Returns 0 with *LEN set, or
 * -EINVAL for "" and a lone "@", -ENAMETOOLONG if it does not fit. */
BATON_HIDDEN int baton_unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len);

BATON_HIDDEN uint32_t baton_hash32(const char *str);

/* baton_group_add for a socket baton_listener_open just made for G: the
 * group takes FD itself (no copy) and skips the checks that a socket from
 * outside needs (lib/steer.c). FD is the group's from then on, closed on
 * failure. Returns the slot or -errno. */
struct baton_group;
BATON_HIDDEN int baton_group_add_made(struct baton_group *g, int fd, uint32_t weight);

/* Writes STR as a JSON string, quotes included. */
BATON_HIDDEN void baton_json_str(FILE *f, const char *str);

/* Text another user controls (a process name, a command line, a server's
 * message) made safe to print on a terminal: control characters (ESC and
 * newline included), DEL, the C1 controls, bidi overrides and bytes that
 * are not UTF-8 become \xHH and a backslash \\; valid UTF-8 is kept.
 * BATON_ESC_LINES: newline, tab and backslash pass (several lines that
 * their writer escaped already, relayed). baton_text_escape writes at most
 * LEN - 1 bytes and a NUL into OUT, never half an escape, and returns OUT;
 * 4 * strlen(STR) + 1 bytes always suffice. baton_text_fputs writes it all. */
#define BATON_ESC_LINES 1u
BATON_HIDDEN char *baton_text_escape(char *out, size_t len, const char *str, unsigned flags);
BATON_HIDDEN void baton_text_fputs(FILE *f, const char *str, unsigned flags);

#endif
