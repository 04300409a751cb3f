/* SPDX-License-Identifier: BSD-2-Clause */
/* The steering program's per-CPU flow cache (bpf/steer.bpf.c flowcache) on
 * real sockets in a private network namespace: cached flows keep their
 * member through a switch and a program reload, a slot's new epoch or an
 * idle flow still starts a new flow, and the flow table stays the truth the
 * user side counts while the cache serves. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "helpers.h"
#include "steer.h"

#define NMEM 3
#define NFLOW 16

struct cfx {
	struct baton_group *g;
	int mem[NMEM];
	int cli[NFLOW];
	uint16_t port;	/* host order */
};

static void cfx_open(struct cfx *x, uint64_t idle_ms)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log, .flows = BATON_FLOWS_ON,
		   .flow_idle_ms = idle_ms);

	bt_need_netns();
	bt_need_ebpf();
	x->g = bt_group_new(&o);
	x->port = bt_listeners(x->mem, NMEM, true);
	for (int i = 0; i < NMEM; i++)
		ASSERT_EQ(ASSERT_OK(baton_group_add(x->g, x->mem[i], 0)), i);
	for (int c = 0; c < NFLOW; c++)
		x->cli[c] = ASSERT_OK(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
}

static void cfx_close(struct cfx *x)
{
	for (int c = 0; c < NFLOW; c++)
		close(x->cli[c]);
	baton_group_free(x->g);
	for (int i = 0; i < NMEM; i++)
		close(x->mem[i]);
}

/* The member that receives one datagram from client C; -1 if none does
 * within a second. */
static int lands(struct cfx *x, int c)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(x->port) };
	struct pollfd p[NMEM];
	char b[8];

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(sendto(x->cli[c], "c", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	for (int i = 0; i < NMEM; i++)
		p[i] = (struct pollfd){ .fd = x->mem[i], .events = POLLIN };
	if (poll(p, NMEM, 1000) <= 0)
		return -1;
	for (int i = 0; i < NMEM; i++)
		if ((p[i].revents & POLLIN) && recv(x->mem[i], b, sizeof(b), MSG_DONTWAIT) == 1)
			return i;
	return -1;
}

static void all_land(struct cfx *x, int from, int to, int want)
{
	for (int c = from; c < to; c++) {
		int got = lands(x, c);

		if (got != want)
			FAIL("flow %d: its datagram went to member %d, want %d", c, got, want);
	}
}

/* The group's flowcache map, found through its program's maps. */
static int cache_fd(struct cfx *x)
{
	uint32_t id, ids[32], n = 32, len;
	struct bpf_prog_info pi;
	int prog, fd = -1;

	ASSERT_OK(baton_group_prog_id(x->g, &id));
	prog = ASSERT_OK(bpf_prog_get_fd_by_id(id));
	memset(&pi, 0, sizeof(pi));
	pi.nr_map_ids = n;
	pi.map_ids = (uint64_t)(unsigned long)ids;
	len = sizeof(pi);
	ASSERT_OK(bpf_obj_get_info_by_fd(prog, &pi, &len));
	close(prog);
	for (uint32_t i = 0; i < pi.nr_map_ids && i < n && fd < 0; i++) {
		struct bpf_map_info mi;
		int m = bpf_map_get_fd_by_id(ids[i]);

		memset(&mi, 0, sizeof(mi));
		len = sizeof(mi);
		if (m >= 0 && !bpf_obj_get_info_by_fd(m, &mi, &len) && !strcmp(mi.name, "flowcache"))
			fd = m;
		else if (m >= 0)
			close(m);
	}
	if (fd < 0)
		FAIL("the steering program has no flowcache map");
	return fd;
}

/* How many CPUs' caches hold client C's flow on SLOT. */
static int cached_on(struct cfx *x, int c, uint32_t slot)
{
	struct sockaddr_in me;
	socklen_t l = sizeof(me);
	int fd = cache_fd(x), ncpu = libbpf_num_possible_cpus(), n = 0;
	struct baton_flow_key k = { .family = 4 };

	ASSERT_OK(getsockname(x->cli[c], (struct sockaddr *)&me, &l));
	k.saddr[0] = htonl(INADDR_LOOPBACK);
	k.daddr[0] = htonl(INADDR_LOOPBACK);
	k.sport = me.sin_port;
	k.dport = htons(x->port);
	for (uint32_t i = 0; i < (uint32_t)ncpu * BATON_FLOW_CACHE_SETS; i++) {
		struct baton_flow_cache e;

		if (!bpf_map_lookup_elem(fd, &i, &e) && !memcmp(&e.key, &k, sizeof(k)) && e.slot == slot)
			n++;
	}
	close(fd);
	return n;
}

static void all_cached_on(struct cfx *x, int from, int to, uint32_t slot)
{
	for (int c = from; c < to; c++)
		if (cached_on(x, c, slot) < 1)
			FAIL("flow %d is in no CPU's flow cache on slot %u", c, slot);
}

static struct baton_flow_stats table(struct cfx *x)
{
	struct baton_flow_stats st;

	ASSERT_GT(baton_group_flows(x->g, &st, sizeof(st)), 0);
	return st;
}

TEST(flow_cache_keeps_flows_with_their_member_across_a_switch_and_a_reload)
{
	struct baton_flow_stats st;
	struct cfx x;

	cfx_open(&x, 0);
	ASSERT_OK(baton_group_activate(x.g, 0));
	all_land(&x, 0, NFLOW / 2, 0);
	all_cached_on(&x, 0, NFLOW / 2, 0);
	ASSERT_OK(baton_group_activate(x.g, 1));
	for (int round = 0; round < 4; round++)
		all_land(&x, 0, NFLOW / 2, 0);
	all_land(&x, NFLOW / 2, NFLOW, 1);
	/* a fresh program shares the maps, the cache too */
	ASSERT_OK(baton_group_reload(x.g));
	all_cached_on(&x, 0, NFLOW / 2, 0);
	all_land(&x, 0, NFLOW / 2, 0);
	all_land(&x, NFLOW / 2, NFLOW, 1);
	st = table(&x);
	ASSERT_EQ(st.created, NFLOW);
	ASSERT_EQ(st.expired, 0);
	ASSERT_EQ(st.per_slot[0], NFLOW / 2);
	ASSERT_EQ(st.per_slot[1], NFLOW / 2);
	ASSERT_GE(st.followed, NFLOW / 2 * 5 + NFLOW / 2);
	cfx_close(&x);
}

/* SLOT gets a new member, so a new epoch. */
static void renew_slot(struct cfx *x, int slot)
{
	int fresh = ASSERT_OK(baton_listener_open_like(x->mem[(slot + 1) % NMEM], 0));

	ASSERT_OK(baton_group_remove(x->g, slot));
	close(x->mem[slot]);
	x->mem[slot] = fresh;
	ASSERT_EQ(ASSERT_OK(baton_group_add(x->g, fresh, 0)), slot);
}

/* A cached flow whose member is fenced, or whose slot gets another member,
 * is a new flow: the cache checks the slot's epoch on every hit. */
TEST(flow_cache_hit_ends_when_the_slot_epoch_changes)
{
	/* flows 0-3 start on slot 0, flows 4-7 on slot 2 */
	static const int on[2] = { 0, 2 };
	struct cfx x;

	cfx_open(&x, 0);
	for (int i = 0; i < 2; i++) {
		ASSERT_OK(baton_group_activate(x.g, on[i]));
		all_land(&x, 4 * i, 4 * i + 4, on[i]);
	}
	ASSERT_OK(baton_group_activate(x.g, 1));
	for (int i = 0; i < 2; i++) {
		all_land(&x, 4 * i, 4 * i + 4, on[i]);
		all_cached_on(&x, 4 * i, 4 * i + 4, (uint32_t)on[i]);
	}
	/* fenced: its flows go where new flows go */
	ASSERT_OK(baton_group_fence(x.g, 0));
	all_land(&x, 0, 4, 1);
	/* slot 2 gets a new member: it does not inherit the flows */
	renew_slot(&x, 2);
	all_land(&x, 4, 8, 1);
	ASSERT_EQ(table(&x).expired, 8);
	ASSERT_EQ(table(&x).per_slot[1], 8);
	cfx_close(&x);
}

/* flow_idle=1s (the least the cache serves): a cached flow idle past it
 * is a new flow. */
TEST(flow_cache_hit_ends_when_the_flow_is_idle)
{
	struct cfx x;

	cfx_open(&x, 1000);
	ASSERT_OK(baton_group_activate(x.g, 0));
	all_land(&x, 0, 8, 0);
	all_land(&x, 0, 8, 0);
	all_cached_on(&x, 0, 8, 0);
	ASSERT_OK(baton_group_activate(x.g, 1));
	all_land(&x, 0, 8, 0);
	usleep(1200 * 1000);
	/* the entries are still there, and say slot 0: they must not be used */
	all_cached_on(&x, 0, 8, 0);
	ASSERT_EQ(table(&x).live, 0);
	all_land(&x, 0, 8, 1);
	ASSERT_EQ(table(&x).expired, 8);
	cfx_close(&x);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Flows the cache serves for longer than flow_idle are still live in the
 * table (the count the drain waits on) and still with their member: the
 * cache sends each flow back to the table within a fraction of idle. */
TEST(flow_cache_keeps_the_table_current_for_the_drain)
{
	struct baton_flow_stats st;
	double t0;
	struct cfx x;

	cfx_open(&x, 1000);
	ASSERT_OK(baton_group_activate(x.g, 0));
	all_land(&x, 0, 4, 0);
	ASSERT_OK(baton_group_activate(x.g, 1));
	t0 = mono_s();
	while (mono_s() - t0 < 1.6) {
		all_land(&x, 0, 4, 0);
		usleep(2000);
	}
	st = table(&x);
	ASSERT_EQ(st.live, 4);
	ASSERT_EQ(st.per_slot[0], 4);
	ASSERT_EQ(st.expired, 0);
	cfx_close(&x);
}
