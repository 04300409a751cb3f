/* SPDX-License-Identifier: BSD-2-Clause */
/* The supervisor's generation state machine driven without real servers:
 * a fake spawn hands out pids that no process has, a fake kill records
 * what would be signalled, and the groups are real classic-BPF groups on a
 * loopback port (no privilege needed). */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "../../supervisor/internal.h"

static pid_t next_pid = 4000000;	/* above any pid_max: never a real process */
static struct { pid_t pid; int sig; } kills[64];
static int nkills;

static pid_t fake_spawn(struct sup *s, int id, const int *fds, int *err)
{
	(void)s, (void)id, (void)fds, (void)err;
	return next_pid++;
}

static int fake_kill(pid_t pid, int sig)
{
	if (nkills < 64)
		kills[nkills++] = (typeof(kills[0])){ pid, sig };
	return 0;
}

static const struct sup_ops fake_ops = { .spawn = fake_spawn, .kill = fake_kill };

static bool killed(pid_t pid, int sig)
{
	for (int i = 0; i < nkills; i++)
		if (kills[i].pid == pid && kills[i].sig == sig)
			return true;
	return false;
}

/* A supervisor of one listener on a free loopback port, in classic BPF
 * mode, with no state file and no control socket. */
static void fake_sup(struct sup *s, struct sup_config *cfg, struct baton_spec *spec)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	char err[128], text[64];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	snprintf(text, sizeof(text), "tcp://127.0.0.1:%u", ntohs(a.sin_port));
	ASSERT_EQ(baton_spec_parse(text, spec, err, sizeof(err)), 0);
	sup_config_init(cfg);
	cfg->listen = spec;
	cfg->nlisten = 1;
	cfg->no_preload = true;
	setenv("BATON_STEERING", "cbpf", 1);
	ASSERT_EQ(sup_init(s, cfg, &fake_ops), 0);
	ASSERT_EQ(sup_make_groups(s), 0);
	nkills = 0;
}

static uint32_t weight(struct sup *s, int gi)
{
	uint32_t w = 99;

	ASSERT_EQ(baton_group_weight(s->grp[0], s->gen[gi].slot[0], &w), 0);
	return w;
}

/* Generation 1 serving, as after a start. */
static int serving(struct sup *s)
{
	int gi = start_gen(s, -1, 1);

	ASSERT_GE(gi, 0);
	s->active = gi;
	ASSERT_EQ(s->gen[gi].state, GEN_STARTING);
	gen_ready(s, gi, false);
	ASSERT_EQ(s->gen[gi].state, GEN_ACTIVE);
	return gi;
}

TEST(genstate_reload_switches_in_one_step_and_stops_the_old_one)
{
	struct sup s;
	struct sup_config cfg;
	struct baton_spec spec;
	int old, new;

	fake_sup(&s, &cfg, &spec);
	old = serving(&s);
	ASSERT_EQ(start_reload(&s, -1, "test"), 0);
	new = s.reload;
	ASSERT_GE(new, 0);
	ASSERT_EQ(s.gen[new].state, GEN_STARTING);
	ASSERT_EQ(weight(&s, new), 0);	/* takes nothing before it is ready */
	ASSERT_EQ(weight(&s, old), 1);
	gen_ready(&s, new, false);
	ASSERT_EQ(s.active, new);
	ASSERT_EQ(s.gen[new].state, GEN_ACTIVE);
	ASSERT_EQ(s.gen[old].state, GEN_DRAINING);
	ASSERT_EQ(weight(&s, new), 1);
	ASSERT_EQ(weight(&s, old), 0);
	ASSERT_TRUE(killed(s.gen[old].pid, SIGTERM));
	ASSERT_EQ(s.reloads_done, 1);
	ASSERT_CONTAINS(s.last_reload, "serves");
	gen_exited(&s, old, W_EXITCODE(0, 0));
	ASSERT_EQ(s.gen[old].slot[0], -1);	/* its member left the group */
	sup_fini(&s);
}

TEST(genstate_generation_exiting_before_ready_is_rolled_back)
{
	struct sup s;
	struct sup_config cfg;
	struct baton_spec spec;
	int old, new;

	fake_sup(&s, &cfg, &spec);
	old = serving(&s);
	ASSERT_EQ(start_reload(&s, -1, "test"), 0);
	new = s.reload;
	gen_exited(&s, new, W_EXITCODE(1, 0));
	ASSERT_EQ(s.reload, -1);
	ASSERT_EQ(s.active, old);
	ASSERT_EQ(s.gen[old].state, GEN_ACTIVE);
	ASSERT_EQ(weight(&s, old), 1);
	ASSERT_EQ(s.gen[new].slot[0], -1);
	ASSERT_EQ(s.reloads_failed, 1);
	ASSERT_CONTAINS(s.last_reload, "gen 2 exited with status 1 before it was ready; rolled back, gen 1 still "
				       "serves");
	ASSERT_EQ(s.degraded[0], '\0');
	sup_fini(&s);
}

TEST(genstate_failed_replacement_of_a_frozen_generation_unfences_it_and_retries)
{
	struct sup s;
	struct sup_config cfg;
	struct baton_spec spec;
	int old, slot;

	fake_sup(&s, &cfg, &spec);
	old = serving(&s);
	slot = s.gen[old].slot[0];
	/* what the health watch does to a stopped generation */
	snprintf(s.gen[old].health, sizeof(s.gen[old].health), "fenced: owner stopped (SIGSTOP)");
	ASSERT_EQ(start_reload(&s, -1, "health watch"), 0);
	ASSERT_EQ(baton_group_set_down(s.grp[0], slot, true), 0);
	ASSERT_EQ(baton_group_fence(s.grp[0], slot), 0);
	ASSERT_TRUE(baton_group_fenced(s.grp[0], slot));
	gen_exited(&s, s.reload, W_EXITCODE(1, 0));
	/* never dark: the frozen one listens again and takes its weight */
	ASSERT_TRUE(!baton_group_fenced(s.grp[0], slot));
	ASSERT_EQ(weight(&s, old), 1);
	ASSERT_EQ(s.active, old);
	ASSERT_CONTAINS(s.degraded, "replacement failed");
	ASSERT_CONTAINS(s.degraded, "gen 1 keeps the listeners but is unhealthy (owner stopped (SIGSTOP))");
	ASSERT_GT(s.retry_at, baton_mono_ms());
	ASSERT_CONTAINS(s.gen[old].health, "kept: ");
	/* a successful replacement ends the degraded state */
	ASSERT_EQ(start_reload(&s, -1, "health watch"), 0);
	gen_ready(&s, s.reload, false);
	ASSERT_EQ(s.degraded[0], '\0');
	ASSERT_TRUE(s.active != old);
	sup_fini(&s);
}

TEST(genstate_full_generation_table_names_its_limit)
{
	struct sup s;
	struct sup_config cfg;
	struct baton_spec spec;
	int i;

	fake_sup(&s, &cfg, &spec);
	serving(&s);
	for (i = 0; i < MAX_GENS - 1; i++) {
		ASSERT_EQ(start_reload(&s, -1, "test"), 0);
		ASSERT_GE(s.reload, 0);
		gen_ready(&s, s.reload, false);	/* the old ones drain and never exit */
	}
	ASSERT_EQ(draining_gens(&s), MAX_GENS - 1);
	ASSERT_EQ(start_reload(&s, -1, "test"), 0);
	ASSERT_EQ(s.reload, -1);
	ASSERT_CONTAINS(s.last_reload, "all 16 generation slots are taken by generations that still run (15 "
				       "draining)");
	sup_fini(&s);
}

TEST(genstate_operator_reload_joins_the_one_the_health_watch_started)
{
	struct sup s;
	struct sup_config cfg;
	struct baton_spec spec;
	int old, new;

	fake_sup(&s, &cfg, &spec);
	old = serving(&s);
	ASSERT_EQ(start_reload(&s, -1, "health watch"), 0);
	new = s.reload;
	s.cl[0].role = CL_READING;	/* a `baton reload` on the control socket */
	ASSERT_EQ(start_reload(&s, 0, "control socket"), 0);
	ASSERT_EQ(s.reload, new);	/* no second generation */
	ASSERT_EQ(s.reload_client, 0);
	ASSERT_EQ(s.cl[0].role, CL_RELOAD);
	/* a second operator is told to wait: one reload at a time */
	s.cl[1].role = CL_READING;
	ASSERT_EQ(start_reload(&s, 1, "control socket"), -EBUSY);
	gen_ready(&s, new, false);
	ASSERT_EQ(s.active, new);
	ASSERT_EQ(s.reload_client, -1);
	ASSERT_EQ(s.cl[0].role, CL_FREE);	/* answered and closed */
	ASSERT_EQ(s.gen[old].state, GEN_DRAINING);
	sup_fini(&s);
}
