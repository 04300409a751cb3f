/* SPDX-License-Identifier: BSD-2-Clause */
/* The supervisor's generation state machine driven without real servers:
 * a fake spawn hands out pids that no process has, a fake kill records
 * what would be signalled, and the groups are real classic-BPF groups on a
 * loopback port (no privilege needed). */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "harness.h"
#include "../../supervisor/canary.h"
#include "../../supervisor/gen.h"
#include "../../supervisor/stage.h"
#include "util.h"
#include "fakesup.h"

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

/* The fake supervisor (tests/fakesup.h) on this file's ops, no kill recorded. */
static void fake_sup(struct sup *s, struct sup_config *cfg, struct baton_spec *spec)
{
	bt_fake_sup(s, cfg, spec, &fake_ops, NULL);
	nkills = 0;
}

static uint32_t weight(struct sup *s, int gi)
{
	uint32_t w = 99;

	ASSERT_EQ(baton_group_weight(s->grp[0], s->gen[gi].slot[0], &w), 0);
	return w;
}

/* Declares the supervisor s (with cfg and spec) of fake_sup and sets it up. */
#define FAKE_SUP()                 \
	struct sup s;              \
	struct sup_config cfg;     \
	struct baton_spec spec;    \
	fake_sup(&s, &cfg, &spec)

/* A reload of ORIGIN started; its generation. */
static int reload(struct sup *s, enum reload_origin origin)
{
	ASSERT_EQ(start_reload(s, -1, origin), 0);
	return s->reload;
}

/* Generation 1 serving, as after a start. */
static int serving(struct sup *s)
{
	int gi = bt_fake_first_gen(s);

	ASSERT_EQ(s->gen[gi].state, GEN_STARTING);
	gen_ready(s, gi, false);
	ASSERT_EQ(s->gen[gi].state, GEN_ACTIVE);
	return gi;
}

TEST(genstate_reload_switches_in_one_step_and_stops_the_old_one)
{
	FAKE_SUP();
	int old = serving(&s), new = reload(&s, RELOAD_CONTROL);
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
	FAKE_SUP();
	int old = serving(&s), new = reload(&s, RELOAD_CONTROL);
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
	int old, slot;

	FAKE_SUP();
	old = serving(&s);
	slot = s.gen[old].slot[0];
	/* what the health watch does to a stopped generation */
	snprintf(s.gen[old].health, sizeof(s.gen[old].health), "fenced: owner stopped (SIGSTOP)");
	ASSERT_EQ(start_reload(&s, -1, RELOAD_HEALTH), 0);
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
	ASSERT_EQ(start_reload(&s, -1, RELOAD_HEALTH), 0);
	gen_ready(&s, s.reload, false);
	ASSERT_EQ(s.degraded[0], '\0');
	ASSERT_TRUE(s.active != old);
	sup_fini(&s);
}

TEST(genstate_full_generation_table_names_its_limit)
{
	int i;

	FAKE_SUP();
	serving(&s);
	for (i = 0; i < MAX_GENS - 1; i++) {
		ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), 0);
		ASSERT_GE(s.reload, 0);
		gen_ready(&s, s.reload, false);	/* the old ones drain and never exit */
	}
	ASSERT_EQ(draining_gens(&s), MAX_GENS - 1);
	ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), 0);
	ASSERT_EQ(s.reload, -1);
	ASSERT_CONTAINS(s.last_reload, "all 16 generation slots are taken by generations that still run (15 "
				       "draining)");
	sup_fini(&s);
}

TEST(genstate_operator_reload_joins_the_one_the_health_watch_started)
{
	FAKE_SUP();
	int old = serving(&s), new = reload(&s, RELOAD_HEALTH);
	s.cl[0].role = CL_READING;	/* a `baton reload` on the control socket */
	ASSERT_EQ(start_reload(&s, 0, RELOAD_CONTROL), 0);
	ASSERT_EQ(s.reload, new);	/* no second generation */
	ASSERT_EQ(s.reload_client, 0);
	ASSERT_EQ(s.cl[0].role, CL_RELOAD);
	/* a second operator is told to wait: one reload at a time */
	s.cl[1].role = CL_READING;
	ASSERT_EQ(start_reload(&s, 1, RELOAD_CONTROL), -EBUSY);
	gen_ready(&s, new, false);
	ASSERT_EQ(s.active, new);
	ASSERT_EQ(s.reload_client, -1);
	ASSERT_EQ(s.cl[0].role, CL_FREE);	/* answered and closed */
	ASSERT_EQ(s.gen[old].state, GEN_DRAINING);
	sup_fini(&s);
}

/* ---- staged reloads (supervisor/canary.c) ---------------------------------- */

static int nspawns(void)
{
	return (int)(next_pid - 4000000);
}

/* FAKE_SUP serving gen 1 (old) and a staged reload of the options given,
 * its generation (new) ready. */
#define STAGED_SUP(...) \
	FAKE_SUP();     \
	int old = serving(&s), new = staged_reload(&s, (struct stage_opts){ __VA_ARGS__ })

/* A reload asking for OPTS, its generation ready. */
static int staged_reload(struct sup *s, struct stage_opts o)
{
	int gi;

	s->stage.want = o;
	ASSERT_EQ(start_reload(s, -1, RELOAD_CONTROL), 0);
	gi = s->reload;
	ASSERT_GE(gi, 0);
	gen_ready(s, gi, false);
	return gi;
}

static uint32_t share_ppm(struct sup *s, int gi)
{
	uint32_t ppm = 0;

	ASSERT_EQ(baton_group_share(s->grp[0], s->gen[gi].slot[0], &ppm), 0);
	return ppm;
}

TEST(genstate_canary_takes_its_share_and_promote_stops_the_old_one)
{
	STAGED_SUP(.canary_pct = 10);
	ASSERT_EQ(s.stage.kind, STAGE_CANARY);
	ASSERT_EQ(s.gen[new].state, GEN_CANARY);
	ASSERT_EQ(s.gen[old].state, GEN_ACTIVE);
	ASSERT_EQ(s.active, old);
	ASSERT_EQ(weight(&s, new), 10);
	ASSERT_EQ(weight(&s, old), 90);
	ASSERT_EQ(share_ppm(&s, new), 100000);	/* what the program applies */
	ASSERT_EQ(share_ppm(&s, old), 900000);
	ASSERT_TRUE(!killed(s.gen[old].pid, SIGTERM));	/* nothing is stopped */
	ASSERT_EQ(s.reloads_done, 0);
	/* another reload waits for the decision */
	ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), -EBUSY);
	ASSERT_EQ(stage_promote(&s, "test"), 0);
	ASSERT_EQ(s.stage.kind, STAGE_NONE);
	ASSERT_EQ(s.active, new);
	ASSERT_EQ(s.gen[new].state, GEN_ACTIVE);
	ASSERT_EQ(s.gen[old].state, GEN_DRAINING);
	ASSERT_EQ(share_ppm(&s, new), 1000000);
	ASSERT_TRUE(killed(s.gen[old].pid, SIGTERM));
	ASSERT_EQ(s.reloads_done, 1);
	ASSERT_CONTAINS(s.stage.last, "canary gen 2 promoted");
	sup_fini(&s);
}

TEST(genstate_canary_rollback_gives_everything_back_and_fences_the_canary)
{
	int slot;

	STAGED_SUP(.canary_pct = 30);
	slot = s.gen[new].slot[0];
	ASSERT_EQ(stage_rollback(&s, "baton rollback"), 0);
	ASSERT_EQ(s.stage.kind, STAGE_NONE);
	ASSERT_EQ(s.active, old);
	ASSERT_EQ(share_ppm(&s, old), 1000000);
	ASSERT_EQ(s.gen[new].slot[0], -1);	/* fenced and out of the group */
	ASSERT_EQ(baton_group_fd(s.grp[0], slot), -ENOENT);
	ASSERT_TRUE(killed(s.gen[new].pid, SIGTERM));
	ASSERT_TRUE(!killed(s.gen[old].pid, SIGTERM));
	ASSERT_EQ(s.reloads_failed, 1);
	ASSERT_CONTAINS(s.last_reload, "baton rollback; rolled back, gen 1 still serves");
	ASSERT_EQ(stage_rollback(&s, "again"), -ENOENT);
	sup_fini(&s);
}

TEST(genstate_canary_steps_up_to_a_promotion)
{
	int old, new, i;

	FAKE_SUP();
	cfg.no_watch = true;
	old = serving(&s);
	new = staged_reload(&s, (struct stage_opts){ .canary_pct = 40, .step_ms = 10 });
	ASSERT_EQ(weight(&s, new), 40);
	stage_tick(&s, s.stage.next_step_ms);
	ASSERT_EQ(weight(&s, new), 80);
	ASSERT_EQ(weight(&s, old), 20);
	for (i = 0; i < 3 && s.stage.kind == STAGE_CANARY; i++)
		stage_tick(&s, s.stage.next_step_ms);
	ASSERT_EQ(s.stage.kind, STAGE_NONE);
	ASSERT_EQ(s.active, new);
	ASSERT_EQ(s.reloads_done, 1);
	ASSERT_TRUE(killed(s.gen[old].pid, SIGTERM));
	sup_fini(&s);
}

TEST(genstate_canary_that_exits_is_rolled_back)
{
	int spawned;

	STAGED_SUP(.canary_pct = 10);
	spawned = nspawns();
	gen_exited(&s, new, W_EXITCODE(0, SIGSEGV));
	ASSERT_EQ(nspawns(), spawned);	/* no restart */
	ASSERT_EQ(s.active, old);
	ASSERT_EQ(share_ppm(&s, old), 1000000);
	ASSERT_EQ(s.restarts, 0);
	ASSERT_CONTAINS(s.stage.last, "canary gen 2 (at 10%) rolled back");
	ASSERT_CONTAINS(s.stage.last, "killed by signal 11");
	sup_fini(&s);
}

TEST(genstate_probation_keeps_the_old_one_and_flips_back_without_a_process)
{
	int spawned;

	STAGED_SUP(.probation_ms = 10000);
	ASSERT_EQ(s.stage.kind, STAGE_PROBATION);
	ASSERT_EQ(s.active, new);
	ASSERT_EQ(s.gen[old].state, GEN_STANDBY);
	ASSERT_EQ(weight(&s, old), 0);
	ASSERT_TRUE(!baton_group_fenced(s.grp[0], s.gen[old].slot[0]));	/* unfenced: ready to take it back */
	ASSERT_TRUE(!killed(s.gen[old].pid, SIGTERM));
	ASSERT_EQ(s.reloads_done, 1);
	/* no reload while it is on probation */
	ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), -EBUSY);
	spawned = nspawns();
	gen_exited(&s, new, W_EXITCODE(3, 0));
	ASSERT_EQ(nspawns(), spawned);	/* the flip starts no process */
	ASSERT_EQ(s.restarts, 0);
	ASSERT_EQ(s.active, old);
	ASSERT_EQ(s.gen[old].state, GEN_ACTIVE);
	ASSERT_EQ(share_ppm(&s, old), 1000000);
	ASSERT_EQ(s.gen[new].slot[0], -1);
	ASSERT_EQ(s.stage.kind, STAGE_NONE);
	ASSERT_EQ(s.reloads_failed, 1);
	ASSERT_CONTAINS(s.last_reload, "flipped back to gen 1 in one policy update, no process started");
	sup_fini(&s);
}

TEST(genstate_probation_that_passes_stops_the_standby)
{
	int old, new;

	FAKE_SUP();
	cfg.no_watch = true;
	old = serving(&s);
	new = staged_reload(&s, (struct stage_opts){ .probation_ms = 50 });
	ASSERT_TRUE(stage_tick(&s, baton_mono_ms()));	/* the health watch stands aside */
	ASSERT_TRUE(!stage_tick(&s, s.stage.until_ms));
	ASSERT_EQ(s.stage.kind, STAGE_NONE);
	ASSERT_EQ(s.gen[old].state, GEN_DRAINING);
	ASSERT_TRUE(killed(s.gen[old].pid, SIGTERM));
	ASSERT_EQ(s.active, new);
	ASSERT_CONTAINS(s.stage.last, "passed its probation");
	sup_fini(&s);
}

TEST(genstate_failed_check_on_probation_flips_back)
{
	STAGED_SUP(.probation_ms = 10000);
	stage_fail(&s, "check failed: GET /healthz answered 500");
	ASSERT_EQ(s.active, old);
	ASSERT_TRUE(killed(s.gen[new].pid, SIGTERM));
	ASSERT_EQ(s.gen[new].state, GEN_DRAINING);
	ASSERT_CONTAINS(s.gen[new].why, "rolled back on probation: check failed");
	sup_fini(&s);
}

TEST(genstate_max_draining_names_the_limit_and_the_draining_generations)
{
	FAKE_SUP();
	cfg.max_draining = 2;
	serving(&s);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), 0);
		gen_ready(&s, s.reload, false);	/* back to back: the old ones still drain */
	}
	ASSERT_EQ(draining_gens(&s), 2);
	ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), -EMLINK);
	ASSERT_EQ(s.reload, -1);
	/* the health watch replaces a frozen generation whatever the limit */
	ASSERT_EQ(start_reload(&s, -1, RELOAD_HEALTH), 0);
	ASSERT_GE(s.reload, 0);
	sup_fini(&s);
}

TEST(genstate_failed_operator_reload_with_a_frozen_generation_hands_over_to_the_watch)
{
	int old;

	FAKE_SUP();
	old = serving(&s);
	ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), 0);
	/* the watch found the serving one frozen while the reload ran */
	snprintf(s.gen[old].health, sizeof(s.gen[old].health), "fenced: owner stopped (SIGSTOP)");
	gen_exited(&s, s.reload, W_EXITCODE(1, 0));
	ASSERT_EQ(s.active, old);
	ASSERT_CONTAINS(s.degraded, "the health watch starts a replacement");
	ASSERT_LE(s.retry_at, baton_mono_ms());	/* due at once */
	sup_fini(&s);
}

/* A first generation that was only assumed ready (no READY=1, no listen()
 * report from the shim) and then exits with an error failed at start
 * (nginx whose bind() failed): the supervisor stops with the reason
 * instead of restarting it forever. */
TEST(genstate_gen1_assumed_ready_that_fails_stops_instead_of_restarting)
{
	int gi, spawned;

	FAKE_SUP();
	gi = bt_fake_first_gen(&s);
	gen_ready(&s, gi, true);
	ASSERT_EQ(s.gen[gi].state, GEN_ACTIVE);
	spawned = nspawns();
	gen_exited(&s, gi, W_EXITCODE(1, 0));
	ASSERT_TRUE(s.stopping);
	ASSERT_EQ(s.exit_code, 1);
	ASSERT_EQ(s.restart_at, 0);
	ASSERT_EQ(s.restarts, 0);
	ASSERT_EQ(nspawns(), spawned);
	sup_fini(&s);
}

/* The same exit of a generation that said it was ready is a crash: it is
 * restarted on the same sockets. */
TEST(genstate_gen1_that_was_ready_and_crashes_is_restarted)
{
	int gi;

	FAKE_SUP();
	gi = bt_fake_first_gen(&s);
	s.gen[gi].heard = true;
	gen_ready(&s, gi, false);
	gen_exited(&s, gi, W_EXITCODE(1, 0));
	ASSERT_TRUE(!s.stopping);
	ASSERT_EQ(s.restart_from, gi);
	ASSERT_GT(s.restart_at, 0);
	ASSERT_EQ(s.restarts, 1);
	sup_fini(&s);
}

/* The table of legal transitions, written out once more by hand: a
 * transition added to or dropped from gen.c's table fails here until it
 * is listed (with its reason) below too. */
TEST(genstate_transition_table_allows_exactly_the_listed_transitions)
{
	static const struct { enum gen_state from, to; } listed[] = {
		/* a fresh slot: spawned, taken over, adopted or resumed */
		{ GEN_FREE, GEN_STARTING }, { GEN_FREE, GEN_READY }, { GEN_FREE, GEN_ACTIVE },
		{ GEN_FREE, GEN_DRAINING }, { GEN_FREE, GEN_CANARY }, { GEN_FREE, GEN_STANDBY },
		{ GEN_STARTING, GEN_READY }, { GEN_STARTING, GEN_ACTIVE }, { GEN_STARTING, GEN_DRAINING },
		{ GEN_STARTING, GEN_EXITED },
		{ GEN_READY, GEN_ACTIVE }, { GEN_READY, GEN_CANARY }, { GEN_READY, GEN_DRAINING },
		{ GEN_READY, GEN_EXITED },
		{ GEN_ACTIVE, GEN_STANDBY }, { GEN_ACTIVE, GEN_DRAINING }, { GEN_ACTIVE, GEN_EXITED },
		/* serving again: only as a resumed or adopted generation */
		{ GEN_DRAINING, GEN_ACTIVE }, { GEN_DRAINING, GEN_EXITED },
		{ GEN_CANARY, GEN_READY }, { GEN_CANARY, GEN_ACTIVE }, { GEN_CANARY, GEN_DRAINING },
		{ GEN_CANARY, GEN_EXITED },
		{ GEN_STANDBY, GEN_ACTIVE }, { GEN_STANDBY, GEN_DRAINING }, { GEN_STANDBY, GEN_EXITED },
	};
	int from, to, nlegal = 0;

	for (from = 0; from < GEN_NSTATES; from++)
		for (to = 0; to < GEN_NSTATES; to++) {
			bool want = from == to;	/* staying is no transition */

			for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
				want |= listed[i].from == (enum gen_state)from && listed[i].to == (enum gen_state)to;
			if (gen_transition_legal((enum gen_state)from, (enum gen_state)to) != want)
				FAIL("%s -> %s: the table says %s, the list %s", state_name[from],
				     state_name[to], want ? "no" : "yes", want ? "yes" : "no");
			nlegal += from != to && want;
		}
	ASSERT_EQ(nlegal, (int)(sizeof(listed) / sizeof(listed[0])));
	/* a few that would be bugs */
	ASSERT_TRUE(!gen_transition_legal(GEN_EXITED, GEN_ACTIVE));	/* a dead one serving */
	ASSERT_TRUE(!gen_transition_legal(GEN_EXITED, GEN_FREE));	/* reuse is gen_reset's */
	ASSERT_TRUE(!gen_transition_legal(GEN_FREE, GEN_EXITED));
	ASSERT_TRUE(!gen_transition_legal(GEN_STARTING, GEN_CANARY));	/* a canary is ready first */
	ASSERT_TRUE(!gen_transition_legal(GEN_DRAINING, GEN_STANDBY));
	ASSERT_TRUE(!gen_transition_legal(GEN_ACTIVE, GEN_READY));
	ASSERT_TRUE(!gen_transition_legal(GEN_NSTATES, GEN_ACTIVE));
}

/* Through the seam: a generation asked for an illegal transition keeps its
 * state (an internal error, said), a legal one is taken. */
TEST(genstate_illegal_transition_is_refused_and_the_state_kept)
{
	int gi;

	FAKE_SUP();
	gi = start_gen(&s, -1, 1);
	ASSERT_GE(gi, 0);
	ASSERT_EQ(s.gen[gi].state, GEN_STARTING);
	ASSERT_EQ(gen_set_state(&s, gi, GEN_STANDBY, "test"), -EINVAL);
	ASSERT_EQ(s.gen[gi].state, GEN_STARTING);
	ASSERT_EQ(gen_set_state(&s, gi, GEN_FREE, "test"), -EINVAL);
	ASSERT_EQ(s.gen[gi].state, GEN_STARTING);
	ASSERT_EQ(gen_set_state(&s, gi, GEN_STARTING, "test"), 0);	/* staying */
	s.active = gi;
	gen_ready(&s, gi, false);
	ASSERT_EQ(s.gen[gi].state, GEN_ACTIVE);
	ASSERT_EQ(gen_set_state(&s, gi, GEN_READY, "test"), -EINVAL);
	ASSERT_EQ(s.gen[gi].state, GEN_ACTIVE);
	gen_exited(&s, gi, W_EXITCODE(0, 0));
	ASSERT_EQ(s.gen[gi].state, GEN_EXITED);
	ASSERT_EQ(gen_set_state(&s, gi, GEN_ACTIVE, "test"), -EINVAL);
	ASSERT_EQ(gen_set_state(&s, gi, GEN_STARTING, "test"), -EINVAL);
	ASSERT_EQ(s.gen[gi].state, GEN_EXITED);
	sup_fini(&s);
}
