/* SPDX-License-Identifier: BSD-2-Clause */
/* Per-generation connection counters and `baton status --metrics`
 * (metrics.c). */
#ifndef BATON_SUP_METRICS_H
#define BATON_SUP_METRICS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.h"

/* metrics.c: per-generation counters, and `baton status --metrics` */
void count_join(struct sup *s, struct gen *g, int l);
/* SLOT's counters in listener L's group now (false: none to read). */
bool metrics_slot_counts(struct sup *s, int l, int slot, uint64_t out[CNT_N]);
void count_leave(struct sup *s, struct gen *g, int l);
/* What G's members on listener L counted, left or still in the group;
 * false in classic BPF mode (no counters). */
bool gen_counts(struct sup *s, const struct gen *g, int l, uint64_t out[CNT_N]);
void write_metrics(struct sup *s, FILE *f);
int metrics_init(struct sup *s);                 /* 0 or -ENOMEM */
void metrics_fini(struct sup *s);
/* A reload ended: OK or rolled back, after TOOK_US (-1: unknown, not timed) */
void metrics_reload(struct sup *s, bool ok, long long took_us);
void metrics_forget(struct sup *s, struct gen *g);  /* G's table entry is reused: its counts go to the totals */
void metrics_save(struct sup *s, FILE *f);       /* state file lines */
bool metrics_load_line(struct sup *s, const char *line);
void metrics_resume(struct sup *s);              /* the loaded lines take effect (a resume, not a fresh start) */

#endif
