/* SPDX-License-Identifier: BSD-2-Clause */
/* Group membership rules, checked in cBPF mode (needs no privilege): a
 * socket that cannot be steered is refused with a message naming its fd, and
 * nothing changes. Also: the library exports only baton_* names. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static struct baton_group *cbpf_group(char *log)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_CBPF, .log = bt_lib_collect, .log_ctx = log);
	struct baton_group *g = baton_group_new(&o);

	if (!g)
		FAIL("cBPF group: %s", strerror(errno));
	ASSERT_EQ(baton_group_mode(g), BATON_MODE_CBPF);
	return g;
}

TEST(group_refuses_unsteerable_sockets)
{
	char log[1024] = "", want[64];
	struct baton_group *g;
	int fds[2], other[1], plain, idle;

	bt_netns();
	g = cbpf_group(log);
	bt_listeners(fds, 2, false);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 1)), 0);

	plain = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(baton_group_add(g, plain, 1), -EINVAL);
	snprintf(want, sizeof(want), "fd %d does not have SO_REUSEPORT", plain);
	ASSERT_CONTAINS(log, want);

	idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(idle, SOL_SOCKET, SO_REUSEPORT, &(int){ 1 }, sizeof(int));
	ASSERT_EQ(baton_group_add(g, idle, 1), -EINVAL);
	snprintf(want, sizeof(want), "fd %d is a TCP socket that is not listening", idle);
	ASSERT_CONTAINS(log, want);

	bt_listeners(other, 1, false);
	ASSERT_EQ(baton_group_add(g, other[0], 1), -EINVAL);
	ASSERT_CONTAINS(log, "bound to another address");

	ASSERT_EQ(baton_group_add(g, fds[0], 1), -EEXIST);
	ASSERT_CONTAINS(log, "already a member, in slot 0");
	ASSERT_EQ(baton_group_add(g, 12345, 1), -EBADF);

	ASSERT_EQ(baton_group_size(g), 1);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 1)), 1);
	ASSERT_EQ(baton_group_activate(g, 7), -ENOENT);
	ASSERT_EQ(baton_group_set_weights(g, (uint32_t[]){ 1, 1, 1 }, 3), -ENOENT);
	ASSERT_CONTAINS(log, "slot 2, which has no member");
	ASSERT_EQ(baton_group_stats(g, 0, &(struct baton_slot_stats){ 0 }), -EOPNOTSUPP);
	baton_group_free(g);
}

TEST(group_free_closes_its_copies)
{
	char log[1024] = "";
	int before, fds[3], i;

	bt_netns();
	bt_listeners(fds, 3, false);
	before = bt_count_fds();
	for (i = 0; i < 50; i++) {
		struct baton_group *g = cbpf_group(log);

		ASSERT_OK(baton_group_add(g, fds[0], 1));
		ASSERT_OK(baton_group_add(g, fds[1], 0));
		ASSERT_OK(baton_group_activate(g, 1));
		ASSERT_OK(baton_group_reload(g));
		baton_group_free(g);
	}
	ASSERT_EQ(bt_count_fds(), before);
}

TEST_ENV(library_exports_only_its_api)
{
	const char *path = getenv("BATON_LIB");
	void *h;

	if (!path)
		SKIP("BATON_LIB is not set (run through make check)");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		FAIL("dlopen %s: %s", path, dlerror());
	ASSERT_TRUE(dlsym(h, "baton_group_new") != NULL);
	ASSERT_TRUE(dlsym(h, "baton_spec_parse") != NULL);
	ASSERT_TRUE(dlsym(h, "baton_logf") == NULL);
	ASSERT_TRUE(dlsym(h, "steer_bpf__open") == NULL);
	dlclose(h);
}

/* The pins of a group nobody holds go by path; what is not baton's stays. */
TEST(group_unpin_dir_removes_only_baton_pins)
{
	static const char *const names[] = { "socks", "cfg", "ctl", "stats", "steer" };
	char dir[] = "/tmp/baton-unpin-XXXXXX", path[96];
	int fd;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		ASSERT_TRUE(fd >= 0);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/notes", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	ASSERT_EQ(baton_group_unpin_dir(dir), -ENOTEMPTY);
	ASSERT_EQ(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/socks", dir);
	ASSERT_NE(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/notes", dir);
	unlink(path);
	ASSERT_EQ(baton_group_unpin_dir(dir), 0);
	ASSERT_NE(access(dir, F_OK), 0);
	ASSERT_EQ(baton_group_unpin_dir(dir), -ENOENT);
	ASSERT_EQ(baton_group_unpin_dir(""), -EINVAL);
}
