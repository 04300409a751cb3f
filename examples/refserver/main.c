/* SPDX-License-Identifier: BSD-2-Clause */
/* refserver: a small HTTP/1.1 server that shows how to write a server for
 * baton (listening sockets from LISTEN_FDS, READY=1 on NOTIFY_SOCKET, a
 * graceful stop that drops no request, upgrading itself in place through the
 * handover protocol), and the server baton's tests use. Standalone: libc and
 * the header-only wire format, one process, one epoll loop. This file: the
 * loop, the stop and the timers; refserver.h says where the rest is. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "refserver.h"

static struct { enum kind kind; } sig_ev = { K_SIGNAL }, timer_ev = { K_TIMER };

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static pid_t g_pid;
static bool g_quiet;

void say(bool always, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void say(bool always, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (g_quiet && !always)
		return;
	n = snprintf(buf, sizeof(buf), "refserver[%d]: ", (int)g_pid);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", buf);	/* one write per line: readable when interleaved */
}

/* One timerfd for everything: armed for the earliest of the delay queue's
 * head, the linger queue's head, readiness and the end of the grace time. */
static void arm_timer(struct server *s)
{
	long long next = LLONG_MAX, d;
	struct itimerspec its = { 0 };

	if (s->delayed.head)
		next = s->delayed.head->due_ms;
	if (s->lingering.head && s->lingering.head->due_ms < next)
		next = s->lingering.head->due_ms;
	if (s->ready_at_ms >= 0 && s->ready_at_ms < next)
		next = s->ready_at_ms;
	if (s->grace_end_ms >= 0 && s->grace_end_ms < next)
		next = s->grace_end_ms;
	if (s->last_call_ms >= 0 && s->last_call_ms < next)
		next = s->last_call_ms;
	if (s->fail_at_ms >= 0 && s->fail_at_ms < next)
		next = s->fail_at_ms;
	if (next != LLONG_MAX) {
		d = next - now_ms();
		if (d < 1)
			d = 1;	/* zero would disarm it */
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(s->timerfd, 0, &its, NULL);
}

void begin_stop(struct server *s, const char *why)
{
	struct conn *c, *next;
	int i;

	s->stopping = true;
	s->grace_end_ms = now_ms() + s->o.grace_ms;
	s->last_call_ms = now_ms() + LAST_CALL_MS;
	/* Closing our copies, not shutting them down: on a socket shared with
	 * the next generation, shutdown would stop its accepts too. What waits
	 * in the queue stays there for whoever still holds the socket. */
	if (!s->accept_paused)
		listeners_watch(s, false);
	for (i = 0; i < s->nls; i++)
		close(s->ls[i].fd);
	s->nls = 0;
	offer_close(s);
	notify(s, "STOPPING=1\n");
	say(false, "%s: stopped accepting; finishing %d connection(s), grace %d ms", why, s->nconns,
	    s->o.grace_ms);
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state != C_READING)
			continue;	/* delayed and writing ones will close after their response */
		/* a request may have arrived that the loop has not seen yet: a
		 * received request is answered, not dropped */
		if (conn_read(s, c))
			conn_process(s, c);	/* answers it; idle ones wait for the last call */
	}
}

static void on_timer(struct server *s)
{
	uint64_t ticks;
	long long now = now_ms();

	if (read(s->timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		say(true, "timerfd: %s", strerror(errno));
	if (s->last_call_ms >= 0 && now >= s->last_call_ms) {
		struct conn *c, *next;

		s->last_call_ms = -1;
		for (c = s->conns; c; c = next) {
			next = c->next;
			if (c->state == C_READING && !c->inlen && !c->discard && c->answered)
				conn_linger(s, c);
		}
	}
	while (s->delayed.head && s->delayed.head->due_ms <= now) {
		struct conn *c = s->delayed.head;

		tq_del(c);
		build_response(s, c);
		conn_write(s, c);
	}
	while (s->lingering.head && s->lingering.head->due_ms <= now)
		conn_free(s, s->lingering.head);
	if (s->ready_at_ms >= 0 && s->ready_at_ms <= now)
		send_ready(s);
	if (s->fail_at_ms >= 0 && s->fail_at_ms <= now && !s->stopping) {
		s->fail_at_ms = -1;
		s->failed = true;
		begin_stop(s, "failing as asked (--fail-after)");
	}
}

static int setup(struct server *s)
{
	struct epoll_event e = { .events = EPOLLIN };
	const char *ns = getenv("NOTIFY_SOCKET"), *from = getenv(BATON_HANDOVER_ENV);
	struct rlimit rl;
	sigset_t mask;
	int i, r;

	/* a successor: the sockets come from the process that started us; the
	 * variable is for us alone, not for whatever we start later */
	if (from) {
		char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

		snprintf(path, sizeof(path), "%s", from);
		unsetenv(BATON_HANDOVER_ENV);
		if ((r = take_handover(s, path)))
			return r;
	}
	if ((r = take_listen_fds(s)))
		return r;
	if (!s->nls) {
		for (i = 0; i < s->o.nlisten; i++)
			if ((r = bind_own(s, s->o.listen[i])))
				return r;
	} else if (s->o.nlisten && !from) {
		/* (a successor runs our command line again: --listen is expected there) */
		say(true, "using the %d socket(s) from LISTEN_FDS; --listen ignored", s->nls);
	}
	if (!s->nls) {
		say(true, "no listening socket: start me with LISTEN_FDS (baton run) or give --listen HOST:PORT");
		return -EINVAL;
	}
	if (ns && strlen(ns) >= 2 && strlen(ns) < sizeof(s->notify) - 1 && (ns[0] == '/' || ns[0] == '@'))
		snprintf(s->notify, sizeof(s->notify), "%s", ns);
	else if (ns)
		say(true, "ignoring NOTIFY_SOCKET=%s: not an absolute path or @abstract name", ns);
	/* many connections at once: as many fds as we are allowed */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigemptyset(&mask);
	sigaddset(&mask, s->o.stop_signal);
	if (s->o.upgrade_socket) {
		sigaddset(&mask, SIGUSR2);
		sigaddset(&mask, SIGCHLD);
	}
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->ep < 0 || s->sigfd < 0 || s->timerfd < 0)
		return -errno;
	e.data.ptr = &sig_ev;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sigfd, &e))
		return -errno;
	e.data.ptr = &timer_ev;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->timerfd, &e))
		return -errno;
	listeners_watch(s, true);
	if (s->o.upgrade_socket && (r = offer_open(s)))
		return r;
	for (i = 0; i < s->nls; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";

		if (!getsockname(s->ls[i].fd, (struct sockaddr *)&ss, &len))
			getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
				    NI_NUMERICHOST | NI_NUMERICSERV);
		say(false, "accepting on %s:%s (fd %d, %s), tag \"%s\"", host, port, s->ls[i].fd,
		    s->ls[i].name, s->o.tag);
	}
	/* the sockets are in our loop: the old process may stop accepting */
	if (s->handed_conn >= 0) {
		struct baton_handover_hdr h = baton_handover_hdr_make(BATON_HANDOVER_ACK, (uint32_t)s->nls, 0);

		r = baton_handover_send(s->handed_conn, &h, NULL, NULL, 0, now_ms() + 1000);
		close(s->handed_conn);
		s->handed_conn = -1;
		if (r) {
			say(true, "acknowledging the handover: %s", strerror(-r));
			return r;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct server s = { .o = { .tag = "refserver", .stop_signal = SIGTERM, .grace_ms = 10000 },
			    .ep = -1, .sigfd = -1, .timerfd = -1, .ready_at_ms = -1, .grace_end_ms = -1,
			    .last_call_ms = -1, .upfd = -1, .upconn = -1, .handed_conn = -1, .fail_at_ms = -1 };
	int r;

	g_pid = s.pid = getpid();
	s.argv = argv;
	r = parse_opts(argc, argv, &s.o);
	if (r >= 0)
		return r;
	g_quiet = s.o.quiet;
	if (setup(&s))
		return 1;
	if (s.o.crash_at_start) {
		say(true, "crashing at start as asked (--crash-at-start)");
		return 1;
	}
	if (!s.o.never_ready) {
		if (s.o.ready_delay_ms)
			s.ready_at_ms = now_ms() + s.o.ready_delay_ms;
		else
			send_ready(&s);
	}
	for (;;) {
		struct epoll_event ev[256];
		int n, i;

		if (s.stopping && s.nconns == 0)
			break;
		if (s.stopping && now_ms() >= s.grace_end_ms) {
			say(true, "grace time over with %d connection(s) left; exiting", s.nconns);
			break;
		}
		arm_timer(&s);
		n = epoll_wait(s.ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), -1);
		if (n < 0 && errno != EINTR) {
			say(true, "epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++) {
			enum kind k = *(enum kind *)ev[i].data.ptr;

			if (k == K_SIGNAL) {
				struct signalfd_siginfo si;

				while (read(s.sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (s.o.upgrade_socket && si.ssi_signo == SIGUSR2)
						start_successor(&s);
					else if (s.o.upgrade_socket && si.ssi_signo == SIGCHLD)
						reap(&s);
					else if (!s.stopping)
						begin_stop(&s, strsignal((int)si.ssi_signo));
				}
				/* the stop may have freed connections other events
				 * of this batch point at */
				break;
			} else if (k == K_TIMER) {
				on_timer(&s);
				break;	/* likewise: it may free connections */
			} else if (k == K_LISTEN) {
				do_accept(&s, ev[i].data.ptr);
			} else if (k == K_UPLISTEN) {
				if (s.upconn < 0 && s.upfd >= 0)
					offer_accept(&s);
			} else if (k == K_UPCONN) {
				if (s.upconn >= 0)
					offer_answer(&s);
				break;	/* an ACK starts the stop, which frees connections */
			} else {
				conn_event(&s, ev[i].data.ptr, ev[i].events);
			}
		}
	}
	say(false, "exiting after %llu answers", s.served);
	return s.failed ? 1 : 0;
}
