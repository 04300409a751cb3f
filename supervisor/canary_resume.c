/* SPDX-License-Identifier: BSD-2-Clause */
/* A staged reload across a supervisor restart (part of canary.c's feature): its
 * state file lines, written and read, and the resume that takes the stage
 * up again where the dead supervisor left it. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary.h"
#include "core.h"
#include "gen.h"
#include "stage.h"
#include "util.h"

/* ---- the stage across a supervisor restart ------------------------------------------ */

/* This boot's id: the stage's deadlines are CLOCK_MONOTONIC times, which
 * mean something only within the boot that wrote them. */
static void boot_id(char *out, size_t n)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	snprintf(out, n, "-");
	if (f) {
		if (fgets(out, (int)n, f))
			out[strcspn(out, " \n")] = '\0';
		fclose(f);
	}
	if (!out[0])
		snprintf(out, n, "-");
}

enum { CHECK_NONE, CHECK_URL, CHECK_CMD };

/* Everything a stage is, so that a supervisor that resumes it goes on
 * exactly where this one stopped:
 *   stage v2 KIND NEW OLD PCT CANARY STEP PROBATION INTERVAL SINCE NEXT_STEP UNTIL OK FAILED CHECK BOOT
 *   stage-check-url PATH HOST | stage-check-cmd CMD     (when CHECK says so)
 *   stage-check-last TEXT                               (optional)
 * The times are absolute CLOCK_MONOTONIC ms: that clock is one for every
 * process of a boot (unlike a process's own clocks) and never steps (unlike
 * CLOCK_REALTIME under NTP or an operator's date), and the processes of a
 * stage do not outlive the boot, whose id is kept to be sure. */
void stage_save(struct sup *s, FILE *f)
{
	struct stage *st = &s->stage;
	int check = st->o.check_cmd[0] ? CHECK_CMD : st->o.check_path[0] ? CHECK_URL : CHECK_NONE;
	char boot[64];

	st->saved_ms = baton_mono_ms();
	st->counts_dirty = false;
	if (st->kind == STAGE_NONE)
		return;
	boot_id(boot, sizeof(boot));
	fprintf(f, "stage v2 %s %d %d %d %d %lld %lld %lld %lld %lld %lld %d %d %d %s\n", kind_name[st->kind],
		st->new_id, st->old_id, st->pct, st->o.canary_pct, st->o.step_ms, st->o.probation_ms, st->o.check_ms,
		st->since_ms, st->next_step_ms, st->until_ms, st->checks_ok, st->checks_failed, check, boot);
	if (check == CHECK_URL) {
		fprintf(f, "stage-check-url ");
		sup_escape(f, st->o.check_path);
		fputc(' ', f);
		sup_escape(f, st->o.check_host);
		fputc('\n', f);
	} else if (check == CHECK_CMD) {
		fprintf(f, "stage-check-cmd ");
		sup_escape(f, st->o.check_cmd);
		fputc('\n', f);
	}
	if (check != CHECK_NONE && st->check_last[0]) {
		fprintf(f, "stage-check-last ");
		sup_escape(f, st->check_last);
		fputc('\n', f);
	}
}

static struct {
	bool seen;
	char kind[16];
	int new_id, old_id, pct, ok, failed, check;
	struct stage_opts o;
	long long since_ms, next_step_ms, until_ms;
	char boot[64];
	bool have_check;	/* the check line CHECK announces was read */
	char last[160];
	char why[160];		/* why it cannot be resumed whole; "" if it can */
} saved;

/* Unescapes TEXT into OUT (N bytes); false if it does not fit or is bad. */
static bool load_text(const char *text, char *out, size_t n)
{
	const char *why;
	char *v = sup_unescape(text, &why);
	bool ok = v && strlen(v) < n;

	if (ok)
		snprintf(out, n, "%s", v);
	free(v);
	return ok;
}

/* Every line that starts with "stage" is the stage's: one it cannot read
 * makes the stage one that cannot be resumed whole (rolled back), never
 * the whole state unreadable. */
bool stage_load_line(struct sup *s, const char *line)
{
	(void)s;
	if (!strncmp(line, "stage v2 ", 9)) {
		saved.seen = true;
		if (sscanf(line, "stage v2 %15s %d %d %d %d %lld %lld %lld %lld %lld %lld %d %d %d %63s", saved.kind,
			   &saved.new_id, &saved.old_id, &saved.pct, &saved.o.canary_pct, &saved.o.step_ms,
			   &saved.o.probation_ms, &saved.o.check_ms, &saved.since_ms, &saved.next_step_ms,
			   &saved.until_ms, &saved.ok, &saved.failed, &saved.check, saved.boot) != 15 ||
		    saved.check < CHECK_NONE || saved.check > CHECK_CMD)
			snprintf(saved.why, sizeof(saved.why), "its line in the state file is damaged");
		return true;
	}
	if (!strncmp(line, "stage-check-url ", 16)) {
		char path[sizeof(saved.o.check_path) * 3], host[sizeof(saved.o.check_host) * 3];

		if (sscanf(line, "stage-check-url %383s %191s", path, host) == 2 &&
		    load_text(path, saved.o.check_path, sizeof(saved.o.check_path)) &&
		    load_text(host, saved.o.check_host, sizeof(saved.o.check_host)))
			saved.have_check = saved.check == CHECK_URL;
		else
			snprintf(saved.why, sizeof(saved.why), "its --check in the state file is damaged");
		return true;
	}
	if (!strncmp(line, "stage-check-cmd ", 16)) {
		if (load_text(line + 16, saved.o.check_cmd, sizeof(saved.o.check_cmd)))
			saved.have_check = saved.check == CHECK_CMD;
		else
			snprintf(saved.why, sizeof(saved.why), "its --check-cmd in the state file is damaged");
		return true;
	}
	if (!strncmp(line, "stage-check-last ", 17)) {
		if (!load_text(line + 17, saved.last, sizeof(saved.last)))
			saved.last[0] = '\0';	/* a text for status only */
		return true;
	}
	if (!strncmp(line, "stage ", 6)) {
		long long step_ms, left_ms;

		/* a baton before the checks and deadlines were kept: the split
		 * and who is who can be read, what decided the stage cannot */
		saved.seen = true;
		if (sscanf(line, "stage %15s %d %d %d %lld %lld", saved.kind, &saved.new_id, &saved.old_id,
			   &saved.pct, &step_ms, &left_ms) < 3)
			snprintf(saved.why, sizeof(saved.why), "its line in the state file is damaged");
		else
			snprintf(saved.why, sizeof(saved.why), "the state file was written by an older baton, which "
				 "did not keep the stage's checks and deadlines");
		return true;
	}
	return false;
}

bool stage_resuming(int id)
{
	return saved.seen && !strcmp(saved.kind, "canary") && saved.new_id == id;
}

static int gi_of(const struct sup *s, int id)
{
	for (int i = 0; i < MAX_GENS; i++)
		if (s->gen[i].state != GEN_FREE && s->gen[i].id == id && s->gen[i].pid > 0)
			return i;
	return -1;
}

/* Why the saved stage cannot go on as it was, or NULL. */
static const char *resume_refused(long long now)
{
	char boot[64];

	if (saved.why[0])
		return saved.why;
	boot_id(boot, sizeof(boot));
	if (strcmp(boot, saved.boot))
		return "its deadlines were kept by another boot";
	if (saved.check != CHECK_NONE && !saved.have_check)
		return "its check is missing from the state file";
	/* a time beyond what the stage could have asked for: another clock
	 * (a time namespace), so the deadlines mean nothing here */
	if (saved.since_ms > now || (!strcmp(saved.kind, "canary") && saved.o.step_ms &&
				      saved.next_step_ms - now > saved.o.step_ms) ||
	    (!strcmp(saved.kind, "probation") && saved.until_ms - now > saved.o.probation_ms))
		return "its deadlines lie beyond what it asked for (another clock?)";
	if (!strcmp(saved.kind, "canary") && (saved.pct < 1 || saved.pct > 99))
		return "its share in the state file is out of range";
	return NULL;
}

/* After state_resume adopted the generations: a canary keeps its split, a
 * probation its standby, both their checks, counts and deadlines, if both
 * generations still run. What cannot be resumed whole is rolled back with
 * the reason, in the log and status (last stage): never promoted, as a
 * stage whose check cannot go on has nothing to vouch for its new one. */
void stage_resume(struct sup *s)
{
	struct stage *st = &s->stage;
	int n = gi_of(s, saved.new_id), o = gi_of(s, saved.old_id);
	long long now = baton_mono_ms();
	bool canary = !strcmp(saved.kind, "canary"), check = saved.check != CHECK_NONE;
	const char *refused;
	char why[256];

	if (!saved.seen)
		return;
	refused = resume_refused(now);
	if (n < 0 || o < 0) {
		say(s, "the %s of gen %d ended while no supervisor ran", saved.kind, saved.new_id);
	} else if ((!canary && s->active == n) || (canary && s->active == o && s->reload == n)) {
		stage_begin(s, canary ? STAGE_CANARY : STAGE_PROBATION, o, n);
		if (!refused) {
			st->o = saved.o;
			st->since_ms = saved.since_ms;
			st->next_step_ms = saved.next_step_ms;
			st->until_ms = saved.until_ms;
			st->checks_ok = saved.ok;
			st->checks_failed = saved.failed;
			snprintf(st->check_last, sizeof(st->check_last), "%s", saved.last);
			/* the probe in flight died with its supervisor: one now,
			 * and no step or promotion before its verdict */
			st->next_check_ms = now;
			st->resumed_unchecked = check;
		}
		if (canary) {
			gen_set_state(s, n, GEN_CANARY, "canary resumed");
			s->reload_start_us = baton_mono_us();	/* its timings restart with this supervisor */
			st->o.canary_pct = refused ? saved.pct : st->o.canary_pct;
			stage_set_share(s, saved.pct);
		} else {
			gen_set_state(s, o, GEN_STANDBY, "probation resumed");
		}
		if (refused) {
			snprintf(why, sizeof(why), "the %s could not be resumed whole after a supervisor restart: %s",
				 saved.kind, refused);
			say_warn(s, "%s of gen %d: rolling it back", why, saved.new_id);
			stage_fail(s, why);
		} else if (canary) {
			say(s, "resumed the canary of gen %d at %d%%%s%s", saved.new_id, saved.pct,
			    check ? "; its check goes on" : "", check ? " and no step is taken before it passes" : "");
			if (saved.o.step_ms)
				say(s, "its next step is due in %lld ms, as before the restart", st->next_step_ms - now);
		} else {
			say(s, "resumed the probation of gen %d (%lld ms left, as before the restart%s)", saved.new_id,
			    st->until_ms - now, check ? "; its check goes on" : "");
		}
	}
	memset(&saved, 0, sizeof(saved));
}
