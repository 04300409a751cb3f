/* SPDX-License-Identifier: BSD-2-Clause */
/* libbaton-preload.so: lets a server that creates, binds and listens on its
 * own socket run unchanged under `baton run`. bind() to an address baton
 * manages puts the generation's member socket on the server's fd number.
 *
 * Why substitution (dup3) and not "join the group with the server's own
 * SO_REUSEPORT socket": the member already sits in the steered group with its
 * slot, queue and backlog; the supervisor needs no message from the server to
 * steer, fence or migrate it; nothing changes for forked workers (they
 * inherit the fd) or for a server that execs itself (the member fds stay
 * open, named by BATON_PRELOAD). The server's own socket would need an fd
 * pass back to the supervisor before it could take a single connection.
 *
 * Contract with the supervisor, in the environment:
 *   BATON_PRELOAD=v1;tcp:127.0.0.1:8080=3;tcp:[::]:8443=4;udp:0.0.0.0:53=5
 *   BATON_PRELOAD=v1fd:N   the same text in the sealed memfd N, for maps too
 *                        large for one environment string (128 KiB)
 *   NOTIFY_SOCKET=PATH   the shim sends "BATON_LISTENING=1" there the first
 *                        time the process calls listen() on a member.
 * Anything malformed: the shim does nothing and says so once on stderr.
 *
 * bind() and listen() may run in a forked child of a threaded server, so
 * their paths use only system calls and memory allocated at load time: no
 * malloc, no stdio. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_listen)(int, int);

struct managed *man;
int nman;
static bool enabled;
/* substituted fds, for listen(): every member may be bound on more than
 * one fd (a server that binds, closes and binds again), so twice as many
 * as members plus MAX_TRACKED, allocated at load time */
static struct tracked { int fd; ino_t ino; } *tracked;
static int ntracked;
static bool reported;       /* inherited by forked workers: one report per exec */
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static bool said_mismatch, said_stale, said_full;
static int map_fd = -1;     /* the memfd of "v1fd:FD", if that is how the map came */
static ino_t map_ino;

/* ---- async-signal-safe output ------------------------------------------- */

void say(const char *a, const char *b, const char *c)
{
	char line[512];
	size_t n = 0;
	const char *parts[] = { "libbaton-preload: ", a, b, c, "\n" };

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		for (const char *p = parts[i]; p && *p && n < sizeof(line) - 2; p++)
			line[n++] = *p;
	if (line[n - 1] != '\n')
		line[n++] = '\n';
	while (write(2, line, n) < 0 && errno == EINTR)
		;
}

/* ---- parsing BATON_PRELOAD (at load time, before main) --------------------- */

/* A program the server ran (system(), a CGI): LISTEN_PID names the server,
 * and FD, one of baton's, is closed here because the server kept it from
 * its children (close-on-exec), as it should: nothing to say. */
static bool quiet_child(int fd)
{
	const char *lp = getenv("LISTEN_PID");

	return lp && strtol(lp, NULL, 10) != (long)getpid() && fcntl(fd, F_GETFD) < 0;
}

/* The map of "v1fd:FD": a sealed memfd baton run passed, read whole. It
 * stays open (a wrapper, sh -c 'exec server', passes it on to the server)
 * until the server binds: then it is close-on-exec with the members. A
 * number that names anything else (a program the server ran, where the fd
 * is long gone and reused) is refused: only a memfd carries seals. NULL:
 * said why. */
static char *read_memfd_map(const char *num)
{
	char *end, *text;
	long v = strtol(num, &end, 10);
	struct stat st;
	size_t got = 0;
	int fd;

	if (*end || end == num || v < 3 || v > 65535) {
		say("bad BATON_PRELOAD (want v1;ENTRIES or v1fd:FD); doing nothing: v1fd:", num, NULL);
		return NULL;
	}
	fd = (int)v;
	if (quiet_child(fd))
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || fcntl(fd, F_GET_SEALS) < 0 ||
	    !(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE) || st.st_size <= 0 || st.st_size > PRELOAD_MAP_MAX) {
		say("the fd of BATON_PRELOAD=v1fd:", num, " is not baton's sealed map (closed by a parent?); doing nothing");
		return NULL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		say("no memory for BATON_PRELOAD's map; doing nothing", NULL, NULL);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, text + got, (size_t)st.st_size - got, (off_t)got);

		if (n <= 0 && !(n < 0 && errno == EINTR)) {
			free(text);
			say("cannot read BATON_PRELOAD's map; doing nothing", NULL, NULL);
			return NULL;
		}
		if (n > 0)
			got += (size_t)n;
	}
	text[got] = '\0';
	map_fd = fd;
	map_ino = st.st_ino;
	return text;
}

/* M from the parsed entry PE, once its fd is checked: it must be the
 * inherited socket of that type, or this environment is not for us (false,
 * said why unless quiet_child). */
static bool take_entry(struct managed *m, const struct preload_entry *pe)
{
	struct stat st;
	int type;
	socklen_t len = sizeof(type);

	m->e = *pe;
	if (fstat(m->e.fd, &st) || !S_ISSOCK(st.st_mode) ||
	    getsockopt(m->e.fd, SOL_SOCKET, SO_TYPE, &type, &len) || type != m->e.type) {
		char fdnum[16];
		size_t k = sizeof(fdnum) - 1;

		if (quiet_child(m->e.fd))
			return false;
		fdnum[k] = '\0';
		for (int v = m->e.fd; v && k; v /= 10)
			fdnum[--k] = (char)('0' + v % 10);
		say("an fd in BATON_PRELOAD is not an inherited socket of its type "
		    "(closed by a parent?); doing nothing: fd ", fdnum + k, NULL);
		return false;
	}
	m->ino = st.st_ino;
	m->dev = st.st_dev;
	return true;
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *env = getenv("BATON_PRELOAD"), *ns = getenv("NOTIFY_SOCKET");
	struct preload_entry *pe = NULL;
	char *text = NULL, bad[256];
	int n, i;

	real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
	real_listen = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
	if (!real_bind || !real_listen) {
		say("cannot find bind() and listen() in the C library; doing nothing", NULL, NULL);
		return;
	}
	if (!env) {
		say("loaded without BATON_PRELOAD (not started by baton run?); doing nothing", NULL, NULL);
		return;
	}
	if (!strncmp(env, "v1fd:", 5))
		text = read_memfd_map(env + 5);
	else if (!strncmp(env, "v1;", 3))
		text = strdup(env);
	else
		say("BATON_PRELOAD is not version v1; doing nothing: ", env, NULL);
	if (!text)
		goto out;
	n = preload_map_count(text);
	pe = n > 0 && n <= MAX_MANAGED ? calloc((size_t)n, sizeof(*pe)) : NULL;
	man = pe ? calloc((size_t)n, sizeof(*man)) : NULL;
	if (n <= 0) {
		say("BATON_PRELOAD names no address; doing nothing", NULL, NULL);
		goto out;
	}
	if (n > MAX_MANAGED) {
		say("BATON_PRELOAD names more addresses than the shim manages (4096); doing nothing", NULL, NULL);
		goto out;
	}
	if (!man) {
		say("no memory for BATON_PRELOAD's entries; doing nothing", NULL, NULL);
		goto out;
	}
	n = preload_map_parse(text, pe, n, bad, sizeof(bad));
	if (n <= 0) {
		say(n == 0 ? "BATON_PRELOAD names no address; doing nothing"
			   : "bad entry in BATON_PRELOAD (want tcp:HOST:PORT=FD); doing nothing: ", bad, NULL);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!take_entry(&man[i], &pe[i]))
			goto out;
	tracked = calloc((size_t)n * 2 + MAX_TRACKED, sizeof(*tracked));
	if (!tracked) {
		say("no memory for BATON_PRELOAD's entries; doing nothing", NULL, NULL);
		goto out;
	}
	ntracked = n * 2 + MAX_TRACKED;
	nman = n;
	free(pe);
	free(text);
	if (ns && *ns && strlen(ns) < sizeof(notify_addr.sun_path)) {
		size_t len = strlen(ns);

		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, ns, len);
		if (ns[0] == '@')
			notify_addr.sun_path[0] = '\0';
		notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	enabled = true;
	handoff_init();
	return;
out:
	free(pe);
	free(man);
	man = NULL;
	free(text);
}

/* ---- matching ---------------------------------------------------------- */

/* The managed entry for ADDR on a socket of TYPE, or -1. Same port and
 * family, and the same address, or a wildcard on either side: the server's
 * config and baton's --listen name the same port; baton's address wins (a
 * line on stderr says so once). An IPv4-mapped IPv6 address matches the IPv4
 * entry only if the socket is AF_INET6 bound to the mapped address: then the
 * member (AF_INET) replaces it, which a server that reads sockaddr_storage
 * handles. */
static int match(const struct sockaddr *sa, socklen_t len, int type, bool *exact)
{
	unsigned char a[16];
	int family;
	bool any;
	uint16_t port;

	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		family = AF_INET;
		memcpy(a, &in->sin_addr, 4);
		port = ntohs(in->sin_port);
		any = in->sin_addr.s_addr == htonl(INADDR_ANY);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			family = AF_INET;
			memcpy(a, &in6->sin6_addr.s6_addr[12], 4);
			any = !memcmp(a, "\0\0\0\0", 4);
		} else {
			family = AF_INET6;
			memcpy(a, &in6->sin6_addr, 16);
			any = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
		}
	} else {
		return -1;
	}
	if (!port)
		return -1;
	for (int i = 0; i < nman; i++) {
		const struct managed *m = &man[i];

		if (m->e.type != type || m->e.family != family || m->e.port != port)
			continue;
		*exact = !memcmp(m->e.addr, a, family == AF_INET ? 4 : 16);
		if (*exact || m->e.any || any)
			return i;
	}
	return -1;
}

static int tracked_index(int fd)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st))
		return -1;
	for (int i = 0; i < ntracked; i++)
		if (tracked[i].fd == fd + 1 && tracked[i].ino == st.st_ino)
			return i;
	return -1;
}

static void track(int fd, ino_t ino)
{
	int free_i = -1;
	struct stat st;

	for (int i = 0; i < ntracked; i++) {
		/* an entry whose fd was closed or now holds something else is free */
		if (!tracked[i].fd || tracked[i].fd == fd + 1 || fstat(tracked[i].fd - 1, &st) ||
		    st.st_ino != tracked[i].ino) {
			free_i = i;
			break;
		}
	}
	if (free_i < 0) {
		if (!said_full)
			say("more substituted sockets than twice the members; listen() reports may be missed", NULL, NULL);
		said_full = true;
		return;
	}
	tracked[free_i].fd = fd + 1;	/* 0 means free */
	tracked[free_i].ino = ino;
}

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* Options a server commonly sets before bind() that matter on a listener;
 * those set after bind() land on the member anyway, it being the same fd.
 * UDP servers (QUIC stacks) ask before bind for the local address and ECN
 * of each datagram (PKTINFO, RECVTOS), for path MTU discovery, and GRO:
 * without them on the member, ngtcp2's server cannot answer at all. */
static void copy_options(int from, int to)
{
	static const struct { int level, name; bool halve; } opts[] = {
		{ SOL_SOCKET, SO_RCVBUF, true },  { SOL_SOCKET, SO_SNDBUF, true },
		{ SOL_SOCKET, SO_KEEPALIVE, false }, { IPPROTO_TCP, TCP_NODELAY, false },
		{ IPPROTO_TCP, TCP_DEFER_ACCEPT, false }, { IPPROTO_TCP, TCP_KEEPIDLE, false },
		{ IPPROTO_TCP, TCP_KEEPINTVL, false }, { IPPROTO_TCP, TCP_KEEPCNT, false },
		{ IPPROTO_TCP, TCP_FASTOPEN, false },
		{ IPPROTO_IP, IP_PKTINFO, false }, { IPPROTO_IPV6, IPV6_RECVPKTINFO, false },
		{ IPPROTO_IP, IP_RECVTOS, false }, { IPPROTO_IPV6, IPV6_RECVTCLASS, false },
		{ IPPROTO_IP, IP_MTU_DISCOVER, false }, { IPPROTO_IPV6, IPV6_MTU_DISCOVER, false },
		{ IPPROTO_IP, IP_RECVERR, false }, { IPPROTO_IPV6, IPV6_RECVERR, false },
		{ IPPROTO_IP, IP_TOS, false }, { IPPROTO_IPV6, IPV6_TCLASS, false },
		{ IPPROTO_UDP, UDP_GRO, false },
	};

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		int a, b;
		socklen_t la = sizeof(a), lb = sizeof(b);

		if (getsockopt(from, opts[i].level, opts[i].name, &a, &la) ||
		    getsockopt(to, opts[i].level, opts[i].name, &b, &lb) || a == b)
			continue;
		if (opts[i].halve)
			a /= 2;	/* the kernel reports buffers doubled and doubles what it is given */
		setsockopt(to, opts[i].level, opts[i].name, &a, sizeof(a));
	}
}

/* The members baton passed stay open as the shim's copies (a server that
 * binds twice, or a worker that binds after the master, gets them again),
 * but no program the server runs (system(), popen(), a CGI) may inherit a
 * listening socket of baton's and accept the server's clients. Not at load
 * time: a wrapper (sh -c 'exec server') must pass them on; once the
 * server substitutes a bind, it is the server, and they are its alone. */
static void keep_from_children(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	for (int i = -1; i < nman; i++) {
		int fd = i < 0 ? map_fd : man[i].e.fd;
		ino_t ino = i < 0 ? map_ino : man[i].ino;
		struct stat st;
		int f = fd < 0 ? -1 : fcntl(fd, F_GETFD);

		/* only our copy: a number the server reused is the server's */
		if (f >= 0 && !(f & FD_CLOEXEC) && !fstat(fd, &st) && st.st_ino == ino &&
		    (i < 0 || st.st_dev == man[i].dev))
			fcntl(fd, F_SETFD, f | FD_CLOEXEC);
	}
}

EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	int saved = errno, i, type, fdfl, fl;
	socklen_t tl = sizeof(type);
	bool exact = false;
	struct stat st;
	struct managed *m;

	if (!real_bind) {	/* called before our constructor: resolve now */
		real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
		if (!real_bind) {
			errno = ENOSYS;
			return -1;
		}
	}
	if (!enabled || !sa || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) ||
	    (i = match(sa, len, type, &exact)) < 0) {
		errno = saved;
		return real_bind(fd, sa, len);
	}
	m = &man[i];
	if (fstat(m->e.fd, &st) || st.st_ino != m->ino || st.st_dev != m->dev || fd == m->e.fd) {
		if (!said_stale)
			say("the member socket baton passed is no longer open (did the server close inherited "
			    "fds?); binding the server's own socket instead", NULL, NULL);
		said_stale = true;
		errno = saved;
		return real_bind(fd, sa, len);
	}
	if (!exact && !said_mismatch) {
		say("the server binds another address than baton's --listen on the same port; "
		    "it serves baton's", NULL, NULL);
		said_mismatch = true;
	}
	fdfl = fcntl(fd, F_GETFD);
	fl = fcntl(fd, F_GETFL);
	if (fdfl < 0 || fl < 0)
		return -1;
	copy_options(fd, m->e.fd);
	/* the server's fd keeps the server's close-on-exec choice */
	if (dup3(m->e.fd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
		return -1;
	keep_from_children();
	/* O_NONBLOCK lives on the open file, shared with the member: the server's
	 * choice wins, as it would have on its own socket */
	fcntl(fd, F_SETFL, (fcntl(fd, F_GETFL) & ~O_NONBLOCK) | (fl & O_NONBLOCK));
	track(fd, m->ino);
	errno = saved;
	return 0;
}

static void report_listening(void)
{
	static const char msg[] = "BATON_LISTENING=1";
	int s;

	if (reported || !notify_len)
		return;
	reported = true;
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	if (sendto(s, msg, sizeof(msg) - 1, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_len) < 0)
		say("cannot report to NOTIFY_SOCKET that the server listens", NULL, NULL);
	close(s);
}

EXPORT int listen(int fd, int backlog)
{
	int saved = errno, r;

	if (!real_listen) {
		real_listen = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
		if (!real_listen) {
			errno = ENOSYS;
			return -1;
		}
	}
	if (!enabled || tracked_index(fd) < 0)
		return real_listen(fd, backlog);
	/* the member's backlog is baton's --listen backlog; a server's small
	 * default (python's socketserver asks for 5) must not shrink the queue
	 * that holds connections while generations change */
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);

	if (!getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) && (int)ti.tcpi_sacked > backlog)
		backlog = (int)ti.tcpi_sacked;
	errno = saved;
	r = real_listen(fd, backlog);
	if (!r) {
		report_listening();
		errno = saved;
	}
	return r;
}
