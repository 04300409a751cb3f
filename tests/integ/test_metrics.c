/* SPDX-License-Identifier: BSD-2-Clause */
/* Metrics an operator alerts on: the last reload's outcome and when one
 * last served, the reload duration histogram, the serving generation, kept
 * across `baton upgrade` and a resumed supervisor; and --metrics-listen,
 * the same text over HTTP, scraped during reloads under load. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

struct msv {
	pid_t pid;
	char dir[64];
	char log[96];
	uint16_t port;
};

static const char *refserver(void)
{
	const char *v = getenv("BATON_REFSERVER");

	if (!v || access(v, X_OK))
		SKIP("BATON_REFSERVER does not name the reference server (run through make check)");
	return v;
}

static int baton(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5)
{
	char *argv[] = { (char *)bt_baton_bin(), (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL };

	return bt_run(argv, out, sizeof(out), err, sizeof(err), 60);
}

/* `baton run --name web` of the reference server, with OPT1 OPT2 (or
 * nothing) before the command. RESUME: the state of a dead one is there. */
static void msv_start(struct msv *s, bool resume, const char *opt1, const char *opt2)
{
	char cmd[512];
	char *argv[16];
	int n = 0;

	bt_need_netns();
	bt_need_ebpf();
	if (!resume) {
		memset(s, 0, sizeof(*s));
		snprintf(s->dir, sizeof(s->dir), "/tmp/baton-test-XXXXXX");
		if (!mkdtemp(s->dir))
			FAIL("mkdtemp: %s", strerror(errno));
		setenv("BATON_RUNTIME_DIR", s->dir, 1);
		snprintf(s->log, sizeof(s->log), "%s/log", s->dir);
	}
	snprintf(cmd, sizeof(cmd), "exec %s -q", refserver());
	argv[n++] = (char *)bt_baton_bin();
	argv[n++] = "run";
	argv[n++] = "--name";
	argv[n++] = "web";
	argv[n++] = "--listen";
	argv[n++] = "tcp://127.0.0.1:0?name=http";
	argv[n++] = "--grace";
	argv[n++] = "3s";
	if (opt1)
		argv[n++] = (char *)opt1;
	if (opt2)
		argv[n++] = (char *)opt2;
	argv[n++] = "--";
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = cmd;
	argv[n] = NULL;
	s->pid = bt_supervisor_start(argv, "web", s->log, NULL, NULL, 10, out, sizeof(out));
	s->port = (uint16_t)bt_json_get(out, "port");
}

/* The value of the sample METRIC{LABELS} in Prometheus text, or -1. */
static double sample(const char *text, const char *metric, const char *labels)
{
	char want[256];
	const char *p;

	snprintf(want, sizeof(want), "\n%s{%s} ", metric, labels);
	p = strstr(text, want);
	return p ? atof(p + strlen(want)) : -1;
}

/* A value in thousandths, for the integer assertions (timestamps carry
 * milliseconds, sums microseconds). */
static long long milli(double v)
{
	return (long long)(v * 1000.0 + (v < 0 ? -0.5 : 0.5));
}

/* Prometheus's own checker on TEXT; skips without it. */
static void promtool(const char *dir, const char *text)
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

static void metrics(char *buf, size_t len)
{
	ASSERT_EQ(baton("status", "web", "--metrics", NULL, NULL), 0);
	snprintf(buf, len, "%s", out);
}

TEST_TIMEOUT(metrics_alert_on_a_failed_reload_and_survive_upgrade_and_resume, 120)
{
	static char m[65536], m2[65536];
	struct msv s;
	double ok_ts, started;
	int status;

	started = (double)time(NULL);
	msv_start(&s, false, NULL, NULL);
	metrics(m, sizeof(m));
	bt_log("%.1500s", m);
	ASSERT_EQ(sample(m, "baton_last_reload_successful", "name=\"web\""), 1);
	ASSERT_GE(milli(sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"")), milli(started - 1));
	ASSERT_EQ(sample(m, "baton_serving_generation", "name=\"web\""), 1);
	ASSERT_CONTAINS(m, "\nbaton_build_info{name=\"web\",version=\"" BATON_VERSION "\"} 1\n");
	ASSERT_CONTAINS(m, "# TYPE baton_reload_duration_seconds histogram\n");
	ASSERT_EQ(sample(m, "baton_reload_duration_seconds_count", "name=\"web\",result=\"done\""), 0);

	for (int i = 0; i < 10; i++) {	/* counted by gen 1, which then goes */
		int fd = bt_connect(s.port);

		ASSERT_GE(fd, 0);
		close(fd);
	}
	/* two that serve, then one that is rolled back */
	ASSERT_EQ(baton("reload", "web", NULL, NULL, NULL), 0);
	ASSERT_EQ(baton("reload", "web", NULL, NULL, NULL), 0);
	metrics(m, sizeof(m));
	ASSERT_EQ(sample(m, "baton_last_reload_successful", "name=\"web\""), 1);
	ok_ts = sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"");
	ASSERT_GE(milli(ok_ts), milli(started - 1));
	ASSERT_EQ(sample(m, "baton_serving_generation", "name=\"web\""), 3);
	ASSERT_EQ(sample(m, "baton_reload_duration_seconds_count", "name=\"web\",result=\"done\""), 2);
	ASSERT_EQ(sample(m, "baton_reload_duration_seconds_bucket", "name=\"web\",result=\"done\",le=\"+Inf\""), 2);
	ASSERT_GT(milli(sample(m, "baton_reload_duration_seconds_sum", "name=\"web\",result=\"done\"") * 1000), 0);
	ASSERT_NE(baton("reload", "web", "--", "/nonexistent/server", NULL), 0);
	metrics(m, sizeof(m));
	bt_log("%.3000s", m);
	ASSERT_EQ(sample(m, "baton_last_reload_successful", "name=\"web\""), 0);
	ASSERT_EQ(milli(sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"")), milli(ok_ts));
	ASSERT_EQ(sample(m, "baton_serving_generation", "name=\"web\""), 3);
	ASSERT_EQ(sample(m, "baton_reload_duration_seconds_count", "name=\"web\",result=\"failed\""), 1);
	ASSERT_EQ(sample(m, "baton_reloads_total", "name=\"web\",result=\"failed\""), 1);
	/* gens 1, 2 and 4 are gone (or going): only live generations have series */
	ASSERT_TRUE(strstr(m, "generation=\"4\"") == NULL);
	promtool(s.dir, m);

	/* baton upgrade: the same numbers from the re-executed supervisor */
	ASSERT_EQ(baton("upgrade", "web", NULL, NULL, NULL), 0);
	metrics(m2, sizeof(m2));
	ASSERT_EQ(sample(m2, "baton_last_reload_successful", "name=\"web\""), 0);
	ASSERT_EQ(milli(sample(m2, "baton_last_reload_success_timestamp_seconds", "name=\"web\"")), milli(ok_ts));
	ASSERT_EQ(sample(m2, "baton_reload_duration_seconds_count", "name=\"web\",result=\"done\""), 2);
	ASSERT_EQ(sample(m2, "baton_reload_duration_seconds_count", "name=\"web\",result=\"failed\""), 1);
	ASSERT_EQ(milli(sample(m2, "baton_reload_duration_seconds_sum", "name=\"web\",result=\"done\"") * 1000),
		  milli(sample(m, "baton_reload_duration_seconds_sum", "name=\"web\",result=\"done\"") * 1000));
	ASSERT_EQ(sample(m2, "baton_connections_steered_total", "name=\"web\",listener=\"0\""), 10);

	/* a reload that serves sets it back to 1 */
	ASSERT_EQ(baton("reload", "web", NULL, NULL, NULL), 0);
	metrics(m, sizeof(m));
	ASSERT_EQ(sample(m, "baton_last_reload_successful", "name=\"web\""), 1);
	ASSERT_GT(milli(sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"")), milli(ok_ts));
	ok_ts = sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"");

	/* a supervisor killed and run again resumes them too */
	ASSERT_EQ(kill(s.pid, SIGKILL), 0);
	ASSERT_EQ(waitpid(s.pid, &status, 0), s.pid);
	msv_start(&s, true, NULL, NULL);
	ASSERT_CONTAINS(out, "\"resumed\":true");
	metrics(m2, sizeof(m2));
	bt_log("%.3000s", m2);
	ASSERT_EQ(sample(m2, "baton_last_reload_successful", "name=\"web\""), 1);
	ASSERT_EQ(milli(sample(m2, "baton_last_reload_success_timestamp_seconds", "name=\"web\"")), milli(ok_ts));
	ASSERT_EQ(sample(m2, "baton_reload_duration_seconds_count", "name=\"web\",result=\"done\""), 3);
	ASSERT_EQ(sample(m2, "baton_reload_duration_seconds_count", "name=\"web\",result=\"failed\""), 1);
	ASSERT_EQ(sample(m2, "baton_serving_generation", "name=\"web\""), 5);
	ASSERT_EQ(sample(m2, "baton_connections_steered_total", "name=\"web\",listener=\"0\""), 10);
	bt_supervisor_stop(&s.pid, 10);
	promtool(s.dir, m2);
}
