/* SPDX-License-Identifier: BSD-2-Clause */
/* Steered groups on real sockets, each test in its own network namespace:
 * which listener takes each connection, atomic switches, weights, migration
 * of queued connections (and the resets without it), cBPF fallback, UDP, and
 * replacing the program under load. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static struct baton_group *group(enum baton_mode mode, bool no_migrate)
{
	BATON_OPTS(baton_group_opts, o, .mode = mode, .no_migrate = no_migrate, .log = bt_lib_log);
	struct baton_group *g = baton_group_new(&o);

	if (!g)
		FAIL("baton_group_new(%s): %s", baton_mode_name(mode), strerror(errno));
	ASSERT_EQ(baton_group_mode(g), mode);
	return g;
}

/* A steered group of N TCP listeners on one port, all with weight 0. */
static struct baton_group *steered(enum baton_mode mode, int *fds, int n, uint16_t *port)
{
	struct baton_group *g = group(mode, false);
	int i;

	*port = bt_listeners(fds, n, false);
	for (i = 0; i < n; i++)
		ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[i], 0)), i);
	return g;
}

/* The counters of slot SLOT of G. */
static struct baton_slot_stats stats_of(struct baton_group *g, int slot)
{
	struct baton_slot_stats st;

	ASSERT_OK(baton_group_stats(g, slot, &st));
	return st;
}

/* steered in eBPF mode, in a private network namespace (or skip). */
static struct baton_group *ebpf_steered(int *fds, int n, uint16_t *port)
{
	bt_need_netns();
	bt_need_ebpf();
	return steered(BATON_MODE_EBPF, fds, n, port);
}

static void all_land_on(uint16_t port, const int *fds, int n, int want, int count)
{
	int i, got;

	for (i = 0; i < count; i++) {
		got = bt_which_takes(port, fds, n);
		if (got != want)
			FAIL("connection %d of %d landed on listener %d, want %d", i + 1, count, got, want);
	}
}

TEST(ebpf_all_connections_land_on_chosen_slot)
{
	struct baton_group *g;
	uint16_t port;
	int fds[3];

	g = ebpf_steered(fds, 3, &port);
	ASSERT_OK(baton_group_activate(g, 1));
	all_land_on(port, fds, 3, 1, 300);
	ASSERT_OK(baton_group_activate(g, 2));
	all_land_on(port, fds, 3, 2, 300);
	ASSERT_EQ(stats_of(g, 1).selected, 300);
	ASSERT_EQ(stats_of(g, 2).selected, 300);
	baton_group_free(g);
}

TEST(ebpf_next_connection_follows_switch)
{
	struct baton_group *g;
	uint16_t port;
	int fds[2], i;

	g = ebpf_steered(fds, 2, &port);
	for (i = 0; i < 200; i++) {
		ASSERT_OK(baton_group_activate(g, i % 2));
		all_land_on(port, fds, 2, i % 2, 1);
	}
	baton_group_free(g);
}

/* Counts where COUNT connections land under the current weights. */
static void tally(uint16_t port, const int *fds, int n, int count, int *hits)
{
	int i, w;

	for (i = 0; i < n; i++)
		hits[i] = 0;
	for (i = 0; i < count; i++) {
		w = bt_which_takes(port, fds, n);
		if (w < 0)
			FAIL("connection %d was not accepted by any listener", i + 1);
		hits[w]++;
	}
}

/* |observed - expected| within 5 binomial standard deviations */
static void within_bounds(const char *what, int hits, int count, double p)
{
	double mean = count * p, sd = sqrt(count * p * (1 - p));

	bt_log("%s: %d of %d (expected %.0f +- %.0f)", what, hits, count, mean, 5 * sd);
	if (fabs(hits - mean) > 5 * sd + 1)
		FAIL("%s: %d of %d, expected %.0f +- %.0f", what, hits, count, mean, 5 * sd);
}

TEST_TIMEOUT(ebpf_weights_hold_over_10000_connections, 120)
{
	struct baton_group *g;
	uint16_t port;
	int fds[3], hits[3];

	g = ebpf_steered(fds, 3, &port);
	ASSERT_OK(baton_group_set_weights(g, (uint32_t[]){ 90, 10, 0 }, 3));
	tally(port, fds, 3, 10000, hits);
	within_bounds("90/10: slot 0", hits[0], 10000, 0.9);
	ASSERT_EQ(hits[2], 0);
	ASSERT_OK(baton_group_set_weights(g, (uint32_t[]){ 1, 1, 2 }, 3));
	tally(port, fds, 3, 4000, hits);
	within_bounds("1/1/2: slot 0", hits[0], 4000, 0.25);
	within_bounds("1/1/2: slot 2", hits[2], 4000, 0.5);
	ASSERT_OK(baton_group_drain(g, 2));
	tally(port, fds, 3, 1000, hits);
	ASSERT_EQ(hits[2], 0);
	within_bounds("drained 2: slot 0", hits[0], 1000, 0.5);
	baton_group_free(g);
}

static void slot_keeps_traffic_when_other_closes(enum baton_mode mode)
{
	struct baton_group *g;
	uint16_t port;
	int fds[4], i;

	g = steered(mode, fds, 4, &port);
	ASSERT_OK(baton_group_activate(g, 1));
	all_land_on(port, fds, 4, 1, 50);
	/* Closing member 0 makes the kernel move its last member (3) into
	 * index 0; an index-based choice would now hit member 3. */
	ASSERT_OK(baton_group_remove(g, 0));
	close(fds[0]);
	fds[0] = fds[3];	/* keep polling all live listeners */
	all_land_on(port, fds, 3, 1, 200);
	ASSERT_OK(baton_group_activate(g, 3));
	for (i = 0; i < 100; i++)
		ASSERT_EQ(bt_which_takes(port, fds, 3), 0);	/* fds[0] is member 3 now */
	baton_group_free(g);
}

TEST(ebpf_slot_keeps_traffic_when_another_member_closes)
{
	bt_need_netns();
	bt_need_ebpf();
	slot_keeps_traffic_when_other_closes(BATON_MODE_EBPF);
}

TEST(cbpf_slot_keeps_traffic_when_another_member_closes)
{
	if (!bt_netns())
		bt_log("no netns; using the host's loopback");
	slot_keeps_traffic_when_other_closes(BATON_MODE_CBPF);
}

TEST(cbpf_steers_and_weighs)
{
	struct baton_group *g;
	uint16_t port;
	int fds[3], hits[3];

	if (!bt_netns())
		bt_log("no netns; using the host's loopback");
	g = steered(BATON_MODE_CBPF, fds, 3, &port);
	ASSERT_OK(baton_group_activate(g, 2));
	all_land_on(port, fds, 3, 2, 200);
	ASSERT_OK(baton_group_set_weights(g, (uint32_t[]){ 3, 1, 0 }, 3));
	tally(port, fds, 3, 4000, hits);
	within_bounds("cBPF 3/1: slot 0", hits[0], 4000, 0.75);
	ASSERT_EQ(hits[2], 0);
	ASSERT_OK(baton_group_drain(g, 0));
	all_land_on(port, fds, 3, 1, 100);
	baton_group_free(g);
}

/* Queues N connections on listener fds[0] (each client has sent "ping"),
 * moves them off it with MOVE, then serves listener fds[1] and counts how
 * the clients fare: answered or reset. */
struct queued_result {
	int answered, reset, other;
};

static struct queued_result queue_then_move(struct baton_group *g, int *fds, uint16_t port, int n,
					    void (*move)(struct baton_group *g, int *fds))
{
	struct queued_result res = { 0 };
	int clients[64], i;
	struct baton_queue q;

	ASSERT_TRUE(n <= 64);
	ASSERT_OK(baton_group_activate(g, 0));
	for (i = 0; i < n; i++) {
		clients[i] = bt_connect(port);
		ASSERT_EQ(write(clients[i], "ping", 4), 4);
	}
	ASSERT_OK(baton_group_queue(g, 0, &q));
	ASSERT_EQ(q.len, n);	/* all of them wait on listener 0 */
	ASSERT_EQ(q.max, 1024);	/* the backlog bt_listeners asked for */
	ASSERT_OK(baton_group_activate(g, 1));
	move(g, fds);
	/* whatever reached listener 1 gets its answer */
	for (;;) {
		char buf[8];
		int c, w = bt_accept_which(&fds[1], 1, 200, &c);

		if (w < 0)
			break;
		if (read(c, buf, sizeof(buf)) == 4 && write(c, "pong", 4) != 4)
			bt_log("answer not sent: %s", strerror(errno));
		close(c);
	}
	for (i = 0; i < n; i++) {
		struct pollfd p = { .fd = clients[i], .events = POLLIN };
		char buf[8];
		ssize_t r = poll(&p, 1, 1000) == 1 ? read(clients[i], buf, sizeof(buf)) : -2;

		if (r == 4 && memcmp(buf, "pong", 4) == 0)
			res.answered++;
		else if (r < 0 && errno == ECONNRESET)
			res.reset++;
		else
			res.other++;
		close(clients[i]);
	}
	bt_log("%d queued: %d answered, %d reset, %d other", n, res.answered, res.reset, res.other);
	return res;
}

static void move_by_close(struct baton_group *g, int *fds)
{
	ASSERT_OK(baton_group_remove(g, 0));
	close(fds[0]);	/* the last reference: the listener closes now */
}

static void move_by_fence(struct baton_group *g, int *fds)
{
	(void)fds;
	ASSERT_OK(baton_group_fence(g, 0));
}

TEST(ebpf_migration_on_close_resets_nothing)
{
	struct baton_group *g;
	struct queued_result r;
	uint16_t port;
	int fds[2];

	g = ebpf_steered(fds, 2, &port);
	r = queue_then_move(g, fds, port, 20, move_by_close);
	ASSERT_EQ(r.answered, 20);
	ASSERT_EQ(r.reset, 0);
	ASSERT_EQ(stats_of(g, 1).migrated, 20);
	baton_group_free(g);
}

TEST(ebpf_migration_on_fence_resets_nothing)
{
	struct baton_group *g;
	struct queued_result r;
	uint16_t port;
	int fds[2], c;

	g = ebpf_steered(fds, 2, &port);
	r = queue_then_move(g, fds, port, 20, move_by_fence);
	ASSERT_EQ(r.answered, 20);
	ASSERT_EQ(r.reset, 0);
	/* the fenced listener takes nothing more, even for its owner */
	ASSERT_EQ(bt_which_takes(port, fds, 2), 1);
	ASSERT_EQ(accept4(fds[0], NULL, NULL, SOCK_NONBLOCK), -1);
	c = errno;
	ASSERT_EQ(c, EINVAL);
	ASSERT_EQ(baton_group_activate(g, 0), -ESHUTDOWN);
	baton_group_free(g);
}

/* The control: the same sequence without migration resets every queued
 * connection, so the two tests above can fail. */
TEST(ebpf_without_migration_queued_connections_are_reset)
{
	struct baton_group *g;
	struct queued_result r;
	uint16_t port;
	int fds[2], i;

	bt_need_netns();
	bt_need_ebpf();
	g = group(BATON_MODE_EBPF, true);
	port = bt_listeners(fds, 2, false);
	for (i = 0; i < 2; i++)
		ASSERT_OK(baton_group_add(g, fds[i], 0));
	r = queue_then_move(g, fds, port, 20, move_by_close);
	ASSERT_EQ(r.reset, 20);
	ASSERT_EQ(r.answered, 0);
	baton_group_free(g);
}

/* UDP: datagrams from fresh client sockets all reach the chosen slot. */
static void udp_steers(enum baton_mode mode)
{
	struct baton_group *g = group(mode, false);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fds[3], i, round;

	to.sin_port = htons(bt_listeners(fds, 3, true));
	for (i = 0; i < 3; i++)
		ASSERT_OK(baton_group_add(g, fds[i], 0));
	for (round = 0; round < 2; round++) {
		int want = round ? 0 : 2, hits[3] = { 0 };
		struct pollfd p[3];
		int k;

		ASSERT_OK(baton_group_activate(g, want));
		for (i = 0; i < 100; i++) {
			int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			char buf[16];

			ASSERT_EQ(sendto(c, "d", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
			close(c);

			for (k = 0; k < 3; k++)
				p[k] = (struct pollfd){ .fd = fds[k], .events = POLLIN };
			ASSERT_EQ(poll(p, 3, 1000), 1);
			for (k = 0; k < 3; k++)
				if (p[k].revents & POLLIN) {
					ASSERT_EQ(recv(fds[k], buf, sizeof(buf), 0), 1);
					hits[k]++;
				}
		}
		ASSERT_EQ(hits[want], 100);
	}
	baton_group_free(g);
}

TEST(ebpf_udp_steers)
{
	bt_need_netns();
	bt_need_ebpf();
	udp_steers(BATON_MODE_EBPF);
}

TEST(cbpf_udp_steers)
{
	if (!bt_netns())
		bt_log("no netns; using the host's loopback");
	udp_steers(BATON_MODE_CBPF);
}

/* ---- replacing the program under load -------------------------------- */

struct load {
	uint16_t port;
	atomic_bool stop;
	int answered, failed;
	char why[128];          /* how the first failure happened */
	const int *fds;
};

/* Answers "ping" on every listener until stopped. */
static void *serve(void *arg)
{
	struct load *l = arg;
	int c;

	while (!atomic_load(&l->stop)) {
		char buf[8];

		if (bt_accept_which(l->fds, 2, 50, &c) < 0)
			continue;
		if (read(c, buf, sizeof(buf)) == 4 && write(c, "pong", 4) != 4)
			bt_log("answer not sent: %s", strerror(errno));
		close(c);
	}
	return NULL;
}

/* Connection-per-request client; counts every attempt's outcome. */
static void *client(void *arg)
{
	struct load *l = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(l->port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	while (!atomic_load(&l->stop)) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct timeval tv = { .tv_sec = 2 };
		char buf[8];

		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(c, (struct sockaddr *)&sin, sizeof(sin))) {
			if (!l->failed++)
				snprintf(l->why, sizeof(l->why), "connect: %s", strerror(errno));
		} else if (write(c, "ping", 4) != 4) {
			if (!l->failed++)
				snprintf(l->why, sizeof(l->why), "write: %s", strerror(errno));
		} else {
			ssize_t n = read(c, buf, sizeof(buf));

			if (n == 4)
				l->answered++;
			else if (!l->failed++)
				snprintf(l->why, sizeof(l->why), "read returned %zd: %s", n, n < 0 ? strerror(errno) : "EOF");
		}
		bt_close_rst(c);
	}
	return NULL;
}

/* Program replacements in the test below. Each is a load the kernel
 * verifies (about 0.1 s of its CPU); under ASan the same user-space path
 * runs at half the count, as ASan instruments none of the verifier. */
#ifdef __SANITIZE_ADDRESS__
#define PROGRAM_RELOADS 100
#else
#define PROGRAM_RELOADS 200
#endif

TEST_TIMEOUT(ebpf_program_replaced_under_load_loses_nothing, 60)
{
	struct baton_group *g;
	struct load l = { 0 };
	pthread_t srv, cli;
	int fds[2], i, before, after;

	bt_need_netns();
	bt_need_ebpf();
	g = steered(BATON_MODE_EBPF, fds, 2, &l.port);
	ASSERT_OK(baton_group_set_weights(g, (uint32_t[]){ 1, 1 }, 2));
	l.fds = fds;
	before = bt_count_fds();
	pthread_create(&srv, NULL, serve, &l);
	pthread_create(&cli, NULL, client, &l);
	for (i = 0; i < PROGRAM_RELOADS; i++) {
		ASSERT_OK(baton_group_reload(g));
		if (i % 2)
			ASSERT_OK(baton_group_activate(g, (i / 2) % 2));
		usleep(5000);
	}
	atomic_store(&l.stop, true);
	pthread_join(cli, NULL);
	pthread_join(srv, NULL);
	after = bt_count_fds();
	bt_log("%d reloads under load: %d answered, %d failed%s%s; fds %d -> %d", PROGRAM_RELOADS, l.answered, l.failed,
	       l.failed ? ", first: " : "", l.why, before, after);
	ASSERT_GT(l.answered, 200);
	ASSERT_EQ(l.failed, 0);
	ASSERT_EQ(after, before);
	/* still steering after all those replacements */
	ASSERT_OK(baton_group_activate(g, 1));
	all_land_on(l.port, fds, 2, 1, 50);
	baton_group_free(g);
}

/* Connects until stopped and records which listener took each connection. */
struct flip_load {
	uint16_t port;
	const int *fds;
	atomic_bool stop;
	int hits[4], lost;
};

static void *flip_client(void *arg)
{
	struct flip_load *l = arg;
	int i;

	for (i = 0; i < 200000 && !atomic_load(&l->stop); i++) {
		int w = bt_which_takes(l->port, l->fds, 4);

		if (w < 0)
			l->lost++;
		else
			l->hits[w]++;
	}
	return NULL;
}

/* Two policies with no slot in common, flipped as fast as the library can
 * while connections arrive: a decision that mixed the size of one table with
 * the entries of the other would find an empty entry and fall back to the
 * kernel's hash (counted), or land on slot 3, which neither policy names. */
TEST_TIMEOUT(ebpf_policy_flips_never_mix_two_policies, 60)
{
	struct baton_group *g;
	struct baton_slot_stats hash;
	struct flip_load l = { 0 };
	pthread_t t;
	int fds[4], i, flips = 0;
	long long end;
	struct timespec ts;

	bt_need_netns();
	bt_need_ebpf();
	g = steered(BATON_MODE_EBPF, fds, 4, &l.port);
	l.fds = fds;
	ASSERT_OK(baton_group_activate(g, 0));	/* a policy before the first connection */
	pthread_create(&t, NULL, flip_client, &l);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + 2000;
	for (i = 0; i < 1000000; i++) {
		static const uint32_t p1[] = { 1, 0, 0, 0 }, p2[] = { 0, 1, 2, 0 };
		long long next;

		ASSERT_OK(baton_group_set_weights(g, i % 2 ? p2 : p1, 4));
		flips++;
		/* at most one flip per 20 us, the pace this test always had
		 * (the seqcount latch before policy banks needed it); a
		 * fall-back to the kernel's hash can only come from a mix.
		 * test_steer_banks.c flips with no pause at all */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		next = ts.tv_sec * 1000000LL + ts.tv_nsec / 1000 + 20;
		do
			clock_gettime(CLOCK_MONOTONIC, &ts);
		while (ts.tv_sec * 1000000LL + ts.tv_nsec / 1000 < next);
		if (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 >= end)
			break;
	}
	atomic_store(&l.stop, true);
	pthread_join(t, NULL);
	ASSERT_OK(baton_group_stats(g, BATON_MAX_SLOTS, &hash));
	bt_log("%d flips; connections per slot %d/%d/%d/%d, left to the kernel's hash %llu",
	       flips, l.hits[0], l.hits[1], l.hits[2], l.hits[3], (unsigned long long)hash.selected);
	ASSERT_GT(flips, 1000);
	ASSERT_GT(l.hits[0], 0);
	ASSERT_GT(l.hits[1] + l.hits[2], 0);
	ASSERT_EQ(l.hits[3], 0);
	ASSERT_EQ(l.lost, 0);
	ASSERT_EQ(hash.selected, 0);
	baton_group_free(g);
}
