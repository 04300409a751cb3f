/* SPDX-License-Identifier: BSD-2-Clause */
/* A steering set publishes through policy banks: a transaction over many
 * listeners is one commit (one bank retired, whatever the number of
 * listeners), a table that does not change commits nothing, and an older
 * baton's latch pins are carried over by a set of one and refused, with the
 * reason, by a set of more. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "harness.h"
#include "helpers.h"
#include "steer_int.h"

#define SB_NL 8

/* Listener L of SET: two members on a fresh port, slot 0 active. */
static struct baton_group *sb_listener(struct baton_steerset *set, uint32_t l, int fds[2], uint16_t *port)
{
	BATON_OPTS(baton_group_opts, go, .mode = BATON_MODE_EBPF, .set = set, .set_index = l, .log = bt_lib_log);
	struct baton_group *g;

	*port = bt_listeners(fds, 2, false);
	g = baton_group_new(&go);
	ASSERT_TRUE(g != NULL);
	for (int s = 0; s < 2; s++)
		ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[s], s == 0)), s);
	return g;
}

/* Eight listeners of two members each; every listener starts on slot 0:
 * one transaction commits once, and steers all of them to slot 1. */
TEST_TIMEOUT(steerset_banks_one_commit_per_transaction, 60)
{
	BATON_OPTS(baton_steerset_opts, so, .listeners = SB_NL, .log = bt_lib_log);
	static int fds[SB_NL][2];
	uint16_t port[SB_NL];
	struct baton_group *g[SB_NL];
	struct steer_banks_info a, b;
	struct baton_steerset *set;
	int l;

	bt_need_netns();
	bt_need_ebpf();
	set = baton_steerset_new(&so);
	ASSERT_TRUE(set != NULL);
	for (l = 0; l < SB_NL; l++)
		g[l] = sb_listener(set, (uint32_t)l, fds[l], &port[l]);
	steer_banks_info(g[0], &a);
	ASSERT_EQ(a.k, baton_steer_banks(SB_NL));
	/* the same table again: nothing is committed */
	ASSERT_OK(baton_group_activate(g[3], 0));
	steer_banks_info(g[0], &b);
	ASSERT_EQ(b.retire_ticket, a.retire_ticket);
	ASSERT_EQ(b.staged, a.staged);
	ASSERT_OK(baton_steerset_begin(set));
	for (l = 0; l < SB_NL; l++)
		ASSERT_OK(baton_group_activate(g[l], 1));
	/* staged, not live: every listener still on slot 0 */
	for (l = 0; l < SB_NL; l++)
		ASSERT_EQ(bt_which_takes(port[l], fds[l], 2), 0);
	ASSERT_OK(baton_steerset_commit(set));
	steer_banks_info(g[0], &b);
	bt_log("a transaction of %d listeners: %llu bank(s) staged, %llu commit(s); %u banks", SB_NL,
	       (unsigned long long)(b.staged - a.staged), (unsigned long long)(b.retire_ticket - a.retire_ticket),
	       b.k);
	ASSERT_EQ(b.staged - a.staged, 1);
	ASSERT_EQ(b.retire_ticket - a.retire_ticket, 1);
	ASSERT_NE(b.live, a.live);
	for (l = 0; l < SB_NL; l++)
		ASSERT_EQ(bt_which_takes(port[l], fds[l], 2), 1);
	ASSERT_EQ(baton_steerset_commit(set), -EINVAL);	/* no begin */
	for (l = 0; l < SB_NL; l++)
		baton_group_free(g[l]);
	baton_steerset_free(set);
}

/* Pins as an older baton left them for one listener: a sockarray holding
 * both members, `cfg` (two pick tables, copy 0 all to slot 1) and `ctl`
 * (the latch's sequence, even). */
static void old_pins(const char *dir, const int *fds, int *maps)
{
	struct baton_steer_cfg *cfg = calloc(1, sizeof(*cfg));
	struct baton_steer_ctl ctl = { .seq = 2 };
	static const char *const names[] = { "socks", "cfg", "ctl" };
	char path[128];
	uint32_t k;

	ASSERT_TRUE(cfg != NULL);
	ASSERT_OK(mkdir(dir, 0700) ? -errno : 0);
	maps[0] = bpf_map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, "socks", 4, 8, BATON_STEER_SLOTS, NULL);
	maps[1] = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cfg", 4, sizeof(*cfg), 2, NULL);
	maps[2] = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ctl", 4, sizeof(ctl), 1, NULL);
	ASSERT_TRUE(maps[0] >= 0 && maps[1] >= 0 && maps[2] >= 0);
	for (k = 0; k < 2; k++) {
		uint64_t v = (uint64_t)fds[k];

		ASSERT_OK(bpf_map_update_elem(maps[0], &k, &v, BPF_NOEXIST) ? -errno : 0);
	}
	cfg->n = BATON_STEER_TABLE;
	cfg->version = 5;
	memset(cfg->slot, 1, sizeof(cfg->slot));
	k = 0;
	ASSERT_OK(bpf_map_update_elem(maps[1], &k, cfg, BPF_ANY));
	ASSERT_OK(bpf_map_update_elem(maps[2], &k, &ctl, BPF_ANY));
	for (k = 0; k < 3; k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
		ASSERT_OK(bpf_obj_pin(maps[k], path));
	}
	free(cfg);
}

/* A set of one listener resumes an older baton's group: its policy goes on
 * (every connection to slot 1), the latch pins go, the banks are pinned. */
TEST_TIMEOUT(steerset_of_one_carries_an_older_batons_pins, 60)
{
	static const char dir[] = "/sys/fs/bpf/steerset-old1";
	BATON_OPTS(baton_steerset_opts, so, .listeners = 1, .log = bt_lib_log, .pin_path = dir);
	struct baton_steerset *set;
	struct baton_group *g;
	char path[128];
	uint16_t port;
	uint32_t ppm;
	int fds[2], maps[3];

	bt_need_netns();
	bt_need_private_bpffs();
	bt_need_ebpf();
	port = bt_listeners(fds, 2, false);
	old_pins(dir, fds, maps);
	set = baton_steerset_new(&so);
	if (!set)
		FAIL("steering set: %s", strerror(errno));
	{
		BATON_OPTS(baton_group_opts, go, .mode = BATON_MODE_EBPF, .set = set, .log = bt_lib_log);

		g = baton_group_new(&go);
	}
	ASSERT_TRUE(g != NULL);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 0)), 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);
	ASSERT_OK(baton_group_share(g, 1, &ppm));
	ASSERT_EQ(ppm, 1000000);
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(bt_which_takes(port, fds, 2), 1);
	snprintf(path, sizeof(path), "%s/cfg", dir);
	ASSERT_NE(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/policy", dir);
	ASSERT_EQ(access(path, F_OK), 0);
	ASSERT_OK(baton_group_unpin(g));
	baton_group_free(g);
	baton_steerset_free(set);
	for (int k = 0; k < 3; k++)
		close(maps[k]);
}

/* A set of two cannot take over one listener's older pins (its sockarray
 * has room for one): refused with EEXIST, the reason logged, the pins left
 * as they are for the older baton that may still serve through them. */
TEST_TIMEOUT(steerset_of_two_refuses_an_older_batons_pins_saying_why, 60)
{
	static const char dir[] = "/sys/fs/bpf/steerset-old2";
	static char log[1024];
	BATON_OPTS(baton_steerset_opts, so, .listeners = 2, .log = bt_lib_collect, .log_ctx = log, .pin_path = dir);
	struct baton_steerset *set;
	char path[128];
	int fds[2], maps[3];

	bt_need_netns();
	bt_need_private_bpffs();
	bt_need_ebpf();
	bt_listeners(fds, 2, false);
	old_pins(dir, fds, maps);
	set = baton_steerset_new(&so);
	ASSERT_TRUE(set == NULL);
	ASSERT_EQ(errno, EEXIST);
	bt_log("said: %s", log);
	ASSERT_TRUE(strstr(log, "older baton") != NULL);
	ASSERT_TRUE(strstr(log, dir) != NULL);
	snprintf(path, sizeof(path), "%s/cfg", dir);
	ASSERT_EQ(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/ctl", dir);
	ASSERT_EQ(access(path, F_OK), 0);
	ASSERT_OK(baton_group_unpin_dir(dir));
	for (int k = 0; k < 3; k++)
		close(maps[k]);
}
