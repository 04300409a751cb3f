/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton status` from a status_view (statusview.h): the table for a
 * terminal, and one JSON document. Reads the records only, so that tests
 * render records they built (tests/unit/test_status_render.c). */
#include <stdio.h>
#include <time.h>

#include "statusview.h"
#include "util.h"

static const char *const stage_kind_name[] = { "none", "canary", "probation" };

static const char *flows_mode_name(enum baton_flows m)
{
	return m == BATON_FLOWS_QUIC ? "quic" : m == BATON_FLOWS_ON ? "on" : "off";
}

static void fmt_time(long long ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- text ------------------------------------------------------------------- */

/* TEXT and a newline, escaped for a terminal. */
static void text_line(FILE *f, const char *text)
{
	baton_text_fputs(f, text, 0);
	fputc('\n', f);
}

static void text_head(FILE *f, const struct status_view *v)
{
	fprintf(f, "%s: supervisor pid %d, steering %s, %d reload%s done, %d failed, %d restart%s\n", v->name, v->pid,
		baton_mode_name(v->mode), v->reloads_done, v->reloads_done == 1 ? "" : "s", v->reloads_failed,
		v->restarts, v->restarts == 1 ? "" : "s");
	if (v->resumed)
		fprintf(f, "resumed: adopted the generations of a supervisor that died or was upgraded\n");
	if (v->degraded[0]) {
		fprintf(f, "degraded: ");
		text_line(f, v->degraded);
	}
	/* words of a command and messages of generations are their writers' to
	 * choose: escaped (baton_text_escape), so no control sequence reaches
	 * the terminal of whoever asks for the status */
	if (v->command_set) {
		fprintf(f, "command set by a reload:");
		for (char *const *a = v->argv; a && *a; a++) {
			fputc(' ', f);
			baton_text_fputs(f, *a, 0);
		}
		for (char *const *e = v->env; e && *e; e++) {
			fprintf(f, "%s", e == v->env ? "; environment: " : " ");
			baton_text_fputs(f, *e, 0);
		}
		fputc('\n', f);
	}
}

static void text_listener(FILE *f, int index, const struct sv_listener *l)
{
	const struct sv_flows *fl = &l->flows;

	fprintf(f, "listener %d: %s (%s)", index, l->spec, l->mode);
	if (l->udp && !fl->have)
		fprintf(f, " (flows %s)", fl->mode == BATON_FLOWS_OFF ? "off: every datagram steered on its own"
								: "unavailable: classic BPF steers every datagram");
	else if (l->udp)
		fprintf(f, " (flows %s: %u live, table %u; table full: %llu evicted, %llu steered without an entry)",
			flows_mode_name(fl->mode), fl->live, fl->table, (unsigned long long)fl->evicted,
			(unsigned long long)fl->insert_failed);
	fprintf(f, "\n");
}

static void text_stage(FILE *f, const struct sv_stage *st)
{
	if (st->kind == STAGE_CANARY)
		fprintf(f, "canary: gen %d takes %d%% beside gen %d for %lld ms%s", st->gen, st->pct, st->old_gen,
			st->age_ms, st->step_ms ? "" : "; baton promote or rollback decides");
	else if (st->kind == STAGE_PROBATION)
		fprintf(f, "probation: gen %d serves, gen %d stands by for %lld ms more", st->gen, st->old_gen,
			st->probation_left_ms);
	if (st->kind != STAGE_NONE && st->step_ms)
		fprintf(f, "; next step in %lld ms", st->next_step_in_ms);
	if (st->kind != STAGE_NONE && st->check[0])
		fprintf(f, "; check %s: %d passed, %d failed", st->check, st->checks_passed, st->checks_failed);
	if (st->kind != STAGE_NONE)
		fprintf(f, "\n");
	if (st->last[0])
		fprintf(f, "last stage: %s\n", st->last);
}

/* One cell per listener, padded, so that the tags after them cannot shift
 * a column. */
static void text_member(FILE *f, const struct sv_member *m)
{
	char cell[96] = "-";
	FILE *c = fmemopen(cell, sizeof(cell) - 1, "w");

	if (c) {
		if (m->has_queue)
			fprintf(c, "%u/%u", m->queue, m->backlog);
		else
			fputc('-', c);
		if (m->has_flows)
			fprintf(c, " flows %u", m->flows);
		fclose(c);
	}
	fprintf(f, " %-13s", cell);
}

static void text_gen(FILE *f, const struct status_view *v, const struct sv_gen *g)
{
	char when[32];

	fmt_time(g->start_wall_ms, when, sizeof(when));
	fprintf(f, "%-4d %-8d %-9s %-21s", g->id, g->pid, state_name[g->state], when);
	if (v->nl > 0 && g->m[0].has_share)
		fprintf(f, " %5.1f%%", g->m[0].share_ppm / 10000.0);
	else
		fprintf(f, " %6s", "-");
	for (int l = 0; l < v->nl; l++)
		text_member(f, &g->m[l]);
	fprintf(f, " [%s]", g->bind_mode);
	if (g->adopted)
		fprintf(f, " [adopted]");
	if (g->health[0]) {
		fprintf(f, " [");
		baton_text_fputs(f, g->health, 0);
		fprintf(f, "]");
	}
	if (g->state == GEN_EXITED) {
		fprintf(f, "  ");
		text_line(f, g->why);
	} else {
		fputc('\n', f);
	}
}

void status_render_text(FILE *f, const struct status_view *v)
{
	const struct sv_handoff *h = &v->handoff;

	text_head(f, v);
	for (int l = 0; l < v->nl; l++)
		text_listener(f, l, &v->l[l]);
	text_stage(f, &v->stage);
	fprintf(f, "%-4s %-8s %-9s %-21s %6s %s\n", "gen", "pid", "state", "started", "share",
		"queue/backlog per listener, then tags");
	for (int i = 0; i < v->ngen; i++)
		text_gen(f, v, &v->gen[i]);
	if (v->last_reload[0]) {
		fprintf(f, "last reload: ");
		text_line(f, v->last_reload);
	}
	if (v->has_handoff)
		/* a failed take is also the supervisor's expired or failed wake: not counted twice */
		fprintf(f, "handoff: %llu idle connection%s handed off, %llu answer%s on them, %llu failed, "
			   "%d in flight\n", h->handed_off, h->handed_off == 1 ? "" : "s", h->answered,
			h->answered == 1 ? "" : "s", h->no_target + h->limit + h->expired + h->wake_failed + h->unreachable,
			h->pending);
}

/* ---- JSON ------------------------------------------------------------------- */

static const char *json_bool(bool b)
{
	return b ? "true" : "false";
}

static void json_strv(FILE *f, char *const *v)
{
	fputc('[', f);
	for (char *const *p = v; p && *p; p++) {
		fprintf(f, "%s", p == v ? "" : ",");
		baton_json_str(f, *p);
	}
	fputc(']', f);
}

static void json_stage(FILE *f, const struct sv_stage *st)
{
	fprintf(f, ",\"stage\":{\"kind\":\"%s\"", stage_kind_name[st->kind]);
	if (st->kind != STAGE_NONE) {
		fprintf(f, ",\"gen\":%d,\"old_gen\":%d,\"canary_pct\":%d,\"step_ms\":%lld,\"next_step_in_ms\":%lld,"
			   "\"probation_left_ms\":%lld,\"since_ms\":%lld,\"check\":",
			st->gen, st->old_gen, st->kind == STAGE_CANARY ? st->pct : 100, st->step_ms,
			st->kind == STAGE_CANARY && st->step_ms ? st->next_step_in_ms : -1,
			st->kind == STAGE_PROBATION ? st->probation_left_ms : -1, st->age_ms);
		baton_json_str(f, st->check);
		fprintf(f, ",\"checks_passed\":%d,\"checks_failed\":%d,\"check_last\":", st->checks_passed,
			st->checks_failed);
		baton_json_str(f, st->check_last);
	}
	fprintf(f, ",\"last\":");
	baton_json_str(f, st->last);
	fprintf(f, "}");
}

static void json_flows(FILE *f, const struct sv_listener *l)
{
	const struct sv_flows *fl = &l->flows;

	if (!l->udp)
		fprintf(f, ",\"flows\":null");
	else if (!fl->have)
		fprintf(f, ",\"flows\":{\"mode\":\"%s\",\"table\":0}", fl->mode == BATON_FLOWS_OFF ? "off" : "unavailable");
	else
		fprintf(f, ",\"flows\":{\"mode\":\"%s\",\"table\":%u,\"idle_ms\":%llu,\"entries\":%u,\"live\":%u,"
			   "\"followed\":%llu,\"by_cid\":%llu,\"created\":%llu,\"expired\":%llu,\"evicted\":%llu,"
			   "\"insert_failed\":%llu}",
			flows_mode_name(fl->mode), fl->table, (unsigned long long)fl->idle_ms, fl->entries, fl->live,
			(unsigned long long)fl->followed, (unsigned long long)fl->by_cid, (unsigned long long)fl->created,
			(unsigned long long)fl->expired, (unsigned long long)fl->evicted,
			(unsigned long long)fl->insert_failed);
}

static void json_head(FILE *f, const struct status_view *v)
{
	fprintf(f, "{\"version\":1,\"name\":");
	baton_json_str(f, v->name);
	fprintf(f, ",\"pid\":%d,\"mode\":\"%s\",\"reloads_done\":%d,\"reloads_failed\":%d,\"restarts\":%d,", v->pid,
		baton_mode_name(v->mode), v->reloads_done, v->reloads_failed, v->restarts);
	fprintf(f, "\"service\":\"%s\",\"degraded\":", v->degraded[0] ? "degraded" : "ok");
	baton_json_str(f, v->degraded);
	fprintf(f, ",\"state_write_error\":");
	baton_json_str(f, v->state_err);
	fprintf(f, ",\"resumed\":%s,\"state_file\":", json_bool(v->resumed));
	baton_json_str(f, v->state_file);
	fprintf(f, ",\"reloading\":%s,\"stopping\":%s,\"last_reload\":", json_bool(v->reloading),
		json_bool(v->stopping));
	baton_json_str(f, v->last_reload);
	json_stage(f, &v->stage);
	fprintf(f, ",\"command\":");
	json_strv(f, v->argv);
	fprintf(f, ",\"environment\":");
	json_strv(f, v->env);
	if (v->has_set)
		fprintf(f, ",\"steering_set\":{\"listeners\":%u,\"banks\":%u,\"commits\":%llu,\"bank_waits\":%llu}",
			v->set.listeners, v->set.banks, (unsigned long long)v->set.commits,
			(unsigned long long)v->set.bank_waits);
	fprintf(f, ",\"listeners\":[");
	for (int l = 0; l < v->nl; l++) {
		fprintf(f, "%s{\"index\":%d,\"spec\":", l ? "," : "", l);
		baton_json_str(f, v->l[l].spec);
		fprintf(f, ",\"port\":%u,\"mode\":\"%s\"", v->l[l].port, v->l[l].mode);
		json_flows(f, &v->l[l]);
		fprintf(f, "}");
	}
	fprintf(f, "]");
}

static void json_handoff(FILE *f, const struct status_view *v)
{
	const struct sv_handoff *h = &v->handoff;

	if (!v->has_handoff) {
		fprintf(f, ",\"handoff\":null");
		return;
	}
	/* a failed take is also the supervisor's expired or failed wake: not counted twice */
	fprintf(f, ",\"handoff\":{\"offered\":%llu,\"handed_off\":%llu,\"answered\":%llu,\"failed\":%llu,"
		   "\"failed_no_target\":%llu,\"failed_limit\":%llu,\"failed_expired\":%llu,\"failed_wake\":%llu,"
		   "\"failed_unreachable\":%llu,\"failed_take\":%llu,\"refused\":%llu,\"pending\":%d}",
		h->offered, h->handed_off, h->answered,
		h->no_target + h->limit + h->expired + h->wake_failed + h->unreachable, h->no_target, h->limit,
		h->expired, h->wake_failed, h->unreachable, h->take_failed, h->refused, h->pending);
}

static void json_member(FILE *f, int l, const struct sv_member *m)
{
	fprintf(f, "%s{\"listener\":%d,\"slot\":%d", l ? "," : "", l, m->slot);
	if (m->counted)
		fprintf(f, ",\"steered\":%llu,\"migrated_in\":%llu,\"migrated_out\":%llu",
			(unsigned long long)m->count[CNT_STEERED], (unsigned long long)m->count[CNT_MIGRATED_IN],
			(unsigned long long)m->count[CNT_MIGRATED_OUT]);
	if (m->has_share)
		fprintf(f, ",\"share_pct\":%.1f", m->share_ppm / 10000.0);
	if (m->has_queue)
		fprintf(f, ",\"queue\":%u,\"backlog\":%u", m->queue, m->backlog);
	else
		fprintf(f, ",\"queue\":null,\"backlog\":null");
	if (m->has_flows)
		fprintf(f, ",\"flows\":%u", m->flows);
	else
		fprintf(f, ",\"flows\":null");
	if (m->quic_cid_byte >= 0)
		fprintf(f, ",\"quic_cid_byte\":%d", m->quic_cid_byte);
	fprintf(f, "}");
}

static void json_gen(FILE *f, const struct status_view *v, const struct sv_gen *g, bool first)
{
	char when[32];

	fmt_time(g->start_wall_ms, when, sizeof(when));
	fprintf(f, "%s{\"id\":%d,\"pid\":%d,\"state\":\"%s\",\"started\":\"%s\",\"uptime_ms\":%lld,"
		   "\"ready_after_ms\":%lld,\"exit\":",
		first ? "" : ",", g->id, g->pid, state_name[g->state], when, g->uptime_ms, g->ready_after_ms);
	baton_json_str(f, g->state == GEN_EXITED ? g->why : "");
	fprintf(f, ",\"health\":");
	baton_json_str(f, g->health);
	if (g->has_handoff)
		fprintf(f, ",\"handoff\":{\"in\":%llu,\"out\":%llu,\"answered\":%llu}", g->handoff.in, g->handoff.out,
			g->handoff.answered);
	else
		fprintf(f, ",\"handoff\":null");
	fprintf(f, ",\"bind_mode\":\"%s\"", g->bind_mode);
	fprintf(f, ",\"adopted\":%s", json_bool(g->adopted));
	if (v->nl > 0 && g->m[0].has_share)
		fprintf(f, ",\"share_pct\":%.1f", g->m[0].share_ppm / 10000.0);
	else
		fprintf(f, ",\"share_pct\":null");
	fprintf(f, ",\"members\":[");
	for (int l = 0; l < v->nl; l++)
		json_member(f, l, &g->m[l]);
	fprintf(f, "]}");
}

void status_render_json(FILE *f, const struct status_view *v)
{
	json_head(f, v);
	json_handoff(f, v);
	fprintf(f, ",\"generations\":[");
	for (int i = 0; i < v->ngen; i++)
		json_gen(f, v, &v->gen[i], i == 0);
	fprintf(f, "]}\n");
}
