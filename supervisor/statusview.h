/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton status` (text, --json) and its metrics as records: statuscollect.c
 * fills them from the supervisor's state, statusfmt.c and metricsfmt.c
 * render them, reading nothing else, so a test renders records it built. */
#ifndef BATON_SUP_STATUSVIEW_H
#define BATON_SUP_STATUSVIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core.h"

/* Reload durations, in seconds: a reload waits for the new generation's
 * readiness, from milliseconds (a server that binds and says READY=1) to
 * the 30 s default --ready-timeout and beyond (metrics.c counts them). */
#define SV_BUCKETS 13
extern const double sv_bucket_s[SV_BUCKETS];
enum { SV_DONE, SV_FAILED, SV_RESULTS };

/* Reload outcomes and how long they took. */
struct sv_reloads {
	int last_ok;                    /* the last reload served (1) or was rolled back (0) */
	long long last_ok_ms;           /* wall clock of the last one that served */
	uint64_t n[SV_RESULTS], sum_us[SV_RESULTS];     /* timed reloads, by result */
	uint64_t b[SV_RESULTS][SV_BUCKETS];              /* each in the first bucket it fits (not cumulative) */
};

/* A UDP listener's flow table. */
struct sv_flows {
	enum baton_flows mode;
	bool have;                      /* read; else off, or classic BPF (no table) */
	uint64_t idle_ms;
	uint32_t table, entries, live;
	uint64_t followed, by_cid, created, expired, evicted, insert_failed;
};

struct sv_listener {
	char spec[256];                 /* canonical, with the port in use */
	unsigned port;
	const char *mode;               /* "steered" or "shared" */
	bool udp;                       /* flows apply (TCP: none) */
	struct sv_flows flows;
	uint64_t gone[CNT_N];           /* counted by generations forgotten (metrics) */
};

/* A generation's member on one listener. */
struct sv_member {
	int slot;                       /* -1: released */
	bool counted;                   /* eBPF counters (not classic BPF, not a shared socket) */
	uint64_t count[CNT_N];
	bool has_share;
	uint32_t share_ppm;             /* as the program applies it */
	bool has_queue;
	uint32_t queue, backlog;
	bool has_flows;
	uint32_t flows;                 /* live UDP flows it holds */
	int quic_cid_byte;              /* flows=quic: its marker; -1: none */
};

struct sv_gen_handoff {
	unsigned long long in, out, answered;
};

struct sv_gen {
	int id;
	int pid;                        /* 0 once reaped */
	enum gen_state state;
	long long start_wall_ms, uptime_ms;
	long long ready_after_ms;       /* -1: never ready */
	const char *why;                /* how it ended (shown once it exited) */
	const char *health;             /* why the health watch fenced or kept it, "" */
	const char *bind_mode;
	bool adopted;
	bool has_handoff;               /* a listener has ?handoff=idle */
	struct sv_gen_handoff handoff;
	struct sv_member *m;            /* one per listener; m[0]'s share is the generation's */
};

/* A canary or probation; times in ms from the moment of the collection. */
struct sv_stage {
	enum stage_kind kind;
	int gen, old_gen;
	int pct;                        /* share asked of the canary */
	long long step_ms;              /* 0: promoted by hand */
	long long age_ms, next_step_in_ms, probation_left_ms;
	const char *check;              /* path or command, "" none */
	int checks_passed, checks_failed;
	const char *check_last;
	const char *last;               /* how the last stage ended, "" */
};

struct sv_handoff {
	unsigned long long offered, handed_off, answered, no_target, limit, expired, wake_failed, unreachable,
		take_failed, refused;
	int pending;
};

struct status_view {
	const char *name, *version;
	int pid;
	enum baton_mode mode;           /* of listener 0's group */
	bool has_set;                   /* eBPF: the supervisor's steering set */
	struct baton_steerset_stats set;
	int reloads_done, reloads_failed, restarts;
	const char *degraded;           /* "": the service is ok */
	const char *state_err, *state_file, *last_reload;
	bool resumed, reloading, stopping;
	bool command_set;               /* a reload set the command or environment */
	char *const *argv, *const *env; /* NULL-terminated; env may be NULL */
	int serving;                    /* id of the active generation, -1: none */
	struct sv_stage stage;
	bool has_handoff;
	struct sv_handoff handoff;
	bool has_reloads;               /* metrics: the reload outcomes are kept */
	struct sv_reloads reloads;
	int nl;
	struct sv_listener *l;
	int ngen;
	struct sv_gen *gen;             /* newest first */
};

/* What a collection is for: each form reads only what it shows (the text
 * no counters and listener 0's share only, the metrics no share and no
 * flow table), so a view is rendered in the form it was collected for. */
enum sv_form { SV_TEXT, SV_JSON, SV_METRICS };

/* statuscollect.c: 0, or -ENOMEM (V is then empty). */
int status_collect(struct sup *s, enum sv_form form, struct status_view *v);
void status_view_free(struct status_view *v);

/* statusfmt.c: the table `baton status` prints, and one JSON document
 * (fields: man baton(1), JSON OUTPUT). */
void status_render_text(FILE *f, const struct status_view *v);
void status_render_json(FILE *f, const struct status_view *v);
/* metricsfmt.c: the Prometheus text exposition format (man baton(1), METRICS). */
void status_render_metrics(FILE *f, const struct status_view *v);

/* What the features keep to themselves, for the collector. */
const struct baton_flow_stats *flows_stats(struct sup *s, int l);	/* NULL: no flow table read */
int flows_marker(int id);                               /* a generation's QUIC marker */
bool handoff_view(const struct sup *s, struct sv_handoff *out);	/* false: no ?handoff=idle */
bool handoff_gen_view(const struct sup *s, int gi, struct sv_gen_handoff *out);
void metrics_view(struct sup *s, struct status_view *v);	/* reloads and totals of those gone */

#endif
