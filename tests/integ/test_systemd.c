/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton run` as a systemd service, without systemd as PID 1: a test-owned
 * NOTIFY_SOCKET records what baton tells its manager (READY, RELOADING,
 * STOPPING, STATUS, the fd store), systemd-socket-activate and a hand-made
 * LISTEN_FDS pass it sockets (shared and steered) that serve and reload under
 * load without a failed request, and the example units pass systemd-analyze. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

static void tmpdir(char *dir, size_t len)
{
	bt_runtime_tmpdir(dir, len, "sd");
}

/* ---- a service manager's notify socket, recorded ---------------------------- */

struct rec {
	pid_t pid;
	char log[128];
};

/* Binds the datagram socket at PATH ("@name": abstract) now, so nothing
 * sent after this returns is lost, and records every message in a child:
 * one line each, newlines as " | ", an attached fd described and closed.
 * The child ends after STOPPING=1 or 60 s. */
static void rec_start(struct rec *r, const char *dir, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(r->log, sizeof(r->log), "%s/notify.log", dir);
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, len))
		FAIL("bind notify socket %s: %s", path, strerror(errno));
	r->pid = fork();
	if (r->pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (r->pid == 0) {
		FILE *f = fopen(r->log, "w");
		time_t end = time(NULL) + 60;

		while (f && time(NULL) < end) {
			char buf[4097];
			union {
				struct cmsghdr align;
				char b[CMSG_SPACE(sizeof(int) * 8)];
			} ctl;
			struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl,
					     .msg_controllen = sizeof(ctl) };
			struct pollfd p = { .fd = fd, .events = POLLIN };
			struct cmsghdr *c;
			ssize_t n;

			if (poll(&p, 1, 200) <= 0)
				continue;
			n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
			if (n < 0)
				continue;
			buf[n] = '\0';
			for (char *q = buf; *q; q++)
				if (*q == '\n')
					*q = '|';
			fprintf(f, "%s", buf);
			for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
				int got, acc = 0;
				socklen_t al = sizeof(acc);
				struct stat st;

				if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
					continue;
				memcpy(&got, CMSG_DATA(c), sizeof(got));
				fstat(got, &st);
				getsockopt(got, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al);
				fprintf(f, " [fd: %s ino %llu]", S_ISSOCK(st.st_mode) && acc ? "listening" : "other",
					(unsigned long long)st.st_ino);
				close(got);
			}
			fprintf(f, "\n");
			fflush(f);
			if (strstr(buf, "STOPPING=1"))
				break;
		}
		_exit(0);
	}
	close(fd);
}

/* Waits for the recorder to end (it saw STOPPING=1) and returns its log. */
static const char *rec_finish(struct rec *r)
{
	static char text[32768];
	time_t end = time(NULL) + 10;
	ssize_t n;
	int fd;

	while (waitpid(r->pid, NULL, WNOHANG) != r->pid) {
		if (time(NULL) > end) {
			kill(r->pid, SIGKILL);
			waitpid(r->pid, NULL, 0);
			bt_quote_file(r->log);
			FAIL("the recorded notify socket never got STOPPING=1");
		}
		usleep(20000);
	}
	fd = open(r->log, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
	text[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	bt_log("notify socket got:\n%s", text);
	return text;
}

/* Offset of the first line at or after FROM that starts with PREFIX, or fail. */
static size_t line_at(const char *text, size_t from, const char *prefix)
{
	const char *p = text + from;

	for (;;) {
		if (!strncmp(p, prefix, strlen(prefix)))
			return (size_t)(p - text);
		p = strchr(p, '\n');
		if (!p || !*++p)
			FAIL("no message starting with \"%s\" after offset %zu", prefix, from);
	}
}

static void set_notify(void *ctx)
{
	setenv("NOTIFY_SOCKET", ctx, 1);
}

static pid_t start_refserver(const char *dir, const char *name, const char *listen, void (*child)(void *),
			     void *ctx)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	char logpath[128];
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", (char *)name, "--listen", (char *)listen,
			 "--grace", "5s", "--", (char *)ref, "-q", NULL };

	snprintf(logpath, sizeof(logpath), "%s/baton.log", dir);
	return bt_supervisor_start(argv, name, logpath, child, ctx, 15, out, sizeof(out));
}

TEST_TIMEOUT(systemd_notify_socket_hears_ready_reloading_ready_stopping_in_order, 60)
{
	char dir[64], path[128], want[96];
	struct timespec ts;
	unsigned long long usec, now;
	struct rec r;
	const char *log, *p;
	size_t ready, reloading, ready2, stopping;
	pid_t pid, baton_pid;

	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/manager.notify", dir);
	rec_start(&r, dir, path);
	pid = start_refserver(dir, "sd", "tcp://127.0.0.1:0", set_notify, path);
	baton_pid = pid;
	ASSERT_EQ(bt_baton("reload", "sd"), 0);
	ASSERT_CONTAINS(out, "gen 2");
	/* gen 1 releases its member when it has drained and exited: wait for
	 * that, since the recorder stops at STOPPING=1 */
	bt_status_wait("sd", strstr(out, "{\"id\":1,\"pid\":0,"), 100, 50000);
	ASSERT_CONTAINS(out, "{\"id\":1,\"pid\":0,");
	bt_supervisor_stop(&pid, 15);
	log = rec_finish(&r);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;

	ready = line_at(log, 0, "READY=1");
	reloading = line_at(log, ready, "RELOADING=1");
	ready2 = line_at(log, reloading, "READY=1");
	stopping = line_at(log, ready2, "STOPPING=1");
	ASSERT_TRUE(ready < reloading && reloading < ready2 && ready2 < stopping);
	/* nothing but STATUS= and the fd store between them */
	ASSERT_EQ(strstr(log, "READY=1") - log, (long)ready);
	ASSERT_TRUE(!strstr(log + ready2 + 1, "READY=1") || strstr(log + ready2 + 1, "READY=1") > log + stopping);
	/* the main pid is baton's own, said once */
	p = strstr(log, "MAINPID=");
	ASSERT_TRUE(p != NULL);
	ASSERT_EQ(atoi(p + 8), baton_pid);
	ASSERT_TRUE(!strstr(p + 1, "MAINPID="));
	/* RELOADING=1 carries CLOCK_MONOTONIC in µs, from the last minute */
	p = strstr(log + reloading, "MONOTONIC_USEC=");
	ASSERT_TRUE(p != NULL && p < log + ready2);
	usec = strtoull(p + 15, NULL, 10);
	ASSERT_LE(usec, now);
	ASSERT_GT(usec, now - 60000000ULL);
	/* one-line STATUS= with who serves */
	ASSERT_CONTAINS(log + ready2, "STATUS=gen 2 serves tcp://127.0.0.1:");
	ASSERT_CONTAINS(log + ready2, "1 reload, 0 failed");
	/* each generation's member went to the fd store when created, and
	 * gen 1's came out when it was released */
	p = strstr(log, "FDSTORE=1|FDNAME=baton-l0-");
	ASSERT_TRUE(p != NULL);
	ASSERT_TRUE(strstr(p, "[fd: listening ino ") != NULL);
	snprintf(want, sizeof(want), "FDSTOREREMOVE=1|FDNAME=baton-l0-%llu", strtoull(p + 26, NULL, 10));
	ASSERT_CONTAINS(log, want);
	ASSERT_TRUE(strstr(p + 1, "FDSTORE=1|FDNAME=baton-l0-") != NULL);
}

TEST_TIMEOUT(systemd_notify_socket_in_the_abstract_namespace, 60)
{
	char dir[64], path[64];
	struct rec r;
	pid_t pid;
	const char *log;

	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "@baton-test-notify-%d", (int)getpid());
	rec_start(&r, dir, path);
	pid = start_refserver(dir, "sda", "tcp://127.0.0.1:0", set_notify, path);
	bt_supervisor_stop(&pid, 15);
	log = rec_finish(&r);
	line_at(log, line_at(log, 0, "READY=1"), "STOPPING=1");
}

TEST_TIMEOUT(systemd_no_notify_socket_sends_nothing_and_stores_nothing, 60)
{
	char dir[64], logpath[128];
	pid_t pid;

	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	unsetenv("NOTIFY_SOCKET");
	pid = start_refserver(dir, "sdn", "tcp://127.0.0.1:0", NULL, NULL);
	ASSERT_EQ(bt_baton("reload", "sdn"), 0);
	bt_supervisor_stop(&pid, 15);
	snprintf(logpath, sizeof(logpath), "%s/baton.log", dir);
	/* nothing to say about a manager that is not there */
	{
		char text[16384];

		bt_read_file(logpath, text, sizeof(text));
		ASSERT_TRUE(!strstr(text, "sd_notify"));
		ASSERT_TRUE(!strstr(text, "socket activation"));
	}
}

/* ---- socket activation under load ---------------------------------------------- */

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

static void reloads_under_load(const char *name, uint16_t port, int reloads)
{
	struct bt_load l;
	const char *report;

	load_start(&l, port);
	bt_reloads(name, reloads, (const char *[]){ "serves", NULL }, &l, NULL);
	usleep(200000);
	report = load_finish(&l);
	ASSERT_GT(bt_json_get(report, "answered"), 200);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
}

/* systemd-socket-activate starts its command at the first connection: this
 * child makes it, and one request, then exits. */
static pid_t first_connection(uint16_t port)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (int i = 0; i < 500; i++) {
			struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
						   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			char buf[256];

			if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
				if (fd >= 0)
					close(fd);
				usleep(10000);
				continue;
			}
			if (write(fd, "GET / HTTP/1.0\r\n\r\n", 18) == 18)
				while (read(fd, buf, sizeof(buf)) > 0)
					;
			_exit(0);
		}
		_exit(1);
	}
	return pid;
}

/* In bt_supervisor_start's child: the command runs under
 * systemd-socket-activate (bt_supervisor_start asks argv[0], baton, for
 * the status). */
static void under_socket_activate(void *ctx)
{
	execv(((char **)ctx)[0], ctx);
	_exit(127);
}

TEST_TIMEOUT(systemd_socket_activate_shared_socket_serves_and_reloads_losing_nothing, 90)
{
	const char *sa = "/usr/bin/systemd-socket-activate";
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	char dir[64], logpath[128];
	pid_t pid, trigger;
	int status;

	if (access(sa, X_OK))
		SKIP("%s is missing (Debian package systemd)", sa);
	bt_need_env("BATON_LOADGEN", "load client");
	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	snprintf(logpath, sizeof(logpath), "%s/baton.log", dir);
	/* it passes on only the environment it is told to */
	char *argv[] = { (char *)sa, "-l", "127.0.0.1:8097", "-E", "BATON_RUNTIME_DIR", "-E", "BATON_PRELOAD_LIB",
			 "-E", "ASAN_OPTIONS", "-E", "BATON_BPFFS", (char *)bt_baton_bin(), "run", "--name", "act",
			 "--listen", "tcp://127.0.0.1:8097", "--grace", "5s", "--", (char *)ref, "-q", NULL };
	char *status_argv[] = { (char *)bt_baton_bin(), NULL };

	trigger = first_connection(8097);
	pid = bt_supervisor_start(status_argv, "act", logpath, under_socket_activate, argv, 15, out, sizeof(out));
	ASSERT_CONTAINS(out, "\"mode\":\"shared\"");
	ASSERT_EQ(waitpid(trigger, &status, 0), trigger);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	reloads_under_load("act", 8097, 5);
	ASSERT_EQ(bt_baton("status", "act"), 0);
	ASSERT_CONTAINS(out, "listener 0: tcp://127.0.0.1:8097?backlog=4096 (shared)");
	ASSERT_CONTAINS(out, "5 reloads done, 0 failed");
	bt_supervisor_stop(&pid, 15);
}

struct passfd {
	int fd;
	const char *name;
};

/* In baton run's child: FD as fd 3, passed with LISTEN_FDS as systemd does
 * (ReusePort=yes has no systemd-socket-activate option). */
static void pass_fd(void *ctx)
{
	struct passfd *p = ctx;
	char num[16];

	if (p->fd == 3)
		fcntl(3, F_SETFD, 0);
	else
		dup2(p->fd, 3);
	setenv("LISTEN_FDS", "1", 1);
	snprintf(num, sizeof(num), "%d", (int)getpid());
	setenv("LISTEN_PID", num, 1);
	if (p->name)
		setenv("LISTEN_FDNAMES", p->name, 1);
	else
		unsetenv("LISTEN_FDNAMES");
}

TEST_TIMEOUT(systemd_passed_reuseport_socket_is_gen_1s_member_steered_losing_nothing, 90)
{
	char dir[64];
	struct passfd p = { .name = "http" };
	int acc = 1;
	socklen_t al = sizeof(acc);
	uint16_t port;
	pid_t pid;

	bt_need_env("BATON_LOADGEN", "load client");
	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	port = bt_listeners(&p.fd, 1, false);	/* SO_REUSEPORT, listening */
	/* matched by name: the --listen's port 0 becomes the passed socket's */
	pid = start_refserver(dir, "rp", "tcp://127.0.0.1:0?name=http", pass_fd, &p);
	ASSERT_CONTAINS(out, "\"mode\":\"steered\"");
	ASSERT_EQ(bt_json_get(out, "port"), port);
	reloads_under_load("rp", port, 5);
	/* the passed socket was gen 1's member: it left the steering when gen 1
	 * retired but was never shut down (it is the .socket unit's: systemd
	 * fails a unit whose socket hangs up) */
	acc = 0;
	ASSERT_EQ(getsockopt(p.fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
	ASSERT_EQ(acc, 1);
	ASSERT_EQ(bt_baton("status", "rp"), 0);
	ASSERT_CONTAINS(out, "(steered)");
	bt_supervisor_stop(&pid, 15);
	close(p.fd);
}

TEST_TIMEOUT(systemd_passed_socket_that_no_listen_matches_is_an_error_naming_it, 30)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	char dir[64], want[128], listen[64];
	struct passfd p = { .name = "other" };
	uint16_t port;
	int fds = bt_count_fds();
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "nm", "--listen", listen, "--", (char *)ref, NULL };

	bt_need_netns();
	tmpdir(dir, sizeof(dir));
	port = bt_listeners(&p.fd, 1, false);
	snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%u", port == 65535 ? 1 : port + 1);
	ASSERT_EQ(bt_run_with(argv, pass_fd, &p, out, sizeof(out), err, sizeof(err), 10), 1);
	snprintf(want, sizeof(want), "passed fd 3 (tcp://127.0.0.1:%u, name \"other\") but no --listen matches it",
		 port);
	ASSERT_CONTAINS(err, want);
	snprintf(want, sizeof(want), "add --listen tcp://127.0.0.1:%u", port);
	ASSERT_CONTAINS(err, want);
	ASSERT_CONTAINS(err, "name=other");
	close(p.fd);
	ASSERT_EQ(bt_count_fds(), fds);
}

/* ---- a supervisor that died, restarted --------------------------------------------- */

/* The pid of generation ID in a status document. */
static pid_t gen_pid(const char *status, int id)
{
	const char *g = bt_gen_json(status, id);

	ASSERT_TRUE(!strncmp(strchr(g, ',') + 1, "\"pid\":", 6));
	return (pid_t)bt_json_get(g, "pid");
}

static void kill_supervisor(pid_t *pid)
{
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

TEST_TIMEOUT(systemd_restarted_supervisor_takes_its_members_from_the_fd_store, 60)
{
	char dir[64], name[64], logpath[128], want[64];
	struct passfd p = { .name = name };
	struct stat st;
	pid_t pid, g1;

	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	pid = start_refserver(dir, "fs", "tcp://127.0.0.1:0", NULL, NULL);
	g1 = gen_pid(out, 1);
	/* what systemd would hold: gen 1's member (its fd 3), by its FDNAME */
	p.fd = baton_fd_adopt(g1, 3);
	ASSERT_GE(p.fd, 0);
	ASSERT_EQ(fstat(p.fd, &st), 0);
	snprintf(name, sizeof(name), "baton-l0-%llu", (unsigned long long)st.st_ino);
	kill_supervisor(&pid);
	pid = start_refserver(dir, "fs", "tcp://127.0.0.1:0", pass_fd, &p);
	ASSERT_EQ(gen_pid(out, 1), g1);
	snprintf(logpath, sizeof(logpath), "%s/baton.log", dir);
	{
		char text[16384];

		bt_read_file(logpath, text, sizeof(text));
		bt_log("%s", text);
		ASSERT_CONTAINS(text, "resumed from");
		ASSERT_CONTAINS(text, "took 1 member socket back from the service manager's fd store");
	}
	ASSERT_EQ(bt_baton("reload", "fs"), 0);
	snprintf(want, sizeof(want), "gen 2");
	ASSERT_CONTAINS(out, want);
	bt_supervisor_stop(&pid, 15);
	close(p.fd);
}

TEST_TIMEOUT(systemd_shared_listener_resumes_after_the_supervisor_is_killed, 90)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	char dir[64], spec[64];
	struct passfd p = { .name = NULL };
	pid_t pid, g1;

	bt_need_env("BATON_LOADGEN", "load client");
	bt_need_netns();
	bt_need_ebpf();
	tmpdir(dir, sizeof(dir));
	/* a plain listener, no SO_REUSEPORT: shared mode */
	p.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(bind(p.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ASSERT_EQ(listen(p.fd, 1024), 0);
	ASSERT_EQ(getsockname(p.fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(spec, sizeof(spec), "tcp://127.0.0.1:%u", ntohs(sin.sin_port));
	pid = start_refserver(dir, "sh", spec, pass_fd, &p);
	close(p.fd);	/* only baton and its generations hold it now */
	ASSERT_CONTAINS(out, "\"mode\":\"shared\"");
	g1 = gen_pid(out, 1);
	kill_supervisor(&pid);
	/* started again without LISTEN_FDS: the socket comes from gen 1 */
	pid = start_refserver(dir, "sh", spec, NULL, NULL);
	ASSERT_EQ(gen_pid(out, 1), g1);
	ASSERT_CONTAINS(out, "\"mode\":\"shared\"");
	reloads_under_load("sh", ntohs(sin.sin_port), 3);
	bt_supervisor_stop(&pid, 15);
}

/* ---- the example units ------------------------------------------------------- */

TEST_TIMEOUT(systemd_example_units_pass_systemd_analyze_verify, 60)
{
	const char *sa = "/usr/bin/systemd-analyze", *units[] = { "baton-refserver.socket", "baton-refserver.service",
								  "nginx-baton.socket", "nginx-baton.service" };
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	char root[64], src[512], cmd[4096], *srcdir;
	int status;

	if (access(sa, X_OK))
		SKIP("%s is missing (Debian package systemd)", sa);
	srcdir = getenv("BATON_SRCDIR") ? strdup(getenv("BATON_SRCDIR")) : realpath(bt_baton_bin(), NULL);
	if (!srcdir)
		FAIL("realpath %s: %s", bt_baton_bin(), strerror(errno));
	/* the source tree: BATON_SRCDIR, else the nearest directory above the
	 * binary with the units */
	snprintf(src, sizeof(src), "%s/examples/systemd", srcdir);
	while (access(src, R_OK) && strrchr(srcdir, '/')) {
		*strrchr(srcdir, '/') = '\0';
		snprintf(src, sizeof(src), "%s/examples/systemd", srcdir);
	}
	free(srcdir);
	if (access(src, R_OK))
		SKIP("no examples/systemd above %s", bt_baton_bin());
	bt_tmpdir(root, sizeof(root), "verify");
	/* verify checks that ExecStart= binaries exist and that the targets
	 * the units name do: a root with both, and the units in /etc */
	snprintf(cmd, sizeof(cmd),
		 "set -e; mkdir -p %1$s/usr/local/bin %1$s/usr/sbin %1$s/etc/systemd/system %1$s/usr/lib/systemd; "
		 "cp %2$s %3$s %1$s/usr/local/bin/; cp %3$s %1$s/usr/sbin/nginx; "
		 "cp -r /usr/lib/systemd/system %1$s/usr/lib/systemd/; cp %4$s/*.socket %4$s/*.service "
		 "%1$s/etc/systemd/system/",
		 root, bt_baton_bin(), ref, src);
	char *sh[] = { "/bin/sh", "-c", cmd, NULL };

	if (bt_run(sh, out, sizeof(out), err, sizeof(err), 30) != 0)
		FAIL("preparing %s: %s", root, err);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		char rootopt[96];
		char *argv[] = { (char *)sa, "verify", rootopt, (char *)units[i], NULL };

		snprintf(rootopt, sizeof(rootopt), "--root=%s", root);
		status = bt_run(argv, out, sizeof(out), err, sizeof(err), 30);
		bt_log("systemd-analyze verify %s: %d %s%s", units[i], status, out, err);
		ASSERT_EQ(status, 0);
		/* warnings (an unknown key, a bad value) exit 0 but print */
		ASSERT_STREQ(out, "");
		ASSERT_STREQ(err, "");
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	bt_run(sh, out, sizeof(out), err, sizeof(err), 30);
}
