/* SPDX-License-Identifier: BSD-2-Clause */
/* Policy banks: how user space publishes a steering policy that every
 * decision reads whole, on any CPU. K banks of `cap` policies (one per
 * listener) in the mmapped `policy` array; `live` names the bank readers
 * use. A commit is one store-release of a bank number; the bank it replaced
 * is retired and written again only after a kernel RCU grace period that
 * began after its retirement, obtained on a reclaim thread. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer_int.h"
#include "steer.skel.h"

_Static_assert(sizeof(struct baton_steer_cfg) % 8 == 0, "mmapped array entries are value_size rounded to 8");
_Static_assert(sizeof(struct baton_steer_live) == 8, "live is two u32 (bpf/steer.h)");

/* How long a writer waits for a grace period when every other bank is
 * retired: far above the 8-96 ms one takes even on a loaded machine. */
#define BANK_WAIT_MS 2000
/* The reclaim thread ends after this long with nothing to do, and its maps
 * with it: an idle set holds no thread and no descriptor for it. */
#define RECLAIM_IDLE_MS 1000

uint32_t steer_banks_count(uint32_t cap)
{
	return baton_steer_banks(cap);
}

int steer_banks_size(struct steer_bpf *skel, uint32_t cap)
{
	return bpf_map__set_max_entries(skel->maps.policy, steer_banks_count(cap) * cap);
}

static size_t map_len(size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (bytes + page - 1) / page * page;
}

/* Maps the set's two maps; the mappings keep the maps alive across
 * program reloads (the kernel holds the map while a mapping exists). */
int steer_banks_init(struct steer_banks *b, struct steer_bpf *skel, uint32_t cap)
{
	void *p;

	memset(b, 0, sizeof(*b));
	b->cap = cap;
	b->k = steer_banks_count(cap);
	if (bpf_map__max_entries(skel->maps.policy) != b->k * cap)
		return -EINVAL;	/* a pinned map of another shape: libbpf would have refused it */
	b->policy_len = map_len((size_t)b->k * cap * sizeof(struct baton_steer_cfg));
	b->live_len = map_len(sizeof(struct baton_steer_live));
	if (!(b->written = calloc((cap + 63) / 64, sizeof(*b->written))))
		return -ENOMEM;
	p = mmap(NULL, b->policy_len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(skel->maps.policy), 0);
	if (p == MAP_FAILED) {
		int r = -errno;

		free(b->written);
		b->written = NULL;
		return r;
	}
	b->policy = p;
	p = mmap(NULL, b->live_len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(skel->maps.live), 0);
	if (p == MAP_FAILED) {
		int r = -errno;

		munmap(b->policy, b->policy_len);
		b->policy = NULL;
		free(b->written);
		b->written = NULL;
		return r;
	}
	b->live = p;
	b->cur = __atomic_load_n(&b->live->bank, __ATOMIC_ACQUIRE);
	if (b->cur >= b->k)
		b->cur = 0;	/* never written by a baton that knew banks: bank 0 */
	pthread_mutex_init(&b->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&b->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	b->gp_fd = b->gp_inner = -1;
	b->unread = true;
	b->ready = true;
	return 0;
}

struct baton_steer_cfg *steer_banks_entry(const struct steer_banks *b, uint32_t bank, uint32_t lid)
{
	return &b->policy[(size_t)bank * b->cap + lid];
}

/* ---- the reclaim thread ------------------------------------------------ */

/* One kernel RCU grace period: an update of an array-of-maps returns only
 * once every BPF program that could see the old value is done (kernel
 * commit 1ae80cf31938, "wait for running BPF programs when updating
 * map-in-map", maybe_wait_bpf_programs). The steering program runs inside
 * one RCU read-side section (reuseport_select_sock), so a decision that
 * read a bank number before the grace period started has finished when
 * this returns. membarrier(MEMBARRIER_CMD_GLOBAL) also waits for one, but
 * its contract is about user-space memory order, not BPF programs, and the
 * kernel refuses it with nohz_full. */
static int grace_period(struct steer_banks *b)
{
	uint32_t zero = 0;

	if (bpf_map_update_elem(b->gp_fd, &zero, &b->gp_inner, BPF_ANY))
		return -errno;
	return 0;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void *reclaim(void *arg)
{
	struct steer_banks *b = arg;

	pthread_mutex_lock(&b->mu);
	for (;;) {
		uint64_t target, t0;
		struct timespec until;
		int r = 0;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += RECLAIM_IDLE_MS / 1000;
		while (!b->stop && (b->gp_done >= b->retire_ticket || b->hold) && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&b->cv, &b->mu, &until);
		if (b->stop)
			break;
		if (r == ETIMEDOUT && (b->gp_done >= b->retire_ticket || b->hold)) {
			/* idle: the next retirement starts a thread again */
			close(b->gp_fd);
			close(b->gp_inner);
			b->gp_fd = b->gp_inner = -1;
			b->idle_exit = true;
			break;
		}
		/* every bank retired up to here was retired before the grace
		 * period below starts (the mutex orders it) */
		target = b->retire_ticket;
		pthread_mutex_unlock(&b->mu);
		t0 = mono_us();
		r = grace_period(b);
		t0 = mono_us() - t0;
		pthread_mutex_lock(&b->mu);
		if (r) {
			/* cannot happen with a valid map; say so to the waiter
			 * rather than spin */
			b->gp_err = r;
			pthread_cond_broadcast(&b->cv);
			pthread_cond_wait(&b->cv, &b->mu);
			continue;
		}
		b->gp_done = target;
		b->gp_err = 0;
		b->gp_us[b->gps % STEER_BANKS_GP_LOG] = (uint32_t)(t0 > UINT32_MAX ? UINT32_MAX : t0);
		b->gps++;
		pthread_cond_broadcast(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

/* The thread and its map-in-map, at the first retirement. Every signal is
 * blocked in it: the process's handlers run on its other threads. A fork()
 * copies only the forking thread, and the children of the supervisor exec
 * at once without calling into a group or set, so none needs the mutex. */
static int reclaim_start(struct steer_banks *b)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	sigset_t all, old;
	int r;

	if (b->thr_on && !b->idle_exit)
		return 0;
	if (b->thr_on) {
		/* it has let go of the mutex for good: only its return is left */
		pthread_join(b->thr, NULL);
		b->thr_on = b->idle_exit = false;
	}
	b->gp_inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "gp_inner", 4, 4, 1, NULL);
	if (b->gp_inner < 0)
		return -errno;
	o.inner_map_fd = b->gp_inner;
	b->gp_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "gp", 4, 4, 1, &o);
	if (b->gp_fd < 0) {
		r = -errno;
		goto fail;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&b->thr, NULL, reclaim, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		goto fail;
	b->thr_on = true;
	return 0;
fail:
	if (b->gp_fd >= 0)
		close(b->gp_fd);
	close(b->gp_inner);
	b->gp_fd = b->gp_inner = -1;
	return r;
}

/* ---- the writer -------------------------------------------------------- */

/* A bank other than the live one that no decision can still read, under
 * the mutex; -1 if there is none now. Round robin from the live bank, so
 * the banks retired longest ago come first. */
static int free_bank(const struct steer_banks *b)
{
	uint32_t i;

	for (i = 1; i < b->k; i++) {
		uint32_t k = (b->cur + i) % b->k;

		if (b->retired[k] <= b->gp_done)
			return (int)k;
	}
	return -1;
}

int steer_banks_stage(struct steer_banks *b, uint32_t *bank)
{
	struct timespec until;
	int k, r = 0;

	pthread_mutex_lock(&b->mu);
	k = free_bank(b);
	if (k < 0) {
		if ((r = reclaim_start(b)))
			goto out;
		b->waits++;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += BANK_WAIT_MS / 1000;
		pthread_cond_broadcast(&b->cv);
		while ((k = free_bank(b)) < 0 && !b->gp_err && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&b->cv, &b->mu, &until);
		r = k >= 0 ? 0 : b->gp_err ? b->gp_err : -ETIMEDOUT;
		if (r)
			goto out;
	}
	/* the listeners the transaction does not change keep their policy:
	 * their entries are copied from the live bank at the commit, so a
	 * switch that writes every listener copies nothing */
	memset(b->written, 0, (b->cap + 63) / 64 * sizeof(*b->written));
	b->nwritten = 0;
	*bank = (uint32_t)k;
	b->staged++;
out:
	pthread_mutex_unlock(&b->mu);
	return r;
}

struct baton_steer_cfg *steer_banks_write(struct steer_banks *b, uint32_t bank, uint32_t lid)
{
	uint64_t bit = 1ull << (lid % 64);

	if (!(b->written[lid / 64] & bit)) {
		b->written[lid / 64] |= bit;
		b->nwritten++;
	}
	return steer_banks_entry(b, bank, lid);
}

/* The entries of BANK nobody wrote since its stage, from the live bank. */
static void fill_unwritten(const struct steer_banks *b, uint32_t bank)
{
	uint32_t lid = 0;

	while (lid < b->cap) {
		uint64_t word = b->written[lid / 64];

		if (word == UINT64_MAX) {
			lid += 64;
			continue;
		}
		uint32_t end = lid + 64 < b->cap ? lid + 64 : b->cap;

		for (; lid < end; lid++)
			if (!(word & (1ull << (lid % 64))))
				*steer_banks_entry(b, bank, lid) = *steer_banks_entry(b, b->cur, lid);
	}
}

void steer_banks_commit(struct steer_banks *b, uint32_t bank)
{
	uint32_t old = b->cur;

	if (b->nwritten < b->cap)
		fill_unwritten(b, bank);

	/* every store to the staged bank is visible before its number is */
	__atomic_store_n(&b->live->bank, bank, __ATOMIC_RELEASE);
	pthread_mutex_lock(&b->mu);
	b->cur = bank;
	if (b->unread) {
		/* no program ran on these maps: the old bank is free at once,
		 * and a set still being made (a supervisor's groups before its
		 * first generation) starts no thread */
		b->retired[old] = 0;
		pthread_mutex_unlock(&b->mu);
		return;
	}
	b->retired[old] = ++b->retire_ticket;
	/* if the thread cannot start now, the bank stays retired and the
	 * stage that needs it tries again and says why */
	reclaim_start(b);
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* A set resumed from pins: the live bank is what `live` says; a decision
 * that began before this process could still read any other, so each
 * waits for a grace period before its first reuse. */
void steer_banks_resumed(struct steer_banks *b)
{
	uint32_t k;

	pthread_mutex_lock(&b->mu);
	b->unread = false;
	b->retire_ticket++;
	for (k = 0; k < b->k; k++)
		b->retired[k] = k == b->cur ? 0 : b->retire_ticket;
	reclaim_start(b);	/* the grace period runs while the members are found */
	pthread_mutex_unlock(&b->mu);
}

void steer_banks_attached(struct steer_banks *b)
{
	if (!b->ready || !b->unread)
		return;
	pthread_mutex_lock(&b->mu);
	b->unread = false;
	pthread_mutex_unlock(&b->mu);
}

void steer_banks_free(struct steer_banks *b)
{
	if (!b->ready)
		return;
	if (b->thr_on) {
		pthread_mutex_lock(&b->mu);
		b->stop = true;
		pthread_cond_broadcast(&b->cv);
		pthread_mutex_unlock(&b->mu);
		pthread_join(b->thr, NULL);
		if (b->gp_fd >= 0)
			close(b->gp_fd);
		if (b->gp_inner >= 0)
			close(b->gp_inner);
	}
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	munmap(b->policy, b->policy_len);
	munmap(b->live, b->live_len);
	free(b->written);
	b->written = NULL;
	b->ready = false;
}

/* ---- for tests and benchmarks ------------------------------------------ */

void steer_banks_hold(struct baton_group *g, bool hold)
{
	struct steer_banks *b = g->set ? &g->set->banks : NULL;

	if (!b || !b->ready)
		return;
	pthread_mutex_lock(&b->mu);
	b->hold = hold;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

void steer_banks_info(struct baton_group *g, struct steer_banks_info *out)
{
	struct steer_banks *b = g->set ? &g->set->banks : NULL;
	uint64_t n;

	memset(out, 0, sizeof(*out));
	if (!b || !b->ready)
		return;
	pthread_mutex_lock(&b->mu);
	n = b->gps < STEER_BANKS_GP_LOG ? b->gps : STEER_BANKS_GP_LOG;
	*out = (struct steer_banks_info){ .thread = b->thr_on && !b->idle_exit, .k = b->k, .live = b->cur, .ngp_us = (uint32_t)n, .staged = b->staged,
					  .waits = b->waits, .gps = b->gps, .retire_ticket = b->retire_ticket,
					  .gp_done = b->gp_done };
	memcpy(out->gp_us, b->gp_us, n * sizeof(b->gp_us[0]));
	memcpy(out->retired, b->retired, sizeof(out->retired));
	pthread_mutex_unlock(&b->mu);
}
