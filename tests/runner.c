/* SPDX-License-Identifier: BSD-2-Clause */
/* Runs every registered test (or those whose names contain an argument) in
 * its own forked child and process group, with a timeout, and ends with the
 * line "N passed, N failed, N skipped". Exit status 1 if any failed.
 * Names are LANE/NAME (unit/, integ/: the folder), so an argument selects a
 * lane. -jN runs N tests side by side, then those declared alone one by one.
 * --no-root: the no-root lane (make check-unit), see harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define EXIT_SKIP 77

static struct bt_test *head, **tail = &head;
static int msg_fd = -1;	/* child: where fail/skip messages go */

/* The lane is the folder the test is defined in: renaming every test to
 * carry it would be one more thing to keep right by hand. */
void bt_register(struct bt_test *t)
{
	const char *lane = strstr(t->file, "tests/unit/") ? "unit/" : strstr(t->file, "tests/integ/") ? "integ/" : "";
	char *name;

	if (*lane && asprintf(&name, "%s%s", lane, t->name) > 0)
		t->name = name;
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

static bool wanted(const char *name, int npat, char **pat)
{
	int i;

	if (npat < 1)
		return true;
	for (i = 0; i < npat; i++)
		if (strstr(name, pat[i]))
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


/* One test under way: its child, the pipe its fail or skip message comes
 * through and, when tests run side by side, the memfd that holds its
 * output until it ends (lines of two tests would interleave). */
struct run {
	struct bt_test *t;
	size_t idx;		/* in the selected list */
	pid_t pid;
	int msg_fd, out_fd, lock_fd;
	long long start, deadline;
	size_t got;
	int res;		/* -1 while it runs; 0 pass, 1 fail, 2 skip */
	char msg[4096];
};

enum pass { PASS_ALL, PASS_SHARED, PASS_ALONE, PASS_RETRY };

/* What the whole run found, printed at the end. */
struct sched {
	struct bt_test **list;
	size_t n;
	char **first;		/* a failed test's first message, until its retry */
	const char *lock;	/* --lock: shared by what runs beside, else NULL */
	bool no_root, retries;
	int passed, failed, skipped, flaky, alone;
	long long test_ms;	/* the sum of every run's time */
	long long *ms;		/* each selected test's last run, for the slowest */
	long long pass_ms[PASS_RETRY + 1], lock_wait_ms;	/* wall time per pass; alone, waiting */
	char flaky_names[2048], failed_lines[8192];
};

/* With --lock FILE, a test holds FILE locked while it runs: shared beside
 * other tests (and whatever else takes it shared: CI builds in the
 * background with flock -s), exclusive when it runs alone. Returns the
 * locked fd, -1 without a lock, or -2 when it is taken (WAIT false). */
static int take_lock(const char *path, bool alone, bool wait)
{
	int fd;

	if (!path)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "baton-test: --lock %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (flock(fd, (alone ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB))) {
		if (errno == EINTR)
			continue;
		close(fd);
		if (errno == EWOULDBLOCK)
			return -2;
		fprintf(stderr, "baton-test: --lock %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

/* As root, a test gets a mount namespace and a bpffs of its own: baton pins
 * its steering maps there by supervisor name (run-web), and tests side by
 * side must not meet in the host's /sys/fs/bpf, nor leave pins in it.
 * Where that cannot be done the test runs as it would without it. */
static void private_bpffs(void)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return;
	mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700");
}

/* Ends what a test left behind once it has returned: the processes
 * reparented to this subreaper (/proc/thread-self/children), then theirs,
 * which come to it as each one dies. A generation runs in its own session
 * (setsid), out of the process group the runner kills, and would otherwise
 * outlive a failed attempt: still serving on its port, holding pins, while
 * the retry runs. Bounded: 50 rounds. */
static void end_leftovers(void)
{
	for (int round = 0; round < 50; round++) {
		char buf[4096], *p, *end;
		int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC), n = 0;
		ssize_t got = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

		if (fd >= 0)
			close(fd);
		if (got <= 0)
			return;
		buf[got] = '\0';
		for (p = buf;; p = end) {
			long pid = strtol(p, &end, 10);

			if (end == p)
				break;
			if (pid > 0 && !kill((pid_t)pid, SIGKILL))
				n++;
		}
		if (!n)
			return;
		usleep(10000);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

/* The test, in a child of this one: this process waits for it as a
 * subreaper, ends what it left, and exits as it did. */
static void run_reaped(struct bt_test *t)
{
	pid_t pid;
	int status;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid = fork();
	if (pid == 0) {
		t->fn();
		exit(0);
	}
	if (pid < 0) {
		fprintf(stderr, "fork: %s\n", strerror(errno));
		exit(1);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			exit(1);
	end_leftovers();
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		raise(WTERMSIG(status));	/* the runner reports the test's signal */
	}
	exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static void start_run(struct run *r, struct bt_test *t, size_t idx, bool capture, int lock_fd)
{
	int p[2];

	memset(r, 0, sizeof(*r));
	r->t = t;
	r->idx = idx;
	r->res = -1;
	r->msg_fd = r->out_fd = -1;
	r->lock_fd = lock_fd;
	r->start = now_ms();
	r->deadline = r->start + (long long)t->timeout_s * 1000;
	if (capture && (r->out_fd = memfd_create("baton-test-output", MFD_CLOEXEC)) < 0) {
		snprintf(r->msg, sizeof(r->msg), "memfd_create: %s", strerror(errno));
		r->res = 1;
		return;
	}
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(r->msg, sizeof(r->msg), "pipe: %s", strerror(errno));
		r->res = 1;
		return;
	}
	fflush(NULL);
	r->pid = fork();
	if (r->pid < 0) {
		snprintf(r->msg, sizeof(r->msg), "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		r->res = 1;
		return;
	}
	if (r->pid == 0) {
		setpgid(0, 0);
		if (r->out_fd >= 0 && (dup2(r->out_fd, 1) < 0 || dup2(r->out_fd, 2) < 0))
			exit(1);
		/* The test starts with 0-2 and its message pipe as fd 3, as
		 * when it runs alone: not with the runner's descriptors of the
		 * tests beside it (a test may count or place its own), nor the
		 * lock, which a process it leaves behind would hold on. */
		if (p[1] != 3 && dup3(p[1], 3, O_CLOEXEC) < 0)
			exit(1);
		close_range(4, ~0U, 0);
		msg_fd = 3;
		private_bpffs();
		run_reaped(t);
	}
	setpgid(r->pid, r->pid);
	close(p[1]);
	r->msg_fd = p[0];
	/* read as it comes, never waited on: poll says when */
	fcntl(r->msg_fd, F_SETFL, O_NONBLOCK);
}

static void read_msg(struct run *r)
{
	ssize_t n;

	while (r->got + 1 < sizeof(r->msg) && (n = read(r->msg_fd, r->msg + r->got, sizeof(r->msg) - r->got - 1)) > 0) {
		r->got += (size_t)n;
		r->msg[r->got] = '\0';
	}
}

/* Ends a run whose child exited (STATUS) or overran its time (TIMED_OUT). */
static void end_run(struct run *r, int status, bool timed_out)
{
	/* Whatever the test forked and left behind is ours to end, and must go
	 * before draining: a leftover holding the pipe would block the read. */
	kill(-r->pid, SIGKILL);
	if (timed_out)
		waitpid(r->pid, &status, 0);
	read_msg(r);	/* what the child wrote just before it exited */
	close(r->msg_fd);
	if (timed_out) {
		snprintf(r->msg + r->got, sizeof(r->msg) - r->got, "%stimed out after %u s", r->got ? "; " : "",
			 r->t->timeout_s);
		r->res = 1;
		return;
	}
	if (WIFEXITED(status))
		r->res = WEXITSTATUS(status) == 0 ? 0 : WEXITSTATUS(status) == EXIT_SKIP ? 2 : 1;
	else
		r->res = 1;
	if (r->res == 1 && !r->msg[0]) {
		if (WIFSIGNALED(status))
			snprintf(r->msg, sizeof(r->msg), "killed by signal %d (%s)", WTERMSIG(status),
				 strsignal(WTERMSIG(status)));
		else
			snprintf(r->msg, sizeof(r->msg), "exited with status %d", WEXITSTATUS(status));
	}
}

/* Waits up to 20 ms for the runs under way, and ends those that are done. */
static void step_runs(struct run *runs, unsigned jobs)
{
	struct pollfd pfd[64];
	unsigned i, n = 0;

	for (i = 0; i < jobs; i++)
		if (runs[i].t && runs[i].res < 0)
			pfd[n++] = (struct pollfd){ .fd = runs[i].msg_fd, .events = POLLIN };
	poll(pfd, n, 20);
	for (i = 0; i < jobs; i++) {
		struct run *r = &runs[i];
		int status = 0;

		if (!r->t || r->res >= 0)
			continue;
		read_msg(r);
		if (waitpid(r->pid, &status, WNOHANG) == r->pid)
			end_run(r, status, false);
		else if (now_ms() >= r->deadline)
			end_run(r, 0, true);
	}
}

static void show_output(int fd)
{
	char buf[8192];
	off_t off = 0;
	ssize_t n;

	fflush(stdout);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		fwrite(buf, 1, (size_t)n, stdout);
		off += n;
	}
	fflush(stdout);
}

static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

/* Prints a run's result and counts it; a first failure waits for its retry,
 * run alone after the rest. */
static void report(struct sched *s, struct run *r, bool is_retry)
{
	struct bt_test *t = r->t;
	long long ms = now_ms() - r->start;
	char first[4096];

	s->test_ms += ms;
	s->ms[r->idx] = ms;
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	if (r->out_fd >= 0) {
		show_output(r->out_fd);
		close(r->out_fd);
	}
	if (r->res == 1 && !is_retry && s->retries) {
		printf("RETRY %s: first attempt failed: %s\n", t->name, r->msg);
		s->first[r->idx] = strdup(r->msg);
		if (s->first[r->idx])
			return;
	}
	if (is_retry && r->res == 0) {
		s->flaky++;
		printf("FLAKY %s: failed once (%s), passed on the retry\n", t->name, s->first[r->idx]);
		append(s->flaky_names, sizeof(s->flaky_names), "%s%s", s->flaky > 1 ? ", " : "", t->name);
	}
	if (r->res == 2 && s->no_root) {
		r->res = 1;
		snprintf(first, sizeof(first), "%s", r->msg);
		/* the reason, cut to fit: it names what the test needed */
		snprintf(r->msg, sizeof(r->msg), "skipped in the no-root lane (%.3900s): declare it TEST_ROOT or "
			 "TEST_ENV (tests/harness.h)", first);
	}
	if (r->res == 0) {
		s->passed++;
		printf("PASS %s (%lld ms)\n", t->name, ms);
	} else if (r->res == 2) {
		s->skipped++;
		printf("SKIP %s: %s\n", t->name, r->msg);
	} else {
		s->failed++;
		printf("FAIL %s: %s\n", t->name, r->msg);
		/* repeated at the end: CI logs keep only the tail */
		append(s->failed_lines, sizeof(s->failed_lines), "FAIL %s: %.300s\n", t->name, r->msg);
	}
}

static bool in_pass(const struct sched *s, size_t i, enum pass pass)
{
	bool alone = s->list[i]->needs & BT_NEEDS_ALONE;

	switch (pass) {
	case PASS_SHARED:
		return !alone;
	case PASS_ALONE:
		return alone;
	case PASS_RETRY:
		return s->first[i] != NULL;
	default:
		return true;
	}
}

/* Runs the selected tests of PASS in their order, JOBS at a time. */
static void run_pass(struct sched *s, enum pass pass, unsigned jobs)
{
	struct run *runs = calloc(jobs, sizeof(*runs));
	unsigned i, busy = 0;
	size_t next = 0;
	long long t0 = now_ms(), t_lock;

	if (!runs) {
		perror("calloc");
		exit(1);
	}
	for (;;) {
		for (i = 0; i < jobs && next < s->n; i++) {
			int lock_fd;

			if (runs[i].t)
				continue;
			while (next < s->n && !in_pass(s, next, pass))
				next++;
			if (next == s->n)
				break;
			/* beside others, never wait for the lock: they are
			 * stepped below; alone, nothing else runs here */
			t_lock = now_ms();
			lock_fd = take_lock(s->lock, pass != PASS_SHARED && (pass != PASS_ALL ||
						 (s->list[next]->needs & BT_NEEDS_ALONE)), !busy);
			/* alone, the wait is for what runs beside (CI's builds) */
			if (pass == PASS_ALONE)
				s->lock_wait_ms += now_ms() - t_lock;
			if (lock_fd == -2)
				break;
			start_run(&runs[i], s->list[next], next, jobs > 1, lock_fd);
			next++;
			busy++;
		}
		if (!busy)
			break;
		step_runs(runs, jobs);
		for (i = 0; i < jobs; i++) {
			if (!runs[i].t || runs[i].res < 0)
				continue;
			report(s, &runs[i], pass == PASS_RETRY);
			if (pass == PASS_RETRY) {
				free(s->first[runs[i].idx]);
				s->first[runs[i].idx] = NULL;
			}
			runs[i].t = NULL;
			busy--;
		}
	}
	free(runs);
	s->pass_ms[pass] += now_ms() - t0;
}

/* Where the time went, for CI logs (which keep the tail): each pass's wall
 * time and the slowest tests, the ones a shorter run would start from. */
static void time_summary(const struct sched *s, unsigned jobs)
{
	size_t i, k, top[10], ntop = 0;

	if (jobs > 1)
		printf("time: %lld s side by side, %lld s alone (%lld s of it waiting for what runs beside), "
		       "%lld s retrying\n", (s->pass_ms[PASS_SHARED] + 500) / 1000, (s->pass_ms[PASS_ALONE] + 500) / 1000,
		       (s->lock_wait_ms + 500) / 1000, (s->pass_ms[PASS_RETRY] + 500) / 1000);
	/* insertion into a short sorted list: n is a few hundred */
	for (i = 0; i < s->n; i++) {
		for (k = ntop; k > 0 && s->ms[top[k - 1]] < s->ms[i]; k--)
			if (k < 10)
				top[k] = top[k - 1];
		if (k < 10) {
			top[k] = i;
			ntop += ntop < 10;
		}
	}
	for (k = 0; k < ntop && s->ms[top[k]] >= 1000; k++)
		printf("slowest: %6.1f s  %s%s\n", s->ms[top[k]] / 1000.0, s->list[top[k]]->name,
		       s->list[top[k]]->needs & BT_NEEDS_ALONE ? " (alone)" : "");
}

static void usage_exit(const char *arg)
{
	fprintf(stderr, "baton-test: unknown option %s\n"
		"usage: baton-test [--no-root] [-jN] [--lock FILE] [--list] [PATTERN]...\n"
		"  PATTERN   run the tests whose names contain it (unit/, integ/: a lane)\n"
		"  -jN       run N tests side by side, then those declared alone one by one\n"
		"  --lock F  hold F locked while a test runs: shared, exclusive when alone\n"
		"  --list    print the names (alone ones marked) and run nothing\n",
		arg);
	exit(2);
}

/* Reads the options; returns the index of the first pattern. */
static int options(int argc, char **argv, struct sched *s, unsigned *jobs, bool *list)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *v = NULL;
		char *end;
		long j;

		if (!strcmp(argv[i], "--no-root"))
			s->no_root = true;
		else if (!strcmp(argv[i], "--lock") && i + 1 < argc)
			s->lock = argv[++i];
		else if (!strcmp(argv[i], "--list"))
			*list = true;
		else if (!strncmp(argv[i], "-j", 2))
			v = argv[i][2] ? argv[i] + 2 : i + 1 < argc ? argv[++i] : "";
		else if (!strncmp(argv[i], "--jobs=", 7))
			v = argv[i] + 7;
		else
			usage_exit(argv[i]);
		if (!v)
			continue;
		j = strtol(v, &end, 10);
		if (end == v || *end || j < 1 || j > 64) {
			fprintf(stderr, "baton-test: -j wants a number of tests at once from 1 to 64, not \"%s\"\n", v);
			exit(2);
		}
		*jobs = (unsigned)j;
	}
	return i;
}

int main(int argc, char **argv)
{
	struct sched s = { .retries = true };
	const char *env = getenv("BATON_TEST_RETRIES");
	unsigned jobs = 1;
	bool list = false;
	long long start = now_ms();
	struct bt_test *t;
	size_t n = 0;
	int first_pat;

	/* Many tests time real processes under load on a shared 2-core
	 * machine: a test that fails is run once more, alone, and one that
	 * passes then is reported as FLAKY with its first failure, never
	 * hidden. BATON_TEST_RETRIES=0 turns that off. */
	if (env && *env)
		s.retries = atoi(env) > 0;
	first_pat = options(argc, argv, &s, &jobs, &list);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	for (t = head; t; t = t->next)
		n++;
	s.list = calloc(n + 1, sizeof(*s.list));
	s.first = calloc(n + 1, sizeof(*s.first));
	s.ms = calloc(n + 1, sizeof(*s.ms));
	if (!s.list || !s.first || !s.ms) {
		perror("calloc");
		return 1;
	}
	for (t = head; t; t = t->next) {
		if (!wanted(t->name, argc - first_pat, argv + first_pat) ||
		    (s.no_root && (t->needs & (BT_NEEDS_ROOT | BT_NEEDS_ENV))))
			continue;
		if (list)
			printf("%s%s\n", t->name, t->needs & BT_NEEDS_ALONE ? " (alone)" : "");
		s.alone += !!(t->needs & BT_NEEDS_ALONE);
		s.list[s.n++] = t;
	}
	if (list) {
		free(s.ms);
		free(s.first);
		free(s.list);
		return 0;
	}
	if (s.no_root) {
		enter_no_root_lane();
		printf("no-root lane: uid %d, no BATON_* variables; tests that need more are left out\n",
		       (int)geteuid());
	}
	if (jobs > 1) {
		printf("%zu tests, %u at a time, then %d alone\n", s.n - (size_t)s.alone, jobs, s.alone);
		run_pass(&s, PASS_SHARED, jobs);
		run_pass(&s, PASS_ALONE, 1);
	} else {
		run_pass(&s, PASS_ALL, 1);
	}
	run_pass(&s, PASS_RETRY, 1);
	if (s.flaky)
		printf("flaky (failed once, passed on the retry): %d: %s\n", s.flaky, s.flaky_names);
	fputs(s.failed_lines, stdout);
	time_summary(&s, jobs);
	printf("time: %lld s of tests in %lld s, -j%u\n", (s.test_ms + 500) / 1000, (now_ms() - start + 500) / 1000,
	       jobs);
	printf("%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped);
	free(s.ms);
	free(s.first);
	free(s.list);
	return s.failed ? 1 : 0;
}
