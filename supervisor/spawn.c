/* SPDX-License-Identifier: BSD-2-Clause */
/* Starting a generation's process: fork + exec with its member sockets as
 * fds 3.. (LISTEN_FDS) and the preload shim in its environment. */
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
#include "core.h"
#include "flows.h"
#include "handoff.h"
#include "spawn.h"
#include "preload_map.h"
#include "preload_path.h"

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

/* In the child, before exec: the shim goes first in LD_PRELOAD. */
void preload_apply(struct sup *s)
{
	const char *old = getenv("LD_PRELOAD");
	char val[16384];

	if (!s->preload_lib[0]) {
		unsetenv("BATON_PRELOAD");	/* an outer baton's map names other fds */
		unsetenv("BATON_HANDOFF");
		return;
	}
	/* set again by handoff_child_place when this generation has a channel */
	unsetenv("BATON_HANDOFF");
	snprintf(val, sizeof(val), "%s%s%s", s->preload_lib, old && *old ? " " : "", old ? old : "");
	setenv("LD_PRELOAD", val, 1);
	setenv("BATON_PRELOAD", s->preload_env, 1);
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
pid_t spawn(struct sup *s, int id, const int *fds, int *err)
{
	int n = s->nl, p[2], *tmp, i, e = 0, cgfd = bindmode_procs_fd(s, id), extra;
	pid_t pid;
	ssize_t got;

	if (cgfd >= 0)
		n = 0;	/* cgroup mode: it binds its own sockets, and gets none */
	else if (cgfd != -ENOENT) {
		*err = cgfd;
		return -1;
	}

	/* the preload map's memfd, if any, right after the members */
	extra = cgfd < 0 && s->preload_lib[0] && s->preload_memfd >= 0 ? 1 : 0;
	tmp = calloc((size_t)n + 1, sizeof(*tmp));
	if (!tmp || pipe2(p, O_CLOEXEC)) {
		*err = tmp ? -errno : -ENOMEM;
		free(tmp);
		if (cgfd >= 0)
			close(cgfd);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		*err = -errno;
		close(p[0]);
		close(p[1]);
		free(tmp);
		if (cgfd >= 0)
			close(cgfd);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		char num[32];
		int wfd, top, hbase;

		/* into its cgroup before it can bind: the hook applies from here */
		if (cgfd >= 0 && write(cgfd, "0", 1) != 1) {
			e = errno;
			if (write(p[1], &e, sizeof(e)) < 0)
				_exit(126);
			_exit(127);
		}
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		default_signals();
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
		/* lift everything above the target range before placing it:
		 * the listeners, the shim's map when it is in a memfd, then the
		 * handoff channel (not a listener, so not in LISTEN_FDS;
		 * BATON_HANDOFF names it) */
		hbase = 3 + n + extra;
		top = hbase + (cgfd >= 0 ? 0 : handoff_child_lift(s, hbase + 3));
		wfd = fcntl(p[1], F_DUPFD_CLOEXEC, top);
		for (i = 0; i < n; i++)
			tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, top);
		if (extra)
			tmp[n] = fcntl(s->preload_memfd, F_DUPFD_CLOEXEC, top);
		for (i = 0; i < n + extra; i++)
			if (tmp[i] < 0 || dup2(tmp[i], 3 + i) < 0)
				goto fail;
		/* whatever baton itself inherited is not the generation's */
		syscall(SYS_close_range, top, ~0U, CLOSE_RANGE_CLOEXEC);
		/* first: LISTEN_* and the rest are baton's to say */
		env_apply(cmd_env(s));
		if (cgfd >= 0) {
			unsetenv("LISTEN_FDS");
			unsetenv("LISTEN_PID");
			unsetenv("LISTEN_FDNAMES");
		} else {
			snprintf(num, sizeof(num), "%d", n);
			setenv("LISTEN_FDS", num, 1);
			snprintf(num, sizeof(num), "%d", (int)getpid());
			setenv("LISTEN_PID", num, 1);
			setenv("LISTEN_FDNAMES", s->fdnames, 1);
		}
		setenv("NOTIFY_SOCKET", s->notify_path, 1);
		setenv("BATON_NAME", s->name, 1);
		snprintf(num, sizeof(num), "%d", id);
		setenv("BATON_GENERATION", num, 1);
		flows_env(s, id);
		preload_apply(s);
		if (top > hbase && s->preload_lib[0] && handoff_child_place(s, hbase))
			goto fail;
		execvp(cmd_argv(s)[0], cmd_argv(s));
fail:
		e = errno;
		if (write(wfd, &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	free(tmp);
	if (cgfd >= 0)
		close(cgfd);
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



#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static int pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) ? -errno : 0;
}

const struct sup_ops sup_default_ops = { .spawn = spawn, .kill = kill, .pidfd_signal = pidfd_signal };
