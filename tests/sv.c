/* SPDX-License-Identifier: BSD-2-Clause */
/* The supervisor under test (struct bt_sv in helpers.h): `baton run --name
 * web` in a directory of its own, started, killed and started again by the
 * very same command line, and reloaded under the counting load client. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

void bt_sv_init(struct bt_sv *s)
{
	memset(s, 0, sizeof(*s));
	bt_runtime_tmpdir_log(s->dir, sizeof(s->dir), "test", s->log, sizeof(s->log));
	snprintf(s->mode, sizeof(s->mode), "%s/mode", s->dir);
	bt_sv_set_mode(s, "");
}

void bt_sv_init_server(struct bt_sv *s, const char *tag)
{
	memset(s, 0, sizeof(*s));
	bt_sv_tmpdir(s->dir, sizeof(s->dir), tag);
	snprintf(s->log, sizeof(s->log), "%s/baton.log", s->dir);
}

/* `baton run --name web --listen LISTEN` into s->argv, LISTEN kept in
 * s->listen so that a restart finds it; the count. */
static int sv_argv_begin(struct bt_sv *s, const char *listen)
{
	int n = 0;

	if (snprintf(s->listen, sizeof(s->listen), "%s", listen) >= (int)sizeof(s->listen))
		FAIL("--listen %s is longer than struct bt_sv keeps", listen);
	return bt_args(s->argv, n, bt_baton_bin(), "run", "--name", "web", "--listen", s->listen);
}

/* Appends the strings of ARGS (up to a NULL) to s->argv from index N. */
static int sv_argv_add(struct bt_sv *s, int n, const char *const *args)
{
	for (; args && *args; args++)
		bt_args(s->argv, n, *args);
	return n;
}

void bt_sv_start(struct bt_sv *s, const char *listen, const char *grace, const char *const *opts,
		 void (*child)(void *ctx), char *status, size_t len)
{
	int n = sv_argv_begin(s, listen);

	bt_args(s->argv, n, "--grace", grace);
	n = sv_argv_add(s, n, opts);
	bt_args(s->argv, n, "--", "/bin/sh", "-c", s->cmd);
	s->child = child;
	bt_sv_restart(s, status, len);
}

void bt_sv_refserver(struct bt_sv *s, bool own_bpffs, const char *listen, const char *grace,
		     const char *const *opts, char *status, size_t len)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");

	bt_need_netns();
	bt_need_ebpf();
	if (own_bpffs)
		bt_need_private_bpffs();
	bt_sv_init(s);
	/* exec keeps the pid, so READY=1 comes from the generation's own pid */
	snprintf(s->cmd, sizeof(s->cmd), "exec %s -q --tag gen $(cat %s)", ref, s->mode);
	bt_sv_start(s, listen, grace, opts, NULL, status, len);
}

void bt_sv_run_web(struct bt_sv *s, const char *listen, char *const argv[], void (*child)(void *ctx), char *status,
		   size_t len)
{
	int n = sv_argv_begin(s, listen);

	bt_args(s->argv, n, "--hang-threshold", "2s");
	sv_argv_add(s, n, (const char *const *)argv);
	s->child = child;
	bt_sv_restart(s, status, len);
}

void bt_sv_restart(struct bt_sv *s, char *status, size_t len)
{
	s->pid = bt_supervisor_start(s->argv, "web", s->log, s->child, NULL, s->timeout_s ? s->timeout_s : 10, status,
				     len);
	s->port = (uint16_t)bt_json_get(status, "port");
	s->runs++;
}

void bt_sv_kill(struct bt_sv *s)
{
	int status;

	ASSERT_EQ(kill(s->pid, SIGKILL), 0);
	ASSERT_EQ(waitpid(s->pid, &status, 0), s->pid);
	s->pid = 0;
}

void bt_sv_set_mode(struct bt_sv *s, const char *args)
{
	FILE *f = fopen(s->mode, "w");

	if (!f)
		FAIL("fopen %s: %s", s->mode, strerror(errno));
	fprintf(f, "%s\n", args);
	fclose(f);
}

void bt_sv_quote(const struct bt_sv *s, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	bt_quote_file(path);
}

void bt_reloads(const char *name, int reloads, const char *const *says, struct bt_load *l,
		const char *const *logs)
{
	static char out[65536], err[16384];

	for (int i = 0; i < reloads; i++) {
		if (bt_baton("reload", name) != 0) {
			for (; logs && *logs; logs++)
				bt_quote_file(*logs);
			bt_load_stop(l, 20);
			FAIL("reload %d failed: %s%s", i + 1, out, err);
		}
		for (int k = 0; says[k]; k++)
			ASSERT_CONTAINS(out, says[k]);
		usleep(100000);
	}
}

void bt_assert_load_ok(const char *report)
{
	bt_log("load: %s", report);
	ASSERT_GT(bt_json_get(report, "answered"), 100);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
}

/* The TCP counters of this network namespace that say where a connection
 * was lost, those not 0, logged: a failed load then shows whether a server
 * closed a connection it had not read (AbortOnClose) or a queue failed to
 * move (MigrateReqFailure). */
static void log_tcp_losses(void)
{
	static const char *const want[][2] = {
		{ "Tcp", "EstabResets" }, { "Tcp", "OutRsts" }, { "Tcp", "AttemptFails" },
		{ "TcpExt", "ListenOverflows" }, { "TcpExt", "ListenDrops" }, { "TcpExt", "TCPAbortOnClose" },
		{ "TcpExt", "TCPAbortOnData" }, { "TcpExt", "TCPAbortOnTimeout" }, { "TcpExt", "TCPMigrateReqSuccess" },
		{ "TcpExt", "TCPMigrateReqFailure" }, { "TcpExt", "TCPReqQFullDrop" },
	};
	char said[1024] = "";

	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		long long v = bt_net_counter(want[k][0], want[k][1]);

		if (v > 0)
			snprintf(said + strlen(said), sizeof(said) - strlen(said), " %s %lld", want[k][1], v);
	}
	bt_log("TCP counters of the test's network namespace (not 0):%s", said[0] ? said : " none");
}

void bt_reload_under_load(const struct bt_reload_load *r)
{
	static char out[65536], err[16384];
	struct bt_load load = bt_load_start(r->port, "conn", "600", 16);
	char logs[2][PATH_MAX];
	const char *report, *logv[3] = { logs[0], r->logname ? logs[1] : NULL, NULL };

	snprintf(logs[0], sizeof(logs[0]), "%s/baton.log", r->dir);
	snprintf(logs[1], sizeof(logs[1]), "%s/%s", r->dir, r->logname ? r->logname : "");
	usleep((useconds_t)r->warmup_ms * 1000);	/* full load before the first reload */
	if (r->check)
		r->check(r->ctx);
	bt_reloads("web", r->reloads, r->says, &load, logv);
	if (r->check)
		r->check(r->ctx);
	usleep(300000);
	report = bt_load_stop(&load, 20);
	bt_log("load: %s", report);
	ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
	ASSERT_EQ(bt_json_get(out, "reloads_done"), r->reloads);
	ASSERT_EQ(bt_json_get(out, "reloads_failed"), 0);
	r->stop(r->ctx);
	if (bt_json_get(report, "failed")) {
		log_tcp_losses();
		for (int i = 0; logv[i]; i++)
			bt_quote_file(logv[i]);
	}
	ASSERT_GT(bt_json_get(report, "answered"), 500);
	ASSERT_EQ(bt_json_get(report, "failed"), 0);
}

