/* SPDX-License-Identifier: BSD-2-Clause */
/* Spare members: the supervisor makes the next generation's member sockets
 * once a generation serves, and a reload hands them over instead of making
 * them. Asserted: the new generation listens on the very socket the
 * supervisor held before the reload, a spare takes no connection while
 * its generation serves, nothing is refused or reset while
 * spares come and go, none is made where it could take traffic (classic
 * BPF, UDP), no descriptor leaks, and a freeze or a supervisor crash while
 * spares exist loses nothing. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

static void sp_start(struct bt_sv *s, const char *const *extra)
{
	bt_sv_refserver(s, true, "tcp://127.0.0.1:8080?backlog=1024", "5s", extra, out, sizeof(out));
}

/* The inode of PID's descriptor FD if it is a socket, else 0. */
static unsigned long long sock_ino(pid_t pid, int fd)
{
	char path[64], link[64];
	unsigned long long ino = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return 0;
	link[n] = '\0';
	return sscanf(link, "socket:[%llu]", &ino) == 1 ? ino : 0;
}

/* PID's descriptors: their count (-1: none to read), and the inodes of
 * its sockets into INOS (up to MAX; INOS NULL: none). */
static int fds_of_into(pid_t pid, unsigned long long *inos, int max, int *nsocks)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	*nsocks = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		unsigned long long ino;

		if (e->d_name[0] == '.')
			continue;
		n++;
		ino = inos ? sock_ino(pid, atoi(e->d_name)) : 0;
		if (ino && *nsocks < max)
			inos[(*nsocks)++] = ino;
	}
	closedir(d);
	return n;
}

static int fds_of(pid_t pid)
{
	int nsocks;

	return fds_of_into(pid, NULL, 0, &nsocks);
}

/* Waits until the generation that served before (OLD) is gone. */
static void wait_gone(pid_t old)
{
	for (int i = 0; i < 100 && kill(old, 0) == 0; i++)
		usleep(50000);
	usleep(200000);	/* its exit seen, the spares made again */
}

TEST_TIMEOUT(spare_a_reload_listens_on_the_socket_the_supervisor_made_before_it_was_asked, 60)
{
	unsigned long long before[256], now;
	struct bt_sv s;
	pid_t g1, g2;
	int n, i;
	bool held = false;

	sp_start(&s, NULL);
	g1 = (pid_t)bt_active_pid(out);
	usleep(300000);	/* gen 1 serves: its spare is made in the loop's next turns */
	fds_of_into(s.pid, before, 256, &n);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	bt_log("%s", out);
	ASSERT_CONTAINS(out, "took 1 spare member (of 1 listeners)");
	g2 = bt_status_active_pid("web");
	ASSERT_NE(g2, g1);
	now = sock_ino(g2, 3);
	ASSERT_NE(now, 0);
	ASSERT_NE(now, sock_ino(g1, 3));
	for (i = 0; i < n; i++)
		held |= before[i] == now;
	ASSERT_TRUE(held);	/* made before the reload, not by it */
	bt_supervisor_stop(&s.pid, 10);
}

TEST_TIMEOUT(spare_reloads_under_load_with_spares_refuse_and_reset_nothing, 90)
{
	const char *says[] = { "took 1 spare member", "serves", NULL };
	struct bt_sv s;
	struct bt_load l;

	sp_start(&s, NULL);
	usleep(200000);
	l = bt_load_start(8080, "conn", "5", 16);
	usleep(200000);
	bt_reloads("web", 10, says, &l, (const char *[]){ s.log, NULL });
	bt_assert_load_ok(bt_load_finish(&l, 30));
	bt_supervisor_stop(&s.pid, 10);
}

TEST_TIMEOUT(spare_none_is_made_in_classic_bpf_mode, 60)
{
	struct bt_sv s;
	pid_t old;
	int fds;

	setenv("BATON_STEERING", "cbpf", 1);
	sp_start(&s, NULL);
	old = (pid_t)bt_active_pid(out);
	usleep(300000);
	fds = fds_of(s.pid);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_TRUE(strstr(out, "spare") == NULL);
	wait_gone(old);
	ASSERT_LE(fds_of(s.pid), fds);	/* no socket kept for the next one either */
	bt_supervisor_stop(&s.pid, 10);
	unsetenv("BATON_STEERING");
}

TEST_TIMEOUT(spare_none_is_made_for_a_udp_listener, 60)
{
	struct bt_sv s;

	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	bt_sv_init(&s);
	snprintf(s.cmd, sizeof(s.cmd), "exec sleep 60");
	bt_sv_start(&s, "tcp://127.0.0.1:8080", "1s",
		    (const char *[]){ "--listen", "udp://127.0.0.1:8081", "--ready", "delay:100ms", NULL },
		    NULL, out, sizeof(out));
	usleep(300000);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	bt_log("%s", out);
	ASSERT_CONTAINS(out, "took 1 spare member (of 2 listeners)");	/* the TCP one only */
	bt_supervisor_stop(&s.pid, 10);
}

TEST_TIMEOUT(spare_twenty_reloads_leak_no_descriptor, 120)
{
	struct bt_sv s;
	int first = -1, last;
	pid_t old;

	sp_start(&s, NULL);
	for (int i = 0; i < 20; i++) {
		old = (pid_t)bt_status_active_pid("web");
		ASSERT_EQ(bt_baton("reload", "web"), 0);
		ASSERT_CONTAINS(out, "serves");
		wait_gone(old);
		if (i == 0)
			first = fds_of(s.pid);
	}
	last = fds_of(s.pid);
	bt_log("supervisor fds after reload 1: %d, after reload 20: %d", first, last);
	ASSERT_GT(first, 0);
	ASSERT_EQ(last, first);
	bt_supervisor_stop(&s.pid, 10);
}

/* The accept queue of the TCP listener with inode INO in this network
 * namespace (/proc/net/tcp's rx_queue of a LISTEN row), -1 if none. */
static long listen_queue(unsigned long long ino)
{
	char line[512];
	long q = -1;
	FILE *f = fopen("/proc/net/tcp", "r");

	if (!f)
		return -1;
	while (q < 0 && fgets(line, sizeof(line), f)) {
		unsigned int st, rxq;
		unsigned long long i;

		if (sscanf(line, " %*d: %*x:%*x %*x:%*x %x %*x:%x %*x:%*x %*x %*u %*d %llu", &st, &rxq, &i) == 3 &&
		    st == 0x0A && i == ino)
			q = (long)rxq;
	}
	fclose(f);
	return q;
}

/* While the generation serves, its spare is never picked: the program
 * steers by the policy (the spare has no weight) and names no standby
 * that has no owner. What the spare took would wait in its queue, as
 * nobody accepts from it until a reload. */
TEST_TIMEOUT(spare_takes_no_connection_while_the_generation_serves, 60)
{
	unsigned long long sup[256], gen[256], spare = 0;
	struct bt_sv s;
	struct bt_load l;
	int ns, ng;

	sp_start(&s, NULL);
	usleep(300000);	/* its spare exists */
	l = bt_load_start(8080, "conn", "2", 16);
	bt_assert_load_ok(bt_load_finish(&l, 30));
	fds_of_into(s.pid, sup, 256, &ns);
	fds_of_into((pid_t)bt_status_active_pid("web"), gen, 256, &ng);
	for (int i = 0; i < ns && !spare; i++) {
		bool gens = false;

		for (int j = 0; j < ng; j++)
			gens |= gen[j] == sup[i];
		if (!gens && listen_queue(sup[i]) >= 0)
			spare = sup[i];	/* a listener the supervisor holds and the generation does not */
	}
	bt_log("spare socket inode %llu, its queue %ld", spare, spare ? listen_queue(spare) : -1L);
	ASSERT_NE(spare, 0);
	ASSERT_EQ(listen_queue(spare), 0);
	bt_supervisor_stop(&s.pid, 10);
}

/* Connections made after the freeze wait in the kernel's queues, and the
 * replacement, started on the spares, answers every one of them (those the
 * frozen process had already accepted are beyond anyone's reach). */
TEST_ALONE(spare_a_frozen_generation_is_replaced_on_the_spares_losing_nothing, 60)
{
	struct bt_sv s;
	int fds[20], answered = 0;
	pid_t gen;
	bool replaced = false;

	sp_start(&s, NULL);
	gen = (pid_t)bt_active_pid(out);
	usleep(300000);	/* its spare exists */
	ASSERT_EQ(kill(gen, SIGSTOP), 0);
	bt_connect_send(8080, fds, 20, "GET / HTTP/1.0\r\n\r\n");
	for (int i = 0; i < 20; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		char buf[512];

		if (poll(&p, 1, 5000) == 1 && read(fds[i], buf, sizeof(buf)) > 12 && strstr(buf, " 200 "))
			answered++;
		close(fds[i]);
	}
	for (int i = 0; i < 100 && !replaced; i++) {
		replaced = bt_status_active_pid("web") != gen;
		usleep(20000);
	}
	kill(gen, SIGCONT);
	bt_quote_file(s.log);
	ASSERT_EQ(answered, 20);
	ASSERT_TRUE(replaced);
	bt_read_file(s.log, out, sizeof(out));
	ASSERT_CONTAINS(out, "took 1 spare member");	/* the replacement used it */
	bt_supervisor_stop(&s.pid, 10);
}

TEST_TIMEOUT(spare_a_killed_supervisor_loses_nothing_and_its_successor_makes_them_again, 60)
{
	struct bt_sv s;
	struct bt_load l;
	pid_t gen;

	sp_start(&s, NULL);
	gen = (pid_t)bt_active_pid(out);
	usleep(300000);	/* its spare exists, held by the supervisor only */
	l = bt_load_start(8080, "conn", "4", 16);
	usleep(200000);
	bt_sv_kill(&s);
	usleep(500000);	/* the spare closed with it: nothing it held is lost */
	snprintf(s.log, sizeof(s.log), "%s/log2", s.dir);
	bt_sv_restart(&s, out, sizeof(out));
	ASSERT_EQ(bt_active_pid(out), gen);
	usleep(300000);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	bt_log("%s", out);
	ASSERT_CONTAINS(out, "took 1 spare member");
	bt_assert_load_ok(bt_load_finish(&l, 30));
	bt_supervisor_stop(&s.pid, 10);
}
