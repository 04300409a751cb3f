/* SPDX-License-Identifier: BSD-2-Clause */
/* Idle keep-alive connections handed from a stopping generation to the
 * serving one (listeners with ?handoff=idle; the shim's half is in
 * preload/handoff.c, where the design is explained). Here: each
 * generation's channel, the map both read, the wake connection that makes
 * the serving generation call accept(), and the counters `baton status`
 * shows.
 *
 * The channel is a SOCK_SEQPACKET socketpair made before the generation
 * starts; it inherits one end (and keeps a copy of ours). Nobody else can
 * reach it: no name to squat or flood, and a message's channel says which
 * generation sent it, whichever of its processes did and whether that
 * process still lives. Because the generation holds both ends, a
 * supervisor that dies or re-executes (`baton upgrade`) leaves the queues
 * where they are, and the next one takes both ends back with pidfd_getfd.
 * A connection in flight waits in the serving generation's own channel,
 * not in this process. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include "handoff_wire.h"

#include "core.h"
#include "handoff.h"
#include "handoff_chan.h"
#include "statusview.h"
#include "util.h"

#define HANDOFF_WAKE_TRIES 3  /* a wake another process took (a shared listener) is made again */
/* A channel's messages per window: a generation that floods its own channel
 * is read at this pace, so the loop (and its 10 ms health watch) keeps its
 * time. A server that closes thousands of idle connections at once is
 * handed them over a few hundred milliseconds. */
#define HANDOFF_WINDOW_MS 100
#define HANDOFF_PER_WINDOW 2000
#define TCP_STATE_ESTABLISHED 1 /* include/net/tcp_states.h: not in the uapi headers */

_Static_assert(HANDOFF_GENS == MAX_GENS, "the map has a draining flag per generation slot");

static bool wanted(const struct sup *s)
{
	for (int l = 0; l < s->nl; l++)
		if (s->spec[l].proto == BATON_PROTO_TCP && s->spec[l].handoff == BATON_HANDOFF_IDLE)
			return true;
	return false;
}

static int open_map(struct handoff *h)
{
	int fd = open(h->map_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	struct stat st;
	void *m;

	if (fd < 0)
		return -errno;
	/* an existing map is kept: generations of a supervisor that was
	 * upgraded or died still read it */
	if (fstat(fd, &st) || ((size_t)st.st_size < sizeof(struct handoff_map) &&
			       ftruncate(fd, sizeof(struct handoff_map)))) {
		int r = -errno;

		close(fd);
		return r;
	}
	m = mmap(NULL, sizeof(struct handoff_map), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	h->map = m;
	if (h->map->magic != HANDOFF_MAGIC) {
		memset(h->map, 0, sizeof(*h->map));
		__atomic_store_n(&h->map->magic, HANDOFF_MAGIC, __ATOMIC_RELEASE);
	}
	/* no wake of a previous supervisor is still in flight: its sockets
	 * died with it (the connections they were for wait in the channels) */
	for (int i = 0; i < HANDOFF_WAKES; i++)
		__atomic_store_n(&h->map->wake[i].token, 0, __ATOMIC_RELEASE);
	h->map->nwake = 0;
	return 0;
}

int handoff_open(struct sup *s)
{
	struct handoff *h;
	struct stat st;
	int r;

	if (!wanted(s) || s->handoff)
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->next_token = 1;
	h->spawn_gi = -1;
	h->spawn_prev = -1;
	for (int i = 0; i < MAX_GENS; i++)
		h->ch[i] = (struct chan){ .sup = -1, .gen = -1, .mslot = -1 };
	for (int i = 0; i < HANDOFF_WAKES; i++)
		h->p[i] = (struct pending){ .wake = -1 };
	if (!stat("/proc/self/ns/net", &st))
		h->netns = st.st_ino;
	if ((r = sup_socket_path(s->name, "handoff-map", h->map_path, sizeof(h->map_path)))) {
		say(s, "runtime directory path is too long for the handoff map; ?handoff=idle is off");
		goto fail;
	}
	if ((r = open_map(h))) {
		say(s, "cannot open the handoff map %s: %s; ?handoff=idle is off", h->map_path, strerror(-r));
		goto fail;
	}
	/* generations already running (a resume, or `baton upgrade`): their
	 * channels are taken back at the first tick, once they are adopted */
	for (int i = 0; i < MAX_GENS; i++)
		h->ch[i].adopt = true;
	s->handoff = h;
	return 0;
fail:
	free(h);
	return r;
}

static void set_nwake(struct handoff *h)
{
	__atomic_store_n(&h->map->nwake, (uint32_t)h->npending, __ATOMIC_RELAXED);
}

static void drop(struct handoff *h, struct pending *p)
{
	__atomic_store_n(&h->map->wake[p - h->p].token, 0, __ATOMIC_RELEASE);
	if (p->wake >= 0)
		close(p->wake);
	*p = (struct pending){ .wake = -1 };
	h->npending--;
	set_nwake(h);
}

static struct pending *find(struct handoff *h, uint32_t token)
{
	for (int i = 0; token && i < HANDOFF_WAKES; i++)
		if (h->p[i].token == token)
			return &h->p[i];
	return NULL;
}

static struct pending *alloc_pending(struct handoff *h)
{
	for (int i = 0; i < HANDOFF_WAKES; i++)
		if (!h->p[i].token) {
			if (!++h->next_token)
				h->next_token = 1;
			h->p[i] = (struct pending){ .token = h->next_token, .wake = -1 };
			h->npending++;
			set_nwake(h);
			return &h->p[i];
		}
	return NULL;
}

/* Sends message M with FD (or none) on FD CH; 0 when it went. */
static int send_msg(int ch, const struct handoff_msg *m, int fd)
{
	struct iovec iov;
	union handoff_cbuf u;
	struct msghdr mh;

	handoff_msghdr(&mh, &iov, &u, m, fd);
	return sendmsg(ch, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(*m) ? 0 : -1;
}

/* Reads one message from FD CH: its length (-1: nothing), the one fd that
 * came with it in *FD (-1: none; more than one are closed, and *NFD says
 * how many came), and whether the control data was cut. */

static ssize_t recv_msg(int ch, struct handoff_msg *m, int *fd, int *nfd, int *trunc)
{
	return ho_recv_msg_flags(ch, m, fd, nfd, trunc, 0);
}

/* recv_msg, FLAGS added (MSG_PEEK: the message stays, its fds are copies) */
ssize_t ho_recv_msg_flags(int ch, struct handoff_msg *m, int *fd, int *nfd, int *trunc, int flags)
{
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(ch, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT | flags);

	*fd = -1;
	*nfd = 0;
	*trunc = 0;
	if (n < 0)
		return -1;
	*trunc = (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;
	*fd = handoff_cmsg_fd(&mh, close, nfd);
	return n;
}

/* A connection from the listener's own address (loopback for a wildcard)
 * to the listener: steered to the serving generation like any other. Its
 * source goes into the map before it is made, so the shim there knows it
 * the moment accept() returns it. */
static int wake(struct sup *s, int l, int slot, uint32_t token)
{
	const struct baton_spec *sp = &s->spec[l];
	struct sockaddr_storage dst = { 0 }, src;
	struct handoff_wake *w = &s->handoff->map->wake[slot];
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	socklen_t len, sl = sizeof(src);
	int fd;

	memcpy(&dst, &sp->addr, sizeof(dst));
	if (sp->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&dst;

		in->sin_family = AF_INET;
		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&dst;

		in6->sin6_family = AF_INET6;
		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
		len = sizeof(*in6);
	}
	src = dst;
	if (sp->family == AF_INET)
		((struct sockaddr_in *)&src)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&src)->sin6_port = 0;
	((struct sockaddr_in *)&dst)->sin_port = htons(sp->port);	/* same offset in sockaddr_in6 */
	fd = socket(sp->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a reset at the end: no TIME_WAIT per handed-off connection */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (bind(fd, (struct sockaddr *)&src, len) || getsockname(fd, (struct sockaddr *)&src, &sl))
		goto fail;
	w->family = (uint16_t)sp->family;
	if (sp->family == AF_INET) {
		memcpy(w->addr, &((struct sockaddr_in *)&src)->sin_addr, 4);
		w->port = ((struct sockaddr_in *)&src)->sin_port;
	} else {
		memcpy(w->addr, &((struct sockaddr_in6 *)&src)->sin6_addr, 16);
		w->port = ((struct sockaddr_in6 *)&src)->sin6_port;
	}
	__atomic_store_n(&w->token, token, __ATOMIC_RELEASE);
	if (connect(fd, (struct sockaddr *)&dst, len) && errno != EINPROGRESS) {
		__atomic_store_n(&w->token, 0, __ATOMIC_RELEASE);
		goto fail;
	}
	/* An empty line, which HTTP servers skip before a request: a listener
	 * with TCP_DEFER_ACCEPT (Apache's default) returns a connection from
	 * accept() only once data came. Loopback connects at once. */
	if (poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, 10) == 1)
		(void)!send(fd, "\r\n", 2, MSG_DONTWAIT | MSG_NOSIGNAL);
	return fd;
fail:;
	int r = -errno;

	close(fd);
	return r;
}

/* (Re)makes P's wake connection; false if it cannot be made. */
static bool rewake(struct sup *s, struct pending *p, long long now)
{
	struct handoff *h = s->handoff;

	if (p->wake >= 0)
		close(p->wake);
	p->wakes++;
	p->rewake_at = now + HANDOFF_REWAKE_MS;
	p->wake = wake(s, p->listener, (int)(p - h->p), p->token);
	if (p->wake >= 0)
		return true;
	if (s->cfg->verbose)
		say(s, "handoff: cannot connect to listener %d to wake gen %d: %s", p->listener, s->gen[p->to].id,
		    strerror(-p->wake));
	p->wake = -1;
	return false;
}

/* Whether generation slot TO serves listener L and has a channel. */
static bool can_take(const struct sup *s, int to, int l)
{
	return to >= 0 && s->gen[to].state == GEN_ACTIVE && s->gen[to].pid > 0 && s->gen[to].slot[l] >= 0 &&
	       s->handoff->ch[to].sup >= 0;
}

/* Queues CONN (listener L, from slot FROM) in the serving generation's
 * channel and wakes it; CONN is ours to close either way. The connection
 * waits in the generation, not here: a supervisor that dies now loses only
 * the wake, which its successor makes again. */
void ho_forward(struct sup *s, int conn, int l, int from, long long deadline)
{
	struct handoff *h = s->handoff;
	int to = s->active;
	struct pending *p;
	long long now = baton_mono_ms();
	bool sent;

	if (!can_take(s, to, l)) {
		h->no_target++;
		close(conn);
		return;
	}
	p = alloc_pending(h);
	if (!p) {
		h->limit++;
		close(conn);
		return;
	}
	*p = (struct pending){ .token = p->token, .wake = -1, .from = from, .to = to, .listener = l,
			       .deadline = deadline ? deadline : now + HANDOFF_TTL_MS };
	if (h->moving) {
		__atomic_store_n(&h->map->moving_sent, 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(&h->map->moving_ino, h->moving, __ATOMIC_SEQ_CST);
	}
	sent = !send_msg(h->ch[to].sup, &(struct handoff_msg){ .op = HANDOFF_CONN, .listener = (uint32_t)l,
								.gen = (uint32_t)s->gen[to].id, .token = p->token },
			 conn);
	if (sent && h->moving)
		__atomic_store_n(&h->map->moving_sent, 1, __ATOMIC_SEQ_CST);
	if (!sent) {
		h->limit++;	/* its channel is full */
		close(conn);
		drop(h, p);
		return;
	}
	close(conn);	/* the channel holds it now */
	if (!rewake(s, p, now))
		h->wake_failed++;	/* it waits for the next try, or its deadline */
}

/* CONN came out of a serving generation's queue. If it is the give a
 * supervisor that died was moving (see moving_ino), the send went through:
 * a SIGKILL that comes while sendmsg() runs is acted on as the call
 * returns, before moving_sent can be stored, so without this the
 * successor would forward that give once more and the generation would
 * get the connection twice (two fds in nginx, whose two closes at its
 * stop end it). After a kill that comes before the send, nothing in the
 * queue has that inode and the give is forwarded, as it must be. */
static void ho_note_queued(struct handoff *h, int conn)
{
	struct stat st;
	uint64_t ino = __atomic_load_n(&h->map->moving_ino, __ATOMIC_SEQ_CST);

	if (ino && !h->moving && !fstat(conn, &st) && st.st_ino == ino)
		__atomic_store_n(&h->map->moving_sent, 1, __ATOMIC_SEQ_CST);
}

/* Takes back what waits unread in slot GI's channel: connections whose
 * wait is over are closed, those for a generation that no longer serves
 * (or ALL of them, the channel going away) go to the one that does, the
 * rest go back in the queue. Connections nobody waits for (a previous
 * supervisor's) are forwarded anew. The queue is read out first, so what
 * goes back in is not read twice. */
static void reclaim(struct sup *s, int gi, bool all)
{
	struct handoff *h = s->handoff;
	struct chan *c = &h->ch[gi];
	long long now = baton_mono_ms();
	static struct handoff_msg got[HANDOFF_WAKES];
	static int fds[HANDOFF_WAKES];
	int n = 0;

	while (c->gen >= 0 && n < HANDOFF_WAKES) {
		int nfd, trunc;

		if (recv_msg(c->gen, &got[n], &fds[n], &nfd, &trunc) <= 0)
			break;
		if (fds[n] >= 0)
			ho_note_queued(h, fds[n++]);
	}
	/* what this channel should hold and does not: taken without a TOOK
	 * that came (or by a process that died with it). Before anything is
	 * forwarded below: those are not missing. */
	for (int i = 0; i < HANDOFF_WAKES; i++) {
		struct pending *p = &h->p[i];
		bool held = false;

		if (!p->token || p->to != gi || !(all || now >= p->deadline || gi != s->active))
			continue;
		for (int j = 0; j < n && !held; j++)
			held = got[j].token == p->token;
		if (!held) {
			h->expired++;
			drop(h, p);
		}
	}
	for (int i = 0; i < n; i++) {
		struct handoff_msg *m = &got[i];
		struct pending *p = find(h, m->token);

		if (p && p->to != gi)
			p = NULL;	/* not the one this channel holds */
		if (p && !all && now < p->deadline && gi == s->active) {
			if (!send_msg(c->sup, m, fds[i])) {
				close(fds[i]);
				continue;
			}
		}
		if (p && now >= p->deadline) {
			h->expired++;	/* closed as the old generation asked, only later */
			drop(h, p);
			close(fds[i]);
			continue;
		}
		if (p)
			drop(h, p);
		ho_forward(s, fds[i], m->listener < (uint32_t)s->nl ? (int)m->listener : 0, gi, 0);
	}
}

static void read_chan(struct sup *s, int gi, int budget, bool paced);

void ho_ch_close(struct sup *s, int gi)
{
	struct handoff *h = s->handoff;
	struct chan *c = &h->ch[gi];

	if (c->sup >= 0) {
		/* what it gave before it ended is still its own: a server exits
		 * right after closing its idle connections, and its exit may be
		 * seen before them */
		read_chan(s, gi, HANDOFF_WAKES, false);
		reclaim(s, gi, true);
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->sup, NULL);
		close(c->sup);
	}
	if (c->gen >= 0)
		close(c->gen);
	for (int i = 0; i < HANDOFF_WAKES; i++)
		if (h->p[i].token && h->p[i].to == gi) {
			h->expired++;
			drop(h, &h->p[i]);
		}
	if (c->mslot >= 0) {
		__atomic_store_n(&h->map->draining[c->mslot], 0, __ATOMIC_RELAXED);
		h->map->chan[c->mslot] = (struct handoff_chan){ .fd = { -1, -1 }, .alt_fd = -1 };
	}
	/* the map index stays: status shows the answers of an ended generation */
	*c = (struct chan){ .sup = -1, .gen = -1, .mslot = c->mslot };
}

int ho_ch_watch(struct sup *s, int gi)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_HANDOFF + (uint32_t)gi };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->handoff->ch[gi].sup, &ev) ? -errno : 0;
}

void handoff_close(struct sup *s, bool clean)
{
	struct handoff *h = s->handoff;

	if (!h)
		return;
	for (int i = 0; i < HANDOFF_WAKES; i++)
		if (h->p[i].token)
			drop(h, &h->p[i]);
	/* a supervisor that stops for good closes the channels; one that
	 * dies or re-executes leaves them to the generations, which hold both
	 * ends */
	for (int i = 0; i < MAX_GENS; i++) {
		if (clean && h->ch[i].sup >= 0)
			ho_ch_close(s, i);
		if (h->ch[i].sup >= 0)
			close(h->ch[i].sup);
		if (h->ch[i].gen >= 0)
			close(h->ch[i].gen);
	}
	if (clean)
		unlink(h->map_path);
	munmap(h->map, sizeof(*h->map));
	free(h);
	s->handoff = NULL;
}

bool ho_needs_adopt(const struct sup *s, int gi)
{
	const struct gen *g = &s->gen[gi];

	return s->handoff->ch[gi].adopt && g->state != GEN_FREE && g->state != GEN_EXITED && g->pid > 0 &&
	       g->pidfd >= 0;
}

bool handoff_busy(const struct sup *s)
{
	const struct handoff *h = s->handoff;

	if (!h)
		return false;
	if (h->npending)
		return true;
	for (int i = 0; i < MAX_GENS; i++)
		if (h->ch[i].paused || ho_needs_adopt(s, i))
			return true;
	return false;
}

void handoff_tick(struct sup *s, long long now)
{
	struct handoff *h = s->handoff;

	if (!h)
		return;
	for (int i = 0; i < MAX_GENS; i++) {
		struct chan *c = &h->ch[i];
		const struct gen *g = &s->gen[i];

		if (ho_needs_adopt(s, i))
			ho_adopt(s, i);
		else if (c->adopt && (g->state == GEN_FREE || g->state == GEN_EXITED))
			c->adopt = false;
		/* a generation that is gone gives nothing more: its draining
		 * state goes with it, and what waits in its queue moves on */
		if (c->sup >= 0 && (g->state == GEN_FREE || g->state == GEN_EXITED || g->pid <= 0 || g->id != c->id))
			ho_ch_close(s, i);
		if (c->paused && now >= c->window_end) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_HANDOFF + (uint32_t)i };

			c->paused = false;
			c->used = 0;
			epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->sup, &ev);
		}
	}
	/* after a resume: what waits in a channel from before is forwarded
	 * anew (its wake died with the previous supervisor) */
	for (int i = 0; i < MAX_GENS; i++)
		if (h->ch[i].rescan && h->ch[i].gen >= 0) {
			h->ch[i].rescan = false;
			reclaim(s, i, true);
		}
	if (!h->orphans_done && !ho_any_adopt(s)) {
		h->orphans_done = true;
		ho_orphans(s);
	}
	for (int i = 0; h->npending && i < HANDOFF_WAKES; i++) {
		struct pending *p = &h->p[i];

		if (!p->token)
			continue;
		if (now >= p->deadline || p->to != s->active)
			reclaim(s, p->to, false);
		else if (now >= p->rewake_at && p->wakes < HANDOFF_WAKE_TRIES && !rewake(s, p, now))
			h->wake_failed++;
	}
}

bool ho_conn_of(const struct handoff *h, const struct sup *s, int conn, int l)
{
	const struct baton_spec *sp = &s->spec[l];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), ol = sizeof(int);
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	int v, ns;

	if (getsockopt(conn, SOL_SOCKET, SO_DOMAIN, &v, &ol) || v != sp->family ||
	    getsockopt(conn, SOL_SOCKET, SO_TYPE, &v, &ol) || v != SOCK_STREAM ||
	    getsockopt(conn, SOL_SOCKET, SO_PROTOCOL, &v, &ol) || v != IPPROTO_TCP ||
	    getsockopt(conn, IPPROTO_TCP, TCP_INFO, &ti, &tl) || ti.tcpi_state != TCP_STATE_ESTABLISHED ||
	    getsockname(conn, (struct sockaddr *)&ss, &len) || ss.ss_family != sp->family)
		return false;
	if (sp->family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss, *w = (const struct sockaddr_in *)&sp->addr;

		if (ntohs(a->sin_port) != sp->port ||
		    (w->sin_addr.s_addr != htonl(INADDR_ANY) && w->sin_addr.s_addr != a->sin_addr.s_addr))
			return false;
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss,
					  *w = (const struct sockaddr_in6 *)&sp->addr;

		if (ntohs(a->sin6_port) != sp->port ||
		    (!IN6_IS_ADDR_UNSPECIFIED(&w->sin6_addr) && memcmp(&w->sin6_addr, &a->sin6_addr, 16)))
			return false;
	}
	/* SIOCGSKNS needs CAP_NET_ADMIN: a supervisor without it relies on
	 * the channel alone (only its own generation can send) */
	ns = ioctl(conn, SIOCGSKNS);
	if (ns >= 0) {
		struct stat st;
		bool same = !fstat(ns, &st) && st.st_ino == h->netns;

		close(ns);
		return same;
	}
	return errno == EPERM;
}

static void on_give(struct sup *s, int from, const struct handoff_msg *m, int conn)
{
	struct handoff *h = s->handoff;

	h->offered++;
	if (!h->ch[from].draining || h->ch[from].id != s->gen[from].id || m->listener >= (uint32_t)s->nl ||
	    s->spec[m->listener].handoff != BATON_HANDOFF_IDLE || s->spec[m->listener].proto != BATON_PROTO_TCP ||
	    !ho_conn_of(h, s, conn, (int)m->listener)) {
		h->refused++;	/* not from a generation that drains, or not its client: closed as it asked */
		if (s->cfg->verbose)
			say(s, "handoff: refused a connection from gen %d (listener %u): %s", s->gen[from].id,
			    m->listener, h->ch[from].draining ? "not an established connection to that listener"
							      : "it does not drain");
		close(conn);
		return;
	}
	h->out[from]++;
	if (s->active == from) {
		h->no_target++;	/* it serves again (a rollback): nothing to hand it to */
		close(conn);
		return;
	}
	ho_forward(s, conn, (int)m->listener, from, 0);
}

/* A CONN the serving generation took (TOOK), or gave back (BACK: another
 * listener's, in the queue ahead of its own). */
static void on_answer(struct sup *s, int gi, const struct handoff_msg *m, int conn)
{
	struct handoff *h = s->handoff;
	struct pending *p = find(h, m->token);

	if (p && p->to != gi)
		p = NULL;	/* only the generation whose queue held it can have taken it */
	if (m->op == HANDOFF_TOOK) {
		if (p) {
			h->handed_off++;
			h->in[gi]++;
			drop(h, p);
		}
		return;
	}
	if (!p || send_msg(h->ch[gi].sup, &(struct handoff_msg){ .op = HANDOFF_CONN, .listener = (uint32_t)p->listener,
								   .gen = (uint32_t)s->gen[gi].id, .token = p->token },
			   conn)) {
		if (p) {
			h->expired++;
			drop(h, p);
		} else {
			h->refused++;
		}
	}
	close(conn);
}

/* Reads up to BUDGET messages of slot GI's channel; PACED: at most
 * HANDOFF_PER_WINDOW per window, then the channel is not watched until the
 * window ends. */
/* Takes the message just peeked at off channel FD CH (its fds are copies). */
void ho_consume(int ch)
{
	struct handoff_msg m;
	int fd, nfd, trunc;

	if (recv_msg(ch, &m, &fd, &nfd, &trunc) >= 0 && fd >= 0)
		close(fd);
}

/* Whether CONN is the connection a supervisor that died had already queued
 * in the serving generation when it was killed (see moving_ino): then its
 * give is only taken off the channel. */
bool ho_moved_before(struct handoff *h, int conn)
{
	struct stat st;

	if (fstat(conn, &st) || !st.st_ino || __atomic_load_n(&h->map->moving_ino, __ATOMIC_SEQ_CST) != st.st_ino ||
	    !__atomic_load_n(&h->map->moving_sent, __ATOMIC_SEQ_CST))
		return false;
	__atomic_store_n(&h->map->moving_ino, 0, __ATOMIC_SEQ_CST);
	return true;
}

/* A give is peeked at, handled and only then taken off CH: until its
 * connection is queued in the serving generation, a copy stays where a
 * supervisor that replaces this one (killed now) finds it. */
void ho_begin_move(struct handoff *h, int conn)
{
	struct stat st;

	h->moving = fstat(conn, &st) ? 0 : st.st_ino;
}

void ho_end_move(struct handoff *h)
{
	if (h->moving)
		__atomic_store_n(&h->map->moving_ino, 0, __ATOMIC_SEQ_CST);
	h->moving = 0;
}

/* Reads up to BUDGET messages of slot GI's channel; PACED: at most
 * HANDOFF_PER_WINDOW per window, then the channel is not watched until the
 * window ends. */
static void read_chan(struct sup *s, int gi, int budget, bool paced)
{
	struct handoff *h = s->handoff;
	struct chan *c = &h->ch[gi];
	long long now = baton_mono_ms();

	if (now >= c->window_end) {
		c->window_end = now + HANDOFF_WINDOW_MS;
		c->used = 0;
	}
	/* the pace is checked before a message is read: a flood costs one
	 * recvmsg per message up to it, then nothing until the window ends */
	for (; budget > 0; budget--) {
		struct handoff_msg m;
		int conn, nfd, trunc;
		ssize_t n;

		if (paced && c->used >= HANDOFF_PER_WINDOW) {
			struct epoll_event ev = { .events = 0, .data.u32 = EV_HANDOFF + (uint32_t)gi };

			if (!c->paused)
				h->throttled++;
			c->paused = true;
			epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->sup, &ev);
			return;
		}
		n = ho_recv_msg_flags(c->sup, &m, &conn, &nfd, &trunc, MSG_PEEK);
		if (n <= 0)
			return;	/* nothing more, or nobody holds the other end */
		c->used++;
		if (handoff_msg_check(&m, (long)n, nfd, trunc,
				      1u << HANDOFF_GIVE | 1u << HANDOFF_TOOK | 1u << HANDOFF_BACK)) {
			if (conn >= 0)
				close(conn);	/* malformed: whatever came is not kept */
			h->refused++;
		} else if (m.op == HANDOFF_GIVE && ho_moved_before(h, conn)) {
			close(conn);
		} else if (m.op == HANDOFF_GIVE) {
			ho_begin_move(h, conn);
			on_give(s, gi, &m, conn);
		} else {
			on_answer(s, gi, &m, conn);
		}
		ho_consume(c->sup);
		ho_end_move(h);
	}
}

void handoff_read(struct sup *s, uint32_t tag)
{
	struct handoff *h = s->handoff;
	int gi = (int)(tag - EV_HANDOFF);

	if (!h || gi < 0 || gi >= MAX_GENS || h->ch[gi].sup < 0)
		return;
	read_chan(s, gi, 256, true);
}

static unsigned long long answered_total(const struct handoff *h)
{
	unsigned long long n = h->answered_before;

	for (int i = 0; i < HANDOFF_GENS; i++)
		n += __atomic_load_n(&h->map->answered[i], __ATOMIC_RELAXED);
	return n;
}

/* For status: the counters since this supervisor started. */
bool handoff_view(const struct sup *s, struct sv_handoff *out)
{
	const struct handoff *h = s->handoff;

	if (!h)
		return false;
	*out = (struct sv_handoff){
		.offered = h->offered,
		.handed_off = h->handed_off,
		.answered = answered_total(h),
		.no_target = h->no_target,
		.limit = h->limit,
		.expired = h->expired,
		.wake_failed = h->wake_failed,
		.unreachable = h->map->unreachable,
		.take_failed = h->map->take_failed,
		.refused = h->refused,
		.pending = h->npending,
	};
	return true;
}

bool handoff_gen_view(const struct sup *s, int gi, struct sv_gen_handoff *out)
{
	const struct handoff *h = s->handoff;

	if (!h)
		return false;
	out->in = h->in[gi];
	out->out = h->out[gi];
	out->answered = h->ch[gi].mslot < 0 ? 0
					     : __atomic_load_n(&h->map->answered[h->ch[gi].mslot], __ATOMIC_RELAXED);
	return true;
}
