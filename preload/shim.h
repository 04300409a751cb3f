/* SPDX-License-Identifier: BSD-2-Clause */
/* What the shim's two parts share: the managed addresses parsed from
 * BATON_PRELOAD (shim.c) and the idle handoff that works on their
 * connections (handoff.c). Hidden symbols: nothing here is exported. */
#ifndef BATON_SHIM_H
#define BATON_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "preload_map.h"

#define EXPORT __attribute__((visibility("default")))
/* as many as baton run accepts listeners; entries are allocated at load */
#define MAX_MANAGED PRELOAD_MAX_ENTRIES
#define MAX_TRACKED 64

/* One address baton manages: its entry in BATON_PRELOAD (e.fd: the
 * inherited member), and that member's identity when we started. */
struct managed {
	struct preload_entry e;
	ino_t ino;                  /* a closed or reused fd is not it */
	dev_t dev;
};

extern struct managed *man;	/* nman entries */
extern int nman;

/* One line on stderr, async-signal-safe. */
void say(const char *a, const char *b, const char *c);

/* At load time, after BATON_PRELOAD parsed well: reads BATON_HANDOFF. */
void handoff_init(void);

#endif
