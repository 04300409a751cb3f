/* SPDX-License-Identifier: BSD-2-Clause */
/* Handover between processes: a server offers its listening sockets on a
 * unix socket and its successor takes them (the wire format is in
 * include/baton_handover_wire.h). The offering side is a small state machine
 * behind one pollable fd; the taking side is one blocking call with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "baton_handover_wire.h"
#include "internal.h"

#define HDR sizeof(struct baton_handover_hdr)

enum hstate { H_IDLE, H_HELLO, H_ACK };

struct baton_handover {
	struct baton_handover_opts o;
	int lfd, ep, tfd, cfd;       /* listening socket, epoll set, deadline timer, taker */
	enum hstate st;
	long long deadline_ms;       /* of the current exchange */
	struct baton_handover_cred peer;
	char in[HDR + BATON_HANDOVER_ERRTEXT_MAX];
	size_t inlen;
	int *fds;
	size_t n;
	char *payload;               /* the names, as they go on the wire */
	uint32_t paylen;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	bool is_file;
	dev_t dev;
	ino_t ino;
};

/* The caller's options with the defaults filled in; -EINVAL for options
 * of a newer library (see "extensible structs" in baton.h). */
static int copy_opts(struct baton_handover_opts *o, const struct baton_handover_opts *in)
{
	int r = BATON_OPTS_COPY(o, in, baton_handover_opts, defer_ack);

	if (r)
		return r;
	if (!o->mode)
		o->mode = 0600;
	if (o->hello_timeout_ms <= 0)
		o->hello_timeout_ms = 1000;
	if (o->ack_timeout_ms <= 0)
		o->ack_timeout_ms = 30000;
	if (!o->max_fds || o->max_fds > BATON_HANDOVER_MAX_FDS)
		o->max_fds = BATON_HANDOVER_MAX_FDS;
	return 0;
}

/* ---- offering side ---------------------------------------------------------- */

/* A socket file is stale when nothing accepts on it any more. */
static bool path_is_live(const struct sockaddr_un *sun, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool live;

	if (fd < 0)
		return true;	/* cannot tell: do not remove it */
	live = connect(fd, (const struct sockaddr *)sun, len) == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

#define RANDOM_X 6      /* "@name-XXXXXX": at least this many X make a random name */

/* An abstract name is anyone's to take: one a successor is told rather
 * than one it derives (a fixed name, a pid) cannot be bound first by
 * another user, who would block the upgrade. Replaces the trailing X's of
 * PATH with random letters and digits (getrandom); -errno if no
 * randomness is available, 1 if PATH asks for none. */
static int randomize(char *path)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[64];
	size_t n = strlen(path), x = 0;

	while (x < n - 1 && path[n - 1 - x] == 'X')
		x++;
	if (path[0] != '@' || x < RANDOM_X)
		return 1;
	if (x > sizeof(rnd))
		x = sizeof(rnd);
	if (getrandom(rnd, x, 0) != (ssize_t)x)
		return errno ? -errno : -EIO;
	for (size_t i = 0; i < x; i++)
		path[n - x + i] = chars[rnd[i] % (sizeof(chars) - 1)];
	return 0;
}

static int offer_bind(struct baton_handover *h, const char *asked)
{
	struct sockaddr_un sun;
	socklen_t len;
	struct stat st;
	char path[sizeof(h->path)];
	int r, tries = 0;

	snprintf(path, sizeof(path), "%s", asked);
again:
	r = randomize(path);
	if (r < 0) {
		baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_ERROR, "handover: no random name for %s: %s", asked,
			   strerror(-r));
		return r;
	}
	if ((r = baton_unix_addr(path, &sun, &len))) {
		baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_ERROR,
			   "handover: \"%s\" is not a usable unix socket address (at most %zu bytes, \"@name\" for "
			   "the abstract namespace)", path, sizeof(sun.sun_path) - 1);
		return r;
	}
	h->is_file = path[0] != '@';
	if (bind(h->lfd, (struct sockaddr *)&sun, len) == 0)
		goto bound;
	r = -errno;
	if (r == -EADDRINUSE && h->is_file && !path_is_live(&sun, len)) {
		unlink(path);	/* left behind by a process that died */
		if (bind(h->lfd, (struct sockaddr *)&sun, len) == 0)
			goto bound;
		r = -errno;
	}
	if (r == -EADDRINUSE && strcmp(path, asked) && ++tries < 8) {
		snprintf(path, sizeof(path), "%s", asked);	/* a random name taken: another one */
		goto again;
	}
	if (r == -EADDRINUSE)
		baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_ERROR,
			   "handover: another process offers at %s; it must close its offer first%s", path,
			   path[0] == '@' ? " (an abstract name can be taken by any user: offer at a path in a 0700 "
					    "directory, or end the name in XXXXXX for a random one)" : "");
	else
		baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_ERROR, "handover: cannot bind %s: %s", path,
			   strerror(-r));
	return r;
bound:
	snprintf(h->path, sizeof(h->path), "%s", path);
	if (h->is_file) {
		if (chmod(path, h->o.mode) || stat(path, &st)) {
			r = -errno;
			unlink(path);
			h->is_file = false;
			baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_ERROR, "handover: %s: %s", path, strerror(-r));
			return r;
		}
		h->dev = st.st_dev;
		h->ino = st.st_ino;
	}
	return 0;
}

struct baton_handover *baton_handover_offer(const char *path, const int *fds, const char *const *names, size_t n,
					    const struct baton_handover_opts *opts)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct baton_handover *h;
	size_t i, off = 0;
	int r = -EINVAL;

	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->lfd = h->ep = h->tfd = h->cfd = -1;
	if ((r = copy_opts(&h->o, opts)))
		goto fail;
	if (!path || !fds) {
		r = -EINVAL;
		goto fail;
	}
	if (n == 0 || n > BATON_HANDOVER_MAX_FDS) {
		baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_ERROR,
			   "handover: %zu fds offered; one handover carries 1 to %d", n, BATON_HANDOVER_MAX_FDS);
		r = n ? -E2BIG : -EINVAL;
		goto fail;
	}
	h->fds = calloc(n, sizeof(int));
	h->payload = malloc(n * (BATON_HANDOVER_NAME_MAX + 1));
	if (!h->fds || !h->payload) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < n; i++)
		h->fds[i] = -1;
	h->n = n;	/* baton_handover_free closes the copies made so far */
	for (i = 0; i < n; i++) {
		const char *name = names && names[i] ? names[i] : "unknown";
		size_t nl = strlen(name);

		if (!baton_handover_name_ok(name, nl)) {
			baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_ERROR,
				   "handover: name %zu \"%.64s\" is not a valid fd name (1 to %d printable "
				   "characters, no ':')", i, name, BATON_HANDOVER_NAME_MAX);
			r = -EINVAL;
			goto fail;
		}
		memcpy(h->payload + off, name, nl + 1);
		off += nl + 1;
		/* our own copies: the caller may close its fds, or exit */
		h->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (h->fds[i] < 0) {
			r = -errno;
			baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_ERROR, "handover: fd %d (%s): %s", fds[i],
				   name, strerror(-r));
			goto fail;
		}
	}
	h->paylen = (uint32_t)off;
	h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	h->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->lfd < 0 || h->ep < 0 || h->tfd < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = offer_bind(h, path)))
		goto fail;
	ev.data.fd = h->lfd;
	if (listen(h->lfd, 16) || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->lfd, &ev)) {
		r = -errno;
		goto fail;
	}
	ev.data.fd = h->tfd;
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->tfd, &ev)) {
		r = -errno;
		goto fail;
	}
	baton_logf(h->o.log, h->o.log_ctx, BATON_LOG_DEBUG, "handover: offering %zu socket(s) at %s", n, path);
	return h;
fail:
	baton_handover_free(h);
	errno = -r;
	return NULL;
}

int baton_handover_fd(const struct baton_handover *h)
{
	return h ? h->ep : -EINVAL;
}

static void arm(struct baton_handover *h, int ms)
{
	struct itimerspec its = { 0 };

	if (ms > 0) {
		h->deadline_ms = baton_mono_ms() + ms;
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (long)(ms % 1000) * 1000000;
	}
	timerfd_settime(h->tfd, 0, &its, NULL);
}

static void send_error(int fd, int err, const char *text)
{
	size_t len = strlen(text);
	struct baton_handover_hdr hdr;

	if (len > BATON_HANDOVER_ERRTEXT_MAX)
		len = BATON_HANDOVER_ERRTEXT_MAX;
	hdr = baton_handover_hdr_make(BATON_HANDOVER_ERROR, (uint32_t)err, (uint32_t)len);
	/* best effort: the peer may be gone already */
	baton_handover_send(fd, &hdr, text, NULL, 0, baton_mono_ms() + 100);
}

/* Ends the exchange with the current taker and goes back to listening.
 * R is what serve returns; TELL: send the reason to the taker first. */
static int end_exchange(struct baton_handover *h, int r, bool tell, enum baton_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int end_exchange(struct baton_handover *h, int r, bool tell, enum baton_log_level level, const char *fmt, ...)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = h->lfd };
	char msg[BATON_HANDOVER_ERRTEXT_MAX];
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		baton_logf(h->o.log, h->o.log_ctx, level, "handover at %s: %s", h->path, msg);
		if (tell && r < 0)
			send_error(h->cfd, -r, msg);
	}
	if (h->cfd >= 0)
		close(h->cfd);	/* leaves the epoll set with it */
	h->cfd = -1;
	h->st = H_IDLE;
	h->inlen = 0;
	arm(h, 0);
	epoll_ctl(h->ep, EPOLL_CTL_ADD, h->lfd, &ev);
	return r;
}

static int start_exchange(struct baton_handover *h)
{
	struct epoll_event ev = { .events = EPOLLIN };
	char err[256];
	int cfd, r;

	cfd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED ? 0 : -errno;
	h->cfd = cfd;
	h->inlen = 0;
	/* one taker at a time: the next waits in the backlog */
	epoll_ctl(h->ep, EPOLL_CTL_DEL, h->lfd, NULL);
	if ((r = baton_handover_peer_check(cfd, &h->peer, err, sizeof(err))))
		return end_exchange(h, r, true, BATON_LOG_WARN, "%s", err);
	ev.data.fd = cfd;
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, cfd, &ev))
		return end_exchange(h, -errno, false, BATON_LOG_ERROR, "epoll: %s", strerror(errno));
	h->st = H_HELLO;
	arm(h, h->o.hello_timeout_ms);
	return 0;
}

/* Reads what the taker sent so far. Returns 1 with a whole message in
 * h->in, 0 when more is to come, or the end of the exchange. */
static int read_msg(struct baton_handover *h)
{
	enum baton_handover_type want = h->st == H_HELLO ? BATON_HANDOVER_HELLO : BATON_HANDOVER_ACK;
	const struct baton_handover_hdr *hdr = (const struct baton_handover_hdr *)h->in;
	char err[256];
	int r;

	for (;;) {
		size_t need = h->inlen < HDR ? HDR : HDR + hdr->len;
		ssize_t n;

		if (h->inlen == need)
			return 1;
		n = recv(h->cfd, h->in + h->inlen, need - h->inlen, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0 && errno != ECONNRESET)
			return end_exchange(h, -errno, false, BATON_LOG_WARN, "taker pid %d: %s", (int)h->peer.pid,
					    strerror(errno));
		/* ECONNRESET: it closed with data of ours unread; a hang-up too */
		if (n <= 0) {
			/* connected and left without a word (e.g. another offerer
			 * checking whether this one is alive): not a failure */
			if (n == 0 && h->st == H_HELLO && h->inlen == 0)
				return end_exchange(h, 0, false, BATON_LOG_DEBUG, "pid %d left without asking",
						    (int)h->peer.pid);
			return end_exchange(h, -ECONNRESET, false, BATON_LOG_WARN,
					    "taker pid %d hung up %s", (int)h->peer.pid,
					    h->st == H_HELLO ? "in the middle of its request"
							     : "before acknowledging the sockets it was sent");
		}
		h->inlen += (size_t)n;
		if (h->inlen == HDR && (r = baton_handover_hdr_check(hdr, want, BATON_HANDOVER_MAX_FDS, err,
								      sizeof(err))))
			return end_exchange(h, r, true, BATON_LOG_WARN, "taker pid %d: %s", (int)h->peer.pid, err);
	}
}

/* Does what can be done now. Returns a pid (> 0), -errno, or 0 (waiting). */
static int step(struct baton_handover *h)
{
	const struct baton_handover_hdr *hdr = (const struct baton_handover_hdr *)h->in;
	struct baton_handover_hdr out;
	int r;

	if (h->st == H_IDLE && (r = start_exchange(h)) < 0)
		return r;
	if (h->st == H_IDLE)
		return 0;
	if ((r = read_msg(h)) <= 0) {
		if (r == 0 && h->st != H_IDLE && baton_mono_ms() >= h->deadline_ms)
			return end_exchange(h, -ETIMEDOUT, true, BATON_LOG_WARN,
					    h->st == H_HELLO ? "taker pid %d asked nothing within %d ms"
							     : "taker pid %d did not acknowledge within %d ms",
					    (int)h->peer.pid,
					    h->st == H_HELLO ? h->o.hello_timeout_ms : h->o.ack_timeout_ms);
		return r;
	}
	if (hdr->type == BATON_HANDOVER_ERROR)
		return end_exchange(h, -(int)hdr->count, false, BATON_LOG_WARN, "taker pid %d refused: %.*s",
				    (int)h->peer.pid, (int)hdr->len, h->in + HDR);
	if (h->st == H_HELLO) {
		out = baton_handover_hdr_make(BATON_HANDOVER_FDS, (uint32_t)h->n, h->paylen);
		r = baton_handover_send(h->cfd, &out, h->payload, h->fds, h->n,
					baton_mono_ms() + h->o.hello_timeout_ms);
		if (r)
			return end_exchange(h, r, false, BATON_LOG_WARN, "sending to taker pid %d: %s",
					    (int)h->peer.pid, strerror(-r));
		h->st = H_ACK;
		h->inlen = 0;
		arm(h, h->o.ack_timeout_ms);
		return 0;
	}
	if (hdr->count != h->n)
		return end_exchange(h, -EBADMSG, true, BATON_LOG_WARN, "taker pid %d acknowledged %u of %zu fds",
				    (int)h->peer.pid, (unsigned)hdr->count, h->n);
	r = h->peer.pid > 0 ? h->peer.pid : 1;
	return end_exchange(h, r, false, BATON_LOG_INFO, "pid %d took %zu socket(s)", (int)h->peer.pid, h->n);
}

int baton_handover_serve(struct baton_handover *h, int timeout_ms)
{
	long long end = timeout_ms < 0 ? -1 : baton_mono_ms() + timeout_ms;

	if (!h)
		return -EINVAL;
	for (;;) {
		struct epoll_event ev;
		long long left = end < 0 ? -1 : end - baton_mono_ms();
		uint64_t ticks;
		int r = step(h);

		if (r)
			return r;
		if (left < 0 && end >= 0)
			left = 0;
		r = epoll_wait(h->ep, &ev, 1, left > 1000000000 ? 1000000000 : (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0 && end >= 0 && baton_mono_ms() >= end)
			return step(h);	/* a deadline of the exchange may have passed too */
		if (r > 0 && ev.data.fd == h->tfd && read(h->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			return -errno;
	}
}

const char *baton_handover_path(const struct baton_handover *h)
{
	return h ? h->path : NULL;
}

void baton_handover_free(struct baton_handover *h)
{
	struct stat st;
	size_t i;

	if (!h)
		return;
	if (h->cfd >= 0)
		close(h->cfd);
	if (h->lfd >= 0)
		close(h->lfd);
	/* a successor may have put its own socket at the path by now */
	if (h->is_file && !stat(h->path, &st) && st.st_dev == h->dev && st.st_ino == h->ino)
		unlink(h->path);
	if (h->ep >= 0)
		close(h->ep);
	if (h->tfd >= 0)
		close(h->tfd);
	for (i = 0; h->fds && i < h->n; i++)
		if (h->fds[i] >= 0)
			close(h->fds[i]);
	free(h->fds);
	free(h->payload);
	free(h);
}

/* ---- taking side ---------------------------------------------------------- */

static int take_fail(const struct baton_handover_opts *o, const char *path, int fd, int r, bool tell,
		     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int take_fail(const struct baton_handover_opts *o, const char *path, int fd, int r, bool tell,
		     const char *fmt, ...)
{
	char msg[BATON_HANDOVER_ERRTEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	baton_logf(o->log, o->log_ctx, BATON_LOG_ERROR, "handover from %s: %s", path, msg);
	if (tell && fd >= 0)
		send_error(fd, -r, msg);
	return r;
}

static int take_connect(const struct baton_handover_opts *o, const char *path, long long deadline)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd, r;

	if ((r = baton_unix_addr(path, &sun, &len)))
		return take_fail(o, path, -1, r, false,
				 "not a usable unix socket address (at most %zu bytes, \"@name\" for the abstract "
				 "namespace)", sizeof(sun.sun_path) - 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sun, len) == 0)
			return fd;
		r = -errno;
		if (r != -EAGAIN && r != -EINTR)
			break;
		/* the offerer's backlog is full: it is busy with another taker */
		if (deadline >= 0 && baton_mono_ms() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		usleep(10000);
	}
	close(fd);
	if (r == -ETIMEDOUT)
		return take_fail(o, path, -1, r, false, "the offerer did not accept the connection in time");
	return take_fail(o, path, -1, r, false, "cannot connect: %s (is a process offering its sockets there?)",
			 strerror(-r));
}

/* Names what went wrong while receiving the answer, or returns 0. */
static int recv_failed(const struct baton_handover_opts *o, const char *path, int fd, int r,
		       const struct baton_handover_cred *peer, size_t got, const struct baton_handover_fdset *set, int timeout_ms)
{
	switch (r) {
	case 0:
		return 0;
	case -ETIMEDOUT:
		return take_fail(o, path, fd, r, false, "pid %d did not answer within %d ms (%zu bytes came)",
				 (int)peer->pid, timeout_ms, got);
	case -ECONNRESET:
		return take_fail(o, path, fd, r, false,
				 "pid %d hung up in the middle of its answer (%zu bytes and %zu fds came)",
				 (int)peer->pid, got, set->n);
	case -EMSGSIZE:
		return take_fail(o, path, fd, r, true,
				 "control message truncated: more fds came than the %zu taken here, or the fd limit "
				 "(RLIMIT_NOFILE) was reached; closed the %zu that arrived", set->cap, set->n);
	default:
		return take_fail(o, path, fd, r, false, "receiving from pid %d: %s", (int)peer->pid, strerror(-r));
	}
}

/* The result of a take: SET's fds and the LEN bytes of names at PAYLOAD
 * (NAMES points into it) copied into OUT, the names in one block after
 * their pointers. 0 or -ENOMEM; OUT's arrays are freed by the caller. */
static int take_result(struct baton_handover_fds *out, const struct baton_handover_fdset *set, const char *payload,
		       size_t len, const char **names, const struct baton_handover_cred *peer)
{
	char *p;

	out->names = malloc(set->n * sizeof(char *) + len);
	out->fds = malloc(set->n * sizeof(int));
	if (!out->names || !out->fds)
		return -ENOMEM;
	p = (char *)(out->names + set->n);
	memcpy(p, payload, len);
	for (size_t i = 0; i < set->n; i++)
		out->names[i] = p + (names[i] - payload);
	memcpy(out->fds, set->fds, set->n * sizeof(int));
	out->n = set->n;
	out->pid = peer->pid;
	out->uid = peer->uid;
	return 0;
}

int baton_handover_take(const char *path, int timeout_ms, const struct baton_handover_opts *opts,
			struct baton_handover_fds *out)
{
	long long deadline = timeout_ms < 0 ? -1 : baton_mono_ms() + timeout_ms;
	struct baton_handover_fdset set = { 0 };
	struct baton_handover_opts o;
	struct baton_handover_hdr hdr;
	struct baton_handover_cred peer;
	const char **names = NULL;
	char *payload = NULL, err[256];
	size_t got = 0;
	int fd = -1, r;

	if (out) {
		memset(out, 0, sizeof(*out));
		out->conn = -1;
	}
	if ((r = copy_opts(&o, opts)))
		return r;
	if (!path || !out)
		return -EINVAL;
	fd = take_connect(&o, path, deadline);
	if (fd < 0)
		return fd;
	if ((r = baton_handover_peer_check(fd, &peer, err, sizeof(err)))) {
		r = take_fail(&o, path, fd, r, true, "%s", err);
		goto out;
	}
	hdr = baton_handover_hdr_make(BATON_HANDOVER_HELLO, 0, 0);
	r = baton_handover_send(fd, &hdr, NULL, NULL, 0, deadline);
	/* an offerer that refused us has sent why before hanging up: read on */
	if (r && r != -EPIPE && r != -ECONNRESET) {
		r = take_fail(&o, path, fd, r, false, "sending the request to pid %d: %s", (int)peer.pid,
			      strerror(-r));
		goto out;
	}
	set.cap = o.max_fds;
	set.fds = calloc(set.cap, sizeof(int));
	payload = malloc(BATON_HANDOVER_PAYLOAD_MAX + 1);
	names = calloc(BATON_HANDOVER_MAX_FDS, sizeof(*names));
	if (!set.fds || !payload || !names) {
		r = -ENOMEM;
		goto out;
	}
	r = baton_handover_recv(fd, &hdr, HDR, &set, deadline, &got);
	if ((r = recv_failed(&o, path, fd, r, &peer, got, &set, timeout_ms)))
		goto out;
	if ((r = baton_handover_hdr_check(&hdr, BATON_HANDOVER_FDS, o.max_fds, err, sizeof(err)))) {
		r = take_fail(&o, path, fd, r, true, "pid %d: %s", (int)peer.pid, err);
		goto out;
	}
	r = baton_handover_recv(fd, payload, hdr.len, &set, deadline, &got);
	if ((r = recv_failed(&o, path, fd, r, &peer, HDR + got, &set, timeout_ms)))
		goto out;
	if (hdr.type == BATON_HANDOVER_ERROR) {
		r = take_fail(&o, path, -1, -(int)hdr.count, false, "pid %d refused: %.*s", (int)peer.pid,
			      (int)hdr.len, payload);
		goto out;
	}
	if (set.n != hdr.count) {
		r = take_fail(&o, path, fd, -EBADMSG, true, "pid %d announced %u fds but %zu arrived", (int)peer.pid,
			      (unsigned)hdr.count, set.n);
		goto out;
	}
	if ((r = baton_handover_names_parse(payload, hdr.len, hdr.count, names, err, sizeof(err)))) {
		r = take_fail(&o, path, fd, r, true, "pid %d: %s", (int)peer.pid, err);
		goto out;
	}
	if ((r = take_result(out, &set, payload, hdr.len, names, &peer)))
		goto out;
	out->conn = fd;
	set.n = 0;
	fd = -1;
	if (!o.defer_ack && (r = baton_handover_ack(out)))
		/* we hold the sockets; only the old process will not know */
		baton_logf(o.log, o.log_ctx, BATON_LOG_WARN, "handover from %s: acknowledging: %s", path,
			   strerror(-r));
	r = (int)out->n;
out:
	if (r < 0) {
		baton_handover_fdset_close(&set);
		free(out->names);
		free(out->fds);
		memset(out, 0, sizeof(*out));
		out->conn = -1;
	}
	if (fd >= 0)
		close(fd);
	free(set.fds);
	free(payload);
	free(names);
	return r;
}

int baton_handover_ack(struct baton_handover_fds *f)
{
	struct baton_handover_hdr hdr;
	int r;

	if (!f)
		return -EINVAL;
	if (f->conn < 0)
		return -ENOTCONN;
	hdr = baton_handover_hdr_make(BATON_HANDOVER_ACK, (uint32_t)f->n, 0);
	r = baton_handover_send(f->conn, &hdr, NULL, NULL, 0, baton_mono_ms() + 1000);
	close(f->conn);
	f->conn = -1;
	return r;
}

void baton_handover_fds_free(struct baton_handover_fds *f)
{
	if (!f)
		return;
	if (f->conn >= 0)
		close(f->conn);
	free(f->fds);
	free(f->names);
	memset(f, 0, sizeof(*f));
	f->conn = -1;
}
