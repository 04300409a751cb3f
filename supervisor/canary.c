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

#include "internal.h"

static const char *const kind_name[] = { "none", "canary", "probation" };

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
	int l, r;

	for (l = 0; l < s->nl; l++) {
		memset(w, 0, sizeof(w));
		if (o->slot[l] >= 0)
			w[o->slot[l]] = (uint32_t)(100 - pct);
		if (n->slot[l] >= 0)
			w[n->slot[l]] = (uint32_t)pct;
		if ((r = baton_group_set_weights(s->grp[l], w, BATON_MAX_SLOTS)))
			return r;
	}
	s->stage.pct = pct;
	return 0;
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

static void stage_begin(struct sup *s, enum stage_kind kind, int old, int nw)
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

/* ---- the check -------------------------------------------------------------------- */

static void check_done(struct sup *s, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check_done(struct sup *s, bool ok, const char *fmt, ...)
{
	struct stage *st = &s->stage;
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->check_last, sizeof(st->check_last), fmt, ap);
	va_end(ap);
	if (st->check_fd > 0) {	/* 0: none (the struct starts zeroed; stdin is never ours) */
		close(st->check_fd);
		st->check_fd = 0;
	}
	st->check_pid = 0;
	st->next_check_ms = baton_mono_ms() + st->o.check_ms;
	st->counts_dirty = true;
	if (ok) {
		st->checks_ok++;
		st->resumed_unchecked = false;
		return;
	}
	st->checks_failed++;
	snprintf(why, sizeof(why), "check failed: %s", st->check_last);
	say(s, "gen %d: %s", st->new_id, why);
	stage_fail(s, why);
}

/* Where a probe connects: the listener's own address, the loopback one for
 * a wildcard; it connects from the same address, from a reserved port. */
static void probe_addr(const struct sup *s, struct sockaddr_storage *dst, struct sockaddr_storage *src,
		       socklen_t *len, int sport)
{
	const struct baton_spec *sp = &s->spec[0];

	memcpy(dst, &sp->addr, sizeof(*dst));
	*len = sp->addrlen;
	if (sp->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)dst;

		if (a->sin_addr.s_addr == htonl(INADDR_ANY))
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(sp->port);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)dst;

		if (!memcmp(&a->sin6_addr, &in6addr_any, sizeof(in6addr_any)))
			a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(sp->port);
	}
	memcpy(src, dst, sizeof(*src));
	if (sp->family == AF_INET)
		((struct sockaddr_in *)src)->sin_port = htons((uint16_t)sport);
	else
		((struct sockaddr_in6 *)src)->sin6_port = htons((uint16_t)sport);
}

static void check_start(struct sup *s, long long now)
{
	struct stage *st = &s->stage;
	struct gen *n = &s->gen[st->new_gi];
	struct sockaddr_storage dst, src;
	socklen_t len;
	int fd, one = 1, r, port = st->check_port;
	char text[64];

	if (!st->pinned) {
		/* only probes from the probe's own address (a local one: no
		 * remote host can send from it) are pinned: anyone can pick a
		 * source port in the range */
		probe_addr(s, &dst, &src, &len, port);
		r = baton_group_pin_source_addr(s->grp[0], (struct sockaddr *)&src, len, STAGE_CHECK_LO,
						STAGE_CHECK_LO + STAGE_CHECK_PORTS - 1, n->slot[0]);
		if (r) {
			check_done(s, false, "cannot steer probes to gen %d: %s", n->id, strerror(-r));
			return;
		}
		st->pinned = true;
	}
	st->check_port = port + 1 >= STAGE_CHECK_LO + STAGE_CHECK_PORTS ? STAGE_CHECK_LO : port + 1;
	st->check_deadline = now + (st->o.check_ms > 1000 ? st->o.check_ms : 1000);
	if (st->o.check_cmd[0]) {
		pid_t pid = fork();

		if (pid == 0) {
			sigset_t none;

			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			probe_addr(s, &dst, &src, &len, port);
			inet_ntop(s->spec[0].family,
				  s->spec[0].family == AF_INET ? (void *)&((struct sockaddr_in *)&dst)->sin_addr
							       : (void *)&((struct sockaddr_in6 *)&dst)->sin6_addr,
				  text, sizeof(text));
			setenv("BATON_CHECK_HOST", text, 1);
			snprintf(text, sizeof(text), "%u", s->spec[0].port);
			setenv("BATON_CHECK_PORT", text, 1);
			snprintf(text, sizeof(text), "%d-%d", STAGE_CHECK_LO, STAGE_CHECK_LO + STAGE_CHECK_PORTS - 1);
			setenv("BATON_CHECK_PORTS", text, 1);
			snprintf(text, sizeof(text), "%d", n->id);
			setenv("BATON_CHECK_GEN", text, 1);
			snprintf(text, sizeof(text), "%d", (int)n->pid);
			setenv("BATON_CHECK_PID", text, 1);
			execl("/bin/sh", "sh", "-c", st->o.check_cmd, (char *)NULL);
			_exit(127);
		}
		if (pid < 0) {
			check_done(s, false, "cannot run the check command: %s", strerror(errno));
			return;
		}
		st->check_pid = pid;
		return;
	}
	probe_addr(s, &dst, &src, &len, port);
	fd = socket(s->spec[0].family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		check_done(s, false, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* a reset on close: the reserved port is free again at once */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ .l_onoff = 1, .l_linger = 0 }, sizeof(struct linger));
	if (bind(fd, (struct sockaddr *)&src, len) ||
	    (connect(fd, (struct sockaddr *)&dst, len) && errno != EINPROGRESS)) {
		r = errno;
		close(fd);
		check_done(s, false, "cannot connect from port %d: %s", port, strerror(r));
		return;
	}
	st->check_fd = fd;
	st->check_sent = false;
	st->check_len = 0;
}

static void check_poll(struct sup *s, long long now)
{
	struct stage *st = &s->stage;
	struct pollfd p = { .fd = st->check_fd, .events = st->check_sent ? POLLIN : POLLOUT };
	char req[256];
	ssize_t got;
	int err = 0, code;
	socklen_t el = sizeof(err);

	if (poll(&p, 1, 0) == 1) {
		if (!st->check_sent) {
			getsockopt(st->check_fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err) {
				check_done(s, false, "connect: %s", strerror(err));
				return;
			}
			snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: baton-check\r\n\r\n",
				 st->o.check_path, st->o.check_host);
			if (send(st->check_fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
				check_done(s, false, "send: %s", strerror(errno));
				return;
			}
			st->check_sent = true;
		} else {
			got = recv(st->check_fd, st->check_buf + st->check_len,
				   sizeof(st->check_buf) - 1 - st->check_len, 0);
			if (got > 0)
				st->check_len += (size_t)got;
			st->check_buf[st->check_len] = '\0';
			if (sscanf(st->check_buf, "HTTP/1.%*d %d", &code) == 1 && strchr(st->check_buf, '\n')) {
				if (code >= 200 && code < 400)
					check_done(s, true, "GET %s: %d", st->o.check_path, code);
				else
					check_done(s, false, "GET %s answered %d", st->o.check_path, code);
				return;
			}
			if (got <= 0 || st->check_len == sizeof(st->check_buf) - 1) {
				check_done(s, false, "GET %s: %s", st->o.check_path,
					   got < 0 ? strerror(errno) : "no HTTP status line");
				return;
			}
		}
	}
	if (now >= st->check_deadline)
		check_done(s, false, "GET %s: no answer within %lld ms", st->o.check_path,
			   st->o.check_ms > 1000 ? st->o.check_ms : 1000);
}

void stage_reaped(struct sup *s, pid_t pid, int status)
{
	struct stage *st = &s->stage;
	char how[128];

	if (pid <= 0 || pid != st->check_pid)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		check_done(s, true, "check command passed");
		return;
	}
	describe_exit(status, how, sizeof(how));
	check_done(s, false, "check command %s", how);
}

static void check_tick(struct sup *s, long long now)
{
	struct stage *st = &s->stage;

	if (!st->o.check_path[0] && !st->o.check_cmd[0])
		return;
	if (st->check_fd > 0) {
		check_poll(s, now);
		return;
	}
	if (st->check_pid > 0) {
		if (now >= st->check_deadline) {
			kill(st->check_pid, SIGKILL);
			check_done(s, false, "check command gave no verdict within %lld ms",
				   st->o.check_ms > 1000 ? st->o.check_ms : 1000);
		}
		return;
	}
	if (now >= st->next_check_ms)
		check_start(s, now);
}

/* ---- the tick ------------------------------------------------------------------------ */

/* The new generation's health, with a watch of its own: stopped or hung is
 * a failure like an exit. Its exit is gen_exited's (keep_gone). */
static bool watch_tick(struct sup *s, long long now)
{
	struct baton_watch_opts wo = { .sz = sizeof(wo), .hang_ms = (uint32_t)s->cfg->hang_ms, .keep_gone = true,
				       .owned_only = true, .log = lib_log, .log_ctx = s };
	struct stage *st = &s->stage;
	struct gen *n = &s->gen[st->new_gi];
	int l;

	if (n->pid <= 0)
		return false;
	if (!st->watch) {
		st->watch = calloc((size_t)s->nl, sizeof(*st->watch));
		if (!st->watch)
			return false;
		for (l = 0; l < s->nl; l++) {
			st->watch[l] = baton_watch_new(s->grp[l], &wo);
			if (st->watch[l] && n->slot[l] >= 0)
				baton_watch_set_owner(st->watch[l], n->slot[l], n->pid);
		}
	}
	for (l = 0; l < s->nl; l++) {
		struct baton_member_health h;

		if (!st->watch[l] || n->slot[l] < 0)
			continue;
		baton_watch_tick(st->watch[l], (uint64_t)now);
		if (!baton_watch_health(st->watch[l], n->slot[l], &h) &&
		    (h.health == BATON_HEALTH_STOPPED || h.health == BATON_HEALTH_HUNG)) {
			char why[160];

			snprintf(why, sizeof(why), "gen %d is unhealthy (%s%s on listener %d)", n->id,
				 baton_health_name(h.health), h.health == BATON_HEALTH_STOPPED ? ", SIGSTOP" : "", l);
			snprintf(n->health, sizeof(n->health), "fenced: %s", baton_health_name(h.health));
			stage_fail(s, why);
			return true;
		}
	}
	return false;
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
