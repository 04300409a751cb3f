/* SPDX-License-Identifier: BSD-2-Clause */
/* UDP flow affinity in the steering program, on real sockets in a private
 * network namespace: flows stay with their slot across a switch, end when
 * idle or when their member is fenced, degrade without loss when the table
 * is full, and QUIC packets follow their connection ID's marker. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define NCLI 64

struct fx {
	struct baton_group *g;
	int fds[3];
	int cli[NCLI];
	struct sockaddr_storage to;
	socklen_t tolen;
};

static void fx_open(struct fx *f, enum baton_flows flows, uint32_t table, uint64_t idle_ms, bool v6)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log, .flows = flows,
		   .flow_table = table, .flow_idle_ms = idle_ms);
	int i;

	bt_need_netns();
	bt_need_ebpf();
	f->g = bt_group_new(&o);
	memset(&f->to, 0, sizeof(f->to));
	if (!v6) {
		struct sockaddr_in *a = (struct sockaddr_in *)&f->to;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(bt_listeners(f->fds, 3, true));
		f->tolen = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&f->to;
		int one = 1;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		for (i = 0; i < 3; i++) {
			f->fds[i] = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			ASSERT_OK(setsockopt(f->fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)));
			ASSERT_OK(bind(f->fds[i], (struct sockaddr *)a, sizeof(*a)));
			if (!i) {
				socklen_t l = sizeof(*a);

				ASSERT_OK(getsockname(f->fds[0], (struct sockaddr *)a, &l));
			}
		}
		f->tolen = sizeof(*a);
	}
	for (i = 0; i < 3; i++)
		ASSERT_EQ(ASSERT_OK(baton_group_add(f->g, f->fds[i], 0)), i);
	for (i = 0; i < NCLI; i++)
		f->cli[i] = -1;
}

static void fx_close(struct fx *f)
{
	for (int i = 0; i < NCLI; i++)
		if (f->cli[i] >= 0)
			close(f->cli[i]);
	baton_group_free(f->g);
	for (int i = 0; i < 3; i++)
		close(f->fds[i]);
}

/* Sends LEN bytes from client C (opened on first use) and returns the
 * index of the member that got it; -1 if none within a second. */
static int send_from(struct fx *f, int c, const void *buf, size_t len)
{
	struct pollfd p[3];
	char got[256];
	int k;

	if (f->cli[c] < 0)
		f->cli[c] = socket(f->to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(sendto(f->cli[c], buf, len, 0, (struct sockaddr *)&f->to, f->tolen), (ssize_t)len);
	for (k = 0; k < 3; k++)
		p[k] = (struct pollfd){ .fd = f->fds[k], .events = POLLIN };
	if (poll(p, 3, 1000) != 1)
		return -1;
	for (k = 0; k < 3; k++)
		if (p[k].revents & POLLIN) {
			ASSERT_EQ(recv(f->fds[k], got, sizeof(got), 0), (ssize_t)len);
			return k;
		}
	return -1;
}

static void all_clients_land(struct fx *f, int from, int to, int want)
{
	for (int c = from; c < to; c++) {
		int got = send_from(f, c, "d", 1);

		if (got != want)
			FAIL("client %d: datagram landed on member %d, want %d", c, got, want);
	}
}

static struct baton_flow_stats flows_now(struct fx *f)
{
	struct baton_flow_stats st;

	ASSERT_GT(baton_group_flows(f->g, &st, sizeof(st)), 0);
	return st;
}

/* The switch every flow test starts from: member 0 active, clients 0 to
 * N-1 landing on it, then member 1 made the active one. */
static void land_then_switch(struct fx *f, int n)
{
	ASSERT_OK(baton_group_activate(f->g, 0));
	all_clients_land(f, 0, n, 0);
	ASSERT_OK(baton_group_activate(f->g, 1));
}

static void flows_follow_across_a_switch(bool v6)
{
	struct baton_flow_stats st;
	struct fx f;

	fx_open(&f, BATON_FLOWS_ON, 0, 0, v6);
	land_then_switch(&f, 32);
	/* the switch: known flows stay, new flows go to the new member */
	all_clients_land(&f, 0, 32, 0);
	all_clients_land(&f, 32, 64, 1);
	all_clients_land(&f, 0, 32, 0);
	st = flows_now(&f);
	ASSERT_EQ(st.table, BATON_FLOW_TABLE_DEFAULT);
	ASSERT_EQ(st.per_slot[0], 32);
	ASSERT_EQ(st.per_slot[1], 32);
	ASSERT_EQ(st.live, 64);
	ASSERT_EQ(st.created, 64);
	ASSERT_EQ(st.evicted, 0);
	ASSERT_GE(st.followed, 64);
	/* fencing the old member ends its flows: they go where new flows go */
	ASSERT_OK(baton_group_fence(f.g, 0));
	all_clients_land(&f, 0, 32, 1);
	st = flows_now(&f);
	ASSERT_EQ(st.per_slot[0], 0);
	ASSERT_EQ(st.per_slot[1], 64);
	ASSERT_EQ(st.expired, 32);
	fx_close(&f);
}

TEST(udp_flows_stay_with_their_member_across_a_switch)
{
	flows_follow_across_a_switch(false);
}

TEST(udp_flows_stay_with_their_member_across_a_switch_ipv6)
{
	flows_follow_across_a_switch(true);
}

TEST(udp_flows_off_steers_every_datagram_by_the_policy)
{
	struct baton_flow_stats st;
	struct fx f;

	fx_open(&f, BATON_FLOWS_OFF, 0, 0, false);
	land_then_switch(&f, 16);
	all_clients_land(&f, 0, 16, 1);
	ASSERT_EQ(baton_group_flows(f.g, &st, sizeof(st)), -EOPNOTSUPP);
	fx_close(&f);
}

TEST(udp_flow_idle_ends_a_flow)
{
	struct fx f;

	fx_open(&f, BATON_FLOWS_ON, 0, 150, false);
	land_then_switch(&f, 8);
	all_clients_land(&f, 0, 8, 0);
	usleep(300 * 1000);
	ASSERT_EQ(flows_now(&f).live, 0);
	all_clients_land(&f, 0, 8, 1);
	fx_close(&f);
}

/* A slot that gets a new member starts a new epoch: flows of the member
 * that held it before do not follow the newcomer. */
TEST(udp_flows_do_not_follow_a_slot_to_its_next_member)
{
	struct fx f;
	int fd;

	fx_open(&f, BATON_FLOWS_ON, 0, 0, false);
	ASSERT_OK(baton_group_activate(f.g, 2));
	all_clients_land(&f, 0, 8, 2);
	ASSERT_OK(baton_group_activate(f.g, 0));
	ASSERT_OK(baton_group_remove(f.g, 2));
	close(f.fds[2]);
	fd = baton_listener_open_like(f.fds[0], 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(f.g, fd, 0)), 2);
	f.fds[2] = fd;
	all_clients_land(&f, 0, 8, 0);
	fx_close(&f);
}

/* A table of 8 entries and 64 flows: every datagram is still delivered
 * (the evicted flows are steered as new ones), and the evictions show. */
TEST(udp_flow_table_full_degrades_without_loss_and_counts)
{
	struct baton_flow_stats st;
	struct fx f;

	fx_open(&f, BATON_FLOWS_ON, 8, 0, false);
	ASSERT_OK(baton_group_activate(f.g, 0));
	all_clients_land(&f, 0, NCLI, 0);
	all_clients_land(&f, 0, NCLI, 0);
	st = flows_now(&f);
	ASSERT_EQ(st.table, 8);
	ASSERT_LE(st.entries, 8);
	ASSERT_GE(st.created, NCLI);
	ASSERT_GE(st.evicted + st.insert_failed, NCLI - 8);
	fx_close(&f);
}

/* QUIC-shaped packets: 1 flag byte, then (short header) the DCID. */
static size_t quic_short(uint8_t *p, uint8_t marker)
{
	p[0] = 0x40;
	p[1] = marker;
	memset(p + 2, 0xab, 7);
	return 9;
}

static size_t quic_long(uint8_t *p, int type, uint8_t marker)
{
	p[0] = (uint8_t)(0xc0 | type << 4);
	p[1] = 0, p[2] = 0, p[3] = 0, p[4] = 1;	/* version 1 */
	p[5] = 8;
	p[6] = marker;
	memset(p + 7, 0xcd, 7);
	p[14] = 0;
	return 15;
}

TEST(udp_flows_quic_packets_follow_their_cid_marker)
{
	struct baton_flow_stats st;
	uint8_t pkt[32];
	struct fx f;
	size_t n;

	fx_open(&f, BATON_FLOWS_QUIC, 0, 0, false);
	ASSERT_OK(baton_group_set_marker(f.g, 0, 0x17));
	ASSERT_OK(baton_group_set_marker(f.g, 1, 0x18));
	ASSERT_OK(baton_group_activate(f.g, 1));
	/* a client that migrated: a new address, the old member's marker */
	n = quic_short(pkt, 0x17);
	for (int c = 0; c < 8; c++)
		ASSERT_EQ(send_from(&f, c, pkt, n), 0);
	/* Handshake carries the server's DCID too; Initial the client's */
	n = quic_long(pkt, 2, 0x17);
	ASSERT_EQ(send_from(&f, 8, pkt, n), 0);
	n = quic_long(pkt, 0, 0x17);
	ASSERT_EQ(send_from(&f, 9, pkt, n), 1);
	/* an unknown marker is a flow like any other */
	n = quic_short(pkt, 0x99);
	ASSERT_EQ(send_from(&f, 10, pkt, n), 1);
	ASSERT_OK(baton_group_activate(f.g, 2));
	ASSERT_EQ(send_from(&f, 10, pkt, n), 1);
	n = quic_short(pkt, 0x18);
	ASSERT_EQ(send_from(&f, 11, pkt, n), 1);
	st = flows_now(&f);
	ASSERT_EQ(st.by_cid, 10);
	ASSERT_EQ(st.per_slot[0], 9);	/* the marker's flows count for the drain */
	/* a fenced member's marker leads nowhere: the policy picks */
	ASSERT_OK(baton_group_fence(f.g, 0));
	n = quic_short(pkt, 0x17);
	ASSERT_EQ(send_from(&f, 12, pkt, n), 2);
	ASSERT_EQ(baton_group_set_marker(f.g, 0, 256), -EINVAL);
	fx_close(&f);
}

TEST(udp_flows_marker_needs_quic_mode)
{
	struct fx f;

	fx_open(&f, BATON_FLOWS_ON, 0, 0, false);
	ASSERT_EQ(baton_group_set_marker(f.g, 0, 1), -EOPNOTSUPP);
	fx_close(&f);
}

/* ---- through baton run: flows across reloads ---------------------------
 * examples/udpflow.c under `baton run`, many client flows (one socket
 * each) numbering their datagrams while a thread reloads: a datagram that
 * reaches a generation which did not see its flow start is "misrouted". */

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>

struct flowcli {
	int fd;
	uint32_t id, seq, len;
	long long due_us, sent_us;
	bool waiting;
	bool have_cid;
	uint8_t cid[8];
};

struct drive {
	int nflows, reloads;
	bool quic, migrate;          /* QUIC-shaped packets; clients change port mid-flow */
	uint16_t port;
	volatile int reloads_done;
	volatile bool reload_failed;
	char reload_err[512];
	long long ok, misrouted, unanswered, bad, migrations, flows_done;
};

static char st_out[65536], st_err[8192];

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *reloader(void *arg)
{
	struct drive *d = arg;
	char *argv[] = { (char *)bt_baton_bin(), "reload", "udp", NULL };
	static char o[16384], e[4096];

	for (int i = 0; i < d->reloads; i++) {
		usleep(400 * 1000);
		if (bt_run(argv, o, sizeof(o), e, sizeof(e), 60) != 0) {
			snprintf(d->reload_err, sizeof(d->reload_err), "reload %d: %.200s%.200s", i + 1, o, e);
			d->reload_failed = true;
			break;
		}
		d->reloads_done = i + 1;
	}
	usleep(800 * 1000);	/* flows that began on the last generation go on a while */
	d->reloads_done = d->reloads + 1;
	return NULL;
}

static uint32_t next_id = 1;

static void cli_open(struct drive *d, struct flowcli *c, int ep, int idx, bool new_flow)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)idx };

	c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		FAIL("socket: %s", strerror(errno));
	ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev));
	if (new_flow) {
		c->id = next_id++;
		c->seq = 0;
		c->len = 40 + (uint32_t)(rand() % 110);
		c->have_cid = false;
	}
	(void)d;
}

static void cli_send(struct drive *d, struct flowcli *c)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(d->port) };
	uint8_t pkt[128];
	size_t n = 0;

	if (d->quic && !c->have_cid) {
		pkt[n++] = 0xc0;			/* long header, Initial, QUIC v1 */
		pkt[n++] = 0, pkt[n++] = 0, pkt[n++] = 0, pkt[n++] = 1;
		pkt[n++] = 8;				/* DCID: the client's own pick */
		for (int i = 0; i < 8; i++)
			pkt[n++] = (uint8_t)rand();
		pkt[n++] = 0;				/* no SCID */
	} else if (d->quic) {
		pkt[n++] = 0x40;			/* short header and the server's CID */
		memcpy(pkt + n, c->cid, 8);
		n += 8;
	}
	n += (size_t)snprintf((char *)pkt + n, sizeof(pkt) - n, "%u %u", c->id, c->seq);
	if (sendto(c->fd, pkt, n, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)n)
		FAIL("sendto: %s", strerror(errno));
	c->waiting = true;
	c->sent_us = now_us();
}

static void cli_close(struct flowcli *c, int ep)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

static void cli_answer(struct drive *d, struct flowcli *c, const char *a, int ep, int idx, long long now,
		       bool sending)
{
	unsigned id, seq;
	int gen;
	const char *cid;

	if (sscanf(a, "ok %d %u %u", &gen, &id, &seq) == 3 && id == c->id && seq == c->seq) {
		d->ok++;
	} else if (sscanf(a, "misrouted %d %u %u", &gen, &id, &seq) == 3) {
		if (d->misrouted < 5)
			bt_log("flow %u datagram %u: %s", c->id, c->seq, a);
		d->misrouted++;
	} else {
		if (d->bad < 5)
			bt_log("flow %u datagram %u: unexpected answer \"%s\"", c->id, c->seq, a);
		d->bad++;
	}
	if (d->quic && (cid = strstr(a, "cid=")) && strlen(cid) >= 20) {
		for (int i = 0; i < 8; i++) {
			unsigned v;

			sscanf(cid + 4 + 2 * i, "%2x", &v);
			c->cid[i] = (uint8_t)v;
		}
		c->have_cid = true;
	}
	c->waiting = false;
	c->seq++;
	c->due_us = now + 20000 + rand() % 40000;
	if (c->seq >= c->len) {
		d->flows_done++;
		cli_close(c, ep);
		if (sending)
			cli_open(d, c, ep, idx, true);
	} else if (d->migrate && c->seq % 7 == 3) {
		/* a new source port mid-flow: NAT rebinding, or migration */
		cli_close(c, ep);
		cli_open(d, c, ep, idx, false);
		d->migrations++;
	}
}

static void drive_flows(struct drive *d)
{
	struct flowcli *cl = calloc((size_t)d->nflows, sizeof(*cl));
	struct rlimit rl;
	pthread_t th;
	int ep = epoll_create1(EPOLL_CLOEXEC), i;
	long long end_by = 0;

	ASSERT_TRUE(cl != NULL && ep >= 0);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)d->nflows + 64)
		SKIP("needs %d descriptors, the limit is %llu", d->nflows + 64, (unsigned long long)rl.rlim_cur);
	srand(7);
	for (i = 0; i < d->nflows; i++) {
		cli_open(d, &cl[i], ep, i, true);
		cl[i].due_us = now_us() + rand() % 50000;
	}
	ASSERT_OK(pthread_create(&th, NULL, reloader, d));
	for (;;) {
		struct epoll_event ev[64];
		long long now = now_us();
		bool sending = d->reloads_done <= d->reloads && !d->reload_failed;
		int n, busy = 0;

		if (!sending && !end_by)
			end_by = now + 3000000;
		for (i = 0; i < d->nflows; i++) {
			struct flowcli *c = &cl[i];

			if (c->fd < 0)
				continue;
			if (c->waiting) {
				busy++;
				if (now - c->sent_us > 2000000) {
					if (d->unanswered < 5)
						bt_log("flow %u datagram %u: no answer in 2 s", c->id, c->seq);
					d->unanswered++;
					c->waiting = false;
					cli_close(c, ep);
					if (sending)
						cli_open(d, c, ep, i, true);
				}
			} else if (sending && now >= c->due_us) {
				cli_send(d, c);
				busy++;
			}
		}
		if (!sending && (!busy || now > end_by))
			break;
		n = epoll_wait(ep, ev, 64, 5);
		for (int k = 0; k < n; k++) {
			struct flowcli *c = &cl[ev[k].data.u32];
			char a[256];
			ssize_t got;

			if (c->fd < 0)
				continue;
			while (c->fd >= 0 && (got = recv(c->fd, a, sizeof(a) - 1, 0)) > 0) {
				a[got] = '\0';
				if (c->waiting)
					cli_answer(d, c, a, ep, (int)ev[k].data.u32, now, sending);
			}
		}
	}
	pthread_join(th, NULL);
	for (i = 0; i < d->nflows; i++)
		if (cl[i].fd >= 0) {
			if (cl[i].waiting)
				d->unanswered++;
			close(cl[i].fd);
		}
	close(ep);
	free(cl);
	bt_log("%d flows (%lld finished) through %d reloads: %lld answered ok, %lld misrouted, %lld unanswered, "
	       "%lld bad, %lld port changes; the netns counted %lld UDP receive buffer overflows", d->nflows,
	       d->flows_done, d->reloads_done - 1, d->ok, d->misrouted, d->unanswered, d->bad, d->migrations,
	       bt_net_counter("Udp", "RcvbufErrors"));
	if (d->reload_failed)
		FAIL("%s", d->reload_err);
}

static char *udp_argv[16];	/* the command, for a restart after a kill */

static pid_t udp_start(const char *spec, char *dir, size_t dirlen, struct drive *d)
{
	const char *srv = getenv("BATON_UDPFLOW");
	char logpath[96];
	int n = 0;
	pid_t pid;

	if (!srv || access(srv, X_OK))
		SKIP("BATON_UDPFLOW does not name the udpflow server (run through make check)");
	bt_need_netns();
	bt_need_ebpf();
	bt_runtime_tmpdir_log(dir, dirlen, "test", logpath, sizeof(logpath));
	bt_args(udp_argv, n, bt_baton_bin(), "run", "--name", "udp", "--listen", spec, "--grace", "30s", "--hang-threshold",
		"2s", "--", srv);
	pid = bt_supervisor_start(udp_argv, "udp", logpath, NULL, NULL, 10, st_out, sizeof(st_out));
	d->port = (uint16_t)bt_json_get(st_out, "port");
	return pid;
}

static int status_json_of(const char *name)
{
	char *argv[] = { (char *)bt_baton_bin(), "status", (char *)name, "--json", NULL };

	return bt_run(argv, st_out, sizeof(st_out), st_err, sizeof(st_err), 10);
}

static int status_json(void)
{
	return status_json_of("udp");
}

static int count_of(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Old generations got their stop signal once their flows went idle: only
 * the newest one is left, well before the 30 s grace. */
static void only_newest_left(int within_s)
{
	long long until = now_us() + within_s * 1000000ll;

	while (now_us() < until) {
		ASSERT_EQ(status_json(), 0);
		if (count_of(st_out, "\"state\":\"draining\"") == 0)
			return;
		usleep(100 * 1000);
	}
	FAIL("old generations still draining %d s after their flows went idle: %s", within_s, st_out);
}

/* udp_start(SPEC) and drive_flows(D) through its reloads: the supervisor's
 * pid, for bt_supervisor_stop. */
static pid_t drive_under(const char *spec, struct drive *d)
{
	char dir[64];
	pid_t sup = udp_start(spec, dir, sizeof(dir), d);

	drive_flows(d);
	return sup;
}

/* What flows kept with their generation show: no datagram misrouted, none
 * unanswered, none bad; then the supervisor's status in st_out. */
static void none_misrouted(const struct drive *d)
{
	ASSERT_EQ(d->misrouted, 0);
	ASSERT_EQ(d->unanswered, 0);
	ASSERT_EQ(d->bad, 0);
	ASSERT_EQ(status_json(), 0);
}

TEST_TIMEOUT(udp_1000_flows_through_10_reloads_none_misrouted, 120)
{
	struct drive d = { .nflows = 1000, .reloads = 10 };
	pid_t sup = drive_under("udp://127.0.0.1:0?flow_idle=1s", &d);

	ASSERT_GT(d.ok, 20000);
	none_misrouted(&d);
	ASSERT_EQ(bt_json_get(st_out, "reloads_done"), 10);
	ASSERT_CONTAINS(st_out, "\"flows\":{\"mode\":\"on\",\"table\":16384");
	ASSERT_EQ(bt_json_get(st_out, "evicted"), 0);
	ASSERT_EQ(bt_json_get(st_out, "insert_failed"), 0);
	only_newest_left(5);
	bt_supervisor_stop(&sup, 20);
}

/* The same test fails without the flow table: proof that it can. */
TEST_TIMEOUT(udp_flows_off_misroutes_across_reloads, 60)
{
	struct drive d = { .nflows = 200, .reloads = 2 };
	pid_t sup = drive_under("udp://127.0.0.1:0?flows=off", &d);

	ASSERT_GT(d.misrouted, 10);
	ASSERT_EQ(status_json(), 0);
	ASSERT_CONTAINS(st_out, "\"flows\":{\"mode\":\"off\"");
	bt_supervisor_stop(&sup, 20);
}

/* QUIC-shaped flows whose clients change source port every few packets:
 * the connection ID's marker keeps them with their generation. */
TEST_TIMEOUT(udp_quic_cid_marker_keeps_migrating_clients_through_reloads, 90)
{
	struct drive d = { .nflows = 300, .reloads = 5, .quic = true, .migrate = true };
	pid_t sup = drive_under("udp://127.0.0.1:0?flows=quic&flow_idle=1s", &d);

	ASSERT_GT(d.migrations, 1000);
	none_misrouted(&d);
	ASSERT_CONTAINS(st_out, "\"mode\":\"quic\"");
	ASSERT_CONTAINS(st_out, "\"quic_cid_byte\":6");
	ASSERT_GT(bt_json_get(st_out, "by_cid"), 1000);
	only_newest_left(5);
	bt_supervisor_stop(&sup, 20);
}

/* Without the marker, a client that changes port is a new flow: after a
 * reload it lands on the new generation. */
TEST_TIMEOUT(udp_quic_migration_without_marker_routing_misroutes, 60)
{
	struct drive d = { .nflows = 200, .reloads = 2, .quic = true, .migrate = true };
	pid_t sup = drive_under("udp://127.0.0.1:0?flows=on", &d);

	ASSERT_GT(d.misrouted, 10);
	bt_supervisor_stop(&sup, 20);
}

/* ---- a real QUIC stack: ngtcp2's example HTTP/3 server ------------------
 * gtlsserver binds its own socket (the preload shim gives it the member);
 * gtlsclient opens a connection at once and sends its requests only after
 * --delay-stream, by when several reloads have passed. */

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

static bool find_exe(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096], *save = NULL;

	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/bin", path ? path : "");
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", d, name);
		if (!access(out, X_OK))
			return true;
	}
	return false;
}

struct h3 {
	char dir[64], server[256], client[256];
	pid_t sup, cli[32];
	int ncli;
};

static void h3_start(struct h3 *h, const char *query)
{
	char openssl[256], spec[128], key[128], cert[128], htdocs[128], logpath[128];
	char *req[] = { openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", NULL };
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "h3", "--listen", spec, "--ready", "delay:300ms",
			 "--grace", "20s", "--hang-threshold", "2s", "--", h->server, "-q", "-d", htdocs, "127.0.0.1",
			 "4433", key, cert, NULL };

	if (!find_exe("gtlsserver", h->server, sizeof(h->server)) ||
	    !find_exe("gtlsclient", h->client, sizeof(h->client)))
		SKIP("needs ngtcp2's gtlsserver and gtlsclient (Debian: ngtcp2-server, ngtcp2-client)");
	if (!find_exe("openssl", openssl, sizeof(openssl)))
		SKIP("needs openssl for the server's certificate");
	if (!getenv("BATON_PRELOAD_LIB"))
		SKIP("BATON_PRELOAD_LIB does not name the preload shim (run through make check)");
	bt_need_netns();
	bt_need_ebpf();
	bt_runtime_tmpdir(h->dir, sizeof(h->dir), "test");
	snprintf(key, sizeof(key), "%s/key.pem", h->dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", h->dir);
	snprintf(htdocs, sizeof(htdocs), "%s/htdocs", h->dir);
	snprintf(logpath, sizeof(logpath), "%s/log", h->dir);
	snprintf(spec, sizeof(spec), "udp://127.0.0.1:4433%s", query);
	if (bt_run(req, st_out, sizeof(st_out), st_err, sizeof(st_err), 30) != 0)
		FAIL("openssl req: %s", st_err);
	ASSERT_OK(mkdir(htdocs, 0700));
	for (int i = 1; i <= 4; i++) {
		char p[160], data[3000];
		FILE *f;

		snprintf(p, sizeof(p), "%s/f%d", htdocs, i);
		f = fopen(p, "we");
		ASSERT_TRUE(f != NULL);
		for (size_t k = 0; k < sizeof(data); k++)
			data[k] = (char)('a' + (k * 7 + (size_t)i) % 26);
		fwrite(data, 1, sizeof(data) - (size_t)i * 100, f);
		fclose(f);
	}
	h->sup = bt_supervisor_start(argv, "h3", logpath, NULL, NULL, 15, st_out, sizeof(st_out));
}

/* A client that connects now and requests f1..f4 after DELAY_S seconds. */
static void h3_client(struct h3 *h, int delay_s)
{
	char dl[96], delay[32], logpath[96];
	/* an idle timeout past the longest delay, so that a lost connection
	 * ends its client soon */
	char *argv[] = { h->client, "-q", "--exit-on-all-streams-close", "--timeout=8s", delay, dl, "127.0.0.1", "4433",
			 "https://127.0.0.1:4433/f1", "https://127.0.0.1:4433/f2", "https://127.0.0.1:4433/f3",
			 "https://127.0.0.1:4433/f4", NULL };
	int c = h->ncli++;

	snprintf(dl, sizeof(dl), "--download=%s/dl%d", h->dir, c);
	snprintf(delay, sizeof(delay), "--delay-stream=%ds", delay_s);
	snprintf(logpath, sizeof(logpath), "%s/client%d.log", h->dir, c);
	ASSERT_OK(mkdir(dl + 11, 0700));
	h->cli[c] = bt_spawn_logged(argv, logpath, false);
}

/* Waits for every client (bounded), then counts the responses that did not
 * arrive whole: the failed requests. */
static int h3_failed(struct h3 *h)
{
	long long until = now_us() + 40 * 1000000ll;
	int failed = 0;

	for (int c = 0; c < h->ncli; c++) {
		while (waitpid(h->cli[c], NULL, WNOHANG) == 0 && now_us() < until)
			usleep(50 * 1000);
		if (now_us() >= until) {
			kill(h->cli[c], SIGKILL);
			waitpid(h->cli[c], NULL, 0);
		}
		for (int i = 1; i <= 4; i++) {
			char p[160];
			struct stat st;

			snprintf(p, sizeof(p), "%s/dl%d/f%d", h->dir, c, i);
			if (stat(p, &st) || st.st_size != 3000 - i * 100) {
				if (failed < 5)
					bt_log("client %d (gtlsclient): f%d did not arrive whole", c, i);
				failed++;
			}
		}
	}
	return failed;
}

static int reload_h3(void)
{
	char *argv[] = { (char *)bt_baton_bin(), "reload", "h3", NULL };

	return bt_run(argv, st_out, sizeof(st_out), st_err, sizeof(st_err), 60);
}

/* Clients (h3_client) with delays FROM to TO seconds. */
static void h3_clients(struct h3 *h, int from, int to)
{
	for (int d = from; d <= to; d++)
		h3_client(h, d);
}

/* N reloads 300 ms apart; with MORE, new clients (1 to 3 s) after the
 * 3rd and the 6th, for connections on later generations too. */
static void h3_reloads(struct h3 *h, int n, bool more)
{
	for (int r = 0; r < n; r++) {
		usleep(300 * 1000);
		if (reload_h3() != 0)
			FAIL("reload %d: %s%s", r + 1, st_out, st_err);
		if (more && (r == 2 || r == 5))
			h3_clients(h, 1, 3);
	}
}

/* The HTTP/3 run: the server under baton with QUERY, clients with delays
 * FROM to TO seconds, N reloads (h3_reloads, MORE), then the failed
 * requests (h3_failed). */
static int h3_run(struct h3 *h, const char *query, int from, int to, int n, bool more)
{
	h3_start(h, query);
	h3_clients(h, from, to);
	h3_reloads(h, n, more);
	return h3_failed(h);
}

TEST_TIMEOUT(udp_ngtcp2_http3_connections_survive_10_reloads, 120)
{
	struct h3 h = { 0 };
	int failed = h3_run(&h, "?flow_idle=10s", 1, 6, 10, true);

	bt_log("%d HTTP/3 connections, %d requests across 10 reloads: %d failed", h.ncli, h.ncli * 4, failed);
	ASSERT_EQ(failed, 0);
	ASSERT_EQ(status_json_of("h3"), 0);
	ASSERT_EQ(bt_json_get(st_out, "reloads_done"), 10);
	bt_supervisor_stop(&h.sup, 30);
}

/* The same connections without the flow table: their requests reach a
 * generation that never saw the handshake. */
TEST_TIMEOUT(udp_ngtcp2_without_flows_loses_connections_across_reloads, 60)
{
	struct h3 h = { 0 };
	int failed = h3_run(&h, "?flows=off", 2, 4, 2, false);

	bt_log("flows=off: %d of %d requests failed", failed, h.ncli * 4);
	ASSERT_GT(failed, 0);
	bt_supervisor_stop(&h.sup, 30);
}

/* ---- a supervisor killed while an old generation holds flows ----------- */

/* One datagram on each of N flows (SEQ given), answers read back; returns
 * how many came back "ok". */
static int step_flows_q(int *cli, uint32_t *ids, int n, uint32_t seq, uint16_t port, bool quiet)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(port) };
	int ok = 0;

	for (int i = 0; i < n; i++) {
		char m[64], a[128];
		struct pollfd p = { .fd = cli[i], .events = POLLIN };
		int len = snprintf(m, sizeof(m), "%u %u", ids[i], seq);
		ssize_t got;

		ASSERT_EQ(sendto(cli[i], m, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)), len);
		if (poll(&p, 1, 2000) != 1 || (got = recv(cli[i], a, sizeof(a) - 1, 0)) <= 0)
			continue;
		a[got] = '\0';
		if (!strncmp(a, "ok ", 3))
			ok++;
		else if (!quiet)
			bt_log("flow %u datagram %u: %s", ids[i], seq, a);
	}
	return ok;
}

static int step_flows(int *cli, uint32_t *ids, int n, uint32_t seq, uint16_t port)
{
	return step_flows_q(cli, ids, n, seq, port, false);
}

TEST_ALONE(udp_flows_held_by_an_old_generation_survive_a_supervisor_kill, 90)
{
	struct drive d = { 0 };
	char dir[64], log2[96];
	int cli[20];
	uint32_t ids[20];
	pid_t sup = udp_start("udp://127.0.0.1:0?flow_idle=1500ms", dir, sizeof(dir), &d);
	long long until;
	uint32_t seq = 0;

	for (int i = 0; i < 20; i++) {
		cli[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ids[i] = 500 + (uint32_t)i;
	}
	ASSERT_EQ(step_flows(cli, ids, 20, seq++, d.port), 20);
	{
		char *argv[] = { (char *)bt_baton_bin(), "reload", "udp", NULL };

		ASSERT_EQ(bt_run(argv, st_out, sizeof(st_out), st_err, sizeof(st_err), 30), 0);
	}
	ASSERT_EQ(step_flows(cli, ids, 20, seq++, d.port), 20);
	ASSERT_EQ(kill(sup, SIGKILL), 0);
	waitpid(sup, NULL, 0);
	ASSERT_EQ(step_flows(cli, ids, 20, seq++, d.port), 20);	/* no supervisor: the program steers on */
	snprintf(log2, sizeof(log2), "%s/log2", dir);
	sup = bt_supervisor_start(udp_argv, "udp", log2, NULL, NULL, 10, st_out, sizeof(st_out));
	ASSERT_CONTAINS(st_out, "\"resumed\":true");
	/* gen 1 is still there, not yet told to stop, holding its 20 flows */
	for (int k = 0; k < 5; k++)
		ASSERT_EQ(step_flows(cli, ids, 20, seq++, d.port), 20);
	ASSERT_EQ(status_json(), 0);
	ASSERT_EQ(count_of(st_out, "\"state\":\"draining\""), 1);
	ASSERT_CONTAINS(st_out, "\"flows\":20");
	/* once they go quiet it gets its signal, long before the 30 s grace */
	until = now_us() + 6000000;
	while (now_us() < until) {
		ASSERT_EQ(status_json(), 0);
		if (!count_of(st_out, "\"state\":\"draining\""))
			break;
		usleep(100 * 1000);
	}
	ASSERT_EQ(count_of(st_out, "\"state\":\"draining\""), 0);
	/* and those flows, idle now, are new flows of gen 2 */
	ASSERT_EQ(step_flows_q(cli, ids, 20, seq++, d.port, true), 0);
	for (int i = 0; i < 20; i++)
		close(cli[i]);
	bt_supervisor_stop(&sup, 20);
}
