/* SPDX-License-Identifier: BSD-2-Clause */
/* The container recipe of the README, tested: baton as PID 1 of its own
 * pid, mount and network namespaces, with Docker's default capability set
 * (classic BPF mode, one warning naming what would give eBPF) and with
 * CAP_BPF and CAP_PERFMON added (eBPF mode); reloads under load in both. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

/* Docker's default capabilities (moby's oci/caps/defaults.go) */
static const struct { const char *name; int cap; } docker_caps[] = {
	{ "chown", CAP_CHOWN }, { "dac_override", CAP_DAC_OVERRIDE }, { "fsetid", CAP_FSETID },
	{ "fowner", CAP_FOWNER }, { "mknod", CAP_MKNOD }, { "net_raw", CAP_NET_RAW }, { "setgid", CAP_SETGID },
	{ "setuid", CAP_SETUID }, { "setfcap", CAP_SETFCAP }, { "setpcap", CAP_SETPCAP },
	{ "net_bind_service", CAP_NET_BIND_SERVICE }, { "sys_chroot", CAP_SYS_CHROOT }, { "kill", CAP_KILL },
	{ "audit_write", CAP_AUDIT_WRITE },
};

/* A field of /proc/PID/status ("CapEff:"), its text after the tab. */
static const char *status_field(pid_t pid, const char *key)
{
	static char buf[8192], val[256];
	char path[64];
	const char *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	p = strstr(buf, key);
	if (!p)
		return "";
	p += strlen(key);
	p += strspn(p, "\t ");
	snprintf(val, sizeof(val), "%.*s", (int)strcspn(p, "\n"), p);
	return val;
}

/* The host pid of the process unshare --fork started (PID 1 inside). */
static pid_t pid1_of(pid_t unshare_pid)
{
	char path[96], buf[64] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)unshare_pid, (int)unshare_pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return (pid_t)atoi(buf);
}

static void exec_container(void *ctx)
{
	char *argv[] = { "/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--net", "--", "/bin/sh", "-c", ctx,
			 NULL };

	execv(argv[0], argv);
	_exit(127);
}

/* EXTRA: capabilities added to Docker's set ("bpf,perfmon", or "").
 * WANT_MODE: the mode baton must say it runs in. BPFFS: a bpffs where
 * baton pins (docker run -v /sys/fs/bpf:/sys/fs/bpf), else none. */
static void container(const char *extra, const int *extra_caps, int nextra, const char *want_mode, bool with_bpffs)
{
	static char log[65536];
	char dir[64], logpath[96], bpffs[96], caps[512], cmd[2048], capstr[64];
	unsigned long long want = 0, eff;
	int self_ns, ns, status, i, warnings = 0;
	pid_t upid, hpid;
	struct bt_load load;
	const char *report, *p, *ref = getenv("BATON_REFSERVER");

	bt_need_netns();
	bt_need_ebpf();
	if (access("/usr/bin/setpriv", X_OK) || access("/usr/bin/unshare", X_OK))
		SKIP("setpriv and unshare (util-linux) are needed to make the container");
	if (!ref || access(ref, X_OK))
		SKIP("BATON_REFSERVER does not name the reference server (run through make check)");
	bt_runtime_tmpdir(dir, sizeof(dir), "test");
	/* /sys/fs/bpf in a container is no bpffs, and mounting one needs CAP_SYS_ADMIN */
	snprintf(bpffs, sizeof(bpffs), "%s/bpffs", dir);
	mkdir(bpffs, 0700);
	setenv("BATON_BPFFS", bpffs, 1);
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	snprintf(caps, sizeof(caps), "-all");
	for (i = 0; i < (int)(sizeof(docker_caps) / sizeof(docker_caps[0])); i++) {
		snprintf(caps + strlen(caps), sizeof(caps) - strlen(caps), ",+%s", docker_caps[i].name);
		want |= 1ULL << docker_caps[i].cap;
	}
	for (i = 0; i < nextra; i++)
		want |= 1ULL << extra_caps[i];
	if (*extra)
		for (p = extra; *p; p += strcspn(p, ","), p += *p == ',')
			snprintf(caps + strlen(caps), sizeof(caps) - strlen(caps), ",+%.*s", (int)strcspn(p, ","), p);
	/* lo up is the container runtime's job, done before the capabilities go */
	snprintf(cmd, sizeof(cmd), "ip link set lo up && %s%s%sexec setpriv --bounding-set=%s --inh-caps=-all "
		 "--ambient-caps=-all -- %s run --name ctr --listen tcp://127.0.0.1:8080 -- %s -q",
		 with_bpffs ? "mount -t bpf bpf " : "", with_bpffs ? bpffs : "", with_bpffs ? " && " : "", caps,
		 bt_baton_bin(), ref);
	{
		/* bt_supervisor_start asks argv[0] (baton) for the status; the
		 * child execs the container instead */
		char *argv[] = { (char *)bt_baton_bin(), NULL };

		upid = bt_supervisor_start(argv, "ctr", logpath, exec_container, cmd, 15, out, sizeof(out));
	}
	bt_log("status: %.400s", out);
	snprintf(capstr, sizeof(capstr), "\"mode\":\"%s\"", want_mode);
	ASSERT_CONTAINS(out, capstr);
	hpid = pid1_of(upid);
	ASSERT_GT(hpid, 0);
	/* baton itself is PID 1 of the container, with exactly the set given */
	snprintf(capstr, sizeof(capstr), "%d\t1", (int)hpid);
	ASSERT_STREQ(status_field(hpid, "NSpid:"), capstr);
	ASSERT_STREQ(status_field(hpid, "Name:"), "baton");
	eff = strtoull(status_field(hpid, "CapEff:"), NULL, 16);
	bt_log("baton is PID 1 (host pid %d) in %s mode, CapEff %016llx (want %016llx): %s", (int)hpid, want_mode, eff,
	       want, caps);
	ASSERT_EQ(eff, want);

	/* the load and the reloads, from inside its network namespace */
	snprintf(cmd, sizeof(cmd), "/proc/%d/ns/net", (int)hpid);
	self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ns = open(cmd, O_RDONLY | O_CLOEXEC);
	ASSERT_GE(self_ns, 0);
	ASSERT_GE(ns, 0);
	ASSERT_EQ(setns(ns, CLONE_NEWNET), 0);
	load = bt_load_start(8080, "conn", "30", 8);
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(bt_baton("reload", "ctr"), 0);
		usleep(100000);
	}
	if (!strcmp(want_mode, "ebpf") && !with_bpffs) {
		/* unpinned maps cannot be taken over by the re-executed binary:
		 * refused, saying what to do, and this supervisor goes on */
		ASSERT_NE(bt_baton("upgrade", "ctr"), 0);
		ASSERT_CONTAINS(err, "the steering maps are not pinned (no bpffs)");
		ASSERT_CONTAINS(err, "-v /sys/fs/bpf:/sys/fs/bpf");
	} else {
		ASSERT_EQ(bt_baton("upgrade", "ctr"), 0);
	}
	ASSERT_EQ(bt_baton("reload", "ctr"), 0);
	report = bt_load_stop(&load, 30);
	ASSERT_EQ(setns(self_ns, CLONE_NEWNET), 0);
	close(ns);
	close(self_ns);
	bt_log("%s mode, 11 reloads and an upgrade under load: %s", want_mode, report);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
	ASSERT_GT(bt_json_get(report, "answered"), 100);
	ASSERT_EQ(bt_baton("status", "ctr", "--json"), 0);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), 0);
	ASSERT_GE(bt_json_get(out, "reloads_done"), 11);	/* and the health watch's, if a busy machine made one */

	ASSERT_EQ(bt_baton("stop", "ctr"), 0);
	for (i = 0; i < 100 && waitpid(upid, &status, WNOHANG) == 0; i++)
		usleep(100000);
	ASSERT_TRUE(i < 100 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	{
		int fd = open(logpath, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, log, sizeof(log) - 1) : -1;

		log[n > 0 ? n : 0] = '\0';
		if (fd >= 0)
			close(fd);
	}
	bt_log("%.2500s", log);
	/* nothing failed, so nothing says error; classic BPF mode is said once */
	if (!strcmp(want_mode, "ebpf") && !with_bpffs)
		ASSERT_CONTAINS(log, "error: upgrade refused: the steering maps are not pinned");
	else
		ASSERT_TRUE(strstr(log, "error: ") == NULL);
	for (p = log; (p = strstr(p, "warning: classic BPF mode")); p++)
		warnings++;
	if (!strcmp(want_mode, "cbpf")) {
		ASSERT_EQ(warnings, 1);	/* at the start, not again by the upgraded supervisor */
		ASSERT_CONTAINS(log, "for eBPF steering and queue migration give baton CAP_BPF and CAP_PERFMON "
				     "(docker run --cap-add BPF --cap-add PERFMON)");
		ASSERT_TRUE(strstr(log, "eBPF steering unavailable") == NULL);
		ASSERT_TRUE(strstr(log, "pinned groups need eBPF") == NULL);
		ASSERT_TRUE(strstr(log, "no bpffs") == NULL);	/* moot without eBPF */
	} else if (with_bpffs) {
		ASSERT_EQ(warnings, 0);
		ASSERT_TRUE(strstr(log, "could not take back") == NULL);	/* the upgrade took every socket back */
		ASSERT_TRUE(strstr(log, "warning: ") == NULL);
	} else {
		ASSERT_EQ(warnings, 0);
		ASSERT_CONTAINS(log, "warning: no bpffs at ");
		ASSERT_TRUE(strstr(log, "could not take back") == NULL);
	}
}

TEST_ALONE(container_pid1_with_docker_default_caps_runs_classic_bpf_and_reloads_lose_nothing, 120)
{
	container("", NULL, 0, "cbpf", false);
}

TEST_ALONE(container_pid1_with_bpf_and_perfmon_added_runs_ebpf_and_reloads_lose_nothing, 120)
{
	static const int extra[] = { CAP_BPF, CAP_PERFMON };

	container("bpf,perfmon", extra, 2, "ebpf", true);
}

TEST_ALONE(container_pid1_with_bpf_and_perfmon_but_no_bpffs_refuses_upgrade_and_reloads_lose_nothing, 120)
{
	static const int extra[] = { CAP_BPF, CAP_PERFMON };

	container("bpf,perfmon", extra, 2, "ebpf", false);
}
