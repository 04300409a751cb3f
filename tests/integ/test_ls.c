/* SPDX-License-Identifier: BSD-2-Clause */
/* baton ls on real sockets, each test in its own network namespace: a steered
 * eBPF reuseport group of two and a plain SO_REUSEADDR listener report their
 * flags, group, program, slots and owners; a socket held by another process
 * is attributed to it; without privilege, unread fields are null with the
 * reason, never guessed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "harness.h"
#include "helpers.h"

static char out[1 << 17], err[8192];

static int ls(const char *a1, const char *a2, const char *a3)
{
	char *argv[] = { (char *)bt_baton_bin(), "ls", (char *)a1, (char *)a2, (char *)a3, NULL };

	return bt_run(argv, out, sizeof(out), err, sizeof(err), 30);
}


/* The JSON line (one socket per line) of the socket with FD's cookie. */
static const char *line_of(int fd, char *buf, size_t len)
{
	char pat[64];
	const char *p, *end;

	snprintf(pat, sizeof(pat), "\"cookie\": %llu,", (unsigned long long)bt_cookie(fd));
	p = strstr(out, pat);
	if (!p)
		FAIL("no socket with %s in: %s", pat, out);
	while (p > out && p[-1] != '\n')
		p--;
	end = strchr(p, '\n');
	snprintf(buf, len, "%.*s", (int)(end ? end - p : (long)strlen(p)), p);
	return buf;
}

static long long field(const char *line, const char *key)
{
	const char *p = bt_json_at(line, key);

	if (!strncmp(p, "null", 4))
		FAIL("\"%s\" is null in %s", key, line);
	return strtoll(p, NULL, 10);
}

static uint16_t port_of(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (getsockname(fd, (struct sockaddr *)&sin, &len))
		FAIL("getsockname: %s", strerror(errno));
	return ntohs(sin.sin_port);
}

/* A TCP listener on 127.0.0.1 with only SO_REUSEADDR. */
static int plain_listener(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)) ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 64))
		FAIL("plain listener: %s", strerror(errno));
	return fd;
}

static void owned_by(const char *line, pid_t pid, int fd)
{
	char want[64];

	snprintf(want, sizeof(want), "{\"pid\": %d, \"fd\": %d, ", (int)pid, fd);
	ASSERT_CONTAINS(line, want);
}

TEST(ls_reports_group_program_flags_and_owners)
{
	BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = bt_lib_log);
	struct baton_group *g;
	char l0[2048], l1[2048], lp[2048], filter[32];
	int fds[2], plain;
	uint32_t prog;
	long long group;
	uint16_t port;

	bt_need_netns();
	bt_need_ebpf();
	g = bt_group_new(&o);
	port = bt_listeners(fds, 2, false);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[0], 0)), 0);
	ASSERT_EQ(ASSERT_OK(baton_group_add(g, fds[1], 0)), 1);
	ASSERT_OK(baton_group_activate(g, 1));
	ASSERT_OK(baton_group_prog_id(g, &prog));	/* the kernel's id of what this group attached */
	ASSERT_GT(prog, 0);
	plain = plain_listener();

	snprintf(filter, sizeof(filter), "%u", port);
	ASSERT_EQ(ls("--json", filter, NULL), 0);
	line_of(fds[0], l0, sizeof(l0));
	line_of(fds[1], l1, sizeof(l1));
	ASSERT_CONTAINS(l0, "\"reuseport\": true");
	ASSERT_CONTAINS(l0, "\"reuseaddr\": true");
	ASSERT_CONTAINS(l1, "\"reuseport\": true");
	group = field(l0, "group");
	ASSERT_GT(group, 0);
	ASSERT_EQ(field(l1, "group"), group);
	ASSERT_EQ(field(l0, "group_size"), 2);
	ASSERT_CONTAINS(l0, "\"program\": \"ebpf\"");
	ASSERT_EQ(field(l0, "program_id"), prog);
	ASSERT_EQ(field(l1, "program_id"), prog);
	/* baton's own maps: slot by cookie, weight from the active policy */
	ASSERT_EQ(field(l0, "slot"), 0);
	ASSERT_EQ(field(l1, "slot"), 1);
	ASSERT_EQ(field(l0, "weight"), 0);
	ASSERT_GT(field(l1, "weight"), 0);
	ASSERT_EQ(field(l1, "weight"), field(l1, "table"));
	owned_by(l0, getpid(), fds[0]);
	owned_by(l1, getpid(), fds[1]);
	ASSERT_CONTAINS(l0, "\"owners_complete\": true");
	ASSERT_CONTAINS(l0, "\"unknown\": null");
	ASSERT_TRUE(strstr(out, "\"port\": 0,") == NULL);	/* the filter kept only this port */

	snprintf(filter, sizeof(filter), "127.0.0.1:%u", port_of(plain));
	ASSERT_EQ(ls("--json", filter, NULL), 0);
	line_of(plain, lp, sizeof(lp));
	ASSERT_CONTAINS(lp, "\"reuseaddr\": true");
	ASSERT_CONTAINS(lp, "\"reuseport\": false");
	ASSERT_EQ(field(lp, "group"), 0);
	ASSERT_CONTAINS(lp, "\"program\": \"none\"");
	owned_by(lp, getpid(), plain);
	ASSERT_TRUE(strstr(strstr(out, "\"cookie\": ") + 1, "\"cookie\": ") == NULL);	/* only that one */

	/* the table shows the group under one heading with slots and program */
	snprintf(filter, sizeof(filter), "tcp://127.0.0.1:%u", port);
	ASSERT_EQ(ls(filter, NULL, NULL), 0);
	snprintf(l0, sizeof(l0), "2 members, eBPF program %u, steered by baton", prog);
	ASSERT_CONTAINS(out, l0);
	ASSERT_CONTAINS(out, "slot=0 drained");
	ASSERT_CONTAINS(out, "slot=1 share=100%");
	baton_group_free(g);
	close(plain);
}

TEST(ls_attributes_socket_to_the_process_holding_it)
{
	char line[2048], filter[32];
	int p[2], fd = -1;
	pid_t child, parent = getpid();
	ssize_t n;

	bt_need_netns();
	fd = plain_listener();
	child = bt_fork_pipe(p);
	if (child == 0) {
		/* keeps the listener as fd 9, and dies with the test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || dup2(fd, 9) < 0)
			_exit(1);
		close(fd);
		close(p[0]);
		if (write(p[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], line, 1);
	ASSERT_EQ(n, 1);
	snprintf(filter, sizeof(filter), "%u", port_of(fd));
	/* the cookie stays; our copy goes, so only the child holds it */
	{
		uint64_t c = bt_cookie(fd);
		char pat[64];

		close(fd);
		ASSERT_EQ(ls("--json", filter, NULL), 0);
		snprintf(pat, sizeof(pat), "\"cookie\": %llu,", (unsigned long long)c);
		ASSERT_CONTAINS(out, pat);
	}
	ASSERT_EQ(field(out, "owners_total"), 1);
	snprintf(line, sizeof(line), "{\"pid\": %d, \"fd\": 9, \"comm\": ", (int)child);
	ASSERT_CONTAINS(out, line);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

TEST(ls_without_iterator_reads_flags_through_pidfd)
{
	char line[2048], filter[32];
	int fds[2];
	uint16_t port;

	bt_need_netns();
	port = bt_listeners(fds, 2, false);
	snprintf(filter, sizeof(filter), "%u", port);
	ASSERT_EQ(ls("--json", "--no-bpf", filter), 0);
	line_of(fds[0], line, sizeof(line));
	/* pidfd_getfd works on our own process: the flags are read */
	ASSERT_CONTAINS(line, "\"reuseport\": true");
	ASSERT_CONTAINS(line, "\"reuseaddr\": true");
	/* but getsockopt cannot tell the group or its program: unknown */
	ASSERT_CONTAINS(line, "\"group\": null");
	ASSERT_CONTAINS(line, "\"program\": null");
	ASSERT_CONTAINS(line, "\"unknown\": \"group and program: the BPF iterator was not asked for\"");
}

TEST(ls_unprivileged_says_what_it_cannot_read)
{
	char filter[32], line[2048];
	int fds[1], status;
	uint16_t port;
	pid_t pid;

	bt_need_netns();
	if (geteuid() != 0)
		SKIP("needs root to hold a socket that an unprivileged user cannot inspect");
	port = bt_listeners(fds, 1, false);
	snprintf(filter, sizeof(filter), "%u", port);
	bt_share_baton_bin();
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		/* as nobody: no iterator, no pidfd_getfd on root's process */
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			FAIL("drop privileges: %s", strerror(errno));
		if (access(bt_baton_bin(), X_OK))
			exit(77);	/* the parent skips: nobody cannot run it */
		ASSERT_EQ(ls("--json", filter, NULL), 0);
		line_of(fds[0], line, sizeof(line));
		ASSERT_CONTAINS(line, "\"reuseport\": null");
		ASSERT_CONTAINS(line, "\"group\": null");
		ASSERT_CONTAINS(line, "\"owners_complete\": false");
		ASSERT_CONTAINS(line, "needs CAP_BPF and CAP_PERFMON, or root");
		ASSERT_EQ(ls(filter, NULL, NULL), 0);
		ASSERT_CONTAINS(out, "options=?");
		ASSERT_CONTAINS(out, "? unknown:");
		exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		FAIL("the unprivileged half did not exit (status %d)", status);
	bt_unshare_baton_bin();
	if (WEXITSTATUS(status) == 77)
		SKIP("user nobody cannot execute %s", bt_baton_bin());
	if (WEXITSTATUS(status))
		FAIL("the unprivileged half failed (status %d)", WEXITSTATUS(status));
	close(fds[0]);
}

TEST(ls_cli_errors_name_the_bad_input)
{
	ASSERT_EQ(ls("--help", NULL, NULL), 0);
	ASSERT_CONTAINS(out, "usage: baton ls");
	ASSERT_EQ(ls("nonsense:port", NULL, NULL), 2);
	ASSERT_CONTAINS(err, "bad filter \"nonsense:port\"");
	ASSERT_EQ(ls("tcp://1.2.3.4:99999", NULL, NULL), 2);
	ASSERT_CONTAINS(err, "bad port");
	ASSERT_EQ(ls("--frob", NULL, NULL), 2);
	ASSERT_CONTAINS(err, "unknown option \"--frob\"");
	ASSERT_EQ(ls("80", "81", NULL), 2);
	ASSERT_CONTAINS(err, "unexpected argument \"81\"");
}
