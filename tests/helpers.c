/* Socket and namespace helpers for the integration tests. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

bool bt_netns(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (unshare(CLONE_NEWNET))
		return false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		FAIL("socket: %s", strerror(errno));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		FAIL("SIOCGIFFLAGS lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		FAIL("bring lo up: %s", strerror(errno));
	close(fd);
	return true;
}

void bt_need_netns(void)
{
	if (!bt_netns())
		SKIP("cannot create a network namespace (%s): needs CAP_SYS_ADMIN", strerror(errno));
}

void bt_need_ebpf(void)
{
	char log[1024] = "";
	struct baton_group_opts o = { .sz = sizeof(o), .mode = BATON_MODE_EBPF,
				      .log = bt_lib_collect, .log_ctx = log };
	struct baton_group *g = baton_group_new(&o);

	if (!g)
		SKIP("eBPF steering cannot load here (%s): needs CAP_BPF and CAP_NET_ADMIN, or root",
		     strerror(errno));
	baton_group_free(g);
}

void bt_lib_log(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)ctx;
	if (level <= BATON_LOG_INFO)
		bt_log("lib: %s", msg);
}

void bt_lib_collect(void *ctx, enum baton_log_level level, const char *msg)
{
	char *buf = ctx;
	size_t len = strlen(buf);

	(void)level;
	snprintf(buf + len, 1024 - len, "%s\n", msg);
}

uint16_t bt_listeners(int *fds, int n, bool udp)
{
	struct baton_spec spec;
	char err[256];
	uint16_t port = 0;
	int i;

	for (i = 0; i < n; i++) {
		char text[64];
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);

		snprintf(text, sizeof(text), "%s://127.0.0.1:%u?%s", udp ? "udp" : "tcp", port,
			 udp ? "name=t" : "backlog=1024");
		if (baton_spec_parse(text, &spec, err, sizeof(err)))
			FAIL("spec: %s", err);
		fds[i] = baton_listener_open(&spec);
		if (fds[i] < 0)
			FAIL("listener %d on port %u: %s", i, port, strerror(-fds[i]));
		if (getsockname(fds[i], (struct sockaddr *)&sin, &len))
			FAIL("getsockname: %s", strerror(errno));
		port = ntohs(sin.sin_port);
	}
	return port;
}

int bt_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		FAIL("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		FAIL("connect to port %u: %s", port, strerror(errno));
	return fd;
}

int bt_accept_which(const int *fds, int n, int timeout_ms, int *conn)
{
	struct pollfd pfd[64];
	int i, c;

	if (n > 64)
		FAIL("too many listeners");
	for (i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!(pfd[i].revents & POLLIN))
			continue;
		c = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			FAIL("accept on listener %d: %s", i, strerror(errno));
		if (conn)
			*conn = c;
		else
			bt_close_rst(c);
		return i;
	}
	return -1;
}

void bt_close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int bt_which_takes(uint16_t port, const int *fds, int n)
{
	int c = bt_connect(port), which = bt_accept_which(fds, n, 2000, NULL);

	bt_close_rst(c);
	return which;
}

int bt_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		FAIL("opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}
