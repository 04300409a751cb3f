/* SPDX-License-Identifier: BSD-2-Clause */
/* baton as a systemd service: sd_notify to its own manager (READY, RELOADING,
 * STOPPING, STATUS, and the fd store for its sockets), and the sockets that
 * socket activation passes (LISTEN_FDS) taken for the --listen they match. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "metrics.h"
#include "sdnotify.h"
#include "takeover.h"
#include "util.h"

/* FDNAME of a stored socket: listener and inode (what `baton ls` and
 * /proc/PID/fd show), so a restarted supervisor matches it to its state
 * and a member handed to a restarted generation keeps its name; then its
 * file status flags (baton-l0-1234-f4002): systemd passes stored fds back
 * with NonBlocking=no unless the unit says otherwise, which clears
 * O_NONBLOCK on the open file description the running generation shares. */
#define STORE_PREFIX "baton-l"

struct passed {
	int fd;                 /* -1 once given away or closed */
	ino_t ino;
	bool stored;            /* from the fd store (FDNAME baton-l...), or stored since */
	bool unit;              /* the .socket unit's own socket: systemd's, never shut down */
	int keep;               /* unit: baton's copy for its whole life, else -1 */
	int listener;           /* the --listen it serves, -1 none */
	char name[256];         /* stored: the FDNAME it has in the store */
};

struct sdn {
	struct sockaddr_un addr;
	socklen_t addrlen;
	int fd;                 /* to the manager; -1: NOTIFY_SOCKET unset */
	bool ready;             /* READY=1 said, and no reload since */
	bool mainpid_said;
	char status[256];
	struct passed *p;
	int n;
};

static ino_t fd_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

/* One datagram to the manager, with FD attached if >= 0 (FDSTORE=1). */
static void send_msg(struct sup *s, const char *text, int fd)
{
	struct sdn *d = s->sd;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
	struct msghdr mh = { .msg_name = &d->addr, .msg_namelen = d->addrlen, .msg_iov = &iov, .msg_iovlen = 1 };

	if (!d || d->fd < 0)
		return;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = &ctl;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/* a busy manager's queue may be full for a moment: wait up to 50 ms
	 * (READY=1 must arrive), never longer: the loop serves the generations */
	for (int tries = 0; tries < 50; tries++) {
		if (sendmsg(d->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return;
		if (errno != EAGAIN)
			break;
		usleep(1000);
	}
	if (s->cfg->verbose)
		say_warn(s, "sd_notify to %s failed: %s", getenv("NOTIFY_SOCKET") ? getenv("NOTIFY_SOCKET") : "?",
		    strerror(errno));
}

/* The one-line STATUS=: who serves what, how many reloads. */
static void status_line(struct sup *s, char *buf, size_t len)
{
	char spec[200] = "", more[32] = "";
	const char *mode = s->nl ? listener_mode(s, 0) : "steered";

	if (s->nl)
		baton_spec_format(&s->spec[0], spec, sizeof(spec));
	if (s->nl > 1)
		snprintf(more, sizeof(more), " and %d more", s->nl - 1);
	if (s->stopping)
		snprintf(buf, len, "stopping: every generation told to stop");
	else if (s->active < 0)
		snprintf(buf, len, "starting gen %d on %s%s", s->next_id ? s->next_id : 1, spec, more);
	else if (s->reload >= 0 && s->reload != s->active)
		snprintf(buf, len, "reloading: gen %d starting, gen %d serves %s%s (%s)", s->gen[s->reload].id,
			 s->gen[s->active].id, spec, more, mode);
	else
		snprintf(buf, len, "gen %d serves %s%s (%s); %d reload%s, %d failed%s%.100s", s->gen[s->active].id,
			 spec, more, mode, s->reloads_done, s->reloads_done == 1 ? "" : "s", s->reloads_failed,
			 sup_degraded_text(s)[0] ? "; degraded: " : "", sup_degraded_text(s));
}

void sdn_status(struct sup *s)
{
	char line[256], msg[300];

	if (!s->sd || s->sd->fd < 0)
		return;
	status_line(s, line, sizeof(line));
	if (!strcmp(line, s->sd->status))
		return;
	snprintf(s->sd->status, sizeof(s->sd->status), "%s", line);
	snprintf(msg, sizeof(msg), "STATUS=%s", line);
	send_msg(s, msg, -1);
}

static void refresh_flags(struct sup *s, int l, int fd);

/* Stored sockets no state claimed: old members a restart no longer needs. */
static void drop_unused_stored(struct sup *s)
{
	for (int i = 0; i < s->sd->n; i++) {
		struct passed *p = &s->sd->p[i];
		char msg[320];

		if (!p->stored || p->fd < 0)
			continue;
		snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", p->name);
		send_msg(s, msg, -1);
		close(p->fd);
		p->fd = -1;
	}
}

void sdn_ready(struct sup *s)
{
	char msg[400], line[256];

	if (!s->sd)
		return;
	drop_unused_stored(s);
	sdn_mark_foreign(s);
	for (int i = 0; s->sd->fd >= 0 && i < MAX_GENS; i++)
		for (int l = 0; s->gen[i].pid > 0 && s->gen[i].slot && l < s->nl; l++)
			if (s->gen[i].slot[l] >= 0)
				refresh_flags(s, l, baton_group_fd(s->grp[l], s->gen[i].slot[l]));
	if (s->sd->fd < 0 || s->sd->ready)
		return;
	s->sd->ready = true;
	status_line(s, line, sizeof(line));
	snprintf(s->sd->status, sizeof(s->sd->status), "%s", line);
	/* the main pid is baton's own, whatever a generation says */
	if (s->sd->mainpid_said)
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", line);
	else
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\nMAINPID=%d", line, (int)getpid());
	s->sd->mainpid_said = true;
	send_msg(s, msg, -1);
}

void sdn_reloading(struct sup *s)
{
	char msg[400], line[256];

	/* before the first READY=1 (a takeover's switch) the service is still
	 * starting, not reloading */
	if (!s->sd || s->sd->fd < 0 || !s->sd->mainpid_said)
		return;
	s->sd->ready = false;
	status_line(s, line, sizeof(line));
	snprintf(s->sd->status, sizeof(s->sd->status), "%s", line);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s",
		 (unsigned long long)baton_mono_us(), line);
	send_msg(s, msg, -1);
}

/* A reload ended, done or rolled back: the service is ready again (unless
 * it is stopping, which STOPPING=1 says). */
void sdn_reload_end(struct sup *s)
{
	if (!s->sd || s->stopping)
		return;
	sdn_ready(s);
}

void sdn_stopping(struct sup *s)
{
	char msg[320], line[256];

	if (!s->sd || s->sd->fd < 0)
		return;
	status_line(s, line, sizeof(line));
	snprintf(s->sd->status, sizeof(s->sd->status), "%s", line);
	snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=%s", line);
	send_msg(s, msg, -1);
}

/* The entry that remembers what INO is called in the store (NULL: none). */
static struct passed *stored_entry(struct sup *s, ino_t ino)
{
	for (int i = 0; s->sd && i < s->sd->n; i++)
		if (s->sd->p[i].stored && s->sd->p[i].ino == ino && s->sd->p[i].name[0])
			return &s->sd->p[i];
	return NULL;
}

static void remember_name(struct sup *s, int l, ino_t ino, const char *name)
{
	struct passed *p = stored_entry(s, ino), *v;

	/* one a reload's unstore emptied, so reloads do not grow the array */
	for (int i = 0; !p && i < s->sd->n; i++)
		if (s->sd->p[i].stored && s->sd->p[i].fd < 0 && !s->sd->p[i].unit && !s->sd->p[i].name[0]) {
			p = &s->sd->p[i];
			*p = (struct passed){ .fd = -1, .ino = ino, .stored = true, .keep = -1, .listener = l };
		}
	if (!p) {
		v = realloc(s->sd->p, (size_t)(s->sd->n + 1) * sizeof(*v));
		if (!v)
			return;	/* unstore then falls back to the name without flags */
		s->sd->p = v;
		p = &v[s->sd->n++];
		*p = (struct passed){ .fd = -1, .ino = ino, .stored = true, .keep = -1, .listener = l };
	}
	snprintf(p->name, sizeof(p->name), "%s", name);
}

static void store_name(int l, int fd, char *buf, size_t len)
{
	int fl = fcntl(fd, F_GETFL);

	snprintf(buf, len, STORE_PREFIX "%d-%llu-f%x", l, (unsigned long long)fd_ino(fd), fl < 0 ? 0u : (unsigned)fl);
}

void sdn_store(struct sup *s, int l, int fd)
{
	char msg[320], name[128];

	if (!s->sd || s->sd->fd < 0 || fd < 0)
		return;
	store_name(l, fd, name, sizeof(name));
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	send_msg(s, msg, fd);
	remember_name(s, l, fd_ino(fd), name);
}

void sdn_unstore(struct sup *s, int l, ino_t ino)
{
	struct passed *p;
	char msg[320];

	if (!s->sd || s->sd->fd < 0 || !ino)
		return;
	p = stored_entry(s, ino);
	if (p) {
		snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", p->name);
		if (p->fd < 0)
			p->name[0] = '\0';
	} else {
		snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=" STORE_PREFIX "%d-%llu", l,
			 (unsigned long long)ino);
	}
	send_msg(s, msg, -1);
}

/* A generation sets its listener's flags (O_NONBLOCK) after baton stored
 * it: the store's copy is renamed to say the flags it has now. */
static void refresh_flags(struct sup *s, int l, int fd)
{
	struct passed *p = stored_entry(s, fd_ino(fd));
	char name[128], msg[320];

	if (!p)
		return;
	store_name(l, fd, name, sizeof(name));
	if (!strcmp(name, p->name))
		return;
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", p->name);
	send_msg(s, msg, -1);
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	send_msg(s, msg, fd);
	snprintf(p->name, sizeof(p->name), "%s", name);
}

bool sdn_is_unit(const struct sup *s, ino_t ino)
{
	for (int i = 0; ino && s->sd && i < s->sd->n; i++)
		if (s->sd->p[i].unit && s->sd->p[i].ino == ino)
			return true;
	return false;
}

/* Whether systemd passed any .socket unit's socket. */
static bool has_unit(const struct sup *s)
{
	for (int i = 0; s->sd && i < s->sd->n; i++)
		if (s->sd->p[i].unit)
			return true;
	return false;
}

/* Whether FD is a .socket unit's socket: without any (not under systemd,
 * or no .socket unit), no fstat of each member at every reload. */
static bool fd_is_unit(const struct sup *s, int fd)
{
	return fd >= 0 && has_unit(s) && sdn_is_unit(s, fd_ino(fd));
}

void sdn_unstore_fd(struct sup *s, int l, int fd)
{
	if (s->sd && s->sd->fd >= 0 && fd >= 0)
		sdn_unstore(s, l, fd_ino(fd));
}

/* Marks every member that is a .socket unit's socket: the library then
 * never shuts it down (baton_group_set_foreign). */
void sdn_mark_foreign(struct sup *s)
{
	if (!has_unit(s))
		return;	/* no .socket unit: not a look at every slot of every listener at each start */
	for (int l = 0; s->grp && l < s->nl; l++)
		for (int slot = 0; s->grp[l] && slot < BATON_MAX_SLOTS; slot++) {
			int fd = baton_group_fd(s->grp[l], slot);

			if (fd_is_unit(s, fd))
				baton_group_set_foreign(s->grp[l], slot, true);
		}
}

/* Generation G gives up listener L's member. If it is the .socket unit's
 * socket it stays in the group without weight (while baton runs, nothing
 * lands there) instead of being fenced and removed: shut down, systemd
 * would see POLLHUP once the service stops and fail the socket unit, and
 * a restart would find nothing listening. True if so. */
bool sdn_park_unit(struct sup *s, struct gen *g, int l)
{
	int fd = g->slot[l] >= 0 ? baton_group_fd(s->grp[l], g->slot[l]) : -1;

	if (!fd_is_unit(s, fd))
		return false;
	baton_group_set_foreign(s->grp[l], g->slot[l], true);
	if (!s->stopping)
		baton_group_drain(s->grp[l], g->slot[l]);
	count_leave(s, g, l);
	g->slot[l] = -1;
	return true;
}

/* Stopping: every listener's new connections go to the .socket unit's
 * socket from now on, and what waits in the members that close migrates
 * there: it stays queued in systemd's hands until the next start (a
 * restart, or socket activation) takes it, instead of being refused. */
void sdn_stop_to_unit(struct sup *s)
{
	baton_steerset_begin(s->set);	/* every listener in one commit, before any member closes */
	for (int i = 0; s->sd && i < s->sd->n; i++) {
		struct passed *p = &s->sd->p[i];
		int l = p->listener, slot;

		if (!p->unit || p->keep < 0 || l < 0 || l >= s->nl || s->shared[l] >= 0 || !s->grp || !s->grp[l])
			continue;
		for (slot = 0; slot < BATON_MAX_SLOTS; slot++) {
			int fd = baton_group_fd(s->grp[l], slot);

			if (fd >= 0 && fd_ino(fd) == p->ino)
				break;
		}
		if (slot == BATON_MAX_SLOTS)
			slot = baton_group_add(s->grp[l], p->keep, 0);
		if (slot < 0) {
			say_warn(s, "stopping: cannot steer listener %d to the .socket unit's socket: %s", l,
				 strerror(-slot));
			continue;
		}
		baton_group_set_foreign(s->grp[l], slot, true);
		baton_group_unfence(s->grp[l], slot);
		baton_group_set_down(s->grp[l], slot, false);
		if (!baton_group_activate(s->grp[l], slot))
			say(s, "stopping: new connections on listener %d wait in the .socket unit's socket for the next "
			       "start", l);
	}
	if (s->set)
		baton_steerset_commit(s->set);
}

const char *listener_mode(const struct sup *s, int l)
{
	return s->shared && s->shared[l] >= 0 ? "shared" : "steered";
}

bool sdn_passed(const struct sup *s, int l)
{
	return (s->shared && s->shared[l] >= 0) || (s->first && s->first[l] >= 0);
}

void sdn_mark_ours(struct sup *s, ino_t ino)
{
	struct passed *v;

	if (!s->sd)
		return;
	v = realloc(s->sd->p, (size_t)(s->sd->n + 1) * sizeof(*v));
	if (!v)
		return;
	s->sd->p = v;
	s->sd->p[s->sd->n++] = (struct passed){ .fd = -1, .ino = ino, .keep = -1, .listener = -1 };
}

bool sdn_ours(const struct sup *s, unsigned long long ino)
{
	for (int i = 0; s->sd && i < s->sd->n; i++)
		if ((unsigned long long)s->sd->p[i].ino == ino)
			return true;
	for (int l = 0; l < s->nl; l++)
		if (s->shared[l] >= 0 && (unsigned long long)s->shared_ino[l] == ino)
			return true;
	return false;
}

int sdn_dup_ino(struct sup *s, unsigned long long ino)
{
	int l, i, fd;

	if (!ino)
		return -ENOENT;
	for (l = 0; l < s->nl; l++)
		if (s->shared[l] >= 0 && (unsigned long long)s->shared_ino[l] == ino)
		{
			fd = fcntl(s->shared[l], F_DUPFD_CLOEXEC, 3);
			return fd < 0 ? -errno : fd;
		}
	/* a member already: no fresh generation may take it again */
	for (l = 0; l < s->nl; l++)
		if (s->first[l] >= 0 && (unsigned long long)fd_ino(s->first[l]) == ino) {
			fd = s->first[l];
			s->first[l] = -1;
			return fd;
		}
	for (i = 0; s->sd && i < s->sd->n; i++)
		if (s->sd->p[i].fd >= 0 && (unsigned long long)s->sd->p[i].ino == ino) {
			fd = s->sd->p[i].fd;
			s->sd->p[i].fd = -1;
			return fd;
		}
	return -ENOENT;
}

int sdn_member_fd(struct sup *s, int l)
{
	int fd = s->first ? s->first[l] : -1;

	if (s->first)
		s->first[l] = -1;
	return fd;
}

/* tcp://127.0.0.1:8080 for a socket, as a --listen would say it. */
static void sock_text(int fd, char *buf, size_t len, struct baton_spec *sp)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int type = 0;
	socklen_t tl = sizeof(type);
	char host[INET6_ADDRSTRLEN] = "?";

	memset(sp, 0, sizeof(*sp));
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
	    (type != SOCK_STREAM && type != SOCK_DGRAM)) {
		snprintf(buf, len, "fd %d: not a TCP or UDP socket", fd);
		return;
	}
	sp->proto = type == SOCK_STREAM ? BATON_PROTO_TCP : BATON_PROTO_UDP;
	sp->family = ss.ss_family;
	sp->addr = ss;
	sp->addrlen = sl;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		sp->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		snprintf(buf, len, "%s://%s:%u", sp->proto == BATON_PROTO_TCP ? "tcp" : "udp", host, sp->port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		sp->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(buf, len, "%s://[%s]:%u", sp->proto == BATON_PROTO_TCP ? "tcp" : "udp", host, sp->port);
	}
}

static bool same_address(const struct baton_spec *a, const struct baton_spec *b)
{
	if (a->proto != b->proto || a->family != b->family || a->port != b->port || !a->port)
		return false;
	if (a->family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)&a->addr)->sin_addr,
			       &((const struct sockaddr_in *)&b->addr)->sin_addr, 4);
	return !memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
		       &((const struct sockaddr_in6 *)&b->addr)->sin6_addr, 16);
}

/* Gives passed socket P (described by GOT) to listener L: a name match
 * takes the socket's address for the listener. */
static int take(struct sup *s, struct passed *p, int l, const struct baton_spec *got, const char *text)
{
	struct baton_spec *sp = &s->spec[l];
	int one = 0, acc = 0, fd = p->fd;
	socklen_t ol = sizeof(one), al = sizeof(acc);
	char spec[256];

	baton_spec_format(sp, spec, sizeof(spec));
	if (sdn_passed(s, l)) {
		say_err(s, "socket activation passed two sockets for --listen %s (the second: fd %d, %s); pass one", spec,
		    fd, text);
		return -EINVAL;
	}
	if (sp->proto != got->proto) {
		say_err(s, "socket activation passed fd %d named \"%s\" (%s) for --listen %s, another protocol; fix the "
		       "name= option or FileDescriptorName=", fd, p->name, text, spec);
		return -EINVAL;
	}
	if (!same_address(sp, got)) {
		sp->family = got->family;
		sp->addr = got->addr;
		sp->addrlen = got->addrlen;
		sp->port = got->port;
	}
	p->listener = l;
	p->unit = true;	/* not from the store: the .socket unit's, for as long as it exists */
	p->keep = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	/* a socket that was shut down (a fenced member) listens again */
	if (sp->proto == BATON_PROTO_TCP && !getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) && !acc)
		listen(fd, sp->backlog > 0 ? sp->backlog : 4096);
	if (!getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, &ol) && one) {
		s->first[l] = fd;
		p->fd = -1;	/* the listener owns it now; p->ino still says it is ours */
		say(s, "socket activation: --listen %s takes passed fd %d (%s, SO_REUSEPORT): it is gen 1's member "
		       "of the steered group", spec, fd, text);
	} else {
		s->shared[l] = fd;
		s->shared_ino[l] = p->ino;
		p->fd = -1;
		say(s, "socket activation: --listen %s takes passed fd %d (%s, no SO_REUSEPORT): shared mode, every "
		       "generation gets this same socket (nothing is refused, but reloads are not steered)", spec,
		    fd, text);
	}
	return 0;
}

/* One connection to listener FD's own address, closed at once: a
 * generation that called accept() in the moment between systemd clearing
 * O_NONBLOCK (before it ran baton) and baton setting it back is blocked
 * there until a connection comes, and under a load that waits for its
 * answers none may come. This one wakes it; the next accept() says EAGAIN
 * again. The connection is steered like any other, by the policy in force. */
static void wake_acceptor(struct sup *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	int acc = 0, c;
	socklen_t al = sizeof(acc);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) || !acc || getsockname(fd, (struct sockaddr *)&ss, &sl))
		return;
	if (ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY))
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return;
	c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		return;
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c, (struct sockaddr *)&ss, sl) && s->cfg->verbose)
		say_warn(s, "waking a blocked accept() on fd %d: %s", fd, strerror(errno));
	close(c);
}

/* The flags a stored socket had (its FDNAME says them) come back at once:
 * a running generation that accepts until EAGAIN would otherwise block in
 * accept() on a listener systemd just made blocking. */
static void restore_flags(struct sup *s, const struct passed *p)
{
	unsigned long long ino;
	unsigned fl;
	int l, now = fcntl(p->fd, F_GETFL);

	if (sscanf(p->name, STORE_PREFIX "%d-%llu-f%x", &l, &ino, &fl) != 3 || now < 0 || (unsigned)now == fl)
		return;
	if (fcntl(p->fd, F_SETFL, (int)fl))
		say_warn(s, "cannot restore the file status flags of stored fd %d (%s): %s", p->fd, p->name,
			 strerror(errno));
	else if (s->cfg->verbose || ((unsigned)now ^ fl) & O_NONBLOCK)
		say(s, "fd %d from the fd store (%s): file status flags %#o restored (passed as %#o)", p->fd, p->name,
		    fl, (unsigned)now);
	if (fl & O_NONBLOCK && !((unsigned)now & O_NONBLOCK))
		wake_acceptor(s, p->fd);
}

/* LISTEN_FDS meant for this process: each socket goes to the --listen of
 * its name (LISTEN_FDNAMES = name=), else of its address; sockets from the
 * fd store are kept for the resume. */
static int intake(struct sup *s)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS"), *names = getenv("LISTEN_FDNAMES");
	char *end, *namebuf = NULL, *tok, *save = NULL, dupname[8][256];
	long n, i;
	int r = 0, l, ndup = 0;

	if (!pid || !fds || strtol(pid, &end, 10) != (long)getpid() || *end)
		goto out;
	n = strtol(fds, &end, 10);
	if (*end || n < 0 || n > 4096) {
		say_warn(s, "LISTEN_FDS=\"%s\" is not a count of sockets; ignoring it", fds);
		goto out;
	}
	s->sd->p = calloc((size_t)n + 1, sizeof(*s->sd->p));
	namebuf = strdup(names ? names : "");
	if (!s->sd->p || !namebuf) {
		r = -ENOMEM;
		goto out;
	}
	tok = strtok_r(namebuf, ":", &save);
	for (i = 0; i < n; i++) {
		struct passed *p = &s->sd->p[s->sd->n];
		int fd = 3 + (int)i, j;
		bool dup = false;

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		p->fd = fd;
		p->listener = -1;
		p->ino = fd_ino(fd);
		snprintf(p->name, sizeof(p->name), "%s", tok ? tok : "");
		tok = tok ? strtok_r(NULL, ":", &save) : NULL;
		p->stored = !strncmp(p->name, STORE_PREFIX, strlen(STORE_PREFIX));
		p->keep = -1;
		if (p->stored)
			restore_flags(s, p);
		/* the .socket unit's socket may be in the store too: once is enough */
		for (j = 0; j < s->sd->n; j++)
			if (s->sd->p[j].ino == p->ino && s->sd->p[j].fd >= 0)
				dup = true;
		if (!p->ino) {
			say_err(s, "LISTEN_FDS=%ld, but fd %d is not open: whoever started baton passed fewer sockets than "
			       "it said", n, fd);
			r = -EBADF;
			goto out;
		}
		if (dup) {
			/* its store name (with its flags) is still needed to remove it */
			if (p->stored && ndup < 8)
				snprintf(dupname[ndup++], sizeof(dupname[0]), "%s", p->name);
			close(fd);
			continue;
		}
		s->sd->n++;
	}
	for (i = 0; i < s->sd->n && !r; i++) {
		struct passed *p = &s->sd->p[i];
		struct baton_spec got;
		char text[256];
		int byname = -1, byaddr = -1;

		if (p->stored)
			continue;
		sock_text(p->fd, text, sizeof(text), &got);
		if (!got.proto) {
			say_err(s, "socket activation passed %s (name \"%s\"); baton takes TCP and UDP sockets only", text,
			    p->name);
			r = -EINVAL;
			break;
		}
		for (l = 0; l < s->nl; l++) {
			if (byname < 0 && p->name[0] && !strcmp(s->spec[l].name, p->name))
				byname = l;
			if (byaddr < 0 && same_address(&s->spec[l], &got))
				byaddr = l;
		}
		if (byname < 0 && byaddr < 0) {
			say_err(s, "socket activation passed fd %d (%s%s%s%s) but no --listen matches it: add --listen %s, "
			       "or put name=%s on the --listen it stands for (and check ListenStream= in the .socket unit)",
			    p->fd, text, p->name[0] ? ", name \"" : "", p->name, p->name[0] ? "\"" : "", text,
			    p->name[0] ? p->name : "NAME (FileDescriptorName=NAME in the .socket unit)");
			r = -EINVAL;
			break;
		}
		r = take(s, p, byname >= 0 ? byname : byaddr, &got, text);
	}
	for (i = 0; i < ndup; i++) {
		unsigned long long ino;

		if (sscanf(dupname[i], STORE_PREFIX "%d-%llu", &l, &ino) == 2)
			remember_name(s, l, (ino_t)ino, dupname[i]);
	}
out:
	free(namebuf);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return r;
}

/* baton upgrade: the .socket unit's sockets cross the exec as inherited
 * fds named in BATON_UNIT_FDS ("FD/LISTENER,..."), so the re-executed
 * supervisor still knows which socket is systemd's (never shut down). */
#define UNIT_ENV "BATON_UNIT_FDS"

void sdn_upgrade_pass(struct sup *s, bool pass)
{
	char env[512] = "";
	size_t used = 0;

	for (int i = 0; s->sd && i < s->sd->n; i++) {
		struct passed *p = &s->sd->p[i];
		int fl;

		if (!p->unit || p->keep < 0 || (fl = fcntl(p->keep, F_GETFD)) < 0)
			continue;
		fcntl(p->keep, F_SETFD, pass ? fl & ~FD_CLOEXEC : fl | FD_CLOEXEC);
		if (used < sizeof(env) - 24)
			used += (size_t)snprintf(env + used, sizeof(env) - used, "%s%d/%d", used ? "," : "", p->keep,
						 p->listener);
	}
	if (pass && used)
		setenv(UNIT_ENV, env, 1);
	else
		unsetenv(UNIT_ENV);
}

static void unit_from_env(struct sup *s)
{
	const char *env = getenv(UNIT_ENV);
	int fd, l, n;

	while (env && sscanf(env, "%d/%d%n", &fd, &l, &n) == 2) {
		struct passed *v = realloc(s->sd->p, (size_t)(s->sd->n + 1) * sizeof(*v));
		ino_t ino = fd >= 3 ? fd_ino(fd) : 0;

		if (v && ino && l >= 0 && l < s->nl) {
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			s->sd->p = v;
			v[s->sd->n++] = (struct passed){ .fd = -1, .ino = ino, .unit = true, .keep = fd, .listener = l };
		} else if (v) {
			s->sd->p = v;
		}
		env += n;
		if (*env != ',')
			break;
		env++;
	}
	unsetenv(UNIT_ENV);
}

int sdn_init(struct sup *s)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sdn *d;
	int r;

	d = s->sd = calloc(1, sizeof(*s->sd));
	if (!d)
		return -ENOMEM;
	d->fd = -1;
	if (path && *path) {
		if ((path[0] != '/' && path[0] != '@') || baton_unix_addr(path, &d->addr, &d->addrlen)) {
			say_warn(s, "NOTIFY_SOCKET=\"%s\" is not a unix socket path; not notifying the service manager", path);
		} else {
			d->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (d->fd < 0)
				say_warn(s, "cannot notify the service manager: %s", strerror(errno));
		}
	}
	r = intake(s);
	unit_from_env(s);
	return r;
}

void sdn_free(struct sup *s)
{
	if (s->sd) {
		for (int i = 0; i < s->sd->n; i++) {
			if (s->sd->p[i].fd >= 0)
				close(s->sd->p[i].fd);
			if (s->sd->p[i].keep >= 0)
				close(s->sd->p[i].keep);	/* baton's copy only: systemd keeps its own */
		}
		if (s->sd->fd >= 0)
			close(s->sd->fd);
		free(s->sd->p);
		free(s->sd);
		s->sd = NULL;
	}
	for (int l = 0; s->first && l < s->nl; l++) {
		if (s->first[l] >= 0)
			close(s->first[l]);
		if (s->shared[l] >= 0)
			close(s->shared[l]);
		s->first[l] = s->shared[l] = -1;
	}
}

/* How long a retiring generation may keep accepting what waits in the
 * .socket unit's socket before it is told to stop: that queue cannot be
 * moved by a shutdown (systemd's socket is never shut down), and nothing
 * new lands there once the generation has no weight. */
#define UNIT_DRAIN_MS 1000

static bool unit_queued(struct sup *s, struct gen *g)
{
	for (int l = 0; l < s->nl; l++) {
		struct baton_queue q;
		int fd = g->slot[l] >= 0 ? baton_group_fd(s->grp[l], g->slot[l]) : -1;

		if (fd_is_unit(s, fd) && !baton_group_queue(s->grp[l], g->slot[l], &q) && q.len)
			return true;
	}
	return false;
}

/* stop_gen of generation G, which served: if it holds systemd's socket
 * with connections queued, it is signalled only once it has accepted them
 * (sdn_unit_wait_check). Not when baton stops: the queue stays for the
 * next start. */
bool sdn_unit_hold(struct sup *s, struct gen *g)
{
	if (s->stopping || !unit_queued(s, g))
		return false;
	g->unit_wait = true;
	say(s, "gen %d (pid %d) first accepts what waits in the .socket unit's socket (at most %d ms): baton never "
	       "shuts that socket down", g->id, (int)g->pid, UNIT_DRAIN_MS);
	return true;
}

void sdn_unit_wait_check(struct sup *s, struct gen *g, long long now)
{
	if (unit_queued(s, g) && now - g->stop_ms < UNIT_DRAIN_MS)
		return;
	g->unit_wait = false;
	g->stop_ms = now;	/* the grace before SIGKILL starts now */
	if (g->id == 0)
		takeover_signal(s, g);
	else
		s->ops->kill(g->pid, s->cfg->stop_signal);
}

/* A clean stop: the .socket unit's socket leaves baton's steering for good
 * (the next baton's group must be able to take it: a socket sits in one
 * sockarray at a time) and the kernel's own hash picks it meanwhile, the
 * only listener left. Still never shut down; systemd keeps its copy. */
void sdn_release_unit(struct sup *s)
{
	for (int l = 0; s->sd && s->grp && l < s->nl; l++)
		for (int slot = 0; s->grp[l] && slot < BATON_MAX_SLOTS; slot++) {
			int fd = baton_group_fd(s->grp[l], slot);

			if (!fd_is_unit(s, fd))
				continue;
			baton_group_set_foreign(s->grp[l], slot, true);
			baton_group_detach(s->grp[l]);
			baton_group_remove(s->grp[l], slot);
		}
}
