/* SPDX-License-Identifier: BSD-2-Clause */
/* Per-generation connection counters taken from the steering program's
 * per-slot counters, kept when a generation's members leave the group; the
 * outcome and duration of reloads, kept across a restart. `baton status
 * --metrics` renders them (metricsfmt.c) from what metrics_view gives. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "metrics.h"
#include "statusview.h"
#include "util.h"

const double sv_bucket_s[SV_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };

/* The per-generation series cover the generations that run: a label that
 * took a new value every reload would grow without bound. What the
 * generations that are gone counted is carried in per-supervisor totals. */
struct sup_metrics {
	struct sv_reloads r, pend;      /* pend: read from a state file, in force once resumed */
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
	struct sv_reloads *r;
	int k = ok ? SV_DONE : SV_FAILED, i;

	if (!s->mx)
		return;
	r = &s->mx->r;
	r->last_ok = ok;
	if (ok)
		r->last_ok_ms = baton_wall_ms();
	if (took_us < 0)
		return;
	for (i = 0; i < SV_BUCKETS && (double)took_us / 1e6 > sv_bucket_s[i]; i++)
		;
	if (i < SV_BUCKETS)
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

bool metrics_slot_counts(struct sup *s, int l, int slot, uint64_t out[CNT_N])
{
	return slot_counts(s, l, slot, out);
}

void count_join(struct sup *s, struct gen *g, int l)
{
	if (!g->count[l].based)	/* a spare: counted since it was made, as G accepts what it holds */
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
	c->based = false;
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
	const struct sv_reloads *r;

	if (!s->mx)
		return;
	r = &s->mx->r;
	fprintf(f, "metrics-reload %d %lld\n", r->last_ok, r->last_ok_ms);
	for (int k = 0; k < SV_RESULTS; k++) {
		fprintf(f, "metrics-hist %d %" PRIu64 " %" PRIu64, k, r->n[k], r->sum_us[k]);
		for (int i = 0; i < SV_BUCKETS; i++)
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
	uint64_t v[3 + SV_BUCKETS];

	if (!m)
		return false;
	if (!strncmp(line, "metrics-reload ", 15)) {
		if (!numbers(line + 15, v, 2) || v[0] > 1)
			return false;
		m->pend.last_ok = (int)v[0];
		m->pend.last_ok_ms = (long long)v[1];
	} else if (!strncmp(line, "metrics-hist ", 13)) {
		if (!numbers(line + 13, v, 3 + SV_BUCKETS) || v[0] >= SV_RESULTS)
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

/* ---- for `baton status --metrics` ------------------------------------------- */

void metrics_view(struct sup *s, struct status_view *v)
{
	if (!s->mx)
		return;
	v->has_reloads = true;
	v->reloads = s->mx->r;
	for (int l = 0; l < v->nl && l < s->nl; l++)
		memcpy(v->l[l].gone, s->mx->total[l], sizeof(v->l[l].gone));
}
