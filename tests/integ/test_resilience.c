/* SPDX-License-Identifier: BSD-2-Clause */
/* The supervisor is never the outage: a killed `baton run` is resumed by
 * the same command, `baton upgrade` re-executes it as the same pid, a reload
 * cut short is rolled back, a frozen generation that cannot be replaced
 * keeps its listener, and foreign members of a group are named and refused.
 * Each under load from the counting client, which must see 0 failures. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

/* `baton run --name web` over refserver on a fixed port of this test's own
 * network namespace; EXTRA options go before "--". Each generation reads
 * more arguments from the mode file when it starts. */
static void rs_start(struct bt_sv *s, const char *const *extra)
{
	bt_sv_refserver(s, true, "tcp://127.0.0.1:8080?backlog=1024", "5s", extra, out, sizeof(out));
}

/* The same command again, as an operator would after a crash. */
static void rs_restart(struct bt_sv *s)
{
	snprintf(s->log, sizeof(s->log), "%s/log2", s->dir);
	bt_sv_restart(s, out, sizeof(out));
}

static void rs_stop(struct bt_sv *s)
{
	bt_supervisor_stop(&s->pid, 10);
}

TEST_TIMEOUT(resilience_killed_supervisor_is_resumed_by_the_same_command_losing_nothing, 60)
{
	struct bt_sv s;
	struct bt_load l;
	long long gen;

	rs_start(&s, NULL);
	gen = bt_active_pid(out);
	l = bt_load_start(8080, "conn", "4", 16);
	bt_sv_kill(&s);
	usleep(500000);	/* serving without any supervisor */
	ASSERT_EQ(kill((pid_t)gen, 0), 0);
	rs_restart(&s);
	bt_quote_file(s.log);
	ASSERT_EQ(bt_active_pid(out), gen);	/* the same generation keeps serving */
	ASSERT_CONTAINS(out, "\"resumed\":true");
	ASSERT_CONTAINS(out, "\"adopted\":true");
	/* and the next reload works */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_CONTAINS(out, "serves");
	bt_assert_load_ok(bt_load_finish(&l, 30));
	/* the adopted generation, not our child, was seen to exit */
	for (int i = 0; i < 100 && kill((pid_t)gen, 0) == 0; i++)
		usleep(50000);
	usleep(100000);
	ASSERT_EQ(bt_baton("status", "web"), 0);
	ASSERT_CONTAINS(out, "exited (status unknown: not a child of this supervisor)");
	rs_stop(&s);
	/* a clean stop leaves neither state nor pins */
	ASSERT_TRUE(access("/sys/fs/bpf/baton/run-web", F_OK) != 0);
	snprintf(out, sizeof(out), "%s/web.state", s.dir);
	ASSERT_TRUE(access(out, F_OK) != 0);
}

/* kill -9 right after `baton reload` returned ok: the restarted supervisor
 * resumes with that reload counted (reloads_done, last_reload), whatever
 * the old generation does next. Its stop signal is URG, which it ignores:
 * it drains for the whole grace, so no later event of it saves the state
 * in the meantime, and only the save before the answer can have counted
 * the reload. */
TEST_TIMEOUT(resilience_supervisor_killed_right_after_a_reload_resumes_with_it_counted, 60)
{
	char urg[16];
	const char *extra[] = { "--stop-signal", urg, NULL };
	struct bt_sv s;

	snprintf(urg, sizeof(urg), "%d", SIGURG);
	rs_start(&s, extra);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	bt_sv_kill(&s);
	rs_restart(&s);
	ASSERT_CONTAINS(out, "\"resumed\":true");
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 1);
	ASSERT_CONTAINS(out, "\"last_reload\":\"ok after ");
	ASSERT_CONTAINS(out, ": gen 2 (pid ");
	rs_stop(&s);
}

TEST_TIMEOUT(resilience_upgrade_in_place_keeps_the_pid_and_loses_nothing, 60)
{
	struct bt_sv s;
	struct bt_load l;
	long long gen;
	char pidstr[32];

	rs_start(&s, NULL);
	gen = bt_active_pid(out);
	l = bt_load_start(8080, "conn", "3", 16);
	ASSERT_EQ(bt_baton("upgrade", "web"), 0);
	ASSERT_CONTAINS(out, "the same pid");
	ASSERT_EQ(kill(s.pid, SIGUSR2), 0);	/* the signal does the same */
	usleep(300000);
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	snprintf(pidstr, sizeof(pidstr), "\"pid\":%d,", (int)s.pid);
	ASSERT_CONTAINS(out, pidstr);
	ASSERT_EQ(bt_active_pid(out), gen);
	ASSERT_CONTAINS(out, "\"adopted\":false");	/* still our child */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	bt_assert_load_ok(bt_load_finish(&l, 30));
	bt_supervisor_stop(&s.pid, 10);	/* exits 0: its generations were reaped */
}

TEST_TIMEOUT(resilience_upgrade_to_a_binary_that_cannot_start_is_refused, 60)
{
	struct bt_sv s;
	char copy[128], broken[160];
	const char *bin = bt_baton_bin();
	int fd;

	/* run a copy of baton, then replace the file as a package upgrade
	 * would, with something that does not start */
	bt_need_netns();
	snprintf(copy, sizeof(copy), "/tmp/baton-copy-%d", (int)getpid());
	snprintf(broken, sizeof(broken), "%s.new", copy);
	snprintf(out, sizeof(out), "cp %s %s", bin, copy);
	ASSERT_EQ(system(out), 0);
	setenv("BATON_BIN", copy, 1);
	rs_start(&s, NULL);
	fd = open(broken, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, "#!/bin/sh\nexit 3\n", 17), 17);
	close(fd);
	ASSERT_EQ(rename(broken, copy), 0);
	setenv("BATON_BIN", bin, 1);
	ASSERT_NE(bt_baton("upgrade", "web"), 0);
	ASSERT_CONTAINS(err, "upgrade refused");
	ASSERT_CONTAINS(err, "--version failed");
	ASSERT_CONTAINS(err, "keeps serving");
	ASSERT_EQ(bt_baton("status", "web"), 0);	/* the old supervisor still answers */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	rs_stop(&s);
	unlink(copy);
}

TEST_TIMEOUT(resilience_supervisor_killed_during_a_reload_is_rolled_back_losing_nothing, 60)
{
	struct bt_sv s;
	struct bt_load l;
	long long gen;

	/* generations after the first wait 1.5 s before READY=1: the kill
	 * lands in the readiness wait */
	rs_start(&s, (const char *[]){ "--ready=notify", NULL });
	gen = bt_active_pid(out);
	bt_sv_set_mode(&s, "--ready-delay 1500");
	l = bt_load_start(8080, "conn", "4", 16);
	{
		char *argv[] = { (char *)bt_baton_bin(), "reload", "web", NULL };
		pid_t r = fork();

		if (r == 0) {
			int null = open("/dev/null", O_WRONLY);

			dup2(null, 1);
			dup2(null, 2);
			execv(argv[0], argv);
			_exit(127);
		}
		usleep(500000);
		bt_sv_kill(&s);
		waitpid(r, NULL, 0);
	}
	bt_sv_set_mode(&s, "");
	rs_restart(&s);
	bt_quote_file(s.log);
	bt_status_wait("web", !strstr(out, "\"state\":\"draining\""), 50, 100000);
	ASSERT_EQ(bt_active_pid(out), gen);	/* rolled back: the old one serves */
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), 1);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	bt_assert_load_ok(bt_load_finish(&l, 30));
	rs_stop(&s);
}

/* Connections attempted while the only generation is frozen and its
 * replacement cannot start: none may be refused (they wait in a queue). */
static int refused_of(int n)
{
	int refused = 0;

	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno == ECONNREFUSED)
			refused++;
		bt_close_rst(fd);
		usleep(20000);
	}
	return refused;
}

TEST_ALONE(resilience_frozen_generation_whose_replacement_fails_keeps_its_listener, 60)
{
	struct bt_sv s;
	long long gen;
	int i;
	bool recovered = false;

	rs_start(&s, (const char *[]){ "--ready=notify", "--ready-timeout=700ms", NULL });
	gen = bt_active_pid(out);
	bt_sv_set_mode(&s, "--never-ready");
	ASSERT_EQ(kill((pid_t)gen, SIGSTOP), 0);
	usleep(1500000);	/* the watch fenced it; its replacement timed out */
	ASSERT_EQ(refused_of(40), 0);
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	bt_log("%s", out);
	ASSERT_CONTAINS(out, "\"service\":\"degraded\"");
	ASSERT_CONTAINS(out, "replacement failed");
	ASSERT_EQ(bt_active_pid(out), gen);
	ASSERT_EQ(bt_baton("status", "web"), 0);
	ASSERT_CONTAINS(out, "degraded: ");
	/* once a replacement can start, it recovers by itself */
	bt_sv_set_mode(&s, "");
	for (i = 0; i < 120 && !recovered; i++) {
		usleep(100000);
		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		recovered = strstr(out, "\"service\":\"ok\"") && bt_active_pid(out) != gen;
	}
	bt_quote_file(s.log);
	ASSERT_TRUE(recovered);
	ASSERT_EQ(refused_of(20), 0);
	kill((pid_t)gen, SIGCONT);
	rs_stop(&s);
}

static void private_runtime_dir(void)
{
	static char dir[64];

	bt_runtime_tmpdir(dir, sizeof(dir), "test");
}

TEST_TIMEOUT(resilience_a_group_with_foreign_members_is_refused_naming_them, 60)
{
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "web", "--listen", "tcp://127.0.0.1:8080", "--",
			 "/bin/sleep", "30", NULL };
	char *allow[] = { (char *)bt_baton_bin(), "run", "--name", "web", "--allow-foreign", "--ready=delay:50ms",
			  "--listen", "tcp://127.0.0.1:8080", "--", "/bin/sleep", "30", NULL };
	char mine[64], log[128];
	int fd, one = 1;
	pid_t pid;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	bt_need_netns();
	bt_need_private_bpffs();
	private_runtime_dir();
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(listen(fd, 16), 0);
	ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 20), 1);
	snprintf(mine, sizeof(mine), "pid %d (", (int)getpid());
	ASSERT_CONTAINS(err, "already has a listener that baton did not create");
	ASSERT_CONTAINS(err, mine);
	ASSERT_CONTAINS(err, "--allow-foreign");
	snprintf(log, sizeof(log), "%s/log", getenv("BATON_RUNTIME_DIR"));
	pid = bt_supervisor_start(allow, "web", log, NULL, NULL, 10, out, sizeof(out));
	bt_supervisor_stop(&pid, 10);
	bt_quote_file(log);
	ASSERT_EQ(bt_run((char *[]){ "/bin/grep", "-q", "running beside it (--allow-foreign)", log, NULL }, out,
			 sizeof(out), err, sizeof(err), 5), 0);
	close(fd);
}

TEST_TIMEOUT(resilience_a_reused_pid_is_never_adopted, 60)
{
	char path[128], log[128];
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "web", "--ready=delay:50ms", "--listen",
			 "tcp://127.0.0.1:8080", "--", "/bin/sleep", "30", NULL };
	pid_t pid;
	FILE *f;

	bt_need_netns();
	bt_need_private_bpffs();
	private_runtime_dir();
	snprintf(path, sizeof(path), "%s/web.state", getenv("BATON_RUNTIME_DIR"));
	snprintf(log, sizeof(log), "%s/log", getenv("BATON_RUNTIME_DIR"));
	f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	/* this test's own pid, alive, but with another start time: what a
	 * reused pid looks like to the next supervisor */
	fprintf(f, "baton-state 1\nname web\npid 1\nmode ebpf\npins -\nnext_id 4\ncounts 0 0 0\nactive 4\nreload 0\n"
		   "listener 0 8080 tcp://127.0.0.1:8080\ngen 4 %d 1 active 0 0\nmember 4 0 0 12345\nend\n",
		(int)getpid());
	fclose(f);
	pid = bt_supervisor_start(argv, "web", log, NULL, NULL, 10, out, sizeof(out));
	ASSERT_CONTAINS(out, "{\"id\":1,");	/* a fresh start: nothing adopted */
	ASSERT_CONTAINS(out, "\"resumed\":false");
	bt_supervisor_stop(&pid, 10);
	ASSERT_EQ(bt_run((char *[]){ "/bin/grep", "-q", "none of its generations runs any more", log, NULL }, out,
			 sizeof(out), err, sizeof(err), 5), 0);
}

/* A raw request on the control socket; returns what came back. */
static void raw(const char *dir, const char *req, char *reply, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/web.sock", dir);
	bt_unix_request(path, req, strlen(req), reply, len);
}

TEST_ALONE(supervisor_idle_control_clients_time_out_and_one_too_many_hears_busy, 60)
{
	struct sv_idle { int fd[64]; } idle;
	struct bt_sv s;
	char reply[512];
	int i;

	rs_start(&s, NULL);
	for (i = 0; i < 64; i++) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/web.sock", s.dir);
		idle.fd[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_EQ(connect(idle.fd[i], (struct sockaddr *)&sun, sizeof(sun)), 0);
	}
	usleep(100000);
	ASSERT_NE(bt_baton("status", "web"), 0);
	ASSERT_CONTAINS(err, "busy: 64 control connections are open");
	usleep(2500000);	/* the idle ones are closed after 2 s */
	ASSERT_EQ(bt_baton("status", "web"), 0);
	for (i = 0; i < 64; i++)
		close(idle.fd[i]);
	/* a status request with a stray argument is an error, as the manual says */
	raw(s.dir, "baton/1 status json extra\n", reply, sizeof(reply));
	ASSERT_CONTAINS(reply, "error unexpected argument \"extra\" for status");
	rs_stop(&s);
}

TEST_ALONE(supervisor_full_generation_table_names_the_limit, 90)
{
	struct bt_sv s;
	int i;

	/* WINCH is ignored by refserver: every old generation stays draining
	 * for the whole 5 s grace */
	rs_start(&s, (const char *[]){ "--stop-signal", "WINCH", NULL });
	for (i = 0; i < 15; i++)
		if (bt_baton("reload", "web"))
			FAIL("reload %d: %s", i + 1, err);
	ASSERT_NE(bt_baton("reload", "web"), 0);
	ASSERT_CONTAINS(err, "all 16 generation slots are taken by generations that still run (15 draining)");
	ASSERT_CONTAINS(err, "--grace");
	ASSERT_CONTAINS(err, "gen 16 still serves");
	rs_stop(&s);
}

TEST_TIMEOUT(supervisor_run_rejects_the_same_address_twice_naming_both, 30)
{
	char *argv[] = { (char *)bt_baton_bin(), "run", "--listen", "tcp://127.0.0.1:8080?name=a", "--listen",
			 "tcp://127.0.0.1:8080?name=b", "--", "/bin/true", NULL };

	ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_CONTAINS(err, "--listen tcp://127.0.0.1:8080?backlog=4096&name=a and --listen "
			     "tcp://127.0.0.1:8080?backlog=4096&name=b name the same address");
}

TEST_TIMEOUT(supervisor_silent_command_is_said_to_be_assumed_ready, 30)
{
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "web", "--listen", "tcp://127.0.0.1:8080", "--",
			 "/bin/sleep", "30", NULL };
	char log[128];
	pid_t pid;

	bt_need_netns();
	private_runtime_dir();
	snprintf(log, sizeof(log), "%s/log", getenv("BATON_RUNTIME_DIR"));
	pid = bt_supervisor_start(argv, "web", log, NULL, NULL, 10, out, sizeof(out));
	bt_supervisor_stop(&pid, 10);
	bt_quote_file(log);
	ASSERT_EQ(bt_run((char *[]){ "/bin/grep", "-q", "assumed ready: no sd_notify message within 2s", log, NULL },
			 out, sizeof(out), err, sizeof(err), 5), 0);
	ASSERT_NE(bt_run((char *[]){ "/bin/grep", "-q", "ready after", log, NULL }, out, sizeof(out), err,
			 sizeof(err), 5), 0);
}

TEST_TIMEOUT(supervisor_classic_bpf_reload_does_not_promise_to_move_the_queue, 30)
{
	struct bt_sv s;

	setenv("BATON_STEERING", "cbpf", 1);
	rs_start(&s, NULL);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_CONTAINS(out, "classic BPF mode cannot move its queue");
	ASSERT_TRUE(strstr(out, "its queue moves to") == NULL);
	rs_stop(&s);
	unsetenv("BATON_STEERING");
}

/* A server that, like Apache, refuses to start while its pid file exists:
 * with a pid file per generation (BATON_GENERATION) every reload starts,
 * and each generation knows its supervisor's name. */
TEST_TIMEOUT(supervisor_each_generation_knows_its_name_and_number, 60)
{
	const char *ref = getenv("BATON_REFSERVER");
	char cmd[768], log[128], path[160];
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "web", "--listen", "tcp://127.0.0.1:8080", "--",
			 "/bin/sh", "-c", cmd, NULL };
	pid_t pid;
	int i;

	if (!ref || access(ref, X_OK))
		SKIP("BATON_REFSERVER does not name the reference server (run through make check)");
	bt_need_netns();
	private_runtime_dir();
	snprintf(log, sizeof(log), "%s/log", getenv("BATON_RUNTIME_DIR"));
	snprintf(cmd, sizeof(cmd),
		 "f=%s/$BATON_NAME-$BATON_GENERATION.pid; [ -e \"$f\" ] && { echo \"$f exists\" >&2; exit 1; }; "
		 "echo $$ > \"$f\"; exec %s -q --tag \"$BATON_NAME-$BATON_GENERATION\"",
		 getenv("BATON_RUNTIME_DIR"), ref);
	pid = bt_supervisor_start(argv, "web", log, NULL, NULL, 10, out, sizeof(out));
	for (i = 0; i < 3; i++)
		if (bt_baton("reload", "web"))
			FAIL("reload %d: %s", i + 1, err);
	for (i = 1; i <= 4; i++) {
		snprintf(path, sizeof(path), "%s/web-%d.pid", getenv("BATON_RUNTIME_DIR"), i);
		ASSERT_EQ(access(path, F_OK), 0);
	}
	/* the serving generation says who it is: refserver answers with its tag */
	ASSERT_EQ(bt_run((char *[]){ (char *)getenv("BATON_LOADGEN"), "--port", "8080", "--max-requests", "1", "--concurrency", "1", "--json",
				     NULL }, out, sizeof(out), err, sizeof(err), 10), 0);
	ASSERT_CONTAINS(out, "\"web-4\"");
	bt_supervisor_stop(&pid, 10);
}

static void low_nofile(void *ctx)
{
	struct rlimit rl = { 200, 200 };

	(void)ctx;
	setrlimit(RLIMIT_NOFILE, &rl);
}

TEST_TIMEOUT(supervisor_too_many_listeners_for_the_file_limit_is_said_at_start, 30)
{
	char *argv[32];
	char specs[8][40];
	int n = 0, i;

	bt_need_netns();
	private_runtime_dir();
	bt_args(argv, n, bt_baton_bin(), "run");
	for (i = 0; i < 8; i++) {
		snprintf(specs[i], sizeof(specs[i]), "tcp://127.0.0.1:%d", 8080 + i);
		bt_args(argv, n, "--listen", specs[i]);
	}
	bt_args(argv, n, "--", "/bin/sleep", "5");
	ASSERT_EQ(bt_run_with(argv, low_nofile, NULL, out, sizeof(out), err, sizeof(err), 10), 1);
	ASSERT_CONTAINS(err, "8 listeners need about 288 open files by the first reload");
	ASSERT_CONTAINS(err, "the hard limit is 200");
}
