/* SPDX-License-Identifier: BSD-2-Clause */
/* Health of the generations: the watch over the active one (frozen or
 * hung: replaced), the drain watch over stopping ones, and --stop-when-idle. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canary.h"
#include "control.h"
#include "core.h"
#include "gen.h"
#include "health.h"
#include "metrics.h"
#include "sdnotify.h"
#include "takeover.h"
#include "util.h"

/* Classic BPF: how long a generation must stay stopped before the watch
 * replaces it (and its queue, which cannot move, is reset). */
#define CBPF_STOP_MS 100

/* --stop-when-idle: for servers whose stop signal cuts requests in flight
 * (python's http.server dies on SIGTERM, and SIGINT can land between its
 * accept() and the thread that serves). Fence the members so their queue
 * moves to the new generation and nothing new arrives, then signal once the
 * process holds no socket but its members (or after --grace). */
bool stop_when_idle(struct sup *s, struct gen *g)
{
	int l;

	if (!s->cfg->stop_when_idle || s->stopping)
		return false;
	for (l = 0; l < s->nl && s->shared[l] >= 0; l++)
		;
	if (l == s->nl)
		return false;	/* all shared: nothing can take the traffic away from it first */
	for (l = 0; l < s->nl; l++) {
		struct stat st;

		if (s->shared[l] >= 0)
			continue;	/* shared: its inode stays, and it cannot be fenced */
		g->member_ino[l] = 0;
		if (g->slot[l] >= 0 && !fstat(baton_group_fd(s->grp[l], g->slot[l]), &st))
			g->member_ino[l] = st.st_ino;
	}
	release_members(s, g);
	g->idle_wait = true;
	return true;
}

struct busy_ctx {
	const struct sup *s;
	const struct gen *g;
	int n;
};

static int count_busy(void *ctx, int fd, unsigned long long ino)
{
	struct busy_ctx *c = ctx;
	int l;

	(void)fd;
	for (l = 0; l < c->s->nl; l++)
		if (c->g->member_ino[l] == (ino_t)ino)
			return 0;
	c->n++;
	return 0;
}

/* Sockets PID holds other than the generation's members; -1 if unknown. */
static int busy_sockets(const struct sup *s, const struct gen *g, pid_t pid)
{
	struct busy_ctx c = { .s = s, .g = g };

	return baton_proc_sockets(pid, 65536, count_busy, &c) < 0 ? -1 : c.n;
}

void idle_check(struct sup *s, struct gen *g, long long now)
{
	int n = busy_sockets(s, g, g->pid), nkids, i;
	pid_t kids[256];

	/* its children (workers) count too, one level down */
	nkids = baton_proc_children(g->pid, kids, 256);
	for (i = 0; i < nkids && n >= 0; i++) {
		int c = busy_sockets(s, g, kids[i]);

		n += c > 0 ? c : 0;
	}
	if (n > 0 && now - g->stop_ms < s->cfg->grace_ms)
		return;
	if (n > 0)
		say_warn(s, "gen %d (pid %d) still holds %d connection%s after the %lld ms grace; stopping it anyway",
		    g->id, (int)g->pid, n, n == 1 ? "" : "s", s->cfg->grace_ms);
	g->idle_wait = false;
	g->stop_ms = now;	/* the grace before SIGKILL starts now */
	if (g->id == 0)
		takeover_signal(s, g);
	else
		gen_signal(s, g, s->cfg->stop_signal);
}

/* Does G's process (or one of its children, the workers) still hold the
 * member socket INO? */
static bool holds_member(const struct gen *g, ino_t ino)
{
	pid_t kids[256];
	int n;

	if (!ino || g->pid <= 0)
		return false;
	if (baton_proc_socket_fd(g->pid, 65536, ino) >= 0)
		return true;
	n = baton_proc_children(g->pid, kids, 256);
	for (int i = 0; i < n; i++)
		if (baton_proc_socket_fd(kids[i], 65536, ino) >= 0)
			return true;
	return false;
}

/* Without eBPF the kernel moves a fenced listener's queue only with
 * net.ipv4.tcp_migrate_req=1 (read in this network namespace); else what
 * waits there is reset. */
static bool queue_movable(struct sup *s, int l)
{
	char c = '0';
	int fd;

	if (baton_group_mode(s->grp[l]) == BATON_MODE_EBPF)
		return true;
	fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = '0';
		close(fd);
	}
	return c == '1';
}

/* Whether G may still accept from its listener INO: a process of it holds
 * the socket and its main process is not stopped (SIGSTOP). The look (a
 * scan of its fd tables) is made at most every 100 ms; the answer is kept
 * meanwhile, for every listener of the generation. */
static bool may_still_accept(struct gen *g, ino_t ino, long long now)
{
	struct baton_proc_stat st;

	if (g->accept_look_ms && now - g->accept_look_ms < 100)
		return g->accept_may;
	g->accept_look_ms = now;
	g->accept_may = !baton_proc_stat(g->pid, -1, &st) && st.state != 'T' && st.state != 't' &&
			st.state != 'Z' && holds_member(g, ino);
	return g->accept_may;
}

/* A draining generation's members: once a queue stops shrinking (nobody
 * accepts from it any more), fence it so what waits there moves now rather
 * than when the process finally exits. A generation that still holds the
 * listener and is not stopped may only be slow to accept (a busy machine,
 * a collection pause), and a fence makes its accept() fail (EINVAL), which
 * Go's Serve returns as fatal: the server exits and resets what it had
 * accepted and not yet read. Its queue is moved once it has not shrunk for
 * DRAIN_HELD_MS; one that nobody holds any more (closed at its graceful
 * stop) or of a stopped generation after STALL_MS. A UDP member has no queue to move
 * (fencing it only ends its flows), and a queue that cannot move (classic
 * BPF) is reset by a fence: while its process still holds the listener and
 * the grace lasts, it may yet accept what waits there, so it is left alone. */
void watch_drain(struct sup *s, struct gen *g, long long now)
{
	int l;

	for (l = 0; l < s->nl; l++) {
		struct baton_queue q;

		if (!in_batch(s, l) || g->slot[l] < 0 || s->spec[l].proto != BATON_PROTO_TCP ||
		    baton_group_queue(s->grp[l], g->slot[l], &q))
			continue;
		if (!q.len) {
			g->stall_since[l] = 0;
			g->last_len[l] = 0;
			continue;
		}
		if (!g->stall_since[l] || q.len < g->last_len[l])
			g->stall_since[l] = now;
		g->last_len[l] = q.len;
		if (now - g->stall_since[l] >= STALL_MS) {
			if (now - g->stall_since[l] < DRAIN_HELD_MS && may_still_accept(g, g->member_ino[l], now))
				continue;
			if (sdn_park_unit(s, g, l)) {
				/* systemd's socket cannot be shut down to move its queue */
				say_warn(s, "gen %d stopped accepting with %u queued in the .socket unit's socket "
					    "(listener %d); they wait there until the next start of the service takes it",
					 g->id, q.len, l);
				continue;
			}
			if (now - g->stop_ms < s->cfg->grace_ms && !queue_movable(s, l) &&
			    holds_member(g, g->member_ino[l])) {
				if (!g->drain_kept)
					say(s, "gen %d has %u queued on listener %d and still holds it: classic BPF "
					       "cannot move them (they would be reset), so they wait for it to accept "
					       "them (at most the %s grace)", g->id, q.len, l,
					    fmt_duration(s->cfg->grace_ms));
				g->drain_kept = true;
				continue;
			}
			say(s, "gen %d stopped accepting with %u queued on listener %d; moving them to gen %d", g->id,
			    q.len, l, s->active >= 0 ? s->gen[s->active].id : 0);
			sdn_unstore(s, l, g->member_ino[l]);
			baton_group_fence(s->grp[l], g->slot[l]);
			count_leave(s, g, l);
			baton_group_remove(s->grp[l], g->slot[l]);
			g->slot[l] = -1;
		}
	}
	if (g->id == 0 && s->ntkm)
		takeover_drain(s, g, now);
}

/* What wakes the health watch, so that an idle supervisor costs nothing.
 * Stops come as events (SIGCHLD for its own children, the eBPF stop-signal
 * ring buffer for any generation), exits through pidfds, and a queue that
 * fills through EPOLLONESHOT on the active member's socket (a listener is
 * readable while its accept queue holds something). A listener whose queue
 * held something at the last look is "hot": looked at every tick, as the
 * hang clock needs, until a look finds it empty, which arms its event
 * again. With nothing hot the watch looks only every IDLE_LOOK_MS, one read
 * of the owner's /proc stat, in case an event was lost. */
#define IDLE_LOOK_MS 1000

struct health_ev {
	int nl;
	int *armed_fd;	/* per listener: the member socket registered in epoll, -1 none */
	ino_t *armed_ino;	/* per listener: that socket's inode, for the fd number may be reused */
	bool *hot;	/* per listener: looked at every tick */
	int nhot;
	bool stops;	/* the stop-signal ring buffer has news, or a child stopped: look now */
	bool events;	/* stop signals come from eBPF (else a stop shows only in /proc) */
	bool fast;	/* the last tick wants the next one within TICK_MS */
	long long next_ms;	/* the next slow look */
};

void health_fini(struct sup *s)
{
	if (!s->hev)
		return;
	free(s->hev->armed_fd);
	free(s->hev->armed_ino);
	free(s->hev->hot);
	free(s->hev);
	s->hev = NULL;
}

static struct health_ev *hev_get(struct sup *s)
{
	struct health_ev *e = s->hev;

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->armed_fd = malloc((size_t)s->nl * sizeof(int))) ||
	    !(e->armed_ino = calloc((size_t)s->nl, sizeof(ino_t))) || !(e->hot = calloc((size_t)s->nl, 1))) {
		s->hev = e;
		health_fini(s);
		return NULL;
	}
	e->nl = s->nl;
	for (int l = 0; l < s->nl; l++)
		e->armed_fd[l] = -1;
	return s->hev = e;
}

static void set_hot(struct health_ev *e, int l, bool hot)
{
	if (e->hot[l] != hot)
		e->nhot += hot ? 1 : -1;
	e->hot[l] = hot;
}

/* The inode of socket FD, 0 if it is not open. */
static ino_t socket_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

static bool same_socket(int fd, ino_t ino)
{
	return ino && socket_ino(fd) == ino;
}

/* Arms listener L's event on the active member's socket (or re-arms it).
 * True if the listener may wait for it: armed, or nothing to look at (no
 * member; a datagram socket has no accept queue to hang). False if it
 * cannot be had (no epoll): it stays hot, looked at every tick as before. */
static bool arm_queue(struct sup *s, struct health_ev *e, const struct gen *g, int l)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = EV_QUEUE + (uint32_t)l };
	int fd = g->slot[l] >= 0 ? baton_group_fd(s->grp[l], g->slot[l]) : -1;

	if (fd < 0 || s->spec[l].proto != BATON_PROTO_TCP)
		return true;
	if (s->epfd < 0)
		return false;
	if (e->armed_fd[l] == fd && same_socket(fd, e->armed_ino[l]) && !epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev))
		return true;
	/* The socket armed before may be closed and its number taken by
	 * another descriptor of the loop (a control client): removing that
	 * number from epoll would deafen the loop to it. Only the same socket
	 * is removed; a closed one left its registration with its last copy. */
	if (e->armed_fd[l] >= 0 && same_socket(e->armed_fd[l], e->armed_ino[l]))
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, e->armed_fd[l], NULL);
	e->armed_fd[l] = -1;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) && (errno != EEXIST || epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev)))
		return false;
	e->armed_fd[l] = fd;
	e->armed_ino[l] = socket_ino(fd);
	return true;
}

bool health_event(struct sup *s, uint32_t tag)
{
	struct health_ev *e = s->hev;

	if (tag != EV_STOPS && !(tag >= EV_QUEUE && tag < EV_QUEUE + (uint32_t)s->nl))
		return false;
	if (!e)
		return true;
	if (tag == EV_STOPS)
		e->stops = true;
	else if (tag - EV_QUEUE < (uint32_t)e->nl)
		set_hot(e, (int)(tag - EV_QUEUE), true);
	e->fast = true;
	return true;
}

int health_wait_ms(const struct sup *s, long long now)
{
	const struct health_ev *e = s->hev;
	long long at;

	if (s->cfg->no_watch || s->stopping || s->active < 0)
		return -1;
	if (!e || e->fast || e->nhot)
		return TICK_MS;
	at = e->next_ms;
	if (s->degraded[0] && s->retry_at && s->retry_at < at)
		at = s->retry_at;
	return at <= now ? 0 : at - now < IDLE_LOOK_MS ? (int)(at - now) : IDLE_LOOK_MS;
}

/* The watches of the active generation G: made on first use, told its pid
 * when it became the active one (every listener then looked at once). */
static bool watch_setup(struct sup *s, struct health_ev *e, struct gen *g)
{
	struct baton_watch_opts o = { .sz = sizeof(o), .hang_ms = (uint32_t)s->cfg->hang_ms, .keep_gone = true,
				      .owned_only = true, .log = lib_log, .log_ctx = s };

	for (int l = 0; l < s->nl; l++) {
		if (!s->watch[l] && !(s->watch[l] = baton_watch_new(s->grp[l], &o)))
			return false;
		if (l == 0 && !s->stop_events && baton_group_mode(s->grp[0]) == BATON_MODE_EBPF) {
			/* generations this supervisor did not start (adopted after
			 * one died) send no SIGCHLD: their stop signals come from
			 * eBPF. Edge-triggered: health_event marks them, the next
			 * tick reads what came. */
			struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = EV_STOPS };
			int fd = baton_watch_events(s->watch[0]);

			s->stop_events = true;
			e->stops = e->events = fd >= 0;
			if (fd >= 0 && s->epfd >= 0)
				epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
		}
		if (s->watched != s->active) {
			for (int k = 0; k < BATON_MAX_SLOTS; k++)
				baton_watch_clear_owners(s->watch[l], k);
			if (g->pid > 0 && g->slot[l] >= 0)
				baton_watch_set_owner(s->watch[l], g->slot[l], g->pid);
			set_hot(e, l, true);
		}
	}
	s->watched = s->active;
	return true;
}

/* The first unhealthy listener of G (-1: none) and its health in H. The
 * owner's state is one read, whatever the number of listeners: a stopped
 * generation is known at the first look. Only hot listeners' queues are
 * read (a share of them per tick, see in_batch); one found empty and
 * healthy goes back to waiting for its event. */
static int find_bad(struct sup *s, struct health_ev *e, struct gen *g, long long now, struct baton_member_health *h)
{
	struct baton_proc_stat ps;
	int l, bad = -1;
	bool stops = e->stops;

	if (!baton_proc_stat(g->pid, -1, &ps) && (ps.state == 'T' || ps.state == 't')) {
		bad = 0;
		h->health = BATON_HEALTH_STOPPED;
	}
	e->stops = false;
	/* what the watches change (steered down, fenced) is one commit of the
	 * steering set: a commit per listener would wait for a free bank, a
	 * grace period each, in a large set. A fence inside the transaction
	 * shuts its member down at the commit, so its queue still moves by
	 * the new policy. */
	baton_steerset_begin(s->set);
	for (l = 0; l < s->nl; l++) {
		struct baton_member_health mh;
		bool looked = false;

		if ((e->hot[l] && in_batch(s, l)) || (l == 0 && stops)) {
			baton_watch_tick(s->watch[l], (uint64_t)now);	/* listener 0's reads the stop events */
			looked = true;
		}
		if (g->slot[l] < 0 || baton_watch_health(s->watch[l], g->slot[l], &mh)) {
			if (looked)
				set_hot(e, l, !arm_queue(s, e, g, l));	/* no member: nothing to look at */
			continue;
		}
		if (looked && e->hot[l] && !mh.queue && mh.health == BATON_HEALTH_OK && !mh.down)
			set_hot(e, l, !arm_queue(s, e, g, l));
		/* the others as their last look left them */
		if (bad < 0 && (mh.health == BATON_HEALTH_STOPPED || mh.health == BATON_HEALTH_HUNG)) {
			bad = l;
			*h = mh;
		}
	}
	if (s->set)
		baton_steerset_commit(s->set);
	return bad;
}

/* A replacement failed before: try again, and steer away from the
 * unhealthy one as soon as the new members can queue what comes. */
static void retry_replace(struct sup *s, struct gen *g)
{
	say_warn(s, "gen %d (pid %d) is still unhealthy (%s); trying a replacement again", g->id, (int)g->pid, g->health);
	if (!strncmp(g->health, "kept: ", 6)) {
		char was[sizeof(g->health)];

		snprintf(was, sizeof(was), "%s", g->health + 6);
		snprintf(g->health, sizeof(g->health), "fenced: %.80s", was);
	}
	start_reload(s, -1, RELOAD_HEALTH);
	if (s->reload < 0)
		return;
	/* every listener steered away in one commit of the steering set (a
	 * commit each would wait for grace periods in a large set), then
	 * fenced: each fence finds its listener steered away already */
	baton_steerset_begin(s->set);
	for (int l = 0; l < s->nl; l++)
		if (g->slot[l] >= 0)
			baton_group_set_down(s->grp[l], g->slot[l], true);
	if (s->set)
		baton_steerset_commit(s->set);
	for (int l = 0; l < s->nl; l++)
		if (g->slot[l] >= 0)
			baton_group_fence(s->grp[l], g->slot[l]);
}

/* The health watch over the active generation (its pid owns its members):
 * once it is stopped or its queue hangs, a fresh generation starts as in a
 * reload, and as soon as its members are in the group the watch steers away
 * from the old one and fences it, so its queue moves to the new one, which
 * takes new connections while it starts. A generation that exits is the
 * crash path's business, not the watch's. */
void health_tick(struct sup *s, long long now)
{
	struct baton_member_health h = { 0 };
	struct health_ev *e;
	struct gen *g;
	int l, bad;

	if (stage_tick(s, now))
		return;	/* probation: the stage watches the new generation */
	/* generation 0 (--takeover) is not ours to judge: its workers, not its
	 * pid, accept */
	if (s->cfg->no_watch || s->stopping || s->active < 0 || s->gen[s->active].id == 0 || !(e = hev_get(s)))
		return;
	g = &s->gen[s->active];
	e->fast = true;
	if (g->state != GEN_ACTIVE || g->pid <= 0) {
		/* starting (a restart) or gone: not judged until it serves */
		for (l = 0; l < s->nl && s->watched >= 0; l++)
			for (int k = 0; k < BATON_MAX_SLOTS; k++)
				baton_watch_clear_owners(s->watch[l], k);
		s->watched = -1;
		return;
	}
	if (!e->nhot && !e->stops && now < e->next_ms && !g->health[0] && !g->stopped_since && s->watched == s->active &&
	    !s->degraded[0]) {
		e->fast = false;
		return;	/* woken by something else: nothing for the watch yet */
	}
	if (!watch_setup(s, e, g))
		return;
	e->next_ms = now + IDLE_LOOK_MS;
	bad = find_bad(s, e, g, now, &h);
	if (bad >= 0 && h.health == BATON_HEALTH_STOPPED && !g->health[0] && !queue_movable(s, bad)) {
		/* classic BPF: replacing it resets what waits in its queue. A
		 * stop that ends at once (a debugger's, or a freeze just before
		 * a kill, whose restart on the same sockets keeps the queue) is
		 * not acted on until it has lasted CBPF_STOP_MS. */
		if (!g->stopped_since)
			g->stopped_since = now;
		if (now - g->stopped_since < CBPF_STOP_MS)
			return;
	} else if (bad < 0) {
		g->stopped_since = 0;
	}
	if (bad < 0) {
		if (g->health[0]) {
			say(s, "gen %d (pid %d) is healthy again", g->id, (int)g->pid);
			g->health[0] = '\0';
		}
		if (s->degraded[0] && s->reload < 0) {
			sup_set_degraded(s, NULL);
			s->retry_ms = 0;
		}
		/* without stop events (classic BPF) a stop of a generation
		 * that is not our child (no SIGCHLD) shows only in /proc:
		 * looked at every tick, as before */
		e->fast = !e->events && g->adopted;
		return;
	}
	if (!g->health[0]) {
		snprintf(g->health, sizeof(g->health), "fenced: %s%s", baton_health_name(h.health),
			 h.health == BATON_HEALTH_STOPPED ? " (SIGSTOP)" : "");
		char why[96] = "";

		if (h.health == BATON_HEALTH_HUNG)
			snprintf(why, sizeof(why), ": no accept for %u ms with %u queued, beyond its own pace", h.stalled_ms,
				 h.queue);
		say_warn(s, "gen %d (pid %d) is unhealthy (%s on listener %d%s); starting a fresh generation (a restart)",
		    g->id, (int)g->pid, baton_health_name(h.health), bad, why);
		if (s->reload < 0)
			start_reload(s, -1, RELOAD_HEALTH);
		return;
	}
	if (s->reload >= 0 || !s->degraded[0] || now < s->retry_at)
		return;
	retry_replace(s, g);
}

/* SIGCHLD with CLD_STOPPED: one of our own children stopped. The watch
 * looks at once, rather than at its next tick, and finds it stopped in
 * /proc (the kernel tells the parent after the child's state changed). */
void children_stopped(struct sup *s)
{
	siginfo_t si;
	bool ours = false;
	int n;

	for (n = 0; n < 64; n++) {
		si.si_pid = 0;
		if (waitid(P_ALL, 0, &si, WSTOPPED | WNOHANG) || !si.si_pid)
			break;
		for (int i = 0; i < MAX_GENS; i++)
			ours |= s->gen[i].state != GEN_FREE && s->gen[i].pid == si.si_pid;
	}
	if (ours) {
		health_event(s, EV_STOPS);
		health_tick(s, baton_mono_ms());
	}
}
