/* SPDX-License-Identifier: BSD-2-Clause */
/* Failover decided in the kernel for every listener of a steering set, as
 * baton run wires it: one stop watcher (the watch of listener 0 asks for
 * stop events), the owners of listener 1's members named by listener 1's
 * watch. A SIGSTOP of listener 1's primary sends its next connections to its
 * standby with no watch tick (no user space acting), SIGCONT brings them
 * back, and listener 0 is left alone. Before the set, each group had its own
 * failover map and the one watcher marked only listener 0's. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"
#include "util.h"

/* N processes that wait for their end (SIGKILL) and are stopped and
 * continued meanwhile: the members' owners. */
static void sf_owners(pid_t *pid, int n, bool end)
{
	for (int i = 0; i < n; i++) {
		if (end) {
			kill(pid[i], SIGKILL);
			kill(pid[i], SIGCONT);
			waitpid(pid[i], NULL, 0);
			continue;
		}
		pid[i] = fork();
		ASSERT_TRUE(pid[i] >= 0);
		if (pid[i] == 0) {
			for (;;)
				pause();	/* no handler: only SIGKILL ends it */
		}
	}
}

static struct baton_watch *sf_watch(struct baton_group *g)
{
	/* no fence, a 10 s hang threshold: the watch never acts on its own */
	BATON_OPTS(baton_watch_opts, o, .hang_ms = 10000, .no_fence = true, .log = bt_lib_log);
	struct baton_watch *w = baton_watch_new(g, &o);

	ASSERT_TRUE(w != NULL);
	return w;
}

/* The process state letter of PID ('T': stopped). */
static char sf_state(pid_t pid)
{
	struct baton_proc_stat st;

	return baton_proc_stat(pid, -1, &st) ? '?' : st.state;
}

TEST_ALONE(steerset_kernel_failover_on_listener_1_of_2, 30)
{
	BATON_OPTS(baton_steerset_opts, so, .listeners = 2, .log = bt_lib_log);
	struct baton_group *g[2];
	struct baton_watch *w[2];
	struct baton_steerset *set;
	int fds[2][2], l;
	uint16_t port[2];
	pid_t own[2][2];

	bt_need_netns();
	bt_need_ebpf();
	set = baton_steerset_new(&so);
	if (!set)
		FAIL("steering set: %s", strerror(errno));
	for (l = 0; l < 2; l++) {
		BATON_OPTS(baton_group_opts, go, .mode = BATON_MODE_EBPF, .set = set, .set_index = (uint32_t)l,
			   .log = bt_lib_log);

		port[l] = bt_listeners(fds[l], 2, false);
		g[l] = baton_group_new(&go);
		ASSERT_TRUE(g[l] != NULL);
		ASSERT_EQ(ASSERT_OK(baton_group_add(g[l], fds[l][0], 1)), 0);	/* primary */
		ASSERT_EQ(ASSERT_OK(baton_group_add(g[l], fds[l][1], 0)), 1);	/* standby */
		w[l] = sf_watch(g[l]);
		sf_owners(own[l], 2, false);
		for (int s = 0; s < 2; s++)
			ASSERT_OK(baton_watch_set_owner(w[l], s, own[l][s]));
	}
	/* as baton run: only listener 0's watch loads the stop watcher */
	if (baton_watch_events(w[0]) < 0)
		SKIP("no stop-signal events here (tp_btf/signal_deliver): no kernel failover");
	for (l = 0; l < 2; l++)
		ASSERT_EQ(bt_which_takes(port[l], fds[l], 2), 0);
	kill(own[1][0], SIGSTOP);
	for (int i = 0; i < 200 && sf_state(own[1][0]) != 'T'; i++)
		usleep(1000);
	ASSERT_EQ(sf_state(own[1][0]), 'T');
	/* no tick, no fence: only the program can have moved them */
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(bt_which_takes(port[1], fds[1], 2), 1);
	ASSERT_EQ(bt_which_takes(port[0], fds[0], 2), 0);	/* listener 0's primary runs */
	kill(own[1][0], SIGCONT);
	for (int i = 0; i < 200 && sf_state(own[1][0]) == 'T'; i++)
		usleep(1000);
	ASSERT_EQ(bt_which_takes(port[1], fds[1], 2), 0);
	/* and listener 0's primary stopped goes to listener 0's standby, not
	 * to a member of listener 1 */
	kill(own[0][0], SIGSTOP);
	for (int i = 0; i < 200 && sf_state(own[0][0]) != 'T'; i++)
		usleep(1000);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(bt_which_takes(port[0], fds[0], 2), 1);
	ASSERT_EQ(bt_which_takes(port[1], fds[1], 2), 0);
	for (l = 0; l < 2; l++) {
		baton_watch_free(w[l]);
		sf_owners(own[l], 2, true);
		baton_group_free(g[l]);
	}
	baton_steerset_free(set);
}
