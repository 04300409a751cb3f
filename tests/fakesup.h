/* SPDX-License-Identifier: BSD-2-Clause */
/* The supervisor without processes that the unit tests drive (the sup_ops
 * seam): one listener on a free loopback port, in classic BPF mode (no
 * privilege), with no state file and no control socket. */
#ifndef BATON_TEST_FAKESUP_H
#define BATON_TEST_FAKESUP_H

#include "../supervisor/core.h"

/* Sets S up with CFG and SPEC (the caller's, to outlive it) and OPS, its
 * command ARGV (NULL: none), and makes its groups; fails the test if not. */
void bt_fake_sup(struct sup *s, struct sup_config *cfg, struct baton_spec *spec, const struct sup_ops *ops,
		 char **argv);
/* Generation 1 started as the one to serve (not yet ready): its index. */
int bt_fake_first_gen(struct sup *s);

#endif
