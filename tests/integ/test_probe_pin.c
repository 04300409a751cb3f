/* SPDX-License-Identifier: BSD-2-Clause */
/* The probe pin of a check matched on source address as well as port: a
 * connection from the reserved ports but another address (127.0.0.2 on the
 * private netns's lo, standing for a remote client) follows the weights,
 * the probe's own address still reaches the pinned member; the same over
 * IPv6 with fd00::2 added to lo (issue 19.8). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

/* One connection from FROM:SPORT (IPv4, host order) to 127.0.0.1:PORT;
 * which of FDS takes it. */
static int which_from_addr(uint16_t port, uint32_t from, uint16_t sport, const int *fds)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(sport), .sin_addr.s_addr = htonl(from) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	return bt_which_takes_from(&src, &dst, fds, 2);
}

TEST(steer_probe_pin_takes_only_the_probe_address_not_any_host_on_the_reserved_ports)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log);
	struct sockaddr_in probe = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 mapped = { .sin6_family = AF_INET6 };
	struct sockaddr unix_addr = { .sa_family = AF_UNIX };
	struct baton_group *g;
	uint16_t port;
	int fds[2], i, other = 0;

	bt_need_netns();
	bt_need_ebpf();
	g = bt_group_new(&o);
	port = bt_listeners(fds, 2, false);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 1)), 0);	/* every weight: slot 0 */
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);
	ASSERT_OK(baton_group_pin_source_addr(g, (struct sockaddr *)&probe, sizeof(probe), 1008, 1023, 1));
	/* the probe: from 127.0.0.1, every reserved port, to slot 1 */
	for (i = 0; i < 32; i++)
		ASSERT_EQ(which_from_addr(port, INADDR_LOOPBACK, (uint16_t)(1008 + i % 16), fds), 1);
	/* another host on the same ports: the policy (slot 0), every time */
	for (i = 0; i < 32; i++)
		other += which_from_addr(port, 0x7f000002, (uint16_t)(1008 + i % 16), fds) == 1;
	bt_log("from 127.0.0.2 on ports 1008-1023: %d of 32 reached the pinned member", other);
	ASSERT_EQ(other, 0);
	/* an IPv4-mapped address pins IPv4 connections the same way */
	mapped.sin6_addr.s6_addr[10] = mapped.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&mapped.sin6_addr.s6_addr[12], (uint8_t[]){ 127, 0, 0, 2 }, 4);
	ASSERT_OK(baton_group_pin_source_addr(g, (struct sockaddr *)&mapped, sizeof(mapped), 1008, 1023, 1));
	ASSERT_EQ(which_from_addr(port, 0x7f000002, 1010, fds), 1);
	ASSERT_EQ(which_from_addr(port, INADDR_LOOPBACK, 1011, fds), 0);
	/* no address: every host, as baton_group_pin_source always did */
	ASSERT_OK(baton_group_pin_source(g, 1008, 1023, 1));
	ASSERT_EQ(which_from_addr(port, 0x7f000002, 1012, fds), 1);
	ASSERT_OK(baton_group_pin_source(g, 1008, 1023, -1));
	ASSERT_EQ(which_from_addr(port, INADDR_LOOPBACK, 1013, fds), 0);
	/* a family it cannot match is refused, changing nothing */
	ASSERT_EQ(baton_group_pin_source_addr(g, &unix_addr, sizeof(unix_addr), 1008, 1023, 1), -EINVAL);
	ASSERT_EQ(which_from_addr(port, INADDR_LOOPBACK, 1014, fds), 0);
	baton_group_free(g);
	close(fds[0]);
	close(fds[1]);
}

/* One connection from [FROM]:SPORT to [::1]:PORT; which of FDS takes it. */
static int which_from6(uint16_t port, const char *from, uint16_t sport, const int *fds)
{
	struct sockaddr_in6 src = { .sin6_family = AF_INET6, .sin6_port = htons(sport) };
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_loopback };

	inet_pton(AF_INET6, from, &src.sin6_addr);
	return bt_which_takes_from(&src, &dst, fds, 2);
}

TEST(steer_probe_pin_on_ipv6_takes_only_the_probe_address)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log);
	struct sockaddr_in6 probe = { .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback };
	struct baton_group *g;
	struct baton_spec spec;
	char err[256], text[96];
	uint16_t port = 0;
	int fds[2], i, other = 0;

	bt_need_netns();
	bt_need_ebpf();
	/* a second address on the private namespace's lo: the other host */
	if (system("ip -6 addr add fd00::2/128 dev lo nodad 2>/dev/null"))
		SKIP("cannot add fd00::2 to lo with ip(8)");
	for (i = 0; i < 2; i++) {
		struct sockaddr_in6 a;
		socklen_t len = sizeof(a);

		snprintf(text, sizeof(text), "tcp://[::1]:%u?backlog=1024", port);
		if (baton_spec_parse(text, &spec, err, sizeof(err)))
			FAIL("spec: %s", err);
		fds[i] = baton_listener_open(&spec);
		if (fds[i] < 0)
			FAIL("listener on [::1]:%u: %s", port, strerror(-fds[i]));
		ASSERT_OK(getsockname(fds[i], (struct sockaddr *)&a, &len));
		port = ntohs(a.sin6_port);
	}
	g = bt_group_new(&o);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 1)), 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);
	ASSERT_OK(baton_group_pin_source_addr(g, (struct sockaddr *)&probe, sizeof(probe), 1008, 1023, 1));
	for (i = 0; i < 16; i++)
		ASSERT_EQ(which_from6(port, "::1", (uint16_t)(1008 + i), fds), 1);
	for (i = 0; i < 16; i++)
		other += which_from6(port, "fd00::2", (uint16_t)(1008 + i), fds) == 1;
	bt_log("from fd00::2 on ports 1008-1023: %d of 16 reached the pinned member", other);
	ASSERT_EQ(other, 0);
	/* the same host reaches it once the pin takes any address */
	ASSERT_OK(baton_group_pin_source(g, 1008, 1023, 1));
	ASSERT_EQ(which_from6(port, "fd00::2", 1009, fds), 1);
	baton_group_free(g);
	close(fds[0]);
	close(fds[1]);
}
