/* SPDX-License-Identifier: BSD-2-Clause */
/* The handover API: sockets and their names reach the taker intact; every
 * way a peer can be wrong (version, magic, too many fds, a cut control
 * message, a hang-up, names that do not match, another uid) fails with a
 * clear errno and message, and leaks no fd on either side. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "baton_handover_wire.h"
#include "harness.h"
#include "helpers.h"

static char logbuf[1024];

static const struct baton_handover_opts collect = { .sz = sizeof(collect), .log = bt_lib_collect,
						    .log_ctx = logbuf };

/* A socket path in a fresh private directory. */
static void tmp_path(char *path, size_t len)
{
	char dir[] = "/tmp/baton-ho-XXXXXX";

	if (!mkdtemp(dir))
		FAIL("mkdtemp: %s", strerror(errno));
	snprintf(path, len, "%s/offer", dir);
}

static uint64_t cookie(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len))
		FAIL("SO_COOKIE on fd %d: %s", fd, strerror(errno));
	return c;
}

static int wait_exit(pid_t pid)
{
	int status, i;

	for (i = 0; i < 500; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	FAIL("child %d did not exit within 5 s", (int)pid);
}

/* In a child: offers FDS at PATH and serves one taker; exits 0 when the
 * taker that acknowledged is our parent, else 1. */
static pid_t offer_in_child(const char *path, const int *fds, const char *const *names, size_t n)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		FAIL("pipe: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		struct baton_handover *h = baton_handover_offer(path, fds, names, n, NULL);
		int r;

		close(p[0]);
		if (!h)
			_exit(2);
		if (write(p[1], "x", 1) != 1)
			_exit(2);
		r = baton_handover_serve(h, 5000);
		baton_handover_free(h);
		_exit(r == getppid() ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		FAIL("the offering child did not start (offer failed)");
	close(p[0]);
	return pid;
}

static void round_trip(const char *path)
{
	const char *names[] = { "http", "https", "admin", "metrics" };
	int sv[4][2], fds[4], before, i, n;
	uint64_t cookies[4];
	struct baton_handover_fds got;
	pid_t child;

	for (i = 0; i < 4; i++) {
		ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
		fds[i] = sv[i][0];
		cookies[i] = cookie(fds[i]);
	}
	child = offer_in_child(path, fds, names, 4);
	before = bt_count_fds();
	n = baton_handover_take(path, 5000, &collect, &got);
	if (n < 0)
		FAIL("take: %s; log: %s", strerror(-n), logbuf);
	ASSERT_EQ(n, 4);
	ASSERT_EQ(got.n, 4);
	ASSERT_EQ(got.pid, child);
	ASSERT_EQ(got.uid, geteuid());
	ASSERT_EQ(got.conn, -1);
	for (i = 0; i < 4; i++) {
		ASSERT_STREQ(got.names[i], names[i]);
		ASSERT_EQ(cookie(got.fds[i]), cookies[i]);	/* the same socket, not a look-alike */
		ASSERT_TRUE(fcntl(got.fds[i], F_GETFD) & FD_CLOEXEC);
	}
	ASSERT_EQ(bt_count_fds(), before + 4);
	for (i = 0; i < 4; i++)
		close(got.fds[i]);
	baton_handover_fds_free(&got);
	ASSERT_EQ(bt_count_fds(), before);
	ASSERT_EQ(wait_exit(child), 0);	/* it saw our acknowledgement */
}

TEST(handover_round_trip_of_four_sockets_with_names)
{
	char path[96];
	struct stat st;

	tmp_path(path, sizeof(path));
	round_trip(path);
	/* the offerer removed its socket file on the way out */
	ASSERT_NE(stat(path, &st), 0);
}

TEST(handover_round_trip_through_an_abstract_name)
{
	char path[64];

	snprintf(path, sizeof(path), "@baton-test-ho-%d", (int)getpid());
	round_trip(path);
}

/* "@name-XXXXXX": the X's become random letters (getrandom), so no other
 * user can bind the name before the offer does; each offer its own. */
TEST(handover_abstract_name_ending_in_xxxxxx_is_random_and_reachable)
{
	const char *asked = "@baton-test-ho-XXXXXX";
	int sv[2];
	struct baton_handover *a, *b;
	char pa[128], pb[128];
	struct baton_handover_fds got;
	int n;

	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	a = baton_handover_offer(asked, sv, NULL, 1, &collect);
	b = baton_handover_offer(asked, sv, NULL, 1, &collect);
	ASSERT_TRUE(a && b);
	snprintf(pa, sizeof(pa), "%s", baton_handover_path(a));
	snprintf(pb, sizeof(pb), "%s", baton_handover_path(b));
	bt_log("offers at %s and %s", pa, pb);
	ASSERT_EQ(strlen(pa), strlen(asked));
	ASSERT_TRUE(!strncmp(pa, "@baton-test-ho-", 15) && !strstr(pa, "XXX"));
	ASSERT_TRUE(strcmp(pa, pb) != 0);	/* unpredictable: two offers, two names */
	baton_handover_free(b);
	/* a plain name stays as given */
	b = baton_handover_offer("@baton-test-ho-plain-X", sv, NULL, 1, &collect);
	ASSERT_TRUE(b != NULL);
	ASSERT_STREQ(baton_handover_path(b), "@baton-test-ho-plain-X");
	baton_handover_free(b);
	/* the successor, told the name, takes the offer there */
	pid_t child = fork();

	if (child == 0)
		_exit(baton_handover_serve(a, 5000) > 0 ? 0 : 1);
	n = baton_handover_take(pa, 5000, &collect, &got);
	if (n < 0)
		FAIL("take at %s: %s; log: %s", pa, strerror(-n), logbuf);
	ASSERT_EQ(n, 1);
	close(got.fds[0]);
	baton_handover_fds_free(&got);
	ASSERT_EQ(wait_exit(child), 0);
	baton_handover_free(a);
	close(sv[0]);
	close(sv[1]);
}

/* The attack: user nobody binds the abstract name a server will offer at
 * (it is predictable), and the server cannot upgrade itself; the offer
 * says so and what to do. A random name (@name-XXXXXX) is not known before
 * the offer binds it, so the same squatter cannot block it. */
TEST_ROOT(handover_abstract_name_squatted_by_nobody_fails_and_a_random_one_does_not)
{
	struct passwd *pw = getpwnam("nobody");
	char name[64], c;
	int sv[2], p[2];
	struct baton_handover *h;
	pid_t squatter;

	if (geteuid() != 0 || !pw)
		SKIP("needs root and the account nobody to act as another user");
	snprintf(name, sizeof(name), "@baton-test-squat-%d", (int)getpid());
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	squatter = fork();
	if (squatter == 0) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int fd;

		if (setgroups(0, NULL) || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
			_exit(1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		memcpy(a.sun_path, name, strlen(name));
		a.sun_path[0] = '\0';
		if (bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))) ||
		    listen(fd, 1) || write(p[1], "s", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	ASSERT_EQ(read(p[0], &c, 1), 1);	/* it holds the name */
	close(p[0]);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	logbuf[0] = '\0';
	h = baton_handover_offer(name, sv, NULL, 1, &collect);
	ASSERT_TRUE(h == NULL);
	ASSERT_EQ(errno, EADDRINUSE);
	ASSERT_CONTAINS(logbuf, "can be taken by any user");
	ASSERT_CONTAINS(logbuf, "0700 directory");
	/* the same prefix, made random: the squatter's name is not it */
	snprintf(name + strlen(name), sizeof(name) - strlen(name), "-XXXXXX");
	h = baton_handover_offer(name, sv, NULL, 1, &collect);
	ASSERT_TRUE(h != NULL);
	ASSERT_TRUE(strstr(baton_handover_path(h), "XXXXXX") == NULL);
	baton_handover_free(h);
	kill(squatter, SIGKILL);
	waitpid(squatter, NULL, 0);
	close(sv[0]);
	close(sv[1]);
}

TEST(handover_take_times_out_when_nobody_answers)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct baton_handover_fds got;
	char path[96];
	long long t0;
	int lfd, before, r;

	tmp_path(path, sizeof(path));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ASSERT_EQ(listen(lfd, 4), 0);	/* connects, but nobody ever accepts or answers */
	before = bt_count_fds();
	t0 = baton_handover_now_ms();
	r = baton_handover_take(path, 300, &collect, &got);
	ASSERT_EQ(r, -ETIMEDOUT);
	ASSERT_GE(baton_handover_now_ms() - t0, 290);
	ASSERT_LE(baton_handover_now_ms() - t0, 2000);
	ASSERT_CONTAINS(logbuf, "did not answer within 300 ms");
	ASSERT_EQ(bt_count_fds(), before);
	ASSERT_EQ(got.n, 0);
	ASSERT_EQ(got.fds, NULL);
	close(lfd);
	/* and with nothing there at all: at once, naming the path */
	logbuf[0] = '\0';
	unlink(path);
	ASSERT_EQ(baton_handover_take(path, 300, &collect, &got), -ENOENT);
	ASSERT_CONTAINS(logbuf, path);
	ASSERT_EQ(bt_count_fds(), before - 1);
}

/* ---- a fake offerer that says what the test wants ---------------------- */

struct fake {
	struct baton_handover_hdr hdr;
	const char *payload;    /* hdr.len bytes, unless LEN is given */
	size_t len;             /* payload bytes actually sent (0: hdr.len) */
	int nfds;               /* fds attached (to /dev/null) */
	size_t cut;             /* send only this many bytes, then hang up (0: all) */
};

/* Listens at PATH, then in a child answers one HELLO with F. */
static pid_t fake_offer(const char *path, const struct fake *f, int *lfd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	pid_t pid;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	*lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*lfd < 0 || bind(*lfd, (struct sockaddr *)&sun, sizeof(sun)) || listen(*lfd, 4))
		FAIL("fake offerer at %s: %s", path, strerror(errno));
	pid = fork();
	if (pid == 0) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 300)];
		} ctl;
		char msg[4096], hello[16], sink[600];
		size_t len = sizeof(f->hdr) + (f->len ? f->len : f->hdr.len);
		struct iovec iov = { msg, f->cut ? f->cut : len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		int c = accept4(*lfd, NULL, NULL, SOCK_CLOEXEC), i;

		if (c < 0 || recv(c, hello, sizeof(hello), MSG_WAITALL) != sizeof(hello))
			_exit(2);
		memcpy(msg, &f->hdr, sizeof(f->hdr));
		if (f->payload)
			memcpy(msg + sizeof(f->hdr), f->payload, len - sizeof(f->hdr));
		if (f->nfds) {
			struct cmsghdr *cm;

			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)f->nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)f->nfds);
			for (i = 0; i < f->nfds; i++) {
				int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

				memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(int));
			}
		}
		if (sendmsg(c, &mh, MSG_NOSIGNAL) < 0)
			_exit(3);
		if (!f->cut)	/* wait for the taker to finish (it may send ERROR) */
			while (recv(c, sink, sizeof(sink), 0) > 0)
				;
		_exit(0);
	}
	return pid;
}

/* Takes from a fake offerer: returns take's result; no fd may be left.
 * NOFILE: the taker's RLIMIT_NOFILE (0: unchanged). */
static int take_from_fake_lim(const struct fake *f, unsigned max_fds, rlim_t nofile)
{
	BATON_OPTS(baton_handover_opts, o, .log = bt_lib_collect, .log_ctx = logbuf);
	struct baton_handover_fds got;
	char path[96];
	int lfd, before, r;
	pid_t pid;

	tmp_path(path, sizeof(path));
	pid = fake_offer(path, f, &lfd);
	if (nofile) {
		struct rlimit rl;

		ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
		rl.rlim_cur = nofile;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			FAIL("setrlimit: %s", strerror(errno));
	}
	o.max_fds = max_fds;
	logbuf[0] = '\0';
	before = bt_count_fds();
	r = baton_handover_take(path, 3000, &o, &got);
	bt_log("take: %d (%s); log: %s", r, r < 0 ? strerror(-r) : "", logbuf);
	ASSERT_EQ(bt_count_fds(), before);	/* everything that arrived was closed */
	ASSERT_EQ(got.fds, NULL);
	ASSERT_EQ(got.conn, -1);
	ASSERT_EQ(wait_exit(pid), 0);
	close(lfd);
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
	return r;
}

static int take_from_fake(const struct fake *f, unsigned max_fds)
{
	return take_from_fake_lim(f, max_fds, 0);
}

/* Taking (at most MAX_FDS) from an offerer that answers F fails with ERR,
 * the log saying SAYS. */
static void take_fails(struct fake f, unsigned max_fds, int err, const char *says)
{
	ASSERT_EQ(take_from_fake(&f, max_fds), err);
	ASSERT_CONTAINS(logbuf, says);
}

static struct fake fds_msg(uint32_t count, const char *names, size_t len, int nfds)
{
	struct fake f = { .hdr = baton_handover_hdr_make(BATON_HANDOVER_FDS, count, (uint32_t)len),
			  .payload = names, .nfds = nfds };

	return f;
}

TEST(handover_take_refuses_wrong_magic)
{
	struct fake f = fds_msg(2, "a\0b", 4, 2);

	memcpy(f.hdr.magic, "HTTP", 4);
	ASSERT_EQ(take_from_fake(&f, 0), -EBADMSG);
	ASSERT_CONTAINS(logbuf, "not a baton handover peer: magic 48 54 54 50");
}

TEST(handover_take_refuses_another_version)
{
	struct fake f = fds_msg(2, "a\0b", 4, 2);

	f.hdr.version = 2;
	ASSERT_EQ(take_from_fake(&f, 0), -EPROTONOSUPPORT);
	ASSERT_CONTAINS(logbuf, "peer speaks handover protocol version 2; this side speaks version 1");
}

TEST(handover_take_closes_what_arrived_when_the_control_message_is_cut)
{
	static const char names[] = "a\0b\0c\0d\0e\0f\0g\0h\0i\0j";
	struct fake f = fds_msg(10, names, sizeof(names), 10);

	/* 10 fds sent, room for 4 here: the kernel cuts the rest (MSG_CTRUNC) */
	ASSERT_EQ(take_from_fake(&f, 4), -EMSGSIZE);
	ASSERT_CONTAINS(logbuf, "control message truncated");
	ASSERT_CONTAINS(logbuf, "closed the 4 that arrived");
}

TEST(handover_take_closes_what_arrived_when_its_fd_limit_is_reached)
{
	static const char names[] = "a\0b\0c\0d\0e\0f\0g\0h\0i\0j";
	struct fake f = fds_msg(10, names, sizeof(names), 10);
	int limit = 0, nfree = 0;

	/* a limit with 4 free fd numbers under it: the fake offerer's listening
	 * socket takes one, the taker's socket one, and the kernel installs 2
	 * of the 10 fds and cuts the rest */
	while (nfree < 4 && limit < 1024)
		if (fcntl(limit++, F_GETFD) < 0 && errno == EBADF)
			nfree++;
	ASSERT_EQ(take_from_fake_lim(&f, 0, (rlim_t)limit), -EMSGSIZE);
	ASSERT_CONTAINS(logbuf, "RLIMIT_NOFILE");
	ASSERT_CONTAINS(logbuf, "closed the 2 that arrived");
}

TEST(handover_take_refuses_more_fds_than_it_takes)
{
	take_fails(fds_msg(300, "a", 2, 1), 0, -E2BIG, "offerer announces 300 fds, more than the 253 this side takes");
	take_fails(fds_msg(5, "a\0b\0c\0d\0e", 10, 2), 3, -E2BIG, "announces 5 fds, more than the 3");
}

TEST(handover_take_fails_cleanly_when_the_offerer_hangs_up_mid_message)
{
	static const char names[] = "http\0https";
	struct fake f = fds_msg(2, names, sizeof(names), 2);

	f.cut = sizeof(f.hdr) + 5;	/* the header and the fds, half a name */
	take_fails(f, 0, -ECONNRESET, "hung up in the middle of its answer (21 bytes and 2 fds came)");
	f.cut = 9;	/* in the middle of the header */
	take_fails(f, 0, -ECONNRESET, "hung up in the middle of its answer (9 bytes and 2 fds came)");
}

TEST(handover_take_refuses_names_that_do_not_match_the_fds)
{
	take_fails(fds_msg(2, "a\0b\0c", 6, 2), 0, -EBADMSG, "2 bytes left after the 2 names the fd count announces");
	take_fails(fds_msg(3, "aa\0bb", 6, 3), 0, -EBADMSG, "names end after 2 of 3 fds");
	take_fails(fds_msg(2, "a:x\0b", 6, 2), 0, -EBADMSG, "name 0 is not a valid fd name");
	take_fails(fds_msg(3, "a\0b\0c", 6, 2), 0, -EBADMSG, "announced 3 fds but 2 arrived");
}

TEST(handover_take_reports_the_offerers_refusal)
{
	static const char why[] = "not today";
	struct fake f = { .hdr = baton_handover_hdr_make(BATON_HANDOVER_ERROR, EPERM, sizeof(why) - 1),
			  .payload = why };

	ASSERT_EQ(take_from_fake(&f, 0), -EPERM);
	ASSERT_CONTAINS(logbuf, "refused: not today");
}

/* ---- offering side -------------------------------------------------------- */

static int raw_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		FAIL("connect %s: %s", path, strerror(errno));
	return fd;
}

TEST(handover_offer_refuses_bad_takers_and_serves_the_next)
{
	struct baton_handover_hdr hello = baton_handover_hdr_make(BATON_HANDOVER_HELLO, 0, 0), bad = hello;
	BATON_OPTS(baton_handover_opts, o, .log = bt_lib_collect, .log_ctx = logbuf);
	struct baton_handover_fds got;
	struct baton_handover *h;
	struct pollfd p;
	char path[96], buf[600];
	int sv[2], c, before, r;
	pid_t pid;

	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	tmp_path(path, sizeof(path));
	o.ack_timeout_ms = 300;
	before = bt_count_fds();
	h = baton_handover_offer(path, sv, NULL, 1, &o);
	ASSERT_TRUE(h != NULL);
	/* nothing pending: serve returns at once */
	ASSERT_EQ(baton_handover_serve(h, 0), 0);
	p = (struct pollfd){ .fd = baton_handover_fd(h), .events = POLLIN };
	ASSERT_EQ(poll(&p, 1, 0), 0);

	/* wrong magic: refused with an ERROR the peer can read */
	c = raw_connect(path);
	memcpy(bad.magic, "GET ", 4);
	ASSERT_EQ(send(c, &bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
	ASSERT_EQ(poll(&p, 1, 2000), 1);	/* the fd tells an event loop */
	ASSERT_EQ(baton_handover_serve(h, 1000), -EBADMSG);
	ASSERT_CONTAINS(logbuf, "not a baton handover peer");
	r = (int)recv(c, buf, sizeof(buf), MSG_WAITALL);
	ASSERT_GT(r, 16);
	ASSERT_EQ(((struct baton_handover_hdr *)buf)->type, BATON_HANDOVER_ERROR);
	close(c);

	/* another version */
	c = raw_connect(path);
	bad = hello;
	bad.version = 7;
	ASSERT_EQ(send(c, &bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
	ASSERT_EQ(baton_handover_serve(h, 1000), -EPROTONOSUPPORT);
	ASSERT_CONTAINS(logbuf, "version 7");
	close(c);

	/* asks, gets the fd, never acknowledges: the offer gives up on it */
	c = raw_connect(path);
	ASSERT_EQ(send(c, &hello, sizeof(hello), 0), (ssize_t)sizeof(hello));
	ASSERT_EQ(baton_handover_serve(h, 2000), -ETIMEDOUT);
	ASSERT_CONTAINS(logbuf, "did not acknowledge within 300 ms");
	close(c);	/* the fd it was sent dies with the unread message */

	/* asks and hangs up */
	c = raw_connect(path);
	ASSERT_EQ(send(c, &hello, sizeof(hello), 0), (ssize_t)sizeof(hello));
	ASSERT_EQ(baton_handover_serve(h, 50), 0);	/* the fd went out; waiting for the ACK */
	close(c);
	ASSERT_EQ(baton_handover_serve(h, 1000), -ECONNRESET);
	ASSERT_CONTAINS(logbuf, "hung up before acknowledging");

	/* and a good taker still gets it: deferred ACK, from a child */
	pid = fork();
	if (pid == 0) {
		BATON_OPTS(baton_handover_opts, d, .defer_ack = true);

		r = baton_handover_take(path, 2000, &d, &got);
		if (r != 1 || got.conn < 0)
			_exit(1);
		usleep(200000);	/* "getting ready": the offerer must still wait */
		_exit(baton_handover_ack(&got) == 0 ? 0 : 1);
	}
	ASSERT_EQ(baton_handover_serve(h, 100), 0);
	ASSERT_EQ(baton_handover_serve(h, 3000), pid);
	ASSERT_EQ(wait_exit(pid), 0);
	baton_handover_free(h);
	close(sv[0]);
	close(sv[1]);
	ASSERT_EQ(bt_count_fds(), before - 2);
}

TEST(handover_offer_checks_its_arguments_and_the_path)
{
	const char *names[] = { "ok", "bad:name" };
	BATON_OPTS(baton_handover_opts, o, .log = bt_lib_collect, .log_ctx = logbuf);
	struct baton_handover *h, *h2;
	int sv[2], before, many[254], stale;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char path[96];

	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	tmp_path(path, sizeof(path));
	before = bt_count_fds();
	ASSERT_TRUE(baton_handover_offer(path, sv, names, 2, &o) == NULL);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_CONTAINS(logbuf, "name 1 \"bad:name\" is not a valid fd name");
	for (int i = 0; i < 254; i++)
		many[i] = sv[0];
	ASSERT_TRUE(baton_handover_offer(path, many, NULL, 254, &o) == NULL);
	ASSERT_EQ(errno, E2BIG);
	ASSERT_CONTAINS(logbuf, "254 fds offered; one handover carries 1 to 253");
	many[1] = 999;
	ASSERT_TRUE(baton_handover_offer(path, many, NULL, 2, &o) == NULL);
	ASSERT_EQ(errno, EBADF);
	ASSERT_EQ(bt_count_fds(), before);	/* the copy of many[0] was closed */

	/* a socket file left by a dead process is replaced; a live one is not */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(bind(stale, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(stale);
	h = baton_handover_offer(path, sv, NULL, 1, &o);
	ASSERT_TRUE(h != NULL);
	logbuf[0] = '\0';
	h2 = baton_handover_offer(path, sv, NULL, 1, &o);
	ASSERT_TRUE(h2 == NULL);
	ASSERT_EQ(errno, EADDRINUSE);
	ASSERT_CONTAINS(logbuf, "another process offers at");
	/* the liveness probe is no failure for the live one */
	ASSERT_EQ(baton_handover_serve(h, 100), 0);
	baton_handover_free(h);
	ASSERT_EQ(bt_count_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

/* ---- peers of another uid ------------------------------------------------- */

static void become_nobody(void)
{
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		_exit(9);
}

TEST_ROOT(handover_refuses_a_peer_of_another_uid)
{
	BATON_OPTS(baton_handover_opts, o, .log = bt_lib_collect, .log_ctx = logbuf);
	struct baton_handover_fds got;
	struct baton_handover *h;
	char path[64];
	int sv[2], before, p[2];
	pid_t pid;
	char c;

	if (geteuid() != 0)
		SKIP("needs root to run a peer as another uid (setresuid to nobody)");
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* abstract: no file permissions between the two, only the uid check */
	snprintf(path, sizeof(path), "@baton-test-uid-%d", (int)getpid());
	before = bt_count_fds();

	/* a taker running as nobody is refused by the offerer (root) */
	h = baton_handover_offer(path, sv, NULL, 1, &o);
	ASSERT_TRUE(h != NULL);
	pid = fork();
	if (pid == 0) {
		become_nobody();
		_exit(baton_handover_take(path, 2000, NULL, &got) == -EPERM ? 0 : 1);
	}
	ASSERT_EQ(baton_handover_serve(h, 3000), -EPERM);
	ASSERT_CONTAINS(logbuf, "runs as uid 65534, not as uid 0 or root: refused");
	ASSERT_EQ(wait_exit(pid), 0);
	baton_handover_free(h);

	/* an offerer running as nobody is refused by the taker (root) */
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	if (pid == 0) {
		become_nobody();
		h = baton_handover_offer(path, sv, NULL, 1, NULL);
		if (!h || write(p[1], "x", 1) != 1)
			_exit(2);
		_exit(baton_handover_serve(h, 3000) == -EPERM ? 0 : 1);
	}
	close(p[1]);
	ASSERT_EQ(read(p[0], &c, 1), 1);
	close(p[0]);
	logbuf[0] = '\0';
	ASSERT_EQ(baton_handover_take(path, 2000, &o, &got), -EPERM);
	ASSERT_CONTAINS(logbuf, "runs as uid 65534, not as uid 0 or root: refused");
	ASSERT_EQ(wait_exit(pid), 0);	/* and the offerer was told why */
	close(sv[0]);
	close(sv[1]);
	ASSERT_EQ(bt_count_fds(), before - 2);
}

TEST(handover_refuses_options_of_a_newer_library)
{
	struct {
		struct baton_handover_opts o;
		char newer[16];
	} big;
	struct baton_handover_fds got;
	int sv[2];

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.log = bt_lib_collect;
	big.o.log_ctx = logbuf;
	big.newer[3] = 1;	/* an option this library does not know */
	ASSERT_EQ(baton_handover_take("/nonexistent", 100, &big.o, &got), -EINVAL);
	ASSERT_CONTAINS(logbuf, "struct baton_handover_opts: byte");
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_TRUE(baton_handover_offer("@baton-test-newer", sv, NULL, 1, &big.o) == NULL);
	ASSERT_EQ(errno, EINVAL);
	big.newer[3] = 0;	/* zero bytes it does not know are fine */
	ASSERT_EQ(baton_handover_take("/nonexistent", 100, &big.o, &got), -ENOENT);
	close(sv[0]);
	close(sv[1]);
}
