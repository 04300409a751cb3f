/* SPDX-License-Identifier: BSD-2-Clause */
/* Failover decided in the kernel (bpf/sigdown.h): with `baton steer --watch`
 * itself frozen, a SIGSTOP of the primary under load already sends every new
 * connection to the standby, and SIGCONT brings them back; nothing is
 * refused, reset or timed out. Only the kernel can have decided. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"
#include "util.h"

extern char **environ;

#define KF_PORT 18093

static char kf_dir[64];
static pid_t kf_pids[4];
static int kf_n;

static void kf_end(void)
{
	for (int i = 0; i < kf_n; i++) {
		kill(-kf_pids[i], SIGCONT);
		kill(-kf_pids[i], SIGKILL);
		waitpid(kf_pids[i], NULL, 0);
	}
	kf_n = 0;
}

/* ARGV in a process group of its own (so that a stop reaches all of it),
 * output to kf_dir/LOG. */
static pid_t kf_spawn(const char *log, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char path[128];
	pid_t pid = -1;

	snprintf(path, sizeof(path), "%s/%s", kf_dir, log);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, &at, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	kf_pids[kf_n++] = pid;
	return pid;
}

static bool kf_log_has(const char *log, const char *needle, int ms)
{
	char path[128], buf[8192];

	snprintf(path, sizeof(path), "%s/%s", kf_dir, log);
	for (int i = 0; i <= ms / 10; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = '\0';
		if (strstr(buf, needle))
			return true;
		usleep(10000);
	}
	bt_log("%s: no \"%s\" in: %s", log, needle, buf);
	return false;
}

static pid_t kf_refserver(const char *tag)
{
	char listen[32], log[32];

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", KF_PORT);
	snprintf(log, sizeof(log), "%s.out", tag);
	return kf_spawn(log, (char *[]){ (char *)bt_need_env("BATON_REFSERVER", "refserver"), "-q", "--reuseport",
					 "--listen", listen, "--tag", (char *)tag, NULL });
}

/* Listening sockets on KF_PORT (this netns's /proc/net/tcp, state 0A). */
static int kf_listening(void)
{
	char line[256], want[32];
	FILE *f = fopen("/proc/net/tcp", "r");
	int n = 0;

	snprintf(want, sizeof(want), ":%04X 00000000:0000 0A", KF_PORT);
	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, want) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* The process state letter of PID ('T': stopped), as the watch reads it. */
static char kf_state(pid_t pid)
{
	struct baton_proc_stat st;

	return baton_proc_stat(pid, -1, &st) ? '?' : st.state;
}

/* N fresh connections, one at a time: how many were answered within
 * WAIT_MS each by the server tagged TAG. */
static int kf_answered_by(const char *tag, int n, int wait_ms)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		int fd = bt_connect(KF_PORT);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[512] = "";
		size_t got = 0;

		ASSERT_TRUE(fd >= 0);
		ASSERT_EQ(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
		while (got < sizeof(buf) - 1 && poll(&p, 1, wait_ms) == 1) {
			ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);

			if (r <= 0)
				break;
			got += (size_t)r;
		}
		buf[got] = '\0';
		ok += !strncmp(buf, "HTTP/1.1 200", 12) && strstr(buf, tag) != NULL;
		bt_close_rst(fd);
	}
	return ok;
}

TEST_ALONE(kernel_failover_standby_takes_over_while_the_supervisor_is_frozen, 60)
{
	char spec[48], prim[16];
	struct bt_load load;
	const char *rep;
	pid_t a, steer;

	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	snprintf(kf_dir, sizeof(kf_dir), "/tmp/baton-kf-%d", (int)getpid());
	mkdir(kf_dir, 0700);
	atexit(kf_end);
	a = kf_refserver("primaryA");
	kf_refserver("standbyB");
	snprintf(spec, sizeof(spec), "tcp://127.0.0.1:%d", KF_PORT);
	snprintf(prim, sizeof(prim), "%d", (int)a);
	for (int i = 0; i < 500 && kf_listening() < 2; i++)
		usleep(10000);
	ASSERT_EQ(kf_listening(), 2);
	/* polling every 10 s: whatever the supervisor decides, it decides
	 * from events, and it is frozen while they come */
	steer = kf_spawn("steer.out", (char *[]){ (char *)bt_baton_bin(), "steer", spec, "--primary", prim, "--watch",
						  "--interval", "10s", "-v", NULL });
	ASSERT_TRUE(kf_log_has("steer.out", "steering 2 member(s)", 10000));
	if (!kf_log_has("steer.out", "the kernel steers away from a stopped owner", 2000))
		SKIP("no stop-signal events here (tp_btf/signal_deliver): no kernel failover");
	ASSERT_EQ(kf_answered_by("primaryA", 5, 2000), 5);

	load = bt_load_start(KF_PORT, "conn", "3", 4);
	usleep(700000);
	kill(steer, SIGSTOP);
	for (int i = 0; i < 100 && kf_state(steer) != 'T'; i++)
		usleep(1000);
	ASSERT_EQ(kf_state(steer), 'T');
	kill(-a, SIGSTOP);
	for (int i = 0; i < 100 && kf_state(a) != 'T'; i++)
		usleep(1000);
	/* the supervisor cannot have acted: every new connection is the
	 * kernel's choice, and it is the standby's, answered at once */
	ASSERT_EQ(kf_answered_by("standbyB", 20, 1000), 20);
	ASSERT_EQ(kf_state(steer), 'T');
	/* SIGCONT makes the primary eligible again, still without it */
	kill(-a, SIGCONT);
	for (int i = 0; i < 100 && kf_state(a) == 'T'; i++)
		usleep(1000);
	ASSERT_EQ(kf_answered_by("primaryA", 5, 2000), 5);
	ASSERT_EQ(kf_state(steer), 'T');
	kill(steer, SIGCONT);
	rep = bt_load_finish(&load, 20);
	bt_log("%s", rep);
	ASSERT_GE(bt_json_get(rep, "requests"), 100);
	ASSERT_EQ(bt_json_get(rep, "refused"), 0);
	ASSERT_EQ(bt_json_get(rep, "reset"), 0);
	ASSERT_EQ(bt_json_get(rep, "timeout"), 0);
	ASSERT_EQ(bt_json_get(rep, "failed"), 0);
	kf_end();
}
