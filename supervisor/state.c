/* SPDX-License-Identifier: BSD-2-Clause */
/* State that outlives the supervisor: NAME.state in the runtime directory
 * (written whole and renamed into place at every transition) and the
 * steering maps pinned in bpffs. A `baton run` started again with the same
 * name, or this binary re-executed by `baton upgrade`, reads it, verifies
 * each generation's pid against its start time, copies its member sockets
 * back with pidfd_getfd and resumes; a reload cut short is completed or
 * rolled back, so exactly one generation is active. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "pinlayout.h"
#include "stateparse.h"


/* ---- writing ------------------------------------------------------------- */

static void write_strv(FILE *f, const char *key, char *const *v)
{
	for (size_t i = 0; v && v[i]; i++) {
		fprintf(f, "%s ", key);
		sup_escape(f, v[i]);
		fputc('\n', f);
	}
}

/* The command `baton run` was given (to tell whether a resuming run gives
 * the same), the one a reload set and its environment, and a reload's
 * still starting; percent-escaped, one item a line. */
static void write_cmd(struct sup *s, FILE *f)
{
	write_strv(f, "cmd-base", s->cfg->argv);
	write_strv(f, "cmd", s->cmd);
	write_strv(f, "env", s->env);
	write_strv(f, "next-cmd", s->next_cmd);
	write_strv(f, "next-env", s->next_env);
}

/* A generation's counters: the slot's when its member joined and what
 * members that left counted, so a resumed supervisor goes on counting. */
static void write_counts(struct sup *s, FILE *f, const struct gen *g)
{
	for (int l = 0; l < s->nl; l++) {
		const struct gen_count *c = &g->count[l];

		fprintf(f, "gencount %d %d %llu %llu %llu %llu %llu %llu\n", g->id, l,
			(unsigned long long)c->base[0], (unsigned long long)c->base[1], (unsigned long long)c->base[2],
			(unsigned long long)c->acc[0], (unsigned long long)c->acc[1], (unsigned long long)c->acc[2]);
	}
}

static void write_state(struct sup *s, FILE *f)
{
	char spec[512];
	int i, l;

	fprintf(f, "%s\nname %s\npid %d\nmode %s\npins %s\nnext_id %d\ncounts %d %d %d\n", STATE_MAGIC, s->name,
		(int)getpid(), baton_mode_name(baton_group_mode(s->grp[0])), s->pin_root[0] ? s->pin_root : "-",
		s->next_id, s->reloads_done, s->reloads_failed, s->restarts);
	fprintf(f, "active %d\nreload %d\n", s->active >= 0 ? s->gen[s->active].id : 0,
		s->reload >= 0 ? s->gen[s->reload].id : 0);
	for (l = 0; l < s->nl; l++) {
		baton_spec_format(&s->spec[l], spec, sizeof(spec));
		fprintf(f, "listener %d %u %s\n", l, s->spec[l].port, spec);
		if (s->shared[l] >= 0)
			fprintf(f, "shared %d %llu\n", l, (unsigned long long)s->shared_ino[l]);
	}
	for (i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];

		if (g->state == GEN_FREE || g->pid <= 0)
			continue;
		fprintf(f, "gen %d %d %llu %s %lld %d\n", g->id, (int)g->pid, g->start_ticks, state_name[g->state],
			g->start_wall_ms, g->stop_ms ? (g->flow_wait ? 2 : 1) : 0);	/* 2: not signalled, holds UDP flows */
		for (l = 0; l < s->nl; l++)
			if (g->slot[l] >= 0 && g->member_ino[l])
				fprintf(f, "member %d %d %d %llu\n", g->id, l, g->slot[l],
					(unsigned long long)g->member_ino[l]);
		for (int k = 0; k < s->ntkm; k++)
			if (s->tkm[k].gi == i && s->tkm[k].slot >= 0)
				fprintf(f, "member %d %d %d %llu\n", g->id, s->tkm[k].l, s->tkm[k].slot,
					(unsigned long long)s->tkm[k].ino);
		write_counts(s, f, g);
	}
	write_cmd(s, f);
	stage_save(s, f);
	metrics_save(s, f);
	fprintf(f, "end\n");
}

static const char *state_file(const struct sup *s)
{
	const char *p = strrchr(s->state_path, '/');

	return p ? p + 1 : s->state_path;
}

/* The temporary file beside the state, created afresh: never through a
 * symlink, never a file that was there (a leftover of ours is removed:
 * the directory is ours alone, see rundir.c). */
static int open_tmp(struct sup *s, char *tmp, size_t len)
{
	int fd, tries;

	if ((size_t)snprintf(tmp, len, "%s.tmp", state_file(s)) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (tries = 0; tries < 2; tries++) {
		fd = openat(s->rundir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
		if (unlinkat(s->rundir, tmp, 0))
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/* Records how the last write went: a failure degrades the service (status,
 * metrics, the log once per reason, STATUS= under systemd) and is retried
 * with back-off until a write succeeds. */
static void state_failed(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void state_failed(struct sup *s, const char *fmt, ...)
{
	char why[sizeof(s->state_err)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (strcmp(why, s->state_err))
		say_err(s, "degraded: %s; a supervisor started after a crash could not resume from it: retrying",
			why);
	snprintf(s->state_err, sizeof(s->state_err), "%s", why);
	s->state_retry_ms = s->state_retry_ms ? s->state_retry_ms * 2 : BACKOFF_MIN_MS;
	if (s->state_retry_ms > BACKOFF_MAX_MS)
		s->state_retry_ms = BACKOFF_MAX_MS;
	s->state_retry_at = baton_mono_ms() + s->state_retry_ms;
}

static void state_written(struct sup *s)
{
	if (s->state_err[0])
		say(s, "the state file %s is written again (was: %s): no longer degraded by it", s->state_path,
		    s->state_err);
	s->state_err[0] = '\0';
	s->state_retry_ms = 0;
}

static void state_write(struct sup *s)
{
	char tmp[4200];
	FILE *f;
	int fd, e;

	fd = open_tmp(s, tmp, sizeof(tmp));
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		e = errno;
		if (fd >= 0)
			close(fd);
		state_failed(s, "cannot write the state file %s.tmp: %s", s->state_path, strerror(e));
		return;
	}
	write_state(s, f);
	/* the rename is the commit: a reader sees the old state or the new.
	 * No fsync: the state matters only while processes it names run, and
	 * they do not outlive a crash of the machine. */
	if (fflush(f) || ferror(f)) {
		e = errno ? errno : EIO;
		fclose(f);
		unlinkat(s->rundir, tmp, 0);
		state_failed(s, "cannot write the state file %s.tmp: %s", s->state_path, strerror(e));
		return;
	}
	if (fclose(f)) {
		e = errno;
		unlinkat(s->rundir, tmp, 0);
		state_failed(s, "cannot write the state file %s.tmp: %s", s->state_path, strerror(e));
		return;
	}
	if (renameat(s->rundir, tmp, s->rundir, state_file(s))) {
		e = errno;
		unlinkat(s->rundir, tmp, 0);
		state_failed(s, "cannot rename %s.tmp into place: %s", s->state_path, strerror(e));
		return;
	}
	state_written(s);
}

static void members_check(struct sup *s);

void state_save(struct sup *s)
{
	members_check(s);
	if (s->state_path[0] && s->rundir >= 0)
		state_write(s);
	sdn_status(s);	/* every transition is saved: the service manager hears of it too (and of a failure) */
}

void state_repin(struct sup *s)
{
	int l, n = 0, r;

	if (!s->pin_root[0] || !s->pins_ours)
		return;
	for (l = 0; l < s->nl; l++) {
		if (!s->grp[l])
			continue;
		r = baton_group_repin(s->grp[l]);
		if (r < 0) {
			say_warn(s, "cannot pin listener %d's steering state again under %s: %s; a supervisor started "
				    "after a crash could not resume it", l, s->pin_root, strerror(-r));
			return;
		}
		n += r > 0;
	}
	if (n)
		say_warn(s, "the pins of %d listener%s under %s had been removed: pinned again", n, n == 1 ? "" : "s",
			 s->pin_root);
}

/* Members a restart could not take back leave the active generation
 * serving on sockets baton does not hold: no steering, no watch, no
 * migration for them. Degraded until a generation holds every member. */
static void members_check(struct sup *s)
{
	const struct gen *a = s->active >= 0 ? &s->gen[s->active] : NULL;
	int l, missing = 0;

	if (!s->members_err[0])
		return;
	for (l = 0; a && a->id != 0 && l < s->nl; l++)
		missing += a->slot[l] < 0 && s->shared[l] < 0;
	if (a && !missing) {
		say(s, "gen %d holds every member again: no longer degraded (%s)", a->id, s->members_err);
		s->members_err[0] = '\0';
	}
}

void state_retry(struct sup *s, long long now)
{
	if (s->state_err[0] && now >= s->state_retry_at && !s->stopping) {
		rundir_reopen(s);	/* a read-only mount replaced since */
		state_save(s);
	}
}

/* A clean stop leaves nothing: no state, no pins (if they are ours). */
void state_remove(struct sup *s)
{
	char path[4200];
	int l;

	if (s->state_path[0])
		rundir_unlink(s, state_file(s));
	if (!s->pin_root[0] || !s->pins_ours)
		return;
	for (l = 0; l < s->nl; l++)
		if (s->grp[l])
			baton_group_unpin(s->grp[l]);
	for (l = 0; l < s->nl; l++) {
		pin_listener_dir(path, sizeof(path), s->pin_root, l);
		rmdir(path);
	}
	rmdir(s->pin_root);
	/* and baton/ above it, if this was the last thing pinned there */
	snprintf(path, sizeof(path), "%s", s->pin_root);
	if (strrchr(path, '/')) {
		*strrchr(path, '/') = '\0';
		rmdir(path);
	}
}

/* ---- pins ------------------------------------------------------------------ */

/* Where this supervisor's groups are pinned (common/pinlayout.h). Mounts
 * bpffs if nothing is there, as baton steer does. "" when it cannot: a
 * supervisor started after a crash then cannot find the steering state,
 * which is said. */
int state_pin_root(struct sup *s)
{
	const char *base = pin_base();
	int r = pin_bpffs_mount(base);

	if (r) {
		snprintf(s->pin_warn, sizeof(s->pin_warn), "no bpffs at %s (%s): the steering state is not pinned, "
			 "so a supervisor started after this one dies cannot resume it (mount one there, or give "
			 "CAP_SYS_ADMIN to mount it)", base, strerror(-r));
		s->pin_root[0] = '\0';
		return r;
	}
	if ((r = pin_run_dir(s->pin_root, sizeof(s->pin_root), s->name)))
		s->pin_root[0] = '\0';
	return r;
}

/* ---- reading ---------------------------------------------------------------- */

/* The state file, parsed by stateparse.c; the stage's lines go to canary.c,
 * the reload outcomes and totals to metrics.c. */
static bool stage_line(void *ctx, const char *line)
{
	return stage_load_line(ctx, line) || metrics_load_line(ctx, line);
}

/* -ENOENT if there is none; -EBADMSG, said with the line (escaped), if it
 * is not one this supervisor wrote or not a file of ours. */
static int state_read(struct sup *s, const char *path, struct state *st)
{
	struct state_bad bad;
	int r, fd;
	FILE *f;

	memset(st, 0, sizeof(*st));
	/* ours alone (a file another uid planted would name the processes
	 * and the command this supervisor adopts and runs) */
	fd = rundir_open_file(s, state_file(s), "state file");
	if (fd < 0)
		return fd == -ENOENT ? fd : -EBADMSG;
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		return -errno;
	}
	r = state_parse(f, st, stage_line, s, &bad);
	fclose(f);
	if (r == -EBADMSG && bad.lineno)
		say_warn(s, "the state file %s is not one this supervisor can read (line %d: \"%s\"); not resuming "
			    "from it", path, bad.lineno, bad.quoted);
	else if (r == -EBADMSG)
		say_warn(s, "the state file %s is incomplete (no end line): not resuming from it", path);
	return r;
}

/* Is the process behind G still the one the state names? The pidfd is
 * opened first and the start time read after: if the pid was reused in
 * between, the start time differs, so a pidfd that passes names it. */
static void check_alive(struct st_gen *g)
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

struct find_ctx {
	unsigned long long ino;
	int fd;
};

static int find_ino(void *ctx, int fd, unsigned long long ino)
{
	struct find_ctx *c = ctx;

	if (ino != c->ino)
		return 0;
	c->fd = fd;
	return 1;
}

/* A copy of the socket with inode INO that PID (or one of its children:
 * workers that kept it while the master closed it) holds, or -errno. */
static int copy_member(pid_t pid, int pidfd, unsigned long long ino)
{
	struct find_ctx c = { .ino = ino, .fd = -1 };
	pid_t kids[1024];
	int n, i;

	if (baton_proc_sockets(pid, 1u << 20, find_ino, &c) == 1)
		return baton_pidfd_getfd(pidfd, c.fd);
	n = baton_proc_children(pid, kids, 1024);
	for (i = 0; i < n; i++) {
		pid_t child = kids[i];
		int cfd, copy;

		c.fd = -1;
		if (baton_proc_sockets(child, 1u << 20, find_ino, &c) != 1)
			continue;
		cfd = baton_pidfd_open(child);
		if (cfd < 0)
			continue;
		copy = baton_pidfd_getfd(cfd, c.fd);
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
static void adopt_members(struct sup *s, struct state *st, struct st_gen *sg, int gi, bool serving, char *lost,
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
		fd = sdn_dup_ino(s, m->ino);
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
			if (takeover_add_member(s, gi, m->l, slot, (ino_t)m->ino))
				baton_group_remove(s->grp[m->l], slot);
			continue;
		}
		g->slot[m->l] = slot;
		g->member_ino[m->l] = (ino_t)m->ino;
		count_join(s, g, m->l);	/* unless the state has its counters */
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
		fd = sdn_dup_ino(s, st->shared[l]);
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

/* Creates the groups: pinned under PINS, resuming the pinned maps. */
static int make_groups(struct sup *s, bool resume)
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
	for (l = 0; l < s->nl; l++) {
		if (s->pin_root[0]) {
			pin_listener_dir(path, sizeof(path), s->pin_root, l);
			o.pin_path = path;
		}
		flows_group_opts(s, l, &o);
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
			return r;
		}
	}
	return 0;
}

int sup_make_groups(struct sup *s)
{
	return make_groups(s, false);
}

int state_resume(struct sup *s)
{
	struct state st;
	char lost[1024] = "", said[1024] = "", note[256] = "";
	int r, i, l, alive = 0, active = -1, reload = -1, stored = 0;

	r = state_read(s, s->state_path, &st);
	if (r == -ENOENT)
		return 0;
	if (r) {
		state_free(&st);
		return r == -EBADMSG ? 0 : r;	/* an unreadable state is left as it is, and ignored */
	}
	for (i = 0; i < st.ngen; i++) {
		check_alive(&st.gen[i]);
		alive += st.gen[i].alive;
	}
	if (!alive) {
		say(s, "found the state of a supervisor that is gone (%s); none of its generations runs any more: "
		       "starting afresh", s->state_path);
		state_free(&st);
		return 0;
	}
	if (st.nl != s->nl) {
		r = -EINVAL;
	} else {
		for (l = 0; l < s->nl && !r; l++)
			if (!same_listener(&st.spec[l], &s->spec[l]))
				r = -EINVAL;
	}
	if (r) {
		char want[256];

		baton_spec_format(&st.spec[0], want, sizeof(want));
		say_err(s, "generations of a supervisor named \"%s\" still run (%s: %d listener%s, the first %s), but this "
		       "command gives other listeners: run the same `baton run` command to resume them, or stop them "
		       "first (their pids are in that file)", s->name, s->state_path, st.nl, st.nl == 1 ? "" : "s",
		    want);
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
	metrics_resume(s);
	/* the oldest first: in classic BPF mode that is the kernel's order */
	for (i = 0; i < st.ngen; i++) {
		struct st_gen *sg = &st.gen[i];
		struct baton_proc_stat ps;
		struct gen *g;
		enum gen_state was = parse_gen_state(sg->state);
		bool serving = sg->id == st.active;
		int gi;

		if (!sg->alive)
			continue;
		gi = alloc_gen(s);
		if (gi < 0)
			break;
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
		adopt_members(s, &st, sg, gi, serving, lost, sizeof(lost), &stored);
		adopt_counts(s, &st, g);
		gen_watch_pid(s, gi);
		if (serving)
			active = gi;
		/* a generation that was starting or ready but not yet serving is
		 * a reload cut short, whether or not the state said so yet */
		else if (sg->id == st.reload || g->state == GEN_STARTING || g->state == GEN_READY)
			reload = gi;
	}
	resume_shared(s, &st);
	/* a reload cut short: completed if the switch was published, else
	 * rolled back (its members never had weight) */
	if (reload >= 0 && stage_resuming(s->gen[reload].id)) {
		s->reload = reload;	/* a canary: kept as it was, by stage_resume */
		reload = -1;
	}
	if (reload >= 0) {
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
			active = reload;
			cmd_commit(s);
			snprintf(note, sizeof(note), "; completed the reload to gen %d (it had been switched to)", n->id);
		} else {
			stop_gen(s, n);
			release_members(s, n);
			snprintf(n->why, sizeof(n->why), "rolled back: the supervisor died while it started");
			s->reloads_failed++;
			metrics_reload(s, false, -1);	/* not timed: it began in the dead supervisor */
			cmd_drop(s);
			snprintf(note, sizeof(note), "; rolled back gen %d (pid %d), which was starting", n->id,
				 (int)n->pid);
		}
	}
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
	for (i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];
		size_t used = strlen(said);

		if (g->state == GEN_FREE || g->pid <= 0 || (i == reload && i != active))
			continue;
		snprintf(said + used, sizeof(said) - used, "%sgen %d (pid %d, %s%s)", used ? ", " : "",
			 g->id, (int)g->pid, state_name[g->state], g->adopted ? "" : ", our child");
	}
	s->resumed = true;
	stage_resume(s);
	say(s, "resumed from %s: adopted %s%s", s->state_path, said[0] ? said : "nothing", note);
	if (stored)
		say(s, "took %d member socket%s back from the service manager's fd store (LISTEN_FDS)", stored,
		    stored == 1 ? "" : "s");
	if (lost[0]) {
		say_warn(s, "could not take back: %s", lost);
		snprintf(s->members_err, sizeof(s->members_err), "members not recoverable: %s; baton does not steer "
			 "or watch them: reload to replace them", lost);
	}
	state_free(&st);
	if (active < 0)
		say_warn(s, "no generation of the dead supervisor was serving: starting a fresh one");
	state_save(s);
	return 1;
}

/* ---- generations without a state ------------------------------------------ */

/* Is PID a process of a generation of this supervisor? Its uids are ours
 * (all four: a process that made itself undumpable shows /proc/PID as
 * root's), and the environment it was started with names this supervisor:
 * BATON_NAME and NOTIFY_SOCKET, the latter a path in this runtime
 * directory. Returns its BATON_GENERATION, or -1. */
static int orphan_gen(const struct sup *s, pid_t pid)
{
	char path[64], buf[65536], want_name[BATON_NAME_MAX + 16], want_notify[160];
	unsigned uid[4];
	bool name = false, notify = false;
	int fd, gen = -1;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	uid[0] = uid[1] = uid[2] = uid[3] = (unsigned)-1;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "Uid: %u %u %u %u", &uid[0], &uid[1], &uid[2], &uid[3]) == 4)
			break;
	fclose(f);
	for (int i = 0; i < 4; i++)
		if (uid[i] != (unsigned)geteuid())
			return -1;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	snprintf(want_name, sizeof(want_name), "BATON_NAME=%s", s->name);
	snprintf(want_notify, sizeof(want_notify), "NOTIFY_SOCKET=%s", s->notify_path);
	for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
		name |= !strcmp(p, want_name);
		notify |= !strcmp(p, want_notify);
		if (!strncmp(p, "BATON_GENERATION=", 17))
			gen = atoi(p + 17);
	}
	return name && notify && gen > 0 ? gen : -1;
}

/* The generation's own process: the topmost of PID and its parents that
 * carries the same generation's environment (workers inherit it). */
static pid_t orphan_top(const struct sup *s, pid_t pid, int id)
{
	for (int hops = 0; hops < 8; hops++) {
		struct baton_proc_stat ps;

		if (baton_proc_stat(pid, -1, &ps) || ps.ppid <= 1 || ps.ppid == getpid() ||
		    orphan_gen(s, ps.ppid) != id)
			break;
		pid = ps.ppid;
	}
	return pid;
}

struct orphan {
	int id;
	pid_t pid;
	unsigned long long ino[SUP_MAX_LISTENERS > 64 ? 64 : SUP_MAX_LISTENERS];
};

/* A supervisor killed while its state file could not be written (full
 * disk, read-only directory) leaves a stale state or none; the same
 * command started again finds the generations serving on its listeners.
 * They are its own when orphan_gen says so: adopted, the newest serving,
 * instead of refused as foreign. Makes the groups when it finds any.
 * 1: found some, 0: none, -errno: the groups could not be made (said). */
int state_adopt_orphans(struct sup *s)
{
	struct baton_collect_opts o = { .sz = sizeof(o), .log = lib_log, .log_ctx = s };
	struct baton_sock *socks = NULL;
	struct orphan orph[MAX_GENS];
	char said[1024] = "", lost[1024] = "";
	int norph = 0, newest = -1, l, stored = 0;
	size_t n = 0, i;

	if (s->nl > (int)(sizeof(orph[0].ino) / sizeof(orph[0].ino[0])) || baton_socks_collect(&o, &socks, &n))
		return 0;
	for (l = 0; l < s->nl; l++) {
		if (!s->spec[l].port)
			continue;
		for (i = 0; i < n; i++) {
			const struct baton_sock *k = &socks[i];
			int id = -1, j;
			pid_t top = 0;

			if (!sock_on_spec(&s->spec[l], k) || sdn_ours(s, k->inode))
				continue;
			for (uint32_t w = 0; w < k->nowners && w < BATON_SOCK_MAX_OWNERS && id < 0; w++)
				if ((id = orphan_gen(s, k->owners[w].pid)) > 0)
					top = orphan_top(s, k->owners[w].pid, id);
			if (id <= 0)
				continue;
			for (j = 0; j < norph && orph[j].id != id; j++)
				;
			if (j == norph) {
				if (norph == MAX_GENS - 1)
					continue;
				memset(&orph[norph], 0, sizeof(orph[norph]));
				orph[norph].id = id;
				orph[norph++].pid = top;
			}
			if (!orph[j].ino[l])
				orph[j].ino[l] = k->inode;
		}
	}
	baton_socks_free(socks);
	if (!norph)
		return 0;
	/* the pins of the dead supervisor still hold these members: kept,
	 * as a resume keeps them, never cleared as a fresh start would */
	if (make_groups(s, true))
		return -1;
	for (int j = 0; j < norph; j++) {
		struct orphan *op = &orph[j];
		struct st_gen sg = { .id = op->id, .pid = op->pid, .pidfd = -1 };
		struct baton_proc_stat ps;
		struct state st = { 0 };
		struct st_member mem[64];
		int gi;

		if (baton_proc_stat(op->pid, -1, &ps))
			continue;
		sg.ticks = ps.start;
		check_alive(&sg);
		if (!sg.alive || (gi = alloc_gen(s)) < 0) {
			if (sg.pidfd >= 0)
				close(sg.pidfd);
			continue;
		}
		gen_reset(s, &s->gen[gi]);
		s->gen[gi].id = op->id;
		s->gen[gi].pid = op->pid;
		s->gen[gi].pidfd = sg.pidfd;
		s->gen[gi].start_ticks = sg.ticks;
		s->gen[gi].start_wall_ms = baton_wall_ms();
		s->gen[gi].start_us = s->gen[gi].ready_us = baton_mono_us();
		s->gen[gi].adopted = true;
		gen_set_state(s, gi, GEN_DRAINING, "adopted without a state file");
		for (l = 0; l < s->nl; l++)
			if (op->ino[l]) {
				mem[st.nmem] = (struct st_member){ .id = op->id, .l = l, .slot = -1, .ino = op->ino[l] };
				sdn_mark_ours(s, (ino_t)op->ino[l]);
				st.nmem++;
			}
		st.mem = mem;
		adopt_members(s, &st, &sg, gi, true, lost, sizeof(lost), &stored);
		gen_watch_pid(s, gi);
		if (op->id >= s->next_id)
			s->next_id = op->id + 1;
		if (newest < 0 || op->id > s->gen[newest].id)
			newest = gi;
	}
	if (newest < 0) {
		say_warn(s, "generations of this supervisor serve on its listeners, but none could be adopted");
		return 1;
	}
	/* the newest serves; any older one was draining when the state was
	 * last known (or a restart replaced it): told to stop again */
	for (int gi = 0; gi < MAX_GENS; gi++) {
		struct gen *g = &s->gen[gi];
		size_t used = strlen(said);

		if (g->state == GEN_FREE || g->pid <= 0)
			continue;
		if (gi == newest) {
			gen_set_state(s, gi, GEN_ACTIVE, "adopted: the newest serves");
			s->active = gi;
			for (l = 0; l < s->nl; l++)
				if (g->slot[l] >= 0)
					baton_group_activate(s->grp[l], g->slot[l]);
		} else {
			g->stop_ms = baton_mono_ms();
			stop_gen(s, g);
		}
		snprintf(said + used, sizeof(said) - used, "%sgen %d (pid %d, %s)", used ? ", " : "", g->id, (int)g->pid,
			 state_name[g->state]);
	}
	s->resumed = true;
	say(s, "adopted %s: serving on this command's listeners with this supervisor's name and notify socket in "
	       "their environment, though the state file %s did not name them (it could not be written, or is "
	       "stale)", said, s->state_path);
	if (lost[0]) {
		say_warn(s, "could not take back: %s", lost);
		snprintf(s->members_err, sizeof(s->members_err), "members not recoverable: %s; baton does not steer "
			 "or watch them: reload to replace them", lost);
	}
	return 1;
}
