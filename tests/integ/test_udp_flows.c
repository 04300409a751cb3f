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
	f->g = baton_group_new(&o);
	if (!f->g)
		FAIL("baton_group_new: %s", strerror(errno));
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

static void flows_follow_across_a_switch(bool v6)
{
	struct baton_flow_stats st;
	struct fx f;

	fx_open(&f, BATON_FLOWS_ON, 0, 0, v6);
	ASSERT_OK(baton_group_activate(f.g, 0));
	all_clients_land(&f, 0, 32, 0);
	/* the switch: known flows stay, new flows go to the new member */
	ASSERT_OK(baton_group_activate(f.g, 1));
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
	ASSERT_OK(baton_group_activate(f.g, 0));
	all_clients_land(&f, 0, 16, 0);
	ASSERT_OK(baton_group_activate(f.g, 1));
	all_clients_land(&f, 0, 16, 1);
	ASSERT_EQ(baton_group_flows(f.g, &st, sizeof(st)), -EOPNOTSUPP);
	fx_close(&f);
}

TEST(udp_flow_idle_ends_a_flow)
{
	struct fx f;

	fx_open(&f, BATON_FLOWS_ON, 0, 150, false);
	ASSERT_OK(baton_group_activate(f.g, 0));
	all_clients_land(&f, 0, 8, 0);
	ASSERT_OK(baton_group_activate(f.g, 1));
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
