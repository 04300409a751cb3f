/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton status --metrics` (also served by --metrics-listen) from a
 * status_view (statusview.h): the Prometheus text exposition format,
 * version 0.0.4. Metric names and labels are an interface (man baton(1),
 * METRICS): scrapers and alerts depend on them. */
#include <inttypes.h>
#include <stdio.h>

#include "statusview.h"

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

/* "baton_METRIC{name="N"": the caller adds its labels and "} VALUE". */
static void open_sample(FILE *f, const struct status_view *v, const char *metric)
{
	fprintf(f, "baton_%s{name=", metric);
	label(f, v->name);
}

/* A sample with the name label only: "baton_METRIC{name="N"} " */
static void sample(FILE *f, const struct status_view *v, const char *metric)
{
	open_sample(f, v, metric);
	fputs("} ", f);
}

/* A family of one sample with the name label only. */
static void single(FILE *f, const struct status_view *v, const char *metric, const char *type, const char *help,
		   long long value)
{
	head(f, metric, type, help);
	sample(f, v, metric);
	fprintf(f, "%lld\n", value);
}

static void gen_sample(FILE *f, const struct status_view *v, const char *metric, const struct sv_gen *g)
{
	open_sample(f, v, metric);
	fprintf(f, ",generation=\"%d\"", g->id);
}

/* The per-generation series cover the generations that run, oldest first
 * (status shows newest first; a scrape reads better in id order). One that
 * exited is left out: its counts are in the per-supervisor totals. */
#define for_each_running(v, g)                                                     \
	for (const struct sv_gen *g = (v)->gen + (v)->ngen - 1; g >= (v)->gen; g--) \
		if (g->state != GEN_EXITED)

static void reload_metrics(FILE *f, const struct status_view *v)
{
	static const char *const result[SV_RESULTS] = { "done", "failed" };
	const struct sv_reloads *r = &v->reloads;

	single(f, v, "last_reload_successful", "gauge", "1 if the last reload served (or none was tried since the "
							   "first generation served), 0 if it was rolled back.",
	       r->last_ok);
	head(f, "last_reload_success_timestamp_seconds", "gauge", "When the last reload that served finished (or "
								      "the supervisor started), in seconds since the epoch.");
	sample(f, v, "last_reload_success_timestamp_seconds");
	fprintf(f, "%lld.%03lld\n", r->last_ok_ms / 1000, r->last_ok_ms % 1000);
	head(f, "reload_duration_seconds", "histogram", "How long reloads took, from the request to the switch "
							 "(done) or the rollback (failed).");
	for (int k = 0; k < SV_RESULTS; k++) {
		uint64_t cum = 0;

		for (int i = 0; i <= SV_BUCKETS; i++) {
			cum += i < SV_BUCKETS ? r->b[k][i] : 0;
			open_sample(f, v, "reload_duration_seconds_bucket");
			if (i < SV_BUCKETS)
				fprintf(f, ",result=\"%s\",le=\"%g\"} %" PRIu64 "\n", result[k], sv_bucket_s[i], cum);
			else
				fprintf(f, ",result=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", result[k], r->n[k]);
		}
		open_sample(f, v, "reload_duration_seconds_sum");
		fprintf(f, ",result=\"%s\"} %" PRIu64 ".%06" PRIu64 "\n", result[k], r->sum_us[k] / 1000000,
			r->sum_us[k] % 1000000);
		open_sample(f, v, "reload_duration_seconds_count");
		fprintf(f, ",result=\"%s\"} %" PRIu64 "\n", result[k], r->n[k]);
	}
}

/* The supervisor, its reloads and its listeners. */
static void supervisor_metrics(FILE *f, const struct status_view *v)
{
	head(f, "up", "gauge", "1 while the supervisor answers.");
	open_sample(f, v, "up");
	fprintf(f, ",mode=\"%s\"} 1\n", baton_mode_name(v->mode));
	head(f, "build_info", "gauge", "1, with the version of the baton that supervises.");
	open_sample(f, v, "build_info");
	fputs(",version=", f);
	label(f, v->version);
	fputs("} 1\n", f);
	single(f, v, "degraded", "gauge", "1 while the service is degraded (no healthy generation could replace an "
					  "unhealthy one).", v->degraded[0] ? 1 : 0);
	head(f, "serving_generation", "gauge", "The id of the generation that takes new connections (0: a "
						"--takeover server).");
	if (v->serving >= 0) {
		sample(f, v, "serving_generation");
		fprintf(f, "%d\n", v->serving);
	}
	single(f, v, "state_write_failing", "gauge", "1 while the state file cannot be written (a supervisor "
						      "started after a crash may not resume); retried with back-off.",
	       v->state_err[0] ? 1 : 0);
	head(f, "reloads_total", "counter", "Reloads by result: done (the new generation serves) or failed (rolled "
					   "back).");
	for (int k = 0; k < 2; k++) {
		open_sample(f, v, "reloads_total");
		fprintf(f, ",result=\"%s\"} %d\n", k ? "failed" : "done", k ? v->reloads_failed : v->reloads_done);
	}
	if (v->has_reloads)
		reload_metrics(f, v);
	single(f, v, "restarts_total", "counter", "Restarts of an active generation that exited on its own or that "
						 "the health watch replaced (frozen or hung).", v->restarts);
	head(f, "listener_info", "gauge", "The listeners, by index, with their spec.");
	for (int l = 0; l < v->nl; l++) {
		open_sample(f, v, "listener_info");
		fprintf(f, ",listener=\"%d\",spec=", l);
		label(f, v->l[l].spec);
		fputs("} 1\n", f);
	}
}

static void generation_metrics(FILE *f, const struct status_view *v)
{
	head(f, "generation_state", "gauge", "1 for the state a running generation is in (starting, ready, active, "
					      "draining, canary, standby), 0 for the others.");
	for_each_running(v, g)
		for (int k = GEN_STARTING; k < GEN_NSTATES; k++) {
			if (k == GEN_EXITED)
				continue;	/* an exited generation is not listed */
			gen_sample(f, v, "generation_state", g);
			fprintf(f, ",state=\"%s\"} %d\n", state_name[k], g->state == (enum gen_state)k);
		}
	head(f, "generation_start_time_seconds", "gauge", "When the generation was started, in seconds since "
							   "the epoch.");
	for_each_running(v, g) {
		gen_sample(f, v, "generation_start_time_seconds", g);
		fprintf(f, "} %lld.%03lld\n", g->start_wall_ms / 1000, g->start_wall_ms % 1000);
	}
	head(f, "generation_queue", "gauge", "Connections waiting in the accept queue of the generation's "
					      "listening socket.");
	for_each_running(v, g)
		for (int l = 0; l < v->nl; l++) {
			if (!g->m[l].has_queue)
				continue;
			gen_sample(f, v, "generation_queue", g);
			fprintf(f, ",listener=\"%d\"} %u\n", l, g->m[l].queue);
		}
}

static const char *const counter[CNT_N][2] = {
	{ "connections_steered_total",
	  "New connections the steering program sent to the generation's listening socket." },
	{ "connections_migrated_in_total",
	  "Queued connections moved to the generation from a closing or fenced listening socket." },
	{ "connections_migrated_out_total",
	  "Queued connections moved away from the generation's listening socket when it closed or was fenced." },
};

/* Per listener, what every generation counted: those gone, and each that
 * is listed (exited ones too). */
static void total_metrics(FILE *f, const struct status_view *v)
{
	static const char *const total_help[CNT_N] = {
		"New connections the steering program sent to a listening socket, every generation's, those gone too.",
		"Queued connections moved to another generation's listening socket, every generation's, those gone too.",
		"Queued connections moved away from a closing or fenced listening socket, every generation's, those "
		"gone too.",
	};

	for (int k = 0; k < CNT_N; k++) {
		head(f, counter[k][0], "counter", total_help[k]);
		for (int l = 0; l < v->nl; l++) {
			uint64_t t = v->l[l].gone[k];
			bool any = false;

			for (int i = 0; i < v->ngen; i++)
				if (v->gen[i].m[l].counted) {
					t += v->gen[i].m[l].count[k];
					any = true;
				}
			if (!any && !t)
				continue;	/* one socket shared by all: nothing counts */
			open_sample(f, v, counter[k][0]);
			fprintf(f, ",listener=\"%d\"} %" PRIu64 "\n", l, t);
		}
	}
}

static void counter_metrics(FILE *f, const struct status_view *v)
{
	for (int k = 0; k < CNT_N; k++) {
		char name[64];

		snprintf(name, sizeof(name), "generation_%s", counter[k][0]);
		head(f, name, "counter", counter[k][1]);
		for_each_running(v, g)
			for (int l = 0; l < v->nl; l++) {
				if (!g->m[l].counted)
					continue;
				gen_sample(f, v, name, g);
				fprintf(f, ",listener=\"%d\"} %" PRIu64 "\n", l, g->m[l].count[k]);
			}
	}
}

static void handoff_metrics(FILE *f, const struct status_view *v)
{
	const struct sv_handoff *h = &v->handoff;
	const struct {
		const char *result;
		unsigned long long n;
	} r[] = {
		{ "handed_off", h->handed_off }, { "no_target", h->no_target }, { "limit", h->limit },
		{ "expired", h->expired },       { "wake", h->wake_failed },    { "unreachable", h->unreachable },
		{ "refused", h->refused },
	};

	head(f, "handoff_connections_total", "counter", "Idle keep-alive connections that stopping generations "
							   "gave up, by result: handed_off (the serving generation "
							   "took it) or why it was closed.");
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		open_sample(f, v, "handoff_connections_total");
		fprintf(f, ",result=\"%s\"} %llu\n", r[i].result, r[i].n);
	}
	head(f, "handoff_answers_total", "counter", "Answers generations wrote on connections handed to them.");
	sample(f, v, "handoff_answers_total");
	fprintf(f, "%llu\n", h->answered);
}

void status_render_metrics(FILE *f, const struct status_view *v)
{
	supervisor_metrics(f, v);
	generation_metrics(f, v);
	/* classic BPF mode has no counters: the families are left out */
	if (v->mode == BATON_MODE_EBPF) {
		total_metrics(f, v);
		counter_metrics(f, v);
	}
	if (v->has_handoff)	/* only with a ?handoff=idle listener */
		handoff_metrics(f, v);
}
