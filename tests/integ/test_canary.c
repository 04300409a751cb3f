/* SPDX-License-Identifier: BSD-2-Clause */
/* Staged reloads with `baton run` and the reference server: a canary's
 * share as clients see it, promote and rollback under a counting load
 * client, a generation that fails on probation flipped back without a new
 * process, a check that reaches the canary alone and rolls it back, a stage
 * that outlives a supervisor killed with SIGKILL, and readiness read after the
 * supervisor itself was stopped. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

/* `baton run --name web` over the reference server, whose extra arguments
 * come from the mode file (so that one generation can misbehave); X1..X4:
 * more options (each NULL, or from the first NULL on). */
static void sv_start_with(struct bt_sv *s, const char *x1, const char *x2, const char *x3, const char *x4)
{
	/* the watch of the active generation is not under test: a stall of
	 * the loaded machine must not start a reload of its own */
	const char *opts[] = { "--hang-threshold", "2s", x1, x2, x3, x4, NULL };

	/* pins of the supervisor's groups stay in the test */
	bt_sv_refserver(s, true, "tcp://127.0.0.1:0?backlog=1024&name=http", "5s", opts, out, sizeof(out));
}

static void sv_start(struct bt_sv *s)
{
	sv_start_with(s, NULL, NULL, NULL, NULL);
}

/* The supervisor itself, again after one died: the same command line. */
static void sv_run(struct bt_sv *s)
{
	bt_sv_restart(s, out, sizeof(out));
}

/* sv_start, then 4 s of the counting client (16 at once) against it. */
static struct bt_load sv_start_loaded(struct bt_sv *s)
{
	sv_start(s);
	return bt_load_start(s->port, "conn", "4", 16);
}

static void sv_stop(struct bt_sv *s)
{
	bt_supervisor_stop(&s->pid, 10);
}

/* The pid of generation ID, from `baton status --json`. */
static long long gen_pid(int id)
{
	char key[32];
	const char *p;

	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	snprintf(key, sizeof(key), "{\"id\":%d,", id);
	p = strstr(out, key);
	if (!p)
		FAIL("no gen %d in %s", id, out);
	return bt_json_get(p, "pid");
}

/* One request; the pid that answered it, or -1. */
static long long answered_by(uint16_t port)
{
	char buf[512];
	ssize_t n, got = 0;
	int fd = bt_connect(port);
	const char *p;

	if (fd < 0)
		return -1;
	if (write(fd, "GET / HTTP/1.0\r\n\r\n", 18) != 18) {
		close(fd);
		return -1;
	}
	while (got < (ssize_t)sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	buf[got > 0 ? got : 0] = '\0';
	close(fd);
	p = strstr(buf, "pid=");
	return p ? atoll(p + 4) : -1;
}

TEST_TIMEOUT(canary_of_10_percent_over_10000_connections_lands_within_2_percent, 120)
{
	struct bt_sv s;
	long long canary, old, who;
	int i, to_canary = 0, to_old = 0;

	sv_start(&s);
	ASSERT_EQ(bt_baton("reload", "web", "--canary", "10%"), 0);
	ASSERT_CONTAINS(out, "takes 10% of new connections (canary)");
	canary = gen_pid(2);
	old = gen_pid(1);
	/* status shows the shares the program applies */
	ASSERT_CONTAINS(out, "\"state\":\"canary\"");
	ASSERT_CONTAINS(out, "\"share_pct\":10.0");
	ASSERT_CONTAINS(out, "\"share_pct\":90.0");
	ASSERT_CONTAINS(out, "\"stage\":{\"kind\":\"canary\",\"gen\":2,\"old_gen\":1,\"canary_pct\":10");
	for (i = 0; i < 10000; i++) {
		who = answered_by(s.port);
		to_canary += who == canary;
		to_old += who == old;
	}
	bt_log("canary %d, old %d of 10000", to_canary, to_old);
	ASSERT_EQ(to_canary + to_old, 10000);
	ASSERT_GE(to_canary, 800);
	ASSERT_LE(to_canary, 1200);
	ASSERT_EQ(bt_baton("status", "web"), 0);
	ASSERT_CONTAINS(out, "canary: gen 2 takes 10% beside gen 1");
	sv_stop(&s);
}

TEST_TIMEOUT(canary_promote_and_rollback_under_load_fail_nothing, 90)
{
	struct bt_sv s;
	struct bt_load l = sv_start_loaded(&s);

	ASSERT_EQ(bt_baton("reload", "web", "--canary", "30%"), 0);
	usleep(600000);
	ASSERT_EQ(bt_baton("promote", "web"), 0);
	ASSERT_CONTAINS(out, "gen 2 serves every new connection; gen 1 told to stop");
	usleep(400000);
	ASSERT_EQ(bt_baton("reload", "web", "--canary", "50%"), 0);
	usleep(600000);
	ASSERT_EQ(bt_baton("rollback", "web"), 0);
	ASSERT_CONTAINS(out, "every new connection goes to gen 2 again; gen 3 stopped and fenced");
	bt_assert_load_ok(bt_load_finish(&l, 30));
	bt_assert_reloads("web", 1, 1);
	ASSERT_CONTAINS(out, "{\"id\":2,");
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"share_pct\":100.0");
	ASSERT_EQ(bt_baton("rollback", "web"), 1);
	ASSERT_CONTAINS(err, "nothing to rollback: no canary or probation is under way");
	sv_stop(&s);
}

TEST_TIMEOUT(probation_generation_failing_after_ready_is_flipped_back_without_a_new_process, 90)
{
	struct bt_sv s;
	struct bt_load l = sv_start_loaded(&s);

	bt_sv_set_mode(&s, "--fail-after 1000");
	ASSERT_EQ(bt_baton("reload", "web", "--probation", "10s"), 0);
	ASSERT_CONTAINS(out, "probation: gen 1");
	bt_sv_set_mode(&s, "");
	bt_status_wait("web", bt_json_get(out, "reloads_failed") == 1, 150, 20000);
	bt_assert_load_ok(bt_load_finish(&l, 30));
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	bt_log("%s", out);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), 1);
	ASSERT_EQ(bt_json_get(out, "restarts"), 0);
	/* no gen 3: the flip started no process */
	ASSERT_TRUE(strstr(out, "{\"id\":3,") == NULL);
	ASSERT_CONTAINS(out, "flipped back to gen 1 in one policy update, no process started");
	ASSERT_CONTAINS(strstr(out, "{\"id\":1,"), "\"state\":\"active\"");
	ASSERT_CONTAINS(strstr(out, "{\"id\":1,"), "\"share_pct\":100.0");
	/* "exited with status 1"; under LeakSanitizer its exit-time tracing
	 * can show first, as a stopped owner: flipped back all the same */
	ASSERT_CONTAINS(out, "rolled back on probation: gen 2 ");
	sv_stop(&s);
}

TEST_ALONE(canary_check_reaches_the_canary_alone_and_a_failing_one_rolls_it_back, 90)
{
	struct bt_sv s;
	char check[512], seen[160];
	long long canary;
	FILE *f;
	int lines = 0, wrong = 0;

	sv_start(&s);
	/* curl from the reserved source ports: every probe must reach gen 2,
	 * though it takes 10% of everything else */
	snprintf(seen, sizeof(seen), "%s/seen", s.dir);
	snprintf(check, sizeof(check), "curl -s --local-port \"$BATON_CHECK_PORTS\" "
		 "http://$BATON_CHECK_HOST:$BATON_CHECK_PORT/ >> %s", seen);
	ASSERT_EQ(bt_baton("reload", "web", "--canary", "10%", "--check-cmd"), 2);	/* needs its value */
	{
		char *argv[] = { (char *)bt_baton_bin(), "reload", "web", "--canary", "10%", "--check-cmd", check,
				 "--check-interval", "100ms", NULL };

		ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 30), 0);
	}
	canary = gen_pid(2);
	bt_status_wait("web", bt_json_get(out, "checks_passed") >= 8, 100, 50000);
	ASSERT_GE(bt_json_get(out, "checks_passed"), 8);
	ASSERT_EQ(bt_json_get(out, "checks_failed"), 0);
	f = fopen(seen, "r");
	ASSERT_TRUE(f != NULL);
	while (fgets(check, sizeof(check), f)) {
		const char *p = strstr(check, "pid=");

		lines++;
		wrong += !p || atoll(p + 4) != canary;
	}
	fclose(f);
	ASSERT_GE(lines, 8);
	ASSERT_EQ(wrong, 0);
	ASSERT_EQ(bt_baton("promote", "web"), 0);
	/* a check that fails (the new version has no /healthz) rolls the canary back */
	ASSERT_EQ(bt_baton("reload", "web", "--canary", "20%", "--check=http:///healthz"), 0);
	bt_status_wait("web", bt_json_get(out, "reloads_failed") == 1, 100, 20000);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), 1);
	ASSERT_CONTAINS(out, "check failed: GET /healthz answered 404");
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"state\":\"active\"");
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"share_pct\":100.0");
	sv_stop(&s);
}

TEST_TIMEOUT(canary_options_errors_name_the_bad_input, 60)
{
	struct bt_sv s;

	sv_start(&s);
	ASSERT_EQ(bt_baton("reload", "web", "--canary", "100%"), 2);
	ASSERT_CONTAINS(err, "bad --canary \"100%\": want a share from 1% to 99%");
	ASSERT_EQ(bt_baton("reload", "web", "--step", "1s"), 1);
	ASSERT_CONTAINS(err, "--step raises a canary's share: give --canary P% too");
	ASSERT_EQ(bt_baton("reload", "web", "--check", "http:///x"), 1);
	ASSERT_CONTAINS(err, "a check decides a canary or a probation");
	ASSERT_EQ(bt_baton("status", "web", "--canary", "5%"), 2);
	ASSERT_CONTAINS(err, "unknown option \"--canary\"");
	ASSERT_EQ(bt_baton("promote", "web"), 1);
	ASSERT_CONTAINS(err, "nothing to promote");
	ASSERT_EQ(bt_baton("reload", "web", "--canary", "10%"), 0);
	ASSERT_EQ(bt_baton("reload", "web"), 1);
	ASSERT_CONTAINS(err, "gen 2 is a canary taking 10% of new connections beside gen 1: decide first");
	sv_stop(&s);
}

TEST_TIMEOUT(canary_and_probation_outlive_a_supervisor_that_dies, 90)
{
	struct bt_sv s;
	int status;

	sv_start(&s);
	ASSERT_EQ(bt_baton("reload", "web", "--canary", "10%"), 0);
	kill(s.pid, SIGKILL);
	ASSERT_EQ(waitpid(s.pid, &status, 0), s.pid);
	sv_run(&s);	/* adopts the generations, and the split with them */
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_CONTAINS(out, "\"stage\":{\"kind\":\"canary\",\"gen\":2,\"old_gen\":1,\"canary_pct\":10");
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"share_pct\":10.0");
	ASSERT_EQ(bt_baton("promote", "web"), 0);
	ASSERT_EQ(bt_baton("reload", "web", "--probation", "30s"), 0);
	kill(s.pid, SIGKILL);
	ASSERT_EQ(waitpid(s.pid, &status, 0), s.pid);
	sv_run(&s);
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_CONTAINS(out, "\"stage\":{\"kind\":\"probation\",\"gen\":3,\"old_gen\":2");
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"state\":\"standby\"");
	ASSERT_EQ(bt_baton("rollback", "web"), 0);
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"share_pct\":100.0");
	sv_stop(&s);
}

TEST_TIMEOUT(back_to_back_reloads_stop_at_max_draining_naming_them, 60)
{
	struct bt_sv s;
	char want[96], sig[16];

	/* SIGWINCH (ignored) as the stop signal: old generations keep running
	 * (draining) until the 5 s grace ends */
	snprintf(sig, sizeof(sig), "%d", SIGWINCH);
	sv_start_with(&s, "--max-draining", "1", "--stop-signal", sig);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	snprintf(want, sizeof(want), "gen 1 (pid %lld)", gen_pid(1));
	ASSERT_EQ(bt_baton("reload", "web"), 1);
	ASSERT_CONTAINS(err, "1 generations still drain (");
	ASSERT_CONTAINS(err, want);
	ASSERT_CONTAINS(err, "the limit set by --max-draining 1");
	ASSERT_EQ(bt_baton_within(10, "run", "--max-draining", "15", "--"), 2);
	ASSERT_CONTAINS(err, "bad --max-draining \"15\"");
	sv_stop(&s);
}

TEST_TIMEOUT(canary_steps_promote_and_reload_waits_for_the_outcome, 60)
{
	struct bt_sv s;
	struct timespec a, b;
	long long ms;

	sv_start(&s);
	clock_gettime(CLOCK_MONOTONIC, &a);
	ASSERT_EQ(bt_baton("reload", "web", "--canary=40%", "--step=300ms"), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	bt_log("%s", out);
	/* 40% at once, 80% after one step, promoted at the next: two steps */
	ASSERT_GE(ms, 550);
	ASSERT_CONTAINS(out, "canary: gen 2 takes 40% of new connections");
	ASSERT_CONTAINS(out, "canary: gen 2 takes 80% of new connections");
	ASSERT_CONTAINS(out, "promoting canary gen 2 from 80% (every step passed)");
	ASSERT_CONTAINS(out, "gen 2 (pid ");
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 1);
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"share_pct\":100.0");
	sv_stop(&s);
}

TEST_TIMEOUT(canary_of_a_new_command_takes_effect_only_when_promoted, 60)
{
	struct bt_sv s;
	char newcmd[600];
	long long who, canary;
	int i, seen = 0;

	sv_start(&s);
	snprintf(newcmd, sizeof(newcmd), "exec %s -q --tag newcmd", getenv("BATON_REFSERVER"));
	{
		char *argv[] = { (char *)bt_baton_bin(), "reload", "web", "--canary", "50%", "--", "/bin/sh", "-c",
				 newcmd, NULL };

		ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 30), 0);
	}
	canary = gen_pid(2);
	for (i = 0; i < 200; i++) {
		who = answered_by(s.port);
		seen += who == canary;
	}
	ASSERT_GT(seen, 50);
	ASSERT_LE(seen, 150);
	/* rolled back: the command in force stays the old one */
	ASSERT_EQ(bt_baton("rollback", "web"), 0);
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_TRUE(strstr(out, "--tag newcmd") == NULL);
	sv_stop(&s);
}

/* ---- a stage across a supervisor killed with SIGKILL (issue 20.1) ---------------- */

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* `baton reload ...` in the background (a stepped canary's reload waits
 * for the outcome); its output goes to OUTPATH. */
static pid_t reload_bg(char *const argv[], const char *outpath)
{
	pid_t pid = fork();

	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Polls status until checks_passed reaches N; the last document stays in out. */
static void wait_checks(int n)
{
	for (int i = 0; i < 400; i++) {
		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		if (strstr(out, "\"checks_passed\":") && bt_json_get(out, "checks_passed") >= n)
			return;
		usleep(25000);
	}
	FAIL("fewer than %d checks passed: %s", n, out);
}

/* Polls status until reloads_failed or reloads_done passes the counts in
 * FAILED0/DONE0; the ms since T0 (the last document stays in out). */
static long long wait_decided(long long failed0, long long done0, long long t0)
{
	for (int i = 0; i < 1000; i++) {
		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		if (bt_json_get(out, "reloads_failed") > failed0 || bt_json_get(out, "reloads_done") > done0)
			return mono_ms() - t0;
		usleep(10000);
	}
	FAIL("the stage was not decided: %s", out);
}

/* A stepped canary whose --check-cmd starts failing: rolled back, never
 * promoted, with and without a kill -9 of the supervisor at that moment,
 * and both before the canary's steps would have promoted it. */
TEST_ALONE(canary_failing_check_rolls_back_across_a_supervisor_kill_within_the_same_deadline, 150)
{
	struct bt_sv s;
	struct bt_load l;
	char check[256], flag[96], rout[96], logtext[65536];
	long long plain_ms, killed_ms, left_ms, promote_ms, failed0, t0;
	const char *report;
	pid_t rel;

	sv_start(&s);
	snprintf(flag, sizeof(flag), "%s/fail", s.dir);
	snprintf(rout, sizeof(rout), "%s/reload.out", s.dir);
	snprintf(check, sizeof(check), "test ! -e %s", flag);
	char *argv[] = { (char *)bt_baton_bin(), "reload", "web", "--canary=40%", "--step=3s", "--check-cmd", check,
			 "--check-interval", "100ms", NULL };

	/* without a kill: the measure */
	rel = reload_bg(argv, rout);
	wait_checks(3);
	left_ms = bt_json_get(out, "next_step_in_ms");
	promote_ms = left_ms + 3000;	/* 40% -> 80% -> promoted */
	failed0 = bt_json_get(out, "reloads_failed");
	close(open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	t0 = mono_ms();
	plain_ms = wait_decided(failed0, 0, t0);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), failed0 + 1);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 0);
	ASSERT_CMP(plain_ms, <, promote_ms);
	waitpid(rel, NULL, 0);
	unlink(flag);

	/* the same with kill -9 of the supervisor as the check starts failing */
	l = bt_load_start(s.port, "conn", "30", 8);
	rel = reload_bg(argv, rout);
	wait_checks(3);
	left_ms = bt_json_get(out, "next_step_in_ms");
	promote_ms = left_ms + 3000;
	failed0 = bt_json_get(out, "reloads_failed");
	close(open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	t0 = mono_ms();
	bt_sv_kill(&s);
	sv_run(&s);
	killed_ms = wait_decided(failed0, 0, t0);
	report = bt_load_stop(&l, 30);
	waitpid(rel, NULL, 0);
	bt_log("rolled back %lld ms after the check failed without a kill, %lld ms with one (promotion was due in "
	       ">= %lld ms)", plain_ms, killed_ms, promote_ms);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), failed0 + 1);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 0);
	ASSERT_CMP(killed_ms, <, promote_ms);
	ASSERT_CONTAINS(out, "check failed: check command exited with status 1");
	ASSERT_CONTAINS(strstr(out, "{\"id\":1,"), "\"state\":\"active\"");
	ASSERT_CONTAINS(strstr(out, "{\"id\":1,"), "\"share_pct\":100.0");
	bt_read_file(s.log, logtext, sizeof(logtext));
	ASSERT_CONTAINS(logtext, "resumed the canary of gen 3 at 40%; its check goes on");
	ASSERT_TRUE(strstr(logtext, "promot") == NULL);
	bt_assert_load_ok(report);
	sv_stop(&s);
}

/* KEY of `baton status --json` (a time left, in ms), with the moments
 * just before and after the call in *A and *B: the supervisor computed it
 * somewhere in between. */
static long long left_at(const char *key, long long *a, long long *b)
{
	*a = mono_ms();
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	*b = mono_ms();
	return bt_json_get(out, key);
}

/* A deadline kept across a restart: what is left shrank by the time that
 * passed between the two reads of LEFT1 (in [A1, B1]) and LEFT2 (in [A2,
 * B2]), give or take 20 ms of rounding; a deadline that restarted or moved
 * falls outside. */
static void assert_same_deadline(const char *what, long long left1, long long a1, long long b1, long long left2,
				 long long a2, long long b2)
{
	bt_log("%s: %lld ms left before the kill, %lld ms after; %lld to %lld ms passed in between", what, left1,
	       left2, a2 - b1, b2 - a1);
	ASSERT_GE(left1 - left2, a2 - b1 - 20);
	ASSERT_LE(left1 - left2, b2 - a1 + 20);
}

/* A probation's deadline and its check counts, and a stepped canary's next
 * step, are where they were after a supervisor restart; a new stage's
 * counts start at zero. */
TEST_ALONE(stage_deadlines_and_check_counts_survive_a_supervisor_restart_and_reset_per_stage, 150)
{
	struct bt_sv s;
	char rout[96];
	long long left1, left2, a1, b1, a2, b2, passed0;
	pid_t rel;

	sv_start(&s);
	snprintf(rout, sizeof(rout), "%s/reload.out", s.dir);
	{
		char *argv[] = { (char *)bt_baton_bin(), "reload", "web", "--probation=30s", "--check-cmd", "true",
				 "--check-interval", "100ms", NULL };

		ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 30), 0);
	}
	wait_checks(3);
	passed0 = bt_json_get(out, "checks_passed");
	usleep(1200000);	/* the counts reach the state file once a second */
	left1 = left_at("probation_left_ms", &a1, &b1);
	bt_sv_kill(&s);
	usleep(1000000);	/* no supervisor for a second: the probation goes on */
	sv_run(&s);
	left2 = left_at("probation_left_ms", &a2, &b2);
	bt_log("%lld checks passed before the kill, %lld after", passed0, bt_json_get(out, "checks_passed"));
	ASSERT_CONTAINS(out, "\"stage\":{\"kind\":\"probation\",\"gen\":2,\"old_gen\":1");
	ASSERT_CONTAINS(out, "\"check\":\"true\"");
	ASSERT_GE(bt_json_get(out, "checks_passed"), passed0);
	assert_same_deadline("probation", left1, a1, b1, left2, a2, b2);
	ASSERT_EQ(bt_baton("promote", "web"), 0);

	/* a stepped canary with a check that runs once in 10 s: its first
	 * verdict only, not the probation's passes */
	{
		char *argv[] = { (char *)bt_baton_bin(), "reload", "web", "--canary=10%", "--step=20s", "--check-cmd",
				 "true", "--check-interval", "10s", NULL };

		rel = reload_bg(argv, rout);
	}
	bt_status_wait("web", strstr(out, "\"kind\":\"canary\""), 400, 25000);
	ASSERT_CONTAINS(out, "\"stage\":{\"kind\":\"canary\",\"gen\":3,\"old_gen\":2");
	ASSERT_LE(bt_json_get(out, "checks_passed"), 1);
	ASSERT_EQ(bt_json_get(out, "checks_failed"), 0);
	usleep(300000);	/* its first check passed and was written */
	left1 = left_at("next_step_in_ms", &a1, &b1);
	bt_sv_kill(&s);
	waitpid(rel, NULL, 0);
	usleep(1000000);
	sv_run(&s);
	left2 = left_at("next_step_in_ms", &a2, &b2);
	ASSERT_CONTAINS(out, "\"stage\":{\"kind\":\"canary\",\"gen\":3,\"old_gen\":2,\"canary_pct\":10");
	assert_same_deadline("canary's next step", left1, a1, b1, left2, a2, b2);
	ASSERT_EQ(bt_baton("rollback", "web"), 0);
	sv_stop(&s);
}

/* ---- readiness after a stall of the supervisor (issue 20.6) ------------------------- */

/* A reload whose new generation sends READY=1 while the supervisor is
 * stopped (SIGSTOP) for longer than --ready-timeout: once continued, it
 * reads that READY=1 before it judges the timeout, and the reload serves. */
static void reload_through_a_stall(struct bt_sv *s, const char *assumed)
{
	struct bt_load l;
	char rout[96], logtext[65536], text[65536];
	const char *report;
	int status;
	pid_t rel;
	char cmd[600];
	char *argv[] = { (char *)bt_baton_bin(), "reload", "web", "--", "/bin/sh", "-c", cmd, NULL };

	/* neither READY=1 nor the shim's listen report before 300 ms: the
	 * supervisor is stopped by then */
	snprintf(cmd, sizeof(cmd), "sleep 0.3; exec %s -q --tag gen", getenv("BATON_REFSERVER"));
	snprintf(rout, sizeof(rout), "%s/reload.out", s->dir);
	l = bt_load_start(s->port, "conn", "30", 8);
	rel = reload_bg(argv, rout);
	bt_status_wait("web", strstr(out, "{\"id\":2,") && strstr(strstr(out, "{\"id\":2,"), "\"state\":\"starting\""), 500, 5000);
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"state\":\"starting\"");
	ASSERT_EQ(kill(s->pid, SIGSTOP), 0);
	usleep(2500000);	/* past --ready-timeout (and --ready auto's 2 s) */
	ASSERT_EQ(kill(s->pid, SIGCONT), 0);
	ASSERT_EQ(waitpid(rel, &status, 0), rel);
	report = bt_load_stop(&l, 30);
	bt_read_file(rout, text, sizeof(text));
	bt_log("reload: %s", text);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	bt_assert_reloads("web", 1, 0);
	ASSERT_CONTAINS(strstr(out, "{\"id\":2,"), "\"state\":\"active\"");
	bt_read_file(s->log, logtext, sizeof(logtext));
	ASSERT_TRUE(strstr(logtext, "not ready within") == NULL);
	if (assumed)
		ASSERT_TRUE(strstr(logtext, assumed) == NULL);
	ASSERT_CONTAINS(logtext, "the supervisor did not run for ");
	ASSERT_CONTAINS(logtext, "gen 2 (pid ");
	bt_assert_load_ok(report);
	sv_stop(s);
}

TEST_ALONE(stall_of_the_supervisor_past_ready_timeout_does_not_roll_back_a_ready_generation, 90)
{
	struct bt_sv s;

	sv_start_with(&s, "--ready", "notify", "--ready-timeout", "1s");
	reload_through_a_stall(&s, NULL);
}

TEST_ALONE(stall_of_the_supervisor_with_ready_auto_logs_the_ready_it_read_not_an_assumption, 90)
{
	struct bt_sv s;

	sv_start_with(&s, "--ready-timeout", "2s", NULL, NULL);
	reload_through_a_stall(&s, "assumed ready");
}

/* ---- the probe pin and other source addresses (issue 19.8) ------------------------ */

/* One request from FROM:SPORT (IPv4, host order); the pid that answered it, or -1. */
static long long answered_from(uint16_t port, uint32_t from, uint16_t sport)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(sport), .sin_addr.s_addr = htonl(from) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	char buf[512];
	ssize_t n, got = 0;
	const char *p;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) || connect(fd, (struct sockaddr *)&dst, sizeof(dst)) ||
	    write(fd, "GET / HTTP/1.0\r\n\r\n", 18) != 18) {
		close(fd);
		return -1;
	}
	while (got < (ssize_t)sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	buf[got > 0 ? got : 0] = '\0';
	bt_close_rst(fd);	/* the reserved port is free again at once */
	p = strstr(buf, "pid=");
	return p ? atoll(p + 4) : -1;
}

/* A canary of 1% with a check: the check's probes from the loopback address
 * reach it every time; a client that picks a source port in the reserved
 * range from another address gets the weights like everyone else. */
TEST_TIMEOUT(canary_probe_pin_ignores_a_client_on_the_reserved_ports_from_another_address, 90)
{
	struct bt_sv s;
	long long canary, who;
	int i, probe_hits = 0, other_hits = 0, other_answered = 0;

	sv_start(&s);
	{
		char *argv[] = { (char *)bt_baton_bin(), "reload", "web", "--canary", "1%", "--check-cmd", "true",
				 "--check-interval", "100ms", NULL };

		ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 30), 0);
	}
	canary = gen_pid(2);
	wait_checks(1);	/* the pin is set with the first probe */
	for (i = 0; i < 32; i++)
		probe_hits += answered_from(s.port, INADDR_LOOPBACK, (uint16_t)(1008 + i % 16)) == canary;
	for (i = 0; i < 64; i++) {
		who = answered_from(s.port, 0x7f000002, (uint16_t)(1008 + i % 16));
		other_answered += who > 0;
		other_hits += who == canary;
	}
	bt_log("canary at 1%%: %d of 32 from 127.0.0.1 and %d of %d from 127.0.0.2 on ports 1008-1023 reached it",
	       probe_hits, other_hits, other_answered);
	ASSERT_EQ(probe_hits, 32);
	ASSERT_EQ(other_answered, 64);
	/* the weights: about 1 in 100 (each port is used 4 times, and the
	 * same 4-tuple hashes alike: a hit comes in fours) */
	ASSERT_LE(other_hits, 8);
	ASSERT_EQ(bt_baton("rollback", "web"), 0);
	sv_stop(&s);
}

/* A stage line of an older baton (no checks, no absolute deadlines), or a
 * damaged one: the stage cannot be resumed whole, so it is rolled back,
 * never promoted, and status and the log say why. */
TEST_TIMEOUT(canary_that_cannot_be_resumed_whole_is_rolled_back_with_the_reason, 90)
{
	static const char *const lines[] = { "stage canary 2 1 30 0 0", "stage v2 canary 2 1 30 30 junk" };
	struct bt_sv s;
	char state[128], text[16384], *p, *nl, logtext[65536];
	FILE *f;

	for (int round = 0; round < 2; round++) {
		sv_start(&s);
		ASSERT_EQ(bt_baton("reload", "web", "--canary=30%", "--check-cmd=true"), 0);
		bt_sv_kill(&s);
		/* the state as that baton would have written it */
		snprintf(state, sizeof(state), "%s/web.state", s.dir);
		bt_read_file(state, text, sizeof(text));
		p = strstr(text, "stage v2 ");
		ASSERT_TRUE(p != NULL);
		nl = strstr(p, "\nend\n");
		ASSERT_TRUE(nl != NULL);
		f = fopen(state, "w");
		ASSERT_TRUE(f != NULL);
		fprintf(f, "%.*s%s\nend\n", (int)(p - text), text, lines[round]);
		fclose(f);
		sv_run(&s);
		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		bt_log("%s", out);
		ASSERT_EQ(bt_json_get(out, "reloads_failed"), 1);
		ASSERT_EQ(bt_json_get(out, "reloads_done"), 0);
		ASSERT_CONTAINS(out, "\"stage\":{\"kind\":\"none\"");
		ASSERT_CONTAINS(out, "the canary could not be resumed whole after a supervisor restart: ");
		ASSERT_CONTAINS(out, round ? "its line in the state file is damaged"
					   : "the state file was written by an older baton");
		ASSERT_CONTAINS(strstr(out, "{\"id\":1,"), "\"state\":\"active\"");
		ASSERT_CONTAINS(strstr(out, "{\"id\":1,"), "\"share_pct\":100.0");
		bt_read_file(s.log, logtext, sizeof(logtext));
		ASSERT_CONTAINS(logtext, "could not be resumed whole");
		ASSERT_TRUE(strstr(logtext, "promot") == NULL);
		sv_stop(&s);
	}
}
