/* SPDX-License-Identifier: BSD-2-Clause */
/* The contract of the public interface itself: the version, options and
 * results that can grow without breaking programs built against another
 * baton.h, -EINVAL for bad arguments, and the listener helpers. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static struct baton_group *cbpf_group(char *log)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_CBPF, .log = bt_lib_collect, .log_ctx = log);
	struct baton_group *g = baton_group_new(&o);

	if (!g)
		FAIL("cBPF group: %s", strerror(errno));
	return g;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		FAIL("getsockname: %s", strerror(errno));
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		FAIL("getsockopt %d/%d: %s", level, name, strerror(errno));
	return v;
}

/* A port nobody in this namespace uses: bound, read, closed. */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)))
		FAIL("bind port 0: %s", strerror(errno));
	port = local_port(fd);
	close(fd);
	return port;
}

TEST_ENV(api_version_header_matches_library)
{
	const char *path = getenv("BATON_LIB");
	int major = -1, minor = -1, patch = -1;
	char want[32];
	const char *(*fn)(void);
	void *h;

	ASSERT_STREQ(baton_version(), BATON_VERSION);
	ASSERT_EQ(sscanf(baton_version(), "%d.%d.%d", &major, &minor, &patch), 3);
	ASSERT_EQ(major, BATON_VERSION_MAJOR);
	ASSERT_EQ(minor, BATON_VERSION_MINOR);
	ASSERT_EQ(patch, BATON_VERSION_PATCH);
	snprintf(want, sizeof(want), "%d.%d.%d", BATON_VERSION_MAJOR, BATON_VERSION_MINOR, BATON_VERSION_PATCH);
	ASSERT_STREQ(BATON_VERSION, want);
	if (!path)
		SKIP("BATON_LIB is not set (run through make check): the shared library was not checked");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		FAIL("dlopen %s: %s", path, dlerror());
	/* the shared library says the same, from the version node it was added in */
	*(void **)&fn = dlvsym(h, "baton_version", "BATON_0.2");
	ASSERT_TRUE(fn != NULL);
	ASSERT_STREQ(fn(), BATON_VERSION);
	ASSERT_TRUE(dlvsym(h, "baton_listener_open_like", "BATON_0.2") != NULL);
	ASSERT_TRUE(dlvsym(h, "baton_group_flags", "BATON_0.2") != NULL);
	ASSERT_TRUE(dlvsym(h, "baton_group_stats_info", "BATON_0.2") != NULL);
	ASSERT_TRUE(dlvsym(h, "baton_watch_health_info", "BATON_0.2") != NULL);
	/* the 0.1 names stay where programs linked against 0.1 find them */
	ASSERT_TRUE(dlvsym(h, "baton_watch_health", "BATON_0.1") != NULL);
	ASSERT_TRUE(dlvsym(h, "baton_opts_copy", "BATON_0.2") == NULL);
	dlclose(h);
}

TEST(api_opts_macro_sets_size_and_zeroes_the_rest)
{
	BATON_OPTS(baton_collect_opts, o, .udp_all = true);
	const unsigned char *p = (const unsigned char *)&o;
	size_t i;

	ASSERT_EQ(o.sz, sizeof(o));
	ASSERT_TRUE(o.udp_all);
	/* everything else, padding included, is zero: a library older than
	 * this header checks those bytes */
	for (i = sizeof(o.sz); i < sizeof(o); i++)
		if (i != offsetof(struct baton_collect_opts, udp_all))
			ASSERT_EQ(p[i], 0);
}

/* A program built against a newer baton.h: the same options plus fields
 * this library does not know. */
struct newer_group_opts {
	struct baton_group_opts o;
	uint64_t future[2];
};

TEST(api_opts_from_a_newer_header_need_unknown_bytes_zero)
{
	char log[1024] = "", want[128];
	struct newer_group_opts n;
	struct baton_group *g;

	memset(&n, 0, sizeof(n));
	n.o.sz = sizeof(n);
	n.o.mode = BATON_MODE_CBPF;
	n.o.log = bt_lib_collect;
	n.o.log_ctx = log;
	g = baton_group_new(&n.o);
	ASSERT_TRUE(g != NULL);
	baton_group_free(g);

	/* an option this library does not have: refused, not ignored */
	n.future[1] = 1;
	errno = 0;
	ASSERT_TRUE(baton_group_new(&n.o) == NULL);
	ASSERT_EQ(errno, EINVAL);
	snprintf(want, sizeof(want), "struct baton_group_opts: byte %zu of %zu is not zero",
		 offsetof(struct newer_group_opts, future[1]), sizeof(n));
	ASSERT_CONTAINS(log, want);

	/* sz too small to be a struct at all */
	n.future[1] = 0;
	n.o.sz = 4;
	errno = 0;
	ASSERT_TRUE(baton_group_new(&n.o) == NULL);
	ASSERT_EQ(errno, EINVAL);
	n.o.sz = 0;
	ASSERT_TRUE(baton_group_new(&n.o) == NULL);
}

TEST(api_opts_from_an_older_header_leave_later_fields_zero)
{
	struct baton_group_opts o;
	struct baton_group *g;

	/* a caller that knows no pin_path: whatever lies there is not read
	 * (a pin path with classic BPF would be refused) */
	memset(&o, 0, sizeof(o));
	o.sz = offsetof(struct baton_group_opts, pin_path);
	o.mode = BATON_MODE_CBPF;
	o.pin_path = "/sys/fs/bpf/never-read";
	g = baton_group_new(&o);
	ASSERT_TRUE(g != NULL);
	ASSERT_EQ(baton_group_mode(g), BATON_MODE_CBPF);
	baton_group_free(g);
	o.sz = sizeof(o);
	errno = 0;
	ASSERT_TRUE(baton_group_new(&o) == NULL);
	ASSERT_EQ(errno, EINVAL);
}

TEST(api_watch_and_collect_opts_are_checked_too)
{
	struct {
		struct baton_watch_opts o;
		uint32_t future;
	} wn;
	struct {
		struct baton_collect_opts o;
		uint64_t future;
	} cn;
	char log[1024] = "", want[128];
	struct baton_group *g = cbpf_group(log);
	struct baton_watch *w;
	struct baton_sock *v = NULL;
	size_t n = 0;

	memset(&wn, 0, sizeof(wn));
	wn.o.sz = sizeof(wn);
	wn.o.log = bt_lib_collect;
	wn.o.log_ctx = log;
	w = baton_watch_new(g, &wn.o);
	ASSERT_TRUE(w != NULL);
	baton_watch_free(w);
	wn.future = 7;
	errno = 0;
	ASSERT_TRUE(baton_watch_new(g, &wn.o) == NULL);
	ASSERT_EQ(errno, EINVAL);
	snprintf(want, sizeof(want), "struct baton_watch_opts: byte %zu of", offsetof(__typeof__(wn), future));
	ASSERT_CONTAINS(log, want);
	wn.o.sz = 2;
	ASSERT_TRUE(baton_watch_new(g, &wn.o) == NULL);

	memset(&cn, 0, sizeof(cn));
	cn.o.sz = sizeof(cn);
	cn.o.diag_only = true;
	cn.o.log = bt_lib_collect;
	cn.o.log_ctx = log;
	ASSERT_OK(baton_socks_collect(&cn.o, &v, &n));
	baton_socks_free(v);
	cn.future = 1;
	ASSERT_EQ(baton_socks_collect(&cn.o, &v, &n), -EINVAL);
	ASSERT_TRUE(v == NULL);
	ASSERT_CONTAINS(log, "struct baton_collect_opts: byte");
	cn.o.sz = 0;
	ASSERT_EQ(baton_socks_collect(&cn.o, &v, &n), -EINVAL);
	baton_group_free(g);
}

/* A program whose struct baton_sock is larger than ours gets elements of
 * its size, the fields we do not know zero; one smaller than 0.1 is refused. */
TEST(api_collect_gives_elements_of_the_callers_size)
{
	struct bigger {
		struct baton_sock s;
		unsigned char future[40];
	} *big = NULL;
	BATON_OPTS(baton_collect_opts, o, .diag_only = true, .sock_sz = sizeof(struct baton_sock));
	char log[1024] = "";
	struct baton_sock *v = NULL, *bv = NULL;
	size_t n = 0, bn = 0, k, i;
	int fds[2];
	uint16_t port;

	bt_netns();	/* a namespace of our own keeps both collections equal */
	port = bt_listeners(fds, 2, false);
	ASSERT_OK(baton_socks_collect(&o, &v, &n));
	o.sock_sz = sizeof(struct bigger);
	ASSERT_OK(baton_socks_collect(&o, &bv, &bn));
	big = (struct bigger *)(void *)bv;
	ASSERT_EQ(bn, n);
	ASSERT_GE(n, 2);
	for (k = 0; k < n; k++) {
		ASSERT_EQ(big[k].s.cookie, v[k].cookie);
		ASSERT_EQ(big[k].s.lport, v[k].lport);
		for (i = 0; i < sizeof(big[k].future); i++)
			ASSERT_EQ(big[k].future[i], 0);
	}
	for (k = 0; k < n && v[k].lport != port; k++)
		;
	ASSERT_TRUE(k < n);
	baton_socks_free(v);
	baton_socks_free(bv);

	o.sock_sz = 16;
	o.log = bt_lib_collect;
	o.log_ctx = log;
	ASSERT_EQ(baton_socks_collect(&o, &v, &n), -EINVAL);
	ASSERT_CONTAINS(log, "sock_sz 16 is not the size of a struct baton_sock");
	close(fds[0]);
	close(fds[1]);
}

TEST(api_health_info_fills_what_it_knows)
{
	struct {
		struct baton_member_health h;
		unsigned char future[24];
	} big;
	char log[1024] = "";
	struct baton_group *g;
	struct baton_watch *w;
	struct baton_member_health h;
	int fds[1], slot;
	size_t i;

	bt_netns();
	bt_listeners(fds, 1, false);
	g = cbpf_group(log);
	slot = (int)ASSERT_OK(baton_group_add(g, fds[0], 1));
	w = baton_watch_new(g, NULL);
	ASSERT_TRUE(w != NULL);
	ASSERT_OK(baton_watch_set_owner(w, slot, getpid()));
	ASSERT_OK(baton_watch_tick(w, 1000));

	memset(&big, 0xa5, sizeof(big));
	ASSERT_EQ(baton_watch_health_info(w, slot, &big.h, sizeof(big)), (int)sizeof(struct baton_member_health));
	ASSERT_EQ(big.h.health, BATON_HEALTH_OK);
	ASSERT_EQ(big.h.nowners, 1);
	ASSERT_EQ(big.h.owners_running, 1);
	for (i = 0; i < sizeof(big.future); i++)
		ASSERT_EQ(big.future[i], 0);
	/* the 0.1 call fills the same fields */
	memset(&h, 0xa5, sizeof(h));
	ASSERT_OK(baton_watch_health(w, slot, &h));
	ASSERT_EQ(memcmp(&h, &big.h, sizeof(h)), 0);
	/* smaller than the 0.1 struct: not a struct baton_member_health */
	ASSERT_EQ(baton_watch_health_info(w, slot, &h, 8), -EINVAL);
	ASSERT_EQ(baton_watch_health_info(w, slot, NULL, sizeof(h)), -EINVAL);

	/* classic BPF has no counters; the sized call says so the same way */
	ASSERT_EQ(baton_group_stats_info(g, slot, &(struct baton_slot_stats){ 0 }, sizeof(struct baton_slot_stats)),
		  -EOPNOTSUPP);
	ASSERT_EQ(baton_group_stats_info(g, slot, &(struct baton_slot_stats){ 0 }, 8), -EINVAL);
	baton_watch_free(w);
	baton_group_free(g);
	close(fds[0]);
}

TEST_ROOT(api_stats_info_fills_what_it_knows)
{
	struct {
		struct baton_slot_stats st;
		uint64_t future[3];
	} big;
	struct baton_slot_stats st;
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log);
	struct baton_group *g;
	int fds[2], i;
	uint16_t port;

	bt_need_netns();
	bt_need_ebpf();
	port = bt_listeners(fds, 2, false);
	g = baton_group_new(&o);
	ASSERT_TRUE(g != NULL);
	ASSERT_OK(baton_group_add(g, fds[0], 1));
	ASSERT_OK(baton_group_add(g, fds[1], 0));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(bt_which_takes(port, fds, 2), 0);
	memset(&big, 0xa5, sizeof(big));
	ASSERT_EQ(baton_group_stats_info(g, 0, &big.st, sizeof(big)), (int)sizeof(struct baton_slot_stats));
	ASSERT_EQ(big.st.selected, 3);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(big.future[i], 0);
	ASSERT_EQ(big.st.migrated_out, 0);	/* 0.2: nothing moved out of slot 0 */
	memset(&st, 0xa5, sizeof(st));
	ASSERT_OK(baton_group_stats(g, 0, &st));
	/* the 0.1 call fills the 0.1 fields, and never migrated_out */
	ASSERT_EQ(memcmp(&st, &big.st, offsetof(struct baton_slot_stats, migrated_out)), 0);
	ASSERT_EQ(st.migrated_out, 0xa5a5a5a5a5a5a5a5ULL);
	baton_group_free(g);
	close(fds[0]);
	close(fds[1]);
}

TEST(api_bad_arguments_are_einval)
{
	char log[1024] = "";
	struct baton_group *g;
	struct baton_watch *w;
	struct baton_member_health h;
	struct baton_slot_stats st;
	struct baton_notify_msg msg;
	struct baton_queue q;
	struct baton_spec spec;
	struct baton_sock *v;
	uint32_t weight, id;
	size_t n;
	int fds[1], bad[] = { -1, BATON_MAX_SLOTS, 1000 }, i, nfd;

	bt_netns();
	bt_listeners(fds, 1, false);
	g = cbpf_group(log);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 1)), 0);
	w = baton_watch_new(g, NULL);
	ASSERT_TRUE(w != NULL);

	/* NULL group */
	errno = 0;
	ASSERT_EQ(baton_group_mode(NULL), BATON_MODE_AUTO);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_TRUE(!baton_group_fenced(NULL, 0));
	ASSERT_EQ(baton_group_flags(NULL, 0), -EINVAL);
	ASSERT_EQ(baton_group_size(NULL), -EINVAL);
	ASSERT_EQ(baton_group_add(NULL, fds[0], 1), -EINVAL);
	ASSERT_EQ(baton_group_activate(NULL, 0), -EINVAL);
	ASSERT_EQ(baton_group_drain(NULL, 0), -EINVAL);
	ASSERT_EQ(baton_group_weight(NULL, 0, &weight), -EINVAL);
	ASSERT_EQ(baton_group_fence(NULL, 0), -EINVAL);
	ASSERT_EQ(baton_group_unfence(NULL, 0), -EINVAL);
	ASSERT_EQ(baton_group_set_down(NULL, 0, true), -EINVAL);
	ASSERT_EQ(baton_group_remove(NULL, 0), -EINVAL);
	ASSERT_EQ(baton_group_fd(NULL, 0), -EINVAL);
	ASSERT_EQ(baton_group_queue(NULL, 0, &q), -EINVAL);
	ASSERT_EQ(baton_group_stats(NULL, 0, &st), -EINVAL);
	ASSERT_EQ(baton_group_set_weights(NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(baton_group_reload(NULL), -EINVAL);
	ASSERT_EQ(baton_group_detach(NULL), -EINVAL);
	ASSERT_EQ(baton_group_unpin(NULL), -EINVAL);
	ASSERT_EQ(baton_group_prog_id(NULL, &id), -EINVAL);
	baton_group_free(NULL);

	/* slots out of range: a bug in the caller, not a member that left */
	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		int s = bad[i];

		ASSERT_TRUE(!baton_group_fenced(g, s));
		ASSERT_EQ(baton_group_flags(g, s), -EINVAL);
		ASSERT_EQ(baton_group_activate(g, s), -EINVAL);
		ASSERT_EQ(baton_group_drain(g, s), -EINVAL);
		ASSERT_EQ(baton_group_weight(g, s, &weight), -EINVAL);
		ASSERT_EQ(baton_group_fence(g, s), -EINVAL);
		ASSERT_EQ(baton_group_unfence(g, s), -EINVAL);
		ASSERT_EQ(baton_group_set_down(g, s, true), -EINVAL);
		ASSERT_EQ(baton_group_remove(g, s), -EINVAL);
		ASSERT_EQ(baton_group_fd(g, s), -EINVAL);
		ASSERT_EQ(baton_group_queue(g, s, &q), -EINVAL);
		ASSERT_EQ(baton_watch_set_owner(w, s, getpid()), -EINVAL);
		ASSERT_EQ(baton_watch_clear_owners(w, s), -EINVAL);
		ASSERT_EQ(baton_watch_health(w, s, &h), -EINVAL);
	}
	ASSERT_EQ(baton_group_stats(g, BATON_MAX_SLOTS + 1, &st), -EINVAL);
	ASSERT_EQ(baton_group_stats(g, -1, &st), -EINVAL);

	/* an empty slot in range: -ENOENT, as before */
	ASSERT_TRUE(!baton_group_fenced(g, 5));
	ASSERT_EQ(baton_group_flags(g, 5), -ENOENT);
	ASSERT_EQ(baton_group_activate(g, 5), -ENOENT);
	ASSERT_EQ(baton_group_weight(g, 5, &weight), -ENOENT);
	ASSERT_EQ(baton_group_fd(g, 5), -ENOENT);
	ASSERT_EQ(baton_watch_health(w, 5, &h), -ENOENT);
	ASSERT_EQ(baton_watch_set_owner(w, 5, getpid()), -ENOENT);

	/* NULL results and out-of-range values */
	ASSERT_EQ(baton_group_weight(g, 0, NULL), -EINVAL);
	ASSERT_EQ(baton_group_queue(g, 0, NULL), -EINVAL);
	ASSERT_EQ(baton_group_stats(g, 0, NULL), -EINVAL);
	ASSERT_EQ(baton_group_prog_id(g, NULL), -EINVAL);
	ASSERT_EQ(baton_group_add(g, -1, 1), -EINVAL);
	ASSERT_EQ(baton_group_set_weights(g, NULL, 2), -EINVAL);
	ASSERT_EQ(baton_group_set_weights(g, (uint32_t[BATON_MAX_SLOTS + 1]){ 1 }, BATON_MAX_SLOTS + 1), -EINVAL);
	ASSERT_EQ(baton_watch_health(w, 0, NULL), -EINVAL);
	ASSERT_EQ(baton_watch_health(NULL, 0, &h), -EINVAL);
	ASSERT_EQ(baton_watch_set_owner(NULL, 0, getpid()), -EINVAL);
	ASSERT_EQ(baton_watch_set_owner(w, 0, 0), -EINVAL);
	ASSERT_EQ(baton_watch_set_owner(w, 0, -5), -EINVAL);
	ASSERT_EQ(baton_watch_clear_owners(NULL, 0), -EINVAL);
	ASSERT_EQ(baton_watch_tick(NULL, 0), -EINVAL);
	errno = 0;
	ASSERT_TRUE(baton_watch_new(NULL, NULL) == NULL);
	ASSERT_EQ(errno, EINVAL);
	baton_watch_free(NULL);

	/* the flags that baton_group_fenced cannot tell apart from an error */
	ASSERT_EQ(baton_group_flags(g, 0), 0);
	ASSERT_OK(baton_group_set_down(g, 0, true));
	ASSERT_EQ(baton_group_flags(g, 0), (int)BATON_SLOT_DOWN);
	ASSERT_OK(baton_group_set_down(g, 0, false));
	ASSERT_OK(baton_group_fence(g, 0));
	ASSERT_EQ(baton_group_flags(g, 0), (int)BATON_SLOT_FENCED);
	ASSERT_TRUE(baton_group_fenced(g, 0));

	/* specs, sockets, adoption, sd protocols, the inspector */
	ASSERT_EQ(baton_spec_parse(NULL, &spec, NULL, 0), -EINVAL);
	ASSERT_EQ(baton_spec_parse("tcp://127.0.0.1:1", NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(baton_spec_format(NULL, NULL, 0), -EINVAL);
	ASSERT_TRUE(!baton_name_valid(NULL));
	ASSERT_EQ(baton_listener_open(NULL), -EINVAL);
	ASSERT_OK(baton_spec_parse("tcp://127.0.0.1:0", &spec, NULL, 0));
	spec.proto = 0;
	ASSERT_EQ(baton_listener_open(&spec), -EINVAL);
	spec.proto = BATON_PROTO_TCP;
	spec.family = AF_UNIX;
	ASSERT_EQ(baton_listener_open(&spec), -EINVAL);
	spec.family = AF_INET6;	/* addr says IPv4: which one is meant? */
	ASSERT_EQ(baton_listener_open(&spec), -EINVAL);
	spec.family = AF_INET;
	spec.backlog = -1;
	ASSERT_EQ(baton_listener_open(&spec), -EINVAL);
	ASSERT_EQ(baton_socket_queue(-1, &q), -EINVAL);
	ASSERT_EQ(baton_socket_queue(fds[0], NULL), -EINVAL);
	ASSERT_EQ(baton_listener_open_like(-1, 0), -EINVAL);
	ASSERT_EQ(baton_listener_open_like(fds[0], -1), -EINVAL);
	ASSERT_EQ(baton_fd_adopt(0, 3), -EINVAL);
	ASSERT_EQ(baton_fd_adopt(getpid(), -1), -EINVAL);
	ASSERT_EQ(baton_notify_open(NULL), -EINVAL);
	ASSERT_EQ(baton_notify_open(""), -EINVAL);
	ASSERT_EQ(baton_notify_recv(-1, &msg), -EINVAL);
	ASSERT_EQ(baton_notify_recv(fds[0], NULL), -EINVAL);
	ASSERT_EQ(baton_notify_send(NULL), -EINVAL);
	ASSERT_EQ(baton_socks_collect(NULL, NULL, &n), -EINVAL);
	ASSERT_EQ(baton_socks_collect(NULL, &v, NULL), -EINVAL);

	/* none of it opened a descriptor it did not close */
	nfd = bt_count_fds();
	ASSERT_EQ(baton_listener_open(&spec), -EINVAL);
	ASSERT_EQ(bt_count_fds(), nfd);
	baton_watch_free(w);
	baton_group_free(g);
	close(fds[0]);
}

/* spec.port is the port: changing it alone, without the copy in addr,
 * binds that port (it used to bind the one left in addr). */
TEST(api_listener_open_takes_the_port_from_spec_port)
{
	struct baton_spec spec, hand;
	uint16_t port;
	int fd;

	bt_netns();
	ASSERT_OK(baton_spec_parse("tcp://127.0.0.1:0?backlog=16", &spec, NULL, 0));
	port = free_port();
	spec.port = port;
	fd = (int)ASSERT_OK(baton_listener_open(&spec));
	ASSERT_EQ(local_port(fd), port);
	ASSERT_EQ(sockopt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);

	ASSERT_OK(baton_spec_parse("udp://127.0.0.1:0", &spec, NULL, 0));
	port = free_port();
	spec.port = port;
	fd = (int)ASSERT_OK(baton_listener_open(&spec));
	ASSERT_EQ(local_port(fd), port);
	ASSERT_EQ(sockopt(fd, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
	close(fd);

	/* a spec made by hand: protocol, family and port; the wildcard
	 * address and the default backlog */
	memset(&hand, 0, sizeof(hand));
	hand.proto = BATON_PROTO_TCP;
	hand.family = AF_INET;
	hand.v6only = -1;
	hand.port = free_port();
	fd = (int)ASSERT_OK(baton_listener_open(&hand));
	ASSERT_EQ(local_port(fd), hand.port);
	close(fd);
}

/* Another member on a listener bound to port 0: same address, port and
 * backlog, and the kernel spreads connections over both. */
TEST(api_listener_open_like_joins_the_same_port)
{
	char log[1024] = "";
	struct baton_group *g;
	struct baton_queue q;
	struct baton_spec spec;
	int fds[2], udp[1], like, seen[2] = { 0 }, i, plain, un;
	uint16_t port;

	bt_netns();
	port = bt_listeners(fds, 1, false);	/* backlog 1024 */
	like = (int)ASSERT_OK(baton_listener_open_like(fds[0], 0));
	ASSERT_EQ(local_port(like), port);
	ASSERT_EQ(sockopt(like, SOL_SOCKET, SO_REUSEPORT), 1);
	ASSERT_EQ(sockopt(like, SOL_SOCKET, SO_ACCEPTCONN), 1);
	ASSERT_TRUE(fcntl(like, F_GETFD) & FD_CLOEXEC);
	ASSERT_OK(baton_socket_queue(like, &q));
	ASSERT_EQ(q.max, 1024);
	fds[1] = like;
	for (i = 0; i < 200 && !(seen[0] && seen[1]); i++) {
		int k = bt_which_takes(port, fds, 2);

		ASSERT_GE(k, 0);
		seen[k]++;
	}
	ASSERT_TRUE(seen[0] && seen[1]);
	/* the group takes it as a member of the same address */
	g = cbpf_group(log);
	ASSERT_OK(baton_group_add(g, fds[0], 1));
	ASSERT_OK(baton_group_add(g, like, 1));
	baton_group_free(g);

	i = (int)ASSERT_OK(baton_listener_open_like(fds[0], 77));
	ASSERT_OK(baton_socket_queue(i, &q));
	ASSERT_EQ(q.max, 77);
	close(i);

	bt_listeners(udp, 1, true);
	i = (int)ASSERT_OK(baton_listener_open_like(udp[0], 0));
	ASSERT_EQ(local_port(i), local_port(udp[0]));
	ASSERT_EQ(sockopt(i, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
	close(i);
	close(udp[0]);

	/* IPv6 keeps its v6only */
	if (baton_spec_parse("tcp://[::1]:0?v6only=1", &spec, NULL, 0) == 0 &&
	    (plain = baton_listener_open(&spec)) >= 0) {
		i = (int)ASSERT_OK(baton_listener_open_like(plain, 0));
		ASSERT_EQ(local_port(i), local_port(plain));
		ASSERT_EQ(sockopt(i, IPPROTO_IPV6, IPV6_V6ONLY), 1);
		close(i);
		close(plain);
	} else {
		bt_log("no IPv6 loopback here: the v6only copy was not checked");
	}

	/* what has no listening address to share */
	plain = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(baton_listener_open_like(plain, 0), -EINVAL);
	close(plain);
	plain = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(baton_listener_open_like(plain, 0), -EINVAL);
	close(plain);
	un = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(baton_listener_open_like(un, 0), -EPROTOTYPE);
	close(un);
	ASSERT_EQ(baton_listener_open_like(0x7fff, 0), -EBADF);
	/* fenced: shut down, no group to join */
	shutdown(fds[0], SHUT_RD);
	ASSERT_EQ(baton_listener_open_like(fds[0], 0), -EINVAL);
	close(fds[0]);
	close(like);
}
