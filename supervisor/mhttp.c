/* SPDX-License-Identifier: BSD-2-Clause */
/* --metrics-listen ADDR: `baton status --metrics` over plain HTTP, so that
 * Prometheus scrapes the supervisor directly. GET /metrics only, read-only,
 * non-blocking inside the supervisor's event loop and bounded everywhere: a
 * few clients, a short request head, a deadline to send it and one to take
 * the answer; a client that connects and sends nothing loses its place to
 * the next one. The listening socket crosses `baton upgrade`. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "metrics.h"
#include "mhttp.h"
#include "httpreq.h"
#include "util.h"

#define MHTTP_ENV "BATON_UPGRADE_METRICS"

enum mcl_state { MCL_FREE, MCL_READING, MCL_WRITING };

struct mcl {
	enum mcl_state state;
	int fd;
	long long deadline;             /* monotonic ms: the head must be in, or the answer out, by then */
	long long since;                /* accepted at: the oldest reader is the one to go */
	size_t len;                     /* of the head read so far */
	char req[HTTPREQ_MAX];
	char *resp;                     /* the answer, and how much of it is sent */
	size_t rlen, off;
};

struct mhttp {
	int fd;
	char addr[80];                  /* as bound, for the log: 127.0.0.1:9100, [::1]:9100 */
	struct mcl cl[MHTTP_CLIENTS];
};

int sup_metrics_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen)
{
	struct baton_spec sp;
	char spec[320], why[256];

	if (!*text || strlen(text) > 200 || strpbrk(text, "?/ ")) {
		snprintf(err, errlen, "want HOST:PORT, [V6]:PORT or :PORT, such as 127.0.0.1:9100");
		return -EINVAL;
	}
	/* :PORT is every IPv4 address, as Prometheus exporters take it */
	snprintf(spec, sizeof(spec), "tcp://%s%s", text[0] == ':' ? "0.0.0.0" : "", text);
	if (baton_spec_parse(spec, &sp, why, sizeof(why))) {
		snprintf(err, errlen, "want HOST:PORT, [V6]:PORT or :PORT, such as 127.0.0.1:9100 (%s)", why);
		return -EINVAL;
	}
	*ss = sp.addr;
	ss->ss_family = (sa_family_t)sp.family;
	if (sp.family == AF_INET) {
		((struct sockaddr_in *)ss)->sin_port = htons(sp.port);
		*len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)ss)->sin6_port = htons(sp.port);
		*len = sizeof(struct sockaddr_in6);
	}
	return 0;
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	}
}

/* The socket the supervisor before `baton upgrade` served on, if it is a
 * TCP listener on the address asked for (a port of 0: any); else -1. */
static int inherited(const struct sockaddr_storage *want)
{
	const char *env = getenv(MHTTP_ENV);
	struct sockaddr_storage got;
	socklen_t len = sizeof(got);
	int fd, on = 0, type = 0;
	socklen_t ol = sizeof(on), tl = sizeof(type);
	char *end;

	if (!env)
		return -1;
	fd = (int)strtol(env, &end, 10);
	unsetenv(MHTTP_ENV);
	if (end == env || *end || fd < 3)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) || !on ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_STREAM ||
	    getsockname(fd, (struct sockaddr *)&got, &len) || got.ss_family != want->ss_family)
		goto no;
	if (want->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)want, *b = (const void *)&got;

		if (a->sin_addr.s_addr != b->sin_addr.s_addr || (a->sin_port && a->sin_port != b->sin_port))
			goto no;
	} else {
		const struct sockaddr_in6 *a = (const void *)want, *b = (const void *)&got;

		if (memcmp(&a->sin6_addr, &b->sin6_addr, 16) || (a->sin6_port && a->sin6_port != b->sin6_port))
			goto no;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
no:
	close(fd);	/* another address now: bound afresh */
	return -1;
}

int mhttp_open(struct sup *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_MHTTP };
	struct sockaddr_storage ss, got;
	socklen_t len = sizeof(ss), glen = sizeof(got);
	char err[320];
	struct mhttp *h;
	int fd, one = 1, r;
	bool kept;

	if (!s->cfg->metrics_listen)
		return 0;
	if (sup_metrics_addr(s->cfg->metrics_listen, &ss, &len, err, sizeof(err))) {
		say_err(s, "bad --metrics-listen \"%s\": %s", s->cfg->metrics_listen, err);
		return -EINVAL;
	}
	fd = inherited(&ss);
	kept = fd >= 0;
	if (fd < 0) {
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 64)) {
			r = -errno;
			say_err(s, "cannot serve metrics on %s: %s; pick another --metrics-listen address",
				s->cfg->metrics_listen, strerror(-r));
			close(fd);
			return r;
		}
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->fd = fd;
	for (int i = 0; i < MHTTP_CLIENTS; i++)
		h->cl[i].fd = -1;
	if (getsockname(fd, (struct sockaddr *)&got, &glen) == 0)
		addr_text(&got, h->addr, sizeof(h->addr));
	s->mhttp = h;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
	say(s, "metrics served on http://%s/metrics%s", h->addr, kept ? " (the socket kept across the upgrade)" : "");
	return 0;
}

static void mcl_close(struct sup *s, struct mcl *c)
{
	if (c->fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	free(c->resp);
	c->resp = NULL;
	c->fd = -1;
	c->state = MCL_FREE;
	c->len = c->rlen = c->off = 0;
}

void mhttp_close(struct sup *s)
{
	struct mhttp *h = s->mhttp;

	if (!h)
		return;
	for (int i = 0; i < MHTTP_CLIENTS; i++)
		if (h->cl[i].state != MCL_FREE)
			mcl_close(s, &h->cl[i]);
	if (h->fd >= 0)
		close(h->fd);
	free(h);
	s->mhttp = NULL;
}

void mhttp_exec(struct sup *s, bool going)
{
	char val[16];

	if (!s->mhttp || s->mhttp->fd < 0)
		return;
	if (going) {
		snprintf(val, sizeof(val), "%d", s->mhttp->fd);
		setenv(MHTTP_ENV, val, 1);
		fcntl(s->mhttp->fd, F_SETFD, 0);	/* kept open across the exec */
	} else {
		unsetenv(MHTTP_ENV);
		fcntl(s->mhttp->fd, F_SETFD, FD_CLOEXEC);
	}
}

bool mhttp_busy(const struct sup *s)
{
	for (int i = 0; s->mhttp && i < MHTTP_CLIENTS; i++)
		if (s->mhttp->cl[i].state != MCL_FREE)
			return true;	/* the tick enforces its deadline */
	return false;
}

/* Sends what it can of C's answer; closes it once all is out. */
static void mcl_write(struct sup *s, struct mcl *c, int ci)
{
	while (c->off < c->rlen) {
		ssize_t n = send(c->fd, c->resp + c->off, c->rlen - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = EV_MHTTP + 1 + (uint32_t)ci };

			epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		}
		if (n <= 0) {
			mcl_close(s, c);
			return;
		}
		c->off += (size_t)n;
	}
	shutdown(c->fd, SHUT_WR);	/* the client sees the end before the close */
	for (int k = 0; k < 4; k++) {	/* unread input would turn the close into a reset */
		char sink[512];

		if (recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
	}
	mcl_close(s, c);
}

static void mcl_answer(struct sup *s, struct mcl *c, int ci, int status)
{
	static const struct { int status; const char *reason, *body; } errs[] = {
		{ 400, "Bad Request", "bad request: send GET /metrics HTTP/1.1\n" },
		{ 404, "Not Found", "not found: this server has /metrics only\n" },
		{ 405, "Method Not Allowed", "method not allowed: /metrics takes GET only\n" },
		{ 408, "Request Timeout", "request timeout: the request head did not arrive in time\n" },
		{ 431, "Request Header Fields Too Large", "request head too large\n" },
		{ 505, "HTTP Version Not Supported", "HTTP version not supported: use HTTP/1.0 or 1.1\n" },
	};
	char *body = NULL;
	size_t blen = 0;
	FILE *f;

	c->state = MCL_WRITING;
	c->deadline = baton_mono_ms() + MHTTP_WRITE_MS;
	f = open_memstream(&c->resp, &c->rlen);
	if (!f) {
		mcl_close(s, c);
		return;
	}
	if (status == 200) {
		FILE *b = open_memstream(&body, &blen);

		if (b) {
			write_metrics(s, b);
			fclose(b);
		}
		if (!body) {
			fclose(f);
			mcl_close(s, c);
			return;
		}
		fprintf(f, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
			   "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", blen);
		fwrite(body, 1, blen, f);
		free(body);
	} else {
		size_t i;

		for (i = 0; i < sizeof(errs) / sizeof(errs[0]) - 1 && errs[i].status != status; i++)
			;
		fprintf(f, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n%s"
			   "Connection: close\r\n\r\n%s", errs[i].status, errs[i].reason, strlen(errs[i].body),
			errs[i].status == 405 ? "Allow: GET\r\n" : "", errs[i].body);
	}
	if (fclose(f) || !c->resp) {
		mcl_close(s, c);
		return;
	}
	mcl_write(s, c, ci);
}

static void mcl_read(struct sup *s, struct mcl *c, int ci)
{
	ssize_t n = recv(c->fd, c->req + c->len, sizeof(c->req) - c->len, MSG_DONTWAIT);
	int status;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mcl_close(s, c);
		return;
	}
	c->len += (size_t)n;
	status = httpreq_parse(c->req, c->len);
	if (status) {
		/* what the client sends from now on is not read: no more EPOLLIN */
		struct epoll_event ev = { .events = 0, .data.u32 = EV_MHTTP + 1 + (uint32_t)ci };

		epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
		mcl_answer(s, c, ci, status);
	}
}

/* A new client takes a free place; with none, the place of the client
 * that has waited longest without sending its request (one that connects
 * and sends nothing cannot keep a scrape out). */
static void mhttp_accept(struct sup *s)
{
	struct mhttp *h = s->mhttp;

	for (int budget = 0; budget < 16; budget++) {
		int fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), i, pick = -1;
		struct epoll_event ev = { .events = EPOLLIN };

		if (fd < 0)
			return;
		for (i = 0; i < MHTTP_CLIENTS && pick < 0; i++)
			if (h->cl[i].state == MCL_FREE)
				pick = i;
		if (pick < 0)
			for (i = 0; i < MHTTP_CLIENTS; i++)
				if (h->cl[i].state == MCL_READING && (pick < 0 || h->cl[i].since < h->cl[pick].since))
					pick = i;
		if (pick < 0) {
			close(fd);	/* every place is sending an answer: the client tries again */
			continue;
		}
		if (h->cl[pick].state != MCL_FREE)
			mcl_close(s, &h->cl[pick]);
		h->cl[pick] = (struct mcl){ .state = MCL_READING, .fd = fd, .since = baton_mono_ms() };
		h->cl[pick].deadline = h->cl[pick].since + MHTTP_READ_MS;
		ev.data.u32 = EV_MHTTP + 1 + (uint32_t)pick;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
			mcl_close(s, &h->cl[pick]);
	}
}

void mhttp_event(struct sup *s, uint32_t which)
{
	struct mhttp *h = s->mhttp;
	struct mcl *c;

	if (!h)
		return;
	if (which == 0) {
		mhttp_accept(s);
		return;
	}
	if (which > MHTTP_CLIENTS)
		return;
	c = &h->cl[which - 1];
	if (c->state == MCL_READING)
		mcl_read(s, c, (int)which - 1);
	else if (c->state == MCL_WRITING)
		mcl_write(s, c, (int)which - 1);
}

void mhttp_tick(struct sup *s, long long now)
{
	for (int i = 0; s->mhttp && i < MHTTP_CLIENTS; i++) {
		struct mcl *c = &s->mhttp->cl[i];

		if (c->state == MCL_FREE || now < c->deadline)
			continue;
		if (c->state == MCL_READING && c->len)
			mcl_answer(s, c, i, 408);	/* a partial head: say why, best effort */
		else
			mcl_close(s, c);	/* nothing sent, or the answer not taken in time */
		if (c->state == MCL_WRITING && now >= c->deadline)
			mcl_close(s, c);
	}
}
