/* SPDX-License-Identifier: BSD-2-Clause */
/* Which signals a generation gets: none when the supervisor dies, even
 * while it is stopped (the kernel's orphaned-process-group rule would send
 * SIGHUP then SIGCONT), and on ^C of a foreground `baton run` only its
 * stop signal, from baton. The generation is a shell that records every
 * signal it takes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536];

struct sg {
	pid_t pid;                  /* the supervisor */
	pid_t gen;                  /* generation 1 */
	char dir[64], log[128], script[512], sigs[128];
};

static void own_group(void *ctx)
{
	(void)ctx;
	setpgid(0, 0);	/* a shell's foreground job: ^C goes to this group */
}

static const char *sigs(const struct sg *s)
{
	static char text[1024];
	FILE *f = fopen(s->sigs, "r");
	size_t n = 0;

	text[0] = '\0';
	if (f) {
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
	}
	text[n] = '\0';
	return text;
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* `baton run` of a shell that writes each signal it takes to DIR/sigs. */
static void sg_start(struct sg *s, void (*child)(void *ctx))
{
	char *argv[20];
	int n = 0;

	bt_baton_bin();
	bt_need_netns();
	bt_need_private_bpffs();
	memset(s, 0, sizeof(*s));
	bt_runtime_tmpdir_log(s->dir, sizeof(s->dir), "signals", s->log, sizeof(s->log));
	snprintf(s->sigs, sizeof(s->sigs), "%s/sigs", s->dir);
	snprintf(s->script, sizeof(s->script),
		 "for sig in HUP INT QUIT TERM CONT USR1 USR2 WINCH TTIN TTOU; do trap \"echo $sig >> %s\" $sig; done; "
		 "trap 'echo TERM >> %s; exit 0' TERM; while :; do sleep 0.05; done", s->sigs, s->sigs);
	/* the health watch (--no-watch) would replace the frozen generation
	 * with a second one that outlives the killed supervisor and the test:
	 * what is under test is the kernel's signal, not the watch */
	bt_args(argv, n, bt_baton_bin(), "run", "--name", "sig", "--listen", "tcp://127.0.0.1:8080", "--ready",
		"delay:100ms", "--grace", "5s", "--no-watch", "--", "/bin/sh", "-c", s->script);
	s->pid = bt_supervisor_start(argv, "sig", s->log, child, NULL, 15, out, sizeof(out));
	{
		const char *p = strstr(out, "\"state\":\"active\"");

		ASSERT_TRUE(p != NULL);
		while (p > out && strncmp(p, "{\"id\":", 6))
			p--;
		s->gen = (pid_t)bt_json_get(p, "pid");
	}
	ASSERT_GT(s->gen, 1);
	/* its own session: no terminal's signal and no orphaned-group rule */
	ASSERT_EQ(getsid(s->gen), s->gen);
}

/* A generation stopped when the supervisor dies: the kernel sends SIGHUP
 * and SIGCONT to a stopped process group whose last parent outside it, in
 * its session, exits. nginx would take that SIGHUP as a reload, refserver
 * died of it. The generation must stay stopped, and when it is continued,
 * no SIGHUP is waiting for it. */
TEST_TIMEOUT(signals_stopped_generation_gets_no_sighup_when_the_supervisor_dies, 60)
{
	struct sg s;

	sg_start(&s, NULL);
	ASSERT_EQ(kill(s.gen, SIGSTOP), 0);
	for (int i = 0; i < 100 && proc_state(s.gen) != 'T'; i++)
		usleep(10000);
	ASSERT_EQ(proc_state(s.gen), 'T');
	ASSERT_EQ(kill(s.pid, SIGKILL), 0);
	waitpid(s.pid, NULL, 0);
	usleep(500000);
	ASSERT_EQ(proc_state(s.gen), 'T');	/* nobody continued it */
	ASSERT_EQ(kill(s.gen, SIGCONT), 0);
	for (int i = 0; i < 200 && !strstr(sigs(&s), "CONT"); i++)
		usleep(10000);
	bt_log("signals taken: %s", sigs(&s));
	ASSERT_CONTAINS(sigs(&s), "CONT");	/* ours: it runs its traps */
	ASSERT_TRUE(strstr(sigs(&s), "HUP") == NULL);
	kill(-s.gen, SIGKILL);
	kill(s.gen, SIGKILL);
	/* its runtime directory: the dead supervisor's state and socket */
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s.dir);
	ASSERT_EQ(system(cmd), 0);
}

/* ^C of a foreground `baton run`: the terminal sends SIGINT to baton's
 * process group only; baton stops the generation with its stop signal
 * (TERM), which is all the generation gets, and exits 0. */
TEST_TIMEOUT(signals_ctrl_c_of_baton_run_stops_the_generation_through_the_supervisor, 60)
{
	struct sg s;
	int status = -1;
	pid_t r = 0;

	sg_start(&s, own_group);
	ASSERT_EQ(kill(-s.pid, SIGINT), 0);
	for (int i = 0; i < 1000 && (r = waitpid(s.pid, &status, WNOHANG)) == 0; i++)
		usleep(10000);
	if (r != s.pid) {
		bt_quote_file(s.log);
		kill(s.pid, SIGKILL);
		FAIL("baton run did not stop on ^C");
	}
	bt_log("signals taken: %s", sigs(&s));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_STREQ(sigs(&s), "TERM\n");
	ASSERT_TRUE(kill(s.gen, 0) != 0);	/* it is gone */
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s.dir);
	ASSERT_EQ(system(cmd), 0);
}
