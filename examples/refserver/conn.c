/* SPDX-License-Identifier: BSD-2-Clause */
/* refserver's connections: accept, read, answer, write, and end each one
 * without a reset (lingering until the client's EOF); the delay and linger
 * queues that order their deadlines. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "refserver.h"

static void tq_push(struct tqueue *q, struct conn *c)
{
	c->onq = q;
	c->tnext = NULL;
	c->tprev = q->tail;
	if (q->tail)
		q->tail->tnext = c;
	else
		q->head = c;
	q->tail = c;
}

void tq_del(struct conn *c)
{
	struct tqueue *q = c->onq;

	if (!q)
		return;
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		q->head = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	else
		q->tail = c->tprev;
	c->tprev = c->tnext = NULL;
	c->onq = NULL;
}

static void set_events(struct server *s, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e);
}

void listeners_watch(struct server *s, bool on)
{
	int i;

	for (i = 0; i < s->nls; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = &s->ls[i] };

		epoll_ctl(s->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->ls[i].fd, &e);
	}
}

void conn_free(struct server *s, struct conn *c)
{
	tq_del(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* explicitly: close alone leaves it in the epoll set while a child
	 * forked for an upgrade still holds a copy, until its exec */
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	s->nconns--;
	if (s->accept_paused && !s->stopping) {
		s->accept_paused = false;
		listeners_watch(s, true);
	}
}

/* Ends a connection without resetting it: send our FIN, then keep reading
 * (and dropping) what the client still sends until its EOF. Closing at once
 * with unread data would make the kernel answer with RST, and an RST can
 * destroy the response the client has not read yet. */
void conn_linger(struct server *s, struct conn *c)
{
	if (shutdown(c->fd, SHUT_WR)) {
		conn_free(s, c);
		return;
	}
	tq_del(c);
	c->state = C_LINGER;
	c->inlen = 0;
	c->due_ms = now_ms() + LINGER_MS;
	tq_push(&s->lingering, c);
	set_events(s, c, EPOLLIN | EPOLLRDHUP);
}

/* Takes the next request out of the buffer, if a whole one is there. */
void conn_process(struct server *s, struct conn *c)
{
	long n;

	if (c->discard) {
		size_t d = c->discard < c->inlen ? c->discard : c->inlen;

		memmove(c->in, c->in + d, c->inlen - d);
		c->inlen -= d;
		c->discard -= d;
		if (c->discard)
			goto incomplete;
	}
	if (!c->inlen)
		goto incomplete;
	n = parse_request(c);
	if (n == 0)
		goto incomplete;
	if (n < 0) {
		/* the rest of the stream cannot be framed: answer and close */
		c->close_after = true;
		c->inlen = 0;
		c->discard = 0;
		build_response(s, c);
		conn_write(s, c);
		return;
	}
	memmove(c->in, c->in + n, c->inlen - (size_t)n);
	c->inlen -= (size_t)n;
	if (c->peer_eof)
		c->close_after = true;	/* a half-closed client still gets its answer */
	if (s->o.delay_ms > 0) {
		c->state = C_DELAYED;
		c->due_ms = now_ms() + s->o.delay_ms;
		tq_push(&s->delayed, c);
		set_events(s, c, 0);	/* reading more would only fill our buffer */
		return;
	}
	build_response(s, c);
	conn_write(s, c);
	return;
incomplete:
	if (c->peer_eof)
		conn_free(s, c);	/* the rest of this request will never come */
	else if (s->stopping && s->last_call_ms < 0 && !c->inlen && !c->discard && c->answered)
		conn_linger(s, c);	/* idle keep-alive after the last call: end it now */
	/* A new connection with nothing read yet is not idle: its client has
	 * just connected and its first request is on the way. Closing it would
	 * fail a request the client had every right to send; it is answered
	 * (with "Connection: close") within the grace time instead. */
}

void conn_write(struct server *s, struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			set_events(s, c, EPOLLOUT);
			return;
		}
		if (n < 0) {
			conn_free(s, c);	/* the client went away: nothing more to give it */
			return;
		}
		c->outoff += (size_t)n;
	}
	c->answered++;
	if (c->close_after) {
		conn_linger(s, c);
		return;
	}
	c->state = C_READING;
	set_events(s, c, EPOLLIN | EPOLLRDHUP);
	conn_process(s, c);	/* a pipelined request may already be here */
}

/* Reads what is there; returns false if the connection was freed. */
bool conn_read(struct server *s, struct conn *c)
{
	for (;;) {
		char sink[4096];
		char *buf = c->state == C_LINGER ? sink : c->in + c->inlen;
		size_t room = c->state == C_LINGER ? sizeof(sink) : sizeof(c->in) - c->inlen;
		ssize_t n;

		if (!room)
			return true;
		n = recv(c->fd, buf, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n == 0 && c->state != C_LINGER && c->inlen) {
			/* EOF after a request: answer it (conn_process decides) */
			c->peer_eof = true;
			set_events(s, c, 0);
			return true;
		}
		if (n <= 0) {
			/* EOF or error with nothing to answer */
			conn_free(s, c);
			return false;
		}
		if (c->state != C_LINGER)
			c->inlen += (size_t)n;
	}
}

void conn_event(struct server *s, struct conn *c, uint32_t ev)
{
	switch (c->state) {
	case C_READING:
		if (!conn_read(s, c))
			return;
		if (c->inlen == 0 && (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
			conn_free(s, c);
			return;
		}
		conn_process(s, c);
		return;
	case C_WRITING:
		conn_write(s, c);
		return;
	case C_LINGER:
		conn_read(s, c);
		return;
	case C_DELAYED:
		if (ev & (EPOLLHUP | EPOLLERR))
			conn_free(s, c);
		return;
	}
}

void do_accept(struct server *s, struct listener *l)
{
	int i;

	for (i = 0; i < ACCEPT_BATCH && !s->stopping; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP };
		struct conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* the queue keeps them until a connection of ours ends */
				say(true, "accept: %s; pausing until a connection closes", strerror(errno));
				s->accept_paused = true;
				listeners_watch(s, false);
			}
			return;	/* EAGAIN: another process sharing the socket took it */
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->kind = K_CONN;
		c->fd = fd;
		c->state = C_READING;
		e.data.ptr = c;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e)) {
			close(fd);
			free(c);
			return;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
}
