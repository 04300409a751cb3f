/* SPDX-License-Identifier: BSD-2-Clause */
/* The resume: a new supervisor (or this one after baton upgrade's exec) reads
 * the state a dead one left, takes its generations and their member sockets
 * back, and completes or rolls back a reload the death cut short. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pinlayout.h"
#include "cmd.h"
#include "core.h"
#include "feature.h"
#include "gen.h"
#include "resume.h"
#include "rundir.h"
#include "state.h"
#include "strv.h"
#include "stateparse.h"
#include "util.h"

void check_alive(struct st_gen *g)
{
	struct baton_proc_stat ps;

	g->pidfd = baton_pidfd_open(g->pid);
	if (g->pidfd < 0) {
		g->pidfd = -1;
		return;
	}
	if (baton_proc_stat(g->pid, -1, &ps) || ps.start != g->ticks || ps.state == 'Z' || ps.state == 'X') {
		close(g->pidfd);
		g->pidfd = -1;
		return;
	}
	g->alive = true;
}

/* A copy of the socket with inode INO that PID (or one of its children:
 * workers that kept it while the master closed it) holds, or -errno. */
static int copy_member(pid_t pid, int pidfd, unsigned long long ino)
{
	int fd = baton_proc_socket_fd(pid, 1u << 20, ino), n, i;
	pid_t kids[1024];

	if (fd >= 0)
		return baton_pidfd_getfd(pidfd, fd);
	n = baton_proc_children(pid, kids, 1024);
	for (i = 0; i < n; i++) {
		pid_t child = kids[i];
		int cfd, copy;

		fd = baton_proc_socket_fd(child, 1u << 20, ino);
		if (fd < 0)
			continue;
		cfd = baton_pidfd_open(child);
		if (cfd < 0)
			continue;
		copy = baton_pidfd_getfd(cfd, fd);
		close(cfd);
		return copy;
	}
	return -ENOENT;
}

static bool same_listener(const struct baton_spec *a, const struct baton_spec *b)
{
	struct baton_spec x = *a, y = *b;

	/* a port of 0 in the command means "whatever it got" */
	if (!x.port || !y.port)
		x.port = y.port = 0;
	if (x.proto != y.proto || x.family != y.family || x.port != y.port)
		return false;
	if (x.family == AF_INET)
		return !memcmp(&((struct sockaddr_in *)&x.addr)->sin_addr, &((struct sockaddr_in *)&y.addr)->sin_addr,
			       4);
	return !memcmp(&((struct sockaddr_in6 *)&x.addr)->sin6_addr, &((struct sockaddr_in6 *)&y.addr)->sin6_addr, 16);
}

static enum gen_state parse_gen_state(const char *name)
{
	for (int i = 0; i < GEN_NSTATES; i++)
		if (!strcmp(state_name[i], name))
			return (enum gen_state)i;
	return GEN_FREE;
}

/* A member the watch or a drain had fenced (shut down): listening again
 * before it rejoins, so that the active generation never stays dark. */
static void relisten(int fd, const struct baton_spec *sp)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (sp->proto != BATON_PROTO_TCP || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) || v)
		return;
	if (bind(fd, (const struct sockaddr *)&sp->addr, sp->addrlen) && errno != EINVAL)
		return;
	listen(fd, sp->backlog > 0 ? sp->backlog : 4096);
}

/* Puts the members of adopted generation G (index GI) back into the groups. */
void adopt_members(struct sup *s, struct state *st, struct st_gen *sg, int gi, bool serving, char *lost,
		   size_t lostlen, int *stored)
{
	struct gen *g = &s->gen[gi];
	size_t k;

	for (k = 0; k < st->nmem; k++) {
		struct st_member *m = &st->mem[k];
		int fd, slot;

		if (m->id != sg->id)
			continue;
		/* the fd store (or the .socket unit) gave it back: no ptrace needed */
		fd = FEATURES_FD(dup_ino, s, m->ino);
		*stored += fd >= 0;
		if (fd < 0)
			fd = copy_member(sg->pid, g->pidfd, m->ino);
		if (fd < 0) {
			size_t used = strlen(lost);

			snprintf(lost + used, lostlen - used, "%sgen %d listener %d (%s)", used ? ", " : "", sg->id,
				 m->l, fd == -EPERM ? "no permission to copy its socket: needs CAP_SYS_PTRACE"
						    : "it no longer holds its socket");
			continue;
		}
		if (serving)
			relisten(fd, &s->spec[m->l]);
		slot = baton_group_add(s->grp[m->l], fd, 0);
		close(fd);	/* the group keeps its copy; the generation has its own */
		if (slot < 0) {
			size_t used = strlen(lost);

			snprintf(lost + used, lostlen - used, "%sgen %d listener %d (%s)", used ? ", " : "", sg->id,
				 m->l, strerror(-slot));
			continue;
		}
		if (g->slot[m->l] >= 0) {
			/* generation 0 (--takeover): one member per worker */
			if (!FEATURES_ANY(member_extra, s, gi, m->l, slot, (ino_t)m->ino))
				baton_group_remove(s->grp[m->l], slot);
			continue;
		}
		g->slot[m->l] = slot;
		g->member_ino[m->l] = (ino_t)m->ino;
		FEATURES_CALL(member_joined, s, g, m->l, false);	/* unless the state has its counters */
	}
}

/* The counters of adopted generation G as the state left them: the pinned
 * per-slot counters went on counting meanwhile, so its members' bases hold. */
static void adopt_counts(struct sup *s, const struct state *st, struct gen *g)
{
	for (size_t k = 0; k < st->ncnt; k++) {
		const struct st_count *c = &st->cnt[k];

		if (c->id != g->id || c->l < 0 || c->l >= s->nl)
			continue;
		if (g->slot[c->l] >= 0)
			g->count[c->l] = c->c;
		else
			memcpy(g->count[c->l].acc, c->c.acc, sizeof(c->c.acc));
	}
}

/* The command generations run: what reloads set, if this `baton run` gives
 * the command the dead supervisor was started with (or this is that one
 * re-executed by baton upgrade); a run with another command means it. */
static void adopt_cmd(struct sup *s, struct state *st)
{
	if (!st->base)
		return;	/* a state from before reloads could change it */
	if (!strv_eq(st->base, s->cfg->argv)) {
		if (st->cmd || st->env)
			say_warn(s, "the dead supervisor was started with another command: this one's runs from the "
				    "next generation on, and the command and environment its reloads set are dropped");
		return;
	}
	s->cmd = st->cmd;
	s->env = st->env;
	s->next_cmd = st->next_cmd;
	s->next_env = st->next_env;
	st->cmd = st->env = st->next_cmd = st->next_env = NULL;
	if (s->cmd || s->env)
		say(s, "generations run the command and environment the last reload set");
}

/* Shared listeners (one socket for every generation): the socket comes
 * back from LISTEN_FDS (the .socket unit or the fd store) or, failing
 * that, is copied from a generation that holds it. */
static void resume_shared(struct sup *s, struct state *st)
{
	for (int l = 0; l < s->nl; l++) {
		int fd = -ENOENT, i;

		if (!st->shared[l])
			continue;
		if (s->shared[l] >= 0 && (unsigned long long)s->shared_ino[l] == st->shared[l])
			continue;
		fd = FEATURES_FD(dup_ino, s, st->shared[l]);
		for (i = 0; i < MAX_GENS && fd < 0; i++) {
			struct gen *g = &s->gen[i];

			if (g->state != GEN_FREE && g->pid > 0 && g->pidfd >= 0)
				fd = copy_member(g->pid, g->pidfd, st->shared[l]);
		}
		if (fd < 0) {
			say_warn(s, "cannot take back the shared socket of listener %d (inode %llu) from the generations: %s; "
			       "they keep serving on it, but a reload will fail until they are stopped", l,
			    st->shared[l], fd == -EPERM ? "no permission (needs CAP_SYS_PTRACE or the same uid)"
							: "none of them holds it");
			continue;
		}
		if (s->shared[l] >= 0) {
			say_warn(s, "listener %d: the generations serve on another socket than the one passed now; keeping "
			       "theirs", l);
			close(s->shared[l]);
		}
		s->shared[l] = fd;
		s->shared_ino[l] = (ino_t)st->shared[l];
	}
}

/* One steering set for every listener, so that a switch moves them all at
 * one instant (gen_switch) and the supervisor holds one program and one map
 * set, not one per listener. Pinned in listener 0's directory (PINS/l0):
 * the layout stays, and baton ls, stale-pin checks and repins find it where
 * they did. Without eBPF it does not load, silently: each group then says
 * why and falls back on its own. A pinned set with room for fewer listeners
 * is refused, with the reason (logged by the library). */
static int make_set(struct sup *s, struct baton_group_opts *o)
{
	struct baton_steerset_opts so = { .sz = sizeof(so), .listeners = (uint32_t)s->nl, .no_migrate = o->no_migrate,
					  .log = lib_log, .log_ctx = s };
	char path[4200];

	for (int l = 0; l < s->nl; l++) {
		struct baton_group_opts f = *o;

		FEATURES_CALL(group_opts, s, l, &f);
		so.flows |= f.flows != BATON_FLOWS_OFF;
		if (f.flow_table > so.flow_table)
			so.flow_table = f.flow_table;
	}
	if (s->pin_root[0]) {
		char old[4300];

		pin_listener_dir(path, sizeof(path), s->pin_root, 0);
		/* an older baton pinned a program per listener (PINS/lN, its
		 * policy in a seqcount latch: cfg, ctl) and its members sit in
		 * those sockarrays, which one set cannot take over: each
		 * listener goes on in a group of its own (its policy carried
		 * over to banks) until a fresh start makes one set */
		snprintf(old, sizeof(old), "%s/cfg", path);
		if (s->nl > 1 && !access(old, F_OK)) {
			say(s, "the pins under %s are an older baton's, one steering program per listener: resuming "
			       "them so; a switch then moves listener by listener until the next fresh start",
			    s->pin_root);
			return 0;
		}
		so.pin_path = path;
	}
	s->set = baton_steerset_new(&so);
	if (!s->set && errno == EEXIST)
		return -EEXIST;
	o->set = s->set;
	return 0;
}

/* Creates the groups: pinned under PINS, resuming the pinned maps. */
int make_groups(struct sup *s, bool resume)
{
	struct baton_group_opts o = { .sz = sizeof(o), .log = lib_log, .log_ctx = s };
	const char *mode = getenv("BATON_STEERING");
	char path[4200];
	int l, r;

	/* BATON_STEERING=cbpf|ebpf forces a mode (tests, and a machine where
	 * eBPF loads but is not wanted); classic BPF cannot be pinned */
	if (mode && !strcmp(mode, "cbpf")) {
		o.mode = BATON_MODE_CBPF;
		s->pin_root[0] = '\0';
	} else if (mode && !strcmp(mode, "ebpf")) {
		o.mode = BATON_MODE_EBPF;
	} else if (s->pin_root[0]) {
		/* pins need eBPF: find out first, unpinned, so that without the
		 * privilege nothing is created in bpffs, "eBPF steering
		 * unavailable" is said once (by this probe) and no pinned
		 * attempt fails with an error when nothing is wrong */
		struct baton_group_opts po = o;
		struct baton_group *probe = baton_group_new(&po);

		if (probe && baton_group_mode(probe) != BATON_MODE_EBPF) {
			s->pin_root[0] = '\0';
			o.mode = BATON_MODE_CBPF;
		}
		baton_group_free(probe);
	}
	/* another supervisor of this name (another runtime directory) may
	 * serve through these pins: neither cleared nor taken then */
	if (s->pin_root[0] && (r = rundir_lock_pins(s)))
		return r;
	if (!resume && s->pin_root[0]) {
		/* a fresh start owns its name: stale pins of a dead run go,
		 * past our own listeners too while their directories exist */
		for (l = 0; l < SUP_MAX_LISTENERS; l++) {
			pin_listener_dir(path, sizeof(path), s->pin_root, l);
			if (baton_group_unpin_dir(path) == -ENOENT && l >= s->nl)
				break;
		}
	}
	if (!s->set && o.mode != BATON_MODE_CBPF && (r = make_set(s, &o)))
		return r;
	/* every listener's first table in one policy bank, one commit (a
	 * commit each would wait for grace periods once the few banks of a
	 * large set are retired) */
	baton_steerset_begin(s->set);
	r = 0;
	for (l = 0; l < s->nl && !r; l++) {
		if (s->pin_root[0] && !s->set) {
			pin_listener_dir(path, sizeof(path), s->pin_root, l);
			o.pin_path = path;
		}
		o.set_index = (uint32_t)l;
		FEATURES_CALL(group_opts, s, l, &o);
		s->grp[l] = baton_group_new(&o);
		if (!s->grp[l] && s->pin_root[0] && l == 0) {
			/* pins need eBPF: without it, run unpinned (classic BPF) */
			s->pin_root[0] = '\0';
			o.pin_path = NULL;
			s->grp[l] = baton_group_new(&o);
		}
		if (!s->grp[l]) {
			r = -errno;
			say_err(s, "cannot create a steering group for listener %d: %s", l, strerror(-r));
		}
	}
	if (s->set)
		baton_steerset_commit(s->set);
	/* the pins were just made: from now on a reload looks at them only
	 * once something under them went */
	if (!r && s->pin_root[0] && s->pins_ours)
		pinwatch_arm(s);
	return r;
}

int sup_make_groups(struct sup *s)
{
	return make_groups(s, false);
}

/* Whether the state ST read can be resumed: 1 yes, 0 nothing of it runs
 * any more (start afresh), -EINVAL its listeners are not this command's
 * (said). */
static int resume_check(struct sup *s, struct state *st)
{
	int i, l, alive = 0, r = 0;

	for (i = 0; i < st->ngen; i++) {
		check_alive(&st->gen[i]);
		alive += st->gen[i].alive;
	}
	if (!alive) {
		say(s, "found the state of a supervisor that is gone (%s); none of its generations runs any more: "
		       "starting afresh", s->state_path);
		return 0;
	}
	if (st->nl != s->nl) {
		r = -EINVAL;
	} else {
		for (l = 0; l < s->nl && !r; l++)
			if (!same_listener(&st->spec[l], &s->spec[l]))
				r = -EINVAL;
	}
	if (r) {
		char want[256];

		baton_spec_format(&st->spec[0], want, sizeof(want));
		say_err(s, "generations of a supervisor named \"%s\" still run (%s: %d listener%s, the first %s), but this "
		       "command gives other listeners: run the same `baton run` command to resume them, or stop them "
		       "first (their pids are in that file)", s->name, s->state_path, st->nl, st->nl == 1 ? "" : "s",
		    want);
		return r;
	}
	return 1;
}

/* Generation SG of the state, alive, into a slot of the table with its
 * members: the slot, or -1 when the table is full. */
static int resume_gen(struct sup *s, struct state *st, struct st_gen *sg, char *lost, size_t lostlen, int *stored)
{
	struct baton_proc_stat ps;
	struct gen *g;
	enum gen_state was = parse_gen_state(sg->state);
	bool serving = sg->id == st->active;
	int gi = alloc_gen(s);

	if (gi < 0)
		return -1;
	g = &s->gen[gi];
	gen_reset(s, g);
	g->id = sg->id;
	g->pid = sg->pid;
	g->pidfd = sg->pidfd;
	sg->pidfd = -1;
	g->start_ticks = sg->ticks;
	g->start_wall_ms = sg->wall_ms;
	g->start_us = baton_mono_us();
	g->adopted = baton_proc_stat(g->pid, -1, &ps) || ps.ppid != getpid();
	/* as the state said; draining if it had been told to stop */
	gen_set_state(s, gi, was == GEN_FREE || was == GEN_EXITED || sg->stopped ? GEN_DRAINING : was,
		      "resumed from the state file");
	if (sg->stopped || was == GEN_DRAINING) {
		g->stop_ms = baton_mono_ms();	/* the grace starts again */
		g->flow_wait = sg->stopped == 2;	/* still to be signalled once its flows end */
	}
	if (serving)
		g->ready_us = g->start_us;
	adopt_members(s, st, sg, gi, serving, lost, lostlen, stored);
	adopt_counts(s, st, g);
	gen_watch_pid(s, gi);
	return gi;
}

/* A reload cut short (slot RELOAD, ACTIVE the one that served): completed
 * if the switch was published, else rolled back (its members never had
 * weight). Returns the generation that serves now; NOTE says which. */
static int resume_reload(struct sup *s, int reload, int active, char *note, size_t len)
{
	struct gen *n = &s->gen[reload];
	uint32_t w = 0;

	if (n->slot[0] >= 0)
		baton_group_weight(s->grp[0], n->slot[0], &w);
	if (w && n->state != GEN_DRAINING) {
		if (active >= 0 && s->gen[active].pid > 0) {
			gen_set_state(s, active, GEN_ACTIVE, "resumed: it served, to be stopped");
			s->active = active;
			stop_gen(s, &s->gen[active]);
		}
		cmd_commit(s);
		snprintf(note, len, "; completed the reload to gen %d (it had been switched to)", n->id);
		return reload;
	}
	stop_gen(s, n);
	release_members(s, n);
	snprintf(n->why, sizeof(n->why), "rolled back: the supervisor died while it started");
	s->reloads_failed++;
	FEATURES_CALL(reload_counted, s, false, -1);	/* not timed: it began in the dead supervisor */
	cmd_drop(s);
	snprintf(note, len, "; rolled back gen %d (pid %d), which was starting", n->id, (int)n->pid);
	return active;
}

/* "gen 3 (pid 42, active), ..." of every generation that runs, but SKIP;
 * OURS: say which are this process's children. */
void resume_said(const struct sup *s, int skip, bool ours, char *said, size_t len)
{
	for (int i = 0; i < MAX_GENS; i++) {
		const struct gen *g = &s->gen[i];
		size_t used = strlen(said);

		if (g->state == GEN_FREE || g->pid <= 0 || i == skip)
			continue;
		snprintf(said + used, len - used, "%sgen %d (pid %d, %s%s)", used ? ", " : "", g->id, (int)g->pid,
			 state_name[g->state], ours && !g->adopted ? ", our child" : "");
	}
}

/* The members a resume or an adoption could not take back: said, and kept
 * as a reason the service is degraded. */
void resume_lost(struct sup *s, const char *lost)
{
	if (!lost[0])
		return;
	say_warn(s, "could not take back: %s", lost);
	snprintf(s->members_err, sizeof(s->members_err), "members not recoverable: %s; baton does not steer "
		 "or watch them: reload to replace them", lost);
}

int state_resume(struct sup *s)
{
	struct state st;
	char lost[1024] = "", said[1024] = "", note[256] = "";
	int r, i, l, active = -1, reload = -1, stored = 0;

	r = state_read(s, s->state_path, &st);
	if (r == -ENOENT)
		return 0;
	if (r) {
		state_free(&st);
		return r == -EBADMSG ? 0 : r;	/* an unreadable state is left as it is, and ignored */
	}
	if ((r = resume_check(s, &st)) <= 0) {
		state_free(&st);
		return r;
	}
	for (l = 0; l < s->nl; l++) {
		s->spec[l].port = st.spec[l].port;
		if (s->spec[l].family == AF_INET)
			((struct sockaddr_in *)&s->spec[l].addr)->sin_port = htons(s->spec[l].port);
		else
			((struct sockaddr_in6 *)&s->spec[l].addr)->sin6_port = htons(s->spec[l].port);
	}
	if (strcmp(st.pins, "-"))
		snprintf(s->pin_root, sizeof(s->pin_root), "%s", st.pins);
	else
		s->pin_root[0] = '\0';
	if ((r = make_groups(s, true))) {
		state_free(&st);
		return r;
	}
	adopt_cmd(s, &st);
	s->next_id = st.next_id;
	s->reloads_done = st.done;
	s->reloads_failed = st.failed;
	s->restarts = st.restarts;
	snprintf(s->last_reload, sizeof(s->last_reload), "%s", st.last_reload);
	FEATURES_CALL(loaded, s);
	/* the oldest first: in classic BPF mode that is the kernel's order */
	for (i = 0; i < st.ngen; i++) {
		struct st_gen *sg = &st.gen[i];
		int gi;

		if (!sg->alive)
			continue;
		if ((gi = resume_gen(s, &st, sg, lost, sizeof(lost), &stored)) < 0)
			break;
		if (sg->id == st.active)
			active = gi;
		/* a generation that was starting or ready but not yet serving is
		 * a reload cut short, whether or not the state said so yet */
		else if (sg->id == st.reload || s->gen[gi].state == GEN_STARTING || s->gen[gi].state == GEN_READY)
			reload = gi;
	}
	resume_shared(s, &st);
	if (reload >= 0 && FEATURES_ANY(resuming, s, s->gen[reload].id)) {
		s->reload = reload;	/* a canary: kept as it was, by stage_resume */
		reload = -1;
	}
	if (reload >= 0)
		active = resume_reload(s, reload, active, note, sizeof(note));
	if (reload < 0)
		cmd_drop(s);	/* its generation is gone: what it would have run goes too */
	if (active >= 0) {
		struct gen *a = &s->gen[active];

		gen_set_state(s, active, GEN_ACTIVE, "resumed: it serves");
		s->active = active;
		/* generation 0 (--takeover) serves through several members with
		 * the weights the pinned maps still hold */
		for (l = 0; l < s->nl && a->id != 0; l++)
			if (a->slot[l] >= 0)
				baton_group_activate(s->grp[l], a->slot[l]);
	}
	resume_said(s, reload != active ? reload : -1, true, said, sizeof(said));
	s->resumed = true;
	FEATURES_CALL(resumed, s);
	say(s, "resumed from %s: adopted %s%s", s->state_path, said[0] ? said : "nothing", note);
	if (stored)
		say(s, "took %d member socket%s back from the service manager's fd store (LISTEN_FDS)", stored,
		    stored == 1 ? "" : "s");
	resume_lost(s, lost);
	state_free(&st);
	if (active < 0)
		say_warn(s, "no generation of the dead supervisor was serving: starting a fresh one");
	state_save(s);
	return 1;
}
