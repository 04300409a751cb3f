/* SPDX-License-Identifier: BSD-2-Clause */
/* UDP flows through reloads (flows.c). */
#ifndef BATON_SUP_FLOWS_H
#define BATON_SUP_FLOWS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "core.h"

struct baton_group_opts;
enum baton_flows sup_flows_mode(const struct sup *s, int l);
void flows_group_opts(const struct sup *s, int l, struct baton_group_opts *o);
void flows_gen_start(struct sup *s, struct gen *g);
struct envb;
int flows_env(const struct sup *s, int id, struct envb *e);
bool flows_hold(struct sup *s, struct gen *g);
void flows_check(struct sup *s, struct gen *g, long long now);
void flows_fini(struct sup *s);

#endif
