/* SPDX-License-Identifier: BSD-2-Clause */
/* A steering set: one loaded program and one set of maps for any number of
 * groups (listeners), each group's entries at its listener index (bpf/steer.h).
 * The policy publish lives here: the tables groups stage in one free policy
 * bank are put in force by one commit for all of them (lib/steer_banks.c);
 * and the kernel failover's owners. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer_int.h"
#include "steer.skel.h"

#define MAX_LISTENERS 65536u

_Static_assert(sizeof(struct baton_steerset_opts) == baton_offsetofend(struct baton_steerset_opts, pin_path),
	       "baton_steerset_opts ends in padding");

/* Per-listener maps grow with the number of listeners. */
static int size_maps(struct baton_steerset *set, struct steer_bpf *skel)
{
	int r;
	struct { struct bpf_map *m; uint32_t per; } v[] = {
		{ skel->maps.socks, BATON_STEER_SLOTS }, { skel->maps.listeners, 1 },
		{ skel->maps.stats, BATON_STEER_SLOTS + 1 },
		{ skel->maps.pins, BATON_STEER_PINS }, { skel->maps.origin, BATON_STEER_SLOTS },
		{ skel->maps.flowcfg, 1 }, { skel->maps.slotep, BATON_STEER_SLOTS }, { skel->maps.markers, 256 },
		{ skel->maps.owners, BATON_STEER_SLOTS }, { skel->maps.sigdown, BATON_STEER_SLOTS },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (bpf_map__set_max_entries(v[i].m, v[i].per * set->cap))
			return -errno;
	skel->rodata->nlisteners = set->cap;
	/* K banks of one policy per listener */
	if ((r = steer_banks_size(skel, set->cap)))
		return r;
	return steer_flows_size(set, skel);
}

/* Opens and loads the program; with OLD, it shares OLD's maps. */
static struct steer_bpf *set_load(struct baton_steerset *set, struct steer_bpf *old, int *err)
{
	struct steer_bpf *skel = steer_bpf__open();
	struct bpf_map *m;

	if (!skel) {
		*err = -errno;
		return NULL;
	}
	if (set->no_migrate)
		bpf_program__set_expected_attach_type(skel->progs.steer, BPF_SK_REUSEPORT_SELECT);
	if ((*err = size_maps(set, skel)))
		goto fail;
	if (set->pin_path[0] && (*err = steer_set_pins(set, skel)))
		goto fail;
	/* every map but the program's own constants (.rodata) */
	if (old)
		bpf_object__for_each_map(m, old->obj) {
			struct bpf_map *n = bpf_object__find_map_by_name(skel->obj, bpf_map__name(m));

			if (n && !bpf_map__is_internal(m) && bpf_map__reuse_fd(n, bpf_map__fd(m))) {
				*err = -errno;
				goto fail;
			}
		}
	*err = steer_bpf__load(skel);
	if (*err)
		goto fail;
	if (set->pin_path[0])
		steer_pin_prog(set, skel);
	return skel;
fail:
	steer_bpf__destroy(skel);
	return NULL;
}

/* A pinned set is resumed with the room it was made with (libbpf reuses a
 * pinned map only if its size matches): more than asked is used as is;
 * fewer is refused, since its sockarray holds the running members and a
 * socket cannot join a second one. */
static int fit_pinned(struct baton_steerset *set, uint32_t *pinned)
{
	uint32_t have = *pinned = steer_pinned_cap(set->pin_path);

	if (!have || have == set->cap)
		return 0;
	if (have > set->cap) {
		LOG(set, INFO, "the pinned steering set at %s has room for %u listeners; resuming it as is for %u",
		    set->pin_path, have, set->cap);
		set->cap = have;
		return 0;
	}
	if (have == 1 && steer_pinned_old(set->pin_path)) {
		/* one program per listener, a seqcount latch: its policy is
		 * carried over into a set of one only (lib/steer_pins.c) */
		LOG(set, ERROR, "%s holds the pins of an older baton's group of one listener (cfg, ctl: one program "
				"per listener), not a steering set of %u listeners: a set carries such pins over only "
				"for one listener; stop that generation's servers (or go on with the older baton), then "
				"remove the directory to start afresh", set->pin_path, set->cap);
		return -EEXIST;
	}
	LOG(set, ERROR, "the pinned steering set at %s has room for %u listener%s, not the %u asked for: its "
			"servers keep their members there; stop them (or run with at most %u listeners), then remove "
			"the directory to start afresh", set->pin_path, have, have == 1 ? "" : "s", set->cap, have);
	return -EEXIST;
}

struct baton_steerset *steer_set_create(const struct baton_steerset_opts *o, int *err)
{
	struct baton_steerset *set = calloc(1, sizeof(*set));
	uint32_t pinned = 0;

	if (!set) {
		*err = -ENOMEM;
		return NULL;
	}
	set->refs = 1;
	set->log = o->log;
	set->log_ctx = o->log_ctx;
	set->cap = o->listeners ? o->listeners : 1;
	set->no_migrate = o->no_migrate;
	set->flows = o->flows;
	set->flow_table = o->flow_table ? o->flow_table : BATON_FLOW_TABLE_DEFAULT;
	if (o->pin_path && o->pin_path[0]) {
		snprintf(set->pin_path, sizeof(set->pin_path), "%s", o->pin_path);
		if ((*err = steer_mkdir_p(set->pin_path))) {
			LOG(set, ERROR, "cannot create %s: %s (%s)", set->pin_path, strerror(-*err),
			    *err == -EPERM || *err == -EACCES ? "pinning needs CAP_BPF and CAP_NET_ADMIN, or root"
							      : "is bpffs mounted there?");
			goto fail;
		}
		if ((*err = fit_pinned(set, &pinned)))
			goto fail;
	}
	set->groups = calloc(set->cap, sizeof(*set->groups));
	if (!set->groups) {
		*err = -ENOMEM;
		goto fail;
	}
	if (set->cap > 1) {
		/* touched only where groups are made; none if it cannot be had */
		void *p = mmap(NULL, set->cap * STEER_GROUP_SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);

		if (p != MAP_FAILED) {
			set->slab = p;
			set->slab_len = set->cap * STEER_GROUP_SZ;
		}
	}
	set->skel = set_load(set, NULL, err);
	if (!set->skel)
		goto fail;
	if ((*err = steer_banks_init(&set->banks, set->skel, set->cap))) {
		LOG(set, ERROR, "cannot map the steering policy banks: %s", strerror(-*err));
		goto fail;
	}
	/* a resumed set goes on from the live bank it finds; a decision made
	 * before this process could still read any other */
	if (pinned)
		steer_banks_resumed(&set->banks);
	return set;
fail:
	steer_set_put(set);
	return NULL;
}

void steer_set_put(struct baton_steerset *set)
{
	if (!set || --set->refs > 0)
		return;
	steer_banks_free(&set->banks);	/* before the maps it maps go */
	if (set->skel)
		steer_bpf__destroy(set->skel);
	free(set->own);
	free(set->groups);
	if (set->slab)
		munmap(set->slab, set->slab_len);
	free(set);
}

struct baton_group *steer_set_slab(struct baton_steerset *set, uint32_t lid)
{
	struct baton_group *g;

	if (!set->slab || lid >= set->cap || set->groups[lid])
		return NULL;
	g = (struct baton_group *)(set->slab + lid * STEER_GROUP_SZ);
	memset(g, 0, sizeof(*g));	/* a group that left may have been here */
	g->in_slab = true;
	return g;
}

struct baton_steerset *baton_steerset_new(const struct baton_steerset_opts *opts)
{
	struct baton_steerset_opts o;
	struct baton_steerset *set;
	int err;

	if ((err = BATON_OPTS_COPY(&o, opts, baton_steerset_opts, pin_path))) {
		errno = -err;
		return NULL;
	}
	if (o.listeners > MAX_LISTENERS || o.flow_table > BATON_FLOW_TABLE_MAX ||
	    (o.pin_path && strlen(o.pin_path) >= PATH_MAX - 32)) {
		baton_logf(o.log, o.log_ctx, BATON_LOG_ERROR, "steering set: %u listeners (at most %u), flow table %u "
			   "(at most %u), pin_path of %zu bytes (at most %d)", o.listeners, MAX_LISTENERS,
			   o.flow_table, BATON_FLOW_TABLE_MAX, o.pin_path ? strlen(o.pin_path) : 0, PATH_MAX - 33);
		errno = EINVAL;
		return NULL;
	}
	/* a load that fails is the caller's to say (a supervisor falls back on
	 * groups of their own, which say it once); a refused pinned set is
	 * said here, with its reason */
	set = steer_set_create(&o, &err);
	if (!set)
		errno = -err;
	return set;
}

void baton_steerset_free(struct baton_steerset *set)
{
	steer_set_put(set);
}

int baton_steerset_capacity(const struct baton_steerset *set)
{
	return set ? (int)set->cap : -EINVAL;
}

int baton_steerset_stats(const struct baton_steerset *set, struct baton_steerset_stats *out, size_t len)
{
	struct baton_steerset_stats st = { 0 };
	struct steer_banks *b;

	if (!set)
		return -EINVAL;
	b = (struct steer_banks *)&set->banks;	/* its lock only: nothing else changes */
	st.listeners = set->cap;
	pthread_mutex_lock(&b->mu);
	st.banks = b->k;
	st.commits = b->staged;
	st.bank_waits = b->waits;
	pthread_mutex_unlock(&b->mu);
	return baton_out_copy(out, len, &st, sizeof(st), 1);
}

int steer_set_join(struct baton_steerset *set, struct baton_group *g, uint32_t lid)
{
	if (lid >= set->cap) {
		LOG(set, ERROR, "listener %u is not in the steering set (room for %u)", lid, set->cap);
		return -ENOSPC;
	}
	if (set->groups[lid]) {
		LOG(set, ERROR, "listener %u of the steering set has a group already", lid);
		return -EEXIST;
	}
	set->groups[lid] = g;
	set->refs++;
	g->set = set;
	g->lid = lid;
	return 0;
}

/* The listener's address leaves the program's table, so that a later group
 * may take it under another index. */
static void forget_address(struct baton_steerset *set, const struct baton_group *g);

void steer_set_leave(struct baton_steerset *set, struct baton_group *g)
{
	for (int s = 0; s < BATON_MAX_SLOTS; s++)
		if (g->kowner[s])
			steer_set_owner(g, s, 0);
	forget_address(set, g);
	if (set->groups[g->lid] == g)
		set->groups[g->lid] = NULL;
	g->set = NULL;
	steer_set_put(set);
}

int steer_set_stage(struct baton_steerset *set, struct baton_group *g, struct baton_steer_cfg **cfg)
{
	int r;

	if (!set->staging) {
		r = steer_banks_stage(&set->banks, &set->stage_bank);
		if (r == -ETIMEDOUT)
			LOG(set, ERROR, "no free policy bank: the kernel's RCU grace period has not ended in 2 s "
					"(a CPU stuck in the kernel?); the running policy stays");
		if (r)
			return r;
		set->staging = true;
	}
	/* the staged bank is one no decision can reach: written in place */
	*cfg = steer_banks_write(&set->banks, set->stage_bank, g->lid);
	return 0;
}

/* One store-release makes every table staged since the last commit live
 * for every listener at once (lib/steer_banks.c). */
static void set_commit(struct baton_steerset *set)
{
	if (!set->staging)
		return;
	steer_banks_commit(&set->banks, set->stage_bank);
	set->staging = false;
	if (set->fences_due)
		steer_fences_due(set);
}

int steer_set_publish(struct baton_steerset *set)
{
	if (!set->txn)
		set_commit(set);
	return 0;
}

/* A switch publishes every listener of a set in index order inside one
 * transaction, and what it touches for each (a line or two of the group,
 * the entry of the staged bank) was last touched a reload ago: asking for
 * the lines of the listener a few places ahead lets those misses overlap
 * (at 1,024 listeners: 0.3 ms for the loop before, 0.2 ms with it). */
#define PREFETCH_AHEAD 4
static void prefetch_ahead(const struct baton_steerset *set, uint32_t lid)
{
	const struct baton_group *n;
	const char *e;

	if (lid + PREFETCH_AHEAD >= set->cap || !(n = set->groups[lid + PREFETCH_AHEAD]))
		return;
	__builtin_prefetch(n, 1);
	__builtin_prefetch((const char *)n + 64, 1);
	e = (const char *)steer_banks_entry(&set->banks, set->stage_bank, lid + PREFETCH_AHEAD);
	for (size_t i = 0; i < sizeof(struct baton_steer_cfg); i += 64)
		__builtin_prefetch(e + i, 1);
}

/* The listener's pick table, staged in its set: in force at once, or at
 * the set's commit (baton_steerset_begin/_commit). */
int steer_set_publish_group(struct baton_group *g)
{
	const struct baton_steer_cfg *live = steer_set_live(g->set, g);
	struct baton_steer_cfg want, *cfg;
	int r;

	if (g->set->staging) {
		/* a transaction has a bank staged already (a reload's switch of
		 * every listener): the table is built in place, no copy */
		if ((r = steer_set_stage(g->set, g, &cfg)))
			return r;
		prefetch_ahead(g->set, g->lid);
		steer_build_table(g, cfg);
		return steer_set_publish(g->set);
	}
	steer_build_table(g, &want);
	/* the table in force already (a fence or removal of a member with no
	 * share): no commit, which would retire a bank for nothing. Never
	 * published (version 0): published, so a resumed group finds it */
	if (live->version && live->n == want.n &&
	    !memcmp(live->slot, want.slot, want.n <= BATON_STEER_TABLE ? want.n : BATON_STEER_TABLE))
		return 0;
	if ((r = steer_set_stage(g->set, g, &cfg)))
		return r;
	*cfg = want;
	return steer_set_publish(g->set);
}

const struct baton_steer_cfg *steer_set_live(const struct baton_steerset *set, const struct baton_group *g)
{
	return steer_banks_entry(&set->banks, set->banks.cur, g->lid);
}

int baton_steerset_begin(struct baton_steerset *set)
{
	if (!set)
		return -EINVAL;
	set->txn++;
	return 0;
}

int baton_steerset_commit(struct baton_steerset *set)
{
	if (!set || !set->txn)
		return -EINVAL;
	if (!--set->txn)
		set_commit(set);
	return 0;
}

/* A fresh program over the same maps, attached to every group that has
 * one attached: the kernel swaps each group's program under RCU, so every
 * decision is made by the old or the new one. */
int steer_set_reload(struct baton_steerset *set)
{
	struct steer_bpf *fresh;
	int r;

	fresh = set_load(set, set->skel, &r);
	if (!fresh) {
		LOG(set, ERROR, "cannot load a fresh steering program: %s; the running one stays", strerror(-r));
		return r;
	}
	for (uint32_t l = 0; l < set->cap; l++) {
		struct baton_group *g = set->groups[l];
		int prog = bpf_program__fd(fresh->progs.steer), fd;

		if (!g || (fd = steer_live_fd(g)) < 0)
			continue;
		if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof(prog))) {
			r = -errno;
			LOG(set, ERROR, "cannot attach the fresh steering program: %s; the running one stays",
			    strerror(-r));
			steer_bpf__destroy(fresh);
			return r;
		}
		g->attached = true;
	}
	steer_bpf__destroy(set->skel);
	set->skel = fresh;
	return 0;
}

static void listener_key(const struct baton_group *g, struct baton_steer_lkey *k)
{
	memset(k, 0, sizeof(*k));
	k->family = g->addr.ss_family;
	k->protocol = g->type == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
	if (k->family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&g->addr;

		k->port = ntohs(a->sin_port);
		memcpy(&k->addr[0], &a->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *a = (const void *)&g->addr;

		k->port = ntohs(a->sin6_port);
		memcpy(k->addr, &a->sin6_addr, 16);
	}
}

int steer_set_address(struct baton_steerset *set, const struct baton_group *g)
{
	struct baton_steer_lkey k;
	uint32_t v = g->lid, other;

	if (set->cap <= 1)
		return 0;	/* the program does not look */
	listener_key(g, &k);
	if (!bpf_map_lookup_elem(bpf_map__fd(set->skel->maps.listeners), &k, &other) && other != v &&
	    other < set->cap && set->groups[other]) {
		LOG(set, ERROR, "listener %u is on the same address as listener %u of the steering set", v, other);
		return -EADDRINUSE;
	}
	return bpf_map_update_elem(bpf_map__fd(set->skel->maps.listeners), &k, &v, BPF_ANY) ? -errno : 0;
}

static void forget_address(struct baton_steerset *set, const struct baton_group *g)
{
	struct baton_steer_lkey k;
	uint32_t v;

	if (set->cap <= 1 || !g->addr.ss_family || set->pin_path[0])
		return;	/* pinned: a resumed supervisor finds its listeners there */
	listener_key(g, &k);
	if (!bpf_map_lookup_elem(bpf_map__fd(set->skel->maps.listeners), &k, &v) && v == g->lid)
		bpf_map_delete_elem(bpf_map__fd(set->skel->maps.listeners), &k);
}

/* ---- the kernel failover's owners (bpf/sigdown.h) ----------------------
 * owners[global slot] names a tgid; the sigdown hash holds one entry per
 * tgid named anywhere in the set, counted here, so that the stop watcher
 * finds a process in one lookup and the entry goes with its last slot. */

static int own_ref(struct baton_steerset *set, uint32_t tgid)
{
	uint32_t i, down = 0;

	for (i = 0; i < set->nown && set->own[i].tgid != tgid; i++)
		;
	if (i < set->nown) {
		set->own[i].refs++;
		return 0;
	}
	if (set->nown == set->own_cap) {
		uint32_t n = set->own_cap ? set->own_cap * 2 : 8;
		void *p = realloc(set->own, n * sizeof(*set->own));

		if (!p)
			return -ENOMEM;
		set->own = p;
		set->own_cap = n;
	}
	if (bpf_map_update_elem(bpf_map__fd(set->skel->maps.sigdown), &tgid, &down, BPF_NOEXIST) && errno != EEXIST)
		return -errno;
	set->own[set->nown].tgid = tgid;
	set->own[set->nown++].refs = 1;
	return 0;
}

static void own_unref(struct baton_steerset *set, uint32_t tgid)
{
	for (uint32_t i = 0; i < set->nown; i++) {
		if (set->own[i].tgid != tgid)
			continue;
		if (--set->own[i].refs == 0) {
			bpf_map_delete_elem(bpf_map__fd(set->skel->maps.sigdown), &tgid);
			set->own[i] = set->own[--set->nown];
		}
		return;
	}
}

int steer_set_owner(struct baton_group *g, int slot, uint32_t tgid)
{
	struct baton_steerset *set = g->set;
	uint32_t key, old;
	int r;

	if (!set || slot < 0 || slot >= BATON_MAX_SLOTS)
		return -EINVAL;
	old = g->kowner[slot];
	if (old == tgid)
		return 0;
	if (tgid && (r = own_ref(set, tgid)))
		return r;
	key = steer_gslot(g, slot);
	if (bpf_map_update_elem(bpf_map__fd(set->skel->maps.owners), &key, &tgid, BPF_ANY)) {
		r = -errno;
		if (tgid)
			own_unref(set, tgid);
		return r;
	}
	if (old)
		own_unref(set, old);
	g->kowner[slot] = tgid;
	return 0;
}

/* The stop watcher's map (bpf/sigdown.h), for lib/watch.c. -1 without eBPF. */
int baton_group_sigdown_fd(const struct baton_group *g)
{
	return g && g->mode == BATON_MODE_EBPF && g->set ? bpf_map__fd(g->set->skel->maps.sigdown) : -1;
}
