/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton steer` on unmodified servers that bind their own sockets outside
 * baton (refserver --reuseport, nginx "listen ... reuseport"), under load
 * from the counting client: a frozen member fails nothing and what queued on
 * it is answered; a restarted baton steer loses nothing; clear errors; a
 * failed one leaves nothing behind; --release and stale pins in baton ls. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define PORT 18080

struct kids {
	char dir[64];
	pid_t pid[8];
	int n;
};

static struct kids K;

static void end_all(void)
{
	for (int i = 0; i < K.n; i++) {
		if (K.pid[i] <= 0)
			continue;
		kill(-K.pid[i], SIGCONT);
		kill(-K.pid[i], SIGKILL);
		waitpid(K.pid[i], NULL, 0);
	}
	K.n = 0;
}

/* Starts ARGV in its own process group, output to DIR/NAME. */
static pid_t start(const char *name, char *const argv[])
{
	char path[128];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", K.dir, name);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		setpgid(0, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	ASSERT_TRUE(K.n < 8);
	K.pid[K.n++] = pid;
	return pid;
}

static void slurp(const char *name, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", K.dir, name);
	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

static bool wait_output(const char *name, const char *needle, int ms)
{
	char buf[8192];

	for (int i = 0; i < ms / 10; i++) {
		slurp(name, buf, sizeof(buf));
		if (strstr(buf, needle))
			return true;
		usleep(10000);
	}
	return false;
}

static int listeners_on(uint16_t port)
{
	BATON_OPTS(baton_collect_opts, o, .diag_only = true, .sock_sz = sizeof(struct baton_sock));
	struct baton_sock *v;
	size_t n;
	int c = 0;

	if (baton_socks_collect(&o, &v, &n))
		return -1;
	for (size_t k = 0; k < n; k++)
		c += v[k].proto == BATON_PROTO_TCP && v[k].state == 10 && v[k].lport == port;
	baton_socks_free(v);
	return c;
}

static void wait_listeners(int want)
{
	for (int i = 0; i < 500 && listeners_on(PORT) != want; i++)
		usleep(10000);
	ASSERT_EQ(listeners_on(PORT), want);
}

static void setup(void)
{
	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	bt_baton_bin();
	if (!getenv("BATON_REFSERVER") || !getenv("BATON_LOADGEN"))
		SKIP("BATON_REFSERVER and BATON_LOADGEN not set (run through make check)");
	snprintf(K.dir, sizeof(K.dir), "/tmp/baton-steer-%d", (int)getpid());
	mkdir(K.dir, 0700);
	atexit(end_all);
}

static pid_t refserver(const char *tag, const char *name)
{
	char listen[32];

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", PORT);
	return start(name, (char *[]){ getenv("BATON_REFSERVER"), "-q", "--reuseport", "--listen", listen,
				       "--tag", (char *)tag, NULL });
}

static const char *nginx_bin(void)
{
	static const char *const cands[] = { "/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx" };

	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		if (access(cands[i], X_OK) == 0)
			return cands[i];
	return NULL;
}

/* nginx with one worker and "listen ... reuseport", run in the foreground
 * from a private configuration. */
static pid_t nginx(void)
{
	char conf[128], text[1024];
	const char *bin = nginx_bin();
	FILE *f;

	if (!bin)
		SKIP("nginx is not installed (scripts/install-deps installs it)");
	snprintf(conf, sizeof(conf), "%s/nginx.conf", K.dir);
	snprintf(text, sizeof(text),
		 "worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/nginx.err;\n"
		 "events { worker_connections 1024; }\n"
		 "http { access_log off; client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
		 "  uwsgi_temp_path %s; scgi_temp_path %s;\n"
		 "  server { listen 127.0.0.1:%d reuseport backlog=4096; location / { return 200 \"nginx\\n\"; } } }\n",
		 K.dir, K.dir, K.dir, K.dir, K.dir, K.dir, K.dir, PORT);
	f = fopen(conf, "w");
	ASSERT_TRUE(f != NULL);
	fputs(text, f);
	fclose(f);
	return start("nginx.out", (char *[]){ (char *)bin, "-c", conf, "-p", K.dir, NULL });
}

/* baton steer --watch with PRIMARY; EVENTS false: poll only (--no-events). */
static pid_t steer_watch(const char *name, pid_t primary, const char *interval, bool events)
{
	char spec[48], prim[16];

	snprintf(spec, sizeof(spec), "tcp://127.0.0.1:%d", PORT);
	snprintf(prim, sizeof(prim), "%d", (int)primary);
	return start(name, (char *[]){ (char *)bt_baton_bin(), "steer", spec, "--primary", prim, "--watch",
				       "--interval", (char *)interval, events ? NULL : "--no-events", NULL });
}

static pid_t steer(const char *name, pid_t primary, const char *interval)
{
	return steer_watch(name, primary, interval, true);
}

static pid_t loadgen(const char *secs)
{
	char port[8];

	snprintf(port, sizeof(port), "%d", PORT);
	return start("load.json", (char *[]){ getenv("BATON_LOADGEN"), "--port", port, "--concurrency", "4",
					      "--duration", (char *)secs, "--timeout-ms", "5000", "--json",
					      NULL });
}

static void wait_exit(pid_t pid, int ms)
{
	int st;

	for (int i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			for (int k = 0; k < K.n; k++)
				if (K.pid[k] == pid)
					K.pid[k] = 0;
			return;
		}
		usleep(10000);
	}
	FAIL("pid %d still running after %d ms", (int)pid, ms);
}

/* Raw clients: each connects and sends a request, to be read later. */
static void raw_requests(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		fds[i] = bt_connect(PORT);
		ASSERT_EQ(write(fds[i], "GET / HTTP/1.0\r\n\r\n", 18), 18);
	}
}

static int raw_answered(int *fds, int n)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		char buf[64] = "";

		if (poll(&p, 1, 5000) == 1 && read(fds[i], buf, sizeof(buf) - 1) > 12 &&
		    !strncmp(buf, "HTTP/1.1 200", 12))
			ok++;
		close(fds[i]);
	}
	return ok;
}

/* Freezes the primary (its whole process group) under load; the standby
 * takes over; the queued ones are answered. */
static void failover(bool freeze_nginx)
{
	char out[8192], *p;
	pid_t ref, ngx, primary, load;
	int raw[20], queued = -1;

	setup();
	ngx = nginx();
	ref = refserver("ref", "ref.out");
	wait_listeners(2);
	primary = freeze_nginx ? ngx : ref;
	/* the watch polls every 200 ms here, without the stop events that
	 * would see the freeze at once: a window in which the raw clients
	 * queue on the frozen primary, to be moved at the failover */
	steer_watch("steer.out", primary, "200ms", false);
	ASSERT_TRUE(wait_output("steer.out", "steering 2 member(s)", 5000));
	load = loadgen("3");
	usleep(1000000);
	kill(-primary, SIGSTOP);
	raw_requests(raw, 20);
	ASSERT_TRUE(wait_output("steer.out", "fenced: owner stopped", 3000));
	ASSERT_EQ(raw_answered(raw, 20), 20);
	usleep(500000);
	kill(-primary, SIGCONT);	/* what it had accepted before the freeze it now answers */
	wait_exit(load, 15000);
	slurp("steer.out", out, sizeof(out));
	bt_log("%s", out);
	p = strstr(out, "fenced: owner stopped, queue ");
	ASSERT_TRUE(p != NULL);
	queued = atoi(p + strlen("fenced: owner stopped, queue "));
	ASSERT_GE(queued, 1);	/* some waited on the frozen member and were moved */
	slurp("load.json", out, sizeof(out));
	bt_log("%s", out);
	ASSERT_GE(bt_json_get(out, "requests"), 100);
	ASSERT_EQ(bt_json_get(out, "failed"), 0);
	end_all();
}

/* `baton steer` refused for want of privilege (exit R, ERR): it says which
 * (SAYS), does not blame bpffs, and pinned nothing. */
static void assert_refused_for_privilege(int r, const char *err, const char *says)
{
	bt_log("%s", err);
	ASSERT_EQ(r, 1);
	ASSERT_CONTAINS(err, says);
	ASSERT_TRUE(strstr(err, "is bpffs mounted") == NULL);
	ASSERT_NE(access("/sys/fs/bpf/baton", F_OK), 0);
}

TEST_ALONE(steer_cmd_refserver_frozen_fails_nothing, 60)
{
	failover(false);
}

TEST_ALONE(steer_cmd_nginx_frozen_fails_nothing, 60)
{
	failover(true);
}

TEST_TIMEOUT(steer_cmd_restart_loses_nothing_and_keeps_policy, 60)
{
	char out[8192];
	pid_t a, s1, load;

	setup();
	a = refserver("A", "a.out");
	refserver("B", "b.out");
	wait_listeners(2);
	s1 = steer("steer1.out", a, "10ms");
	ASSERT_TRUE(wait_output("steer1.out", "steering 2 member(s)", 5000));
	load = loadgen("2");
	usleep(700000);
	kill(s1, SIGTERM);
	wait_exit(s1, 5000);
	ASSERT_TRUE(wait_output("steer1.out", "leaving", 100));
	steer("steer2.out", a, "10ms");
	ASSERT_TRUE(wait_output("steer2.out", "steering 2 member(s)", 5000));
	wait_exit(load, 15000);
	slurp("load.json", out, sizeof(out));
	bt_log("%s", out);
	ASSERT_GE(bt_json_get(out, "requests"), 100);
	ASSERT_EQ(bt_json_get(out, "failed"), 0);
	/* standby with A as primary held throughout: only A answered */
	ASSERT_EQ(bt_json_get(out, "distinct_tags"), 1);
	ASSERT_CONTAINS(out, "\"A\"");
	end_all();
}

TEST(steer_cmd_says_when_nothing_listens_or_spec_is_bad)
{
	char out[1024], err[1024];

	setup();
	ASSERT_EQ(bt_run((char *[]){ (char *)bt_baton_bin(), "steer", "tcp://127.0.0.1:18080", NULL }, out,
			 sizeof(out), err, sizeof(err), 10), 1);
	ASSERT_CONTAINS(err, "nothing listens on tcp://127.0.0.1:18080");
	ASSERT_EQ(bt_run((char *[]){ (char *)bt_baton_bin(), "steer", "tcp://127.0.0.1:18080", "--policy",
				     "roundrobin", NULL }, out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_CONTAINS(err, "is not standby, spread or weights:W1,W2,...");
	refserver("A", "a.out");
	wait_listeners(1);
	ASSERT_EQ(bt_run((char *[]){ (char *)bt_baton_bin(), "steer", "tcp://127.0.0.1:18080", "--primary",
				     "1", NULL }, out, sizeof(out), err, sizeof(err), 10), 1);
	ASSERT_CONTAINS(err, "pid 1 holds no listener");
	/* without --watch: applied once, exit 0 */
	ASSERT_EQ(bt_run((char *[]){ (char *)bt_baton_bin(), "steer", "tcp://127.0.0.1:18080", NULL }, out,
			 sizeof(out), err, sizeof(err), 10), 0);
	ASSERT_CONTAINS(out, "steering 1 member(s)");
	end_all();
}

#define PINS "/sys/fs/bpf/baton/steer-127_0_0_1-18080"
#define SPEC "tcp://127.0.0.1:18080"

/* The program attached to the group on PORT (enum baton_prog_type), or -1
 * if nothing listens there. */
static int prog_on(uint16_t port)
{
	struct baton_collect_opts o = { .sz = sizeof(o) };
	struct baton_sock *v;
	size_t n;
	int p = -1;

	if (baton_socks_collect(&o, &v, &n))
		return -1;
	for (size_t k = 0; k < n && p < 0; k++)
		if (v[k].proto == BATON_PROTO_TCP && v[k].state == 10 && v[k].lport == port)
			p = (v[k].known & BATON_SOCK_PROG) ? (int)v[k].prog_type : -2;
	baton_socks_free(v);
	return p;
}

static int steer_once(char *out, size_t olen, char *err, size_t elen, const char *a1, const char *a2)
{
	char *argv[] = { (char *)bt_baton_bin(), "steer", (char *)a1, (char *)a2, NULL };

	return bt_run(argv, out, olen, err, elen, 10);
}

/* root without the capabilities eBPF needs (exec gives root the bounding
 * set, so the caps are dropped from that) */
static void without_bpf_caps(void *ctx)
{
	static const int caps[] = { CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON };

	(void)ctx;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0))
			_exit(126);
}

/* Whatever makes a baton steer fail, what it made goes again: no program
 * attached, no pins, no directory in bpffs. A group resumed from earlier
 * pins is left as found. */
TEST_TIMEOUT(steer_cmd_failed_steer_leaves_nothing_behind, 60)
{
	char out[2048], err[2048];
	char *argv[] = { (char *)bt_baton_bin(), "steer", SPEC, NULL };
	int r;

	setup();
	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), SPEC, NULL), 1);
	ASSERT_CONTAINS(err, "nothing listens on " SPEC);
	ASSERT_NE(access("/sys/fs/bpf/baton", F_OK), 0);

	refserver("A", "a.out");
	refserver("B", "b.out");
	wait_listeners(2);
	/* fails after both members were added and the program attached */
	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), SPEC, "--primary=1"), 1);
	ASSERT_CONTAINS(err, "pid 1 holds no listener");
	ASSERT_NE(access("/sys/fs/bpf/baton", F_OK), 0);
	ASSERT_EQ(prog_on(PORT), BATON_PROG_NONE);

	/* a privilege missing: root may write bpffs but not load the program */
	r = bt_run_with(argv, without_bpf_caps, NULL, out, sizeof(out), err, sizeof(err), 10);
	if (r == 126)
		SKIP("cannot drop capabilities from the bounding set");
	assert_refused_for_privilege(r, err, "needs CAP_BPF and CAP_NET_ADMIN, or root");
	ASSERT_EQ(prog_on(PORT), BATON_PROG_NONE);

	/* a resumed group is not this run's to remove */
	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), SPEC, "--policy=spread"), 0);
	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), SPEC, "--primary=1"), 1);
	ASSERT_EQ(access(PINS "/socks", F_OK), 0);
	ASSERT_EQ(prog_on(PORT), BATON_PROG_EBPF);
	end_all();
}

/* --release: refused while a watch steers, then the program is detached
 * and the pins go; a second release names the spec. */
TEST_TIMEOUT(steer_cmd_release_gives_the_group_back, 60)
{
	char out[2048], err[2048];
	pid_t w;

	setup();
	refserver("A", "a.out");
	refserver("B", "b.out");
	wait_listeners(2);
	w = start("watch.out", (char *[]){ (char *)bt_baton_bin(), "steer", SPEC, "--watch", "--policy", "spread",
					  NULL });
	ASSERT_TRUE(wait_output("watch.out", "steering 2 member(s)", 5000));
	ASSERT_EQ(prog_on(PORT), BATON_PROG_EBPF);
	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), "--release", SPEC), 1);
	ASSERT_CONTAINS(err, "still steers " SPEC);
	ASSERT_EQ(access(PINS "/socks", F_OK), 0);
	kill(w, SIGTERM);
	wait_exit(w, 5000);

	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), "--release", SPEC), 0);
	ASSERT_CONTAINS(out, "released " SPEC ": detached the steering program from its 2 listener(s)");
	ASSERT_EQ(prog_on(PORT), BATON_PROG_NONE);
	ASSERT_NE(access(PINS, F_OK), 0);
	ASSERT_NE(access("/sys/fs/bpf/baton", F_OK), 0);
	/* both members answer again */
	for (int i = 0; i < 20; i++)
		close(bt_connect(PORT));

	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), "--release", SPEC), 1);
	ASSERT_CONTAINS(err, "no baton steering state for " SPEC ": nothing pinned at " PINS);
	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), "--release", "--watch"), 2);
	end_all();
}

static int ls_run(char *out, size_t olen, char *err, size_t elen, const char *a1)
{
	char *argv[] = { (char *)bt_baton_bin(), "ls", (char *)a1, NULL };

	return bt_run(argv, out, olen, err, elen, 10);
}

/* The pins of a group whose servers exited are named by baton ls, with the
 * command that removes them; a supervisor's (run-NAME) get its hint. */
TEST_TIMEOUT(steer_cmd_ls_names_stale_pins, 60)
{
	struct baton_group_opts go = { .sz = sizeof(go), .mode = BATON_MODE_EBPF,
				       .pin_path = "/sys/fs/bpf/baton/run-web/http" };
	struct baton_group *g;
	char out[8192], err[2048];

	setup();
	refserver("A", "a.out");
	wait_listeners(1);
	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), SPEC, NULL), 0);
	ASSERT_EQ(ls_run(out, sizeof(out), err, sizeof(err), NULL), 0);
	ASSERT_TRUE(strstr(out, "stale") == NULL);	/* its group lives */
	end_all();
	wait_listeners(0);

	g = baton_group_new(&go);	/* a supervisor's pins, no socket in them */
	ASSERT_TRUE(g != NULL);
	baton_group_free(g);
	ASSERT_EQ(ls_run(out, sizeof(out), err, sizeof(err), NULL), 0);
	bt_log("%s", out);
	ASSERT_CONTAINS(out, "stale baton pins: " PINS " (no listener on 127.0.0.1:18080); remove with baton steer "
			     "--release " SPEC "\n");
	ASSERT_CONTAINS(out, "stale baton pins: /sys/fs/bpf/baton/run-web/http (no socket of supervisor web is "
			     "left); remove with baton stop web");
	ASSERT_EQ(ls_run(out, sizeof(out), err, sizeof(err), "--json"), 0);
	ASSERT_CONTAINS(out, "\"stale_pins\": [");
	ASSERT_CONTAINS(out, "{\"path\": \"" PINS "\", \"listener\": \"" SPEC "\", \"supervisor\": null");
	ASSERT_CONTAINS(out, "\"remove\": \"baton steer --release " SPEC "\"}");
	ASSERT_CONTAINS(out, "\"supervisor\": \"web\"");
	/* a filter keeps only the pins made for it */
	ASSERT_EQ(ls_run(out, sizeof(out), err, sizeof(err), "9999"), 0);
	ASSERT_TRUE(strstr(out, "stale") == NULL);

	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), "--release", SPEC), 0);
	ASSERT_CONTAINS(out, "nothing listens there any more; removed the pins at " PINS);
	ASSERT_EQ(ls_run(out, sizeof(out), err, sizeof(err), "--json"), 0);
	ASSERT_TRUE(strstr(out, PINS) == NULL);
}

static void as_nobody(void *ctx)
{
	(void)ctx;
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(126);
}

/* Without privilege baton steer names the privilege (it blamed bpffs), and
 * leaves nothing in bpffs. */
TEST_TIMEOUT(steer_cmd_unprivileged_names_the_privilege, 30)
{
	char out[2048], err[4096];
	char *argv[] = { NULL, "steer", SPEC, NULL };
	int r;

	setup();
	chmod("/sys/fs/bpf", 01777);	/* nobody may even write there: the load must still fail */
	bt_share_baton_bin();
	argv[0] = (char *)bt_baton_bin();
	r = bt_run_with(argv, as_nobody, NULL, out, sizeof(out), err, sizeof(err), 10);
	if (r == 126 || r == 127) {
		bt_unshare_baton_bin();
		SKIP("user nobody cannot run baton here");
	}
	assert_refused_for_privilege(r, err, "needs CAP_BPF and CAP_NET_ADMIN");
	chmod("/sys/fs/bpf", 0700);
	r = bt_run_with(argv, as_nobody, NULL, out, sizeof(out), err, sizeof(err), 10);
	bt_unshare_baton_bin();
	bt_log("%s", err);
	ASSERT_EQ(r, 1);
	ASSERT_CONTAINS(err, "needs CAP_BPF and CAP_NET_ADMIN");
	ASSERT_TRUE(strstr(err, "is bpffs mounted") == NULL);
	ASSERT_EQ(steer_once(out, sizeof(out), err, sizeof(err), "--release", SPEC), 1);
	ASSERT_CONTAINS(err, "no baton steering state");
}
