/* SPDX-License-Identifier: BSD-2-Clause */
/* Member sockets: opening one from a spec with SO_REUSEPORT, and reading
 * its queue (accept queue and backlog for TCP, bytes for UDP). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>
#include <linux/sock_diag.h>

#include "internal.h"

int baton_listener_open(const struct baton_spec *spec)
{
	int type = spec->proto == BATON_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int one = 1, fd, err;

	if (!spec || (spec->family != AF_INET && spec->family != AF_INET6))
		return -EINVAL;
	fd = socket(spec->family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) ||
	    (spec->family == AF_INET6 && spec->v6only >= 0 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &spec->v6only, sizeof(spec->v6only))) ||
	    bind(fd, (const struct sockaddr *)&spec->addr, spec->addrlen) ||
	    (type == SOCK_STREAM && listen(fd, spec->backlog)))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int baton_socket_queue(int fd, struct baton_queue *q)
{
	int type;
	socklen_t len = sizeof(type);

	if (!q)
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
