/* SPDX-License-Identifier: BSD-2-Clause */
/* baton's pin directories in bpffs, seen from outside the process that made
 * them: how many sockets a group's pinned socket map still holds, which
 * process still holds the map, whether an attached program is baton's. */
#ifndef BATON_CLI_PINS_H
#define BATON_CLI_PINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The group pinned in DIR (its "socks" map): the map's id and the number of
 * sockets still in it. 0, or -errno (-ENOENT: no group pinned there). */
int pins_group(const char *dir, uint32_t *map_id, int *sockets);

/* A process other than this one that holds the map MAP_ID open (a running
 * baton steer --watch or supervisor), its command in COMM; 0 if none. */
pid_t pins_map_holder(uint32_t map_id, char *comm, size_t len);

/* Whether eBPF program PROG_ID uses map MAP_ID: the steering program of
 * that group, not someone else's. */
bool pins_prog_uses_map(uint32_t prog_id, uint32_t map_id);

#endif
