/* SPDX-License-Identifier: BSD-2-Clause */
/* The two systemd protocols baton speaks with the servers it runs: sd_notify
 * (receiving READY=1 and friends with the sender's credentials; sending, for
 * servers built on this library) and LISTEN_FDS (for servers). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define NOTIFY_MAX 4096

int baton_notify_open(const char *path)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd, one = 1, r;

	if (!path)
		return -EINVAL;
	if ((r = baton_unix_addr(path, &sun, &len)))
		return r;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (path[0] != '@')
		unlink(path);
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sun, len)) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void close_passed_fds(struct msghdr *mh)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int *fds = (int *)CMSG_DATA(c);
			size_t i, n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < n; i++)
				close(fds[i]);
		}
	}
}

/* The parse of one datagram, apart from the socket so that it can be
 * fuzzed: BUF holds N bytes of text from any process that can reach the
 * notify socket, and has room for a terminating NUL at BUF[N]. */
int baton_notify_parse(char *buf, size_t n, struct baton_notify_msg *msg)
{
	char *line, *save = NULL;

	if (n > NOTIFY_MAX)
		return -EMSGSIZE;
	buf[n] = '\0';
	if (memchr(buf, '\0', n))
		return -EBADMSG;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (!eq)
			return -EBADMSG;
		*eq = '\0';
		if (!strcmp(line, "READY"))
			msg->ready = !strcmp(eq + 1, "1");
		else if (!strcmp(line, "STOPPING"))
			msg->stopping = !strcmp(eq + 1, "1");
		else if (!strcmp(line, "RELOADING"))
			msg->reloading = !strcmp(eq + 1, "1");
		else if (!strcmp(line, "MAINPID"))
			msg->mainpid = (pid_t)atoi(eq + 1);
		else if (!strcmp(line, "ERRNO"))
			msg->errnum = atoi(eq + 1);
		else if (!strcmp(line, "BATON_LISTENING"))
			msg->listening = !strcmp(eq + 1, "1");
		else if (!strcmp(line, "STATUS"))
			snprintf(msg->status, sizeof(msg->status), "%s", eq + 1);
		/* other keys (WATCHDOG, FDSTORE, ...) are not used by baton */
	}
	return 0;
}

int baton_notify_recv(int fd, struct baton_notify_msg *msg)
{
	char buf[NOTIFY_MAX + 1];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = NOTIFY_MAX };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	ssize_t n;

	if (fd < 0 || !msg)
		return -EINVAL;
	memset(msg, 0, sizeof(*msg));
	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
	if (n < 0)
		return -errno;
	close_passed_fds(&mh);
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred uc;

			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
			msg->pid = uc.pid;
			msg->uid = uc.uid;
		}
	if (n > NOTIFY_MAX || (mh.msg_flags & MSG_TRUNC))
		return -EMSGSIZE;
	return baton_notify_parse(buf, (size_t)n, msg);
}

int baton_notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd, r;

	if (!state)
		return -EINVAL;
	if (!path || !*path)
		return 0;
	if ((r = baton_unix_addr(path, &sun, &len)))
		return r;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0 ? -errno : 1;
	close(fd);
	return r;
}

int baton_listen_fds(bool unset_env)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long n = 0, p;
	int i;

	if (!pid || !fds)
		goto out;
	p = strtol(pid, &end, 10);
	if (*end || p != (long)getpid())
		goto out;
	n = strtol(fds, &end, 10);
	if (*end || n < 0 || n > 1024) {
		n = -EINVAL;
		goto out;
	}
	/* As sd_listen_fds(3): an fd that is not open (or cannot be marked)
	 * is an error, not a socket to hand the caller. */
	for (i = 0; i < n; i++) {
		int fl = fcntl(3 + i, F_GETFD);

		if (fl < 0 || (!(fl & FD_CLOEXEC) && fcntl(3 + i, F_SETFD, fl | FD_CLOEXEC) < 0)) {
			n = -errno;
			goto out;
		}
	}
out:
	if (unset_env) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
	}
	return (int)n;
}
