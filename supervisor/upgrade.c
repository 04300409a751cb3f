/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton upgrade` (or SIGUSR2): the supervisor re-executes its binary as
 * the same pid, so the generations stay its children and a service
 * manager's main pid holds. The control and notify sockets and the waiting
 * client cross the exec; everything else is resumed from the state file and
 * the pins, as after a crash. The new binary is tried first (--version): one
 * that cannot start leaves this supervisor running, and says why. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "core.h"
#include "mhttp.h"
#include "sdnotify.h"
#include "state.h"
#include "upgrade.h"
#include "util.h"

#define UPGRADE_ENV "BATON_UPGRADE"
#define TRY_MS 5000

/* The binary to execute: what /proc/self/exe names now. A package upgrade
 * replaces the file, and the link then reads "PATH (deleted)": the new
 * file is at PATH. */
static int new_binary(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	const char *del = " (deleted)";
	size_t dl = strlen(del);

	if (n <= 0)
		return -errno;
	buf[n] = '\0';
	if ((size_t)n > dl && !strcmp(buf + n - dl, del))
		buf[n - dl] = '\0';
	return 0;
}

/* Runs BIN --version, bounded: 0 if it starts and says it is baton. */
static int try_binary(struct sup *s, const char *bin, char *why, size_t len)
{
	char out[256] = "";
	size_t got = 0;
	int p[2], status = 0;
	long long end = baton_mono_ms() + TRY_MS;
	pid_t pid;

	if (access(bin, X_OK)) {
		snprintf(why, len, "%.300s cannot be executed: %s", bin, strerror(errno));
		return -errno;
	}
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(p[1], 1);
		execl(bin, bin, "--version", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (got < sizeof(out) - 1) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		long long left = end - baton_mono_ms();
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			break;
		n = read(p[0], out + got, sizeof(out) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	out[got] = '\0';
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (baton_mono_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(why, len, "%.300s --version did not finish within %d ms", bin, TRY_MS);
			return -ETIMEDOUT;
		}
		usleep(5000);
	}
	(void)s;
	if (!WIFEXITED(status) || WEXITSTATUS(status) || strncmp(out, "baton ", 6)) {
		out[strcspn(out, "\n")] = '\0';
		snprintf(why, len, "%.300s --version %s (printed \"%.60s\"): not a baton that can run here", bin,
			 WIFEXITED(status) ? "failed" : "crashed", out);
		return -ENOEXEC;
	}
	return 0;
}

static void keep_open(int fd, bool keep)
{
	int fl;

	if (fd < 0 || (fl = fcntl(fd, F_GETFD)) < 0)
		return;
	fcntl(fd, F_SETFD, keep ? fl & ~FD_CLOEXEC : fl | FD_CLOEXEC);
}

int upgrade_start(struct sup *s, int client)
{
	struct client *c = client >= 0 ? &s->cl[client] : NULL;
	char bin[PATH_MAX], why[512] = "", env[96];
	int r;

	if (s->stopping || s->reload >= 0) {
		snprintf(why, sizeof(why), "%s: try again when it is done",
			 s->stopping ? "the supervisor is stopping" : "a reload is in progress");
		r = -EBUSY;
		goto fail;
	}
	if (baton_group_mode(s->grp[0]) == BATON_MODE_EBPF && !s->pin_root[0]) {
		/* the old program stays attached and its map keeps the sockets:
		 * the new process could not put them into maps of its own */
		snprintf(why, sizeof(why), "the steering maps are not pinned (no bpffs), so the re-executed supervisor "
			 "could not take the generations' sockets back; mount bpffs at /sys/fs/bpf (or $BATON_BPFFS; in "
			 "a container: -v /sys/fs/bpf:/sys/fs/bpf) before baton starts");
		r = -EOPNOTSUPP;
		goto fail;
	}
	if ((r = new_binary(bin, sizeof(bin)))) {
		snprintf(why, sizeof(why), "cannot find this supervisor's binary: %s", strerror(-r));
		goto fail;
	}
	if (!s->argv || !s->argv[0]) {
		snprintf(why, sizeof(why), "this supervisor does not know its own command line");
		r = -EINVAL;
		goto fail;
	}
	if ((r = try_binary(s, bin, why, sizeof(why))))
		goto fail;
	if (c)
		client_send(c, "step %s starts: re-executing supervisor pid %d in place", bin, (int)getpid());
	say(s, "upgrade: re-executing %s as pid %d", bin, (int)getpid());
	state_save(s);
	/* the name's locks cross the exec held: no start of the same name
	 * slips in while this one re-executes */
	snprintf(env, sizeof(env), "%d,%d,%d,%d,%d", s->ctlfd, s->notifyfd, c ? c->fd : -1, s->lockfd,
		 s->pinlockfd);
	setenv(UPGRADE_ENV, env, 1);
	keep_open(s->ctlfd, true);
	keep_open(s->notifyfd, true);
	keep_open(s->lockfd, true);
	keep_open(s->pinlockfd, true);
	if (c)
		keep_open(c->fd, true);
	mhttp_exec(s, true);
	sdn_upgrade_pass(s, true);	/* which sockets are systemd's */
	fflush(NULL);
	execv(bin, s->argv);
	r = -errno;
	snprintf(why, sizeof(why), "exec %.300s failed: %s", bin, strerror(errno));
	unsetenv(UPGRADE_ENV);
	sdn_upgrade_pass(s, false);
	keep_open(s->ctlfd, false);
	keep_open(s->notifyfd, false);
	keep_open(s->lockfd, false);
	keep_open(s->pinlockfd, false);
	if (c)
		keep_open(c->fd, false);
	mhttp_exec(s, false);
fail:
	say_err(s, "upgrade refused: %s; this supervisor keeps running", why);
	if (c)
		client_send(c, "error upgrade refused: %s; the running supervisor (pid %d) keeps serving", why,
			    (int)getpid());
	return r;
}

bool upgrade_inherit(struct sup *s)
{
	const char *env = getenv(UPGRADE_ENV);
	int ctl, notify, client, lock = -1, pinlock = -1;

	/* a supervisor without its sockets (a read-only runtime directory)
	 * still hands over its locks: control.c binds what is missing */
	if (!env || sscanf(env, "%d,%d,%d,%d,%d", &ctl, &notify, &client, &lock, &pinlock) < 3 ||
	    (ctl < 0 && notify < 0 && lock < 0))
		return false;
	unsetenv(UPGRADE_ENV);
	keep_open(ctl, false);
	keep_open(notify, false);
	keep_open(client, false);
	keep_open(lock, false);
	keep_open(pinlock, false);
	s->lockfd = lock >= 0 && fcntl(lock, F_GETFD) >= 0 ? lock : -1;
	s->pinlockfd = pinlock >= 0 && fcntl(pinlock, F_GETFD) >= 0 ? pinlock : -1;
	s->pins_ours = s->pinlockfd >= 0;
	s->ctlfd = ctl;
	s->notifyfd = notify;
	s->upgrade_client = client;
	return true;
}

/* Tells the client that asked for the upgrade how it went, from the new
 * binary's side of the exec. */
void upgrade_finish(struct sup *s)
{
	struct client tmp = { .fd = s->upgrade_client };

	say(s, "upgraded in place: baton %s now supervises as pid %d", BATON_VERSION, (int)getpid());
	if (s->upgrade_client < 0)
		return;
	client_send(&tmp, "ok upgraded: baton %s supervises as pid %d, the same pid; the generations kept serving",
		    BATON_VERSION, (int)getpid());
	close(s->upgrade_client);
	s->upgrade_client = -1;
}
