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

struct managed {
	int family;                 /* AF_INET or AF_INET6 */
	int type;                   /* SOCK_STREAM or SOCK_DGRAM */
	unsigned char addr[16];     /* network order; v4 in the first 4 bytes */
	bool any;                   /* wildcard address */
	uint16_t port;
	int fd;                     /* the inherited member */
	ino_t ino;                  /* its inode when we started: a closed or reused fd is not it */
	dev_t dev;
};

extern struct managed *man;	/* nman entries */
extern int nman;

/* One line on stderr, async-signal-safe. */
void say(const char *a, const char *b, const char *c);

/* At load time, after BATON_PRELOAD parsed well: reads BATON_HANDOFF. */
void handoff_init(void);

#endif
