/* SPDX-License-Identifier: BSD-2-Clause */
/* Per-generation connection counters taken from the steering program's
 * per-slot counters, kept when a generation's members leave the group, and
 * `baton status --metrics`: the Prometheus text exposition format. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static bool slot_counts(struct sup *s, int l, int slot, uint64_t out[CNT_N])
{
	struct baton_slot_stats st;

	memset(out, 0, CNT_N * sizeof(*out));
	if (slot < 0 || baton_group_stats_info(s->grp[l], slot, &st, sizeof(st)) < 0)
		return false;
	out[CNT_STEERED] = st.selected;
	out[CNT_MIGRATED_IN] = st.migrated;
	out[CNT_MIGRATED_OUT] = st.migrated_out;
	return true;
}

void count_join(struct sup *s, struct gen *g, int l)
{
	slot_counts(s, l, g->slot[l], g->count[l].base);
}

/* A slot's counters only grow while one member holds it; a map that did
 * not survive (a resume without pins) starts again from 0. */
static uint64_t since(uint64_t now, uint64_t base)
{
	return now >= base ? now - base : now;
}

void count_leave(struct sup *s, struct gen *g, int l)
{
	uint64_t now[CNT_N];
	struct gen_count *c = &g->count[l];

	if (slot_counts(s, l, g->slot[l], now))
		for (int k = 0; k < CNT_N; k++)
			c->acc[k] += since(now[k], c->base[k]);
	memset(c->base, 0, sizeof(c->base));
}

bool gen_counts(struct sup *s, const struct gen *g, int l, uint64_t out[CNT_N])
{
	uint64_t now[CNT_N];
	const struct gen_count *c = &g->count[l];
	bool live = slot_counts(s, l, g->slot[l], now);

	if (baton_group_mode(s->grp[l]) != BATON_MODE_EBPF || (s->shared && s->shared[l] >= 0))
		return false;	/* no program counts for it: classic BPF, or one socket shared by all */
	for (int k = 0; k < CNT_N; k++)
		out[k] = c->acc[k] + (live ? since(now[k], c->base[k]) : 0);
	return true;
}

/* ---- Prometheus text format ------------------------------------------------ */

/* A label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *text)
{
	fputc('"', f);
	for (const char *p = text; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void head(FILE *f, const char *metric, const char *type, const char *help)
{
	fprintf(f, "# HELP baton_%s %s\n# TYPE baton_%s %s\n", metric, help, metric, type);
}

/* The generations still known, oldest first (status shows newest first;
 * a scrape reads better in id order). */
static int known_gens(struct sup *s, struct gen **out)
{
	int n = 0;

	for (int id = 0; id <= s->next_id; id++)	/* 0: a --takeover server */
		for (int i = 0; i < MAX_GENS; i++)
			if (s->gen[i].state != GEN_FREE && s->gen[i].id == id)
				out[n++] = &s->gen[i];
	return n;
}

static void gen_labels(FILE *f, struct sup *s, const struct gen *g)
{
	fputs("{name=", f);
	label(f, s->name);
	fprintf(f, ",generation=\"%d\"", g->id);
}

void write_metrics(struct sup *s, FILE *f)
{
	static const char *const counter[CNT_N][2] = {
		{ "generation_connections_steered_total",
		  "New connections the steering program sent to the generation's listening socket." },
		{ "generation_connections_migrated_in_total",
		  "Queued connections moved to the generation from a closing or fenced listening socket." },
		{ "generation_connections_migrated_out_total",
		  "Queued connections moved away from the generation's listening socket when it closed or was fenced." },
	};
	struct gen *gens[MAX_GENS];
	int n = known_gens(s, gens), i, l, k;
	char spec[256];

	head(f, "up", "gauge", "1 while the supervisor answers.");
	fputs("baton_up{name=", f);
	label(f, s->name);
	fprintf(f, ",mode=\"%s\"} 1\n", baton_mode_name(baton_group_mode(s->grp[0])));
	head(f, "degraded", "gauge", "1 while the service is degraded (no healthy generation could replace an "
				    "unhealthy one).");
	fputs("baton_degraded{name=", f);
	label(f, s->name);
	fprintf(f, "} %d\n", sup_degraded_text(s)[0] ? 1 : 0);
	head(f, "state_write_failing", "gauge", "1 while the state file cannot be written (a supervisor started "
						"after a crash may not resume); retried with back-off.");
	fputs("baton_state_write_failing{name=", f);
	label(f, s->name);
	fprintf(f, "} %d\n", s->state_err[0] ? 1 : 0);
	head(f, "reloads_total", "counter", "Reloads by result: done (the new generation serves) or failed (rolled "
					   "back).");
	for (k = 0; k < 2; k++) {
		fputs("baton_reloads_total{name=", f);
		label(f, s->name);
		fprintf(f, ",result=\"%s\"} %d\n", k ? "failed" : "done", k ? s->reloads_failed : s->reloads_done);
	}
	head(f, "restarts_total", "counter", "Restarts of an active generation that exited on its own.");
	fputs("baton_restarts_total{name=", f);
	label(f, s->name);
	fprintf(f, "} %d\n", s->restarts);
	head(f, "listener_info", "gauge", "The listeners, by index, with their spec.");
	for (l = 0; l < s->nl; l++) {
		baton_spec_format(&s->spec[l], spec, sizeof(spec));
		fputs("baton_listener_info{name=", f);
		label(f, s->name);
		fprintf(f, ",listener=\"%d\",spec=", l);
		label(f, spec);
		fputs("} 1\n", f);
	}
	head(f, "generation_state", "gauge", "1 for the state the generation is in (starting, ready, active, "
					      "draining, exited), 0 for the others.");
	for (i = 0; i < n; i++)
		for (k = GEN_STARTING; k <= GEN_EXITED; k++) {
			fputs("baton_generation_state", f);
			gen_labels(f, s, gens[i]);
			fprintf(f, ",state=\"%s\"} %d\n", state_name[k], gens[i]->state == (enum gen_state)k);
		}
	head(f, "generation_start_time_seconds", "gauge", "When the generation was started, in seconds since "
							   "the epoch.");
	for (i = 0; i < n; i++) {
		fputs("baton_generation_start_time_seconds", f);
		gen_labels(f, s, gens[i]);
		fprintf(f, "} %lld.%03lld\n", gens[i]->start_wall_ms / 1000, gens[i]->start_wall_ms % 1000);
	}
	head(f, "generation_queue", "gauge", "Connections waiting in the accept queue of the generation's "
					      "listening socket.");
	for (i = 0; i < n; i++)
		for (l = 0; l < s->nl; l++) {
			struct baton_queue q;

			if (gens[i]->slot[l] < 0 || baton_group_queue(s->grp[l], gens[i]->slot[l], &q))
				continue;
			fputs("baton_generation_queue", f);
			gen_labels(f, s, gens[i]);
			fprintf(f, ",listener=\"%d\"} %u\n", l, q.len);
		}
	/* classic BPF mode has no counters: the families are left out */
	for (k = 0; k < CNT_N && baton_group_mode(s->grp[0]) == BATON_MODE_EBPF; k++) {
		head(f, counter[k][0], "counter", counter[k][1]);
		for (i = 0; i < n; i++)
			for (l = 0; l < s->nl; l++) {
				uint64_t c[CNT_N];

				if (!gen_counts(s, gens[i], l, c))
					continue;
				fprintf(f, "baton_%s", counter[k][0]);
				gen_labels(f, s, gens[i]);
				fprintf(f, ",listener=\"%d\"} %llu\n", l, (unsigned long long)c[k]);
			}
	}
	handoff_metrics(s, f);
}
