/* SPDX-License-Identifier: BSD-2-Clause */
/* The baton command as a user meets it: --help everywhere, errors that name
 * the bad input, and the demo's measured outcome. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[16384], err[4096];

TEST(cli_help_lists_commands)
{
	static const struct bt_cli_case cases[] = {
		{ { "--help" }, 0, "usage: baton COMMAND" },
		{ { "--help" }, 0, "demo" },
		{ { "demo", "--help" }, 0, "usage: baton demo" },
		{ { "help", "demo" }, 0, "--json" },
		{ { "--version" }, 0, "baton " BATON_VERSION },
	};

	BT_CLI_CASES(cases);
}

TEST(cli_errors_name_the_bad_input)
{
	static const struct bt_cli_case cases[] = {
		{ { "frobnicate" }, 2, "unknown command \"frobnicate\"" },
		{ { "demo", "--colour" }, 2, "unknown option \"--colour\"" },
		{ { "demo", "extra" }, 2, "unexpected argument \"extra\"" },
		{ { NULL }, 2, "usage: baton" },
	};

	BT_CLI_CASES(cases);
}

TEST_ALONE(cli_demo_shows_problem_and_answer, 90)
{
	long long plain_failed;

	ASSERT_EQ(bt_baton("demo", "--json"), 0);
	ASSERT_TRUE(strstr(err, "part 1/3") == NULL);	/* progress only on a terminal */
	if (!strstr(out, "\"mode\": \"ebpf\""))
		SKIP("the demo ran without eBPF (needs CAP_BPF and CAP_NET_ADMIN, or root): %s", out);
	plain_failed = bt_json_int(out, "plain", "failed");
	ASSERT_EQ(bt_json_int(out, "plain", "worked") + plain_failed, 100);
	/* about half hash onto the frozen server; 5 sigma of a fair coin is 25 */
	ASSERT_GE(plain_failed, 25);
	ASSERT_LE(plain_failed, 75);
	ASSERT_EQ(bt_json_int(out, "baton", "worked"), 100);
	ASSERT_EQ(bt_json_int(out, "baton", "failed"), 0);
	ASSERT_EQ(bt_json_int(out, "switch", "failed"), 0);
	ASSERT_GT(bt_json_int(out, "switch", "worked"), 100);
	ASSERT_GT(bt_json_int(out, "switch", "migrated"), 0);
}

TEST(cli_unknown_words_get_a_hint)
{
	ASSERT_EQ(bt_baton("stauts"), 2);
	ASSERT_CONTAINS(err, "unknown command \"stauts\"; did you mean \"status\"?");
	ASSERT_EQ(bt_baton("help", "sterr"), 2);
	ASSERT_CONTAINS(err, "did you mean \"steer\"?");
	/* far from every command: no guess */
	ASSERT_EQ(bt_baton("frobnicate"), 2);
	ASSERT_TRUE(strstr(err, "did you mean") == NULL);
	ASSERT_EQ(bt_baton("--bogus"), 2);
	ASSERT_CONTAINS(err, "unknown option \"--bogus\"");
	ASSERT_TRUE(strstr(err, "unknown command") == NULL);
	ASSERT_EQ(bt_baton("ls", "--help"), 0);
	ASSERT_CONTAINS(out, "-j, --json");
	ASSERT_EQ(bt_baton("stop", "--help"), 0);
	ASSERT_CONTAINS(out, "--timeout DUR");
}

static char rtdir[64];

static void in_rtdir(void *ctx)
{
	(void)ctx;
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
}

/* Two control sockets: without a name, one clean line names both and says
 * how to pick one (the names used to be printed into the message). */
TEST(cli_several_supervisors_named_in_one_line)
{
	static const char *const cmds[] = { "status", "reload", "stop" };
	char path[128];

	snprintf(rtdir, sizeof(rtdir), "/tmp/baton-cli-XXXXXX");
	ASSERT_TRUE(mkdtemp(rtdir) != NULL);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s.sock", rtdir, i ? "tcp-8093" : "web");
		close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	}
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		char *argv[] = { (char *)bt_baton_bin(), (char *)cmds[c], NULL }, want[64];

		ASSERT_EQ(bt_run_with(argv, in_rtdir, NULL, out, sizeof(out), err, sizeof(err), 10), 2);
		snprintf(want, sizeof(want), "baton %s: ", cmds[c]);
		ASSERT_TRUE(!strncmp(err, want, strlen(want)));	/* nothing before the line */
		ASSERT_CONTAINS(err, "several supervisors run: ");
		ASSERT_CONTAINS(err, "tcp-8093");
		ASSERT_CONTAINS(err, "web");
		snprintf(want, sizeof(want), "name one, e.g. baton %s ", cmds[c]);
		ASSERT_CONTAINS(err, want);
		ASSERT_TRUE(strchr(err, '\n') == err + strlen(err) - 1);
	}
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s.sock", rtdir, i ? "tcp-8093" : "web");
		unlink(path);
	}
	rmdir(rtdir);
}

static void as_nobody_without_runtime_dir(void *ctx)
{
	(void)ctx;
	unsetenv("BATON_RUNTIME_DIR");
	unsetenv("XDG_RUNTIME_DIR");
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(126);
}

/* A user without a runtime directory gets the same explanation from every
 * control command, with or without a name (reload NAME said "No such file
 * or directory"). */
TEST(cli_control_commands_explain_the_runtime_dir)
{
	static const char *const cmds[] = { "status", "reload", "stop" };
	int r;

	if (geteuid() != 0)
		SKIP("needs root to run the commands as user nobody");
	bt_share_baton_bin();
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		for (int named = 0; named < 2; named++) {
			char *argv[] = { (char *)bt_baton_bin(), (char *)cmds[c], named ? "web" : NULL, NULL };

			r = bt_run_with(argv, as_nobody_without_runtime_dir, NULL, out, sizeof(out), err,
					sizeof(err), 10);
			if (r == 126 || r == 127) {
				bt_unshare_baton_bin();
				SKIP("user nobody cannot run %s", bt_baton_bin());
			}
			bt_log("%s", err);
			ASSERT_EQ(r, 1);
			ASSERT_CONTAINS(err, "no runtime directory: set BATON_RUNTIME_DIR or XDG_RUNTIME_DIR");
			ASSERT_TRUE(strstr(err, "No such file or directory") == NULL);
		}
	}
	bt_unshare_baton_bin();
}

static void stderr_is_journal(void *ctx)
{
	struct stat st;
	char env[64];

	(void)ctx;
	if (fstat(STDERR_FILENO, &st) == 0) {
		snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", env, 1);
	}
}

/* Under the journal (stderr is $JOURNAL_STREAM) errors carry <3>, and the
 * library's messages relayed by the CLI carry their level too. */
TEST(cli_errors_carry_their_level_under_the_journal)
{
	char *argv[] = { (char *)bt_baton_bin(), "frobnicate", NULL };
	char *argv2[] = { (char *)bt_baton_bin(), "steer", "tcp://127.0.0.1:1", "--policy", "nonsense", NULL };

	ASSERT_EQ(bt_run_with(argv, stderr_is_journal, NULL, out, sizeof(out), err, sizeof(err), 10), 2);
	/* one prefix: journald says "baton[PID]:" itself; a subcommand stays */
	ASSERT_TRUE(!strncmp(err, "<3>unknown command \"frobnicate\"", 31));
	ASSERT_EQ(bt_run_with(argv2, stderr_is_journal, NULL, out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_TRUE(!strncmp(err, "<3>steer: option --policy", 25));
	/* elsewhere: the level in words, the text as it was */
	ASSERT_EQ(bt_baton("frobnicate"), 2);
	ASSERT_TRUE(!strncmp(err, "baton: error: unknown command \"frobnicate\"", 42));
}

static void log_format_env(void *ctx)
{
	setenv("BATON_LOG_FORMAT", ctx, 1);
	unsetenv("JOURNAL_STREAM");
}

/* BATON_LOG_FORMAT: journal for systemd-cat (which parses "<N>"), level for
 * logs that see only text; a bad value is said and ignored; --log-format
 * names what it wants. */
TEST(cli_log_format_env_chooses_the_prefixes)
{
	char *argv[] = { (char *)bt_baton_bin(), "frobnicate", NULL };
	char *bad[] = { (char *)bt_baton_bin(), "run", "--log-format", "fancy", "--", "true", NULL };

	ASSERT_EQ(bt_run_with(argv, log_format_env, "journal", out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_TRUE(!strncmp(err, "<3>unknown command \"frobnicate\"", 31));
	ASSERT_EQ(bt_run_with(argv, log_format_env, "level", out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_TRUE(!strncmp(err, "baton: error: unknown command \"frobnicate\"", 42));
	ASSERT_EQ(bt_run_with(argv, log_format_env, "fancy", out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_CONTAINS(err, "baton: warning: BATON_LOG_FORMAT=\"fancy\" is none of plain, level, journal; ignored\n");
	ASSERT_CONTAINS(err, "baton: error: unknown command \"frobnicate\"");
	ASSERT_EQ(bt_run(bad, out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_CONTAINS(err, "bad --log-format \"fancy\": want plain, level or journal");
}

/* On a terminal the demo says which part runs (on stderr), instead of
 * seconds of silence. */
TEST_ALONE(cli_demo_shows_progress_on_a_terminal, 90)
{
	char errpath[64], buf[4096];
	int master, slave, fd, status = -1;
	struct timespec t0, t;
	ssize_t n;
	pid_t pid;

	if (openpty(&master, &slave, NULL, NULL, NULL))
		SKIP("no pseudo-terminal: %s", strerror(errno));
	snprintf(errpath, sizeof(errpath), "/tmp/baton-demo-err-%d", (int)getpid());
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		dup2(slave, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execl(bt_baton_bin(), bt_baton_bin(), "demo", (char *)NULL);
		_exit(127);
	}
	close(slave);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* drain the terminal until the demo exits (EIO once it is gone) */
	for (int i = 0; i < 6000; i++) {
		struct pollfd p = { .fd = master, .events = POLLIN };

		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (poll(&p, 1, 10) == 1 && (n = read(master, buf, sizeof(buf))) < 0 && errno != EINTR &&
		    errno != EAGAIN)
			usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 60)
			break;
	}
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		close(master);
		unlink(errpath);
		FAIL("baton demo did not finish within 60 s");
	}
	close(master);
	fd = open(errpath, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, err, sizeof(err) - 1) : -1;
	err[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	unlink(errpath);
	bt_log("%s", err);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_CONTAINS(err, "baton demo: part 1/3: plain SO_REUSEPORT");
	ASSERT_CONTAINS(err, "part 2/3");
	ASSERT_CONTAINS(err, "part 3/3");
}
