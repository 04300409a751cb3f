/* SPDX-License-Identifier: BSD-2-Clause */
/* Unmodified servers under `baton run`: the preload shim on its own (managed
 * binds substituted, others untouched, bad or missing environment harmless)
 * and real servers (nginx and python's http.server through the shim,
 * lighttpd through its own socket activation) reloaded 20 times under
 * connection-per-request load without one failed request; and keep-alive
 * load across reloads with ?handoff=idle (nginx through the shim: every
 * idle connection handed to the new generation; lighttpd: no shim, no
 * handoff). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define PORT 8080

static char out[65536], err[16384];

/* ---- the shim on its own --------------------------------------------------- */

struct probe_env {
	int member;
	const char *lib, *preload;
};

/* In the probe's child: the member as fd 3, as baton run passes it. */
static void probe_child(void *ctx)
{
	const struct probe_env *e = ctx;

	if (e->member == 3)
		fcntl(3, F_SETFD, 0);	/* inherited, as baton run passes it */
	else if (e->member >= 0)
		dup2(e->member, 3);	/* dup2 clears close-on-exec */
	else
		close(3);
	setenv("LD_PRELOAD", e->lib, 1);
	unsetenv("NOTIFY_SOCKET");
	if (e->preload)
		setenv("BATON_PRELOAD", e->preload, 1);
	else
		unsetenv("BATON_PRELOAD");
}

/* Runs the probe with MEMBER as fd 3 and the shim preloaded with PRELOAD as
 * BATON_PRELOAD (NULL: unset). Returns its exit status. */
static int probe(int member, const char *preload, const char *host, int port)
{
	const char *bin = bt_need_env("BATON_PROBE", "preload probe");
	struct probe_env e = { .member = member, .lib = bt_need_env("BATON_PRELOAD_LIB", "preload shim"),
			       .preload = preload };
	char portstr[16];
	char *argv[] = { (char *)bin, (char *)host, portstr, NULL };
	int status;

	snprintf(portstr, sizeof(portstr), "%d", port);
	status = bt_run_with(argv, probe_child, &e, out, sizeof(out), err, sizeof(err), 10);
	bt_log("probe %s %d with BATON_PRELOAD=%s: %s%s", host, port, preload ? preload : "(unset)", out, err);
	return status;
}

static int member_on(uint16_t *port)
{
	int fd;

	*port = bt_listeners(&fd, 1, false);	/* backlog 1024, SO_REUSEPORT, like a member */
	return fd;
}

/* member_on in a private network namespace, and the BATON_PRELOAD map
 * that names it fd 3 into ENV. */
static int member_env(char *env, size_t len, uint16_t *port)
{
	int m;

	bt_need_netns();
	m = member_on(port);
	snprintf(env, len, "v1;tcp:127.0.0.1:%u=3", *port);
	return m;
}

static int lines(const char *text)
{
	int n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

TEST(preload_substitutes_a_managed_bind_and_keeps_the_backlog)
{
	char env[128];
	uint16_t port;
	int m;
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);

	m = member_env(env, sizeof(env), &port);
	ASSERT_EQ(probe(m, env, "127.0.0.1", port), 0);
	/* the probe's own socket was non-blocking and close-on-exec; it kept both */
	ASSERT_CONTAINS(out, "same_as_3=yes addr=127.0.0.1 nonblock=1 cloexec=1");
	ASSERT_STREQ(err, "");
	/* it asked for listen(fd, 5); the member's queue stays baton's 1024 */
	ASSERT_EQ(getsockopt(m, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
	ASSERT_EQ(ti.tcpi_sacked, 1024);
	/* a v4-mapped IPv6 bind is the same address */
	ASSERT_EQ(probe(m, env, "::ffff:127.0.0.1", port), 0);
	ASSERT_CONTAINS(out, "same_as_3=yes addr=127.0.0.1");
	close(m);
}

TEST(preload_wildcard_bind_serves_baton_address_and_says_so_once)
{
	char env[128];
	uint16_t port;
	int m;

	m = member_env(env, sizeof(env), &port);
	ASSERT_EQ(probe(m, env, "0.0.0.0", port), 0);
	ASSERT_CONTAINS(out, "same_as_3=yes addr=127.0.0.1");
	ASSERT_EQ(lines(err), 1);
	ASSERT_CONTAINS(err, "libbaton-preload: ");
	close(m);
}

TEST(preload_leaves_unmanaged_addresses_alone)
{
	char env[128];
	uint16_t port;
	int m;

	m = member_env(env, sizeof(env), &port);
	ASSERT_EQ(probe(m, env, "127.0.0.1", port == 65535 ? 1 : port + 1), 0);
	ASSERT_CONTAINS(out, "same_as_3=no");
	ASSERT_STREQ(err, "");
	ASSERT_EQ(probe(m, env, "::1", port), 0);	/* another family */
	ASSERT_CONTAINS(out, "same_as_3=no addr=::1");
	ASSERT_STREQ(err, "");
	close(m);
}

TEST(preload_with_malformed_environment_does_nothing_and_says_so_once)
{
	static const char *const bad[] = {
		"garbage", "v2;tcp:127.0.0.1:%u=3", "v1;tcp:127.0.0.1=3", "v1;tcp:127.0.0.1:%u=x",
		"v1;sctp:127.0.0.1:%u=3", "v1;tcp:[::1:%u=3", "v1;tcp:127.0.0.1:%u=9", "v1;tcp:127.0.0.1:99999=3",
	};
	uint16_t port;
	int m;

	bt_need_netns();
	m = member_on(&port);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char env[128];

		snprintf(env, sizeof(env), bad[i], port);
		/* the program runs: it binds a free port of its own, untouched */
		ASSERT_EQ(probe(m, env, "127.0.0.1", port + 1), 0);
		ASSERT_CONTAINS(out, "same_as_3=no");
		ASSERT_EQ(lines(err), 1);
		ASSERT_CONTAINS(err, "libbaton-preload: ");
		ASSERT_CONTAINS(err, "doing nothing");
	}
	close(m);
}

TEST(preload_without_baton_does_nothing_and_says_so_once)
{
	bt_need_netns();
	ASSERT_EQ(probe(-1, NULL, "127.0.0.1", PORT), 0);
	ASSERT_CONTAINS(out, "same_as_3=no");
	ASSERT_EQ(lines(err), 1);
	ASSERT_CONTAINS(err, "BATON_PRELOAD");
}

/* ---- real servers under load ------------------------------------------------- */

/* In baton run's child: as a background job of a script starts it, with
 * SIGINT and SIGQUIT ignored; the servers' stop signals must reach them all
 * the same. */
static void like_a_background_job(void *ctx)
{
	(void)ctx;
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
}

/* Starts `baton run --name web --listen LISTEN OPTS -- CMD` (ARGV: OPTS,
 * "--", CMD..., NULL) and waits until generation 1 is active. */
static void sv_start_on(struct bt_sv *s, const char *listen, char *const argv[])
{
	/* the health watch is not under test: a 100 ms stall of a loaded
	 * python server would start a reload of its own, and the test's next
	 * reload would then be refused as "already in progress" */
	s->timeout_s = 15;
	bt_sv_run_web(s, listen, argv, like_a_background_job, out, sizeof(out));
}

/* sv_start_on tcp://127.0.0.1:8080?backlog=1024 */
static void sv_start(struct bt_sv *s, char *const argv[])
{
	sv_start_on(s, "tcp://127.0.0.1:8080?backlog=1024", argv);
}

/* sv_start_on the same port with ?handoff=idle */
static void sv_start_idle(struct bt_sv *s, char *const argv[])
{
	char listen[96];

	snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d?backlog=1024&handoff=idle", PORT);
	sv_start_on(s, listen, argv);
}

static void sv_stop(struct bt_sv *s)
{
	bt_supervisor_stop(&s->pid, 15);
}

static void sv_dir(struct bt_sv *s)
{
	bt_sv_init_server(s, "servers");
}

/* The operator's way first: `baton stop` through the control socket must
 * be answered after the reloads (a health watch that re-armed on a reused
 * descriptor number once left the supervisor deaf to it), then reaped. */
static void sv_stop_ctx(void *ctx)
{
	ASSERT_EQ(bt_baton("stop", "web"), 0);
	ASSERT_CONTAINS(out, "stopped");
	sv_stop(ctx);
}

/* 20 reloads under load; not one request may fail. */
static void reload_20_under_load(struct bt_sv *s, const char *logname)
{
	bt_reload_under_load(&(struct bt_reload_load){ .port = PORT, .reloads = 20, .warmup_ms = 100, .dir = s->dir,
						       .logname = logname, .says = { "serves" }, .stop = sv_stop_ctx,
						       .ctx = s });
}

/* lighttpd serving "ok" from DIR on 127.0.0.1:PORT, socket-activated, with
 * the lines MORE; the configuration's path into CONFPATH. */
static void lighttpd_conf(const struct bt_sv *s, const char *more, char *confpath, size_t len)
{
	char conf[2048];

	bt_write_file(s->dir, "index.html", "ok\n");
	snprintf(conf, sizeof(conf),
		 "server.document-root = \"%s\"\nserver.bind = \"127.0.0.1\"\nserver.port = %d\n"
		 "server.systemd-socket-activation = \"enable\"\nserver.errorlog = \"%s/error.log\"\n"
		 "index-file.names = ( \"index.html\" )\n%s",
		 s->dir, PORT, s->dir, more);
	bt_write_file(s->dir, "lighttpd.conf", conf);
	snprintf(confpath, len, "%s/lighttpd.conf", s->dir);
}

/* LIGHTTPD under baton run on PORT (IDLE: with ?handoff=idle), with the
 * lines MORE in its configuration. It reads LISTEN_FDS itself: no shim. It
 * sends no sd_notify, so readiness is a delay; INT is its graceful stop. */
static void lighttpd_start(struct bt_sv *s, const char *lighttpd, const char *more, bool idle)
{
	static char confpath[128];
	char *argv[] = { "--no-preload", "--ready", "delay:300ms", "--stop-signal", "INT", "--grace", "10s", "--",
			 (char *)lighttpd, "-D", "-f", confpath, NULL };

	lighttpd_conf(s, more, confpath, sizeof(confpath));
	(idle ? sv_start_idle : sv_start)(s, argv);
}

static void need_root_servers(void)
{
	bt_baton_bin();
	bt_need_env("BATON_LOADGEN", "load client");
	if (geteuid() != 0)
		SKIP("real servers need root here (network namespace, eBPF, nginx's worker user)");
	bt_need_netns();
	bt_need_ebpf();
}

TEST_TIMEOUT(server_nginx_master_workers_through_the_shim_20_reloads_lose_nothing, 120)
{
	const char *nginx = bt_need_server("nginx", "nginx");
	char confpath[128];
	struct bt_sv s;

	need_root_servers();
	sv_dir(&s);
	bt_nginx_conf(s.dir, &(struct bt_nginx_opts){ .port = PORT }, confpath, sizeof(confpath));
	/* QUIT: nginx's graceful stop; readiness: the master's listen(), via the shim */
	char *argv[] = { "--stop-signal", "QUIT", "--grace", "10s", "--", (char *)nginx, "-c", confpath,
			 "-p", s.dir, NULL };

	sv_start(&s, argv);
	reload_20_under_load(&s, "error.log");
}

TEST_TIMEOUT(server_python_http_server_through_the_shim_20_reloads_lose_nothing, 120)
{
	const char *py = bt_need_server("python3", "python3");
	char port[16];
	struct bt_sv s;

	need_root_servers();
	sv_dir(&s);
	bt_write_file(s.dir, "index.html", "ok\n");
	snprintf(port, sizeof(port), "%d", PORT);
	/* SIGTERM kills python mid-request; SIGINT raises KeyboardInterrupt,
	 * after which http.server joins its request threads. --stop-when-idle
	 * sends it only once the old process holds no connection, so it cannot
	 * land between accept() and the thread that serves. */
	char *argv[] = { "--ready", "listen", "--stop-signal", "INT", "--stop-when-idle", "--grace", "10s", "--",
			 (char *)py, "-m", "http.server", "--bind", "127.0.0.1", "--directory", s.dir, port, NULL };

	sv_start(&s, argv);
	reload_20_under_load(&s, NULL);
}

TEST_TIMEOUT(server_lighttpd_socket_activation_20_reloads_lose_nothing, 120)
{
	const char *lighttpd = bt_need_server("lighttpd", "lighttpd");
	struct bt_sv s;

	need_root_servers();
	sv_dir(&s);
	lighttpd_start(&s, lighttpd, "", false);
	reload_20_under_load(&s, "error.log");
}

/* ---- keep-alive across reloads: ?handoff=idle ---------------------------------- */

static void nginx_conf(struct bt_sv *s, char *confpath, size_t len)
{
	bt_nginx_conf(s->dir, &(struct bt_nginx_opts){ .port = PORT, .http = " keepalive_requests 100000;\n" }, confpath,
		      len);
}

/* nginx at its graceful stop closes every keep-alive connection it holds
 * idle, while the client may already be sending its next request on it.
 * With ?handoff=idle each of them goes to the new generation instead: not
 * one request fails, none even needs the client's retry on a fresh
 * connection, every reload hands off at least one connection, and the new
 * generations answer on them. */
TEST_ALONE(server_nginx_keepalive_handoff_10_reloads_not_one_connection_closed, 120)
{
	const char *nginx = bt_need_server("nginx", "nginx");
	char confpath[128];
	const char *report;
	long long handed = 0, now;
	struct bt_load load;
	struct bt_sv s;

	need_root_servers();
	sv_dir(&s);
	nginx_conf(&s, confpath, sizeof(confpath));
	char *argv[] = { "--stop-signal", "QUIT", "--grace", "10s", "--", (char *)nginx, "-c", confpath,
			 "-p", s.dir, NULL };

	sv_start_idle(&s, argv);
	load = bt_load_start(PORT, "keepalive", "600", 16);
	for (int i = 0; i < 10; i++) {
		if (bt_baton("reload", "web") != 0) {
			bt_sv_quote(&s, "baton.log");
			kill(load.pid, SIGTERM);
			bt_load_finish(&load, 20);
			FAIL("reload %d failed: %s%s", i + 1, out, err);
		}
		/* the old generation closes its idle connections soon after
		 * QUIT; each reload must hand off at least one of the 16 */
		for (int tries = 0; tries < 100; tries++) {
			now = bt_json_get(bt_status_object("web", "handoff"), "handed_off");
			if (now > handed)
				break;
			usleep(20000);
		}
		if (now <= handed) {
			bt_sv_quote(&s, "baton.log");
			kill(load.pid, SIGTERM);
			bt_load_finish(&load, 20);
			FAIL("reload %d handed off no connection: %s", i + 1, bt_status_object("web", "handoff"));
		}
		handed = now;
		usleep(100000);
	}
	usleep(300000);
	kill(load.pid, SIGTERM);
	report = bt_load_finish(&load, 20);
	bt_log("load: %s", report);
	bt_log("status: %s", bt_status_object("web", "handoff"));
	ASSERT_EQ(bt_json_get(bt_status_json("web"), "reloads_done"), 10);
	ASSERT_EQ(bt_json_get(bt_status_object("web", "handoff"), "failed"), 0);
	ASSERT_GE(bt_json_get(bt_status_object("web", "handoff"), "handed_off"), 10);
	/* requests the new generations answered on connections they took over */
	ASSERT_GT(bt_json_get(bt_status_object("web", "handoff"), "answered"), 0);
	/* and for a scrape */
	ASSERT_EQ(bt_baton("status", "web", "--metrics"), 0);
	{
		const char *m = strstr(out, "baton_handoff_connections_total{name=\"web\",result=\"handed_off\"} ");

		ASSERT_TRUE(m != NULL);
		ASSERT_GE(atoll(strchr(m, '}') + 2), 10);
		ASSERT_CONTAINS(out, "baton_handoff_connections_total{name=\"web\",result=\"expired\"} 0\n");
	}
	sv_stop(&s);
	ASSERT_GT(bt_json_get(report, "answered"), 500);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	ASSERT_EQ(bt_json_get(report, "closed_idle"), 0);
	/* the client's 16 connections are the ones it opened first: every one
	 * outlived all 10 generations it started on */
	ASSERT_EQ(bt_json_get(report, "connections"), 16);
}

/* lighttpd takes its sockets through socket activation, with no shim: it
 * gets the zero-loss reload of its listener, not the handoff of its idle
 * connections (only the shim can see a close()). baton says so, counts no
 * handoff, and the client's retry on a fresh connection is what saves the
 * requests lighttpd's graceful stop cuts off. */
TEST_TIMEOUT(server_lighttpd_keepalive_gets_no_handoff_without_the_shim, 120)
{
	const char *lighttpd = bt_need_server("lighttpd", "lighttpd");
	char logpath[128];
	const char *report;
	struct bt_load load;
	struct bt_sv s;

	need_root_servers();
	sv_dir(&s);
	lighttpd_start(&s, lighttpd, "server.max-keep-alive-requests = 100000\n", true);
	load = bt_load_start(PORT, "keepalive", "600", 16);
	for (int i = 0; i < 10; i++) {
		ASSERT_EQ(bt_baton("reload", "web"), 0);
		usleep(200000);
	}
	usleep(300000);
	kill(load.pid, SIGTERM);
	report = bt_load_finish(&load, 20);
	bt_log("load: %s", report);
	ASSERT_EQ(bt_json_get(bt_status_object("web", "handoff"), "handed_off"), 0);
	ASSERT_EQ(bt_json_get(bt_status_object("web", "handoff"), "offered"), 0);
	sv_stop(&s);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	snprintf(logpath, sizeof(logpath), "%s/baton.log", s.dir);
	bt_read_file(logpath, out, sizeof(out));
	ASSERT_CONTAINS(out, "handoff=idle needs the preload shim");
}

/* ---- many listeners through the shim ----------------------------------------- */

static const char *v6_host;	/* listeners after the first on this IPv6 address; NULL: 127.0.0.1 */

/* One request to listener P's address (PORT + P); true if answered 200. */
static bool answered(int p)
{
	char buf[256] = "";
	struct timeval tv = { .tv_sec = 5 };
	ssize_t n, got = 0;
	int fd;

	if (v6_host && p > 0) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)(PORT + p)) };

		inet_pton(AF_INET6, v6_host, &a.sin6_addr);
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			close(fd);
			fd = -1;
		}
	} else {
		fd = bt_connect((uint16_t)(PORT + p));
	}
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, "GET / HTTP/1.0\r\n\r\n", 18) != 18) {
		close(fd);
		return false;
	}
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return strstr(buf, " 200 ") != NULL;
}

/* nginx with NL listen directives and baton run with the same NL --listen:
 * the shim puts every one of baton's members on nginx's fds (nginx's own
 * bind() of an address baton holds would fail with EADDRINUSE and it would
 * exit), every port answers, and reloads under load lose nothing. */
static void nginx_with_listeners(int nl, int reloads)
{
	const char *nginx = bt_need_server("nginx", "nginx");
	char *conf, confpath[128], logpath[128], (*specs)[96], **args;
	const char *report;
	size_t off, cap = 4096 + (size_t)nl * 96;
	struct bt_sv s;
	struct bt_load load;
	int n = 0, p;

	need_root_servers();
	if (v6_host) {
		char addr[80], *ip[] = { "/sbin/ip", "-6", "addr", "add", addr, "dev", "lo", "nodad", NULL };

		/* in this test's network namespace (need_root_servers made it) */
		snprintf(addr, sizeof(addr), "%s/128", v6_host);
		if (bt_run(ip, out, sizeof(out), err, sizeof(err), 10))
			SKIP("cannot add an IPv6 address to lo here: %s", err);
	}
	sv_dir(&s);
	conf = malloc(cap);
	specs = calloc((size_t)nl, sizeof(*specs));
	args = calloc((size_t)nl * 2 + 32, sizeof(*args));
	ASSERT_TRUE(conf && specs && args);
	off = (size_t)snprintf(conf, cap,
			       "worker_processes 2;\ndaemon off;\nmaster_process on;\npid %s/nginx.pid;\n"
			       "error_log %s/error.log;\nevents { worker_connections 1024; }\n"
			       "http {\n access_log off;\n client_body_temp_path %s; proxy_temp_path %s; "
			       "fastcgi_temp_path %s;\n uwsgi_temp_path %s; scgi_temp_path %s;\n server {\n",
			       s.dir, s.dir, s.dir, s.dir, s.dir, s.dir, s.dir);
	for (p = 0; p < nl; p++)
		off += (size_t)snprintf(conf + off, cap - off, v6_host && p ? "  listen [%s]:%d;\n" : "  listen %s:%d;\n",
					v6_host && p ? v6_host : "127.0.0.1", PORT + p);
	snprintf(conf + off, cap - off, "  location / { return 200 \"ok\\n\"; }\n }\n}\n");
	bt_write_file(s.dir, "nginx.conf", conf);
	snprintf(confpath, sizeof(confpath), "%s/nginx.conf", s.dir);
	snprintf(logpath, sizeof(logpath), "%s/baton.log", s.dir);
	n = bt_argv_add(args, n, nl * 2 + 32, bt_baton_bin(), "run", "--name", "web", "--hang-threshold", "2s", NULL);
	for (p = 0; p < nl; p++) {
		snprintf(specs[p], sizeof(specs[p]), v6_host && p ? "tcp://[%s]:%d?backlog=1024" : "tcp://%s:%d?backlog=1024",
			 v6_host && p ? v6_host : "127.0.0.1", PORT + p);
		n = bt_argv_add(args, n, nl * 2 + 32, "--listen", specs[p], NULL);
	}
	bt_argv_add(args, n, nl * 2 + 32, "--stop-signal", "QUIT", "--grace", "10s", "--", nginx, "-c", confpath, "-p",
		    s.dir, NULL);
	s.pid = bt_supervisor_start(args, "web", logpath, like_a_background_job, NULL, 60, out, sizeof(out));
	{
		/* which way the map went: the environment, or a memfd past 8 KiB
		 * after the members (nginx rewrites its environ for its title) */
		const char *g = strstr(out, "\"state\":\"active\"");
		char path[64], link[256] = "";

		ASSERT_TRUE(g != NULL);
		while (g > out && strncmp(g, "\"pid\":", 6))
			g--;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", atoi(g + 6), 3 + nl);
		if (readlink(path, link, sizeof(link) - 1) < 0)
			link[0] = '\0';
		bt_log("fd %d of nginx: %s", 3 + nl, link);
		ASSERT_EQ(!strncmp(link, "/memfd:baton-preload", 20), v6_host != NULL);
	}
	for (p = 0; p < nl; p++)
		if (!answered(p)) {
			bt_sv_quote(&s, "baton.log");
			bt_sv_quote(&s, "error.log");
			FAIL("port %d (listener %d of %d) did not answer", PORT + p, p + 1, nl);
		}
	/* the counting load client, connection per request, 16 at once */
	load = bt_load_start(PORT, "conn", "600", 16);
	usleep(100000);	/* 300 ms in all: full load before the first reload */
	for (int i = 0; i < reloads; i++) {
		if (bt_baton("reload", "web") != 0) {
			bt_sv_quote(&s, "baton.log");
			bt_sv_quote(&s, "error.log");
			bt_load_stop(&load, 20);
			FAIL("reload %d failed: %s%s", i + 1, out, err);
		}
		usleep(100000);
	}
	usleep(300000);
	report = bt_load_stop(&load, 20);
	bt_log("load: %s", report);
	for (p = 0; p < nl; p++)
		ASSERT_TRUE(answered(p));
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), reloads);
	ASSERT_EQ(bt_json_get(out, "restarts"), 0);
	sv_stop(&s);
	/* the shim never gave up on a generation */
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "grep -c 'doing nothing' %s/baton.log", s.dir);
		FILE *f = popen(cmd, "r");
		int c = -1;

		ASSERT_TRUE(f != NULL);
		ASSERT_EQ(fscanf(f, "%d", &c), 1);
		pclose(f);
		if (c)
			bt_sv_quote(&s, "baton.log");
		ASSERT_EQ(c, 0);
	}
	ASSERT_GT(bt_json_get(report, "answered"), 200);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	free(conf);
	free(specs);
	free(args);
}

TEST_TIMEOUT(server_nginx_17_listeners_all_through_the_shim_reloads_lose_nothing, 120)
{
	nginx_with_listeners(17, 10);
}

TEST_TIMEOUT(server_nginx_64_listeners_all_through_the_shim_reloads_lose_nothing, 180)
{
	nginx_with_listeners(64, 10);
}

struct memfd_probe {
	int member, map, map_at;
	const char *lib;
	char env[32];
};

/* The member as fd 3 and the map's memfd where baton run puts it. */
static void memfd_probe_child(void *ctx)
{
	struct memfd_probe *e = ctx;
	char pid[16];
	int m = fcntl(e->member, F_DUPFD_CLOEXEC, 100), f = fcntl(e->map, F_DUPFD_CLOEXEC, 100);

	/* lifted first: either may sit at 3 or 4 in the test (dup2 of an fd
	 * onto itself would keep its close-on-exec) */
	dup2(m, 3);
	dup2(f, e->map_at);
	setenv("LD_PRELOAD", e->lib, 1);
	unsetenv("NOTIFY_SOCKET");
	setenv("BATON_PRELOAD", e->env, 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);	/* as baton run sets it */
}

/* A map too large for one environment string (4,096 IPv6 entries are
 * 160 KiB; one string may hold 128 KiB) comes in a sealed memfd: the shim
 * reads every entry, substitutes the last one, and leaves the memfd closed
 * for the server. An fd number that is no sealed memfd is refused. */
TEST(preload_map_in_a_memfd_carries_4096_entries)
{
	struct memfd_probe e = { .lib = bt_need_env("BATON_PRELOAD_LIB", "preload shim") };
	const char *bin = bt_need_env("BATON_PROBE", "preload probe");
	size_t cap = 4096 * 64, off;
	char *text = malloc(cap), portstr[16];
	char *argv[] = { (char *)bin, "127.0.0.1", portstr, "--children", NULL }, wrap[512];
	char *argv_sh[] = { "/bin/sh", "-c", wrap, NULL };
	uint16_t port;

	bt_need_netns();
	ASSERT_TRUE(text != NULL);
	e.member = member_on(&port);
	off = (size_t)snprintf(text, cap, "v1");
	/* 4,095 entries for fds the probe does not have would stop the shim:
	 * they all name fd 3, with addresses the probe does not bind */
	for (int i = 0; i < 4095; i++)
		off += (size_t)snprintf(text + off, cap - off, ";tcp:[fd00:1234:5678:9abc:def0:1234:%x:%x]:%u=3",
					i / 256, i % 256, port);
	off += (size_t)snprintf(text + off, cap - off, ";tcp:127.0.0.1:%u=3", port);
	ASSERT_GT(off, 128 * 1024);
	e.map = memfd_create("test-map", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_GE(e.map, 0);
	ASSERT_EQ(write(e.map, text, off), (ssize_t)off);
	ASSERT_EQ(fcntl(e.map, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL), 0);
	e.map_at = 4;
	snprintf(e.env, sizeof(e.env), "v1fd:4");
	snprintf(portstr, sizeof(portstr), "%u", port);
	int st = bt_run_with(argv, memfd_probe_child, &e, out, sizeof(out), err, sizeof(err), 10);

	bt_log("probe: %s%s", out, err);
	ASSERT_EQ(st, 0);
	ASSERT_CONTAINS(out, "same_as_3=yes addr=127.0.0.1");
	/* the memfd stays open for the server, and like the members it is
	 * kept from the programs the server runs, whose shims say nothing */
	ASSERT_CONTAINS(out, "fd=5 ");
	ASSERT_CONTAINS(out, "system() listening: (0)");
	ASSERT_STREQ(err, "");
	/* a wrapper (sh -c 'exec server') passes the map on */
	snprintf(wrap, sizeof(wrap), "exec '%s' 127.0.0.1 %s", bin, portstr);
	st = bt_run_with(argv_sh, memfd_probe_child, &e, out, sizeof(out), err, sizeof(err), 10);
	bt_log("probe through sh: %s%s", out, err);
	ASSERT_EQ(st, 0);
	ASSERT_CONTAINS(out, "same_as_3=yes addr=127.0.0.1");
	ASSERT_STREQ(err, "");
	/* an unsealed file at that number is not baton's map */
	close(e.map);
	e.map = memfd_create("test-map", MFD_CLOEXEC);
	ASSERT_EQ(write(e.map, text, off), (ssize_t)off);
	snprintf(portstr, sizeof(portstr), "%u", port + 1);	/* its own socket, on a free port */
	argv[3] = NULL;
	ASSERT_EQ(bt_run_with(argv, memfd_probe_child, &e, out, sizeof(out), err, sizeof(err), 10), 0);
	ASSERT_CONTAINS(out, "same_as_3=no");
	ASSERT_CONTAINS(err, "not baton's sealed map");
	ASSERT_EQ(lines(err), 1);
	close(e.map);
	close(e.member);
	free(text);
}

/* A command that never says a word, is assumed ready after 2 s and then
 * fails (nginx whose bind() failed retries for 2.5 s, then exits 1): baton
 * run stops with exit status 1 and the reason, instead of restarting it
 * forever. */
TEST_TIMEOUT(run_gen1_assumed_ready_then_failing_stops_with_the_reason, 60)
{
	char dir[64] = "/tmp/baton-gen1fail-XXXXXX", port[64];
	uint16_t p;
	int fd;

	bt_need_netns();
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	setenv("BATON_RUNTIME_DIR", dir, 1);
	p = bt_listeners(&fd, 1, false);
	close(fd);
	snprintf(port, sizeof(port), "tcp://127.0.0.1:%u", p);
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "fails", "--listen", port, "--",
			 "/bin/sh", "-c", "sleep 3; echo cannot bind >&2; exit 1", NULL };
	int st = bt_run(argv, out, sizeof(out), err, sizeof(err), 40);

	bt_log("%s%s", out, err);
	ASSERT_EQ(st, 1);
	ASSERT_CONTAINS(err, "gen 1 exited with status 1");
	ASSERT_CONTAINS(err, "giving up rather than restarting");
	ASSERT_TRUE(strstr(err, "restarting in") == NULL);
	rmdir(dir);
}

/* As baton run starts a generation: LISTEN_PID is the server's own pid. */
static void probe_child_listen_pid(void *ctx)
{
	char pid[16];

	probe_child(ctx);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
}

/* Runs the probe with --children (and EXTRA): it binds the managed address,
 * then runs itself through system() and fork + exec, each child listing
 * the listening sockets it inherited. */
static int probe_children(int member, const char *preload, int port, const char *extra)
{
	struct probe_env e = { .member = member, .lib = bt_need_env("BATON_PRELOAD_LIB", "preload shim"),
			       .preload = preload };
	char portstr[16];
	char *argv[] = { (char *)bt_need_env("BATON_PROBE", "preload probe"), "127.0.0.1", portstr, "--children",
			 (char *)extra, NULL };
	int status;

	snprintf(portstr, sizeof(portstr), "%d", port);
	status = bt_run_with(argv, probe_child_listen_pid, &e, out, sizeof(out), err, sizeof(err), 10);
	bt_log("probe --children %s: %s%s", extra ? extra : "", out, err);
	return status;
}

/* A program the server runs (system(), popen(), fork + exec) must not
 * inherit a listening socket of baton's, from which it could accept the
 * server's clients: the substituted fd keeps the server's close-on-exec
 * choice and the shim's own copy (fd 3) is closed on exec. A server that
 * asked for an inheritable socket gets one, on its own fd number only. */
TEST(preload_children_of_the_server_inherit_no_listener_of_batons)
{
	char env[128];
	uint16_t port;
	int m;

	m = member_env(env, sizeof(env), &port);
	ASSERT_EQ(probe_children(m, env, port, NULL), 0);
	ASSERT_CONTAINS(out, "same_as_3=yes addr=127.0.0.1 nonblock=1 cloexec=1");
	ASSERT_CONTAINS(out, "system() listening: (0)");
	ASSERT_CONTAINS(out, "exec listening: (0)");
	ASSERT_STREQ(err, "");	/* the children's shims have nothing to say */
	/* SOCK_CLOEXEC not asked for: the server's fd 4 is inherited, as it
	 * wanted; baton's fd 3 is not */
	ASSERT_EQ(probe_children(m, env, port, "--inherit"), 0);
	ASSERT_CONTAINS(out, "same_as_3=yes addr=127.0.0.1 nonblock=1 cloexec=0");
	ASSERT_CONTAINS(out, "system() listening: 4 (1)");
	ASSERT_CONTAINS(out, "exec listening: 4 (1)");
	ASSERT_STREQ(err, "");
	close(m);
}


/* 160 listeners on a long IPv6 address: a map of 8.6 KiB, past the 8 KiB
 * that go in the environment, so the shim reads it from the sealed memfd
 * baton run passes (BATON_PRELOAD=v1fd:N). */
TEST_TIMEOUT(server_nginx_160_listeners_map_in_a_memfd_reloads_lose_nothing, 300)
{
	v6_host = "fd00:1234:5678:9abc:def0:1234:5678:9abc";
	nginx_with_listeners(160, 3);
	v6_host = NULL;
}
