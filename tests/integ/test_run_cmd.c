/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton run` as an operator sees it: a reload that changes the command or
 * its environment (kept after a bad one rolls back, and across a supervisor
 * that died), log lines with journald levels, and the per-generation
 * connection counters in `status --json` and `status --metrics`. */
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

/* stderr is the journal's stream: JOURNAL_STREAM names its device and inode */
static void journal_child(void *ctx)
{
	struct stat st;
	char val[64];

	(void)ctx;
	if (fstat(2, &st) == 0) {
		snprintf(val, sizeof(val), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", val, 1);
	}
}

/* `baton run --name web` of the reference server through sh, which tags
 * each answer with $MYTAG: "t-VALUE", "t-" when empty, "t-unset". */
static void sv_start_with(struct bt_sv *s, bool journal, const char *opt1, const char *opt2)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	const char *opts[] = { opt1, opt2, NULL };

	bt_need_netns();
	bt_need_ebpf();
	bt_sv_init(s);
	snprintf(s->cmd, sizeof(s->cmd), "exec %s -q --tag \"t-${MYTAG-unset}\"", ref);
	bt_sv_start(s, "tcp://127.0.0.1:0?name=http", "3s", opts, journal ? journal_child : NULL, out, sizeof(out));
}

static void sv_start(struct bt_sv *s, bool journal)
{
	sv_start_with(s, journal, NULL, NULL);
}

/* The tag of whoever answers one request on PORT ("" if nobody did). */
static const char *tag_of(uint16_t port)
{
	static char tag[256];
	char buf[1024];
	struct pollfd p;
	const char *t;
	size_t got = 0;
	int fd = bt_connect(port);

	tag[0] = '\0';
	if (fd < 0)
		return tag;
	if (write(fd, "GET / HTTP/1.0\r\n\r\n", 18) != 18) {
		close(fd);
		return tag;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (got < sizeof(buf) - 1 && poll(&p, 1, 3000) == 1) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if ((t = strstr(buf, "tag=")))
		snprintf(tag, sizeof(tag), "%.*s", (int)strcspn(t + 4, "\r\n"), t + 4);
	return tag;
}

static void sv_stop(struct bt_sv *s)
{
	bt_supervisor_stop(&s->pid, 10);
}

/* KEY's value in generation ID's object of a status document (its first
 * member's, for the per-member counters). */
static long long gen_field(const char *text, int id, const char *key)
{
	return bt_json_get(bt_gen_json(text, id), key);
}

TEST_TIMEOUT(run_reload_with_a_new_command_serves_it_from_then_on, 60)
{
	const char *gen = getenv("BATON_LOADGEN");
	char portstr[16], cmdtag[64];
	struct bt_sv s;
	pid_t load;
	int p[2], status;
	size_t got = 0;

	if (!gen || access(gen, X_OK))
		SKIP("BATON_LOADGEN does not name the load client (run through make check)");
	sv_start(&s, false);
	ASSERT_STREQ(tag_of(s.port), "t-unset");
	/* the counting client, under connection-per-request load throughout */
	snprintf(portstr, sizeof(portstr), "%u", s.port);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	load = fork();
	if (load == 0) {
		char *argv[] = { (char *)gen, "--port", portstr, "--mode", "conn", "--concurrency", "8",
				 "--duration", "2", "--timeout-ms", "3000", "--json", NULL };

		dup2(p[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	usleep(300000);
	ASSERT_EQ(bt_baton("reload", "web", "--", bt_need_env("BATON_REFSERVER", "reference server"), "-q", "--tag=newcmd"), 0);
	ASSERT_CONTAINS(out, "serves");
	usleep(300000);
	/* a plain reload after it keeps the new command */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	for (int i = 0; i < 100; i++) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		ssize_t n;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		n = read(p[0], out + got, sizeof(out) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	close(p[0]);
	ASSERT_EQ(waitpid(load, &status, 0), load);
	bt_log("load: %s", out);
	ASSERT_EQ(bt_json_get(out, "failed"), 0);
	ASSERT_GE(bt_json_get(out, "distinct_tags"), 2);
	ASSERT_CONTAINS(out, "\"t-unset\"");
	ASSERT_CONTAINS(out, "\"newcmd\"");
	ASSERT_STREQ(tag_of(s.port), "newcmd");
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	snprintf(cmdtag, sizeof(cmdtag), "\"command\":[\"%s\",\"-q\",\"--tag=newcmd\"]", bt_need_env("BATON_REFSERVER", "reference server"));
	ASSERT_CONTAINS(out, cmdtag);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 2);
	sv_stop(&s);
}

TEST_TIMEOUT(run_reload_env_sets_empties_and_unsets_for_later_generations, 60)
{
	struct bt_sv s;

	sv_start(&s, false);
	ASSERT_EQ(bt_baton("reload", "web", "--env", "MYTAG=blue", "--env", "OTHER=a b%c\td"), 0);
	ASSERT_STREQ(tag_of(s.port), "t-blue");
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_CONTAINS(out, "\"environment\":[\"MYTAG=blue\",\"OTHER=a b%c\\u0009d\"]");
	/* every later generation, not only the next one */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_STREQ(tag_of(s.port), "t-blue");
	ASSERT_EQ(bt_baton("reload", "web", "--env", "MYTAG="), 0);
	ASSERT_STREQ(tag_of(s.port), "t-");
	ASSERT_EQ(bt_baton("reload", "web", "--unset-env", "MYTAG"), 0);
	ASSERT_STREQ(tag_of(s.port), "t-unset");
	/* bad entries are refused before anything is sent */
	ASSERT_EQ(bt_baton("reload", "web", "--env", "NOVALUE"), 2);
	ASSERT_CONTAINS(err, "bad --env \"NOVALUE\": want KEY=VALUE");
	ASSERT_EQ(bt_baton("reload", "web", "--env", "A=x\001y"), 2);
	ASSERT_CONTAINS(err, "control character 0x01");
	ASSERT_EQ(bt_baton("reload", "web", "--"), 2);
	ASSERT_CONTAINS(err, "nothing after \"--\"");
	bt_assert_reloads("web", 4, 0);
	sv_stop(&s);
}

TEST_TIMEOUT(run_bad_reload_command_rolls_back_and_the_old_one_stays, 60)
{
	static const struct { const char *req, *says; } bad[] = {
		{ "baton/1 reload-with 1\narg a%01b\n", "error reload-with item 1 (arg) holds the control character 0x01" },
		{ "baton/1 reload-with 1\narg a%00b\n", "a NUL byte (%00)" },
		{ "baton/1 reload-with 1\nenv NOEQUALS\n", "error bad --env \"NOEQUALS\"" },
		{ "baton/1 reload-with 1\nrun x\n", "error unknown reload-with item \"run\"" },
		{ "baton/1 reload-with 99999\n", "error reload-with wants a count of 0 to 4096 item lines" },
	};
	char path[100], reply[1024];
	struct bt_sv s;

	/* refserver says READY=1 itself (exec keeps sh's pid) */
	sv_start_with(&s, false, "--ready=notify", "--ready-timeout=700ms");
	ASSERT_EQ(bt_baton("reload", "web", "--env", "MYTAG=old"), 0);
	/* exec fails */
	ASSERT_NE(bt_baton("reload", "web", "--env", "MYTAG=new", "--", "/nonexistent/server"), 0);
	ASSERT_CONTAINS(err, "cannot start the next generation (\"/nonexistent/server\"): No such file or directory");
	/* exits before it is ready */
	ASSERT_NE(bt_baton("reload", "web", "--", "/bin/sh", "-c", "exit 3"), 0);
	ASSERT_CONTAINS(err, "exited with status 3 before it was ready; rolled back");
	/* never ready */
	ASSERT_NE(bt_baton("reload", "web", "--", bt_need_env("BATON_REFSERVER", "reference server"), "-q", "--never-ready"), 0);
	ASSERT_CONTAINS(err, "was not ready within 700 ms; rolled back");
	ASSERT_STREQ(tag_of(s.port), "t-old");
	/* the next plain reload runs the command and environment in force */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_STREQ(tag_of(s.port), "t-old");
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), 3);
	ASSERT_CONTAINS(out, "\"environment\":[\"MYTAG=old\"]");
	ASSERT_CONTAINS(out, "\"command\":[\"/bin/sh\",\"-c\"");

	/* the protocol refuses what it cannot carry, naming it */
	snprintf(path, sizeof(path), "%s/web.sock", s.dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bt_unix_request(path, bad[i].req, strlen(bad[i].req), reply, sizeof(reply));
		ASSERT_CONTAINS(reply, bad[i].says);
	}
	bt_assert_reloads("web", 2, 3);
	sv_stop(&s);
}

TEST_TIMEOUT(run_resumed_supervisor_runs_the_command_the_last_reload_set, 60)
{
	struct bt_sv s;
	int status;

	sv_start(&s, false);
	ASSERT_EQ(bt_baton("reload", "web", "--env", "MYTAG=kept"), 0);
	for (int i = 0; i < 5; i++)
		ASSERT_STREQ(tag_of(s.port), "t-kept");
	ASSERT_EQ(kill(s.pid, SIGKILL), 0);
	ASSERT_EQ(waitpid(s.pid, &status, 0), s.pid);
	/* the same `baton run` again: it adopts gen 2 and its command */
	bt_sv_restart(&s, out, sizeof(out));
	ASSERT_CONTAINS(out, "\"resumed\":true");
	ASSERT_CONTAINS(out, "\"environment\":[\"MYTAG=kept\"]");
	ASSERT_EQ(gen_field(out, 2, "steered"), 5);	/* its counters were kept too */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_STREQ(tag_of(s.port), "t-kept");
	sv_stop(&s);
}

/* The whole log file, for the level checks. */
static void read_log(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* --log-format level: a level word on every line (runit, s6, a container's
 * log driver see only text), info included. */
TEST_TIMEOUT(run_log_format_level_puts_a_level_word_on_every_line, 60)
{
	static char log[65536];
	static const char *const words[] = { "info: ", "warning: ", "error: ", "notice: ", "debug: " };
	struct bt_sv s;
	int lines = 0;

	sv_start_with(&s, false, "--log-format", "level");
	ASSERT_NE(bt_baton("reload", "web", "--", "/nonexistent/server"), 0);
	sv_stop(&s);
	read_log(s.log, log, sizeof(log));
	bt_log("%.3000s", log);
	ASSERT_CONTAINS(log, "baton[web]: info: gen 1 (pid ");
	ASSERT_CONTAINS(log, "baton[web]: error: cannot run \"/nonexistent/server\": No such file or directory");
	ASSERT_CONTAINS(log, "baton[web]: warning: reload failed after ");
	ASSERT_CONTAINS(log, "baton[web]: info: stopped");
	for (char *line = log; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
		bool worded = false;

		if (strncmp(line, "baton[web]: ", 12))
			continue;
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			worded |= !strncmp(line + 12, words[i], strlen(words[i]));
		if (!worded)
			FAIL("a line without a level word: %.120s", line);
		lines++;
	}
	ASSERT_GE(lines, 4);
}

TEST_TIMEOUT(run_log_lines_carry_journal_levels, 60)
{
	static char log[65536];
	struct bt_sv s;

	sv_start(&s, true);
	ASSERT_NE(bt_baton("reload", "web", "--", "/nonexistent/server"), 0);
	ASSERT_NE(bt_baton("reload", "web", "--", "/bin/sh", "-c", "exit 3"), 0);
	sv_stop(&s);
	read_log(s.log, log, sizeof(log));
	bt_log("%.3000s", log);
	/* one prefix: journald writes "baton[PID]:" itself */
	ASSERT_CONTAINS(log, "<6>gen 1 (pid ");
	ASSERT_CONTAINS(log, "<3>cannot run \"/nonexistent/server\": No such file or directory");
	ASSERT_CONTAINS(log, "<4>rolling back: gen ");
	ASSERT_CONTAINS(log, "<4>reload failed after ");
	ASSERT_CONTAINS(log, "<6>stopped");
	ASSERT_TRUE(strstr(log, "baton[web]") == NULL);
	/* every line has its level, and nothing else says it a second time */
	for (char *line = log; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
		if (line[0] != '<' && line[0] != '\n')
			FAIL("a line without a level: %.120s", line);
	}
	ASSERT_TRUE(strstr(log, "warning: ") == NULL);
	ASSERT_TRUE(strstr(log, "error: ") == NULL);
}

/* The value of the sample METRIC{LABELS} in Prometheus text OUT, or -1. */
static long long sample(const char *text, const char *metric, const char *labels)
{
	char want[256];
	const char *p;

	snprintf(want, sizeof(want), "\n%s{%s} ", metric, labels);
	p = strstr(text, want);
	return p ? atoll(p + strlen(want)) : -1;
}

/* N connections, each answered. */
static void connections(uint16_t port, int n)
{
	for (int i = 0; i < n; i++)
		ASSERT_TRUE(tag_of(port)[0] != '\0');
}

TEST_TIMEOUT(run_status_counts_connections_per_generation_and_exports_metrics, 90)
{
	static char metrics[65536];
	struct bt_sv s;
	long long in3, out2;
	int fds[20], i;

	sv_start(&s, false);
	connections(s.port, 50);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	connections(s.port, 30);
	for (i = 0; i < 100; i++) {	/* gen 1 exits; its member leaves the group */
		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		if (strstr(out, "{\"id\":1,\"pid\":0,\"state\":\"exited\""))
			break;
		usleep(50000);
	}
	bt_log("%s", out);
	ASSERT_CONTAINS(out, "{\"id\":1,\"pid\":0,\"state\":\"exited\"");
	/* kept after gen 1's member left: what it served */
	ASSERT_EQ(gen_field(out, 1, "steered"), 50);
	ASSERT_EQ(gen_field(out, 2, "steered"), 30);
	ASSERT_EQ(gen_field(out, 2, "migrated_in"), 0);

	/* a frozen gen 2: the watch fences it, its queue moves to gen 3 */
	ASSERT_EQ(kill((pid_t)gen_field(out, 2, "pid"), SIGSTOP), 0);
	bt_connect_send(s.port, fds, 20, "GET / HTTP/1.0\r\n\r\n");
	for (i = 0; i < 20; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		char buf[256];

		ASSERT_EQ(poll(&p, 1, 5000), 1);
		ASSERT_GT(read(fds[i], buf, sizeof(buf)), 0);
		close(fds[i]);
	}
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	kill((pid_t)gen_field(out, 2, "pid"), SIGCONT);
	bt_log("%s", out);
	in3 = gen_field(out, 3, "migrated_in");
	out2 = gen_field(out, 2, "migrated_out");
	ASSERT_GE(in3, 1);
	ASSERT_EQ(out2, in3);
	ASSERT_EQ(gen_field(out, 2, "steered") + gen_field(out, 3, "steered"), 50);

	ASSERT_EQ(bt_baton("status", "web", "--metrics"), 0);
	snprintf(metrics, sizeof(metrics), "%s", out);
	bt_log("%.2000s", metrics);
	ASSERT_CONTAINS(metrics, "# TYPE baton_generation_connections_steered_total counter\n");
	ASSERT_EQ(sample(metrics, "baton_generation_connections_migrated_in_total",
			 "name=\"web\",generation=\"3\",listener=\"0\""), in3);
	ASSERT_EQ(sample(metrics, "baton_generation_state", "name=\"web\",generation=\"3\",state=\"active\""), 1);
	ASSERT_EQ(sample(metrics, "baton_serving_generation", "name=\"web\""), 3);
	/* gen 1 exited: no series of its own (the label would grow with every
	 * reload), what it counted is in the supervisor's totals */
	ASSERT_TRUE(strstr(metrics, "generation=\"1\"") == NULL);
	ASSERT_EQ(sample(metrics, "baton_connections_steered_total", "name=\"web\",listener=\"0\""), 100);
	ASSERT_EQ(sample(metrics, "baton_connections_migrated_out_total", "name=\"web\",listener=\"0\""), out2);
	ASSERT_EQ(sample(metrics, "baton_connections_migrated_in_total", "name=\"web\",listener=\"0\""), in3);
	/* one reload asked for; the watch's replacement of frozen gen 2 is a restart */
	ASSERT_EQ(sample(metrics, "baton_reloads_total", "name=\"web\",result=\"done\""), 1);
	ASSERT_EQ(sample(metrics, "baton_reloads_total", "name=\"web\",result=\"failed\""), 0);
	ASSERT_EQ(sample(metrics, "baton_restarts_total", "name=\"web\""), 1);
	ASSERT_EQ(sample(metrics, "baton_degraded", "name=\"web\""), 0);
	ASSERT_EQ(bt_baton("status", "web", "--json", "--metrics"), 2);
	ASSERT_CONTAINS(err, "give --json or --metrics, not both");
	sv_stop(&s);

	/* the text exposition format, as Prometheus's own checker reads it */
	bt_promtool(s.dir, metrics);
}

/* The row of generation ID in `baton status` text ("" if none), to its end. */
static const char *status_row(const char *text, int id, char *row, size_t len)
{
	char pat[16];
	const char *p;

	snprintf(pat, sizeof(pat), "\n%-4d ", id);
	p = strstr(text, pat);
	snprintf(row, len, "%.*s", p ? (int)strcspn(p + 1, "\n") : 0, p ? p + 1 : "");
	return row;
}

/* Tags ([shim], [adopted], [fenced: ...]) come after the queue cells, so a
 * tagged row and an untagged one keep their columns. */
TEST_TIMEOUT(run_status_text_columns_stay_aligned_whatever_the_tags, 60)
{
	char r1[512], r2[512];
	long long gpid;
	struct bt_sv s;
	int i;

	sv_start(&s, false);
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	gpid = gen_field(out, 1, "pid");
	ASSERT_EQ(kill((pid_t)gpid, SIGSTOP), 0);	/* the watch replaces it; gen 1 gets a tag */
	for (i = 0; i < 200; i++) {
		ASSERT_EQ(bt_baton("status", "web"), 0);
		if (strstr(out, "fenced: owner stopped") && status_row(out, 2, r2, sizeof(r2))[0] &&
		    strstr(r2, "active"))
			break;
		usleep(20000);
	}
	bt_log("%s", out);
	kill((pid_t)gpid, SIGCONT);
	status_row(out, 1, r1, sizeof(r1));
	status_row(out, 2, r2, sizeof(r2));
	ASSERT_CONTAINS(r1, "[fenced: owner stopped (SIGSTOP)]");
	ASSERT_TRUE(strstr(r2, "fenced") == NULL);
	/* the queue cell starts in the same column, and so do the tags */
	ASSERT_TRUE(strlen(r1) > 70 && strlen(r2) > 70);
	ASSERT_EQ(strcspn(r1 + 52, "0123456789-") + 52, 53);
	ASSERT_EQ(strcspn(r2 + 52, "0123456789-") + 52, 53);
	ASSERT_EQ(strchr(r1, '[') - r1, strchr(r2, '[') - r2);
	sv_stop(&s);
}
