/* SPDX-License-Identifier: BSD-2-Clause */
/* Socket and namespace helpers for the integration tests. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

bool bt_netns(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (unshare(CLONE_NEWNET))
		return false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		FAIL("socket: %s", strerror(errno));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		FAIL("SIOCGIFFLAGS lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		FAIL("bring lo up: %s", strerror(errno));
	close(fd);
	return true;
}

void bt_need_netns(void)
{
	if (!bt_netns())
		SKIP("cannot create a network namespace (%s): needs CAP_SYS_ADMIN", strerror(errno));
}

void bt_need_private_bpffs(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	if (unshare(CLONE_NEWNS))
		SKIP("cannot make a private mount namespace: %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		SKIP("cannot make mounts private: %s", strerror(errno));
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		SKIP("cannot mount bpffs at /sys/fs/bpf: %s", strerror(errno));
}

void bt_need_run_sandbox(void)
{
	bt_baton_bin();
	if (geteuid() != 0)
		SKIP("needs root (network namespace, bpffs)");
	bt_need_netns();
	bt_need_private_bpffs();
}

void bt_need_ebpf(void)
{
	char log[1024] = "";
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_collect, .log_ctx = log);
	struct baton_group *g = baton_group_new(&o);

	if (!g)
		SKIP("eBPF steering cannot load here (%s): needs CAP_BPF and CAP_NET_ADMIN, or root",
		     strerror(errno));
	baton_group_free(g);
}

void bt_lib_log(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)ctx;
	if (level <= BATON_LOG_INFO)
		bt_log("lib: %s", msg);
}

void bt_lib_collect(void *ctx, enum baton_log_level level, const char *msg)
{
	char *buf = ctx;
	size_t len = strlen(buf);

	(void)level;
	snprintf(buf + len, 1024 - len, "%s\n", msg);
}

uint16_t bt_listeners(int *fds, int n, bool udp)
{
	struct baton_spec spec;
	char err[256];
	uint16_t port = 0;
	int i;

	for (i = 0; i < n; i++) {
		char text[64];
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);

		snprintf(text, sizeof(text), "%s://127.0.0.1:%u?%s", udp ? "udp" : "tcp", port,
			 udp ? "name=t" : "backlog=1024");
		if (baton_spec_parse(text, &spec, err, sizeof(err)))
			FAIL("spec: %s", err);
		fds[i] = baton_listener_open(&spec);
		if (fds[i] < 0)
			FAIL("listener %d on port %u: %s", i, port, strerror(-fds[i]));
		if (getsockname(fds[i], (struct sockaddr *)&sin, &len))
			FAIL("getsockname: %s", strerror(errno));
		port = ntohs(sin.sin_port);
	}
	return port;
}

int bt_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		FAIL("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		FAIL("connect to port %u: %s", port, strerror(errno));
	return fd;
}

int bt_accept_which(const int *fds, int n, int timeout_ms, int *conn)
{
	struct pollfd pfd[64];
	int i, c;

	if (n > 64)
		FAIL("too many listeners");
	for (i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!(pfd[i].revents & POLLIN))
			continue;
		c = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			FAIL("accept on listener %d: %s", i, strerror(errno));
		if (conn)
			*conn = c;
		else
			bt_close_rst(c);
		return i;
	}
	return -1;
}

void bt_close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int bt_which_takes(uint16_t port, const int *fds, int n)
{
	int c = bt_connect(port), which = bt_accept_which(fds, n, 2000, NULL);

	bt_close_rst(c);
	return which;
}

int bt_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		FAIL("opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

static void slurp(int fd, char *buf, size_t len, size_t *got)
{
	ssize_t n = *got + 1 < len ? read(fd, buf + *got, len - *got - 1) : 0;

	if (n > 0) {
		*got += (size_t)n;
		buf[*got] = '\0';
	} else if (*got + 1 >= len) {
		char sink[256];	/* keep draining so the child never blocks */

		n = read(fd, sink, sizeof(sink));
		(void)n;
	}
}

int bt_run(char *const argv[], char *out, size_t outlen, char *err, size_t errlen, int timeout_s)
{
	return bt_run_with(argv, NULL, NULL, out, outlen, err, errlen, timeout_s);
}

int bt_run_with(char *const argv[], void (*child)(void *ctx), void *ctx, char *out, size_t outlen, char *err,
		size_t errlen, int timeout_s)
{
	int po[2], pe[2], status, open_fds = 2;
	size_t go = 0, ge = 0;
	time_t end = time(NULL) + timeout_s;
	pid_t pid;

	out[0] = err[0] = '\0';
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
		FAIL("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (child)
			child(ctx);
		execv(argv[0], argv);
		dprintf(2, "exec %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (open_fds && time(NULL) <= end) {
		struct pollfd p[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };

		if (poll(p, 2, 100) <= 0)
			continue;
		if (p[0].revents && p[0].fd >= 0) {
			size_t before = go;

			slurp(po[0], out, outlen, &go);
			if (go == before && (p[0].revents & POLLHUP) && !(p[0].revents & POLLIN))
				open_fds--, po[0] = -po[0] - 1;
		}
		if (p[1].revents && p[1].fd >= 0) {
			size_t before = ge;

			slurp(pe[0], err, errlen, &ge);
			if (ge == before && (p[1].revents & POLLHUP) && !(p[1].revents & POLLIN))
				open_fds--, pe[0] = -pe[0] - 1;
		}
	}
	if (open_fds) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	close(-po[0] - 1);
	close(-pe[0] - 1);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

const char *bt_baton_bin(void)
{
	const char *bin = getenv("BATON_BIN");

	if (!bin || access(bin, X_OK))
		SKIP("BATON_BIN does not name the baton binary (run through make check)");
	return bin;
}

long long bt_json_int(const char *text, const char *obj, const char *key)
{
	char pat[128];
	const char *o, *k, *end;

	snprintf(pat, sizeof(pat), "\"%s\": {", obj);
	o = strstr(text, pat);
	if (!o)
		FAIL("no object \"%s\" in: %s", obj, text);
	end = strchr(o, '}');
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	k = strstr(o, pat);
	if (!k || (end && k > end))
		FAIL("no \"%s\" in object \"%s\" of: %s", key, obj, text);
	return strtoll(k + strlen(pat), NULL, 10);
}

/* Where PAT starts in TEXT; fails the test, naming WHAT, if it is absent. */
static const char *find_or_fail(const char *text, const char *pat, const char *what)
{
	const char *k = strstr(text, pat);

	if (!k)
		FAIL("no %s in: %s", what, text);
	return k;
}

const char *bt_json_at(const char *text, const char *key)
{
	char pat[128];
	const char *k;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	k = find_or_fail(text, pat, pat) + strlen(pat);
	while (*k == ' ')
		k++;
	return k;
}

long long bt_json_get(const char *text, const char *key)
{
	return strtoll(bt_json_at(text, key), NULL, 10);
}

const char *bt_gen_json(const char *status, int id)
{
	char pat[32], what[32];

	snprintf(pat, sizeof(pat), "{\"id\":%d,", id);
	snprintf(what, sizeof(what), "generation %d", id);
	return find_or_fail(status, pat, what);
}

void bt_quote_file(const char *log)
{
	char buf[4096];
	ssize_t n;
	int fd = open(log, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		bt_log("%s:\n%s", log, buf);
	}
}

/* ARGV in a child with stdout and stderr to LOG (opened with OFLAG:
 * O_APPEND or O_TRUNC), CHILD(CTX) first there when CHILD is not NULL. */
static pid_t spawn_logged(char *const argv[], const char *log, int oflag, void (*child)(void *ctx), void *ctx)
{
	int logfd = open(log, O_WRONLY | O_CREAT | oflag | O_CLOEXEC, 0600);
	pid_t pid;

	if (logfd < 0)
		FAIL("open %s: %s", log, strerror(errno));
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		/* dup2 clears O_CLOEXEC on 1 and 2: only they reach the program */
		dup2(logfd, 1);
		dup2(logfd, 2);
		if (child)
			child(ctx);
		execv(argv[0], argv);
		_exit(127);
	}
	close(logfd);
	return pid;
}

pid_t bt_spawn_logged(char *const argv[], const char *log, bool append)
{
	return spawn_logged(argv, log, append ? O_APPEND : O_TRUNC, NULL, NULL);
}

pid_t bt_supervisor_start(char *const argv[], const char *name, const char *log, void (*child)(void *ctx),
			  void *ctx, int timeout_s, char *status, size_t len)
{
	static char st[65536], er[4096];
	char *query[] = { argv[0], "status", (char *)name, "--json", NULL };
	time_t deadline = time(NULL) + timeout_s;
	pid_t pid;

	/* baton run pins its steering state in bpffs: a private one per test,
	 * so that no test sees another's pins and none outlives its test */
	if (geteuid() == 0)
		bt_need_private_bpffs();
	pid = spawn_logged(argv, log, O_TRUNC, child, ctx);
	while (time(NULL) < deadline) {
		usleep(20000);
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			bt_quote_file(log);
			FAIL("baton run exited at start");
		}
		if (bt_run(query, st, sizeof(st), er, sizeof(er), 10) == 0 && strstr(st, "\"state\":\"active\"")) {
			snprintf(status, len, "%s", st);
			return pid;
		}
	}
	bt_quote_file(log);
	FAIL("baton run did not serve within %d s: %s", timeout_s, er);
}

void bt_supervisor_stop(pid_t *pid, int timeout_s)
{
	time_t deadline = time(NULL) + timeout_s;
	int status = 0;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	while (waitpid(*pid, &status, WNOHANG) != *pid) {
		if (time(NULL) > deadline) {
			kill(*pid, SIGKILL);
			waitpid(*pid, NULL, 0);
			FAIL("baton run did not stop within %d s of SIGTERM", timeout_s);
		}
		usleep(10000);
	}
	*pid = 0;
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
}

static char shared_dir[] = "/tmp/baton-bin-XXXXXX", shared_path[64], shared_orig[4096];

/* A checkout may sit in a directory other users cannot enter (mktemp -d
 * makes 0700 ones): give nobody a copy of the binary it can run, in a 0755
 * directory of its own (libbaton is linked in statically). */
void bt_share_baton_bin(void)
{
	char *dir = shared_dir, *path = shared_path, buf[65536];
	int in, outfd;
	ssize_t n;

	if (!mkdtemp(dir) || chmod(dir, 0755))
		return;
	snprintf(path, sizeof(shared_path), "%s/baton", dir);
	in = open(bt_baton_bin(), O_RDONLY | O_CLOEXEC);
	outfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (in < 0 || outfd < 0)
		goto out;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(outfd, buf, (size_t)n) != n)
			goto out;
	if (n == 0) {
		snprintf(shared_orig, sizeof(shared_orig), "%s", bt_baton_bin());
		setenv("BATON_BIN", path, 1);
	}
out:
	if (in >= 0)
		close(in);
	if (outfd >= 0)
		close(outfd);
}

void bt_unshare_baton_bin(void)
{
	if (shared_path[0])
		unlink(shared_path);
	rmdir(shared_dir);
	if (shared_orig[0])
		setenv("BATON_BIN", shared_orig, 1);
}

struct bt_load bt_load_start(uint16_t port, const char *mode, const char *seconds, int concurrency)
{
	const char *gen = getenv("BATON_LOADGEN");
	char portstr[16], conc[16];
	struct bt_load l;
	int p[2];

	if (!gen || access(gen, X_OK))
		SKIP("BATON_LOADGEN does not name the load client (run through make check)");
	snprintf(portstr, sizeof(portstr), "%u", port);
	snprintf(conc, sizeof(conc), "%d", concurrency);
	if (pipe2(p, O_CLOEXEC))
		FAIL("pipe: %s", strerror(errno));
	l.pid = fork();
	if (l.pid == 0) {
		char *argv[] = { (char *)gen, "--port", portstr, "--mode", (char *)mode, "--concurrency", conc,
				 "--duration", (char *)seconds, "--timeout-ms", "3000", "--json", NULL };

		dup2(p[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	l.fd = p[0];
	usleep(200000);	/* let it reach full load before anything happens */
	return l;
}

const char *bt_load_stop(struct bt_load *l, int timeout_s)
{
	kill(l->pid, SIGTERM);	/* loadgen reports what it counted on SIGTERM */
	return bt_load_finish(l, timeout_s);
}

const char *bt_load_finish(struct bt_load *l, int timeout_s)
{
	static char report[8192];
	size_t got = 0;
	long long deadline = time(NULL) + timeout_s;
	int status;

	for (;;) {
		struct pollfd p = { .fd = l->fd, .events = POLLIN };
		ssize_t n;

		if (time(NULL) > deadline) {
			kill(l->pid, SIGKILL);
			FAIL("load client did not finish in %d s", timeout_s);
		}
		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(l->fd, report + got, sizeof(report) - got - 1);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	report[got] = '\0';
	close(l->fd);
	waitpid(l->pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return report;
}

/* ---- the fixture ------------------------------------------------------------ */

const char *bt_need_env(const char *var, const char *what)
{
	const char *v = getenv(var);

	if (!v || access(v, X_OK))
		SKIP("%s does not name the %s (run through make check)", var, what);
	return v;
}

const char *bt_need_server(const char *name, const char *package)
{
	static char found[512];
	const char *dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin" };
	const char *req = getenv("BATON_REQUIRE_SERVERS");

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(found, sizeof(found), "%s/%s", dirs[i], name);
		if (!access(found, X_OK))
			return found;
	}
	if (req && !strcmp(req, "1"))
		FAIL("%s is not installed (Debian package %s) and BATON_REQUIRE_SERVERS=1", name, package);
	SKIP("%s is not installed (Debian package %s; scripts/install-deps installs it)", name, package);
}

void bt_tmpdir(char *dir, size_t len, const char *tag)
{
	snprintf(dir, len, "/tmp/baton-%s-XXXXXX", tag);
	if (!mkdtemp(dir))
		FAIL("mkdtemp %s: %s", dir, strerror(errno));
}

void bt_runtime_tmpdir(char *dir, size_t len, const char *tag)
{
	bt_tmpdir(dir, len, tag);
	setenv("BATON_RUNTIME_DIR", dir, 1);
}

void bt_runtime_tmpdir_log(char *dir, size_t len, const char *tag, char *log, size_t loglen)
{
	bt_runtime_tmpdir(dir, len, tag);
	snprintf(log, loglen, "%s/log", dir);
}

void bt_sv_tmpdir(char *dir, size_t len, const char *tag)
{
	char run[PATH_MAX];

	bt_tmpdir(dir, len, tag);
	chmod(dir, 0755);	/* nginx workers and lighttpd may run as another user */
	/* the runtime directory must be baton's alone (0700): one inside */
	snprintf(run, sizeof(run), "%s/run", dir);
	setenv("BATON_RUNTIME_DIR", run, 1);
}

void bt_write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
	f = fopen(path, "w");
	if (!f)
		FAIL("fopen %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

int bt_baton_into(char *out, size_t outlen, char *err, size_t errlen, int timeout_s, ...)
{
	char *argv[32];
	const char *a;
	int n = 0;
	va_list ap;

	argv[n++] = (char *)bt_baton_bin();
	va_start(ap, timeout_s);
	while ((a = va_arg(ap, const char *)) && n < 31)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return bt_run(argv, out, outlen, err, errlen, timeout_s);
}

void bt_nginx_conf(const char *dir, const struct bt_nginx_opts *o, char *confpath, size_t len)
{
	char conf[2048];

	snprintf(conf, sizeof(conf),
		 "worker_processes 2;\ndaemon off;\nmaster_process on;\npid %s/nginx.pid;\n"
		 "error_log %s/error.log;\nevents { worker_connections 1024; }\n"
		 "http {\n access_log off;\n%s client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
		 " uwsgi_temp_path %s; scgi_temp_path %s;\n"
		 " server { listen 127.0.0.1:%d%s; location / { return 200 \"ok\\n\"; } }\n}\n",
		 dir, dir, o->http ? o->http : "", dir, dir, dir, dir, dir, o->port, o->listen ? o->listen : "");
	bt_write_file(dir, "nginx.conf", conf);
	snprintf(confpath, len, "%s/nginx.conf", dir);
}

/* Prometheus's own checker on TEXT; skips without it. */
void bt_promtool(const char *dir, const char *text)
{
	char path[128], cmd[400];
	FILE *f;
	int r;

	if (system("command -v promtool >/dev/null 2>&1"))
		SKIP("promtool is not installed (Debian package prometheus): the format was not checked by it");
	snprintf(path, sizeof(path), "%s/metrics.txt", dir);
	f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s.out 2>&1", path, path);
	r = system(cmd);
	snprintf(cmd, sizeof(cmd), "%s.out", path);
	bt_quote_file(cmd);
	ASSERT_EQ(r, 0);
}

long long bt_active_pid(const char *status)
{
	const char *p = strstr(status, "\"state\":\"active\"");

	ASSERT_TRUE(p != NULL);
	while (p > status && strncmp(p, "{\"id\":", 6))
		p--;
	return bt_json_get(p, "pid");
}

int bt_which_takes_from(const void *src, const void *dst, const int *fds, int n)
{
	const struct sockaddr_in *s4 = src;
	const struct sockaddr_in6 *s6 = src;
	socklen_t len = s4->sin_family == AF_INET6 ? sizeof(*s6) : sizeof(*s4);
	uint16_t sport = ntohs(s4->sin_family == AF_INET6 ? s6->sin6_port : s4->sin_port);
	int c = socket(s4->sin_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, who, conn = -1;

	if (c < 0)
		FAIL("socket: %s", strerror(errno));
	setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sport && bind(c, src, len))
		FAIL("bind to source port %u: %s", sport, strerror(errno));
	if (connect(c, dst, len))
		FAIL("connect: %s", strerror(errno));
	who = bt_accept_which(fds, n, 2000, &conn);
	if (conn >= 0)
		bt_close_rst(conn);
	bt_close_rst(c);
	return who;
}

int bt_argv_add(char **argv, int n, int cap, ...)
{
	const char *a;
	va_list ap;

	va_start(ap, cap);
	while ((a = va_arg(ap, const char *))) {
		if (n >= cap - 1)
			FAIL("more than %d arguments (from \"%s\" on)", cap - 1, a);
		argv[n++] = (char *)a;
	}
	va_end(ap);
	argv[n] = NULL;
	return n;
}

long long bt_net_counter(const char *proto, const char *name)
{
	static const char *const files[] = { "/proc/net/snmp", "/proc/net/netstat" };
	char head[4096], vals[4096];
	size_t pl = strlen(proto);

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f = fopen(files[i], "re");
		long long v = -1;

		while (f && v < 0 && fgets(head, sizeof(head), f) && fgets(vals, sizeof(vals), f)) {
			char *hs, *vs, *h = strtok_r(head, " \n", &hs), *x = strtok_r(vals, " \n", &vs);

			if (!h || strncmp(h, proto, pl) || strcmp(h + pl, ":"))
				continue;
			while ((h = strtok_r(NULL, " \n", &hs)) && (x = strtok_r(NULL, " \n", &vs)))
				if (!strcmp(h, name)) {
					v = atoll(x);
					break;
				}
		}
		if (f)
			fclose(f);
		if (v >= 0)
			return v;
	}
	return -1;
}

int bt_many_listeners_argv(char **argv, int cap, char (*listen)[64], int n, int port0, const char *first,
			   const char *opt)
{
	int a = bt_argv_add(argv, 0, cap, bt_baton_bin(), "run", "--name", "web", NULL);

	for (int i = 0; i < n; i++) {
		snprintf(listen[i], 64, "tcp://127.0.0.1:%d%s", port0 + i, i ? "" : first);
		a = bt_argv_add(argv, a, cap, "--listen", listen[i], NULL);
	}
	if (opt)
		a = bt_argv_add(argv, a, cap, opt, NULL);
	return bt_argv_add(argv, a, cap, "--ready", "delay:50ms", "--grace", "1s", "--", "/bin/sleep", "600", NULL);
}

size_t bt_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	return got;
}

const char *bt_status_json(const char *name)
{
	static char out[65536], err[4096];

	if (bt_baton("status", name, "--json"))
		FAIL("baton status %s --json: %s", name, err);
	return out;
}

const char *bt_status_object(const char *name, const char *obj)
{
	const char *doc = bt_status_json(name), *o;
	char pat[64];

	snprintf(pat, sizeof(pat), "\"%s\":{", obj);
	o = strstr(doc, pat);
	if (!o)
		FAIL("no %s object in baton status: %s", obj, doc);
	return o;
}

pid_t bt_status_active_pid(const char *name)
{
	return (pid_t)bt_active_pid(bt_status_json(name));
}

void bt_cli_cases(const struct bt_cli_case *cases, size_t n)
{
	static char out[65536], err[16384];

	for (size_t i = 0; i < n; i++) {
		const struct bt_cli_case *c = &cases[i];
		char *argv[10] = { (char *)bt_baton_bin() }, words[256] = "";
		int st;

		for (int k = 0; k < 8 && c->args[k]; k++) {
			argv[k + 1] = (char *)c->args[k];
			snprintf(words + strlen(words), sizeof(words) - strlen(words), " %s", c->args[k]);
		}
		st = bt_run(argv, out, sizeof(out), err, sizeof(err), 60);
		if (st != c->status)
			FAIL("baton%s: expected exit %d, got %d: %s%s", words, c->status, st, out, err);
		if (!strstr(c->status ? err : out, c->says))
			FAIL("baton%s: expected it to say \"%s\", got: %s", words, c->says, c->status ? err : out);
	}
}

struct baton_group *bt_group_new(const struct baton_group_opts *o)
{
	struct baton_group *g = baton_group_new(o);

	if (!g)
		FAIL("baton_group_new(%s): %s", baton_mode_name(o->mode), strerror(errno));
	return g;
}

void bt_connect_send(uint16_t port, int *fds, int n, const char *req)
{
	for (int i = 0; i < n; i++) {
		fds[i] = bt_connect(port);
		ASSERT_EQ(write(fds[i], req, strlen(req)), (ssize_t)strlen(req));
	}
}

uint64_t bt_cookie(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len))
		FAIL("SO_COOKIE: %s", strerror(errno));
	return c;
}

void bt_unix_request(const char *path, const void *req, size_t len, char *reply, size_t rlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		FAIL("connect %s: %s", path, strerror(errno));
	if (send(fd, req, len, MSG_NOSIGNAL) < 0)
		FAIL("send: %s", strerror(errno));
	n = recv(fd, reply, rlen - 1, MSG_WAITALL);
	reply[n > 0 ? n : 0] = '\0';
	close(fd);
}

pid_t bt_fork_pipe(int p[2])
{
	pid_t child;

	if (pipe2(p, O_CLOEXEC))
		FAIL("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		FAIL("fork: %s", strerror(errno));
	return child;
}
