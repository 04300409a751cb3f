/* SPDX-License-Identifier: BSD-2-Clause */
/* The checks of a staged reload (part of canary.c's feature): an HTTP probe
 * or a command that reaches the new generation alone, and the watch of its
 * members; a failed check flips the stage back. */

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canary.h"
#include "core.h"
#include "gen.h"
#include "stage.h"
#include "util.h"

/* ---- the check -------------------------------------------------------------------- */

static void check_done(struct sup *s, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check_done(struct sup *s, bool ok, const char *fmt, ...)
{
	struct stage *st = &s->stage;
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->check_last, sizeof(st->check_last), fmt, ap);
	va_end(ap);
	if (st->check_fd > 0) {	/* 0: none (the struct starts zeroed; stdin is never ours) */
		close(st->check_fd);
		st->check_fd = 0;
	}
	st->check_pid = 0;
	st->next_check_ms = baton_mono_ms() + st->o.check_ms;
	st->counts_dirty = true;
	if (ok) {
		st->checks_ok++;
		st->resumed_unchecked = false;
		return;
	}
	st->checks_failed++;
	snprintf(why, sizeof(why), "check failed: %s", st->check_last);
	say(s, "gen %d: %s", st->new_id, why);
	stage_fail(s, why);
}

/* Where a probe connects: the listener's own address, the loopback one for
 * a wildcard; it connects from the same address, from a reserved port. */
static void probe_addr(const struct sup *s, struct sockaddr_storage *dst, struct sockaddr_storage *src,
		       socklen_t *len, int sport)
{
	const struct baton_spec *sp = &s->spec[0];

	memcpy(dst, &sp->addr, sizeof(*dst));
	*len = sp->addrlen;
	if (sp->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)dst;

		if (a->sin_addr.s_addr == htonl(INADDR_ANY))
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(sp->port);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)dst;

		if (!memcmp(&a->sin6_addr, &in6addr_any, sizeof(in6addr_any)))
			a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(sp->port);
	}
	memcpy(src, dst, sizeof(*src));
	if (sp->family == AF_INET)
		((struct sockaddr_in *)src)->sin_port = htons((uint16_t)sport);
	else
		((struct sockaddr_in6 *)src)->sin6_port = htons((uint16_t)sport);
}

static void check_start(struct sup *s, long long now)
{
	struct stage *st = &s->stage;
	struct gen *n = &s->gen[st->new_gi];
	struct sockaddr_storage dst, src;
	socklen_t len;
	int fd, one = 1, r, port = st->check_port;
	char text[64];

	if (!st->pinned) {
		/* only probes from the probe's own address (a local one: no
		 * remote host can send from it) are pinned: anyone can pick a
		 * source port in the range */
		probe_addr(s, &dst, &src, &len, port);
		r = baton_group_pin_source_addr(s->grp[0], (struct sockaddr *)&src, len, STAGE_CHECK_LO,
						STAGE_CHECK_LO + STAGE_CHECK_PORTS - 1, n->slot[0]);
		if (r) {
			check_done(s, false, "cannot steer probes to gen %d: %s", n->id, strerror(-r));
			return;
		}
		st->pinned = true;
	}
	st->check_port = port + 1 >= STAGE_CHECK_LO + STAGE_CHECK_PORTS ? STAGE_CHECK_LO : port + 1;
	st->check_deadline = now + (st->o.check_ms > 1000 ? st->o.check_ms : 1000);
	if (st->o.check_cmd[0]) {
		pid_t pid = fork();

		if (pid == 0) {
			sigset_t none;

			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			probe_addr(s, &dst, &src, &len, port);
			inet_ntop(s->spec[0].family,
				  s->spec[0].family == AF_INET ? (void *)&((struct sockaddr_in *)&dst)->sin_addr
							       : (void *)&((struct sockaddr_in6 *)&dst)->sin6_addr,
				  text, sizeof(text));
			setenv("BATON_CHECK_HOST", text, 1);
			snprintf(text, sizeof(text), "%u", s->spec[0].port);
			setenv("BATON_CHECK_PORT", text, 1);
			snprintf(text, sizeof(text), "%d-%d", STAGE_CHECK_LO, STAGE_CHECK_LO + STAGE_CHECK_PORTS - 1);
			setenv("BATON_CHECK_PORTS", text, 1);
			snprintf(text, sizeof(text), "%d", n->id);
			setenv("BATON_CHECK_GEN", text, 1);
			snprintf(text, sizeof(text), "%d", (int)n->pid);
			setenv("BATON_CHECK_PID", text, 1);
			execl("/bin/sh", "sh", "-c", st->o.check_cmd, (char *)NULL);
			_exit(127);
		}
		if (pid < 0) {
			check_done(s, false, "cannot run the check command: %s", strerror(errno));
			return;
		}
		st->check_pid = pid;
		return;
	}
	probe_addr(s, &dst, &src, &len, port);
	fd = socket(s->spec[0].family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		check_done(s, false, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* a reset on close: the reserved port is free again at once */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ .l_onoff = 1, .l_linger = 0 }, sizeof(struct linger));
	if (bind(fd, (struct sockaddr *)&src, len) ||
	    (connect(fd, (struct sockaddr *)&dst, len) && errno != EINPROGRESS)) {
		r = errno;
		close(fd);
		check_done(s, false, "cannot connect from port %d: %s", port, strerror(r));
		return;
	}
	st->check_fd = fd;
	st->check_sent = false;
	st->check_len = 0;
}

static void check_poll(struct sup *s, long long now)
{
	struct stage *st = &s->stage;
	struct pollfd p = { .fd = st->check_fd, .events = st->check_sent ? POLLIN : POLLOUT };
	char req[256];
	ssize_t got;
	int err = 0, code;
	socklen_t el = sizeof(err);

	if (poll(&p, 1, 0) == 1) {
		if (!st->check_sent) {
			getsockopt(st->check_fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err) {
				check_done(s, false, "connect: %s", strerror(err));
				return;
			}
			snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: baton-check\r\n\r\n",
				 st->o.check_path, st->o.check_host);
			if (send(st->check_fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
				check_done(s, false, "send: %s", strerror(errno));
				return;
			}
			st->check_sent = true;
		} else {
			got = recv(st->check_fd, st->check_buf + st->check_len,
				   sizeof(st->check_buf) - 1 - st->check_len, 0);
			if (got > 0)
				st->check_len += (size_t)got;
			st->check_buf[st->check_len] = '\0';
			if (sscanf(st->check_buf, "HTTP/1.%*d %d", &code) == 1 && strchr(st->check_buf, '\n')) {
				if (code >= 200 && code < 400)
					check_done(s, true, "GET %s: %d", st->o.check_path, code);
				else
					check_done(s, false, "GET %s answered %d", st->o.check_path, code);
				return;
			}
			if (got <= 0 || st->check_len == sizeof(st->check_buf) - 1) {
				check_done(s, false, "GET %s: %s", st->o.check_path,
					   got < 0 ? strerror(errno) : "no HTTP status line");
				return;
			}
		}
	}
	if (now >= st->check_deadline)
		check_done(s, false, "GET %s: no answer within %lld ms", st->o.check_path,
			   st->o.check_ms > 1000 ? st->o.check_ms : 1000);
}

void stage_reaped(struct sup *s, pid_t pid, int status)
{
	struct stage *st = &s->stage;
	char how[128];

	if (pid <= 0 || pid != st->check_pid)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		check_done(s, true, "check command passed");
		return;
	}
	describe_exit(status, how, sizeof(how));
	check_done(s, false, "check command %s", how);
}

void check_tick(struct sup *s, long long now)
{
	struct stage *st = &s->stage;

	if (!st->o.check_path[0] && !st->o.check_cmd[0])
		return;
	if (st->check_fd > 0) {
		check_poll(s, now);
		return;
	}
	if (st->check_pid > 0) {
		if (now >= st->check_deadline) {
			kill(st->check_pid, SIGKILL);
			check_done(s, false, "check command gave no verdict within %lld ms",
				   st->o.check_ms > 1000 ? st->o.check_ms : 1000);
		}
		return;
	}
	if (now >= st->next_check_ms)
		check_start(s, now);
}

/* ---- the tick ------------------------------------------------------------------------ */

/* The new generation's health, with a watch of its own: stopped or hung is
 * a failure like an exit. Its exit is gen_exited's (keep_gone). */
bool watch_tick(struct sup *s, long long now)
{
	struct baton_watch_opts wo = { .sz = sizeof(wo), .hang_ms = (uint32_t)s->cfg->hang_ms, .keep_gone = true,
				       .owned_only = true, .log = lib_log, .log_ctx = s };
	struct stage *st = &s->stage;
	struct gen *n = &s->gen[st->new_gi];
	int l;

	if (n->pid <= 0)
		return false;
	if (!st->watch) {
		st->watch = calloc((size_t)s->nl, sizeof(*st->watch));
		if (!st->watch)
			return false;
		for (l = 0; l < s->nl; l++) {
			st->watch[l] = baton_watch_new(s->grp[l], &wo);
			if (st->watch[l] && n->slot[l] >= 0)
				baton_watch_set_owner(st->watch[l], n->slot[l], n->pid);
		}
	}
	for (l = 0; l < s->nl; l++) {
		struct baton_member_health h;

		if (!st->watch[l] || n->slot[l] < 0)
			continue;
		baton_watch_tick(st->watch[l], (uint64_t)now);
		if (!baton_watch_health(st->watch[l], n->slot[l], &h) &&
		    (h.health == BATON_HEALTH_STOPPED || h.health == BATON_HEALTH_HUNG)) {
			char why[160];

			snprintf(why, sizeof(why), "gen %d is unhealthy (%s%s on listener %d)", n->id,
				 baton_health_name(h.health), h.health == BATON_HEALTH_STOPPED ? ", SIGSTOP" : "", l);
			snprintf(n->health, sizeof(n->health), "fenced: %s", baton_health_name(h.health));
			stage_fail(s, why);
			return true;
		}
	}
	return false;
}
