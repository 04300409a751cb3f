/* SPDX-License-Identifier: BSD-2-Clause */
/* Runs every registered test (or those whose names contain an argument) in
 * its own forked child and process group, with a timeout, and ends with the
 * line "N passed, N failed, N skipped". Exit status 1 if any failed.
 * --no-root: the no-root lane (make check-unit), see harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define EXIT_SKIP 77

static struct bt_test *head, **tail = &head;
static int msg_fd = -1;	/* child: where fail/skip messages go */

void bt_register(struct bt_test *t)
{
	*tail = t;
	tail = &t->next;
}

static void send_msg(const char *prefix, const char *fmt, va_list ap)
{
	char buf[2048];
	int n = snprintf(buf, sizeof(buf), "%s", prefix);

	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if (msg_fd >= 0 && write(msg_fd, buf, strlen(buf)) < 0)
		fprintf(stderr, "%s\n", buf);
}

void bt_fail(const char *file, int line, const char *fmt, ...)
{
	char prefix[256];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
	va_start(ap, fmt);
	send_msg(prefix, fmt, ap);
	va_end(ap);
	exit(1);
}

void bt_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_msg("", fmt, ap);
	va_end(ap);
	exit(EXIT_SKIP);
}

void bt_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "    ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool wanted(const char *name, int argc, char **argv)
{
	int i;

	if (argc < 2)
		return true;
	for (i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

/* The no-root lane proves what it claims: without any BATON_* variable, and
 * as user nobody when started as root (what CI does), so a test that needs
 * more skips here, and that is made a failure by the caller. */
static void enter_no_root_lane(void)
{
	struct passwd *pw;
	char name[256];
	size_t i;

	for (i = 0; environ[i];) {
		const char *eq = strchr(environ[i], '=');
		size_t n = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);

		if (!strncmp(environ[i], "BATON_", 6) && n < sizeof(name)) {
			memcpy(name, environ[i], n);
			name[n] = '\0';
			unsetenv(name);	/* environ shifts down: look at i again */
			continue;
		}
		i++;
	}
	if (geteuid() != 0)
		return;
	pw = getpwnam("nobody");
	if (!pw || setgroups(0, NULL) || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid)) {
		fprintf(stderr, "--no-root: cannot become user nobody: %s\n", pw ? strerror(errno) : "no such user");
		exit(1);
	}
	/* changing uid made us undumpable, which a process started as nobody
	 * is not (ptrace access, pidfd_getfd of our own children) */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* Returns 0 pass, 1 fail, 2 skip; MSG gets what the child said. */
static int run_one(struct bt_test *t, char *msg, size_t msglen)
{
	long long deadline = now_ms() + (long long)t->timeout_s * 1000;
	size_t got = 0;
	int p[2], status = 0, done = 0, res;
	pid_t pid;

	msg[0] = '\0';
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(msg, msglen, "pipe: %s", strerror(errno));
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(msg, msglen, "fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		close(p[0]);
		msg_fd = p[1];
		t->fn();
		exit(0);
	}
	setpgid(pid, pid);
	close(p[1]);
	while (!done) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		long long left = deadline - now_ms();

		if (left <= 0) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			close(p[0]);
			snprintf(msg + got, msglen - got, "%stimed out after %u s", got ? "; " : "", t->timeout_s);
			return 1;
		}
		if (poll(&pfd, 1, left < 20 ? (int)left : 20) > 0 && got + 1 < msglen) {
			ssize_t n = read(p[0], msg + got, msglen - got - 1);

			if (n > 0) {
				got += (size_t)n;
				msg[got] = '\0';
			}
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			done = 1;
	}
	/* Whatever the test forked and left behind is ours to end, and must go
	 * before draining: a leftover holding the pipe would block the read. */
	kill(-pid, SIGKILL);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	/* drain what the child wrote just before it exited */
	for (;;) {
		ssize_t n = got + 1 < msglen ? read(p[0], msg + got, msglen - got - 1) : 0;

		if (n <= 0)
			break;
		got += (size_t)n;
		msg[got] = '\0';
	}
	close(p[0]);
	if (WIFEXITED(status))
		res = WEXITSTATUS(status) == 0 ? 0 : WEXITSTATUS(status) == EXIT_SKIP ? 2 : 1;
	else
		res = 1;
	if (res == 1 && !msg[0]) {
		if (WIFSIGNALED(status))
			snprintf(msg, msglen, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
		else
			snprintf(msg, msglen, "exited with status %d", WEXITSTATUS(status));
	}
	return res;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0, flaky = 0, retries = 1;
	const char *env = getenv("BATON_TEST_RETRIES");
	bool no_root = argc > 1 && !strcmp(argv[1], "--no-root");
	char flaky_names[2048] = "", failed_lines[8192] = "";
	struct bt_test *t;
	char msg[4096], first[4096];

	/* Many tests time real processes under load on a shared 2-core
	 * machine: a test that fails is run once more, and one that passes
	 * then is reported as FLAKY with its first failure, never hidden.
	 * BATON_TEST_RETRIES=0 turns that off. */
	if (env && *env)
		retries = atoi(env) > 0 ? 1 : 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (no_root) {
		argv[1] = argv[0];	/* the patterns follow the option */
		argv++;
		argc--;
		enter_no_root_lane();
		printf("no-root lane: uid %d, no BATON_* variables; tests that need more are left out\n",
		       (int)geteuid());
	}
	for (t = head; t; t = t->next) {
		long long start;
		int r;

		if (!wanted(t->name, argc, argv) || (no_root && t->needs))
			continue;
		start = now_ms();
		r = run_one(t, msg, sizeof(msg));
		if (r == 1 && retries) {
			snprintf(first, sizeof(first), "%s", msg);
			printf("RETRY %s: first attempt failed: %s\n", t->name, first);
			r = run_one(t, msg, sizeof(msg));
			if (r == 0) {
				flaky++;
				printf("FLAKY %s: failed once (%s), passed on the retry\n", t->name, first);
				snprintf(flaky_names + strlen(flaky_names), sizeof(flaky_names) - strlen(flaky_names),
					 "%s%s", flaky > 1 ? ", " : "", t->name);
			}
		}
		if (r == 2 && no_root) {
			r = 1;
			snprintf(first, sizeof(first), "%s", msg);
			/* the reason, cut to fit: it names what the test needed */
			snprintf(msg, sizeof(msg), "skipped in the no-root lane (%.3900s): declare it TEST_ROOT or "
				 "TEST_ENV (tests/harness.h)", first);
		}
		if (r == 0) {
			passed++;
			printf("PASS %s (%lld ms)\n", t->name, now_ms() - start);
		} else if (r == 2) {
			skipped++;
			printf("SKIP %s: %s\n", t->name, msg);
		} else {
			size_t used = strlen(failed_lines);

			failed++;
			printf("FAIL %s: %s\n", t->name, msg);
			/* repeated at the end: CI logs keep only the tail */
			snprintf(failed_lines + used, sizeof(failed_lines) - used, "FAIL %s: %.300s\n", t->name, msg);
		}
	}
	if (flaky)
		printf("flaky (failed once, passed on the retry): %d: %s\n", flaky, flaky_names);
	fputs(failed_lines, stdout);
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
