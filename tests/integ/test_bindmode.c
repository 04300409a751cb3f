/* SPDX-License-Identifier: BSD-2-Clause */
/* --bind-mode cgroup: servers that bind their own socket with raw system
 * calls (a static Go server built here, Debian's caddy) and one that binds
 * through libc (nginx) reloaded 20 times under load without a failed
 * request and without LD_PRELOAD; the errors (no cgroup2, no delegation, a
 * uid mismatch, an address no --listen names, a second bind) and the
 * cgroups removed afterwards. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"
#include "cgroup.h"

#define PORT 8080

static char out[65536], err[16384];

/* The supervisor under test, and where its cgroups must not be left. */
struct sv {
	struct bt_sv sup;
	char cgroup[PATH_MAX];   /* baton-web's */
};

static void need_cgroup_mode(void)
{
	char own[PATH_MAX];

	bt_baton_bin();
	if (geteuid() != 0)
		SKIP("cgroup bind mode needs root here (cgroup, eBPF, network namespace)");
	if (baton_cgroup_self(own, sizeof(own)))
		SKIP("no cgroup2 hierarchy is mounted");
	bt_need_netns();
	bt_need_ebpf();
}

static void sv_dir(struct sv *s)
{
	char own[PATH_MAX];

	memset(s, 0, sizeof(*s));
	bt_sv_init_server(&s->sup, "bindmode");
	if (!baton_cgroup_self(own, sizeof(own))) {
		char state[200];

		snprintf(state, sizeof(state), "%s/run/web.state", s->sup.dir);
		snprintf(s->cgroup, sizeof(s->cgroup), "%.4000s/baton-web-%08x", own, baton_hash32(state));
	}
}

static void sv_start(struct sv *s, char *const argv[])
{
	s->sup.timeout_s = 20;
	bt_sv_run_web(&s->sup, "tcp://127.0.0.1:8080?backlog=1024", argv, NULL, out, sizeof(out));
}

/* Stops the supervisor; its cgroups must be gone with it. */
static void sv_stop(struct sv *s)
{
	struct stat st;

	bt_supervisor_stop(&s->sup.pid, 30);
	if (s->cgroup[0] && !stat(s->cgroup, &st))
		FAIL("cgroup %s is left after baton stopped", s->cgroup);
}

/* No LD_PRELOAD (nor the shim's map) in the server's environment. */
static void assert_no_preload(pid_t pid)
{
	char path[64], env[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	n = read(fd, env, sizeof(env) - 1);
	close(fd);
	ASSERT_TRUE(n > 0);
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(env + i) + 1)
		if (!strncmp(env + i, "LD_PRELOAD=", 11) || !strncmp(env + i, "BATON_PRELOAD=", 14))
			FAIL("pid %d has %s in its environment", (int)pid, env + i);
}

static void sv_stop_ctx(void *ctx)
{
	sv_stop(ctx);
}

/* The active generation's pid; the status document stays in out. */
static pid_t active_pid(void)
{
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	return (pid_t)bt_active_pid(out);
}

/* Every generation runs in cgroup mode without the shim. */
static void cgroup_mode_without_shim(void *ctx)
{
	(void)ctx;
	assert_no_preload(active_pid());
	ASSERT_CONTAINS(out, "\"bind_mode\":\"cgroup\"");
}

/* 20 reloads under connection-per-request load; not one request may fail,
 * and every generation runs in cgroup mode without the shim. */
static void reload_20_under_load(struct sv *s, const char *logname)
{
	bt_reload_under_load(&(struct bt_reload_load){
		.port = PORT, .reloads = 20, .dir = s->sup.dir, .logname = logname,
		.says = { "bind mode cgroup", "adopted into slot", "serves" },
		.check = cgroup_mode_without_shim, .stop = sv_stop_ctx, .ctx = s });
}

/* Builds tests/fixtures/goserver static (CGO_ENABLED=0) into DIR, with the
 * Go caches in DIR too, but a GOCACHE the caller set (CI's, shared by both
 * test runs and bench/reload.sh: a cold one compiles Go's standard library,
 * 12 s of CPU); the path of the binary. */
static const char *build_go(const char *dir)
{
	static char bin[128];
	char src[PATH_MAX], env[3][PATH_MAX + 16];
	const char *srcdir = getenv("BATON_SRCDIR");
	const char *go = bt_need_server("go", "golang-go");
	char *argv[] = { (char *)go, "build", "-o", bin, src, NULL };
	int r;

	if (!srcdir)
		SKIP("BATON_SRCDIR does not name the source tree (run through make check)");
	snprintf(src, sizeof(src), "%s/tests/fixtures/goserver/main.go", srcdir);
	snprintf(bin, sizeof(bin), "%s/goserver", dir);
	snprintf(env[0], sizeof(env[0]), "GOCACHE=%s/gocache", dir);
	snprintf(env[1], sizeof(env[1]), "GOPATH=%s/gopath", dir);
	snprintf(env[2], sizeof(env[2]), "HOME=%s", dir);
	for (int i = getenv("GOCACHE") ? 1 : 0; i < 3; i++)
		putenv(env[i]);
	setenv("CGO_ENABLED", "0", 1);
	setenv("GOFLAGS", "", 1);
	setenv("GO111MODULE", "off", 1);
	r = bt_run(argv, out, sizeof(out), err, sizeof(err), 300);
	if (r)
		FAIL("go build failed (%d): %s%s", r, out, err);
	return bin;
}

static void rm_rf(const char *dir)
{
	char *argv[] = { "/bin/rm", "-rf", (char *)dir, NULL };

	bt_run(argv, out, sizeof(out), err, sizeof(err), 60);
}

TEST_TIMEOUT(bindmode_static_go_server_20_reloads_under_load_lose_nothing, 300)
{
	char exe[PATH_MAX];
	const char *bin;
	struct sv s;

	need_cgroup_mode();
	sv_dir(&s);
	bin = build_go(s.sup.dir);
	/* auto picks cgroup for it: static, and Go */
	ASSERT_EQ(baton_exe_bypasses_libc(bin, exe, sizeof(exe)), 1);
	/* --ready listen: in cgroup mode, the adoption is the listening */
	char *argv[] = { "--ready", "listen", "--grace", "20s", "--", (char *)bin, "127.0.0.1:8080", NULL };

	sv_start(&s, argv);
	reload_20_under_load(&s, NULL);
	rm_rf(s.sup.dir);
}

TEST_TIMEOUT(bindmode_caddy_sets_reuseport_itself_20_reloads_under_load_lose_nothing, 300)
{
	const char *caddy = bt_need_server("caddy", "caddy");
	char conf[512], confpath[128], exe[PATH_MAX];
	struct sv s;

	need_cgroup_mode();
	sv_dir(&s);
	/* Debian's caddy is dynamically linked, but Go: auto picks cgroup */
	ASSERT_EQ(baton_exe_bypasses_libc(caddy, exe, sizeof(exe)), 1);
	/* no admin endpoint: each generation would bind the same 2019 */
	snprintf(conf, sizeof(conf),
		 "{\n\tadmin off\n\tauto_https off\n\tgrace_period 10s\n}\n"
		 "http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\trespond \"ok\"\n}\n", PORT);
	bt_write_file(s.sup.dir, "Caddyfile", conf);
	snprintf(confpath, sizeof(confpath), "%s/Caddyfile", s.sup.dir);
	setenv("XDG_DATA_HOME", s.sup.dir, 1);
	setenv("XDG_CONFIG_HOME", s.sup.dir, 1);
	setenv("HOME", s.sup.dir, 1);
	/* SIGTERM: caddy's graceful stop (closes its listener, finishes requests) */
	char *argv[] = { "--grace", "15s", "--", (char *)caddy, "run", "--config", confpath, "--adapter", "caddyfile",
			 NULL };

	sv_start(&s, argv);
	reload_20_under_load(&s, NULL);
	rm_rf(s.sup.dir);
}

TEST_TIMEOUT(bindmode_nginx_in_cgroup_mode_20_reloads_under_load_lose_nothing, 300)
{
	const char *nginx = bt_need_server("nginx", "nginx");
	char confpath[128];
	struct sv s;

	need_cgroup_mode();
	sv_dir(&s);
	bt_nginx_conf(s.sup.dir, &(struct bt_nginx_opts){ .port = PORT }, confpath, sizeof(confpath));
	/* nginx binds through libc: cgroup mode is not Go-specific */
	char *argv[] = { "--bind-mode", "cgroup", "--stop-signal", "QUIT", "--grace", "10s", "--", (char *)nginx,
			 "-c", confpath, "-p", s.sup.dir, NULL };

	sv_start(&s, argv);
	reload_20_under_load(&s, "error.log");
	rm_rf(s.sup.dir);
}

/* ---- errors ------------------------------------------------------------------ */

/* A python server for the error cases: binds and listens on 127.0.0.1:8080,
 * then does what the flag files in DIR say. */
static const char py_server[] =
	"import os, socket, signal, sys, time\n"
	"d = sys.argv[1]\n"
	"signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
	"if os.path.exists(d + '/as-nobody'):\n"
	"    os.setgid(65534); os.setuid(65534)\n"
	"if os.path.exists(d + '/slow'): time.sleep(1)\n"
	"keep = []\n"
	"def listen(port):\n"
	"    s = socket.socket()\n"
	"    s.bind(('127.0.0.1', port)); s.listen(64); keep.append(s)\n"
	"try:\n"
	"    listen(8080)\n"
	"    if os.path.exists(d + '/twice'): listen(8080)\n"
	"    if os.path.exists(d + '/other'): listen(8081)\n"
	"except OSError as e:\n"
	"    print('python:', e, flush=True); sys.exit(1)\n"
	"while True:\n"
	"    c, _ = keep[0].accept(); c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\nok\\n'); c.close()\n";

static void py_start_ready(struct sv *s, const char *ready)
{
	const char *py = bt_need_server("python3", "python3");
	char path[128];

	need_cgroup_mode();
	sv_dir(s);
	bt_write_file(s->sup.dir, "server.py", py_server);
	snprintf(path, sizeof(path), "%s/server.py", s->sup.dir);
	/* python binds through libc: auto would pick the shim */
	char *argv[] = { "--bind-mode", "cgroup", "--ready", (char *)ready, "--ready-timeout", "5s", "--",
			 (char *)py, path, s->sup.dir, NULL };

	sv_start(s, argv);
}

static void py_start(struct sv *s)
{
	py_start_ready(s, "listen");
}

static void flag(const struct sv *s, const char *name)
{
	bt_write_file(s->sup.dir, name, "");
}

/* The supervisor's log once it holds WANT (within 5 s). */
static const char *log_with(const struct sv *s, const char *want)
{
	static char text[65536];
	char path[128];

	snprintf(path, sizeof(path), "%s/baton.log", s->sup.dir);
	for (int i = 0; i < 250; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n;

		ASSERT_TRUE(fd >= 0);
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		text[n > 0 ? n : 0] = '\0';
		if (strstr(text, want))
			break;
		usleep(20000);
	}
	return text;
}

TEST_TIMEOUT(bindmode_uid_mismatch_fails_the_reload_naming_both_uids, 60)
{
	struct sv s;

	py_start(&s);
	flag(&s, "as-nobody");
	ASSERT_NE(bt_baton("reload", "web"), 0);
	ASSERT_CONTAINS(out, "as uid 65534, but the sockets of its group belong to uid 0");
	ASSERT_CONTAINS(out, "Run every generation as the same user");
	ASSERT_CONTAINS(out, "rolling back: gen 2 exited");
	sv_stop(&s);
	rm_rf(s.sup.dir);
}

TEST_TIMEOUT(bindmode_address_no_listen_names_is_left_alone_and_said, 60)
{
	struct sv s;

	py_start(&s);
	flag(&s, "other");
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	/* said in the log (the reload may be done by then) */
	ASSERT_CONTAINS(log_with(&s, "8081, which"), "binds tcp://127.0.0.1:8081, which no --listen names: left alone");
	ASSERT_CONTAINS(log_with(&s, "8081, which"), "add --listen to steer it");
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 1);
	sv_stop(&s);
	rm_rf(s.sup.dir);
}

/* A connection to the --listen port is answered (by whichever server). */
static void assert_it_answers(void)
{
	int fd = bt_connect(PORT);

	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(read(fd, out, 16) > 0);
	close(fd);
}

TEST_TIMEOUT(bindmode_second_bind_is_said_and_left_out_of_the_table, 60)
{
	struct sv s;

	py_start(&s);
	flag(&s, "twice");
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_CONTAINS(log_with(&s, "a second time"), "tcp://127.0.0.1:8080 a second time while its first socket "
						       "there listens");
	ASSERT_CONTAINS(log_with(&s, "a second time"), "Make the server listen once on it");
	/* the first socket is the one steered: it answers */
	assert_it_answers();
	sv_stop(&s);
	rm_rf(s.sup.dir);
}

/* In the child of baton run: no cgroup2 hierarchy in its mount namespace. */
static void without_cgroup2(void *ctx)
{
	char mnt[PATH_MAX];

	(void)ctx;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		_exit(90);
	for (int i = 0; i < 4 && !baton_cgroup_mount(mnt, sizeof(mnt)); i++)
		if (umount2(mnt, MNT_DETACH))
			_exit(91);
}

static void under_systemd(void *ctx)
{
	(void)ctx;
	setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
}

static void refused(void (*child)(void *ctx), const char *want1, const char *want2)
{
	const char *py = bt_need_server("python3", "python3");
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "web", "--listen", "tcp://127.0.0.1:8080",
			 "--bind-mode", "cgroup", "--", (char *)py, "-c", "import time; time.sleep(30)", NULL };
	struct sv s;

	need_cgroup_mode();
	sv_dir(&s);
	bt_need_private_bpffs();
	ASSERT_EQ(bt_run_with(argv, child, NULL, out, sizeof(out), err, sizeof(err), 30), 1);
	ASSERT_CONTAINS(err, want1);
	ASSERT_CONTAINS(err, want2);
	ASSERT_CONTAINS(err, "--bind-mode shim");
	rm_rf(s.sup.dir);
}

TEST_TIMEOUT(bindmode_without_cgroup2_refuses_to_start_and_says_so, 60)
{
	refused(without_cgroup2, "no cgroup2 hierarchy is mounted", "mount -t cgroup2");
}

TEST_TIMEOUT(bindmode_under_systemd_without_delegation_refuses_to_start, 60)
{
	char own[PATH_MAX];

	if (!baton_cgroup_self(own, sizeof(own)) && baton_cgroup_delegated(own))
		SKIP("this test's cgroup %s is delegated already", own);
	refused(under_systemd, "which is not delegated to it", "Delegate=yes");
}

TEST(bindmode_option_errors_name_the_value)
{
	char *bad[] = { (char *)bt_baton_bin(), "run", "--listen", "tcp://127.0.0.1:1", "--bind-mode", "ebpf",
			"--", "true", NULL };
	char *both[] = { (char *)bt_baton_bin(), "run", "--listen", "tcp://127.0.0.1:1", "--bind-mode", "cgroup",
			 "--no-preload", "--", "true", NULL };

	ASSERT_EQ(bt_run(bad, out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_CONTAINS(err, "bad --bind-mode \"ebpf\": want shim, cgroup or auto");
	ASSERT_EQ(bt_run(both, out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_CONTAINS(err, "--no-preload");
}

TEST(bindmode_auto_looks_at_the_executable)
{
	char exe[PATH_MAX];

	/* libc callers get the shim; a script's interpreter is what binds */
	ASSERT_EQ(baton_exe_bypasses_libc("sh", exe, sizeof(exe)), 0);
	ASSERT_EQ(baton_exe_bypasses_libc("/proc/self/exe", exe, sizeof(exe)), 0);
	ASSERT_EQ(baton_exe_bypasses_libc("no-such-command-here", exe, sizeof(exe)), -ENOENT);
}

/* A crashed generation's socket stays in the group (baton holds it), so a
 * connection made while nothing runs waits in its queue; the restarted
 * generation binds its own, and at its adoption the queue moves there. */
TEST_ALONE(bindmode_crash_restart_hands_the_queue_to_the_new_socket, 60)
{
	struct sv s;
	char buf[64] = "";
	pid_t pid;
	int fd;
	ssize_t n;

	py_start(&s);
	pid = active_pid();
	kill(pid, SIGKILL);
	usleep(20000);
	fd = bt_connect(PORT);	/* queued in the dead generation's socket */
	ASSERT_TRUE(fd >= 0);
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		log_with(&s, "never appears"), bt_log("%s", log_with(&s, ""));
	ASSERT_GT(n, 0);
	ASSERT_CONTAINS(buf, "200 OK");
	ASSERT_NE(active_pid(), pid);
	ASSERT_CONTAINS(out, "\"bind_mode\":\"cgroup\"");
	ASSERT_CONTAINS(log_with(&s, "restarted in place"), "restarted in place of gen 1");
	sv_stop(&s);
	rm_rf(s.sup.dir);
}

/* A supervisor that dies leaves its generations in their cgroups; the next
 * one adopts them, reloads in cgroup mode, and removes every cgroup when it
 * stops. */
TEST_TIMEOUT(bindmode_resumed_supervisor_keeps_cgroup_mode_and_cleans_up, 60)
{
	struct sv s;
	char gen1[PATH_MAX + 16];
	struct stat st;
	pid_t pid;
	int fd;

	py_start(&s);
	pid = active_pid();
	snprintf(gen1, sizeof(gen1), "%s/gen-1", s.cgroup);
	ASSERT_EQ(stat(gen1, &st), 0);
	bt_sv_kill(&s.sup);
	fd = bt_connect(PORT);	/* the generation serves on without its supervisor */
	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(read(fd, out, 16) > 0);
	close(fd);
	char *argv[] = { "--bind-mode", "cgroup", "--ready", "listen", "--ready-timeout", "5s", "--",
			 (char *)bt_need_server("python3", "python3"), NULL, s.sup.dir, NULL };
	char path[128];

	snprintf(path, sizeof(path), "%s/server.py", s.sup.dir);
	argv[8] = path;
	sv_start(&s, argv);
	ASSERT_EQ(active_pid(), pid);
	ASSERT_CONTAINS(out, "\"resumed\":true");
	ASSERT_CONTAINS(out, "\"bind_mode\":\"cgroup\"");
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_CONTAINS(out, "bind mode cgroup");
	ASSERT_CONTAINS(out, "adopted into slot");
	sv_stop(&s);	/* gen-1, gen-2 and baton-web gone */
	rm_rf(s.sup.dir);
}

/* With --ready delay (or notify) a generation that is ready before it
 * listens is not switched to until baton has adopted its socket. */
TEST_TIMEOUT(bindmode_readiness_waits_for_the_adoption, 60)
{
	struct sv s;

	py_start_ready(&s, "delay:50ms");
	flag(&s, "slow");	/* gen 2 listens 1 s after it starts */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_CONTAINS(out, "is ready but does not listen on listener 0 yet");
	ASSERT_CONTAINS(out, "adopted into slot");
	ASSERT_CONTAINS(out, "serves");
	ASSERT_TRUE(strstr(out, "does not listen") < strstr(out, "switched"));
	assert_it_answers();
	sv_stop(&s);
	rm_rf(s.sup.dir);
}

/* A generation that never listens is rolled back at --ready-timeout, even
 * with a readiness (delay) that it reached long before. */
TEST_TIMEOUT(bindmode_generation_that_never_listens_is_rolled_back, 60)
{
	struct sv s;

	py_start_ready(&s, "delay:50ms");
	bt_write_file(s.sup.dir, "server.py", "import time\ntime.sleep(60)\n");
	ASSERT_NE(bt_baton("reload", "web"), 0);
	ASSERT_CONTAINS(out, "gen 2 did not listen on listener 0 within 5000 ms");
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), 1);
	sv_stop(&s);
	rm_rf(s.sup.dir);
}

/* generation GEN's cgroup.procs, from /proc/GEN/cgroup */
static void procs_of(pid_t gen, char *buf, size_t len)
{
	char path[64], line[PATH_MAX], mnt[PATH_MAX];
	FILE *f;

	ASSERT_EQ(baton_cgroup_mount(mnt, sizeof(mnt)), 0);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)gen);
	f = fopen(path, "re");
	ASSERT_TRUE(f != NULL);
	buf[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "%.2000s%.2000s/cgroup.procs", mnt, line + 3);
		}
	fclose(f);
	ASSERT_TRUE(buf[0] != '\0');
}

static bool answered_200(void)
{
	char buf[128] = "";
	struct timeval tv = { .tv_sec = 3 };
	int fd = bt_connect(PORT);
	ssize_t n;

	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, "200 OK") != NULL;
}

/* A process of the test's own that, once told, binds and listens on the
 * --listen address and says whether it could ('y' or 'n'). */
struct foreign {
	int go[2], said[2];
	pid_t pid;
};

static void foreign_fork(struct foreign *f)
{
	ASSERT_EQ(pipe2(f->go, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(f->said, O_CLOEXEC), 0);
	f->pid = fork();
	if (f->pid == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		char go, res;
		int l;

		if (read(f->go[0], &go, 1) != 1)
			_exit(1);
		l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		res = l >= 0 && !bind(l, (struct sockaddr *)&a, sizeof(a)) && !listen(l, 128) ? 'y' : 'n';
		if (write(f->said[1], &res, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	ASSERT_GT(f->pid, 0);
}

/* Puts it into the cgroup whose cgroup.procs is PROCS, then tells it to
 * listen: what it said. */
static char foreign_join(struct foreign *f, const char *procs)
{
	char num[32], res = 0;
	int fd = open(procs, O_WRONLY | O_CLOEXEC);

	ASSERT_TRUE(fd >= 0);
	snprintf(num, sizeof(num), "%d", (int)f->pid);
	ASSERT_EQ(write(fd, num, strlen(num)), (ssize_t)strlen(num));
	close(fd);
	ASSERT_EQ(write(f->go[1], "g", 1), 1);
	ASSERT_EQ(read(f->said[0], &res, 1), 1);
	return res;
}

/* Kills it and reaps it. */
static void foreign_end(struct foreign *f)
{
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
}

/* 20 connections, each answered by the server (WHEN: at which point), or
 * the log is shown, F ended and the test failed. */
static void foreign_assert_server_answers(struct sv *s, struct foreign *f, const char *when)
{
	for (int i = 0; i < 20; i++)
		if (!answered_200()) {
			bt_sv_quote(&s->sup, "baton.log");
			foreign_end(f);
			FAIL("connection %d%s did not reach the server", i + 1, when);
		}
}

/* A process that is not the generation's nor its descendant, placed in the
 * generation's cgroup (by whoever may write its cgroup.procs), binds and
 * listens on the --listen address: the bind hook lets it join the
 * reuseport group, but baton never adopts its socket into the generation's
 * slot in place of the server's, and says so; every connection still
 * reaches the server. */
TEST_TIMEOUT(bindmode_foreign_process_in_the_generations_cgroup_is_not_adopted, 60)
{
	struct sv s;
	struct foreign f;
	char procs[PATH_MAX], res;
	pid_t gen;

	py_start(&s);
	gen = active_pid();
	procs_of(gen, procs, sizeof(procs));
	foreign_fork(&f);
	res = foreign_join(&f, procs);
	ASSERT_EQ(res, 'y');	/* the hook made its bind SO_REUSEPORT: it listens in the group */
	ASSERT_CONTAINS(log_with(&s, "is not gen 1's process"), "its socket is not adopted");
	usleep(300000);	/* the lost-event poll (every 250 ms) must not take it either */
	foreign_assert_server_answers(&s, &f, "");
	ASSERT_EQ(active_pid(), gen);
	foreign_end(&f);
	sv_stop(&s);
	rm_rf(s.sup.dir);
}

static pid_t pidns_init;

static void forward_term(int sig)
{
	(void)sig;
	if (pidns_init > 0)
		kill(pidns_init, SIGTERM);
}

/* In baton run's child: baton becomes pid 1 of a new pid namespace with
 * its own /proc, as in a container; this process waits for it, passes
 * SIGTERM on and exits with its status. */
static void in_pid_namespace(void *ctx)
{
	int status;

	(void)ctx;
	if (unshare(CLONE_NEWPID | CLONE_NEWNS))
		_exit(120);
	pidns_init = fork();
	if (pidns_init < 0)
		_exit(121);
	if (pidns_init == 0) {
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
			_exit(122);
		return;	/* on to exec baton */
	}
	signal(SIGTERM, forward_term);
	while (waitpid(pidns_init, &status, 0) < 0 && errno == EINTR)
		;
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* Inside a pid namespace the bind hook's pid (the initial namespace's)
 * names another process or none: baton finds the socket among the
 * generation's own processes instead, so generation 1 and a reload are
 * adopted as anywhere else. */
TEST_TIMEOUT(bindmode_in_a_pid_namespace_adopts_the_generations_own_socket, 60)
{
	const char *py = bt_need_server("python3", "python3");
	char path[128], *args[24], logpath[128];
	struct sv s;
	int n = 0;

	need_cgroup_mode();
	sv_dir(&s);
	bt_write_file(s.sup.dir, "server.py", py_server);
	snprintf(path, sizeof(path), "%s/server.py", s.sup.dir);
	snprintf(logpath, sizeof(logpath), "%s/baton.log", s.sup.dir);
	bt_args(args, n, bt_baton_bin(), "run", "--name", "web", "--listen", "tcp://127.0.0.1:8080?backlog=1024",
		"--bind-mode", "cgroup", "--ready", "listen", "--ready-timeout", "5s", "--", py, path, s.sup.dir);
	s.sup.pid = bt_supervisor_start(args, "web", logpath, in_pid_namespace, NULL, 20, out, sizeof(out));
	ASSERT_CONTAINS(out, "\"bind_mode\":\"cgroup\"");
	/* baton is the namespace's init, and gen 1 has the namespace's own
	 * small pid (a few after baton's threads), not the host's */
	ASSERT_CONTAINS(out, "\"name\":\"web\",\"pid\":1,");
	ASSERT_GT(bt_active_pid(out), 1);
	ASSERT_TRUE(bt_active_pid(out) < 32);
	ASSERT_TRUE(answered_200());
	if (bt_baton("reload", "web") != 0) {
		bt_sv_quote(&s.sup, "baton.log");
		FAIL("reload in a pid namespace failed: %s%s", out, err);
	}
	ASSERT_CONTAINS(out, "adopted into slot");
	ASSERT_TRUE(answered_200());
	sv_stop(&s);
	rm_rf(s.sup.dir);
}

/* The harmful order: a foreign process in a new generation's cgroup listens
 * before the server does (the server sleeps 1 s first). Adopting it would
 * make the server's own socket the "second" one, left out, and every
 * connection after the switch would wait in a queue nobody accepts from.
 * The reload must serve with the server's socket. */
TEST_TIMEOUT(bindmode_foreign_process_listening_first_in_a_new_generation_is_not_adopted, 60)
{
	struct sv s;
	struct foreign f;
	char procs[PATH_MAX], res;
	int status = -1;
	pid_t reloader, newpid = 0;

	py_start(&s);
	flag(&s, "slow");
	foreign_fork(&f);
	reloader = fork();
	if (reloader == 0) {
		int dn = open("/dev/null", O_WRONLY | O_CLOEXEC);

		dup2(dn, 1);
		dup2(dn, 2);
		execl(bt_baton_bin(), bt_baton_bin(), "reload", "web", (char *)NULL);
		_exit(127);
	}
	ASSERT_GT(reloader, 0);
	/* the new generation, still asleep before its bind */
	for (int i = 0; i < 100 && !newpid; i++) {
		const char *g;

		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		g = strstr(out, "\"state\":\"starting\"");
		if (g) {
			while (g > out && strncmp(g, "\"pid\":", 6))
				g--;
			newpid = (pid_t)atoi(g + 6);
		} else {
			usleep(10000);
		}
	}
	ASSERT_GT(newpid, 0);
	procs_of(newpid, procs, sizeof(procs));
	res = foreign_join(&f, procs);
	ASSERT_EQ(res, 'y');
	ASSERT_EQ(waitpid(reloader, &status, 0), reloader);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		bt_sv_quote(&s.sup, "baton.log");
		foreign_end(&f);
		FAIL("the reload failed");
	}
	ASSERT_EQ(active_pid(), newpid);
	foreign_assert_server_answers(&s, &f, " after the reload");
	ASSERT_CONTAINS(log_with(&s, "is not gen 2's process"), "its socket is not adopted");
	foreign_end(&f);
	sv_stop(&s);
	rm_rf(s.sup.dir);
}
