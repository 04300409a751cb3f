/* SPDX-License-Identifier: BSD-2-Clause */
/* Spare members: for each listener at most one socket for the next
 * generation, opened, bound, listening and in the group at weight 0, made
 * a batch per loop turn once a generation serves, so that a reload's start
 * takes it instead of making it. Only with the eBPF steering set, for TCP,
 * and for sockets the supervisor makes itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "gen.h"
#include "metrics.h"
#include "spare.h"
#include "util.h"

#define SPARE_BATCH 64	/* listeners a loop turn makes spares for: a few ms at most */

struct spares {
	int *slot;      /* per listener: the spare's slot in s->grp[l], -1 none */
	ino_t *ino;     /* its inode, for the generation's LISTEN_FDS record */
	uint64_t (*base)[CNT_N]; /* its slot's counters when it was made: what it takes from then on is
				  * the generation's, which accepts it */
	bool *exposed;  /* it could have been handed connections (see spare_tick) */
	uint64_t commits; /* the steering set's commits at the last look (watch_exposed) */
	int next;       /* the listener the next batch starts at */
	int count;      /* spares held */
	int taken;      /* spares the reload under way took */
	bool want;      /* a generation serves: spares are made until each listener has one */
};

static struct spares *spares_get(struct sup *s)
{
	struct spares *p = s->spares;
	int l;

	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->slot = malloc((size_t)s->nl * sizeof(*p->slot));
	p->ino = calloc((size_t)s->nl, sizeof(*p->ino));
	p->exposed = calloc((size_t)s->nl, sizeof(*p->exposed));
	p->base = calloc((size_t)s->nl, sizeof(*p->base));
	if (!p->slot || !p->ino || !p->exposed || !p->base) {
		free(p->base);
		free(p->slot);
		free(p->ino);
		free(p->exposed);
		free(p);
		return NULL;
	}
	for (l = 0; l < s->nl; l++)
		p->slot[l] = -1;
	s->spares = p;
	return p;
}

/* Listener L may hold a spare: its members are the supervisor's own TCP
 * sockets, steered by the set's program. Classic BPF picks by the kernel's
 * index (a spare would take traffic), a bound UDP socket takes datagrams
 * from the kernel's hash, and shared, passed or self-bound members are not
 * made here at all. */
static bool spare_fits(struct sup *s, int l)
{
	return s->set && s->spec[l].proto == BATON_PROTO_TCP && baton_group_mode(s->grp[l]) == BATON_MODE_EBPF &&
	       gen_makes_member(s, l);
}

/* Takes listener L's spare out of its group. The fence shuts it down
 * first: whatever the kernel's hash gave it (no slot with weight) moves to
 * the members that serve, by the program, instead of being reset. */
static void drop(struct sup *s, struct spares *p, int l)
{
	if (p->slot[l] < 0)
		return;
	baton_group_fence(s->grp[l], p->slot[l]);
	baton_group_remove(s->grp[l], p->slot[l]);
	p->slot[l] = -1;
	p->ino[l] = 0;
	p->exposed[l] = false;
	p->count--;
}

static int make_one(struct sup *s, struct spares *p, int l)
{
	struct stat st;
	int fd = baton_listener_open(&s->spec[l]), slot;

	if (fd < 0)
		return fd;
	slot = baton_group_add_made(s->grp[l], fd, 0);	/* the group keeps FD, or closes it */
	if (slot < 0)
		return slot;
	/* never among the members a spread over healthy ones picks */
	if (baton_group_set_reserve(s->grp[l], slot, true)) {
		baton_group_remove(s->grp[l], slot);
		return -EIO;
	}
	p->slot[l] = slot;
	p->ino[l] = fstat(baton_group_fd(s->grp[l], slot), &st) ? 0 : st.st_ino;
	metrics_slot_counts(s, l, slot, p->base[l]);
	p->exposed[l] = false;
	p->count++;
	return 0;
}

/* Whether listener L's serving member takes its connections: else the
 * program may hand the choice to the kernel's hash, and a spare is among
 * its candidates (it is in reserve: never the program's own pick). */
static bool served(const struct sup *s, int l)
{
	const struct gen *g = s->active >= 0 ? &s->gen[s->active] : NULL;

	if (!g || g->state != GEN_ACTIVE || g->pid <= 0 || g->slot[l] < 0)
		return false;
	return !(baton_group_flags(s->grp[l], g->slot[l]) & (BATON_SLOT_FENCED | BATON_SLOT_DOWN));
}

/* Whether the steering set put a policy in force since the last look: a
 * listener may have had no member taking traffic in between, too briefly
 * for a tick to see it (a generation that exits and the flip back). */
static bool policy_moved(struct sup *s, struct spares *p)
{
	struct baton_steerset_stats st;

	if (baton_steerset_stats(s->set, &st, sizeof(st)) <= 0 || st.commits == p->commits)
		return false;
	p->commits = st.commits;
	return true;
}

/* Whether listener L's spare holds connections. */
static bool holds(struct sup *s, struct spares *p, int l)
{
	struct baton_queue q;

	return !baton_group_queue(s->grp[l], p->slot[l], &q) && q.len;
}

/* Spares that could have taken connections while the serving member did
 * not (a fence, a frozen owner steered away, seen by a tick or found in
 * the spare's queue after a policy change) are retired once it serves
 * again, so nothing waits in a socket nobody accepts from; the next batch
 * makes them again. A reload under way takes them with what they hold. */
static void watch_exposed(struct sup *s, struct spares *p)
{
	bool moved_policy = policy_moved(s, p);
	int l, moved = 0;

	for (l = 0; l < s->nl; l++) {
		if (p->slot[l] < 0)
			continue;
		if (!served(s, l)) {
			p->exposed[l] = true;
			continue;
		}
		if (!p->exposed[l] && moved_policy)
			p->exposed[l] = holds(s, p, l);
		if (p->exposed[l] && s->reload < 0) {
			drop(s, p, l);
			moved++;
		}
	}
	if (moved) {
		say(s, "%d spare member%s retired (the serving generation was steered away meanwhile): what they "
		    "held moved to it", moved, moved == 1 ? "" : "s");
		p->want = true;
	}
}

void spare_tick(struct sup *s, long long now)
{
	struct spares *p = s->spares;
	int done = 0, l;

	(void)now;
	if (!p)
		return;
	if (p->count)
		watch_exposed(s, p);
	if (!p->want || s->reload >= 0 || s->stopping || s->active < 0 || s->gen[s->active].state != GEN_ACTIVE)
		return;
	for (; p->next < s->nl && done < SPARE_BATCH; p->next++) {
		l = p->next;
		if (p->slot[l] >= 0 || !spare_fits(s, l))
			continue;
		done++;
		if (make_one(s, p, l) < 0) {
			/* no spare here: the next reload makes this member as
			 * before; a full group or no files left are not retried */
			continue;
		}
	}
	if (p->next >= s->nl) {
		p->want = false;
		p->next = 0;
	}
}

/* Spares still to make: the loop turns again at once (each turn takes its
 * events first, then one batch), so 1,024 listeners have theirs within a
 * few tens of ms of a switch rather than 16 ticks later. */
int spare_wait_ms(const struct sup *s, long long now)
{
	(void)now;
	return s->spares && s->spares->want && s->reload < 0 && !s->stopping ? 0 : -1;
}

/* A generation serves (gen 1, a switch, adopted ones): spares from now on. */
void spare_arm(struct sup *s)
{
	struct spares *p;

	if (s->stopping || !s->set || !(p = spares_get(s)))
		return;
	p->want = true;
	p->next = 0;
}

/* A reload ended, done or not: what it took is made again. */
void spare_arm_after(struct sup *s)
{
	if (s->spares)
		s->spares->taken = 0;
	if (s->active >= 0)
		spare_arm(s);
}

/* Listener L's spare for G, being started: its slot (weight 0, as
 * start_gen wants it), with G's member inode and counter base; or -1. */
int spare_take(struct sup *s, struct gen *g, int l)
{
	struct spares *p = s->spares;
	int slot;

	if (!p || p->slot[l] < 0)
		return -1;
	slot = p->slot[l];
	if (baton_group_set_reserve(s->grp[l], slot, false))
		return -1;	/* the member is made as before; the spare stays one */
	g->member_ino[l] = p->ino[l];
	memcpy(g->count[l].base, p->base[l], sizeof(p->base[l]));
	g->count[l].based = true;
	p->slot[l] = -1;
	p->ino[l] = 0;
	p->exposed[l] = false;
	p->count--;
	p->taken++;
	return slot;
}

void spare_started(struct sup *s, int gi)
{
	struct spares *p = s->spares;

	if (p && p->taken)
		step(s, "gen %d took %d spare member%s (of %d listeners)", s->gen[gi].id, p->taken,
		     p->taken == 1 ? "" : "s", s->nl);
	if (p)
		p->taken = 0;
}

/* The supervisor stops (while the generations still listen), or tears
 * down: every spare leaves its group, its queue moved first. */
void spare_drop_all(struct sup *s)
{
	struct spares *p = s->spares;
	int l;

	if (!p)
		return;
	for (l = 0; l < s->nl && p->count; l++)
		drop(s, p, l);
	p->want = false;
}

void spare_closed(struct sup *s, bool clean)
{
	(void)clean;
	spare_drop_all(s);
}

void spare_fini(struct sup *s)
{
	struct spares *p = s->spares;

	if (!p)
		return;
	if (s->grp)
		spare_drop_all(s);
	free(p->slot);
	free(p->ino);
	free(p->exposed);
	free(p->base);
	free(p);
	s->spares = NULL;
}

int spare_count(const struct sup *s)
{
	return s->spares ? s->spares->count : 0;
}
