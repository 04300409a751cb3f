/* SPDX-License-Identifier: BSD-2-Clause */
/* What baton says where a new user or an admin first looks: a second
 * supervisor on a port names the first; status of a killed supervisor says
 * its generations still serve and how to resume them; without eBPF
 * privilege, one warning and no false error, and no pin folder left behind;
 * baton ls names empty pin folders. Each checks the words. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

static const char *refserver(void)
{
	const char *r = getenv("BATON_REFSERVER");

	if (!r || access(r, X_OK))
		SKIP("BATON_REFSERVER does not name the reference server (run through make check)");
	return r;
}

static void setup(char *dir, size_t len)
{
	bt_need_run_sandbox();
	bt_runtime_tmpdir(dir, len, "msg");
}

static pid_t start_web(const char *dir, const char *log, void (*child)(void *), char *status, size_t len)
{
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "web", "--listen", "tcp://127.0.0.1:8080", "--",
			 (char *)refserver(), "-q", NULL };
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, log);
	return bt_supervisor_start(argv, "web", path, child, NULL, 20, status, len);
}

TEST_TIMEOUT(messages_second_supervisor_on_a_port_names_the_first, 60)
{
	char dir[64], status[8192], who[64];
	char *second[] = { (char *)bt_baton_bin(), "run", "--name", "other", "--listen", "tcp://127.0.0.1:8080",
			   "--", (char *)refserver(), "-q", NULL };
	pid_t sup;

	setup(dir, sizeof(dir));
	sup = start_web(dir, "web.log", NULL, status, sizeof(status));
	ASSERT_EQ(bt_run(second, out, sizeof(out), err, sizeof(err), 20), 1);
	bt_log("%s", err);
	snprintf(who, sizeof(who), "baton supervisor \"web\" (pid %d, serving with gen 1, pid ", (int)sup);
	ASSERT_CONTAINS(err, "tcp://127.0.0.1:8080?backlog=4096 is already served by ");
	ASSERT_CONTAINS(err, who);
	ASSERT_CONTAINS(err, "Change what it runs with baton reload web, or stop it first with baton stop web");
	ASSERT_TRUE(strstr(err, "did not create") == NULL);
	bt_supervisor_stop(&sup, 20);
}

TEST_TIMEOUT(messages_status_of_a_killed_supervisor_says_its_generations_still_serve, 60)
{
	char dir[64], status[8192], gen[64];
	char *st[] = { (char *)bt_baton_bin(), "status", "web", NULL };
	long long gpid;
	pid_t sup;

	setup(dir, sizeof(dir));
	sup = start_web(dir, "web.log", NULL, status, sizeof(status));
	gpid = bt_json_get(strstr(status, "\"generations\""), "pid");
	ASSERT_EQ(kill(sup, SIGKILL), 0);
	waitpid(sup, NULL, 0);
	ASSERT_EQ(bt_run(st, out, sizeof(out), err, sizeof(err), 20), 1);
	bt_log("%s", err);
	snprintf(gen, sizeof(gen), "gen 1 (pid %lld, active)", gpid);
	ASSERT_CONTAINS(err, "no supervisor named \"web\" is running");
	ASSERT_CONTAINS(err, "but its generations still serve tcp://127.0.0.1:8080");
	ASSERT_CONTAINS(err, gen);
	ASSERT_CONTAINS(err, "Run the same baton run again (--name web) and it resumes them");
	/* the same words are not said once they are gone */
	kill((pid_t)gpid, SIGKILL);
	for (int i = 0; i < 100 && !kill((pid_t)gpid, 0); i++)
		usleep(20000);
	ASSERT_EQ(bt_run(st, out, sizeof(out), err, sizeof(err), 20), 1);
	ASSERT_CONTAINS(err, "no supervisor named \"web\" is running");
	ASSERT_TRUE(strstr(err, "still serve") == NULL);
}

/* In the supervisor's child: root without the capabilities that load eBPF
 * (as in a container with the default set): exec keeps only what the
 * bounding set allows. */
static void without_bpf_caps(void *ctx)
{
	(void)ctx;
	prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0);
	prctl(PR_CAPBSET_DROP, 39 /* CAP_BPF */, 0, 0, 0);
	prctl(PR_CAPBSET_DROP, 38 /* CAP_PERFMON */, 0, 0, 0);
}

static int count(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

TEST_TIMEOUT(messages_without_ebpf_privilege_one_warning_no_false_error_no_pin_folder, 60)
{
	char dir[64], status[8192], path[128], log[16384];
	struct stat sb;
	pid_t sup;
	int fd;
	ssize_t n;

	setup(dir, sizeof(dir));
	sup = start_web(dir, "web.log", without_bpf_caps, status, sizeof(status));
	ASSERT_CONTAINS(status, "\"mode\":\"cbpf\"");
	bt_supervisor_stop(&sup, 20);
	snprintf(path, sizeof(path), "%s/web.log", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	ASSERT_TRUE(n > 0);
	log[n] = '\0';
	bt_log("%s", log);
	/* said once, with the kernel's reason and the capabilities that would
	 * give eBPF steering */
	ASSERT_EQ(count(log, "classic BPF mode (eBPF: "), 1);
	ASSERT_EQ(count(log, "CAP_BPF and CAP_PERFMON"), 1);
	ASSERT_TRUE(strstr(log, "eBPF steering unavailable") == NULL);
	ASSERT_TRUE(strstr(log, "pinned groups need eBPF") == NULL);
	ASSERT_TRUE(strstr(log, "error") == NULL);	/* nothing failed */
	ASSERT_TRUE(stat("/sys/fs/bpf/baton/run-web", &sb) != 0);
	ASSERT_TRUE(stat("/sys/fs/bpf/baton", &sb) != 0);
}

TEST_TIMEOUT(messages_ls_names_empty_pin_folders_as_stale, 60)
{
	char dir[64];
	char *ls[] = { (char *)bt_baton_bin(), "ls", NULL };

	setup(dir, sizeof(dir));
	ASSERT_EQ(mkdir("/sys/fs/bpf/baton", 0700), 0);
	ASSERT_EQ(mkdir("/sys/fs/bpf/baton/run-old", 0700), 0);
	ASSERT_EQ(mkdir("/sys/fs/bpf/baton/run-old/l0", 0700), 0);
	ASSERT_EQ(bt_run(ls, out, sizeof(out), err, sizeof(err), 20), 0);
	bt_log("%s", out);
	ASSERT_CONTAINS(out, "stale baton pins: /sys/fs/bpf/baton/run-old (no socket of supervisor old is left)");
}

/* A generation that runs but never accepts: after the 1 s default (not
 * 100 ms) it is replaced, counted as a restart, and the log says why in
 * numbers. */
TEST_ALONE(messages_hung_generation_is_replaced_after_a_second_as_a_restart, 60)
{
	char dir[64], status[8192], path[128], log[16384];
	char *argv[] = { (char *)bt_baton_bin(), "run", "--name", "web", "--listen", "tcp://127.0.0.1:8080",
			 "--ready", "delay:50ms", "--grace", "2s", "--", "/bin/sleep", "60", NULL };
	char *st[] = { (char *)bt_baton_bin(), "status", "web", "--json", NULL };
	int clients[5], fd;
	long long t0, took = -1;
	ssize_t n;
	pid_t sup;

	setup(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/web.log", dir);
	sup = bt_supervisor_start(argv, "web", path, NULL, NULL, 20, status, sizeof(status));
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
	}
	for (int i = 0; i < 5; i++)
		clients[i] = bt_connect(8080);
	for (int i = 0; i < 300 && took < 0; i++) {
		struct timespec ts;

		usleep(20000);
		ASSERT_EQ(bt_run(st, out, sizeof(out), err, sizeof(err), 20), 0);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (bt_json_get(out, "restarts") >= 1)
			took = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 - t0;
	}
	bt_log("replaced after %lld ms", took);
	ASSERT_GE(took, 1000);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), 0);
	bt_supervisor_stop(&sup, 20);
	for (int i = 0; i < 5; i++)
		close(clients[i]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	log[n > 0 ? n : 0] = '\0';
	bt_log("%.2000s", log);
	ASSERT_CONTAINS(log, "is unhealthy (queue hung on listener 0: no accept for ");
	ASSERT_CONTAINS(log, " queued, beyond its own pace); starting a fresh generation (a restart)");
	ASSERT_CONTAINS(log, "restart done after ");
	ASSERT_TRUE(strstr(log, "reload done") == NULL);
}
