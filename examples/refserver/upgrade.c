/* SPDX-License-Identifier: BSD-2-Clause */
/* refserver --upgrade-socket: upgrading in place through baton's handover
 * protocol (baton_handover_wire.h). On SIGUSR2 it starts its successor,
 * offers it the listening sockets, and stops once the successor accepts. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "refserver.h"

#define HANDOVER_TIMEOUT_MS 5000

static struct { enum kind kind; } uplisten_ev = { K_UPLISTEN }, upconn_ev = { K_UPCONN };

/* The successor's side: takes the listening sockets from the process that
 * started us. The connection stays open (s->handed_conn) until we accept
 * from them: the acknowledgement tells the old process it may drain. */
int take_handover(struct server *s, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	long long deadline = baton_handover_now_ms() + HANDOVER_TIMEOUT_MS;
	int fds[MAX_LISTEN], fd, r, i;
	struct baton_handover_fdset set = { .fds = fds, .cap = MAX_LISTEN };
	struct baton_handover_hdr h = baton_handover_hdr_make(BATON_HANDOVER_HELLO, 0, 0);
	char payload[MAX_LISTEN * (BATON_HANDOVER_NAME_MAX + 1)], err[256] = "";
	const char *names[MAX_LISTEN];
	struct baton_handover_cred peer = { 0 };
	bool tell = true;
	size_t got;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		say(true, "%s=%s: path too long", BATON_HANDOVER_ENV, path);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		/* EAGAIN: the old process's backlog is full for a moment */
		if (errno != EAGAIN || baton_handover_now_ms() > deadline) {
			r = -errno;
			snprintf(err, sizeof(err), "cannot connect: %s", strerror(errno));
			goto fail;
		}
		usleep(10000);
	}
	if ((r = baton_handover_peer_check(fd, &peer, err, sizeof(err))))
		goto fail;
	r = baton_handover_send(fd, &h, NULL, NULL, 0, deadline);
	if (r && r != -EPIPE) {
		snprintf(err, sizeof(err), "sending HELLO: %s", strerror(-r));
		goto fail;
	}
	if ((r = baton_handover_recv(fd, &h, sizeof(h), &set, deadline, &got)) ||
	    (r = baton_handover_hdr_check(&h, BATON_HANDOVER_FDS, MAX_LISTEN, err, sizeof(err))) ||
	    (r = baton_handover_recv(fd, payload, h.len, &set, deadline, &got))) {
		if (!err[0])
			snprintf(err, sizeof(err), "receiving the sockets: %s%s", strerror(-r),
				 r == -EMSGSIZE ? " (more than " STR(MAX_LISTEN) " fds, or the fd limit)" : "");
		goto fail;
	}
	if (h.type == BATON_HANDOVER_ERROR) {
		r = -(int)h.count;
		tell = false;
		snprintf(err, sizeof(err), "refused: %.*s", (int)h.len, payload);
		goto fail;
	}
	if (set.n != h.count) {
		r = -EBADMSG;
		snprintf(err, sizeof(err), "%u fds announced, %zu arrived", (unsigned)h.count, set.n);
		goto fail;
	}
	if ((r = baton_handover_names_parse(payload, h.len, h.count, names, err, sizeof(err))))
		goto fail;
	for (i = 0; i < (int)set.n; i++) {
		int acc = 0, fl = fcntl(fds[i], F_GETFL);
		socklen_t len = sizeof(acc);

		if (getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc || fl < 0 ||
		    fcntl(fds[i], F_SETFL, fl | O_NONBLOCK)) {
			r = -EINVAL;
			snprintf(err, sizeof(err), "fd \"%s\" is not a listening socket", names[i]);
			goto fail;
		}
	}
	for (i = 0; i < (int)set.n; i++) {
		s->ls[s->nls].kind = K_LISTEN;
		s->ls[s->nls].fd = fds[i];
		snprintf(s->ls[s->nls].name, sizeof(s->ls[0].name), "%s", names[i]);
		s->nls++;
	}
	s->handed_conn = fd;
	say(false, "took %zu socket(s) from pid %d through %s", set.n, (int)peer.pid, path);
	return 0;
fail:
	say(true, "taking the sockets from %s (pid %d): %s", path, (int)peer.pid, err);
	if (tell) {
		struct baton_handover_hdr e = baton_handover_hdr_make(BATON_HANDOVER_ERROR, (uint32_t)-r,
								      (uint32_t)strlen(err));

		baton_handover_send(fd, &e, err, NULL, 0, baton_handover_now_ms() + 100);
	}
	baton_handover_fdset_close(&set);
	close(fd);
	return r;
}

/* Our own offer at --upgrade-socket, bound at a temporary name and renamed
 * over the path: the process we took over from may still be draining there,
 * and a successor of ours must always find a live offer. */
int offer_open(struct server *s)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = s->o.upgrade_socket;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &uplisten_ev };
	struct stat st;
	int n;

	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.%d.tmp", path, (int)s->pid);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		say(true, "--upgrade-socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	s->upfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(sun.sun_path);
	if (s->upfd < 0 || bind(s->upfd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(sun.sun_path, 0600) ||
	    listen(s->upfd, 4) || rename(sun.sun_path, path) || stat(path, &st) ||
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->upfd, &e)) {
		n = -errno;
		say(true, "--upgrade-socket %s: %s", path, strerror(errno));
		unlink(sun.sun_path);
		return n;
	}
	s->updev = st.st_dev;
	s->upino = st.st_ino;
	return 0;
}

void offer_close(struct server *s)
{
	struct stat st;

	if (s->upconn >= 0)
		close(s->upconn);
	s->upconn = -1;
	if (s->upfd < 0)
		return;
	close(s->upfd);
	s->upfd = -1;
	/* a successor has put its own offer there by now: leave that one */
	if (!stat(s->o.upgrade_socket, &st) && st.st_dev == s->updev && st.st_ino == s->upino)
		unlink(s->o.upgrade_socket);
}

/* Ends the exchange with a taker; with WHY, tells it why first. */
static void upconn_end(struct server *s, int err, const char *why)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &uplisten_ev };

	if (why) {
		struct baton_handover_hdr h = baton_handover_hdr_make(BATON_HANDOVER_ERROR, (uint32_t)err,
								      (uint32_t)strlen(why));

		say(true, "handover to pid %d: %s; still serving", (int)s->uppeer.pid, why);
		baton_handover_send(s->upconn, &h, why, NULL, 0, now_ms() + 100);
	}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, s->upconn, NULL);
	close(s->upconn);
	s->upconn = -1;
	if (s->upfd >= 0)
		epoll_ctl(s->ep, EPOLL_CTL_ADD, s->upfd, &e);
}

/* A taker connected: check it, read its HELLO, send our sockets. It sends
 * HELLO right after connecting, so the wait is short and bounded. */
void offer_accept(struct server *s)
{
	struct baton_handover_hdr h;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &upconn_ev };
	char err[256] = "", names[MAX_LISTEN * (BATON_HANDOVER_NAME_MAX + 1)];
	int fds[MAX_LISTEN], i, r;
	size_t got, off = 0;

	s->upconn = accept4(s->upfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s->upconn < 0)
		return;
	epoll_ctl(s->ep, EPOLL_CTL_DEL, s->upfd, NULL);	/* one taker at a time */
	if (baton_handover_peer_check(s->upconn, &s->uppeer, err, sizeof(err))) {
		upconn_end(s, EPERM, err);
		return;
	}
	r = baton_handover_recv(s->upconn, &h, sizeof(h), NULL, now_ms() + 1000, &got);
	if (r || (r = baton_handover_hdr_check(&h, BATON_HANDOVER_HELLO, 0, err, sizeof(err)))) {
		if (!err[0])
			snprintf(err, sizeof(err), "no request: %s", strerror(-r));
		upconn_end(s, -r, err);
		return;
	}
	for (i = 0; i < s->nls; i++) {
		/* names of --listen sockets are HOST:PORT: no ':' on the wire */
		char *n = names + off, *c;

		off += (size_t)snprintf(n, BATON_HANDOVER_NAME_MAX + 1, "%s", s->ls[i].name) + 1;
		for (c = n; *c; c++)
			if (*c == ':' || *c < 0x20 || *c > 0x7e)
				*c = '_';
		fds[i] = s->ls[i].fd;
	}
	h = baton_handover_hdr_make(BATON_HANDOVER_FDS, (uint32_t)s->nls, (uint32_t)off);
	r = baton_handover_send(s->upconn, &h, names, fds, (size_t)s->nls, now_ms() + 1000);
	if (r) {
		snprintf(err, sizeof(err), "sending the sockets: %s", strerror(-r));
		upconn_end(s, -r, err);
		return;
	}
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->upconn, &e))
		upconn_end(s, errno, "epoll");
}

/* The taker answered: ACK means it accepts from the sockets now. */
void offer_answer(struct server *s)
{
	struct baton_handover_hdr h;
	char err[256] = "", text[BATON_HANDOVER_ERRTEXT_MAX];
	char why[64];
	size_t got;
	int r;

	r = baton_handover_recv(s->upconn, &h, sizeof(h), NULL, now_ms() + 1000, &got);
	if (r == -ECONNRESET) {
		say(true, "handover to pid %d: it hung up before it served; still serving", (int)s->uppeer.pid);
		upconn_end(s, 0, NULL);
		return;
	}
	if (r || (r = baton_handover_hdr_check(&h, BATON_HANDOVER_ACK, 0, err, sizeof(err)))) {
		if (!err[0])
			snprintf(err, sizeof(err), "%s", strerror(-r));
		upconn_end(s, -r, err);
		return;
	}
	if (h.type == BATON_HANDOVER_ERROR) {
		r = baton_handover_recv(s->upconn, text, h.len, NULL, now_ms() + 1000, &got);
		say(true, "handover to pid %d: it refused: %.*s; still serving", (int)s->uppeer.pid,
		    r ? 0 : (int)h.len, text);
		upconn_end(s, 0, NULL);
		return;
	}
	snprintf(why, sizeof(why), "pid %d took over", (int)s->uppeer.pid);
	begin_stop(s, why);
}

/* SIGUSR2: start our successor, the same command line with
 * BATON_HANDOVER_FROM set. execvp, not /proc/self/exe: an upgrade runs the
 * binary now installed under our name. */
void start_successor(struct server *s)
{
	sigset_t none;
	pid_t pid;

	if (s->stopping || s->successor || s->upfd < 0) {
		say(true, "SIGUSR2: %s; ignored", s->stopping ? "stopping already" : "an upgrade is under way");
		return;
	}
	pid = fork();
	if (pid < 0) {
		say(true, "SIGUSR2: fork: %s; still serving", strerror(errno));
		return;
	}
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setenv(BATON_HANDOVER_ENV, s->o.upgrade_socket, 1);
		execvp(s->argv[0], s->argv);
		fprintf(stderr, "refserver: cannot run %s: %s\n", s->argv[0], strerror(errno));
		_exit(127);
	}
	s->successor = pid;
	say(false, "SIGUSR2: started successor pid %d", (int)pid);
}

void reap(struct server *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != s->successor)
			continue;
		s->successor = 0;
		if (!s->stopping)
			say(true, "successor pid %d %s %d before it took over; still serving", (int)pid,
			    WIFEXITED(status) ? "exited with status" : "was killed by signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		if (s->upconn >= 0 && s->uppeer.pid == pid)
			upconn_end(s, 0, NULL);
	}
}
