/* SPDX-License-Identifier: BSD-2-Clause */
/* The shim's idle handoff (listener option ?handoff=idle): a stopping
 * generation's close() of an idle keep-alive connection passes it to the
 * supervisor instead; the serving generation's accept() returns it.
 *
 * Which connections: only those accept()ed from a managed listener that
 * opted in ("born" fds, a static table indexed by fd). Every other fd goes
 * straight to the C library after one array lookup.
 *
 * Idle, decided against the kernel's own counters: the wrapped reads add
 * what they return to a count of bytes consumed (no system call), and each
 * write on a born fd notes that count as its mark (none either: asking the
 * kernel at every write cost three calls, a tenth of a keep-alive server's
 * requests per second). At close() the kernel is asked once how many bytes
 * the server has consumed (TCP_INFO's bytes_received minus SIOCINQ, the
 * unread rest): the connection is idle when that equals both the count and
 * the mark, i.e. the server has read nothing since its last answer (or
 * since accept). Bytes the client already sent and the server did not read
 * stay in the socket and go with it: that next request is exactly what the
 * new generation must answer. A read the shim never sees (io_uring,
 * recvmmsg, another process's copy) still moves the kernel's count past
 * ours, for good, so it can only make a connection look busy, never idle;
 * a write it never sees makes it look busy too. Both err towards a plain
 * close.
 *
 * When: only while the supervisor marks this generation draining (told to
 * stop while another one serves), in a file both map. An idle close in
 * normal operation is the server's business (its keep-alive timeout) and
 * must stay a close; a signal would need the shim to take over the
 * server's own handler, and asking the supervisor at every close would
 * cost a round trip. The map costs one load.
 *
 * The channel: a SOCK_SEQPACKET socket the supervisor made and this
 * generation inherited (BATON_HANDOFF names its fd). Only the supervisor
 * holds the other end, so nothing else can send this shim a connection or
 * receive one from it, and it needs no name anyone could take first.
 *
 * Waking the new generation: the supervisor queues the connection in the
 * serving generation's channel, then connects to the listener from an
 * address and port it writes into the map first; the connection is
 * steered to the serving generation's member like any other. The shim
 * there recognises it in accept() (the peer address it gets anyway),
 * takes the connection waiting in its channel (no round trip, never a
 * wait), closes the wake connection and returns the handed-off one. Why a
 * real connection: an event-driven server only calls accept() when its
 * listener is readable, and only the kernel can make it so; a server
 * blocked in accept() wakes the same way. Any process of the generation
 * (nginx's workers) may take it. If nothing waits, the wake connection
 * itself is returned: an empty connection the supervisor resets. Queued
 * in the generation, a connection also outlives a supervisor that dies
 * before the wake: the next one finds it there.
 *
 * accept(), close() and the writes may run in a forked child of a
 * threaded server: static memory and system calls only, no malloc. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "handoff_wire.h"
#include "shim.h"

#define MAX_FD 65536
#define F_SHARED 1      /* copied (dup, fork): closing this fd does not close the connection */
#define F_ADOPTED 2     /* handed to this generation: its answers are counted */
#define F_CLOSES 4      /* its last answer (HTTP) said the connection ends with it */
#define F_GIVEN 8       /* handed off at shutdown(): the close that follows only drops our copy */
#define F_NOBASE 16     /* the kernel's count at accept could not be read: never idle */
#define TCP_STATE_ESTABLISHED 1 /* include/net/tcp_states.h: not in the uapi headers */

static bool on;
static struct handoff_map *map;
static uint32_t my_gen, my_slot;
static struct handoff_env henv;     /* BATON_HANDOFF, parsed: which listeners opted in */
static int chan = -1;                /* the generation's end of its channel */
static int keep = -1;                /* the supervisor's end, kept for a restarted supervisor */
static int prev = -1;                /* the previous generation's, kept likewise */
static bool sealed;                 /* both made close-on-exec in this process */
static long long stuck_until;       /* a channel that stayed full: give up at once until then */
static int fd_high;                 /* highest born fd seen, bounds the walk after fork */

static uint8_t born[MAX_FD];        /* listener index + 1; 0: not a connection of ours */
static uint8_t fl[MAX_FD];
static uint64_t mark[MAX_FD];       /* bytes consumed as of the last write (or accept) */
static uint64_t seen[MAX_FD];       /* bytes consumed: the kernel's count at accept plus our reads */

static int (*real_close)(int);
static int (*real_shutdown)(int, int);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_sendfile)(int, int, off_t *, size_t);
static ssize_t (*real_sendfile64)(int, int, off64_t *, size_t);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t (*real___read_chk)(int, void *, size_t, size_t);
static ssize_t (*real___recv_chk)(int, void *, size_t, size_t, int);
static ssize_t (*real___recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);

/* ---- setup (at load time) ------------------------------------------------- */

static void resolve(void)
{
#define R(name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)
	R(close);
	R(shutdown);
	R(accept4);
	R(dup);
	R(dup2);
	R(dup3);
	R(write);
	R(writev);
	R(send);
	R(sendto);
	R(sendmsg);
	R(sendfile);
	R(sendfile64);
	R(read);
	R(recv);
	R(readv);
	R(recvfrom);
	R(recvmsg);
	R(__read_chk);
	R(__recv_chk);
	R(__recvfrom_chk);
#undef R
}

/* Before any other constructor of the shim: the wrappers below are live
 * from the moment the library is mapped, whatever the environment says. */
__attribute__((constructor(101))) static void handoff_resolve(void)
{
	resolve();
}

/* After fork, parent and child each hold the connection: neither one's
 * close ends it (a server that forks per connection closes the parent's
 * copy at once, while the child serves). Both sides are marked. */
static void after_fork(void)
{
	for (int fd = 0; fd <= fd_high && fd < MAX_FD; fd++)
		if (born[fd])
			fl[fd] |= F_SHARED;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether FD is the socket with inode INO (0: any), one end of a SOCK_SEQPACKET pair. */
static bool is_chan(int fd, uint64_t ino)
{
	struct stat st;
	int type;
	socklen_t tl = sizeof(type);

	return fd >= 0 && !fstat(fd, &st) && S_ISSOCK(st.st_mode) && (!ino || (uint64_t)st.st_ino == ino) &&
	       !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) && type == SOCK_SEQPACKET;
}

/* BATON_HANDOFF=v2;SLOT;L,L,...;FD;KEEPFD;PREVFD;MAP (supervisor/handoff.c writes it) */
void handoff_init(void)
{
	const char *env = getenv("BATON_HANDOFF"), *gen = getenv("BATON_GENERATION");
	struct handoff_env *he = &henv;
	struct handoff_map *hm;
	int fd;
	void *m;

	if (!env)
		return;
	if (!gen || !real_close || !real_accept4 || handoff_env_parse(env, nman, he)) {
		say("bad BATON_HANDOFF (want v2;SLOT;LISTENERS;FD;KEEPFD;PREVFD;MAP); idle handoff is off: ", env, NULL);
		return;
	}
	my_gen = (uint32_t)strtoul(gen, NULL, 10);
	my_slot = (uint32_t)he->slot;
	fd = open(he->map, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		say("cannot open the handoff map ", he->map, "; idle connections will be closed, not handed off");
		return;
	}
	m = mmap(NULL, sizeof(*map), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	real_close(fd);
	hm = m;
	if (m == MAP_FAILED || hm->magic != HANDOFF_MAGIC) {
		if (m != MAP_FAILED)
			munmap(m, sizeof(*map));
		say("the handoff map ", he->map, " is not baton's; idle connections will be closed, not handed off");
		return;
	}
	/* the fd must still be the channel it was given (a server that
	 * re-executed itself may have that number in use for something else) */
	if (!hm->chan[my_slot].ino[0] || !is_chan(he->fd, hm->chan[my_slot].ino[0])) {
		munmap(m, sizeof(*map));
		say("BATON_HANDOFF names no handoff channel of this generation; idle connections will be closed, "
		    "not handed off", NULL, NULL);
		return;
	}
	chan = he->fd;
	keep = he->keep >= 0 && is_chan(he->keep, hm->chan[my_slot].ino[1]) ? he->keep : -1;
	prev = he->prev;
	map = hm;
	pthread_atfork(NULL, after_fork, after_fork);
	on = true;
}

/* ---- the connection's state ------------------------------------------------- */

static int sys_close(int fd)
{
	return real_close ? real_close(fd) : (int)syscall(SYS_close, fd);
}

static int bytes_received(int fd, struct tcp_info *ti)
{
	/* no more than we read: the kernel copies what is asked for */
	socklen_t want = offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti->tcpi_bytes_received), len = want;

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) || len < want ? -1 : 0;
}

/* Bytes the server has consumed (received minus still unread), and the TCP
 * state. The two counts come from two calls: bytes that arrive between
 * them (the client's next request, sent the moment our answer reached it)
 * would be counted in one and not the other, so a connection the server
 * has not read from would look read (its idle close became a real close,
 * or its mark after an answer was off by that request). The unread count
 * is taken between two reads of the received count, and only a pair in
 * which nothing arrived is used. */
static int consumed(int fd, uint64_t *bytes, uint8_t *state)
{
	struct tcp_info a, b;
	int inq;

	for (int tries = 0; tries < 8; tries++) {
		if (bytes_received(fd, &a) || ioctl(fd, SIOCINQ, &inq) || inq < 0 || bytes_received(fd, &b))
			return -1;
		if (a.tcpi_bytes_received == b.tcpi_bytes_received) {
			*bytes = a.tcpi_bytes_received - (uint64_t)inq;
			*state = b.tcpi_state;
			return 0;
		}
	}
	return -1;	/* data keeps coming: not idle, which errs towards a plain close */
}

static inline bool is_born(int fd)
{
	return on && fd >= 0 && fd < MAX_FD && born[fd];
}

static void forget(int fd)
{
	if (fd >= 0 && fd < MAX_FD) {
		born[fd] = 0;
		fl[fd] = 0;
	}
}

/* Whether the line at P (N bytes, no CRLF) is header NAME, and its value. */
static bool header(const char *p, size_t n, const char *name, const char **val, size_t *vlen)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(p, name, k) || p[k] != ':')
		return false;
	*val = p + k + 1;
	*vlen = n - k - 1;
	return true;
}

static bool has(const char *v, size_t n, const char *word)
{
	size_t k = strlen(word);

	for (size_t i = 0; i + k <= n; i++)
		if (!strncasecmp(v + i, word, k))
			return true;
	return false;
}

/* Whether an answer that starts with these N bytes ends its connection: an
 * HTTP/1.x answer with "Connection: close", an HTTP/1.0 one without
 * keep-alive, or a body that only the close delimits. Its client then
 * waits for that close, or sends nothing more: handing the connection over
 * would leave it to wait on a generation that waits too. Not HTTP: false,
 * idle is decided by the byte counts alone. */
static bool answer_closes(const char *p, size_t n)
{
	bool v10, ka = false, close = false, framed = false;
	const char *line, *end, *v;
	size_t vl;

	if (n < 12 || (memcmp(p, "HTTP/1.1 ", 9) && memcmp(p, "HTTP/1.0 ", 9)))
		return false;
	v10 = p[7] == '0';
	/* no body: 1xx, 204, 304 */
	framed = p[9] == '1' || !memcmp(p + 9, "204", 3) || !memcmp(p + 9, "304", 3);
	for (line = memchr(p, '\n', n); line && (size_t)(line - p) + 1 < n; line = end) {
		line++;
		end = memchr(line, '\n', n - (size_t)(line - p));
		if (!end)
			return true;	/* the header goes on in a later write: unknown, so not idle */
		vl = (size_t)(end - line);
		if (vl && line[vl - 1] == '\r')
			vl--;
		if (!vl)
			return close || (v10 && !ka) || !framed;
		size_t ll = vl;

		if (header(line, ll, "connection", &v, &vl)) {
			close |= has(v, vl, "close");
			ka |= has(v, vl, "keep-alive");
		} else if (header(line, ll, "content-length", &v, &vl) ||
			   (header(line, ll, "transfer-encoding", &v, &vl) && has(v, vl, "chunked"))) {
			framed = true;
		}
	}
	return true;
}

/* After a write on a born fd: that is an answer to everything consumed so
 * far. HEAD, HLEN: the start of what was written. */
static void wrote(int fd, ssize_t r, const void *head, size_t hlen)
{
	uint64_t c = seen[fd];

	if (r <= 0)
		return;
	if (c != mark[fd]) {	/* the first write after new input: an answer begins */
		if ((fl[fd] & F_ADOPTED) && my_slot < HANDOFF_GENS)
			__atomic_fetch_add(&map->answered[my_slot], 1, __ATOMIC_RELAXED);
		fl[fd] = (uint8_t)((fl[fd] & ~F_CLOSES) |
				   (head && answer_closes(head, hlen < (size_t)r ? hlen : (size_t)r) ? F_CLOSES : 0));
	}
	mark[fd] = c;
}

/* What every wrapped write does after the real call: note it on a
 * connection born of a managed listener, leaving errno as the call set it. */
static void after_write(int fd, ssize_t r, const void *head, size_t hlen)
{
	int saved = errno;

	if (is_born(fd))
		wrote(fd, r, head, hlen);
	errno = saved;
}

/* ---- old generation: close ------------------------------------------------- */

static bool draining(void)
{
	return map && __atomic_load_n(&map->draining[my_slot], __ATOMIC_RELAXED) == my_gen;
}

static bool idle(int fd)
{
	struct linger lg;
	socklen_t ll = sizeof(lg);
	uint64_t c;
	uint8_t st;

	if (fl[fd] & (F_SHARED | F_CLOSES | F_NOBASE) || seen[fd] != mark[fd])
		return false;
	/* the kernel's count equal to ours: no read went past the wrappers */
	if (consumed(fd, &c, &st) || st != TCP_STATE_ESTABLISHED || c != seen[fd])
		return false;
	/* linger 0 asks for a reset: that is not an idle close */
	return !(!getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &ll) && lg.l_onoff && !lg.l_linger);
}

/* Sends M (with FD, or none) on the channel. A full channel (a supervisor
 * that is behind, or one that died: the queue waits for the next) gets
 * WAIT_MS once; one that stays full is not waited for again for a while:
 * the server's close() must not stall. 0: sent. */
static int chan_send(const struct handoff_msg *m, int fd, int wait_ms)
{
	struct iovec iov;
	union handoff_cbuf u;
	struct msghdr mh;

	handoff_msghdr(&mh, &iov, &u, m, fd);
	for (int tries = 0; tries < 2; tries++) {
		struct pollfd p = { .fd = chan, .events = POLLOUT };
		ssize_t r = real_sendmsg ? real_sendmsg(chan, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)
					 : syscall(SYS_sendmsg, chan, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r == (ssize_t)sizeof(*m))
			return 0;
		if (r >= 0 || errno != EAGAIN || tries || now_ms() < stuck_until)
			break;
		if (poll(&p, 1, wait_ms) != 1) {
			stuck_until = now_ms() + 1000;
			break;
		}
	}
	return -1;
}

/* The connection to the supervisor. 0: it has it now. */
static int give(int fd, int listener)
{
	return chan_send(&(struct handoff_msg){ .op = HANDOFF_GIVE, .listener = (uint32_t)listener, .gen = my_gen },
			 fd, 100);
}

EXPORT int close(int fd)
{
	if (is_born(fd)) {
		int listener = born[fd] - 1, saved = errno;

		if (fl[fd] & F_GIVEN) {
			forget(fd);	/* the supervisor has it: this closes our copy only */
			errno = saved;
			return sys_close(fd);
		}
		if (draining() && idle(fd)) {
			if (!give(fd, listener)) {
				forget(fd);
				sys_close(fd);
				errno = saved;
				return 0;
			}
			__atomic_fetch_add(&map->unreachable, 1, __ATOMIC_RELAXED);
		}
		forget(fd);
		errno = saved;
	}
	return sys_close(fd);
}

/* HAProxy ends an idle client connection with shutdown(SHUT_WR) and then
 * close(): by the time of the close the client has its FIN. So the
 * handoff happens at the shutdown: the connection goes to the supervisor,
 * the shutdown is not done (it would reach the client through the copy),
 * and the close that follows closes this process's copy only. */
EXPORT int shutdown(int fd, int how)
{
	if (is_born(fd) && (fl[fd] & F_GIVEN))
		return 0;	/* not ours to end any more */
	if (is_born(fd) && (how == SHUT_WR || how == SHUT_RDWR)) {
		int saved = errno;

		if (draining() && idle(fd)) {
			if (!give(fd, born[fd] - 1)) {
				fl[fd] |= F_GIVEN;
				errno = saved;
				return 0;
			}
			__atomic_fetch_add(&map->unreachable, 1, __ATOMIC_RELAXED);
		}
		errno = saved;
	}
	return real_shutdown ? real_shutdown(fd, how) : (int)syscall(SYS_shutdown, fd, how);
}

/* ---- new generation: accept ------------------------------------------------- */

/* The opted-in managed listener FD is (its index), or -1. */
static int listener_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		return -1;
	for (int i = 0; i < nman; i++)
		if (handoff_env_opted(&henv, i) && man[i].ino == st.st_ino && man[i].dev == st.st_dev)
			return i;
	return -1;
}

/* The token of the wake connection whose source is SS, or 0. */
static uint32_t wake_token(const struct sockaddr_storage *ss)
{
	const uint8_t *a;
	uint16_t port;
	size_t alen;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		a = (const uint8_t *)&in->sin_addr;
		port = in->sin_port;
		alen = 4;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		a = (const uint8_t *)&in6->sin6_addr;
		port = in6->sin6_port;
		alen = 16;
	} else {
		return 0;
	}
	for (int i = 0; i < HANDOFF_WAKES; i++) {
		struct handoff_wake *w = &map->wake[i];
		uint32_t t = __atomic_load_n(&w->token, __ATOMIC_ACQUIRE);

		if (t && w->port == port && w->family == ss->ss_family && !memcmp(w->addr, a, alen) &&
		    __atomic_load_n(&w->token, __ATOMIC_ACQUIRE) == t)
			return t;
	}
	return 0;
}

/* The connection waiting in this generation's channel for LISTENER, or
 * -1: never waits. Only the supervisor writes into the channel. One of
 * another listener (several opted in) is given back; which connection
 * answers which wake does not matter, each wake has one waiting. */
static int take(int listener)
{
	for (int tries = 0; tries < 8; tries++) {
		struct handoff_msg m;
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(4 * sizeof(int))];
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };
		int got, nfd;
		ssize_t n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

		if (n < 0)
			return -1;
		got = handoff_cmsg_fd(&mh, sys_close, &nfd);
		if (handoff_msg_check(&m, (long)n, nfd, (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0,
				      1u << HANDOFF_CONN)) {
			if (got >= 0)
				sys_close(got);
			continue;
		}
		if (m.listener == (uint32_t)listener) {
			m.op = HANDOFF_TOOK;
			chan_send(&m, -1, 0);
			return got;
		}
		m.op = HANDOFF_BACK;
		if (chan_send(&m, got, 50))
			__atomic_fetch_add(&map->take_failed, 1, __ATOMIC_RELAXED);
		sys_close(got);
	}
	return -1;
}

static int do_accept(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int listener, c, saved;
	uint64_t bytes = 0;
	uint8_t st;

	if (!real_accept4)
		return (int)syscall(SYS_accept4, fd, addr, alen, flags);
	if (!on || (listener = listener_of(fd)) < 0)
		return real_accept4(fd, addr, alen, flags);
	/* this process serves: programs it runs (CGI, system()) get neither
	 * end of the channel. Not at load time: a wrapper (sh -c, setpriv)
	 * must pass both on to the server it executes. */
	if (!sealed) {
		fcntl(chan, F_SETFD, FD_CLOEXEC);
		if (keep >= 0)
			fcntl(keep, F_SETFD, FD_CLOEXEC);
		if (prev >= 0 && is_chan(prev, 0))
			fcntl(prev, F_SETFD, FD_CLOEXEC);
		sealed = true;
	}
	c = real_accept4(fd, (struct sockaddr *)&ss, &sl, flags);
	if (c < 0)
		return c;
	saved = errno;
	if (__atomic_load_n(&map->nwake, __ATOMIC_RELAXED) && wake_token(&ss)) {
		int h = take(listener);

		if (h >= 0) {
			int fdfl = fcntl(h, F_GETFL);

			/* what accept4 would have set on a new connection */
			if (fdfl >= 0)
				fcntl(h, F_SETFL, (flags & SOCK_NONBLOCK) ? fdfl | O_NONBLOCK : fdfl & ~O_NONBLOCK);
			if (!(flags & SOCK_CLOEXEC))
				fcntl(h, F_SETFD, 0);
			sys_close(c);
			c = h;
			sl = sizeof(ss);
			if (getpeername(c, (struct sockaddr *)&ss, &sl))
				sl = 0;
			if (c < MAX_FD)
				fl[c] = F_ADOPTED;
		} else {
			__atomic_fetch_add(&map->take_failed, 1, __ATOMIC_RELAXED);
		}
	}
	if (c < MAX_FD) {
		if (!(fl[c] & F_ADOPTED))
			fl[c] = 0;
		born[c] = (uint8_t)(listener + 1);
		/* a new connection is at a request boundary with nothing
		 * consumed; an adopted one at the boundary where the old
		 * generation let it go, after what that one consumed */
		if ((fl[c] & F_ADOPTED) && consumed(c, &bytes, &st))
			fl[c] |= F_NOBASE;
		mark[c] = seen[c] = bytes;
		if (c > fd_high)
			fd_high = c;
	}
	if (addr && alen) {
		memcpy(addr, &ss, *alen < sl ? *alen : sl);
		*alen = sl;
	}
	errno = saved;
	return c;
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	return do_accept(fd, addr, alen, 0);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	return do_accept(fd, addr, alen, flags);
}

/* ---- fds that move ------------------------------------------------------------ */

EXPORT int dup(int fd)
{
	int r = real_dup ? real_dup(fd) : (int)syscall(SYS_dup, fd);

	if (r >= 0 && is_born(fd))
		fl[fd] |= F_SHARED;
	return r;
}

EXPORT int dup3(int old, int new, int flags)
{
	int r;

	if (old != new && is_born(new))
		forget(new);	/* dup3 closes it: not a close the server asked to hand off */
	r = real_dup3 ? real_dup3(old, new, flags) : (int)syscall(SYS_dup3, old, new, flags);
	if (r >= 0 && is_born(old))
		fl[old] |= F_SHARED;
	return r;
}

EXPORT int dup2(int old, int new)
{
	int r;

	if (old != new && is_born(new))
		forget(new);
	r = real_dup2 ? real_dup2(old, new) : (int)syscall(SYS_dup2, old, new);
	if (r >= 0 && old != new && is_born(old))
		fl[old] |= F_SHARED;
	return r;
}

/* ---- reads of a connection handed off at shutdown() ------------------------ */

/* After a handoff at shutdown() the server may read on until the client
 * closes (Apache's lingering close): it would eat the client's next
 * request, which is the new generation's now. Such a read sees the end of
 * the stream at once. Every other fd: one array lookup. */
static inline bool given(int fd)
{
	return is_born(fd) && (fl[fd] & F_GIVEN);
}

/* What every wrapped read does after the real call: count what a born
 * connection's server consumed (a peek consumes nothing). Unsynchronised:
 * two threads reading one connection at once can only lose a count, which
 * makes it look busy at close, never idle. */
static inline ssize_t after_read(int fd, ssize_t r, int flags)
{
	if (r > 0 && !(flags & MSG_PEEK) && is_born(fd))
		seen[fd] += (uint64_t)r;
	return r;
}

EXPORT ssize_t read(int fd, void *buf, size_t len)
{
	if (given(fd))
		return 0;
	return after_read(fd, real_read ? real_read(fd, buf, len) : syscall(SYS_read, fd, buf, len), 0);
}

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	if (given(fd))
		return 0;
	return after_read(fd, real_recv ? real_recv(fd, buf, len, flags)
					: syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL), flags);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	if (given(fd))
		return 0;
	return after_read(fd, real_readv ? real_readv(fd, iov, n) : syscall(SYS_readv, fd, iov, n), 0);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	if (given(fd))
		return 0;
	return after_read(fd, real_recvfrom ? real_recvfrom(fd, buf, len, flags, from, fromlen)
					    : syscall(SYS_recvfrom, fd, buf, len, flags, from, fromlen), flags);
}

/* A server built with _FORTIFY_SOURCE reads into a buffer of known size
 * through these: a read we did not count would make every connection look
 * busy. Without the C library's checked call (none found) the plain call
 * does the read, unchecked as the server would be without fortify. */
EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (given(fd))
		return 0;
	return after_read(fd, real___read_chk ? real___read_chk(fd, buf, len, buflen)
					      : syscall(SYS_read, fd, buf, len), 0);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (given(fd))
		return 0;
	return after_read(fd, real___recv_chk ? real___recv_chk(fd, buf, len, buflen, flags)
					      : syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL), flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *from,
			      socklen_t *fromlen)
{
	if (given(fd))
		return 0;
	return after_read(fd, real___recvfrom_chk
				      ? real___recvfrom_chk(fd, buf, len, buflen, flags, from, fromlen)
				      : syscall(SYS_recvfrom, fd, buf, len, flags, from, fromlen), flags);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *mh, int flags)
{
	if (given(fd))
		return 0;
	return after_read(fd, real_recvmsg ? real_recvmsg(fd, mh, flags) : syscall(SYS_recvmsg, fd, mh, flags),
			  flags);
}

/* ---- writes: where answers happen ----------------------------------------------- */

EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	ssize_t r = real_write ? real_write(fd, buf, len) : syscall(SYS_write, fd, buf, len);

	after_write(fd, r, buf, len);
	return r;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	ssize_t r = real_writev ? real_writev(fd, iov, n) : syscall(SYS_writev, fd, iov, n);

	after_write(fd, r, n > 0 ? iov[0].iov_base : NULL, n > 0 ? iov[0].iov_len : 0);
	return r;
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	ssize_t r = real_send ? real_send(fd, buf, len, flags) : syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);

	after_write(fd, r, buf, len);
	return r;
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tl)
{
	ssize_t r = real_sendto ? real_sendto(fd, buf, len, flags, to, tl)
				: syscall(SYS_sendto, fd, buf, len, flags, to, tl);

	after_write(fd, r, buf, len);
	return r;
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *mh, int flags)
{
	ssize_t r = real_sendmsg ? real_sendmsg(fd, mh, flags) : syscall(SYS_sendmsg, fd, mh, flags);

	after_write(fd, r, mh && mh->msg_iovlen ? mh->msg_iov[0].iov_base : NULL,
		    mh && mh->msg_iovlen ? mh->msg_iov[0].iov_len : 0);
	return r;
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t len)
{
	ssize_t r = real_sendfile ? real_sendfile(out, in, off, len) : syscall(SYS_sendfile, out, in, off, len);

	after_write(out, r, NULL, 0);
	return r;
}

EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t len)
{
	ssize_t r = real_sendfile64 ? real_sendfile64(out, in, off, len) : syscall(SYS_sendfile, out, in, off, len);

	after_write(out, r, NULL, 0);
	return r;
}
