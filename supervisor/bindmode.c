/* SPDX-License-Identifier: BSD-2-Clause */
/* --bind-mode: how a generation that binds its own socket gets into the
 * steered group. shim: libbaton-preload.so puts baton's member on its fd.
 * cgroup: the generation runs in a cgroup of its own under a bind hook that
 * makes its binds to a --listen address SO_REUSEPORT; the moment its socket
 * listens (a sockops event), baton adopts it into the generation's slot. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bindmode.h"
#include "cmd.h"
#include "core.h"
#include "flows.h"
#include "gen.h"
#include "metrics.h"
#include "sdnotify.h"
#include "genspawn.h"
#include "state.h"
#include "cgroup.h"

#define MAX_SAID 32      /* addresses already reported as named by no --listen */
#define MAX_LEFT 64      /* cgroups of ended generations waiting for their last process */

struct bm_gen {
	int id;                 /* the generation this record is for; 0: none */
	bool cg;                /* runs in cgroup mode */
	char dir[PATH_MAX];     /* its cgroup */
	uint64_t cgid;
	uint64_t own;           /* bit l: slot l holds a socket the generation made */
	uint64_t said_twice;    /* bit l: "binds twice" said */
	bool said_uid, pending; /* pending: readiness came before its sockets listened */
	bool said_foreign;      /* a process not its own listened in its cgroup: said */
};

struct bindmode {
	enum sup_bind_mode mode;         /* what new generations run in: SHIM, CGROUP or NONE */
	char root[PATH_MAX];             /* baton-NAME under baton's own cgroup */
	struct baton_bindhook *hook;
	struct bm_gen g[MAX_GENS];
	struct baton_bind_key said[MAX_SAID];
	int nsaid;
	char left[MAX_LEFT][PATH_MAX];
	int nleft;
	long long next_sweep;
};

const char *bindmode_mode_name(enum sup_bind_mode m)
{
	return m == SUP_BIND_CGROUP ? "cgroup" : m == SUP_BIND_SHIM ? "shim" : m == SUP_BIND_NONE ? "none" : "auto";
}

static void key_text(const struct baton_bind_key *k, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	inet_ntop(k->family, k->addr, host, sizeof(host));
	snprintf(buf, len, k->family == AF_INET6 ? "tcp://[%s]:%u" : "tcp://%s:%u", host, k->port);
}

static int spec_key(const struct baton_spec *sp, struct baton_bind_key *k)
{
	struct sockaddr_storage ss = sp->addr;

	if (sp->family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(sp->port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(sp->port);
	ss.ss_family = (sa_family_t)sp->family;
	return baton_bindhook_key((struct sockaddr *)&ss, k);
}

/* Sets up cgroup mode: the subtree, the hook, the --listen addresses. 0, or
 * -1 with WHY said to the caller (which may fall back to the shim). */
static int cgroup_setup(struct sup *s, struct bindmode *bm, char *why, size_t len)
{
	char own[PATH_MAX], err[256];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_BINDHOOK };
	int l, r;

	if (s->nl > 64) {
		snprintf(why, len, "cgroup mode steers at most 64 listeners (%d given)", s->nl);
		return -1;
	}
	for (l = 0; l < s->nl; l++) {
		if (s->spec[l].proto != BATON_PROTO_TCP) {
			snprintf(why, len, "cgroup mode adopts TCP listeners only (listener %d is UDP): "
				 "use --bind-mode shim", l);
			return -1;
		}
		/* a passed socket outside the table would share the server's
		 * group while nobody accepts from it */
		if (sdn_passed(s, l) || s->cfg->ntakeover) {
			snprintf(why, len, "listener %d was passed to baton (systemd socket activation or "
				 "--takeover), which cgroup mode does not use: the server binds its own; use "
				 "--bind-mode shim", l);
			return -1;
		}
	}
	r = baton_cgroup_self(own, sizeof(own));
	if (r == -ENOENT) {
		snprintf(why, len, "no cgroup2 hierarchy is mounted (none in /proc/self/mountinfo): mount one "
			 "(mount -t cgroup2 none /sys/fs/cgroup) or use --bind-mode shim");
		return -1;
	}
	if (r) {
		snprintf(why, len, "cannot find baton's own cgroup in /proc/self/cgroup: %s", strerror(-r));
		return -1;
	}
	if (getenv("INVOCATION_ID") && !baton_cgroup_delegated(own)) {
		snprintf(why, len, "baton runs under systemd in cgroup %.300s, which is not delegated to it: add "
			 "Delegate=yes to the unit, or use --bind-mode shim", own);
		return -1;
	}
	/* two supervisors of one name but different runtime directories (users,
	 * containers, tests) must not share a cgroup; the same one resumed
	 * after a crash finds its own again */
	if ((size_t)snprintf(bm->root, sizeof(bm->root), "%s/baton-%s-%08x", own, s->name,
			     baton_hash32(s->state_path)) >= sizeof(bm->root)) {
		snprintf(why, len, "cgroup path too long under %.300s", own);
		return -1;
	}
	if (mkdir(bm->root, 0755) && errno != EEXIST) {
		snprintf(why, len, "cannot create cgroup %.300s: %s (no delegation: run baton as root, or in a unit "
			 "with Delegate=yes; or use --bind-mode shim)", bm->root, strerror(errno));
		return -1;
	}
	bm->hook = baton_bindhook_new(bm->root, bindmode_event, s, err, sizeof(err));
	if (!bm->hook) {
		snprintf(why, len, "%s; or use --bind-mode shim", err);
		goto fail;
	}
	for (l = 0; l < s->nl; l++) {
		struct baton_bind_key k;
		struct sockaddr_storage ss = { 0 };

		spec_key(&s->spec[l], &k);
		ss.ss_family = (sa_family_t)k.family;
		if (k.family == AF_INET) {
			((struct sockaddr_in *)&ss)->sin_port = htons(k.port);
			memcpy(&((struct sockaddr_in *)&ss)->sin_addr, k.addr, 4);
		} else {
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(k.port);
			memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, k.addr, 16);
		}
		if ((r = baton_bindhook_target(bm->hook, (struct sockaddr *)&ss, l))) {
			snprintf(why, len, "cannot give the bind hook listener %d: %s", l, strerror(-r));
			goto fail;
		}
	}
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, baton_bindhook_fd(bm->hook), &ev)) {
		snprintf(why, len, "cannot wait for the bind hook's events: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	baton_bindhook_free(bm->hook);
	bm->hook = NULL;
	rmdir(bm->root);	/* only if empty: a dead supervisor's generations keep theirs */
	bm->root[0] = '\0';
	return -1;
}

/* Generations left by a supervisor that died: their cgroups are known by
 * where their processes are, so that they are removed when they end; those
 * that ended while no supervisor ran are removed now. */
static void resume_gens(struct sup *s, struct bindmode *bm)
{
	size_t rl = strlen(bm->root);
	char mnt[PATH_MAX];
	DIR *d = opendir(bm->root);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char dir[PATH_MAX];

		if (strncmp(de->d_name, "gen-", 4) ||
		    (size_t)snprintf(dir, sizeof(dir), "%s/%s", bm->root, de->d_name) >= sizeof(dir))
			continue;
		if (!baton_cgroup_populated(dir))
			rmdir(dir);
	}
	if (d)
		closedir(d);

	if (baton_cgroup_mount(mnt, sizeof(mnt)))
		return;
	for (int i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];
		char path[64], line[PATH_MAX], dir[PATH_MAX];
		FILE *f;

		if (g->state == GEN_FREE || g->pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)g->pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "0::", 3))
				continue;
			line[strcspn(line, "\n")] = '\0';
			if ((size_t)snprintf(dir, sizeof(dir), "%s%s", mnt, line + 3) >= sizeof(dir))
			continue;
			if (strncmp(dir, bm->root, rl) || dir[rl] != '/')
				continue;
			bm->g[i] = (struct bm_gen){ .id = g->id, .cg = true, .cgid = baton_cgroup_id(dir) };
			snprintf(bm->g[i].dir, sizeof(bm->g[i].dir), "%s", dir);
			for (int l = 0; l < s->nl; l++)
				if (g->slot[l] >= 0)
					bm->g[i].own |= 1ull << l;
		}
		fclose(f);
	}
}

int bindmode_setup(struct sup *s)
{
	const struct sup_config *c = s->cfg;
	struct bindmode *bm = s->bm;
	char why[600], exe[PATH_MAX];
	int r;

	if (!bm && !(bm = s->bm = calloc(1, sizeof(*bm)))) {
		say_err(s, "out of memory");
		return -1;
	}
	bm->mode = c->no_preload ? SUP_BIND_NONE : c->bind_mode;
	if (bm->mode == SUP_BIND_AUTO) {
		r = baton_exe_bypasses_libc(cmd_argv(s)[0], exe, sizeof(exe));
		bm->mode = r == 1 ? SUP_BIND_CGROUP : SUP_BIND_SHIM;
		if (r == 1 && cgroup_setup(s, bm, why, sizeof(why))) {
			say_warn(s, "bind mode auto: %s makes its own system calls (static, or Go), which the preload "
			       "shim cannot see, but cgroup mode is not available: %s. Running with the shim: a "
			       "server that binds a --listen address itself will fail with EADDRINUSE",
			    exe, why);
			bm->mode = SUP_BIND_SHIM;
		} else if (c->verbose) {
			say(s, "bind mode auto: %s (%s)", bindmode_mode_name(bm->mode),
			    r == 1 ? "the command bypasses libc: static, or Go" : "the command binds through libc");
		}
	} else if (bm->mode == SUP_BIND_CGROUP && cgroup_setup(s, bm, why, sizeof(why))) {
		say_err(s, "--bind-mode cgroup: %s", why);
		return -1;
	}
	if (bm->mode == SUP_BIND_CGROUP)
		resume_gens(s, bm);
	if (bm->mode == SUP_BIND_SHIM && preload_setup(s))
		return -1;
	return 0;
}

bool bindmode_cgroup(const struct sup *s)
{
	return s->bm && s->bm->mode == SUP_BIND_CGROUP;
}

const char *bindmode_name(const struct sup *s, int gi)
{
	const struct bm_gen *b = s->bm ? &s->bm->g[gi] : NULL;

	if (s->gen[gi].id == 0)
		return "takeover";	/* generation 0: a server baton did not start */
	if (!b || b->id != s->gen[gi].id)
		return "unknown";	/* adopted from a dead supervisor in another mode */
	return b->cg ? "cgroup" : bindmode_mode_name(s->bm->mode == SUP_BIND_CGROUP ? SUP_BIND_SHIM : s->bm->mode);
}

static void leave(struct bindmode *bm, const char *dir)
{
	if (!dir[0] || !baton_cgroup_remove(dir, false))
		return;
	if (bm->nleft < MAX_LEFT)
		snprintf(bm->left[bm->nleft++], PATH_MAX, "%s", dir);
}

int bindmode_gen_start(struct sup *s, int gi)
{
	struct bindmode *bm = s->bm;
	struct bm_gen *b;

	if (!bm)
		return 0;
	b = &bm->g[gi];
	if (b->cg && b->dir[0])
		leave(bm, b->dir);	/* a reused generation record: its old cgroup goes once empty */
	*b = (struct bm_gen){ .id = s->gen[gi].id, .cg = bm->mode == SUP_BIND_CGROUP };
	if (!b->cg)
		return 0;
	if ((size_t)snprintf(b->dir, sizeof(b->dir), "%s/gen-%d", bm->root, b->id) >= sizeof(b->dir))
		return -ENAMETOOLONG;
	if (mkdir(b->dir, 0755) && errno != EEXIST) {
		int r = -errno;

		say_err(s, "cannot create cgroup %s for gen %d: %s", b->dir, b->id, strerror(-r));
		b->dir[0] = '\0';
		return r;
	}
	b->cgid = baton_cgroup_id(b->dir);
	return 0;
}

int bindmode_procs_fd(struct sup *s, int id)
{
	char path[PATH_MAX + 16];

	for (int i = 0; s->bm && i < MAX_GENS; i++)
		if (s->bm->g[i].id == id && s->bm->g[i].cg && s->bm->g[i].dir[0]) {
			int fd;

			snprintf(path, sizeof(path), "%s/cgroup.procs", s->bm->g[i].dir);
			fd = open(path, O_WRONLY | O_CLOEXEC);
			return fd < 0 ? -errno : fd;
		}
	return -ENOENT;
}

void bindmode_gen_end(struct sup *s, int gi)
{
	struct bm_gen *b = s->bm ? &s->bm->g[gi] : NULL;

	if (!b || !b->cg || !b->dir[0])
		return;
	/* what it did before it ended (a bind that failed, say) is told
	 * first, while a waiting reload still hears it */
	bindmode_events(s);
	leave(s->bm, b->dir);
	b->dir[0] = '\0';
}

static void tell(struct sup *s, int gi, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void tell(struct sup *s, int gi, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (gi == s->reload)
		step(s, "%s", msg);	/* the waiting `baton reload` sees it too */
	else
		say(s, "%s", msg);
}

bool bindmode_hold_ready(struct sup *s, int gi)
{
	struct bm_gen *b = s->bm ? &s->bm->g[gi] : NULL;
	struct gen *g = &s->gen[gi];
	int l;

	if (!b || !b->cg || b->id != g->id)
		return false;
	for (l = 0; l < s->nl && g->slot[l] >= 0; l++)
		;
	if (l == s->nl)
		return false;
	if (baton_mono_ms() - g->start_us / 1000 >= s->cfg->ready_timeout_ms && g->state == GEN_STARTING) {
		/* the tick's own timeout is never reached while it asks again */
		char why[160];

		snprintf(why, sizeof(why), "gen %d did not listen on listener %d within %lld ms", g->id, l,
			 s->cfg->ready_timeout_ms);
		if (gi == s->reload) {
			rollback(s, why);
		} else if (gi == s->active) {
			say_err(s, "%s; giving up", why);
			s->exit_code = 1;
			begin_stop(s, "the command never listened");
		}
		return true;
	}
	if (!b->pending)
		tell(s, gi, "gen %d (pid %d) is ready but does not listen on listener %d yet: baton waits until it "
			    "does (cgroup mode adopts the socket it listens on)", g->id, (int)g->pid, l);
	b->pending = true;
	return true;
}

static int gen_of(const struct sup *s, const struct baton_bind_event *e)
{
	char path[64], line[PATH_MAX], mnt[PATH_MAX];
	FILE *f;
	int found = -1;

	for (int i = 0; i < MAX_GENS; i++)
		if (s->bm->g[i].cg && s->bm->g[i].dir[0] && s->bm->g[i].cgid == e->cgroup &&
		    s->gen[i].state != GEN_FREE && s->gen[i].id == s->bm->g[i].id)
			return i;
	/* a cgroup the server made below its own */
	snprintf(path, sizeof(path), "/proc/%u/cgroup", e->pid);
	if (baton_cgroup_mount(mnt, sizeof(mnt)) || !(f = fopen(path, "re")))
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		char dir[PATH_MAX];

		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		if ((size_t)snprintf(dir, sizeof(dir), "%s%s", mnt, line + 3) >= sizeof(dir))
			continue;
		for (int i = 0; i < MAX_GENS && found < 0; i++) {
			size_t n = strlen(s->bm->g[i].dir);

			if (s->bm->g[i].cg && n && !strncmp(dir, s->bm->g[i].dir, n) && dir[n] == '/' &&
			    s->gen[i].state != GEN_FREE)
				found = i;
		}
	}
	fclose(f);
	return found;
}

#define MAX_OWN 1024      /* processes of one generation looked at for its sockets */
#define PROC_PID_INIT_INO 0xEFFFFFFCu  /* the initial pid namespace's inode, fixed by the kernel */

/* Whether baton sees pids as the bind hook reports them: the hook's pid is
 * the initial namespace's; inside a pid namespace (a container) it names
 * another process here, or none. */
static bool init_pidns(void)
{
	struct stat st;

	return !stat("/proc/self/ns/pid", &st) && st.st_ino == PROC_PID_INIT_INO;
}

/* Calls FN for the generation's own processes only: its pid (while its
 * pidfd says it is still that process) and its descendants, each checked
 * to be a child of the one it was listed under once the check is done. A
 * process that someone else placed in the generation's cgroup is not one
 * of them: its sockets are never adopted in place of the server's. */
static int each_own(struct sup *s, struct gen *g, int (*fn)(void *ctx, pid_t pid), void *ctx)
{
	pid_t fam[MAX_OWN], parent[MAX_OWN];
	int n = 0, r;

	if (g->pid <= 0 || gen_signal(s, g, 0))
		return 0;
	fam[n] = g->pid;
	parent[n++] = 0;
	for (int i = 0; i < n; i++) {
		struct baton_proc_stat st;
		int got;

		/* a listed child that exited and whose pid was reused has
		 * another parent */
		if (parent[i] && (baton_proc_stat(fam[i], -1, &st) || st.ppid != parent[i]))
			continue;
		if ((r = fn(ctx, fam[i])))
			return r;
		got = baton_proc_children(fam[i], fam + n, MAX_OWN - n);
		for (int k = 0; k < got; k++)
			parent[n + k] = fam[i];
		n += got > 0 ? got : 0;
	}
	return 0;
}

/* Whether PID (as this process sees pids) is G's process or a descendant. */
static bool own_pid(struct sup *s, struct gen *g, pid_t pid)
{
	struct baton_proc_stat st;

	for (int hops = 0; hops < 32 && pid > 1; hops++) {
		if (pid == g->pid)
			return !gen_signal(s, g, 0) && (!g->start_ticks || (!baton_proc_stat(pid, -1, &st) &&
									   st.start == g->start_ticks));
		if (baton_proc_stat(pid, -1, &st))
			return false;
		pid = st.ppid;
	}
	return false;
}

struct find {
	uint64_t cookie;
	unsigned long long ino;
	int pidfd;
	int fd;                 /* out: baton's copy of the socket */
};

static int match_cookie(void *ctx, int fd, unsigned long long ino)
{
	struct find *f = ctx;
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int copy;

	(void)ino;
	copy = baton_pidfd_getfd(f->pidfd, fd);
	if (copy < 0)
		return 0;
	if (!getsockopt(copy, SOL_SOCKET, SO_COOKIE, &cookie, &len) && cookie == f->cookie) {
		f->fd = copy;
		return 1;
	}
	close(copy);
	return 0;
}

static int find_in(void *ctx, pid_t pid)
{
	struct find *f = ctx;
	int r;

	f->pidfd = baton_pidfd_open(pid);
	if (f->pidfd < 0)
		return 0;
	r = baton_proc_sockets(pid, 65536, match_cookie, f);
	close(f->pidfd);
	return r == 1;
}

static int pid_holds(void *ctx, pid_t pid)
{
	return baton_proc_socket_fd(pid, 65536, ((struct find *)ctx)->ino) >= 0;
}

/* Whether a process of the generation still holds the socket of inode INO. */
static bool gen_holds(struct sup *s, struct gen *g, ino_t ino)
{
	struct find f = { .ino = ino };

	return ino && each_own(s, g, pid_holds, &f) == 1;
}

static void on_bind(struct sup *s, int gi, const struct baton_bind_event *e)
{
	struct bm_gen *b = &s->bm->g[gi];
	struct gen *g = &s->gen[gi];
	char addr[96], spec[256];
	int l = e->listener;

	key_text(&e->addr, addr, sizeof(addr));
	if (l < 0) {
		int same = -1, i;

		for (i = 0; i < s->bm->nsaid; i++)
			if (!memcmp(&s->bm->said[i], &e->addr, sizeof(e->addr)))
				return;
		if (s->bm->nsaid < MAX_SAID)
			s->bm->said[s->bm->nsaid++] = e->addr;
		for (i = 0; i < s->nl && same < 0; i++)
			if (s->spec[i].port == e->addr.port)
				same = i;
		if (same >= 0) {
			static const uint8_t any[16];

			baton_spec_format(&s->spec[same], spec, sizeof(spec));
			tell(s, gi, "gen %d (pid %u) binds %s, which no --listen names (--listen %s has that port): "
				    "left alone, and it will likely fail with EADDRINUSE; bind exactly the --listen "
				    "address (not a wildcard), or name this one with --listen%s",
			     g->id, e->pid, addr, spec,
			     e->addr.family == AF_INET6 && !memcmp(e->addr.addr, any, 16)
				     ? " (Go's net.Listen(\":PORT\") binds [::]: give --listen tcp://[::]:PORT)" : "");
		} else {
			tell(s, gi, "gen %d (pid %u) binds %s, which no --listen names: left alone (not steered; "
				    "the next generation cannot bind it while this one holds it unless the server "
				    "sets SO_REUSEPORT; add --listen to steer it)", g->id, e->pid, addr);
		}
		return;
	}
	if (l >= s->nl)
		return;
	/* the group's sockets and this one must have one uid */
	for (int i = 0; i < MAX_GENS && !b->said_uid; i++) {
		struct stat st;
		int slot = s->gen[i].slot ? s->gen[i].slot[l] : -1;

		if (i == gi || s->gen[i].state == GEN_FREE || slot < 0 || fstat(baton_group_fd(s->grp[l], slot), &st))
			continue;
		if (st.st_uid != e->uid) {
			b->said_uid = true;
			tell(s, gi, "gen %d (pid %u) binds %s as uid %u, but the sockets of its group belong to uid "
				    "%u (gen %d): a reuseport group needs one socket uid, so the bind fails with "
				    "EADDRINUSE. Run every generation as the same user (or open the socket before "
				    "dropping privileges)", g->id, e->pid, addr, e->uid, (unsigned)st.st_uid,
			     s->gen[i].id);
		}
	}
	if ((b->own & (1ull << l)) && !(b->said_twice & (1ull << l)) && gen_holds(s, g, g->member_ino[l])) {
		b->said_twice |= 1ull << l;
		tell(s, gi, "gen %d (pid %u) binds %s a second time while its first socket there listens: baton "
			    "steers one socket per generation and address, so the second gets no connections. "
			    "Make the server listen once on it (nginx: no 'reuseport' on that listen)",
		     g->id, e->pid, addr);
	}
}

static void on_listen(struct sup *s, int gi, const struct baton_bind_event *e)
{
	struct bm_gen *b = &s->bm->g[gi];
	struct gen *g = &s->gen[gi];
	struct find f = { .cookie = e->cookie, .fd = -1 };
	int l = e->listener, slot, old, i;
	char addr[96];
	struct stat st;

	if (l < 0 || l >= s->nl)
		return;
	key_text(&e->addr, addr, sizeof(addr));
	/* only a socket of the generation's own processes: the event's pid
	 * first where it means the same here (the initial pid namespace),
	 * else (it passed the socket on and closed it already, or baton runs
	 * in a pid namespace) the generation and its descendants */
	if (!(init_pidns() && own_pid(s, g, (pid_t)e->pid) && find_in(&f, (pid_t)e->pid)))
		each_own(s, g, find_in, &f);
	if (f.fd < 0) {
		if (init_pidns() && !own_pid(s, g, (pid_t)e->pid)) {
			if (!b->said_foreign) {
				b->said_foreign = true;
				say_warn(s, "gen %d: pid %u in its cgroup listens on %s but is not gen %d's process nor "
					 "its descendant: its socket is not adopted", g->id, e->pid, addr, g->id);
			}
			return;
		}
		if (s->cfg->verbose)
			say(s, "gen %d: a socket listened on %s and closed before baton could adopt it", g->id, addr);
		return;
	}
	fstat(f.fd, &st);
	old = g->slot[l];
	if ((b->own & (1ull << l)) && gen_holds(s, g, g->member_ino[l])) {
		if (!(b->said_twice & (1ull << l))) {
			b->said_twice |= 1ull << l;
			tell(s, gi, "gen %d (pid %u) listens on %s a second time while its first socket there listens: "
				    "baton steers one socket per generation and address, so the second is left out "
				    "of the steering table. Make the server listen once on it (nginx: no "
				    "'reuseport' on that listen)", g->id, e->pid, addr);
		}
		close(f.fd);
		return;
	}
	slot = baton_group_add(s->grp[l], f.fd, 0);
	close(f.fd);	/* the group's copy is the only one baton keeps */
	if (slot < 0) {
		tell(s, gi, "gen %d (pid %u) listens on %s, but baton cannot adopt it into the group: %s", g->id,
		     e->pid, addr, strerror(-slot));
		return;
	}
	if (gi == s->active)
		baton_group_activate(s->grp[l], slot);	/* gen 1, or a restart after a crash */
	if (old >= 0) {
		/* a crashed generation's socket, or one the server closed and
		 * replaced: what waits there moves to the new one */
		baton_group_fence(s->grp[l], old);
		count_leave(s, g, l);
		baton_group_remove(s->grp[l], old);
		if (gi == s->active)
			s->watched = -1;	/* the health watch learns the new slot's owner */
	}
	g->slot[l] = slot;
	g->member_ino[l] = st.st_ino;
	flows_gen_start(s, g);	/* flows=quic: the adopted member gets the generation's marker */
	count_join(s, g, l);
	b->own |= 1ull << l;
	if (gi == s->reload || s->cfg->verbose)
		tell(s, gi, "gen %d (pid %u) listens on %s: adopted into slot %d", g->id, e->pid, addr, slot);
	state_save(s);
	for (i = 0; i < s->nl && g->slot[i] >= 0; i++)
		;
	if (i < s->nl || g->state != GEN_STARTING)
		return;
	/* adoption is the listening the shim would report */
	if (b->pending || s->cfg->ready == SUP_READY_LISTEN || s->cfg->ready == SUP_READY_AUTO) {
		b->pending = false;
		gen_ready(s, gi, false);
	}
}

void bindmode_event(void *ctx, const struct baton_bind_event *e)
{
	struct sup *s = ctx;
	int gi = gen_of(s, e);

	if (gi < 0)
		return;	/* a generation that already ended */
	if (e->kind == BATON_BIND_EVENT)
		on_bind(s, gi, e);
	else if (e->kind == BATON_LISTEN_EVENT)
		on_listen(s, gi, e);
}

void bindmode_events(struct sup *s)
{
	if (s->bm && s->bm->hook)
		baton_bindhook_poll(s->bm->hook);
}

struct lost {
	struct sup *s;
	int gi, pidfd;
	pid_t pid;
};

/* A listening socket of the generation on a --listen address that is not
 * in its slot yet: its listen event was lost (a full ring buffer). */
static int lost_socket(void *ctx, int fd, unsigned long long ino)
{
	struct lost *c = ctx;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct baton_bind_event e = { .kind = BATON_LISTEN_EVENT, .pid = (uint32_t)c->pid, .listener = -1 };
	int copy, v = 0, r = 0;
	socklen_t vl = sizeof(v);

	for (int l = 0; l < c->s->nl; l++)
		if (c->s->gen[c->gi].member_ino[l] == (ino_t)ino)
			return 0;
	copy = baton_pidfd_getfd(c->pidfd, fd);
	if (copy < 0)
		return 0;
	if (!getsockopt(copy, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) && v &&
	    !getsockname(copy, (struct sockaddr *)&ss, &len) && !baton_bindhook_key((struct sockaddr *)&ss, &e.addr)) {
		for (int l = 0; l < c->s->nl && e.listener < 0; l++) {
			struct baton_bind_key k;

			spec_key(&c->s->spec[l], &k);
			if (!memcmp(&k, &e.addr, sizeof(k)))
				e.listener = l;
		}
		len = sizeof(e.cookie);
		if (e.listener >= 0 && !(c->s->bm->g[c->gi].own & (1ull << e.listener)) &&
		    !getsockopt(copy, SOL_SOCKET, SO_COOKIE, &e.cookie, &len)) {
			if (c->s->cfg->verbose)
				say(c->s, "gen %d: found a listening socket without its event; adopting it",
				    c->s->gen[c->gi].id);
			on_listen(c->s, c->gi, &e);
			r = 1;
		}
	}
	close(copy);
	return r;
}

static int lost_in(void *ctx, pid_t pid)
{
	struct lost *c = ctx;
	int r;

	c->pid = pid;
	c->pidfd = baton_pidfd_open(pid);
	if (c->pidfd < 0)
		return 0;
	r = baton_proc_sockets(pid, 65536, lost_socket, c);
	close(c->pidfd);
	return r == 1;
}

/* The poll behind the event: a generation still starting a second after
 * it started, with a listener not adopted, has its sockets looked at. */
static void find_lost(struct sup *s, long long now)
{
	uint64_t all = s->nl >= 64 ? ~0ull : (1ull << s->nl) - 1;

	for (int i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];
		struct lost c = { .s = s, .gi = i };

		if (!s->bm->g[i].cg || s->bm->g[i].id != g->id || g->state != GEN_STARTING || g->pid <= 0 ||
		    now - g->start_us / 1000 < 1000 || s->bm->g[i].own == all)
			continue;
		each_own(s, g, lost_in, &c);
	}
}

/* Cgroups of ended generations go once their last process left. */
void bindmode_tick(struct sup *s, long long now)
{
	struct bindmode *bm = s->bm;
	int i, n = 0;

	if (!bm || now < bm->next_sweep)
		return;
	bm->next_sweep = now + 250;
	if (bm->mode == SUP_BIND_CGROUP)
		find_lost(s, now);
	for (i = 0; i < bm->nleft; i++)
		if (baton_cgroup_remove(bm->left[i], false))
			memmove(bm->left[n++], bm->left[i], PATH_MAX);
	bm->nleft = n;
}

void bindmode_fini(struct sup *s, bool clean_stop)
{
	struct bindmode *bm = s->bm;

	if (!bm)
		return;
	baton_bindhook_free(bm->hook);	/* detaches the links */
	bm->hook = NULL;
	if (clean_stop) {
		/* every generation ended: a process left behind in its cgroup
		 * (a daemonized child) would keep it, so it is ended too */
		for (int i = 0; i < MAX_GENS; i++)
			if (bm->g[i].cg && bm->g[i].dir[0])
				leave(bm, bm->g[i].dir);
		for (int i = 0; i < bm->nleft; i++) {
			int r = baton_cgroup_remove(bm->left[i], true);

			if (r)
				say_warn(s, "cannot remove cgroup %s: %s", bm->left[i], strerror(-r));
		}
		if (bm->root[0] && rmdir(bm->root) && errno != ENOENT)
			say_warn(s, "cannot remove cgroup %s: %s", bm->root, strerror(errno));
	}
	free(bm);
	s->bm = NULL;
}
