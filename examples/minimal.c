/* SPDX-License-Identifier: BSD-2-Clause */
/* minimal: the smallest complete server for `baton run`, libc only. It takes
 * its listening sockets from LISTEN_FDS, says READY=1 on NOTIFY_SOCKET, answers
 * every request with "hello" and, on SIGTERM, stops accepting and exits.
 * Try: build/baton run --listen tcp://127.0.0.1:8080 -- build/minimal */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 16

/* sd_notify(3) in a few lines: one datagram to a path, or "@name" (abstract). */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = path ? strlen(path) : 0;
	int fd;

	if (n == 0 || n >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, n);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		perror("minimal: notify");
	if (fd >= 0)
		close(fd);
}

/* One request per connection: read the head, answer, close. A client that
 * sends nothing gets 2 s, so one slow client cannot hold the loop for long. */
static void serve(int c)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n";
	struct timeval tv = { .tv_sec = 2 };
	char buf[4096];
	size_t got = 0;
	ssize_t r;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(buf) - 1 && (r = read(c, buf + got, sizeof(buf) - 1 - got)) > 0) {
		buf[got += (size_t)r] = '\0';
		if (strstr(buf, "\r\n\r\n")) {
			if (write(c, resp, sizeof(resp) - 1) < 0)
				perror("minimal: write");
			break;
		}
	}
	close(c);
}

int main(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	struct pollfd p[MAX_FDS + 1];
	int i, n, sfd;
	sigset_t term;

	/* LISTEN_FDS counts sockets from fd 3, and is ours only if LISTEN_PID
	 * is our pid (the library does the same: baton_listen_fds()). */
	n = fds && pid && atoi(pid) == getpid() ? atoi(fds) : 0;
	if (n < 1 || n > MAX_FDS) {
		fprintf(stderr, "minimal: no listening sockets: run me under `baton run --listen SPEC`\n");
		return 1;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	/* SIGTERM arrives as a readable fd, so it never cuts a request short. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigprocmask(SIG_BLOCK, &term, NULL);
	sfd = signalfd(-1, &term, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("minimal: signalfd");
		return 1;
	}
	p[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	for (i = 0; i < n; i++) {
		/* ours alone (not leaked into children), and non-blocking: a
		 * process sharing the socket may win the race for a connection,
		 * and accept must then not hang the loop */
		int fd = 3 + i, fl = fcntl(fd, F_GETFL);

		if (fl < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) || fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
			fprintf(stderr, "minimal: fd %d from LISTEN_FDS: %s\n", fd, strerror(errno));
			return 1;
		}
		p[1 + i] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	notify("READY=1");
	for (;;) {
		if (poll(p, (nfds_t)n + 1, -1) < 0)
			continue;
		if (p[0].revents)
			break;
		for (i = 1; i <= n; i++) {
			int c = (p[i].revents & POLLIN) ? accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC) : -1;

			if (c >= 0)
				serve(c);	/* accepted sockets are blocking: Linux */
		}
	}
	/* Stop: close our copies of the listeners (what waits in their queues
	 * moves to the next generation), say so, and go. Every request taken
	 * was answered before the loop looked at the signal again. */
	for (i = 0; i < n; i++)
		close(3 + i);
	notify("STOPPING=1");
	return 0;
}
