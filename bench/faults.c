/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/faults: a fault matrix, measured. Under load from loadgen, each case
 * kills or freezes the supervisor, the old or the new generation of `baton
 * run` + refserver at one moment of a reload (or runs `baton upgrade`), drives
 * the recovery a user would, and prints one table: requests answered, failed
 * by kind, connections the killed process held, recovered, and in how long.
 * Every case runs in a network namespace and a runtime directory of its own. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "baton.h"
#include "benchlib.h"
#include "numarg.h"
#include "util.h"

#define NAME "faults"
#define SPEC "tcp://127.0.0.1:8080?backlog=4096"
#define READY_DELAY_MS 800      /* the readiness window of a new generation */
#define READY_WAIT_AT_MS 300    /* fault this far into that window */
#define DRAIN_DELAY_MS 400      /* drain cases: each answer takes this long, so
				 * the old generation drains for about as long */
#define DRAIN_AT_MS 150         /* fault this far into the drain */
#define SWITCHED_DELAY_MS 150   /* switched cases: enough that the old generation
				 * still has answers to give right after the
				 * switch (idle, it exits within a millisecond) */
#define SUP_CONT_MS 1000        /* a frozen supervisor is continued after this */
#define GEN_CONT_MS 2000        /* a frozen generation, if it still exists */
#define RECOVER_MAX_MS 8000     /* give up waiting for a recovery after this */
#define TAIL_MS 300             /* load after the recovery */
#define CASE_MAX_MS 40000       /* a case that takes longer is killed */
#define OUT_MAX 8192
#define BACKOFF_WAIT_MS 12000   /* a failed state write is retried within 10 s */

enum target { T_SUP, T_OLD, T_NEW, T_UPGRADE, T_SECOND, T_FULLDISK };
enum phase { P_IDLE, P_STARTING, P_READY_WAIT, P_SWITCHED, P_DRAINING, P_N };
static const char *const target_name[] = { "supervisor", "old", "new", "upgrade", "second-start",
					   "full-disk" };
static const char *const phase_name[P_N] = { "idle", "starting", "ready-wait", "switched", "draining" };

struct kase {
	enum target target;
	int sig;	/* SIGKILL or SIGSTOP; 0 for upgrade */
	enum phase phase;
	char name[48];
	int variant;	/* V_*: a case beyond the target x phase matrix */
	bool cbpf;	/* baton forced into classic BPF (BATON_STEERING=cbpf) */
	bool udp;	/* udpflow on a UDP listener, under the bench's UDP flow client */
};

/* Cases beyond the matrix (appended to the table): a checked canary whose
 * check starts failing as the supervisor is killed must be rolled back,
 * never promoted, by the resumed one; a supervisor frozen for longer than
 * --ready-timeout while the new generation's READY=1 waits must not roll
 * that generation back. */
enum { V_NONE, V_CANARY_CHECK, V_STALL };
#define SUP_STALL_MS 2500	/* past the 1500 ms --ready-timeout of sup_argv */

/* What a case reports to the parent (fixed size: it crosses a pipe). */
struct result {
	bool ran;
	long long answered, refused, reset, timeout, truncated, other, failed;
	int held;                /* established connections of the target, -1 unknown */
	bool recovered;
	long long recover_ms;    /* -1: never */
	bool goal;
	int leftover;            /* processes still there after `baton stop` */
	char note[240];
	char during[160];        /* what the reload (or upgrade) in flight said */
	bool wrong;              /* a variant's own outcome was wrong (said in note) */
	long long victim_gen;    /* UDP rows: the generation faulted, 0 none */
	long long failed_victim; /* UDP rows: failures of flows that generation answered */
};

struct opts {
	double load_s;
	int conc, timeout_ms;
	const char *cases;
	bool json, keep, list;
};

static volatile sig_atomic_t interrupted;
static struct opts O = { .load_s = 2.0, .conc = 16, .timeout_ms = 3000 };
static char self[PATH_MAX], baton[PATH_MAX], refserver[PATH_MAX], loadgen[PATH_MAX], udpflow[PATH_MAX];

/* ---- small things ---------------------------------------------------------- */

static long long now_ms(void)
{
	return baton_mono_ms();
}

/* FAULTS_DEBUG=1: each step of each case, with its time, on stderr */
static bool debug;
static long long debug_t0;
static void dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void dbg(const char *fmt, ...)
{
	va_list ap;

	if (!debug)
		return;
	fprintf(stderr, "  [%6lld ms] ", now_ms() - debug_t0);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void sleep_ms(long long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	if (ms > 0)
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
}

static void add_note(struct result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_note(struct result *r, const char *fmt, ...)
{
	size_t l = strlen(r->note);
	va_list ap;

	if (l && l < sizeof(r->note) - 2) {
		memcpy(r->note + l, "; ", 3);
		l += 2;
	}
	va_start(ap, fmt);
	vsnprintf(r->note + l, sizeof(r->note) - l, fmt, ap);
	va_end(ap);
}

/* Adds the line that starts at A (of a log) to R's note. */
static void add_line_note(struct result *r, const char *a)
{
	const char *nl = strchr(a, '\n');

	add_note(r, "%.*s", (int)((nl ? nl : a + strlen(a)) - a), a);
}

/* The last non-empty line of TEXT, without a trailing newline. */
static void last_line(const char *text, char *buf, size_t len)
{
	const char *e = text + strlen(text), *b;

	while (e > text && (e[-1] == '\n' || e[-1] == ' '))
		e--;
	for (b = e; b > text && b[-1] != '\n'; b--)
		;
	snprintf(buf, len, "%.*s", (int)(e - b), b);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		r = -EIO;
	close(fd);
	return r;
}

static size_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

/* Notes the line of the log at PATH that says WHAT (any case), or MISSING
 * if none does; true if it was there. */
static bool note_log_line(struct result *r, const char *path, const char *what, const char *missing)
{
	char log[OUT_MAX];
	const char *a;

	read_file(path, log, sizeof(log));
	a = strcasestr(log, what);
	if (a)
		add_line_note(r, a);
	else
		add_note(r, "%s", missing);
	return a != NULL;
}

/* ---- a little JSON: enough to read status and loadgen documents ------------ */

static const char *ws(const char *p)
{
	while (p && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

static const char *skip_val(const char *p)
{
	int depth = 0;

	p = ws(p);
	if (!p || !*p)
		return NULL;
	if (*p != '{' && *p != '[' && *p != '"') {
		while (*p && *p != ',' && *p != '}' && *p != ']')
			p++;
		return p;
	}
	do {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (!*p)
				return NULL;
			p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			depth--;
			p++;
		} else {
			p++;
		}
	} while (*p && depth > 0);
	return depth ? NULL : p;
}

/* In the object at P, the value of KEY at its own level, or NULL. */
static const char *obj_get(const char *p, const char *key)
{
	size_t kl = strlen(key);

	p = ws(p);
	if (!p || *p != '{')
		return NULL;
	p = ws(p + 1);
	while (p && *p == '"') {
		const char *k = p + 1, *v;

		p = skip_val(p);
		if (!p)
			return NULL;
		p = ws(p);
		if (*p != ':')
			return NULL;
		v = ws(p + 1);
		if ((size_t)(p - k) >= kl + 1 && !strncmp(k, key, kl) && k[kl] == '"' && ws(k + kl + 1) == p)
			return v;
		p = skip_val(v);
		p = ws(p);
		if (!p || *p != ',')
			return NULL;
		p = ws(p + 1);
	}
	return NULL;
}

static bool get_num(const char *obj, const char *key, long long *out)
{
	const char *v = obj_get(obj, key);
	char *end;

	if (!v)
		return false;
	*out = strtoll(v, &end, 10);
	return end != v;
}

static bool get_str(const char *obj, const char *key, char *buf, size_t len)
{
	const char *v = obj_get(obj, key);
	size_t i = 0;

	if (!v || *v != '"')
		return false;
	for (v++; *v && *v != '"' && i + 1 < len; v++) {
		if (*v == '\\' && v[1])
			v++;
		buf[i++] = *v;
	}
	buf[i] = '\0';
	return true;
}

static bool get_bool(const char *obj, const char *key, bool *out)
{
	const char *v = obj_get(obj, key);

	if (!v || (strncmp(v, "true", 4) && strncmp(v, "false", 5)))
		return false;
	*out = *v == 't';
	return true;
}

/* ---- children: started, tracked, reaped, ended by pid ---------------------- */

/* Orphans (generations whose supervisor died) come to us as the subreaper;
 * they are reaped at once, as init would, so that no zombie passes for a live
 * generation. The statuses of our own jobs are kept for them. */
#define MAX_REAPED 256
static struct { pid_t pid; int status; } reaped[MAX_REAPED];
static int nreaped;

static void reap_all(void)
{
	pid_t p;
	int st;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (nreaped == MAX_REAPED) {
			/* orphans nobody asks about: the oldest goes */
			memmove(reaped, reaped + 1, sizeof(reaped) - sizeof(reaped[0]));
			nreaped--;
		}
		reaped[nreaped].pid = p;
		reaped[nreaped++].status = st;
	}
}

/* Has PID ended? Its status is handed out once. */
static bool child_done(pid_t pid, int *status)
{
	reap_all();
	for (int i = 0; i < nreaped; i++)
		if (reaped[i].pid == pid) {
			if (status)
				*status = reaped[i].status;
			reaped[i] = reaped[--nreaped];
			return true;
		}
	return false;
}

static pid_t spawn(char *const argv[], int out_fd)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		dup2(out_fd >= 0 ? out_fd : null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* A command whose output we read as it comes. */
struct job {
	pid_t pid;
	int fd;
	bool done;
	int status;
	size_t len;
	char out[OUT_MAX];
};

static int job_start(struct job *j, char *const argv[])
{
	int p[2];

	memset(j, 0, sizeof(*j));
	j->fd = -1;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	j->pid = spawn(argv, p[1]);
	close(p[1]);
	if (j->pid < 0) {
		close(p[0]);
		return -errno;
	}
	j->fd = p[0];
	fcntl(j->fd, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Reads what is there; reaps it once it is over. Returns true when done. */
static bool job_poll(struct job *j, int wait_ms)
{
	if (j->pid <= 0)
		return true;
	if (j->fd >= 0) {
		struct pollfd pf = { .fd = j->fd, .events = POLLIN };

		if (poll(&pf, 1, wait_ms) > 0) {
			ssize_t n;

			while ((n = read(j->fd, j->out + j->len, sizeof(j->out) - 1 - j->len)) > 0)
				j->len += (size_t)n;
			j->out[j->len] = '\0';
			if (n == 0 || j->len == sizeof(j->out) - 1) {
				close(j->fd);
				j->fd = -1;
			}
		}
	} else if (wait_ms > 0) {
		sleep_ms(wait_ms < 5 ? wait_ms : 5);
	}
	if (!j->done && child_done(j->pid, &j->status)) {
		j->done = true;
		/* what a grandchild still holds open is not its output */
		if (j->fd >= 0) {
			ssize_t n;

			while ((n = read(j->fd, j->out + j->len, sizeof(j->out) - 1 - j->len)) > 0)
				j->len += (size_t)n;
			j->out[j->len] = '\0';
			close(j->fd);
			j->fd = -1;
		}
	}
	return j->done;
}

static void job_end(struct job *j)
{
	if (j->pid > 0 && !j->done) {
		kill(j->pid, SIGKILL);
		for (int i = 0; i < 200 && !job_poll(j, 5); i++)
			;
	}
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}

static int job_exit(const struct job *j)
{
	return !j->done ? -1 : WIFEXITED(j->status) ? WEXITSTATUS(j->status) : 128 + WTERMSIG(j->status);
}

/* Runs ARGV to its end or TIMEOUT_MS; returns its exit code (-1: timed out). */
static int run(char *const argv[], struct job *j, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	if (job_start(j, argv))
		return -1;
	while (!job_poll(j, 5))
		if (now_ms() > end) {
			job_end(j);
			return -1;
		}
	return job_exit(j);
}

/* Is PID still the process that started at START (not a reused pid)? */
static bool same_proc(pid_t pid, unsigned long long start)
{
	struct baton_proc_stat st;

	if (pid <= 0 || baton_proc_stat(pid, 0, &st) || st.start != start)
		return false;
	return st.state != 'Z' && st.state != 'X';
}

/* Ends every process we are the parent of (ours, or orphans given to us as
 * subreaper), by pid; returns how many there were. */
static int sweep_children(void)
{
	int found = 0;

	for (int round = 0; round < 100; round++) {
		DIR *d = opendir("/proc");
		struct dirent *e;
		int here = 0;

		while (d && (e = readdir(d))) {
			struct baton_proc_stat st;
			pid_t pid = atoi(e->d_name);

			if (pid <= 0 || baton_proc_stat(pid, 0, &st) || st.ppid != getpid())
				continue;
			here++;
			if (st.state != 'Z') {
				kill(pid, SIGCONT);
				kill(pid, SIGKILL);
			}
		}
		if (d)
			closedir(d);
		reap_all();
		if (!here)
			break;
		found += round == 0 ? here : 0;
		sleep_ms(10);
	}
	return found;
}

/* Processes other than us in our network namespace: what a case left behind. */
static int netns_others(char *names, size_t len)
{
	char mine[64] = "", path[64], link[64];
	int n = 0;
	DIR *d;
	struct dirent *e;
	ssize_t l;

	if ((l = readlink("/proc/self/ns/net", mine, sizeof(mine) - 1)) <= 0)
		return 0;
	mine[l] = '\0';
	names[0] = '\0';
	d = opendir("/proc");
	while (d && (e = readdir(d))) {
		pid_t pid = atoi(e->d_name);

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
		if ((l = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[l] = '\0';
		if (!strcmp(link, mine)) {
			char comm[32] = "?", cp[64];
			size_t k = strlen(names);

			snprintf(cp, sizeof(cp), "/proc/%d/comm", (int)pid);
			read_file(cp, comm, sizeof(comm));
			comm[strcspn(comm, "\n")] = '\0';
			snprintf(names + k, len - k, "%s%s[%d]", k ? " " : "", comm, (int)pid);
			n++;
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* ---- connections a process holds ------------------------------------------- */

static int held_count;

/* A connection a client still waits on: ESTABLISHED or CLOSE_WAIT, read
 * with TCP_INFO on a copy of the fd. A server that has answered and shut its
 * side (FIN_WAIT) holds nothing a client needs; listeners are not counted.
 * (Reading /proc/net/tcp instead would take most of a second under load:
 * it lists every TIME_WAIT socket.) */
static int count_conn(void *ctx, int fd, unsigned long long inode)
{
	pid_t pid = *(pid_t *)ctx;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int copy = baton_fd_adopt(pid, fd), acc = 0;
	socklen_t alen = sizeof(acc);

	(void)inode;
	if (copy < 0)
		return 0;
	if (!getsockopt(copy, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) && !acc &&
	    !getsockopt(copy, IPPROTO_TCP, TCP_INFO, &ti, &len) &&
	    (ti.tcpi_state == TCP_ESTABLISHED || ti.tcpi_state == TCP_CLOSE_WAIT))
		held_count++;
	close(copy);
	return 0;
}

static int held_by(pid_t pid)
{
	held_count = 0;
	if (baton_proc_sockets(pid, 65536, count_conn, &pid) < 0)
		return -1;
	return held_count;
}

/* ---- a slow client ------------------------------------------------------- */

/* In the switched and draining cases the bench holds one request of its own
 * on the old generation: sent but for its last line, so that the old
 * generation drains until it is completed (right after the fault), whatever
 * loadgen's requests do. Its outcome counts with loadgen's. */
enum outcome { O_NONE, O_ANSWERED, O_REFUSED, O_RESET, O_TIMEOUT, O_TRUNCATED, O_OTHER };

struct holder {
	int fd;
	long long sent_ms;	/* when the request was completed; 0: not yet */
	enum outcome out;
	size_t got;
	char buf[1024];
};

static int holder_open(struct holder *h)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080),
				 .sin_addr.s_addr = htonl(0x7f000001) };
	static const char part[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n";

	memset(h, 0, sizeof(*h));
	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fd < 0)
		return -errno;
	if (connect(h->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    send(h->fd, part, sizeof(part) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(part) - 1) {
		int e = errno;

		close(h->fd);
		h->fd = -1;
		return -e;
	}
	return 0;
}

static enum outcome errno_outcome(int e)
{
	return e == ECONNREFUSED ? O_REFUSED : e == ECONNRESET || e == EPIPE ? O_RESET : O_OTHER;
}

static void holder_complete(struct holder *h)
{
	if (h->fd < 0 || h->sent_ms)
		return;
	h->sent_ms = now_ms();
	if (send(h->fd, "\r\n", 2, MSG_NOSIGNAL) != 2)
		h->out = errno_outcome(errno);
}

/* Reads the answer, waiting at most until the client's timeout is over. */
static void holder_finish(struct holder *h)
{
	if (h->fd < 0)
		return;
	holder_complete(h);
	while (h->out == O_NONE) {
		struct pollfd pf = { .fd = h->fd, .events = POLLIN };
		long long left = h->sent_ms + O.timeout_ms - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
			if (now_ms() >= h->sent_ms + O.timeout_ms)
				h->out = O_TIMEOUT;
			continue;
		}
		n = recv(h->fd, h->buf + h->got, sizeof(h->buf) - 1 - h->got, 0);
		if (n < 0 && errno != EINTR)
			h->out = errno_outcome(errno);
		else if (n == 0 || h->got + (size_t)n == sizeof(h->buf) - 1) {
			/* the server ends the connection after its answer while it stops */
			h->buf[h->got] = '\0';
			h->out = !strncmp(h->buf, "HTTP/1.1 200 ", 13) && strstr(h->buf, "\r\n\r\nrefserver ")
				 ? O_ANSWERED : O_TRUNCATED;
		} else if (n > 0) {
			h->got += (size_t)n;
		}
	}
	close(h->fd);
	h->fd = -1;
}

/* ---- a UDP flow client ------------------------------------------------------ */

/* UDP rows: O.conc lanes, each a flow of datagrams "ID SEQ" from a socket of
 * its own (its own 4-tuple), one in flight at a time, the next UDP_GAP_MS
 * after the answer. A flow lasts from UDP_FLOW_MIN_MS to UDP_FLOW_MAX_MS
 * (drawn per flow), so that flows start all the time and at a fault both the
 * old and the new generation of a reload have flows. udpflow answers
 * "ok GEN ID SEQ", or "misrouted GEN ..." when its generation never saw the
 * flow start: the flow's state is lost, as it is when a datagram has no
 * answer within UDP_TIMEOUT_MS (a client would retransmit by then). Either
 * failure ends the flow and the lane starts a new one. Counts are written as loadgen's JSON (timeout:
 * unanswered, other_error: misrouted or bad), plus "failed_on": failures by
 * the generation that had answered the flow so far ("0": none had). */
#define UDP_FLOW_MIN_MS 300
#define UDP_FLOW_MAX_MS 1500
#define UDP_GAP_MS 2
#define UDP_TIMEOUT_MS 1000
#define UDP_MAX_GEN 64

static volatile sig_atomic_t udp_stop;

static void on_udp_stop(int sig)
{
	(void)sig;
	udp_stop = 1;
}

struct ulane {
	int fd;
	unsigned id, seq;
	int gen;	/* the generation that answered this flow, 0 none yet */
	bool waiting;
	long long sent_ms, due_ms, end_ms;
};

static void ulane_new(struct ulane *u, unsigned *next_id)
{
	static unsigned rnd = 12345;	/* the same draws in every run */

	if (u->fd >= 0)
		close(u->fd);
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	u->id = (*next_id)++;
	u->seq = 0;
	u->gen = 0;
	u->waiting = false;
	rnd = rnd * 1103515245u + 12345u;
	u->due_ms = now_ms() + UDP_GAP_MS;
	u->end_ms = u->due_ms + UDP_FLOW_MIN_MS + (rnd >> 8) % (UDP_FLOW_MAX_MS - UDP_FLOW_MIN_MS);
}

static void udp_client(int outfd)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(8080), .sin_addr.s_addr = htonl(0x7f000001) };
	long long answered = 0, unanswered = 0, misrouted = 0, bad = 0, failed_on[UDP_MAX_GEN] = { 0 }, stop_at = 0;
	struct ulane *u = calloc((size_t)O.conc, sizeof(*u));
	unsigned next_id = 1;
	struct pollfd *pf = calloc((size_t)O.conc, sizeof(*pf));
	char doc[1024];
	int n, i;

	signal(SIGTERM, on_udp_stop);
	if (!u || !pf)
		_exit(1);
	for (i = 0; i < O.conc; i++) {
		u[i].fd = -1;
		ulane_new(&u[i], &next_id);
	}
	for (;;) {
		long long now = now_ms();
		int busy = 0;

		if (udp_stop && !stop_at)
			stop_at = now;
		for (i = 0; i < O.conc; i++) {
			struct ulane *l = &u[i];

			if (l->waiting && now - l->sent_ms >= UDP_TIMEOUT_MS) {
				unanswered++;
				failed_on[l->gen < UDP_MAX_GEN ? l->gen : 0]++;
				ulane_new(l, &next_id);
			}
			if (!l->waiting && !stop_at && now >= l->due_ms && l->fd >= 0) {
				char d[32];
				int len = snprintf(d, sizeof(d), "%u %u", l->id, l->seq);

				if (sendto(l->fd, d, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)) == len) {
					l->waiting = true;
					l->sent_ms = now;
				} else {
					/* not sent: counted as what a client sees, no answer */
					unanswered++;
					failed_on[l->gen < UDP_MAX_GEN ? l->gen : 0]++;
					ulane_new(l, &next_id);
				}
			}
			busy += l->waiting;
			pf[i] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
		}
		if (stop_at && !busy)
			break;
		if (poll(pf, (nfds_t)O.conc, 1) <= 0)
			continue;
		now = now_ms();
		for (i = 0; i < O.conc; i++) {
			struct ulane *l = &u[i];
			char a[128];
			ssize_t got;
			unsigned id, seq;
			int gen;

			if (!(pf[i].revents & POLLIN))
				continue;
			while ((got = recv(l->fd, a, sizeof(a) - 1, 0)) > 0) {
				a[got] = '\0';
				if (!l->waiting)
					continue;	/* a late answer to a datagram already counted */
				if (sscanf(a, "ok %d %u %u", &gen, &id, &seq) == 3 && id == l->id && seq == l->seq &&
				    (!l->gen || gen == l->gen)) {
					answered++;
					l->gen = gen;
					l->waiting = false;
					l->due_ms = now + UDP_GAP_MS;
					l->seq++;
					if (now >= l->end_ms)
						ulane_new(l, &next_id);
					break;
				}
				if (!strncmp(a, "misrouted ", 10))
					misrouted++;
				else
					bad++;
				failed_on[l->gen < UDP_MAX_GEN ? l->gen : 0]++;
				ulane_new(l, &next_id);
				break;
			}
		}
	}
	n = snprintf(doc, sizeof(doc), "{\"answered\": %lld, \"refused\": 0, \"reset\": 0, \"timeout\": %lld, "
		     "\"truncated\": 0, \"other_error\": %lld, \"failed\": %lld, \"misrouted\": %lld, \"failed_on\": {",
		     answered, unanswered, misrouted + bad, unanswered + misrouted + bad, misrouted);
	for (i = 0; i < UDP_MAX_GEN && n < (int)sizeof(doc) - 32; i++)
		if (failed_on[i])
			n += snprintf(doc + n, sizeof(doc) - (size_t)n, "%s\"%d\": %lld", doc[n - 1] == '{' ? "" : ", ", i,
				      failed_on[i]);
	n += snprintf(doc + n, sizeof(doc) - (size_t)n, "}}\n");
	if (write(outfd, doc, (size_t)n) != n)
		_exit(1);
	_exit(0);
}

/* ---- the supervisor's status ----------------------------------------------- */

struct gen_view {
	long long id, pid;
	char state[24];
};

struct status_view {
	bool ok, reloading;
	long long pid;
	int ngen, nactive;
	struct gen_view gen[32];
	struct gen_view *active;
	char health[128];	/* what "service" says when it is not "ok" */
};

static bool status_get(struct status_view *v, int timeout_ms)
{
	static struct job j;
	char tmo[32];
	const char *g;

	snprintf(tmo, sizeof(tmo), "%dms", timeout_ms);
	memset(v, 0, sizeof(*v));
	if (run((char *[]){ baton, "status", NAME, "--json", "--timeout", tmo, NULL }, &j, timeout_ms + 1000) != 0)
		return false;
	if (!get_num(j.out, "pid", &v->pid))
		return false;
	v->ok = true;
	get_bool(j.out, "reloading", &v->reloading);
	/* "service": "ok" or "degraded", with the reason in "degraded" */
	if (get_str(j.out, "service", v->health, sizeof(v->health)) && strcmp(v->health, "ok")) {
		size_t l = strlen(v->health);

		if (l + 3 < sizeof(v->health)) {
			memcpy(v->health + l, ": ", 3);
			get_str(j.out, "degraded", v->health + l + 2, sizeof(v->health) - l - 2);
		}
	}
	g = obj_get(j.out, "generations");
	if (!g || *g != '[')
		return true;
	for (g = ws(g + 1); g && *g == '{' && v->ngen < 32; ) {
		struct gen_view *x = &v->gen[v->ngen++];

		get_num(g, "id", &x->id);
		get_num(g, "pid", &x->pid);
		get_str(g, "state", x->state, sizeof(x->state));
		if (!strcmp(x->state, "active")) {
			v->nactive++;
			v->active = x;
		}
		g = ws(skip_val(g));
		if (!g || *g != ',')
			break;
		g = ws(g + 1);
	}
	return true;
}

/* Settled: exactly one active generation, and it runs (not frozen, not
 * dead, not the process we froze or killed); with IDLE, no reload under way
 * either. */
static bool settled(const struct status_view *v, pid_t victim, bool idle, const char **why);

/* Reads the status into V until END or until it is settled (idle, no
 * victim), noting in *T_ANSWER when it first answered (if not yet). */
static void wait_settled(struct status_view *v, long long end, long long *t_answer, const char **why)
{
	for (; now_ms() < end; sleep_ms(10)) {
		if (!status_get(v, 1000))
			continue;
		if (*t_answer < 0)
			*t_answer = now_ms();
		if (settled(v, 0, true, why))
			break;
	}
}

static bool settled(const struct status_view *v, pid_t victim, bool idle, const char **why)
{
	struct baton_proc_stat st;

	if (!v->ok)
		return *why = "status does not answer", false;
	if (idle && v->reloading)
		return *why = "a reload is still under way", false;
	if (v->nactive != 1)
		return *why = v->nactive ? "several active generations" : "no active generation", false;
	if (v->active->pid <= 0 || baton_proc_stat((pid_t)v->active->pid, 0, &st) || st.state == 'Z')
		return *why = "the active generation is gone", false;
	if (st.state == 'T' || st.state == 't')
		return *why = "the active generation is frozen", false;
	if (victim > 0 && v->active->pid == victim)
		return *why = "the faulted process is still the active generation", false;
	return true;
}

/* ---- one case ------------------------------------------------------------------ */

static int netns_enter(void)
{
	struct ifreq ifr = { 0 };
	int fd, e;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS))
		return -errno;
	/* pins baton makes stay in this case's own bpffs */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (!ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_UP;
		if (!ioctl(fd, SIOCSIFFLAGS, &ifr)) {
			close(fd);
			return 0;
		}
	}
	e = -errno;
	close(fd);
	return e;
}

struct ctx {
	const struct kase *k;
	struct result *r;
	char dir[64], delay_file[96], log[96], load_out[96];
	char *sup_argv[32];
	pid_t sup, load;
	struct holder holder;
	int logfd, loadfd;
	long long load_t0;
};

static pid_t sup_start(struct ctx *c)
{
	return spawn(c->sup_argv, c->logfd);
}

static void sup_argv(struct ctx *c)
{
	static char spec[] = SPEC;
	char **a = c->sup_argv;
	int n = 0;

	a[n++] = baton, a[n++] = "run", a[n++] = "--name", a[n++] = NAME, a[n++] = "--no-preload";
	if (c->k->udp) {
		/* flows idle 1 s go to the active generation; udpflow answers at
		 * once (no readiness delay: no starting or ready-wait rows) */
		static char uspec[] = "udp://127.0.0.1:8080?flow_idle=1s";

		a[n++] = "--listen", a[n++] = uspec, a[n++] = "--grace", a[n++] = "3s";
		a[n++] = "--ready-timeout", a[n++] = "1500ms", a[n++] = "--", a[n++] = udpflow;
		a[n] = NULL;
		return;
	}
	a[n++] = "--listen", a[n++] = spec, a[n++] = "--grace", a[n++] = "3s";
	a[n++] = "--ready-timeout", a[n++] = "1500ms";
	if (c->k->variant == V_STALL)
		a[n++] = "--ready", a[n++] = "notify";	/* READY=1 only: no assumption after 2 s */
	a[n++] = "--";
	/* ourselves as a wrapper: the readiness delay of each new generation
	 * is read from a file when it starts */
	a[n++] = self, a[n++] = "--wrap", a[n++] = c->delay_file, a[n++] = refserver;
	a[n++] = "-q", a[n++] = "--tag", a[n++] = NAME, a[n++] = "--grace-ms", a[n++] = "5000";
	if (c->k->phase == P_DRAINING || c->k->phase == P_SWITCHED) {
		static char d[16];

		snprintf(d, sizeof(d), "%d", c->k->phase == P_DRAINING ? DRAIN_DELAY_MS : SWITCHED_DELAY_MS);
		a[n++] = "--delay-ms", a[n++] = d;
	}
	a[n] = NULL;
}

static void set_ready_delay(struct ctx *c, int ms)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%d\n", ms);
	write_file(c->delay_file, buf);
}

/* Waits for settled status while keeping the SIGCONT appointment. */
struct appt {
	pid_t pid;
	unsigned long long start;
	long long at;	/* 0: none */
};

static void keep_appt(struct appt *a)
{
	if (a->at && now_ms() >= a->at) {
		if (same_proc(a->pid, a->start))
			kill(a->pid, SIGCONT);
		a->at = 0;
	}
}

/* Finds "(pid N)" after WHAT in TEXT. */
static pid_t pid_after(const char *text, const char *what)
{
	const char *p = strstr(text, what);

	p = p ? strstr(p, "(pid ") : NULL;
	return p ? atoi(p + 5) : 0;
}

static void case_body(struct ctx *c)
{
	const struct kase *k = c->k;
	struct result *r = c->r;
	struct status_view v;
	struct job reload = { .pid = 0, .fd = -1 }, rec = { .pid = 0, .fd = -1 };
	struct appt appt = { 0 };
	struct baton_proc_stat pst;
	pid_t old = 0, nw = 0, victim = 0;
	long long t_fault, t_answer = -1, t_settled = -1, end;
	char fail_file[128] = "";
	const char *why = "";
	int i, e;

	if (k->udp && access(udpflow, X_OK)) {
		add_note(r, "not run: no udpflow server at %s (make all builds it, or set BATON_UDPFLOW)", udpflow);
		return;
	}
	set_ready_delay(c, 0);
	if (k->target == T_FULLDISK) {
		char run_dir[96];

		snprintf(run_dir, sizeof(run_dir), "%s/run", c->dir);
		if (mount("tmpfs", run_dir, "tmpfs", 0, "size=256k,mode=0700")) {
			add_note(r, "cannot mount a small tmpfs on %s: %s", run_dir, strerror(errno));
			return;
		}
	}
	sup_argv(c);
	c->sup = sup_start(c);
	for (end = now_ms() + 5000; now_ms() < end; sleep_ms(20))
		if (status_get(&v, 500) && v.nactive == 1)
			break;
	if (!v.ok || v.nactive != 1) {
		add_note(r, "setup: the supervisor never had an active generation");
		return;
	}
	old = (pid_t)v.active->pid;
	dbg("gen 1 (pid %d) active under supervisor %d", (int)old, (int)c->sup);
	if (k->udp) {
		if (k->target == T_OLD)
			r->victim_gen = v.active->id;
		fflush(NULL);
		c->load = fork();
		if (c->load == 0)
			udp_client(c->loadfd);
		c->load_t0 = now_ms();
	} else {
		char conc[16], tmo[16];

		snprintf(conc, sizeof(conc), "%d", O.conc);
		snprintf(tmo, sizeof(tmo), "%d", O.timeout_ms);
		c->load = spawn((char *[]){ loadgen, "--port", "8080", "--mode", "conn", "--concurrency", conc,
					    "--duration", "120", "--timeout-ms", tmo, "--json", "--quiet", NULL },
				c->loadfd);
		c->load_t0 = now_ms();
	}
	sleep_ms(500);
	dbg("load running");

	/* ---- bring the case to its moment ---- */
	if (k->target == T_UPGRADE) {
		t_fault = now_ms();
		victim = c->sup;
		r->held = held_by(c->sup);
		if (job_start(&reload, (char *[]){ baton, "upgrade", NAME, NULL }))
			add_note(r, "cannot start baton upgrade");
		end = t_fault + RECOVER_MAX_MS;
		while (!job_poll(&reload, 5) && now_ms() < end)
			;
		last_line(reload.out, r->during, sizeof(r->during));
		if (!reload.done)
			add_note(r, "baton upgrade did not return within %d ms", RECOVER_MAX_MS);
		else if (job_exit(&reload))
			add_note(r, "baton upgrade exited %d", job_exit(&reload));
		end = now_ms() + RECOVER_MAX_MS;
		wait_settled(&v, end, &t_answer, &why);
		if (t_answer >= 0)
			r->recover_ms = t_answer - t_fault;
		if (v.ok && v.pid != c->sup)
			add_note(r, "supervisor pid changed from %d to %lld", (int)c->sup, v.pid);
		goto recovery_reload;
	}
	if (k->target == T_SECOND) {
		/* two more `baton run` of the same name at once, beside the
		 * running one: each must be refused, naming it, and harm
		 * nothing of it */
		pid_t two[2];
		int st2[2], done = 0;
		bool fin[2] = { false, false };
		char log[OUT_MAX];

		t_fault = now_ms();
		victim = 0;
		r->held = 0;
		for (i = 0; i < 2; i++)
			two[i] = spawn(c->sup_argv, c->logfd);
		for (end = t_fault + RECOVER_MAX_MS; done < 2 && now_ms() < end; sleep_ms(2))
			for (i = 0; i < 2; i++)
				if (!fin[i] && child_done(two[i], &st2[i]))
					fin[i] = true, done++;
		t_answer = now_ms();
		r->recover_ms = done == 2 ? t_answer - t_fault : -1;
		for (i = 0; i < 2; i++) {
			if (!fin[i]) {
				kill(two[i], SIGKILL);
				add_note(r, "a second start (pid %d) still runs", (int)two[i]);
			} else if (!WIFEXITED(st2[i]) || WEXITSTATUS(st2[i]) != 1) {
				add_note(r, "a second start exited with status 0x%x, not 1", st2[i]);
			}
		}
		read_file(c->log, log, sizeof(log));
		snprintf(r->during, sizeof(r->during), "%s", strstr(log, "already runs (pid") ?
			 "both refused: \"already runs (pid N)\"" : "refused without naming the running one");
		for (end = now_ms() + RECOVER_MAX_MS; now_ms() < end; sleep_ms(10))
			if (status_get(&v, 1000) && settled(&v, 0, true, &why))
				break;
		if (v.ok && v.pid != c->sup)
			add_note(r, "status answered from pid %lld, not the running supervisor %d", v.pid, (int)c->sup);
		goto recovery_reload;
	}
	if (k->target == T_FULLDISK) {
		/* the state cannot be written at a reload (a full tmpfs), then
		 * the supervisor is killed and the same command started again
		 * with the disk still full: it must adopt the serving
		 * generation from the stale state */
		char filler[128], run_dir[96];
		static char block[4096];
		int fd;

		snprintf(run_dir, sizeof(run_dir), "%s/run", c->dir);
		snprintf(filler, sizeof(filler), "%s/filler", run_dir);
		fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		while (fd >= 0 && write(fd, block, sizeof(block)) > 0)
			;
		if (fd >= 0)
			close(fd);
		if (run((char *[]){ baton, "reload", NAME, "--timeout", "10s", NULL }, &reload, 11000) != 0)
			add_note(r, "the reload on a full disk failed");
		job_end(&reload);
		reload = (struct job){ .pid = 0, .fd = -1 };
		status_get(&v, 1000);
		snprintf(r->during, sizeof(r->during), "before the kill: %s", v.health[0] ? v.health : "?");
		victim = c->sup;
		r->held = 0;
		t_fault = now_ms();
		kill(c->sup, SIGKILL);
		for (i = 0; i < 200 && !child_done(c->sup, NULL); i++)
			sleep_ms(1);
		c->sup = sup_start(c);
		end = t_fault + RECOVER_MAX_MS;
		wait_settled(&v, end, &t_answer, &why);
		r->recover_ms = t_answer >= 0 ? t_answer - t_fault : -1;
		if (!note_log_line(r, c->log, "adopted gen", "the new supervisor did not adopt the serving generation"))
			r->recover_ms = -1;
		unlink(filler);	/* room again: the state is written at the next retry */
		for (end = now_ms() + BACKOFF_WAIT_MS; now_ms() < end; sleep_ms(50))
			if (status_get(&v, 1000) && !v.health[0])
				break;
		goto recovery_reload;
	}
	if (!k->udp && (k->phase == P_SWITCHED || k->phase == P_DRAINING)) {
		if ((e = holder_open(&c->holder)))
			add_note(r, "cannot open the slow request: %s", strerror(-e));
		sleep_ms(20);	/* accepted by the old generation before the reload */
	}
	if (k->variant == V_CANARY_CHECK) {
		char check[160];

		/* a stepped canary whose check passes until the fault */
		snprintf(fail_file, sizeof(fail_file), "%s/check-fails", c->dir);
		snprintf(check, sizeof(check), "test ! -e %s", fail_file);
		if (job_start(&reload, (char *[]){ baton, "reload", NAME, "--canary=25%", "--step=1500ms", "--check-cmd",
						   check, "--check-interval", "100ms", "--timeout", "10s", NULL })) {
			add_note(r, "cannot start baton reload");
			return;
		}
		for (end = now_ms() + 5000; now_ms() < end && !job_poll(&reload, 2);)
			if (strstr(reload.out, "takes 25% of new connections"))
				break;
		if (!strstr(reload.out, "takes 25% of new connections")) {
			last_line(reload.out, r->during, sizeof(r->during));
			add_note(r, "not run: the canary before the fault did not get there: %s", r->during);
			job_end(&reload);
			return;
		}
		sleep_ms(400);	/* a few checks pass */
		write_file(fail_file, "1\n");
	} else if (k->phase != P_IDLE) {
		set_ready_delay(c, k->phase == P_STARTING || k->phase == P_READY_WAIT ? READY_DELAY_MS : 0);
		if (job_start(&reload, (char *[]){ baton, "reload", NAME, "--timeout", "10s", NULL })) {
			add_note(r, "cannot start baton reload");
			return;
		}
		end = now_ms() + 5000;
		while (now_ms() < end) {
			bool done = job_poll(&reload, 2);

			if (!nw)
				nw = pid_after(reload.out, "started gen");
			if ((k->phase == P_STARTING || k->phase == P_READY_WAIT) && nw)
				break;
			if (strstr(reload.out, " serves\n") || done)
				break;
		}
		if (!nw || ((k->phase == P_SWITCHED || k->phase == P_DRAINING) && !strstr(reload.out, " serves\n"))) {
			last_line(reload.out, r->during, sizeof(r->during));
			add_note(r, "not run: the reload before the fault did not get there: %s", r->during);
			job_end(&reload);
			return;
		}
		if (k->phase == P_READY_WAIT)
			sleep_ms(READY_WAIT_AT_MS);
		if (k->phase == P_DRAINING)
			sleep_ms(DRAIN_AT_MS);
	}
	victim = k->target == T_SUP ? c->sup : k->target == T_OLD ? old : nw;
	if (baton_proc_stat(victim, 0, &pst) || pst.state == 'Z') {
		add_note(r, "the %s process (pid %d) had already exited before the fault", target_name[k->target],
			 (int)victim);
		victim = 0;
	}
	/* A generation to be killed is frozen for the instant it takes to count
	 * its connections, so that the count is what it held when it died; the
	 * supervisor's watch looks every 10 ms and has no time to act on it. */
	if (victim && k->sig == SIGKILL && k->target != T_SUP)
		kill(victim, SIGSTOP);
	r->held = victim ? held_by(victim) : 0;
	if (r->held < 0)
		r->held = 0;
	if (k->udp && k->target == T_NEW) {
		const char *g = strstr(reload.out, "started gen ");

		r->victim_gen = g ? atoll(g + 12) : 0;
	}
	/* UDP: what a generation holds is its flows, at most one per lane */
	if (k->udp && k->target != T_SUP)
		r->held = victim ? O.conc : 0;
	t_fault = now_ms();
	if (victim)
		kill(victim, k->sig);
	dbg("%s %s (pid %d, held %d)", k->sig == SIGKILL ? "SIGKILL" : "SIGSTOP", target_name[k->target],
	    (int)victim, r->held);
	if (victim && k->sig == SIGSTOP) {
		appt = (struct appt){ victim, pst.start,
				      t_fault + (k->variant == V_STALL ? SUP_STALL_MS
						 : k->target == T_SUP ? SUP_CONT_MS : GEN_CONT_MS) };
	}
	/* the readiness window was for the fault; replacements start at once */
	set_ready_delay(c, 0);
	holder_complete(&c->holder);

	/* ---- the recovery a user (or systemd) would drive ---- */
	if (k->target == T_SUP && k->sig == SIGKILL && victim) {
		for (i = 0; i < 200 && !child_done(c->sup, NULL); i++)
			sleep_ms(1);
		c->sup = sup_start(c);	/* the same command again */
		dbg("supervisor started again: pid %d", (int)c->sup);
	}
	end = t_fault + RECOVER_MAX_MS;
	while (now_ms() < end) {
		keep_appt(&appt);
		if (reload.pid > 0)
			job_poll(&reload, 0);
		if (k->target == T_SUP && appt.at) {
			/* a frozen supervisor cannot answer: wait for its SIGCONT */
			sleep_ms(appt.at - now_ms());
			continue;
		}
		if (status_get(&v, 1000)) {
			if (t_answer < 0)
				t_answer = now_ms();
			/* a reload under way ends the recovery of the supervisor
			 * or of the new generation it started, not of the old */
			if (settled(&v, k->target == T_SUP ? 0 : victim, k->target != T_OLD, &why)) {
				t_settled = now_ms();
				break;
			}
		}
		sleep_ms(10);
	}
	dbg("status answered after %lld ms, settled after %lld ms%s%s", t_answer < 0 ? -1 : t_answer - t_fault,
	    t_settled < 0 ? -1 : t_settled - t_fault, t_settled < 0 ? ": " : "", t_settled < 0 ? why : "");
	if (k->target == T_SUP)
		r->recover_ms = t_answer >= 0 ? t_answer - t_fault : -1;
	else
		r->recover_ms = t_settled >= 0 ? t_settled - t_fault : -1;
	if (t_settled < 0)
		add_note(r, "not settled after %d ms: %s", RECOVER_MAX_MS, why);
	if (k->target == T_SUP && k->sig == SIGKILL) {
		note_log_line(r, c->log, "adopt", "the new supervisor said nothing of adopting");
	}
	/* what the reload under way when the fault came made of it */
	if (reload.pid > 0) {
		for (end = now_ms() + 3000; !job_poll(&reload, 5) && now_ms() < end;)
			keep_appt(&appt);
		/* a reload that had finished before the fault has nothing to say */
		if (!reload.done)
			snprintf(r->during, sizeof(r->during), "the reload under way still waits 3 s after the recovery");
		else if (k->phase == P_STARTING || k->phase == P_READY_WAIT || job_exit(&reload))
			last_line(reload.out, r->during, sizeof(r->during));
	}

	if (k->variant == V_STALL && (!reload.done || job_exit(&reload))) {
		r->wrong = true;
		add_note(r, "the reload whose generation was ready during the stall failed");
	}
	if (k->variant == V_CANARY_CHECK) {
		char log[OUT_MAX], *a;

		for (end = now_ms() + 3000; now_ms() < end; sleep_ms(20)) {
			read_file(c->log, log, sizeof(log));
			if (strstr(log, "promoting canary") || strstr(log, "rolling back: "))
				break;
		}
		if (strstr(log, "promoting canary") || !(a = strstr(log, "rolling back: "))) {
			r->wrong = true;
			add_note(r, "the failing canary was %s", strstr(log, "promoting canary") ? "PROMOTED" : "not rolled back");
		} else {
			char *nl = strchr(a, '\n');

			add_note(r, "%.*s", (int)((nl ? nl : a + strlen(a)) - a), a);
		}
		unlink(fail_file);
	}

	/* the check below needs the reload under way to be over */
	for (end = now_ms() + 3000; t_settled >= 0 && !settled(&v, k->target == T_SUP ? 0 : victim, true, &why) &&
				    now_ms() < end; sleep_ms(10)) {
		keep_appt(&appt);
		status_get(&v, 1000);
	}

recovery_reload:
	r->recovered = false;
	if (t_answer >= 0 && settled(&v, k->target == T_SUP || k->target == T_UPGRADE ? 0 : victim, true, &why)) {
		int rc;

		if (job_start(&rec, (char *[]){ baton, "reload", NAME, "--timeout", "6s", NULL }) == 0) {
			for (end = now_ms() + 7000; !job_poll(&rec, 5) && now_ms() < end;)
				keep_appt(&appt);
			rc = job_exit(&rec);
			dbg("recovery reload: exit %d", rc);
			if (rc == 0)
				r->recovered = true;
			else {
				char l[160];

				last_line(rec.out, l, sizeof(l));
				add_note(r, "the reload after it failed: %s", l);
			}
			job_end(&rec);
		}
	}
	if (k->target == T_UPGRADE && (job_exit(&reload) != 0 || (v.ok && v.pid != c->sup)))
		r->recovered = false;
	if (v.ok && v.health[0] && strcmp(v.health, "ok"))
		add_note(r, "status says %s", v.health);
	/* a frozen generation that still exists is continued, then given its
	 * drain, before the load stops */
	dbg("waiting for the SIGCONT appointment and the end of the load");
	while (appt.at) {
		sleep_ms(5);
		keep_appt(&appt);
	}
	holder_finish(&c->holder);
	{
		long long until = c->load_t0 + (long long)(O.load_s * 1000);

		if (until < now_ms() + TAIL_MS)
			until = now_ms() + TAIL_MS;
		sleep_ms(until - now_ms());
	}
	job_end(&reload);
	holder_finish(&c->holder);	/* when the case ended early */
}

static void case_finish(struct ctx *c)
{
	struct result *r = c->r;
	char out[OUT_MAX], others[512];
	struct job j;
	int st;

	if (c->load > 0) {
		bool done = false;

		kill(c->load, SIGTERM);
		for (int i = 0; i < O.timeout_ms / 5 + 400 && !(done = child_done(c->load, &st)); i++)
			sleep_ms(5);
		if (!done) {
			kill(c->load, SIGKILL);
			add_note(r, "loadgen did not stop");
		}
		{
			ssize_t n = pread(c->loadfd, out, sizeof(out) - 1, 0);

			out[n > 0 ? n : 0] = '\0';
		}
		if (get_num(out, "answered", &r->answered)) {
			struct holder *h = &c->holder;

			r->ran = true;
			get_num(out, "refused", &r->refused);
			get_num(out, "reset", &r->reset);
			get_num(out, "timeout", &r->timeout);
			get_num(out, "truncated", &r->truncated);
			get_num(out, "other_error", &r->other);
			get_num(out, "failed", &r->failed);
			r->answered += h->out == O_ANSWERED;
			r->refused += h->out == O_REFUSED;
			r->reset += h->out == O_RESET;
			r->timeout += h->out == O_TIMEOUT;
			r->truncated += h->out == O_TRUNCATED;
			r->other += h->out == O_OTHER;
			r->failed += h->out != O_NONE && h->out != O_ANSWERED;
			if (c->k->udp) {
				const char *fo = obj_get(out, "failed_on"), *fe = fo ? strchr(fo, '}') : NULL;
				long long mis = 0;
				char key[24];

				snprintf(key, sizeof(key), "%lld", r->victim_gen);
				if (fo && r->victim_gen > 0)
					get_num(fo, key, &r->failed_victim);
				get_num(out, "misrouted", &mis);
				/* which flows failed, and how: a miss explains itself */
				if (r->failed && fe)
					add_note(r, "%lld misrouted; failures by the generation of their flow "
						 "(0: none had answered) %.*s", mis, (int)(fe - fo + 1), fo);
			}
		} else {
			add_note(r, "no report from loadgen");
		}
	}
	dbg("load stopped");
	/* the graceful way first: whatever `baton stop` leaves is a finding */
	if (c->sup > 0 && !child_done(c->sup, NULL)) {
		kill(c->sup, SIGCONT);
		run((char *[]){ baton, "stop", NAME, "--timeout", "5s", NULL }, &j, 6000);
		for (int i = 0; i < 400 && !child_done(c->sup, NULL); i++)
			sleep_ms(5);
		job_end(&j);
	}
	reap_all();
	dbg("baton stop done");
	r->leftover = netns_others(others, sizeof(others));
	if (r->leftover)
		add_note(r, "left after baton stop: %s", others);
	if (c->sup > 0 && !child_done(c->sup, NULL)) {
		kill(c->sup, SIGCONT);
		kill(c->sup, SIGKILL);
	}
	sweep_children();
	dbg("swept");
	if (netns_others(others, sizeof(others)))
		add_note(r, "STILL RUNNING after the sweep: %s", others);
}

/* Removes what a case made in DIR (a directory made for it): its files and
 * the runtime directory with the control and notify sockets. */
static void remove_case_dir(const char *dir)
{
	static const char *const sub[] = { "/run", "" };

	for (size_t i = 0; i < 2; i++) {
		char path[160], p[480];
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
		d = opendir(path);
		while (d && (e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
			    snprintf(p, sizeof(p), "%s/%s", path, e->d_name) < (int)sizeof(p))
				unlink(p);
		if (d)
			closedir(d);
		rmdir(path);
	}
}

/* The failures a case may have and still meet its goal: none, but for a
 * generation killed (what it held dies with it) and, in classic BPF mode, a
 * generation frozen while it was the only one: baton replaces and fences it,
 * and classic BPF cannot migrate its accept queue, so what waited there is
 * reset; that is at most one request per loadgen lane (each lane has one in
 * flight), and none may fail after it. */
static long long allowed_failures(const struct kase *k, const struct result *r)
{
	/* UDP: only flows of the killed generation, one datagram each */
	if (k->udp && k->sig == SIGKILL && (k->target == T_OLD || k->target == T_NEW))
		return r->failed_victim == r->failed ? r->held : 0;
	if (k->sig == SIGKILL && (k->target == T_OLD || k->target == T_NEW))
		return r->held;
	if (k->cbpf && k->sig == SIGSTOP && k->target == T_OLD && k->phase == P_IDLE)
		return O.conc;
	return 0;
}

/* Runs case K in this (forked) process, in DIR; the result goes to FD. */
static void case_child(const struct kase *k, const char *dir, int fd)
{
	static struct result res;
	struct ctx c = { .k = k, .r = &res, .logfd = -1, .loadfd = -1, .holder.fd = -1 };
	char run_dir[96];
	int e;

	res.held = -1;
	res.recover_ms = -1;
	debug_t0 = now_ms();
	signal(SIGINT, SIG_DFL);	/* the parent's handler is not ours */
	signal(SIGTERM, SIG_DFL);
	nreaped = 0;	/* the parent's, copied by fork: not ours */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if ((e = netns_enter())) {
		add_note(&res, "cannot make a network namespace and bpffs: %s (needs root)", strerror(-e));
		goto out;
	}
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	snprintf(c.delay_file, sizeof(c.delay_file), "%s/ready-delay", c.dir);
	snprintf(c.log, sizeof(c.log), "%s/baton.log", c.dir);
	snprintf(c.load_out, sizeof(c.load_out), "%s/load.json", c.dir);
	snprintf(run_dir, sizeof(run_dir), "%s/run", c.dir);
	mkdir(run_dir, 0700);
	setenv("BATON_RUNTIME_DIR", run_dir, 1);
	c.logfd = open(c.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	c.loadfd = open(c.load_out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (c.logfd < 0 || c.loadfd < 0) {
		add_note(&res, "cannot create files in %s: %s", c.dir, strerror(errno));
		goto out;
	}
	/* classic BPF rows: every baton of the case inherits it */
	if (k->cbpf)
		setenv("BATON_STEERING", "cbpf", 1);
	case_body(&c);
	case_finish(&c);
	if (k->cbpf) {
		static char log[OUT_MAX];

		/* a cbpf row that ran eBPF would prove nothing */
		read_file(c.log, log, sizeof(log));
		if (!strstr(log, "classic BPF mode")) {
			res.wrong = true;
			add_note(&res, "baton did not say it ran in classic BPF mode");
		}
	}
	res.goal = res.ran && res.recovered && res.leftover == 0 && !res.wrong && res.failed <= allowed_failures(k, &res);
out:
	if (c.logfd >= 0)
		close(c.logfd);
	if (c.loadfd >= 0)
		close(c.loadfd);
	if (write(fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(1);
	_exit(0);
}

/* ---- the matrix ------------------------------------------------------------------ */

static int make_cases(struct kase *ks)
{
	static const enum target targets[] = { T_SUP, T_OLD, T_NEW };
	static const int sigs[] = { SIGKILL, SIGSTOP };
	int n = 0;

	for (size_t t = 0; t < 3; t++)
		for (int p = 0; p < P_N; p++)
			for (size_t s = 0; s < 2; s++) {
				struct kase *k = &ks[n];

				if (targets[t] == T_NEW && p == P_IDLE)
					continue;	/* no new generation when idle */
				k->target = targets[t];
				k->sig = sigs[s];
				k->phase = (enum phase)p;
				snprintf(k->name, sizeof(k->name), "%s-%s-%s", target_name[k->target],
					 sigs[s] == SIGKILL ? "kill" : "stop", phase_name[p]);
				n++;
			}
	ks[n] = (struct kase){ .target = T_UPGRADE, .sig = 0, .phase = P_IDLE };
	snprintf(ks[n].name, sizeof(ks[n].name), "upgrade");
	n++;
	ks[n] = (struct kase){ .target = T_SUP, .sig = SIGKILL, .phase = P_IDLE, .variant = V_CANARY_CHECK };
	snprintf(ks[n].name, sizeof(ks[n].name), "supervisor-kill-canary");
	n++;
	ks[n] = (struct kase){ .target = T_SUP, .sig = SIGSTOP, .phase = P_READY_WAIT, .variant = V_STALL };
	snprintf(ks[n].name, sizeof(ks[n].name), "supervisor-stop-past-ready");
	n++;
	ks[n] = (struct kase){ .target = T_SECOND, .sig = 0, .phase = P_IDLE };
	snprintf(ks[n].name, sizeof(ks[n].name), "second-start");
	n++;
	ks[n] = (struct kase){ .target = T_FULLDISK, .sig = SIGKILL, .phase = P_IDLE };
	snprintf(ks[n].name, sizeof(ks[n].name), "full-disk-kill");
	n++;
	/* classic BPF (no migration of a queue, no pins, no checks): the rows
	 * that make sense without migration, with the same goals, and the frozen
	 * only generation, whose queue cBPF cannot move (see allowed_failures) */
	{
		static const struct { enum target t; int sig; enum phase p; } cb[] = {
			{ T_SUP, SIGKILL, P_IDLE }, { T_SUP, SIGKILL, P_DRAINING }, { T_OLD, SIGKILL, P_DRAINING },
			{ T_NEW, SIGKILL, P_READY_WAIT }, { T_OLD, SIGSTOP, P_IDLE },
		};

		for (size_t i = 0; i < sizeof(cb) / sizeof(cb[0]); i++, n++) {
			ks[n] = (struct kase){ .target = cb[i].t, .sig = cb[i].sig, .phase = cb[i].p, .cbpf = true };
			/* "sup": the names fit the table's column */
			snprintf(ks[n].name, sizeof(ks[n].name), "cbpf-%s-%s-%s",
				 cb[i].t == T_SUP ? "sup" : target_name[cb[i].t],
				 cb[i].sig == SIGKILL ? "kill" : "stop", phase_name[cb[i].p]);
		}
	}
	/* UDP (no queue to migrate; flows pinned to the generation that saw
	 * them start): the supervisor killed or frozen at rest and while the
	 * old generation still answers its flows after a reload (those flows
	 * must go on being answered by it), and a generation killed (only its
	 * own flows may fail, one datagram each) */
	{
		static const struct { enum target t; int sig; enum phase p; } ud[] = {
			{ T_SUP, SIGKILL, P_IDLE }, { T_SUP, SIGKILL, P_DRAINING }, { T_SUP, SIGSTOP, P_DRAINING },
			{ T_OLD, SIGKILL, P_IDLE }, { T_OLD, SIGKILL, P_DRAINING }, { T_NEW, SIGKILL, P_DRAINING },
		};

		for (size_t i = 0; i < sizeof(ud) / sizeof(ud[0]); i++, n++) {
			ks[n] = (struct kase){ .target = ud[i].t, .sig = ud[i].sig, .phase = ud[i].p, .udp = true };
			snprintf(ks[n].name, sizeof(ks[n].name), "udp-%s-%s-%s",
				 ud[i].t == T_SUP ? "sup" : target_name[ud[i].t],
				 ud[i].sig == SIGKILL ? "kill" : "stop", phase_name[ud[i].p]);
		}
	}
	return n;
}

static bool wanted(const char *name)
{
	char buf[256], *save = NULL, *tok;

	if (!O.cases || !*O.cases)
		return true;
	snprintf(buf, sizeof(buf), "%s", O.cases);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (strstr(name, tok))
			return true;
	return false;
}

static bool run_case(const struct kase *k, struct result *r)
{
	int p[2];
	pid_t pid;
	ssize_t got = 0;
	long long end = now_ms() + CASE_MAX_MS;

	char dir[64] = "/tmp/baton-faults.XXXXXX";

	memset(r, 0, sizeof(*r));
	r->held = -1;
	r->recover_ms = -1;
	/* made here, so that it goes even when the case has to be killed */
	if (!mkdtemp(dir)) {
		snprintf(r->note, sizeof(r->note), "mkdtemp %s: %s", dir, strerror(errno));
		return false;
	}
	if (pipe2(p, O_CLOEXEC)) {
		rmdir(dir);
		return false;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return false;
	}
	if (pid == 0) {
		close(p[0]);
		case_child(k, dir, p[1]);
	}
	close(p[1]);
	while (got < (ssize_t)sizeof(*r) && now_ms() < end && !interrupted) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		ssize_t n;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		n = read(p[0], (char *)r + got, sizeof(*r) - (size_t)got);
		if (n <= 0)
			break;
		got += n;
	}
	close(p[0]);
	if (got != (ssize_t)sizeof(*r)) {
		memset(r, 0, sizeof(*r));
		r->held = -1;
		r->recover_ms = -1;
		snprintf(r->note, sizeof(r->note), "the case %s",
			 interrupted ? "was interrupted" : now_ms() >= end ? "took too long and was killed"
									    : "ended without a result");
	}
	kill(pid, SIGKILL);	/* done or over time: either way, by its pid */
	waitpid(pid, NULL, 0);
	/* what a killed case left comes to us as subreaper */
	if (sweep_children())
		snprintf(r->note + strlen(r->note), sizeof(r->note) - strlen(r->note),
			 "%sprocesses of the case were left and killed", r->note[0] ? "; " : "");
	if (O.keep)
		snprintf(r->note + strlen(r->note), sizeof(r->note) - strlen(r->note), "%slogs in %s",
			 r->note[0] ? "; " : "", dir);
	else
		remove_case_dir(dir);
	return true;
}

static void json_str(const char *s)
{
	baton_json_str(stdout, s);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: faults [--cases PATTERN] [--load-seconds SEC] [--concurrency N]\n"
		"              [--timeout-ms T] [--json] [--keep] [--list]\n\n"
		"Runs `baton run` with refserver under loadgen load (one connection per request)\n"
		"and, in each case, kills (SIGKILL) or freezes (SIGSTOP) the supervisor, the old\n"
		"generation or the new one, at rest (idle) or at one moment of a reload: the new\n"
		"generation just forked (starting), %d ms into its %d ms wait for READY=1\n"
		"(ready-wait), just after `baton reload` said ok (switched; answers take %d ms),\n"
		"or %d ms into the old one's drain (draining; answers take %d ms); then\n"
		"drives the recovery: a killed supervisor is started again with the same command,\n"
		"a frozen one continued after %d s, a frozen generation after %d s if it still\n"
		"exists. One more case runs `baton upgrade`; supervisor-kill-canary kills\n"
		"the supervisor as a stepped canary's --check-cmd starts failing (goal: rolled\n"
		"back, never promoted), supervisor-stop-past-ready freezes it 2.5 s,\n"
		"past --ready-timeout, while READY=1 waits (goal: that reload succeeds).\n"
		"second-start runs two more `baton run` of the same name at once (refused,\n"
		"harming nothing) and full-disk-kill reloads while the runtime directory's\n"
		"tmpfs is full, then kills the supervisor and runs the same command again (it\n"
		"adopts the serving generation).\n"
		"cbpf-* rows run baton in classic BPF mode (BATON_STEERING=cbpf, as without\n"
		"CAP_BPF/CAP_PERFMON) with the same goals, except cbpf-old-stop-idle: cBPF\n"
		"cannot migrate the frozen generation's accept queue, so up to one request\n"
		"per loadgen lane (--concurrency) may fail there, none after.\n"
		"udp-* rows run udpflow on udp://127.0.0.1:8080?flow_idle=1s under the bench's\n"
		"own UDP client instead of loadgen: --concurrency flows of %d-%d ms, one in\n"
		"flight each; a datagram with no answer in %d ms (timeout) or answered by a\n"
		"generation that never saw its flow start (other: misrouted) fails its flow.\n"
		"\"draining\" there is %d ms after the reload's switch, the old generation still\n"
		"answering its flows. Goal: none fails, but when a generation is killed: then\n"
		"held is the client's flows (at most that many may fail, one datagram each)\n"
		"and every failure must be of a flow that generation had answered.\n"
		"Each case has its own network\n"
		"namespace and BATON_RUNTIME_DIR. Prints one table:\n\n"
		"  answered   requests answered while the case ran (loadgen's; in the switched\n"
		"             and draining cases also one slow request of the bench's own, held\n"
		"             open on the old generation so that it has something to drain)\n"
		"  failed     refused/reset/timeout/truncated/other (loadgen's kinds)\n"
		"  held       established connections the faulted process held at the fault;\n"
		"             after a SIGKILL of a generation, up to that many may fail\n"
		"  recovered  status answered with exactly one running active generation and\n"
		"             the next `baton reload` succeeded\n"
		"  recover_ms from the fault until status answered (supervisor, upgrade), or\n"
		"             until a running generation other than the faulted one was the only\n"
		"             active one (and, when the new one was hit, its reload had ended)\n"
		"  goal       met: recovered, nothing left behind, and no failed request beyond\n"
		"             those the killed process held\n\n"
		"  --cases PATTERN    only cases whose names contain PATTERN (comma-separated\n"
		"                     list; names as --list prints them, e.g. old-kill,upgrade)\n"
		"  --load-seconds SEC load each case for at least SEC seconds (default 2)\n"
		"  --concurrency N    loadgen lanes (default 16)\n"
		"  --timeout-ms T     loadgen's client timeout (default 3000)\n"
		"  --json             one JSON document instead of the table\n"
		"  --keep             keep each case's logs (the note says where)\n"
		"  --list             print the case names and exit\n"
		"Needs root (network namespaces, eBPF). Binaries: BATON_BIN, BATON_REFSERVER,\n"
		"BATON_LOADGEN, BATON_UDPFLOW, else next to this program (build/). Exit 0 when\n"
		"the matrix ran.\n",
		READY_WAIT_AT_MS, READY_DELAY_MS, SWITCHED_DELAY_MS, DRAIN_AT_MS, DRAIN_DELAY_MS, SUP_CONT_MS / 1000,
		GEN_CONT_MS / 1000, UDP_FLOW_MIN_MS, UDP_FLOW_MAX_MS, UDP_TIMEOUT_MS, DRAIN_AT_MS);
}

enum { O_CASES = 256, O_LOAD, O_CONC, O_TMO, O_JSON, O_KEEP, O_LIST };

/* A numeric option ID's value ARG, into O: a number (a whole one where its
 * row says so) from its row's LO to HI, or said naming the option. */
static int num_opt(int id, const char *arg)
{
	static const struct { int id; const char *name; double lo, hi; bool whole; } nums[] = {
		{ O_LOAD, "--load-seconds", 0.5, 60, false },
		{ O_CONC, "--concurrency", 1, 1024, true },
		{ O_TMO, "--timeout-ms", 100, 30000, true },
	};

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		double v;

		if (nums[i].id != id)
			continue;
		if (numarg_parse(arg, nums[i].lo, nums[i].hi, nums[i].whole, &v)) {
			fprintf(stderr, "faults: %s \"%s\": want a %snumber from %g to %g\n", nums[i].name, arg,
				nums[i].whole ? "whole " : "", nums[i].lo, nums[i].hi);
			return -1;
		}
		if (id == O_LOAD)
			O.load_s = v;
		else if (id == O_CONC)
			O.conc = (int)v;
		else
			O.timeout_ms = (int)v;
		return 0;
	}
	return -1;
}

static int parse_opts(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "cases", required_argument, NULL, O_CASES },
		{ "load-seconds", required_argument, NULL, O_LOAD },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "timeout-ms", required_argument, NULL, O_TMO },
		{ "json", no_argument, NULL, O_JSON },
		{ "keep", no_argument, NULL, O_KEEP },
		{ "list", no_argument, NULL, O_LIST },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (c) {
		case O_CASES: O.cases = optarg; break;
		case O_LOAD:
		case O_CONC:
		case O_TMO:
			if (num_opt(c, optarg))
				return 2;
			break;
		case O_JSON: O.json = true; break;
		case O_KEEP: O.keep = true; break;
		case O_LIST: O.list = true; break;
		case 'h': usage(stdout); return 0;
		default: return bench_opt_error("faults", c, argv);
		}
	}
	if (bench_extra_args("faults", argc, argv))
		return 2;
	return -1;
}

/* `faults --wrap FILE REFSERVER ARG...`: how each generation starts. Reads
 * the readiness delay the case wants from FILE and becomes refserver with it
 * (same pid, so LISTEN_PID stays true). */
static int wrap(int argc, char **argv)
{
	char buf[32], delay[16], *av[64];
	int n = 0;

	if (argc < 4 || argc > 50)
		return 2;
	read_file(argv[2], buf, sizeof(buf));
	for (int i = 3; i < argc; i++)
		av[n++] = argv[i];
	if (atoi(buf) > 0) {
		snprintf(delay, sizeof(delay), "%d", atoi(buf));
		av[n++] = "--ready-delay";
		av[n++] = delay;
	}
	av[n] = NULL;
	execv(av[0], av);
	fprintf(stderr, "faults --wrap: cannot run %s: %s\n", av[0], strerror(errno));
	return 127;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void find_binary(char *buf, const char *env, const char *rel)
{
	const char *e = getenv(env);
	char dir[PATH_MAX];

	if (e && *e) {
		if (!realpath(e, buf))
			snprintf(buf, PATH_MAX, "%s", e);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", self);
	*strrchr(dir, '/') = '\0';
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, rel) >= PATH_MAX)
		buf[0] = '\0';	/* then access() says it is missing */
}

int main(int argc, char **argv)
{
	static struct kase ks[96];
	static struct result res[96];
	int nk, r, ran = 0, met = 0;
	ssize_t l;
	long long t0;

	if (argc > 1 && !strcmp(argv[1], "--wrap"))
		return wrap(argc, argv);
	if ((r = parse_opts(argc, argv)) >= 0)
		return r;
	nk = make_cases(ks);
	if (O.list) {
		for (int i = 0; i < nk; i++)
			if (wanted(ks[i].name))
				printf("%s\n", ks[i].name);
		return 0;
	}
	if ((l = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0) {
		fprintf(stderr, "faults: cannot read /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	self[l] = '\0';
	find_binary(baton, "BATON_BIN", "../baton");
	find_binary(refserver, "BATON_REFSERVER", "../refserver");
	find_binary(loadgen, "BATON_LOADGEN", "loadgen");
	find_binary(udpflow, "BATON_UDPFLOW", "../udpflow");
	if (access(baton, X_OK) || access(refserver, X_OK) || access(loadgen, X_OK)) {
		fprintf(stderr, "faults: need %s, %s and %s: run make first (or set BATON_BIN, BATON_REFSERVER, "
				"BATON_LOADGEN)\n", baton, refserver, loadgen);
		return 1;
	}
	if (geteuid()) {
		fprintf(stderr, "faults: needs root (network namespaces, eBPF)\n");
		return 1;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* interrupted (CI's timeout, ^C): end the case under way by its pid and
	 * what it left, then stop */
	{
		struct sigaction sa = { .sa_handler = on_signal };

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	debug = getenv("FAULTS_DEBUG") && *getenv("FAULTS_DEBUG") == '1';
	t0 = now_ms();
	for (int i = 0; i < nk; i++) {
		if (!wanted(ks[i].name))
			continue;
		fprintf(stderr, "faults: %-28s", ks[i].name);
		run_case(&ks[i], &res[i]);
		if (interrupted) {
			fprintf(stderr, "\nfaults: interrupted; the case under way and its processes were ended\n");
			return 130;
		}
		fprintf(stderr, " %lld answered, %lld failed, %s\n", res[i].answered, res[i].failed,
			res[i].recovered ? "recovered" : "NOT recovered");
		ran++;
		met += res[i].goal;
	}
	if (!ran) {
		fprintf(stderr, "faults: no case matches \"%s\" (see faults --list)\n", O.cases);
		return 2;
	}
	if (O.json) {
		bool first = true;

		printf("{\"concurrency\": %d, \"timeout_ms\": %d, \"load_seconds\": %.1f, \"seconds\": %.1f, "
		       "\"cases\": [", O.conc, O.timeout_ms, O.load_s, (now_ms() - t0) / 1000.0);
		for (int i = 0; i < nk; i++) {
			struct result *x = &res[i];

			if (!wanted(ks[i].name))
				continue;
			printf("%s\n  {\"case\": ", first ? "" : ",");
			json_str(ks[i].name);
			printf(", \"target\": \"%s\", \"signal\": \"%s\", \"phase\": \"%s\", \"ran\": %s, "
			       "\"answered\": %lld, \"failed\": %lld, \"refused\": %lld, \"reset\": %lld, "
			       "\"timeout\": %lld, \"truncated\": %lld, \"other_error\": %lld, \"held\": %d, "
			       "\"recovered\": %s, \"recover_ms\": %lld, \"goal_met\": %s, \"left_behind\": %d, "
			       "\"during\": ",
			       target_name[ks[i].target], ks[i].sig == SIGKILL ? "KILL" : ks[i].sig ? "STOP" : "",
			       ks[i].target >= T_UPGRADE ? "" : phase_name[ks[i].phase], x->ran ? "true" : "false",
			       x->answered, x->failed, x->refused, x->reset, x->timeout, x->truncated, x->other, x->held,
			       x->recovered ? "true" : "false", x->recover_ms, x->goal ? "true" : "false", x->leftover);
			json_str(x->during);
			printf(", \"note\": ");
			json_str(x->note);
			printf("}");
			first = false;
		}
		printf("\n], \"goal_met\": %d, \"cases_run\": %d}\n", met, ran);
		return 0;
	}
	printf("faults: loadgen conn c=%d, client timeout %d ms, >= %.1f s of load per case; %.0f s in all\n",
	       O.conc, O.timeout_ms, O.load_s, (now_ms() - t0) / 1000.0);
	printf("%-26s %8s  %-26s %4s  %-9s %10s  %-4s  %s\n", "case", "answered", "failed ref/rst/tmo/trn/oth",
	       "held", "recovered", "recover_ms", "goal", "note");
	for (int i = 0; i < nk; i++) {
		struct result *x = &res[i];
		char failed[128], rec[24];

		if (!wanted(ks[i].name))
			continue;
		snprintf(failed, sizeof(failed), "%lld/%lld/%lld/%lld/%lld", x->refused, x->reset, x->timeout,
			 x->truncated, x->other);
		if (x->recover_ms >= 0)
			snprintf(rec, sizeof(rec), "%lld", x->recover_ms);
		else
			snprintf(rec, sizeof(rec), "-");
		printf("%-26s %8lld  %-26s %4d  %-9s %10s  %-4s  %s%s%s%s\n", ks[i].name, x->answered,
		       x->ran ? failed : "-", x->held < 0 ? 0 : x->held, x->recovered ? "yes" : "no", rec,
		       x->goal ? "met" : "MISS", x->note, x->during[0] && x->note[0] ? "; " : "",
		       !x->during[0] ? "" : ks[i].target >= T_UPGRADE ? "it said: " : "the reload under way: ",
		       x->during);
	}
	printf("goal met in %d of %d cases. old = the generation serving before the reload (the only one when\n"
	       "idle); new = the one the reload starts. SIGSTOP rows: the process is continued after %d s\n"
	       "(supervisor) or %d s (generation), so their recover_ms include that wait only where baton\n"
	       "has to wait for it.\n", met, ran, SUP_CONT_MS / 1000, GEN_CONT_MS / 1000);
	return 0;
}
