/* SPDX-License-Identifier: BSD-2-Clause */
/* What a steering set's cheap switch stands on: a transaction that writes
 * only some listeners leaves every other listener's policy as it was (the
 * commit copies the entries nobody wrote, across the 64-listener words of
 * its bitmap), and a set's groups, kept in memory shared across fork, read
 * the same in a forked child. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"
#include "steer_int.h"

#define SP_NL 70	/* more than one 64-bit word of the written bitmap */

/* Listener L of SET: members in slots 0 (all the traffic) and 1 (none). */
static struct baton_group *sp_listener(struct baton_steerset *set, uint32_t l, int fds[2], uint16_t *port)
{
	BATON_OPTS(baton_group_opts, go, .mode = BATON_MODE_EBPF, .set = set, .set_index = l, .log = bt_lib_log);
	struct baton_group *g = baton_group_new(&go);

	ASSERT_TRUE(g != NULL);
	*port = bt_listeners(fds, 2, false);
	ASSERT_EQ(baton_group_add(g, fds[0], 1), 0);
	ASSERT_EQ(baton_group_add(g, fds[1], 0), 1);
	return g;
}

/* A set of NL listeners with listener L made for each L from FIRST on. */
static struct baton_steerset *sp_set(uint32_t nl, uint32_t first, struct baton_group **g, int (*fds)[2],
				     uint16_t *port)
{
	BATON_OPTS(baton_steerset_opts, so, .listeners = nl, .log = bt_lib_log);
	struct baton_steerset *set;

	bt_need_netns();
	bt_need_ebpf();
	set = baton_steerset_new(&so);
	ASSERT_TRUE(set != NULL);
	for (uint32_t l = first; l < nl; l++)
		g[l] = sp_listener(set, l, fds[l], &port[l]);
	return set;
}

/* The slot listener L's live table sends every connection to, -1: a mix. */
static int live_slot(struct baton_group *g)
{
	const struct baton_steer_cfg *cfg = steer_set_live(g->set, g);

	for (uint32_t k = 1; k < cfg->n; k++)
		if (cfg->slot[k] != cfg->slot[0])
			return -1;
	return cfg->n ? cfg->slot[0] : -1;
}

TEST_TIMEOUT(steerset_partial_transaction_keeps_the_other_listeners, 90)
{
	static int fds[SP_NL][2];
	static uint16_t port[SP_NL];
	static struct baton_group *g[SP_NL];
	struct baton_steerset *set = sp_set(SP_NL, 0, g, fds, port);
	int l;

	/* odd listeners and 64..69 move to slot 1; the others are not written */
	ASSERT_OK(baton_steerset_begin(set));
	for (l = 0; l < SP_NL; l++)
		if (l % 2 || l >= 64)
			ASSERT_OK(baton_group_activate(g[l], 1));
	ASSERT_OK(baton_steerset_commit(set));
	for (l = 0; l < SP_NL; l++)
		ASSERT_EQ(live_slot(g[l]), l % 2 || l >= 64 ? 1 : 0);
	for (l = 60; l < SP_NL; l++)	/* the kernel agrees, across the word boundary */
		ASSERT_EQ(bt_which_takes(port[l], fds[l], 2), l % 2 || l >= 64 ? 1 : 0);
	ASSERT_EQ(bt_which_takes(port[0], fds[0], 2), 0);
	/* a second transaction, in another bank: only listener 2 moves; what
	 * the first one wrote and what it copied both carry over */
	ASSERT_OK(baton_steerset_begin(set));
	ASSERT_OK(baton_group_activate(g[2], 1));
	ASSERT_OK(baton_steerset_commit(set));
	for (l = 0; l < SP_NL; l++)
		ASSERT_EQ(live_slot(g[l]), l % 2 || l >= 64 || l == 2 ? 1 : 0);
	ASSERT_EQ(bt_which_takes(port[2], fds[2], 2), 1);
	ASSERT_EQ(bt_which_takes(port[4], fds[4], 2), 0);
	for (l = 0; l < SP_NL; l++)
		baton_group_free(g[l]);
	baton_steerset_free(set);
}

/* A forked child (a supervisor's generation between fork and exec, or a
 * library user's worker) reads a set's group as the parent left it. */
TEST_TIMEOUT(steerset_group_reads_the_same_in_a_forked_child, 60)
{
	struct baton_group *gs[4], *g;
	uint16_t ports[4], port;
	int fd4[4][2], *fds = fd4[3], st;
	struct baton_steerset *set = sp_set(4, 3, gs, fd4, ports);
	pid_t pid;

	g = gs[3];
	port = ports[3];
	ASSERT_TRUE(g->in_slab);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0)
		_exit(baton_group_size(g) == 2 && baton_group_fd(g, 1) >= 0 && live_slot(g) == 0 ? 0 : 1);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
	/* the parent's group goes on: a switch right after the fork */
	ASSERT_OK(baton_group_activate(g, 1));
	ASSERT_EQ(bt_which_takes(port, fds, 2), 1);
	baton_group_free(g);
	baton_steerset_free(set);
}
