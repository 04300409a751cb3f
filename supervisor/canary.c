/* SPDX-License-Identifier: BSD-2-Clause */
/* Staged reloads: a canary takes a share of new connections beside the
 * active generation (by hand, or raised in steps), a probation keeps the old
 * generation alive without traffic after a full switch, and a check probes
 * the new generation alone through the real port. A new generation that
 * exits, freezes, hangs or fails its check is flipped back in one policy
 * update: the old one is still there, so no process starts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canary.h"
#include "control.h"
#include "core.h"
#include "gen.h"
#include "metrics.h"
#include "stage.h"
#include "state.h"
#include "util.h"


/* ---- the control request -------------------------------------------------- */

/* %XX escapes (the client encodes a --check-cmd so that it fits one token). */
static void unescape(char *t)
{
	char *o = t;

	for (; *t; t++) {
		unsigned v;

		if (*t == '%' && sscanf(t + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			t += 2;
		} else {
			*o++ = *t;
		}
	}
	*o = '\0';
}

/* "http://HOST/PATH" or "http:///PATH" (HOST: the Host header). */
static int parse_check_url(const char *url, struct stage_opts *o)
{
	const char *p, *host;

	if (strncmp(url, "http://", 7))
		return -EINVAL;
	host = url + 7;
	p = strchr(host, '/');
	if (!p || (size_t)(p - host) >= sizeof(o->check_host) || strlen(p) >= sizeof(o->check_path) ||
	    strpbrk(p, " \r\n"))
		return -EINVAL;
	/* HOST goes into the Host: header: a name, an address or [V6] and a
	 * :PORT, never a CR LF that would add headers (baton reload checks
	 * this too; a raw control client is checked here) */
	for (const char *h = host; h < p; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
		      strchr("-._:[]", *h)))
			return -EINVAL;
	snprintf(o->check_host, sizeof(o->check_host), "%.*s", (int)(p - host), host);
	if (!o->check_host[0])
		snprintf(o->check_host, sizeof(o->check_host), "localhost");
	snprintf(o->check_path, sizeof(o->check_path), "%s", p);
	return 0;
}

static int parse_reload_args(struct sup *s, struct client *c, char *args, struct stage_opts *o)
{
	char *tok, *save = NULL;

	memset(o, 0, sizeof(*o));
	o->check_ms = 1000;
	for (tok = strtok_r(args, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *v = strchr(tok, '=');
		long long n;

		if (!v) {
			client_send(c, "error unexpected argument \"%s\" for reload", tok);
			return -EINVAL;
		}
		*v++ = '\0';
		unescape(v);
		if (!strcmp(tok, "canary")) {
			n = atoll(v);
			if (n < 1 || n > 99) {
				client_send(c, "error bad --canary \"%s\": want a share from 1%% to 99%%", v);
				return -EINVAL;
			}
			o->canary_pct = (int)n;
		} else if (!strcmp(tok, "step") || !strcmp(tok, "probation") || !strcmp(tok, "check-interval")) {
			if (sup_parse_duration(v, &n) || n < 10 || n > 86400000) {
				client_send(c, "error bad --%s \"%s\": want a duration from 10ms to 24h", tok, v);
				return -EINVAL;
			}
			*(tok[0] == 's' ? &o->step_ms : tok[0] == 'p' ? &o->probation_ms : &o->check_ms) = n;
		} else if (!strcmp(tok, "check")) {
			if (parse_check_url(v, o)) {
				char safe[1024];	/* one line: a CR LF in V must not end it */

				client_send(c, "error bad --check \"%s\": want http://PATH, e.g. http:///healthz (or "
					       "http://HOST/PATH to send Host: HOST, HOST a name or address)",
					    baton_text_escape(safe, sizeof(safe), v, 0));
				return -EINVAL;
			}
		} else if (!strcmp(tok, "check-cmd")) {
			if (!*v || strlen(v) >= sizeof(o->check_cmd)) {
				client_send(c, "error bad --check-cmd: want a command of 1 to %zu bytes",
					    sizeof(o->check_cmd) - 1);
				return -EINVAL;
			}
			snprintf(o->check_cmd, sizeof(o->check_cmd), "%s", v);
		} else {
			client_send(c, "error unknown reload option \"%s\" (known: canary, step, probation, check, "
				       "check-cmd, check-interval)", tok);
			return -EINVAL;
		}
	}
	if (o->step_ms && !o->canary_pct) {
		client_send(c, "error --step raises a canary's share: give --canary P%% too");
		return -EINVAL;
	}
	if ((o->check_path[0] || o->check_cmd[0]) && !o->canary_pct && !o->probation_ms) {
		client_send(c, "error a check decides a canary or a probation: give --canary P%% or --probation DUR");
		return -EINVAL;
	}
	if (o->check_path[0] && o->check_cmd[0]) {
		client_send(c, "error give --check or --check-cmd, not both");
		return -EINVAL;
	}
	if (o->check_path[0] && s->spec[0].proto != BATON_PROTO_TCP) {
		client_send(c, "error --check sends HTTP over TCP, and listener 0 is UDP: use --check-cmd");
		return -EINVAL;
	}
	if ((o->check_path[0] || o->check_cmd[0]) && baton_group_mode(s->grp[0]) != BATON_MODE_EBPF) {
		client_send(c, "error checks need eBPF steering (CAP_BPF and CAP_NET_ADMIN): in classic BPF mode a "
			       "probe cannot be sent to one generation");
		return -EOPNOTSUPP;
	}
	return 0;
}

static const char *draining_list(const struct sup *s)
{
	static char buf[256];
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < MAX_GENS && used < sizeof(buf) - 32; i++)
		if (s->gen[i].state == GEN_DRAINING && s->gen[i].pid > 0)
			used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%sgen %d (pid %d)", used ? ", " : "",
						 s->gen[i].id, (int)s->gen[i].pid);
	return buf;
}

int stage_admit(struct sup *s)
{
	int n = draining_gens(s);

	if (s->stage.kind != STAGE_NONE)
		return -EBUSY;
	if (s->cfg->max_draining > 0 && n >= s->cfg->max_draining) {
		say(s, "no reload: %d generation%s still drain (%s), the limit set by --max-draining %d", n,
		    n == 1 ? "" : "s", draining_list(s), s->cfg->max_draining);
		return -EMLINK;
	}
	return 0;
}

static void busy_reason(struct sup *s, struct client *c)
{
	struct stage *st = &s->stage;

	if (st->kind == STAGE_CANARY)
		client_send(c, "error gen %d is a canary taking %d%% of new connections beside gen %d: decide first "
			       "with baton promote %s or baton rollback %s", st->new_id, st->pct, st->old_id, s->name,
			    s->name);
	else if (st->kind == STAGE_PROBATION)
		client_send(c, "error gen %d is on probation for %lld ms more (gen %d stands by): end it first with "
			       "baton promote %s or baton rollback %s", st->new_id, st->until_ms - baton_mono_ms(),
			    st->old_id, s->name, s->name);
	else
		client_send(c, "error a reload is already in progress (gen %d, started %lld ms ago)",
			    s->gen[s->reload].id, (baton_mono_us() - s->reload_start_us) / 1000);
}

int stage_want(struct sup *s, struct client *c, char *args)
{
	int r = parse_reload_args(s, c, args, &s->stage.want);

	if (r)
		return r;
	if (s->reload >= 0 && s->reload_origin == RELOAD_HEALTH &&
	    (s->stage.want.canary_pct || s->stage.want.probation_ms)) {
		/* a plain reload joins the health watch's; a staged one cannot */
		memset(&s->stage.want, 0, sizeof(s->stage.want));
		client_send(c, "error the health watch is replacing gen %d with gen %d: stage the next reload once that "
			       "one serves", s->active >= 0 ? s->gen[s->active].id : 0, s->gen[s->reload].id);
		return -EINVAL;
	}
	return 0;
}

void stage_want_clear(struct sup *s)
{
	memset(&s->stage.want, 0, sizeof(s->stage.want));
}

bool stage_refused(struct sup *s, struct client *c, int r)
{
	if (r == -EBUSY && s->stage.kind != STAGE_NONE) {
		busy_reason(s, c);
		return true;
	}
	if (r == -EMLINK) {
		client_send(c, "error %d generations still drain (%s), the limit set by --max-draining %d: wait until "
			       "one exits, or stop them sooner with a shorter --grace", draining_gens(s),
			    draining_list(s), s->cfg->max_draining);
		return true;
	}
	return false;
}

int stage_request(struct sup *s, int ci, const char *cmd, char *args)
{
	struct client *c = &s->cl[ci];
	int r;

	if (!strcmp(cmd, "promote") || !strcmp(cmd, "rollback")) {
		struct stage *st = &s->stage;
		bool promote = cmd[0] == 'p';
		int old = st->old_id, nw = st->new_id;
		enum stage_kind k = st->kind;

		if (args && *args) {
			client_send(c, "error unexpected argument \"%s\" for %s", args, cmd);
			return -EINVAL;
		}
		r = promote ? stage_promote(s, "baton promote") : stage_rollback(s, "baton rollback");
		if (r == -ENOENT) {
			client_send(c, "error nothing to %s: no canary or probation is under way%s", cmd,
				    s->reload >= 0 ? " (a reload is still starting its generation)" : "");
			return r;
		}
		if (promote && k == STAGE_CANARY)
			client_send(c, "ok gen %d serves every new connection; gen %d told to stop", nw, old);
		else if (promote)
			client_send(c, "ok probation of gen %d ended; gen %d told to stop", nw, old);
		else
			client_send(c, "ok every new connection goes to gen %d again; gen %d stopped and fenced", old, nw);
		return 1;
	}
	if ((r = stage_want(s, c, args)))
		return r;
	r = start_reload(s, ci, RELOAD_CONTROL);
	stage_want_clear(s);
	if (stage_refused(s, c, r))
		return r;
	if (r == -EBUSY)
		busy_reason(s, c);
	else if (r == -ESHUTDOWN)
		client_send(c, "error the supervisor is stopping");
	else if (r == -ENOENT)
		client_send(c, "error no generation serves yet (gen 1 is still starting)");
	return r;
}

/* ---- weights, watch, pins ---------------------------------------------------- */

int stage_set_share(struct sup *s, int pct)
{
	struct gen *o = &s->gen[s->stage.old_gi], *n = &s->gen[s->stage.new_gi];
	uint32_t w[BATON_MAX_SLOTS];
	int l, r = 0;

	/* every listener's share at one instant: one commit of the steering
	 * set (a commit each would wait for grace periods in a large set) */
	baton_steerset_begin(s->set);
	for (l = 0; l < s->nl && !r; l++) {
		memset(w, 0, sizeof(w));
		if (o->slot[l] >= 0)
			w[o->slot[l]] = (uint32_t)(100 - pct);
		if (n->slot[l] >= 0)
			w[n->slot[l]] = (uint32_t)pct;
		r = baton_group_set_weights(s->grp[l], w, BATON_MAX_SLOTS);
	}
	if (s->set)
		baton_steerset_commit(s->set);
	if (!r)
		s->stage.pct = pct;
	return r;
}

static void watch_free(struct sup *s)
{
	struct stage *st = &s->stage;

	if (st->watch) {
		for (int l = 0; l < s->nl; l++)
			baton_watch_free(st->watch[l]);
		free(st->watch);
		st->watch = NULL;
	}
}

static void check_stop(struct sup *s)
{
	struct stage *st = &s->stage;

	if (st->check_fd > 0) {	/* 0: none (the struct starts zeroed; stdin is never ours) */
		close(st->check_fd);
		st->check_fd = 0;
	}
	if (st->check_pid > 0)
		kill(st->check_pid, SIGKILL);	/* reaped by the loop; its status is not ours any more */
	st->check_pid = 0;
	if (st->pinned)
		baton_group_pin_source(s->grp[0], STAGE_CHECK_LO, STAGE_CHECK_LO + STAGE_CHECK_PORTS - 1, -1);
	st->pinned = false;
}

/* Ends the stage's watch and checks; what it decided is already done. */
static void stage_end(struct sup *s)
{
	struct stage *st = &s->stage;

	check_stop(s);
	watch_free(s);
	st->kind = STAGE_NONE;
	memset(&st->o, 0, sizeof(st->o));
}

void stage_begin(struct sup *s, enum stage_kind kind, int old, int nw)
{
	struct stage *st = &s->stage;

	st->kind = kind;
	st->old_gi = old;
	st->new_gi = nw;
	st->old_id = s->gen[old].id;
	st->new_id = s->gen[nw].id;
	st->since_ms = baton_mono_ms();
	st->next_check_ms = st->since_ms;
	if (!st->check_port)
		st->check_port = STAGE_CHECK_LO;
	/* a stage's counts are its own: the last stage's passes vouch for
	 * nothing here */
	st->checks_ok = st->checks_failed = 0;
	st->check_last[0] = '\0';
	st->check_sent = false;
	st->check_len = 0;
	st->resumed_unchecked = false;
	st->counts_dirty = false;
}

/* ---- the failures ----------------------------------------------------------- */

void stage_fail(struct sup *s, const char *why)
{
	struct stage *st = &s->stage;
	struct gen *o = &s->gen[st->old_gi], *n = &s->gen[st->new_gi];
	long long into = baton_mono_ms() - st->since_ms;
	int l;

	if (st->kind == STAGE_CANARY) {
		int pct = st->pct;

		stage_end(s);
		snprintf(st->last, sizeof(st->last), "canary gen %d (at %d%%) rolled back after %lld ms: %s; gen %d "
			 "serves", n->id, pct, into, why, o->id);
		/* its members are fenced: one update per listener gives the old
		 * one everything, and what waits in the canary's queue moves */
		rollback(s, why);
		return;
	}
	if (st->kind != STAGE_PROBATION)
		return;
	stage_end(s);
	for (l = 0; l < s->nl; l++)
		if (o->slot[l] >= 0)
			baton_group_activate(s->grp[l], o->slot[l]);
	s->active = st->old_gi;
	gen_set_state(s, st->old_gi, GEN_ACTIVE, "probation failed: flipped back");
	o->health[0] = '\0';
	if (n->pid > 0)
		stop_gen(s, n);
	release_members(s, n);
	snprintf(n->why, sizeof(n->why), "rolled back on probation: %s", why);
	snprintf(st->last, sizeof(st->last), "gen %d failed %lld ms into its probation (%s): every new connection "
		 "flipped back to gen %d in one policy update, no process started", n->id, into, why, o->id);
	snprintf(s->last_reload, sizeof(s->last_reload), "rolled back: %.300s", st->last);
	s->reloads_failed++;
	metrics_reload(s, false, -1);	/* timed already, when it switched */
	say(s, "%s", st->last);
	state_save(s);
}

bool stage_gen_exited(struct sup *s, int gi, const char *how)
{
	struct stage *st = &s->stage;
	char why[200];

	if (st->kind == STAGE_NONE || s->stopping)
		return false;
	if (gi == st->new_gi) {
		snprintf(why, sizeof(why), "gen %d %s", st->new_id, how);
		stage_fail(s, why);
		return true;
	}
	if (gi != st->old_gi)
		return false;
	if (st->kind == STAGE_PROBATION) {
		say(s, "standby gen %d %s; the probation of gen %d ends: nothing is left to flip back to", st->old_id,
		    how, st->new_id);
		release_members(s, &s->gen[gi]);
		stage_end(s);
		state_save(s);
		return true;
	}
	/* the old one of a canary went: the canary takes everything */
	say(s, "gen %d %s during the canary; gen %d takes every new connection", st->old_id, how, st->new_id);
	stage_end(s);
	gen_set_state(s, st->new_gi, GEN_READY, "the canary's old generation ended");
	gen_switch(s, st->new_gi);
	return true;
}

/* ---- the reload's hooks --------------------------------------------------------- */

void stage_started(struct sup *s, int gi)
{
	(void)gi;
	s->stage.o = s->stage.want;
	memset(&s->stage.want, 0, sizeof(s->stage.want));
}

bool stage_ready(struct sup *s, int gi)
{
	struct stage *st = &s->stage;
	struct gen *g = &s->gen[gi];
	int r;

	if (gi != s->reload || !st->o.canary_pct || s->active < 0)
		return false;
	stage_begin(s, STAGE_CANARY, s->active, gi);
	gen_set_state(s, gi, GEN_CANARY, "canary");
	if ((r = stage_set_share(s, st->o.canary_pct))) {
		char why[160];

		snprintf(why, sizeof(why), "cannot give gen %d its share: %s", g->id, strerror(-r));
		stage_fail(s, why);
		return true;
	}
	if (st->o.step_ms)
		st->next_step_ms = st->since_ms + st->o.step_ms;
	step(s, "canary: gen %d takes %d%% of new connections, gen %d keeps %d%%%s", g->id, st->pct, st->old_id,
	     100 - st->pct, st->o.step_ms ? "; the share grows in steps" : "");
	state_save(s);
	if (!st->o.step_ms && s->reload_client >= 0) {
		/* by hand: the client is answered now, the reload stays open */
		client_send(&s->cl[s->reload_client], "ok gen %d (pid %d) takes %d%% of new connections (canary); "
			    "baton promote %s or baton rollback %s decides", g->id, (int)g->pid, st->pct, s->name,
			    s->name);
		client_close(s, &s->cl[s->reload_client]);
		s->reload_client = -1;
	}
	return true;
}

bool stage_keep_old(struct sup *s, int old, int gi)
{
	struct stage *st = &s->stage;
	struct gen *o = &s->gen[old];

	if (gi != s->reload || !st->o.probation_ms)
		return false;
	stage_begin(s, STAGE_PROBATION, old, gi);
	st->until_ms = st->since_ms + st->o.probation_ms;
	gen_set_state(s, old, GEN_STANDBY, "probation: kept as the standby");
	step(s, "probation: gen %d (pid %d) stays alive without traffic for %s; if gen %d exits, freezes, hangs "
		"or fails its check by then, new connections flip back to it", o->id, (int)o->pid,
	     fmt_duration(st->o.probation_ms), st->new_id);
	return true;
}

void stage_reload_finished(struct sup *s)
{
	if (s->stage.kind != STAGE_PROBATION)
		stage_end(s);
}

int stage_promote(struct sup *s, const char *why)
{
	struct stage *st = &s->stage;
	struct gen *o = &s->gen[st->old_gi];

	if (st->kind == STAGE_CANARY) {
		int nw = st->new_gi;

		step(s, "promoting canary gen %d from %d%% (%s)", st->new_id, st->pct, why);
		snprintf(st->last, sizeof(st->last), "canary gen %d promoted after %lld ms (%s)", st->new_id,
			 baton_mono_ms() - st->since_ms, why);
		stage_end(s);
		gen_set_state(s, nw, GEN_READY, "canary promoted");
		gen_switch(s, nw);
		return 0;
	}
	if (st->kind != STAGE_PROBATION)
		return -ENOENT;
	snprintf(st->last, sizeof(st->last), "gen %d passed its probation (%s); gen %d told to stop", st->new_id,
		 why, st->old_id);
	say(s, "%s", st->last);
	stage_end(s);
	stop_gen(s, o);
	state_save(s);
	return 0;
}

int stage_rollback(struct sup *s, const char *why)
{
	if (s->stage.kind == STAGE_NONE)
		return -ENOENT;
	stage_fail(s, why);
	return 0;
}

bool stage_tick(struct sup *s, long long now)
{
	struct stage *st = &s->stage;

	if (st->kind == STAGE_NONE)
		return false;
	if (s->stopping) {
		stage_end(s);
		return false;
	}
	if (watch_tick(s, now))
		return false;
	check_tick(s, now);
	if (st->kind == STAGE_NONE)
		return false;	/* the check failed it */
	/* the counts reach the state file at most once a second: a resumed
	 * supervisor goes on from them, give or take that second */
	if (st->counts_dirty && now - st->saved_ms >= 1000)
		state_save(s);
	/* a resumed stage with a check waits for a verdict of its own before
	 * it raises a share or promotes: the dead supervisor's last checks
	 * may be all that ever passed */
	if (st->resumed_unchecked)
		return st->kind == STAGE_PROBATION;
	if (st->kind == STAGE_CANARY && st->o.step_ms && now >= st->next_step_ms) {
		int pct = st->pct + st->o.canary_pct, r;

		if (pct >= 100) {
			stage_promote(s, "every step passed");
			return st->kind == STAGE_PROBATION;
		}
		if ((r = stage_set_share(s, pct))) {
			char why[160];

			snprintf(why, sizeof(why), "cannot raise gen %d's share to %d%%: %s", st->new_id, pct,
				 strerror(-r));
			stage_fail(s, why);
			return false;
		}
		st->next_step_ms = now + st->o.step_ms;
		step(s, "canary: gen %d takes %d%% of new connections", st->new_id, pct);
		state_save(s);
	}
	if (st->kind == STAGE_PROBATION && now >= st->until_ms)
		stage_promote(s, "its time ran out without a failure");
	return st->kind == STAGE_PROBATION;
}

bool stage_busy(const struct sup *s)
{
	return s->stage.kind != STAGE_NONE;
}

void stage_fini(struct sup *s)
{
	stage_end(s);
}

