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

struct holds_ctx {
	ino_t ino;
	bool found;
};

static int find_ino(void *ctx, int fd, unsigned long long ino)
{
	struct holds_ctx *c = ctx;

	(void)fd;
	if ((ino_t)ino == c->ino)
		c->found = true;
	return c->found;	/* nonzero ends the walk */
}

/* Does G's process (or one of its children, the workers) still hold the
 * member socket INO? */
static bool holds_member(const struct gen *g, ino_t ino)
{
	struct holds_ctx c = { .ino = ino };
	pid_t kids[256];
	int n;

	if (!ino || g->pid <= 0)
		return false;
	baton_proc_sockets(g->pid, 65536, find_ino, &c);
	n = c.found ? 0 : baton_proc_children(g->pid, kids, 256);
	for (int i = 0; i < n && !c.found; i++)
		baton_proc_sockets(kids[i], 65536, find_ino, &c);
	return c.found;
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

/* A draining generation's members: once a queue stops shrinking (nobody
 * accepts from it any more), fence it so what waits there moves now rather
 * than when the process finally exits. A UDP member has no queue to move
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

/* The health watch over the active generation (its pid owns its members):
 * once it is stopped or its queue hangs, a fresh generation starts as in a
 * reload, and as soon as its members are in the group the watch steers away
 * from the old one and fences it, so its queue moves to the new one, which
 * takes new connections while it starts. A generation that exits is the
 * crash path's business, not the watch's. */
void health_tick(struct sup *s, long long now)
{
	struct baton_watch_opts o = { .sz = sizeof(o), .hang_ms = (uint32_t)s->cfg->hang_ms, .keep_gone = true,
				      .owned_only = true, .log = lib_log, .log_ctx = s };
	struct baton_member_health h = { 0 };
	struct baton_proc_stat ps;
	struct gen *g;
	int l, bad = -1;

	if (stage_tick(s, now))
		return;	/* probation: the stage watches the new generation */
	/* generation 0 (--takeover) is not ours to judge: its workers, not its
	 * pid, accept */
	if (s->cfg->no_watch || s->stopping || s->active < 0 || s->gen[s->active].id == 0)
		return;
	g = &s->gen[s->active];
	if (g->state != GEN_ACTIVE || g->pid <= 0) {
		/* starting (a restart) or gone: not judged until it serves */
		for (l = 0; l < s->nl && s->watched >= 0; l++)
			for (int k = 0; k < BATON_MAX_SLOTS; k++)
				baton_watch_clear_owners(s->watch[l], k);
		s->watched = -1;
		return;
	}
	for (l = 0; l < s->nl; l++) {
		if (!s->watch[l] && !(s->watch[l] = baton_watch_new(s->grp[l], &o)))
			return;
		if (l == 0 && !s->stop_events && baton_group_mode(s->grp[0]) == BATON_MODE_EBPF) {
			/* generations this supervisor did not start (adopted after
			 * one died) send no SIGCHLD: their stop signals come from
			 * eBPF. Edge-triggered: the next tick reads what came. */
			struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = EV_STOPS };
			int fd = baton_watch_events(s->watch[0]);

			s->stop_events = true;
			if (fd >= 0 && s->epfd >= 0)
				epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
		}
		if (s->watched != s->active) {
			for (int k = 0; k < BATON_MAX_SLOTS; k++)
				baton_watch_clear_owners(s->watch[l], k);
			if (g->pid > 0 && g->slot[l] >= 0)
				baton_watch_set_owner(s->watch[l], g->slot[l], g->pid);
		}
	}
	s->watched = s->active;
	/* the owner's state is one read, whatever the number of listeners: a
	 * stopped generation is known at the first tick */
	if (!baton_proc_stat(g->pid, -1, &ps) && (ps.state == 'T' || ps.state == 't')) {
		bad = 0;
		h.health = BATON_HEALTH_STOPPED;
	}
	for (l = 0; l < s->nl; l++) {
		struct baton_member_health mh;

		if (in_batch(s, l))
			baton_watch_tick(s->watch[l], (uint64_t)now);
		/* the others as their last tick left them */
		if (bad < 0 && g->slot[l] >= 0 && !baton_watch_health(s->watch[l], g->slot[l], &mh) &&
		    (mh.health == BATON_HEALTH_STOPPED || mh.health == BATON_HEALTH_HUNG)) {
			bad = l;
			h = mh;
		}
	}
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
	/* a replacement failed before: try again, and steer away from the
	 * unhealthy one as soon as the new members can queue what comes */
	say_warn(s, "gen %d (pid %d) is still unhealthy (%s); trying a replacement again", g->id, (int)g->pid, g->health);
	if (!strncmp(g->health, "kept: ", 6)) {
		char was[sizeof(g->health)];

		snprintf(was, sizeof(was), "%s", g->health + 6);
		snprintf(g->health, sizeof(g->health), "fenced: %.80s", was);
	}
	start_reload(s, -1, RELOAD_HEALTH);
	if (s->reload < 0)
		return;
	for (l = 0; l < s->nl; l++) {
		if (g->slot[l] < 0)
			continue;
		baton_group_set_down(s->grp[l], g->slot[l], true);
		baton_group_fence(s->grp[l], g->slot[l]);
	}
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
	if (ours)
		health_tick(s, baton_mono_ms());
}
