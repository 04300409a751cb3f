/* SPDX-License-Identifier: BSD-2-Clause */
/* Generations of one command behind steered listening sockets. Each
 * generation gets member sockets of its own (fds 3.. with LISTEN_FDS); a
 * reload starts the next one with weight 0, waits for readiness, switches
 * the steering to it in one step, tells the old one to stop, and moves what
 * is left in the old one's queue once it stops accepting. One event loop:
 * signalfd, the sd_notify socket, the control socket and its clients. */
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

#include <sys/resource.h>
#include <sys/signalfd.h>

#include "cmd.h"
#include "control.h"
#include "core.h"
#include "feature.h"
#include "foreign.h"
#include "gen.h"
#include "ready.h"
#include "rundir.h"
#include "state.h"
#include "upgrade.h"
#include "util.h"

/* Every line carries a level (common/log.h): under the journal an
 * sd-daemon "<N>" prefix, so failures, rollbacks and steps can be told
 * apart with journalctl -p. */
void say_at(struct sup *s, enum blog_level level, const char *fmt, ...)
{
	char who[BATON_NAME_MAX + 8];
	va_list ap;

	snprintf(who, sizeof(who), "baton[%s]", s->name);
	va_start(ap, fmt);
	vblog(level, who, fmt, ap);
	va_end(ap);
}

/* Classic BPF mode, said once and as what it is: a warning that names the
 * capabilities that give eBPF steering (CAP_BPF for the SK_REUSEPORT
 * program and its maps, CAP_PERFMON for the verifier to accept it), not
 * the library's error about the pins it could not make without it. */
static bool steer_note_taken(struct sup *s, const char *msg)
{
	static const char unavailable[] = "eBPF steering unavailable (";

	if (!strncmp(msg, unavailable, sizeof(unavailable) - 1)) {
		snprintf(s->steer_why, sizeof(s->steer_why), "%.*s", (int)strcspn(msg + sizeof(unavailable) - 1, ")"),
			 msg + sizeof(unavailable) - 1);
		return true;
	}
	return !strncmp(msg, "pinned groups need eBPF", 23);	/* baton then runs unpinned: nothing failed */
}

static void steer_note(struct sup *s)
{
	if (baton_group_mode(s->grp[0]) == BATON_MODE_EBPF) {
		if (s->pin_warn[0])
			say_warn(s, "%s", s->pin_warn);
		return;
	}
	if (!s->steer_why[0] && getenv("BATON_STEERING") && !strcmp(getenv("BATON_STEERING"), "cbpf")) {
		say(s, "classic BPF mode, as BATON_STEERING=cbpf asks");
		return;
	}
	say_warn(s, "classic BPF mode%s%s%s: reloads switch traffic, but the queue of a stopping or frozen generation "
		    "cannot be moved to the next one; for eBPF steering and queue migration give baton CAP_BPF and "
		    "CAP_PERFMON (docker run --cap-add BPF --cap-add PERFMON)", s->steer_why[0] ? " (eBPF: " : "",
		 s->steer_why, s->steer_why[0] ? ")" : "");
}

void lib_log(void *ctx, enum baton_log_level level, const char *msg)
{
	struct sup *s = ctx;
	enum blog_level bl = level <= BATON_LOG_ERROR ? BLOG_ERR : level == BATON_LOG_WARN ? BLOG_WARN
			     : level == BATON_LOG_INFO ? BLOG_INFO : BLOG_DEBUG;

	if (steer_note_taken(s, msg) && s->cfg->verbose < 2)
		return;
	if (level <= BATON_LOG_WARN || (s->cfg->verbose && level <= BATON_LOG_INFO) || s->cfg->verbose > 1)
		say_at(s, bl, "%s", msg);
}


bool busy(const struct sup *s)
{
	int i;

	if (s->reload >= 0 || s->restart_at || s->stopping || s->state_err[0] || s->ctl_err[0] ||
	    FEATURES_ANY(busy, s))
		return true;
	for (i = 0; i < MAX_GENS; i++)
		if ((s->gen[i].state == GEN_STARTING && s->gen[i].pid > 0) ||
		    (s->gen[i].state == GEN_DRAINING && s->gen[i].pid > 0))
			return true;
	for (i = 0; i < MAX_CLIENTS; i++)
		if (s->cl[i].role == CL_READING)
			return true;
	return false;
}


/* The loop's wait while nothing is busy: the soonest any feature asks to
 * look again (the health watch's adaptive pace), -1 for events only. */
static int features_wait_ms(const struct sup *s, long long now)
{
	int wait = -1;

	FEATURES_EACH(f) {
		int w = f->wait_ms ? f->wait_ms(s, now) : -1;

		if (w >= 0 && (wait < 0 || w < wait))
			wait = w;
	}
	return wait;
}

/* A loop that did not run this much longer than it asked to wait was
 * stalled (stopped, or starved): said in the log */
#define LOOP_STALL_MS 500

/* When the loop's last wait returned: wall clock and this thread's CPU
 * time, in ms. */
struct loop_clock {
	long long wall, cpu;
};

static long long thread_cpu_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void loop_clock_mark(struct loop_clock *c)
{
	c->wall = baton_mono_ms();
	c->cpu = thread_cpu_ms();
}

static void stall_say(struct sup *s, long long ms)
{
	say_warn(s, "the supervisor did not run for %lld ms (stopped, or starved of CPU): what the generations said "
		    "and did meanwhile is read before any timeout is judged", ms);
}

/* Before a wait, at START: the work since the last wait returned that was
 * wall time but not this thread's CPU (a SIGSTOP while it answered a
 * client shows only here), said when over LOOP_STALL_MS. */
static void loop_stall_work(struct sup *s, const struct loop_clock *c, long long start)
{
	long long off = (start - c->wall) - (thread_cpu_ms() - c->cpu);

	if (off > LOOP_STALL_MS)
		stall_say(s, off);
}

/* At the return of a wait that began at START and asked for WAIT_MS (-1:
 * no bound): the time past what it asked, said before the events are
 * read; and the return, marked. */
static void loop_stall_wait(struct sup *s, struct loop_clock *c, long long start, int wait_ms)
{
	loop_clock_mark(c);
	if (wait_ms >= 0 && c->wall - start > wait_ms + LOOP_STALL_MS)
		stall_say(s, c->wall - start - wait_ms);
}

static void tick(struct sup *s)
{
	long long now = baton_mono_ms();
	int i;

	s->batch_n = s->nl < TICK_LISTENERS ? s->nl : TICK_LISTENERS;
	s->batch_lo = (s->batch_lo + s->batch_n) % s->nl;

	for (i = 0; i < MAX_CLIENTS; i++)
		if (s->cl[i].role == CL_READING && now >= s->cl[i].deadline) {
			client_send(&s->cl[i], "error no request within %d ms", CLIENT_IDLE_MS);
			client_close(s, &s->cl[i]);
		}
	gen_tick(s, now);
	FEATURES_CALL(tick, s, now);	/* the health watch first: it may start a replacement */
	state_retry(s, now);
	control_retry(s, now);
	if (s->restart_at && now >= s->restart_at && !s->stopping) {
		int from = s->restart_from, gi;

		s->restart_at = 0;
		s->restart_from = -1;
		gi = start_gen(s, from, 1);
		if (gi < 0) {
			say_err(s, "restart failed: %s; trying again", strerror(-gi));
			s->restart_from = from;
			s->restart_at = now + BACKOFF_MAX_MS;
		} else {
			s->active = gi;
			state_save(s);
			say(s, "gen %d (pid %d) restarted in place of gen %d", s->gen[gi].id, (int)s->gen[gi].pid,
			    s->gen[from].id);
		}
	}
}

void sup_set_degraded(struct sup *s, const char *why)
{
	if (!why) {
		if (s->degraded[0])
			say(s, "no longer degraded");
		s->degraded[0] = '\0';
		return;
	}
	if (strcmp(s->degraded, why))
		say_warn(s, "degraded: %s", why);
	snprintf(s->degraded, sizeof(s->degraded), "%s", why);
}

const char *sup_degraded_text(const struct sup *s)
{
	static char buf[800];
	const char *part[] = { s->degraded, s->state_err, s->members_err, s->ctl_err };
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++)
		if (part[i][0] && used < sizeof(buf))
			used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", used ? "; " : "", part[i]);
	return buf;
}

/* Per-listener arrays, for NL listeners. */
static int alloc_arrays(struct sup *s)
{
	size_t n = (size_t)s->nl, i;

	s->spec = calloc(n, sizeof(*s->spec));
	s->grp = calloc(n, sizeof(*s->grp));
	s->watch = calloc(n, sizeof(*s->watch));
	s->fdnames = calloc(n, BATON_NAME_MAX + 2);
	s->shared = malloc(n * sizeof(*s->shared));
	s->shared_ino = calloc(n, sizeof(*s->shared_ino));
	s->first = malloc(n * sizeof(*s->first));
	if (!s->spec || !s->grp || !s->watch || !s->fdnames || !s->shared || !s->shared_ino || !s->first)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		s->shared[i] = s->first[i] = -1;
	for (i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];

		g->pidfd = -1;
		g->slot = malloc(n * sizeof(*g->slot));
		g->last_len = calloc(n, sizeof(*g->last_len));
		g->stall_since = calloc(n, sizeof(*g->stall_since));
		g->member_ino = calloc(n, sizeof(*g->member_ino));
		g->count = calloc(n, sizeof(*g->count));
		if (!g->slot || !g->last_len || !g->stall_since || !g->member_ino || !g->count)
			return -ENOMEM;
		for (size_t l = 0; l < n; l++)
			g->slot[l] = -1;
	}
	return FEATURES_FIRST(init, s);
}

static void free_arrays(struct sup *s)
{
	for (int i = 0; i < MAX_GENS; i++) {
		free(s->gen[i].slot);
		free(s->gen[i].last_len);
		free(s->gen[i].stall_since);
		free(s->gen[i].member_ino);
		free(s->gen[i].count);
	}
	free(s->spec);
	free(s->grp);
	free(s->watch);
	free(s->fdnames);
	free(s->preload_env);
	if (s->preload_memfd >= 0)
		close(s->preload_memfd);
	s->preload_memfd = -1;
	cmd_free(s);
	free(s->tkm);
	free(s->shared);
	free(s->shared_ino);
	free(s->first);
}

/* A supervisor of 1,024 listeners holds a member or more for each, past
 * the usual soft limit of 1,024 descriptors. Descriptors a listener costs: per generation its member plus the copy
 * handed to it at spawn (the steering program and maps are one set for
 * every listener, in the constant: 2,088 descriptors measured for 1,024
 * listeners and one generation). Counted for the first reload, when two
 * generations are up: a limit that fits only one lets the start succeed
 * and the reload fail. */
#define FDS_PER_GEN 2
#define FDS_PER_LISTENER (2 * FDS_PER_GEN)
#define FDS_CONST 256

static int raise_nofile(struct sup *s)
{
	rlim_t need = (rlim_t)s->nl * FDS_PER_LISTENER + FDS_CONST;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || need <= rl.rlim_cur)
		return 0;
	if (need > rl.rlim_max) {
		say_err(s, "%d listeners need about %llu open files by the first reload (%d each: %d for each of the "
			   "two generations up during a reload, and %d for the supervisor and its steering set), but "
			   "the hard limit is %llu: raise it (ulimit -Hn as root, or LimitNOFILE= in the unit), or give "
			   "fewer --listen", s->nl, (unsigned long long)need, FDS_PER_LISTENER, FDS_PER_GEN, FDS_CONST,
			(unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		say_warn(s, "cannot raise the open file limit to %llu: %s", (unsigned long long)rl.rlim_max,
			 strerror(errno));
	return 0;
}

/* The event loop's own descriptors: signals, epoll, control and notify. */
static int setup(struct sup *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->sigfd < 0 || s->epfd < 0)
		return -errno;
	if ((r = open_control(s)))
		return r;
	if ((r = FEATURES_FIRST(open, s)))
		return r;
	ev.data.u32 = EV_SIGNAL;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev);
	ev.data.u32 = EV_NOTIFY;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->notifyfd, &ev);
	ev.data.u32 = EV_CONTROL;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->ctlfd, &ev);
	return 0;
}

static void handle_signals(struct sup *s)
{
	struct signalfd_siginfo si;
	int budget;

	for (budget = 0; budget < 64 && read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si); budget++) {
		if (si.ssi_signo == SIGCHLD) {
			reap(s);
		} else if (si.ssi_signo == SIGHUP) {
			int r = start_reload(s, -1, RELOAD_SIGHUP);

			if (r)
				say_warn(s, "SIGHUP: no reload: %s", r == -EBUSY ? "a reload is already in progress"
							      : r == -ENOENT ? "gen 1 is still starting"
									     : "the supervisor is stopping");
		} else if (si.ssi_signo == SIGUSR2) {
			upgrade_start(s, -1);
		} else {
			begin_stop(s, strsignal((int)si.ssi_signo));
		}
	}
}

static const char *base_name(const char *path)
{
	const char *p = strrchr(path, '/');

	return p ? p + 1 : path;
}

static void cleanup(struct sup *s, bool clean_stop)
{
	int i;

	/* `baton stop` hears "stopped" last, once the lock is released and
	 * everything of this supervisor's is removed, so that `baton stop web
	 * && baton run --name web ...` finds the name free */
	for (i = 0; i < MAX_CLIENTS; i++)
		if (s->cl[i].role != CL_FREE && s->cl[i].role != CL_STOP)
			client_close(s, &s->cl[i]);
	if (s->upgrade_client >= 0)
		close(s->upgrade_client);
	if (clean_stop)
		state_remove(s);
	FEATURES_CALL(close, s, clean_stop);
	/* only what this supervisor bound: a start that lost the name's lock
	 * removes nothing of the winner's */
	if (s->ctlfd >= 0) {
		close(s->ctlfd);
		rundir_unlink(s, base_name(s->ctl_path));
	}
	if (s->notifyfd >= 0) {
		close(s->notifyfd);
		rundir_unlink(s, base_name(s->notify_path));
	}
	if (s->sigfd >= 0)
		close(s->sigfd);
	if (s->epfd >= 0)
		close(s->epfd);
	s->epfd = -1;
	sup_fini(s);
	if (s->lockfd >= 0) {
		char name[BATON_NAME_MAX + 8];

		/* removed while held: a start that opened it meanwhile sees
		 * it replaced and takes the new one (rundir_lock) */
		snprintf(name, sizeof(name), "%s.lock", s->name);
		if (clean_stop)
			unlinkat(s->rundir, name, 0);
		close(s->lockfd);
	}
	if (s->pinlockfd >= 0)
		close(s->pinlockfd);
	pinwatch_close(s);
	if (s->rundir >= 0)
		close(s->rundir);
	for (i = 0; i < MAX_CLIENTS; i++) {
		if (s->cl[i].role != CL_STOP)
			continue;
		client_send(&s->cl[i], "ok stopped");
		client_close(s, &s->cl[i]);
	}
}

/* Binds listener L once so a port of 0 becomes a real one that every
 * generation's member then shares. */
static int pin_port(struct sup *s, int l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = baton_listener_open(&s->spec[l]), r = 0;
	char text[256];

	if (fd < 0) {
		baton_spec_format(&s->spec[l], text, sizeof(text));
		say_err(s, "cannot listen on %s: %s", text, strerror(-fd));
		return fd;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		r = -errno;
	else
		s->spec[l].port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (s->spec[l].family == AF_INET)
		((struct sockaddr_in *)&s->spec[l].addr)->sin_port = htons(s->spec[l].port);
	else
		((struct sockaddr_in6 *)&s->spec[l].addr)->sin6_port = htons(s->spec[l].port);
	close(fd);
	return r;
}

/* NAME: --name, else the first listener's name, else PROTO-PORT (which
 * needs the port bound first when it is 0). */
static int pick_name(struct sup *s)
{
	const struct sup_config *cfg = s->cfg;
	int l;

	if (cfg->name[0]) {
		snprintf(s->name, sizeof(s->name), "%s", cfg->name);
		return 0;
	}
	if (s->spec[0].name[0]) {
		memcpy(s->name, s->spec[0].name, sizeof(s->name));	/* same size, NUL-terminated */
		return 0;
	}
	if (!s->spec[0].port)
		for (l = 0; l < s->nl; l++)
			if (pin_port(s, l))
				return -1;
	snprintf(s->name, sizeof(s->name), "%s-%u", s->spec[0].proto == BATON_PROTO_UDP ? "udp" : "tcp",
		 s->spec[0].port);
	return 0;
}

/* Generation 1 after --takeover: started like a reload from generation 0
 * (weight 0, switched once ready, generation 0 then drained). If it cannot
 * start, the server is given back untouched. */
static int start_takeover(struct sup *s)
{
	struct gen *z = &s->gen[s->active];

	state_save(s);
	if (start_reload(s, -1, RELOAD_TAKEOVER) || s->reload < 0) {
		say_warn(s, "takeover abandoned: pid %d keeps serving as it did", (int)z->pid);
		FEATURES_CALL(give_back, s);
		return -1;
	}
	say(s, "gen %d (pid %d) started to take over from pid %d; control socket %s", s->gen[s->reload].id,
	    (int)s->gen[s->reload].pid, (int)z->pid, s->ctl_path);
	return 0;
}

/* Generation 1 on fresh groups: no dead supervisor's state to resume. */
static int start_fresh(struct sup *s)
{
	bool adopted;
	int l, gi, r;

	if (geteuid() == 0 || getenv("BATON_BPFFS"))
		state_pin_root(s);
	r = s->cfg->ntakeover ? 0 : state_adopt_orphans(s);
	if (r < 0 || (!r && sup_make_groups(s)))
		return -1;
	steer_note(s);
	adopted = r > 0 && s->active >= 0;
	if (FEATURES_FIRST(gen0, s))
		return -1;
	if (foreign_check(s)) {
		FEATURES_CALL(give_back, s);
		return -1;
	}
	for (l = 0; l < s->nl; l++)
		if (!FEATURES_ANY(passed, s, l) && s->spec[l].port == 0 && pin_port(s, l))
			return -1;
	for (l = 0; l < s->nl; l++)
		if (!FEATURES_ANY(passed, s, l) && (s->active < 0 || s->gen[s->active].slot[l] < 0) && pin_port(s, l))
			return -1;
	if (FEATURES_FIRST(setup, s))
		return -1;
	if (adopted) {
		state_save(s);
		FEATURES_CALL(serving, s);
		return 0;
	}
	if (s->active >= 0)
		return start_takeover(s);
	gi = start_gen(s, -1, 1);
	if (gi < 0)
		return -1;
	s->active = gi;
	state_save(s);
	say(s, "gen 1 (pid %d) started; control socket %s", (int)s->gen[gi].pid, s->ctl_path);
	return 0;
}

/* After a resume that found no serving generation: a fresh one, which
 * takes every new connection at once (what waits queues in its members). */
static bool start_fresh_gen(struct sup *s)
{
	int gi = start_gen(s, -1, 1), l;

	if (gi < 0)
		return false;
	for (l = 0; l < s->nl; l++)
		baton_group_activate(s->grp[l], s->gen[gi].slot[l]);
	s->active = gi;
	say(s, "gen %d (pid %d) started", s->gen[gi].id, (int)s->gen[gi].pid);
	state_save(s);
	return true;
}

int sup_init(struct sup *s, const struct sup_config *cfg, const struct sup_ops *ops)
{
	int i;

	*s = (struct sup){ .cfg = cfg, .ops = ops, .active = -1, .reload = -1, .reload_client = -1,
			   .restart_from = -1, .epfd = -1, .sigfd = -1, .notifyfd = -1, .ctlfd = -1, .watched = -1,
			   .upgrade_client = -1, .rundir = -1, .lockfd = -1, .pinlockfd = -1, .argv = cfg->self_argv,
			   .nl = cfg->nlisten, .preload_memfd = -1, .pinwatch = -1 };
	for (i = 0; i < MAX_CLIENTS; i++)
		s->cl[i].fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", cfg->name[0] ? cfg->name : "baton");
	s->start_wall_ms = baton_wall_ms();
	if (alloc_arrays(s))
		return -ENOMEM;
	memcpy(s->spec, cfg->listen, (size_t)s->nl * sizeof(*s->spec));
	return 0;
}

void sup_fini(struct sup *s)
{
	int i;

	FEATURES_CALL(fini, s);
	for (i = 0; i < MAX_GENS; i++) {
		if (s->gen[i].slot)
			release_members(s, &s->gen[i]);
		if (s->gen[i].pidfd >= 0)
			close(s->gen[i].pidfd);
		s->gen[i].pidfd = -1;
	}
	for (i = 0; s->grp && i < s->nl; i++) {
		if (s->watch)
			baton_watch_free(s->watch[i]);
		baton_group_free(s->grp[i]);
	}
	baton_steerset_free(s->set);	/* the groups held it too: it goes with the last */
	s->set = NULL;
	FEATURES_CALL(free, s);
	free_arrays(s);
}

int sup_run(const struct sup_config *cfg)
{
	struct sup sv, *s = &sv;
	int i, l, r;
	bool upgraded, keep_state = false;
	struct loop_clock lclock;
	size_t off = 0;

	if (sup_init(s, cfg, &sup_default_ops)) {
		say_err(s, "out of memory for %d listeners", s->nl);
		sup_fini(s);
		return 1;
	}
	if (raise_nofile(s) || FEATURES_FIRST(intake, s) || pick_name(s)) {
		sup_fini(s);
		return 1;
	}
	for (l = 0; l < s->nl; l++) {
		const char *nm = s->spec[l].name[0] ? s->spec[l].name : "baton";

		off += (size_t)snprintf(s->fdnames + off, (size_t)s->nl * (BATON_NAME_MAX + 2) - off, "%s%s",
					l ? ":" : "", nm);
	}
	upgraded = upgrade_inherit(s);
	if (sup_state_path(s->name, s->state_path, sizeof(s->state_path)))
		s->state_path[0] = '\0';
	if (setup(s)) {
		cleanup(s, false);
		return 1;
	}
	r = state_resume(s);
	keep_state = r < 0;	/* another run's generations: their state is not ours to remove */
	if (r < 0 || (r == 0 && start_fresh(s))) {
		s->exit_code = 1;
		begin_stop(s, "it could not start");
	} else if (r == 1) {
		if (!upgraded)
			steer_note(s);	/* said by the supervisor before the exec */
		if (FEATURES_FIRST(setup, s)) {
			s->exit_code = 1;
			begin_stop(s, "it could not set up its bind mode");
		} else if (s->active < 0 && !start_fresh_gen(s)) {
			s->exit_code = 1;
			begin_stop(s, "no generation could be started");
		} else if (s->gen[s->active].state == GEN_ACTIVE) {
			FEATURES_CALL(serving, s);	/* the adopted generations serve */
		}
	}
	if (upgraded)
		upgrade_finish(s);
	loop_clock_mark(&lclock);
	for (;;) {
		struct epoll_event ev[16];
		long long start;
		int n, wait_ms;

		if (s->stopping && !live_gens(s))
			break;
		start = baton_mono_ms();
		loop_stall_work(s, &lclock, start);
		wait_ms = busy(s) ? TICK_MS : features_wait_ms(s, start);
		n = epoll_wait(s->epfd, ev, 16, wait_ms);
		if (n < 0 && errno == EINTR) {
			/* a stop (SIGSTOP, then SIGCONT) ends the wait with EINTR
			 * and no events: collect what waited before tick() judges
			 * any timeout */
			n = epoll_wait(s->epfd, ev, 16, 0);
		}
		loop_stall_wait(s, &lclock, start, wait_ms);
		for (i = 0; i < n; i++) {
			uint32_t tag = ev[i].data.u32;

			if (tag == EV_SIGNAL)
				handle_signals(s);
			else if (tag == EV_NOTIFY)
				read_notify(s);
			else if (tag == EV_CONTROL)
				accept_client(s);
			else if (tag >= EV_PIDFD && tag < EV_PIDFD + MAX_GENS)
				pid_ended(s, (int)(tag - EV_PIDFD));
			else if (tag < MAX_CLIENTS && s->cl[tag].role != CL_FREE)
				read_client(s, (int)tag);
			else
				FEATURES_ANY(event, s, tag);	/* handoff, bind hook, metrics listener */
		}
		tick(s);
	}
	say(s, "stopped");
	cleanup(s, !keep_state);
	return s->exit_code;
}
