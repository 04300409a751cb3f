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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "internal.h"

#define STATE_MAGIC "baton-state 1"

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
	fprintf(f, "end\n");
}

void state_save(struct sup *s)
{
	char tmp[4200];
	FILE *f;
	int fd;

	sdn_status(s);	/* every transition is saved: the service manager hears of it too */
	if (!s->state_path[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->state_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		say_err(s, "cannot write the state file %s: %s (a supervisor started after a crash could not resume)",
		    tmp, strerror(errno));
		return;
	}
	write_state(s, f);
	/* the rename is the commit: a reader sees the old state or the new.
	 * No fsync: the state matters only while processes it names run, and
	 * they do not outlive a crash of the machine. */
	if (fflush(f) || ferror(f)) {
		say_err(s, "cannot write the state file %s: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return;
	}
	fclose(f);
	if (rename(tmp, s->state_path)) {
		say_err(s, "cannot rename %s into place: %s", tmp, strerror(errno));
		unlink(tmp);
	}
}

/* A clean stop leaves nothing: no state, no pins. */
void state_remove(struct sup *s)
{
	char path[4200];
	int l;

	if (s->state_path[0])
		unlink(s->state_path);
	if (!s->pin_root[0])
		return;
	for (l = 0; l < s->nl; l++)
		if (s->grp[l])
			baton_group_unpin(s->grp[l]);
	for (l = 0; l < s->nl; l++) {
		snprintf(path, sizeof(path), "%s/l%d", s->pin_root, l);
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

/* Where this supervisor's groups are pinned: /sys/fs/bpf/baton/run-NAME
 * (bpffs takes no dots in names). Mounts bpffs if nothing is there, as
 * baton steer does. "" when it cannot: a supervisor started after a crash
 * then cannot find the steering state, which is said. */
int state_pin_root(struct sup *s)
{
	const char *base = getenv("BATON_BPFFS");
	struct statfs sfs;
	char name[BATON_NAME_MAX + 1];
	size_t i;

	if (!base || !*base)
		base = "/sys/fs/bpf";
	if (statfs(base, &sfs) || sfs.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", base, "bpf", 0, "mode=0700")) {
			say_warn(s, "no bpffs at %s (%s): the steering state is not pinned, so a supervisor started after "
			       "this one dies cannot resume it", base, strerror(errno));
			s->pin_root[0] = '\0';
			return -errno;
		}
	}
	snprintf(name, sizeof(name), "%s", s->name);
	for (i = 0; name[i]; i++)
		if (name[i] == '.')
			name[i] = '_';
	snprintf(s->pin_root, sizeof(s->pin_root), "%s/baton/run-%s", base, name);
	return 0;
}

/* ---- reading ---------------------------------------------------------------- */

struct st_gen {
	int id;
	pid_t pid;
	unsigned long long ticks;
	char state[16];
	long long wall_ms;
	int stopped;
	int pidfd;
	bool alive;
};

struct st_member {
	int id, l, slot;
	unsigned long long ino;
};

struct st_count {
	int id, l;
	struct gen_count c;
};

struct state {
	char **base, **cmd, **env, **next_cmd, **next_env;
	struct st_count *cnt;
	size_t ncnt;
	char name[BATON_NAME_MAX + 1];
	char mode[16];
	char pins[4096];
	int next_id, done, failed, restarts, active, reload;
	int nl;
	struct baton_spec *spec;
	struct st_gen gen[MAX_GENS];
	int ngen;
	struct st_member *mem;
	size_t nmem, capmem;
	unsigned long long *shared;     /* per listener: inode of its shared socket, 0 none */
	bool ended;
};

static void state_free(struct state *st)
{
	free(st->spec);
	free(st->mem);
	free(st->cnt);
	strv_free(st->base);
	strv_free(st->cmd);
	strv_free(st->env);
	strv_free(st->next_cmd);
	strv_free(st->next_env);
	free(st->shared);
	for (int i = 0; i < st->ngen; i++)
		if (st->gen[i].pidfd >= 0)
			close(st->gen[i].pidfd);
}

/* Parses the state file at PATH. -ENOENT if there is none; -EBADMSG,
 * said with the line, if it is not one this supervisor wrote. */
/* A line this version added: the command items and the counters. 1 if
 * LINE was one, 0 if not, -errno if it was one that is bad. */
static int read_added(struct state *st, const char *line)
{
	static const struct { const char *key; size_t off; } items[] = {
		{ "cmd-base ", offsetof(struct state, base) }, { "cmd ", offsetof(struct state, cmd) },
		{ "env ", offsetof(struct state, env) }, { "next-cmd ", offsetof(struct state, next_cmd) },
		{ "next-env ", offsetof(struct state, next_env) },
	};
	struct st_count c;
	unsigned long long v[6];

	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		const char *why;
		char *text;

		if (strncmp(line, items[i].key, strlen(items[i].key)))
			continue;
		text = sup_unescape(line + strlen(items[i].key), &why);
		if (!text)
			return -EBADMSG;
		return strv_push((char ***)((char *)st + items[i].off), text) ? -ENOMEM : 1;
	}
	if (sscanf(line, "gencount %d %d %llu %llu %llu %llu %llu %llu", &c.id, &c.l, &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5]) == 8) {
		struct st_count *nv = realloc(st->cnt, (st->ncnt + 1) * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		for (int k = 0; k < CNT_N; k++) {
			c.c.base[k] = v[k];
			c.c.acc[k] = v[3 + k];
		}
		st->cnt = nv;
		st->cnt[st->ncnt++] = c;
		return 1;
	}
	return 0;
}

static int state_read(struct sup *s, const char *path, struct state *st)
{
	char *line = NULL;
	size_t linecap = 0;
	int lineno = 0, r = 0;
	FILE *f = fopen(path, "re");

	memset(st, 0, sizeof(*st));
	if (!f)
		return -errno;
	st->spec = calloc(SUP_MAX_LISTENERS, sizeof(*st->spec));
	st->shared = calloc(SUP_MAX_LISTENERS, sizeof(*st->shared));
	if (!st->spec || !st->shared) {
		fclose(f);
		return -ENOMEM;
	}
	while (getline(&line, &linecap, f) > 0) {
		char spec[900], err[256];
		int l, a;
		unsigned port;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (lineno == 1) {
			if (strcmp(line, STATE_MAGIC))
				goto bad;
			continue;
		}
		if (!strcmp(line, "end")) {
			st->ended = true;
			break;
		}
		if (sscanf(line, "name %63s", st->name) == 1 || sscanf(line, "pid %d", &a) == 1 ||
		    sscanf(line, "mode %15s", st->mode) == 1 || sscanf(line, "pins %4095s", st->pins) == 1 ||
		    sscanf(line, "next_id %d", &st->next_id) == 1 ||
		    sscanf(line, "counts %d %d %d", &st->done, &st->failed, &st->restarts) == 3 ||
		    sscanf(line, "active %d", &st->active) == 1 || sscanf(line, "reload %d", &st->reload) == 1)
			continue;
		if (sscanf(line, "listener %d %u %899s", &l, &port, spec) == 3) {
			if (l != st->nl || l >= SUP_MAX_LISTENERS || port > 65535 ||
			    baton_spec_parse(spec, &st->spec[l], err, sizeof(err)))
				goto bad;
			st->spec[l].port = (uint16_t)port;
			st->nl++;
			continue;
		}
		if (!strncmp(line, "shared ", 7)) {
			unsigned long long ino;

			if (sscanf(line, "shared %d %llu", &l, &ino) != 2 || l < 0 || l >= st->nl || !ino)
				goto bad;
			st->shared[l] = ino;
			continue;
		}
		if (!strncmp(line, "gen ", 4)) {
			struct st_gen *g = &st->gen[st->ngen];

			if (st->ngen == MAX_GENS ||
			    sscanf(line, "gen %d %d %llu %15s %lld %d", &g->id, &a, &g->ticks, g->state, &g->wall_ms,
				   &g->stopped) != 6 || a <= 0)
				goto bad;
			g->pid = a;
			g->pidfd = -1;
			st->ngen++;
			continue;
		}
		if (stage_load_line(s, line))
			continue;
		if ((a = read_added(st, line))) {
			if (a == -ENOMEM) {
				r = a;
				goto out;
			}
			if (a < 0)
				goto bad;
			continue;
		}
		if (!strncmp(line, "member ", 7)) {
			struct st_member m;

			if (sscanf(line, "member %d %d %d %llu", &m.id, &m.l, &m.slot, &m.ino) != 4 || m.l < 0 ||
			    m.l >= st->nl)
				goto bad;
			if (st->nmem == st->capmem) {
				size_t cap = st->capmem ? st->capmem * 2 : 64;
				struct st_member *v = realloc(st->mem, cap * sizeof(*v));

				if (!v) {
					r = -ENOMEM;
					goto out;
				}
				st->mem = v;
				st->capmem = cap;
			}
			st->mem[st->nmem++] = m;
			continue;
		}
		goto bad;
	}
	if (!st->ended) {
		say_warn(s, "the state file %s is incomplete (no end line): not resuming from it", path);
		r = -EBADMSG;
	}
	goto out;
bad:
	say_warn(s, "the state file %s is not one this supervisor can read (line %d: \"%.60s\"); not resuming from it",
	    path, lineno, line);
	r = -EBADMSG;
out:
	free(line);
	fclose(f);
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
	if (!resume && s->pin_root[0]) {
		/* a fresh start owns its name: stale pins of a dead run go,
		 * past our own listeners too while their directories exist */
		for (l = 0; l < SUP_MAX_LISTENERS; l++) {
			snprintf(path, sizeof(path), "%s/l%d", s->pin_root, l);
			if (baton_group_unpin_dir(path) == -ENOENT && l >= s->nl)
				break;
		}
	}
	for (l = 0; l < s->nl; l++) {
		if (s->pin_root[0]) {
			snprintf(path, sizeof(path), "%s/l%d", s->pin_root, l);
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
		g->state = was == GEN_FREE || was == GEN_EXITED ? GEN_DRAINING : was;
		if (sg->stopped || was == GEN_DRAINING) {
			g->state = GEN_DRAINING;
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
				s->gen[active].state = GEN_ACTIVE;
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
			cmd_drop(s);
			snprintf(note, sizeof(note), "; rolled back gen %d (pid %d), which was starting", n->id,
				 (int)n->pid);
		}
	}
	if (reload < 0)
		cmd_drop(s);	/* its generation is gone: what it would have run goes too */
	if (active >= 0) {
		struct gen *a = &s->gen[active];

		a->state = GEN_ACTIVE;
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
	if (lost[0])
		say_warn(s, "could not take back: %s", lost);
	state_free(&st);
	if (active < 0)
		say_warn(s, "no generation of the dead supervisor was serving: starting a fresh one");
	state_save(s);
	return 1;
}
