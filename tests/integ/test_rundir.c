/* SPDX-License-Identifier: BSD-2-Clause */
/* The runtime directory is baton's or nothing, and one supervisor runs per
 * name: a directory another user made (with a planted state file and a
 * symlinked temp file) is refused and nothing in it is acted on; group or
 * other access is refused with words; sockets are 0600 whatever the umask;
 * of simultaneous starts of one name exactly one wins and the loser
 * removes nothing of the winner's. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

static uid_t nobody_uid(void)
{
	struct passwd *pw = getpwnam("nobody");

	if (geteuid() != 0)
		SKIP("needs root to act as user nobody");
	if (!pw)
		SKIP("no user nobody on this machine");
	return pw->pw_uid;
}

static void private_dir(char *dir, size_t len)
{
	bt_tmpdir(dir, len, "rd");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		FAIL("fopen %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static void read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

/* The start time (ticks since boot) of PID, field 22 of its stat. */
static unsigned long long start_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	read_file(path, buf, sizeof(buf));
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &t) != 1)
		FAIL("cannot read the start time of pid %d", (int)pid);
	return t;
}

static char *const *run_argv(const char *extra_cmd)
{
	static char *argv[] = { NULL, "run", "--name", "web", "--ready=delay:50ms", "--listen",
				"tcp://127.0.0.1:8080", "--", "/bin/sh", "-c", NULL, NULL };

	argv[0] = (char *)bt_baton_bin();
	argv[10] = (char *)extra_cmd;
	return argv;
}

static char rtdir[128];

static void in_rtdir(void *ctx)
{
	(void)ctx;
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
}

/* The attack of issue 19 item 3: user nobody makes the runtime directory
 * first and plants NAME.state naming a process of theirs and a command,
 * and NAME.state.tmp as a symlink to a file root owns. The root `baton
 * run` refuses the directory: no process adopted or signalled, no command
 * run, no file written through the symlink. */
TEST_TIMEOUT(rundir_foreign_directory_with_planted_state_is_refused_and_acted_on_never, 60)
{
	uid_t nobody = nobody_uid();
	char parent[64], victim[160], state[300], marker[160], text[2048], cmd[400];
	int pfd[2], r;
	pid_t planter, sleeper = 0;

	bt_need_netns();
	bt_need_private_bpffs();
	private_dir(parent, sizeof(parent));
	ASSERT_EQ(chmod(parent, 0777), 0);
	snprintf(rtdir, sizeof(rtdir), "%s/run", parent);
	snprintf(victim, sizeof(victim), "%s/victim", parent);
	snprintf(marker, sizeof(marker), "%s/pwned", parent);
	write_file(victim, "root's own file\n");
	ASSERT_EQ(pipe(pfd), 0);
	planter = fork();
	ASSERT_TRUE(planter >= 0);
	if (planter == 0) {
		pid_t p;

		if (setgroups(0, NULL) || setresgid(nobody, nobody, nobody) || setresuid(nobody, nobody, nobody))
			_exit(126);
		if (mkdir(rtdir, 0700))
			_exit(125);
		p = fork();
		if (p == 0) {
			execl("/bin/sleep", "sleep", "30", (char *)NULL);
			_exit(127);
		}
		if (write(pfd[1], &p, sizeof(p)) != sizeof(p))
			_exit(124);
		_exit(0);
	}
	close(pfd[1]);
	r = (int)read(pfd[0], &sleeper, sizeof(sleeper));
	close(pfd[0]);
	waitpid(planter, NULL, 0);
	if (r != sizeof(sleeper))
		SKIP("user nobody cannot make a directory under %s", parent);
	/* the state nobody plants (written by root here for brevity, then
	 * handed to nobody: what matters is whose directory it is in) */
	snprintf(cmd, sizeof(cmd), "touch %s", marker);
	snprintf(text, sizeof(text),
		 "baton-state 1\nname web\npid 1\nmode cbpf\npins -\nnext_id 2\ncounts 0 0 0\nactive 1\nreload 0\n"
		 "listener 0 8080 tcp://127.0.0.1:8080\ngen 1 %d %llu active 0 0\ncmd-base /bin/sh\ncmd-base -c\n"
		 "cmd-base touch%%20%s\ncmd /bin/sh\ncmd -c\ncmd touch%%20%s\nend\n",
		 (int)sleeper, start_ticks(sleeper), marker, marker);
	snprintf(state, sizeof(state), "%s/web.state", rtdir);
	write_file(state, text);
	ASSERT_EQ(chown(state, nobody, (gid_t)-1), 0);
	snprintf(state, sizeof(state), "%s/web.state.tmp", rtdir);
	ASSERT_EQ(symlink(victim, state), 0);
	ASSERT_EQ(lchown(state, nobody, (gid_t)-1), 0);

	r = bt_run_with(run_argv(cmd), in_rtdir, NULL, out, sizeof(out), err, sizeof(err), 20);
	bt_log("%s", err);
	ASSERT_EQ(r, 1);
	ASSERT_CONTAINS(err, "refusing the runtime directory");
	ASSERT_CONTAINS(err, rtdir);
	snprintf(text, sizeof(text), "owned by uid %u with mode 0700", (unsigned)nobody);
	ASSERT_CONTAINS(err, text);
	ASSERT_CONTAINS(err, "set BATON_RUNTIME_DIR");
	/* nothing acted on: the process lives unsignalled, no command ran,
	 * the victim is as root left it, nothing was added to the directory */
	ASSERT_EQ(kill(sleeper, 0), 0);
	ASSERT_TRUE(access(marker, F_OK) != 0);
	read_file(victim, text, sizeof(text));
	ASSERT_STREQ(text, "root's own file\n");
	snprintf(state, sizeof(state), "%s/web.sock", rtdir);
	ASSERT_TRUE(access(state, F_OK) != 0);
	snprintf(state, sizeof(state), "%s/web.lock", rtdir);
	ASSERT_TRUE(access(state, F_OK) != 0);
	kill(sleeper, SIGKILL);
}

/* A directory of ours, but one that group or others may enter or write:
 * refused, with the mode and the fix. A symlink as the directory: the same. */
TEST_TIMEOUT(rundir_with_group_or_other_access_or_a_symlink_is_refused_with_words, 30)
{
	char link[160];
	int r;

	bt_need_netns();
	bt_need_private_bpffs();
	private_dir(rtdir, sizeof(rtdir));
	ASSERT_EQ(chmod(rtdir, 0750), 0);
	r = bt_run_with(run_argv("exec sleep 30"), in_rtdir, NULL, out, sizeof(out), err, sizeof(err), 20);
	bt_log("%s", err);
	ASSERT_EQ(r, 1);
	ASSERT_CONTAINS(err, "refusing the runtime directory");
	ASSERT_CONTAINS(err, "with mode 0750");
	ASSERT_CONTAINS(err, "chmod 700");
	ASSERT_EQ(chmod(rtdir, 0700), 0);
	snprintf(link, sizeof(link), "%s.link", rtdir);
	ASSERT_EQ(symlink(rtdir, link), 0);
	snprintf(rtdir + strlen(rtdir), sizeof(rtdir) - strlen(rtdir), ".link");
	r = bt_run_with(run_argv("exec sleep 30"), in_rtdir, NULL, out, sizeof(out), err, sizeof(err), 20);
	bt_log("%s", err);
	unlink(link);
	ASSERT_EQ(r, 1);
	ASSERT_CONTAINS(err, "is a symbolic link");
}

static void umask_zero(void *ctx)
{
	(void)ctx;
	umask(0);
}

/* In our own directory: a leftover NAME.state.tmp symlinked to a file of
 * another user is replaced, never written through; a state file of
 * another uid is not resumed from; both sockets are 0600 under umask 0. */
TEST_TIMEOUT(rundir_symlinked_temp_and_foreign_state_are_never_followed_and_sockets_are_0600, 60)
{
	uid_t nobody = nobody_uid();
	char victim[160], path[300], log[160], text[1024];
	struct stat st;
	pid_t pid;

	bt_need_netns();
	bt_need_private_bpffs();
	private_dir(rtdir, sizeof(rtdir));
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	snprintf(victim, sizeof(victim), "%s.victim", rtdir);
	write_file(victim, "nobody's file\n");
	ASSERT_EQ(chown(victim, nobody, (gid_t)-1), 0);
	snprintf(path, sizeof(path), "%s/web.state.tmp", rtdir);
	ASSERT_EQ(symlink(victim, path), 0);
	snprintf(path, sizeof(path), "%s/web.state", rtdir);
	snprintf(text, sizeof(text), "baton-state 1\nname web\npid 1\nmode cbpf\npins -\nnext_id 2\ncounts 0 0 0\n"
				     "active 1\nreload 0\nlistener 0 8080 tcp://127.0.0.1:8080\ngen 1 %d %llu active 0 0\n"
				     "end\n", (int)getpid(), start_ticks(getpid()));
	write_file(path, text);
	ASSERT_EQ(chown(path, nobody, (gid_t)-1), 0);
	snprintf(log, sizeof(log), "%s/log", rtdir);
	pid = bt_supervisor_start(run_argv("exec sleep 30"), "web", log, umask_zero, NULL, 10, out, sizeof(out));
	ASSERT_CONTAINS(out, "\"resumed\":false");
	read_file(victim, text, sizeof(text));
	ASSERT_STREQ(text, "nobody's file\n");
	ASSERT_EQ(lstat(path, &st), 0);	/* our own state, written anew */
	ASSERT_TRUE(S_ISREG(st.st_mode));
	ASSERT_EQ(st.st_uid, 0);
	ASSERT_EQ(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/web.notify", rtdir);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/web.sock", rtdir);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_mode & 0777, 0600);
	bt_supervisor_stop(&pid, 10);
	bt_quote_file(log);
	read_file(log, text, sizeof(text));
	ASSERT_CONTAINS(text, "refusing the state file web.state");
	unlink(victim);
}

static bool exists(const char *dir, const char *name)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Issue 20 item 2: two `baton run` of one name at the same instant, 20
 * times. Exactly one serves; the other says who runs and removes nothing:
 * the winner's control socket, state and pins stay, and status, reload and
 * stop keep working. */
TEST_TIMEOUT(rundir_simultaneous_starts_of_one_name_leave_exactly_one_unharmed, 240)
{
	char logs[2][160], text[4096];
	int wins = 0, losses = 0;

	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	private_dir(rtdir, sizeof(rtdir));
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	for (int t = 0; t < 20; t++) {
		int go[2], st[2], winner = -1, loser;
		pid_t pid[2];
		long long spid;

		ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
		for (int k = 0; k < 2; k++) {
			snprintf(logs[k], sizeof(logs[k]), "%s/log%d", rtdir, k);
			pid[k] = fork();
			ASSERT_TRUE(pid[k] >= 0);
			if (pid[k] == 0) {
				char c;
				int fd = open(logs[k], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

				dup2(fd, 1);
				dup2(fd, 2);
				close(go[1]);
				if (read(go[0], &c, 1) < 0)
					_exit(126);
				execv(bt_baton_bin(), run_argv("exec sleep 60"));
				_exit(127);
			}
		}
		close(go[0]);
		close(go[1]);	/* both go */
		/* the loser exits at once; the winner serves */
		for (int i = 0; i < 500 && winner < 0; i++) {
			for (int k = 0; k < 2 && winner < 0; k++)
				if (waitpid(pid[k], &st[k], WNOHANG) == pid[k])
					winner = !k;
			if (winner < 0)
				usleep(10000);
		}
		if (winner < 0) {
			bt_quote_file(logs[0]);
			bt_quote_file(logs[1]);
			kill(pid[0], SIGKILL);
			kill(pid[1], SIGKILL);
			FAIL("try %d: neither start was refused within 5 s", t);
		}
		loser = !winner;
		if (!WIFEXITED(st[loser]) || WEXITSTATUS(st[loser]) != 1) {
			bt_quote_file(logs[loser]);
			FAIL("try %d: the loser did not exit 1", t);
		}
		read_file(logs[loser], text, sizeof(text));
		snprintf(out, sizeof(out), "already runs (pid %d)", (int)pid[winner]);
		if (!strstr(text, out)) {
			bt_quote_file(logs[loser]);
			FAIL("try %d: the loser does not name the winner: want \"%s\"", t, out);
		}
		losses++;
		/* the winner is whole: it serves and answers */
		for (int i = 0; i < 200; i++) {
			if (bt_baton_within(30, "status", "web", "--json") == 0 && strstr(out, "\"state\":\"active\""))
				break;
			usleep(20000);
		}
		ASSERT_CONTAINS(out, "\"state\":\"active\"");
		spid = bt_json_get(out, "pid");	/* the first: the supervisor's */
		ASSERT_EQ(spid, pid[winner]);
		ASSERT_TRUE(exists(rtdir, "web.sock"));
		ASSERT_TRUE(exists(rtdir, "web.state"));
		ASSERT_TRUE(exists(rtdir, "web.notify"));
		ASSERT_EQ(access("/sys/fs/bpf/baton/run-web/l0", F_OK), 0);
		if (t == 0) {	/* once: a reload works too */
			ASSERT_EQ(bt_baton_within(30, "reload", "web"), 0);
			ASSERT_CONTAINS(out, "serves");
		}
		ASSERT_EQ(bt_baton_within(30, "stop", "web"), 0);
		ASSERT_EQ(waitpid(pid[winner], &st[winner], 0), pid[winner]);
		ASSERT_TRUE(WIFEXITED(st[winner]) && WEXITSTATUS(st[winner]) == 0);
		wins++;
	}
	bt_log("20 tries of 2 simultaneous starts: %d won, %d refused naming the winner", wins, losses);
	ASSERT_EQ(wins, 20);
	ASSERT_EQ(losses, 20);
}

/* A second start of a running name with another runtime directory (or
 * after the first's was deleted) shares the pins: it is refused, naming
 * the running supervisor, and leaves them, so that the first, killed and
 * started again, takes its members back. */
TEST_TIMEOUT(rundir_start_with_another_runtime_dir_leaves_the_running_ones_pins, 90)
{
	char other[64], log[160], log2[160], text[4096];
	long long gen;
	pid_t pid;
	int r;

	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	private_dir(rtdir, sizeof(rtdir));
	private_dir(other, sizeof(other));
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	snprintf(log, sizeof(log), "%s/log", rtdir);
	pid = bt_supervisor_start(run_argv("exec sleep 60"), "web", log, NULL, NULL, 10, out, sizeof(out));
	gen = bt_active_pid(out);
	setenv("BATON_RUNTIME_DIR", other, 1);
	r = bt_run(run_argv("exec sleep 60"), out, sizeof(out), err, sizeof(err), 20);
	bt_log("%s", err);
	ASSERT_EQ(r, 1);
	snprintf(text, sizeof(text), "belong to a running supervisor, pid %d,", (int)pid);
	ASSERT_CONTAINS(err, text);
	ASSERT_EQ(access("/sys/fs/bpf/baton/run-web/l0", F_OK), 0);
	/* the first, killed and started again, takes its generation back */
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	snprintf(log2, sizeof(log2), "%s/log2", rtdir);
	pid = bt_supervisor_start(run_argv("exec sleep 60"), "web", log2, NULL, NULL, 10, out, sizeof(out));
	bt_quote_file(log2);
	ASSERT_CONTAINS(out, "\"resumed\":true");
	ASSERT_EQ(bt_active_pid(out), gen);
	read_file(log2, text, sizeof(text));
	ASSERT_TRUE(strstr(text, "could not take back") == NULL);
	bt_supervisor_stop(&pid, 10);
}

/* Fills the file system of DIR; returns the filler's path in PATH. */
static void fill(const char *dir, char *path, size_t len)
{
	static char block[4096];
	int fd;

	snprintf(path, len, "%s/filler", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	while (write(fd, block, sizeof(block)) > 0)
		;
	close(fd);
}

/* Issue 20 item 4: a state file that cannot be written (a full tmpfs)
 * makes the service degraded with the reason in status (text and JSON),
 * metrics and the log; it is retried, and clears once a write succeeds. */
TEST_TIMEOUT(rundir_state_write_on_a_full_disk_degrades_until_it_is_written_again, 90)
{
	char log[160], filler[200], text[8192];
	pid_t pid;
	int i;

	bt_need_netns();
	bt_need_private_bpffs();	/* also a private mount namespace for the tmpfs */
	private_dir(rtdir, sizeof(rtdir));
	if (mount("tmpfs", rtdir, "tmpfs", 0, "size=256k,mode=0700"))
		SKIP("cannot mount a tmpfs: %s", strerror(errno));
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	snprintf(log, sizeof(log), "%s.log", rtdir);
	pid = bt_supervisor_start(run_argv("exec sleep 60"), "web", log, NULL, NULL, 10, out, sizeof(out));
	ASSERT_CONTAINS(out, "\"service\":\"ok\"");
	fill(rtdir, filler, sizeof(filler));
	ASSERT_EQ(bt_baton_within(30, "reload", "web"), 0);	/* the reload itself works: the state cannot be saved */
	ASSERT_EQ(bt_baton_within(30, "status", "web", "--json"), 0);
	ASSERT_CONTAINS(out, "\"service\":\"degraded\"");
	ASSERT_CONTAINS(out, "\"state_write_error\":\"cannot write the state file");
	ASSERT_CONTAINS(out, "No space left on device");
	ASSERT_EQ(bt_baton_within(30, "status", "web"), 0);
	ASSERT_CONTAINS(out, "degraded: cannot write the state file");
	ASSERT_EQ(bt_baton_within(30, "status", "web", "--metrics"), 0);
	ASSERT_CONTAINS(out, "baton_state_write_failing{name=\"web\"} 1");
	ASSERT_CONTAINS(out, "baton_degraded{name=\"web\"} 1");
	/* room again: a retry writes it */
	ASSERT_EQ(unlink(filler), 0);
	for (i = 0; i < 150; i++) {
		ASSERT_EQ(bt_baton_within(30, "status", "web", "--json"), 0);
		if (strstr(out, "\"service\":\"ok\""))
			break;
		usleep(100000);
	}
	ASSERT_CONTAINS(out, "\"service\":\"ok\"");
	ASSERT_CONTAINS(out, "\"state_write_error\":\"\"");
	snprintf(filler, sizeof(filler), "%s/web.state", rtdir);
	read_file(filler, text, sizeof(text));
	ASSERT_CONTAINS(text, "\nactive 2\n");
	ASSERT_CONTAINS(text, "\nend\n");
	bt_supervisor_stop(&pid, 10);
	read_file(log, text, sizeof(text));
	bt_log("%s", text);
	ASSERT_CONTAINS(text, "degraded: cannot write the state file");
	ASSERT_CONTAINS(text, "is written again");
	umount2(rtdir, MNT_DETACH);
}

/* Issue 20 item 4, second half: the supervisor is killed while its state
 * file is stale (the disk was full at the last reload). The same command
 * started again (the disk still full) adopts the generation serving on its
 * listeners, whose environment names this supervisor, instead of refusing
 * it as foreign; a counting client sees nothing fail throughout. */
TEST_TIMEOUT(rundir_killed_with_a_stale_state_the_same_command_adopts_its_own_generation, 120)
{
	const char *ref = getenv("BATON_REFSERVER");
	char log[160], log2[160], filler[200], cmd[300], text[8192], statef[200];
	struct bt_load ld;
	const char *report;
	long long gen2;
	pid_t pid;

	if (!ref || access(ref, X_OK))
		SKIP("BATON_REFSERVER does not name the reference server (run through make check)");
	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	private_dir(rtdir, sizeof(rtdir));
	if (mount("tmpfs", rtdir, "tmpfs", 0, "size=256k,mode=0700"))
		SKIP("cannot mount a tmpfs: %s", strerror(errno));
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	snprintf(log, sizeof(log), "%s.log", rtdir);
	snprintf(log2, sizeof(log2), "%s.log2", rtdir);
	snprintf(cmd, sizeof(cmd), "exec %s -q", ref);
	pid = bt_supervisor_start(run_argv(cmd), "web", log, NULL, NULL, 10, out, sizeof(out));
	ld = bt_load_start(8080, "conn", "6", 16);
	usleep(300000);
	fill(rtdir, filler, sizeof(filler));
	ASSERT_EQ(bt_baton_within(30, "reload", "web"), 0);	/* the state still names gen 1 */
	ASSERT_EQ(bt_baton_within(30, "status", "web", "--json"), 0);
	ASSERT_CONTAINS(out, "\"service\":\"degraded\"");
	gen2 = bt_active_pid(out);
	snprintf(statef, sizeof(statef), "%s/web.state", rtdir);
	read_file(statef, text, sizeof(text));
	ASSERT_CONTAINS(text, "\nactive 1\n");	/* stale */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	usleep(300000);	/* serving without a supervisor */
	pid = bt_supervisor_start(run_argv(cmd), "web", log2, NULL, NULL, 10, out, sizeof(out));
	bt_quote_file(log2);
	ASSERT_EQ(bt_active_pid(out), gen2);
	ASSERT_CONTAINS(out, "\"resumed\":true");
	ASSERT_CONTAINS(out, "\"service\":\"degraded\"");	/* the disk is still full */
	read_file(log2, text, sizeof(text));
	ASSERT_CONTAINS(text, "adopted gen 2 (pid");
	ASSERT_TRUE(strstr(text, "did not create") == NULL);
	ASSERT_TRUE(strstr(text, "could not take back") == NULL);
	ASSERT_EQ(unlink(filler), 0);
	ASSERT_EQ(bt_baton_within(30, "reload", "web"), 0);	/* and it is managed: a reload works */
	ASSERT_CONTAINS(out, "serves");
	report = bt_load_finish(&ld, 30);
	bt_log("load: %s", report);
	ASSERT_GT(bt_json_get(report, "answered"), 100);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	ASSERT_EQ(bt_baton_within(30, "status", "web", "--json"), 0);
	ASSERT_CONTAINS(out, "\"service\":\"ok\"");
	bt_supervisor_stop(&pid, 10);
	umount2(rtdir, MNT_DETACH);
}

static void nofile_500(void *ctx)
{
	struct rlimit rl = { 500, 500 };

	(void)ctx;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* Issue 20 item 8: 100 listeners fit a limit of 500 with one generation
 * (about 250 descriptors), but not the first reload by baton's count: refused at start,
 * naming the limit and the need, instead of a reload failing later. */
TEST_TIMEOUT(rundir_file_limit_counts_the_first_reload_and_refuses_at_start, 30)
{
	char *argv[220], specs[100][40];
	int n = 0, r;

	bt_need_netns();
	private_dir(rtdir, sizeof(rtdir));
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	bt_args(argv, n, bt_baton_bin(), "run");
	for (int i = 0; i < 100; i++) {
		snprintf(specs[i], sizeof(specs[i]), "tcp://127.0.0.1:%d", 9000 + i);
		bt_args(argv, n, "--listen", specs[i]);
	}
	bt_args(argv, n, "--", "/bin/sleep", "5");
	r = bt_run_with(argv, nofile_500, NULL, out, sizeof(out), err, sizeof(err), 10);
	bt_log("%s", err);
	ASSERT_EQ(r, 1);
	ASSERT_CONTAINS(err, "100 listeners need about 656 open files by the first reload");
	ASSERT_CONTAINS(err, "the hard limit is 500");
	ASSERT_CONTAINS(err, "LimitNOFILE=");
}

/* Issue 20 item 9: pins removed while running are made again by the next
 * reload (so that a restart after a crash still finds the members); a
 * restart that cannot take members back says "degraded: members not
 * recoverable" instead of showing a healthy generation, until a reload
 * replaces it. */
TEST_TIMEOUT(rundir_removed_pins_are_repinned_and_unrecoverable_members_degrade, 90)
{
	char log[160], log2[160], log3[160], text[8192];
	long long gen;
	pid_t pid;

	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	private_dir(rtdir, sizeof(rtdir));
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	snprintf(log, sizeof(log), "%s/log", rtdir);
	snprintf(log2, sizeof(log2), "%s/log2", rtdir);
	snprintf(log3, sizeof(log3), "%s/log3", rtdir);
	pid = bt_supervisor_start(run_argv("exec sleep 60"), "web", log, NULL, NULL, 10, out, sizeof(out));
	ASSERT_EQ(system("rm -f /sys/fs/bpf/baton/run-web/l0/*"), 0);
	ASSERT_TRUE(access("/sys/fs/bpf/baton/run-web/l0/socks", F_OK) != 0);
	ASSERT_EQ(bt_baton_within(30, "reload", "web"), 0);
	ASSERT_EQ(access("/sys/fs/bpf/baton/run-web/l0/socks", F_OK), 0);
	ASSERT_EQ(access("/sys/fs/bpf/baton/run-web/l0/steer", F_OK), 0);
	read_file(log, text, sizeof(text));
	ASSERT_CONTAINS(text, "had been removed: pinned again");
	/* the pins found again: a restart takes the member back */
	ASSERT_EQ(bt_baton_within(30, "status", "web", "--json"), 0);
	gen = bt_active_pid(out);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	pid = bt_supervisor_start(run_argv("exec sleep 60"), "web", log2, NULL, NULL, 10, out, sizeof(out));
	ASSERT_EQ(bt_active_pid(out), gen);
	ASSERT_CONTAINS(out, "\"service\":\"ok\"");
	read_file(log2, text, sizeof(text));
	ASSERT_TRUE(strstr(text, "could not take back") == NULL);
	bt_supervisor_stop(&pid, 10);

	/* a generation that dropped its socket: after a kill -9 nobody holds
	 * it, and the restart cannot take it back */
	pid = bt_supervisor_start(run_argv("exec 3>&-; exec sleep 60"), "web", log3, NULL, NULL, 10, out,
				  sizeof(out));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	snprintf(log, sizeof(log), "%s/log4", rtdir);
	pid = bt_supervisor_start(run_argv("exec 3>&-; exec sleep 60"), "web", log, NULL, NULL, 10, out,
				  sizeof(out));
	bt_quote_file(log);
	ASSERT_CONTAINS(out, "\"service\":\"degraded\"");
	ASSERT_CONTAINS(out, "\"degraded\":\"members not recoverable: gen 1 listener 0");
	ASSERT_EQ(bt_baton_within(30, "status", "web"), 0);
	ASSERT_CONTAINS(out, "degraded: members not recoverable");
	ASSERT_EQ(bt_baton_within(30, "reload", "web"), 0);	/* a new generation holds every member */
	ASSERT_EQ(bt_baton_within(30, "status", "web", "--json"), 0);
	ASSERT_CONTAINS(out, "\"service\":\"ok\"");
	bt_supervisor_stop(&pid, 10);
}

/* Issue 20 item 4: a read-only runtime directory with a stale control
 * socket (the supervisor was killed) does not keep the same command from
 * taking its generation back; it runs without the socket, degraded, and
 * binds it once the directory can be written again. */
TEST_TIMEOUT(rundir_read_only_directory_does_not_block_a_restart_at_a_stale_socket, 90)
{
	char log[160], log2[160], text[8192], path[200];
	long long gen;
	pid_t pid;
	int i, fd;

	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();	/* also a private mount namespace */
	private_dir(rtdir, sizeof(rtdir));
	setenv("BATON_RUNTIME_DIR", rtdir, 1);
	snprintf(log, sizeof(log), "%s.log", rtdir);
	snprintf(log2, sizeof(log2), "%s.log2", rtdir);
	pid = bt_supervisor_start(run_argv("exec sleep 60"), "web", log, NULL, NULL, 10, out, sizeof(out));
	gen = bt_active_pid(out);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	snprintf(path, sizeof(path), "%s/web.sock", rtdir);
	ASSERT_EQ(access(path, F_OK), 0);	/* stale */
	if (mount(rtdir, rtdir, NULL, MS_BIND, NULL) ||
	    mount(NULL, rtdir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL))
		SKIP("cannot make %s read-only: %s", rtdir, strerror(errno));
	fd = open(log2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execv(bt_baton_bin(), run_argv("exec sleep 60"));
		_exit(127);
	}
	close(fd);
	for (i = 0; i < 100; i++) {
		read_file(log2, text, sizeof(text));
		if (strstr(text, "resumed from"))
			break;
		usleep(50000);
	}
	bt_quote_file(log2);
	ASSERT_CONTAINS(text, "resumed from");
	ASSERT_CONTAINS(text, "adopted gen 1");
	ASSERT_CONTAINS(text, "running without it until it can");
	usleep(300000);
	ASSERT_EQ(waitpid(pid, NULL, WNOHANG), 0);	/* it runs */
	ASSERT_EQ(kill((pid_t)gen, 0), 0);
	/* writable again: the socket is bound at a retry, status answers */
	ASSERT_EQ(umount2(rtdir, MNT_DETACH), 0);
	for (i = 0; i < 150; i++) {
		if (bt_baton_within(30, "status", "web", "--json") == 0)
			break;
		usleep(100000);
	}
	ASSERT_CONTAINS(out, "\"resumed\":true");
	ASSERT_EQ(bt_active_pid(out), gen);
	for (i = 0; i < 150 && !strstr(out, "\"service\":\"ok\""); i++) {
		usleep(100000);
		bt_baton_within(30, "status", "web", "--json");
	}
	ASSERT_CONTAINS(out, "\"service\":\"ok\"");
	bt_supervisor_stop(&pid, 10);
}
