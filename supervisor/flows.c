/* SPDX-License-Identifier: BSD-2-Clause */
/* UDP flows through reloads: each UDP listener's group gets its flow table,
 * each generation its QUIC marker (BATON_QUIC_CID_BYTE), and a generation
 * told to stop keeps its flows and gets its stop signal once it holds none
 * (or after --grace); status shows the flows per generation. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "core.h"
#include "envbuild.h"
#include "flows.h"
#include "gen.h"
#include "health.h"
#include "takeover.h"
#include "statusview.h"
#include "util.h"

/* How old a reading of the flow tables may be: each reading is one pass
 * over every UDP listener's table. */
#define FLOWS_READ_MS 200

struct sup_flows {
	long long at_ms;                /* when st was read; 0: never */
	struct baton_flow_stats *st;    /* per listener */
	bool *have;                     /* per listener: st is valid */
};

/* Generation ids count up; the marker is the id's low byte, so live
 * generations (at most MAX_GENS) never share one. */
static int gen_marker(int id)
{
	return id & 0xff;
}

enum baton_flows sup_flows_mode(const struct sup *s, int l)
{
	if (s->spec[l].proto != BATON_PROTO_UDP)
		return BATON_FLOWS_OFF;
	return s->cfg->flows ? s->cfg->flows[l].mode : BATON_FLOWS_ON;
}

static bool any_quic(const struct sup *s)
{
	for (int l = 0; l < s->nl; l++)
		if (sup_flows_mode(s, l) == BATON_FLOWS_QUIC)
			return true;
	return false;
}

void flows_group_opts(const struct sup *s, int l, struct baton_group_opts *o)
{
	o->flows = sup_flows_mode(s, l);
	o->flow_table = s->cfg->flows ? s->cfg->flows[l].table : 0;
	o->flow_idle_ms = s->cfg->flows ? s->cfg->flows[l].idle_ms : 0;
}

/* Before the generation runs, so that its first Handshake already finds
 * its marker. A restart on the same members takes them over too. */
void flows_gen_start(struct sup *s, struct gen *g)
{
	for (int l = 0; l < s->nl; l++) {
		int r;

		if (g->slot[l] < 0 || sup_flows_mode(s, l) != BATON_FLOWS_QUIC)
			continue;
		r = baton_group_set_marker(s->grp[l], g->slot[l], gen_marker(g->id));
		if (r && r != -EOPNOTSUPP)
			say(s, "cannot give gen %d the QUIC marker %d on listener %d: %s; its connections are steered "
			       "as flows", g->id, gen_marker(g->id), l, strerror(-r));
	}
}

/* Into generation ID's environment, before its spawn. 0 or -ENOMEM. */
int flows_env(const struct sup *s, int id, struct envb *e)
{
	char num[8];

	if (!any_quic(s)) {
		envb_unset(e, "BATON_QUIC_CID_BYTE");	/* an outer baton's marker is not ours */
		return 0;
	}
	snprintf(num, sizeof(num), "%d", gen_marker(id));
	return envb_set(e, "BATON_QUIC_CID_BYTE", num);
}

static struct sup_flows *state(struct sup *s)
{
	struct sup_flows *f = s->flows;

	if (f)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->st = calloc((size_t)s->nl, sizeof(*f->st));
	f->have = calloc((size_t)s->nl, sizeof(*f->have));
	if (!f->st || !f->have) {
		free(f->st);
		free(f->have);
		free(f);
		return NULL;
	}
	s->flows = f;
	return f;
}

void flows_fini(struct sup *s)
{
	if (!s->flows)
		return;
	free(s->flows->st);
	free(s->flows->have);
	free(s->flows);
	s->flows = NULL;
}

/* The flow tables as read at most MAX_AGE ms ago; NULL without memory. */
static struct sup_flows *reading(struct sup *s, long long max_age)
{
	struct sup_flows *f = state(s);
	long long now = baton_mono_ms();

	if (!f || (f->at_ms && now - f->at_ms < max_age))
		return f;
	for (int l = 0; l < s->nl; l++)
		f->have[l] = sup_flows_mode(s, l) != BATON_FLOWS_OFF && s->grp && s->grp[l] &&
			     baton_group_flows(s->grp[l], &f->st[l], sizeof(f->st[l])) > 0;
	f->at_ms = now;
	return f;
}

/* Live flows G's members hold; -1 if no member of G has a flow table. */
static long long gen_flows(struct sup *s, const struct gen *g, long long max_age)
{
	struct sup_flows *f = reading(s, max_age);
	long long n = -1;

	for (int l = 0; f && l < s->nl; l++)
		if (f->have[l] && g->slot[l] >= 0)
			n = (n < 0 ? 0 : n) + f->st[l].per_slot[g->slot[l]];
	return n;
}

/* stop_gen of a generation that served: it keeps its members (and their
 * flows, with no weight for new ones) and is signalled by flows_check. */
bool flows_hold(struct sup *s, struct gen *g)
{
	long long n;

	if (s->stopping)
		return false;
	n = gen_flows(s, g, 0);
	if (n < 0)
		return false;
	g->flow_wait = true;
	say(s, "gen %d (pid %d) keeps its %lld UDP flow%s: told to stop once it holds none, or after the %s grace",
	    g->id, (int)g->pid, n, n == 1 ? "" : "s", fmt_duration(s->cfg->grace_ms));
	return true;
}

void flows_check(struct sup *s, struct gen *g, long long now)
{
	long long n = s->stopping ? 0 : gen_flows(s, g, FLOWS_READ_MS);

	if (n > 0 && now - g->stop_ms < s->cfg->grace_ms)
		return;
	if (n > 0)
		say(s, "gen %d (pid %d) still holds %lld UDP flow%s after the %lld ms grace; stopping it anyway (their "
		       "next datagrams go to the new generation)", g->id, (int)g->pid, n, n == 1 ? "" : "s",
		    s->cfg->grace_ms);
	else if (!s->stopping)
		say(s, "gen %d (pid %d) holds no UDP flow any more; telling it to stop (%s)", g->id, (int)g->pid,
		    strsignal(s->cfg->stop_signal));
	g->flow_wait = false;
	if (stop_when_idle(s, g))
		return;
	g->stop_ms = now;	/* the grace before SIGKILL starts now */
	if (g->id == 0)
		takeover_signal(s, g);	/* a --takeover server: its own signal, to every PID */
	else
		gen_signal(s, g, s->cfg->stop_signal);
}

/* For status: listener L's flow table as read at most FLOWS_READ_MS ago. */
const struct baton_flow_stats *flows_stats(struct sup *s, int l)
{
	struct sup_flows *fl = sup_flows_mode(s, l) != BATON_FLOWS_OFF ? reading(s, FLOWS_READ_MS) : NULL;

	return fl && fl->have[l] ? &fl->st[l] : NULL;
}

int flows_marker(int id)
{
	return gen_marker(id);
}
