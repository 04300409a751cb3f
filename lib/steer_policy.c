/* SPDX-License-Identifier: BSD-2-Clause */
/* Steering policy without system calls: effective weights (fenced, down,
 * the all-down fallback), the pick table the eBPF program reads, and the
 * classic BPF program for the unprivileged mode. tests/unit/test_steer_policy.c
 * drives it without privilege. */
#include <string.h>

#include "steer_int.h"

uint32_t steer_eff_weight(const struct baton_group *g, int slot)
{
	if (g->m[slot].fd < 0)
		return steer_pin_weight(g, slot);
	return !g->m[slot].fenced && !g->m[slot].down && !g->m[slot].reserve ? g->m[slot].weight : 0;
}

/* When every slot with weight is down, the healthy members share the
 * traffic equally: a standby (weight 0) takes over from its primary, and a
 * frozen member is never left to the kernel's hash. */
bool steer_fallback_spread(const struct baton_group *g)
{
	bool any_down = false;
	int s;

	for (s = 0; s < g->nslots; s++) {	/* the slots past it are empty */
		if (steer_eff_weight(g, s))
			return false;
		any_down |= g->m[s].fd >= 0 && g->m[s].down;
	}
	return any_down;
}

static uint32_t pick_weight(const struct baton_group *g, int slot, bool spread)
{
	if (!spread)
		return steer_eff_weight(g, slot);
	return g->m[slot].fd >= 0 && !g->m[slot].fenced && !g->m[slot].down && !g->m[slot].reserve;
}

/* Integer weights with a sum of at most MAX that keep each slot's share
 * (every slot with weight keeps at least 1). Returns the sum. */
uint32_t steer_scale_weights(const struct baton_group *g, uint32_t out[BATON_MAX_SLOTS], uint32_t max)
{
	bool spread = steer_fallback_spread(g);
	uint64_t total = 0;
	uint32_t sum = 0;
	int s;

	/* the slots from nslots on are empty: no weight */
	memset(out + g->nslots, 0, (size_t)(BATON_MAX_SLOTS - g->nslots) * sizeof(out[0]));
	for (s = 0; s < g->nslots; s++)
		total += pick_weight(g, s, spread);
	for (s = 0; s < g->nslots; s++) {
		uint64_t w = pick_weight(g, s, spread);

		out[s] = 0;
		if (!w)
			continue;
		out[s] = total <= max ? (uint32_t)w : (uint32_t)(w * max / total);
		if (!out[s])
			out[s] = 1;
		sum += out[s];
	}
	while (sum > max) {	/* the minimum of 1 can overshoot by a few */
		int big = 0;

		for (s = 1; s < g->nslots; s++)
			if (out[s] > out[big])
				big = s;
		out[big]--;
		sum--;
	}
	return sum;
}

/* Smooth weighted round robin: each slot appears exactly w times in the
 * table and the slots are interleaved, so the program's few extra probes
 * after an empty slot reach other slots. */
void steer_build_table(const struct baton_group *g, struct baton_steer_cfg *cfg)
{
	uint32_t w[BATON_MAX_SLOTS];
	int64_t cur[BATON_MAX_SLOTS] = { 0 };
	uint32_t n, i;
	int s;

	/* every byte written once (n, version and slot[] leave no padding):
	 * CFG is often an entry of a staged bank, written in place */
	_Static_assert(sizeof(*cfg) == 8 + sizeof(cfg->slot), "baton_steer_cfg has padding");
	n = steer_scale_weights(g, w, BATON_STEER_TABLE);
	memset(cfg->slot + n, BATON_STEER_NONE, sizeof(cfg->slot) - n);
	for (i = 0; i < n; i++) {
		int best = -1;

		for (s = 0; s < g->nslots; s++) {
			if (!w[s])
				continue;
			cur[s] += w[s];
			if (best < 0 || cur[s] > cur[best])
				best = s;
		}
		cur[best] -= n;
		cfg->slot[i] = (uint8_t)best;
	}
	cfg->n = n;
	cfg->version = g->version;
}


/* Classic BPF cannot read maps: the weights become a chain of compares on
 * a random number, returning the kernel's group index of each slot. */
int steer_cbpf_build(const struct baton_group *g, struct sock_filter f[STEER_CBPF_MAX])
{
	uint32_t w[BATON_MAX_SLOTS], total, cum = 0;
	int i, n = 0, last = -1;

	total = steer_scale_weights(g, w, 1u << 16);
	for (i = 0; i < g->norder; i++)
		if (w[g->order[i]])
			last = i;
	if (last < 0) {
		/* an index past the end makes the kernel fall back to its hash */
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
		return n;
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_RANDOM);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, total);
	for (i = 0; i < last; i++) {
		if (!w[g->order[i]])
			continue;
		cum += w[g->order[i]];
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, cum, 1, 0);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)i);
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)last);
	return n;
}
