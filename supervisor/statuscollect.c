/* SPDX-License-Identifier: BSD-2-Clause */
/* The one reader of the supervisor's state for `baton status` and its
 * metrics: fills a status_view (statusview.h) that statusfmt.c and
 * metricsfmt.c render, each from the same records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bindmode.h"
#include "cmd.h"
#include "flows.h"
#include "metrics.h"
#include "sdnotify.h"
#include "status.h"
#include "statusview.h"
#include "util.h"

static void collect_flows(struct sup *s, int l, struct sv_flows *out)
{
	const struct baton_flow_stats *st;

	out->mode = sup_flows_mode(s, l);
	out->idle_ms = s->cfg->flows ? s->cfg->flows[l].idle_ms : BATON_FLOW_IDLE_DEFAULT_MS;
	st = flows_stats(s, l);
	if (!st)
		return;
	out->have = true;
	out->table = st->table;
	out->entries = st->entries;
	out->live = st->live;
	out->followed = st->followed;
	out->by_cid = st->by_cid;
	out->created = st->created;
	out->expired = st->expired;
	out->evicted = st->evicted;
	out->insert_failed = st->insert_failed;
}

static void collect_listener(struct sup *s, int l, enum sv_form form, struct sv_listener *out)
{
	baton_spec_format(&s->spec[l], out->spec, sizeof(out->spec));
	out->port = s->spec[l].port;
	out->mode = listener_mode(s, l);
	out->udp = s->spec[l].proto == BATON_PROTO_UDP;
	if (out->udp && form != SV_METRICS)	/* a pass over the flow table */
		collect_flows(s, l, &out->flows);
}

/* What FORM shows of G's member on listener L: each read is a system
 * call per member, and a supervisor may have thousands of listeners. */
static void collect_member(struct sup *s, const struct gen *g, int l, enum sv_form form, struct sv_member *m)
{
	struct baton_queue q = { 0 };
	const struct baton_flow_stats *st;

	m->slot = g->slot[l];
	m->quic_cid_byte = -1;
	/* kept after the members left: what a generation served */
	m->counted = form != SV_TEXT && gen_counts(s, g, l, m->count);
	m->has_share = (form == SV_JSON || (form == SV_TEXT && l == 0)) && g->slot[l] >= 0 &&
		       baton_group_share(s->grp[l], g->slot[l], &m->share_ppm) == 0;
	m->has_queue = g->slot[l] >= 0 && baton_group_queue(s->grp[l], g->slot[l], &q) == 0;
	m->queue = q.len;
	m->backlog = q.max;
	st = form != SV_METRICS && sup_flows_mode(s, l) != BATON_FLOWS_OFF ? flows_stats(s, l) : NULL;
	m->has_flows = st && g->slot[l] >= 0;
	if (!m->has_flows)
		return;
	m->flows = st->per_slot[g->slot[l]];
	if (sup_flows_mode(s, l) == BATON_FLOWS_QUIC)
		m->quic_cid_byte = flows_marker(g->id);
}

static void collect_gen(struct sup *s, const struct gen *g, long long now, enum sv_form form, struct sv_gen *out)
{
	int gi = (int)(g - s->gen);

	out->id = g->id;
	out->pid = (int)g->pid;
	out->state = g->state;
	out->start_wall_ms = g->start_wall_ms;
	out->uptime_ms = g->pid > 0 ? now - g->start_us / 1000 : 0;
	out->ready_after_ms = g->ready_us ? (g->ready_us - g->start_us) / 1000 : -1;
	out->why = g->why;
	out->health = g->health;
	out->bind_mode = bindmode_name(s, gi);
	out->adopted = g->adopted;
	out->has_handoff = handoff_gen_view(s, gi, &out->handoff);
	for (int l = 0; l < s->nl; l++)
		collect_member(s, g, l, form, &out->m[l]);
}

static void collect_stage(const struct sup *s, long long now, struct sv_stage *out)
{
	const struct stage *st = &s->stage;

	out->kind = st->kind;
	out->gen = st->new_id;
	out->old_gen = st->old_id;
	out->pct = st->pct;
	out->step_ms = st->o.step_ms;
	out->age_ms = now - st->since_ms;
	out->next_step_in_ms = st->next_step_ms - now;
	out->probation_left_ms = st->until_ms - now;
	out->check = st->o.check_path[0] ? st->o.check_path : st->o.check_cmd;
	out->checks_passed = st->checks_ok;
	out->checks_failed = st->checks_failed;
	out->check_last = st->check_last;
	out->last = st->last;
}

/* The generations that are not free, newest first (0: a --takeover
 * server); of two with one id, the later in the table. */
static int pick_gens(const struct sup *s, const struct gen **out)
{
	int n = 0;

	for (int id = s->next_id; id >= 0; id--) {
		const struct gen *g = NULL;

		for (int i = 0; i < MAX_GENS; i++)
			if (s->gen[i].state != GEN_FREE && s->gen[i].id == id)
				g = &s->gen[i];
		if (g)
			out[n++] = g;
	}
	return n;
}

static void collect_sup(struct sup *s, struct status_view *v)
{
	v->name = s->name;
	v->version = BATON_VERSION;
	v->pid = (int)getpid();
	v->mode = baton_group_mode(s->grp[0]);
	v->reloads_done = s->reloads_done;
	v->reloads_failed = s->reloads_failed;
	v->restarts = s->restarts;
	v->degraded = sup_degraded_text(s);
	v->state_err = s->state_err;
	v->state_file = s->state_path;
	v->last_reload = s->last_reload;
	v->resumed = s->resumed;
	v->reloading = s->reload >= 0;
	v->stopping = s->stopping;
	v->command_set = s->cmd || s->env;
	v->argv = cmd_argv(s);
	v->env = s->env;
	v->serving = s->active >= 0 ? s->gen[s->active].id : -1;
	v->has_handoff = handoff_view(s, &v->handoff);
}

int status_collect(struct sup *s, enum sv_form form, struct status_view *v)
{
	const struct gen *g[MAX_GENS];
	long long now = baton_mono_ms();
	int n = pick_gens(s, g);

	memset(v, 0, sizeof(*v));
	v->l = calloc((size_t)(s->nl > 0 ? s->nl : 1), sizeof(*v->l));
	v->gen = calloc((size_t)(n > 0 ? n : 1), sizeof(*v->gen));
	if (!v->l || !v->gen)
		goto fail;
	for (int i = 0; i < n; i++) {
		v->gen[i].m = calloc((size_t)(s->nl > 0 ? s->nl : 1), sizeof(*v->gen[i].m));
		if (!v->gen[i].m)
			goto fail;
		v->ngen++;
	}
	collect_sup(s, v);
	/* the steering set's counters: only the JSON shows them */
	v->has_set = form == SV_JSON && s->set && baton_steerset_stats(s->set, &v->set, sizeof(v->set)) > 0;
	collect_stage(s, now, &v->stage);
	v->nl = s->nl;
	for (int l = 0; l < s->nl; l++)
		collect_listener(s, l, form, &v->l[l]);
	for (int i = 0; i < n; i++)
		collect_gen(s, g[i], now, form, &v->gen[i]);
	metrics_view(s, v);
	return 0;
fail:
	status_view_free(v);
	return -ENOMEM;
}

void status_view_free(struct status_view *v)
{
	for (int i = 0; v->gen && i < v->ngen; i++)
		free(v->gen[i].m);
	free(v->gen);
	free(v->l);
	memset(v, 0, sizeof(*v));
}

/* `baton status` and --metrics, as the control socket and --metrics-listen
 * answer them. Without memory for the records, the answer says so. */
void write_status(struct sup *s, FILE *f, bool json)
{
	struct status_view v;

	if (status_collect(s, json ? SV_JSON : SV_TEXT, &v)) {
		say_err(s, "status: out of memory");
		fprintf(f, json ? "{\"version\":1,\"error\":\"out of memory\"}\n" : "error: out of memory\n");
		return;
	}
	if (json)
		status_render_json(f, &v);
	else
		status_render_text(f, &v);
	status_view_free(&v);
}

void write_metrics(struct sup *s, FILE *f)
{
	struct status_view v;

	if (status_collect(s, SV_METRICS, &v)) {
		say_err(s, "metrics: out of memory");
		fprintf(f, "# out of memory\n");
		return;
	}
	status_render_metrics(f, &v);
	status_view_free(&v);
}
