/* SPDX-License-Identifier: BSD-2-Clause */
/* Idle keep-alive connections handed from a stopping generation to the
 * serving one (listeners with ?handoff=idle; the shim's half is in
 * preload/handoff.c, where the design is explained). Here: the socket the
 * shims give and take connections over, the map both read, the wake
 * connection that makes the serving generation call accept(), and the
 * counters `baton status` shows. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <signal.h>
#include <unistd.h>

#include "handoff_wire.h"
#include "internal.h"

#define HANDOFF_WAKE_TRIES 3  /* a wake another process took (a shared listener) is made again */

_Static_assert(HANDOFF_GENS == MAX_GENS, "the map has a draining flag per generation slot");

struct pending {
	uint32_t token;       /* 0: free */
	int conn;             /* the handed-off connection */
	int wake;             /* our connection to the serving generation */
	int from, to;         /* generation slots */
	int listener;
	int wakes;            /* wake connections made for it */
	long long deadline;
};

struct handoff {
	int fd;
	char sock_path[108];          /* "@" + an abstract name (see handoff_open) */
	char map_path[4096];
	struct handoff_map *map;
	struct pending p[HANDOFF_WAKES];
	int npending;
	uint32_t next_token;
	/* since this supervisor started */
	unsigned long long offered, handed_off, no_target, limit, expired, wake_failed, refused;
	unsigned long long in[MAX_GENS], out[MAX_GENS];
	unsigned long long answered_before;   /* of slots since reused */
	char env[4096 + 256];
	bool said_no_shim;
};

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
	/* no wake of a previous supervisor is still in flight: its sockets died with it */
	for (int i = 0; i < HANDOFF_WAKES; i++)
		__atomic_store_n(&h->map->wake[i].token, 0, __ATOMIC_RELEASE);
	h->map->nwake = 0;
	return 0;
}

int handoff_open(struct sup *s)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_HANDOFF };
	struct handoff *h;
	int one = 1, r;

	if (!wanted(s) || s->handoff)
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fd = -1;
	h->next_token = 1;
	/* An abstract socket: a server's workers often run as another user
	 * and cannot enter the runtime directory (0700); who may give or take
	 * is decided by the sender's pid instead (SO_PASSCRED). Named after
	 * the runtime directory and the supervisor, so a supervisor that
	 * replaces a dead one is found under the same name. */
	if ((r = sup_socket_path(s->name, "handoff", h->map_path, sizeof(h->map_path))) ||
	    snprintf(h->sock_path, sizeof(h->sock_path), "@baton:%s", h->map_path) >= (int)sizeof(h->sock_path) ||
	    (r = sup_socket_path(s->name, "handoff-map", h->map_path, sizeof(h->map_path)))) {
		r = r ? r : -ENAMETOOLONG;
		say(s, "runtime directory path is too long for the handoff socket; ?handoff=idle is off");
		goto fail;
	}
	if ((r = open_map(h))) {
		say(s, "cannot open the handoff map %s: %s; ?handoff=idle is off", h->map_path, strerror(-r));
		goto fail;
	}
	h->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h->fd < 0) {
		r = -errno;
		goto fail;
	}
	memcpy(sun.sun_path, h->sock_path, strlen(h->sock_path));
	sun.sun_path[0] = '\0';
	r = bind(h->fd, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
							    strlen(h->sock_path))) ? -errno : 0;
	/* the sender's pid comes with each message: connections are taken
	 * only from a generation that drains, and given only to the one that serves */
	if (!r && setsockopt(h->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		r = -errno;
	if (!r && epoll_ctl(s->epfd, EPOLL_CTL_ADD, h->fd, &ev))
		r = -errno;
	if (r) {
		say(s, "cannot open the handoff socket %s: %s; ?handoff=idle is off", h->sock_path, strerror(-r));
		goto fail;
	}
	s->handoff = h;
	return 0;
fail:
	if (h->fd >= 0)
		close(h->fd);
	if (h->map)
		munmap(h->map, sizeof(*h->map));
	free(h);
	return r;
}

static void drop(struct handoff *h, struct pending *p)
{
	__atomic_store_n(&h->map->wake[p - h->p].token, 0, __ATOMIC_RELEASE);
	if (p->conn >= 0)
		close(p->conn);
	if (p->wake >= 0)
		close(p->wake);
	*p = (struct pending){ .conn = -1, .wake = -1 };
	h->npending--;
	__atomic_store_n(&h->map->nwake, (uint32_t)h->npending, __ATOMIC_RELAXED);
}

void handoff_close(struct sup *s, bool clean)
{
	struct handoff *h = s->handoff;

	if (!h)
		return;
	for (int i = 0; i < HANDOFF_WAKES; i++)
		if (h->p[i].token)
			drop(h, &h->p[i]);
	close(h->fd);
	if (clean)
		unlink(h->map_path);
	munmap(h->map, sizeof(*h->map));
	free(h);
	s->handoff = NULL;
}

bool handoff_busy(const struct sup *s)
{
	return s->handoff && s->handoff->npending;
}

void handoff_tick(struct sup *s, long long now)
{
	struct handoff *h = s->handoff;

	if (!h || !h->npending)
		return;
	for (int i = 0; i < HANDOFF_WAKES; i++)
		if (h->p[i].token && now >= h->p[i].deadline) {
			h->expired++;	/* closed as the old generation asked, only later */
			drop(h, &h->p[i]);
		}
}

/* The child's environment: BATON_HANDOFF=v1;SLOT;LISTENERS;SOCKET;MAP. */
void handoff_gen_start(struct sup *s, int gi)
{
	struct handoff *h = s->handoff;
	size_t off;

	if (!h)
		return;
	if (!s->preload_lib[0] && !h->said_no_shim) {
		say(s, "?handoff=idle needs the preload shim, which sees the server's close(); generations run "
		       "without it (--no-preload, --bind-mode cgroup, or no shim found), so their idle connections "
		       "are closed at their stop as before (handoffs stay 0)");
		h->said_no_shim = true;
	}
	h->answered_before += h->map->answered[gi];
	__atomic_store_n(&h->map->answered[gi], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&h->map->draining[gi], 0, __ATOMIC_RELAXED);
	h->in[gi] = h->out[gi] = 0;
	off = (size_t)snprintf(h->env, sizeof(h->env), "v1;%d;", gi);
	for (int l = 0, n = 0; l < s->nl && off < sizeof(h->env); l++)
		if (s->spec[l].handoff == BATON_HANDOFF_IDLE && s->spec[l].proto == BATON_PROTO_TCP)
			off += (size_t)snprintf(h->env + off, sizeof(h->env) - off, "%s%d", n++ ? "," : "", l);
	if (off < sizeof(h->env))
		snprintf(h->env + off, sizeof(h->env) - off, ";%s;%s", h->sock_path, h->map_path);
}

const char *handoff_env(const struct sup *s)
{
	return s->handoff && s->handoff->env[0] ? s->handoff->env : NULL;
}

/* G is told to stop: its idle connections go to the serving generation,
 * if there is one (not at `baton stop`: nothing would take them). */
void handoff_gen_stop(struct sup *s, struct gen *g)
{
	struct handoff *h = s->handoff;
	int gi = (int)(g - s->gen);

	if (!h || s->stopping || s->active < 0 || s->active == gi || s->gen[s->active].state != GEN_ACTIVE)
		return;
	__atomic_store_n(&h->map->draining[gi], (uint32_t)g->id, __ATOMIC_RELAXED);
}

/* The generation slot whose process PID is, or an ancestor of it within 8
 * steps (nginx's workers), or -1. */
static int gen_of(const struct sup *s, pid_t pid)
{
	for (int hops = 0; hops < 9 && pid > 1; hops++) {
		struct baton_proc_stat st;

		for (int i = 0; i < MAX_GENS; i++)
			if (s->gen[i].state != GEN_FREE && s->gen[i].pid == pid)
				return i;
		if (baton_proc_stat(pid, -1, &st))
			return -1;
		pid = st.ppid;
	}
	return -1;
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
	return fd;
fail:;
	int r = -errno;

	close(fd);
	return r;
}

/* Whether CONN is a TCP connection to listener L's port. */
static bool conn_of(const struct sup *s, int conn, int l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type;
	socklen_t tl = sizeof(type);

	if (getsockopt(conn, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_STREAM ||
	    getsockname(conn, (struct sockaddr *)&ss, &len) || ss.ss_family != s->spec[l].family)
		return false;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port) == s->spec[l].port;	/* same offset in sockaddr_in6 */
}

/* The generation slot a GIVE comes from. Its sender often exits right
 * after its last close (a worker of a stopping server), before this reads
 * /proc: then the generation it names must be one that drains, and the
 * connection one to the listener; a live sender must descend from it. */
static int giver(const struct sup *s, pid_t pid, const struct handoff_msg *m)
{
	int gi = gen_of(s, pid);

	if (gi >= 0)
		return s->gen[gi].id == (int)m->gen ? gi : -1;
	if (pid > 0 && kill(pid, 0) == 0)
		return -1;	/* alive and not ours */
	for (int i = 0; i < MAX_GENS; i++)
		if (s->gen[i].state != GEN_FREE && s->gen[i].id == (int)m->gen)
			return i;
	return -1;
}

static void on_give(struct sup *s, const struct handoff_msg *m, pid_t pid, int conn)
{
	struct handoff *h = s->handoff;
	int to = s->active, i, from = giver(s, pid, m);
	struct pending *p = NULL;

	h->offered++;
	if (from < 0 || m->listener >= (uint32_t)s->nl || s->spec[m->listener].handoff != BATON_HANDOFF_IDLE ||
	    h->map->draining[from] != (uint32_t)s->gen[from].id || !conn_of(s, conn, (int)m->listener)) {
		h->refused++;	/* not from a generation that drains: closed as it asked */
		if (s->cfg->verbose)
			say(s, "handoff: refused a connection from gen slot %d (gen %u, listener %u): it does not drain",
			    from, m->gen, m->listener);
		close(conn);
		return;
	}
	h->out[from]++;
	if (to < 0 || to == from || s->gen[to].state != GEN_ACTIVE || s->gen[to].pid <= 0 ||
	    s->gen[to].slot[m->listener] < 0) {
		h->no_target++;
		close(conn);
		return;
	}
	for (i = 0; i < HANDOFF_WAKES && !p; i++)
		if (!h->p[i].token)
			p = &h->p[i];
	if (!p) {
		h->limit++;
		close(conn);
		return;
	}
	if (!++h->next_token)
		h->next_token = 1;
	*p = (struct pending){ .token = h->next_token, .conn = conn, .from = from, .to = to,
			       .listener = (int)m->listener, .wakes = 1, .deadline = baton_mono_ms() + HANDOFF_TTL_MS };
	h->npending++;
	__atomic_store_n(&h->map->nwake, (uint32_t)h->npending, __ATOMIC_RELAXED);
	p->wake = wake(s, (int)m->listener, (int)(p - h->p), p->token);
	if (p->wake < 0) {
		if (s->cfg->verbose)
			say(s, "handoff: cannot connect to listener %u to wake gen %d: %s", m->listener,
			    s->gen[to].id, strerror(-p->wake));
		p->wake = -1;
		h->wake_failed++;
		drop(h, p);
	}
}

static void on_take(struct sup *s, const struct handoff_msg *m, int taker, const struct sockaddr_un *peer,
		    socklen_t plen)
{
	struct handoff *h = s->handoff;
	struct handoff_msg ans = { .op = HANDOFF_TAKE, .listener = m->listener, .gen = m->gen, .token = m->token };
	struct iovec iov = { .iov_base = &ans, .iov_len = sizeof(ans) };
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_name = (void *)peer, .msg_namelen = plen, .msg_iov = &iov, .msg_iovlen = 1 };
	struct pending *p = NULL;

	for (int i = 0; i < HANDOFF_WAKES && !p; i++)
		if (h->p[i].token && h->p[i].token == m->token)
			p = &h->p[i];
	/* the generation the wake was for takes it, even if a reload since
	 * made it stop too: it gives it again when it closes it */
	if (p && taker >= 0 && (taker == p->to || taker == s->active)) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &p->conn, sizeof(int));
	}
	if (sendmsg(h->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(ans) && mh.msg_control) {
		h->handed_off++;
		h->in[taker]++;
	} else if (p && !mh.msg_control && p->wakes < HANDOFF_WAKE_TRIES && s->active >= 0 &&
		   s->gen[s->active].state == GEN_ACTIVE) {
		/* another process accepted the wake (a listener every generation
		 * shares, or the old one still accepting): it keeps it as an
		 * empty connection, and the serving one gets a new wake */
		if (!++h->next_token)
			h->next_token = 1;
		close(p->wake);
		p->to = s->active;
		p->token = h->next_token;
		p->wakes++;
		p->wake = wake(s, p->listener, (int)(p - h->p), p->token);
		if (p->wake >= 0)
			return;
		p->wake = -1;
		h->wake_failed++;
	} else if (p) {
		h->wake_failed++;	/* the answer did not go, or nothing serves: close it */
	}
	if (p)
		drop(h, p);
}

void handoff_read(struct sup *s)
{
	struct handoff *h = s->handoff;

	for (int budget = 0; h && budget < 256; budget++) {
		struct handoff_msg m;
		struct sockaddr_un peer;
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
		union {
			struct cmsghdr c;
			char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
		} u;
		struct msghdr mh = { .msg_name = &peer, .msg_namelen = sizeof(peer), .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
		struct ucred cred = { .pid = -1 };
		int conn = -1, extra = 0;
		ssize_t n = recvmsg(h->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

		if (n < 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(cred)))
				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			if (c->cmsg_type == SCM_RIGHTS) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				for (size_t j = 0; j < k; j++) {
					int fd;

					memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
					if (conn < 0)
						conn = fd;
					else
						close(fd), extra++;
				}
			}
		}
		if (n != (ssize_t)sizeof(m) || extra || (mh.msg_flags & MSG_CTRUNC) ||
		    (m.op == HANDOFF_GIVE) != (conn >= 0) || (m.op != HANDOFF_GIVE && m.op != HANDOFF_TAKE)) {
			if (conn >= 0)
				close(conn);	/* malformed: whatever came is not kept */
			continue;
		}
		if (m.op == HANDOFF_GIVE)
			on_give(s, &m, cred.pid, conn);
		else
			on_take(s, &m, gen_of(s, cred.pid), &peer, mh.msg_namelen);
	}
}

static unsigned long long answered_total(const struct handoff *h)
{
	unsigned long long n = h->answered_before;

	for (int i = 0; i < HANDOFF_GENS; i++)
		n += __atomic_load_n(&h->map->answered[i], __ATOMIC_RELAXED);
	return n;
}

void handoff_status(const struct sup *s, FILE *f, bool json)
{
	const struct handoff *h = s->handoff;
	unsigned long long failed;

	if (!h) {
		if (json)
			fprintf(f, ",\"handoff\":null");
		return;
	}
	/* a failed take is also the supervisor's expired or failed wake: not counted twice */
	failed = h->no_target + h->limit + h->expired + h->wake_failed + h->map->unreachable;
	if (!json) {
		fprintf(f, "handoff: %llu idle connection%s handed off, %llu answer%s on them, %llu failed, "
			   "%d in flight\n", h->handed_off, h->handed_off == 1 ? "" : "s", answered_total(h),
			answered_total(h) == 1 ? "" : "s", failed, h->npending);
		return;
	}
	fprintf(f, ",\"handoff\":{\"offered\":%llu,\"handed_off\":%llu,\"answered\":%llu,\"failed\":%llu,"
		   "\"failed_no_target\":%llu,\"failed_limit\":%llu,\"failed_expired\":%llu,\"failed_wake\":%llu,"
		   "\"failed_unreachable\":%llu,\"failed_take\":%llu,\"refused\":%llu,\"pending\":%d}",
		h->offered, h->handed_off, answered_total(h), failed, h->no_target, h->limit, h->expired,
		h->wake_failed, (unsigned long long)h->map->unreachable, (unsigned long long)h->map->take_failed,
		h->refused, h->npending);
}

void handoff_gen_status(const struct sup *s, int gi, FILE *f, bool json)
{
	const struct handoff *h = s->handoff;

	if (!json)
		return;
	if (!h) {
		fprintf(f, ",\"handoff\":null");
		return;
	}
	fprintf(f, ",\"handoff\":{\"in\":%llu,\"out\":%llu,\"answered\":%llu}", h->in[gi], h->out[gi],
		(unsigned long long)__atomic_load_n(&h->map->answered[gi], __ATOMIC_RELAXED));
}

/* For `baton status --metrics`: the counters of handoff_status. The name
 * needs no escaping: baton_name_valid allows no quote or backslash. */
void handoff_metrics(const struct sup *s, FILE *f)
{
	const struct handoff *h = s->handoff;
	const struct {
		const char *result;
		unsigned long long n;
	} r[] = {
		{ "handed_off", h ? h->handed_off : 0 },
		{ "no_target", h ? h->no_target : 0 },
		{ "limit", h ? h->limit : 0 },
		{ "expired", h ? h->expired : 0 },
		{ "wake", h ? h->wake_failed : 0 },
		{ "unreachable", h ? (unsigned long long)h->map->unreachable : 0 },
		{ "refused", h ? h->refused : 0 },
	};

	if (!h)
		return;
	fprintf(f, "# HELP baton_handoff_connections_total Idle keep-alive connections that stopping generations "
		   "gave up, by result: handed_off (the serving generation took it) or why it was closed.\n"
		   "# TYPE baton_handoff_connections_total counter\n");
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		fprintf(f, "baton_handoff_connections_total{name=\"%s\",result=\"%s\"} %llu\n", s->name, r[i].result,
			r[i].n);
	fprintf(f, "# HELP baton_handoff_answers_total Answers generations wrote on connections handed to them.\n"
		   "# TYPE baton_handoff_answers_total counter\n"
		   "baton_handoff_answers_total{name=\"%s\"} %llu\n", s->name, answered_total(h));
}
