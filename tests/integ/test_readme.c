/* SPDX-License-Identifier: BSD-2-Clause */
/* The README's first examples, as a new user runs them: each `baton run`
 * line of the "Rolling upgrades" section taken verbatim from README.md
 * (only `baton` and `build/` point at the build under test), two `baton
 * reload`s under 8 counting clients while a spinning process competes for
 * every core: not one request may fail, and the health watch must not take
 * the loaded server for hung. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

#define MAX_ARGS 40
#define SPIN_S 90	/* a spinner ends by itself even if the test is killed */

static char out[65536], err[16384];

/* The first N lines that start with "baton run " in the README's "Rolling
 * upgrades" section, and the README's "baton reload" line, found there. */
static int readme_run_lines(char lines[][512], int n)
{
	const char *src = getenv("BATON_SRCDIR");
	char path[512], line[1024];
	bool in = false;
	int got = 0;
	FILE *f;

	if (!src)
		SKIP("BATON_SRCDIR is not set (run through make check)");
	snprintf(path, sizeof(path), "%s/README.md", src);
	if (!(f = fopen(path, "re")))
		FAIL("open %s: %s", path, strerror(errno));
	while (got < n && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "## ", 3))
			in = strstr(line, "Rolling upgrades") != NULL;
		if (in && !strncmp(line, "baton run ", 10)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(lines[got++], 512, "%.500s", line);
		}
	}
	fclose(f);
	return got;
}

/* Splits LINE as sh would for these lines (words, '...' quotes, a trailing
 * # comment); `baton` becomes the binary under test and build/X the build's. */
static int split(char *line, char *argv[], char store[][256])
{
	const char *build = getenv("BATON_REFSERVER");
	int n = 0;
	char *p = line;

	while (*p && n < MAX_ARGS - 1) {
		char word[256];
		size_t w = 0;

		while (*p == ' ')
			p++;
		if (!*p || *p == '#')
			break;
		while (*p && *p != ' ' && w < sizeof(word) - 1) {
			if (*p == '\'') {
				for (p++; *p && *p != '\'' && w < sizeof(word) - 1; p++)
					word[w++] = *p;
				if (*p == '\'')
					p++;
			} else {
				word[w++] = *p++;
			}
		}
		word[w] = '\0';
		if (!n && !strcmp(word, "baton")) {
			snprintf(store[n], 256, "%s", bt_baton_bin());
		} else if (!strncmp(word, "build/", 6)) {
			const char *slash = build ? strrchr(build, '/') : NULL;

			if (!slash)
				SKIP("BATON_REFSERVER does not name the build folder (run through make check)");
			snprintf(store[n], 256, "%.*s/%s", (int)(slash - build), build, word + 6);
		} else {
			snprintf(store[n], 256, "%s", word);
		}
		argv[n] = store[n];
		n++;
	}
	argv[n] = NULL;
	return n;
}

/* One spinning child per core, each ending by itself after SPIN_S. */
static int spin_start(pid_t *pids, int max)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int n = 0;

	for (long i = 0; i < cores && n < max; i++) {
		pid_t p = fork();

		if (p == 0) {
			time_t end = time(NULL) + SPIN_S;
			volatile unsigned long x = 0;

			while (time(NULL) < end)
				for (int k = 0; k < 1000000; k++)
					x += (unsigned long)k;
			_exit(0);
		}
		if (p > 0)
			pids[n++] = p;
	}
	return n;
}

static void spin_stop(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
}

static char www[64];

/* In baton run's child: python's http.server serves its working folder. */
static void in_www(void *ctx)
{
	(void)ctx;
	if (chdir(www))
		_exit(126);
}

static int baton_cli(const char *verb)
{
	char *argv[] = { (char *)bt_baton_bin(), (char *)verb, NULL };

	return bt_run(argv, out, sizeof(out), err, sizeof(err), 60);
}

/* LINE verbatim, 2 reloads under 8 clients with every core busy. */
static void run_example(const char *line, const char *dir)
{
	char copy[512], store[MAX_ARGS][256], *argv[MAX_ARGS], status[8192], logpath[128];
	pid_t spin[64], sup;
	struct bt_load load;
	const char *report;
	int nspin;

	snprintf(copy, sizeof(copy), "%s", line);
	split(copy, argv, store);
	bt_log("README: %s", line);
	if (strstr(line, "python3") && access("/usr/bin/python3", X_OK))
		SKIP("python3 is not installed (Debian package python3)");
	snprintf(logpath, sizeof(logpath), "%s/baton.log", dir);
	nspin = spin_start(spin, 64);
	sup = bt_supervisor_start(argv, "http", logpath, in_www, NULL, 30, status, sizeof(status));
	load = bt_load_start(8080, "conn", "120", 8);
	for (int i = 0; i < 2; i++) {
		usleep(500000);
		if (baton_cli("reload") != 0) {
			bt_load_stop(&load, 20);
			spin_stop(spin, nspin);
			bt_quote_file(logpath);
			FAIL("baton reload %d: %s%s", i + 1, out, err);
		}
	}
	usleep(500000);
	report = bt_load_stop(&load, 20);
	bt_log("load: %s", report);
	ASSERT_EQ(bt_run((char *[]){ (char *)bt_baton_bin(), "status", "--json", NULL }, out, sizeof(out), err,
			 sizeof(err), 30), 0);
	spin_stop(spin, nspin);
	if (bt_json_get(report, "failed") || bt_json_get(out, "restarts"))
		bt_quote_file(logpath);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 2);
	/* the health watch did not replace the loaded but healthy server */
	ASSERT_EQ(bt_json_get(out, "restarts"), 0);
	ASSERT_EQ(baton_cli("stop"), 0);
	waitpid(sup, NULL, 0);
	ASSERT_GT(bt_json_get(report, "answered"), 50);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
}

TEST_ALONE(readme_first_examples_lose_nothing_on_a_busy_machine, 240)
{
	char lines[2][512], dir[64], index[96];
	int fd;

	bt_baton_bin();
	if (geteuid() != 0)
		SKIP("needs root (a network namespace for port 8080, eBPF)");
	ASSERT_EQ(readme_run_lines(lines, 2), 2);
	bt_need_netns();
	bt_runtime_tmpdir(dir, sizeof(dir), "readme");
	snprintf(www, sizeof(www), "%s", dir);
	snprintf(index, sizeof(index), "%s/index.html", dir);
	fd = open(index, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, "ok\n", 3), 3);
	close(fd);
	run_example(lines[0], dir);
	run_example(lines[1], dir);
}
