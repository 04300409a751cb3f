/* SPDX-License-Identifier: BSD-2-Clause */
/* Starting a generation's process: a vfork-like clone + exec with its
 * member sockets as fds 3.. (LISTEN_FDS) and the preload shim in its
 * environment, which is built here before the clone. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/close_range.h>

#include "bindmode.h"
#include "cmd.h"
#include "envbuild.h"
#include "core.h"
#include "flows.h"
#include "handoff.h"
#include "genspawn.h"
#include "preload_map.h"
#include "preload_path.h"
#include "strv.h"

/* Code that runs in the clone child, on a stack of its own that ASan does
 * not know: not instrumented, so no redzones are poisoned there that would
 * outlive the exec (which never returns through these frames). */
#define CHILD_CODE __attribute__((no_sanitize_address))

/* Finds the shim (BATON_PRELOAD_LIB, next to this executable, or where make
 * install put it) and writes the address-to-fd map it reads. Without it,
 * servers that bind their own socket fail with EADDRINUSE, so that is said
 * once here. The map is read back with the shim's own parser: a listener
 * the shim could not carry refuses the start (-1, said why) instead of a
 * generation that fails to bind and is restarted forever. A map too large
 * for one environment string goes in a sealed memfd the generation
 * inherits after its members (fd 3 + listeners). */
int preload_setup(struct sup *s)
{
	struct preload_entry *check = NULL;
	char *text = NULL, *copy = NULL, bad[256];
	size_t off = 0, cap = 64;
	int l, n, r = -1;

	if (preload_path_find(s->preload_lib, sizeof(s->preload_lib)) < 0) {
		say_warn(s, "no preload shim at %s (set BATON_PRELOAD_LIB); a command that binds its own socket "
		       "will not get baton's", s->preload_lib[0] ? s->preload_lib : "(unknown)");
		s->preload_lib[0] = '\0';
		return 0;
	}
	if (s->nl > PRELOAD_MAX_ENTRIES) {
		say_err(s, "the preload shim manages at most %d listeners, not %d: use --bind-mode cgroup, or "
			"fewer --listen", PRELOAD_MAX_ENTRIES, s->nl);
		goto out;
	}
	text = malloc(cap);
	if (!text)
		goto nomem;
	off = (size_t)snprintf(text, cap, "v1");
	for (l = 0; l < s->nl; l++) {
		const struct baton_spec *sp = &s->spec[l];
		char host[INET6_ADDRSTRLEN] = "", entry[128];
		const void *a = sp->family == AF_INET ? (const void *)&((const struct sockaddr_in *)&sp->addr)->sin_addr
						     : (const void *)&((const struct sockaddr_in6 *)&sp->addr)->sin6_addr;
		int len;

		inet_ntop(sp->family, a, host, sizeof(host));
		len = snprintf(entry, sizeof(entry), sp->family == AF_INET6 ? ";%s:[%s]:%u=%d" : ";%s:%s:%u=%d",
			       sp->proto == BATON_PROTO_UDP ? "udp" : "tcp", host, sp->port, 3 + l);
		if (off + (size_t)len + 1 > cap) {
			char *t;

			while (off + (size_t)len + 1 > cap)
				cap *= 2;
			if (!(t = realloc(text, cap)))
				goto nomem;
			text = t;
		}
		memcpy(text + off, entry, (size_t)len + 1);
		off += (size_t)len;
	}
	/* what the shim will make of it */
	copy = strdup(text);
	check = calloc((size_t)s->nl + 1, sizeof(*check));
	if (!copy || !check)
		goto nomem;
	n = preload_map_parse(copy, check, s->nl + 1, bad, sizeof(bad));
	if (n != s->nl) {
		say_err(s, "the preload shim cannot carry %s%s%s (%d of %d listeners readable): use --bind-mode "
			"cgroup or --no-preload", n < 0 ? "the entry \"" : "this configuration", n < 0 ? bad : "",
			n < 0 ? "\"" : "", n < 0 ? 0 : n, s->nl);
		goto out;
	}
	for (l = 0; l < s->nl; l++)
		if (check[l].port != s->spec[l].port || check[l].fd != 3 + l) {
			say_err(s, "the preload shim would read listener %d as another address (port %u, fd %d): use "
				"--bind-mode cgroup or --no-preload", l, check[l].port, check[l].fd);
			goto out;
		}
	if (s->preload_memfd >= 0)
		close(s->preload_memfd);
	s->preload_memfd = -1;
	free(s->preload_env);
	s->preload_env = NULL;
	if (off <= PRELOAD_ENV_MAX) {
		s->preload_env = text;
		text = NULL;
	} else {
		char num[32];
		int fd;

		if (off > PRELOAD_MAP_MAX) {
			say_err(s, "the preload shim's map of %d listeners is %zu bytes, more than it reads (%u): use "
				"--bind-mode cgroup", s->nl, off, PRELOAD_MAP_MAX);
			goto out;
		}
		fd = memfd_create("baton-preload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0 || write(fd, text, off) != (ssize_t)off ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) {
			say_err(s, "cannot write the preload shim's map of %d listeners to a memfd: %s", s->nl,
				strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		s->preload_memfd = fd;
		snprintf(num, sizeof(num), "v1fd:%d", 3 + s->nl);
		if (!(s->preload_env = strdup(num)))
			goto nomem;
	}
	if (s->cfg->verbose)
		say(s, "preloading %s with BATON_PRELOAD=%s%s", s->preload_lib, s->preload_env,
		    s->preload_memfd >= 0 ? " (the map in an inherited memfd)" : "");
	r = 0;
	goto out;
nomem:
	say_err(s, "no memory for the preload shim's map of %d listeners", s->nl);
out:
	free(text);
	free(copy);
	free(check);
	return r;
}

/* Into a generation's environment, before its spawn: the shim goes first
 * in LD_PRELOAD. 0 or -ENOMEM. */
int preload_apply(struct sup *s, struct envb *e)
{
	const char *old = envb_get(e, "LD_PRELOAD");
	char val[16384];

	/* set again by handoff_env when this generation has a channel */
	envb_unset(e, "BATON_HANDOFF");
	if (!s->preload_lib[0]) {
		envb_unset(e, "BATON_PRELOAD");	/* an outer baton's map names other fds */
		return 0;
	}
	snprintf(val, sizeof(val), "%s%s%s", s->preload_lib, old && *old ? " " : "", old ? old : "");
	if (envb_set(e, "LD_PRELOAD", val) || envb_set(e, "BATON_PRELOAD", s->preload_env))
		return -ENOMEM;
	return 0;
}

/* What the child needs, all made ready by the supervisor before the clone:
 * the child runs in our memory until its exec, so it reads only this and
 * its own stack, and writes only LIFTED, PID_DIGITS, SH_ARGV and ERR. */
struct child {
	int cgfd;               /* bind mode: its cgroup's cgroup.procs, else -1 */
	int nfd;                /* fds placed at 3.. */
	const int *src;         /* ours, nfd of them: members, the shim's memfd, the handoff channel */
	int *lifted;            /* nfd: SRC, lifted above the target range if in it */
	char *const *argv;
	char *const *envp;
	char *pid_digits;       /* LISTEN_PID's value, filled in by the child; or NULL */
	const char *path;       /* PATH in ENVP (NULL: none), searched for argv[0] */
	char **sh_argv;         /* room for argc + 2 pointers: a script without #! */
	int err;                /* errno of the step that failed; 0: it ran */
};

/* The child's own stack: CLONE_VM shares ours, which the supervisor's
 * frames use. PATH_MAX for the search, and the C library's calls. */
#define CHILD_STACK (256 * 1024)

/* An ignored signal stays ignored across exec: a supervisor started in the
 * background of a non-interactive shell has SIGINT and SIGQUIT ignored, and
 * a server it ran would then never hear --stop-signal INT (python's
 * http.server only installs its KeyboardInterrupt handler when SIGINT is
 * at its default). Every generation starts with default dispositions. In
 * the child, whose dispositions are its own (no CLONE_SIGHAND), before it
 * unblocks anything: a handler of ours would run on our memory. */
CHILD_CODE static void default_signals(void)
{
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
}

/* V in decimal at OUT, with its NUL; nothing allocated. */
CHILD_CODE static void put_decimal(char *out, unsigned long v)
{
	char t[24];
	int n = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*out++ = t[--n];
	*out = '\0';
}

/* execve, and a file that is not an executable (ENOEXEC) run by /bin/sh,
 * as execvp does. Returns only on failure (errno). */
CHILD_CODE static void exec_file(struct child *c, const char *file)
{
	size_t argc = 0;

	execve(file, c->argv, c->envp);
	if (errno != ENOEXEC)
		return;
	while (c->argv[argc])
		argc++;
	c->sh_argv[0] = (char *)"/bin/sh";
	c->sh_argv[1] = (char *)file;
	for (size_t i = 1; i <= argc; i++)	/* with the NULL */
		c->sh_argv[i + 1] = c->argv[i];
	if (!argc)
		c->sh_argv[2] = NULL;
	execve("/bin/sh", c->sh_argv, c->envp);
}

/* execvp's search with its rules, along the generation's PATH: execvpe
 * would search ours, and a reload's --env PATH=... is the generation's. */
CHILD_CODE static void exec_search(struct child *c)
{
	const char *file = c->argv[0], *p = c->path ? c->path : "/bin:/usr/bin";
	size_t fl = strlen(file);
	char buf[PATH_MAX];
	bool eacces = false;

	if (strchr(file, '/')) {
		exec_file(c, file);
		return;
	}
	if (!fl || fl >= NAME_MAX) {
		errno = !fl ? ENOENT : ENAMETOOLONG;
		return;
	}
	for (;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dl = (size_t)(end - p);

		if (dl + fl + 2 <= sizeof(buf)) {
			memcpy(buf, p, dl);
			buf[dl] = '/';
			memcpy(buf + dl + (dl > 0), file, fl + 1);	/* an empty entry: here */
			exec_file(c, buf);
			switch (errno) {
			case EACCES:
				eacces = true;
				/* fall through */
			case ENOENT:
			case ESTALE:
			case ENOTDIR:
			case ENODEV:
			case ETIMEDOUT:
				break;
			default:
				return;
			}
		}
		if (!*(p = end))
			break;
	}
	if (eacces)
		errno = EACCES;
}

/* The generation's process until its exec, on its own stack in our memory
 * (CLONE_VM): no malloc, no stdio, no setenv, nothing of the supervisor's
 * written. Its fds are its own (no CLONE_FILES). */
CHILD_CODE static int child_main(void *arg)
{
	struct child *c = arg;
	sigset_t none;
	int top = 3 + c->nfd, i;

	/* into its cgroup before it can bind: the hook applies from here */
	if (c->cgfd >= 0 && write(c->cgfd, "0", 1) != 1)
		goto fail;
	default_signals();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* its own session (and so its own process group, pgid = pid):
	 * the terminal's ^C and hangup reach baton only, which stops
	 * every generation gracefully; no SIGTTIN/SIGTTOU from a
	 * terminal it is not the foreground of; and when the supervisor
	 * dies, the kernel's orphaned-process-group rule (SIGHUP then
	 * SIGCONT to a group with a stopped member, whose last parent
	 * outside the group but in its session exits) cannot apply: the
	 * parent is in another session. No parent-death signal either: a
	 * generation outlives a supervisor that dies, and the next one
	 * adopts it. */
	if (setsid() < 0)
		setpgid(0, 0);
	/* lift what lies in the target range above it before placing
	 * anything: the listeners, the shim's map when it is in a memfd, then
	 * the handoff channel (not a listener, so not in LISTEN_FDS;
	 * BATON_HANDOFF names it). An fd already above it is safe where it
	 * is: one syscall per listener instead of two. */
	for (i = 0; i < c->nfd; i++)
		c->lifted[i] = c->src[i] >= top ? c->src[i] : fcntl(c->src[i], F_DUPFD_CLOEXEC, top);
	for (i = 0; i < c->nfd; i++)
		if (c->lifted[i] < 0 || dup2(c->lifted[i], 3 + i) < 0)
			goto fail;
	/* whatever baton itself inherited is not the generation's */
	syscall(SYS_close_range, top, ~0U, CLOSE_RANGE_CLOEXEC);
	if (c->pid_digits)
		put_decimal(c->pid_digits, (unsigned long)syscall(SYS_getpid));
	exec_search(c);
fail:
	c->err = errno ? errno : EIO;	/* a short write to cgroup.procs says none */
	_exit(127);
}

/* The generation's environment: ours, then the reload's changes, then
 * baton's own variables (they win). Built here, in the supervisor, because
 * the child shares our memory: a setenv there would change (and could
 * corrupt) the supervisor's own environment. HBASE: where the handoff
 * channel goes, if NH. 0 or -ENOMEM. */
static int child_env(struct sup *s, int id, struct child *c, struct envb *e, int n, int hbase, int nh)
{
	char num[32];

	if (envb_init(e, environ) || env_apply(e, cmd_env(s)))
		return -ENOMEM;
	if (c->cgfd >= 0) {
		envb_unset(e, "LISTEN_FDS");
		envb_unset(e, "LISTEN_PID");
		envb_unset(e, "LISTEN_FDNAMES");
	} else {
		snprintf(num, sizeof(num), "%d", n);
		/* the child's pid, which only the child knows before its exec */
		if (envb_set(e, "LISTEN_FDS", num) || !(c->pid_digits = envb_slot(e, "LISTEN_PID", 24)) ||
		    envb_set(e, "LISTEN_FDNAMES", s->fdnames))
			return -ENOMEM;
	}
	snprintf(num, sizeof(num), "%d", id);
	if (envb_set(e, "NOTIFY_SOCKET", s->notify_path) || envb_set(e, "BATON_NAME", s->name) ||
	    envb_set(e, "BATON_GENERATION", num) || flows_env(s, id, e) || preload_apply(s, e) ||
	    (nh && handoff_env(s, e, hbase)))
		return -ENOMEM;
	c->envp = e->v;
	c->path = envb_get(e, "PATH");
	return 0;
}

/* Runs C's child as glibc's posix_spawn does: CLONE_VM, so nothing of our
 * address space is copied, and CLONE_VFORK, so we wait only until its exec
 * has let go of our memory (exec_mmap, before its close-on-exec fds are
 * closed) or it exited. Every signal blocked meanwhile, so that no handler
 * of ours runs in the child before it has set its dispositions to default.
 * The child's pid, or -errno. */
static pid_t clone_child(struct child *c)
{
	sigset_t all, old;
	void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
			   -1, 0);
	pid_t pid;

	if (stack == MAP_FAILED)
		return -errno;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = clone(child_main, (char *)stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
	/* the child shares our thread's errno too: only a failed clone's is ours */
	if (pid < 0)
		pid = -errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	munmap(stack, CHILD_STACK);
	return pid;
}

/* In a generation with the shim: its first fd after the listeners (3..)
 * and the preload map's memfd, when the map is in one. The handoff
 * channel goes there, and the map of channels records it so. */
int spawn_fd_after_map(const struct sup *s)
{
	return 3 + s->nl + (s->preload_lib[0] && s->preload_memfd >= 0 ? 1 : 0);
}

/* Starts generation ID with FDS (its members) as fds 3.. (systemd's
 * protocol). A failure before or at the exec is an error here (the child's
 * errno, the child reaped), not a mysterious exit 127 later. */
pid_t spawn(struct sup *s, int id, const int *fds, int *err)
{
	struct child c = { .cgfd = bindmode_procs_fd(s, id) };
	struct envb env = { 0 };
	int n = s->nl, extra, nh = 0, hfd[3], *fdv = NULL, r = -ENOMEM;
	pid_t pid = -1;

	if (c.cgfd >= 0)
		n = 0;	/* cgroup mode: it binds its own sockets, and gets none */
	else if (c.cgfd != -ENOENT) {
		*err = c.cgfd;
		return -1;
	}
	/* the preload map's memfd, if any, right after the members; then the
	 * handoff channel */
	extra = c.cgfd < 0 ? spawn_fd_after_map(s) - 3 - s->nl : 0;
	if (c.cgfd < 0 && s->preload_lib[0])
		nh = handoff_spawn_fds(s, hfd);
	c.nfd = n + extra + nh;
	c.argv = cmd_argv(s);
	fdv = calloc(2 * (size_t)c.nfd + 1, sizeof(*fdv));
	c.sh_argv = calloc(strv_len(c.argv) + 2, sizeof(*c.sh_argv));
	if (!fdv || !c.sh_argv || child_env(s, id, &c, &env, n, c.cgfd < 0 ? spawn_fd_after_map(s) : 3, nh))
		goto out;
	memcpy(fdv, fds, (size_t)n * sizeof(*fdv));
	if (extra)
		fdv[n] = s->preload_memfd;
	memcpy(fdv + n + extra, hfd, (size_t)nh * sizeof(*fdv));
	c.src = fdv;
	c.lifted = fdv + c.nfd;
	r = pid = clone_child(&c);
	if (pid > 0 && c.err) {
		waitpid(pid, NULL, 0);
		r = -c.err;
		pid = -1;
	}
out:
	if (pid < 0)
		*err = r;
	envb_free(&env);
	free(c.sh_argv);
	free(fdv);
	if (c.cgfd >= 0)
		close(c.cgfd);
	return pid < 0 ? -1 : pid;
}

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static int pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) ? -errno : 0;
}

const struct sup_ops sup_default_ops = { .spawn = spawn, .kill = kill, .pidfd_signal = pidfd_signal };
