/* SPDX-License-Identifier: BSD-2-Clause */
/* Member sockets: opening one from a spec with SO_REUSEPORT, and reading
 * its queue (accept queue and backlog for TCP, bytes for UDP). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>
#include <linux/sock_diag.h>

#include "baton.h"

#define DEFAULT_BACKLOG 4096

/* Opens TYPE on ADDR with SO_REUSEPORT (and SO_REUSEADDR for TCP); V6ONLY
 * -1: the system's default; IFINDEX 0: any device. */
static int open_member(int type, const struct sockaddr_storage *addr, socklen_t alen, int v6only, int ifindex,
		       int backlog)
{
	int one = 1, fd, err;

	fd = socket(addr->ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) ||
	    (addr->ss_family == AF_INET6 && v6only >= 0 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only))) ||
	    (ifindex > 0 && setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, sizeof(ifindex))) ||
	    bind(fd, (const struct sockaddr *)addr, alen) ||
	    (type == SOCK_STREAM && listen(fd, backlog)))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int baton_listener_open(const struct baton_spec *spec)
{
	struct sockaddr_storage addr;
	socklen_t alen;

	if (!spec || (spec->proto != BATON_PROTO_TCP && spec->proto != BATON_PROTO_UDP) ||
	    (spec->family != AF_INET && spec->family != AF_INET6) || spec->backlog < 0 ||
	    (spec->addr.ss_family != AF_UNSPEC && spec->addr.ss_family != spec->family))
		return -EINVAL;
	/* The port comes from spec->port alone, so that a caller who changes
	 * it need not know that addr holds a copy in network order. */
	memset(&addr, 0, sizeof(addr));
	if (spec->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&addr;

		if (spec->addr.ss_family == AF_INET)
			memcpy(sin, &spec->addr, sizeof(*sin));
		sin->sin_family = AF_INET;
		sin->sin_port = htons(spec->port);
		alen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr;

		if (spec->addr.ss_family == AF_INET6)
			memcpy(sin6, &spec->addr, sizeof(*sin6));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(spec->port);
		alen = sizeof(*sin6);
	}
	return open_member(spec->proto == BATON_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM, &addr, alen, spec->v6only, 0,
			   spec->backlog ? spec->backlog : DEFAULT_BACKLOG);
}

static int sockopt_int(int fd, int level, int name, int *val)
{
	socklen_t len = sizeof(*val);

	return getsockopt(fd, level, name, val, &len) ? -errno : 0;
}

int baton_listener_open_like(int fd, int backlog)
{
	struct sockaddr_storage addr;
	socklen_t alen = sizeof(addr);
	int type, family, v6only = -1, ifindex = 0, v = 0, r;
	struct baton_queue q;

	if (fd < 0 || backlog < 0)
		return -EINVAL;
	if ((r = sockopt_int(fd, SOL_SOCKET, SO_TYPE, &type)) || (r = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &family)))
		return r;
	if ((family != AF_INET && family != AF_INET6) || (type != SOCK_STREAM && type != SOCK_DGRAM))
		return -EPROTOTYPE;
	memset(&addr, 0, sizeof(addr));
	if (getsockname(fd, (struct sockaddr *)&addr, &alen))
		return -errno;
	if (type == SOCK_STREAM) {
		/* a listener that was shut down (fenced) has no group to join */
		if ((r = sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &v)))
			return r;
		if (!v)
			return -EINVAL;
		if (!backlog)
			backlog = baton_socket_queue(fd, &q) == 0 && q.max ? (int)q.max : DEFAULT_BACKLOG;
	} else if (((struct sockaddr_in *)&addr)->sin_port == 0) {
		return -EINVAL;	/* an unbound UDP socket has no address to share */
	}
	if (family == AF_INET6 && (r = sockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only)))
		return r;
	/* members of one reuseport group must be bound to the same device */
	if (sockopt_int(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex))
		ifindex = 0;
	return open_member(type, &addr, alen, v6only, ifindex, backlog);
}

int baton_socket_queue(int fd, struct baton_queue *q)
{
	int type;
	socklen_t len = sizeof(type);

	if (fd < 0 || !q)
		return -EINVAL;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len))
		return -errno;
	if (type == SOCK_STREAM) {
		struct tcp_info ti;

		len = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
			return -errno;
		if (ti.tcpi_state != 10 /* TCP_LISTEN */)
			return -ENOTCONN;
		/* For a listener the kernel reports the accept queue in
		 * tcpi_unacked and the backlog in tcpi_sacked. */
		q->len = ti.tcpi_unacked;
		q->max = ti.tcpi_sacked;
		return 0;
	}
	if (type == SOCK_DGRAM) {
		uint32_t mem[SK_MEMINFO_VARS];

		len = sizeof(mem);
		if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len))
			return -errno;
		q->len = mem[SK_MEMINFO_RMEM_ALLOC];
		q->max = mem[SK_MEMINFO_RCVBUF];
		return 0;
	}
	return -EPROTOTYPE;
}
