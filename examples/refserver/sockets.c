/* SPDX-License-Identifier: BSD-2-Clause */
/* Where refserver's listening sockets come from (LISTEN_FDS, or --listen
 * when run by hand) and how it says it is ready (sd_notify without
 * libsystemd): the part of a server that baton run needs. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "refserver.h"

/* LISTEN_FDS as sd_listen_fds(1) reads it: only if LISTEN_PID is us (the
 * variables may have been inherited from a parent they were meant for), fds
 * from 3, names from LISTEN_FDNAMES; the variables are then removed so no
 * child of ours mistakes them for its own. */
int take_listen_fds(struct server *s)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char namebuf[1024] = "", *save = NULL, *name;
	long n = 0;
	int i, r = 0;

	if (!fds)
		goto out;
	if (!pid || strtol(pid, NULL, 10) != (long)s->pid) {
		say(true, "ignoring LISTEN_FDS=%s: LISTEN_PID=%s is not this process (%d)", fds,
		    pid ? pid : "(unset)", (int)s->pid);
		goto out;
	}
	n = strtol(fds, NULL, 10);
	if (n < 1 || n > MAX_LISTEN) {
		say(true, "LISTEN_FDS=%s: expected 1 to %d", fds, MAX_LISTEN);
		r = -EINVAL;
		goto out;
	}
	if (names)
		snprintf(namebuf, sizeof(namebuf), "%s", names);
	name = strtok_r(namebuf, ":", &save);
	for (i = 0; i < n; i++, name = name ? strtok_r(NULL, ":", &save) : NULL) {
		int fd = 3 + i, acc = 0, fl;
		socklen_t len = sizeof(acc);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc) {
			say(true, "LISTEN_FDS: fd %d is not a listening socket", fd);
			r = -EINVAL;
			goto out;
		}
		/* ours alone from now on: not leaked into anything we might run,
		 * and never blocking the loop when another process won the race
		 * for a connection on a shared socket */
		fl = fcntl(fd, F_GETFL);
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
			say(true, "fd %d: %s", fd, strerror(errno));
			r = -errno;
			goto out;
		}
		s->ls[s->nls].kind = K_LISTEN;
		s->ls[s->nls].fd = fd;
		snprintf(s->ls[s->nls].name, sizeof(s->ls[0].name), "%s", name ? name : "unknown");
		s->nls++;
	}
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return r;
}

/* --listen HOST:PORT (or [V6]:PORT) for running by hand, without a supervisor. */
int bind_own(struct server *s, const char *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
	struct addrinfo *ai = NULL;
	char host[256];
	const char *colon = strrchr(spec, ':'), *h = spec;
	size_t hl;
	int fd = -1, one = 1, e;

	if (!colon || !colon[1]) {
		say(true, "--listen %s: expected HOST:PORT", spec);
		return -EINVAL;
	}
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']')
		h++, hl -= 2;
	if (hl >= sizeof(host)) {
		say(true, "--listen %s: host too long", spec);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	e = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &ai);
	if (e) {
		say(true, "--listen %s: %s", spec, gai_strerror(e));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* --reuseport: join a group with other servers on the port, as
	 * nginx's "listen ... reuseport" does (baton steer's scenario) */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (s->o.reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4096)) {
		e = errno;
		say(true, "--listen %s: %s", spec, strerror(e));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -e;
	}
	freeaddrinfo(ai);
	s->ls[s->nls].kind = K_LISTEN;
	s->ls[s->nls].fd = fd;
	snprintf(s->ls[s->nls].name, sizeof(s->ls[0].name), "%s", spec);
	s->nls++;
	return 0;
}

/* sd_notify(3) without libsystemd: one datagram to the path in NOTIFY_SOCKET,
 * or to an abstract address if it starts with '@'. */
int notify(struct server *s, const char *msg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(s->notify);
	socklen_t alen;
	int fd, r = 0;

	if (!len)
		return 0;
	memcpy(sun.sun_path, s->notify, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen) < 0) {
		r = -errno;
		say(true, "cannot notify %s: %s", s->notify, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return r;
}

void send_ready(struct server *s)
{
	char msg[64];

	s->ready_at_ms = -1;
	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\n", (int)s->pid);
	if (s->notify[0] && notify(s, msg) == 0)
		say(false, "ready (told %s)", s->notify);
	if (s->o.fail_after_ms)
		s->fail_at_ms = now_ms() + s->o.fail_after_ms;
}
