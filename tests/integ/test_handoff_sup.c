/* SPDX-License-Identifier: BSD-2-Clause */
/* The keep-alive handoff (?handoff=idle) with the real supervisor and real
 * servers on a bad day: HAProxy's shutdown-then-close under wrk, a
 * supervisor killed right after a switch, and attacks by user nobody
 * (squatting during `baton upgrade` and a restart, reaching a channel,
 * a give after its generation ended, a flood of the channel). */
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define HPORT 8093

static char out[65536], err[16384];

static const char *need(const char *name)
{
	static const char *const dirs[] = { "/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/" };
	static char found[4][256];
	static int next;
	char *p = found[next++ % 4];

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, 256, "%s%s", dirs[i], name);
		if (!access(p, X_OK))
			return p;
	}
	SKIP("%s is not installed (scripts/install-deps installs it)", name);
}

static void need_root_servers(void)
{
	bt_baton_bin();
	if (!getenv("BATON_PRELOAD_LIB") || access(getenv("BATON_PRELOAD_LIB"), R_OK))
		SKIP("BATON_PRELOAD_LIB does not name the preload shim (run through make check)");
	if (geteuid() != 0)
		SKIP("real servers need root here (network namespace, eBPF, nginx's worker user)");
	bt_need_netns();
	bt_need_ebpf();
}

static void hsv_dir(struct bt_sv *s)
{
	bt_sv_init_server(s, "hsup");	/* nginx workers run as another user */
	s->timeout_s = 15;
}

/* `baton run --name web --listen tcp://127.0.0.1:HPORT?backlog=1024&handoff=idle
 * --hang-threshold 2s OPTS -- CMD` (ARGV: OPTS, "--", CMD..., NULL); NULL:
 * the same command again, which resumes after a kill. Each run logs to
 * DIR/batonN.log. */
static void hsv_start(struct bt_sv *s, char *const argv[])
{
	char listen[96];

	snprintf(s->log, sizeof(s->log), "%s/baton%d.log", s->dir, s->runs + 1);
	if (!argv) {
		bt_sv_restart(s, out, sizeof(out));
		return;
	}
	snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d?backlog=1024&handoff=idle", HPORT);
	bt_sv_run_web(s, listen, argv, NULL, out, sizeof(out));
}

static void hsv_log(struct bt_sv *s)
{
	char name[32];

	for (int i = 1; i <= s->runs; i++) {
		snprintf(name, sizeof(name), "baton%d.log", i);
		bt_sv_quote(s, name);
	}
}

static void nginx_conf(struct bt_sv *s, char *confpath, size_t len)
{
	bt_nginx_conf(s->dir, &(struct bt_nginx_opts){ .port = HPORT, .http = " keepalive_requests 100000;\n" },
		      confpath, len);
}

static void nginx_start(struct bt_sv *s)
{
	static char confpath[128];
	const char *nginx = need("nginx");
	char *argv[] = { "--stop-signal", "QUIT", "--grace", "10s", "--", (char *)nginx, "-c", confpath,
			 "-p", s->dir, NULL };

	nginx_conf(s, confpath, sizeof(confpath));
	hsv_start(s, argv);
}

/* Waits up to 2 s for handed_off to pass *SEEN; updates it. */
static bool handed_more(long long *seen)
{
	long long now = 0;

	for (int tries = 0; tries < 100; tries++) {
		now = bt_json_get(bt_status_object("web", "handoff"), "handed_off");
		if (now > *seen)
			break;
		usleep(20000);
	}
	if (now <= *seen)
		return false;
	*seen = now;
	return true;
}

/* ---- HAProxy: shutdown(SHUT_WR) then close() ---------------------------------- */

#define HA_IDLE 8	/* keep-alive connections the test holds idle through every reload */

/* One request on keep-alive connection FD and HAProxy's whole answer (200,
 * body "ok"): NULL, or what went wrong. */
static const char *ha_ask(int fd)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	static char why[160];
	char buf[1024];
	const char *end;
	size_t got = 0;
	ssize_t n;

	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		snprintf(why, sizeof(why), "send: %s", strerror(errno));
		return why;
	}
	while (got < sizeof(buf) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 2000) != 1)
			return "no answer within 2 s";
		n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n <= 0) {
			snprintf(why, sizeof(why), "%s after %zu bytes of the answer", n ? strerror(errno) : "closed by the server",
				 got);
			return why;
		}
		got += (size_t)n;
		buf[got] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) && got >= (size_t)(end + 4 - buf) + 2) {
			if (strncmp(buf, "HTTP/1.1 200 ", 13) || strcmp(end + 4, "ok")) {
				snprintf(why, sizeof(why), "not HAProxy's 200 \"ok\": %.100s", buf);
				return why;
			}
			return NULL;
		}
	}
	return "an answer longer than 1 KB";
}

/* Waits up to 5 s for the generation with PID to have exited (and been reaped). */
static bool ha_gone(pid_t pid)
{
	for (int tries = 0; tries < 250; tries++) {
		if (kill(pid, 0) && errno == ESRCH)
			return true;
		usleep(20000);
	}
	return false;
}

/* HAProxy ends an idle client connection at its soft stop (SIGUSR1) with
 * shutdown(SHUT_WR) and close(): the shim hands it off at the shutdown.
 * wrk -c50 over 10 reloads counts every socket error: none. How many of
 * wrk's connections are idle at a stop is up to the scheduler (0 of 50 at
 * every stop in one CI run), so the test also holds 8 keep-alive
 * connections idle itself: after each reload, once the old HAProxy has
 * exited, every one of them answers a request, so each was handed to the
 * new generation, not closed. */
TEST_ALONE(server_haproxy_keepalive_handoff_under_wrk_10_reloads_no_socket_error, 120)
{
	const char *haproxy = need("haproxy"), *wrk = need("wrk"), *why;
	char cfg[1024], cfgpath[128], url[64], wout[8192] = "";
	struct bt_sv s;
	pid_t w, old;
	int p[2], status, idle[HA_IDLE];
	ssize_t n;
	size_t got = 0;

	need_root_servers();
	hsv_dir(&s);
	snprintf(cfg, sizeof(cfg),
		 "global\n\tmaxconn 4096\ndefaults\n\tmode http\n\ttimeout client 30s\n\ttimeout server 30s\n"
		 "\ttimeout connect 5s\n\ttimeout http-keep-alive 30s\nfrontend f\n\tbind 127.0.0.1:%d\n"
		 "\thttp-request return status 200 content-type text/plain string \"ok\"\n", HPORT);
	bt_write_file(s.dir, "haproxy.cfg", cfg);
	snprintf(cfgpath, sizeof(cfgpath), "%s/haproxy.cfg", s.dir);
	char *argv[] = { "--ready", "delay:300ms", "--stop-signal", "USR1", "--grace", "10s", "--", (char *)haproxy, "-db", "-f", cfgpath,
			 NULL };

	hsv_start(&s, argv);
	for (int k = 0; k < HA_IDLE; k++) {
		idle[k] = bt_connect(HPORT);
		if ((why = ha_ask(idle[k])))
			FAIL("idle connection %d, its first request: %s", k, why);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", HPORT);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	w = fork();
	ASSERT_TRUE(w >= 0);
	if (w == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl(wrk, wrk, "-t2", "-c50", "-d10s", url, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	usleep(1000000);
	for (int i = 0; i < 10; i++) {
		old = bt_status_active_pid("web");
		if (bt_baton("reload", "web") != 0) {
			hsv_log(&s);
			kill(w, SIGTERM);
			FAIL("reload %d failed: %s%s", i + 1, out, err);
		}
		/* the old HAProxy exits once its last connection is closed or handed off */
		if (!ha_gone(old)) {
			hsv_log(&s);
			kill(w, SIGTERM);
			FAIL("the old HAProxy (pid %d) still runs 5 s after reload %d", (int)old, i + 1);
		}
		for (int k = 0; k < HA_IDLE; k++)
			if ((why = ha_ask(idle[k]))) {
				bt_log("status: %s", bt_status_object("web", "handoff"));
				hsv_log(&s);
				kill(w, SIGTERM);
				FAIL("idle keep-alive connection %d after reload %d: %s", k, i + 1, why);
			}
		usleep(300000);
	}
	while (got < sizeof(wout) - 1 && (n = read(p[0], wout + got, sizeof(wout) - 1 - got)) > 0)
		got += (size_t)n;
	wout[got] = '\0';
	close(p[0]);
	waitpid(w, &status, 0);
	bt_log("wrk: %s", wout);
	bt_log("status: %s", bt_status_object("web", "handoff"));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_CONTAINS(wout, "requests in");
	if (strstr(wout, "Socket errors") || strstr(wout, "Non-2xx")) {
		hsv_log(&s);
		FAIL("wrk saw errors through 10 reloads: %s", wout);
	}
	/* the test's own idle connections, at every one of the 10 stops */
	ASSERT_GE(bt_json_get(bt_status_object("web", "handoff"), "handed_off"), 10 * HA_IDLE);
	ASSERT_EQ(bt_json_get(bt_status_object("web", "handoff"), "failed"), 0);
	for (int k = 0; k < HA_IDLE; k++)
		close(idle[k]);
	bt_supervisor_stop(&s.pid, 15);
}

/* ---- a supervisor killed right after the switch ------------------------------- */

/* kill -9 of the supervisor 0-15 ms after `baton reload` returned (the
 * switch is done, the old nginx is closing its idle connections), then the
 * same command again: the connections given meanwhile wait in the
 * generations' channels and the restarted supervisor hands them on. The
 * counting client's 16 keep-alive connections are never closed, the new
 * nginx never blocks (no 1.5 s waits) and the health watch replaces no
 * generation. */
TEST_ALONE(server_nginx_keepalive_handoff_survives_a_supervisor_kill_after_the_switch, 150)
{
	static const int delay_ms[] = { 0, 5, 10, 15 };
	const char *report;
	struct bt_load load;
	struct bt_sv s;

	need_root_servers();
	need("nginx");
	hsv_dir(&s);
	nginx_start(&s);
	load = bt_load_start(HPORT, "keepalive", "600", 16);
	usleep(300000);
	for (size_t i = 0; i < sizeof(delay_ms) / sizeof(delay_ms[0]); i++) {
		if (bt_baton("reload", "web") != 0) {
			hsv_log(&s);
			bt_load_stop(&load, 20);
			FAIL("reload %zu failed: %s%s", i + 1, out, err);
		}
		usleep((useconds_t)delay_ms[i] * 1000);
		bt_sv_kill(&s);
		usleep(50000);	/* the old nginx gives its idle connections to nobody meanwhile */
		hsv_start(&s, NULL);
		usleep(300000);
	}
	report = bt_load_stop(&load, 20);
	bt_log("load: %s", report);
	bt_log("status: %s", bt_status_object("web", "handoff"));
	/* the 4 reloads made generations 2..5; no health reload replaced one */
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_CONTAINS(out, "\"id\":5,");
	ASSERT_TRUE(!strstr(out, "\"id\":6,"));
	bt_supervisor_stop(&s.pid, 15);
	ASSERT_GT(bt_json_get(report, "answered"), 500);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	ASSERT_EQ(bt_json_get(report, "closed_idle"), 0);
	ASSERT_EQ(bt_json_get(report, "connections"), 16);
	/* no accept() waited for a supervisor: 1.5 s stalls would show here */
	ASSERT_LE(bt_json_int(report, "latency_us", "max"), 1000000);
}

/* ---- attacks, as user nobody ------------------------------------------------------ */

static void need_nobody(void)
{
	if (geteuid() != 0)
		SKIP("needs root to act as user nobody");
	if (!getpwnam("nobody"))
		SKIP("no user nobody on this system");
}

static void become_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");

	if (!pw || setgroups(0, NULL) || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
		_exit(99);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Binds abstract NAME (with the leading '@') as a datagram socket: the fd or -1. */
static int squat(const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	int fd;

	if (n >= sizeof(sun.sun_path))
		return -1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memcpy(sun.sun_path, name, n);
	sun.sun_path[0] = '\0';
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The squatter, as nobody, until its stdin closes: binds the handoff name
 * the abstract design used and every abstract name with "baton" in it that
 * /proc/net/unix lists, and counts what reaches it. Reports "NAMES GOT". */
static pid_t squatter_start(const char *runtime_dir, int *report, int *stop)
{
	int r[2], st[2];
	pid_t pid;

	ASSERT_EQ(pipe2(r, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(st, O_CLOEXEC), 0);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		int held[64], nheld = 0, names = 0, got = 0;
		char old[160], line[512], buf[64];

		close(st[1]);
		close(r[0]);
		become_nobody();
		snprintf(old, sizeof(old), "@baton:%s/web.handoff", runtime_dir);
		for (;;) {
			struct pollfd p = { .fd = st[0], .events = POLLIN };
			FILE *f;

			if (poll(&p, 1, 0) == 1)
				break;
			if (nheld < 64 && (held[nheld] = squat(old)) >= 0)
				nheld++;
			f = fopen("/proc/net/unix", "r");
			while (f && fgets(line, sizeof(line), f)) {
				char *path = strrchr(line, ' ');

				if (!path || path[1] != '@' || !strstr(path, "baton"))
					continue;
				path[strcspn(path, "\n")] = '\0';
				if (strstr(path, "handoff") && !strstr(path + 1, old + 1))
					names++;	/* a handoff name that is not ours */
				if (nheld < 64 && (held[nheld] = squat(path + 1)) >= 0)
					nheld++;
			}
			if (f)
				fclose(f);
			for (int i = 0; i < nheld; i++) {
				union {
					struct cmsghdr c;
					char b[CMSG_SPACE(8 * sizeof(int))];
				} u;
				struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
				struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
						     .msg_controllen = sizeof(u.b) };

				while (recvmsg(held[i], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) >= 0) {
					got++;
					mh.msg_controllen = sizeof(u.b);
				}
			}
			usleep(1000);
		}
		dprintf(r[1], "%d %d\n", names, got);
		_exit(0);
	}
	close(r[1]);
	close(st[0]);
	*report = r[0];
	*stop = st[1];
	return pid;
}

static void squatter_stop(pid_t pid, int report, int stop, int *names, int *got)
{
	char buf[64] = "";
	int status;

	close(stop);
	ASSERT_GT(read(report, buf, sizeof(buf) - 1), 0);
	close(report);
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(sscanf(buf, "%d %d", names, got), 2);
}

/* What the abstract socket allowed: user nobody binds the handoff name
 * while `baton upgrade` re-executes the supervisor, or while a killed one
 * is restarted, and receives the clients' keep-alive connections. Now
 * there is no name: the squatter finds none, receives nothing, and the
 * handoff works on across the upgrade and the restart. */
TEST_TIMEOUT(attack_handoff_squatting_during_upgrade_and_restart_gets_no_connection, 150)
{
	const char *report;
	long long handed = 0;
	struct bt_load load;
	struct bt_sv s;
	int rep, stop, names = -1, got = -1;
	pid_t sq;

	need_root_servers();
	need_nobody();
	need("nginx");
	hsv_dir(&s);
	nginx_start(&s);
	sq = squatter_start(s.dir, &rep, &stop);
	load = bt_load_start(HPORT, "keepalive", "600", 16);
	usleep(300000);
	for (int step = 0; step < 5; step++) {
		if (step == 1) {
			ASSERT_EQ(bt_baton("upgrade", "web"), 0);
			handed = 0;	/* the re-executed supervisor counts anew */
			continue;
		}
		if (step == 3) {
			bt_sv_kill(&s);
			usleep(100000);
			hsv_start(&s, NULL);
			handed = 0;
			continue;
		}
		if (bt_baton("reload", "web") != 0) {
			hsv_log(&s);
			bt_load_stop(&load, 20);
			FAIL("reload failed at step %d: %s%s", step, out, err);
		}
		if (!handed_more(&handed)) {
			hsv_log(&s);
			bt_load_stop(&load, 20);
			FAIL("no handoff at step %d: %s", step, bt_status_object("web", "handoff"));
		}
		usleep(200000);
	}
	report = bt_load_stop(&load, 20);
	squatter_stop(sq, rep, stop, &names, &got);
	bt_log("load: %s", report);
	bt_supervisor_stop(&s.pid, 15);
	ASSERT_EQ(names, 0);
	ASSERT_EQ(got, 0);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	ASSERT_EQ(bt_json_get(report, "closed_idle"), 0);
}

/* A GIVE from another uid: nobody cannot get at any end of a channel. Not
 * from the generation (pidfd_getfd needs ptrace rights), not from the
 * supervisor (its /proc fd directory), not through the map (0600). */
TEST_TIMEOUT(attack_handoff_nobody_cannot_reach_a_channel, 60)
{
	char map[160];
	struct bt_sv s;
	pid_t gen, sup, kid;
	int status;

	need_root_servers();
	need_nobody();
	need("nginx");
	hsv_dir(&s);
	nginx_start(&s);
	gen = bt_status_active_pid("web");
	sup = s.pid;
	snprintf(map, sizeof(map), "%s/run/web.handoff-map", s.dir);
	kid = fork();
	ASSERT_TRUE(kid >= 0);
	if (kid == 0) {
		char path[64];
		int pfd, bad = 0;

		become_nobody();
		pfd = (int)syscall(SYS_pidfd_open, gen, 0);
		for (int fd = 3; pfd >= 0 && fd < 64; fd++)
			if (syscall(SYS_pidfd_getfd, pfd, fd, 0) >= 0)
				bad |= 1;
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)sup);
		if (opendir(path))
			bad |= 2;
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)gen);
		if (opendir(path))
			bad |= 4;
		if (open(map, O_RDWR) >= 0)
			bad |= 8;
		_exit(bad);
	}
	waitpid(kid, &status, 0);
	bt_supervisor_stop(&s.pid, 15);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* A python generation through the shim: accepts one connection, and at
 * its stop (TERM) leaves a child that holds that connection and the
 * channel, then gives the connection over the channel once the generation
 * is gone (the supervisor noticed), like the exited sender of the abstract
 * design. Each generation writes what it did to DIR/gen-N. */
static const char exited_py[] =
	"import os, signal, socket, sys, time\n"
	"d, port = sys.argv[1], int(sys.argv[2])\n"
	"me = os.environ['BATON_GENERATION']\n"
	"ch = int(os.environ['BATON_HANDOFF'].split(';')[3])\n"
	"log = open(d + '/gen-' + me, 'a', buffering=1)\n"
	"s = socket.socket()\n"
	"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"s.bind(('127.0.0.1', port))\n"
	"s.listen(8)\n"
	"conn = []\n"
	"def stop(sig, frm):\n"
	"    if conn and os.fork() == 0:\n"
	"        time.sleep(0.5)\n"
	"        c = socket.socket(fileno=os.dup(ch))\n"
	"        import struct\n"
	"        try:\n"
	"            socket.send_fds(c, [struct.pack('IIII', 1, 0, int(me), 0)], [conn[0].fileno()])\n"
	"            log.write('sent\\n')\n"
	"        except OSError as e:\n"
	"            log.write('send failed %s\\n' % e)\n"
	"        time.sleep(1.5)\n"
	"        os._exit(0)\n"
	"    os._exit(0)\n"
	"signal.signal(signal.SIGTERM, stop)\n"
	"while True:\n"
	"    c, _ = s.accept()\n"
	"    log.write('accepted\\n')\n"
	"    conn.append(c)\n";

TEST_TIMEOUT(attack_handoff_a_give_after_its_generation_exited_is_refused, 60)
{
	char port[16], path[160], buf[256];
	struct bt_sv s;
	int c;
	struct pollfd p;

	need_root_servers();
	need_nobody();
	hsv_dir(&s);
	snprintf(port, sizeof(port), "%d", HPORT);
	char *argv[] = { "--ready", "delay:300ms", "--grace", "5s", "--", (char *)need("python3"), "-c",
			 (char *)exited_py, s.dir, port, NULL };

	hsv_start(&s, argv);
	c = bt_connect(HPORT);
	ASSERT_TRUE(c >= 0);
	usleep(200000);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	usleep(1500000);	/* gen 1 exited; its child gave the connection 0.5 s later */
	snprintf(path, sizeof(path), "%s/gen-1", s.dir);
	ASSERT_GT(bt_read_file(path, buf, sizeof(buf)), 0);
	bt_log("gen 1: %s", buf);
	ASSERT_CONTAINS(buf, "accepted");
	/* the supervisor never got it, and gen 2 never accepted it */
	ASSERT_EQ(bt_json_get(bt_status_object("web", "handoff"), "offered"), 0);
	snprintf(path, sizeof(path), "%s/gen-2", s.dir);
	bt_read_file(path, buf, sizeof(buf));
	ASSERT_TRUE(!strstr(buf, "accepted"));
	/* the client is not answered by anyone: the connection ends with the child */
	ASSERT_EQ(write(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27), 27);
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	if (poll(&p, 1, 3000) == 1)
		ASSERT_TRUE(recv(c, buf, sizeof(buf), MSG_DONTWAIT) <= 0);
	close(c);
	bt_supervisor_stop(&s.pid, 15);
}

/* utime + stime of PID in ms */
static long long cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ASSERT_GT(bt_read_file(path, buf, sizeof(buf)), 0);
	p = strrchr(buf, ')');
	ASSERT_TRUE(p != NULL);
	ASSERT_EQ(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
	return (long long)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

/* A generation run as nobody floods its own channel (the only one it can
 * reach) with gives of a pipe, as fast as it can send. The supervisor
 * reads each channel at a bounded pace: its CPU over the flood stays
 * bounded (the abstract socket's flood cost 74 % of a core) and it keeps
 * answering `baton status`. */
TEST_ALONE(attack_handoff_a_flood_of_the_channel_keeps_the_supervisor_cpu_bounded, 90)
{
	static const char flood_py[] =
		"import os, socket, struct, time\n"
		"ch = socket.socket(fileno=int(os.environ['BATON_HANDOFF'].split(';')[3]))\n"
		"r, w = os.pipe()\n"
		"m = struct.pack('IIII', 1, 0, 0, 0)\n"
		"end = time.time() + 6\n"
		"while time.time() < end:\n"
		"    socket.send_fds(ch, [m], [r])\n"
		"    ch.send(b'junk')\n"
		"time.sleep(60)\n";
	struct bt_sv s;
	long long c0, c1, t0, t1, sent;

	need_root_servers();
	need_nobody();
	hsv_dir(&s);
	char *argv[] = { "--ready", "delay:200ms", "--grace", "2s", "--", (char *)need("setpriv"), "--reuid",
			 "nobody", "--regid", "nogroup", "--clear-groups", (char *)need("python3"), "-c",
			 (char *)flood_py, NULL };

	hsv_start(&s, argv);
	usleep(1000000);	/* the flood runs */
	t0 = mono_ms();
	c0 = cpu_ms(s.pid);
	for (int i = 0; i < 3; i++) {
		long long a = mono_ms();

		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		ASSERT_LE(mono_ms() - a, 1000);	/* it answers meanwhile */
		usleep(800000);
	}
	t1 = mono_ms();
	c1 = cpu_ms(s.pid);
	sent = bt_json_get(bt_status_object("web", "handoff"), "refused");
	bt_log("supervisor cpu %lld ms over %lld ms of flood; %lld messages refused", c1 - c0, t1 - t0, sent);
	bt_supervisor_stop(&s.pid, 15);
	/* it did read the flood (a supervisor that read nothing is no test) */
	ASSERT_GT(sent, 1000);
	/* 20,000 messages/s at most, a few microseconds each: 40 % is far above */
	ASSERT_LE((c1 - c0) * 100, (t1 - t0) * 40);
}
