/* SPDX-License-Identifier: BSD-2-Clause */
/* One steering set for 64 listeners: a switch of every listener from the old
 * generation to the new one, made between baton_steerset_begin and
 * baton_steerset_commit under load, takes effect at one instant. No
 * connection is decided by a mix of policies across listeners, none is left
 * on the old generation once commit returns, and none is refused or reset.
 * Without the batching (each listener's publish on its own) it fails: the
 * listeners switch one after the other over about a millisecond. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"
#include "helpers.h"

#define NL 64
#define NT 4		/* client threads; thread k uses listeners k + NT, k + 2 NT, ... */
#define MAX_CONN 20000	/* per thread */

struct conn {
	long long start_ns, end_ns;
	int l, gen;
};

struct client {
	int k;
	const uint16_t *port;
	int (*fds)[2];
	atomic_bool *stop;
	struct conn *c;
	int n, attempts, refused, lost;
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One connection to listener L: which generation's socket took it (0 old,
 * 1 new), -1 if refused or reset, -2 if nobody took it. */
static int one(uint16_t port, const int fds[2], long long *t0, long long *t1)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), who, conn = -1;

	if (c < 0)
		return -1;
	*t0 = now_ns();
	if (connect(c, (struct sockaddr *)&sin, sizeof(sin))) {
		close(c);
		return -1;
	}
	*t1 = now_ns();
	who = bt_accept_which(fds, 2, 2000, &conn);
	if (conn >= 0)
		bt_close_rst(conn);
	bt_close_rst(c);
	return who < 0 ? -2 : who;
}

static void *client(void *arg)
{
	struct client *cl = arg;
	int l = cl->k + NT;	/* past listener 0 */

	while (cl->n < MAX_CONN && !atomic_load(cl->stop)) {
		struct conn *c = &cl->c[cl->n];
		int who = one(cl->port[l], cl->fds[l], &c->start_ns, &c->end_ns);

		cl->attempts++;
		if (who == -1) {
			cl->refused++;
		} else if (who == -2) {
			cl->lost++;
		} else {
			c->l = l;
			c->gen = who;
			cl->n++;
		}
		/* the first and the last listener are the main thread's, for
		 * its checks right after the switch: a client's connection
		 * queued there before it would be accepted in their place */
		do
			l = (l + NT) % NL;
		while (l == 0 || l == NL - 1);
	}
	return NULL;
}

static void check_order(struct client *cl, long long begin_ns, long long commit_ns)
{
	long long first_new = -1;
	int old = 0, fresh = 0;

	for (int k = 0; k < NT; k++)
		for (int i = 0; i < cl[k].n; i++)
			if (cl[k].c[i].gen == 1 && (first_new < 0 || cl[k].c[i].end_ns < first_new))
				first_new = cl[k].c[i].end_ns;
	ASSERT_TRUE(first_new >= begin_ns);	/* nothing moved before the switch */
	for (int k = 0; k < NT; k++)
		for (int i = 0; i < cl[k].n; i++) {
			const struct conn *c = &cl[k].c[i];

			old += c->gen == 0;
			fresh += c->gen == 1;
			if (c->end_ns < begin_ns && c->gen != 0)
				FAIL("listener %d: a connection made before the switch went to the new generation", c->l);
			/* once any listener answered with the new policy, a
			 * connection started later on any listener must too */
			if (c->start_ns > first_new && c->gen != 1)
				FAIL("listener %d: a connection started %lld us after another listener switched still "
				     "went to the old generation (a mix of policies)", c->l,
				     (c->start_ns - first_new) / 1000);
			if (c->start_ns > commit_ns && c->gen != 1)
				FAIL("listener %d: a connection started after commit returned went to the old "
				     "generation", c->l);
		}
	bt_log("%d connections on the old generation, %d on the new; switch took %lld us", old, fresh,
	       (commit_ns - begin_ns) / 1000);
	ASSERT_GT(old, 0);
	ASSERT_GT(fresh, 0);
}

TEST_TIMEOUT(steer_switch_64_listeners_switch_at_one_instant_under_load, 90)
{
	BATON_OPTS(baton_steerset_opts, so, .listeners = NL, .log = bt_lib_log);
	static int fds[NL][2];
	static uint16_t port[NL];
	struct baton_group *g[NL];
	struct baton_steerset *set;
	struct client cl[NT];
	pthread_t t[NT];
	atomic_bool stop = false;
	long long begin_ns, commit_ns, t0, t1;
	int l, k;

	bt_need_netns();
	bt_need_ebpf();
	set = baton_steerset_new(&so);
	if (!set)
		FAIL("steering set: %s", strerror(errno));
	for (l = 0; l < NL; l++) {
		BATON_OPTS(baton_group_opts, go, .mode = BATON_MODE_EBPF, .set = set, .set_index = (uint32_t)l,
			   .log = bt_lib_log);

		port[l] = bt_listeners(fds[l], 2, false);
		g[l] = baton_group_new(&go);
		if (!g[l])
			FAIL("group %d: %s", l, strerror(errno));
		ASSERT_EQ(ASSERT_OK(baton_group_add(g[l], fds[l][0], 1)), 0);
		ASSERT_EQ(ASSERT_OK(baton_group_add(g[l], fds[l][1], 0)), 1);
	}
	for (k = 0; k < NT; k++) {
		cl[k] = (struct client){ .k = k, .port = port, .fds = fds, .stop = &stop,
					 .c = calloc(MAX_CONN, sizeof(struct conn)) };
		ASSERT_TRUE(cl[k].c != NULL);
		pthread_create(&t[k], NULL, client, &cl[k]);
	}
	usleep(300000);
	begin_ns = now_ns();
	ASSERT_OK(baton_steerset_begin(set));
	/* a supervisor does more per listener than one publish (its records,
	 * its logs): 100 us each here, so that publishing listener by listener
	 * would spread the switch over 6 ms, which the clients then see */
	for (l = 0; l < NL; l++) {
		ASSERT_OK(baton_group_activate(g[l], 1));
		usleep(100);
	}
	ASSERT_OK(baton_steerset_commit(set));
	commit_ns = now_ns();
	/* right after the switch returns, the first and the last listener
	 * both answer with the new generation */
	ASSERT_EQ(one(port[0], fds[0], &t0, &t1), 1);
	ASSERT_EQ(one(port[NL - 1], fds[NL - 1], &t0, &t1), 1);
	usleep(300000);
	atomic_store(&stop, true);
	for (k = 0; k < NT; k++)
		pthread_join(t[k], NULL);
	for (k = 0; k < NT; k++) {
		bt_log("client %d: %d attempts, %d answered, %d refused or reset, %d lost", k, cl[k].attempts,
		       cl[k].n, cl[k].refused, cl[k].lost);
		ASSERT_EQ(cl[k].refused, 0);
		ASSERT_EQ(cl[k].lost, 0);
		ASSERT_EQ(cl[k].attempts, cl[k].n);
	}
	check_order(cl, begin_ns, commit_ns);
	for (k = 0; k < NT; k++)
		free(cl[k].c);
	for (l = 0; l < NL; l++)
		baton_group_free(g[l]);
	baton_steerset_free(set);
}
