/* SPDX-License-Identifier: BSD-2-Clause */
/* State that outlives the supervisor: NAME.state in the runtime directory
 * (written whole and renamed into place at every transition) and the
 * steering maps pinned in bpffs. A `baton run` started again with the same
 * name, or this binary re-executed by `baton upgrade`, reads it, verifies
 * each generation's pid against its start time, copies its member sockets
 * back with pidfd_getfd and resumes; a reload cut short is completed or
 * rolled back, so exactly one generation is active. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "feature.h"
#include "pinlayout.h"
#include "resume.h"
#include "rundir.h"
#include "state.h"
#include "stateparse.h"
#include "util.h"

/* ---- writing ------------------------------------------------------------- */

static void write_strv(FILE *f, const char *key, char *const *v)
{
	for (size_t i = 0; v && v[i]; i++) {
		fprintf(f, "%s ", key);
		sup_escape(f, v[i]);
		fputc('\n', f);
	}
}

/* The command `baton run` was given (to tell whether a resuming run gives
 * the same), the one a reload set and its environment, and a reload's
 * still starting, and the last reload's outcome; percent-escaped, one item
 * a line. */
static void write_cmd(struct sup *s, FILE *f)
{
	write_strv(f, "cmd-base", s->cfg->argv);
	write_strv(f, "cmd", s->cmd);
	write_strv(f, "env", s->env);
	write_strv(f, "next-cmd", s->next_cmd);
	write_strv(f, "next-env", s->next_env);
	if (s->last_reload[0]) {
		fputs("last-reload ", f);
		sup_escape(f, s->last_reload);
		fputc('\n', f);
	}
}

/* A generation's counters: the slot's when its member joined and what
 * members that left counted, so a resumed supervisor goes on counting. */
static void write_counts(struct sup *s, FILE *f, const struct gen *g)
{
	for (int l = 0; l < s->nl; l++) {
		const struct gen_count *c = &g->count[l];

		fprintf(f, "gencount %d %d %llu %llu %llu %llu %llu %llu\n", g->id, l,
			(unsigned long long)c->base[0], (unsigned long long)c->base[1], (unsigned long long)c->base[2],
			(unsigned long long)c->acc[0], (unsigned long long)c->acc[1], (unsigned long long)c->acc[2]);
	}
}

static void write_state(struct sup *s, FILE *f)
{
	char spec[512];
	int i, l;

	fprintf(f, "%s\nname %s\npid %d\nmode %s\npins %s\nnext_id %d\ncounts %d %d %d\n", STATE_MAGIC, s->name,
		(int)getpid(), baton_mode_name(baton_group_mode(s->grp[0])), s->pin_root[0] ? s->pin_root : "-",
		s->next_id, s->reloads_done, s->reloads_failed, s->restarts);
	fprintf(f, "active %d\nreload %d\n", s->active >= 0 ? s->gen[s->active].id : 0,
		s->reload >= 0 ? s->gen[s->reload].id : 0);
	for (l = 0; l < s->nl; l++) {
		baton_spec_format(&s->spec[l], spec, sizeof(spec));
		fprintf(f, "listener %d %u %s\n", l, s->spec[l].port, spec);
		if (s->shared[l] >= 0)
			fprintf(f, "shared %d %llu\n", l, (unsigned long long)s->shared_ino[l]);
	}
	for (i = 0; i < MAX_GENS; i++) {
		struct gen *g = &s->gen[i];

		if (g->state == GEN_FREE || g->pid <= 0)
			continue;
		fprintf(f, "gen %d %d %llu %s %lld %d\n", g->id, (int)g->pid, g->start_ticks, state_name[g->state],
			g->start_wall_ms, g->stop_ms ? (g->flow_wait ? 2 : 1) : 0);	/* 2: not signalled, holds UDP flows */
		for (l = 0; l < s->nl; l++)
			if (g->slot[l] >= 0 && g->member_ino[l])
				fprintf(f, "member %d %d %d %llu\n", g->id, l, g->slot[l],
					(unsigned long long)g->member_ino[l]);
		for (int k = 0; k < s->ntkm; k++)
			if (s->tkm[k].gi == i && s->tkm[k].slot >= 0)
				fprintf(f, "member %d %d %d %llu\n", g->id, s->tkm[k].l, s->tkm[k].slot,
					(unsigned long long)s->tkm[k].ino);
		write_counts(s, f, g);
	}
	write_cmd(s, f);
	FEATURES_CALL(save, s, f);	/* the stage's lines, then the metrics' */
	fprintf(f, "end\n");
}

static const char *state_file(const struct sup *s)
{
	const char *p = strrchr(s->state_path, '/');

	return p ? p + 1 : s->state_path;
}

/* The temporary file beside the state, created afresh: never through a
 * symlink, never a file that was there (a leftover of ours is removed:
 * the directory is ours alone, see rundir.c). */
static int open_tmp(struct sup *s, char *tmp, size_t len)
{
	int fd, tries;

	if ((size_t)snprintf(tmp, len, "%s.tmp", state_file(s)) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (tries = 0; tries < 2; tries++) {
		fd = openat(s->rundir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
		if (unlinkat(s->rundir, tmp, 0))
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/* Records how the last write went: a failure degrades the service (status,
 * metrics, the log once per reason, STATUS= under systemd) and is retried
 * with back-off until a write succeeds. */
static void state_failed(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void state_failed(struct sup *s, const char *fmt, ...)
{
	char why[sizeof(s->state_err)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (strcmp(why, s->state_err))
		say_err(s, "degraded: %s; a supervisor started after a crash could not resume from it: retrying",
			why);
	snprintf(s->state_err, sizeof(s->state_err), "%s", why);
	s->state_retry_ms = s->state_retry_ms ? s->state_retry_ms * 2 : BACKOFF_MIN_MS;
	if (s->state_retry_ms > BACKOFF_MAX_MS)
		s->state_retry_ms = BACKOFF_MAX_MS;
	s->state_retry_at = baton_mono_ms() + s->state_retry_ms;
}

static void state_written(struct sup *s)
{
	if (s->state_err[0])
		say(s, "the state file %s is written again (was: %s): no longer degraded by it", s->state_path,
		    s->state_err);
	s->state_err[0] = '\0';
	s->state_retry_ms = 0;
}

static void state_write(struct sup *s)
{
	char tmp[4200];
	FILE *f;
	int fd, e;

	fd = open_tmp(s, tmp, sizeof(tmp));
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		e = errno;
		if (fd >= 0)
			close(fd);
		state_failed(s, "cannot write the state file %s.tmp: %s", s->state_path, strerror(e));
		return;
	}
	write_state(s, f);
	/* the rename is the commit: a reader sees the old state or the new.
	 * No fsync: the state matters only while processes it names run, and
	 * they do not outlive a crash of the machine. */
	if (fflush(f) || ferror(f)) {
		e = errno ? errno : EIO;
		fclose(f);
		unlinkat(s->rundir, tmp, 0);
		state_failed(s, "cannot write the state file %s.tmp: %s", s->state_path, strerror(e));
		return;
	}
	if (fclose(f)) {
		e = errno;
		unlinkat(s->rundir, tmp, 0);
		state_failed(s, "cannot write the state file %s.tmp: %s", s->state_path, strerror(e));
		return;
	}
	if (renameat(s->rundir, tmp, s->rundir, state_file(s))) {
		e = errno;
		unlinkat(s->rundir, tmp, 0);
		state_failed(s, "cannot rename %s.tmp into place: %s", s->state_path, strerror(e));
		return;
	}
	state_written(s);
}

static void members_check(struct sup *s);

void state_save(struct sup *s)
{
	members_check(s);
	if (s->state_path[0] && s->rundir >= 0)
		state_write(s);
	FEATURES_CALL(saved, s);	/* every transition is saved: the service manager hears of it too (and of a failure) */
}

void state_repin(struct sup *s)
{
	int l, n = 0, r;

	if (!s->pin_root[0] || !s->pins_ours || !pinwatch_changed(s))
		return;
	/* watched before the check: what goes during it is seen next time */
	pinwatch_arm(s);
	for (l = 0; l < s->nl; l++) {
		if (!s->grp[l])
			continue;
		r = baton_group_repin(s->grp[l]);
		if (r < 0) {
			say_warn(s, "cannot pin listener %d's steering state again under %s: %s; a supervisor started "
				    "after a crash could not resume it", l, s->pin_root, strerror(-r));
			return;
		}
		n += r > 0;
	}
	if (n) {
		say_warn(s, "the pins of %d listener%s under %s had been removed: pinned again", n, n == 1 ? "" : "s",
			 s->pin_root);
		pinwatch_arm(s);	/* folders made again are new inodes to watch */
	}
}

/* Members a restart could not take back leave the active generation
 * serving on sockets baton does not hold: no steering, no watch, no
 * migration for them. Degraded until a generation holds every member. */
static void members_check(struct sup *s)
{
	const struct gen *a = s->active >= 0 ? &s->gen[s->active] : NULL;
	int l, missing = 0;

	if (!s->members_err[0])
		return;
	for (l = 0; a && a->id != 0 && l < s->nl; l++)
		missing += a->slot[l] < 0 && s->shared[l] < 0;
	if (a && !missing) {
		say(s, "gen %d holds every member again: no longer degraded (%s)", a->id, s->members_err);
		s->members_err[0] = '\0';
	}
}

void state_retry(struct sup *s, long long now)
{
	if (s->state_err[0] && now >= s->state_retry_at && !s->stopping) {
		rundir_reopen(s);	/* a read-only mount replaced since */
		state_save(s);
	}
}

/* A clean stop leaves nothing: no state, no pins (if they are ours). */
void state_remove(struct sup *s)
{
	char path[4200];
	int l;

	if (s->state_path[0])
		rundir_unlink(s, state_file(s));
	if (!s->pin_root[0] || !s->pins_ours)
		return;
	for (l = 0; l < s->nl; l++)
		if (s->grp[l])
			baton_group_unpin(s->grp[l]);
	for (l = 0; l < s->nl; l++) {
		pin_listener_dir(path, sizeof(path), s->pin_root, l);
		rmdir(path);
	}
	rmdir(s->pin_root);
	/* and baton/ above it, if this was the last thing pinned there */
	snprintf(path, sizeof(path), "%s", s->pin_root);
	if (strrchr(path, '/')) {
		*strrchr(path, '/') = '\0';
		rmdir(path);
	}
}

/* ---- pins ------------------------------------------------------------------ */

/* Where this supervisor's groups are pinned (common/pinlayout.h). Mounts
 * bpffs if nothing is there, as baton steer does. "" when it cannot: a
 * supervisor started after a crash then cannot find the steering state,
 * which is said. */
int state_pin_root(struct sup *s)
{
	const char *base = pin_base();
	int r = pin_bpffs_mount(base);

	if (r) {
		snprintf(s->pin_warn, sizeof(s->pin_warn), "no bpffs at %s (%s): the steering state is not pinned, "
			 "so a supervisor started after this one dies cannot resume it (mount one there, or give "
			 "CAP_SYS_ADMIN to mount it)", base, strerror(-r));
		s->pin_root[0] = '\0';
		return r;
	}
	if ((r = pin_run_dir(s->pin_root, sizeof(s->pin_root), s->name)))
		s->pin_root[0] = '\0';
	return r;
}

/* ---- reading ---------------------------------------------------------------- */

/* The state file, parsed by stateparse.c; the stage's lines go to canary.c,
 * the reload outcomes and totals to metrics.c. */
static bool stage_line(void *ctx, const char *line)
{
	return FEATURES_ANY(load_line, (struct sup *)ctx, line);
}

/* -ENOENT if there is none; -EBADMSG, said with the line (escaped), if it
 * is not one this supervisor wrote or not a file of ours. */
int state_read(struct sup *s, const char *path, struct state *st)
{
	struct state_bad bad;
	int r, fd;
	FILE *f;

	memset(st, 0, sizeof(*st));
	/* ours alone (a file another uid planted would name the processes
	 * and the command this supervisor adopts and runs) */
	fd = rundir_open_file(s, state_file(s), "state file");
	if (fd < 0)
		return fd == -ENOENT ? fd : -EBADMSG;
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		return -errno;
	}
	r = state_parse(f, st, stage_line, s, &bad);
	fclose(f);
	if (r == -EBADMSG && bad.lineno)
		say_warn(s, "the state file %s is not one this supervisor can read (line %d: \"%s\"); not resuming "
			    "from it", path, bad.lineno, bad.quoted);
	else if (r == -EBADMSG)
		say_warn(s, "the state file %s is incomplete (no end line): not resuming from it", path);
	return r;
}

/* Is the process behind G still the one the state names? The pidfd is
 * opened first and the start time read after: if the pid was reused in
 * between, the start time differs, so a pidfd that passes names it. */
