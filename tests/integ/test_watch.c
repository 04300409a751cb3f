/* SPDX-License-Identifier: BSD-2-Clause */
/* The health watch on real sockets, each test in its own network namespace:
 * a stopped owner is steered away from and fenced at once and its queue
 * moves; a queue that hangs is fenced after the threshold; members come
 * back when they recover; a gone owner's member leaves; unfence; pinning. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "harness.h"
#include "helpers.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* An owner that never accepts: a child that sleeps until killed. */
static pid_t sleeper(void)
{
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 600; i++)
			sleep(1);
		_exit(0);
	}
	return pid;
}

static void end_child(pid_t pid)
{
	kill(pid, SIGKILL);
	kill(pid, SIGCONT);
	waitpid(pid, NULL, 0);
}

struct events {
	int n;
	struct baton_watch_event ev[32];
};

static void on_event(void *ctx, const struct baton_watch_event *ev)
{
	struct events *e = ctx;

	if (e->n < 32)
		e->ev[e->n++] = *ev;
}

static bool has(const struct events *e, enum baton_watch_event_type t, int slot, enum baton_health why)
{
	for (int i = 0; i < e->n; i++)
		if (e->ev[i].type == t && e->ev[i].slot == slot && e->ev[i].why == why && !e->ev[i].err)
			return true;
	return false;
}

/* Ticks every 5 ms until an event of TYPE for SLOT, or LIMIT_MS; returns the
 * time it took, or -1. */
static long tick_until(struct baton_watch *w, struct events *e, enum baton_watch_event_type t, int slot,
		       long limit_ms)
{
	uint64_t t0 = now_ms();

	for (int i = 0; i < 10000 && (long)(now_ms() - t0) <= limit_ms; i++) {
		ASSERT_OK(baton_watch_tick(w, now_ms()));
		for (int k = 0; k < e->n; k++)
			if (e->ev[k].type == t && e->ev[k].slot == slot)
				return (long)(now_ms() - t0);
		usleep(5000);
	}
	return -1;
}

static void queue_clients(uint16_t port, int *clients, int n)
{
	for (int i = 0; i < n; i++) {
		clients[i] = bt_connect(port);
		ASSERT_TRUE(clients[i] >= 0);
		ASSERT_EQ(write(clients[i], "ping", 4), 4);
	}
}

/* Accepts on FD until it stays quiet for 200 ms, answering each "ping". */
static int serve_queue(int fd)
{
	int served = 0, c;
	char buf[8];

	for (int i = 0; i < 1000 && bt_accept_which(&fd, 1, 200, &c) == 0; i++) {
		if (read(c, buf, sizeof(buf)) == 4 && write(c, "pong", 4) == 4)
			served++;
		close(c);
	}
	return served;
}

static int answered(int *clients, int n)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = clients[i], .events = POLLIN };
		char buf[8];

		if (poll(&p, 1, 1000) == 1 && read(clients[i], buf, sizeof(buf)) == 4 && !memcmp(buf, "pong", 4))
			ok++;
		close(clients[i]);
	}
	return ok;
}

/* A group in MODE of two listeners FDS (UDP ones when UDP) at *PORT: slot 0
 * the primary, slot 1 the standby. */
static struct baton_group *group2(enum baton_mode mode, bool udp, int *fds, uint16_t *port)
{
	BATON_OPTS(baton_group_opts, o, .mode = mode, .log = bt_lib_log);
	struct baton_group *g = baton_group_new(&o);

	ASSERT_TRUE(g != NULL);
	*port = bt_listeners(fds, 2, udp);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 1)), 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);	/* standby */
	return g;
}

static struct baton_watch *watch(struct baton_group *g, struct events *e, bool no_fence)
{
	BATON_OPTS(baton_watch_opts, o, .hang_ms = 100, .no_fence = no_fence, .on_event = on_event, .ctx = e,
		   .log = bt_lib_log);
	struct baton_watch *w = baton_watch_new(g, &o);

	ASSERT_TRUE(w != NULL);
	return w;
}

/* What the watch tests start from, in a network namespace: group2 G under
 * watch W (hang threshold 100 ms, fencing unless NO_FENCE), its events in E. */
struct scene {
	struct baton_group *g;
	struct baton_watch *w;
	struct events e;
	int fds[2];
	uint16_t port;
};

static void scene_start(struct scene *s, enum baton_mode mode, bool udp, bool no_fence)
{
	memset(s, 0, sizeof(*s));
	bt_need_netns();
	if (mode == BATON_MODE_EBPF)
		bt_need_ebpf();
	s->g = group2(mode, udp, s->fds, &s->port);
	s->w = watch(s->g, &s->e, no_fence);
}

/* Frees the watch and the group, and ends OWNER (a child) unless it is 0. */
static void scene_end(struct scene *s, pid_t owner)
{
	baton_watch_free(s->w);
	baton_group_free(s->g);
	if (owner > 0)
		end_child(owner);
}

TEST_ALONE(watch_stopped_owner_is_fenced_at_once_and_queue_moves_then_returns, 30)
{
	struct baton_member_health h;
	struct scene s;
	int clients[20];
	pid_t a;
	long took;

	scene_start(&s, BATON_MODE_EBPF, false, false);
	a = sleeper();
	ASSERT_OK(baton_watch_set_owner(s.w, 0, a));
	ASSERT_OK(baton_watch_tick(s.w, now_ms()));
	ASSERT_EQ(s.e.n, 0);
	queue_clients(s.port, clients, 20);	/* all wait on the primary */
	kill(a, SIGSTOP);
	took = tick_until(s.w, &s.e, BATON_WATCH_FENCED, 0, 2000);
	bt_log("stopped owner fenced %ld ms after SIGSTOP", took);
	ASSERT_TRUE(took >= 0);
	/* a stopped owner needs no hang threshold: the next tick acts (the
	 * margin is for the signal's delivery on a loaded machine) */
	ASSERT_LE(took, 300);
	ASSERT_TRUE(has(&s.e, BATON_WATCH_DOWN, 0, BATON_HEALTH_STOPPED));
	ASSERT_OK(baton_watch_health(s.w, 0, &h));
	ASSERT_TRUE(h.down && h.fenced);
	ASSERT_EQ(h.health, BATON_HEALTH_STOPPED);
	/* the queued connections moved to the standby and are answered */
	ASSERT_EQ(serve_queue(s.fds[1]), 20);
	ASSERT_EQ(answered(clients, 20), 20);
	ASSERT_EQ(bt_which_takes(s.port, s.fds, 2), 1);
	/* continued: taken back, and the policy (primary) holds again */
	kill(a, SIGCONT);
	took = tick_until(s.w, &s.e, BATON_WATCH_UP, 0, 2000);
	ASSERT_TRUE(took >= 0);
	ASSERT_OK(baton_watch_health(s.w, 0, &h));
	ASSERT_TRUE(!h.down && !h.fenced);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(bt_which_takes(s.port, s.fds, 2), 0);
	scene_end(&s, a);
}

TEST_ALONE(watch_hung_queue_is_fenced_after_threshold_not_before, 30)
{
	struct scene s;
	int clients[10];
	pid_t a;
	long took;

	scene_start(&s, BATON_MODE_EBPF, false, false);
	a = sleeper();	/* running (sleeping), but never accepts */
	ASSERT_OK(baton_watch_set_owner(s.w, 0, a));
	queue_clients(s.port, clients, 10);
	took = tick_until(s.w, &s.e, BATON_WATCH_FENCED, 0, 2000);
	bt_log("hung queue fenced after %ld ms (threshold 100)", took);
	ASSERT_GE(took, 100);
	ASSERT_LE(took, 400);
	ASSERT_TRUE(has(&s.e, BATON_WATCH_DOWN, 0, BATON_HEALTH_HUNG));
	ASSERT_EQ(serve_queue(s.fds[1]), 10);
	ASSERT_EQ(answered(clients, 10), 10);
	scene_end(&s, a);
}

/* Accepts and closes what waits on FD now (a slow server catching up). */
static int accept_all(int fd)
{
	int n = 0, c;

	while (n < 100 && bt_accept_which(&fd, 1, 200, &c) == 0) {
		close(c);
		n++;
	}
	return n;
}

/* A member that has shown an 85 ms stall and got over it is not hung at
 * 300 ms with a 100 ms threshold: its own pace (4 x 85 = 340 ms) is the
 * limit. It is still fenced once it overstays that. The clock is the
 * test's, so the machine's load cannot move the verdict. */
TEST_ALONE(watch_hang_is_judged_against_the_members_own_pace, 30)
{
	struct scene s;
	int clients[6];
	pid_t a;

	scene_start(&s, BATON_MODE_EBPF, false, false);
	a = sleeper();	/* running: only the queue can make it unhealthy */
	ASSERT_OK(baton_watch_set_owner(s.w, 0, a));
	ASSERT_OK(baton_watch_tick(s.w, 1000));
	queue_clients(s.port, clients, 3);
	ASSERT_OK(baton_watch_tick(s.w, 1010));	/* 3 queued, new since the last look */
	ASSERT_OK(baton_watch_tick(s.w, 1090));	/* 80 ms without progress: under 100 */
	ASSERT_EQ(accept_all(s.fds[0]), 3);
	ASSERT_OK(baton_watch_tick(s.w, 1095));	/* caught up: an 85 ms stall it got over */
	queue_clients(s.port, clients + 3, 3);
	ASSERT_OK(baton_watch_tick(s.w, 1100));
	ASSERT_OK(baton_watch_tick(s.w, 1300));
	ASSERT_OK(baton_watch_tick(s.w, 1400));	/* 300 ms: hung by the fixed 100 ms, not by its pace */
	ASSERT_EQ(s.e.n, 0);
	ASSERT_OK(baton_watch_tick(s.w, 1450));	/* 350 ms > 4 x 85 */
	ASSERT_TRUE(has(&s.e, BATON_WATCH_FENCED, 0, BATON_HEALTH_HUNG));
	ASSERT_EQ(serve_queue(s.fds[1]), 3);	/* what it queued moved to the other member */
	for (int i = 0; i < 6; i++)
		close(clients[i]);
	scene_end(&s, a);
}

/* An owner that accepts and closes as fast as connections come. */
static pid_t acceptor(int fd)
{
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 1000000; i++) {
			int c = accept(fd, NULL, NULL);

			if (c >= 0)
				close(c);
		}
		_exit(0);
	}
	return pid;
}

TEST_ALONE(watch_member_that_keeps_accepting_stays_up, 30)
{
	struct scene s;
	int n = 0;
	uint64_t t0;
	pid_t a;

	scene_start(&s, BATON_MODE_EBPF, false, false);
	a = acceptor(s.fds[0]);
	ASSERT_OK(baton_watch_set_owner(s.w, 0, a));
	/* 150 connections with a tick every 2 ms (at most 5 s on a loaded
	 * machine): the queue drains, so it is never judged hung */
	t0 = now_ms();
	for (int i = 0; i < 100000 && n < 150 && now_ms() - t0 < 5000; i++, n++) {
		int c = bt_connect(s.port);

		close(c);
		ASSERT_OK(baton_watch_tick(s.w, now_ms()));
		usleep(2000);
	}
	bt_log("%d connections, %d events", n, s.e.n);
	ASSERT_GE(n, 50);
	ASSERT_EQ(s.e.n, 0);
	scene_end(&s, a);
}

TEST_ALONE(watch_no_fence_steers_only_and_gone_owner_leaves, 30)
{
	struct baton_member_health h;
	struct scene s;
	pid_t a;

	scene_start(&s, BATON_MODE_EBPF, false, true);
	a = sleeper();
	ASSERT_OK(baton_watch_set_owner(s.w, 0, a));
	kill(a, SIGSTOP);
	ASSERT_TRUE(tick_until(s.w, &s.e, BATON_WATCH_DOWN, 0, 2000) >= 0);
	ASSERT_OK(baton_watch_health(s.w, 0, &h));
	ASSERT_TRUE(h.down && !h.fenced);
	ASSERT_EQ(bt_which_takes(s.port, s.fds, 2), 1);
	/* the owner dies and is reaped: the member is removed */
	end_child(a);
	ASSERT_TRUE(tick_until(s.w, &s.e, BATON_WATCH_REMOVED, 0, 2000) >= 0);
	ASSERT_EQ(baton_group_size(s.g), 1);
	ASSERT_EQ(bt_which_takes(s.port, s.fds, 2), 1);
	scene_end(&s, 0);
}

TEST(group_unfence_takes_the_member_back)
{
	struct baton_group *g;
	int fds[2];
	uint16_t port;

	bt_need_netns();
	bt_need_ebpf();
	g = group2(BATON_MODE_EBPF, false, fds, &port);
	ASSERT_OK(baton_group_fence(g, 0));
	ASSERT_TRUE(baton_group_fenced(g, 0));
	ASSERT_EQ(bt_which_takes(port, fds, 2), 1);	/* fenced: the standby takes it */
	ASSERT_OK(baton_group_unfence(g, 0));
	ASSERT_TRUE(!baton_group_fenced(g, 0));
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(bt_which_takes(port, fds, 2), 0);
	ASSERT_OK(baton_group_unfence(g, 0));	/* not fenced: nothing to do */
	baton_group_free(g);
}

TEST(pinned_group_resumes_slots_and_policy)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log);
	struct baton_group *g, *g2;
	struct statfs sfs;
	char pin[96];
	int fds[2];
	uint16_t port;

	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	if (statfs("/sys/fs/bpf", &sfs) || sfs.f_type != BPF_FS_MAGIC)
		SKIP("no bpffs at /sys/fs/bpf");
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/baton-test-%d", (int)getpid());
	o.pin_path = pin;
	g = baton_group_new(&o);
	ASSERT_TRUE(g != NULL);
	port = bt_listeners(fds, 2, false);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 0)), 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);
	ASSERT_OK(baton_group_activate(g, 1));
	baton_group_free(g);
	/* no baton process now: the pinned maps and attached program steer */
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(bt_which_takes(port, fds, 2), 1);
	g2 = baton_group_new(&o);
	ASSERT_TRUE(g2 != NULL);
	/* members found again in another order keep their slots and weights,
	 * and the policy holds while they are found */
	ASSERT_EQ(ASSERT_OK(baton_group_add(g2, fds[1], 0)), 1);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(bt_which_takes(port, fds, 2), 1);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g2, fds[0], 0)), 0);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(bt_which_takes(port, fds, 2), 1);
	ASSERT_OK(baton_group_activate(g2, 0));
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(bt_which_takes(port, fds, 2), 0);
	ASSERT_OK(baton_group_unpin(g2));
	baton_group_free(g2);
	ASSERT_TRUE(access(pin, F_OK) != 0);
}

/* Datagrams waiting on FD now (it is non-blocking only for this count). */
static int drain_udp(int fd)
{
	char buf[64];
	int n = 0;

	while (n < 1000 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		n++;
	return n;
}

/* A UDP member has no accept queue: a receive buffer that fills while its
 * (running) owner does not read is no hang, and fencing it would send its
 * flows' next datagrams to another member. The clock is the test's: ten
 * hang thresholds pass with datagrams piling up on slot 0. */
TEST_ALONE(watch_udp_member_is_not_judged_hung_by_its_receive_buffer, 30)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct baton_member_health h;
	struct scene s;
	int c;
	uint64_t t = 1000;
	pid_t a;

	scene_start(&s, BATON_MODE_EBPF, true, false);
	to.sin_port = htons(s.port);
	a = sleeper();	/* running, and never reads */
	ASSERT_OK(baton_watch_set_owner(s.w, 0, a));
	c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(c >= 0);
	for (int i = 0; i < 20; i++, t += 50) {
		ASSERT_EQ(sendto(c, "ping", 4, 0, (struct sockaddr *)&to, sizeof(to)), 4);
		ASSERT_OK(baton_watch_tick(s.w, t));
	}
	ASSERT_EQ(s.e.n, 0);
	ASSERT_OK(baton_watch_health(s.w, 0, &h));
	ASSERT_TRUE(!h.down && !h.fenced);
	ASSERT_EQ(h.health, BATON_HEALTH_OK);
	/* every datagram, and the next one, went to slot 0 */
	ASSERT_EQ(sendto(c, "ping", 4, 0, (struct sockaddr *)&to, sizeof(to)), 4);
	ASSERT_EQ(drain_udp(s.fds[0]), 21);
	ASSERT_EQ(drain_udp(s.fds[1]), 0);
	/* its owner's state is still judged: stopped, it is steered away */
	kill(a, SIGSTOP);
	ASSERT_TRUE(tick_until(s.w, &s.e, BATON_WATCH_DOWN, 0, 2000) >= 0);
	ASSERT_TRUE(has(&s.e, BATON_WATCH_DOWN, 0, BATON_HEALTH_STOPPED));
	close(c);
	scene_end(&s, a);
}

/* An owner that accepts one connection (and keeps it) per byte on CMD,
 * answering each with a byte on ACK. */
static pid_t accept_on_command(int fd, int cmd, int ack)
{
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		char b;

		for (int i = 0; i < 1000 && read(cmd, &b, 1) == 1; i++) {
			b = accept(fd, NULL, NULL) >= 0 ? 'y' : 'n';
			if (write(ack, &b, 1) != 1)
				break;
		}
		_exit(0);
	}
	return pid;
}

/* Classic BPF has no arrival counters: the watch sees only the queue's
 * length. A loaded member whose queue grows although its owner accepts
 * (two arrive for each one it takes) is not hung: what its owner holds
 * changed. Once it stops accepting, the same queue is judged hung. The
 * clock is the test's: 50 ms a step, a 100 ms threshold. */
TEST_ALONE(watch_cbpf_loaded_member_that_accepts_is_not_hung, 30)
{
	struct scene s;
	int clients[40], cmd[2], ack[2], n = 0;
	uint64_t t = 1000;
	pid_t a;
	char b;

	scene_start(&s, BATON_MODE_CBPF, false, false);
	ASSERT_EQ(baton_group_mode(s.g), BATON_MODE_CBPF);
	ASSERT_OK(pipe2(cmd, O_CLOEXEC));
	ASSERT_OK(pipe2(ack, O_CLOEXEC));
	a = accept_on_command(s.fds[0], cmd[0], ack[1]);
	ASSERT_OK(baton_watch_set_owner(s.w, 0, a));
	queue_clients(s.port, clients, 2);
	n = 2;
	ASSERT_OK(baton_watch_tick(s.w, t));
	for (int i = 0; i < 12; i++) {
		queue_clients(s.port, clients + n, 2);
		n += 2;
		ASSERT_EQ(write(cmd[1], "a", 1), 1);
		ASSERT_EQ(read(ack[0], &b, 1), 1);
		ASSERT_EQ(b, 'y');
		t += 50;
		ASSERT_OK(baton_watch_tick(s.w, t));
	}
	bt_log("queue grew to %d over %d ms while its owner accepted; %d events", n - 12, 12 * 50, s.e.n);
	ASSERT_EQ(s.e.n, 0);
	/* it stops accepting: the same queue hangs past the threshold (its
	 * pace stretches that to 4 x 100 ms: the first look after it began
	 * to accept had no earlier sockets to compare with) */
	for (int i = 0; i < 10; i++) {
		t += 50;
		ASSERT_OK(baton_watch_tick(s.w, t));
	}
	ASSERT_TRUE(has(&s.e, BATON_WATCH_FENCED, 0, BATON_HEALTH_HUNG));
	close(cmd[1]);
	close(cmd[0]);
	close(ack[0]);
	close(ack[1]);
	for (int i = 0; i < n; i++)
		close(clients[i]);
	scene_end(&s, a);
}
