/* SPDX-License-Identifier: BSD-2-Clause */
/* Readiness: sd_notify messages from a generation (READY=1) or from the
 * preload shim (the server listens), matched to the generation that sent them. */
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

#include "core.h"
#include "gen.h"
#include "ready.h"
#include "util.h"

/* The parent of PID, or -1. */
static pid_t parent_of(pid_t pid)
{
	struct baton_proc_stat st;

	return baton_proc_stat(pid, -1, &st) ? -1 : st.ppid;
}

/* Whose message is it: the generation's main process, or, for the shim's
 * listening report, one of its descendants (a wrapper that forks, or a
 * server whose workers bind), looking at most 8 parents up. */
bool notify_from(const struct gen *g, const struct baton_notify_msg *m)
{
	pid_t p = m->pid;
	int hops;

	if (p == g->pid)
		return true;
	if (!m->listening || p <= 0)
		return false;
	for (hops = 0; hops < 8 && p > 1; hops++) {
		p = parent_of(p);
		if (p == g->pid)
			return true;
	}
	return false;
}

/* The shim's listen() report counts as readiness with --ready listen, and
 * by default (auto): connections reach a member that listens even before
 * the server accepts, so they wait in its queue, never refused. */
bool listen_is_ready(const struct sup *s, const struct baton_notify_msg *m)
{
	return m->listening && (s->cfg->ready == SUP_READY_LISTEN || s->cfg->ready == SUP_READY_AUTO);
}

void read_notify(struct sup *s)
{
	struct baton_notify_msg m;
	int i, r, budget;

	for (budget = 0; budget < 64; budget++) {
		r = baton_notify_recv(s->notifyfd, &m);
		if (r == -EAGAIN)
			return;
		if (r)
			continue;	/* malformed: ignored, as systemd does */
		for (i = 0; i < MAX_GENS; i++) {
			struct gen *g = &s->gen[i];

			if (g->state == GEN_FREE || g->pid <= 0 || !notify_from(g, &m))
				continue;
			g->heard = true;
			if ((m.ready || listen_is_ready(s, &m)) && g->state == GEN_STARTING)
				gen_ready(s, i, false);
			break;
		}
	}
}

