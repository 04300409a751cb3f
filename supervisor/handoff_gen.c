/* SPDX-License-Identifier: BSD-2-Clause */
/* Idle-connection handoff (part of handoff.c's feature): a generation's
 * channel, made before its spawn, given to it as inherited fds and closed
 * at its stop; and the channels a previous supervisor's generations still
 * hold, taken back with pidfd_getfd. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bindmode.h"
#include "core.h"
#include "envbuild.h"
#include "genspawn.h"
#include "handoff.h"
#include "handoff_chan.h"
#include "util.h"

/* A copy of the generation's fd FD whose inode is INO, or -1. */
static int take_back(int pidfd, int fd, unsigned long long ino)
{
	struct stat st;
	int type, copy;
	socklen_t tl = sizeof(type);

	if (fd < 0 || !ino || (copy = baton_pidfd_getfd(pidfd, fd)) < 0)
		return -1;
	if (fstat(copy, &st) || st.st_ino != ino || getsockopt(copy, SOL_SOCKET, SO_TYPE, &type, &tl) ||
	    type != SOCK_SEQPACKET) {
		close(copy);
		return -1;
	}
	return copy;
}

/* Slot GI's generation was started by a supervisor before this one: its
 * channel is taken back from it, with whatever waits in either queue. */
void ho_adopt(struct sup *s, int gi)
{
	struct handoff *h = s->handoff;
	struct chan *c = &h->ch[gi];
	struct handoff_chan hc = { .fd = { -1, -1 } };
	struct gen *g = &s->gen[gi];

	c->adopt = false;
	c->mslot = -1;
	for (int m = 0; m < HANDOFF_GENS; m++)
		if (h->map->chan[m].id == (uint32_t)g->id && h->map->chan[m].ino[0]) {
			hc = h->map->chan[m];
			c->mslot = m;
		}
	c->gen = take_back(g->pidfd, hc.fd[0], hc.ino[0]);
	c->sup = take_back(g->pidfd, hc.fd[1], hc.ino[1]);
	if (c->gen < 0 || c->sup < 0 || ho_ch_watch(s, gi)) {
		if (c->gen >= 0 || c->sup >= 0 || hc.ino[0])
			say_warn(s, "handoff: could not take back the channel of gen %d (pid %d); its idle "
				    "connections are closed at its stop, not handed off", g->id, (int)g->pid);
		if (c->gen >= 0)
			close(c->gen);
		if (c->sup >= 0)
			close(c->sup);
		c->gen = c->sup = -1;
		if (c->mslot >= 0)
			__atomic_store_n(&h->map->draining[c->mslot], 0, __ATOMIC_RELAXED);
		return;
	}
	c->id = g->id;
	c->rescan = true;
	c->draining = g->state == GEN_DRAINING && s->active >= 0 && s->active != gi &&
		      __atomic_load_n(&h->map->draining[c->mslot], __ATOMIC_RELAXED) == (uint32_t)g->id;
	if (!c->draining)
		__atomic_store_n(&h->map->draining[c->mslot], 0, __ATOMIC_RELAXED);
	if (s->cfg->verbose)
		say(s, "handoff: took back the channel of gen %d", g->id);
}


bool ho_any_adopt(const struct sup *s)
{
	for (int i = 0; i < MAX_GENS; i++)
		if (ho_needs_adopt(s, i))
			return true;
	return false;
}

/* After a resume, once every running generation's channel is back: the
 * channels of generations that ended while no supervisor ran. Their
 * supervisor end lives on in the generation started after them; what they
 * gave meanwhile waits there and goes to the serving generation, checked
 * like any give of a generation told to stop. */
void ho_orphans(struct sup *s)
{
	struct handoff *h = s->handoff;

	for (int m = 0; m < HANDOFF_GENS; m++) {
		struct handoff_chan hc = h->map->chan[m];
		uint32_t drained = __atomic_load_n(&h->map->draining[m], __ATOMIC_RELAXED);
		int holder = -1, owner = -1, ch, took = 0, bad = 0;

		if (!hc.ino[1] || !hc.id || hc.alt_fd < 0 || !hc.alt_id)
			continue;
		for (int i = 0; i < MAX_GENS; i++) {
			const struct gen *g = &s->gen[i];

			if (g->state == GEN_FREE || g->state == GEN_EXITED || g->pid <= 0)
				continue;
			if (g->id == (int)hc.id)
				owner = i;
			if (g->id == (int)hc.alt_id && g->pidfd >= 0)
				holder = i;
		}
		if (owner >= 0 || holder < 0)
			continue;	/* it runs (its channel is back), or nobody kept it */
		ch = take_back(s->gen[holder].pidfd, hc.alt_fd, hc.ino[1]);
		for (int budget = 0; ch >= 0 && budget < HANDOFF_WAKES; budget++) {
			struct handoff_msg msg;
			int conn, nfd, trunc;
			ssize_t n = ho_recv_msg_flags(ch, &msg, &conn, &nfd, &trunc, MSG_PEEK);

			if (n <= 0)
				break;	/* nothing more, or nobody holds the other end */
			if (!handoff_msg_check(&msg, (long)n, nfd, trunc, 1u << HANDOFF_GIVE) && ho_moved_before(h, conn)) {
				close(conn);
				ho_consume(ch);
				continue;
			}
			if (handoff_msg_check(&msg, (long)n, nfd, trunc, 1u << HANDOFF_GIVE) || drained != hc.id ||
			    msg.listener >= (uint32_t)s->nl || s->spec[msg.listener].handoff != BATON_HANDOFF_IDLE ||
			    !ho_conn_of(h, s, conn, (int)msg.listener)) {
				if (conn >= 0)
					close(conn);
				ho_consume(ch);
				h->refused += n > 0;
				bad++;
				continue;
			}
			h->offered++;
			took++;
			ho_begin_move(h, conn);
			ho_forward(s, conn, (int)msg.listener, -1, 0);
			ho_consume(ch);
			ho_end_move(h);
		}
		if (ch >= 0) {
			close(ch);
			if (took || bad)
				say(s, "handoff: gen %u, which ended while no supervisor ran, gave %d idle connection%s "
				       "meanwhile (%d refused): handed on", hc.id, took, took == 1 ? "" : "s", bad);
		}
		__atomic_store_n(&h->map->draining[m], 0, __ATOMIC_RELAXED);
		h->map->chan[m] = (struct handoff_chan){ .fd = { -1, -1 }, .alt_fd = -1 };
	}
}

/* A map index for the generation starting in slot GI: GI itself when no
 * other generation uses it (after a resume, generations may sit in other
 * slots than the index they were started with), else the first free one. */
static int map_slot(const struct sup *s, int gi)
{
	const struct handoff *h = s->handoff;
	bool used[HANDOFF_GENS] = { false };

	for (int i = 0; i < MAX_GENS; i++) {
		const struct gen *g = &s->gen[i];

		if (i == gi || g->state == GEN_FREE || g->state == GEN_EXITED)
			continue;
		if (h->ch[i].mslot >= 0)
			used[h->ch[i].mslot] = true;
		for (int m = 0; m < HANDOFF_GENS; m++)	/* not taken back yet */
			if (h->ch[i].adopt && h->map->chan[m].id == (uint32_t)g->id)
				used[m] = true;
	}
	if (!used[gi])
		return gi;
	for (int m = 0; m < HANDOFF_GENS; m++)
		if (!used[m])
			return m;
	return gi;	/* cannot be: one generation per slot */
}

/* Before the spawn of slot GI's generation: its channel. The child's
 * environment: BATON_HANDOFF=v2;SLOT;LISTENERS;FD;KEEPFD;MAP. */
void handoff_gen_start(struct sup *s, int gi)
{
	struct handoff *h = s->handoff;
	struct chan *c;
	struct stat a, b;
	int sv[2], m, base;

	if (!h)
		return;
	h->spawn_gi = -1;
	if (h->ch[gi].sup >= 0 || h->ch[gi].gen >= 0)
		ho_ch_close(s, gi);
	h->ch[gi].adopt = false;
	h->ch[gi].mslot = map_slot(s, gi);
	m = h->ch[gi].mslot;
	h->answered_before += h->map->answered[m];
	__atomic_store_n(&h->map->answered[m], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&h->map->draining[m], 0, __ATOMIC_RELAXED);
	h->map->chan[m] = (struct handoff_chan){ .fd = { -1, -1 } };
	h->in[gi] = h->out[gi] = 0;
	if (!s->preload_lib[0] || bindmode_cgroup(s)) {
		if (!h->said_no_shim)
			say(s, "?handoff=idle needs the preload shim, which sees the server's close(); generations run "
			       "without it (--no-preload, --bind-mode cgroup, or no shim found), so their idle connections "
			       "are closed at their stop as before (handoffs stay 0)");
		h->said_no_shim = true;
		return;
	}
	/* no SOCK_NONBLOCK: that flag would be the generation's too; every
	 * call here says MSG_DONTWAIT */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) || fstat(sv[0], &a) || fstat(sv[1], &b)) {
		say_warn(s, "handoff: cannot make gen %d's channel: %s; its idle connections are closed at its stop",
			 s->gen[gi].id, strerror(errno));
		return;
	}
	c = &h->ch[gi];
	c->sup = sv[0];
	c->gen = sv[1];
	c->id = s->gen[gi].id;
	if (ho_ch_watch(s, gi)) {
		close(sv[0]);
		close(sv[1]);
		c->sup = c->gen = -1;
		return;
	}
	base = spawn_fd_after_map(s);	/* where spawn puts the channel: past the map's memfd too */
	h->map->chan[m] = (struct handoff_chan){ .fd = { base, base + 1 }, .id = (uint32_t)c->id,
						 .ino = { (uint64_t)b.st_ino, (uint64_t)a.st_ino }, .alt_fd = -1 };
	h->spawn_gi = gi;
	h->spawn_prev = -1;
	if (s->active >= 0 && s->active != gi && h->ch[s->active].sup >= 0 && h->ch[s->active].mslot >= 0) {
		struct handoff_chan *pc = &h->map->chan[h->ch[s->active].mslot];

		h->spawn_prev = s->active;
		pc->alt_fd = base + 2;
		pc->alt_id = (uint32_t)c->id;
	}
}

/* Before the spawn: the fds the generation gets after its listeners (and
 * the shim's memfd), in FD: the channel's ends, the generation's then ours
 * (kept for a supervisor that takes it back), and the serving generation's
 * supervisor end (the old one may exit while no supervisor runs, with
 * connections it gave in the queue). Returns how many: 0, 2 or 3. */
int handoff_spawn_fds(const struct sup *s, int fd[3])
{
	const struct handoff *h = s->handoff;
	const struct chan *c;

	if (!h || h->spawn_gi < 0)
		return 0;
	c = &h->ch[h->spawn_gi];
	fd[0] = c->gen;
	fd[1] = c->sup;
	if (h->spawn_prev < 0)
		return 2;
	fd[2] = h->ch[h->spawn_prev].sup;
	return 3;
}

/* Before the spawn, into the generation's environment: BATON_HANDOFF,
 * naming those fds as placed from BASE. 0 or -ENOMEM. */
int handoff_env(const struct sup *s, struct envb *e, int base)
{
	const struct handoff *h = s->handoff;
	char env[4096 + 256];
	size_t off;

	if (!h || h->spawn_gi < 0)
		return 0;
	off = (size_t)snprintf(env, sizeof(env), "v2;%d;", h->ch[h->spawn_gi].mslot);
	for (int l = 0, n = 0; l < s->nl && off < sizeof(env); l++)
		if (s->spec[l].handoff == BATON_HANDOFF_IDLE && s->spec[l].proto == BATON_PROTO_TCP)
			off += (size_t)snprintf(env + off, sizeof(env) - off, "%s%d", n++ ? "," : "", l);
	if (off < sizeof(env))
		snprintf(env + off, sizeof(env) - off, ";%d;%d;%d;%s", base, base + 1,
			 h->spawn_prev >= 0 ? base + 2 : -1, h->map_path);
	return envb_set(e, "BATON_HANDOFF", env);
}

/* G is told to stop: its idle connections go to the serving generation,
 * if there is one (not at `baton stop`: nothing would take them). */
void handoff_gen_stop(struct sup *s, struct gen *g)
{
	struct handoff *h = s->handoff;
	int gi = (int)(g - s->gen);

	if (!h || s->stopping || s->active < 0 || s->active == gi || s->gen[s->active].state != GEN_ACTIVE ||
	    h->ch[gi].sup < 0)
		return;
	h->ch[gi].draining = true;
	__atomic_store_n(&h->map->draining[h->ch[gi].mslot], (uint32_t)g->id, __ATOMIC_RELAXED);
}

/* Whether CONN is an established TCP connection to listener L: its
 * family, its local address (any, for a wildcard listener) and port, and
 * our network namespace. Anything else a generation sends is not a client
 * of this listener. */
