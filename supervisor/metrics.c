/* SPDX-License-Identifier: BSD-2-Clause */
/* Per-generation connection counters taken from the steering program's
 * per-slot counters, kept when a generation's members leave the group; the
 * outcome and duration of reloads; and `baton status --metrics` (also
 * served by --metrics-listen): the Prometheus text exposition format. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "handoff.h"
#include "metrics.h"

/* Reload durations, in seconds: a reload waits for the new generation's
 * readiness, from milliseconds (a server that binds and says READY=1) to
 * the 30 s default --ready-timeout and beyond. */
static const double bucket_s[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define NB ((int)(sizeof(bucket_s) / sizeof(bucket_s[0])))

enum { R_DONE, R_FAILED, R_N };

struct mx_reload {
	int last_ok;                    /* the last reload served (1) or was rolled back (0) */
	long long last_ok_ms;           /* wall clock of the last one that served */
	uint64_t n[R_N], sum_us[R_N];   /* timed reloads, by result */
	uint64_t b[R_N][NB];            /* each in the first bucket it fits (not cumulative) */
};

/* The per-generation series cover the generations that run: a label that
 * took a new value every reload would grow without bound. What the
 * generations that are gone counted is carried in per-supervisor totals. */
struct sup_metrics {
	struct mx_reload r, pend;       /* pend: read from a state file, in force once resumed */
	bool loaded;
	uint64_t (*total)[CNT_N];       /* per listener: counted by generations forgotten */
	uint64_t (*pend_total)[CNT_N];
};

int metrics_init(struct sup *s)
{
	struct sup_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->total = calloc((size_t)(s->nl > 0 ? s->nl : 1), sizeof(*m->total));
	m->pend_total = calloc((size_t)(s->nl > 0 ? s->nl : 1), sizeof(*m->pend_total));
	if (!m->total || !m->pend_total) {
		free(m->total);
		free(m->pend_total);
		free(m);
		return -ENOMEM;
	}
	/* generation 1 serving is the first deploy that worked */
	m->r.last_ok = 1;
	m->r.last_ok_ms = baton_wall_ms();
	s->mx = m;
	return 0;
}

void metrics_fini(struct sup *s)
{
	if (!s->mx)
		return;
	free(s->mx->total);
	free(s->mx->pend_total);
	free(s->mx);
	s->mx = NULL;
}

void metrics_reload(struct sup *s, bool ok, long long took_us)
{
	struct mx_reload *r;
	int k = ok ? R_DONE : R_FAILED, i;

	if (!s->mx)
		return;
	r = &s->mx->r;
	r->last_ok = ok;
	if (ok)
		r->last_ok_ms = baton_wall_ms();
	if (took_us < 0)
		return;
	for (i = 0; i < NB && (double)took_us / 1e6 > bucket_s[i]; i++)
		;
	if (i < NB)
		r->b[k][i]++;
	r->n[k]++;
	r->sum_us[k] += (uint64_t)took_us;
}

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

/* What G counted on listener L, whatever its state. */
static bool gen_sum(struct sup *s, const struct gen *g, int l, uint64_t out[CNT_N])
{
	return g->state != GEN_FREE && g->count && gen_counts(s, g, l, out);
}

void metrics_forget(struct sup *s, struct gen *g)
{
	uint64_t c[CNT_N];

	for (int l = 0; s->mx && l < s->nl; l++)
		if (gen_sum(s, g, l, c))
			for (int k = 0; k < CNT_N; k++)
				s->mx->total[l][k] += c[k];
}

/* ---- across an exec or a dead supervisor ------------------------------------ */

/* The totals include the generations that ended: the state names only
 * those that run, so a resumed supervisor would not know the others. */
void metrics_save(struct sup *s, FILE *f)
{
	const struct mx_reload *r;

	if (!s->mx)
		return;
	r = &s->mx->r;
	fprintf(f, "metrics-reload %d %lld\n", r->last_ok, r->last_ok_ms);
	for (int k = 0; k < R_N; k++) {
		fprintf(f, "metrics-hist %d %" PRIu64 " %" PRIu64, k, r->n[k], r->sum_us[k]);
		for (int i = 0; i < NB; i++)
			fprintf(f, " %" PRIu64, r->b[k][i]);
		fputc('\n', f);
	}
	for (int l = 0; l < s->nl; l++) {
		uint64_t t[CNT_N], c[CNT_N];

		memcpy(t, s->mx->total[l], sizeof(t));
		for (int i = 0; i < MAX_GENS; i++)
			if (s->gen[i].pid <= 0 && gen_sum(s, &s->gen[i], l, c))
				for (int k = 0; k < CNT_N; k++)
					t[k] += c[k];
		fprintf(f, "metrics-total %d %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", l, t[0], t[1], t[2]);
	}
}

/* Reads COUNT unsigned numbers from P; false if there are fewer or more. */
static bool numbers(const char *p, uint64_t *v, int count)
{
	char *end;

	for (int i = 0; i < count; i++) {
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return false;
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (errno)
			return false;
		p = end;
	}
	return *p == '\0';
}

bool metrics_load_line(struct sup *s, const char *line)
{
	struct sup_metrics *m = s->mx;
	uint64_t v[3 + NB];

	if (!m)
		return false;
	if (!strncmp(line, "metrics-reload ", 15)) {
		if (!numbers(line + 15, v, 2) || v[0] > 1)
			return false;
		m->pend.last_ok = (int)v[0];
		m->pend.last_ok_ms = (long long)v[1];
	} else if (!strncmp(line, "metrics-hist ", 13)) {
		if (!numbers(line + 13, v, 3 + NB) || v[0] >= R_N)
			return false;
		m->pend.n[v[0]] = v[1];
		m->pend.sum_us[v[0]] = v[2];
		memcpy(m->pend.b[v[0]], v + 3, sizeof(m->pend.b[0]));
	} else if (!strncmp(line, "metrics-total ", 14)) {
		if (!numbers(line + 14, v, 1 + CNT_N))
			return false;
		if (v[0] < (uint64_t)s->nl)	/* another listener count: the resume refuses it anyway */
			memcpy(m->pend_total[v[0]], v + 1, sizeof(m->pend_total[0]));
	} else {
		return false;
	}
	m->loaded = true;
	return true;
}

void metrics_resume(struct sup *s)
{
	struct sup_metrics *m = s->mx;

	if (!m || !m->loaded)
		return;	/* a state from before these lines: the counts start here */
	m->r = m->pend;
	memcpy(m->total, m->pend_total, (size_t)s->nl * sizeof(*m->total));
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

/* The generations that run, oldest first (status shows newest first; a
 * scrape reads better in id order). One that exited is left out: its
 * counts are in the per-supervisor totals. */
static int live(struct sup *s, struct gen **out)
{
	int n = 0;

	for (int id = 0; id <= s->next_id; id++)	/* 0: a --takeover server */
		for (int i = 0; i < MAX_GENS; i++)
			if (s->gen[i].state != GEN_FREE && s->gen[i].state != GEN_EXITED && s->gen[i].id == id)
				out[n++] = &s->gen[i];
	return n;
}

static void gen_labels(FILE *f, struct sup *s, const struct gen *g)
{
	fputs("{name=", f);
	label(f, s->name);
	fprintf(f, ",generation=\"%d\"", g->id);
}

/* A sample with the name label only: "baton_METRIC{name="N"} " */
static void sample(FILE *f, struct sup *s, const char *metric)
{
	fprintf(f, "baton_%s{name=", metric);
	label(f, s->name);
	fputs("} ", f);
}

static void reload_metrics(struct sup *s, FILE *f)
{
	static const char *const result[R_N] = { "done", "failed" };
	const struct mx_reload *r = &s->mx->r;

	head(f, "last_reload_successful", "gauge", "1 if the last reload served (or none was tried since the "
						      "first generation served), 0 if it was rolled back.");
	sample(f, s, "last_reload_successful");
	fprintf(f, "%d\n", r->last_ok);
	head(f, "last_reload_success_timestamp_seconds", "gauge", "When the last reload that served finished (or "
								      "the supervisor started), in seconds since the epoch.");
	sample(f, s, "last_reload_success_timestamp_seconds");
	fprintf(f, "%lld.%03lld\n", r->last_ok_ms / 1000, r->last_ok_ms % 1000);
	head(f, "reload_duration_seconds", "histogram", "How long reloads took, from the request to the switch "
							 "(done) or the rollback (failed).");
	for (int k = 0; k < R_N; k++) {
		uint64_t cum = 0;

		for (int i = 0; i <= NB; i++) {
			cum += i < NB ? r->b[k][i] : 0;
			fputs("baton_reload_duration_seconds_bucket{name=", f);
			label(f, s->name);
			if (i < NB)
				fprintf(f, ",result=\"%s\",le=\"%g\"} %" PRIu64 "\n", result[k], bucket_s[i], cum);
			else
				fprintf(f, ",result=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", result[k], r->n[k]);
		}
		fputs("baton_reload_duration_seconds_sum{name=", f);
		label(f, s->name);
		fprintf(f, ",result=\"%s\"} %" PRIu64 ".%06" PRIu64 "\n", result[k], r->sum_us[k] / 1000000,
			r->sum_us[k] % 1000000);
		fputs("baton_reload_duration_seconds_count{name=", f);
		label(f, s->name);
		fprintf(f, ",result=\"%s\"} %" PRIu64 "\n", result[k], r->n[k]);
	}
}

void write_metrics(struct sup *s, FILE *f)
{
	static const char *const counter[CNT_N][2] = {
		{ "connections_steered_total",
		  "New connections the steering program sent to the generation's listening socket." },
		{ "connections_migrated_in_total",
		  "Queued connections moved to the generation from a closing or fenced listening socket." },
		{ "connections_migrated_out_total",
		  "Queued connections moved away from the generation's listening socket when it closed or was fenced." },
	};
	static const char *const total_help[CNT_N] = {
		"New connections the steering program sent to a listening socket, every generation's, those gone too.",
		"Queued connections moved to another generation's listening socket, every generation's, those gone too.",
		"Queued connections moved away from a closing or fenced listening socket, every generation's, those "
		"gone too.",
	};
	struct gen *gens[MAX_GENS];
	int n = live(s, gens), i, l, k;
	bool counted = baton_group_mode(s->grp[0]) == BATON_MODE_EBPF;
	char spec[256];

	head(f, "up", "gauge", "1 while the supervisor answers.");
	fputs("baton_up{name=", f);
	label(f, s->name);
	fprintf(f, ",mode=\"%s\"} 1\n", baton_mode_name(baton_group_mode(s->grp[0])));
	head(f, "build_info", "gauge", "1, with the version of the baton that supervises.");
	fputs("baton_build_info{name=", f);
	label(f, s->name);
	fputs(",version=", f);
	label(f, BATON_VERSION);
	fputs("} 1\n", f);
	head(f, "degraded", "gauge", "1 while the service is degraded (no healthy generation could replace an "
				    "unhealthy one).");
	fputs("baton_degraded{name=", f);
	label(f, s->name);
	fprintf(f, "} %d\n", sup_degraded_text(s)[0] ? 1 : 0);
	head(f, "serving_generation", "gauge", "The id of the generation that takes new connections (0: a "
						"--takeover server).");
	if (s->active >= 0) {
		sample(f, s, "serving_generation");
		fprintf(f, "%d\n", s->gen[s->active].id);
	}
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
	if (s->mx)
		reload_metrics(s, f);
	head(f, "restarts_total", "counter", "Restarts of an active generation that exited on its own or that the "
					    "health watch replaced (frozen or hung).");
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
	head(f, "generation_state", "gauge", "1 for the state a running generation is in (starting, ready, active, "
					      "draining, canary, standby), 0 for the others.");
	for (i = 0; i < n; i++)
		for (k = GEN_STARTING; k < GEN_NSTATES; k++) {
			if (k == GEN_EXITED)
				continue;	/* an exited generation is not listed */
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
	for (k = 0; k < CNT_N && counted; k++) {
		head(f, counter[k][0], "counter", total_help[k]);
		for (l = 0; l < s->nl; l++) {
			uint64_t t = s->mx ? s->mx->total[l][k] : 0, c[CNT_N];
			bool any = false;

			for (i = 0; i < MAX_GENS; i++)
				if (gen_sum(s, &s->gen[i], l, c)) {
					t += c[k];
					any = true;
				}
			if (!any && !t)
				continue;	/* one socket shared by all: nothing counts */
			fprintf(f, "baton_%s{name=", counter[k][0]);
			label(f, s->name);
			fprintf(f, ",listener=\"%d\"} %" PRIu64 "\n", l, t);
		}
	}
	for (k = 0; k < CNT_N && counted; k++) {
		char name[64];

		snprintf(name, sizeof(name), "generation_%s", counter[k][0]);
		head(f, name, "counter", counter[k][1]);
		for (i = 0; i < n; i++)
			for (l = 0; l < s->nl; l++) {
				uint64_t c[CNT_N];

				if (!gen_counts(s, gens[i], l, c))
					continue;
				fprintf(f, "baton_%s", name);
				gen_labels(f, s, gens[i]);
				fprintf(f, ",listener=\"%d\"} %" PRIu64 "\n", l, c[k]);
			}
	}
	handoff_metrics(s, f);
}
