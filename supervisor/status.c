/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton status`: the supervisor's state as text or one JSON document. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bindmode.h"
#include "canary.h"
#include "cmd.h"
#include "core.h"
#include "flows.h"
#include "handoff.h"
#include "metrics.h"
#include "sdnotify.h"
#include "status.h"

static void fmt_time(long long ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* TEXT and a newline, escaped for a terminal. */
static void text_line(FILE *f, const char *text)
{
	baton_text_fputs(f, text, 0);
	fputc('\n', f);
}

static int i_of(const struct sup *s, const struct gen *g)
{
	return (int)(g - s->gen);
}

void write_status(struct sup *s, FILE *f, bool json)
{
	long long now = baton_mono_ms();
	char when[32], spec[256];
	int i, l, first = 1;
	enum baton_mode mode = baton_group_mode(s->grp[0]);

	if (!json) {
		fprintf(f, "%s: supervisor pid %d, steering %s, %d reload%s done, %d failed, %d restart%s\n",
			s->name, (int)getpid(), baton_mode_name(mode), s->reloads_done,
			s->reloads_done == 1 ? "" : "s", s->reloads_failed, s->restarts, s->restarts == 1 ? "" : "s");
		if (s->resumed)
			fprintf(f, "resumed: adopted the generations of a supervisor that died or was upgraded\n");
		if (sup_degraded_text(s)[0]) {
			fprintf(f, "degraded: ");
			text_line(f, sup_degraded_text(s));
		}
		/* words of a command and messages of generations are their
		 * writers' to choose: escaped (baton_text_escape), so no control
		 * sequence reaches the terminal of whoever asks for the status */
		if (s->cmd || s->env) {
			fprintf(f, "command set by a reload:");
			for (char *const *a = cmd_argv(s); *a; a++) {
				fputc(' ', f);
				baton_text_fputs(f, *a, 0);
			}
			for (char *const *e = s->env; e && *e; e++) {
				fprintf(f, "%s", e == s->env ? "; environment: " : " ");
				baton_text_fputs(f, *e, 0);
			}
			fputc('\n', f);
		}
		for (l = 0; l < s->nl; l++) {
			baton_spec_format(&s->spec[l], spec, sizeof(spec));
			fprintf(f, "listener %d: %s (%s)", l, spec, listener_mode(s, l));
			flows_status_listener(s, f, l, false);
			fprintf(f, "\n");
		}
		stage_status(s, f, false);
		fprintf(f, "%-4s %-8s %-9s %-21s %6s %s\n", "gen", "pid", "state", "started", "share",
			"queue/backlog per listener, then tags");
	} else {
		fprintf(f, "{\"version\":1,\"name\":");
		baton_json_str(f, s->name);
		fprintf(f, ",\"pid\":%d,\"mode\":\"%s\",\"reloads_done\":%d,\"reloads_failed\":%d,\"restarts\":%d,",
			(int)getpid(), baton_mode_name(mode), s->reloads_done, s->reloads_failed, s->restarts);
		fprintf(f, "\"service\":\"%s\",\"degraded\":", sup_degraded_text(s)[0] ? "degraded" : "ok");
		baton_json_str(f, sup_degraded_text(s));
		fprintf(f, ",\"state_write_error\":");
		baton_json_str(f, s->state_err);
		fprintf(f, ",\"resumed\":%s,\"state_file\":", s->resumed ? "true" : "false");
		baton_json_str(f, s->state_path);
		fprintf(f, ",\"reloading\":%s,\"stopping\":%s,\"last_reload\":", s->reload >= 0 ? "true" : "false",
			s->stopping ? "true" : "false");
		baton_json_str(f, s->last_reload);
		stage_status(s, f, true);
		fprintf(f, ",\"command\":[");
		for (char *const *a = cmd_argv(s); *a; a++) {
			fprintf(f, "%s", a == cmd_argv(s) ? "" : ",");
			baton_json_str(f, *a);
		}
		fprintf(f, "],\"environment\":[");
		for (char *const *e = s->env; e && *e; e++) {
			fprintf(f, "%s", e == s->env ? "" : ",");
			baton_json_str(f, *e);
		}
		fprintf(f, "],\"listeners\":[");
		for (l = 0; l < s->nl; l++) {
			baton_spec_format(&s->spec[l], spec, sizeof(spec));
			fprintf(f, "%s{\"index\":%d,\"spec\":", l ? "," : "", l);
			baton_json_str(f, spec);
			fprintf(f, ",\"port\":%u,\"mode\":\"%s\"", s->spec[l].port, listener_mode(s, l));
			flows_status_listener(s, f, l, true);
			fprintf(f, "}");
		}
		fprintf(f, "]");
		handoff_status(s, f, true);
		fprintf(f, ",\"generations\":[");
	}
	/* newest first */
	for (int id = s->next_id; id >= 0; id--) {	/* 0: a --takeover server */
		struct gen *g = NULL;

		for (i = 0; i < MAX_GENS; i++)
			if (s->gen[i].state != GEN_FREE && s->gen[i].id == id)
				g = &s->gen[i];
		if (!g)
			continue;
		fmt_time(g->start_wall_ms, when, sizeof(when));
		if (!json) {
			fprintf(f, "%-4d %-8d %-9s %-21s", g->id, (int)g->pid, state_name[g->state], when);
			stage_gen_status(s, f, false, g);
		} else {
			fprintf(f, "%s{\"id\":%d,\"pid\":%d,\"state\":\"%s\",\"started\":\"%s\",\"uptime_ms\":%lld,"
				   "\"ready_after_ms\":%lld,\"exit\":",
				first ? "" : ",", g->id, (int)g->pid, state_name[g->state], when,
				g->pid > 0 ? now - g->start_us / 1000 : 0, g->ready_us ? (g->ready_us - g->start_us) / 1000 : -1);
			baton_json_str(f, g->state == GEN_EXITED ? g->why : "");
			fprintf(f, ",\"health\":");
			baton_json_str(f, g->health);
			handoff_gen_status(s, (int)(g - s->gen), f, true);
			fprintf(f, ",\"bind_mode\":\"%s\"", bindmode_name(s, i_of(s, g)));
			fprintf(f, ",\"adopted\":%s", g->adopted ? "true" : "false");
			stage_gen_status(s, f, true, g);
			fprintf(f, ",\"members\":[");
		}
		first = 0;
		for (l = 0; l < s->nl; l++) {
			struct baton_queue q = { 0 };
			bool have = g->slot[l] >= 0 && baton_group_queue(s->grp[l], g->slot[l], &q) == 0;

			if (!json) {
				/* one cell per listener, padded, so that the tags
				 * after them cannot shift a column */
				char cell[96] = "-";
				FILE *m = fmemopen(cell, sizeof(cell) - 1, "w");

				if (m) {
					if (have)
						fprintf(m, "%u/%u", q.len, q.max);
					else
						fputc('-', m);
					flows_status_member(s, m, g, l, false);
					fclose(m);
				}
				fprintf(f, " %-13s", cell);
			}
			if (json) {
				uint64_t c[CNT_N];

				fprintf(f, "%s{\"listener\":%d,\"slot\":%d", l ? "," : "", l, g->slot[l]);
				uint32_t ppm;

				/* kept after the members left: what a generation served */
				if (gen_counts(s, g, l, c))
					fprintf(f, ",\"steered\":%llu,\"migrated_in\":%llu,\"migrated_out\":%llu",
						(unsigned long long)c[CNT_STEERED], (unsigned long long)c[CNT_MIGRATED_IN],
						(unsigned long long)c[CNT_MIGRATED_OUT]);
				if (g->slot[l] >= 0 && baton_group_share(s->grp[l], g->slot[l], &ppm) == 0)
					fprintf(f, ",\"share_pct\":%.1f", ppm / 10000.0);
				if (have)
					fprintf(f, ",\"queue\":%u,\"backlog\":%u", q.len, q.max);
				else
					fprintf(f, ",\"queue\":null,\"backlog\":null");
				flows_status_member(s, f, g, l, true);
				fprintf(f, "}");
			}
		}
		if (!json) {
			fprintf(f, " [%s]", bindmode_name(s, i_of(s, g)));
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
			} else
				fputc('\n', f);
		} else
			fprintf(f, "]}");
	}
	if (json)
		fprintf(f, "]}\n");
	else if (s->last_reload[0]) {
		fprintf(f, "last reload: ");
		text_line(f, s->last_reload);
	}
	if (!json)
		handoff_status(s, f, false);
}

