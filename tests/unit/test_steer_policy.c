/* SPDX-License-Identifier: BSD-2-Clause */
/* The steering policy without privilege or sockets (lib/steer_policy.c):
 * which share each slot gets in the pick table the eBPF program reads, and
 * which kernel index the generated classic program returns, run here on a
 * small interpreter of the four instructions it uses. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "steer_int.h"

/* A group with members in SLOTS[0..n) of weights W, no sockets behind them. */
static struct baton_group *policy_group(const int *slots, const uint32_t *w, int n)
{
	struct baton_group *g = calloc(1, sizeof(*g));
	int s;

	if (!g)
		FAIL("out of memory");
	for (s = 0; s < BATON_MAX_SLOTS; s++)
		g->m[s].fd = -1;
	for (s = 0; s < n; s++) {
		g->m[slots[s]] = (struct member){ .fd = 100 + s, .weight = w[s] };
		g->order[g->norder++] = (int8_t)slots[s];
		g->nmembers++;
		steer_slot_used(g, slots[s]);
	}
	return g;
}

static int table_hits(const struct baton_steer_cfg *cfg, int slot)
{
	uint32_t k;
	int hits = 0;

	for (k = 0; k < cfg->n; k++)
		hits += cfg->slot[k] == slot;
	return hits;
}

TEST(policy_table_gives_each_slot_its_weight_interleaved)
{
	int slots[] = { 0, 3, 7 };
	uint32_t w[] = { 3, 1, 0 };
	struct baton_group *g = policy_group(slots, w, 3);
	struct baton_steer_cfg cfg;
	uint32_t k;

	g->version = 42;
	steer_build_table(g, &cfg);
	ASSERT_EQ(cfg.n, 4);
	ASSERT_EQ(cfg.version, 42);
	ASSERT_EQ(table_hits(&cfg, 0), 3);
	ASSERT_EQ(table_hits(&cfg, 3), 1);
	ASSERT_EQ(table_hits(&cfg, 7), 0);
	for (k = cfg.n; k < BATON_STEER_TABLE; k++)
		ASSERT_EQ(cfg.slot[k], BATON_STEER_NONE);
	/* smooth round robin: slot 3's one pick is not at either end */
	ASSERT_NE(cfg.slot[0], 3);
	ASSERT_NE(cfg.slot[3], 3);
	free(g);
}

TEST(policy_fenced_and_down_members_get_nothing)
{
	int slots[] = { 1, 2, 4 };
	uint32_t w[] = { 1, 1, 1 };
	struct baton_group *g = policy_group(slots, w, 3);
	struct baton_steer_cfg cfg;

	g->m[2].fenced = true;
	g->m[4].down = true;
	steer_build_table(g, &cfg);
	ASSERT_EQ(cfg.n, 1);
	ASSERT_EQ(cfg.slot[0], 1);
	ASSERT_EQ(steer_eff_weight(g, 2), 0);
	ASSERT_EQ(steer_eff_weight(g, 4), 0);
	ASSERT_EQ(steer_eff_weight(g, 1), 1);
	ASSERT_TRUE(!steer_fallback_spread(g));
	free(g);
}

/* The primary is down and the standby has weight 0: the standby takes all
 * rather than leaving the port to the kernel's hash (which would pick the
 * frozen primary half the time). */
TEST(policy_standby_takes_over_when_every_weighted_slot_is_down)
{
	int slots[] = { 0, 1 };
	uint32_t w[] = { 1, 0 };
	struct baton_group *g = policy_group(slots, w, 2);
	struct baton_steer_cfg cfg;

	g->m[0].down = true;
	ASSERT_TRUE(steer_fallback_spread(g));
	steer_build_table(g, &cfg);
	ASSERT_EQ(cfg.n, 1);
	ASSERT_EQ(cfg.slot[0], 1);
	/* nobody down, nobody weighted: no fallback, an empty table */
	g->m[0].down = false;
	g->m[0].weight = 0;
	ASSERT_TRUE(!steer_fallback_spread(g));
	steer_build_table(g, &cfg);
	ASSERT_EQ(cfg.n, 0);
	free(g);
}

/* A member in reserve (a supervisor's spare for its next generation) is
 * never picked: not for its weight, and not by the spread when the primary
 * is down, which the standby takes alone. */
TEST(policy_a_member_in_reserve_is_neither_weighted_nor_a_standby)
{
	int slots[] = { 0, 1, 2 };
	uint32_t w[] = { 1, 0, 0 };
	struct baton_group *g = policy_group(slots, w, 3);
	struct baton_steer_cfg cfg;

	g->m[2].reserve = true;
	g->m[0].down = true;
	ASSERT_TRUE(steer_fallback_spread(g));
	steer_build_table(g, &cfg);
	ASSERT_EQ(cfg.n, 1);
	ASSERT_EQ(table_hits(&cfg, 1), 1);
	ASSERT_EQ(table_hits(&cfg, 2), 0);
	/* weight does not make it take traffic either, until it is released */
	g->m[0].down = false;
	g->m[2].weight = 3;
	ASSERT_EQ(steer_eff_weight(g, 2), 0);
	steer_build_table(g, &cfg);
	ASSERT_EQ(table_hits(&cfg, 2), 0);
	g->m[2].reserve = false;
	steer_build_table(g, &cfg);
	ASSERT_EQ(table_hits(&cfg, 2), 3);
	free(g);
}

TEST(policy_scaling_keeps_shares_and_every_weighted_slot)
{
	int slots[BATON_MAX_SLOTS];
	uint32_t w[BATON_MAX_SLOTS], out[BATON_MAX_SLOTS], sum;
	struct baton_group *g;
	int s;

	for (s = 0; s < BATON_MAX_SLOTS; s++) {
		slots[s] = s;
		w[s] = s == 0 ? 1000000 : 1;	/* one huge weight, the rest tiny */
	}
	g = policy_group(slots, w, BATON_MAX_SLOTS);
	sum = steer_scale_weights(g, out, BATON_STEER_TABLE);
	ASSERT_LE(sum, BATON_STEER_TABLE);
	for (s = 1; s < BATON_MAX_SLOTS; s++)
		ASSERT_EQ(out[s], 1);
	ASSERT_EQ(out[0], sum - (BATON_MAX_SLOTS - 1));
	free(g);
}

/* Runs a program made of the instructions steer_cbpf_build emits, with
 * RND as the value of SKF_AD_RANDOM. Fails on anything else. */
static uint32_t cbpf_run(const struct sock_filter *f, int n, uint32_t rnd)
{
	uint32_t a = 0;
	int pc = 0;

	while (pc < n) {
		const struct sock_filter *i = &f[pc++];

		if (i->code == (BPF_RET | BPF_K))
			return i->k;
		if (i->code == (BPF_LD | BPF_W | BPF_ABS) && i->k == (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM))
			a = rnd;
		else if (i->code == (BPF_ALU | BPF_MOD | BPF_K) && i->k)
			a %= i->k;
		else if (i->code == (BPF_JMP | BPF_JGE | BPF_K))
			pc += a >= i->k ? i->jt : i->jf;
		else
			FAIL("instruction %d: code 0x%x k %u is not one the generator emits", pc - 1, i->code, i->k);
	}
	FAIL("program of %d instructions falls off its end", n);
}

/* The classic program returns kernel indexes: slot 5 joined first, so it
 * is index 0, and it gets three in four connections. */
TEST(policy_cbpf_returns_kernel_indexes_by_weight)
{
	int slots[] = { 5, 2, 9 };
	uint32_t w[] = { 3, 0, 1 }, hits[4] = { 0 }, r;
	struct sock_filter f[STEER_CBPF_MAX];
	struct baton_group *g = policy_group(slots, w, 3);
	int n = steer_cbpf_build(g, f);

	ASSERT_GT(n, 1);
	ASSERT_LE(n, STEER_CBPF_MAX);
	for (r = 0; r < 4000; r++) {
		uint32_t idx = cbpf_run(f, n, r * 2654435761u);

		ASSERT_LE(idx, 2);
		hits[idx]++;
	}
	ASSERT_EQ(hits[1], 0);	/* weight 0 */
	ASSERT_EQ(hits[0] + hits[2], 4000);
	ASSERT_GT(hits[0], 2700);
	ASSERT_LE(hits[0], 3300);
	/* slot 5 left the kernel's array: slot 9 moved into its index */
	g->order[0] = 9;
	g->norder = 2;
	g->m[5] = (struct member){ .fd = -1 };
	n = steer_cbpf_build(g, f);
	for (r = 0; r < 100; r++)
		ASSERT_EQ(cbpf_run(f, n, r * 40503u), 0);
	free(g);
}

TEST(policy_cbpf_without_weight_leaves_the_pick_to_the_kernel)
{
	int slots[] = { 0, 1 };
	uint32_t w[] = { 0, 0 };
	struct sock_filter f[STEER_CBPF_MAX];
	struct baton_group *g = policy_group(slots, w, 2);
	int n = steer_cbpf_build(g, f);

	ASSERT_EQ(n, 1);
	/* an index past the group's end: the kernel falls back to its hash */
	ASSERT_EQ(cbpf_run(f, n, 7), 0xffffffffu);
	free(g);
}
