/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton run --takeover PID`: the listening sockets a running server (not
 * started by baton) holds on the --listen addresses, copied with
 * pidfd_getfd, become generation 0: SO_REUSEPORT ones are members of the
 * steered groups (drained like any old generation once gen 1 is ready),
 * others the shared listener every generation gets. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "gen.h"
#include "metrics.h"
#include "sdnotify.h"
#include "takeover.h"
#include "util.h"

#define MAX_PIDS 256      /* a server and its workers */
#define MAX_TAKEN 1024

struct taken {
	pid_t pid;          /* who holds it (the first found) */
	unsigned long long start;  /* its start time when it was scanned */
	int fd;             /* its fd there */
	unsigned long long ino;
	int l;              /* the --listen it is on */
};

struct scan {
	struct sup *s;
	const struct baton_sock *socks;
	size_t nsocks;
	pid_t pid;
	unsigned long long start;   /* of pid */
	struct taken *t;
	int nt;
	char held[1024];    /* listeners the process holds on other addresses, for the error */
};

static bool on_spec(const struct baton_spec *sp, const struct baton_sock *k)
{
	if (k->proto != sp->proto || k->lport != sp->port || k->family != sp->family || !sp->port)
		return false;
	if (sp->family == AF_INET)
		return !memcmp(k->local, &((const struct sockaddr_in *)&sp->addr)->sin_addr, 4);
	return !memcmp(k->local, &((const struct sockaddr_in6 *)&sp->addr)->sin6_addr, 16);
}

static void sock_addr_text(const struct baton_sock *k, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	inet_ntop(k->family, k->local, host, sizeof(host));
	snprintf(buf, len, k->family == AF_INET6 ? "%s://[%s]:%u" : "%s://%s:%u",
		 k->proto == BATON_PROTO_UDP ? "udp" : "tcp", host, k->lport);
}

static int on_fd(void *ctx, int fd, unsigned long long ino)
{
	struct scan *c = ctx;

	for (size_t i = 0; i < c->nsocks; i++) {
		const struct baton_sock *k = &c->socks[i];
		int l;

		if (k->inode != ino || (k->proto == BATON_PROTO_TCP ? k->state != 10 : k->state != 7))
			continue;
		for (l = 0; l < c->s->nl; l++)
			if (on_spec(&c->s->spec[l], k))
				break;
		if (l == c->s->nl) {
			char text[96];
			size_t used = strlen(c->held);

			sock_addr_text(k, text, sizeof(text));
			if (!strstr(c->held, text) && used + strlen(text) + 3 < sizeof(c->held))
				snprintf(c->held + used, sizeof(c->held) - used, "%s%s", used ? ", " : "", text);
			return 0;
		}
		for (int j = 0; j < c->nt; j++)
			if (c->t[j].ino == ino)
				return 0;	/* the master and its workers share it */
		if (c->nt < MAX_TAKEN)
			c->t[c->nt++] = (struct taken){ .pid = c->pid, .start = c->start, .fd = fd, .ino = ino,
							.l = l };
		return 0;
	}
	return 0;
}

/* PID and its descendants (workers), breadth first. */
static int family_of(pid_t pid, pid_t *out, int max)
{
	int n = 0, i;

	out[n++] = pid;
	for (i = 0; i < n && n < max; i++) {
		int got = baton_proc_children(out[i], out + n, max - n);

		n += got > 0 ? got : 0;
	}
	return n;
}

static void comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64], raw[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, raw, sizeof(raw) - 1);
	if (fd >= 0)
		close(fd);
	raw[n > 0 ? n : 0] = '\0';
	raw[strcspn(raw, "\n")] = '\0';
	/* the name is the process owner's to choose: escaped for the log */
	baton_text_escape(buf, len, raw, 0);
	if (!buf[0])
		snprintf(buf, len, "?");
}

static void perm_hint(char *buf, size_t len)
{
	snprintf(buf, len, "permission denied: copying another process's socket needs CAP_SYS_PTRACE, or the same "
		 "uid as that process (baton runs as uid %u)", (unsigned)geteuid());
}

/* Generation 0: PIDS[0] is its pid, the others are signalled with it,
 * each through its pidfd PIDFDS[i] (taken over by generation 0). */
static int make_gen0(struct sup *s, const pid_t *pids, int *pidfds, int npids)
{
	struct baton_proc_stat st;
	int gi = alloc_gen(s);
	struct gen *g;

	if (gi < 0)
		return -EAGAIN;
	g = &s->gen[gi];
	gen_reset(s, g);
	g->id = 0;
	g->pid = pids[0];
	g->adopted = true;	/* not our child: its exit shows through its pidfd */
	g->status = -1;
	gen_set_state(s, gi, GEN_ACTIVE, "taken over: it serves");
	g->start_us = g->ready_us = baton_mono_us();
	g->start_wall_ms = baton_wall_ms();
	if (!baton_proc_stat(g->pid, -1, &st))
		g->start_ticks = st.start;
	g->pidfd = fcntl(pidfds[0], F_DUPFD_CLOEXEC, 3);	/* the process that was named, not a reuse of its pid */
	gen_watch_pid(s, gi);
	takeover_pids_free(s);
	s->tk_pids = malloc((size_t)npids * sizeof(*s->tk_pids));
	s->tk_pidfds = malloc((size_t)npids * sizeof(*s->tk_pidfds));
	if (s->tk_pids && s->tk_pidfds) {
		memcpy(s->tk_pids, pids, (size_t)npids * sizeof(*pids));
		for (int i = 0; i < npids; i++) {
			s->tk_pidfds[i] = pidfds[i];
			pidfds[i] = -1;
		}
		s->ntk_pids = npids;
	}
	s->active = gi;
	return gi;
}

/* --takeover-reuseport: a taken socket without SO_REUSEPORT gets it, and a
 * socket of baton's (generation 1's member, made here) joins it, so the
 * kernel forms a reuseport group around the running server's socket and
 * the listener is steered like any other. The kernel allows the join only
 * when both sockets belong to the same uid. */
static int convert(struct sup *s, int l, int fd, char *why, size_t wlen)
{
	int one = 1, zero = 0, m;
	struct stat st;

	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) {
		snprintf(why, wlen, "cannot set SO_REUSEPORT on it: %s", strerror(errno));
		return -errno;
	}
	m = baton_listener_open(&s->spec[l]);
	if (m < 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &zero, sizeof(zero));
		snprintf(why, wlen, "no socket of baton's can join it: %s%s", strerror(-m),
			 m == -EADDRINUSE ? " (the server's socket belongs to another uid than baton)" : "");
		return m;
	}
	if (!fstat(m, &st))
		sdn_mark_ours(s, st.st_ino);
	/* connections the kernel hashed to it before the program steers wait
	 * in its queue for generation 1, which gets it as its member */
	s->first[l] = m;
	return 0;
}

/* Puts taken socket FD (of listener L) into generation 0. */
static int add_taken(struct sup *s, struct gen *g, int l, int fd, unsigned long long ino, char *why, size_t wlen)
{
	int one = 0, slot;
	socklen_t ol = sizeof(one);
	char spec[256];

	baton_spec_format(&s->spec[l], spec, sizeof(spec));
	sdn_mark_ours(s, (ino_t)ino);
	if ((getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, &ol) || !one) && s->cfg->takeover_reuseport &&
	    s->shared[l] < 0 && s->first[l] < 0) {
		char cwhy[256];

		if (!convert(s, l, fd, cwhy, sizeof(cwhy))) {
			one = 1;
			say(s, "takeover: %s had no SO_REUSEPORT; baton set it and joined the socket's new reuseport group "
			       "(--takeover-reuseport): steered mode", spec);
		} else {
			say_warn(s, "takeover: --takeover-reuseport on %s: %s; shared mode instead", spec, cwhy);
		}
	}
	if (!one) {
		if (s->shared[l] >= 0) {
			close(fd);
			return 0;	/* the same address cannot have two: already taken */
		}
		s->shared[l] = fd;
		s->shared_ino[l] = (ino_t)ino;
		g->member_ino[l] = (ino_t)ino;
		sdn_store(s, l, fd);
		say(s, "takeover: %s is pid %d's socket without SO_REUSEPORT: shared mode, every generation gets "
		       "this same socket (nothing is refused; reloads are not steered)", spec, (int)g->pid);
		return 0;
	}
	/* it serves now: it keeps its share until gen 1 is ready */
	slot = baton_group_add(s->grp[l], fd, 1);
	if (slot < 0) {
		snprintf(why, wlen, "cannot add the socket on %s (inode %llu) to the steered group: %s", spec, ino,
			 strerror(-slot));
		close(fd);
		return slot;
	}
	sdn_store(s, l, fd);
	close(fd);	/* the group keeps its copy */
	if (g->slot[l] < 0) {
		g->slot[l] = slot;
		g->member_ino[l] = (ino_t)ino;
		count_join(s, g, l);
	} else {
		struct tk_member *v = realloc(s->tkm, (size_t)(s->ntkm + 1) * sizeof(*v));

		if (!v) {
			baton_group_remove(s->grp[l], slot);
			return -ENOMEM;
		}
		s->tkm = v;
		s->tkm[s->ntkm++] = (struct tk_member){ .gi = (int)(g - s->gen), .l = l, .slot = slot,
							.ino = (ino_t)ino };
	}
	return 0;
}

/* Gives up generation 0 without touching the server: baton's copies go,
 * the server's sockets stay as they are (never fenced), and the kernel's
 * own hash picks among them again. */
void takeover_abandon(struct sup *s)
{
	for (int i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];

		if (g->state == GEN_FREE || g->id != 0 || !g->adopted)
			continue;
		for (int l = 0; l < s->nl; l++)
			if (g->slot[l] >= 0) {
				baton_group_remove(s->grp[l], g->slot[l]);
				g->slot[l] = -1;
			}
		for (int k = 0; k < s->ntkm; k++)
			if (s->tkm[k].gi == i && s->tkm[k].slot >= 0)
				baton_group_remove(s->grp[s->tkm[k].l], s->tkm[k].slot);
		s->ntkm = 0;
		for (int l = 0; l < s->nl; l++)
			if (s->grp[l])
				baton_group_detach(s->grp[l]);
		for (int l = 0; l < s->nl; l++)
			if (s->shared[l] >= 0 && s->shared_ino[l] == g->member_ino[l]) {
				close(s->shared[l]);
				s->shared[l] = -1;
			}
		if (s->active == i)
			s->active = -1;
		g->pid = 0;
		gen_reset(s, g);
	}
}

void takeover_pids_free(struct sup *s)
{
	for (int i = 0; s->tk_pidfds && i < s->ntk_pids; i++)
		if (s->tk_pidfds[i] >= 0)
			close(s->tk_pidfds[i]);
	free(s->tk_pids);
	free(s->tk_pidfds);
	s->tk_pids = NULL;
	s->tk_pidfds = NULL;
	s->ntk_pids = 0;
}

int takeover_copy_fd(pid_t pid, unsigned long long start, int fd, unsigned long long ino, char *why, size_t len)
{
	struct baton_proc_stat st;
	struct stat fst;
	int pidfd = baton_pidfd_open(pid), copy;

	if (pidfd < 0) {
		snprintf(why, len, "%s", pidfd == -ESRCH ? "the process is gone" : strerror(-pidfd));
		return pidfd;
	}
	/* the pidfd names the process now; the start time says it is the one
	 * the scan read (not a new process on a reused pid) */
	if (start && (baton_proc_stat(pid, -1, &st) || st.start != start)) {
		close(pidfd);
		snprintf(why, len, "pid %d is no longer the process that was scanned (it exited and the pid was "
			 "reused); nothing was taken: try again", (int)pid);
		return -ESRCH;
	}
	copy = baton_pidfd_getfd(pidfd, fd);
	close(pidfd);
	if (copy < 0) {
		if (copy == -EPERM)
			perm_hint(why, len);
		else
			snprintf(why, len, "%s", strerror(-copy));
		return copy;
	}
	if (fstat(copy, &fst) || (unsigned long long)fst.st_ino != ino) {
		snprintf(why, len, "its fd %d is no longer the listening socket that was scanned (inode %llu, now %llu): "
			 "the server changed its files meanwhile; nothing was taken: try again", fd, ino,
			 (unsigned long long)fst.st_ino);
		close(copy);
		return -ESTALE;
	}
	return copy;
}

int takeover_collect(struct sup *s)
{
	struct baton_collect_opts o = { .sz = sizeof(o), .log = lib_log, .log_ctx = s, .diag_only = true,
					.sock_sz = sizeof(struct baton_sock) };
	struct baton_sock *socks = NULL;
	struct scan c = { .s = s };
	pid_t *fam = NULL;
	int *pidfds = NULL;
	size_t n = 0;
	int r, i, l, gi = -1, nt_before;
	char why[512] = "";

	r = baton_socks_collect(&o, &socks, &n);
	if (r) {
		say_err(s, "takeover: cannot list the listening sockets: %s", strerror(-r));
		return r;
	}
	c.socks = socks;
	c.nsocks = n;
	c.t = calloc(MAX_TAKEN, sizeof(*c.t));
	fam = calloc(MAX_PIDS, sizeof(*fam));
	pidfds = malloc((size_t)s->cfg->ntakeover * sizeof(*pidfds));
	if (!c.t || !fam || !pidfds) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s->cfg->ntakeover; i++)
		pidfds[i] = -1;
	for (i = 0; i < s->cfg->ntakeover; i++) {
		pid_t pid = s->cfg->takeover[i];
		int pidfd = baton_pidfd_open(pid), nf, k;
		char comm[4 * BATON_COMM_MAX + 1];

		if (pidfd < 0) {
			say_err(s, "--takeover %d: %s", (int)pid,
			    pidfd == -ESRCH ? "no such process (it is gone): check the pid (e.g. cat the server's pid file)"
					    : strerror(-pidfd));
			r = pidfd == -ESRCH ? -ESRCH : pidfd;
			goto out;
		}
		/* kept: every signal to it goes through this pidfd, never the pid */
		pidfds[i] = pidfd;
		comm_of(pid, comm, sizeof(comm));
		c.held[0] = '\0';
		nt_before = c.nt;
		nf = family_of(pid, fam, MAX_PIDS);
		for (k = 0; k < nf; k++) {
			struct baton_proc_stat ps;

			c.pid = fam[k];
			c.start = baton_proc_stat(fam[k], -1, &ps) ? 0 : ps.start;
			r = baton_proc_sockets(fam[k], 1u << 20, on_fd, &c);
			if (r == -EACCES || r == -EPERM) {
				perm_hint(why, sizeof(why));
				say_err(s, "--takeover %d (%s): cannot read its open files: %s", (int)fam[k], comm, why);
				goto out;
			}
		}
		r = 0;
		if (c.nt == nt_before) {
			say_err(s, "--takeover %d (%s) holds no listening socket on any --listen address; it listens on %s. "
			       "Give the --listen that matches one of them", (int)pid, comm,
			    c.held[0] ? c.held : "nothing at all (is it the right process? a master, not a worker?)");
			r = -ENOENT;
			goto out;
		}
	}
	/* every --takeover PID's sockets form generation 0 */
	gi = make_gen0(s, s->cfg->takeover, pidfds, s->cfg->ntakeover);
	if (gi < 0) {
		r = gi;
		goto out;
	}
	for (i = 0; i < c.nt; i++) {
		struct taken *t = &c.t[i];
		char comm[4 * BATON_COMM_MAX + 1];
		int fd;

		comm_of(t->pid, comm, sizeof(comm));
		fd = takeover_copy_fd(t->pid, t->start, t->fd, t->ino, why, sizeof(why));
		if (fd < 0) {
			say_err(s, "--takeover: cannot copy fd %d of pid %d (%s): %s", t->fd, (int)t->pid, comm, why);
			r = fd;
			goto out;
		}
		why[0] = '\0';
		if ((r = add_taken(s, &s->gen[gi], t->l, fd, t->ino, why, sizeof(why)))) {
			say_err(s, "--takeover: %s", why);
			goto out;
		}
	}
	for (l = 0; l < s->nl; l++) {
		char spec[256];
		int members = s->gen[gi].slot[l] >= 0;

		baton_spec_format(&s->spec[l], spec, sizeof(spec));
		for (i = 0; i < s->ntkm; i++)
			members += s->tkm[i].l == l;
		if (s->shared[l] >= 0)
			continue;
		if (!members)
			say(s, "takeover: no taken socket is on --listen %s: it binds as usual", spec);
		else
			say(s, "takeover: %s: %d socket%s of pid %d joined the steered group as gen 0; drained once gen 1 "
			       "is ready", spec, members, members == 1 ? "" : "s", (int)s->gen[gi].pid);
	}
out:
	if (r && gi >= 0)
		takeover_abandon(s);
	baton_socks_free(socks);
	free(c.t);
	free(fam);
	for (i = 0; pidfds && i < s->cfg->ntakeover; i++)
		if (pidfds[i] >= 0)
			close(pidfds[i]);
	free(pidfds);
	return r;
}

/* Generation 0's members beyond one per listener go with it. */
void takeover_release(struct sup *s, struct gen *g, bool fence)
{
	int gi = (int)(g - s->gen), k, w = 0;

	for (k = 0; k < s->ntkm; k++) {
		struct tk_member *m = &s->tkm[k];

		if (m->gi != gi) {
			s->tkm[w++] = *m;
			continue;
		}
		sdn_unstore(s, m->l, m->ino);
		if (fence)
			baton_group_fence(s->grp[m->l], m->slot);
		baton_group_remove(s->grp[m->l], m->slot);
	}
	s->ntkm = w;
}

/* Like watch_drain for the extra members: a queue that stopped shrinking
 * is fenced, so what waits there moves to the serving generation. */
void takeover_drain(struct sup *s, struct gen *g, long long now)
{
	int gi = (int)(g - s->gen);

	for (int k = 0; k < s->ntkm; k++) {
		struct tk_member *m = &s->tkm[k];
		struct baton_queue q;

		if (m->gi != gi || m->slot < 0 || baton_group_queue(s->grp[m->l], m->slot, &q))
			continue;
		if (!q.len) {
			m->stall_since = 0;
			m->last_len = 0;
			continue;
		}
		if (!m->stall_since || q.len < m->last_len)
			m->stall_since = now;
		m->last_len = q.len;
		if (now - m->stall_since >= STALL_MS) {
			sdn_unstore(s, m->l, m->ino);
			baton_group_fence(s->grp[m->l], m->slot);
			baton_group_remove(s->grp[m->l], m->slot);
			m->slot = -1;
		}
	}
}

/* Generation 0 is told to stop: every --takeover PID. */
void takeover_signal(struct sup *s, struct gen *g)
{
	int sig = s->cfg->takeover_signal ? s->cfg->takeover_signal : s->cfg->stop_signal;

	gen_signal(s, g, sig);
	for (int i = 0; i < s->ntk_pids; i++) {
		if (s->tk_pids[i] == g->pid)
			continue;
		/* by the pidfd opened when it was named: a pid reused since is
		 * never signalled (no pidfd, e.g. after a resume: not at all) */
		if (s->tk_pidfds && s->tk_pidfds[i] >= 0 && s->ops->pidfd_signal)
			s->ops->pidfd_signal(s->tk_pidfds[i], sig);
		else if (!s->ops->pidfd_signal)
			s->ops->kill(s->tk_pids[i], sig);
	}
}

/* Resume: a second member of generation 0 on listener L. */
int takeover_add_member(struct sup *s, int gi, int l, int slot, ino_t ino)
{
	struct tk_member *v = realloc(s->tkm, (size_t)(s->ntkm + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	s->tkm = v;
	s->tkm[s->ntkm++] = (struct tk_member){ .gi = gi, .l = l, .slot = slot, .ino = ino };
	return 0;
}
