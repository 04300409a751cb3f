/* SPDX-License-Identifier: BSD-2-Clause */
/* Policy banks (lib/steer_banks.c) on real sockets: a retired bank is not
 * written again before a kernel grace period, a group resumed from pins
 * keeps its live bank, the pins of an older baton (a seqcount latch) are
 * carried over, and flips at full speed under load never mix two policies. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "harness.h"
#include "helpers.h"
#include "steer_int.h"

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static struct baton_group *banked(int *fds, int n, uint16_t *port, const char *pin)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log, .pin_path = pin);
	struct baton_group *g;
	int i;

	if (fds)
		*port = bt_listeners(fds, n, false);
	g = baton_group_new(&o);
	if (!g)
		FAIL("baton_group_new: %s", strerror(errno));
	for (i = 0; fds && i < n; i++)
		ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[i], 0)), i);
	return g;
}

/* Every connection in a row goes to listener WANT. */
static void all_to(uint16_t port, const int *fds, int n, int want, int count)
{
	for (int i = 0; i < count; i++)
		ASSERT_EQ(bt_which_takes(port, fds, n), want);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* With grace periods held back, the writer uses every free bank and then
 * refuses (after its 2 s wait) rather than write one still retired: the
 * banks keep their bytes, the policy stays. Once grace periods run again,
 * the same call succeeds. */
TEST_TIMEOUT(steer_banks_retired_bank_waits_for_a_grace_period, 60)
{
	static const uint32_t p1[] = { 1, 0 }, p2[] = { 0, 1 };
	struct steer_banks_info a, b;
	struct baton_group *g;
	uint16_t port;
	int fds[2], flips = 0, r;
	unsigned char *before;
	long long t0;
	size_t len;

	bt_need_netns();
	bt_need_ebpf();
	g = banked(fds, 2, &port, NULL);
	/* no grace period under way when the hold starts */
	t0 = now_us();
	do
		steer_banks_info(g, &a);
	while (a.gp_done < a.retire_ticket && now_us() - t0 < 2000000 && !usleep(1000));
	ASSERT_EQ(a.gp_done, a.retire_ticket);
	steer_banks_hold(g, true);
	ASSERT_EQ(a.k, 64);
	for (;;) {
		r = baton_group_set_weights(g, flips % 2 ? p2 : p1, 2);
		if (r)
			break;
		ASSERT_LE(++flips, 63);
	}
	ASSERT_EQ(r, -ETIMEDOUT);
	steer_banks_info(g, &b);
	bt_log("%d flips before the writer had to wait; retired %llu, past a grace period %llu",
	       flips, (unsigned long long)b.retire_ticket, (unsigned long long)b.gp_done);
	ASSERT_EQ(flips, 63);	/* every bank but the live one, then none */
	ASSERT_EQ(b.gp_done, a.gp_done);
	/* the last policy that was committed still steers */
	all_to(port, fds, 2, (flips - 1) % 2 ? 1 : 0, 20);
	/* the banks do not change while grace periods are held */
	len = (size_t)b.k * sizeof(struct baton_steer_cfg);
	before = malloc(len);
	ASSERT_TRUE(before != NULL);
	memcpy(before, g->set->banks.policy, len);
	t0 = now_us();
	ASSERT_EQ(baton_group_set_weights(g, flips % 2 ? p2 : p1, 2), -ETIMEDOUT);
	ASSERT_GE(now_us() - t0, 1900000);
	ASSERT_EQ(memcmp(before, g->set->banks.policy, len), 0);
	steer_banks_hold(g, false);
	t0 = now_us();
	ASSERT_OK(baton_group_set_weights(g, flips % 2 ? p2 : p1, 2));
	steer_banks_info(g, &b);
	bt_log("after the hold: a free bank in %lld us, %llu grace period(s)", now_us() - t0,
	       (unsigned long long)b.gps);
	ASSERT_GT(b.gps, 0);
	ASSERT_GE(b.gp_done, b.retire_ticket - 1);
	all_to(port, fds, 2, flips % 2 ? 1 : 0, 20);
	free(before);
	baton_group_free(g);
}

/* Connects until stopped; which listener took each connection. */
struct load {
	uint16_t port;
	const int *fds;
	int n;
	atomic_bool stop;
	atomic_int hits[4], lost;
};

/* One connection at a time across the client threads: a thread accepts
 * whichever connection is queued first and resets it, so two threads at
 * once would reset each other's connection before its connect() returned
 * (seen as "Connection reset by peer"). The threads still keep a
 * connection deciding while the other one counts. */
static pthread_mutex_t client_one = PTHREAD_MUTEX_INITIALIZER;

static void *client(void *arg)
{
	struct load *l = arg;

	for (int i = 0; i < 200000 && !atomic_load(&l->stop); i++) {
		int w;

		pthread_mutex_lock(&client_one);
		w = bt_which_takes(l->port, l->fds, l->n);
		pthread_mutex_unlock(&client_one);

		if (w < 0)
			atomic_fetch_add(&l->lost, 1);
		else
			atomic_fetch_add(&l->hits[w], 1);
	}
	return NULL;
}

/* A group whose process dies (no free, no unpin) and is made again from its
 * pins: connections keep going to the same slot all along, and the new
 * group starts from the live bank it finds, every other bank retired. */
TEST_TIMEOUT(steer_banks_resume_keeps_the_live_policy, 60)
{
	static const char pin[] = "/sys/fs/bpf/banks-resume";
	struct steer_banks_info info;
	struct load l = { 0 };
	struct baton_group *g;
	pthread_t t;
	uint32_t ppm;
	int fds[2], status, live;
	pid_t pid;

	bt_need_netns();
	bt_need_private_bpffs();
	bt_need_ebpf();
	l.port = bt_listeners(fds, 2, false);
	l.fds = fds;
	l.n = 2;
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		g = banked(NULL, 0, NULL, pin);
		if (baton_group_add(g, fds[0], 0) != 0 || baton_group_add(g, fds[1], 0) != 1)
			_exit(2);
		for (int i = 0; i < 9; i++)	/* a few commits: the live bank is not bank 0 */
			if (baton_group_set_weights(g, (uint32_t[]){ i % 2, 1 - i % 2 }, 2))
				_exit(3);
		_exit(0);	/* dies holding the group */
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	pthread_create(&t, NULL, client, &l);
	usleep(100000);
	g = banked(NULL, 0, NULL, pin);
	steer_banks_info(g, &info);
	live = (int)info.live;
	bt_log("resumed on bank %d of %u; retired %llu, past a grace period %llu", live, info.k,
	       (unsigned long long)info.retire_ticket, (unsigned long long)info.gp_done);
	ASSERT_NE(live, 0);
	for (uint32_t k = 0; k < info.k; k++)
		ASSERT_TRUE((int)k == live ? info.retired[k] == 0 : info.retired[k] == info.retire_ticket);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 0)), 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);
	ASSERT_OK(baton_group_share(g, 1, &ppm));
	ASSERT_EQ(ppm, 1000000);
	usleep(100000);
	atomic_store(&l.stop, true);
	pthread_join(t, NULL);
	bt_log("while resuming: %d/%d connections, %d lost", atomic_load(&l.hits[0]), atomic_load(&l.hits[1]),
	       atomic_load(&l.lost));
	ASSERT_EQ(atomic_load(&l.hits[0]), 0);
	ASSERT_GT(atomic_load(&l.hits[1]), 10);
	ASSERT_EQ(atomic_load(&l.lost), 0);
	/* the first change after resuming waits for a grace period first */
	ASSERT_OK(baton_group_activate(g, 0));
	steer_banks_info(g, &info);
	ASSERT_GT(info.gps, 0);
	all_to(l.port, fds, 2, 0, 20);
	ASSERT_OK(baton_group_unpin(g));
	baton_group_free(g);
}

/* The pins of an older baton (`cfg`: two pick tables, `ctl`: the latch's
 * sequence) made by hand: a new group carries the policy over, removes the
 * old pins, and steers as the old one did. */
TEST_TIMEOUT(steer_banks_carry_over_an_older_batons_latch_pins, 60)
{
	static const char dir[] = "/sys/fs/bpf/banks-old";
	struct baton_steer_cfg *cfg = calloc(1, sizeof(*cfg));
	struct baton_steer_ctl ctl = { .seq = 2 };
	struct baton_group *g;
	char path[128];
	uint32_t k, ppm;
	uint16_t port;
	int fds[2], socks, cfd, tfd;

	bt_need_netns();
	bt_need_private_bpffs();
	bt_need_ebpf();
	ASSERT_TRUE(cfg != NULL);
	port = bt_listeners(fds, 2, false);
	ASSERT_OK(mkdir(dir, 0700) ? -errno : 0);
	socks = bpf_map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, "socks", 4, 8, BATON_STEER_SLOTS, NULL);
	cfd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cfg", 4, sizeof(*cfg), 2, NULL);
	tfd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ctl", 4, sizeof(ctl), 1, NULL);
	ASSERT_TRUE(socks >= 0 && cfd >= 0 && tfd >= 0);
	for (k = 0; k < 2; k++) {
		uint64_t v = (uint64_t)fds[k];

		ASSERT_OK(bpf_map_update_elem(socks, &k, &v, BPF_NOEXIST) ? -errno : 0);
	}
	/* copy 0 (seq even) sends everything to slot 1; copy 1 to slot 0 */
	cfg->n = BATON_STEER_TABLE;
	cfg->version = 7;
	memset(cfg->slot, 1, sizeof(cfg->slot));
	k = 0;
	ASSERT_OK(bpf_map_update_elem(cfd, &k, cfg, BPF_ANY));
	memset(cfg->slot, 0, sizeof(cfg->slot));
	k = 1;
	ASSERT_OK(bpf_map_update_elem(cfd, &k, cfg, BPF_ANY));
	k = 0;
	ASSERT_OK(bpf_map_update_elem(tfd, &k, &ctl, BPF_ANY));
	snprintf(path, sizeof(path), "%s/socks", dir);
	ASSERT_OK(bpf_obj_pin(socks, path));
	snprintf(path, sizeof(path), "%s/cfg", dir);
	ASSERT_OK(bpf_obj_pin(cfd, path));
	snprintf(path, sizeof(path), "%s/ctl", dir);
	ASSERT_OK(bpf_obj_pin(tfd, path));

	g = banked(NULL, 0, NULL, dir);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 0)), 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);
	ASSERT_OK(baton_group_share(g, 1, &ppm));
	ASSERT_EQ(ppm, 1000000);
	all_to(port, fds, 2, 1, 20);
	snprintf(path, sizeof(path), "%s/cfg", dir);
	ASSERT_NE(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/ctl", dir);
	ASSERT_NE(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/policy", dir);
	ASSERT_EQ(access(path, F_OK), 0);
	ASSERT_OK(baton_group_activate(g, 0));
	all_to(port, fds, 2, 0, 20);
	ASSERT_OK(baton_group_unpin(g));
	baton_group_free(g);
	close(socks);
	close(cfd);
	close(tfd);
	free(cfg);
}

/* Policies with no slot in common, flipped with no pause at all from one
 * thread while two others connect: every connection lands on a slot of one
 * policy (never slot 3, never the kernel's hash). Also measures one commit
 * (set_weights) and the grace periods the reclaim thread saw. */
TEST_TIMEOUT(steer_banks_full_speed_flips_never_mix, 90)
{
	static const uint32_t p1[] = { 1, 0, 0, 0 }, p2[] = { 0, 1, 2, 0 };
	enum { MAXFLIPS = 10000 };
	struct steer_banks_info *info = malloc(sizeof(*info));
	uint32_t *us = malloc(MAXFLIPS * sizeof(*us));
	struct baton_slot_stats hash;
	struct load l = { 0 };
	struct baton_group *g;
	pthread_t t[2];
	int fds[4], i, flips;
	long long end;

	bt_need_netns();
	bt_need_ebpf();
	ASSERT_TRUE(info && us);
	g = banked(fds, 4, &l.port, NULL);
	l.fds = fds;
	l.n = 4;
	ASSERT_OK(baton_group_activate(g, 0));
	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, client, &l);
	end = now_us() + 10000000;
	for (flips = 0; flips < MAXFLIPS && now_us() < end; flips++) {
		long long t0 = now_us();

		ASSERT_OK(baton_group_set_weights(g, flips % 2 ? p2 : p1, 4));
		us[flips] = (uint32_t)(now_us() - t0);
	}
	atomic_store(&l.stop, true);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ASSERT_OK(baton_group_stats(g, BATON_MAX_SLOTS, &hash));
	steer_banks_info(g, info);
	qsort(us, (size_t)flips, sizeof(*us), cmp_u32);
	qsort(info->gp_us, info->ngp_us, sizeof(info->gp_us[0]), cmp_u32);
	bt_log("%d flips; connections per slot %d/%d/%d/%d, lost %d, left to the kernel's hash %llu", flips,
	       atomic_load(&l.hits[0]), atomic_load(&l.hits[1]), atomic_load(&l.hits[2]), atomic_load(&l.hits[3]),
	       atomic_load(&l.lost), (unsigned long long)hash.selected);
	bt_log("commit (set_weights): median %u us, p99 %u us, max %u us; writer waited %llu times",
	       us[flips / 2], us[flips * 99 / 100], us[flips - 1], (unsigned long long)info->waits);
	if (info->ngp_us)
		bt_log("grace periods: %llu, median %u us, p99 %u us", (unsigned long long)info->gps,
		       info->gp_us[info->ngp_us / 2], info->gp_us[info->ngp_us * 99 / 100]);
	ASSERT_GT(flips, 1000);
	ASSERT_GT(info->gps, 0);
	ASSERT_GT(atomic_load(&l.hits[0]), 0);
	ASSERT_GT(atomic_load(&l.hits[1]) + atomic_load(&l.hits[2]), 0);
	ASSERT_EQ(atomic_load(&l.hits[3]), 0);
	ASSERT_EQ(atomic_load(&l.lost), 0);
	ASSERT_EQ(hash.selected, 0);
	/* an idle group keeps no reclaim thread; the next change starts one */
	ASSERT_TRUE(info->thread);
	usleep(1500000);
	steer_banks_info(g, info);
	ASSERT_TRUE(!info->thread);
	ASSERT_OK(baton_group_set_weights(g, p1, 4));
	steer_banks_info(g, info);
	ASSERT_TRUE(info->thread);
	free(us);
	free(info);
	baton_group_free(g);
}
