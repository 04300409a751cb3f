/* SPDX-License-Identifier: BSD-2-Clause */
/* refserver: a small HTTP/1.1 server that shows how to write a server for
 * baton (listening sockets from LISTEN_FDS, READY=1 on NOTIFY_SOCKET, a
 * graceful stop that drops no request, upgrading itself in place through the
 * handover protocol), and the server baton's tests use. Standalone: one
 * file, libc and the header-only wire format, one process, one epoll loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "baton_handover_wire.h"

#define MAX_LISTEN 16
#define REQ_MAX 8192           /* request line + headers; larger is a 431 */
#define OUT_MAX 1024           /* one response (ours are small) */
#define LINGER_MS 1000         /* how long a closing connection may take to read EOF */
/* On stop, a keep-alive connection idle between requests gets this long to
 * send one more, answered with "Connection: close". A busy client's next
 * request is often already on the wire when the stop comes; closing at once
 * would make it retry (or fail, if it does not). */
#define LAST_CALL_MS 50
#define ACCEPT_BATCH 64        /* accepts per wake-up, so clients get their turn */
#define STR_(x) #x
#define STR(x) STR_(x)

/* What an epoll event points at; the kind is the first member of each. */
enum kind { K_LISTEN, K_CONN, K_SIGNAL, K_TIMER, K_UPLISTEN, K_UPCONN };

struct listener {
	enum kind kind;
	int fd;
	char name[64];
};

/* A queue of connections with one common timeout: deadlines are then in
 * insertion order, so the head is always the next to expire. */
struct tqueue {
	struct conn *head, *tail;
};

enum cstate {
	C_READING,   /* waiting for (the rest of) a request */
	C_DELAYED,   /* request parsed, answer held back for --delay-ms */
	C_WRITING,   /* response partly sent */
	C_LINGER,    /* our side shut down; reading until the client's EOF */
};

struct conn {
	enum kind kind;
	int fd;
	enum cstate state;
	bool close_after;           /* this response ends the connection */
	bool http10;
	int status;                 /* of the request being answered */
	bool head;                  /* HEAD: headers only */
	bool peer_eof;              /* the client shut its side after sending */
	unsigned answered;          /* responses completed on this connection */
	size_t discard;             /* request body bytes still to skip */
	long long due_ms;           /* C_DELAYED: when to answer; C_LINGER: when to give up */
	struct conn *prev, *next;   /* all connections */
	struct conn *tprev, *tnext; /* on the queue ONQ: delay or linger */
	struct tqueue *onq;
	size_t inlen, outlen, outoff;
	char in[REQ_MAX];
	char out[OUT_MAX];
};

struct opts {
	const char *listen[MAX_LISTEN];
	int nlisten;
	const char *tag;
	int ready_delay_ms;
	bool never_ready;
	bool crash_at_start;
	int delay_ms;
	int stop_signal;
	int grace_ms;
	bool quiet;
	bool reuseport;
	const char *upgrade_socket;
};

struct server {
	struct opts o;
	int ep, sigfd, timerfd;
	struct listener ls[MAX_LISTEN];
	int nls;
	struct conn *conns;
	int nconns;
	struct tqueue delayed, lingering;
	long long ready_at_ms;      /* -1: sent or never */
	long long grace_end_ms;     /* -1: not stopping */
	long long last_call_ms;     /* -1: idle connections already ended */
	bool stopping, accept_paused;
	char notify[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	unsigned long long served;
	pid_t pid;
	char **argv;
	/* --upgrade-socket: our offer, the taker being served, our successor */
	int upfd, upconn, handed_conn;
	dev_t updev;
	ino_t upino;
	struct baton_handover_cred uppeer;
	pid_t successor;
};

static struct { enum kind kind; } sig_ev = { K_SIGNAL }, timer_ev = { K_TIMER }, uplisten_ev = { K_UPLISTEN },
				  upconn_ev = { K_UPCONN };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static pid_t g_pid;
static bool g_quiet;

static void say(bool always, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(bool always, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (g_quiet && !always)
		return;
	n = snprintf(buf, sizeof(buf), "refserver[%d]: ", (int)g_pid);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", buf);	/* one write per line: readable when interleaved */
}

/* ---- startup: sockets, readiness ------------------------------------------- */

/* LISTEN_FDS as sd_listen_fds(1) reads it: only if LISTEN_PID is us (the
 * variables may have been inherited from a parent they were meant for), fds
 * from 3, names from LISTEN_FDNAMES; the variables are then removed so no
 * child of ours mistakes them for its own. */
static int take_listen_fds(struct server *s)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char namebuf[1024] = "", *save = NULL, *name;
	long n = 0;
	int i, r = 0;

	if (!fds)
		goto out;
	if (!pid || strtol(pid, NULL, 10) != (long)s->pid) {
		say(true, "ignoring LISTEN_FDS=%s: LISTEN_PID=%s is not this process (%d)", fds,
		    pid ? pid : "(unset)", (int)s->pid);
		goto out;
	}
	n = strtol(fds, NULL, 10);
	if (n < 1 || n > MAX_LISTEN) {
		say(true, "LISTEN_FDS=%s: expected 1 to %d", fds, MAX_LISTEN);
		r = -EINVAL;
		goto out;
	}
	if (names)
		snprintf(namebuf, sizeof(namebuf), "%s", names);
	name = strtok_r(namebuf, ":", &save);
	for (i = 0; i < n; i++, name = name ? strtok_r(NULL, ":", &save) : NULL) {
		int fd = 3 + i, acc = 0, fl;
		socklen_t len = sizeof(acc);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc) {
			say(true, "LISTEN_FDS: fd %d is not a listening socket", fd);
			r = -EINVAL;
			goto out;
		}
		/* ours alone from now on: not leaked into anything we might run,
		 * and never blocking the loop when another process won the race
		 * for a connection on a shared socket */
		fl = fcntl(fd, F_GETFL);
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
			say(true, "fd %d: %s", fd, strerror(errno));
			r = -errno;
			goto out;
		}
		s->ls[s->nls].kind = K_LISTEN;
		s->ls[s->nls].fd = fd;
		snprintf(s->ls[s->nls].name, sizeof(s->ls[0].name), "%s", name ? name : "unknown");
		s->nls++;
	}
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return r;
}

/* --listen HOST:PORT (or [V6]:PORT) for running by hand, without a supervisor. */
static int bind_own(struct server *s, const char *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
	struct addrinfo *ai = NULL;
	char host[256];
	const char *colon = strrchr(spec, ':'), *h = spec;
	size_t hl;
	int fd = -1, one = 1, e;

	if (!colon || !colon[1]) {
		say(true, "--listen %s: expected HOST:PORT", spec);
		return -EINVAL;
	}
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']')
		h++, hl -= 2;
	if (hl >= sizeof(host)) {
		say(true, "--listen %s: host too long", spec);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	e = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &ai);
	if (e) {
		say(true, "--listen %s: %s", spec, gai_strerror(e));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* --reuseport: join a group with other servers on the port, as
	 * nginx's "listen ... reuseport" does (baton steer's scenario) */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (s->o.reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4096)) {
		e = errno;
		say(true, "--listen %s: %s", spec, strerror(e));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -e;
	}
	freeaddrinfo(ai);
	s->ls[s->nls].kind = K_LISTEN;
	s->ls[s->nls].fd = fd;
	snprintf(s->ls[s->nls].name, sizeof(s->ls[0].name), "%s", spec);
	s->nls++;
	return 0;
}

/* sd_notify(3) without libsystemd: one datagram to the path in NOTIFY_SOCKET,
 * or to an abstract address if it starts with '@'. */
static int notify(struct server *s, const char *msg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(s->notify);
	socklen_t alen;
	int fd, r = 0;

	if (!len)
		return 0;
	memcpy(sun.sun_path, s->notify, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen) < 0) {
		r = -errno;
		say(true, "cannot notify %s: %s", s->notify, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return r;
}

static void send_ready(struct server *s)
{
	char msg[64];

	s->ready_at_ms = -1;
	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\n", (int)s->pid);
	if (s->notify[0] && notify(s, msg) == 0)
		say(false, "ready (told %s)", s->notify);
}


/* ---- upgrading in place: the handover protocol (baton_handover_wire.h) ---------- */

#define HANDOVER_TIMEOUT_MS 5000

static void begin_stop(struct server *s, const char *why);

/* The successor's side: takes the listening sockets from the process that
 * started us. The connection stays open (s->handed_conn) until we accept
 * from them: the acknowledgement tells the old process it may drain. */
static int take_handover(struct server *s, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	long long deadline = baton_handover_now_ms() + HANDOVER_TIMEOUT_MS;
	int fds[MAX_LISTEN], fd, r, i;
	struct baton_handover_fdset set = { .fds = fds, .cap = MAX_LISTEN };
	struct baton_handover_hdr h = baton_handover_hdr_make(BATON_HANDOVER_HELLO, 0, 0);
	char payload[MAX_LISTEN * (BATON_HANDOVER_NAME_MAX + 1)], err[256] = "";
	const char *names[MAX_LISTEN];
	struct baton_handover_cred peer = { 0 };
	bool tell = true;
	size_t got;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		say(true, "%s=%s: path too long", BATON_HANDOVER_ENV, path);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		/* EAGAIN: the old process's backlog is full for a moment */
		if (errno != EAGAIN || baton_handover_now_ms() > deadline) {
			r = -errno;
			snprintf(err, sizeof(err), "cannot connect: %s", strerror(errno));
			goto fail;
		}
		usleep(10000);
	}
	if ((r = baton_handover_peer_check(fd, &peer, err, sizeof(err))))
		goto fail;
	r = baton_handover_send(fd, &h, NULL, NULL, 0, deadline);
	if (r && r != -EPIPE) {
		snprintf(err, sizeof(err), "sending HELLO: %s", strerror(-r));
		goto fail;
	}
	if ((r = baton_handover_recv(fd, &h, sizeof(h), &set, deadline, &got)) ||
	    (r = baton_handover_hdr_check(&h, BATON_HANDOVER_FDS, MAX_LISTEN, err, sizeof(err))) ||
	    (r = baton_handover_recv(fd, payload, h.len, &set, deadline, &got))) {
		if (!err[0])
			snprintf(err, sizeof(err), "receiving the sockets: %s%s", strerror(-r),
				 r == -EMSGSIZE ? " (more than " STR(MAX_LISTEN) " fds, or the fd limit)" : "");
		goto fail;
	}
	if (h.type == BATON_HANDOVER_ERROR) {
		r = -(int)h.count;
		tell = false;
		snprintf(err, sizeof(err), "refused: %.*s", (int)h.len, payload);
		goto fail;
	}
	if (set.n != h.count) {
		r = -EBADMSG;
		snprintf(err, sizeof(err), "%u fds announced, %zu arrived", (unsigned)h.count, set.n);
		goto fail;
	}
	if ((r = baton_handover_names_parse(payload, h.len, h.count, names, err, sizeof(err))))
		goto fail;
	for (i = 0; i < (int)set.n; i++) {
		int acc = 0, fl = fcntl(fds[i], F_GETFL);
		socklen_t len = sizeof(acc);

		if (getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc || fl < 0 ||
		    fcntl(fds[i], F_SETFL, fl | O_NONBLOCK)) {
			r = -EINVAL;
			snprintf(err, sizeof(err), "fd \"%s\" is not a listening socket", names[i]);
			goto fail;
		}
	}
	for (i = 0; i < (int)set.n; i++) {
		s->ls[s->nls].kind = K_LISTEN;
		s->ls[s->nls].fd = fds[i];
		snprintf(s->ls[s->nls].name, sizeof(s->ls[0].name), "%s", names[i]);
		s->nls++;
	}
	s->handed_conn = fd;
	say(false, "took %zu socket(s) from pid %d through %s", set.n, (int)peer.pid, path);
	return 0;
fail:
	say(true, "taking the sockets from %s (pid %d): %s", path, (int)peer.pid, err);
	if (tell) {
		struct baton_handover_hdr e = baton_handover_hdr_make(BATON_HANDOVER_ERROR, (uint32_t)-r,
								      (uint32_t)strlen(err));

		baton_handover_send(fd, &e, err, NULL, 0, baton_handover_now_ms() + 100);
	}
	baton_handover_fdset_close(&set);
	close(fd);
	return r;
}

/* Our own offer at --upgrade-socket, bound at a temporary name and renamed
 * over the path: the process we took over from may still be draining there,
 * and a successor of ours must always find a live offer. */
static int offer_open(struct server *s)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = s->o.upgrade_socket;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &uplisten_ev };
	struct stat st;
	int n;

	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.%d.tmp", path, (int)s->pid);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		say(true, "--upgrade-socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	s->upfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(sun.sun_path);
	if (s->upfd < 0 || bind(s->upfd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(sun.sun_path, 0600) ||
	    listen(s->upfd, 4) || rename(sun.sun_path, path) || stat(path, &st) ||
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->upfd, &e)) {
		n = -errno;
		say(true, "--upgrade-socket %s: %s", path, strerror(errno));
		unlink(sun.sun_path);
		return n;
	}
	s->updev = st.st_dev;
	s->upino = st.st_ino;
	return 0;
}

static void offer_close(struct server *s)
{
	struct stat st;

	if (s->upconn >= 0)
		close(s->upconn);
	s->upconn = -1;
	if (s->upfd < 0)
		return;
	close(s->upfd);
	s->upfd = -1;
	/* a successor has put its own offer there by now: leave that one */
	if (!stat(s->o.upgrade_socket, &st) && st.st_dev == s->updev && st.st_ino == s->upino)
		unlink(s->o.upgrade_socket);
}

/* Ends the exchange with a taker; with WHY, tells it why first. */
static void upconn_end(struct server *s, int err, const char *why)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &uplisten_ev };

	if (why) {
		struct baton_handover_hdr h = baton_handover_hdr_make(BATON_HANDOVER_ERROR, (uint32_t)err,
								      (uint32_t)strlen(why));

		say(true, "handover to pid %d: %s; still serving", (int)s->uppeer.pid, why);
		baton_handover_send(s->upconn, &h, why, NULL, 0, now_ms() + 100);
	}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, s->upconn, NULL);
	close(s->upconn);
	s->upconn = -1;
	if (s->upfd >= 0)
		epoll_ctl(s->ep, EPOLL_CTL_ADD, s->upfd, &e);
}

/* A taker connected: check it, read its HELLO, send our sockets. It sends
 * HELLO right after connecting, so the wait is short and bounded. */
static void offer_accept(struct server *s)
{
	struct baton_handover_hdr h;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &upconn_ev };
	char err[256] = "", names[MAX_LISTEN * (BATON_HANDOVER_NAME_MAX + 1)];
	int fds[MAX_LISTEN], i, r;
	size_t got, off = 0;

	s->upconn = accept4(s->upfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s->upconn < 0)
		return;
	epoll_ctl(s->ep, EPOLL_CTL_DEL, s->upfd, NULL);	/* one taker at a time */
	if (baton_handover_peer_check(s->upconn, &s->uppeer, err, sizeof(err))) {
		upconn_end(s, EPERM, err);
		return;
	}
	r = baton_handover_recv(s->upconn, &h, sizeof(h), NULL, now_ms() + 1000, &got);
	if (r || (r = baton_handover_hdr_check(&h, BATON_HANDOVER_HELLO, 0, err, sizeof(err)))) {
		if (!err[0])
			snprintf(err, sizeof(err), "no request: %s", strerror(-r));
		upconn_end(s, -r, err);
		return;
	}
	for (i = 0; i < s->nls; i++) {
		/* names of --listen sockets are HOST:PORT: no ':' on the wire */
		char *n = names + off, *c;

		off += (size_t)snprintf(n, BATON_HANDOVER_NAME_MAX + 1, "%s", s->ls[i].name) + 1;
		for (c = n; *c; c++)
			if (*c == ':' || *c < 0x20 || *c > 0x7e)
				*c = '_';
		fds[i] = s->ls[i].fd;
	}
	h = baton_handover_hdr_make(BATON_HANDOVER_FDS, (uint32_t)s->nls, (uint32_t)off);
	r = baton_handover_send(s->upconn, &h, names, fds, (size_t)s->nls, now_ms() + 1000);
	if (r) {
		snprintf(err, sizeof(err), "sending the sockets: %s", strerror(-r));
		upconn_end(s, -r, err);
		return;
	}
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->upconn, &e))
		upconn_end(s, errno, "epoll");
}

/* The taker answered: ACK means it accepts from the sockets now. */
static void offer_answer(struct server *s)
{
	struct baton_handover_hdr h;
	char err[256] = "", text[BATON_HANDOVER_ERRTEXT_MAX];
	char why[64];
	size_t got;
	int r;

	r = baton_handover_recv(s->upconn, &h, sizeof(h), NULL, now_ms() + 1000, &got);
	if (r == -ECONNRESET) {
		say(true, "handover to pid %d: it hung up before it served; still serving", (int)s->uppeer.pid);
		upconn_end(s, 0, NULL);
		return;
	}
	if (r || (r = baton_handover_hdr_check(&h, BATON_HANDOVER_ACK, 0, err, sizeof(err)))) {
		if (!err[0])
			snprintf(err, sizeof(err), "%s", strerror(-r));
		upconn_end(s, -r, err);
		return;
	}
	if (h.type == BATON_HANDOVER_ERROR) {
		r = baton_handover_recv(s->upconn, text, h.len, NULL, now_ms() + 1000, &got);
		say(true, "handover to pid %d: it refused: %.*s; still serving", (int)s->uppeer.pid,
		    r ? 0 : (int)h.len, text);
		upconn_end(s, 0, NULL);
		return;
	}
	snprintf(why, sizeof(why), "pid %d took over", (int)s->uppeer.pid);
	begin_stop(s, why);
}

/* SIGUSR2: start our successor, the same command line with
 * BATON_HANDOVER_FROM set. execvp, not /proc/self/exe: an upgrade runs the
 * binary now installed under our name. */
static void start_successor(struct server *s)
{
	sigset_t none;
	pid_t pid;

	if (s->stopping || s->successor || s->upfd < 0) {
		say(true, "SIGUSR2: %s; ignored", s->stopping ? "stopping already" : "an upgrade is under way");
		return;
	}
	pid = fork();
	if (pid < 0) {
		say(true, "SIGUSR2: fork: %s; still serving", strerror(errno));
		return;
	}
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setenv(BATON_HANDOVER_ENV, s->o.upgrade_socket, 1);
		execvp(s->argv[0], s->argv);
		fprintf(stderr, "refserver: cannot run %s: %s\n", s->argv[0], strerror(errno));
		_exit(127);
	}
	s->successor = pid;
	say(false, "SIGUSR2: started successor pid %d", (int)pid);
}

static void reap(struct server *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != s->successor)
			continue;
		s->successor = 0;
		if (!s->stopping)
			say(true, "successor pid %d %s %d before it took over; still serving", (int)pid,
			    WIFEXITED(status) ? "exited with status" : "was killed by signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		if (s->upconn >= 0 && s->uppeer.pid == pid)
			upconn_end(s, 0, NULL);
	}
}

/* ---- timers ----------------------------------------------------------------- */

static void tq_push(struct tqueue *q, struct conn *c)
{
	c->onq = q;
	c->tnext = NULL;
	c->tprev = q->tail;
	if (q->tail)
		q->tail->tnext = c;
	else
		q->head = c;
	q->tail = c;
}

static void tq_del(struct conn *c)
{
	struct tqueue *q = c->onq;

	if (!q)
		return;
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		q->head = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	else
		q->tail = c->tprev;
	c->tprev = c->tnext = NULL;
	c->onq = NULL;
}

/* One timerfd for everything: armed for the earliest of the delay queue's
 * head, the linger queue's head, readiness and the end of the grace time. */
static void arm_timer(struct server *s)
{
	long long next = LLONG_MAX, d;
	struct itimerspec its = { 0 };

	if (s->delayed.head)
		next = s->delayed.head->due_ms;
	if (s->lingering.head && s->lingering.head->due_ms < next)
		next = s->lingering.head->due_ms;
	if (s->ready_at_ms >= 0 && s->ready_at_ms < next)
		next = s->ready_at_ms;
	if (s->grace_end_ms >= 0 && s->grace_end_ms < next)
		next = s->grace_end_ms;
	if (s->last_call_ms >= 0 && s->last_call_ms < next)
		next = s->last_call_ms;
	if (next != LLONG_MAX) {
		d = next - now_ms();
		if (d < 1)
			d = 1;	/* zero would disarm it */
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(s->timerfd, 0, &its, NULL);
}

/* ---- connections ---------------------------------------------------------- */

static void set_events(struct server *s, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void listeners_watch(struct server *s, bool on)
{
	int i;

	for (i = 0; i < s->nls; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = &s->ls[i] };

		epoll_ctl(s->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->ls[i].fd, &e);
	}
}

static void conn_free(struct server *s, struct conn *c)
{
	tq_del(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* explicitly: close alone leaves it in the epoll set while a child
	 * forked for an upgrade still holds a copy, until its exec */
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	s->nconns--;
	if (s->accept_paused && !s->stopping) {
		s->accept_paused = false;
		listeners_watch(s, true);
	}
}

/* Ends a connection without resetting it: send our FIN, then keep reading
 * (and dropping) what the client still sends until its EOF. Closing at once
 * with unread data would make the kernel answer with RST, and an RST can
 * destroy the response the client has not read yet. */
static void conn_linger(struct server *s, struct conn *c)
{
	if (shutdown(c->fd, SHUT_WR)) {
		conn_free(s, c);
		return;
	}
	tq_del(c);
	c->state = C_LINGER;
	c->inlen = 0;
	c->due_ms = now_ms() + LINGER_MS;
	tq_push(&s->lingering, c);
	set_events(s, c, EPOLLIN | EPOLLRDHUP);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Builds the response now, not when the request arrived: a stop that comes
 * while it was delayed must still turn it into "Connection: close". */
static void build_response(struct server *s, struct conn *c)
{
	char body[512];
	int bl, n;

	if (s->stopping)
		c->close_after = true;
	if (c->status == 200)
		bl = snprintf(body, sizeof(body), "refserver pid=%d tag=%s\n", (int)s->pid, s->o.tag);
	else
		bl = snprintf(body, sizeof(body), "%d %s\n", c->status, reason(c->status));
	n = snprintf(c->out, sizeof(c->out),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: text/plain\r\n"
		     "Content-Length: %d\r\n"
		     "%s"
		     "%s"
		     "\r\n"
		     "%s",
		     c->status, reason(c->status), bl,
		     c->status == 405 ? "Allow: GET, HEAD\r\n" : "",
		     c->close_after ? "Connection: close\r\n" : c->http10 ? "Connection: keep-alive\r\n" : "",
		     c->head ? "" : body);
	c->outlen = (size_t)n;
	c->outoff = 0;
	c->state = C_WRITING;
	if (c->status == 200)
		s->served++;
}

static bool token_char(char ch)
{
	return ch > 32 && ch < 127 && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

/* Does the comma-separated header value V (length VL) hold token T? */
static bool has_token(const char *v, size_t vl, const char *t)
{
	size_t tl = strlen(t), i = 0;

	while (i < vl) {
		size_t j;

		while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		for (j = i; j < vl && v[j] != ','; j++)
			;
		{
			size_t e = j;

			while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
				e--;
			if (e - i == tl && !strncasecmp(v + i, t, tl))
				return true;
		}
		i = j;
	}
	return false;
}

/* Parses one request at the front of c->in. Returns its length (headers
 * included; the body is skipped through c->discard), 0 if incomplete, or -1
 * with c->status set to the error to answer before closing. */
static long parse_request(struct conn *c)
{
	const char *p = c->in, *end, *eol, *sp1, *sp2, *line;
	bool keep_alive = false, close_tok = false;
	unsigned long long clen = 0;
	size_t len;

	end = memmem(p, c->inlen, "\r\n\r\n", 4);
	eol = memchr(p, '\n', c->inlen);
	c->status = 400;
	c->head = false;
	/* a request line can be judged as soon as it is complete */
	if (!eol) {
		if (c->inlen >= REQ_MAX)
			return -1;
		return 0;
	}
	if (eol == p || eol[-1] != '\r')
		return -1;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1)
		return -1;
	for (line = p; line < sp1; line++)
		if (!token_char(*line))
			return -1;
	if (eol - 1 - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7)) {
		if (eol - 1 - (sp2 + 1) >= 5 && !memcmp(sp2 + 1, "HTTP/", 5))
			c->status = 505;
		return -1;
	}
	if (sp2[8] != '0' && sp2[8] != '1')
		return -1;
	c->http10 = sp2[8] == '0';
	if (!end) {
		if (c->inlen >= REQ_MAX) {
			c->status = 431;
			return -1;
		}
		return 0;
	}
	len = (size_t)(end - p) + 4;
	for (line = eol + 1; line < end + 2;) {
		const char *le = memchr(line, '\n', (size_t)(end + 2 - line)), *colon, *v;
		size_t vl;

		if (!le || le[-1] != '\r')
			return -1;
		colon = memchr(line, ':', (size_t)(le - line));
		if (!colon || colon == line)
			return -1;
		for (v = line; v < colon; v++)
			if (!token_char(*v))
				return -1;
		for (v = colon + 1; v < le - 1 && (*v == ' ' || *v == '\t'); v++)
			;
		vl = (size_t)(le - 1 - v);
		if ((size_t)(colon - line) == 10 && !strncasecmp(line, "Connection", 10)) {
			keep_alive |= has_token(v, vl, "keep-alive");
			close_tok |= has_token(v, vl, "close");
		} else if ((size_t)(colon - line) == 14 && !strncasecmp(line, "Content-Length", 14)) {
			char num[24];
			char *ep;

			if (!vl || vl >= sizeof(num))
				return -1;
			memcpy(num, v, vl);
			num[vl] = '\0';
			errno = 0;
			clen = strtoull(num, &ep, 10);
			if (errno || *ep || num[0] == '-' || num[0] == '+')
				return -1;
		} else if ((size_t)(colon - line) == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
			c->status = 501;	/* no chunked bodies here: nothing to GET needs one */
			return -1;
		}
		line = le + 1;
	}
	if (clen > (1ULL << 30)) {
		c->status = 413;
		return -1;
	}
	c->discard = (size_t)clen;
	c->close_after = c->http10 ? !keep_alive : close_tok;
	if (sp1 - p == 3 && !memcmp(p, "GET", 3))
		c->status = 200;
	else if (sp1 - p == 4 && !memcmp(p, "HEAD", 4))
		c->status = 200, c->head = true;
	else
		c->status = 405;
	if (c->status == 200 && !(sp2 - sp1 - 1 == 1 && sp1[1] == '/'))
		c->status = 404;
	return (long)len;
}

static void conn_write(struct server *s, struct conn *c);

/* Takes the next request out of the buffer, if a whole one is there. */
static void conn_process(struct server *s, struct conn *c)
{
	long n;

	if (c->discard) {
		size_t d = c->discard < c->inlen ? c->discard : c->inlen;

		memmove(c->in, c->in + d, c->inlen - d);
		c->inlen -= d;
		c->discard -= d;
		if (c->discard)
			goto incomplete;
	}
	if (!c->inlen)
		goto incomplete;
	n = parse_request(c);
	if (n == 0)
		goto incomplete;
	if (n < 0) {
		/* the rest of the stream cannot be framed: answer and close */
		c->close_after = true;
		c->inlen = 0;
		c->discard = 0;
		build_response(s, c);
		conn_write(s, c);
		return;
	}
	memmove(c->in, c->in + n, c->inlen - (size_t)n);
	c->inlen -= (size_t)n;
	if (c->peer_eof)
		c->close_after = true;	/* a half-closed client still gets its answer */
	if (s->o.delay_ms > 0) {
		c->state = C_DELAYED;
		c->due_ms = now_ms() + s->o.delay_ms;
		tq_push(&s->delayed, c);
		set_events(s, c, 0);	/* reading more would only fill our buffer */
		return;
	}
	build_response(s, c);
	conn_write(s, c);
	return;
incomplete:
	if (c->peer_eof)
		conn_free(s, c);	/* the rest of this request will never come */
	else if (s->stopping && s->last_call_ms < 0 && !c->inlen && !c->discard && c->answered)
		conn_linger(s, c);	/* idle keep-alive after the last call: end it now */
	/* A new connection with nothing read yet is not idle: its client has
	 * just connected and its first request is on the way. Closing it would
	 * fail a request the client had every right to send; it is answered
	 * (with "Connection: close") within the grace time instead. */
}

static void conn_write(struct server *s, struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			set_events(s, c, EPOLLOUT);
			return;
		}
		if (n < 0) {
			conn_free(s, c);	/* the client went away: nothing more to give it */
			return;
		}
		c->outoff += (size_t)n;
	}
	c->answered++;
	if (c->close_after) {
		conn_linger(s, c);
		return;
	}
	c->state = C_READING;
	set_events(s, c, EPOLLIN | EPOLLRDHUP);
	conn_process(s, c);	/* a pipelined request may already be here */
}

/* Reads what is there; returns false if the connection was freed. */
static bool conn_read(struct server *s, struct conn *c)
{
	for (;;) {
		char sink[4096];
		char *buf = c->state == C_LINGER ? sink : c->in + c->inlen;
		size_t room = c->state == C_LINGER ? sizeof(sink) : sizeof(c->in) - c->inlen;
		ssize_t n;

		if (!room)
			return true;
		n = recv(c->fd, buf, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n == 0 && c->state != C_LINGER && c->inlen) {
			/* EOF after a request: answer it (conn_process decides) */
			c->peer_eof = true;
			set_events(s, c, 0);
			return true;
		}
		if (n <= 0) {
			/* EOF or error with nothing to answer */
			conn_free(s, c);
			return false;
		}
		if (c->state != C_LINGER)
			c->inlen += (size_t)n;
	}
}

static void conn_event(struct server *s, struct conn *c, uint32_t ev)
{
	switch (c->state) {
	case C_READING:
		if (!conn_read(s, c))
			return;
		if (c->inlen == 0 && (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
			conn_free(s, c);
			return;
		}
		conn_process(s, c);
		return;
	case C_WRITING:
		conn_write(s, c);
		return;
	case C_LINGER:
		conn_read(s, c);
		return;
	case C_DELAYED:
		if (ev & (EPOLLHUP | EPOLLERR))
			conn_free(s, c);
		return;
	}
}

static void do_accept(struct server *s, struct listener *l)
{
	int i;

	for (i = 0; i < ACCEPT_BATCH && !s->stopping; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP };
		struct conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* the queue keeps them until a connection of ours ends */
				say(true, "accept: %s; pausing until a connection closes", strerror(errno));
				s->accept_paused = true;
				listeners_watch(s, false);
			}
			return;	/* EAGAIN: another process sharing the socket took it */
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->kind = K_CONN;
		c->fd = fd;
		c->state = C_READING;
		e.data.ptr = c;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e)) {
			close(fd);
			free(c);
			return;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
}

/* ---- stopping --------------------------------------------------------------- */

/* Stop accepting for good, finish what was asked, end idle connections now. */
static void begin_stop(struct server *s, const char *why)
{
	struct conn *c, *next;
	int i;

	s->stopping = true;
	s->grace_end_ms = now_ms() + s->o.grace_ms;
	s->last_call_ms = now_ms() + LAST_CALL_MS;
	/* Closing our copies, not shutting them down: on a socket shared with
	 * the next generation, shutdown would stop its accepts too. What waits
	 * in the queue stays there for whoever still holds the socket. */
	if (!s->accept_paused)
		listeners_watch(s, false);
	for (i = 0; i < s->nls; i++)
		close(s->ls[i].fd);
	s->nls = 0;
	offer_close(s);
	notify(s, "STOPPING=1\n");
	say(false, "%s: stopped accepting; finishing %d connection(s), grace %d ms", why, s->nconns,
	    s->o.grace_ms);
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state != C_READING)
			continue;	/* delayed and writing ones will close after their response */
		/* a request may have arrived that the loop has not seen yet: a
		 * received request is answered, not dropped */
		if (conn_read(s, c))
			conn_process(s, c);	/* answers it; idle ones wait for the last call */
	}
}

static void on_timer(struct server *s)
{
	uint64_t ticks;
	long long now = now_ms();

	if (read(s->timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		say(true, "timerfd: %s", strerror(errno));
	if (s->last_call_ms >= 0 && now >= s->last_call_ms) {
		struct conn *c, *next;

		s->last_call_ms = -1;
		for (c = s->conns; c; c = next) {
			next = c->next;
			if (c->state == C_READING && !c->inlen && !c->discard && c->answered)
				conn_linger(s, c);
		}
	}
	while (s->delayed.head && s->delayed.head->due_ms <= now) {
		struct conn *c = s->delayed.head;

		tq_del(c);
		build_response(s, c);
		conn_write(s, c);
	}
	while (s->lingering.head && s->lingering.head->due_ms <= now)
		conn_free(s, s->lingering.head);
	if (s->ready_at_ms >= 0 && s->ready_at_ms <= now)
		send_ready(s);
}

/* ---- options and main ------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: refserver [OPTION]...\n\n"
		"A small HTTP/1.1 server for baton: GET / answers 200 with its pid and tag.\n"
		"Listening sockets come from systemd socket activation (LISTEN_PID,\n"
		"LISTEN_FDS, LISTEN_FDNAMES; fds from 3); without them, --listen binds its own.\n"
		"With NOTIFY_SOCKET set it sends READY=1 once it accepts, as sd_notify(3) does.\n"
		"On the stop signal it stops accepting, answers what it has received with\n"
		"\"Connection: close\", ends idle connections and exits 0 when none is left.\n\n"
		"  --listen HOST:PORT   bind this address when no LISTEN_FDS are given\n"
		"                       (repeatable; [V6]:PORT for IPv6)\n"
		"  --reuseport          set SO_REUSEPORT on sockets --listen binds\n"
		"  --tag STR            text included in every answer (default \"refserver\")\n"
		"  --delay-ms N         answer each request N ms after it arrives\n"
		"  --grace-ms N         longest graceful stop before exiting anyway (10000)\n"
		"  --stop-signal NAME   signal that starts the graceful stop (TERM)\n"
		"  --ready-delay MS     send READY=1 only MS ms after accepting starts\n"
		"  --upgrade-socket PATH  upgrade in place on SIGUSR2: run this command line\n"
		"                       again, hand it the listening sockets through the unix\n"
		"                       socket PATH (baton's handover protocol), and once it\n"
		"                       accepts, stop as on the stop signal\n"
		"  --never-ready        never send READY=1\n"
		"  --crash-at-start     exit 1 right after startup (for rollback tests)\n"
		"  -q, --quiet          print only errors\n"
		"  -h, --help           this text\n");
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		fprintf(stderr, "refserver: option %s: \"%s\" is not a number from %d to %d\n", opt, v, lo, hi);
		return -1;
	}
	*out = (int)n;
	return 0;
}

static int parse_signal(const char *v)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "HUP", SIGHUP },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "WINCH", SIGWINCH },
	};
	size_t i;
	char *end;
	long n;

	if (!strncasecmp(v, "SIG", 3))
		v += 3;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!strcasecmp(v, sigs[i].name))
			return sigs[i].sig;
	n = strtol(v, &end, 10);
	if (end != v && !*end && n > 0 && n < SIGRTMAX && n != SIGKILL && n != SIGSTOP)
		return (int)n;
	return -1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_LISTEN = 256, O_TAG, O_DELAY, O_GRACE, O_STOPSIG, O_READYDELAY, O_NEVER, O_CRASH, O_REUSEPORT,
	       O_UPGRADE };
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "tag", required_argument, NULL, O_TAG },
		{ "delay-ms", required_argument, NULL, O_DELAY },
		{ "grace-ms", required_argument, NULL, O_GRACE },
		{ "stop-signal", required_argument, NULL, O_STOPSIG },
		{ "ready-delay", required_argument, NULL, O_READYDELAY },
		{ "never-ready", no_argument, NULL, O_NEVER },
		{ "crash-at-start", no_argument, NULL, O_CRASH },
		{ "reuseport", no_argument, NULL, O_REUSEPORT },
		{ "upgrade-socket", required_argument, NULL, O_UPGRADE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", lopts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			if (o->nlisten == MAX_LISTEN) {
				fprintf(stderr, "refserver: option --listen: at most %d\n", MAX_LISTEN);
				return 2;
			}
			o->listen[o->nlisten++] = optarg;
			break;
		case O_TAG:
			if (strlen(optarg) > 200 || strpbrk(optarg, "\r\n")) {
				fprintf(stderr, "refserver: option --tag: at most 200 characters on one line\n");
				return 2;
			}
			o->tag = optarg;
			break;
		case O_DELAY:
			if (parse_int("--delay-ms", optarg, 0, 3600000, &o->delay_ms))
				return 2;
			break;
		case O_GRACE:
			if (parse_int("--grace-ms", optarg, 0, 86400000, &o->grace_ms))
				return 2;
			break;
		case O_READYDELAY:
			if (parse_int("--ready-delay", optarg, 0, 86400000, &o->ready_delay_ms))
				return 2;
			break;
		case O_STOPSIG:
			o->stop_signal = parse_signal(optarg);
			if (o->stop_signal < 0) {
				fprintf(stderr, "refserver: option --stop-signal: unknown signal \"%s\"\n", optarg);
				return 2;
			}
			break;
		case O_NEVER: o->never_ready = true; break;
		case O_CRASH: o->crash_at_start = true; break;
		case O_REUSEPORT: o->reuseport = true; break;
		case O_UPGRADE:
			/* the offer moves to each successor by rename(2): a file, not @abstract */
			if (optarg[0] != '/' || strlen(optarg) + 16 > sizeof(((struct sockaddr_un *)0)->sun_path)) {
				fprintf(stderr, "refserver: option --upgrade-socket: \"%s\" is not an absolute path "
					"of at most %zu characters\n", optarg,
					sizeof(((struct sockaddr_un *)0)->sun_path) - 16);
				return 2;
			}
			o->upgrade_socket = optarg;
			break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); return 0;
		case ':':
			fprintf(stderr, "refserver: option \"%s\" needs a value (see refserver --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "refserver: unknown option \"%s\" (see refserver --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "refserver: unexpected argument \"%s\" (see refserver --help)\n", argv[optind]);
		return 2;
	}
	if (o->upgrade_socket && o->stop_signal == SIGUSR2) {
		fprintf(stderr, "refserver: --stop-signal USR2 cannot go with --upgrade-socket (USR2 upgrades)\n");
		return 2;
	}
	return -1;
}

static int setup(struct server *s)
{
	struct epoll_event e = { .events = EPOLLIN };
	const char *ns = getenv("NOTIFY_SOCKET"), *from = getenv(BATON_HANDOVER_ENV);
	struct rlimit rl;
	sigset_t mask;
	int i, r;

	/* a successor: the sockets come from the process that started us; the
	 * variable is for us alone, not for whatever we start later */
	if (from) {
		char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

		snprintf(path, sizeof(path), "%s", from);
		unsetenv(BATON_HANDOVER_ENV);
		if ((r = take_handover(s, path)))
			return r;
	}
	if ((r = take_listen_fds(s)))
		return r;
	if (!s->nls) {
		for (i = 0; i < s->o.nlisten; i++)
			if ((r = bind_own(s, s->o.listen[i])))
				return r;
	} else if (s->o.nlisten && !from) {
		/* (a successor runs our command line again: --listen is expected there) */
		say(true, "using the %d socket(s) from LISTEN_FDS; --listen ignored", s->nls);
	}
	if (!s->nls) {
		say(true, "no listening socket: start me with LISTEN_FDS (baton run) or give --listen HOST:PORT");
		return -EINVAL;
	}
	if (ns && strlen(ns) >= 2 && strlen(ns) < sizeof(s->notify) - 1 && (ns[0] == '/' || ns[0] == '@'))
		snprintf(s->notify, sizeof(s->notify), "%s", ns);
	else if (ns)
		say(true, "ignoring NOTIFY_SOCKET=%s: not an absolute path or @abstract name", ns);
	/* many connections at once: as many fds as we are allowed */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigemptyset(&mask);
	sigaddset(&mask, s->o.stop_signal);
	if (s->o.upgrade_socket) {
		sigaddset(&mask, SIGUSR2);
		sigaddset(&mask, SIGCHLD);
	}
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->ep < 0 || s->sigfd < 0 || s->timerfd < 0)
		return -errno;
	e.data.ptr = &sig_ev;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sigfd, &e))
		return -errno;
	e.data.ptr = &timer_ev;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->timerfd, &e))
		return -errno;
	listeners_watch(s, true);
	if (s->o.upgrade_socket && (r = offer_open(s)))
		return r;
	for (i = 0; i < s->nls; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";

		if (!getsockname(s->ls[i].fd, (struct sockaddr *)&ss, &len))
			getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
				    NI_NUMERICHOST | NI_NUMERICSERV);
		say(false, "accepting on %s:%s (fd %d, %s), tag \"%s\"", host, port, s->ls[i].fd,
		    s->ls[i].name, s->o.tag);
	}
	/* the sockets are in our loop: the old process may stop accepting */
	if (s->handed_conn >= 0) {
		struct baton_handover_hdr h = baton_handover_hdr_make(BATON_HANDOVER_ACK, (uint32_t)s->nls, 0);

		r = baton_handover_send(s->handed_conn, &h, NULL, NULL, 0, now_ms() + 1000);
		close(s->handed_conn);
		s->handed_conn = -1;
		if (r) {
			say(true, "acknowledging the handover: %s", strerror(-r));
			return r;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct server s = { .o = { .tag = "refserver", .stop_signal = SIGTERM, .grace_ms = 10000 },
			    .ep = -1, .sigfd = -1, .timerfd = -1, .ready_at_ms = -1, .grace_end_ms = -1,
			    .last_call_ms = -1, .upfd = -1, .upconn = -1, .handed_conn = -1 };
	int r;

	g_pid = s.pid = getpid();
	s.argv = argv;
	r = parse_opts(argc, argv, &s.o);
	if (r >= 0)
		return r;
	g_quiet = s.o.quiet;
	if (setup(&s))
		return 1;
	if (s.o.crash_at_start) {
		say(true, "crashing at start as asked (--crash-at-start)");
		return 1;
	}
	if (!s.o.never_ready) {
		if (s.o.ready_delay_ms)
			s.ready_at_ms = now_ms() + s.o.ready_delay_ms;
		else
			send_ready(&s);
	}
	for (;;) {
		struct epoll_event ev[256];
		int n, i;

		if (s.stopping && s.nconns == 0)
			break;
		if (s.stopping && now_ms() >= s.grace_end_ms) {
			say(true, "grace time over with %d connection(s) left; exiting", s.nconns);
			break;
		}
		arm_timer(&s);
		n = epoll_wait(s.ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), -1);
		if (n < 0 && errno != EINTR) {
			say(true, "epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++) {
			enum kind k = *(enum kind *)ev[i].data.ptr;

			if (k == K_SIGNAL) {
				struct signalfd_siginfo si;

				while (read(s.sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (s.o.upgrade_socket && si.ssi_signo == SIGUSR2)
						start_successor(&s);
					else if (s.o.upgrade_socket && si.ssi_signo == SIGCHLD)
						reap(&s);
					else if (!s.stopping)
						begin_stop(&s, strsignal((int)si.ssi_signo));
				}
				/* the stop may have freed connections other events
				 * of this batch point at */
				break;
			} else if (k == K_TIMER) {
				on_timer(&s);
				break;	/* likewise: it may free connections */
			} else if (k == K_LISTEN) {
				do_accept(&s, ev[i].data.ptr);
			} else if (k == K_UPLISTEN) {
				if (s.upconn < 0 && s.upfd >= 0)
					offer_accept(&s);
			} else if (k == K_UPCONN) {
				if (s.upconn >= 0)
					offer_answer(&s);
				break;	/* an ACK starts the stop, which frees connections */
			} else {
				conn_event(&s, ev[i].data.ptr, ev[i].events);
			}
		}
	}
	say(false, "exiting after %llu answers", s.served);
	return 0;
}
