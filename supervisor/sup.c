/* Generations of one command behind steered listening sockets. Each
 * generation gets member sockets of its own (fds 3.. with LISTEN_FDS); a
 * reload starts the next one with weight 0, waits for readiness, switches
 * the steering to it in one step, tells the old one to stop, and moves what
 * is left in the old one's queue once it stops accepting. One event loop:
 * signalfd, the sd_notify socket, the control socket and its clients. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sup.h"

#define MAX_GENS 16
#define MAX_CLIENTS 16
#define STALL_MS 20           /* a draining queue that does not shrink this long is moved */
#define CLIENT_IDLE_MS 2000   /* a control client must send its request by then */
#define TICK_MS 10
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 10000       /* a generation up this long resets the back-off */

enum gen_state { GEN_FREE, GEN_STARTING, GEN_READY, GEN_ACTIVE, GEN_DRAINING, GEN_EXITED };

static const char *const state_name[] = { "free", "starting", "ready", "active", "draining", "exited" };

struct gen {
	enum gen_state state;
	int id;
	pid_t pid;                      /* 0 once reaped */
	long long start_wall_ms, stop_ms;
	long long start_us, ready_us;    /* monotonic; 0.1 ms for reload timings; ready_us 0: not yet */
	int slot[SUP_MAX_LISTENERS];    /* -1: none */
	bool heard;                     /* sent any sd_notify message */
	bool killed;
	int status;                     /* wait status once reaped */
	char why[160];                  /* why it ended, for status */
	uint32_t last_len[SUP_MAX_LISTENERS];
	long long stall_since[SUP_MAX_LISTENERS];
	bool idle_wait;                 /* --stop-when-idle: fenced, not yet signalled */
	ino_t member_ino[SUP_MAX_LISTENERS];
	char health[96];                /* why the health watch replaced it, for status */
};

enum client_role { CL_FREE, CL_READING, CL_RELOAD, CL_STOP };

struct client {
	enum client_role role;
	int fd;
	size_t len;
	long long deadline;
	char buf[SUP_REQUEST_MAX + 1];
};

struct sup {
	const struct sup_config *cfg;
	char name[BATON_NAME_MAX + 1];
	struct baton_spec spec[SUP_MAX_LISTENERS];  /* with the port actually bound */
	char fdnames[SUP_MAX_LISTENERS * (BATON_NAME_MAX + 1) + 1];
	struct baton_group *grp[SUP_MAX_LISTENERS];
	struct gen gen[MAX_GENS];
	int next_id;
	int active;                 /* index into gen, -1 none */
	int reload;                 /* index of the generation being started by a reload, -1 none */
	int reload_client;          /* client waiting for it, -1 for SIGHUP */
	long long reload_start_us;       /* monotonic; 0: no reload */
	int restart_from;           /* crashed active generation awaiting restart, -1 none */
	long long restart_at;
	long long backoff_ms;
	int reloads_done, reloads_failed, restarts;
	char last_reload[320];
	bool stopping;
	int exit_code;
	int epfd, sigfd, notifyfd, ctlfd;
	char ctl_path[108], notify_path[108];
	struct client cl[MAX_CLIENTS];
	long long start_wall_ms;
	char preload_lib[4096];     /* "" without the shim */
	char preload_env[1024];     /* BATON_PRELOAD for it */
	struct baton_watch *watch[SUP_MAX_LISTENERS];
	int watched;                /* generation whose pid the watches know, -1 none */
};

enum { EV_SIGNAL = 1000, EV_NOTIFY, EV_CONTROL };


static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long mono_ms(void)
{
	return mono_us() / 1000;
}

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void say(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct sup *s, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "baton[%s]: ", s->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void lib_log(void *ctx, enum baton_log_level level, const char *msg)
{
	struct sup *s = ctx;

	if (level <= BATON_LOG_WARN || (s->cfg->verbose && level <= BATON_LOG_INFO) || s->cfg->verbose > 1)
		say(s, "%s", msg);
}

/* ---- small parsers shared with the CLI ---------------------------------- */

void sup_config_init(struct sup_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ready = SUP_READY_AUTO;
	cfg->ready_delay_ms = 2000;
	cfg->ready_timeout_ms = 30000;
	cfg->grace_ms = 30000;
	cfg->stop_signal = SIGTERM;
}

int sup_parse_duration(const char *text, long long *ms)
{
	char *end;
	double v;

	if (!text || !*text || *text == '-' || *text == '+')
		return -EINVAL;
	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || v < 0)
		return -EINVAL;
	if (!*end || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		v *= 60000;
	else if (strcmp(end, "ms"))
		return -EINVAL;
	if (v > 86400000.0 * 7)
		return -ERANGE;
	*ms = (long long)(v + 0.5);
	return 0;
}

int sup_parse_signal(const char *text, int *sig)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "HUP", SIGHUP },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "WINCH", SIGWINCH }, { "KILL", SIGKILL },
	};
	const char *t = text;
	size_t i;
	char *end;
	long v;

	if (!text || !*text)
		return -EINVAL;
	if (!strncmp(t, "SIG", 3))
		t += 3;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(t, names[i].name)) {
			*sig = names[i].sig;
			return 0;
		}
	v = strtol(text, &end, 10);
	if (*end || v <= 0 || v >= NSIG)
		return -EINVAL;
	*sig = (int)v;
	return 0;
}

int sup_runtime_dir(char *buf, size_t len)
{
	const char *env = getenv("BATON_RUNTIME_DIR"), *xdg;
	int n;

	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/baton");
	else if ((xdg = getenv("XDG_RUNTIME_DIR")) && *xdg)
		n = snprintf(buf, len, "%s/baton", xdg);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int sup_socket_path(const char *name, const char *suffix, char *buf, size_t len)
{
	char dir[4096];
	int r = sup_runtime_dir(dir, sizeof(dir)), n;

	if (r)
		return r;
	n = snprintf(buf, len, "%s/%s.%s", dir, name, suffix);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* ---- control clients ---------------------------------------------------- */

static void client_send(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_send(struct client *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (c->fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* a client that stopped reading loses its copy; the supervisor goes on */
	if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return;
}

static void client_close(struct sup *s, struct client *c)
{
	if (c->fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->role = CL_FREE;
}

/* A step of a reload, to the supervisor's log and to the waiting client. */
static void step(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(struct sup *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	double at = (double)(mono_us() - s->reload_start_us) / 1000.0;

	if (s->reload_start_us)
		say(s, "%s (+%.1f ms)", msg, at);
	else
		say(s, "%s", msg);
	if (s->reload_client >= 0)
		client_send(&s->cl[s->reload_client], "step +%.1f ms %s", at, msg);
}

static void reload_finish(struct sup *s, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reload_finish(struct sup *s, bool ok, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	long long took = (mono_us() - s->reload_start_us) / 1000;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ok)
		s->reloads_done++;
	else
		s->reloads_failed++;
	snprintf(s->last_reload, sizeof(s->last_reload), "%s after %lld ms: %s", ok ? "ok" : "failed", took, msg);
	say(s, "reload %s after %lld ms: %s", ok ? "done" : "failed", took, msg);
	if (s->reload_client >= 0) {
		client_send(&s->cl[s->reload_client], "%s %s", ok ? "ok" : "error", msg);
		client_close(s, &s->cl[s->reload_client]);
	}
	s->reload = -1;
	s->reload_client = -1;
	s->reload_start_us = 0;
}

/* ---- libbaton-preload and idle stops ------------------------------------ */

static void release_members(struct sup *s, struct gen *g);

/* Finds the shim (BATON_PRELOAD_LIB, else next to this executable) and
 * writes the address-to-fd map it reads. Without it, servers that bind
 * their own socket fail with EADDRINUSE, so that is said once here. */
static void preload_setup(struct sup *s)
{
	const char *env = getenv("BATON_PRELOAD_LIB");
	char exe[PATH_MAX], *slash;
	size_t off;
	ssize_t n;
	int l;

	if (env && *env) {
		snprintf(s->preload_lib, sizeof(s->preload_lib), "%s", env);
	} else if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		if (strlen(exe) + sizeof("/libbaton-preload.so") <= sizeof(s->preload_lib))
			memcpy(stpcpy(s->preload_lib, exe), "/libbaton-preload.so", sizeof("/libbaton-preload.so"));
	}
	if (!s->preload_lib[0] || access(s->preload_lib, R_OK)) {
		say(s, "no preload shim at %s (set BATON_PRELOAD_LIB); a command that binds its own socket "
		       "will not get baton's", s->preload_lib[0] ? s->preload_lib : "(unknown)");
		s->preload_lib[0] = '\0';
		return;
	}
	off = (size_t)snprintf(s->preload_env, sizeof(s->preload_env), "v1");
	for (l = 0; l < s->cfg->nlisten && off < sizeof(s->preload_env); l++) {
		const struct baton_spec *sp = &s->spec[l];
		char host[INET6_ADDRSTRLEN] = "";
		const void *a = sp->family == AF_INET ? (const void *)&((const struct sockaddr_in *)&sp->addr)->sin_addr
						     : (const void *)&((const struct sockaddr_in6 *)&sp->addr)->sin6_addr;

		inet_ntop(sp->family, a, host, sizeof(host));
		off += (size_t)snprintf(s->preload_env + off, sizeof(s->preload_env) - off,
					sp->family == AF_INET6 ? ";%s:[%s]:%u=%d" : ";%s:%s:%u=%d",
					sp->proto == BATON_PROTO_UDP ? "udp" : "tcp", host, sp->port, 3 + l);
	}
	if (s->cfg->verbose)
		say(s, "preloading %s with BATON_PRELOAD=%s", s->preload_lib, s->preload_env);
}

/* In the child, before exec: the shim goes first in LD_PRELOAD. */
static void preload_apply(struct sup *s)
{
	const char *old = getenv("LD_PRELOAD");
	char val[8192];

	if (!s->preload_lib[0]) {
		unsetenv("BATON_PRELOAD");	/* an outer baton's map names other fds */
		return;
	}
	snprintf(val, sizeof(val), "%s%s%s", s->preload_lib, old && *old ? " " : "", old ? old : "");
	setenv("LD_PRELOAD", val, 1);
	setenv("BATON_PRELOAD", s->preload_env, 1);
}

/* The parent of PID, or -1. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int fd, ppid;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command name may hold spaces and parentheses */
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* Whose message is it: the generation's main process, or, for the shim's
 * listening report, one of its descendants (a wrapper that forks, or a
 * server whose workers bind), looking at most 8 parents up. */
static bool notify_from(const struct gen *g, const struct baton_notify_msg *m)
{
	pid_t p = m->pid;
	int hops;

	if (p == g->pid)
		return true;
	if (!m->listening || p <= 0)
		return false;
	for (hops = 0; hops < 8 && p > 1; hops++) {
		p = parent_of(p);
		if (p == g->pid)
			return true;
	}
	return false;
}

/* The shim's listen() report counts as readiness with --ready listen, and
 * by default (auto): connections reach a member that listens even before
 * the server accepts, so they wait in its queue, never refused. */
static bool listen_is_ready(const struct sup *s, const struct baton_notify_msg *m)
{
	return m->listening && (s->cfg->ready == SUP_READY_LISTEN || s->cfg->ready == SUP_READY_AUTO);
}

/* --stop-when-idle: for servers whose stop signal cuts requests in flight
 * (python's http.server dies on SIGTERM, and SIGINT can land between its
 * accept() and the thread that serves). Fence the members so their queue
 * moves to the new generation and nothing new arrives, then signal once the
 * process holds no socket but its members (or after --grace). */
static bool stop_when_idle(struct sup *s, struct gen *g)
{
	int l;

	if (!s->cfg->stop_when_idle || s->stopping)
		return false;
	for (l = 0; l < s->cfg->nlisten; l++) {
		struct stat st;

		g->member_ino[l] = 0;
		if (g->slot[l] >= 0 && !fstat(baton_group_fd(s->grp[l], g->slot[l]), &st))
			g->member_ino[l] = st.st_ino;
	}
	release_members(s, g);
	g->idle_wait = true;
	return true;
}

/* Sockets PID holds other than the generation's members; -1 if unknown. */
static int busy_sockets(const struct sup *s, const struct gen *g, pid_t pid)
{
	char path[64], link[64], fdpath[320];
	struct dirent *e;
	int n = 0, budget = 65536;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)) && budget-- > 0) {
		unsigned long ino;
		ssize_t len;
		bool member = false;
		int l;

		if (e->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, e->d_name);
		len = readlink(fdpath, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) != 1)
			continue;
		for (l = 0; l < s->cfg->nlisten; l++)
			member |= g->member_ino[l] == (ino_t)ino;
		n += !member;
	}
	closedir(d);
	return n;
}

static void idle_check(struct sup *s, struct gen *g, long long now)
{
	char path[64], buf[1024], *tok, *save = NULL;
	int n = busy_sockets(s, g, g->pid), fd;
	ssize_t got;

	/* its children (workers) count too, one level down */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)g->pid, (int)g->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		got = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[got > 0 ? got : 0] = '\0';
		for (tok = strtok_r(buf, " \n", &save); tok && n >= 0; tok = strtok_r(NULL, " \n", &save)) {
			int c = busy_sockets(s, g, (pid_t)atoi(tok));

			n += c > 0 ? c : 0;
		}
	}
	if (n > 0 && now - g->stop_ms < s->cfg->grace_ms)
		return;
	if (n > 0)
		say(s, "gen %d (pid %d) still holds %d connection%s after the %lld ms grace; stopping it anyway",
		    g->id, (int)g->pid, n, n == 1 ? "" : "s", s->cfg->grace_ms);
	g->idle_wait = false;
	g->stop_ms = now;	/* the grace before SIGKILL starts now */
	kill(g->pid, s->cfg->stop_signal);
}

/* ---- generations ------------------------------------------------------- */

static int live_gens(const struct sup *s)
{
	int i, n = 0;

	for (i = 0; i < MAX_GENS; i++)
		if (s->gen[i].state != GEN_FREE && s->gen[i].pid > 0)
			n++;
	return n;
}

static int alloc_gen(struct sup *s)
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
static void release_members(struct sup *s, struct gen *g)
{
	int l;

	for (l = 0; l < s->cfg->nlisten; l++) {
		if (g->slot[l] < 0)
			continue;
		baton_group_fence(s->grp[l], g->slot[l]);
		baton_group_remove(s->grp[l], g->slot[l]);
		g->slot[l] = -1;
	}
}

/* An ignored signal stays ignored across exec: a supervisor started in the
 * background of a non-interactive shell has SIGINT and SIGQUIT ignored, and
 * a server it ran would then never hear --stop-signal INT (python's
 * http.server only installs its KeyboardInterrupt handler when SIGINT is
 * at its default). Every generation starts with default dispositions. */
static void default_signals(void)
{
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
}

/* fork + exec with the member sockets as fds 3.. (systemd's protocol). An
 * exec failure comes back through a close-on-exec pipe, so it is an error
 * here and not a mysterious exit 127 later. */
static pid_t spawn(struct sup *s, const int *fds, int *err)
{
	int n = s->cfg->nlisten, p[2], tmp[SUP_MAX_LISTENERS], i, e = 0;
	pid_t pid;
	ssize_t got;

	if (pipe2(p, O_CLOEXEC)) {
		*err = -errno;
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		*err = -errno;
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		char num[32];
		int wfd;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		default_signals();
		setpgid(0, 0);	/* the terminal's ^C reaches baton, which stops gracefully */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* lift everything above the target range before placing it */
		wfd = fcntl(p[1], F_DUPFD_CLOEXEC, 3 + n);
		for (i = 0; i < n; i++)
			tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + n);
		for (i = 0; i < n; i++)
			if (tmp[i] < 0 || dup2(tmp[i], 3 + i) < 0)
				goto fail;
		snprintf(num, sizeof(num), "%d", n);
		setenv("LISTEN_FDS", num, 1);
		snprintf(num, sizeof(num), "%d", (int)getpid());
		setenv("LISTEN_PID", num, 1);
		setenv("LISTEN_FDNAMES", s->fdnames, 1);
		setenv("NOTIFY_SOCKET", s->notify_path, 1);
		preload_apply(s);
		execvp(s->cfg->argv[0], s->cfg->argv);
fail:
		e = errno;
		if (write(wfd, &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(p[1]);
	got = read(p[0], &e, sizeof(e));
	close(p[0]);
	if (got == (ssize_t)sizeof(e)) {
		waitpid(pid, NULL, 0);
		*err = -e;
		return -1;
	}
	return pid;
}

/* Starts a generation. FROM >= 0 hands it the members of a crashed one
 * (their queues kept everything meanwhile); otherwise it gets new member
 * sockets with weight WEIGHT. Returns the index or -errno. */
static int start_gen(struct sup *s, int from, uint32_t weight)
{
	int gi = alloc_gen(s), fds[SUP_MAX_LISTENERS], l, r = 0;
	struct gen *g;
	pid_t pid;

	if (gi < 0)
		return -EAGAIN;
	g = &s->gen[gi];
	memset(g, 0, sizeof(*g));
	for (l = 0; l < SUP_MAX_LISTENERS; l++)
		g->slot[l] = -1;
	for (l = 0; l < s->cfg->nlisten; l++) {
		if (from >= 0) {
			g->slot[l] = s->gen[from].slot[l];
			s->gen[from].slot[l] = -1;
		} else {
			int fd = baton_listener_open(&s->spec[l]);

			if (fd < 0) {
				r = fd;
				say(s, "cannot open a member socket for listener %d: %s", l, strerror(-r));
				goto fail;
			}
			g->slot[l] = baton_group_add(s->grp[l], fd, weight);
			close(fd);	/* the group keeps its copy */
			if (g->slot[l] < 0) {
				r = g->slot[l];
				g->slot[l] = -1;
				goto fail;
			}
		}
		fds[l] = baton_group_fd(s->grp[l], g->slot[l]);
	}
	g->id = ++s->next_id;
	g->start_us = mono_us();
	g->start_wall_ms = wall_ms();
	pid = spawn(s, fds, &r);
	if (pid < 0) {
		say(s, "cannot run \"%s\": %s", s->cfg->argv[0], strerror(-r));
		goto fail;
	}
	g->pid = pid;
	g->state = GEN_STARTING;
	return gi;
fail:
	if (from >= 0) {
		/* a failed restart hands the sockets back, queues intact */
		for (l = 0; l < s->cfg->nlisten; l++)
			s->gen[from].slot[l] = g->slot[l];
	} else {
		release_members(s, g);
	}
	memset(g, 0, sizeof(*g));
	return r ? r : -EIO;
}

static void stop_gen(struct sup *s, struct gen *g)
{
	if (g->pid <= 0 || g->stop_ms)
		return;
	bool served = g->state == GEN_ACTIVE;

	g->stop_ms = mono_ms();
	g->state = GEN_DRAINING;
	if (served && stop_when_idle(s, g))
		return;
	kill(g->pid, s->cfg->stop_signal);
}

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended (wait status %d)", status);
}

/* Readiness: the new generation takes all new connections in one step. */
static void gen_ready(struct sup *s, int gi)
{
	struct gen *g = &s->gen[gi];
	int l, old = s->active;

	g->ready_us = mono_us();
	if (gi != s->reload) {
		g->state = GEN_ACTIVE;	/* generation 1, or a restart on the same members */
		say(s, "gen %d (pid %d) ready after %lld ms", g->id, (int)g->pid, (g->ready_us - g->start_us) / 1000);
		return;
	}
	g->state = GEN_READY;
	step(s, "gen %d (pid %d) ready after %.1f ms", g->id, (int)g->pid, (double)(g->ready_us - g->start_us) / 1000.0);
	for (l = 0; l < s->cfg->nlisten; l++) {
		int r = baton_group_activate(s->grp[l], g->slot[l]);

		if (r) {
			/* undo: whatever already moved comes back to the old one */
			int k;

			for (k = 0; k < l && old >= 0; k++)
				if (s->gen[old].slot[k] >= 0)
					baton_group_activate(s->grp[k], s->gen[old].slot[k]);
			stop_gen(s, g);
			release_members(s, g);
			reload_finish(s, false, "cannot switch listener %d to gen %d: %s; gen %d still serves", l,
				      g->id, strerror(-r), old >= 0 ? s->gen[old].id : 0);
			return;
		}
	}
	g->state = GEN_ACTIVE;
	s->active = gi;
	step(s, "switched: new connections go to gen %d", g->id);
	if (old >= 0) {
		struct gen *o = &s->gen[old];

		if (o->pid > 0) {
			stop_gen(s, o);
			step(s, "gen %d (pid %d) told to stop (%s); its queue moves to gen %d once it stops accepting",
			     o->id, (int)o->pid, strsignal(s->cfg->stop_signal), g->id);
		} else {
			/* it had crashed and was waiting for its restart */
			release_members(s, o);
			s->restart_from = -1;
			s->restart_at = 0;
		}
	}
	reload_finish(s, true, "gen %d (pid %d) serves", g->id, (int)g->pid);
}

static void rollback(struct sup *s, const char *why)
{
	struct gen *g = &s->gen[s->reload];
	int old = s->active;

	step(s, "rolling back: %s", why);
	stop_gen(s, g);
	/* its members never had weight; fencing moves anything there to the
	 * generation that still serves */
	release_members(s, g);
	snprintf(g->why, sizeof(g->why), "rolled back: %s", why);
	reload_finish(s, false, "%s; rolled back, gen %d still serves", why, old >= 0 ? s->gen[old].id : 0);
}

static void begin_stop(struct sup *s, const char *why)
{
	int i;

	if (s->stopping)
		return;
	s->stopping = true;
	say(s, "stopping (%s): telling every generation to stop", why);
	if (s->reload >= 0)
		reload_finish(s, false, "the supervisor is stopping");
	s->restart_at = 0;
	for (i = 0; i < MAX_GENS; i++)
		if (s->gen[i].state != GEN_FREE && s->gen[i].pid > 0)
			stop_gen(s, &s->gen[i]);
}

static void gen_exited(struct sup *s, int gi, int status)
{
	struct gen *g = &s->gen[gi];
	char how[128];
	enum gen_state was = g->state;

	describe_exit(status, how, sizeof(how));
	g->pid = 0;
	g->status = status;
	g->state = GEN_EXITED;
	if (!g->why[0])
		snprintf(g->why, sizeof(g->why), "%s", how);
	if (gi == s->reload) {
		char why[200];

		snprintf(why, sizeof(why), "gen %d %s before it was ready", g->id, how);
		rollback(s, why);
		return;
	}
	if (s->stopping || was == GEN_DRAINING) {
		say(s, "gen %d %s", g->id, how);
		release_members(s, g);
		return;
	}
	if (gi == s->active && (was == GEN_STARTING || was == GEN_READY) && g->id == 1) {
		say(s, "gen 1 %s before it was ready; giving up", how);
		release_members(s, g);
		s->active = -1;
		s->exit_code = 1;
		begin_stop(s, "the command failed to start");
		return;
	}
	if (gi == s->active) {
		long long up = (mono_us() - g->start_us) / 1000;

		s->backoff_ms = up >= STABLE_MS || !s->backoff_ms ? BACKOFF_MIN_MS
				: s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
		s->restart_from = gi;
		s->restart_at = mono_ms() + s->backoff_ms;
		s->restarts++;
		say(s, "gen %d (active) %s after %lld ms; restarting in %lld ms on the same sockets "
		       "(new connections wait in their queue)", g->id, how, up, s->backoff_ms);
		return;
	}
	release_members(s, g);
}

static void reap(struct sup *s)
{
	int status, i;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < MAX_GENS; i++)
			if (s->gen[i].state != GEN_FREE && s->gen[i].pid == pid) {
				gen_exited(s, i, status);
				break;
			}
}

static int start_reload(struct sup *s, int client, const char *origin)
{
	int gi;

	if (s->stopping)
		return -ESHUTDOWN;
	if (s->reload >= 0)
		return -EBUSY;
	if (s->active < 0)
		return -ENOENT;
	s->reload_start_us = mono_us();
	s->reload_client = client;
	if (client >= 0)
		s->cl[client].role = CL_RELOAD;
	say(s, "reload requested (%s)", origin);
	gi = start_gen(s, -1, 0);
	if (gi < 0) {
		s->reload = -1;
		reload_finish(s, false, "cannot start the next generation: %s; gen %d still serves", strerror(-gi),
			      s->gen[s->active].id);
		return 0;
	}
	s->reload = gi;
	step(s, "started gen %d (pid %d)", s->gen[gi].id, (int)s->gen[gi].pid);
	return 0;
}

/* ---- status --------------------------------------------------------------- */

static void fmt_time(long long ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_str(FILE *f, const char *str)
{
	fputc('"', f);
	for (; *str; str++) {
		unsigned char c = (unsigned char)*str;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void write_status(struct sup *s, FILE *f, bool json)
{
	long long now = mono_ms();
	char when[32], spec[256];
	int i, l, first = 1;
	enum baton_mode mode = baton_group_mode(s->grp[0]);

	if (!json) {
		fprintf(f, "%s: supervisor pid %d, steering %s, %d reload%s done, %d failed, %d restart%s\n",
			s->name, (int)getpid(), baton_mode_name(mode), s->reloads_done,
			s->reloads_done == 1 ? "" : "s", s->reloads_failed, s->restarts, s->restarts == 1 ? "" : "s");
		for (l = 0; l < s->cfg->nlisten; l++) {
			baton_spec_format(&s->spec[l], spec, sizeof(spec));
			fprintf(f, "listener %d: %s\n", l, spec);
		}
		fprintf(f, "%-4s %-8s %-9s %-21s %s\n", "gen", "pid", "state", "started", "queue/backlog per listener");
	} else {
		fprintf(f, "{\"version\":1,\"name\":");
		json_str(f, s->name);
		fprintf(f, ",\"pid\":%d,\"mode\":\"%s\",\"reloads_done\":%d,\"reloads_failed\":%d,\"restarts\":%d,",
			(int)getpid(), baton_mode_name(mode), s->reloads_done, s->reloads_failed, s->restarts);
		fprintf(f, "\"reloading\":%s,\"stopping\":%s,\"last_reload\":", s->reload >= 0 ? "true" : "false",
			s->stopping ? "true" : "false");
		json_str(f, s->last_reload);
		fprintf(f, ",\"listeners\":[");
		for (l = 0; l < s->cfg->nlisten; l++) {
			baton_spec_format(&s->spec[l], spec, sizeof(spec));
			fprintf(f, "%s{\"index\":%d,\"spec\":", l ? "," : "", l);
			json_str(f, spec);
			fprintf(f, ",\"port\":%u}", s->spec[l].port);
		}
		fprintf(f, "],\"generations\":[");
	}
	/* newest first */
	for (int id = s->next_id; id > 0; id--) {
		struct gen *g = NULL;

		for (i = 0; i < MAX_GENS; i++)
			if (s->gen[i].state != GEN_FREE && s->gen[i].id == id)
				g = &s->gen[i];
		if (!g)
			continue;
		fmt_time(g->start_wall_ms, when, sizeof(when));
		if (!json) {
			fprintf(f, "%-4d %-8d %-9s %-21s", g->id, (int)g->pid, state_name[g->state], when);
			if (g->health[0])
				fprintf(f, " [%s]", g->health);
		} else {
			fprintf(f, "%s{\"id\":%d,\"pid\":%d,\"state\":\"%s\",\"started\":\"%s\",\"uptime_ms\":%lld,"
				   "\"ready_after_ms\":%lld,\"exit\":",
				first ? "" : ",", g->id, (int)g->pid, state_name[g->state], when,
				g->pid > 0 ? now - g->start_us / 1000 : 0, g->ready_us ? (g->ready_us - g->start_us) / 1000 : -1);
			json_str(f, g->state == GEN_EXITED ? g->why : "");
			fprintf(f, ",\"health\":");
			json_str(f, g->health);
			fprintf(f, ",\"members\":[");
		}
		first = 0;
		for (l = 0; l < s->cfg->nlisten; l++) {
			struct baton_queue q = { 0 };
			bool have = g->slot[l] >= 0 && baton_group_queue(s->grp[l], g->slot[l], &q) == 0;

			if (!json)
				fprintf(f, " %s", have ? "" : "-");
			if (!json && have)
				fprintf(f, "%u/%u", q.len, q.max);
			if (json) {
				fprintf(f, "%s{\"listener\":%d,\"slot\":%d", l ? "," : "", l, g->slot[l]);
				if (have)
					fprintf(f, ",\"queue\":%u,\"backlog\":%u", q.len, q.max);
				else
					fprintf(f, ",\"queue\":null,\"backlog\":null");
				fprintf(f, "}");
			}
		}
		if (!json)
			fprintf(f, "%s%s\n", g->state == GEN_EXITED ? "  " : "", g->state == GEN_EXITED ? g->why : "");
		else
			fprintf(f, "]}");
	}
	if (json)
		fprintf(f, "]}\n");
	else if (s->last_reload[0])
		fprintf(f, "last reload: %s\n", s->last_reload);
}

/* ---- control socket --------------------------------------------------------- */

static void handle_request(struct sup *s, int ci)
{
	struct client *c = &s->cl[ci];
	char *line = c->buf, *cmd, *arg, *save = NULL;
	int r;

	line[strcspn(line, "\r\n")] = '\0';
	cmd = strtok_r(line, " ", &save);
	if (!cmd || strcmp(cmd, SUP_PROTO)) {
		client_send(c, "error unsupported protocol \"%s\" (this supervisor speaks %s)", cmd ? cmd : "",
			    SUP_PROTO);
		goto close;
	}
	cmd = strtok_r(NULL, " ", &save);
	arg = strtok_r(NULL, " ", &save);
	if (!cmd) {
		client_send(c, "error no command (known: reload, status, stop)");
		goto close;
	}
	if (!strcmp(cmd, "status") && (!arg || !strcmp(arg, "json") || !strcmp(arg, "text"))) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		if (!f) {
			client_send(c, "error out of memory");
			goto close;
		}
		write_status(s, f, arg && !strcmp(arg, "json"));
		fclose(f);
		client_send(c, "ok");
		if (send(c->fd, text, len, MSG_NOSIGNAL) < 0)
			say(s, "status reply not sent: %s", strerror(errno));
		free(text);
		goto close;
	}
	if (arg) {
		client_send(c, "error unexpected argument \"%s\" for %s", arg, cmd);
		goto close;
	}
	if (!strcmp(cmd, "reload")) {
		r = start_reload(s, ci, "control socket");
		if (r == -EBUSY)
			client_send(c, "error a reload is already in progress (gen %d, started %lld ms ago)",
				    s->gen[s->reload].id, (mono_us() - s->reload_start_us) / 1000);
		else if (r == -ESHUTDOWN)
			client_send(c, "error the supervisor is stopping");
		else if (r == -ENOENT)
			client_send(c, "error no generation serves yet (gen 1 is still starting)");
		if (r)
			goto close;
		return;	/* the client waits for the outcome */
	}
	if (!strcmp(cmd, "stop")) {
		c->role = CL_STOP;
		client_send(c, "step stopping every generation (grace %lld ms)", s->cfg->grace_ms);
		begin_stop(s, "baton stop");
		return;
	}
	client_send(c, "error unknown command \"%s\" (known: reload, status, stop)", cmd);
close:
	client_close(s, c);
}

static void accept_client(struct sup *s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct epoll_event ev = { .events = EPOLLIN };
	int fd, i;

	fd = accept4(s->ctlfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (i = 0; i < MAX_CLIENTS && s->cl[i].role != CL_FREE; i++)
		;
	struct client tmp = { .fd = fd };

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		close(fd);
		return;
	}
	if (cred.uid != geteuid() && cred.uid != 0) {
		client_send(&tmp, "error permission denied: uid %u may not control this supervisor (owner uid %u)",
			    (unsigned)cred.uid, (unsigned)geteuid());
		say(s, "refused a control request from uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
		close(fd);
		return;
	}
	if (i == MAX_CLIENTS) {
		client_send(&tmp, "error busy: too many control connections");
		close(fd);
		return;
	}
	s->cl[i] = (struct client){ .role = CL_READING, .fd = fd, .deadline = mono_ms() + CLIENT_IDLE_MS };
	ev.data.u32 = (uint32_t)i;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void read_client(struct sup *s, int ci)
{
	struct client *c = &s->cl[ci];
	ssize_t n;

	if (c->role != CL_READING) {
		char sink[64];

		/* a waiting client that hangs up stops getting progress lines */
		n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			if (ci == s->reload_client)
				s->reload_client = -1;
			client_close(s, c);
		}
		return;
	}
	n = recv(c->fd, c->buf + c->len, SUP_REQUEST_MAX - c->len, MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		client_close(s, c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (memchr(c->buf, '\0', c->len)) {
		client_send(c, "error malformed request: it holds a NUL byte");
		client_close(s, c);
	} else if (strchr(c->buf, '\n')) {
		handle_request(s, ci);
	} else if (c->len >= SUP_REQUEST_MAX) {
		client_send(c, "error request too long (at most %d bytes, ending in a newline)", SUP_REQUEST_MAX);
		client_close(s, c);
	}
}

/* The control socket: mode 0600 in a 0700 directory. A live supervisor of
 * the same name answers a connect, and then this one refuses to start. */
static int open_control(struct sup *s)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[4096];
	mode_t old;
	int fd, r;

	if ((r = sup_runtime_dir(dir, sizeof(dir)))) {
		say(s, "no runtime directory: set BATON_RUNTIME_DIR or XDG_RUNTIME_DIR");
		return r;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		r = -errno;
		say(s, "cannot create %s: %s", dir, strerror(errno));
		return r;
	}
	if ((r = sup_socket_path(s->name, "sock", s->ctl_path, sizeof(s->ctl_path))) ||
	    (r = sup_socket_path(s->name, "notify", s->notify_path, sizeof(s->notify_path)))) {
		say(s, "runtime directory path is too long for a socket: %s", dir);
		return r;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->ctl_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		say(s, "a supervisor named \"%s\" already runs (control socket %s); pick another --name", s->name,
		    s->ctl_path);
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(s->ctl_path);	/* stale: nobody answered */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 16) ? -errno : 0;
	umask(old);
	if (r) {
		say(s, "cannot listen on %s: %s", s->ctl_path, strerror(-r));
		close(fd);
		return r;
	}
	s->ctlfd = fd;
	s->notifyfd = baton_notify_open(s->notify_path);
	if (s->notifyfd < 0) {
		r = s->notifyfd;
		say(s, "cannot open the notify socket %s: %s", s->notify_path, strerror(-r));
		return r;
	}
	return 0;
}

static void read_notify(struct sup *s)
{
	struct baton_notify_msg m;
	int i, r, budget;

	for (budget = 0; budget < 64; budget++) {
		r = baton_notify_recv(s->notifyfd, &m);
		if (r == -EAGAIN)
			return;
		if (r)
			continue;	/* malformed: ignored, as systemd does */
		for (i = 0; i < MAX_GENS; i++) {
			struct gen *g = &s->gen[i];

			if (g->state == GEN_FREE || g->pid <= 0 || !notify_from(g, &m))
				continue;
			g->heard = true;
			if ((m.ready || listen_is_ready(s, &m)) && g->state == GEN_STARTING)
				gen_ready(s, i);
			break;
		}
	}
}

/* ---- the loop ------------------------------------------------------------- */

static bool busy(const struct sup *s)
{
	int i;

	if (s->reload >= 0 || s->restart_at || s->stopping || (!s->cfg->no_watch && s->active >= 0))
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

/* A draining generation's members: once a queue stops shrinking (nobody
 * accepts from it any more), fence it so what waits there moves now rather
 * than when the process finally exits. */
static void watch_drain(struct sup *s, struct gen *g, long long now)
{
	int l;

	for (l = 0; l < s->cfg->nlisten; l++) {
		struct baton_queue q;

		if (g->slot[l] < 0 || baton_group_queue(s->grp[l], g->slot[l], &q))
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
			say(s, "gen %d stopped accepting with %u queued on listener %d; moving them to gen %d", g->id,
			    q.len, l, s->active >= 0 ? s->gen[s->active].id : 0);
			baton_group_fence(s->grp[l], g->slot[l]);
			baton_group_remove(s->grp[l], g->slot[l]);
			g->slot[l] = -1;
		}
	}
}

/* The health watch over the active generation (its pid owns its members):
 * once it is stopped or its queue hangs, a fresh generation starts as in a
 * reload, and as soon as its members are in the group the watch steers away
 * from the old one and fences it, so its queue moves to the new one, which
 * takes new connections while it starts. A generation that exits is the
 * crash path's business, not the watch's. */
static void health_tick(struct sup *s, long long now)
{
	struct baton_watch_opts o = { .sz = sizeof(o), .hang_ms = (uint32_t)s->cfg->hang_ms, .keep_gone = true,
				      .owned_only = true, .log = lib_log, .log_ctx = s };
	struct gen *g;
	int l;

	if (s->cfg->no_watch || s->stopping || s->active < 0)
		return;
	g = &s->gen[s->active];
	if (g->state != GEN_ACTIVE || g->pid <= 0) {
		/* starting (a restart) or gone: not judged until it serves */
		for (l = 0; l < s->cfg->nlisten && s->watched >= 0; l++)
			for (int k = 0; k < BATON_MAX_SLOTS; k++)
				baton_watch_clear_owners(s->watch[l], k);
		s->watched = -1;
		return;
	}
	for (l = 0; l < s->cfg->nlisten; l++) {
		if (!s->watch[l] && !(s->watch[l] = baton_watch_new(s->grp[l], &o)))
			return;
		if (s->watched != s->active) {
			for (int k = 0; k < BATON_MAX_SLOTS; k++)
				baton_watch_clear_owners(s->watch[l], k);
			if (g->pid > 0 && g->slot[l] >= 0)
				baton_watch_set_owner(s->watch[l], g->slot[l], g->pid);
		}
	}
	s->watched = s->active;
	for (l = 0; l < s->cfg->nlisten; l++) {
		struct baton_member_health h;

		baton_watch_tick(s->watch[l], (uint64_t)now);
		if (g->slot[l] < 0 || baton_watch_health(s->watch[l], g->slot[l], &h) ||
		    (h.health != BATON_HEALTH_STOPPED && h.health != BATON_HEALTH_HUNG) || g->health[0])
			continue;
		snprintf(g->health, sizeof(g->health), "fenced: %s%s", baton_health_name(h.health),
			 h.health == BATON_HEALTH_STOPPED ? " (SIGSTOP)" : "");
		say(s, "gen %d (pid %d) is unhealthy (%s on listener %d); starting a fresh generation", g->id,
		    (int)g->pid, baton_health_name(h.health), l);
		if (s->reload < 0)
			start_reload(s, -1, "health watch");
	}
}

static void tick(struct sup *s)
{
	long long now = mono_ms();
	int i;

	for (i = 0; i < MAX_CLIENTS; i++)
		if (s->cl[i].role == CL_READING && now >= s->cl[i].deadline) {
			client_send(&s->cl[i], "error no request within %d ms", CLIENT_IDLE_MS);
			client_close(s, &s->cl[i]);
		}
	for (i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];

		if (g->pid <= 0)
			continue;
		if (g->state == GEN_STARTING) {
			long long age = now - g->start_us / 1000;
			const struct sup_config *c = s->cfg;

			if ((c->ready == SUP_READY_DELAY && age >= c->ready_delay_ms) ||
			    (c->ready == SUP_READY_AUTO && !g->heard && age >= c->ready_delay_ms)) {
				gen_ready(s, i);
			} else if (age >= c->ready_timeout_ms) {
				char why[128];

				snprintf(why, sizeof(why), "gen %d was not ready within %lld ms", g->id, c->ready_timeout_ms);
				if (i == s->reload) {
					rollback(s, why);
				} else if (g->id == 1) {
					say(s, "%s; giving up", why);
					s->exit_code = 1;
					begin_stop(s, "the command never became ready");
				} else {
					/* a restart already holds the active sockets; it
					 * serves whether or not it says so */
					say(s, "%s; it keeps the active sockets anyway", why);
					gen_ready(s, i);
				}
			}
		}
		if (g->state == GEN_DRAINING) {
			if (g->idle_wait)
				idle_check(s, g, now);
			if (!g->killed && now - g->stop_ms >= s->cfg->grace_ms) {
				say(s, "gen %d (pid %d) still running after the %lld ms grace; killing it", g->id,
				    (int)g->pid, s->cfg->grace_ms);
				kill(-g->pid, SIGKILL);
				kill(g->pid, SIGKILL);
				g->killed = true;
			}
			if (!s->stopping)
				watch_drain(s, g, now);
		}
	}
	health_tick(s, now);
	if (s->restart_at && now >= s->restart_at && !s->stopping) {
		int from = s->restart_from, gi;

		s->restart_at = 0;
		s->restart_from = -1;
		gi = start_gen(s, from, 1);
		if (gi < 0) {
			say(s, "restart failed: %s; trying again", strerror(-gi));
			s->restart_from = from;
			s->restart_at = now + BACKOFF_MAX_MS;
		} else {
			s->active = gi;
			say(s, "gen %d (pid %d) restarted in place of gen %d", s->gen[gi].id, (int)s->gen[gi].pid,
			    s->gen[from].id);
		}
	}
}

static int setup(struct sup *s)
{
	struct baton_group_opts o = { .sz = sizeof(o), .log = lib_log, .log_ctx = s };
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;
	int l, r;
	size_t off = 0;

	for (l = 0; l < s->cfg->nlisten; l++) {
		const char *nm = s->spec[l].name[0] ? s->spec[l].name : "baton";

		off += (size_t)snprintf(s->fdnames + off, sizeof(s->fdnames) - off, "%s%s", l ? ":" : "", nm);
		s->grp[l] = baton_group_new(&o);
		if (!s->grp[l]) {
			r = -errno;
			say(s, "cannot create a steering group: %s", strerror(-r));
			return r;
		}
	}
	if (baton_group_mode(s->grp[0]) != BATON_MODE_EBPF)
		say(s, "running in classic BPF mode: reloads switch traffic, but a stopping generation's queue "
		       "cannot be moved (needs CAP_BPF and CAP_NET_ADMIN)");
	if ((r = open_control(s)))
		return r;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->sigfd < 0 || s->epfd < 0)
		return -errno;
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
			int r = start_reload(s, -1, "SIGHUP");

			if (r)
				say(s, "SIGHUP: no reload: %s", r == -EBUSY ? "a reload is already in progress"
							      : r == -ENOENT ? "gen 1 is still starting"
									     : "the supervisor is stopping");
		} else {
			begin_stop(s, strsignal((int)si.ssi_signo));
		}
	}
}

static void cleanup(struct sup *s)
{
	int i;

	for (i = 0; i < MAX_CLIENTS; i++) {
		if (s->cl[i].role == CL_STOP)
			client_send(&s->cl[i], "ok stopped");
		if (s->cl[i].role != CL_FREE)
			client_close(s, &s->cl[i]);
	}
	for (i = 0; i < MAX_GENS; i++)
		release_members(s, &s->gen[i]);
	for (i = 0; i < s->cfg->nlisten; i++) {
		baton_watch_free(s->watch[i]);
		baton_group_free(s->grp[i]);
	}
	if (s->ctlfd >= 0) {
		close(s->ctlfd);
		unlink(s->ctl_path);
	}
	if (s->notifyfd >= 0) {
		close(s->notifyfd);
		unlink(s->notify_path);
	}
	if (s->sigfd >= 0)
		close(s->sigfd);
	if (s->epfd >= 0)
		close(s->epfd);
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
		say(s, "cannot listen on %s: %s", text, strerror(-fd));
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

int sup_run(const struct sup_config *cfg)
{
	struct sup sv = { .cfg = cfg, .active = -1, .reload = -1, .reload_client = -1, .restart_from = -1,
			  .epfd = -1, .sigfd = -1, .notifyfd = -1, .ctlfd = -1, .watched = -1 };
	struct sup *s = &sv;
	int i, l, gi;

	for (i = 0; i < MAX_CLIENTS; i++)
		s->cl[i].fd = -1;
	s->start_wall_ms = wall_ms();
	memcpy(s->spec, cfg->listen, sizeof(cfg->listen));
	snprintf(s->name, sizeof(s->name), "%s", cfg->name[0] ? cfg->name : "baton");
	for (l = 0; l < cfg->nlisten; l++)
		if (pin_port(s, l))
			return 1;
	if (!cfg->name[0]) {
		/* NAME defaults to the first listener's name, else PROTO-PORT */
		if (s->spec[0].name[0])
			memcpy(s->name, s->spec[0].name, sizeof(s->name));	/* same size, NUL-terminated */
		else
			snprintf(s->name, sizeof(s->name), "%s-%u",
				 s->spec[0].proto == BATON_PROTO_UDP ? "udp" : "tcp", s->spec[0].port);
	}
	if (setup(s)) {
		cleanup(s);
		return 1;
	}
	if (!cfg->no_preload)
		preload_setup(s);
	gi = start_gen(s, -1, 1);
	if (gi < 0) {
		cleanup(s);
		return 1;
	}
	s->active = gi;
	say(s, "gen 1 (pid %d) started; control socket %s", (int)s->gen[gi].pid, s->ctl_path);
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(s->epfd, ev, 16, busy(s) ? TICK_MS : -1);

		for (i = 0; i < n; i++) {
			uint32_t tag = ev[i].data.u32;

			if (tag == EV_SIGNAL)
				handle_signals(s);
			else if (tag == EV_NOTIFY)
				read_notify(s);
			else if (tag == EV_CONTROL)
				accept_client(s);
			else if (tag < MAX_CLIENTS && s->cl[tag].role != CL_FREE)
				read_client(s, (int)tag);
		}
		tick(s);
		if (s->stopping && !live_gens(s))
			break;
	}
	say(s, "stopped");
	cleanup(s);
	return s->exit_code;
}
