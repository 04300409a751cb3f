/* SPDX-License-Identifier: BSD-2-Clause */
/* The feature hook table (feature.h): one row per feature, in the order the
 * core calls them. This file is the only one that names every feature; the
 * core (gen.c, sup.c, state.c, resume.c, orphans.c) sees only the table. */

#include "bindmode.h"
#include "canary.h"
#include "core.h"
#include "feature.h"
#include "flows.h"
#include "handoff.h"
#include "health.h"
#include "metrics.h"
#include "mhttp.h"
#include "sdnotify.h"
#include "spare.h"
#include "takeover.h"

/* Adapters where a feature's own function has another shape or a
 * condition of its own. */

static int flows_start(struct sup *s, int gi)
{
	flows_gen_start(s, &s->gen[gi]);
	return 0;
}

static void flows_drain(struct sup *s, struct gen *g, long long now)
{
	if (g->flow_wait)
		flows_check(s, g, now);
}

/* systemd: the .socket unit's sockets are never fenced, so they are known
 * before a generation starts or the supervisor stops */
static int sdn_start(struct sup *s, int gi)
{
	(void)gi;
	sdn_mark_foreign(s);
	return 0;
}

static void sdn_begin_stop(struct sup *s)
{
	sdn_stopping(s);
	sdn_mark_foreign(s);
	sdn_stop_to_unit(s);
}

static void sdn_joined(struct sup *s, struct gen *g, int l, bool fresh)
{
	if (fresh)
		sdn_store(s, l, baton_group_fd(s->grp[l], g->slot[l]));
}

static bool sdn_keep(struct sup *s, struct gen *g, int l)
{
	sdn_unstore_fd(s, l, baton_group_fd(s->grp[l], g->slot[l]));
	return sdn_park_unit(s, g, l);	/* systemd's socket: never shut down nor closed */
}

static void sdn_drain(struct sup *s, struct gen *g, long long now)
{
	if (g->unit_wait)
		sdn_unit_wait_check(s, g, now);
}

static void sdn_close(struct sup *s, bool clean)
{
	if (clean)
		sdn_release_unit(s);
}

static bool stage_claims_reaped(struct sup *s, pid_t pid, int status)
{
	stage_reaped(s, pid, status);	/* a --check-cmd probe */
	return true;
}

static bool stage_keeps(const struct sup *s, int id)
{
	(void)s;
	return stage_resuming(id);
}

static int takeover_gen0(struct sup *s)
{
	return s->cfg->ntakeover ? takeover_collect(s) : 0;
}

static bool takeover_extra(struct sup *s, int gi, int l, int slot, ino_t ino)
{
	return !takeover_add_member(s, gi, l, slot, ino);
}

static void takeover_released(struct sup *s, struct gen *g)
{
	if (g->id == 0 && s->ntkm)
		takeover_release(s, g, true);
}

static bool takeover_stop_signal(struct sup *s, struct gen *g)
{
	if (g->id != 0)
		return false;
	takeover_signal(s, g);	/* --takeover-signal, to every --takeover PID */
	return true;
}

static void health_drain(struct sup *s, struct gen *g, long long now)
{
	if (g->idle_wait)
		idle_check(s, g, now);
}

static void health_drain_watch(struct sup *s, struct gen *g, long long now)
{
	if (!s->stopping && !g->flow_wait)	/* a UDP queue is no sign it stopped */
		watch_drain(s, g, now);
}

static bool mhttp_take(struct sup *s, uint32_t tag)
{
	if (tag < EV_MHTTP || tag > EV_MHTTP + MHTTP_CLIENTS)
		return false;
	mhttp_event(s, tag - EV_MHTTP);
	return true;
}

static int handoff_start(struct sup *s, int gi)
{
	handoff_gen_start(s, gi);
	return 0;
}

static int handoff_opened(struct sup *s)
{
	handoff_open(s);	/* without it, idle connections are closed as before: said, not fatal */
	return 0;
}

static bool handoff_take(struct sup *s, uint32_t tag)
{
	if (tag < EV_HANDOFF || tag >= EV_HANDOFF + MAX_GENS)
		return false;
	handoff_read(s, tag);
	return true;
}

static bool bindmode_take(struct sup *s, uint32_t tag)
{
	if (tag != EV_BINDHOOK)
		return false;
	bindmode_events(s);
	return true;
}

static void metrics_joined(struct sup *s, struct gen *g, int l, bool fresh)
{
	(void)fresh;
	count_join(s, g, l);
}

static void mhttp_closed(struct sup *s, bool clean)
{
	(void)clean;
	mhttp_close(s);
}

/* One row per feature; hooks a feature does not need are NULL. */
static const struct sup_feature flows_row = {
	.name = "flows", .free = flows_fini, .group_opts = flows_group_opts, .gen_start = flows_start,
	.hold_stop = flows_hold, .drain_wait = flows_drain,
};

static const struct sup_feature sdnotify_row = {
	.name = "sd_notify", .intake = sdn_init, .serving = sdn_ready, .close = sdn_close, .free = sdn_free,
	.passed = sdn_passed, .member_fd = sdn_member_fd, .dup_ino = sdn_dup_ino, .ours = sdn_ours,
	.mark_ours = sdn_mark_ours, .member_joined = sdn_joined, .member_keep = sdn_keep, .gen_start = sdn_start,
	.hold_stop = sdn_unit_hold, .drain_wait = sdn_drain, .stopping = sdn_begin_stop,
	.reload_begin = sdn_reloading, .reload_end = sdn_reload_end, .saved = sdn_status,
};

static const struct sup_feature stage_row = {
	.name = "canary/probation", .busy = stage_busy, .fini = stage_fini, .claim_ready = stage_ready,
	.keep_old = stage_keep_old, .gen_exited = stage_gen_exited, .reaped = stage_claims_reaped,
	.admit = stage_admit, .reload_started = stage_started, .reload_end = stage_reload_finished,
	.save = stage_save, .load_line = stage_load_line, .resuming = stage_keeps, .resumed = stage_resume,
};

static const struct sup_feature takeover_row = {
	.name = "takeover", .gen0 = takeover_gen0, .give_back = takeover_abandon, .free = takeover_pids_free,
	.member_extra = takeover_extra, .members_released = takeover_released, .stop_signal = takeover_stop_signal,
};

static const struct sup_feature health_row = {
	.name = "health watch", .tick = health_tick, .wait_ms = health_wait_ms, .event = health_event, .free = health_fini, .hold_stop = stop_when_idle, .drain_wait = health_drain,
	.drain_watch = health_drain_watch, .after_reap = children_stopped,
};

static const struct sup_feature mhttp_row = {
	.name = "metrics listener", .open = mhttp_open, .event = mhttp_take, .tick = mhttp_tick, .busy = mhttp_busy,
	.close = mhttp_closed,
};

static const struct sup_feature handoff_row = {
	.name = "handoff", .open = handoff_opened, .event = handoff_take, .tick = handoff_tick,
	.busy = handoff_busy, .close = handoff_close, .gen_start = handoff_start, .gen_stop = handoff_gen_stop,
};

static const struct sup_feature bindmode_row = {
	.name = "bind mode", .setup = bindmode_setup, .event = bindmode_take, .tick = bindmode_tick,
	.close = bindmode_fini, .binds_own = bindmode_cgroup, .gen_start = bindmode_gen_start,
	.gen_end = bindmode_gen_end, .gen_mode = bindmode_name, .hold_ready = bindmode_hold_ready,
};

static const struct sup_feature metrics_row = {
	.name = "metrics", .init = metrics_init, .free = metrics_fini, .member_joined = metrics_joined,
	.member_left = count_leave, .gen_forget = metrics_forget, .reload_counted = metrics_reload,
	.save = metrics_save, .load_line = metrics_load_line, .loaded = metrics_resume,
};

static const struct sup_feature spare_row = {
	.name = "spare members", .serving = spare_arm, .tick = spare_tick, .wait_ms = spare_wait_ms,
	.member_spare = spare_take, .reload_started = spare_started, .reload_end = spare_arm_after,
	.stopping = spare_drop_all, .close = spare_closed, .fini = spare_fini,
};

/* The order is part of the behaviour:
 * - a stop (hold_stop): UDP flows hold the signal first, then the .socket
 *   unit's sockets, then --stop-when-idle; the handoff of idle connections
 *   (gen_stop) runs before any of them and before the signal;
 * - readiness: the bind mode holds it (hold_ready) until the generation
 *   listens; then the canary stage claims a reload's ready generation
 *   (claim_ready) before gen.c switches to it;
 * - a generation's start: flows, the unit's sockets marked, the handoff
 *   socket, and last the bind mode's cgroup, which alone can fail;
 * - the state file: the stage's lines before the metrics' (save, load_line);
 * - a reload's end: systemd hears READY=1 before the stage ends;
 * - each tick: the health watch first (it may start a replacement), the
 *   spare members last (they look at what the watch left);
 * - teardown (free): flows, systemd, takeover, metrics.
 * Hooks not named here do not depend on the order. */
const struct sup_feature *const sup_features[] = {
	&flows_row, &sdnotify_row, &stage_row, &takeover_row, &health_row, &mhttp_row, &handoff_row, &bindmode_row,
	&metrics_row, &spare_row,
};
const size_t sup_nfeatures = sizeof(sup_features) / sizeof(sup_features[0]);
