/* SPDX-License-Identifier: BSD-2-Clause */
/* --metrics-listen (mhttp.c): GET /metrics over HTTP; nothing without it. */
#ifndef BATON_SUP_MHTTP_H
#define BATON_SUP_MHTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.h"

/* mhttp.c: --metrics-listen, GET /metrics over HTTP (nothing without it) */
#define MHTTP_CLIENTS 8       /* at once; a new one takes the place of the oldest that sent nothing yet */
#define MHTTP_READ_MS 2000    /* a client must send its request head by then */
#define MHTTP_WRITE_MS 5000   /* and take the answer by then */
enum { EV_MHTTP = 1200 /* the listener; + 1 + client index: its clients */ };
int mhttp_open(struct sup *s);        /* -errno said: the address cannot be served */
void mhttp_close(struct sup *s);
void mhttp_event(struct sup *s, uint32_t which);
void mhttp_tick(struct sup *s, long long now);
bool mhttp_busy(const struct sup *s);
void mhttp_exec(struct sup *s, bool going);     /* the listener crosses baton upgrade's exec (or not, after all) */

#endif
