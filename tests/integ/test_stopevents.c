/* SPDX-License-Identifier: BSD-2-Clause */
/* What staged reloads and event-driven failover stand on: a source-port
 * range pinned to one slot whatever the weights (the probes of a check),
 * shares read back from the program, and stop signals reported through the
 * watch's ring buffer as they are delivered. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct baton_group *steered2(enum baton_mode mode, int *fds, uint16_t *port)
{
	BATON_OPTS(baton_group_opts, o, .mode = mode, .log = bt_lib_log);
	struct baton_group *g = baton_group_new(&o);

	if (!g)
		FAIL("baton_group_new: %s", strerror(errno));
	*port = bt_listeners(fds, 2, false);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 1)), 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);
	return g;
}

/* One connection from 127.0.0.1:SPORT (0: any); which of FDS takes it. */
static int which_from(uint16_t port, uint16_t sport, const int *fds)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(sport),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in dst = src;

	dst.sin_port = htons(port);
	return bt_which_takes_from(&src, &dst, fds, 2);
}

TEST(steer_pinned_source_range_reaches_one_slot_whatever_the_weights)
{
	struct baton_group *g;
	uint32_t ppm;
	uint16_t port;
	int fds[2], i;

	bt_need_netns();
	bt_need_ebpf();
	g = steered2(BATON_MODE_EBPF, fds, &port);
	ASSERT_OK(baton_group_share(g, 0, &ppm));
	ASSERT_EQ(ppm, 1000000);
	ASSERT_OK(baton_group_pin_source(g, 1008, 1023, 1));
	for (i = 0; i < 48; i++)
		ASSERT_EQ(which_from(port, (uint16_t)(1008 + i % 16), fds), 1);
	for (i = 0; i < 48; i++)
		ASSERT_EQ(which_from(port, 0, fds), 0);	/* everyone else: the policy */
	ASSERT_EQ(which_from(port, 1024, fds), 0);	/* just outside the range */
	/* the pin is not a weight: the share stays what the table says */
	ASSERT_OK(baton_group_share(g, 1, &ppm));
	ASSERT_EQ(ppm, 0);
	ASSERT_OK(baton_group_set_weights(g, (uint32_t[]){ 9, 1 }, 2));
	ASSERT_OK(baton_group_share(g, 1, &ppm));
	ASSERT_EQ(ppm, 100000);
	/* moved, then removed */
	ASSERT_OK(baton_group_pin_source(g, 1008, 1023, 0));
	ASSERT_OK(baton_group_activate(g, 1));
	ASSERT_EQ(which_from(port, 1010, fds), 0);
	ASSERT_OK(baton_group_pin_source(g, 1008, 1023, -1));
	ASSERT_EQ(which_from(port, 1010, fds), 1);
	ASSERT_EQ(baton_group_pin_source(g, 10, 5, 0), -EINVAL);
	for (i = 0; i < BATON_MAX_PINS; i++)
		ASSERT_OK(baton_group_pin_source(g, (uint16_t)(2000 + i), (uint16_t)(2000 + i), 0));
	ASSERT_EQ(baton_group_pin_source(g, 3000, 3001, 0), -ENOSPC);
	baton_group_free(g);
	close(fds[0]);
	close(fds[1]);
}

TEST(steer_pins_need_ebpf_and_cbpf_shares_follow_the_weights)
{
	struct baton_group *g;
	uint32_t ppm;
	uint16_t port;
	int fds[2];

	bt_need_netns();
	g = steered2(BATON_MODE_CBPF, fds, &port);
	ASSERT_EQ(baton_group_pin_source(g, 1008, 1023, 1), -EOPNOTSUPP);
	ASSERT_OK(baton_group_set_weights(g, (uint32_t[]){ 3, 1 }, 2));
	ASSERT_OK(baton_group_share(g, 0, &ppm));
	ASSERT_EQ(ppm, 750000);
	ASSERT_EQ(baton_group_share(g, 5, &ppm), -ENOENT);
	baton_group_free(g);
	close(fds[0]);
	close(fds[1]);
}

TEST_ALONE(watch_events_report_a_stop_as_it_is_delivered, 30)
{
	BATON_OPTS(baton_watch_opts, o, .log = bt_lib_log);
	struct baton_member_health h;
	struct pollfd p;
	struct baton_watch *w;
	struct baton_group *g;
	uint64_t t0, t;
	uint16_t port;
	int fds[2], fd;
	pid_t a;

	bt_need_netns();
	bt_need_ebpf();
	g = steered2(BATON_MODE_EBPF, fds, &port);
	w = baton_watch_new(g, &o);
	ASSERT_TRUE(w != NULL);
	fd = baton_watch_events(w);
	if (fd < 0)
		SKIP("the stop-signal program does not load here: %s", strerror(-fd));
	ASSERT_EQ(baton_watch_events(w), fd);	/* once per watch */
	a = fork();
	ASSERT_TRUE(a >= 0);
	if (a == 0) {
		for (int i = 0; i < 600; i++)
			sleep(1);
		_exit(0);
	}
	ASSERT_OK(baton_watch_set_owner(w, 0, a));
	t0 = now_ms();
	ASSERT_OK(baton_watch_tick(w, t0));
	/* drain reports of other processes' stops on this machine */
	for (int i = 0; i < 100; i++) {
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 0) != 1)
			break;
		baton_watch_tick(w, t0);
	}
	ASSERT_OK(baton_watch_health(w, 0, &h));
	ASSERT_TRUE(!h.down);
	t0 = now_ms();
	kill(a, SIGSTOP);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	ASSERT_EQ(poll(&p, 1, 2000), 1);
	t = now_ms();
	bt_log("stop reported %llu ms after SIGSTOP", (unsigned long long)(t - t0));
	ASSERT_LE(t - t0, 500);
	/* the tick right after the report steers away, whatever /proc says yet */
	ASSERT_OK(baton_watch_tick(w, t));
	ASSERT_OK(baton_watch_health(w, 0, &h));
	ASSERT_TRUE(h.down);
	ASSERT_EQ(h.health, BATON_HEALTH_STOPPED);
	ASSERT_EQ(bt_which_takes(port, fds, 2), 1);
	kill(a, SIGKILL);
	kill(a, SIGCONT);
	waitpid(a, NULL, 0);
	baton_watch_free(w);
	baton_group_free(g);
	close(fds[0]);
	close(fds[1]);
}
