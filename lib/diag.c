/* SPDX-License-Identifier: BSD-2-Clause */
/* The unprivileged collector of baton ls: one sock_diag netlink dump per
 * family and protocol gives every TCP listener and UDP socket of this network
 * namespace with its addresses, queue, uid, inode and cookie. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "internal.h"

#define TCP_STATE_LISTEN 10
#define TCP_STATE_CLOSE 7
#define TCP_STATE_ESTABLISHED 1

/* A dump of a million messages would be a machine we were not built for;
 * the bound only keeps the loop finite if the kernel misbehaves. */
#define MAX_MSGS (1u << 24)

static int send_req(int fd, int family, int protocol, uint32_t states)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.req = { .sdiag_family = (uint8_t)family, .sdiag_protocol = (uint8_t)protocol,
			 .idiag_states = states },
	};
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };

	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
		return -errno;
	return 0;
}

static int add_one(struct baton_sockvec *sv, const struct inet_diag_msg *m, int protocol, uint32_t len)
{
	struct baton_sock *s = baton_sockvec_push(sv);
	struct rtattr *a;
	uint32_t alen;

	if (!s)
		return -ENOMEM;
	s->proto = protocol == IPPROTO_TCP ? BATON_PROTO_TCP : BATON_PROTO_UDP;
	s->family = m->idiag_family;
	s->state = m->idiag_state;
	memcpy(s->local, m->id.idiag_src, 16);
	memcpy(s->remote, m->id.idiag_dst, 16);
	if (s->family == AF_INET) {	/* only the first word is the address */
		memset(s->local + 4, 0, 12);
		memset(s->remote + 4, 0, 12);
	}
	s->lport = ntohs(m->id.idiag_sport);
	s->rport = ntohs(m->id.idiag_dport);
	s->queue = m->idiag_rqueue;
	s->queue_max = m->idiag_wqueue;
	s->uid = m->idiag_uid;
	s->inode = m->idiag_inode;
	s->cookie = (uint64_t)m->id.idiag_cookie[1] << 32 | m->id.idiag_cookie[0];
	s->slot = -1;
	s->opt[BATON_OPT_BOUND_IF] = m->id.idiag_if;
	s->opt_known |= 1u << BATON_OPT_BOUND_IF;
	/* the kernel adds IPV6_V6ONLY to every AF_INET6 answer */
	alen = len - NLMSG_LENGTH(sizeof(*m));
	for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
		if (a->rta_type == INET_DIAG_SKV6ONLY && RTA_PAYLOAD(a) >= 1) {
			s->opt[BATON_OPT_V6ONLY] = *(uint8_t *)RTA_DATA(a);
			s->opt_known |= 1u << BATON_OPT_V6ONLY;
		}
	return 0;
}

static int dump(int fd, struct baton_sockvec *sv, int family, int protocol, uint32_t states, void *buf,
		size_t buflen)
{
	uint32_t msgs = 0;
	int r = send_req(fd, family, protocol, states);

	if (r)
		return r;
	while (msgs < MAX_MSGS) {
		ssize_t got = recv(fd, buf, buflen, 0);
		struct nlmsghdr *h;
		size_t left;

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			return -EPIPE;
		left = (size_t)got;
		for (h = buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left), msgs++) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				/* no UDP or IPv6 diag module: nothing to list */
				return e->error == -ENOENT ? 0 : e->error;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			r = add_one(sv, NLMSG_DATA(h), protocol, h->nlmsg_len);
			if (r)
				return r;
		}
	}
	return -EOVERFLOW;
}

int baton_diag_collect(struct baton_sockvec *sv, bool udp_all)
{
	static const int families[] = { AF_INET, AF_INET6 };
	uint32_t udp_states = 1u << TCP_STATE_CLOSE | (udp_all ? 1u << TCP_STATE_ESTABLISHED : 0);
	size_t buflen = 64 * 1024;
	void *buf = malloc(buflen);
	int fd, r = 0;
	size_t i;

	if (!buf)
		return -ENOMEM;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	for (i = 0; i < 2 && !r; i++) {
		r = dump(fd, sv, families[i], IPPROTO_TCP, 1u << TCP_STATE_LISTEN, buf, buflen);
		if (!r)
			r = dump(fd, sv, families[i], IPPROTO_UDP, udp_states, buf, buflen);
	}
	close(fd);
out:
	free(buf);
	return r;
}
