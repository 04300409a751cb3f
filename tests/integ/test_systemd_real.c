/* SPDX-License-Identifier: BSD-2-Clause */
/* baton under a real systemd manager: `systemd --user` with its own journald
 * in private mount+pid+net namespaces (tests/integ/systemd-ns.sh is their
 * PID 1), driven with systemctl through nsenter, using the shipped
 * examples/systemd units with only their paths changed, under counted load. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define NS_SCRIPT "tests/integ/systemd-ns.sh"
#define UNIT_DIR "examples/systemd"

static char out[65536], err[16384];

/* The manager of this test: the unshare process, the namespaces' PID 1
 * (nsenter's target), its files and its cgroup name. */
static struct {
	pid_t unshare, pid1;
	char nsenter[512], dir[64], conf[96], units[128], cg[64], script[4096];
} M;

static bool require_all(void)
{
	const char *v = getenv("BATON_REQUIRE_SERVERS");

	return v && !strcmp(v, "1");
}

/* Missing software: a skip, or a failure where CI installed everything. */
static void need_prog(const char *path, const char *what, const char *package)
{
	if (!access(path, X_OK))
		return;
	if (require_all())
		FAIL("%s (%s) is not installed (Debian package %s) and BATON_REQUIRE_SERVERS=1", what, path, package);
	SKIP("%s (%s) is not installed (Debian package %s)", what, path, package);
}

/* PROG's full path from $PATH (bt_run does not search it), or NULL. */
static const char *in_path(const char *prog, char *buf, size_t len)
{
	const char *path = getenv("PATH") ? getenv("PATH") : "/usr/sbin:/usr/bin:/sbin:/bin";

	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, len, "%.*s/%s", (int)n, path, prog);
		if (n && !access(buf, X_OK))
			return buf;
		path += n + (path[n] == ':');
	}
	return NULL;
}

/* "run" for nsenter's sake: argv inside the namespaces, with the user
 * manager's runtime and configuration directories. */
static int ns_runv(int timeout_s, const char *const *args)
{
	char pid[16], cfg[160];
	char *argv[48] = { M.nsenter, "-t", pid, "-m", "-p", "-n", "env", "XDG_RUNTIME_DIR=/run/user/0", cfg,
			   "BATON_RUNTIME_DIR=/run/baton" };
	int n = 10;

	snprintf(pid, sizeof(pid), "%d", (int)M.pid1);
	snprintf(cfg, sizeof(cfg), "XDG_CONFIG_HOME=%s", M.conf);
	for (int i = 0; args[i] && n < 47; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	return bt_run(argv, out, sizeof(out), err, sizeof(err), timeout_s);
}

#define NS(...) ns_runv(60, (const char *[]){ __VA_ARGS__, NULL })
#define SCTL(...) ns_runv(60, (const char *[]){ "systemctl", "--user", __VA_ARGS__, NULL })

/* `systemctl --user show -p PROP --value UNIT` as a number. */
static long long prop(const char *unit, const char *name)
{
	char p[64];

	snprintf(p, sizeof(p), "-p%s", name);
	if (SCTL("show", p, "--value", unit))
		FAIL("systemctl show %s %s: %s%s", p, unit, out, err);
	return strtoll(out, NULL, 10);
}

/* `systemctl --user is-active UNIT`: active, inactive, failed, ... */
static const char *state_of(const char *unit)
{
	static char st[64];

	SCTL("is-active", unit);
	snprintf(st, sizeof(st), "%.*s", (int)strcspn(out, "\n"), out);
	return st;
}

/* `systemctl --user show -p Result --value UNIT`: success, resources, ... */
static const char *result_of(const char *unit)
{
	static char res[64];

	if (SCTL("show", "-pResult", "--value", unit))
		FAIL("systemctl show -pResult %s: %s%s", unit, out, err);
	snprintf(res, sizeof(res), "%.*s", (int)strcspn(out, "\n"), out);
	return res;
}

static void journal_tail(void)
{
	NS("journalctl", "--no-pager", "-n", "60", "-o", "cat");
	bt_log("journal (last 60 lines):\n%s", out);
}

/* Everything of the manager goes with the test: PID 1 first (the kernel
 * kills the rest of its pid namespace), then its cgroups and files. */
static void manager_stop(void)
{
	char cmd[9000];
	int status;

	if (M.pid1 > 0)
		kill(M.pid1, SIGKILL);
	if (M.unshare > 0) {
		kill(M.unshare, SIGKILL);
		waitpid(M.unshare, &status, 0);
	}
	M.pid1 = M.unshare = 0;
	if (M.cg[0]) {
		for (int i = 0; i < 50; i++) {	/* its processes take a moment to leave */
			snprintf(cmd, sizeof(cmd), "sh %s cleanup %s; test ! -d /sys/fs/cgroup/unified/%s -a ! -d "
				 "/sys/fs/cgroup/systemd/%s -a ! -d /sys/fs/cgroup/%s", M.script, M.cg, M.cg, M.cg, M.cg);
			if (!system(cmd))
				break;
			usleep(100000);
		}
		M.cg[0] = '\0';
	}
	if (M.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", M.dir);
		if (system(cmd)) { /* a leftover temp directory only */ }
		M.dir[0] = '\0';
	}
}

/* Cgroups left by a test that was killed (its pid is in the name). */
static void stale_cgroups(void)
{
	const char *roots[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup" };

	for (size_t r = 0; r < sizeof(roots) / sizeof(roots[0]); r++) {
		DIR *d = opendir(roots[r]);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char cmd[4400];
			int pid;

			if (sscanf(e->d_name, "baton-sdr-%d", &pid) != 1 || !kill(pid, 0) || errno != ESRCH)
				continue;
			snprintf(cmd, sizeof(cmd), "sh %s cleanup %s", M.script, e->d_name);
			if (system(cmd)) { /* best effort */ }
		}
		if (d)
			closedir(d);
	}
}

/* Copies examples/systemd/SRC into the manager's unit directory, each
 * FROM[i] replaced with TO[i] (paths only). */
static void install_unit(const char *src, const char *const *from, const char *const *to, int n)
{
	char path[512], text[16384], res[20000], *o = res;
	const char *p = text;
	FILE *f;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", UNIT_DIR, src);
	f = fopen(path, "r");
	if (!f)
		FAIL("cannot read %s: %s (run from the source tree, through make check)", path, strerror(errno));
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	while (*p) {
		int i;

		for (i = 0; i < n; i++)
			if (!strncmp(p, from[i], strlen(from[i])))
				break;
		if (i < n) {
			o += snprintf(o, sizeof(res) - (size_t)(o - res), "%s", to[i]);
			p += strlen(from[i]);
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	snprintf(path, sizeof(path), "%s/%s", M.units, src);
	f = fopen(path, "w");
	if (!f || fputs(res, f) < 0 || fclose(f))
		FAIL("cannot write %s", path);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) || chmod(path, mode))
		FAIL("cannot write %s: %s", path, strerror(errno));
}

/* Starts the manager (NGINXCONF: bound over /etc/nginx/nginx.conf in its
 * mount namespace, or NULL) and moves this test into its network namespace,
 * so the load client's 127.0.0.1 is the units'. */
static void manager_start(const char *nginxconf)
{
	char ns[64], log[128];
	int fd, i;

	if (geteuid())
		SKIP("needs root (namespaces, cgroups)");
	need_prog("/lib/systemd/systemd", "systemd", "systemd");
	need_prog("/lib/systemd/systemd-journald", "systemd-journald", "systemd");
	char any[512];

	if (!in_path("unshare", any, sizeof(any)) || !in_path("systemctl", any, sizeof(any)) ||
	    !in_path("nsenter", M.nsenter, sizeof(M.nsenter)))
		SKIP("unshare, nsenter or systemctl is missing (packages util-linux, systemd)");
	if (!realpath(NS_SCRIPT, M.script))
		SKIP("%s not found: run from the source tree, through make check", NS_SCRIPT);
	if (access("/sys/fs/cgroup/unified/cgroup.procs", W_OK) && access("/sys/fs/cgroup/systemd/cgroup.procs", W_OK) &&
	    access("/sys/fs/cgroup/cgroup.procs", W_OK))
		SKIP("no writable cgroup hierarchy under /sys/fs/cgroup (systemd --user needs a cgroup of its own)");
	if (unshare(0))
		SKIP("no namespaces here");
	bt_need_netns();
	stale_cgroups();
	snprintf(M.dir, sizeof(M.dir), "/tmp/baton-sdr-XXXXXX");
	if (!mkdtemp(M.dir))
		FAIL("mkdtemp: %s", strerror(errno));
	snprintf(M.conf, sizeof(M.conf), "%s/conf", M.dir);
	snprintf(M.units, sizeof(M.units), "%s/systemd/user", M.conf);
	{
		char sys[128];

		snprintf(sys, sizeof(sys), "%s/systemd", M.conf);
		if (mkdir(M.conf, 0755) || mkdir(sys, 0755) || mkdir(M.units, 0755))
			FAIL("mkdir %s: %s", M.units, strerror(errno));
	}
	snprintf(M.cg, sizeof(M.cg), "baton-sdr-%d", (int)getpid());
	atexit(manager_stop);
	snprintf(log, sizeof(log), "%s/ns.log", M.dir);
	M.unshare = fork();
	if (M.unshare < 0)
		FAIL("fork: %s", strerror(errno));
	if (M.unshare == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* the namespaces go with the test */
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		execlp("unshare", "unshare", "--mount", "--pid", "--fork", "--mount-proc", "--net", "--propagation",
		       "private", "--kill-child=SIGKILL", "sh", M.script, "run", M.cg, M.conf,
		       nginxconf ? nginxconf : (char *)NULL, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && M.pid1 <= 0; i++) {
		char path[64], buf[64] = "";
		FILE *f;

		usleep(50000);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)M.unshare, (int)M.unshare);
		if ((f = fopen(path, "r"))) {
			if (fgets(buf, sizeof(buf), f))
				M.pid1 = atoi(buf);
			fclose(f);
		}
	}
	if (M.pid1 <= 0) {
		bt_quote_file(log);
		FAIL("unshare started no PID 1 within 5 s");
	}
	for (i = 0; i < 150; i++) {
		if (SCTL("is-system-running") == 127)
			FAIL("cannot run %s: %s", M.nsenter, err);
		if (!strncmp(out, "running", 7) || !strncmp(out, "degraded", 8))
			break;
		usleep(100000);
	}
	if (i == 150) {
		char mlog[160];

		bt_quote_file(log);
		snprintf(mlog, sizeof(mlog), "%s/manager.log", M.conf);
		bt_quote_file(mlog);
		FAIL("systemd --user is not running after 15 s: %s%s", out, err);
	}
	snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)M.pid1);
	fd = open(ns, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		FAIL("cannot enter the manager's network namespace: %s", strerror(errno));
	close(fd);
}

/* ---- the units ------------------------------------------------------------ */

static const char *abs_bin(const char *env, const char *what, char *buf)
{
	const char *v = getenv(env);

	if (!v || !realpath(v, buf))
		SKIP("%s does not name the %s (run through make check)", env, what);
	return buf;
}

/* The refserver units with baton from this build and SERVER (the reference
 * server, or any other command) in place of /usr/local/bin/refserver. */
static void refserver_units(const char *server)
{
	static char baton[4096];
	const char *from[] = { "/usr/local/bin/baton", "/usr/local/bin/refserver" };
	const char *to[] = { abs_bin("BATON_BIN", "baton binary", baton), server };

	install_unit("baton-refserver.socket", from, to, 2);
	install_unit("baton-refserver.service", from, to, 2);
}

static const char *refserver_path(void)
{
	static char buf[4096];

	return abs_bin("BATON_REFSERVER", "reference server", buf);
}

/* CPython's own asyncio server: accepts until EAGAIN on each readiness,
 * so a listener that turned blocking hangs its whole event loop. */
static const char *asyncio_server(void)
{
	static char path[160];

	need_prog("/usr/bin/python3", "python3", "python3");
	snprintf(path, sizeof(path), "%s/aserver.py", M.dir);
	write_file(path,
		   "#!/usr/bin/python3\n"
		   "import asyncio, os, signal, socket\n"
		   "async def handle(r, w):\n"
		   "    try:\n"
		   "        while (await r.readline()) not in (b'\\r\\n', b'\\n', b''):\n"
		   "            pass\n"
		   "        w.write(b'HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n')\n"
		   "        await w.drain()\n"
		   "    except Exception:\n"
		   "        pass\n"
		   "    w.close()\n"
		   "async def main():\n"
		   "    srv = await asyncio.start_server(handle, sock=socket.socket(fileno=3), backlog=4096)\n"
		   "    n = os.environ.get('NOTIFY_SOCKET')\n"
		   "    if n:\n"
		   "        u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
		   "        u.sendto(b'READY=1', '\\0' + n[1:] if n[0] == '@' else n)\n"
		   "    stop = asyncio.Event()\n"
		   "    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)\n"
		   "    await stop.wait()\n"
		   "    srv.close()\n"
		   "    await asyncio.sleep(0.5)  # what it accepted gets its answer\n"
		   "asyncio.run(main())\n",
		   0755);
	return path;
}

/* ---- load ------------------------------------------------------------------ */

static void load_start(struct bt_load *l, uint16_t port)
{
	*l = bt_load_start(port, "conn", "600", 8);
}

/* The same client against [::1]:PORT. */
static struct bt_load load6_start(uint16_t port)
{
	const char *gen = getenv("BATON_LOADGEN");
	char portstr[16];
	struct bt_load l;
	int p[2];

	if (!gen || access(gen, X_OK))
		SKIP("BATON_LOADGEN does not name the load client (run through make check)");
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (pipe2(p, O_CLOEXEC))
		FAIL("pipe: %s", strerror(errno));
	l.pid = fork();
	if (l.pid == 0) {
		dup2(p[1], 1);
		execl(gen, gen, "--host", "::1", "--port", portstr, "--mode", "conn", "--concurrency", "4", "--duration",
		      "600", "--timeout-ms", "3000", "--json", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	l.fd = p[0];
	usleep(200000);
	return l;
}

/* Stops the load and logs its counts as "CASE: N requests, N failed ...". */
static const char *load_end(struct bt_load *l, const char *what)
{
	const char *r = bt_load_stop(l, 20);

	bt_log("%s: %lld requests, %lld failed (refused %lld, reset %lld, timeout %lld)", what,
	       bt_json_get(r, "requests"), bt_json_get(r, "failed"), bt_json_get(r, "refused"),
	       bt_json_get(r, "reset"), bt_json_get(r, "timeout"));
	return r;
}

static void expect_no_failure(const char *report, long long min_answered)
{
	if (bt_json_get(report, "failed") != 0 || bt_json_get(report, "answered") < min_answered)
		journal_tail();
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	ASSERT_GE(bt_json_get(report, "answered"), min_answered);
}

static void wait_active(const char *unit, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 50) {
		if (!strcmp(state_of(unit), "active"))
			return;
		usleep(50000);
	}
	journal_tail();
	FAIL("%s is %s, not active, after %d ms", unit, state_of(unit), timeout_ms);
}

/* MainPID once it differs from OLD (a restarted service), within 10 s. */
static long long new_main_pid(const char *unit, long long old)
{
	for (int i = 0; i < 200; i++) {
		long long pid = prop(unit, "MainPID");

		if (pid > 0 && pid != old && !strcmp(state_of(unit), "active"))
			return pid;
		usleep(50000);
	}
	journal_tail();
	FAIL("%s has no new main pid after 10 s", unit);
}

/* kill -9 of a pid of the manager's pid namespace (MainPID is one). */
static void kill9_in_ns(long long pid)
{
	char p[32];

	snprintf(p, sizeof(p), "%lld", pid);
	if (NS("kill", "-KILL", p))
		FAIL("kill -9 %s in the manager's namespace: %s%s", p, out, err);
}

static void usleep_ms(int ms)
{
	usleep((useconds_t)ms * 1000);
}

/* ---- the cases ------------------------------------------------------------- */

/* Socket activation: the first connection starts baton; none is lost. */
TEST_ALONE(systemd_real_socket_activation_and_reloads_lose_nothing, 60)
{
	struct bt_load l;
	const char *r;

	manager_start(NULL);
	refserver_units(refserver_path());
	ASSERT_EQ(SCTL("start", "baton-refserver.socket"), 0);
	ASSERT_STREQ(state_of("baton-refserver.service"), "inactive");
	load_start(&l, 8080);
	usleep_ms(1000);
	r = load_end(&l, "socket activation");
	expect_no_failure(r, 100);
	ASSERT_STREQ(state_of("baton-refserver.service"), "active");

	load_start(&l, 8080);
	for (int i = 0; i < 5; i++) {
		if (SCTL("reload", "baton-refserver.service")) {
			journal_tail();
			FAIL("systemctl reload %d failed: %s%s", i + 1, out, err);
		}
		usleep_ms(150);
	}
	usleep_ms(300);
	r = load_end(&l, "5 reloads");
	expect_no_failure(r, 200);
	ASSERT_STREQ(state_of("baton-refserver.service"), "active");
	ASSERT_STREQ(state_of("baton-refserver.socket"), "active");
}

/* A reload that fails (the next generation cannot start): systemctl reload
 * says so, the unit stays active and the old generation serves on. */
TEST_ALONE(systemd_real_failed_reload_fails_systemctl_reload_and_unit_stays_active, 60)
{
	char link[160];
	struct bt_load l;
	const char *r;
	long long pid;

	manager_start(NULL);
	snprintf(link, sizeof(link), "%s/server", M.dir);
	if (symlink(refserver_path(), link))
		FAIL("symlink: %s", strerror(errno));
	refserver_units(link);
	ASSERT_EQ(SCTL("start", "baton-refserver.service"), 0);
	pid = prop("baton-refserver.service", "MainPID");
	load_start(&l, 8080);
	unlink(link);
	if (symlink("/bin/false", link))
		FAIL("symlink: %s", strerror(errno));
	ASSERT_NE(SCTL("reload", "baton-refserver.service"), 0);
	bt_log("systemctl reload: %s%s", out, err);
	usleep_ms(500);
	r = load_end(&l, "failed reload");
	expect_no_failure(r, 100);
	ASSERT_STREQ(state_of("baton-refserver.service"), "active");
	ASSERT_EQ(prop("baton-refserver.service", "MainPID"), pid);
}

/* `baton upgrade` re-executes the supervisor in place: systemd's main pid
 * stays, nothing is lost. */
TEST_ALONE(systemd_real_baton_upgrade_keeps_main_pid, 60)
{
	struct bt_load l;
	const char *r;
	long long pid;

	manager_start(NULL);
	refserver_units(refserver_path());
	ASSERT_EQ(SCTL("start", "baton-refserver.service"), 0);
	pid = prop("baton-refserver.service", "MainPID");
	ASSERT_GT(pid, 0);
	load_start(&l, 8080);
	if (NS(bt_baton_bin(), "upgrade", "refserver")) {
		journal_tail();
		FAIL("baton upgrade: %s%s", out, err);
	}
	usleep_ms(500);
	r = load_end(&l, "baton upgrade");
	expect_no_failure(r, 100);
	ASSERT_EQ(prop("baton-refserver.service", "MainPID"), pid);
	ASSERT_STREQ(state_of("baton-refserver.service"), "active");
	/* the upgraded baton still knows which socket is systemd's: a reload
	 * retires gen 1 without shutting it down, a restart refuses nothing */
	load_start(&l, 8080);
	ASSERT_EQ(SCTL("reload", "baton-refserver.service"), 0);
	usleep_ms(300);
	ASSERT_EQ(SCTL("restart", "baton-refserver.service"), 0);
	usleep_ms(300);
	r = load_end(&l, "after the upgrade: reload, restart");
	expect_no_failure(r, 100);
	ASSERT_STREQ(state_of("baton-refserver.socket"), "active");
	ASSERT_STREQ(result_of("baton-refserver.socket"), "success");
}

/* kill -9 of baton under Restart=on-failure with CPython's asyncio server:
 * systemd restarts baton, which resumes from the fd store; the server must
 * keep answering with no reload afterwards (systemd hands stored fds back
 * blocking unless baton restores their flags), and the socket unit must
 * not fail (it sees POLLHUP if its socket was ever shut down). */
TEST_ALONE(systemd_real_kill_9_of_baton_asyncio_server_keeps_answering, 90)
{
	struct bt_load l;
	const char *r;
	long long pid, fresh;

	manager_start(NULL);
	refserver_units(asyncio_server());
	ASSERT_EQ(SCTL("start", "baton-refserver.service"), 0);
	load_start(&l, 8080);
	usleep_ms(300);
	/* no reload first: gen 1's member is the .socket unit's socket, the one
	 * systemd passes again with NonBlocking=no (stored fds keep theirs) */
	pid = prop("baton-refserver.service", "MainPID");
	ASSERT_GT(pid, 0);
	kill9_in_ns(pid);
	fresh = new_main_pid("baton-refserver.service", pid);
	usleep_ms(500);
	r = load_end(&l, "asyncio: kill -9 of baton, Restart=on-failure");
	expect_no_failure(r, 100);
	/* no reload: the generation that served before the crash serves on */
	load_start(&l, 8080);
	/* 2 s, twice the watch's longest default (1 s); loadgen's stop waits
	 * for what is in flight, so a hang that starts in it is a timeout */
	usleep_ms(2000);
	r = load_end(&l, "asyncio: 2 s after the restart, no reload");
	ASSERT_EQ(bt_json_get(r, "timeout"), 0);
	expect_no_failure(r, 500);
	ASSERT_EQ(prop("baton-refserver.service", "MainPID"), fresh);
	ASSERT_STREQ(state_of("baton-refserver.socket"), "active");
	ASSERT_STREQ(result_of("baton-refserver.socket"), "success");
	NS("journalctl", "--no-pager", "-o", "cat");
	ASSERT_CONTAINS(out, "file status flags 04002 restored");
}

static void nginx_units(void)
{
	static char baton[4096];
	const char *from[] = { "/usr/local/bin/baton" };
	const char *to[] = { abs_bin("BATON_BIN", "baton binary", baton) };

	install_unit("nginx-baton.socket", from, to, 1);
	install_unit("nginx-baton.service", from, to, 1);
}

/* A configuration of the test's own in place of /etc/nginx/nginx.conf
 * (inside the manager's mount namespace only): Debian's default site's
 * listen lines, logs and pid under the namespace's /run. */
static void nginx_manager(void)
{
	char conf[160];

	need_prog("/usr/sbin/nginx", "nginx", "nginx");
	if (access("/etc/nginx/nginx.conf", F_OK))
		SKIP("/etc/nginx/nginx.conf is missing: the test binds its own configuration over it");
	snprintf(conf, sizeof(conf), "/tmp/baton-sdr-nginx-%d.conf", (int)getpid());
	write_file(conf,
		   "pid /run/nginx.pid;\n"
		   "error_log /run/nginx-error.log;\n"
		   "worker_processes 2;\n"
		   "events { worker_connections 1024; }\n"
		   "http {\n"
		   "    access_log off;\n"
		   "    server {\n"
		   "        listen 80 default_server;\n"
		   "        listen [::]:80 default_server;\n"
		   "        location / { return 200 \"ok\\n\"; }\n"
		   "    }\n"
		   "}\n",
		   0644);
	manager_start(conf);
	unlink(conf);	/* the bind mount holds it */
	nginx_units();
}

/* The same kill -9 with nginx (one accept per event: it survived a blocking
 * listener by luck); then a stop must leave the socket unit listening. */
TEST_ALONE(systemd_real_kill_9_of_baton_nginx_keeps_answering, 90)
{
	struct bt_load l, l6;
	const char *r;
	long long pid;

	nginx_manager();
	if (SCTL("start", "nginx-baton.service")) {
		journal_tail();
		FAIL("systemctl start nginx-baton: %s%s", out, err);
	}
	/* both of Debian's default listen lines (80 and [::]:80) across reloads */
	l6 = load6_start(80);
	load_start(&l, 80);
	for (int i = 0; i < 2; i++) {
		usleep_ms(300);
		if (SCTL("reload", "nginx-baton.service")) {
			journal_tail();
			FAIL("systemctl reload nginx-baton: %s%s", out, err);
		}
	}
	usleep_ms(300);
	r = load_end(&l6, "nginx: [::1]:80 across 2 reloads");
	expect_no_failure(r, 50);
	r = load_end(&l, "nginx: 127.0.0.1:80 across 2 reloads");
	expect_no_failure(r, 100);
	NS("journalctl", "--no-pager", "-o", "cat");
	ASSERT_TRUE(!strstr(out, "Address already in use"));
	NS("cat", "/run/nginx-error.log");	/* where nginx says "bind() to [::]:80 failed (98...)" */
	ASSERT_TRUE(!strstr(out, "Address already in use"));

	load_start(&l, 80);
	usleep_ms(300);
	pid = prop("nginx-baton.service", "MainPID");
	ASSERT_GT(pid, 0);
	kill9_in_ns(pid);
	new_main_pid("nginx-baton.service", pid);
	usleep_ms(500);
	r = load_end(&l, "nginx: kill -9 of baton, Restart=on-failure");
	expect_no_failure(r, 100);
	load_start(&l, 80);
	/* 2 s, twice the watch's longest default (1 s); loadgen's stop waits
	 * for what is in flight, so a hang that starts in it is a timeout */
	usleep_ms(2000);
	r = load_end(&l, "nginx: 2 s after the restart, no reload");
	ASSERT_EQ(bt_json_get(r, "timeout"), 0);
	expect_no_failure(r, 500);
	ASSERT_STREQ(state_of("nginx-baton.socket"), "active");
	ASSERT_EQ(SCTL("stop", "nginx-baton.service"), 0);
	ASSERT_STREQ(state_of("nginx-baton.socket"), "active");
	ASSERT_STREQ(result_of("nginx-baton.socket"), "success");
}

/* systemctl restart: stop, then start, under load. Measured first with the
 * same socket unit and the server alone (the figure baton must match), then
 * with baton. */
TEST_ALONE(systemd_real_systemctl_restart_refuses_nothing, 90)
{
	char plain[4400];
	struct bt_load l;
	const char *r;
	long long failed_plain;

	manager_start(NULL);
	refserver_units(refserver_path());
	/* the server alone behind a copy of the same socket unit */
	snprintf(plain, sizeof(plain),
		 "[Unit]\nRequires=plain.socket\nAfter=plain.socket\n[Service]\nExecStart=%s\n", refserver_path());
	{
		char p1[200], p2[200], text[8192];
		FILE *f;
		size_t n;

		snprintf(p1, sizeof(p1), "%s/baton-refserver.socket", M.units);
		snprintf(p2, sizeof(p2), "%s/plain.socket", M.units);
		f = fopen(p1, "r");
		ASSERT_TRUE(f != NULL);
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		write_file(p2, text, 0644);
		snprintf(p2, sizeof(p2), "%s/plain.service", M.units);
		write_file(p2, plain, 0644);
	}
	ASSERT_EQ(SCTL("daemon-reload"), 0);
	ASSERT_EQ(SCTL("start", "plain.service"), 0);
	load_start(&l, 8080);
	for (int i = 0; i < 3; i++) {
		usleep_ms(300);
		ASSERT_EQ(SCTL("restart", "plain.service"), 0);
	}
	usleep_ms(300);
	r = load_end(&l, "plain socket unit, server alone: 3 x systemctl restart");
	failed_plain = bt_json_get(r, "failed");
	ASSERT_EQ(SCTL("stop", "plain.service", "plain.socket"), 0);

	ASSERT_EQ(SCTL("start", "baton-refserver.service"), 0);
	load_start(&l, 8080);
	for (int i = 0; i < 3; i++) {
		usleep_ms(300);
		if (i == 1)	/* a reload between: systemd's socket is no generation's member */
			ASSERT_EQ(SCTL("reload", "baton-refserver.service"), 0);
		ASSERT_EQ(SCTL("restart", "baton-refserver.service"), 0);
	}
	usleep_ms(300);
	r = load_end(&l, "baton: 3 x systemctl restart");
	bt_log("plain socket unit beside it: %lld failed", failed_plain);
	ASSERT_EQ(bt_json_get(r, "refused"), 0);
	ASSERT_EQ(bt_json_get(r, "reset"), 0);
	expect_no_failure(r, 200);
	ASSERT_STREQ(state_of("baton-refserver.socket"), "active");
}

/* systemctl stop after a reload: the socket unit keeps listening (not
 * failed); a connection meanwhile waits in its queue and activates the
 * service again; stopping both leaves both inactive. */
TEST_ALONE(systemd_real_systemctl_stop_leaves_the_socket_unit_listening, 60)
{
	struct bt_load l;
	const char *r;

	manager_start(NULL);
	refserver_units(refserver_path());
	ASSERT_EQ(SCTL("start", "baton-refserver.service"), 0);
	load_start(&l, 8080);
	usleep_ms(300);
	ASSERT_EQ(SCTL("reload", "baton-refserver.service"), 0);
	usleep_ms(300);
	ASSERT_EQ(SCTL("stop", "baton-refserver.service"), 0);
	ASSERT_TRUE(strcmp(state_of("baton-refserver.socket"), "failed") != 0);
	wait_active("baton-refserver.service", 5000);	/* the load activates it again */
	usleep_ms(500);
	r = load_end(&l, "systemctl stop under load (the socket activates it again)");
	expect_no_failure(r, 100);
	ASSERT_EQ(SCTL("stop", "baton-refserver.service", "baton-refserver.socket"), 0);
	ASSERT_STREQ(state_of("baton-refserver.service"), "inactive");
	ASSERT_STREQ(state_of("baton-refserver.socket"), "inactive");
	/* a socket that polled POLLHUP ends with result 'resources' */
	ASSERT_STREQ(result_of("baton-refserver.socket"), "success");
}

/* The library's side, without a manager: a member marked foreign (the
 * .socket unit's socket) is steered away by a fence but keeps listening,
 * and removing it closes only the group's copy; a member baton made is
 * still shut down, so fencing a frozen generation works as before. */
TEST(systemd_real_foreign_member_is_fenced_by_steering_never_shut_down)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log);
	struct baton_group *g;
	int fds[2], acc, sa, sb;
	socklen_t al = sizeof(acc);
	uint16_t port;

	bt_need_netns();
	bt_need_ebpf();
	port = bt_listeners(fds, 2, false);
	g = bt_group_new(&o);
	sa = ASSERT_OK(baton_group_add(g, fds[0], 1));
	sb = ASSERT_OK(baton_group_add(g, fds[1], 0));
	ASSERT_TRUE(sa == 0 && sb == 1);	/* the weights below are by slot */
	ASSERT_OK(baton_group_set_foreign(g, sa, true));
	ASSERT_EQ(baton_group_flags(g, sa), (int)BATON_SLOT_FOREIGN);
	ASSERT_EQ(bt_which_takes(port, fds, 2), 0);
	ASSERT_OK(baton_group_set_weights(g, (const uint32_t[]){ 0, 1 }, 2));
	ASSERT_OK(baton_group_fence(g, sa));
	ASSERT_EQ(getsockopt(fds[0], SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
	ASSERT_EQ(acc, 1);	/* still listening: its owner sees no hang-up */
	ASSERT_EQ(bt_which_takes(port, fds, 2), 1);	/* but steered away */
	ASSERT_OK(baton_group_remove(g, sa));
	ASSERT_EQ(getsockopt(fds[0], SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
	ASSERT_EQ(acc, 1);
	/* baton's own member: fencing still shuts it down */
	ASSERT_OK(baton_group_fence(g, sb));
	ASSERT_EQ(getsockopt(fds[1], SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
	ASSERT_EQ(acc, 0);
	baton_group_free(g);
	close(fds[0]);
	close(fds[1]);
}
