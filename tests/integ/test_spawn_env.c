/* SPDX-License-Identifier: BSD-2-Clause */
/* What a generation finds at its start, as spawn builds it in the
 * supervisor before the clone: LISTEN_PID its own pid, baton's variables,
 * a reload's --env and --unset-env, and nothing of another spawn's changes;
 * a command that does not exist; and many reloads leave the supervisor's
 * files and memory as they were. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

/* baton run's own environment: what every generation inherits unless a
 * reload changes it */
static void base_env(void *ctx)
{
	(void)ctx;
	setenv("SPAWNT_BASE", "base", 1);
	setenv("SPAWNT_GONE", "here", 1);
}

/* Each generation notes "ID PID" in DIR/last and copies its environment as
 * exec'd (/proc/$$/environ: sh's, before sh changes anything) to
 * DIR/env.ID, then becomes the reference server (exec keeps the pid). */
static void start(struct bt_sv *s, const char *const *opts)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	static char status[65536];

	bt_need_netns();
	bt_need_ebpf();
	bt_sv_init(s);
	snprintf(s->cmd, sizeof(s->cmd),
		 "cp /proc/$$/environ %s/env.$BATON_GENERATION && echo \"$BATON_GENERATION $$\" > %s/last && "
		 "exec %s -q --tag gen",
		 s->dir, s->dir, ref);
	bt_sv_start(s, "tcp://127.0.0.1:0?name=http", "3s", opts, base_env, status, sizeof(status));
}

struct genenv {
	int id;
	pid_t pid;
	char text[65536];	/* K=V\0K=V\0... */
	size_t len;
};

/* The serving generation's id, pid and environment. */
static void read_gen(const struct bt_sv *s, struct genenv *g)
{
	char path[160], line[64];

	snprintf(path, sizeof(path), "%s/last", s->dir);
	bt_read_file(path, line, sizeof(line));
	ASSERT_EQ(sscanf(line, "%d %d", &g->id, &g->pid), 2);
	snprintf(path, sizeof(path), "%s/env.%d", s->dir, g->id);
	g->len = bt_read_file(path, g->text, sizeof(g->text));
}

/* KEY's value in G (NULL: not there); fails if KEY is there twice. */
static const char *get(const struct genenv *g, const char *key)
{
	const char *found = NULL;
	size_t kl = strlen(key);

	for (size_t off = 0; off < g->len; off += strlen(g->text + off) + 1)
		if (!strncmp(g->text + off, key, kl) && g->text[off + kl] == '=') {
			if (found)
				FAIL("gen %d has %s twice: \"%s\" and \"%s\"", g->id, key, found, g->text + off + kl + 1);
			found = g->text + off + kl + 1;
		}
	return found;
}

static void assert_baton_vars(const struct genenv *g)
{
	char num[32];

	snprintf(num, sizeof(num), "%d", (int)g->pid);
	ASSERT_STREQ(get(g, "LISTEN_PID"), num);
	ASSERT_STREQ(get(g, "LISTEN_FDS"), "1");
	ASSERT_STREQ(get(g, "LISTEN_FDNAMES"), "http");
	snprintf(num, sizeof(num), "%d", g->id);
	ASSERT_STREQ(get(g, "BATON_GENERATION"), num);
	ASSERT_STREQ(get(g, "BATON_NAME"), "web");
	ASSERT_TRUE(get(g, "NOTIFY_SOCKET") != NULL);
}

/* Children of PID that are zombies. */
static int zombies_of(pid_t pid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	ASSERT_TRUE(d != NULL);
	while ((e = readdir(d))) {
		char path[300], text[512], *rp, state;
		int ppid;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;	/* gone meanwhile */
		if (fgets(text, sizeof(text), f) && (rp = strrchr(text, ')')) &&
		    sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == pid && state == 'Z')
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* PID's zombie children once it has had up to 3 s to reap them: a
 * generation told to stop at the last switch may exit just before the
 * look, and its supervisor reaps it at the next turn of its loop; a zombie
 * still there after 3 s is one it never reaps. */
static int zombies_left(pid_t pid)
{
	int n = zombies_of(pid);

	for (int i = 0; i < 60 && n; i++) {
		usleep(50000);
		n = zombies_of(pid);
	}
	return n;
}

TEST_TIMEOUT(spawn_env_generation_sees_its_pid_and_each_reloads_environment, 120)
{
	struct bt_sv s;
	struct genenv *g = calloc(1, sizeof(*g));
	char log[65536];
	int prev;

	ASSERT_TRUE(g != NULL);
	start(&s, NULL);
	read_gen(&s, g);
	assert_baton_vars(g);
	ASSERT_STREQ(get(g, "SPAWNT_BASE"), "base");
	ASSERT_STREQ(get(g, "SPAWNT_GONE"), "here");

	ASSERT_EQ(bt_baton("reload", "web", "--env", "SPAWNT_NEW=1", "--unset-env", "SPAWNT_GONE"), 0);
	read_gen(&s, g);
	assert_baton_vars(g);
	ASSERT_STREQ(get(g, "SPAWNT_NEW"), "1");
	ASSERT_TRUE(get(g, "SPAWNT_GONE") == NULL);
	ASSERT_STREQ(get(g, "SPAWNT_BASE"), "base");

	/* a command that does not exist: the error as before, no zombie, and
	 * its environment changes (dropped with it) reach no later spawn */
	prev = g->id;
	ASSERT_NE(bt_baton("reload", "web", "--env", "SPAWNT_ROLL=1", "--unset-env", "SPAWNT_BASE", "--",
			   "/nonexistent/server"),
		  0);
	ASSERT_CONTAINS(err, "cannot start the next generation (\"/nonexistent/server\"): No such file or directory");
	bt_read_file(s.log, log, sizeof(log));
	ASSERT_CONTAINS(log, "cannot run \"/nonexistent/server\": No such file or directory");
	ASSERT_EQ(zombies_left(s.pid), 0);
	/* and one that exists, but not on the generation's PATH */
	ASSERT_NE(bt_baton("reload", "web", "--env", "PATH=/nonexistent", "--", "sh", "-c", "exit 0"), 0);
	ASSERT_CONTAINS(err, "cannot start the next generation (\"sh\"): No such file or directory");
	ASSERT_EQ(zombies_left(s.pid), 0);

	/* 18 more (20 in all): each sees its own pid and generation; what was
	 * set stays set, what was unset stays unset, and the dropped reloads'
	 * changes never show */
	for (int i = 0; i < 18; i++) {
		if (i == 5)
			ASSERT_EQ(bt_baton("reload", "web", "--env", "SPAWNT_X=5"), 0);
		else if (i == 10)
			ASSERT_EQ(bt_baton("reload", "web", "--unset-env", "SPAWNT_X"), 0);
		else
			ASSERT_EQ(bt_baton("reload", "web"), 0);
		read_gen(&s, g);
		ASSERT_TRUE(g->id > prev);
		prev = g->id;
		assert_baton_vars(g);
		ASSERT_STREQ(get(g, "SPAWNT_NEW"), "1");
		ASSERT_STREQ(get(g, "SPAWNT_BASE"), "base");
		ASSERT_TRUE(get(g, "SPAWNT_GONE") == NULL);
		ASSERT_TRUE(get(g, "SPAWNT_ROLL") == NULL);
		ASSERT_TRUE(get(g, "PATH") == NULL || strcmp(get(g, "PATH"), "/nonexistent"));
		if (i >= 5 && i < 10)
			ASSERT_STREQ(get(g, "SPAWNT_X"), "5");
		else
			ASSERT_TRUE(get(g, "SPAWNT_X") == NULL);
	}
	ASSERT_EQ(zombies_left(s.pid), 0);
	bt_supervisor_stop(&s.pid, 10);
	free(g);
}

static int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	ASSERT_TRUE((d = opendir(path)) != NULL);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static long rss_kb(pid_t pid)
{
	char path[64], text[4096];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	bt_read_file(path, text, sizeof(text));
	ASSERT_TRUE((p = strstr(text, "VmRSS:")) != NULL);
	return atol(p + 6);
}

/* Waits (up to 10 s) until the old generations have exited: their members
 * and pidfds are then closed, so the counts are the supervisor's own. */
static void settle(void)
{
	for (int i = 0; i < 200; i++) {
		const char *st = strstr(bt_status_json("web"), "\"generations\":["), *p = st;
		int n = 0;

		ASSERT_TRUE(st != NULL);
		while ((p = strstr(p, "{\"id\":")))
			n++, p++;
		for (p = st; (p = strstr(p, ",\"state\":\"exited\"")); p++)
			n--;	/* listed until the slot is reused, but closed */
		if (n == 1)
			return;
		usleep(50 * 1000);
	}
	FAIL("the old generations of supervisor web did not exit within 10 s");
}

TEST_TIMEOUT(spawn_env_50_reloads_leave_the_supervisors_fds_and_memory_flat, 240)
{
	static const char *const opts[] = { "--listen", "tcp://127.0.0.1:0?name=b", "--listen",
					    "tcp://127.0.0.1:0?name=c", NULL };
	struct bt_sv s;
	long rss0, rss1;
	int fds0, fds1;

	start(&s, opts);
	/* warm up: the allocator's arenas, the log, the state file */
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(bt_baton("reload", "web", "--env", i % 2 ? "SPAWNT_W=1" : "SPAWNT_W=22"), 0);
	settle();
	fds0 = fd_count(s.pid);
	rss0 = rss_kb(s.pid);
	for (int i = 0; i < 50; i++)
		ASSERT_EQ(bt_baton("reload", "web", "--env", i % 2 ? "SPAWNT_W=1" : "SPAWNT_W=22"), 0);
	settle();
	fds1 = fd_count(s.pid);
	rss1 = rss_kb(s.pid);
	bt_log("supervisor after 10 and 60 reloads: %d and %d fds, RSS %ld and %ld KB", fds0, fds1, rss0, rss1);
	ASSERT_TRUE(fds1 <= fds0 + 2);
#if defined(__SANITIZE_ADDRESS__)
	(void)rss1;	/* ASan keeps freed memory in its quarantine: RSS says nothing */
#else
	ASSERT_TRUE(rss1 <= rss0 + 300);
#endif
	bt_supervisor_stop(&s.pid, 10);
}
