/* SPDX-License-Identifier: BSD-2-Clause */
/* The control socket: one request line per client (`baton/1 reload`,
 * `status`, `stop`), answered with progress lines and a final ok/error;
 * peers are checked with SO_PEERCRED. */
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

#include "canary.h"
#include "cmd.h"
#include "control.h"
#include "core.h"
#include "gen.h"
#include "metrics.h"
#include "rundir.h"
#include "status.h"
#include "upgrade.h"
#include "ctlparse.h"
#include "util.h"

void client_send(struct client *c, const char *fmt, ...)
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

void client_close(struct sup *s, struct client *c)
{
	if (c->fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	free(c->big);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->role = CL_FREE;
}

/* A status document can be larger than the socket buffer: write it all,
 * blocking for at most a second per write, so a slow reader gets all of it
 * and a stuck one cannot hold the loop for long. */
static void send_all(struct sup *s, int fd, const char *buf, size_t len)
{
	struct timeval tv = { .tv_sec = 1 };
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0) {
			say_warn(s, "status reply cut short: %s", n < 0 ? strerror(errno) : "nothing sent");
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	fcntl(fd, F_SETFL, fl);
}

/* 30000 -> "30s", 1500 -> "1.5s", 250 -> "250ms": the form the options take. */
const char *fmt_duration(long long ms)
{
	static char buf[32];

	if (ms % 1000 == 0)
		snprintf(buf, sizeof(buf), "%llds", ms / 1000);
	else if (ms >= 1000)
		snprintf(buf, sizeof(buf), "%.1fs", (double)ms / 1000.0);
	else
		snprintf(buf, sizeof(buf), "%lldms", ms);
	return buf;
}

/* Says why start_reload returned R, if it refused. */
static bool reload_refused(struct sup *s, struct client *c, int r)
{
	if (stage_refused(s, c, r))
		;	/* a canary or probation under way, or --max-draining */
	else if (r == -EBUSY)
		client_send(c, "error a reload is already in progress (gen %d, started %lld ms ago)",
			    s->gen[s->reload].id, (baton_mono_us() - s->reload_start_us) / 1000);
	else if (r == -ESHUTDOWN)
		client_send(c, "error the supervisor is stopping");
	else if (r == -ENOENT)
		client_send(c, "error no generation serves yet (gen 1 is still starting)");
	return r != 0;
}

void handle_request(struct sup *s, int ci)
{
	struct client *c = &s->cl[ci];
	char *line = c->big ? c->big : c->buf, *cmd, *arg, *extra, *save = NULL;
	char *items = c->big ? c->big + strcspn(c->big, "\n") + 1 : NULL;	/* reload-with's */
	struct ctl_req req;
	int r;

	if (ctl_split(line, &req)) {
		client_send(c, "error unsupported protocol \"%s\" (this supervisor speaks %s)",
			    req.proto ? req.proto : "", SUP_PROTO);
		goto close;
	}
	cmd = req.cmd;
	if (cmd && (!strcmp(cmd, "reload") || !strcmp(cmd, "promote") || !strcmp(cmd, "rollback"))) {
		/* canary.c reads the options (key=value tokens) */
		r = stage_request(s, ci, cmd, req.rest);
		if (r)
			goto close;
		return;	/* the client waits for the outcome */
	}
	if (cmd && !strcmp(cmd, "reload-with") && c->big) {
		strtok_r(req.rest, " ", &save);	/* N: counted as the request came in */
		r = stage_want(s, c, save ? save : (char *)"");
		if (!r)
			r = cmd_reload_request(s, ci, items, c->items);
		stage_want_clear(s);
		if (r == -EPROTO || r == -EINVAL || reload_refused(s, c, r))
			goto close;
		return;
	}
	ctl_args(req.rest, &arg, &extra);
	if (!cmd) {
		client_send(c, "error no command (known: reload, reload-with, promote, rollback, status, stop, upgrade)");
		goto close;
	}
	if (extra) {
		client_send(c, "error unexpected argument \"%s\" for %s", extra, cmd);
		goto close;
	}
	if (!strcmp(cmd, "status") && (!arg || !strcmp(arg, "json") || !strcmp(arg, "text") || !strcmp(arg, "metrics"))) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		if (!f) {
			client_send(c, "error out of memory");
			goto close;
		}
		if (arg && !strcmp(arg, "metrics"))
			write_metrics(s, f);
		else
			write_status(s, f, arg && !strcmp(arg, "json"));
		fclose(f);
		client_send(c, "ok");
		send_all(s, c->fd, text, len);
		free(text);
		goto close;
	}
	if (!strcmp(cmd, "reload-with") && c->big) {
		r = cmd_reload_request(s, ci, items, c->items);
		if (r == -EPROTO || reload_refused(s, c, r))
			goto close;
		return;
	}
	if (arg) {
		client_send(c, "error unexpected argument \"%s\" for %s", arg, cmd);
		goto close;
	}
	if (!strcmp(cmd, "stop")) {
		c->role = CL_STOP;
		client_send(c, "step stopping every generation (grace %s)", fmt_duration(s->cfg->grace_ms));
		begin_stop(s, "baton stop");
		return;
	}
	if (!strcmp(cmd, "upgrade")) {
		if (upgrade_start(s, ci))
			goto close;
		return;	/* answered by the new binary, or with the reason it did not start */
	}
	client_send(c, "error unknown command \"%s\" (known: reload, reload-with, promote, rollback, status, stop, "
		       "upgrade)", cmd);
close:
	client_close(s, c);
}

void accept_client(struct sup *s)
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
		say_warn(s, "refused a control request from uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
		close(fd);
		return;
	}
	if (i == MAX_CLIENTS) {
		client_send(&tmp, "error busy: %d control connections are open (the limit); each idle one is closed "
				  "after %d ms: try again", MAX_CLIENTS, CLIENT_IDLE_MS);
		close(fd);
		return;
	}
	s->cl[i] = (struct client){ .role = CL_READING, .fd = fd, .deadline = baton_mono_ms() + CLIENT_IDLE_MS };
	ev.data.u32 = (uint32_t)i;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Are all of a reload-with's item lines in? Then it is handled. */
static void items_check(struct sup *s, int ci)
{
	struct client *c = &s->cl[ci];
	size_t lines = 0;

	for (char *p = c->big; (p = memchr(p, '\n', c->len - (size_t)(p - c->big))); p++)
		lines++;
	if (lines >= (size_t)c->items + 1) {
		handle_request(s, ci);
	} else if (c->len >= SUP_REQUEST_BIG) {
		client_send(c, "error request too long (a reload-with and its items: at most %d bytes)", SUP_REQUEST_BIG);
		client_close(s, c);
	}
}

/* `baton/1 reload-with N`: N item lines follow, in a buffer of their own. */
static void start_items(struct sup *s, int ci)
{
	struct client *c = &s->cl[ci];
	long n;

	if (ctl_items_count(c->buf, &n)) {
		client_send(c, "error reload-with wants a count of 0 to %d item lines, then the lines", SUP_ITEMS_MAX);
		client_close(s, c);
		return;
	}
	c->big = malloc(SUP_REQUEST_BIG + 1);
	if (!c->big) {
		client_send(c, "error out of memory for the request");
		client_close(s, c);
		return;
	}
	memcpy(c->big, c->buf, c->len + 1);
	c->items = (int)n;
	items_check(s, ci);
}

static void read_big(struct sup *s, int ci)
{
	struct client *c = &s->cl[ci];
	ssize_t n = recv(c->fd, c->big + c->len, SUP_REQUEST_BIG - c->len, MSG_DONTWAIT);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		client_close(s, c);
		return;
	}
	if (memchr(c->big + c->len, '\0', (size_t)n)) {
		client_send(c, "error malformed request: it holds a NUL byte");
		client_close(s, c);
		return;
	}
	c->len += (size_t)n;
	c->big[c->len] = '\0';
	items_check(s, ci);
}

void read_client(struct sup *s, int ci)
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
	if (c->big) {
		read_big(s, ci);
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
	} else if (strchr(c->buf, '\n') && !strncmp(c->buf, SUP_PROTO " reload-with ", sizeof(SUP_PROTO " reload-with ") - 1)) {
		start_items(s, ci);
	} else if (strchr(c->buf, '\n')) {
		handle_request(s, ci);
	} else if (c->len >= SUP_REQUEST_MAX) {
		client_send(c, "error request too long (at most %d bytes, ending in a newline)", SUP_REQUEST_MAX);
		client_close(s, c);
	}
}

/* A directory we cannot write (read-only mount, full inode table) must
 * not keep a restarted supervisor from taking its generations back: it
 * runs without the socket, degraded, and binds it once it can. */
static bool soft(int r)
{
	return r == -EROFS || r == -EACCES || r == -ENOSPC || r == -EDQUOT;
}

static void sockets_degraded(struct sup *s, int r)
{
	char dir[4096] = "";

	sup_runtime_dir(dir, sizeof(dir));
	if (!s->ctl_err[0])
		say_err(s, "cannot bind %s in %s: %s; running without it until it can (retried): baton "
			   "status/reload/stop cannot reach this supervisor meanwhile", s->ctlfd < 0 ? "the control "
			   "socket" : "the notify socket", dir, strerror(-r));
	snprintf(s->ctl_err, sizeof(s->ctl_err), "no %s socket: %s in %s", s->ctlfd < 0 ? "control" : "notify",
		 strerror(-r), dir);
	s->ctl_retry_ms = s->ctl_retry_ms ? s->ctl_retry_ms * 2 : BACKOFF_MIN_MS;
	if (s->ctl_retry_ms > BACKOFF_MAX_MS)
		s->ctl_retry_ms = BACKOFF_MAX_MS;
	s->ctl_retry_at = baton_mono_ms() + s->ctl_retry_ms;
}

/* The control and notify sockets, each bound if it is not yet. */
static int bind_sockets(struct sup *s)
{
	char name[BATON_NAME_MAX + 16];
	int fd, r, one = 1;

	if (s->ctlfd < 0) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		snprintf(name, sizeof(name), "%s.sock", s->name);
		r = rundir_bind(s, fd, name);	/* a stale one of ours goes: nobody answered */
		if (!r && listen(fd, 16))
			r = -errno;
		if (r) {
			close(fd);
			if (soft(r)) {
				sockets_degraded(s, r);
				return 0;
			}
			say_err(s, "cannot listen on %s: %s", s->ctl_path, strerror(-r));
			return r;
		}
		s->ctlfd = fd;
	}
	if (s->notifyfd < 0) {
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		snprintf(name, sizeof(name), "%s.notify", s->name);
		r = setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ? -errno : rundir_bind(s, fd, name);
		if (r) {
			close(fd);
			if (soft(r)) {
				sockets_degraded(s, r);
				return 0;
			}
			say_err(s, "cannot open the notify socket %s: %s", s->notify_path, strerror(-r));
			return r;
		}
		s->notifyfd = fd;
	}
	if (s->ctl_err[0])
		say(s, "bound the control and notify sockets in the runtime directory: no longer degraded (%s)",
		    s->ctl_err);
	s->ctl_err[0] = '\0';
	s->ctl_retry_ms = 0;
	return 0;
}

void control_retry(struct sup *s, long long now)
{
	struct epoll_event ev = { .events = EPOLLIN };
	bool ctl = s->ctlfd < 0, notify = s->notifyfd < 0;

	if (!s->ctl_err[0] || now < s->ctl_retry_at || s->stopping)
		return;
	rundir_reopen(s);
	if (bind_sockets(s))
		return;
	if (ctl && s->ctlfd >= 0) {
		ev.data.u32 = EV_CONTROL;
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->ctlfd, &ev);
	}
	if (notify && s->notifyfd >= 0) {
		ev.data.u32 = EV_NOTIFY;
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->notifyfd, &ev);
	}
}

/* The control socket: mode 0600 in a 0700 directory of ours (rundir.c).
 * The name's lock is taken first: a second `baton run` of a name that
 * runs stops there, having created and removed nothing. */
int open_control(struct sup *s)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[4096];
	bool inherited = s->lockfd >= 0 || s->ctlfd >= 0 || s->notifyfd >= 0;	/* across `baton upgrade` */
	int fd, r;

	if ((r = rundir_open(s)) || (r = rundir_lock(s)))
		return r;
	sup_runtime_dir(dir, sizeof(dir));
	if ((r = sup_socket_path(s->name, "sock", s->ctl_path, sizeof(s->ctl_path))) ||
	    (r = sup_socket_path(s->name, "notify", s->notify_path, sizeof(s->notify_path)))) {
		say_err(s, "runtime directory path is too long for a socket: %s", dir);
		return r;
	}
	if (s->ctlfd >= 0 && s->notifyfd >= 0)
		return 0;	/* inherited across `baton upgrade`: never closed, no client turned away */
	if (inherited)
		return bind_sockets(s);	/* an upgrade of one that ran without a socket: no one else's */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->ctl_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a supervisor of an older baton holds no lock, but answers */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		say_err(s, "a supervisor named \"%s\" already runs (control socket %s); pick another --name", s->name,
		    s->ctl_path);
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	return bind_sockets(s);
}
