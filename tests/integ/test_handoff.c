/* SPDX-License-Identifier: BSD-2-Clause */
/* The shim's idle handoff on its own, with this test in the supervisor's
 * place (its end of the generation's channel, and the map): an unmodified
 * server (a few lines of python) closes a keep-alive connection, and the
 * shim gives it over only when the generation drains and the server has
 * read nothing since its answer; otherwise, or with no supervisor to take
 * it, the close is a close. A supervisor that died finds what was given
 * meanwhile in the channel the generation keeps. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff_wire.h"
#include "harness.h"
#include "helpers.h"

/* accept one connection, answer one request (argv[2] "close": saying the
 * connection ends with it), then on each line of stdin:
 * "read" consumes whatever came (without answering), "rawread" likewise with
 * the read(2) system call itself, past the shim, "fork" starts a child
 * that holds the connection for 3 s, "close" closes it */
static const char server_py[] =
	"import os, socket, sys, time\n"
	"s = socket.socket()\n"
	"s.bind(('127.0.0.1', int(sys.argv[1])))\n"
	"s.listen(8)\n"
	"c, _ = s.accept()\n"
	"c.recv(4096)\n"
	"hdr = b'Connection: close\\r\\n' if sys.argv[2] == 'close' else b''\n"
	"c.sendall(b'HTTP/1.1 200 OK\\r\\n' + hdr + b'Content-Length: 3\\r\\n\\r\\nok\\n')\n"
	"print('answered', flush=True)\n"
	"for line in sys.stdin:\n"
	"    if line.startswith('read'):\n"
	"        c.recv(4096)\n"
	"    elif line.startswith('rawread'):\n"
	"        import ctypes\n"
	"        ctypes.CDLL(None, use_errno=True).syscall(0, c.fileno(), ctypes.create_string_buffer(4096), 4096)\n"
	"    elif line.startswith('fork'):\n"
	"        if os.fork() == 0:\n"
	"            time.sleep(3)\n"
	"            os._exit(0)\n"
	"    elif line.startswith('close'):\n"
	"        c.close()\n"
	"    print('done', flush=True)\n";

struct fake_sup {
	char dir[64], map_path[128];
	struct handoff_map *map;
	int sock;           /* our end of the channel; -1: "gone" */
	int gen_end;        /* the generation's end, until it is started */
	int keep;           /* our end's copy for the generation, -1: it keeps none */
};

struct server {
	pid_t pid;
	int in, out;        /* its stdin and stdout */
	char buf[256];      /* what it printed and was not read as a line yet */
	size_t len;
};

static const char *python(void)
{
	if (!access("/usr/bin/python3", X_OK))
		return "/usr/bin/python3";
	SKIP("python3 is not installed (Debian package python3)");
}

static void fake_sup_open(struct fake_sup *f, bool keep)
{
	struct stat a, b;
	int fd, sv[2];

	snprintf(f->dir, sizeof(f->dir), "/tmp/baton-handoff-XXXXXX");
	if (!mkdtemp(f->dir))
		FAIL("mkdtemp: %s", strerror(errno));
	snprintf(f->map_path, sizeof(f->map_path), "%s/map", f->dir);
	fd = open(f->map_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(ftruncate(fd, sizeof(struct handoff_map)), 0);
	f->map = mmap(NULL, sizeof(struct handoff_map), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ASSERT_TRUE(f->map != MAP_FAILED);
	f->map->magic = HANDOFF_MAGIC;
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ(fstat(sv[0], &a), 0);
	ASSERT_EQ(fstat(sv[1], &b), 0);
	f->sock = sv[0];
	f->gen_end = sv[1];
	f->keep = keep ? sv[0] : -1;
	/* as baton run places them: listener at 3, the channel at 4 and 5 */
	f->map->chan[3] = (struct handoff_chan){ .fd = { 4, 5 }, .ino = { b.st_ino, a.st_ino } };
}

static void fake_sup_close(struct fake_sup *f)
{
	char path[160];

	if (f->sock >= 0)
		close(f->sock);
	munmap(f->map, sizeof(*f->map));
	unlink(f->map_path);
	snprintf(path, sizeof(path), "%s", f->dir);
	rmdir(path);
}

/* The supervisor dies: our end is gone (the generation may keep a copy). */
static void fake_sup_die(struct fake_sup *f)
{
	close(f->sock);
	f->sock = -1;
}

/* A GIVE within TIMEOUT_MS: the connection it carries, else -1. */
static int fake_sup_given(struct fake_sup *f, int timeout_ms)
{
	struct handoff_msg m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct pollfd p = { .fd = f->sock, .events = POLLIN };
	int fd = -1;

	if (f->sock < 0 || poll(&p, 1, timeout_ms) != 1)
		return -1;
	ASSERT_EQ(p.revents & POLLIN, POLLIN);
	ASSERT_EQ(recvmsg(f->sock, &mh, MSG_CMSG_CLOEXEC), (ssize_t)sizeof(m));
	ASSERT_EQ(m.op, HANDOFF_GIVE);
	ASSERT_EQ(m.gen, 7);
	ASSERT_EQ(m.listener, 0);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The python server as generation 7 in slot 3 of fake supervisor F, with
 * MEMBER (listening on PORT) as its fd 3, as baton run starts it. */
static void server_start(struct server *sv, struct fake_sup *f, int member, uint16_t port, const char *answer)
{
	const char *lib = getenv("BATON_PRELOAD_LIB"), *py = python();
	int in[2], out[2];
	char env[512], portstr[16];

	if (!lib || access(lib, R_OK))
		SKIP("BATON_PRELOAD_LIB does not name the preload shim (run through make check)");
	ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
	snprintf(portstr, sizeof(portstr), "%u", port);
	sv->pid = fork();
	ASSERT_TRUE(sv->pid >= 0);
	if (sv->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		/* lifted above 5 first, then placed: dup2 clears close-on-exec */
		int lm = fcntl(member, F_DUPFD_CLOEXEC, 10), lg = fcntl(f->gen_end, F_DUPFD_CLOEXEC, 10);
		int lk = f->keep >= 0 ? fcntl(f->keep, F_DUPFD_CLOEXEC, 10) : -1;

		dup2(lm, 3);
		dup2(lg, 4);
		if (lk >= 0)
			dup2(lk, 5);
		setenv("LD_PRELOAD", lib, 1);
		unsetenv("NOTIFY_SOCKET");
		snprintf(env, sizeof(env), "v1;tcp:127.0.0.1:%u=3", port);
		setenv("BATON_PRELOAD", env, 1);
		snprintf(env, sizeof(env), "v2;3;0;4;%d;-1;%s", lk >= 0 ? 5 : -1, f->map_path);
		setenv("BATON_HANDOFF", env, 1);
		setenv("BATON_GENERATION", "7", 1);
		execl(py, py, "-c", server_py, portstr, answer, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(f->gen_end);	/* the generation holds it */
	f->gen_end = -1;
	sv->in = in[1];
	sv->out = out[0];
	sv->len = 0;
}

/* Sends CMD to the server and waits for its next line, which must hold WANT. */
static void server_say(struct server *sv, const char *cmd, const char *want)
{
	char *nl;

	if (cmd)
		ASSERT_EQ(write(sv->in, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	for (int tries = 0; !(nl = memchr(sv->buf, '\n', sv->len)); tries++) {
		struct pollfd p = { .fd = sv->out, .events = POLLIN };
		ssize_t n;

		if (tries == 20 || sv->len == sizeof(sv->buf) - 1 || poll(&p, 1, 5000) != 1)
			FAIL("the server printed no line (waiting for \"%s\"); so far: %.*s", want, (int)sv->len, sv->buf);
		n = read(sv->out, sv->buf + sv->len, sizeof(sv->buf) - 1 - sv->len);
		if (n <= 0)
			FAIL("the server ended (waiting for \"%s\")", want);
		sv->len += (size_t)n;
	}
	*nl = '\0';
	ASSERT_CONTAINS(sv->buf, want);
	sv->len -= (size_t)(nl + 1 - sv->buf);
	memmove(sv->buf, nl + 1, sv->len);
}

static void server_end(struct server *sv)
{
	int status;

	close(sv->in);
	close(sv->out);
	kill(sv->pid, SIGTERM);
	waitpid(sv->pid, &status, 0);
}

/* One request and its answer on a fresh connection to the server. */
static int client_request(uint16_t port, struct server *sv)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[256];
	struct pollfd p;
	int c = bt_connect(port);

	ASSERT_TRUE(c >= 0);
	ASSERT_EQ(write(c, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	server_say(sv, NULL, "answered");
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	ASSERT_EQ(poll(&p, 1, 5000), 1);
	ASSERT_GT(read(c, buf, sizeof(buf)), 0);
	return c;
}

/* Whether the server's side of C is gone (EOF within TIMEOUT_MS). */
static bool closed_by_server(int c, int timeout_ms)
{
	struct pollfd p = { .fd = c, .events = POLLIN | POLLRDHUP };
	char b;

	return poll(&p, 1, timeout_ms) == 1 && recv(c, &b, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
}

/* What each test starts from: the fake supervisor F (KEEP: whether the
 * generation keeps its end of the channel), the server SV on member M at
 * PORT answering as ANSWER says, and C, a client connection that has had
 * one answer. */
struct scene {
	struct fake_sup f;
	struct server sv;
	uint16_t port;
	int m, c;
};

static void scene_start(struct scene *s, bool keep, const char *answer)
{
	bt_need_netns();
	fake_sup_open(&s->f, keep);
	s->port = bt_listeners(&s->m, 1, false);
	server_start(&s->sv, &s->f, s->m, s->port, answer);
	s->c = client_request(s->port, &s->sv);
}

static void scene_end(struct scene *s)
{
	close(s->c);
	server_end(&s->sv);
	close(s->m);
	fake_sup_close(&s->f);
}

TEST(preload_handoff_gives_an_idle_connection_of_a_draining_generation)
{
	static const char next[] = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnew\n";
	struct scene s;
	int given;
	char buf[256] = "";
	ssize_t n;

	scene_start(&s, true, "keep");
	s.f.map->draining[3] = 7;
	/* the client's next request is already on its way: it goes with the socket */
	ASSERT_EQ(write(s.c, next, sizeof(next) - 1), (ssize_t)sizeof(next) - 1);
	usleep(50000);
	server_say(&s.sv, "close\n", "done");
	given = fake_sup_given(&s.f, 2000);
	ASSERT_TRUE(given >= 0);
	/* the server's close did not reach the client: the connection lives on
	 * in whoever holds the fd now, with the unread request in it */
	ASSERT_TRUE(!closed_by_server(s.c, 100));
	n = recv(given, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	ASSERT_EQ(n, (ssize_t)sizeof(next) - 1);
	ASSERT_EQ(write(given, ans, sizeof(ans) - 1), (ssize_t)sizeof(ans) - 1);
	n = read(s.c, buf, sizeof(buf) - 1);
	ASSERT_GT(n, 0);
	buf[n] = '\0';
	ASSERT_CONTAINS(buf, "new");
	ASSERT_EQ(s.f.map->unreachable, 0);
	close(given);
	scene_end(&s);
}

/* While generation DRAINING drains (7: the server's own, 6: another), the
 * server closes the connection and the close stays a close: the client sees
 * it, nothing is given. With HOW ("read\n" or "rawread\n") the client's
 * next request arrives first and the server consumes it that way without
 * answering: not idle. ANSWER as scene_start takes it. */
static void close_stays_a_close(const char *answer, int draining, const char *how)
{
	static const char next[] = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
	struct scene s;

	scene_start(&s, true, answer);
	s.f.map->draining[3] = draining;
	if (how) {
		ASSERT_EQ(write(s.c, next, sizeof(next) - 1), (ssize_t)sizeof(next) - 1);
		usleep(50000);
		server_say(&s.sv, how, "done");
	}
	server_say(&s.sv, "close\n", "done");
	ASSERT_TRUE(closed_by_server(s.c, 2000));
	ASSERT_EQ(fake_sup_given(&s.f, 100), -1);
	scene_end(&s);
}

TEST(preload_handoff_leaves_an_idle_close_alone_while_the_generation_serves)
{
	close_stays_a_close("keep", 6, NULL);	/* another generation drains, not this one */
}

TEST(preload_handoff_closes_a_connection_whose_request_was_read_but_not_answered)
{
	close_stays_a_close("keep", 7, "read\n");	/* consumed, never answered: not idle */
}

/* No supervisor end anywhere (the generation keeps no copy): the give
 * fails at once, and the close is a close. */
TEST(preload_handoff_with_the_supervisor_gone_closes_and_counts)
{
	struct scene s;

	scene_start(&s, false, "keep");
	s.f.map->draining[3] = 7;
	fake_sup_die(&s.f);
	server_say(&s.sv, "close\n", "done");
	/* closed exactly as the server asked, and the failure is counted */
	ASSERT_TRUE(closed_by_server(s.c, 2000));
	ASSERT_EQ(__atomic_load_n(&s.f.map->unreachable, __ATOMIC_RELAXED), 1);
	scene_end(&s);
}

/* The supervisor dies and the generation gives a connection meanwhile: it
 * waits in the channel, whose other end the generation keeps, and a
 * restarted supervisor takes that end back (pidfd_getfd, fd 5 as the map
 * says) and finds the connection there, alive, with the client's next
 * request in it. */
TEST(preload_handoff_a_connection_given_while_the_supervisor_is_dead_waits_for_the_next)
{
	static const char next[] = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
	struct scene s;
	int given, pidfd;
	char buf[256];

	scene_start(&s, true, "keep");
	s.f.map->draining[3] = 7;
	fake_sup_die(&s.f);
	ASSERT_EQ(write(s.c, next, sizeof(next) - 1), (ssize_t)sizeof(next) - 1);
	server_say(&s.sv, "close\n", "done");
	ASSERT_TRUE(!closed_by_server(s.c, 200));
	pidfd = (int)syscall(SYS_pidfd_open, s.sv.pid, 0);
	ASSERT_TRUE(pidfd >= 0);
	s.f.sock = (int)syscall(SYS_pidfd_getfd, pidfd, s.f.map->chan[3].fd[1], 0);
	close(pidfd);
	ASSERT_TRUE(s.f.sock >= 0);
	given = fake_sup_given(&s.f, 2000);
	ASSERT_TRUE(given >= 0);
	ASSERT_EQ(recv(given, buf, sizeof(buf), MSG_DONTWAIT), (ssize_t)sizeof(next) - 1);
	ASSERT_EQ(__atomic_load_n(&s.f.map->unreachable, __ATOMIC_RELAXED), 0);
	close(given);
	scene_end(&s);
}

/* An answer that says "Connection: close" is followed by the close it
 * announced: its client waits for that, not for another generation. */
TEST(preload_handoff_lets_a_connection_close_that_its_answer_closed)
{
	close_stays_a_close("close", 7, NULL);
}

/* A server that forks per connection closes the parent's copy while the
 * child serves: that close is not the connection's end, and not idle. */
TEST(preload_handoff_leaves_a_connection_a_forked_child_still_holds)
{
	struct scene s;

	scene_start(&s, true, "keep");
	s.f.map->draining[3] = 7;
	server_say(&s.sv, "fork\n", "done");
	server_say(&s.sv, "close\n", "done");
	ASSERT_EQ(fake_sup_given(&s.f, 300), -1);
	ASSERT_TRUE(!closed_by_server(s.c, 100));	/* the child still holds it */
	ASSERT_TRUE(closed_by_server(s.c, 5000));	/* and closes it as it exits */
	scene_end(&s);
}

/* A read the shim never sees (the system call made directly, as io_uring or
 * a static runtime would) still moves the kernel's count: the connection is
 * busy, its close a close, even though no write came after it. */
TEST(preload_handoff_closes_a_connection_read_past_the_shim)
{
	close_stays_a_close("keep", 7, "rawread\n");
}
