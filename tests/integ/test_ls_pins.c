/* SPDX-License-Identifier: BSD-2-Clause */
/* baton ls keeps its iterator programs pinned in bpffs (baton-ls/KEY/) so
 * that the next run skips loading them (libbpf's CO-RE relocation was most
 * of a run at 10,000 sockets): the next run loads nothing and prints the
 * same; pins another user could have replaced are not run but replaced. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[1 << 16], first[1 << 16], err[1 << 16];

/* baton ls --json PORT with libbpf's messages on; whether it loaded the
 * iterator through libbpf (relocated it) this time. */
static bool ls_loads(const char *port)
{
	char *argv[] = { (char *)bt_baton_bin(), "ls", "--json", (char *)port, NULL };

	ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 30), 0);
	return strstr(err, "CO-RE relocating") != NULL;
}

/* The one directory under /sys/fs/bpf/baton-ls, in DIR. */
static void pin_dir(char *dir, size_t len)
{
	DIR *d = opendir("/sys/fs/bpf/baton-ls");
	struct dirent *e;
	int n = 0;

	ASSERT_TRUE(d != NULL);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			ASSERT_EQ(strlen(e->d_name), 16);
			snprintf(dir, len, "/sys/fs/bpf/baton-ls/%s", e->d_name);
			n++;
		}
	closedir(d);
	ASSERT_EQ(n, 1);
}

TEST(ls_keeps_its_iterator_pinned_and_the_next_run_loads_nothing)
{
	static const char *const names[] = { "tcp", "udp", "owners" };
	char port[16], dir[PATH_MAX], path[PATH_MAX + 16];
	struct stat st;
	int fds[2];

	bt_need_netns();
	bt_need_private_bpffs();
	bt_need_ebpf();
	snprintf(port, sizeof(port), "%u", bt_listeners(fds, 2, false));
	setenv("BATON_DEBUG", "1", 1);
	unsetenv("BATON_BPFFS");

	ASSERT_TRUE(ls_loads(port));	/* nothing pinned yet */
	ASSERT_CONTAINS(out, "\"owners\": [{\"pid\"");
	memcpy(first, out, sizeof(out));
	pin_dir(dir, sizeof(dir));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		ASSERT_EQ(stat(path, &st), 0);
		ASSERT_EQ(st.st_mode & 0777, 0600);
		ASSERT_EQ(st.st_uid, 0);
	}

	ASSERT_TRUE(!ls_loads(port));	/* from the pins */
	ASSERT_STREQ(out, first);

	/* anyone could have swapped the programs in there: not run, replaced */
	ASSERT_EQ(chmod(dir, 0777), 0);
	ASSERT_TRUE(ls_loads(port));
	ASSERT_STREQ(out, first);
	ASSERT_EQ(stat(dir, &st), 0);
	ASSERT_EQ(st.st_mode & 0777, 0700);
	ASSERT_TRUE(!ls_loads(port));
	ASSERT_STREQ(out, first);
	close(fds[0]);
	close(fds[1]);
}
