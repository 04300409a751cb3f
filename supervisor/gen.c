/* SPDX-License-Identifier: BSD-2-Clause */
/* The generation state machine: start, readiness and switch, rollback,
 * stop and drain, crash restart; and the reload that drives them. A
 * generation's state is written only by gen_set_state, against the table
 * of legal transitions; gen_tick is the clock's part. */
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

#include "cmd.h"
#include "control.h"
#include "core.h"
#include "feature.h"
#include "gen.h"
#include "ready.h"
#include "state.h"
#include "util.h"

/* A step of a reload, to the supervisor's log and to the waiting client. */
void step_at(struct sup *s, enum blog_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	double at = (double)(baton_mono_us() - s->reload_start_us) / 1000.0;

	if (s->reload_start_us)
		say_at(s, level, "%s (+%.1f ms)", msg, at);
	else
		say_at(s, level, "%s", msg);
	if (s->reload_client >= 0)
		client_send(&s->cl[s->reload_client], "step +%.1f ms %s", at, msg);
}

void reload_finish(struct sup *s, bool ok, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	long long took = (baton_mono_us() - s->reload_start_us) / 1000;
	int client = s->reload_client;

	s->reload_client = -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the health watch replacing a frozen or hung generation is a restart:
	 * nobody asked for a new version, and alerts on reloads must not fire */
	bool restart = s->reload_origin == RELOAD_HEALTH, takeover = s->reload_origin == RELOAD_TAKEOVER;

	if (!takeover && !restart)
		FEATURES_CALL(reload_counted, s, ok, s->reload_start_us ? baton_mono_us() - s->reload_start_us : -1);
	if (takeover)
		s->reload_origin = RELOAD_NONE;	/* bringing the server under baton is not a reload */
	else if (restart)
		s->restarts += ok;	/* a failed one shows as degraded and is tried again */
	else if (ok)
		s->reloads_done++;
	else
		s->reloads_failed++;
	if (ok)
		cmd_commit(s);
	else
		cmd_drop(s);
	if (!restart)
		snprintf(s->last_reload, sizeof(s->last_reload), "%s after %lld ms: %s", ok ? "ok" : "failed", took,
			 msg);
	say_at(s, ok ? BLOG_INFO : BLOG_WARN, "%s %s after %lld ms: %s", restart ? "restart" : "reload",
	       ok ? "done" : "failed", took, msg);
	s->reload = -1;
	s->reload_start_us = 0;
	/* the outcome, counted, is saved before the client hears it: a
	 * supervisor killed right after `baton reload` returned resumes with
	 * it (its counts, its metrics, its last_reload) */
	state_save(s);
	if (client >= 0) {
		client_send(&s->cl[client], "%s %s", ok ? "ok" : "error", msg);
		client_close(s, &s->cl[client]);
	}
	FEATURES_CALL(reload_end, s);
}

/* Clears a generation for reuse, keeping its per-listener arrays. */
void gen_reset(struct sup *s, struct gen *g)
{
	int *slot = g->slot, l;
	uint32_t *last_len = g->last_len;
	long long *stall_since = g->stall_since;
	ino_t *ino = g->member_ino;
	struct gen_count *count = g->count;

	FEATURES_CALL(gen_forget, s, g);	/* a reused entry: what it counted stays in the totals */
	if (g->pidfd >= 0 && g->pidfd != 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, g->pidfd, NULL);
		close(g->pidfd);
	}
	memset(g, 0, sizeof(*g));
	g->pidfd = -1;
	g->slot = slot;
	g->last_len = last_len;
	g->stall_since = stall_since;
	g->member_ino = ino;
	g->count = count;
	memset(count, 0, (size_t)s->nl * sizeof(*count));
	for (l = 0; l < s->nl; l++) {
		slot[l] = -1;
		last_len[l] = 0;
		stall_since[l] = 0;
		ino[l] = 0;
	}
}

/* The legal transitions of a generation, and the only place its state is
 * written (gen_reset clears a slot back to FREE). A row is where it is, a
 * column where it may go; staying where it is is no transition. */
static const bool legal[GEN_NSTATES][GEN_NSTATES] = {
	/* a fresh slot: spawned, or taken over (gen 0 serves), adopted or
	 * resumed from a state file in the state it had there */
	[GEN_FREE] = { [GEN_STARTING] = true, [GEN_READY] = true, [GEN_ACTIVE] = true, [GEN_DRAINING] = true,
		       [GEN_CANARY] = true, [GEN_STANDBY] = true },
	/* ready (a reload's), serving (gen 1, a restart), rolled back, exited */
	[GEN_STARTING] = { [GEN_READY] = true, [GEN_ACTIVE] = true, [GEN_DRAINING] = true, [GEN_EXITED] = true },
	/* switched to, a canary's share, rolled back, exited */
	[GEN_READY] = { [GEN_ACTIVE] = true, [GEN_CANARY] = true, [GEN_DRAINING] = true, [GEN_EXITED] = true },
	/* kept on probation, replaced or stopped, exited */
	[GEN_ACTIVE] = { [GEN_STANDBY] = true, [GEN_DRAINING] = true, [GEN_EXITED] = true },
	/* exited; serving again only when a new supervisor resumes or adopts
	 * it as the one that serves (state.c) */
	[GEN_DRAINING] = { [GEN_ACTIVE] = true, [GEN_EXITED] = true },
	/* nothing: the slot is reset for reuse */
	[GEN_EXITED] = { false },
	/* promoted or its old one exited (ready, then switched), a switched
	 * canary completed at resume, rolled back, exited */
	[GEN_CANARY] = { [GEN_READY] = true, [GEN_ACTIVE] = true, [GEN_DRAINING] = true, [GEN_EXITED] = true },
	/* the probation failed (flipped back), passed (stopped), exited */
	[GEN_STANDBY] = { [GEN_ACTIVE] = true, [GEN_DRAINING] = true, [GEN_EXITED] = true },
};

static const char *gen_state_word(enum gen_state st)
{
	return (unsigned)st < GEN_NSTATES ? state_name[st] : "unknown";
}

bool gen_transition_legal(enum gen_state from, enum gen_state to)
{
	if ((unsigned)from >= GEN_NSTATES || (unsigned)to >= GEN_NSTATES)
		return false;
	return from == to || legal[from][to];
}

int gen_set_state(struct sup *s, int gi, enum gen_state to, const char *why)
{
	struct gen *g = &s->gen[gi];
	enum gen_state from = g->state;

	if (from == to)
		return 0;
	if (!gen_transition_legal(from, to)) {
		/* a bug of the supervisor, not of the input: said, and refused,
		 * so that the generation keeps a state the table knows */
		say_err(s, "internal error: gen %d (slot %d) cannot go from %s to %s (%s); it stays %s", g->id, gi,
			gen_state_word(from), gen_state_word(to), why, gen_state_word(from));
		return -EINVAL;
	}
	if (s->cfg->verbose > 1)
		say_at(s, BLOG_DEBUG, "gen %d: %s -> %s (%s)", g->id, state_name[from], state_name[to], why);
	g->state = to;
	return 0;
}

/* A pidfd for G's process, watched by the loop: the exit of a process that
 * is not our child (adopted after a supervisor died) shows only there. */
int gen_watch_pid(struct sup *s, int gi)
{
	struct gen *g = &s->gen[gi];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_PIDFD + (uint32_t)gi };

	if (g->pidfd < 0) {
		g->pidfd = baton_pidfd_open(g->pid);
		if (g->pidfd < 0) {
			int r = g->pidfd;

			g->pidfd = -1;
			return r;
		}
	}
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, g->pidfd, &ev) && errno != EEXIST ? -errno : 0;
}

int live_gens(const struct sup *s)
{
	int i, n = 0;

	for (i = 0; i < MAX_GENS; i++)
		if (s->gen[i].state != GEN_FREE && s->gen[i].pid > 0)
			n++;
	return n;
}

int draining_gens(const struct sup *s)
{
	int i, n = 0;

	for (i = 0; i < MAX_GENS; i++)
		n += s->gen[i].state == GEN_DRAINING && s->gen[i].pid > 0;
	return n;
}

int alloc_gen(struct sup *s)
{
	int i, oldest = -1;

	for (i = 0; i < MAX_GENS; i++)
		if (s->gen[i].state == GEN_FREE)
			return i;
	/* forget the oldest generation that has ended */
	for (i = 0; i < MAX_GENS; i++)
		if (s->gen[i].state == GEN_EXITED && s->gen[i].pid == 0 &&
		    (oldest < 0 || s->gen[i].id < s->gen[oldest].id))
			oldest = i;
	return oldest;
}

/* Takes a generation's members out of their groups: fenced first, so what
 * waits in their queues moves to the active members even if some process
 * still holds a copy. */
void release_members(struct sup *s, struct gen *g)
{
	int l;

	for (l = 0; l < s->nl; l++) {
		if (g->slot[l] < 0)
			continue;
		if (FEATURES_ANY(member_keep, s, g, l))
			continue;	/* systemd's socket: never shut down nor closed */
		baton_group_fence(s->grp[l], g->slot[l]);
		FEATURES_CALL(member_left, s, g, l);	/* after the fence: it counts what moved out */
		baton_group_remove(s->grp[l], g->slot[l]);
		g->slot[l] = -1;
	}
	FEATURES_CALL(members_released, s, g);
}

/* Whether the supervisor makes listener L's next member itself (a socket
 * of its own, opened for the spec): not shared, not passed to it, not
 * bound by the generation. */
bool gen_makes_member(struct sup *s, int l)
{
	return s->shared[l] < 0 && !FEATURES_ANY(binds_own, s) && !FEATURES_ANY(passed, s, l);
}

/* Starts a generation. FROM >= 0 hands it the members of a crashed one
 * (their queues kept everything meanwhile); otherwise it gets new member
 * sockets with weight WEIGHT. Returns the index or -errno (-EAGAIN: every
 * generation slot is taken by one that still runs). */
int start_gen(struct sup *s, int from, uint32_t weight)
{
	int gi = alloc_gen(s), *fds = NULL, l, r = 0;
	struct baton_proc_stat st;
	struct gen *g;
	pid_t pid;

	if (gi < 0)
		return -EAGAIN;
	g = &s->gen[gi];
	gen_reset(s, g);
	fds = calloc((size_t)s->nl, sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	/* members that take traffic at once (generation 1's) in one commit of
	 * the steering set: a commit each would wait for grace periods once
	 * the few policy banks of a large set are retired */
	baton_steerset_begin(s->set);
	for (l = 0; l < s->nl && !r; l++) {
		struct stat sst;

		if (s->shared[l] >= 0) {
			/* shared mode: the one socket, no member of its own */
			fds[l] = s->shared[l];
			g->member_ino[l] = s->shared_ino[l];
			continue;
		}
		if (from >= 0) {
			FEATURES_CALL(member_left, s, &s->gen[from], l);
			g->slot[l] = s->gen[from].slot[l];
			s->gen[from].slot[l] = -1;
			FEATURES_CALL(member_joined, s, g, l, false);
		} else if (FEATURES_ANY(binds_own, s)) {
			fds[l] = -1;	/* it binds its own; adopted into its slot when it listens */
			continue;
		} else if (weight == 0 && (g->slot[l] = FEATURES_FD(member_spare, s, g, l)) >= 0) {
			/* made before the reload asked: open, bound, listening, in the group */
			FEATURES_CALL(member_joined, s, g, l, true);
			fds[l] = baton_group_fd(s->grp[l], g->slot[l]);
			continue;
		} else {
			int fd = FEATURES_FD(member_fd, s, l);	/* a passed SO_REUSEPORT socket first */

			g->slot[l] = -1;
			if (fd >= 0) {
				g->slot[l] = baton_group_add(s->grp[l], fd, weight);	/* checked: not ours */
				close(fd);	/* the group keeps its copy */
			} else if ((fd = baton_listener_open(&s->spec[l])) >= 0) {
				/* ours, just made: the group takes it as it is */
				g->slot[l] = baton_group_add_made(s->grp[l], fd, weight);
			} else {
				r = fd;
				say_err(s, "cannot open a member socket for listener %d: %s", l, strerror(-r));
				break;
			}
			if (g->slot[l] < 0) {
				r = g->slot[l];
				g->slot[l] = -1;
				break;
			}
			FEATURES_CALL(member_joined, s, g, l, true);
		}
		fds[l] = baton_group_fd(s->grp[l], g->slot[l]);
		if (!fstat(fds[l], &sst))
			g->member_ino[l] = sst.st_ino;
	}
	if (s->set)
		baton_steerset_commit(s->set);
	if (r)
		goto fail;
	g->id = ++s->next_id;
	g->start_us = baton_mono_us();
	g->start_wall_ms = baton_wall_ms();
	if ((r = FEATURES_FIRST(gen_start, s, gi)))
		goto fail;
	pid = s->ops->spawn(s, g->id, fds, &r);
	if (pid < 0) {
		say_err(s, "cannot run \"%s\": %s", cmd_argv(s)[0], strerror(-r));
		FEATURES_CALL(gen_end, s, gi);
		goto fail;
	}
	free(fds);
	g->pid = pid;
	gen_set_state(s, gi, GEN_STARTING, "spawned");
	if (!baton_proc_stat(pid, -1, &st))
		g->start_ticks = st.start;
	gen_watch_pid(s, gi);
	return gi;	/* every caller saves the state once it has placed it */
fail:
	free(fds);
	if (from >= 0) {
		/* a failed restart hands the sockets back, queues intact */
		for (l = 0; l < s->nl; l++) {
			s->gen[from].slot[l] = g->slot[l];
			if (g->slot[l] >= 0)
				FEATURES_CALL(member_joined, s, &s->gen[from], l, false);
		}
		for (l = 0; l < s->nl; l++)
			g->slot[l] = -1;
	} else {
		release_members(s, g);
	}
	gen_reset(s, g);
	return r ? r : -EIO;
}

int gen_signal(struct sup *s, struct gen *g, int sig)
{
	struct baton_proc_stat st;

	if (g->pid <= 0)
		return -ESRCH;
	if (g->pidfd >= 0 && s->ops->pidfd_signal)
		return s->ops->pidfd_signal(g->pidfd, sig);
	/* no pidfd (it could not be opened): by pid, once its start time
	 * says the pid is still that process */
	if (s->ops->pidfd_signal && g->start_ticks &&
	    (baton_proc_stat(g->pid, -1, &st) || st.start != g->start_ticks))
		return -ESRCH;
	return s->ops->kill(g->pid, sig) ? -errno : 0;
}

void gen_kill_all(struct sup *s, struct gen *g)
{
	/* workers first, by group: the group id is G's pid, which is G's
	 * only while G lives (a pidfd cannot signal a group) */
	if (!gen_signal(s, g, 0))
		s->ops->kill(-g->pid, SIGKILL);
	gen_signal(s, g, SIGKILL);
}

void stop_gen(struct sup *s, struct gen *g)
{
	if (g->pid <= 0 || g->stop_ms)
		return;
	bool served = g->state == GEN_ACTIVE || g->state == GEN_CANARY || g->state == GEN_STANDBY;

	g->stop_ms = baton_mono_ms();
	FEATURES_CALL(gen_stop, s, g);	/* before the signal: the server may close idle connections at once */
	gen_set_state(s, (int)(g - s->gen), GEN_DRAINING, "told to stop");
	if (served && FEATURES_ANY(hold_stop, s, g))
		return;	/* UDP flows, systemd's socket, --stop-when-idle: signalled later */
	if (!FEATURES_ANY(stop_signal, s, g))
		gen_signal(s, g, s->cfg->stop_signal);
}

void describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended (wait status %d)", status);
}

/* Readiness: the new generation takes all new connections in one step. */
void gen_ready(struct sup *s, int gi, bool assumed)
{
	struct gen *g = &s->gen[gi];

	if (FEATURES_ANY(hold_ready, s, gi))
		return;
	g->ready_us = baton_mono_us();
	g->assumed = assumed;
	if (gi != s->reload) {
		gen_set_state(s, gi, GEN_ACTIVE, "ready");	/* generation 1, or a restart on the same members */
		if (assumed)
			say(s, "gen %d (pid %d) assumed ready: no sd_notify message within %s", g->id, (int)g->pid,
			    fmt_duration(s->cfg->ready_delay_ms));
		else
			say(s, "gen %d (pid %d) ready after %lld ms", g->id, (int)g->pid,
			    (g->ready_us - g->start_us) / 1000);
		state_save(s);
		FEATURES_CALL(serving, s);
		return;
	}
	gen_set_state(s, gi, GEN_READY, "ready, the reload's");
	if (assumed)
		step(s, "gen %d (pid %d) assumed ready: no sd_notify message within %s", g->id, (int)g->pid,
		     fmt_duration(s->cfg->ready_delay_ms));
	else
		step(s, "gen %d (pid %d) ready after %.1f ms", g->id, (int)g->pid,
		     (double)(g->ready_us - g->start_us) / 1000.0);
	if (FEATURES_ANY(claim_ready, s, gi))
		return;	/* a canary: it takes its share beside the old one */
	gen_switch(s, gi);
}

void gen_switch(struct sup *s, int gi)
{
	struct gen *g = &s->gen[gi];
	int l, old = s->active, r = 0;
	bool at_commit = false;

	/* every listener at one instant: the set's one commit (no set: each
	 * listener's own publish, as each group has its own program) */
	baton_steerset_begin(s->set);
	for (l = 0; l < s->nl && !r; l++)
		r = s->shared[l] >= 0 ? 0 : baton_group_activate(s->grp[l], g->slot[l]);
	if (r)
		l--;
	else if (s->set && (r = baton_steerset_commit(s->set)))
		at_commit = true;
	if (r) {
		/* undo: whatever already moved (or was staged) comes back to the old one */
		if (at_commit)
			baton_steerset_begin(s->set);
		for (int k = 0; k < l && old >= 0; k++)
			if (s->gen[old].slot[k] >= 0)
				baton_group_activate(s->grp[k], s->gen[old].slot[k]);
		if (s->set)
			baton_steerset_commit(s->set);
		stop_gen(s, g);
		release_members(s, g);
		if (!at_commit)
			reload_finish(s, false, "cannot switch listener %d to gen %d: %s; gen %d still serves", l, g->id,
				      strerror(-r), old >= 0 ? s->gen[old].id : 0);
		else
			reload_finish(s, false, "cannot switch to gen %d: %s; gen %d still serves", g->id, strerror(-r),
				      old >= 0 ? s->gen[old].id : 0);
		return;
	}
	gen_set_state(s, gi, GEN_ACTIVE, "switched to");
	s->active = gi;
	step(s, "switched: new connections go to gen %d", g->id);
	if (s->reload_origin == RELOAD_HEALTH || s->degraded[0])
		sup_set_degraded(s, NULL);
	if (old >= 0) {
		struct gen *o = &s->gen[old];

		if (o->pid > 0 && FEATURES_ANY(keep_old, s, old, gi)) {
			/* probation: it stays, unfenced and without weight */
		} else if (o->pid > 0) {
			stop_gen(s, o);
			if (o->flow_wait)
				step(s, "gen %d (pid %d) keeps its UDP flows; new flows go to gen %d", o->id, (int)o->pid,
				     g->id);
			else if (s->shared[0] >= 0)
				step(s, "gen %d (pid %d) told to stop (%s); the shared socket's queue stays with gen %d",
				     o->id, (int)o->pid, strsignal(s->cfg->stop_signal), g->id);
			else if (baton_group_mode(s->grp[0]) == BATON_MODE_EBPF)
				step(s, "gen %d (pid %d) told to stop (%s); its queue moves to gen %d once it stops "
					"accepting", o->id, (int)o->pid, strsignal(s->cfg->stop_signal), g->id);
			else
				step(s, "gen %d (pid %d) told to stop (%s); classic BPF mode cannot move its queue: "
					"it must accept what waits there before it exits",
				     o->id, (int)o->pid, strsignal(s->cfg->stop_signal));
		} else {
			/* it had crashed and was waiting for its restart */
			release_members(s, o);
			s->restart_from = -1;
			s->restart_at = 0;
		}
	}
	reload_finish(s, true, "gen %d (pid %d) serves", g->id, (int)g->pid);	/* saves the state */
}

/* What to say about the generation that still holds the listeners after a
 * failed reload: that it serves, or (a frozen one the watch fenced) that it
 * keeps the listeners so connections wait rather than be refused. */
static void still_serves(const struct sup *s, char *buf, size_t len)
{
	const struct gen *o = s->active >= 0 ? &s->gen[s->active] : NULL;

	if (!o)
		snprintf(buf, len, "no generation serves");
	else if (o->health[0] && o->pid > 0)
		snprintf(buf, len, "gen %d keeps the listeners but is unhealthy (%s): new connections wait in its "
			 "queue", o->id, strchr(o->health, ':') ? strchr(o->health, ':') + 2 : o->health);
	else
		snprintf(buf, len, "gen %d still serves", o->id);
}

/* Never dark: a listener must not be left with every member fenced. After
 * a failed replacement, the active generation's members listen again and
 * take their weight back, however unhealthy it is: its queue holds new
 * connections until it recovers or a replacement succeeds. */
void undark(struct sup *s)
{
	struct gen *o;
	int l;

	if (s->active < 0)
		return;
	o = &s->gen[s->active];
	baton_steerset_begin(s->set);	/* every listener back in one commit */
	for (l = 0; l < s->nl; l++) {
		if (o->slot[l] < 0)
			continue;
		baton_group_unfence(s->grp[l], o->slot[l]);
		baton_group_set_down(s->grp[l], o->slot[l], false);
	}
	if (s->set)
		baton_steerset_commit(s->set);
	if (!strncmp(o->health, "fenced: ", 8)) {
		/* "kept: owner stopped (SIGSTOP)": listening again, not serving */
		memmove(o->health + 6, o->health + 8, strlen(o->health + 8) + 1);
		memcpy(o->health, "kept: ", 6);
	}
}

void rollback(struct sup *s, const char *why)
{
	struct gen *g = &s->gen[s->reload];
	char serves[200];

	step_at(s, BLOG_WARN, "rolling back: %s", why);
	if (s->reload_origin == RELOAD_HEALTH || (s->active >= 0 && s->gen[s->active].health[0]))
		undark(s);	/* before the failed members go: their queue moves back */
	stop_gen(s, g);
	/* its members never had weight; fencing moves anything there to the
	 * generation that still serves */
	release_members(s, g);
	snprintf(g->why, sizeof(g->why), "rolled back: %s", why);
	still_serves(s, serves, sizeof(serves));
	if (s->reload_origin == RELOAD_HEALTH) {
		char reason[256];

		s->retry_ms = !s->retry_ms ? 1000 : s->retry_ms * 2 > 30000 ? 30000 : s->retry_ms * 2;
		s->retry_at = baton_mono_ms() + s->retry_ms;
		snprintf(reason, sizeof(reason), "replacement failed (%s); %s; retrying in %lld ms", why, serves,
			 s->retry_ms);
		sup_set_degraded(s, reason);
	} else if (s->active >= 0 && s->gen[s->active].health[0] && s->gen[s->active].pid > 0) {
		char reason[512];

		/* an operator's reload failed while the serving generation is
		 * frozen or hung: the watch's own replacement, which waited for
		 * that reload, is due now */
		s->retry_at = baton_mono_ms();
		snprintf(reason, sizeof(reason), "the reload failed (%s); %s; the health watch starts a replacement",
			 why, serves);
		sup_set_degraded(s, reason);
	}
	reload_finish(s, false, "%s; rolled back, %s", why, serves);	/* saves the state */
	s->reload_origin = RELOAD_NONE;	/* after: reload_finish counts it as a restart, not a reload */
}

void begin_stop(struct sup *s, const char *why)
{
	int i;

	if (s->stopping)
		return;
	s->stopping = true;
	FEATURES_CALL(stopping, s);
	say(s, "stopping (%s): telling every generation to stop", why);
	if (s->reload >= 0)
		reload_finish(s, false, "the supervisor is stopping");
	s->restart_at = 0;
	for (i = 0; i < MAX_GENS; i++)
		if (s->gen[i].state != GEN_FREE && s->gen[i].pid > 0)
			stop_gen(s, &s->gen[i]);
}

void gen_exited(struct sup *s, int gi, int status)
{
	struct gen *g = &s->gen[gi];
	char how[128];
	enum gen_state was = g->state;

	if (status == -1)
		snprintf(how, sizeof(how), "exited (status unknown: not a child of this supervisor)");
	else
		describe_exit(status, how, sizeof(how));
	g->pid = 0;
	if (g->pidfd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, g->pidfd, NULL);
		close(g->pidfd);
		g->pidfd = -1;
	}
	g->status = status;
	gen_set_state(s, gi, GEN_EXITED, "its process ended");
	FEATURES_CALL(gen_end, s, gi);
	if (!g->why[0])
		snprintf(g->why, sizeof(g->why), "%s", how);
	if (FEATURES_ANY(gen_exited, s, gi, how))
		return;	/* a canary or a generation on probation: flipped back */
	if (gi == s->reload) {
		char why[200];

		snprintf(why, sizeof(why), "gen %d %s before it was ready", g->id, how);
		rollback(s, why);
		return;
	}
	if (s->stopping || was == GEN_DRAINING) {
		say(s, "gen %d %s", g->id, how);
		release_members(s, g);
		state_save(s);
		return;
	}
	if (gi == s->active && (was == GEN_STARTING || was == GEN_READY) && g->id == 1) {
		say_err(s, "gen 1 %s before it was ready; giving up", how);
		release_members(s, g);
		s->active = -1;
		s->exit_code = 1;
		begin_stop(s, "the command failed to start");
		return;
	}
	if (gi == s->active && g->id == 1 && !s->resumed && g->assumed && !g->heard && WIFEXITED(status) &&
	    WEXITSTATUS(status) && baton_mono_us() - g->start_us < STABLE_MS * 1000LL) {
		/* only assumed ready, never a word, and it failed soon after:
		 * a command that fails at start (a server whose bind() failed)
		 * would fail the same way at every restart, forever */
		say_err(s, "gen 1 %s %lld ms after it started, without ever saying it was ready or listening (it "
			"was only assumed ready after %s); giving up rather than restarting a command that never "
			"served: see its output above", how, (baton_mono_us() - g->start_us) / 1000,
			fmt_duration(s->cfg->ready_delay_ms));
		release_members(s, g);
		s->active = -1;
		s->exit_code = 1;
		begin_stop(s, "the command failed to start");
		return;
	}
	if (gi == s->active) {
		long long up = (baton_mono_us() - g->start_us) / 1000;

		s->backoff_ms = up >= STABLE_MS || !s->backoff_ms ? BACKOFF_MIN_MS
				: s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
		s->restart_from = gi;
		s->restart_at = baton_mono_ms() + s->backoff_ms;
		s->restarts++;
		say_warn(s, "gen %d (active) %s after %lld ms; restarting in %lld ms on the same sockets "
		       "(new connections wait in their queue)", g->id, how, up, s->backoff_ms);
		state_save(s);
		return;
	}
	release_members(s, g);
	state_save(s);
}

/* Would gen_tick judge G (starting) now: ready by delay, assumed, or too late? */
static bool start_due(const struct sup *s, const struct gen *g, long long now)
{
	long long age = now - g->start_us / 1000;
	const struct sup_config *c = s->cfg;

	return (c->ready == SUP_READY_DELAY && age >= c->ready_delay_ms) ||
	       (c->ready == SUP_READY_AUTO && !g->heard && age >= c->ready_delay_ms) || age >= c->ready_timeout_ms;
}

/* The clock's part of the state machine, each tick: a starting generation
 * ready by --ready-delay, assumed ready, or too late (rolled back, or the
 * supervisor gives up); a draining one past its grace killed. */
void gen_tick(struct sup *s, long long now)
{
	bool caught = false;
	int i;

	for (i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];

		if (g->pid <= 0)
			continue;
		if (g->state == GEN_STARTING && !caught && start_due(s, g, now)) {
			/* before a generation is judged by the clock, what it said
			 * or did is read: after a stall of the supervisor (SIGSTOP,
			 * a starved CPU) its READY=1 or its exit may be waiting */
			caught = true;
			read_notify(s);
			reap(s);
			if (g->state != GEN_STARTING || g->pid <= 0)
				continue;
		}
		if (g->state == GEN_STARTING) {
			long long age = now - g->start_us / 1000;
			const struct sup_config *c = s->cfg;

			if (c->ready == SUP_READY_DELAY && age >= c->ready_delay_ms) {
				gen_ready(s, i, false);
			} else if (c->ready == SUP_READY_AUTO && !g->heard && age >= c->ready_delay_ms) {
				gen_ready(s, i, true);
			} else if (age >= c->ready_timeout_ms) {
				char why[128];

				snprintf(why, sizeof(why), "gen %d was not ready within %lld ms", g->id, c->ready_timeout_ms);
				if (i == s->reload) {
					rollback(s, why);
				} else if (g->id == 1) {
					say_err(s, "%s; giving up", why);
					s->exit_code = 1;
					begin_stop(s, "the command never became ready");
				} else {
					/* a restart already holds the active sockets; it
					 * serves whether or not it says so */
					say_warn(s, "%s; it keeps the active sockets anyway", why);
					gen_ready(s, i, false);
				}
			}
		}
		if (g->state == GEN_DRAINING) {
			FEATURES_CALL(drain_wait, s, g, now);	/* a held stop signal due now? */
			if (!g->killed && now - g->stop_ms >= s->cfg->grace_ms) {
				say_warn(s, "gen %d (pid %d) still running after the %lld ms grace; killing it", g->id,
				    (int)g->pid, s->cfg->grace_ms);
				gen_kill_all(s, g);
				g->killed = true;
			}
			FEATURES_CALL(drain_watch, s, g, now);
		}
	}
}

void reap(struct sup *s)
{
	int status, i;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < MAX_GENS; i++)
			if (s->gen[i].state != GEN_FREE && s->gen[i].pid == pid) {
				gen_exited(s, i, status);
				break;
			}
		if (i == MAX_GENS)
			FEATURES_ANY(reaped, s, pid, status);	/* a --check-cmd probe */
	}
	FEATURES_CALL(after_reap, s);
}

/* GI's pidfd says its process ended. Our own child is reaped through
 * SIGCHLD with its status; one adopted from a dead supervisor is reaped by
 * its new parent, and its status is not ours to know. */
void pid_ended(struct sup *s, int gi)
{
	struct gen *g = &s->gen[gi];
	int status;

	if (g->state == GEN_FREE || g->pid <= 0)
		return;
	if (!g->adopted) {
		if (waitpid(g->pid, &status, WNOHANG) == g->pid)
			gen_exited(s, gi, status);
		return;
	}
	gen_exited(s, gi, -1);
}

/* The first row's word for GI's bind mode. */
static const char *gen_mode(const struct sup *s, int gi)
{
	FEATURES_EACH(f)
		if (f->gen_mode)
			return f->gen_mode(s, gi);
	return "unknown";
}

static const char *const origin_words[] = {
	[RELOAD_NONE] = "unknown", [RELOAD_CONTROL] = "control socket", [RELOAD_SIGHUP] = "SIGHUP",
	[RELOAD_HEALTH] = "health watch", [RELOAD_TAKEOVER] = "takeover",
};

int start_reload(struct sup *s, int client, enum reload_origin origin)
{
	return start_reload_said(s, client, origin, NULL);
}

int start_reload_said(struct sup *s, int client, enum reload_origin origin, const char *words)
{
	int gi;

	if (s->stopping)
		return -ESHUTDOWN;
	if (s->reload >= 0 && s->reload_origin == RELOAD_HEALTH && client >= 0 && s->reload_client < 0) {
		/* the health watch is already starting a fresh generation: the
		 * operator asked for the same thing, so they wait for its outcome
		 * instead of being told to try again */
		s->reload_client = client;
		s->cl[client].role = CL_RELOAD;
		step(s, "joined the reload that the health watch started (gen %d)", s->gen[s->reload].id);
		return 0;
	}
	if (s->reload >= 0)
		return -EBUSY;
	if (s->active < 0)
		return -ENOENT;
	if (origin != RELOAD_HEALTH && (gi = FEATURES_FIRST(admit, s)))
		return gi;	/* --max-draining */
	s->reload_start_us = baton_mono_us();
	s->reload_client = client;
	FEATURES_CALL(reload_begin, s);
	if (client >= 0)
		s->cl[client].role = CL_RELOAD;
	say(s, "reload requested (%s)", words ? words : origin_words[origin]);
	state_repin(s);	/* pins removed meanwhile: a restart after a crash needs them */
	s->reload_origin = origin;
	gi = start_gen(s, -1, 0);
	if (gi < 0) {
		char serves[200];

		s->reload = -1;
		still_serves(s, serves, sizeof(serves));
		if (gi == -EAGAIN)
			reload_finish(s, false, "cannot start the next generation: all %d generation slots are taken "
				      "by generations that still run (%d draining); wait until they exit, or stop "
				      "them sooner with a shorter --grace; %s", MAX_GENS, draining_gens(s), serves);
		else
			reload_finish(s, false, "cannot start the next generation (\"%s\"): %s; %s", cmd_argv(s)[0],
				      strerror(-gi), serves);
		if (s->reload_origin == RELOAD_HEALTH) {
			s->retry_ms = !s->retry_ms ? 1000 : s->retry_ms * 2 > 30000 ? 30000 : s->retry_ms * 2;
			s->retry_at = baton_mono_ms() + s->retry_ms;
			sup_set_degraded(s, "the health watch could not start a replacement; retrying");
		}
		s->reload_origin = RELOAD_NONE;
		return 0;
	}
	s->reload = gi;
	FEATURES_CALL(reload_started, s, gi);
	step(s, "started gen %d (pid %d, bind mode %s)", s->gen[gi].id, (int)s->gen[gi].pid, gen_mode(s, gi));
	/* after the step, as the switch's: the new generation runs already,
	 * and its start overlaps this write (a few ms for 1,024 listeners on
	 * a disk, as the rename flushes the new file; little on /run's tmpfs) */
	state_save(s);
	return 0;
}

