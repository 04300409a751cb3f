/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton run --takeover PID`: servers started by hand (nginx with and without
 * reuseport, python's http.server) brought under baton under load, then
 * reloaded, without one failed request; and the errors, each naming what it
 * found, with the server left untouched when the takeover cannot happen. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define PORT 8080

static char out[65536], err[16384];

static void tmpdir(char *dir, size_t len)
{
	bt_sv_tmpdir(dir, len, "tk");
}

/* Starts ARGV by hand (not through baton) and waits until PORT answers. */
static pid_t by_hand(char *const argv[], uint16_t port)
{
	pid_t pid = fork();

	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		setpgid(0, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && !connect(fd, (struct sockaddr *)&sin, sizeof(sin));

		if (fd >= 0)
			close(fd);
		if (ok)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			FAIL("%s exited at start", argv[0]);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	FAIL("%s did not listen on port %u within 5 s", argv[0], port);
}

/* The counting client, new connection per request, until stopped. */
static void load_start(struct bt_load *l, uint16_t port)
{
	*l = bt_load_start(port, "conn", "600", 16);
}

static const char *load_finish(struct bt_load *l)
{
	const char *report = bt_load_stop(l, 20);

	bt_log("load: %s", report);
	return report;
}

/* Waits until generation ID of NAME is active (the takeover's switch). */
static void wait_active(const char *name, int id, const char *log)
{
	char want[64];

	snprintf(want, sizeof(want), "{\"id\":%d,\"pid\":", id);
	for (int i = 0; i < 500; i++) {
		if (bt_baton("status", name, "--json") == 0) {
			const char *p = strstr(out, want);

			if (p && !strncmp(strchr(p + strlen(want), ',') ?: "", ",\"state\":\"active\"", 17))
				return;
		}
		usleep(20000);
	}
	bt_quote_file(log);
	FAIL("gen %d of %s never became active: %s", id, name, out);
}

/* Takes SERVER (started by hand, serving PORT under load) over with
 * `baton run --takeover SERVER OPTS -- CMD`, reloads it RELOADS times and
 * stops it: not one request may fail. Returns the status text seen after
 * the takeover. */
static void takeover_under_load(const char *dir, pid_t server, char *const opts_cmd[], int reloads, const char *mode)
{
	char *argv[48], log[128], pidstr[16], status_text[8192];
	struct bt_load l;
	const char *report;
	int n = 0, st;
	pid_t pid;

	snprintf(pidstr, sizeof(pidstr), "%d", (int)server);
	snprintf(log, sizeof(log), "%s/baton.log", dir);
	/* the health watch is not under test */
	bt_args(argv, n, bt_baton_bin(), "run", "--name", "tk", "--takeover", pidstr, "--listen", "tcp://127.0.0.1:8080",
		"--grace", "10s", "--hang-threshold", "2s");
	for (int i = 0; opts_cmd[i] && n < 47; i++)
		argv[n++] = opts_cmd[i];
	argv[n] = NULL;
	load_start(&l, PORT);
	pid = bt_supervisor_start(argv, "tk", log, NULL, NULL, 15, out, sizeof(out));
	wait_active("tk", 1, log);
	/* generation 0, the server started by hand, is told to stop and goes */
	for (int i = 0; i < 500 && waitpid(server, &st, WNOHANG) != server; i++)
		usleep(20000);
	ASSERT_EQ(kill(server, 0), -1);
	ASSERT_EQ(bt_baton("status", "tk"), 0);
	snprintf(status_text, sizeof(status_text), "%.8000s", out);
	bt_log("after the takeover:\n%s", status_text);
	ASSERT_CONTAINS(status_text, mode);
	ASSERT_CONTAINS(status_text, "0 reloads done, 0 failed");
	bt_reloads("tk", reloads, (const char *[]){ "serves", NULL }, &l, (const char *[]){ log, NULL });
	usleep(200000);
	report = load_finish(&l);
	ASSERT_EQ(bt_baton("status", "tk", "--json"), 0);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), reloads);
	bt_supervisor_stop(&pid, 20);
	if (bt_json_get(report, "failed"))
		bt_quote_file(log);
	ASSERT_GT(bt_json_get(report, "answered"), 300);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
}

static void need_root_servers(void)
{
	bt_baton_bin();
	bt_need_env("BATON_LOADGEN", "load client");
	if (geteuid() != 0)
		SKIP("real servers need root here (network namespace, eBPF, pidfd_getfd of nginx's workers)");
	bt_need_netns();
	bt_need_ebpf();
	/* bt_supervisor_start gives baton a private bpffs; the server by hand
	 * needs none, and takes no pins */
}

static void nginx_case(bool reuseport, const char *mode)
{
	const char *nginx = bt_need_server("nginx", "nginx");
	char dir[64], confpath[128];
	pid_t server;

	need_root_servers();
	tmpdir(dir, sizeof(dir));
	bt_nginx_conf(dir, &(struct bt_nginx_opts){ .port = PORT, .listen = reuseport ? " reuseport" : NULL }, confpath,
		      sizeof(confpath));
	char *by_hand_argv[] = { (char *)nginx, "-c", confpath, "-p", dir, NULL };
	/* the same configuration under baton: the shim hands it baton's socket */
	char *opts_cmd[] = { "--stop-signal", "QUIT", "--", (char *)nginx, "-c", confpath, "-p", dir, NULL };

	server = by_hand(by_hand_argv, PORT);
	takeover_under_load(dir, server, opts_cmd, 5, mode);
}

TEST_TIMEOUT(takeover_nginx_with_reuseport_under_load_then_5_reloads_lose_nothing, 120)
{
	nginx_case(true, "(steered)");
}

TEST_TIMEOUT(takeover_nginx_without_reuseport_shares_its_socket_losing_nothing, 120)
{
	nginx_case(false, "(shared)");
}

TEST_ALONE(takeover_python_http_server_started_by_hand_loses_nothing, 120)
{
	const char *py = bt_need_server("python3", "python3");
	char dir[64];
	pid_t server;

	need_root_servers();
	tmpdir(dir, sizeof(dir));
	bt_write_file(dir, "index.html", "ok\n");
	char *by_hand_argv[] = { (char *)py, "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "8080",
				 NULL };
	/* http.server has no SO_REUSEPORT: --takeover-reuseport gives it one
	 * so its socket can be fenced, and --stop-when-idle sends SIGINT only
	 * once it holds no connection (SIGINT cuts its request threads) */
	char *opts_cmd[] = { "--takeover-reuseport", "--ready", "listen", "--stop-signal", "INT", "--stop-when-idle",
			     "--", (char *)py, "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "8080",
			     NULL };

	server = by_hand(by_hand_argv, PORT);
	takeover_under_load(dir, server, opts_cmd, 5, "(steered)");
}

/* ---- errors ------------------------------------------------------------------- */

/* A process of the test's that holds a listening socket on PORT (with
 * SO_REUSEPORT if asked) and waits; *FD is the test's own copy. */
static pid_t holder(uint16_t *port, bool reuseport, int *fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int one = 1;
	pid_t pid;

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (reuseport)
		setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(*fd, 128) ||
	    getsockname(*fd, (struct sockaddr *)&sin, &sl))
		FAIL("listener: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static int run_takeover(pid_t pid, const char *listen_spec, const char *cmd, void (*child)(void *), void *ctx)
{
	char pidstr[16];
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "tke", "--takeover", pidstr, "--listen",
			 (char *)listen_spec, "--", (char *)cmd, NULL };

	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	return bt_run_with(argv, child, ctx, out, sizeof(out), err, sizeof(err), 20);
}

TEST_TIMEOUT(takeover_errors_name_what_was_found, 60)
{
	char dir[64], spec[64], want[160];
	uint16_t port;
	int fd, status;
	pid_t gone, pid;

	bt_need_netns();
	tmpdir(dir, sizeof(dir));
	/* the pid is gone */
	gone = fork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, &status, 0);
	ASSERT_EQ(run_takeover(gone, "tcp://127.0.0.1:8080", "/bin/true", NULL, NULL), 1);
	snprintf(want, sizeof(want), "--takeover %d: no such process (it is gone)", (int)gone);
	ASSERT_CONTAINS(err, want);
	/* it holds no socket on that address: what it does hold is listed */
	pid = holder(&port, true, &fd);
	snprintf(spec, sizeof(spec), "tcp://127.0.0.1:%u", port == 65535 ? 1 : port + 1);
	ASSERT_EQ(run_takeover(pid, spec, "/bin/true", NULL, NULL), 1);
	snprintf(want, sizeof(want), "--takeover %d (", (int)pid);
	ASSERT_CONTAINS(err, want);
	snprintf(want, sizeof(want), "holds no listening socket on any --listen address; it listens on "
				     "tcp://127.0.0.1:%u", port);
	ASSERT_CONTAINS(err, want);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fd);
	/* bad pids are usage errors */
	ASSERT_EQ(bt_baton("run", "--takeover", "nginx"), 2);
	ASSERT_CONTAINS(err, "bad --takeover \"nginx\"");
}

static void as_nobody(void *ctx)
{
	(void)ctx;
	if (setgid(65534) || setuid(65534))
		_exit(99);
}

TEST_TIMEOUT(takeover_without_ptrace_rights_says_which_privilege, 60)
{
	char dir[64], spec[64];
	uint16_t port;
	int fd;
	pid_t pid;

	if (geteuid() != 0)
		SKIP("needs root to run baton as another user");
	bt_need_netns();
	tmpdir(dir, sizeof(dir));
	chmod(dir, 0777);
	pid = holder(&port, true, &fd);	/* root's */
	snprintf(spec, sizeof(spec), "tcp://127.0.0.1:%u", port);
	bt_share_baton_bin();	/* the checkout may sit where nobody cannot enter */
	ASSERT_EQ(run_takeover(pid, spec, "/bin/true", as_nobody, NULL), 1);
	bt_unshare_baton_bin();
	ASSERT_CONTAINS(err, "permission denied");
	ASSERT_CONTAINS(err, "CAP_SYS_PTRACE, or the same uid as that process (baton runs as uid 65534)");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fd);
}

TEST_TIMEOUT(takeover_that_cannot_start_gen_1_leaves_the_server_untouched, 60)
{
	char dir[64], spec[64], logp[128];
	uint16_t port;
	int fd, acc = 0, c;
	socklen_t al = sizeof(acc);
	pid_t pid;

	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	snprintf(logp, sizeof(logp), "%s/x", dir);
	pid = holder(&port, true, &fd);
	snprintf(spec, sizeof(spec), "tcp://127.0.0.1:%u", port);
	ASSERT_EQ(run_takeover(pid, spec, "/nonexistent/server", NULL, NULL), 1);
	ASSERT_CONTAINS(err, "cannot run \"/nonexistent/server\"");
	snprintf(logp, sizeof(logp), "takeover abandoned: pid %d keeps serving as it did", (int)pid);
	ASSERT_CONTAINS(err, logp);
	/* not signalled, its socket not fenced: it still listens and takes
	 * connections */
	ASSERT_EQ(kill(pid, 0), 0);
	ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
	ASSERT_EQ(acc, 1);
	c = bt_connect(port);
	ASSERT_EQ(bt_accept_which(&fd, 1, 2000, NULL), 0);
	close(c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fd);
}

TEST_TIMEOUT(takeover_listen_that_no_taken_socket_matches_binds_as_usual, 60)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	char dir[64], spec1[64], spec2[64], pidstr[16], log[128];
	uint16_t port;
	int fd;
	pid_t server, pid;

	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	server = holder(&port, true, &fd);
	snprintf(spec1, sizeof(spec1), "tcp://127.0.0.1:%u", port);
	snprintf(spec2, sizeof(spec2), "tcp://127.0.0.1:%u", port == 65535 ? 1 : port + 1);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)server);
	snprintf(log, sizeof(log), "%s/baton.log", dir);
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "tkl", "--takeover", pidstr, "--listen", spec1,
			 "--listen", spec2, "--grace", "2s", "--", (char *)ref, "-q", NULL };

	pid = bt_supervisor_start(argv, "tkl", log, NULL, NULL, 15, out, sizeof(out));
	wait_active("tkl", 1, log);
	bt_supervisor_stop(&pid, 15);
	{
		char text[16384] = "";
		int lf = open(log, O_RDONLY | O_CLOEXEC);
		ssize_t n = lf < 0 ? -1 : read(lf, text, sizeof(text) - 1);
		char want[160];

		text[n > 0 ? n : 0] = '\0';
		if (lf >= 0)
			close(lf);
		bt_log("%s", text);
		snprintf(want, sizeof(want), "no taken socket is on --listen %s?backlog=4096: it binds as usual", spec2);
		ASSERT_CONTAINS(text, want);
		snprintf(want, sizeof(want), "1 socket of pid %d joined the steered group as gen 0", (int)server);
		ASSERT_CONTAINS(text, want);
	}
	/* the holder dies of the stop signal, as generation 0 */
	waitpid(server, NULL, 0);
	close(fd);
}

/* ---- a supervisor that dies during a takeover ------------------------------------------ */

static void read_log(const char *path, char *text, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, text, len - 1);

	text[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	bt_log("%s:\n%s", path, text);
}

TEST_TIMEOUT(takeover_generation_0_resumes_after_the_supervisor_is_killed, 90)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	char dir[64], script[512], cmd[512], mode[128], pidstr[16], log[128], text[16384], want[128];
	struct bt_load l;
	const char *report;
	pid_t server, pid;
	FILE *f;

	bt_need_env("BATON_LOADGEN", "load client");
	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	/* by hand: a parent with two workers, each with its own SO_REUSEPORT
	 * socket (as nginx with reuseport): generation 0 gets two members */
	snprintf(script, sizeof(script),
		 "%1$s -q --listen 127.0.0.1:%2$d --reuseport --tag w1 & a=$!; "
		 "%1$s -q --listen 127.0.0.1:%2$d --reuseport --tag w2 & b=$!; "
		 "trap 'kill $a $b; wait' TERM; wait",
		 ref, PORT);
	char *sh[] = { "/bin/sh", "-c", script, NULL };

	server = by_hand(sh, PORT);
	usleep(100000);	/* both workers listen */
	snprintf(mode, sizeof(mode), "%s/mode", dir);
	f = fopen(mode, "w");
	fputs("--never-ready\n", f);	/* gen 1 stays starting: generation 0 serves */
	fclose(f);
	snprintf(cmd, sizeof(cmd), "exec %s -q --tag gen $(cat %s)", ref, mode);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)server);
	snprintf(log, sizeof(log), "%s/baton.log", dir);
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "tkr", "--takeover", pidstr, "--listen",
			 "tcp://127.0.0.1:8080", "--ready", "notify", "--ready-timeout", "60s", "--grace", "5s", "--",
			 "/bin/sh", "-c", cmd, NULL };

	pid = bt_supervisor_start(argv, "tkr", log, NULL, NULL, 15, out, sizeof(out));
	read_log(log, text, sizeof(text));
	snprintf(want, sizeof(want), "2 sockets of pid %d joined the steered group as gen 0", (int)server);
	ASSERT_CONTAINS(text, want);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	f = fopen(mode, "w");
	fputs("\n", f);
	fclose(f);
	/* the same command again: it resumes, it does not take over again */
	pid = bt_supervisor_start(argv, "tkr", log, NULL, NULL, 15, out, sizeof(out));
	read_log(log, text, sizeof(text));
	snprintf(want, sizeof(want), "adopted gen 0 (pid %d, active)", (int)server);
	ASSERT_CONTAINS(text, want);
	ASSERT_CONTAINS(text, "rolled back gen 1");
	ASSERT_TRUE(!strstr(text, "could not take back"));
	ASSERT_TRUE(!strstr(text, "takeover:"));
	load_start(&l, PORT);
	ASSERT_EQ(bt_baton("reload", "tkr"), 0);
	ASSERT_CONTAINS(out, "gen 2");
	for (int i = 0; i < 500 && waitpid(server, NULL, WNOHANG) != server; i++)
		usleep(20000);
	ASSERT_EQ(kill(server, 0), -1);	/* generation 0 was drained and told to stop */
	ASSERT_EQ(bt_baton("reload", "tkr"), 0);
	usleep(200000);
	report = load_finish(&l);
	bt_supervisor_stop(&pid, 15);
	ASSERT_GT(bt_json_get(report, "answered"), 100);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
}
