/* SPDX-License-Identifier: BSD-2-Clause */
/* The feature hook table (supervisor/feature.c): the orders the core relies
 * on, read from the table itself, so that a row moved to the wrong place
 * fails here rather than in a reload. */
#include <string.h>

#include "harness.h"
#include "../../supervisor/feature.h"

/* The position among the rows that fill HOOK of the row named ROW; -1: it
 * does not fill it. */
#define HOOK_RANK(hook, row) ({ \
	int rank_ = -1, seen_ = 0; \
	FEATURES_EACH(f) \
		if (f->hook) { \
			if (!strcmp(f->name, (row))) \
				rank_ = seen_; \
			seen_++; \
		} \
	rank_; })

TEST(features_every_row_is_named_once)
{
	for (size_t i = 0; i < sup_nfeatures; i++) {
		ASSERT_TRUE(sup_features[i]->name && sup_features[i]->name[0]);
		for (size_t j = 0; j < i; j++)
			ASSERT_TRUE(strcmp(sup_features[i]->name, sup_features[j]->name) != 0);
	}
}

TEST(features_a_stop_is_held_by_flows_then_systemd_then_stop_when_idle)
{
	ASSERT_EQ(HOOK_RANK(hold_stop, "flows"), 0);
	ASSERT_EQ(HOOK_RANK(hold_stop, "sd_notify"), 1);
	ASSERT_EQ(HOOK_RANK(hold_stop, "health watch"), 2);
	ASSERT_EQ(HOOK_RANK(gen_stop, "handoff"), 0);	/* before the signal: gen.c calls gen_stop first */
	ASSERT_EQ(HOOK_RANK(stop_signal, "takeover"), 0);
}

TEST(features_the_bind_mode_holds_readiness_and_the_stage_claims_it)
{
	ASSERT_EQ(HOOK_RANK(hold_ready, "bind mode"), 0);
	ASSERT_EQ(HOOK_RANK(claim_ready, "canary/probation"), 0);
	ASSERT_EQ(HOOK_RANK(keep_old, "canary/probation"), 0);
}

TEST(features_the_bind_mode_starts_last_the_stage_saves_first)
{
	int n = 0;

	FEATURES_EACH(f)
		n += f->gen_start != NULL;
	ASSERT_EQ(HOOK_RANK(gen_start, "bind mode"), n - 1);	/* the one start that can fail */
	ASSERT_EQ(HOOK_RANK(save, "canary/probation"), 0);
	ASSERT_EQ(HOOK_RANK(save, "metrics"), 1);
	ASSERT_EQ(HOOK_RANK(load_line, "canary/probation"), 0);
	ASSERT_EQ(HOOK_RANK(reload_end, "sd_notify"), 0);
	ASSERT_EQ(HOOK_RANK(tick, "health watch"), 0);
}
