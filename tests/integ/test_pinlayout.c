/* SPDX-License-Identifier: BSD-2-Clause */
/* BATON_BPFFS moves every pin of baton: baton steer pins its group there
 * (mounting bpffs if none is), baton ls finds stale pins there and names
 * the command that removes them, and nothing lands in /sys/fs/bpf. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "harness.h"
#include "helpers.h"

static int baton2(char *out, size_t olen, const char *a0, const char *a1, const char *a2)
{
	char err[2048];
	char *argv[] = { (char *)bt_baton_bin(), (char *)a0, (char *)a1, (char *)a2, NULL };
	int r = bt_run(argv, out, olen, err, sizeof(err), 10);

	if (r)
		bt_log("baton %s %s: exit %d: %s", a0, a1 ? a1 : "", r, err);
	return r;
}

TEST_TIMEOUT(pinlayout_steer_and_ls_follow_baton_bpffs, 60)
{
	char base[128], spec[64], pins[256], path[300], want[1024], out[8192];
	BATON_OPTS(baton_group_opts, go, .mode = BATON_MODE_EBPF, .pin_path = path);
	struct baton_group *g;
	struct statfs sfs;
	uint16_t port;
	int fds[2];

	bt_need_netns();
	bt_need_private_bpffs();
	bt_need_ebpf();
	bt_tmpdir(base, sizeof(base), "bpffs");
	setenv("BATON_BPFFS", base, 1);
	port = bt_listeners(fds, 2, false);
	snprintf(spec, sizeof(spec), "tcp://127.0.0.1:%u", port);
	snprintf(pins, sizeof(pins), "%s/baton/steer-127_0_0_1-%u", base, port);

	ASSERT_EQ(baton2(out, sizeof(out), "steer", spec, NULL), 0);
	ASSERT_CONTAINS(out, "steering 2 member(s)");
	/* bpffs was mounted at BATON_BPFFS, and the pins are there alone */
	ASSERT_EQ(statfs(base, &sfs), 0);
	ASSERT_EQ((long)sfs.f_type, (long)BPF_FS_MAGIC);
	snprintf(path, sizeof(path), "%s/socks", pins);
	ASSERT_EQ(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/steer", pins);
	ASSERT_EQ(access(path, F_OK), 0);
	ASSERT_NE(access("/sys/fs/bpf/baton", F_OK), 0);
	ASSERT_EQ(baton2(out, sizeof(out), "ls", NULL, NULL), 0);
	ASSERT_TRUE(strstr(out, "stale") == NULL);	/* its group lives */

	/* the servers go: baton ls names the pins under BATON_BPFFS */
	close(fds[0]);
	close(fds[1]);
	snprintf(path, sizeof(path), "%s/baton/run-web/l0", base);	/* a supervisor's, empty */
	g = baton_group_new(&go);
	ASSERT_TRUE(g != NULL);
	baton_group_free(g);
	ASSERT_EQ(baton2(out, sizeof(out), "ls", NULL, NULL), 0);
	bt_log("%s", out);
	snprintf(want, sizeof(want), "stale baton pins: %s (no listener on 127.0.0.1:%u); remove with baton steer "
		 "--release %s\n", pins, port, spec);
	ASSERT_CONTAINS(out, want);
	snprintf(want, sizeof(want), "stale baton pins: %s/baton/run-web/l0 (no socket of supervisor web is left); "
		 "remove with baton stop web, or rm -r %s/baton/run-web if it no longer runs", base, base);
	ASSERT_CONTAINS(out, want);

	/* and --release finds them there too */
	ASSERT_EQ(baton2(out, sizeof(out), "steer", "--release", spec), 0);
	ASSERT_NE(access(pins, F_OK), 0);
	ASSERT_EQ(baton_group_unpin_dir(path), 0);
	umount(base);	/* the mount is this test's namespace's; the folder is not */
	rmdir(base);
}
